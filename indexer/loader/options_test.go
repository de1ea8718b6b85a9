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
func TestMain(m *testing.M) {
	Configure(Options{CompileCacheDir: filepath.Join(os.TempDir(), "ragnode-test-wazero-cache")})
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
