package loader

import (
	"context"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/indexer/loader/loadertest"
)

var scanLines = []string{
	"Scanned invoice for the storage cluster",
	"Seven new disks were delivered on Monday",
	"The total amount is due within thirty days",
	"Please call the operations team",
}

// scan renders scanLines to a picture with Ghostscript (large clear font,
// no text layer anywhere) in the given device, e.g. "pnggray", "tiffg4".
func scan(t *testing.T, device, ext string) string {
	t.Helper()
	if m := loadertest.Missing("gs"); m != "" {
		t.Skip("OCR: cannot render a scanned page: " + m)
	}
	dir := t.TempDir()
	var ps strings.Builder
	ps.WriteString("%!PS\n/Helvetica findfont 26 scalefont setfont\n")
	for i, l := range scanLines {
		ps.WriteString("60 " + itoa(700-60*i) + " moveto (" + l + ") show\n")
	}
	ps.WriteString("showpage\n")
	src := filepath.Join(dir, "page.ps")
	if err := os.WriteFile(src, []byte(ps.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "page."+ext)
	if b, err := exec.Command("gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE="+device, "-r200",
		"-sPAPERSIZE=a4", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v: %s", err, b)
	}
	return out
}

// scannedPDF wraps a rendered page as an image-only PDF with img2pdf.
func scannedPDF(t *testing.T) []byte {
	t.Helper()
	png := scan(t, "pnggray", "png")
	if m := loadertest.Missing("img2pdf"); m != "" {
		t.Skip("OCR: cannot wrap the scan as PDF: " + m)
	}
	out := png + ".pdf"
	if b, err := exec.Command("img2pdf", "-o", out, png).CombinedOutput(); err != nil {
		t.Fatalf("img2pdf: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func wantOCR(t *testing.T, doc Document) {
	t.Helper()
	ref := strings.Join(scanLines, "\n")
	r := loadertest.Recall(ref, doc.Text())
	t.Logf("OCR recall %.3f: %q", r, doc.Text())
	if r < 0.9 {
		t.Errorf("OCR word recall %.3f < 0.9; missed %v", r, loadertest.Missed(ref, doc.Text(), 10))
	}
}

func TestOCRScannedPDF(t *testing.T) {
	data := scannedPDF(t)
	if m := loadertest.Missing("tesseract"); m != "" {
		t.Skip("OCR: " + m)
	}
	doc := load(t, PDF, data)
	if len(doc.Pages) != 1 || doc.Pages[0].Number != 1 {
		t.Fatalf("pages = %+v", doc.Pages)
	}
	wantOCR(t, doc)
}

func TestOCRImages(t *testing.T) {
	if m := loadertest.Missing("tesseract"); m != "" {
		t.Skip("OCR: " + m)
	}
	for _, c := range []struct{ device, ext string }{{"pnggray", "png"}, {"tiffg4", "tiff"}, {"jpeggray", "jpg"}} {
		t.Run(c.ext, func(t *testing.T) {
			data, err := os.ReadFile(scan(t, c.device, c.ext))
			if err != nil {
				t.Fatal(err)
			}
			kind, err := Detect("scan."+c.ext, data[:min(len(data), 4096)])
			if err != nil {
				t.Fatalf("Detect: %v", err)
			}
			wantOCR(t, load(t, kind, data))
		})
	}
}

func TestScannedPDFWithoutOCR(t *testing.T) {
	data := scannedPDF(t)
	for name, setup := range map[string]func(t *testing.T){
		"ocr off":      func(t *testing.T) { setOptions(t, Options{OCR: OCROff}) },
		"no tesseract": func(t *testing.T) { t.Setenv("PATH", t.TempDir()); setOptions(t, Options{}) },
	} {
		t.Run(name, func(t *testing.T) {
			setup(t)
			_, err := Load(context.Background(), PDF, data)
			const want = "pdf: no text layer (scanned?): install tesseract or configure --converter pdf=..."
			if err == nil || err.Error() != want || !errors.Is(err, ErrNoTextLayer) {
				t.Fatalf("err = %v, want %q", err, want)
			}
		})
	}
}

// A recognition language that is not installed fails the document with
// tesseract's reason, not as an engine failure.
func TestOCRMissingLanguage(t *testing.T) {
	data := scannedPDF(t)
	if m := loadertest.Missing("tesseract"); m != "" {
		t.Skip("OCR: " + m)
	}
	setOptions(t, Options{OCRLang: "xx_nonexistent"})
	_, err := Load(context.Background(), PDF, data)
	if err == nil || !strings.HasPrefix(err.Error(), "pdf: page 1: OCR failed: tesseract -l xx_nonexistent") || errors.Is(err, ErrEngine) {
		t.Fatalf("err = %v", err)
	}
	t.Logf("%v", err)
}

func TestOCRLimits(t *testing.T) {
	// A4 keeps its resolution, a 5 m poster is rendered coarser.
	if got := ocrDPI(595, 842, 300); got != 300 {
		t.Errorf("A4 at 300 dpi -> %d", got)
	}
	if got := ocrDPI(14000, 14000, 300); got >= 300 || (14000.0/72*float64(got))*(14000.0/72*float64(got)) > maxOCRPixels {
		t.Errorf("poster -> %d dpi", got)
	}
	if m := loadertest.Missing("tesseract"); m != "" {
		t.Skip("OCR: " + m)
	}
	// A PNG header claiming 100,000 x 100,000 pixels is refused unread.
	ihdr := []byte("IHDR\x00\x01\x86\xa0\x00\x01\x86\xa0\x08\x00\x00\x00\x00")
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\x0d"), ihdr...)
	png = binary.BigEndian.AppendUint32(png, crc32.ChecksumIEEE(ihdr))
	_, err := Load(context.Background(), PNG, png)
	if !errors.Is(err, ErrTooLarge) || !strings.HasPrefix(err.Error(), "png: ") {
		t.Fatalf("err = %v", err)
	}
	t.Logf("%v", err)
}
