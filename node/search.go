package node

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/filter"
	"github.com/ragnode/ragnode/transport"
)

// LocalSearch implements transport.Backend: search this node's store only.
func (n *Node) LocalSearch(ctx context.Context, q store.Query) ([]store.Hit, error) {
	if q.Expr != "" && q.Where == nil {
		// From a peer: its filter, compiled against this node's ledger.
		e, err := parseFilter(q.Expr)
		if err != nil {
			return nil, err
		}
		if q.Where, err = n.fileMatcher(n.filterBudget(ctx), e); err != nil {
			return nil, err
		}
	}
	hits, err := n.store.Search(ctx, q)
	if errors.Is(err, store.ErrIndexLoading) {
		// 503: the caller asks another node (indexload.go).
		return nil, errs.Errorf(errs.Unavailable, "%v", err)
	}
	return hits, err
}

// LocalChunkIDs implements transport.Backend.
func (n *Node) LocalChunkIDs(ctx context.Context, partition, fileID string) ([]string, error) {
	return n.store.ChunkIDs(ctx, partition, fileID)
}

// Search implements transport.Backend and CompatBackend. With the local
// store it fans out to every alive node and merges; either way the ledger
// has the last word: only chunks of the file's live version are returned,
// with the file's current metadata.
func (n *Node) Search(ctx context.Context, req transport.SearchRequest) ([]transport.Hit, error) {
	if strings.TrimSpace(req.Text) == "" {
		return nil, errs.Errorf(errs.Invalid, "search text is empty")
	}
	if req.TopK < 0 {
		return nil, errs.Errorf(errs.Invalid, "top_k is %d; want 1 to %d (0 or absent: 5)", req.TopK, maxTopK)
	}
	if req.TopK == 0 {
		req.TopK = 5
	}
	if req.TopK > maxTopK {
		return nil, errs.Errorf(errs.Invalid, "top_k is %d; at most %d", req.TopK, maxTopK)
	}
	vecs, err := n.emb.Embed(ctx, []string{req.Text})
	if err != nil {
		return nil, fmt.Errorf("embed query: %w", err)
	}
	fetch := req.TopK * 3
	if len(req.Filter) > 0 || req.Expr != "" {
		fetch = req.TopK * 10
	}
	q := store.Query{Vector: vecs[0], Text: req.Text, Mode: store.Mode(req.Mode), RRFK: n.cfg.Indexer.RRFK, Partitions: req.Partitions, TopK: fetch}
	var (
		expr   *filter.Expr
		budget *filter.Budget
	)
	if req.Expr != "" {
		if expr, err = parseFilter(req.Expr); err != nil {
			return nil, err
		}
		budget = n.filterBudget(ctx)
		if q.Where, err = n.fileMatcher(budget, expr); err != nil {
			return nil, err
		}
		q.Expr = req.Expr
	}
	if _, err := q.Resolve(); err != nil {
		return nil, errs.Wrap(errs.Invalid, err)
	}
	hits, err := n.chunks.Search(ctx, q)
	if err != nil {
		return nil, err
	}
	return n.filterHits(hits, req, expr, budget)
}

func (n *Node) filterHits(hits []store.Hit, req transport.SearchRequest, expr *filter.Expr, b *filter.Budget) ([]transport.Hit, error) {
	var (
		out []transport.Hit
		err error
	)
	n.fsm.View(func(s *fsm.State) { out, err = liveHitsWhere(s, hits, req, expr, b) })
	if err != nil {
		return nil, filterError(err)
	}
	return out, nil
}

// liveHits keeps the best copy of each chunk, drops chunks that are not of
// their file's live version (a stale copy, a deleted file, a trimmed index),
// answers with the file's current ledger metadata, applies the metadata
// filter, and returns the TopK best.
func liveHits(s *fsm.State, hits []store.Hit, req transport.SearchRequest) []transport.Hit {
	out, _ := liveHitsWhere(s, hits, req, nil, nil) // without an expression nothing can fail
	return out
}

// liveHitsWhere is liveHits that also keeps only hits whose file matches
// expr (when set), spending from b; it fails only when b runs out or its
// context ends.
func liveHitsWhere(s *fsm.State, hits []store.Hit, req transport.SearchRequest, expr *filter.Expr, b *filter.Budget) ([]transport.Hit, error) {
	best := map[string]store.Hit{}
	for _, h := range hits {
		if b, ok := best[h.ID]; !ok || h.Score > b.Score {
			best[h.ID] = h
		}
	}
	var out []transport.Hit
	for _, h := range best {
		f := s.Files[fsm.FileKey(h.Partition, h.FileID)]
		if f == nil || f.LiveTask == "" || h.Index >= f.LiveChunks {
			continue
		}
		if task, _ := h.Metadata[indexer.MetaTask].(string); task != f.LiveTask {
			continue
		}
		meta := map[string]any{}
		for k, v := range f.Metadata {
			meta[k] = v
		}
		meta["filename"], meta["partition"], meta["file_id"] = f.Ref.Name, f.Partition, f.FileID
		if !metaMatches(meta, req.Filter) {
			continue
		}
		if expr != nil {
			m, err := expr.EvalBudget(b, fileFields(meta))
			if err != nil {
				return nil, err
			}
			if !m {
				continue
			}
		}
		out = append(out, transport.Hit{Score: h.Score, ChunkID: h.ID, Partition: h.Partition, FileID: h.FileID,
			FileName: f.Ref.Name, Page: h.Page, Index: h.Index, Headings: h.Headings, Text: h.Text, Metadata: meta,
			FileSize: f.Ref.Size, Created: versionTime(s, f.LiveTask, f)})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Score != out[j].Score {
			return out[i].Score > out[j].Score
		}
		return out[i].ChunkID < out[j].ChunkID
	})
	if len(out) > req.TopK {
		out = out[:req.TopK]
	}
	return out, nil
}

func metaMatches(meta map[string]any, filter map[string]string) bool {
	for k, v := range filter {
		got, ok := meta[k]
		if !ok || fmt.Sprint(got) != v {
			return false
		}
	}
	return true
}
