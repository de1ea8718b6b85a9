package loader

import (
	"bytes"
	"context"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func load(t *testing.T, kind Kind, data []byte) Document {
	t.Helper()
	doc, err := Load(context.Background(), kind, data)
	if err != nil {
		t.Fatalf("Load(%s): %v", kind, err)
	}
	if doc.Kind != kind {
		t.Fatalf("Kind = %q, want %q", doc.Kind, kind)
	}
	return doc
}

func wantContains(t *testing.T, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if !strings.Contains(text, s) {
			t.Errorf("text lacks %q; text:\n%s", s, text)
		}
	}
}

func wantAbsent(t *testing.T, text string, subs ...string) {
	t.Helper()
	for _, s := range subs {
		if strings.Contains(text, s) {
			t.Errorf("text contains %q; text:\n%s", s, text)
		}
	}
}

func TestTXT(t *testing.T) {
	doc := load(t, TXT, []byte("\xef\xbb\xbfhello world\r\nsecond line\n"))
	if len(doc.Pages) != 1 || doc.Pages[0].Number != 0 {
		t.Fatalf("pages = %+v", doc.Pages)
	}
	if got := doc.Pages[0].Text; got != "hello world\nsecond line\n" {
		t.Fatalf("text = %q", got)
	}
}

func TestMD(t *testing.T) {
	src := "# Guide\n\nSome *text*.\n\n## Setup\n\n```\ncode\n```\n"
	doc := load(t, MD, []byte(src))
	if doc.Pages[0].Text != src || doc.Title != "Guide" {
		t.Fatalf("doc = %+v", doc)
	}
}

func TestHTML(t *testing.T) {
	doc := load(t, HTML, []byte(sampleHTML))
	text := doc.Pages[0].Text
	if doc.Title != "Cluster Guide" {
		t.Errorf("title = %q", doc.Title)
	}
	wantContains(t, text, "# Installing ragnode\n", "## Requirements\n", "First, download the binary.",
		"- Linux kernel 5.x", "- One GPU optional", "Port | Use\n7000 | Raft", "Line one\nLine two")
	wantAbsent(t, text, "secret", "Navigation junk", "color:red")
	if !strings.HasPrefix(text, "# Installing ragnode") {
		t.Errorf("text starts with %q", text[:20])
	}
}

func TestHTMLLatin1(t *testing.T) {
	doc := load(t, HTML, []byte("<p>Caf\xe9 cr\xe8me</p>"))
	wantContains(t, doc.Pages[0].Text, "Café crème")
}

func TestPDF(t *testing.T) {
	data := buildPDF(t, []string{
		"Hello PDF world.\nSecond line (with parens) here.",
		"Page two text\nThe end.",
	}, pdfOpts{title: "Test Document"})
	doc := load(t, PDF, data)
	if doc.Title != "Test Document" {
		t.Errorf("title = %q", doc.Title)
	}
	if len(doc.Pages) != 2 {
		t.Fatalf("pages = %d", len(doc.Pages))
	}
	if doc.Pages[0].Number != 1 || doc.Pages[1].Number != 2 {
		t.Errorf("page numbers = %d,%d", doc.Pages[0].Number, doc.Pages[1].Number)
	}
	if got, want := doc.Pages[0].Text, "Hello PDF world.\nSecond line (with parens) here."; got != want {
		t.Errorf("page 1 = %q, want %q", got, want)
	}
	if got, want := doc.Pages[1].Text, "Page two text\nThe end."; got != want {
		t.Errorf("page 2 = %q, want %q", got, want)
	}
}

func TestPDFEncrypted(t *testing.T) {
	data := buildPDF(t, []string{"secret"}, pdfOpts{encrypt: true})
	_, err := Load(context.Background(), PDF, data)
	if err == nil || err.Error() != "pdf: encrypted (password required)" || !errors.Is(err, ErrEncrypted) {
		t.Fatalf("err = %v, want pdf: encrypted ...", err)
	}
}

func TestDOCX(t *testing.T) {
	doc := load(t, DOCX, buildDOCX(t))
	if doc.Title != "Q3 Report" {
		t.Errorf("title = %q", doc.Title)
	}
	want := "# Quarterly Report\n\n# Introduction\n\nThe fleet grew by twelve percent this quarter.\n\n## Regional numbers\n\nRegion | Units\nNorth | 420\n\nClosing remarks & thanks."
	if got := doc.Pages[0].Text; got != want {
		t.Errorf("text =\n%q\nwant\n%q", got, want)
	}
}

func TestPPTX(t *testing.T) {
	doc := load(t, PPTX, buildPPTX(t))
	if len(doc.Pages) != 10 {
		t.Fatalf("slides = %d", len(doc.Pages))
	}
	for i, p := range doc.Pages {
		n := i + 1
		want := "# Slide title " + itoa(n) + "\n\nBullet alpha " + itoa(n) + "\nBullet beta " + itoa(n)
		if p.Number != n || p.Text != want {
			t.Errorf("slide %d = %d %q, want %q", n, p.Number, p.Text, want)
		}
	}
	if doc.Title != "Slide title 1" {
		t.Errorf("title = %q", doc.Title)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestCSV(t *testing.T) {
	src := "name,city,note\nAda,London,\"likes, commas\"\nBob,,\n\"Multi\nline\",Paris,x,extra\n"
	doc := load(t, CSV, []byte(src))
	want := "name: Ada; city: London; note: likes, commas\nname: Bob\nname: Multi line; city: Paris; note: x; column 4: extra\n"
	if got := doc.Pages[0].Text; got != want {
		t.Errorf("text =\n%q\nwant\n%q", got, want)
	}
}

func TestJSON(t *testing.T) {
	src := `{"name":"ragnode","version":2,"tags":["rag","raft"],"nested":{"ok":true,"none":null,"empty":{},"list":[]},"objs":[{"a":1},{"a":2.5}]}`
	doc := load(t, JSON, []byte(src))
	want := "name: ragnode\nversion: 2\ntags[0]: rag\ntags[1]: raft\nnested.ok: true\nnested.none: null\nnested.empty: {}\nnested.list: []\nobjs[0].a: 1\nobjs[1].a: 2.5\n"
	if got := doc.Pages[0].Text; got != want {
		t.Errorf("text =\n%q\nwant\n%q", got, want)
	}
	doc = load(t, JSON, []byte(`"just a string"`))
	if got := doc.Pages[0].Text; got != "just a string\n" {
		t.Errorf("scalar text = %q", got)
	}
}

func TestEML(t *testing.T) {
	doc := load(t, EML, []byte(sampleEML))
	if doc.Title != "Café meeting" {
		t.Errorf("title = %q", doc.Title)
	}
	text := doc.Pages[0].Text
	wantContains(t, text, "Subject: Café meeting\n", "From: Alice <alice@example.com>\n", "To: Bob <bob@example.com>\n",
		"Date: Mon, 2 Mar 2026", "Let's meet at the café at noon.", "Second part in base64.")
	wantAbsent(t, text, "HTML version", "JVBER", "\r")

	doc = load(t, EML, []byte(htmlOnlyEML))
	wantContains(t, doc.Pages[0].Text, "# News", "Café open")
}

// corrupt holds broken variants of every kind; each must fail with an error
// prefixed by the kind, without panicking.
func corruptInputs(t *testing.T) map[string]struct {
	kind Kind
	data []byte
} {
	pdfData := buildPDF(t, []string{"one", "two"}, pdfOpts{})
	docx := buildDOCX(t)
	pptx := buildPPTX(t)
	return map[string]struct {
		kind Kind
		data []byte
	}{
		"txt invalid utf8":     {TXT, []byte("abc \xff\xfe def")},
		"txt binary":           {TXT, []byte("abc\x00def")},
		"md invalid utf8":      {MD, []byte("# T\n\xc3\x28")},
		"html binary":          {HTML, []byte("<p>x</p>\x00\x01\x02")},
		"pdf truncated":        {PDF, pdfData[:len(pdfData)/2]},
		"pdf empty":            {PDF, nil},
		"pdf garbage":          {PDF, []byte("%PDF-1.4\nthis is not a pdf at all\n%%EOF\n")},
		"pdf cyclic page tree": {PDF, buildPDF(t, []string{"a"}, pdfOpts{cyclic: true})},
		"pdf not pdf":          {PDF, []byte("hello")},
		"docx truncated":       {DOCX, docx[:len(docx)/2]},
		"docx not zip":         {DOCX, []byte("PK\x03\x04garbage")},
		"docx missing part":    {DOCX, buildZip(t, part{"foo.xml", "<a/>"})},
		"docx bad xml":         {DOCX, buildZip(t, part{"word/document.xml", "<w:document><w:body><w:p>"})},
		"pptx truncated":       {PPTX, pptx[:len(pptx)-30]},
		"pptx no slides":       {PPTX, buildZip(t, part{"ppt/presentation.xml", "<p/>"})},
		"pptx bad xml":         {PPTX, buildZip(t, part{"ppt/slides/slide1.xml", "<p:sld><a:t>x</p:sld>"})},
		"csv bare quote":       {CSV, []byte("a,b\n1,\"unterminated\n")},
		"csv invalid utf8":     {CSV, []byte("a,b\n\xff,1\n")},
		"json invalid":         {JSON, []byte(`{"a": 1,}`)},
		"json truncated":       {JSON, []byte(`{"a": [1, 2`)},
		"json empty":           {JSON, []byte("")},
		"json trailing":        {JSON, []byte(`{"a":1} {"b":2}`)},
		"eml no headers":       {EML, []byte("just some text without headers")},
		"eml binary":           {EML, []byte("From: a\x00\x01")},
		"eml truncated mime":   {EML, []byte(sampleEML[:len(sampleEML)/2])},
		"eml missing boundary": {EML, []byte("From: a@b\nContent-Type: multipart/mixed\n\nbody\n")},
	}
}

func TestCorrupt(t *testing.T) {
	for name, c := range corruptInputs(t) {
		t.Run(name, func(t *testing.T) {
			doc, err := Load(context.Background(), c.kind, c.data)
			if err == nil {
				t.Fatalf("no error; doc = %+v", doc)
			}
			if !strings.HasPrefix(err.Error(), string(c.kind)+": ") {
				t.Fatalf("error %q lacks the %q prefix", err, c.kind)
			}
			if len(err.Error()) > 400 {
				t.Errorf("error too long to be readable: %d bytes", len(err.Error()))
			}
			t.Logf("%v", err)
		})
	}
}

// PDFium rebuilds a damaged cross-reference table the way viewers do, so a
// file whose xref or trailer alone is broken still yields all of its text.
func TestPDFRepaired(t *testing.T) {
	pdfData := buildPDF(t, []string{"one", "two"}, pdfOpts{})
	xrefAt := bytes.Index(pdfData, []byte("xref"))
	badXref := append([]byte(nil), pdfData...)
	copy(badXref[xrefAt:], "XXXX")
	for name, data := range map[string][]byte{
		"truncated tail":  pdfData[:len(pdfData)-12],
		"cut in trailer":  pdfData[:len(pdfData)-3],
		"bad xref":        badXref,
		"shifted offsets": bytes.Replace(pdfData, []byte("1 0 obj"), []byte("1 0 obj\n% padding that shifts every offset\n"), 1),
	} {
		doc := load(t, PDF, data)
		if got := doc.Text(); got != "one\n\ntwo" {
			t.Errorf("%s: text = %q", name, got)
		}
	}
}

// Truncated text-like inputs cannot be told from complete ones; they must
// still load what is there.
func TestTruncatedTextKinds(t *testing.T) {
	doc := load(t, HTML, []byte(sampleHTML[:len(sampleHTML)/2]))
	wantContains(t, doc.Pages[0].Text, "# Installing ragnode")
	doc = load(t, CSV, []byte("a,b\n1,2\n3"))
	wantContains(t, doc.Pages[0].Text, "a: 3")
}

func TestLoadUnknownKind(t *testing.T) {
	_, err := Load(context.Background(), Kind("xls"), []byte("x"))
	if !errors.Is(err, ErrUnsupported) {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Load(ctx, PDF, buildPDF(t, []string{"x"}, pdfOpts{}))
	if !errors.Is(err, context.Canceled) || !strings.HasPrefix(err.Error(), "pdf: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoadDoesNotHang(t *testing.T) {
	// Deeply nested JSON must not blow the stack (token walk is iterative).
	deep := strings.Repeat("[", 5000) + strings.Repeat("]", 5000)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if _, err := Load(context.Background(), JSON, []byte(deep)); err != nil {
			t.Logf("deep json: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("deep JSON took too long")
	}
}

// Header bytes that are not UTF-8, raw or inside an encoded word that
// claims UTF-8, come out as valid text (the fuzzer found the second).
func TestEMLHeadersInvalidUTF8(t *testing.T) {
	for _, subj := range []string{"caf\xe9", "=?utf-8?q?caf=E9?=", "=?UTF-8?B?" + "/w==" + "?="} {
		data := []byte("From: a@b.c\r\nSubject: " + subj + "\r\n\r\nbody\r\n")
		doc, err := Load(context.Background(), EML, data)
		if err != nil {
			t.Fatalf("%q: %v", subj, err)
		}
		if !utf8.ValidString(doc.Title) || !utf8.ValidString(doc.Pages[0].Text) {
			t.Fatalf("%q: invalid UTF-8 in %q / %q", subj, doc.Title, doc.Pages[0].Text)
		}
	}
}
