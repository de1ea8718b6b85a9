package chunk

import (
	"fmt"
	"sync"
	"unicode/utf8"

	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// Tokenizer counts model tokens in a string.
type Tokenizer interface {
	Count(string) int
}

// TokenBound is implemented by a Tokenizer that knows the most bytes one of
// its tokens can cover. Split then knows a text of more than
// MaxTokenBytes()*budget bytes is over budget without counting it, which
// keeps every count it asks for bounded. Tokenizers without it are assumed
// to cover at most defaultTokenBytes per token.
type TokenBound interface {
	MaxTokenBytes() int
}

// defaultTokenBytes is the longest token of cl100k_base (a run of 128
// spaces); byte-level BPE vocabularies rarely go further.
const defaultTokenBytes = 128

func maxTokenBytes(tok Tokenizer) int {
	if b, ok := tok.(TokenBound); ok && b.MaxTokenBytes() > 0 {
		return b.MaxTokenBytes()
	}
	return defaultTokenBytes
}

const cl100kRanks = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"

// cl100k counts cl100k_base tokens exactly as tiktoken-go's EncodeOrdinary
// does (special-token text such as "<|endoftext|>" is ordinary text:
// documents are data), in time O(n log n) on any input.
type cl100k struct {
	ranks  map[string]int
	maxLen int
}

func (c *cl100k) Count(s string) int {
	if !utf8.ValidString(s) {
		// tiktoken-go runs its pattern over []rune(s), which turns each
		// invalid byte into U+FFFD; counting that text keeps counts equal.
		s = string([]rune(s))
	}
	n := 0
	for s != "" {
		k := nextPiece(s)
		n += bpeCount(s[:k], c.ranks)
		s = s[k:]
	}
	return n
}

func (c *cl100k) MaxTokenBytes() int { return c.maxLen }

var (
	encOnce sync.Once
	encVal  *cl100k
	encErr  error
)

// NewTokenizer returns a cl100k_base counter built from the BPE ranks
// embedded in tiktoken-go-loader, so it works offline. The ranks are parsed
// once per process (about a second); later calls are free. The result is
// safe for concurrent use.
func NewTokenizer() (Tokenizer, error) {
	encOnce.Do(func() {
		ranks, err := tiktoken_loader.NewOfflineLoader().LoadTiktokenBpe(cl100kRanks)
		if err != nil {
			encErr = fmt.Errorf("chunk: load cl100k_base: %w", err)
			return
		}
		c := &cl100k{ranks: ranks}
		for t := range ranks {
			c.maxLen = max(c.maxLen, len(t))
		}
		encVal = c
	})
	if encErr != nil {
		return nil, encErr
	}
	return encVal, nil
}

// approxCounter is the fallback when the ranks cannot load.
type approxCounter struct{}

func (approxCounter) Count(s string) int { return (len(s) + 3) / 4 }
func (approxCounter) MaxTokenBytes() int { return 4 }
