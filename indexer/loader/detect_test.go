package loader

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
)

func head(b []byte) []byte { return b[:min(len(b), 4096)] }

func TestDetect(t *testing.T) {
	pdfData := buildPDF(t, []string{"x"}, pdfOpts{})
	docx, pptx := buildDOCX(t), buildPPTX(t)
	tests := []struct {
		name string
		data []byte
		want Kind
	}{
		{"notes.txt", []byte("plain words"), TXT},
		{"NOTES.TXT", []byte("plain words"), TXT},
		{"README", []byte("no extension here"), TXT},
		{"guide.md", []byte("# Title\n"), MD},
		{"GUIDE.Markdown", []byte("# Title\n"), MD},
		{"page.html", []byte(sampleHTML), HTML},
		{"PAGE.HTM", []byte("<p>x</p>"), HTML},
		{"page.txt", []byte(sampleHTML), HTML}, // content wins over a wrong text extension
		{"page", []byte("<!doctype html><p>x"), HTML},
		{"doc.pdf", pdfData, PDF},
		{"DOC.PDF", pdfData, PDF},
		{"doc.txt", pdfData, PDF},  // wrong extension
		{"download", pdfData, PDF}, // none at all
		{"a.docx", docx, DOCX},
		{"a.DOCX", docx, DOCX},
		{"a.pptx", docx, DOCX}, // part names beat the extension
		{"b.pptx", pptx, PPTX},
		{"b.bin", pptx, PPTX},
		{"data.csv", []byte("a,b\n1,2\n"), CSV},
		{"DATA.CSV", []byte("a,b\n1,2\n"), CSV},
		{"data.json", []byte(`{"a":1}`), JSON},
		{"data", []byte(`{"a":1}`), JSON},
		{"mail.eml", []byte(sampleEML), EML},
		{"MAIL.EML", []byte(sampleEML), EML},
		{"mail", []byte(sampleEML), EML},
		{"mail.txt", []byte(sampleEML), EML},
		// Text under a binary format's name: the content decides.
		{"export.pdf", []byte("not really a pdf"), TXT},
		{"notes.docx", []byte("not really a docx"), TXT},
		{"page.pdf", []byte(sampleHTML), HTML},
	}
	for _, tc := range tests {
		got, err := Detect(tc.name, head(tc.data))
		if err != nil || got != tc.want {
			t.Errorf("Detect(%q) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

func TestDetectUnsupported(t *testing.T) {
	setOptions(t, Options{OCR: OCROff})
	tests := []struct {
		name string
		data []byte
	}{
		{"image.png", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")},
		{"image.txt", []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")},
		{"program", []byte("\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00")},
		{"program.pdf", []byte("\x7fELF\x02\x01\x01\x00")},
		{"setup.exe", []byte("MZ\x90\x00\x03\x00\x00\x00")},
		{"photo.jpg", []byte("\xff\xd8\xff\xe0\x00\x10JFIF")},
		{"archive.zip", buildZip(t, part{"readme.txt", "hi"})},
		{"sheet.xlsx", buildZip(t, part{"xl/workbook.xml", "<w/>"})},
		{"blob", []byte{0x00, 0x01, 0x02, 0x03, 0xfe, 0xff}},
		{"notes.png", []byte("looks like text")},
		{"notes.exe", []byte("looks like text")},
		{"notes.xyz", []byte("looks like text")},
		{"fake.pdf", []byte("\x00\x01binary, not a pdf\x00")},
		{"fake.docx", []byte("\x00\x01binary, not a docx\x00")},
	}
	for _, tc := range tests {
		k, err := Detect(tc.name, tc.data)
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("Detect(%q) = %q, %v; want ErrUnsupported", tc.name, k, err)
			continue
		}
		if !strings.Contains(err.Error(), "supported: txt, md, html, pdf, docx, pptx, csv, json, eml") {
			t.Errorf("error %q does not list the supported kinds", err)
		}
	}
}

// odfZip builds an OpenDocument package: its "mimetype" part first and
// stored, as ODF requires.
func odfZip(t *testing.T, mediaType string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	w, err := zw.CreateHeader(&zip.FileHeader{Name: "mimetype", Method: zip.Store})
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte(mediaType))
	w, _ = zw.Create("content.xml")
	w.Write([]byte(`<office:document-content><office:body><office:text><text:p>hello</text:p></office:text></office:body></office:document-content>`))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestDetectOpenDocument: an OpenDocument file is refused as what it is,
// with what to do, not as a "zip archive".
func TestDetectOpenDocument(t *testing.T) {
	odt := odfZip(t, "application/vnd.oasis.opendocument.text")
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"letter.odt", odt, "OpenDocument text (.odt)"},
		{"letter.zip", odt, "OpenDocument text (.odt)"},
		{"sheet.ods", odfZip(t, "application/vnd.oasis.opendocument.spreadsheet"), "OpenDocument spreadsheet (.ods)"},
		{"slides.odp", odfZip(t, "application/vnd.oasis.opendocument.presentation"), "OpenDocument presentation (.odp)"},
		// A writer that compressed the mimetype part: the name still says.
		{"letter.odt", buildZip(t, part{"content.xml", "<x/>"}), "OpenDocument text (.odt)"},
	} {
		_, err := Detect(tc.name, head(tc.data))
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), tc.want) ||
			!strings.Contains(err.Error(), "--converter") || strings.Contains(err.Error(), "zip archive") {
			t.Errorf("Detect(%q) = %v; want ErrUnsupported naming %s and the ways to index it", tc.name, err, tc.want)
		}
	}
}

func TestDetectImages(t *testing.T) {
	png := []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
	setOptions(t, Options{OCR: OCROff})
	_, err := Detect("scan.png", png)
	if !errors.Is(err, ErrUnsupported) || !errors.Is(err, ErrNoOCR) || !strings.Contains(err.Error(), "--ocr=off") {
		t.Fatalf("OCR off: err = %v", err)
	}
	t.Setenv("PATH", t.TempDir())
	setOptions(t, Options{})
	_, err = Detect("scan.png", png)
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "tesseract is not on PATH") {
		t.Fatalf("no tesseract: err = %v", err)
	}
	if _, err := Load(context.Background(), PNG, png); !errors.Is(err, ErrUnsupported) || !strings.HasPrefix(err.Error(), "png: ") {
		t.Fatalf("Load without tesseract: err = %v", err)
	}
}

func TestSupported(t *testing.T) {
	s := Supported()
	if len(s) != 12 {
		t.Fatalf("Supported() = %v", s)
	}
	s[0] = "mutated"
	if Supported()[0] != TXT {
		t.Fatal("Supported returns shared slice")
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(string(TXT), []byte("hello"))
	f.Add(string(HTML), []byte(sampleHTML))
	f.Add(string(PDF), buildPDF(f, []string{"a b", "c"}, pdfOpts{title: "t"}))
	f.Add(string(DOCX), buildDOCX(f))
	f.Add(string(PPTX), buildPPTX(f))
	f.Add(string(CSV), []byte("a,b\n1,2"))
	f.Add(string(JSON), []byte(`{"a":[1,{"b":null}]}`))
	f.Add(string(EML), []byte(sampleEML))
	f.Fuzz(func(t *testing.T, kind string, data []byte) {
		doc, err := Load(context.Background(), Kind(kind), data)
		if err != nil {
			if !strings.HasPrefix(err.Error(), kind+": ") && !errors.Is(err, ErrUnsupported) {
				t.Fatalf("error %q lacks kind prefix", err)
			}
			return
		}
		_, _ = Detect("x."+kind, head(data))
		_ = doc.Text()
	})
}
