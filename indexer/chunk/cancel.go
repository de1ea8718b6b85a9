package chunk

import (
	"context"
	"errors"
	"fmt"
)

// ErrStopped is returned, wrapping the context's own error, when Split's
// context ends before it finishes: errors.Is(err, context.Canceled) and
// errors.Is(err, ErrStopped) both hold.
var ErrStopped = errors.New("chunk: split stopped")

// stopped is asked before every count. A select on Done costs nanoseconds
// where a count costs microseconds, and counts are bounded by the budget,
// so a cancelled Split stops within one count.
func (s *splitter) stopped() error {
	select {
	case <-s.done:
		return fmt.Errorf("%w: %w", ErrStopped, s.ctx.Err())
	default:
		return nil
	}
}

func newSplitter(ctx context.Context, opt Options, tok Tokenizer) *splitter {
	return &splitter{opt: opt, tok: tok, maxUnit: opt.Size - opt.Overlap,
		tokBytes: maxTokenBytes(tok), ctx: ctx, done: ctx.Done()}
}
