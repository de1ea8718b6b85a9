package chunk

import (
	"context"
	"reflect"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/indexer/loader"
)

// fuzzDoc makes one page per form feed, so page boundaries get fuzzed too.
func fuzzDoc(text string) loader.Document {
	var doc loader.Document
	for i, p := range strings.Split(text, "\f") {
		doc.Pages = append(doc.Pages, loader.Page{Number: i + 1, Text: p})
	}
	return doc
}

var splitSeeds = []string{
	"",
	"Hello",
	"# Guide\n## Install\n\nDownload the binary and unpack it somewhere.\n\n## Configure\n\nEdit the config file.",
	"Page one text.\fPage two text.\f# Appendix\n\n```\n# not a heading\n```\nThe end.",
	"A sentence. Another one! And a third? \"Quoted.\" (Bracketed.) Ellipsis… done",
	"- item one\n- item two\n\n1. first\r\n2. second\r\n",
	strings.Repeat("x", 3000),
	"before " + strings.Repeat("ab1+/", 400) + " after",
	csvLine(2000),
	digits(2000),
	strings.Repeat("👍🏽日本語é", 200),
	"\xff\xfe invalid \xc3 bytes \xe2\x82",
	"~~~\n# fenced\n~~~\n#### deep\n###### deeper ##\n####### not a heading",
	"   # indented heading\n    # code, not a heading\n#no-space",
	strings.Repeat("word ", 800),
	strings.Repeat("\n\n\n", 50) + "late text",
}

// FuzzSplit holds Split to what it guarantees for any text and options:
// no panic, no error without cancellation, Tokens is the count of Text,
// each chunk is within Size unless it is one rune and is one run of text
// from one page, the result is
// deterministic, a document with words yields a chunk, and with every
// chunk kept the chunks (overlap repeats text) hold the non-space text of
// the input in order.
func FuzzSplit(f *testing.F) {
	for i, s := range splitSeeds {
		f.Add(s, uint16(8+i*37), int16(i%5*7-7), int8(i%3-1))
	}
	tok := tokenizer(f)
	f.Fuzz(func(t *testing.T, text string, size uint16, overlap int16, minTok int8) {
		if len(text) > 16<<10 {
			return
		}
		opt := Options{Size: int(size % 2048), Overlap: int(overlap), MinTokens: int(minTok)}
		doc := fuzzDoc(text)
		chunks, err := Split(context.Background(), doc, opt, tok)
		if err != nil {
			t.Fatal(err)
		}
		n := opt.normalized()
		pages := make([]string, len(doc.Pages))
		for i, p := range doc.Pages {
			pages[i] = squeeze(p.Text)
		}
		page, from := 1, 0
		var all strings.Builder
		for i, c := range chunks {
			if c.Index != i {
				t.Fatalf("chunk %d has Index %d", i, c.Index)
			}
			if got := tok.Count(c.Text); c.Tokens != got {
				t.Fatalf("chunk %d: Tokens %d, recount %d", i, c.Tokens, got)
			}
			if c.Tokens > n.Size && len([]rune(c.Text)) > 1 {
				t.Fatalf("chunk %d: %d tokens > Size %d: %q", i, c.Tokens, n.Size, c.Text)
			}
			if strings.TrimSpace(c.Text) == "" {
				t.Fatalf("chunk %d is blank", i)
			}
			// A chunk never spans pages, and inside its page it is one
			// run of text (whitespace aside) starting at or after where
			// the previous chunk started.
			if c.Page < 1 || c.Page > len(pages) || c.Page < page {
				t.Fatalf("chunk %d is on page %d after page %d", i, c.Page, page)
			}
			if c.Page != page {
				page, from = c.Page, 0
			}
			at := strings.Index(pages[page-1][from:], squeeze(c.Text))
			if at < 0 {
				t.Fatalf("chunk %d is not one run of page %d: %q", i, c.Page, c.Text)
			}
			from += at
			all.WriteString(c.Text)
		}
		if len(chunks) == 0 && squeeze(text) != "" {
			t.Fatal("a document with words gave no chunks")
		}
		if n.MinTokens == 0 {
			if want, got := squeeze(strings.ReplaceAll(text, "\f", " ")), squeeze(all.String()); !containsInOrder(got, want) {
				t.Fatalf("chunks lost or reordered text: %d of %d non-space bytes", len(got), len(want))
			}
		}
		again, _ := Split(context.Background(), doc, opt, tok)
		if !reflect.DeepEqual(again, chunks) {
			t.Fatal("Split is not deterministic")
		}
	})
}

// FuzzCount holds the hand-written cl100k counter to tiktoken-go's own
// encoder. Inputs are capped because the reference is quadratic.
func FuzzCount(f *testing.F) {
	for _, a := range atoms {
		f.Add(a + " " + a + "\n" + a)
	}
	for _, s := range splitSeeds {
		f.Add(s)
	}
	tok, ref := tokenizer(f), reference(f)
	f.Fuzz(func(t *testing.T, s string) {
		if len(s) > 1024 {
			return
		}
		if got, want := tok.Count(s), len(ref.EncodeOrdinary(s)); got != want {
			t.Fatalf("Count(%q) = %d, tiktoken-go says %d", s, got, want)
		}
	})
}
