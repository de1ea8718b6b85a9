package chunk

import (
	"fmt"
	"sync"

	"github.com/pkoukk/tiktoken-go"
	tiktoken_loader "github.com/pkoukk/tiktoken-go-loader"
)

// Tokenizer counts model tokens in a string.
type Tokenizer interface {
	Count(string) int
}

type tiktokenCounter struct{ enc *tiktoken.Tiktoken }

// Count treats special-token text such as "<|endoftext|>" as ordinary text:
// documents are data, and the library's special-token check panics.
func (t tiktokenCounter) Count(s string) int {
	if s == "" {
		return 0
	}
	return len(t.enc.EncodeOrdinary(s))
}

var (
	encOnce sync.Once
	encVal  *tiktoken.Tiktoken
	encErr  error
)

// NewTokenizer returns a cl100k_base counter built from the BPE ranks
// embedded in tiktoken-go-loader, so it works offline. The ranks are parsed
// once per process (about a second); later calls are free. The result is
// safe for concurrent use.
func NewTokenizer() (Tokenizer, error) {
	encOnce.Do(func() {
		// SetBpeLoader writes a package global in tiktoken; doing it inside
		// the Once keeps concurrent first calls from racing on it.
		tiktoken.SetBpeLoader(tiktoken_loader.NewOfflineLoader())
		encVal, encErr = tiktoken.GetEncoding("cl100k_base")
		if encErr != nil {
			encErr = fmt.Errorf("chunk: load cl100k_base: %w", encErr)
		}
	})
	if encErr != nil {
		return nil, encErr
	}
	return tiktokenCounter{encVal}, nil
}
