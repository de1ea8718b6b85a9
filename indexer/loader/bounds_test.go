package loader

import (
	"archive/zip"
	"bufio"
	"bytes"
	"compress/flate"
	"context"
	"errors"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/indexer/loader/loadertest"
)

// rssProbe measures the peak resident set of the process over a stretch of
// a test: Linux resets the peak (VmHWM) when "5" is written to clear_refs.
type rssProbe struct{ base int64 }

func statusKB(t *testing.T, field string) int64 {
	t.Helper()
	f, err := os.Open("/proc/self/status")
	if err != nil {
		t.Skipf("RSS: %v (needs Linux /proc)", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), field+":"); ok {
			n, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return n
		}
	}
	t.Skipf("RSS: no %s in /proc/self/status", field)
	return 0
}

func startRSS(t *testing.T) *rssProbe {
	t.Helper()
	runtime.GC()
	debug.FreeOSMemory()
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		t.Skipf("RSS: cannot reset the peak: %v", err)
	}
	return &rssProbe{base: statusKB(t, "VmRSS")}
}

// growthMB is the peak RSS since start minus the RSS at start.
func (p *rssProbe) growthMB(t *testing.T) float64 {
	return float64(statusKB(t, "VmHWM")-p.base) / 1024
}

// The bound holds for a normal build; the race detector's shadow memory
// multiplies the footprint of every Go allocation, so under -race the
// growth is reported but not asserted.
func checkRSS(t *testing.T, p *rssProbe, limitMB float64) {
	t.Helper()
	g := p.growthMB(t)
	t.Logf("peak RSS growth %.0f MB (limit %.0f MB)", g, limitMB)
	if g > limitMB && !raceEnabled {
		t.Errorf("peak RSS grew by %.0f MB, more than %.0f MB", g, limitMB)
	}
}

// bombPart is a deflate stream inflating to prefix, chunk repeated to about
// n MiB, suffix (exactly size bytes). Each piece is compressed once, flushed
// to a byte boundary and the pieces are concatenated: a block that starts
// with literals is valid anywhere in a stream.
func bombPart(t *testing.T, prefix, chunk, suffix []byte, n int, level int) (deflated []byte, size uint64) {
	t.Helper()
	piece := func(b []byte) []byte {
		var one bytes.Buffer
		w, _ := flate.NewWriter(&one, level)
		w.Write(b)
		if err := w.Flush(); err != nil {
			t.Fatal(err)
		}
		return one.Bytes()
	}
	reps := (n << 20) / len(chunk)
	out := append(piece(prefix), bytes.Repeat(piece(chunk), reps)...)
	out = append(out, piece(suffix)...)
	out = append(out, 0x03, 0x00) // final empty fixed-Huffman block
	return out, uint64(len(prefix) + reps*len(chunk) + len(suffix))
}

type rawPart struct {
	name     string
	deflated []byte
	declared uint64
}

func rawZip(t *testing.T, parts ...rawPart) []byte {
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for _, p := range parts {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: p.name, Method: zip.Deflate,
			CompressedSize64: uint64(len(p.deflated)), UncompressedSize64: p.declared})
		if err != nil {
			t.Fatal(err)
		}
		w.Write(p.deflated)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func wantLimit(t *testing.T, kind Kind, data []byte, want string) {
	t.Helper()
	_, err := Load(context.Background(), kind, data)
	if !errors.Is(err, ErrTooLarge) || !strings.HasPrefix(err.Error(), string(kind)+": ") || !strings.Contains(err.Error(), want) {
		t.Fatalf("err = %v, want ErrTooLarge mentioning %q", err, want)
	}
	t.Logf("%v", err)
}

func TestZipBomb(t *testing.T) {
	chunk := bytes.Repeat([]byte("<w:p><w:r><w:t>bomb</w:t></w:r></w:p>"), 1<<15)
	body, size := bombPart(t, nil, chunk, nil, 1024, flate.BestCompression) // 1 GiB document.xml
	t.Logf("1 GiB document.xml deflates to %d KiB", len(body)>>10)
	t.Run("honest header", func(t *testing.T) {
		p := startRSS(t)
		wantLimit(t, DOCX, rawZip(t, rawPart{"word/document.xml", body, size}), "more than 64 MiB inflated")
		checkRSS(t, p, 300)
	})
	t.Run("lying header", func(t *testing.T) {
		// archive/zip stops an entry that inflates past its declared size.
		p := startRSS(t)
		_, err := Load(context.Background(), DOCX, rawZip(t, rawPart{"word/document.xml", body, 1000}))
		if err == nil || !strings.HasPrefix(err.Error(), "docx: part word/document.xml: damaged data") {
			t.Fatalf("err = %v", err)
		}
		checkRSS(t, p, 300)
	})
	t.Run("ratio", func(t *testing.T) {
		zeros := append([]byte("<w:t>"), bytes.Repeat([]byte{' '}, 1<<20)...)
		small, size := bombPart(t, nil, zeros, nil, 16, flate.BestCompression)
		wantLimit(t, DOCX, rawZip(t, rawPart{"word/document.xml", small, size}), "inflates more than 100x")
	})
	t.Run("total over parts", func(t *testing.T) {
		// 25 slides of 3 MiB of varied text (ratio ~3x): no part is
		// suspicious alone, together they exceed the document's budget.
		rng := rand.New(rand.NewSource(1))
		var words bytes.Buffer
		words.WriteString(`<a:p><a:t>`)
		for words.Len() < 1<<20 {
			fmt.Fprintf(&words, "w%x ", rng.Int63())
		}
		words.WriteString(`</a:t></a:p>`)
		slide, size := bombPart(t, []byte(`<p:sld `+pNS+`>`), words.Bytes(), []byte(`</p:sld>`), 4, flate.BestSpeed)
		var parts []rawPart
		for i := 1; i <= 25; i++ {
			parts = append(parts, rawPart{fmt.Sprintf("ppt/slides/slide%d.xml", i), slide, size})
		}
		wantLimit(t, PPTX, rawZip(t, parts...), "more than 64 MiB inflated")
	})
}

func TestDepthCaps(t *testing.T) {
	deepXML := strings.Repeat("<w:x>", 100000)
	wantLimit(t, DOCX, buildZip(t, part{"word/document.xml", `<w:document ` + wNS + `>` + deepXML}), "nesting deeper than 512")
	wantLimit(t, PPTX, buildZip(t, part{"ppt/slides/slide1.xml", `<p:sld ` + pNS + `>` + deepXML}), "nesting deeper than 512")
	wantLimit(t, JSON, []byte(strings.Repeat(`{"a":[`, 50000)), "nesting deeper than 512")
	// Brackets inside strings are not nesting.
	doc := load(t, JSON, []byte(`{"a":"`+strings.Repeat("[", 5000)+`"}`))
	wantContains(t, doc.Text(), "a: [[[")
	_, err := Load(context.Background(), HTML, []byte(strings.Repeat("<div>", 100000)+"x"))
	if err == nil || !strings.HasPrefix(err.Error(), "html: ") {
		t.Fatalf("deep HTML: err = %v", err)
	}
	t.Logf("deep HTML: %v", err)
}

// bigPDF makes an n-page PDF with Ghostscript when it is installed (a real
// producer), else with the test's own writer.
func bigPDF(t *testing.T, n int) []byte {
	if m := loadertest.Missing("gs"); m != "" {
		t.Logf("big PDF from the test writer: %s", m)
		pages := make([]string, n)
		for i := range pages {
			pages[i] = strings.Repeat(fmt.Sprintf("Page %d of the long manual describes the cluster.\n", i+1), 40)
		}
		return buildPDF(t, pages, pdfOpts{})
	}
	dir := t.TempDir()
	ps := fmt.Sprintf(`%%!PS
/Times-Roman findfont 11 scalefont setfont
1 1 %d { /p exch def
  0 1 45 { /l exch def 56 760 l 15 mul sub moveto
    (Page ) show p 10 string cvs show ( line ) show l 10 string cvs show
    (: the replicated log keeps every node in the same state.) show } for
  showpage } for
`, n)
	src := filepath.Join(dir, "big.ps")
	os.WriteFile(src, []byte(ps), 0o644)
	out := filepath.Join(dir, "big.pdf")
	if b, err := exec.Command("gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=pdfwrite", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v: %s", err, b)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestLargePDFMemory(t *testing.T) {
	// Minutes under -race on a shared 2-core machine: run it on demand there.
	if testing.Short() || (raceEnabled && os.Getenv("RAGNODE_BIG_TESTS") == "") {
		t.Skip("2,000-page PDF: skipped with -short or under -race unless RAGNODE_BIG_TESTS=1")
	}
	start := time.Now()
	data := bigPDF(t, 2000)
	t.Logf("made in %v", time.Since(start))
	if _, err := Warmup(); err != nil {
		t.Fatal(err)
	}
	p := startRSS(t)
	start = time.Now()
	doc := load(t, PDF, data)
	t.Logf("loaded in %v", time.Since(start))
	checkRSS(t, p, 300)
	if len(doc.Pages) != 2000 {
		t.Fatalf("pages = %d", len(doc.Pages))
	}
	last := doc.Pages[1999]
	if last.Number != 2000 || !strings.Contains(last.Text, "Page 2000 line 45") {
		t.Fatalf("last page %d: %.200q", last.Number, last.Text)
	}
	t.Logf("%d pages, %d MB of PDF, %d MB of text", len(doc.Pages), len(data)>>20, len(doc.Text())>>20)
}

func TestLargeHTMLMemory(t *testing.T) {
	var b strings.Builder
	b.WriteString("<!DOCTYPE html><html><head><title>Big</title></head><body>\n")
	for i := 0; b.Len() < 50<<20; i++ {
		fmt.Fprintf(&b, "<h2>Section %d</h2><p>The cluster indexes <b>documents</b> and keeps <a href=\"#s%d\">chunks</a> per file.</p>\n", i, i)
	}
	b.WriteString("</body></html>")
	data := []byte(b.String())
	b.Reset()
	p := startRSS(t)
	doc, err := Load(context.Background(), HTML, data)
	if err != nil {
		if !strings.HasPrefix(err.Error(), "html: ") {
			t.Fatalf("err = %v", err)
		}
		t.Logf("50 MB HTML refused: %v", err)
	} else {
		t.Logf("50 MB HTML: %d MB of text", len(doc.Text())>>20)
	}
	checkRSS(t, p, 300)
}

// The stream renderer used for large pages keeps the tree walk's output
// on ordinary markup.
func TestHTMLStreamRenderer(t *testing.T) {
	title, text, err := htmlStreamText(context.Background(), []byte(sampleHTML))
	if err != nil {
		t.Fatal(err)
	}
	_, tree, _ := htmlToText(context.Background(), sampleHTML)
	if title != "Cluster Guide" {
		t.Errorf("title = %q", title)
	}
	wantContains(t, text, "# Installing ragnode\n", "## Requirements\n", "First, download the binary.",
		"- Linux kernel 5.x", "- One GPU optional", "Port | Use\n7000 | Raft", "Line one\nLine two")
	wantAbsent(t, text, "secret", "Navigation junk", "color:red")
	if text != tree {
		t.Logf("stream and tree renderings differ:\nstream:\n%s\ntree:\n%s", text, tree)
	}
}
