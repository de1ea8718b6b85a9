package node

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
)

// Copies and moves of indexed files without embedding again: the source's
// live chunks (vectors included) are read from a store that holds them,
// rewritten under the target's partition, file ID and a new task, written
// like a finished task's chunks, and then the ledger records the new
// version as completed (fsm/copy.go). If the ledger refuses (the target
// appeared, the source changed) the written chunks are not live: search
// and the chunk routes follow the ledger, and the janitor drops them.

// CopyFile implements transport.CompatBackend.
func (n *Node) CopyFile(ctx context.Context, srcPartition, srcFileID, partition, fileID string, meta map[string]any) error {
	return n.copyFile(ctx, srcPartition, srcFileID, partition, fileID, meta, false)
}

// moveFile is PATCH with a "partition" key: the file goes to that
// partition under the same ID, with the rest of the patch merged.
func (n *Node) moveFile(ctx context.Context, partition, fileID, target string, meta map[string]any) error {
	return n.copyFile(ctx, partition, fileID, target, fileID, meta, true)
}

func (n *Node) copyFile(ctx context.Context, srcPartition, srcFileID, partition, fileID string, meta map[string]any, move bool) error {
	for _, err := range []error{validPartition(srcPartition), validFileID(srcFileID), validPartition(partition),
		validFileID(fileID), validMetadata(meta)} {
		if err != nil {
			return err
		}
	}
	what := "copy"
	if move {
		what = "move"
	}
	lf, ok := n.liveFile(srcPartition, srcFileID)
	if !ok {
		return errs.Errorf(errs.NotFound, "file %s not found in partition %s", srcFileID, srcPartition)
	}
	if _, exists := n.liveFile(partition, fileID); exists {
		return fmt.Errorf("%s to %s/%s: %w", what, partition, fileID, fsm.ErrFileExists)
	}
	if lf.task == "" {
		return errs.Errorf(errs.Conflict, "file %s in partition %s has no indexed version to %s yet", srcFileID, srcPartition, what)
	}
	recs, complete := n.liveRecordsOf(ctx, lf, srcPartition, srcFileID)
	if !complete {
		return errs.Errorf(errs.Unavailable, "%s %s: %d of its %d chunks are reachable now", what, srcFileID, len(recs), lf.chunks)
	}
	merged := maps.Clone(lf.file.Metadata)
	if merged == nil {
		merged = map[string]any{}
	}
	for k, v := range meta {
		if v == nil {
			delete(merged, k)
			continue
		}
		merged[k] = v
	}
	if err := validMetadata(merged); err != nil {
		return err
	}
	taskID := NewTaskID()
	out := make([]store.Record, len(recs))
	for i, r := range recs {
		m := make(map[string]any, len(merged)+2)
		maps.Copy(m, merged)
		m["filename"] = lf.file.Ref.Name
		m[indexer.MetaTask] = taskID
		out[i] = store.Record{ID: store.ChunkID(partition, fileID, r.Index), Partition: partition, FileID: fileID,
			Index: r.Index, Text: r.Text, Page: r.Page, Headings: r.Headings, Vector: r.Vector, Metadata: m}
	}
	holders, err := n.chunks.WriteFile(ctx, indexer.Write{Partition: partition, FileID: fileID, Records: out})
	if err != nil {
		return fmt.Errorf("%s %s: write chunks: %w", what, srcFileID, err)
	}
	if len(merged) == 0 {
		merged = nil
	}
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdCopyFile, Now: time.Now().UnixNano(), Partition: srcPartition,
		FileID: srcFileID, TaskID: lf.task, Move: move, ChunkHolders: holders,
		Tasks: []fsm.Task{{ID: taskID, Partition: partition, FileID: fileID, Metadata: merged, Chunks: len(out)}}})
	if err != nil {
		return fmt.Errorf("%s %s: %w", what, srcFileID, err)
	}
	if err := res.Error(); err != nil {
		return fmt.Errorf("%s %s: %w", what, srcFileID, err)
	}
	if move {
		n.chunks.DeleteFile(ctx, srcPartition, srcFileID)
	}
	return nil
}
