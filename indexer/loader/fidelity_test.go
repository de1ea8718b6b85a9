package loader_test

import (
	"context"
	"os"
	"testing"

	"github.com/ragnode/ragnode/indexer/loader"
	"github.com/ragnode/ragnode/indexer/loader/loadertest"
)

// TestFidelity loads documents made by real producers and compares the
// text with what an independent extractor finds in the same file.
func TestFidelity(t *testing.T) {
	if m := loadertest.Missing("pdftotext", "pandoc"); m != "" {
		t.Skip("fidelity: reference extractor missing: " + m)
	}
	dir := t.TempDir()
	files, skipped, err := loadertest.Build(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range skipped {
		t.Logf("corpus: skipped %s", s)
	}
	for _, f := range files {
		t.Run(f.Name, func(t *testing.T) {
			ref, err := loadertest.Reference(f, dir)
			if err != nil {
				t.Skipf("no reference text: %v", err)
			}
			data, err := os.ReadFile(f.Path)
			if err != nil {
				t.Fatal(err)
			}
			doc, err := loader.Load(context.Background(), loader.Kind(f.Kind), data)
			if err != nil {
				t.Fatalf("Load (%s): %v", f.Producer, err)
			}
			got := doc.Text()
			recall := loadertest.Recall(ref, got)
			t.Logf("%s (%s): %d pages, recall %.4f (%d distinct reference words)", f.Name, f.Producer,
				len(doc.Pages), recall, len(loadertest.Words(ref)))
			if recall < 0.98 {
				t.Errorf("word recall %.4f < 0.98; missed e.g. %v", recall, loadertest.Missed(ref, got, 15))
			}
			if a := loadertest.Artefacts(ref, got, 20); len(a) > 0 {
				t.Errorf("glyph artefacts (char: count) the reference never emits: %v", a)
			}
			if f.Kind == "pdf" || f.Kind == "pptx" {
				for i, p := range doc.Pages {
					if p.Number != i+1 {
						t.Fatalf("page %d numbered %d", i+1, p.Number)
					}
				}
			}
		})
	}
}
