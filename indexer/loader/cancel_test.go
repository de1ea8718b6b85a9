package loader

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/klippa-app/go-pdfium"

	"github.com/ragnode/ragnode/indexer/loader/loadertest"
)

// tripCtx is a context that cancels itself on the trip-th call to Err: a
// loader that returns context.Canceled under it has looked at its context
// again after the trip-1 looks before, i.e. in the middle of the work,
// whatever the speed of the machine. With trip 0 it only counts.
type tripCtx struct {
	context.Context
	cancel context.CancelFunc
	trip   int64
	calls  atomic.Int64
}

func newTripCtx(t *testing.T, trip int64) *tripCtx {
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	return &tripCtx{Context: ctx, cancel: cancel, trip: trip}
}

func (c *tripCtx) Err() error {
	if n := c.calls.Add(1); c.trip > 0 && n >= c.trip {
		c.cancel()
	}
	return c.Context.Err()
}

// bigInput is a document and how many bytes its loader works through
// (for DOCX and PPTX the inflated XML, not the archive).
type bigInput struct {
	data []byte
	size int
}

// bigInputs is one large input per loader family that looks at its
// context itself (PDF and OCR have their own tests below).
func bigInputs(t *testing.T) map[Kind]bigInput {
	var txt bytes.Buffer
	for txt.Len() < 8<<20 {
		fmt.Fprintf(&txt, "line %d of a long plain text with ordinary words in it\n", txt.Len())
	}
	var csv bytes.Buffer
	csv.WriteString("id,name,comment\n")
	for i := 0; csv.Len() < 4<<20; i++ {
		fmt.Fprintf(&csv, "%d,row %d,some words about row %d\n", i, i, i)
	}
	var js bytes.Buffer
	js.WriteString("[")
	for i := 0; js.Len() < 4<<20; i++ {
		if i > 0 {
			js.WriteString(",")
		}
		fmt.Fprintf(&js, `{"id":%d,"text":"record number %d"}`, i, i)
	}
	js.WriteString("]")
	para := func(n int) string {
		var b strings.Builder
		for i := 0; b.Len() < n; i++ {
			fmt.Fprintf(&b, "<p>paragraph %d with <b>some</b> words</p>\n", i)
		}
		return b.String()
	}
	var eml strings.Builder
	eml.WriteString("From: a@example.org\r\nSubject: big\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=XX\r\n\r\n")
	for i := 0; i < 4; i++ {
		eml.WriteString("--XX\r\nContent-Type: text/plain\r\n\r\n")
		eml.WriteString(strings.Repeat("mail body text with words\r\n", 40000))
	}
	eml.WriteString("--XX--\r\n")
	var doc strings.Builder
	doc.WriteString(`<?xml version="1.0"?><w:document ` + wNS + `><w:body>`)
	for i := 0; doc.Len() < 4<<20; i++ {
		doc.WriteString(wPara("", "paragraph number "+strconv.Itoa(i)+" of the document"))
	}
	doc.WriteString(`</w:body></w:document>`)
	pptx := []part{{"[Content_Types].xml", contentTypes}}
	slides := 0
	for n := 1; n <= 4; n++ {
		bullets := make([]string, 20000)
		for i := range bullets {
			bullets[i] = "bullet " + strconv.Itoa(i)
		}
		x := slideXML("Slide "+strconv.Itoa(n), bullets...)
		slides += len(x)
		pptx = append(pptx, part{fmt.Sprintf("ppt/slides/slide%d.xml", n), x})
	}
	plain := func(b []byte) bigInput { return bigInput{b, len(b)} }
	return map[Kind]bigInput{
		TXT:  plain(txt.Bytes()),
		MD:   plain(append([]byte("# Title\n\n"), txt.Bytes()...)),
		CSV:  plain(csv.Bytes()),
		JSON: plain(js.Bytes()),
		// Under maxTreeHTML (parse tree) and over it (token stream).
		HTML:            plain([]byte("<html><body>" + para(4<<20) + "</body></html>")),
		HTML + "stream": plain([]byte("<html><body>" + para(maxTreeHTML+1<<20) + "</body></html>")),
		EML:             plain([]byte(eml.String())),
		DOCX:            {buildZip(t, part{"[Content_Types].xml", contentTypes}, part{"word/document.xml", doc.String()}), doc.Len()},
		PPTX:            {buildZip(t, pptx...), slides},
	}
}

// Every loader looks at its context in the middle of a large document
// (a cancel returns context.Canceled with the kind prefix), and does so at
// least once per MiB of input, so a cancel or a drain stops its CPU work
// promptly. The work itself is not timed.
func TestLoadersHonourCancel(t *testing.T) {
	for name, in := range bigInputs(t) {
		data := in.data
		kind := Kind(strings.TrimSuffix(string(name), "stream"))
		t.Run(string(name), func(t *testing.T) {
			count := newTripCtx(t, 0)
			if _, err := Load(count, kind, data); err != nil {
				t.Fatalf("uncancelled load: %v", err)
			}
			looks := count.calls.Load()
			t.Logf("%d KiB read: %d looks at the context", in.size>>10, looks)
			if min := int64(in.size / checkBytes); looks < min {
				t.Errorf("%d looks at the context for %d MiB, want at least one per MiB", looks, in.size>>20)
			}
			// Load's own look before the work is the first call: trip
			// on the second, inside the loader.
			done := make(chan error, 1)
			go func() {
				_, err := Load(newTripCtx(t, 2), kind, data)
				done <- err
			}()
			err := <-done
			if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), string(kind)+": ") {
				t.Fatalf("err = %v, want %s: context.Canceled", err, kind)
			}
		})
	}
}

// A cancel between two pages of a PDF stops it at the next page: no page
// is read after the one in progress.
func TestPDFCancelBetweenPages(t *testing.T) {
	data := manyPages(t, 50)
	if _, err := Warmup(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pages atomic.Int64
	pageHook = func(_ pdfium.Pdfium, page int) {
		pages.Add(1)
		if page == 3 {
			cancel()
		}
	}
	t.Cleanup(func() { pageHook = nil })
	_, err := Load(ctx, PDF, data)
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "pdf: ") {
		t.Fatalf("err = %v", err)
	}
	if n := pages.Load(); n != 4 {
		t.Fatalf("%d pages started, want 4 (pages 0-3, none after the cancel)", n)
	}
}

// scanPages renders n pages of scanLines into one multi-page G4 TIFF.
func scanPages(t *testing.T, n int) string {
	t.Helper()
	if m := loadertest.Missing("gs"); m != "" {
		t.Skip("OCR: cannot render scanned pages: " + m)
	}
	dir := t.TempDir()
	var ps strings.Builder
	ps.WriteString("%!PS\n/Helvetica findfont 20 scalefont setfont\n")
	for p := 0; p < n; p++ {
		for i := 0; i < 30; i++ {
			ps.WriteString("40 " + strconv.Itoa(780-25*i) + " moveto (" + scanLines[i%len(scanLines)] + ") show\n")
		}
		ps.WriteString("showpage\n")
	}
	src := filepath.Join(dir, "pages.ps")
	if err := os.WriteFile(src, []byte(ps.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "pages.tiff")
	if b, err := exec.Command("gs", "-q", "-dBATCH", "-dNOPAUSE", "-dSAFER", "-sDEVICE=tiffg4", "-r300",
		"-sPAPERSIZE=a4", "-o", out, src).CombinedOutput(); err != nil {
		t.Fatalf("gs: %v: %s", err, b)
	}
	return out
}

// tesseractChild tells whether a tesseract process started by this test
// binary is running.
func tesseractChild() bool {
	self := strconv.Itoa(os.Getpid())
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, p := range stats {
		b, err := os.ReadFile(p)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 || !strings.Contains(s[:i], "(tesseract") {
			continue
		}
		if f := strings.Fields(s[i+1:]); len(f) > 1 && f[1] == self {
			return true
		}
	}
	return false
}

// A cancel while tesseract reads an image kills it and returns
// context.Canceled: the cancel is sent once the process is seen running.
func TestOCRCancel(t *testing.T) {
	if m := loadertest.Missing("tesseract"); m != "" {
		t.Skip("OCR: " + m)
	}
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("OCR cancel: no /proc to see the tesseract process")
	}
	// Six scanned pages in one multi-page TIFF: seconds of OCR, far
	// longer than seeing the process start.
	data, err := os.ReadFile(scanPages(t, 6))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Load(ctx, TIFF, data)
		done <- err
	}()
	deadline := time.Now().Add(time.Minute)
	for !tesseractChild() {
		select {
		case err := <-done:
			t.Fatalf("OCR finished before it could be cancelled: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("tesseract never started")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	err = <-done
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "tiff: ") {
		t.Fatalf("err = %v", err)
	}
	for deadline := time.Now().Add(time.Minute); tesseractChild(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("tesseract still running after the cancel")
		}
	}
}
