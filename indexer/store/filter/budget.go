package filter

import (
	"context"
	"errors"
	"fmt"
)

// DefaultBudget is the work one search may spend on its filter, in units
// of about a byte scanned or compared (eval.go prices the rest alike),
// each about a nanosecond or two. Ordinary filters over a large ledger
// stay far below it, at tens of units per record; it stops expressions
// built to be slow after a fraction of a second of CPU.
const DefaultBudget = 256 << 20

const (
	// ctxEveryWork and ctxEveryRecords space the context checks: often
	// enough that a disconnected client stops the work within
	// milliseconds, rarely enough that the check costs nothing measurable.
	ctxEveryWork    = 64 << 10
	ctxEveryRecords = 64
)

// ErrBudget is matched (errors.Is) by every *BudgetError.
var ErrBudget = errors.New("filter: evaluation over budget")

// BudgetError is an evaluation stopped for spending more than its budget.
// The expression is well-formed; it is too costly for this server, so the
// client, not the server, has to change something.
type BudgetError struct {
	Limit int64 // the budget, in units of about a byte scanned or compared
}

func (e *BudgetError) Error() string {
	return fmt.Sprintf("filter: the expression needs more than %s of matching work, the limit for one search; use fewer or shorter like patterns", sizeText(e.Limit))
}

// Is makes errors.Is(err, ErrBudget) hold.
func (e *BudgetError) Is(target error) bool { return target == ErrBudget }

func sizeText(n int64) string {
	if n >= 1<<20 && n%(1<<20) == 0 {
		return fmt.Sprintf("%d MiB", n>>20)
	}
	return fmt.Sprintf("%d bytes", n)
}

// Budget bounds the evaluations of one request. It is shared by every
// record the request evaluates, so an expression that is cheap per record
// over many records and one that is costly over few records meet the same
// bound, and it carries the request's context, so the work stops when the
// client goes away. A Budget is not safe for concurrent use.
type Budget struct {
	ctx     context.Context
	limit   int64
	used    int64
	next    int64 // used at which the context is checked again
	records int
	err     error // once spent or cancelled, every later evaluation fails alike
}

// NewBudget returns a budget of limit bytes of work (DefaultBudget when
// limit <= 0) that also ends with ctx (never, when ctx is nil).
func NewBudget(ctx context.Context, limit int64) *Budget {
	if ctx == nil {
		ctx = context.Background()
	}
	if limit <= 0 {
		limit = DefaultBudget
	}
	return &Budget{ctx: ctx, limit: limit, next: ctxEveryWork}
}

// Used is the work spent so far.
func (b *Budget) Used() int64 { return b.used }

// Limit is the budget's bound.
func (b *Budget) Limit() int64 { return b.limit }

// charge spends n units of work.
func (b *Budget) charge(n int) error {
	if b.err != nil {
		return b.err
	}
	b.used += int64(n)
	if b.used > b.limit {
		b.err = &BudgetError{Limit: b.limit}
		return b.err
	}
	if b.used >= b.next {
		b.next = b.used + ctxEveryWork
		return b.checkCtx()
	}
	return nil
}

// record counts one evaluation; a run of cheap records spends little work,
// so the context is checked by count as well.
func (b *Budget) record() error {
	if b.err != nil {
		return b.err
	}
	if err := b.charge(recordCost); err != nil {
		return err
	}
	b.records++
	if b.records%ctxEveryRecords == 1 {
		return b.checkCtx()
	}
	return nil
}

func (b *Budget) checkCtx() error {
	if err := b.ctx.Err(); err != nil {
		b.err = fmt.Errorf("filter: evaluation stopped: %w", err)
		return b.err
	}
	return nil
}
