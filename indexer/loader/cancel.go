package loader

import (
	"context"
	"io"
	"unicode/utf8"
)

// checkBytes is how much input a loader handles between two looks at its
// context: at a few hundred MB/s for the slowest single pass (HTML
// tokenizing, XML decoding) this is a few milliseconds, far inside the
// "a cancel stops the CPU within a second" bound, and cheap to check.
const checkBytes = 1 << 20

// checkTokens is the same bound for loops over parsed tokens, rows or
// nodes, whose size is not known in bytes.
const checkTokens = 4096

// stopped is nil while ctx is live, and otherwise ctx's error wrapped with
// the document kind: errors.Is(err, context.Canceled) or
// context.DeadlineExceeded holds, so the caller tells a cancel (retryable,
// nobody's fault) from a bad document.
func stopped(ctx context.Context, kind Kind) error {
	if err := ctx.Err(); err != nil {
		return errorf(kind, "%w", err)
	}
	return nil
}

// validUTF8 is utf8.Valid in checkBytes blocks, looking at ctx between
// blocks. A block never ends inside a rune: its end is moved back to the
// start of the rune it would cut.
func validUTF8(ctx context.Context, kind Kind, b []byte) (bool, error) {
	for len(b) > 0 {
		if err := stopped(ctx, kind); err != nil {
			return false, err
		}
		n := min(len(b), checkBytes)
		if n < len(b) {
			cut := n
			for i := 0; i < utf8.UTFMax && cut > 0 && !utf8.RuneStart(b[cut]); i++ {
				cut--
			}
			if utf8.RuneStart(b[cut]) && cut > 0 {
				n = cut // else the bytes are invalid anyway
			}
		}
		if !utf8.Valid(b[:n]) {
			return false, nil
		}
		b = b[n:]
	}
	return true, nil
}

// ctxReader fails a read once ctx is done, so that io.ReadAll of a large
// part (a mail body) stops with the task.
type ctxReader struct {
	ctx  context.Context
	kind Kind
	r    io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := stopped(c.ctx, c.kind); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
