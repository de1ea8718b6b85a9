package chunk

import (
	"math/rand"
	"strings"
	"sync"
	"testing"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

var (
	refOnce sync.Once
	refEnc  *tiktoken.Tiktoken
	refErr  error
)

// reference is tiktoken-go's own cl100k encoder, which Count must match.
func reference(t testing.TB) *tiktoken.Tiktoken {
	t.Helper()
	refOnce.Do(func() {
		tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
		refEnc, refErr = tiktoken.GetEncoding("cl100k_base")
	})
	if refErr != nil {
		t.Fatal(refErr)
	}
	return refEnc
}

// atoms covers every branch of the pre-tokenizer: contractions in both
// cases, each white-space shape, numbers of other scripts, marks, symbols,
// invalid UTF-8 and runs long enough for the heap merge.
var atoms = []string{
	"'s", "'S", "'t", "'re", "'RE", "'Ve", "'m", "'ll", "'lL", "'d", "'x", "'", "''", "'r", "'l",
	"hello", "World", " the", "  ", "   ", "\t", "\n", "\r\n", "\n\n", " \n ", "\u00a0", "\u3000", "\u2028", "\u0085",
	"1", "12", "1234567", "١٢٣", "½", "Ⅻ", "!", "!!", "?!\n", " (", "...", "—", "«", "€", "🙂", "👍🏽",
	"日本語", "Straße", "é", "e\u0301", "ﬁ", "İ", "K", "ſ",
	"\xff", "\xc3", "\xe2\x82", "<|endoftext|>", "x", "é", ",", "0",
}

func randomText(r *rand.Rand, n int) string {
	var b strings.Builder
	for range n {
		a := atoms[r.Intn(len(atoms))]
		if r.Intn(40) == 0 {
			a = strings.Repeat(a, 50+r.Intn(200))
		}
		b.WriteString(a)
	}
	return b.String()
}

func TestCountMatchesTiktoken(t *testing.T) {
	tok, ref := tokenizer(t), reference(t)
	r := rand.New(rand.NewSource(1))
	cases := []string{"", "hello world", "x", strings.Repeat("x", 5000), strings.Repeat("ab", 3000),
		strings.Repeat(" ", 300) + "x", strings.Repeat("\n", 300), strings.Repeat("é", 2000), strings.Repeat("1,", 500)}
	for range 3000 {
		cases = append(cases, randomText(r, 1+r.Intn(12)))
	}
	for _, s := range cases {
		if got, want := tok.Count(s), len(ref.EncodeOrdinary(s)); got != want {
			t.Fatalf("Count(%q) = %d, tiktoken-go says %d", s, got, want)
		}
	}
}

func TestPiecesMatchBPEMerges(t *testing.T) {
	ranks := tokenizer(t).(*cl100k).ranks
	r := rand.New(rand.NewSource(2))
	// The heap and the quadratic merge must agree on every length,
	// including pieces no word of the vocabulary covers.
	for range 500 {
		var b strings.Builder
		for want := 2 + r.Intn(shortPiece-1); b.Len() < want; {
			b.WriteString(vocab[r.Intn(len(vocab))][:1+r.Intn(3)])
		}
		p := b.String()[:min(b.Len(), shortPiece)]
		if h, s := mergeHeap(p, ranks), mergeShort(p, ranks); h != s {
			t.Fatalf("%q: heap %d, quadratic %d", p, h, s)
		}
	}
}

func TestCountLinear(t *testing.T) {
	tok := tokenizer(t)
	// One piece of 256 KiB: the library's quadratic merge takes minutes.
	if n := tok.Count(strings.Repeat("x", 1<<18)); n != 1<<15 {
		t.Fatalf("256 KiB of x = %d tokens, want %d", n, 1<<15)
	}
}

func TestTokenizerConcurrent(t *testing.T) {
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := NewTokenizer()
			if err != nil {
				t.Error(err)
				return
			}
			if n := tok.Count("hello world <|endoftext|>"); n < 3 {
				t.Errorf("count = %d", n)
			}
		}()
	}
	wg.Wait()
	tok := tokenizer(t)
	if n := tok.Count("hello world"); n != 2 {
		t.Fatalf("cl100k count of %q = %d, want 2", "hello world", n)
	}
	if b := maxTokenBytes(tok); b != 128 {
		t.Fatalf("cl100k longest token = %d bytes, want 128", b)
	}
}

func BenchmarkCountOneWord(b *testing.B) {
	tok := tokenizer(b)
	s := strings.Repeat("x", 100<<10)
	b.SetBytes(int64(len(s)))
	for b.Loop() {
		tok.Count(s)
	}
}
