package milvus

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"

	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"

	"github.com/ragnode/ragnode/indexer/store"
)

// Search returns the TopK best chunks. Hits carry no vector. In the
// upstream profiles every mode runs in Milvus with upstream's parameters:
// dense on this embedder's field (COSINE, ef 64), bm25 on the BM25
// function's sparse output with the raw query text (drop_ratio_build
// 0.2), and hybrid through Milvus's hybrid search, each leg TopK deep
// (q.Depth if set), fused by its RRF ranker (k = q.RRFK, else
// Config.RRFK, default 100). The ragnode profile has no BM25 field: it
// answers dense, and a bm25 query is a *store.QueryError.
func (s *Store) Search(ctx context.Context, q store.Query) ([]store.Hit, error) {
	mode, err := q.Resolve()
	if err != nil {
		return nil, err
	}
	if !s.prof.upstream() {
		if mode == store.ModeBM25 {
			return nil, &store.QueryError{Mode: mode, Reason: "the Milvus collection has no BM25 field (schema profile ragnode; use ragondin or openrag)"}
		}
		mode = store.ModeDense
	}
	if mode != store.ModeBM25 && len(q.Vector) != s.dim {
		return nil, fmt.Errorf("milvus: query has dimension %d, collection %s has dimension %d", len(q.Vector), s.coll, s.dim)
	}
	k := q.TopK
	if k <= 0 {
		k = store.DefaultTopK
	}
	expr, err := s.searchExpr(q.Partitions, q.Filter)
	if err != nil {
		return nil, err
	}
	if q.Expr != "" {
		// The user's expression, as written (the node parsed it first, so
		// its parentheses balance): Milvus evaluates its own language.
		expr = and(expr, q.Expr)
	}
	dense := func(limit int) *milvusclient.AnnRequest {
		return milvusclient.NewAnnRequest(s.vfield, limit, entity.FloatVector(q.Vector)).
			WithAnnParam(denseParam(limit)).WithFilter(expr).WithSearchParam("metric_type", "COSINE")
	}
	sparse := func(limit int) *milvusclient.AnnRequest {
		return milvusclient.NewAnnRequest(fSparse, limit, entity.Text(q.Text)).
			WithAnnParam(bm25Param).WithFilter(expr).WithSearchParam("metric_type", "BM25")
	}
	var res []milvusclient.ResultSet
	switch mode {
	case store.ModeDense, store.ModeBM25:
		field, vec, metric := s.vfield, entity.Vector(entity.FloatVector(q.Vector)), "COSINE"
		var ap index.AnnParam = denseParam(k)
		if mode == store.ModeBM25 {
			field, vec, metric, ap = fSparse, entity.Text(q.Text), "BM25", bm25Param
		}
		opt := milvusclient.NewSearchOption(s.coll, k, []entity.Vector{vec}).WithANNSField(field).
			WithFilter(expr).WithOutputFields(s.outputFields(false)...).WithAnnParam(ap).WithSearchParam("metric_type", metric)
		res, err = s.c.Search(ctx, opt)
	case store.ModeHybrid:
		// Upstream's _hybrid_search asks each leg for top_k and fuses
		// with RRFRanker(100); a query's own depth overrides the first.
		depth := q.Depth
		if depth <= 0 {
			depth = k
		}
		rrfk := q.RRFK
		if rrfk <= 0 {
			rrfk = s.rrfk
		}
		opt := milvusclient.NewHybridSearchOption(s.coll, k, dense(depth), sparse(depth)).
			WithReranker(milvusclient.NewRRFReranker().WithK(float64(rrfk))).WithOutputFields(s.outputFields(false)...)
		res, err = s.c.HybridSearch(ctx, opt)
	}
	if err != nil {
		return nil, fmt.Errorf("milvus: %s search %s where %s: %w", mode, s.coll, expr, err)
	}
	hits := []store.Hit{}
	if len(res) == 0 {
		return hits, nil
	}
	if res[0].Err != nil {
		return nil, fmt.Errorf("milvus: search %s: %w", s.coll, res[0].Err)
	}
	rows, err := s.decode(res[0], false)
	if err != nil {
		return nil, fmt.Errorf("milvus: search %s: %w", s.coll, err)
	}
	if len(rows) != len(res[0].Scores) {
		return nil, fmt.Errorf("milvus: search %s: %d rows for %d scores", s.coll, len(rows), len(res[0].Scores))
	}
	seen := map[string]bool{}
	for i, r := range rows {
		// A replacement caught between its insert and its delete shows a
		// chunk twice; the first (best) copy is kept.
		if seen[r.ID] {
			continue
		}
		seen[r.ID] = true
		hits = append(hits, store.Hit{Record: r.Record, Score: res[0].Scores[i]})
	}
	// Milvus already ranks; the stable sort only makes ties deterministic.
	sort.SliceStable(hits, func(a, b int) bool {
		if hits[a].Score != hits[b].Score {
			return hits[a].Score > hits[b].Score
		}
		return hits[a].ID < hits[b].ID
	})
	return hits, nil
}

// annParams is a search's "params" object as given.
type annParams map[string]any

func (p annParams) Params() map[string]any { return p }

// bm25Param is upstream's DEFAULT_BM25_SEARCH_PARAMS params.
var bm25Param = annParams{"drop_ratio_build": dropRatioBuild}

// denseParam is upstream's dense params (ef 64), raised to the limit
// where a search asks for more hits than that: HNSW refuses ef < limit.
func denseParam(limit int) index.AnnParam { return annParams{"ef": max(denseEF, limit)} }

// identifier is what a metadata key must look like to be a dynamic-field
// name in an expression.
var identifier = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

func (s *Store) searchExpr(partitions []string, filter map[string]string) (string, error) {
	var conds []string
	if len(partitions) > 0 {
		conds = append(conds, inList(fPartition, partitions))
	}
	keys := make([]string, 0, len(filter))
	for k := range filter {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic expressions are easier to debug
	for _, k := range keys {
		if !s.prof.upstream() {
			conds = append(conds, fMetadata+"["+quote(k)+"] == "+quote(filter[k]))
			continue
		}
		if !identifier.MatchString(k) || reservedKeys[k] {
			return "", &store.QueryError{Mode: store.ModeAuto, Reason: "filter key " + strconv.Quote(k) + " is not a metadata field name"}
		}
		// RAGondin's metadata keys are top-level dynamic fields.
		conds = append(conds, k+" == "+quote(filter[k]))
	}
	return and(conds...), nil
}

// exists reports whether any row matches expr (Strong consistency).
func (s *Store) exists(ctx context.Context, expr string) (bool, error) {
	field := fID
	if s.prof.upstream() {
		field = fPK
	}
	rs, err := s.c.Query(ctx, milvusclient.NewQueryOption(s.coll).WithFilter(expr).WithOutputFields(field).
		WithLimit(1).WithConsistencyLevel(entity.ClStrong))
	if err != nil {
		return false, fmt.Errorf("milvus: query %s where %s: %w", s.coll, expr, err)
	}
	return rs.ResultCount > 0 || (len(rs.Fields) > 0 && rs.Fields[0].Len() > 0), nil
}
