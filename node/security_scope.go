package node

import (
	"context"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// scopeResolver answers the route table's "which partition does this
// object belong to" for partition-scoped tokens: a task's from the ledger,
// a chunk's from the chunk read that GET /extract itself makes, so the
// check and the answer see the same chunk.
type scopeResolver struct {
	view  func(func(*fsm.State))
	chunk func(ctx context.Context, id string) (transport.ChunkView, error)
}

func (r scopeResolver) TaskPartition(_ context.Context, id string) (string, error) {
	var p string
	ok := false
	r.view(func(s *fsm.State) {
		if t := s.Tasks[id]; t != nil {
			p, ok = t.Partition, true
		}
	})
	if !ok {
		return "", errs.Errorf(errs.NotFound, "task %s not found", id)
	}
	return p, nil
}

func (r scopeResolver) ChunkPartition(ctx context.Context, id string) (string, error) {
	cv, err := r.chunk(ctx, id)
	if err != nil {
		return "", err
	}
	return cv.Partition, nil
}
