package indexer

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/ragnode/ragnode/indexer/chunk"
	"github.com/ragnode/ragnode/indexer/embed"
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

// TestCancelMidLoadIsNotPermanent: a cancel that lands inside the loader
// (a drain, a task cancel) ends the run with context.Canceled and not as a
// permanent failure, so the task is requeued instead of failed for good,
// and nothing is written.
func TestCancelMidLoadIsNotPermanent(t *testing.T) {
	sink := &captureSink{}
	p, err := New(Config{Chunk: chunk.Options{Size: 64, Overlap: 0}}, embed.NewLexical(64), sink)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Repeat("a line of ordinary text about raft and gossip\n", 200000) // ~9 MB
	for trip := int64(1); trip <= 4; trip++ {
		ctx, cancel := context.WithCancel(context.Background())
		_, err = p.Run(&tripCtx{Context: ctx, cancel: cancel, trip: trip}, Input{TaskID: "t", Partition: "p", FileID: "big.txt", FileName: "big.txt", Data: []byte(body), GPU: -1}, nil)
		cancel()
		if !errors.Is(err, context.Canceled) || IsPermanent(err) {
			t.Fatalf("cancel at look %d: err = %v (permanent %v), want context.Canceled, not permanent", trip, err, IsPermanent(err))
		}
	}
	if sink.recs != nil {
		t.Fatalf("%d records written by cancelled runs", len(sink.recs))
	}
}
