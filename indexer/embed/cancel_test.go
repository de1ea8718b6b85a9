package embed

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
)

// tripCtx cancels itself on the trip-th call to Err, so a cancel lands in
// the middle of a batch whatever the machine's speed.
type tripCtx struct {
	context.Context
	cancel context.CancelFunc
	trip   int64
	calls  atomic.Int64
}

func (c *tripCtx) Err() error {
	if c.calls.Add(1) >= c.trip {
		c.cancel()
	}
	return c.Context.Err()
}

// The lexical embedder looks at its context between texts, serial and
// parallel: a cancel in the middle of a batch returns context.Canceled
// and no vectors.
func TestLexicalCancelMidBatch(t *testing.T) {
	l := NewLexical(64)
	for _, n := range []int{3, 4000} { // serial below 4 texts per worker
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			texts := make([]string, n)
			for i := range texts {
				texts[i] = "text number " + strconv.Itoa(i) + " with a few words"
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			tc := &tripCtx{Context: ctx, cancel: cancel, trip: 2}
			out, err := l.Embed(tc, texts)
			if !errors.Is(err, context.Canceled) || out != nil {
				t.Fatalf("err = %v, %d vectors", err, len(out))
			}
		})
	}
}
