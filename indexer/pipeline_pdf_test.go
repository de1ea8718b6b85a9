package indexer

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/indexer/chunk"
	"github.com/ragnode/ragnode/indexer/embed"
	"github.com/ragnode/ragnode/indexer/loader"
	"github.com/ragnode/ragnode/indexer/loader/loadertest"
	"github.com/ragnode/ragnode/indexer/store"
)

type captureSink struct{ recs []store.Record }

func (c *captureSink) WriteFile(_ context.Context, w Write) ([]string, error) {
	recs := w.Records
	c.recs = recs
	return nil, nil
}

// A PDF made by Ghostscript goes through the pipeline and every chunk keeps
// the page it starts on.
func TestPipelinePDFPages(t *testing.T) {
	if m := loadertest.Missing("gs"); m != "" {
		t.Skip("pipeline PDF: " + m)
	}
	dir := t.TempDir()
	var ps strings.Builder
	ps.WriteString("%!PS\n/Times-Roman findfont 11 scalefont setfont\n")
	for p := 1; p <= 6; p++ {
		for l := 0; l < 45; l++ {
			fmt.Fprintf(&ps, "56 %d moveto (page%d marker line %d of the replicated log and its snapshots) show\n", 760-15*l, p, l)
		}
		ps.WriteString("showpage\n")
	}
	src := filepath.Join(dir, "doc.ps")
	os.WriteFile(src, []byte(ps.String()), 0o644)
	out := filepath.Join(dir, "doc.pdf")
	if b, err := exec.Command("gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v: %s", err, b)
	}
	data, _ := os.ReadFile(out)
	sink := &captureSink{}
	p, err := New(Config{Chunk: chunk.Options{Size: 128, Overlap: 0}, Loader: loader.Options{PDFSlots: 1,
		// Shared with the loader tests: the compiled module is the same.
		CompileCacheDir: filepath.Join(os.TempDir(), "ragnode-test-wazero-cache")}}, embed.NewLexical(64), sink)
	if err != nil {
		t.Fatal(err)
	}
	res, err := p.Run(context.Background(), Input{TaskID: "t", Partition: "p", FileID: "f", FileName: "doc.pdf", Data: data, GPU: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.Chunks < 6 {
		t.Fatalf("%d chunks", res.Chunks)
	}
	seen := map[int]bool{}
	for _, r := range sink.recs {
		if r.Page < 1 || r.Page > 6 {
			t.Fatalf("chunk %d: page %d", r.Index, r.Page)
		}
		if !strings.Contains(r.Text, fmt.Sprintf("page%d marker", r.Page)) {
			t.Errorf("chunk %d says page %d but reads %.60q", r.Index, r.Page, r.Text)
		}
		seen[r.Page] = true
	}
	if len(seen) != 6 {
		t.Errorf("pages seen: %v", seen)
	}
}
