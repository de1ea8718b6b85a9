package loader

import (
	"os"
	"path/filepath"
	"testing"
)

// setOptions changes the process-wide options for one test. Tests that
// call it must not run in parallel with each other.
func setOptions(t testing.TB, o Options) {
	t.Helper()
	prev := options()
	optMu.Lock()
	current = o.withDefaults()
	optMu.Unlock()
	t.Cleanup(func() {
		optMu.Lock()
		current = prev
		optMu.Unlock()
	})
}

// TestMain keeps wazero's compiled PDFium module between test runs: the
// compilation takes seconds (far more under -race) and is the same for
// every run of the same build of the module.
//
// RAGNODE_TEST_PDF_INTERRUPT=page runs the package with the engine in page
// mode (TestPDFPageInterruptMode does, in a child process: the engine is
// configured once per process).
func TestMain(m *testing.M) {
	mode, err := ParsePDFInterrupt(os.Getenv("RAGNODE_TEST_PDF_INTERRUPT"))
	if err != nil {
		panic(err)
	}
	Configure(Options{CompileCacheDir: filepath.Join(os.TempDir(), "ragnode-test-wazero-cache"), PDFInterrupt: mode})
	os.Exit(m.Run())
}

func TestParseOCRMode(t *testing.T) {
	for in, want := range map[string]OCRMode{"": OCRAuto, "auto": OCRAuto, " OFF ": OCROff} {
		if got, err := ParseOCRMode(in); err != nil || got != want {
			t.Errorf("ParseOCRMode(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParseOCRMode("always"); err == nil {
		t.Error("ParseOCRMode(always) accepted")
	}
}

func TestParsePDFInterrupt(t *testing.T) {
	for in, want := range map[string]PDFInterrupt{"": PDFInterruptInstruction, "instruction": PDFInterruptInstruction, " Page ": PDFInterruptPage} {
		if got, err := ParsePDFInterrupt(in); err != nil || got != want {
			t.Errorf("ParsePDFInterrupt(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParsePDFInterrupt("never"); err == nil {
		t.Error("ParsePDFInterrupt(never) accepted")
	}
}
