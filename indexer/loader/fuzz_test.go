package loader

import (
	"context"
	"runtime"
	"strings"
	"testing"
	"unicode/utf8"
)

// fuzzKinds are the kinds FuzzLoadBounded drives (the kind is a byte, so
// no input is spent on kinds that do not exist, unlike FuzzLoad). Images are left out: with
// tesseract installed every input would start an OCR process, and the
// image decoders are the standard library's.
var fuzzKinds = []Kind{TXT, MD, HTML, PDF, DOCX, PPTX, CSV, JSON, EML}

// fuzzAllocCap bounds what one Load may allocate in total: the zip
// budget (64 MiB inflated) several times over, plus a margin per input
// byte. A loader that goes past it on a small input has lost its bounds.
const fuzzAllocCap = 512 << 20

// FuzzLoadBounded holds every loader to what the package promises for any bytes:
// no panic (not even a recovered one), an error that names the kind, valid
// UTF-8 text without carriage returns, and bounded
// memory.
func FuzzLoadBounded(f *testing.F) {
	f.Add(byte(0), []byte("plain text\r\nwith lines"))
	f.Add(byte(1), []byte("# Title\n\nSome *markdown*."))
	f.Add(byte(2), []byte("<html><head><title>T</title></head><body><h1>H</h1><p>x</p></body></html>"))
	f.Add(byte(3), buildPDF(f, []string{"page one", "page two"}, pdfOpts{title: "t"}))
	f.Add(byte(4), buildDOCX(f))
	f.Add(byte(5), buildPPTX(f))
	f.Add(byte(6), []byte("a,b,c\n1,2,3\n\"q,uoted\",x,y\n"))
	f.Add(byte(7), []byte(`{"a":[1,2,{"b":"c"}],"d":null}`))
	f.Add(byte(8), []byte("From: a@b.c\r\nSubject: hi\r\nContent-Type: text/plain\r\n\r\nbody\r\n"))
	f.Add(byte(7), []byte(strings.Repeat("[", 600)))
	f.Fuzz(func(t *testing.T, k byte, data []byte) {
		kind := fuzzKinds[int(k)%len(fuzzKinds)]
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		doc, err := Load(context.Background(), kind, data)
		runtime.ReadMemStats(&after)
		if grew := after.TotalAlloc - before.TotalAlloc; grew > fuzzAllocCap+uint64(len(data))*64 {
			t.Fatalf("%s: %d bytes allocated for a %d-byte input", kind, grew, len(data))
		}
		if err != nil {
			if !strings.HasPrefix(err.Error(), string(kind)+":") && !strings.Contains(err.Error(), string(kind)) {
				t.Fatalf("%s: error does not name the kind: %v", kind, err)
			}
			if strings.Contains(err.Error(), "parser failed") {
				t.Fatalf("%s: a parser panicked (recovered): %v", kind, err)
			}
			return
		}
		for _, p := range doc.Pages {
			if !utf8.ValidString(p.Text) {
				t.Fatalf("%s: page %d is not valid UTF-8", kind, p.Number)
			}
			if strings.Contains(p.Text, "\r") {
				t.Fatalf("%s: page %d keeps a carriage return", kind, p.Number)
			}
		}
	})
}
