package milvus

import (
	"context"
	"errors"
	"fmt"

	"github.com/ragnode/ragnode/indexer/store"
)

// Fence names the task attempt a write belongs to. Writes are ordered by
// (Seq, Attempt): the ledger's task sequence number (a file's later task
// has a larger one) and the task's attempt (a retry has a larger one).
type Fence struct {
	Task    string
	Seq     uint64
	Attempt int
}

// ReplaceFile makes recs the file's only rows, fenced by f, in one step of
// three Milvus calls:
//
//  1. insert recs tagged with f and a write ID unique to this call;
//  2. delete the file's rows of any other write, except rows of a later
//     write by (Seq, Attempt) (a stale attempt never removes a newer
//     one's rows);
//  3. if rows of a later write exist, delete this call's own rows: a
//     stale attempt that wrote last does not stay.
//
// Whatever the interleaving of two writes, once both calls return only the
// later one's rows remain: the earlier one's rows are removed by the later
// one's step 2 when they were inserted before it, and by the earlier one's
// own step 3 otherwise (the later write inserted before that check, which
// reads with Strong consistency). Two writes of the same (Seq, Attempt)
// (a write repeated within one attempt) leave the last one's rows.
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
	tag := fenceTag{task: f.Task, seq: f.Seq, attempt: f.Attempt, write: newWriteID()}
	if err := s.insert(ctx, rows, tag, nil); err != nil {
		return err
	}
	file := fileExpr(partition, fileID)
	later := fmt.Sprintf("%s > %d or (%s == %d and %s > %d)", kSeq, f.Seq, kSeq, f.Seq, kAttempt, f.Attempt)
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
