package node

import (
	"context"
	"sync"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/loader"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/transport"
)

// Read views the RAGondin-compatible API needs beyond search: a chunk by
// ID (/extract/{id}) and a file's chunks (/partition/{p}/file/{id},
// /partition/{p}/chunks). Stores give the bytes; the ledger decides what is
// live, as liveHits does for search: a chunk counts only when its file is
// in the ledger, it was written by the file's live task, and its index is
// below the live chunk count.

// recordReader is what a store offers for reads by ID and by file; Local
// and the Milvus store have it.
type recordReader interface {
	Record(ctx context.Context, id string) (store.Record, bool, error)
	FileRecords(ctx context.Context, partition, fileID string) ([]store.Record, error)
}

// CompatInfo implements transport.CompatBackend.
func (n *Node) CompatInfo() transport.CompatInfo {
	exts := loader.Extensions()
	if n.pipe != nil {
		exts = n.pipe.SupportedExtensions()
	}
	ci := transport.CompatInfo{Version: Version, Extensions: exts, MimeTypes: loader.MIMETypes()}
	if n.emb != nil {
		ci.Dimension = n.emb.Dim()
	}
	return ci
}

// LocalChunkRecords implements transport.Backend.
func (n *Node) LocalChunkRecords(ctx context.Context, id, partition, fileID string) ([]store.Record, error) {
	rr, ok := n.store.(recordReader)
	if !ok {
		return nil, errs.New(errs.Unsupported, "this node's store cannot read chunks back")
	}
	if id != "" {
		rec, found, err := rr.Record(ctx, id)
		if err != nil || !found {
			return nil, err
		}
		return []store.Record{rec}, nil
	}
	return rr.FileRecords(ctx, partition, fileID)
}

// versionTime is when the file version written by task was submitted; the
// file's last change when the ledger no longer holds that task.
func versionTime(s *fsm.State, task string, f *fsm.File) int64 {
	if t := s.Tasks[task]; t != nil && t.Submitted > 0 {
		return t.Submitted
	}
	return f.Updated
}

// liveFile is what the ledger says a file's live version is.
type liveFile struct {
	file    *fsm.File
	task    string
	chunks  int
	created int64    // the live version's submission
	holders []string // alive chunk holders (local store only)
}

func (n *Node) liveFile(partition, fileID string) (liveFile, bool) {
	var lf liveFile
	ok := false
	n.fsm.View(func(s *fsm.State) {
		f := s.Files[fsm.FileKey(partition, fileID)]
		if f == nil {
			return
		}
		c := *f
		c.Metadata = make(map[string]any, len(f.Metadata))
		for k, v := range f.Metadata {
			c.Metadata[k] = v
		}
		lf = liveFile{file: &c, task: f.LiveTask, chunks: f.LiveChunks, created: versionTime(s, f.LiveTask, f)}
		for _, h := range f.ChunkHolders {
			if nd := s.Nodes[h]; nd != nil && nd.Status == fsm.NodeAlive {
				lf.holders = append(lf.holders, h)
			}
		}
		ok = true
	})
	return lf, ok
}

func (lf liveFile) accepts(r store.Record) bool {
	task, _ := r.Metadata[indexer.MetaTask].(string)
	return lf.task != "" && task == lf.task && r.Index >= 0 && r.Index < lf.chunks
}

func (lf liveFile) view(r store.Record, vectors bool) transport.ChunkView {
	cv := transport.ChunkView{ID: r.ID, Partition: r.Partition, FileID: r.FileID, FileName: lf.file.Ref.Name,
		Index: r.Index, Page: r.Page, Headings: r.Headings, Text: r.Text, Metadata: lf.file.Metadata,
		FileSize: lf.file.Ref.Size, Created: lf.created}
	if vectors {
		cv.Vector = r.Vector
	}
	return cv
}

// liveRecords keeps a file's live records, one per index, in index order,
// and reports whether every live index is there.
func (lf liveFile) liveRecords(recs []store.Record) ([]store.Record, bool) {
	byIdx := make(map[int]store.Record, len(recs))
	for _, r := range recs {
		if lf.accepts(r) {
			byIdx[r.Index] = r
		}
	}
	out := make([]store.Record, 0, len(byIdx))
	for i := range lf.chunks {
		if r, ok := byIdx[i]; ok {
			out = append(out, r)
		}
	}
	return out, len(out) == lf.chunks
}

// FileChunks implements transport.CompatBackend. With the local store the
// file's copies are read from this node when it holds a complete live one,
// else from its holders, else from any alive node; the most complete live
// set found is returned.
func (n *Node) FileChunks(ctx context.Context, partition, fileID string, vectors bool) ([]transport.ChunkView, error) {
	lf, ok := n.liveFile(partition, fileID)
	if !ok {
		return nil, errs.Errorf(errs.NotFound, "file %s not found in partition %s", fileID, partition)
	}
	if lf.task == "" || lf.chunks == 0 {
		return []transport.ChunkView{}, nil
	}
	best, _ := n.liveRecordsOf(ctx, lf, partition, fileID)
	out := make([]transport.ChunkView, 0, len(best))
	for _, r := range best {
		out = append(out, lf.view(r, vectors))
	}
	return out, nil
}

// Chunk implements transport.CompatBackend: this node's store first, then,
// with the local store, every alive node at once; the first live copy
// wins.
func (n *Node) Chunk(ctx context.Context, id string) (transport.ChunkView, error) {
	notFound := errs.Errorf(errs.NotFound, "chunk %s not found", id)
	if id == "" {
		return transport.ChunkView{}, notFound
	}
	check := func(r store.Record) (transport.ChunkView, bool) {
		if r.ID != id {
			return transport.ChunkView{}, false
		}
		lf, ok := n.liveFile(r.Partition, r.FileID)
		if !ok || !lf.accepts(r) {
			return transport.ChunkView{}, false
		}
		return lf.view(r, false), true
	}
	if rr, ok := n.store.(recordReader); ok {
		rec, found, err := rr.Record(ctx, id)
		if err != nil {
			n.log.Warn("read chunk", "chunk", id, "error", err)
		}
		if found {
			if cv, ok := check(rec); ok {
				return cv, nil
			}
		}
	}
	if n.chunks.copies() == nil {
		return transport.ChunkView{}, notFound
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var (
		mu    sync.Mutex
		wg    sync.WaitGroup
		found *transport.ChunkView
	)
	for _, p := range n.peers.alive() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			recs, err := n.peers.client(p.HTTP).ChunkRecords(cctx, id, "", "")
			if err != nil {
				n.log.Warn("read chunk from peer", "peer", p.HTTP, "error", err)
				return
			}
			for _, r := range recs {
				if cv, ok := check(r); ok {
					mu.Lock()
					if found == nil {
						found = &cv
						cancel() // the others need not finish
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if found == nil {
		return transport.ChunkView{}, notFound
	}
	return *found, nil
}

// liveRecordsOf reads the live records of a file: this node's store, then
// (local store) its holders, then every alive node, until one copy is
// complete; else the largest partial set, complete false.
func (n *Node) liveRecordsOf(ctx context.Context, lf liveFile, partition, fileID string) ([]store.Record, bool) {
	var best []store.Record
	try := func(recs []store.Record) bool {
		live, complete := lf.liveRecords(recs)
		if len(live) > len(best) {
			best = live
		}
		return complete
	}
	done := false
	if rr, ok := n.store.(recordReader); ok {
		recs, err := rr.FileRecords(ctx, partition, fileID)
		if err != nil {
			n.log.Warn("read file chunks", "file", fileID, "error", err)
		}
		done = try(recs)
	}
	if !done && n.chunks.copies() != nil {
		tried := map[string]bool{n.id: true}
		var order []string
		for _, h := range lf.holders {
			if !tried[h] {
				tried[h] = true
				order = append(order, h)
			}
		}
		for _, p := range n.peers.alive() {
			if !tried[p.ID] {
				tried[p.ID] = true
				order = append(order, p.ID)
			}
		}
		for _, id := range order {
			addr := n.peers.addrOf(id)
			if addr == "" {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			recs, err := n.peers.client(addr).ChunkRecords(cctx, "", partition, fileID)
			cancel()
			if err != nil {
				n.log.Warn("read file chunks from peer", "peer", addr, "error", err)
				continue
			}
			if try(recs) {
				break
			}
		}
	}
	return best, len(best) == lf.chunks
}
