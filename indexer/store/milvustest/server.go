// Package milvustest is an in-memory, protocol-level stand-in for a Milvus
// server, for tests of code using milvus-sdk-go.
//
// It speaks the real gRPC MilvusService on a loopback port and implements
// what a typical client needs: Connect, HasCollection, CreateCollection,
// DescribeCollection, DropCollection, CreateIndex, DescribeIndex,
// LoadCollection, GetLoadingProgress, GetLoadState, Upsert, Insert, Delete,
// Query and Search (exact, COSINE/IP/L2). Filter expressions are parsed, not
// pattern-matched: comparisons (== != < <= > >=) and "in [...]" on scalar
// fields and on JSON keys (field["key"]), combined with and/or/not (and
// &&, ||, !) and parentheses. String literals are double-quoted and
// unquoted as Go does (as Milvus does), so a client that fails to escape
// quotes or backslashes gets a parse error or a wrong match here, just as
// it would against Milvus. Every expression received is recorded (Exprs).
//
// It does not model consistency levels, segments, partitions by name,
// dynamic fields or authentication.
package milvustest

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"sync"
	"testing"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
)

// Server is the stand-in's state. Its methods are safe for concurrent use.
type Server struct {
	milvuspb.UnimplementedMilvusServiceServer

	mu     sync.Mutex
	colls  map[string]*collection
	exprs  []string
	nextID int64
}

type collection struct {
	id     int64
	schema *schemapb.CollectionSchema
	fields map[string]*schemapb.FieldSchema
	pk     string
	index  map[string]*milvuspb.IndexDescription // by field name
	loaded bool
	rows   map[string]Row // by primary key, formatted as a string
}

// Row is one stored entity: VarChar as string, integers as int64, floats as
// float64, Bool as bool, JSON as raw []byte, FloatVector as []float32.
type Row map[string]any

// Start serves a new stand-in on 127.0.0.1 and stops it when the test ends.
func Start(t testing.TB) (addr string, srv *Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv = &Server{colls: make(map[string]*collection), nextID: 1000}
	g := grpc.NewServer()
	milvuspb.RegisterMilvusServiceServer(g, srv)
	go g.Serve(lis)
	t.Cleanup(g.Stop)
	return lis.Addr().String(), srv
}

// Exprs returns every filter expression received (Delete, Query, Search),
// in order.
func (s *Server) Exprs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.exprs...)
}

// Rows returns copies of a collection's rows, sorted by primary key.
func (s *Server) Rows(collection string) []Row {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.colls[collection]
	if c == nil {
		return nil
	}
	out := make([]Row, 0, len(c.rows))
	for _, pk := range c.sortedKeys() {
		r := make(Row, len(c.rows[pk]))
		for k, v := range c.rows[pk] {
			r[k] = v
		}
		out = append(out, r)
	}
	return out
}

// CreateRaw creates a collection from a schema directly, e.g. to test how
// a client treats a collection it did not create.
func (s *Server) CreateRaw(schema *schemapb.CollectionSchema) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addCollection(schema)
}

func ok() *commonpb.Status { return &commonpb.Status{ErrorCode: commonpb.ErrorCode_Success} }

func fail(code commonpb.ErrorCode, format string, args ...any) *commonpb.Status {
	return &commonpb.Status{ErrorCode: code, Code: 1100, Reason: fmt.Sprintf(format, args...)}
}

func failf(format string, args ...any) *commonpb.Status {
	return fail(commonpb.ErrorCode_UnexpectedError, format, args...)
}

func (s *Server) coll(name string) (*collection, *commonpb.Status) {
	c := s.colls[name]
	if c == nil {
		st := fail(commonpb.ErrorCode_CollectionNotExists, "can't find collection[database=default][collection=%s]", name)
		st.Code = 100
		return nil, st
	}
	return c, nil
}

func (s *Server) addCollection(schema *schemapb.CollectionSchema) {
	c := &collection{
		id: s.nextID, schema: schema, fields: make(map[string]*schemapb.FieldSchema),
		index: make(map[string]*milvuspb.IndexDescription), rows: make(map[string]Row),
	}
	s.nextID++
	for i, f := range schema.Fields {
		if f.FieldID == 0 {
			f.FieldID = int64(100 + i)
		}
		c.fields[f.Name] = f
		if f.IsPrimaryKey {
			c.pk = f.Name
		}
	}
	s.colls[schema.Name] = c
}

func (c *collection) sortedKeys() []string {
	keys := make([]string, 0, len(c.rows))
	for k := range c.rows {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func typeParam(f *schemapb.FieldSchema, key string) string {
	for _, kv := range f.TypeParams {
		if kv.Key == key {
			return kv.Value
		}
	}
	return ""
}

func kv(pairs []*commonpb.KeyValuePair, key string) string {
	for _, p := range pairs {
		if p.Key == key {
			return p.Value
		}
	}
	return ""
}

// Connect reports a server new enough for JSON fields and partition keys.
func (s *Server) Connect(ctx context.Context, req *milvuspb.ConnectRequest) (*milvuspb.ConnectResponse, error) {
	return &milvuspb.ConnectResponse{Status: ok(), ServerInfo: &commonpb.ServerInfo{BuildTags: "v2.4.0-milvustest"}, Identifier: 1}, nil
}

func (s *Server) HasCollection(ctx context.Context, req *milvuspb.HasCollectionRequest) (*milvuspb.BoolResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return &milvuspb.BoolResponse{Status: ok(), Value: s.colls[req.CollectionName] != nil}, nil
}

func (s *Server) CreateCollection(ctx context.Context, req *milvuspb.CreateCollectionRequest) (*commonpb.Status, error) {
	var schema schemapb.CollectionSchema
	if err := proto.Unmarshal(req.Schema, &schema); err != nil {
		return failf("bad schema: %v", err), nil
	}
	if schema.Name != req.CollectionName {
		return failf("schema name %q differs from collection name %q", schema.Name, req.CollectionName), nil
	}
	pks := 0
	for _, f := range schema.Fields {
		if f.IsPrimaryKey {
			pks++
		}
		if f.DataType == schemapb.DataType_VarChar && typeParam(f, "max_length") == "" {
			return failf("field %s: type param(max_length) should be specified", f.Name), nil
		}
		if f.DataType == schemapb.DataType_FloatVector {
			if d, err := strconv.Atoi(typeParam(f, "dim")); err != nil || d <= 0 {
				return failf("field %s: bad dim", f.Name), nil
			}
		}
	}
	if pks != 1 {
		return failf("schema needs exactly one primary key, has %d", pks), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.colls[req.CollectionName] != nil {
		return failf("collection %s already exists", req.CollectionName), nil
	}
	s.addCollection(&schema)
	return ok(), nil
}

func (s *Server) DropCollection(ctx context.Context, req *milvuspb.DropCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.colls, req.CollectionName)
	return ok(), nil
}

func (s *Server) DescribeCollection(ctx context.Context, req *milvuspb.DescribeCollectionRequest) (*milvuspb.DescribeCollectionResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return &milvuspb.DescribeCollectionResponse{Status: st}, nil
	}
	return &milvuspb.DescribeCollectionResponse{
		Status: ok(), Schema: c.schema, CollectionID: c.id, CollectionName: c.schema.Name,
		ShardsNum: 1, ConsistencyLevel: commonpb.ConsistencyLevel_Bounded,
	}, nil
}

func (s *Server) CreateIndex(ctx context.Context, req *milvuspb.CreateIndexRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return st, nil
	}
	if c.fields[req.FieldName] == nil {
		return failf("field %s not found", req.FieldName), nil
	}
	name := req.IndexName
	if name == "" {
		name = req.FieldName
	}
	c.index[req.FieldName] = &milvuspb.IndexDescription{
		IndexName: name, IndexID: s.nextID, Params: req.ExtraParams, FieldName: req.FieldName,
		State: commonpb.IndexState_Finished,
	}
	s.nextID++
	return ok(), nil
}

// Index returns the parameters of the index on a field (nil if none).
func (s *Server) Index(collection, field string) map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.colls[collection]
	if c == nil || c.index[field] == nil {
		return nil
	}
	out := make(map[string]string)
	for _, p := range c.index[field].Params {
		out[p.Key] = p.Value
	}
	return out
}

func (s *Server) DescribeIndex(ctx context.Context, req *milvuspb.DescribeIndexRequest) (*milvuspb.DescribeIndexResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return &milvuspb.DescribeIndexResponse{Status: st}, nil
	}
	var descs []*milvuspb.IndexDescription
	for field, d := range c.index {
		if (req.FieldName == "" || req.FieldName == field) && (req.IndexName == "" || req.IndexName == d.IndexName) {
			d.TotalRows, d.IndexedRows = int64(len(c.rows)), int64(len(c.rows))
			descs = append(descs, d)
		}
	}
	if len(descs) == 0 {
		st := fail(commonpb.ErrorCode_IndexNotExist, "index not found[collection=%s]", req.CollectionName)
		st.Code = 700
		return &milvuspb.DescribeIndexResponse{Status: st}, nil
	}
	return &milvuspb.DescribeIndexResponse{Status: ok(), IndexDescriptions: descs}, nil
}

func (s *Server) LoadCollection(ctx context.Context, req *milvuspb.LoadCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return st, nil
	}
	for _, f := range c.schema.Fields {
		if isVector(f.DataType) && c.index[f.Name] == nil {
			return failf("there is no vector index on field: [%s], please create index firstly", f.Name), nil
		}
	}
	c.loaded = true
	return ok(), nil
}

func (s *Server) GetLoadingProgress(ctx context.Context, req *milvuspb.GetLoadingProgressRequest) (*milvuspb.GetLoadingProgressResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return &milvuspb.GetLoadingProgressResponse{Status: st}, nil
	}
	if !c.loaded {
		return &milvuspb.GetLoadingProgressResponse{Status: failf("collection not loaded")}, nil
	}
	return &milvuspb.GetLoadingProgressResponse{Status: ok(), Progress: 100, RefreshProgress: 100}, nil
}

func (s *Server) GetLoadState(ctx context.Context, req *milvuspb.GetLoadStateRequest) (*milvuspb.GetLoadStateResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return &milvuspb.GetLoadStateResponse{Status: st, State: commonpb.LoadState_LoadStateNotExist}, nil
	}
	state := commonpb.LoadState_LoadStateNotLoad
	if c.loaded {
		state = commonpb.LoadState_LoadStateLoaded
	}
	return &milvuspb.GetLoadStateResponse{Status: ok(), State: state}, nil
}

func (s *Server) Insert(ctx context.Context, req *milvuspb.InsertRequest) (*milvuspb.MutationResult, error) {
	return s.write(req.CollectionName, req.FieldsData, req.NumRows, false)
}

func (s *Server) Upsert(ctx context.Context, req *milvuspb.UpsertRequest) (*milvuspb.MutationResult, error) {
	return s.write(req.CollectionName, req.FieldsData, req.NumRows, true)
}

func (s *Server) write(name string, data []*schemapb.FieldData, numRows uint32, upsert bool) (*milvuspb.MutationResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(name)
	if st != nil {
		return &milvuspb.MutationResult{Status: st}, nil
	}
	rows := make([]Row, numRows)
	for i := range rows {
		rows[i] = make(Row)
	}
	seen := make(map[string]bool)
	for _, fd := range data {
		f := c.fields[fd.FieldName]
		if f == nil {
			return &milvuspb.MutationResult{Status: failf("field %s does not exist", fd.FieldName)}, nil
		}
		if fd.Type != f.DataType {
			return &milvuspb.MutationResult{Status: failf("field %s: got type %s, schema says %s", f.Name, fd.Type, f.DataType)}, nil
		}
		vals, err := decodeColumn(fd, f)
		if err != nil {
			return &milvuspb.MutationResult{Status: failf("field %s: %v", f.Name, err)}, nil
		}
		if len(vals) != int(numRows) {
			return &milvuspb.MutationResult{Status: failf("field %s has %d rows, request says %d", f.Name, len(vals), numRows)}, nil
		}
		for i, v := range vals {
			rows[i][f.Name] = v
		}
		seen[f.Name] = true
	}
	for _, f := range c.schema.Fields {
		if !seen[f.Name] && !f.AutoID {
			return &milvuspb.MutationResult{Status: failf("field %s not passed", f.Name)}, nil
		}
	}
	var ids []string
	for _, r := range rows {
		pk := fmt.Sprint(r[c.pk])
		if !upsert && c.rows[pk] != nil {
			// Milvus itself would store a duplicate; refusing makes the
			// mistake visible in tests.
			return &milvuspb.MutationResult{Status: failf("insert of existing primary key %q", pk)}, nil
		}
		c.rows[pk] = r
		ids = append(ids, pk)
	}
	res := &milvuspb.MutationResult{Status: ok(), Timestamp: uint64(s.nextID)}
	s.nextID++
	res.IDs = &schemapb.IDs{IdField: &schemapb.IDs_StrId{StrId: &schemapb.StringArray{Data: ids}}}
	if upsert {
		res.UpsertCnt = int64(len(ids))
	} else {
		res.InsertCnt = int64(len(ids))
	}
	return res, nil
}

func (s *Server) Delete(ctx context.Context, req *milvuspb.DeleteRequest) (*milvuspb.MutationResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.exprs = append(s.exprs, req.Expr)
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return &milvuspb.MutationResult{Status: st}, nil
	}
	if req.Expr == "" {
		return &milvuspb.MutationResult{Status: failf("delete needs an expression")}, nil
	}
	pred, err := parseExpr(req.Expr, c.fields)
	if err != nil {
		return &milvuspb.MutationResult{Status: failf("cannot parse expression: %s, error: %v", req.Expr, err)}, nil
	}
	var n int64
	for pk, r := range c.rows {
		if pred(r) {
			delete(c.rows, pk)
			n++
		}
	}
	res := &milvuspb.MutationResult{Status: ok(), DeleteCnt: n, Timestamp: uint64(s.nextID)}
	s.nextID++
	return res, nil
}

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

// outputFields resolves requested names ("*" = all); the primary key is
// always included, as in Milvus.
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
		if c.fields[n] == nil {
			return nil, fmt.Errorf("field %s not exist", n)
		}
		add(n)
	}
	add(c.pk)
	return out, nil
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
	annsField := kv(req.SearchParams, "anns_field")
	vf := c.fields[annsField]
	if vf == nil || vf.DataType != schemapb.DataType_FloatVector {
		return &milvuspb.SearchResults{Status: failf("anns_field %q is not a float vector field", annsField)}, nil
	}
	dim, _ := strconv.Atoi(typeParam(vf, "dim"))
	topK, err := strconv.Atoi(kv(req.SearchParams, "topk"))
	if err != nil || topK <= 0 || topK > 16384 {
		return &milvuspb.SearchResults{Status: failf("bad topk %q", kv(req.SearchParams, "topk"))}, nil
	}
	metric := kv(req.SearchParams, "metric_type")
	if idx := c.index[annsField]; idx != nil && metric != "" && metric != kv(idx.Params, "metric_type") {
		return &milvuspb.SearchResults{Status: failf("metric type not match: invalid parameter[expected=%s][actual=%s]", kv(idx.Params, "metric_type"), metric)}, nil
	}
	var phg commonpb.PlaceholderGroup
	if err := proto.Unmarshal(req.PlaceholderGroup, &phg); err != nil || len(phg.Placeholders) != 1 {
		return &milvuspb.SearchResults{Status: failf("bad placeholder group")}, nil
	}
	ph := phg.Placeholders[0]
	if ph.Type != commonpb.PlaceholderType_FloatVector {
		return &milvuspb.SearchResults{Status: failf("only float vectors are supported")}, nil
	}
	pred, err := parseExpr(req.Dsl, c.fields)
	if err != nil {
		return &milvuspb.SearchResults{Status: failf("cannot parse expression: %s, error: %v", req.Dsl, err)}, nil
	}
	fields, err := c.outputFields(req.OutputFields)
	if err != nil {
		return &milvuspb.SearchResults{Status: failf("%v", err)}, nil
	}
	var candidates []Row
	for _, pk := range c.sortedKeys() {
		if r := c.rows[pk]; pred(r) {
			candidates = append(candidates, r)
		}
	}
	res := &schemapb.SearchResultData{NumQueries: int64(len(ph.Values)), TopK: int64(topK), OutputFields: fields}
	var all []Row
	var ids []string
	for _, raw := range ph.Values {
		if len(raw) != 4*dim {
			return &milvuspb.SearchResults{Status: failf("query vector has dimension %d, field has %d", len(raw)/4, dim)}, nil
		}
		q := make([]float32, dim)
		for i := range q {
			q[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
		}
		type scored struct {
			r     Row
			score float32
		}
		var sc []scored
		for _, r := range candidates {
			sc = append(sc, scored{r, score(metric, q, r[annsField].([]float32))})
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
		for _, x := range sc {
			all = append(all, x.r)
			ids = append(ids, fmt.Sprint(x.r[c.pk]))
			res.Scores = append(res.Scores, x.score)
		}
		res.Topks = append(res.Topks, int64(len(sc)))
	}
	res.Ids = &schemapb.IDs{IdField: &schemapb.IDs_StrId{StrId: &schemapb.StringArray{Data: ids}}}
	res.FieldsData = c.encode(fields, all)
	return &milvuspb.SearchResults{Status: ok(), Results: res, CollectionName: c.schema.Name}, nil
}

func score(metric string, q, v []float32) float32 {
	var dot, nq, nv, l2 float64
	for i := range q {
		a, b := float64(q[i]), float64(v[i])
		dot += a * b
		nq += a * a
		nv += b * b
		l2 += (a - b) * (a - b)
	}
	switch metric {
	case "IP":
		return float32(dot)
	case "L2":
		return float32(l2)
	}
	if nq == 0 || nv == 0 {
		return 0
	}
	return float32(dot / math.Sqrt(nq*nv))
}

func isVector(t schemapb.DataType) bool {
	switch t {
	case schemapb.DataType_FloatVector, schemapb.DataType_BinaryVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_SparseFloatVector:
		return true
	}
	return false
}

func decodeColumn(fd *schemapb.FieldData, f *schemapb.FieldSchema) ([]any, error) {
	var out []any
	sc := fd.GetScalars()
	switch f.DataType {
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		maxLen, _ := strconv.Atoi(typeParam(f, "max_length"))
		for _, v := range sc.GetStringData().GetData() {
			if maxLen > 0 && len(v) > maxLen {
				return nil, fmt.Errorf("length %d exceeds max length %d", len(v), maxLen)
			}
			out = append(out, v)
		}
	case schemapb.DataType_Int64:
		for _, v := range sc.GetLongData().GetData() {
			out = append(out, v)
		}
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		for _, v := range sc.GetIntData().GetData() {
			out = append(out, int64(v))
		}
	case schemapb.DataType_Bool:
		for _, v := range sc.GetBoolData().GetData() {
			out = append(out, v)
		}
	case schemapb.DataType_Float:
		for _, v := range sc.GetFloatData().GetData() {
			out = append(out, float64(v))
		}
	case schemapb.DataType_Double:
		for _, v := range sc.GetDoubleData().GetData() {
			out = append(out, v)
		}
	case schemapb.DataType_JSON:
		for _, v := range sc.GetJsonData().GetData() {
			if !json.Valid(v) {
				return nil, fmt.Errorf("invalid JSON %q", v)
			}
			out = append(out, append([]byte(nil), v...))
		}
	case schemapb.DataType_FloatVector:
		dim, _ := strconv.Atoi(typeParam(f, "dim"))
		vf := fd.GetVectors()
		if int(vf.GetDim()) != dim {
			return nil, fmt.Errorf("vector dimension %d, field has %d", vf.GetDim(), dim)
		}
		data := vf.GetFloatVector().GetData()
		if dim == 0 || len(data)%dim != 0 {
			return nil, fmt.Errorf("vector data of %d floats is not a multiple of %d", len(data), dim)
		}
		for i := 0; i < len(data); i += dim {
			out = append(out, append([]float32(nil), data[i:i+dim]...))
		}
	default:
		return nil, fmt.Errorf("type %s not supported by milvustest", f.DataType)
	}
	return out, nil
}

func (c *collection) encode(names []string, rows []Row) []*schemapb.FieldData {
	var out []*schemapb.FieldData
	for _, n := range names {
		f := c.fields[n]
		fd := &schemapb.FieldData{Type: f.DataType, FieldName: f.Name, FieldId: f.FieldID}
		scalars := func(sf *schemapb.ScalarField) {
			fd.Field = &schemapb.FieldData_Scalars{Scalars: sf}
		}
		switch f.DataType {
		case schemapb.DataType_VarChar, schemapb.DataType_String:
			var d []string
			for _, r := range rows {
				d = append(d, r[n].(string))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: d}}})
		case schemapb.DataType_Int64:
			var d []int64
			for _, r := range rows {
				d = append(d, r[n].(int64))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: d}}})
		case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
			var d []int32
			for _, r := range rows {
				d = append(d, int32(r[n].(int64)))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: d}}})
		case schemapb.DataType_Bool:
			var d []bool
			for _, r := range rows {
				d = append(d, r[n].(bool))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: d}}})
		case schemapb.DataType_Float:
			var d []float32
			for _, r := range rows {
				d = append(d, float32(r[n].(float64)))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: d}}})
		case schemapb.DataType_Double:
			var d []float64
			for _, r := range rows {
				d = append(d, r[n].(float64))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: d}}})
		case schemapb.DataType_JSON:
			var d [][]byte
			for _, r := range rows {
				d = append(d, r[n].([]byte))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: d}}})
		case schemapb.DataType_FloatVector:
			dim, _ := strconv.Atoi(typeParam(f, "dim"))
			var d []float32
			for _, r := range rows {
				d = append(d, r[n].([]float32)...)
			}
			fd.Field = &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{
				Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: d}},
			}}
		}
		out = append(out, fd)
	}
	return out
}
