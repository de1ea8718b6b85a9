package chunk

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragnode/ragnode/indexer/loader"
)

func page(text string) loader.Document { return loader.Document{Pages: []loader.Page{{Text: text}}} }

// The 100 KB one-word file of issue 15 is 12800 tokens: it must make
// ceil(12800/512) = 25 chunks, each but the last filled to the budget (the
// old cutter made 28, in a minute of CPU).
func TestOneWordChunkCount(t *testing.T) {
	tok := tokenizer(t)
	word := oneWord(100 << 10)
	total := tok.Count(word)
	want := (total + 511) / 512
	chunks := mustSplit(t, page(word), Options{}, tok)
	if len(chunks) != want {
		t.Fatalf("%d chunks for %d tokens, want %d", len(chunks), total, want)
	}
	var all strings.Builder
	for i, c := range chunks {
		if i < len(chunks)-1 && c.Tokens != 512 {
			t.Errorf("chunk %d holds %d tokens, want the full 512", i, c.Tokens)
		}
		all.WriteString(c.Text)
	}
	if all.String() != word {
		t.Fatal("chunks do not rebuild the word")
	}
}

// Shapes with no spaces or no newlines, at sizes the race detector allows:
// budgets hold and the non-space text comes back in order.
func TestPathologicalShapes(t *testing.T) {
	tok := tokenizer(t)
	shapes := map[string]string{
		"csv":      csvLine(40 << 10),
		"digits":   digits(40 << 10),
		"word":     oneWord(40 << 10),
		"accents":  strings.Repeat("é", 8000),
		"emoji":    strings.Repeat("👍🏽", 2000),
		"cjk":      strings.Repeat("日本語のテキスト", 1000),
		"punct":    strings.Repeat("=-", 10000),
		"spaced":   strings.Repeat("a ", 10000),
		"lines":    strings.Repeat("x\n", 10000),
		"mixed":    strings.Repeat(oneWord(3000)+" short words here. ", 8),
		"invalid":  strings.Repeat("\xff\xfe", 5000),
		"nbsp-run": strings.Repeat("ab\u00a0", 8000),
	}
	for name, text := range shapes {
		for _, opt := range []Options{{}, {Size: 7, Overlap: 2}, {Size: 1, Overlap: -1}} {
			t.Run(name, func(t *testing.T) {
				checkCover(t, text, opt, tok)
			})
		}
	}
}

// A Size too large to multiply by bytes per token must not overflow into
// cutting everything to single runes.
func TestHugeSize(t *testing.T) {
	tok := tokenizer(t)
	text := "before " + oneWord(5000) + " after"
	chunks := mustSplit(t, page(text), Options{Size: math.MaxInt}, tok)
	if len(chunks) != 1 || chunks[0].Text != text {
		t.Fatalf("got %d chunks, want the whole text in one", len(chunks))
	}
}

// checkCover asserts what Split guarantees for any text: Tokens is the
// count, each chunk is within Size unless it is one rune, and the chunks
// without their overlaps hold the text's non-space runes in order.
func checkCover(t *testing.T, text string, opt Options, tok Tokenizer) {
	t.Helper()
	chunks, err := Split(context.Background(), page(text), opt, tok)
	if err != nil {
		t.Fatal(err)
	}
	size := opt.normalized().Size
	var got strings.Builder
	for i, c := range chunks {
		if c.Index != i || c.Tokens != tok.Count(c.Text) {
			t.Fatalf("chunk %d: Index %d, Tokens %d, recount %d", i, c.Index, c.Tokens, tok.Count(c.Text))
		}
		if c.Tokens > size && len([]rune(c.Text)) > 1 {
			t.Fatalf("chunk %d: %d tokens > %d in %q", i, c.Tokens, size, c.Text)
		}
		got.WriteString(c.Text)
	}
	want := squeeze(text)
	if g := squeeze(got.String()); !containsInOrder(g, want) {
		t.Fatalf("chunks lost text: rebuilt %d non-space bytes of %d", len(g), len(want))
	}
}

func squeeze(s string) string { return strings.Join(strings.Fields(s), "") }

// containsInOrder reports whether want is a subsequence of got: overlaps
// repeat text, they never drop or reorder it.
func containsInOrder(got, want string) bool {
	i := 0
	for j := 0; j < len(got) && i < len(want); j++ {
		if got[j] == want[i] {
			i++
		}
	}
	return i == len(want)
}

// cancelTok signals once it has been asked for `after` counts, and
// records counts started once the test has cancelled.
type cancelTok struct {
	Tokenizer
	after     int64
	calls     atomic.Int64
	started   chan struct{}
	cancelled atomic.Bool
	late      atomic.Int64
}

func (c *cancelTok) Count(s string) int {
	if c.cancelled.Load() {
		c.late.Add(1)
	}
	if c.calls.Add(1) == c.after {
		close(c.started)
	}
	return c.Tokenizer.Count(s)
}

func (c *cancelTok) MaxTokenBytes() int { return maxTokenBytes(c.Tokenizer) }

// A cancelled Split on a 20 MB pathological input stops within one count
// and says why.
func TestSplitCancel(t *testing.T) {
	for name, text := range map[string]string{"word": oneWord(20 << 20), "csv": csvLine(20 << 20)} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tok := &cancelTok{Tokenizer: tokenizer(t), after: 200, started: make(chan struct{})}
			done := make(chan error, 1)
			go func() {
				_, err := Split(ctx, page(text), Options{}, tok)
				done <- err
			}()
			select {
			case <-tok.started:
			case err := <-done:
				t.Fatalf("Split finished (%v) before 200 counts", err)
			}
			cancel()
			tok.cancelled.Store(true)
			at := time.Now()
			var err error
			select {
			case err = <-done:
			case <-time.After(time.Minute):
				t.Fatal("Split still running a minute after cancel")
			}
			t.Logf("returned %v after cancel, %d counts", time.Since(at), tok.calls.Load())
			if !errors.Is(err, context.Canceled) || !errors.Is(err, ErrStopped) {
				t.Fatalf("err = %v, want ErrStopped wrapping context.Canceled", err)
			}
			// One count may have passed its check just before cancel.
			if n := tok.late.Load(); n > 1 {
				t.Fatalf("%d counts started after cancel", n)
			}
		})
	}
}
