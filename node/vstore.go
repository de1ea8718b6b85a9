package node

import (
	"context"
	"errors"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/milvus"
	"github.com/ragnode/ragnode/transport"
)

// chunkStore is the vector-store strategy, chosen once at start-up from
// --vdb: where a file's chunks live, and how a write, a change or a search
// reaches every copy. Nothing else in node asks which store is configured.
type chunkStore interface {
	// WriteFile stores a file's records (upsert, then trim beyond them) and
	// returns the nodes now holding them; nil when one shared store holds
	// every file.
	WriteFile(ctx context.Context, w indexer.Write) ([]string, error)
	// Search answers a query over every copy; duplicates are possible and
	// the caller keeps the best of each chunk.
	Search(ctx context.Context, q store.Query) ([]store.Hit, error)
	// UpdateMetadata, DeleteFile and DeletePartition change every copy, best
	// effort: search filters by the ledger, and the janitor repairs copies
	// on nodes that were down.
	UpdateMetadata(ctx context.Context, partition, fileID string, meta map[string]any)
	DeleteFile(ctx context.Context, partition, fileID string)
	DeletePartition(ctx context.Context, partition string)
	// copies returns this node's own copy store when chunk copies are kept
	// per node (and so tracked in the ledger, repaired, handed off and
	// garbage-collected), or nil for a shared store.
	copies() *store.Local
}

// sharedChunks is a store every node reaches (Milvus): one write, one
// search, no copies to track.
type sharedChunks struct {
	st  store.Store
	log hclog.Logger
}

// fencedReplacer is a shared store whose keys it assigns itself (Milvus in
// the ragondin and openrag profiles): a file's write must replace its rows
// in one fenced step, since an upsert cannot overwrite them.
type fencedReplacer interface {
	ReplaceFile(ctx context.Context, partition, fileID string, f milvus.Fence, recs []store.Record) error
}

func (s sharedChunks) WriteFile(ctx context.Context, w indexer.Write) ([]string, error) {
	if fr, ok := s.st.(fencedReplacer); ok {
		// A write without a task (a copy between partitions) has the zero
		// fence, the oldest: it never removes a task's rows, and loses to
		// them.
		if p, ok := s.st.(interface{ Profile() milvus.Profile }); ok && p.Profile() != milvus.ProfileRagnode {
			ragondinKeys(w)
		}
		f := milvus.Fence{Task: w.Fence.Task, Seq: w.Fence.Seq, Attempt: w.Fence.Attempt}
		return nil, fr.ReplaceFile(ctx, w.Partition, w.FileID, f, w.Records)
	}
	_, err := indexer.StoreSink{Store: s.st}.WriteFile(ctx, w)
	return nil, err
}

// ragondinKeys adds the file keys RAGondin's indexer puts on every chunk
// (source, file_size in bytes, created_at in ISO 8601) where the upload's
// own metadata did not set them.
func ragondinKeys(w indexer.Write) {
	recs := w.Records
	set := map[string]any{"source": w.Source, "file_size": w.Size}
	if w.Submitted > 0 {
		set["created_at"] = time.Unix(0, w.Submitted).UTC().Format(time.RFC3339)
	}
	for i := range recs {
		if recs[i].Metadata == nil {
			recs[i].Metadata = map[string]any{}
		}
		for k, v := range set {
			if _, ok := recs[i].Metadata[k]; !ok {
				recs[i].Metadata[k] = v
			}
		}
	}
}

func (s sharedChunks) Search(ctx context.Context, q store.Query) ([]store.Hit, error) {
	return s.st.Search(ctx, q)
}

func (s sharedChunks) UpdateMetadata(ctx context.Context, partition, fileID string, meta map[string]any) {
	s.warn(s.st.UpdateMetadata(ctx, partition, fileID, meta))
}

func (s sharedChunks) DeleteFile(ctx context.Context, partition, fileID string) {
	s.warn(s.st.DeleteFile(ctx, partition, fileID))
}

func (s sharedChunks) DeletePartition(ctx context.Context, partition string) {
	s.warn(s.st.DeletePartition(ctx, partition))
}

func (s sharedChunks) copies() *store.Local { return nil }

func (s sharedChunks) warn(err error) {
	if err != nil {
		s.log.Warn("store update", "error", err)
	}
}

// replicatedChunks keeps each file's chunks in the local stores of
// --chunk-replicas nodes (this one first), searches by fan-out to every
// alive node, and applies changes on every alive node.
type replicatedChunks struct {
	n     *Node
	local *store.Local
}

func (r replicatedChunks) WriteFile(ctx context.Context, w indexer.Write) ([]string, error) {
	if _, err := (indexer.StoreSink{Store: r.local}).WriteFile(ctx, w); err != nil {
		return nil, err
	}
	holders := []string{r.n.id}
	return append(holders, r.n.pushChunks(ctx, w.Partition, w.FileID, w.Records, r.n.cfg.Indexer.ChunkReplicas-1, holders)...), nil
}

// Search over copies on many nodes. A hybrid query is fused here, not on
// each node: every node's own fusion gives its best chunk the same rank
// score, so merging fused lists across nodes would order by accident.
// Instead each ranking (dense cosine, BM25) is gathered cluster-wide, each
// chunk keeping its best score, and the two rankings are fused once.
func (r replicatedChunks) Search(ctx context.Context, q store.Query) ([]store.Hit, error) {
	mode, err := q.Resolve()
	if err != nil {
		return nil, err
	}
	if mode != store.ModeHybrid {
		return r.gather(ctx, q)
	}
	depth := q.Depth
	if depth <= 0 {
		depth = max(4*q.TopK, 50)
	}
	var lists [][]store.Hit
	for _, m := range []store.Mode{store.ModeDense, store.ModeBM25} {
		sub := q
		sub.Mode, sub.TopK = m, depth
		hs, err := r.gather(ctx, sub)
		if err != nil {
			return nil, err
		}
		lists = append(lists, bestFirst(hs))
	}
	return store.FuseHits(lists, q.RRFK, q.TopK), nil
}

// bestFirst keeps each chunk's best-scored copy, best first.
func bestFirst(hs []store.Hit) []store.Hit {
	best := map[string]store.Hit{}
	for _, h := range hs {
		if b, ok := best[h.ID]; !ok || h.Score > b.Score {
			best[h.ID] = h
		}
	}
	out := make([]store.Hit, 0, len(best))
	for _, h := range best {
		out = append(out, h)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// gather asks this node and every alive peer whose index is loaded, and
// returns all their hits. When none could answer because this node's own
// index is still loading (a one-node cluster after a restart), that is the
// answer, not an empty result.
func (r replicatedChunks) gather(ctx context.Context, q store.Query) ([]store.Hit, error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	all, localErr := r.local.Search(ctx, q)
	if localErr != nil && !errors.Is(localErr, store.ErrIndexLoading) {
		r.n.log.Warn("local search", "error", localErr)
	}
	answered := 0
	for _, p := range r.n.peers.searchable() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			hs, err := r.n.peers.client(p.HTTP).LocalSearch(cctx, q)
			if err != nil {
				r.n.log.Warn("search fan-out", "node", p.HTTP, "error", err)
				return
			}
			mu.Lock()
			all = append(all, hs...)
			answered++
			mu.Unlock()
		}()
	}
	wg.Wait()
	if errors.Is(localErr, store.ErrIndexLoading) && answered == 0 {
		return nil, errs.Errorf(errs.Unavailable, "%v", localErr)
	}
	return all, nil
}

func (r replicatedChunks) UpdateMetadata(ctx context.Context, partition, fileID string, meta map[string]any) {
	m := transport.ChunkMetadata{Partition: partition, FileID: fileID, Metadata: meta}
	r.everywhere(ctx, func(ctx context.Context, c *transport.Client) error { return c.ChunkMetadata(ctx, m) },
		func(ctx context.Context) error { return r.local.UpdateMetadata(ctx, partition, fileID, meta) })
}

func (r replicatedChunks) DeleteFile(ctx context.Context, partition, fileID string) {
	d := transport.ChunkDelete{Partition: partition, FileID: fileID}
	r.everywhere(ctx, func(ctx context.Context, c *transport.Client) error { return c.ChunkDelete(ctx, d) },
		func(ctx context.Context) error { return r.local.DeleteFile(ctx, partition, fileID) })
}

func (r replicatedChunks) DeletePartition(ctx context.Context, partition string) {
	d := transport.ChunkDelete{Partition: partition}
	r.everywhere(ctx, func(ctx context.Context, c *transport.Client) error { return c.ChunkDelete(ctx, d) },
		func(ctx context.Context) error { return r.local.DeletePartition(ctx, partition) })
}

func (r replicatedChunks) copies() *store.Local { return r.local }

// everywhere applies a change locally and on every alive peer at once.
func (r replicatedChunks) everywhere(ctx context.Context, peer func(context.Context, *transport.Client) error, local func(context.Context) error) {
	var wg sync.WaitGroup
	for _, p := range r.n.peers.alive() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := peer(cctx, r.n.peers.client(p.HTTP)); err != nil {
				r.n.log.Warn("store update on peer", "peer", p.HTTP, "error", err)
			}
		}()
	}
	if err := local(ctx); err != nil {
		r.n.log.Warn("store update", "error", err)
	}
	wg.Wait()
}
