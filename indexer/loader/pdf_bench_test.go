package loader

import (
	"context"
	"os"
	"testing"
)

// BenchmarkPDFReal reads two real PDFs shipped by Debian (a texinfo manual
// of 36 pages, a DocBook spec of 17) after the engine's start-up: the
// per-document and per-page cost of the PDFium loader, for profiling
// (-cpuprofile). The ratio to pdftotext is scenarios/bench's "pdf".
func BenchmarkPDFReal(b *testing.B) {
	var files [][]byte
	for _, p := range []string{"/usr/share/doc/libtasn1-doc/libtasn1.pdf", "/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf"} {
		d, err := os.ReadFile(p)
		if err != nil {
			b.Skipf("real PDFs missing (Debian libtasn1-doc, shared-mime-info): %v", err)
		}
		files = append(files, d)
	}
	if _, err := Warmup(); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, d := range files {
			if _, err := Load(context.Background(), PDF, d); err != nil {
				b.Fatal(err)
			}
		}
	}
}
