package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// SubmitBatch implements transport.Backend: a bulk upload. Every file is
// stored without its own fsync, then one syncfs covers them all; the blobs
// go to the replicas in one request each; and the tasks enter the ledger in
// one command. Per-file problems (type, size, blank ID) fail that file only.
func (n *Node) SubmitBatch(ctx context.Context, partition string, meta map[string]any, body io.Reader) ([]transport.BatchResult, error) {
	if partition == "" {
		partition = "default"
	}
	if err := validPartition(partition); err != nil {
		return nil, err
	}
	if err := validMetadata(meta); err != nil {
		return nil, err
	}
	// The count of files is unknown before the stream is read: the batch is
	// admitted as one, so a cap is exceeded by at most one batch.
	if err := n.admit(partition, 1, 0); err != nil {
		return nil, err
	}
	type item struct {
		res   transport.BatchResult
		ref   fsm.FileRef
		task  *fsm.Task
		small []byte
	}
	large := false
	var items []*item
	var hashes []string
	seen := map[string]bool{}
	sizes := map[string]int64{}
	err := transport.ReadBatch(body, func(e transport.BatchEntry) error {
		it := &item{res: transport.BatchResult{FileID: e.FileID}}
		items = append(items, it)
		if err := validFileID(e.FileID); err != nil {
			failBatchItem(&it.res, err)
			return nil
		}
		br := bufio.NewReaderSize(e.Body, 4096)
		if err := n.checkType(e.FileName, br); err != nil {
			failBatchItem(&it.res, err)
			return nil
		}
		data, err := io.ReadAll(io.LimitReader(br, bulkSmall+1))
		if err != nil {
			return err
		}
		if len(data) <= bulkSmall {
			if n.cfg.MaxFileSize > 0 && int64(len(data)) > n.cfg.MaxFileSize {
				failBatchItem(&it.res, tooLarge(n.cfg.MaxFileSize))
				return nil
			}
			it.small = data
			it.ref = fsm.FileRef{Size: int64(len(data)), Name: e.FileName}
			return nil
		}
		hash, size, err := n.blobs.PutLargeNoSync(io.MultiReader(bytes.NewReader(data), br), n.cfg.MaxFileSize, "")
		if err != nil {
			if errs.KindOf(err) != nil {
				failBatchItem(&it.res, err) // this file's own fault (too large, bad hash): the others go on
				return nil
			}
			return err
		}
		large = true
		it.ref = fsm.FileRef{Hash: hash, Size: size, Name: e.FileName}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// One transaction for every small file of the batch.
	var smalls [][]byte
	var owners []*item
	for _, it := range items {
		if it.small != nil {
			smalls = append(smalls, it.small)
			owners = append(owners, it)
		}
	}
	if len(smalls) > 0 {
		hs, err := n.blobs.PutSmall(smalls, nil)
		if err != nil {
			n.noteDiskFault(err)
			return nil, err
		}
		for i, it := range owners {
			it.ref.Hash = hs[i]
			it.small = nil
		}
	}
	if large {
		if err := n.blobs.Sync(); err != nil {
			return nil, err
		}
	}
	for _, it := range items {
		if it.res.Error != "" || it.ref.Hash == "" {
			continue
		}
		if !seen[it.ref.Hash] {
			seen[it.ref.Hash] = true
			sizes[it.ref.Hash] = it.ref.Size
			hashes = append(hashes, it.ref.Hash)
		}
	}
	holders := []string{n.id}
	if len(hashes) > 0 {
		holders = n.replicateMany(ctx, hashes, n.cfg.Replicas-1)
	}
	now := time.Now().UnixNano()
	var cmds []fsm.Command
	for _, h := range hashes {
		cmds = append(cmds, fsm.Command{Type: fsm.CmdBlobHolders, Now: now, Blob: &fsm.Blob{Hash: h, Size: sizes[h], Holders: holders}})
	}
	var tasks []fsm.Task
	for _, it := range items {
		if it.res.Error != "" {
			continue
		}
		t := fsm.Task{ID: NewTaskID(), Partition: partition, FileID: it.res.FileID, File: it.ref, Metadata: meta,
			ReqMilli: n.cfg.TaskMilli, ReqMem: n.cfg.TaskMem}
		it.task = &t
		tasks = append(tasks, t)
	}
	if len(tasks) > 0 {
		cmds = append(cmds, fsm.Command{Type: fsm.CmdSubmitTasks, Now: now, Tasks: tasks})
		res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds})
		if err != nil {
			return nil, fmt.Errorf("bulk submit: %w", err)
		}
		sub := res.Batch[len(res.Batch)-1].Batch
		k := 0
		for _, it := range items {
			if it.task == nil {
				continue
			}
			// A duplicate of this request's own fresh ID is an earlier try of
			// the same proposal that was committed: the task is recorded.
			var err error
			if k < len(sub) {
				err = sub[k].Error()
			}
			if err != nil && !errors.Is(err, fsm.ErrDuplicate) {
				failBatchItem(&it.res, err)
			} else {
				t := *it.task
				t.State, t.Attempt, t.Submitted = fsm.Queued, 1, now
				tv := viewOf(&t)
				it.res.Task = &tv
			}
			k++
		}
	}
	out := make([]transport.BatchResult, len(items))
	for i, it := range items {
		out[i] = it.res
	}
	return out, nil
}

// replicateMany pushes a set of blobs to want peers, one streamed request
// per peer, and returns the holders (this node first).
func (n *Node) replicateMany(ctx context.Context, hashes []string, want int) []string {
	holders := []string{n.id}
	if want <= 0 {
		return holders
	}
	for _, pr := range n.peers.ranked(hashes[0]) {
		addr := pr.HTTP
		if want == 0 {
			break
		}
		files := make([]transport.BatchFile, 0, len(hashes))
		for _, h := range hashes {
			h := h
			rc, size, err := n.blobs.Open(h)
			if err != nil {
				n.log.Warn("replicate: open blob", "hash", h, "error", err)
				return holders
			}
			rc.Close()
			files = append(files, transport.BatchFile{FileID: h, FileName: h, Size: size,
				Open: func() (io.ReadCloser, error) { rc, _, err := n.blobs.Open(h); return rc, err }})
		}
		rd, wr := io.Pipe()
		go func() { wr.CloseWithError(transport.WriteBatch(wr, files)) }()
		cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		err := n.peers.client(addr).PutBlobs(cctx, rd)
		cancel()
		rd.Close()
		if err != nil {
			n.log.Warn("replicate blobs", "to", addr, "error", err)
			continue
		}
		holders = append(holders, pr.ID)
		want--
	}
	return holders
}

// bulkSmall is the size up to which a bulk entry is kept in memory and
// stored in the small-blob database.
const bulkSmall = smallBlob

// failBatchItem records one file's own failure; transport shows its kind
// as the item's status code.
func failBatchItem(r *transport.BatchResult, err error) {
	r.Error, r.Err = err.Error(), err
}
