package store

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
)

// tripCtx cancels itself on the trip-th call to Err.
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

// A cancel in the middle of a large upsert rolls it back: the call returns
// context.Canceled and none of the batch is stored (all or none), and the
// store takes the same batch afterwards.
func TestLocalUpsertCancelMidBatch(t *testing.T) {
	l, _ := openTemp(t)
	var recs []Record
	for i := 0; i < 5000; i++ {
		recs = append(recs, rec("p", "big", i, i, nil))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err := l.Upsert(&tripCtx{Context: ctx, cancel: cancel, trip: 2}, recs)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v", err)
	}
	if got := ids(t, l, "p", "big"); len(got) != 0 {
		t.Fatalf("%d records stored by a cancelled upsert", len(got))
	}
	if err := l.Upsert(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, l, "p", "big"); len(got) != len(recs) {
		t.Fatalf("%d records after the retry, want %d", len(got), len(recs))
	}
}
