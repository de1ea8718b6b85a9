// Package milvustest is an in-memory, protocol-level stand-in for a Milvus
// 2.6 server, for tests of code using github.com/milvus-io/milvus/client/v2.
//
// It speaks the real gRPC MilvusService on a loopback port and implements
// what that client calls: Connect, CreateCollection (with functions and
// properties), DescribeCollection (which the client also uses as
// HasCollection), AlterCollection (properties), AddCollectionField,
// DropCollection, CreateIndex, DescribeIndex, LoadCollection (and its
// refresh), ReleaseCollection, GetLoadingProgress, GetLoadState, Insert,
// Upsert, Delete by expression, Query, Search and HybridSearch. Each
// modelled behaviour names the Milvus documentation page (or the upstream
// code) it follows, in a comment where it is implemented:
//   - dynamic fields (https://milvus.io/docs/enable-dynamic-field.md): keys
//     not in the schema are kept in the hidden JSON field $meta, are
//     filterable by bare name and returned when named as output fields;
//   - the BM25 function and full text search
//     (https://milvus.io/docs/full-text-search.md): the function's output
//     sparse field is generated from the analysed input text at insert and is
//     never passed by the client; a search on it takes raw text and ranks by
//     BM25 with the index's bm25_k1 and bm25_b;
//   - analyzers (https://milvus.io/docs/analyzer-overview.md): the standard
//     tokenizer and the lowercase and stop filters (OpenRAG's schema 3
//     lowercases; its older analyzer did not);
//   - nullable fields, vectors included (https://milvus.io/docs/nullable-and-default.md,
//     https://docs.zilliz.com/docs/nullable-fields): an omitted or masked
//     value is null, a nullable field is never a partition key, and a
//     search skips null vectors; several dense fields per collection, at
//     most MaxVectorFields;
//   - fields added to a live collection
//     (https://milvus.io/docs/add-fields-to-an-existing-collection.md):
//     nullable only, and unsearchable on a loaded collection until it is
//     refreshed or reloaded (see LoadCollection);
//   - TIMESTAMPTZ (https://milvus.io/docs/timestamptz-field.md): written as
//     ISO 8601 strings, stored as UTC microseconds;
//   - hybrid search with RRF (https://milvus.io/docs/multi-vector-search.md,
//     https://milvus.io/docs/rrf-ranker.md): each sub-search ranks on its own
//     and the ranks are fused by sum of 1/(k+rank);
//   - boolean expressions (https://milvus.io/docs/boolean.md): comparisons,
//     in, and/or/not on scalar fields, JSON keys and dynamic fields;
//   - collection properties (https://milvus.io/docs/modify-collection.md);
//   - auto-generated INT64 primary keys (https://milvus.io/docs/primary-field.md).
//
// Filter expressions are parsed, not pattern-matched, and string literals
// are unquoted as Go does (as Milvus does), so a client that fails to escape
// quotes or backslashes gets a parse error or a wrong match here, just as it
// would against Milvus. Every expression received is recorded (Exprs), and
// every search's field, metric, limit, params and ranker (Searches).
//
// It does not model consistency levels (every read sees every acknowledged
// write, as Strong does), segments, partitions by name, the full English and
// French stop lists (a short subset stands in for _english_ and _french_) or
// authentication.
package milvustest

import (
	"context"
	"fmt"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"
)

// Server is the stand-in's state. Its methods are safe for concurrent use.
type Server struct {
	milvuspb.UnimplementedMilvusServiceServer

	mu           sync.Mutex
	colls        map[string]*collection
	exprs        []string
	nextID       int64
	beforeDelete func(expr string)
	hybrids      int
	searches     []SearchCall
}

// HybridSearches counts the HybridSearch calls served.
func (s *Server) HybridSearches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hybrids
}

type collection struct {
	id     int64
	schema *schemapb.CollectionSchema
	fields map[string]*schemapb.FieldSchema
	pk     string
	index  map[string]*milvuspb.IndexDescription // by field name
	loaded bool
	// unloaded holds fields added to a loaded collection and not yet
	// loaded: searches on them fail until a refresh or a reload.
	unloaded map[string]bool
	rows     map[string]Row // by primary key, formatted as a string
	props    []*commonpb.KeyValuePair
	// bm25 maps a function's output sparse field to its analysed input
	// field; tokens holds each row's analysed text under the output name.
	bm25   map[string]string
	nextPK int64
}

// metaField is the hidden JSON field Milvus adds to a collection with the
// dynamic field enabled (https://milvus.io/docs/enable-dynamic-field.md).
const metaField = "$meta"

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
	// The client pings every few seconds even when idle; the default
	// policy would answer "too many pings" and drop the connection.
	g := grpc.NewServer(grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: time.Second, PermitWithoutStream: true}))
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
// a client treats a collection it did not create. props become its
// collection properties.
func (s *Server) CreateRaw(schema *schemapb.CollectionSchema, props ...*commonpb.KeyValuePair) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.addCollection(schema)
	s.colls[schema.Name].props = props
}

// SetIndex sets the index on a field directly (nil params remove it), e.g.
// to model a collection made with other index parameters.
func (s *Server) SetIndex(collection, field, name string, params map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.colls[collection]
	if params == nil {
		delete(c.index, field)
		return
	}
	var kvs []*commonpb.KeyValuePair
	for k, v := range params {
		kvs = append(kvs, &commonpb.KeyValuePair{Key: k, Value: v})
	}
	c.index[field] = &milvuspb.IndexDescription{IndexName: name, Params: kvs, FieldName: field, State: commonpb.IndexState_Finished}
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
		bm25: make(map[string]string), nextPK: 1, unloaded: make(map[string]bool),
	}
	s.nextID++
	// Milvus adds the $meta field itself when the dynamic field is enabled.
	hasMeta := false
	for _, f := range schema.Fields {
		hasMeta = hasMeta || f.IsDynamic
	}
	if schema.EnableDynamicField && !hasMeta {
		schema.Fields = append(schema.Fields, &schemapb.FieldSchema{Name: metaField, DataType: schemapb.DataType_JSON, IsDynamic: true})
	}
	for _, fn := range schema.Functions {
		if fn.Type == schemapb.FunctionType_BM25 && len(fn.InputFieldNames) == 1 && len(fn.OutputFieldNames) == 1 {
			c.bm25[fn.OutputFieldNames[0]] = fn.InputFieldNames[0]
			for _, f := range schema.Fields {
				if f.Name == fn.OutputFieldNames[0] {
					f.IsFunctionOutput = true
				}
			}
		}
	}
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
	if err := checkFunctions(&schema); err != nil {
		return failf("%v", err), nil
	}
	pks := 0
	for _, f := range schema.Fields {
		if f.IsPrimaryKey {
			pks++
			if f.AutoID && f.DataType != schemapb.DataType_Int64 {
				return failf("field %s: auto id is only supported on int64 primary keys", f.Name), nil
			}
		}
		if f.IsPartitionKey && f.Nullable {
			// https://milvus.io/docs/nullable-and-default.md: "Fields marked
			// as nullable cannot be used as partition keys."
			return failf("field %s: partition key field not support nullable", f.Name), nil
		}
		if f.IsPrimaryKey && f.Nullable {
			return failf("field %s: primary field not support null", f.Name), nil
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
	if n := vectorFields(schema.Fields); n > MaxVectorFields {
		return failf("maximum vector field's number should be limited to %d", MaxVectorFields), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.colls[req.CollectionName] != nil {
		return failf("collection %s already exists", req.CollectionName), nil
	}
	s.addCollection(&schema)
	s.colls[schema.Name].props = req.Properties
	return ok(), nil
}

// checkFunctions validates BM25 functions as Milvus does
// (https://milvus.io/docs/full-text-search.md): one VARCHAR input with
// enable_analyzer, one SPARSE_FLOAT_VECTOR output.
func checkFunctions(schema *schemapb.CollectionSchema) error {
	byName := map[string]*schemapb.FieldSchema{}
	for _, f := range schema.Fields {
		byName[f.Name] = f
	}
	for _, fn := range schema.Functions {
		if fn.Type != schemapb.FunctionType_BM25 {
			return fmt.Errorf("function %s: only BM25 functions are modelled", fn.Name)
		}
		if len(fn.InputFieldNames) != 1 || len(fn.OutputFieldNames) != 1 {
			return fmt.Errorf("function %s: BM25 takes one input and one output field", fn.Name)
		}
		in, out := byName[fn.InputFieldNames[0]], byName[fn.OutputFieldNames[0]]
		if in == nil || in.DataType != schemapb.DataType_VarChar || typeParam(in, "enable_analyzer") != "true" {
			return fmt.Errorf("function %s: input field %s must be a VARCHAR with enable_analyzer", fn.Name, fn.InputFieldNames[0])
		}
		if out == nil || out.DataType != schemapb.DataType_SparseFloatVector {
			return fmt.Errorf("function %s: output field %s must be a SPARSE_FLOAT_VECTOR", fn.Name, fn.OutputFieldNames[0])
		}
		out.IsFunctionOutput = true
	}
	return nil
}

// AlterCollection sets collection properties
// (https://milvus.io/docs/modify-collection.md); a key set again replaces
// its value, DeleteKeys removes keys.
func (s *Server) AlterCollection(ctx context.Context, req *milvuspb.AlterCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return st, nil
	}
	drop := map[string]bool{}
	for _, k := range req.DeleteKeys {
		drop[k] = true
	}
	for _, p := range req.Properties {
		drop[p.Key] = true
	}
	var kept []*commonpb.KeyValuePair
	for _, p := range c.props {
		if !drop[p.Key] {
			kept = append(kept, p)
		}
	}
	c.props = append(kept, req.Properties...)
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
		ShardsNum: 1, ConsistencyLevel: commonpb.ConsistencyLevel_Bounded, Properties: c.props,
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

// IndexName returns the name of the index on a field ("" if none).
func (s *Server) IndexName(collection, field string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.colls[collection]; c != nil && c.index[field] != nil {
		return c.index[field].IndexName
	}
	return ""
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

// LoadCollection loads every field of a released collection. On a loaded
// one it adds nothing (upstream's milvus_store: "load_collection does not
// add a field to an already loaded collection"), unless it is a refresh,
// which loads fields added since, but only when the collection holds rows
// (upstream's _reload_for_new_field: "on an empty collection it does not
// load the new field").
func (s *Server) LoadCollection(ctx context.Context, req *milvuspb.LoadCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return st, nil
	}
	for _, f := range c.schema.Fields {
		if isVector(f.DataType) && c.index[f.Name] == nil {
			// The sparse output of a function needs its index too.
			return failf("there is no vector index on field: [%s], please create index firstly", f.Name), nil
		}
	}
	switch {
	case !c.loaded:
		c.unloaded = map[string]bool{}
	case req.Refresh && len(c.rows) > 0:
		c.unloaded = map[string]bool{}
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

// MaxVectorFields is how many vector fields (sparse included) a
// collection may have; upstream's milvus_store: "Milvus caps a collection
// at ten vector fields, sparse included."
const MaxVectorFields = 10

func vectorFields(fields []*schemapb.FieldSchema) int {
	n := 0
	for _, f := range fields {
		if isVector(f.DataType) {
			n++
		}
	}
	return n
}

func isVector(t schemapb.DataType) bool {
	switch t {
	case schemapb.DataType_FloatVector, schemapb.DataType_BinaryVector, schemapb.DataType_Float16Vector,
		schemapb.DataType_BFloat16Vector, schemapb.DataType_SparseFloatVector:
		return true
	}
	return false
}

// Schema returns a copy of a collection's schema as the server holds it
// (nil if none), for tests that check what a client created.
func (s *Server) Schema(collection string) *schemapb.CollectionSchema {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.colls[collection]
	if c == nil {
		return nil
	}
	return proto.Clone(c.schema).(*schemapb.CollectionSchema)
}

// Property returns a collection property ("" if unset).
func (s *Server) Property(collection, key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c := s.colls[collection]; c != nil {
		return kv(c.props, key)
	}
	return ""
}

// EnvAddr is the variable naming a real Milvus (host:port) for the tests.
const EnvAddr = "RAGNODE_MILVUS_ADDR"

// Target returns the Milvus a test runs against: the one named by
// RAGNODE_MILVUS_ADDR when set, with srv nil (a test that inspects the
// stand-in's state then skips), else a fresh stand-in.
func Target(t testing.TB) (addr string, srv *Server) {
	t.Helper()
	if a := os.Getenv(EnvAddr); a != "" {
		return a, nil
	}
	return Start(t)
}

// NeedStandIn skips a test that inspects the stand-in's state when the
// suite runs against a real Milvus.
func NeedStandIn(t testing.TB, srv *Server) {
	t.Helper()
	if srv == nil {
		t.Skipf("inspects the stand-in's state; %s points at a real Milvus", EnvAddr)
	}
}
