package milvustest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

func (s *Server) Query(ctx context.Context, req *milvuspb.QueryRequest) (*milvuspb.QueryResults, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exprs = append(s.exprs, req.Expr)
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return &milvuspb.QueryResults{Status: st}, nil
	}
	if !c.loaded {
		return &milvuspb.QueryResults{Status: failf("collection not loaded")}, nil
	}
	limit, _ := strconv.Atoi(kv(req.QueryParams, "limit"))
	offset, _ := strconv.Atoi(kv(req.QueryParams, "offset"))
	if req.Expr == "" && limit <= 0 {
		return &milvuspb.QueryResults{Status: failf("empty expression should be used with limit")}, nil
	}
	if limit+offset > 16384 {
		return &milvuspb.QueryResults{Status: failf("invalid max query result window, (offset+limit) should be in range [1, 16384]")}, nil
	}
	pred, err := parseExpr(req.Expr, c.fields)
	if err != nil {
		return &milvuspb.QueryResults{Status: failf("cannot parse expression: %s, error: %v", req.Expr, err)}, nil
	}
	// Primary-key order, which is what Milvus's reduce yields and what
	// pk-cursor pagination relies on.
	var hits []Row
	for _, pk := range c.sortedKeys() {
		if r := c.rows[pk]; pred(r) {
			hits = append(hits, r)
		}
	}
	hits = hits[min(offset, len(hits)):]
	if limit > 0 && len(hits) > limit {
		hits = hits[:limit]
	}
	fields, err := c.outputFields(req.OutputFields)
	if err != nil {
		return &milvuspb.QueryResults{Status: failf("%v", err)}, nil
	}
	return &milvuspb.QueryResults{Status: ok(), FieldsData: c.encode(fields, hits), CollectionName: c.schema.Name, OutputFields: fields}, nil
}

// outputFields resolves requested names ("*" = all but vectors); the
// primary key is always included, as in Milvus. A name that is not a field
// is a dynamic key when the collection has the dynamic field.
func (c *collection) outputFields(req []string) ([]string, error) {
	var out []string
	has := map[string]bool{}
	add := func(n string) {
		if !has[n] {
			has[n] = true
			out = append(out, n)
		}
	}
	for _, n := range req {
		if n == "*" {
			for _, f := range c.schema.Fields {
				if !isVector(f.DataType) {
					add(f.Name)
				}
			}
			continue
		}
		if f := c.fields[n]; f == nil && c.fields[metaField] == nil {
			return nil, fmt.Errorf("field %s not exist", n)
		} else if f != nil && f.IsFunctionOutput {
			return nil, fmt.Errorf("field %s is a function output and cannot be returned", n)
		}
		add(n)
	}
	add(c.pk)
	return out, nil
}

type scored struct {
	r     Row
	score float32
}

// rank runs one search request and returns its hits, best first.
func (c *collection) rank(req *milvuspb.SearchRequest) ([]scored, int, error) {
	annsField := kv(req.SearchParams, "anns_field")
	vf := c.fields[annsField]
	if vf == nil || !isVector(vf.DataType) {
		return nil, 0, fmt.Errorf("anns_field %q is not a vector field", annsField)
	}
	if c.unloaded[annsField] {
		// upstream's milvus_store (_reload_for_new_field): "Milvus fails
		// searches on it until then".
		return nil, 0, fmt.Errorf("field %s is not loaded: refresh or reload the collection", annsField)
	}
	topK, err := strconv.Atoi(kv(req.SearchParams, "topk"))
	if err != nil || topK <= 0 || topK > 16384 {
		return nil, 0, fmt.Errorf("bad topk %q", kv(req.SearchParams, "topk"))
	}
	metric := kv(req.SearchParams, "metric_type")
	idx := c.index[annsField]
	if idx != nil && metric != "" && metric != kv(idx.Params, "metric_type") {
		return nil, 0, fmt.Errorf("metric type not match: invalid parameter[expected=%s][actual=%s]", kv(idx.Params, "metric_type"), metric)
	}
	if metric == "" && idx != nil {
		metric = kv(idx.Params, "metric_type")
	}
	var phg commonpb.PlaceholderGroup
	if err := proto.Unmarshal(req.GetPlaceholderGroup(), &phg); err != nil || len(phg.Placeholders) != 1 || len(phg.Placeholders[0].Values) != 1 {
		return nil, 0, fmt.Errorf("bad placeholder group (the stand-in takes one query per request)")
	}
	ph := phg.Placeholders[0]
	pred, err := parseExpr(req.Dsl, c.fields)
	if err != nil {
		return nil, 0, fmt.Errorf("cannot parse expression: %s, error: %v", req.Dsl, err)
	}
	var candidates []Row
	for _, pk := range c.sortedKeys() {
		if r := c.rows[pk]; pred(r) {
			candidates = append(candidates, r)
		}
	}
	var sc []scored
	switch {
	case vf.DataType == schemapb.DataType_SparseFloatVector && c.bm25[vf.Name] != "":
		// https://milvus.io/docs/full-text-search.md: the query is raw
		// text (a VARCHAR placeholder), analysed like the input field, and
		// ranked by BM25 over the whole collection's statistics.
		if ph.Type != commonpb.PlaceholderType_VarChar {
			return nil, 0, fmt.Errorf("search on BM25 output %s takes text", vf.Name)
		}
		if metric != "BM25" {
			return nil, 0, fmt.Errorf("search on BM25 output %s needs metric BM25, got %q", vf.Name, metric)
		}
		k1, b := 1.2, 0.75
		if idx != nil {
			if v, err := strconv.ParseFloat(indexParam(idx, "bm25_k1"), 64); err == nil {
				k1 = v
			}
			if v, err := strconv.ParseFloat(indexParam(idx, "bm25_b"), 64); err == nil {
				b = v
			}
		}
		q := analyze(c.fields[c.bm25[vf.Name]], string(ph.Values[0]))
		stats := c.bm25Stats(vf.Name)
		for _, r := range candidates {
			if s := stats.score(q, r[vf.Name].([]string), k1, b); s > 0 {
				sc = append(sc, scored{r, float32(s)})
			}
		}
	case vf.DataType == schemapb.DataType_FloatVector:
		if ph.Type != commonpb.PlaceholderType_FloatVector {
			return nil, 0, fmt.Errorf("only float vectors search %s", vf.Name)
		}
		dim, _ := strconv.Atoi(typeParam(vf, "dim"))
		raw := ph.Values[0]
		if len(raw) != 4*dim {
			return nil, 0, fmt.Errorf("query vector has dimension %d, field has %d", len(raw)/4, dim)
		}
		q := make([]float32, dim)
		for i := range q {
			q[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		for _, r := range candidates {
			// A NULL vector (a nullable field's missing value) is skipped
			// by search (https://docs.zilliz.com/docs/release-notes-2606,
			// "Nullable Vector": "NULL vectors are automatically skipped
			// during vector index building and search").
			if v, ok := r[annsField].([]float32); ok {
				sc = append(sc, scored{r, score(metric, q, v)})
			}
		}
	default:
		return nil, 0, fmt.Errorf("searching %s fields is not modelled", vf.DataType)
	}
	sort.SliceStable(sc, func(a, b int) bool {
		if metric == "L2" {
			return sc[a].score < sc[b].score
		}
		return sc[a].score > sc[b].score
	})
	if len(sc) > topK {
		sc = sc[:topK]
	}
	return sc, topK, nil
}

// indexParam reads an index parameter given either at the top level or
// inside the JSON "params" value (pymilvus sends the latter).
func indexParam(idx *milvuspb.IndexDescription, key string) string {
	if v := kv(idx.Params, key); v != "" {
		return v
	}
	var m map[string]any
	if json.Unmarshal([]byte(kv(idx.Params, "params")), &m) == nil && m[key] != nil {
		return fmt.Sprint(m[key])
	}
	return ""
}

func (c *collection) results(hits []scored, topK int, fields []string) *schemapb.SearchResultData {
	res := &schemapb.SearchResultData{NumQueries: 1, TopK: int64(topK), OutputFields: fields, Topks: []int64{int64(len(hits))}}
	var rows []Row
	var intIDs []int64
	var strIDs []string
	for _, h := range hits {
		rows = append(rows, h.r)
		res.Scores = append(res.Scores, h.score)
		if v, ok := h.r[c.pk].(int64); ok {
			intIDs = append(intIDs, v)
		} else {
			strIDs = append(strIDs, fmt.Sprint(h.r[c.pk]))
		}
	}
	if c.fields[c.pk].DataType == schemapb.DataType_Int64 {
		res.Ids = &schemapb.IDs{IdField: &schemapb.IDs_IntId{IntId: &schemapb.LongArray{Data: intIDs}}}
	} else {
		res.Ids = &schemapb.IDs{IdField: &schemapb.IDs_StrId{StrId: &schemapb.StringArray{Data: strIDs}}}
	}
	res.FieldsData = c.encode(fields, rows)
	return res
}

func (s *Server) Search(ctx context.Context, req *milvuspb.SearchRequest) (*milvuspb.SearchResults, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exprs = append(s.exprs, req.Dsl)
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return &milvuspb.SearchResults{Status: st}, nil
	}
	if !c.loaded {
		return &milvuspb.SearchResults{Status: failf("collection not loaded")}, nil
	}
	fields, err := c.outputFields(req.OutputFields)
	if err != nil {
		return &milvuspb.SearchResults{Status: failf("%v", err)}, nil
	}
	s.searches = append(s.searches, searchCall(req.SearchParams))
	hits, topK, err := c.rank(req)
	if err != nil {
		return &milvuspb.SearchResults{Status: failf("%v", err)}, nil
	}
	return &milvuspb.SearchResults{Status: ok(), Results: c.results(hits, topK, fields), CollectionName: c.schema.Name}, nil
}

// HybridSearch runs each request and fuses their rankings
// (https://milvus.io/docs/multi-vector-search.md). Only the RRF ranker is
// modelled (https://milvus.io/docs/rrf-ranker.md): a hit's score is the sum
// over the lists it appears in of 1/(k + rank), rank counted from 1; k
// defaults to 60 and must be in (0, 16384).
func (s *Server) HybridSearch(ctx context.Context, req *milvuspb.HybridSearchRequest) (*milvuspb.SearchResults, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.hybrids++
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return &milvuspb.SearchResults{Status: st}, nil
	}
	if !c.loaded {
		return &milvuspb.SearchResults{Status: failf("collection not loaded")}, nil
	}
	if kv(req.RankParams, "strategy") != "rrf" {
		return &milvuspb.SearchResults{Status: failf("only the rrf ranker is modelled, got %q", kv(req.RankParams, "strategy"))}, nil
	}
	var p struct {
		K *float64 `json:"k"`
	}
	if raw := kv(req.RankParams, "params"); raw != "" {
		if err := json.Unmarshal([]byte(raw), &p); err != nil {
			return &milvuspb.SearchResults{Status: failf("bad rrf params %q", raw)}, nil
		}
	}
	k := 60.0
	if p.K != nil {
		k = *p.K
	}
	if k <= 0 || k >= 16384 {
		return &milvuspb.SearchResults{Status: failf("The rank params k should be in range (0, 16384)")}, nil
	}
	limit, err := strconv.Atoi(kv(req.RankParams, "limit"))
	if err != nil || limit <= 0 {
		return &milvuspb.SearchResults{Status: failf("bad limit %q", kv(req.RankParams, "limit"))}, nil
	}
	fields, err := c.outputFields(req.OutputFields)
	if err != nil {
		return &milvuspb.SearchResults{Status: failf("%v", err)}, nil
	}
	sum := map[string]float64{}
	rows := map[string]Row{}
	var rankParams map[string]any
	_ = json.Unmarshal([]byte(kv(req.RankParams, "params")), &rankParams)
	for _, sub := range req.Requests {
		s.exprs = append(s.exprs, sub.Dsl)
		call := searchCall(sub.SearchParams)
		call.Hybrid, call.Ranker, call.RankParams = true, kv(req.RankParams, "strategy"), rankParams
		s.searches = append(s.searches, call)
		hits, _, err := c.rank(sub)
		if err != nil {
			return &milvuspb.SearchResults{Status: failf("%v", err)}, nil
		}
		for i, h := range hits {
			pk := pkString(h.r[c.pk])
			sum[pk] += 1 / (k + float64(i+1))
			rows[pk] = h.r
		}
	}
	var fused []scored
	for pk, v := range sum {
		fused = append(fused, scored{rows[pk], float32(v)})
	}
	sort.Slice(fused, func(a, b int) bool {
		if fused[a].score != fused[b].score {
			return fused[a].score > fused[b].score
		}
		return pkString(fused[a].r[c.pk]) < pkString(fused[b].r[c.pk])
	})
	if len(fused) > limit {
		fused = fused[:limit]
	}
	return &milvuspb.SearchResults{Status: ok(), Results: c.results(fused, limit, fields), CollectionName: c.schema.Name}, nil
}
