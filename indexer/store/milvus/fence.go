package milvus

import (
	"context"
	"errors"
	"fmt"

	"github.com/ragnode/ragnode/indexer/store"
)

// Fence names the task attempt a write belongs to.
type Fence struct {
	Task    string
	Attempt int
}

// ReplaceFile makes recs the file's only rows, fenced by f, in one step of
// three Milvus calls:
//
//  1. insert recs tagged with f and a write ID unique to this call;
//  2. delete the file's rows of any other write, except rows of the same
//     task at a later attempt (a newer attempt's rows are never removed
//     by a stale one);
//  3. if rows of the same task at a later attempt exist, delete this
//     call's own rows: a stale attempt that wrote last does not stay.
//
// Whatever the interleaving of two attempts of a task, once both calls
// return only the later attempt's rows remain: the earlier one's rows are
// removed by the later one's step 2 when they were inserted before it, and
// by the earlier one's own step 3 otherwise (the later attempt inserted
// before that check, which reads with Strong consistency). Between tasks,
// the ledger orders a file's tasks; the last writer's step 2 removes the
// others.
//
// The window: between step 1 and step 2 of a call a reader can see both
// the old and the new rows of the file (a search may return a chunk twice,
// ChunkIDs lists it once). It closes when step 2 returns; if the call
// fails between the steps, the next write of the file (the task's retry)
// closes it. Nothing is ever invisible: the new rows exist before the old
// ones go.
//
// In the ragnode profile the deterministic keys make the same guarantee
// with an upsert and a trim, and f is not stored.
func (s *Store) ReplaceFile(ctx context.Context, partition, fileID string, f Fence, recs []store.Record) error {
	if partition == "" || fileID == "" {
		return errors.New("milvus: replace needs a partition and a file ID")
	}
	for i := range recs {
		if recs[i].Partition != partition || recs[i].FileID != fileID {
			return fmt.Errorf("milvus: record %s belongs to %s/%s, not %s/%s", recs[i].ID, recs[i].Partition, recs[i].FileID, partition, fileID)
		}
	}
	if !s.prof.upstream() {
		if err := s.Upsert(ctx, recs); err != nil {
			return err
		}
		return s.DeleteFileFrom(ctx, partition, fileID, len(recs))
	}
	rows, err := s.dedupe(recs)
	if err != nil {
		return err
	}
	tag := fenceTag{task: f.Task, attempt: f.Attempt, write: newWriteID()}
	if err := s.insert(ctx, rows, tag); err != nil {
		return err
	}
	file := fileExpr(partition, fileID)
	later := and(eq(kTask, f.Task), fmt.Sprintf("%s > %d", kAttempt, f.Attempt))
	if err := s.delete(ctx, and(file, fWriteNot(tag.write), "not ("+later+")")); err != nil {
		return err
	}
	newer, err := s.exists(ctx, and(file, later))
	if err != nil {
		return err
	}
	if newer {
		return s.delete(ctx, and(file, eq(kWrite, tag.write)))
	}
	return nil
}
