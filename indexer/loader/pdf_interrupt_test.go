package loader

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Page mode keeps every PDF guarantee that does not need to stop the
// engine inside a page: the text is the same (fidelity), a cancel stops at
// the next page, a timeout and a dead instance fail the document alone.
// The engine is configured once per process, so the PDF tests run again
// in a child process started in page mode.
func TestPDFPageInterruptMode(t *testing.T) {
	if os.Getenv("RAGNODE_TEST_PDF_INTERRUPT") != "" {
		t.Skip("already the child")
	}
	if testing.Short() {
		t.Skip("runs the PDF tests a second time")
	}
	run := "^(TestPDFCancelBetweenPages|TestPDFCanceledMidway|TestPDFEngineFailure|TestPDFTimeout|TestFidelity)$"
	cmd := exec.Command(os.Args[0], "-test.run", run, "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), "RAGNODE_TEST_PDF_INTERRUPT=page")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("PDF tests in page mode: %v\n%s", err, out)
	}
	// A filter that matched nothing would pass: make sure each ran.
	for _, name := range []string{"TestPDFCancelBetweenPages", "TestPDFEngineFailure", "TestPDFTimeout"} {
		if !strings.Contains(string(out), "--- PASS: "+name) {
			t.Errorf("%s did not pass in page mode:\n%s", name, out)
		}
	}
}
