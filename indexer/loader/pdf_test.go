package loader

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klippa-app/go-pdfium"
)

func manyPages(t *testing.T, n int) []byte {
	pages := make([]string, n)
	for i := range pages {
		pages[i] = strings.Repeat("timeout test line with several words\n", 30)
	}
	return buildPDF(t, pages, pdfOpts{})
}

// A document over its time budget fails alone; the instance it ran on is
// discarded and the next document is read normally.
func TestPDFTimeout(t *testing.T) {
	data := manyPages(t, 300)
	if _, err := Warmup(); err != nil {
		t.Fatal(err)
	}
	setOptions(t, Options{PDFTimeout: 20 * time.Millisecond})
	_, err := Load(context.Background(), PDF, data)
	if !errors.Is(err, ErrTimeout) || !strings.HasPrefix(err.Error(), "pdf: timed out after 20ms") {
		t.Fatalf("err = %v", err)
	}
	setOptions(t, Options{})
	doc := load(t, PDF, data)
	if len(doc.Pages) != 300 {
		t.Fatalf("after a timeout: %d pages", len(doc.Pages))
	}
}

// The caller's cancellation is reported as such (retryable), not as a
// timeout of the document.
func TestPDFCanceledMidway(t *testing.T) {
	data := manyPages(t, 300)
	if _, err := Warmup(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := Load(ctx, PDF, data)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v", err)
	}
}

// A panic or a dead instance in the middle of a document fails that
// document only, with ErrEngine, and concurrent documents are unaffected.
func TestPDFEngineFailure(t *testing.T) {
	good := buildPDF(t, []string{"healthy page"}, pdfOpts{})
	bad := buildPDF(t, []string{"poison one", "poison two"}, pdfOpts{})
	if _, err := Warmup(); err != nil {
		t.Fatal(err)
	}
	for name, hook := range map[string]func(inst pdfium.Pdfium){
		"panic": func(pdfium.Pdfium) { panic("simulated trap") },
		"kill":  func(inst pdfium.Pdfium) { _ = inst.Kill() },
	} {
		t.Run(name, func(t *testing.T) {
			pageHook = func(inst pdfium.Pdfium, page int) {
				if page == 1 {
					hook(inst)
				}
			}
			t.Cleanup(func() { pageHook = nil })
			var wg sync.WaitGroup
			errs := make([]error, 8)
			for i := range errs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					data := good
					if i%2 == 0 {
						data = bad
					}
					_, errs[i] = Load(context.Background(), PDF, data)
				}()
			}
			wg.Wait()
			for i, err := range errs {
				if i%2 == 1 {
					if err != nil {
						t.Errorf("good document %d: %v", i, err)
					}
					continue
				}
				if !errors.Is(err, ErrEngine) || !strings.HasPrefix(err.Error(), "pdf: ") {
					t.Errorf("bad document %d: err = %v, want ErrEngine", i, err)
				}
			}
			t.Logf("%v", errs[0])
			pageHook = nil
			if got := load(t, PDF, bad).Text(); got != "poison one\n\npoison two" {
				t.Fatalf("after the failure: %q", got)
			}
		})
	}
}
