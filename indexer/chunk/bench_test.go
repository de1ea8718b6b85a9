package chunk

import (
	"context"
	"fmt"
	"math/rand"
	"strconv"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/indexer/loader"
)

// prose is markdown of about n bytes: sections of paragraphs of sentences.
func prose(n int) string {
	var b strings.Builder
	r := rand.New(rand.NewSource(1))
	for sec := 0; b.Len() < n; sec++ {
		fmt.Fprintf(&b, "## Section %d\n\n", sec)
		for p := 0; p < 6; p++ {
			for s := 0; s < 5; s++ {
				for w := 0; w < 8+r.Intn(12); w++ {
					b.WriteString(vocab[r.Intn(len(vocab))])
					b.WriteByte(' ')
				}
				b.WriteString("end. ")
			}
			b.WriteString("\n\n")
		}
	}
	return b.String()[:n]
}

// csvLine is one line of comma-separated fields, no spaces, n bytes.
func csvLine(n int) string {
	var b strings.Builder
	for i := 0; b.Len() < n; i++ {
		b.WriteString(strconv.Itoa(i * 7919 % 100000))
		b.WriteString(",abc,")
	}
	return b.String()[:n]
}

func digits(n int) string { return strings.Repeat("1234567890", n/10+1)[:n] }

func oneWord(n int) string { return strings.Repeat("x", n) }

// BenchmarkSplit runs each pathological shape next to prose of the same
// size; the ns/op ratio is the cost of the shape.
func BenchmarkSplit(b *testing.B) {
	tok := tokenizer(b)
	cases := []struct {
		name string
		text func(int) string
		size int
	}{
		{"prose/100KB", prose, 100 << 10},
		{"word/100KB", oneWord, 100 << 10},
		{"prose/1MB", prose, 1 << 20},
		{"word/1MB", oneWord, 1 << 20},
		{"csv/1MB", csvLine, 1 << 20},
		{"digits/1MB", digits, 1 << 20},
	}
	for _, c := range cases {
		doc := loader.Document{Pages: []loader.Page{{Text: c.text(c.size)}}}
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(c.size))
			for b.Loop() {
				if _, err := Split(context.Background(), doc, Options{}, tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkCount(b *testing.B) {
	tok := tokenizer(b)
	text := prose(300 << 10)
	b.SetBytes(int64(len(text)))
	for b.Loop() {
		tok.Count(text)
	}
}
