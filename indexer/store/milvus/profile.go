package milvus

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"strconv"

	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/index"
	"github.com/milvus-io/milvus/client/v2/milvusclient"
)

// Profile names the collection layout the store creates, verifies and
// writes.
type Profile string

const (
	// ProfileRagnode is ragnode's own layout: VARCHAR primary key (the
	// deterministic chunk ID), typed columns, metadata in one JSON column,
	// dense search only.
	ProfileRagnode Profile = "ragnode"
	// ProfileRagondin is the collection RAGondin (2025) creates: auto INT64
	// _id, text with an analyzer feeding a BM25 function into sparse,
	// partition (partition key), file_id, vector (HNSW COSINE), metadata as
	// dynamic fields.
	ProfileRagondin Profile = "ragondin"
	// ProfileOpenRAG is OpenRAG's (2026) collection: RAGondin's plus a
	// nullable TIMESTAMPTZ created_at with an STL_SORT index and the
	// openrag.schema_version collection property.
	ProfileOpenRAG Profile = "openrag"
)

// SchemaVersionProperty is the collection property OpenRAG checks before
// it uses a collection.
const SchemaVersionProperty = "openrag.schema_version"

// DefaultOpenRAGSchemaVersion is the version of the schema this package
// creates for the openrag profile: version 1 is the one that added
// created_at (OpenRAG's migration "add temporal fields, 0 -> 1").
const DefaultOpenRAGSchemaVersion = "1"

// Valid reports an unknown profile.
func (p Profile) Valid() error {
	switch p {
	case ProfileRagnode, ProfileRagondin, ProfileOpenRAG:
		return nil
	}
	return fmt.Errorf("milvus: unknown schema profile %q (want ragnode, ragondin or openrag)", string(p))
}

func (p Profile) upstream() bool { return p == ProfileRagondin || p == ProfileOpenRAG }

// DefaultCollection is the profile's collection name when none is
// configured: RAGondin's and OpenRAG's vdb_test, else ragnode.
func (p Profile) DefaultCollection() string {
	if p.upstream() {
		return "vdb_test"
	}
	return "ragnode"
}

// Field names. The ragnode profile's are typed columns; the upstream
// profiles keep the ragnode-only ones as dynamic keys.
const (
	fID        = "id"
	fPK        = "_id" // upstream auto INT64 primary key
	fPartition = "partition"
	fFileID    = "file_id"
	fIdx       = "idx"
	fPage      = "page"
	fText      = "text"
	fHeadings  = "headings"
	fMetadata  = "metadata"
	fVector    = "vector"
	fSparse    = "sparse"
	fCreatedAt = "created_at"
	fMeta      = "$meta" // the dynamic field

	// Dynamic keys ragnode adds to upstream rows. chunk_id and
	// chunk_index carry what the ragnode profile has as id and idx; task,
	// seq, attempt and write fence replacement.
	kChunkID    = "chunk_id"
	kChunkIndex = "chunk_index"
	kHeadings   = "headings"
	kPage       = "page"
	kTask       = "ragnode_task"
	kSeq        = "ragnode_seq"
	kAttempt    = "ragnode_attempt"
	kWrite      = "ragnode_write"

	maxIDLen      = 64
	maxTextLen    = 65535
	maxNameLen    = 1024
	upstreamLen   = 65535 // RAGondin's MAX_LENGTH for text, partition, file_id
	bm25Function  = "text_bm25_emb"
	writeBatch    = 500 // rows per write request, to stay far below gRPC limits
	timestamptzPB = entity.FieldType(schemapb.DataType_Timestamptz)
)

// analyzerParams is RAGondin's and OpenRAG's analyzer for text: the
// standard tokenizer and a stop filter with their markers plus the English
// and French lists.
var analyzerParams = map[string]any{
	"tokenizer": "standard",
	"filter": []any{map[string]any{
		"type": "stop",
		"stop_words": []any{"<image_description>", "</image_description>", "[Image Placeholder]",
			"_english_", "_french_", "[CHUNK_START]", "[CHUNK_END]", "[CONTEXT]"},
	}},
}

// Query page sizes: Milvus caps offset+limit at 16384, and rows with
// vectors are large. Variables so tests can exercise paging.
var (
	idPage  = 10000
	rowPage = 1000
)

type indexSpec struct {
	field, name string
	params      map[string]string // index_type, metric_type and the rest
}

func (ix indexSpec) index() index.Index { return index.NewGenericIndex(ix.name, ix.params) }

type profileSchema struct {
	schema      *entity.Schema
	indexes     []indexSpec
	consistency entity.ConsistencyLevel
}

func (p Profile) schema(coll string, dim int) profileSchema {
	varchar := func(name string, n int64) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(entity.FieldTypeVarChar).WithMaxLength(n)
	}
	typed := func(name string, t entity.FieldType) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(t)
	}
	if !p.upstream() {
		return profileSchema{
			schema: entity.NewSchema().WithName(coll).WithDescription("ragnode document chunks").
				WithField(varchar(fID, maxIDLen).WithIsPrimaryKey(true)).
				WithField(varchar(fPartition, maxNameLen).WithIsPartitionKey(true)).
				WithField(varchar(fFileID, maxNameLen)).
				WithField(typed(fIdx, entity.FieldTypeInt64)).
				WithField(typed(fPage, entity.FieldTypeInt64)).
				WithField(varchar(fText, maxTextLen)).
				WithField(typed(fHeadings, entity.FieldTypeJSON)).
				WithField(typed(fMetadata, entity.FieldTypeJSON)).
				WithField(typed(fVector, entity.FieldTypeFloatVector).WithDim(int64(dim))),
			indexes:     []indexSpec{{field: fVector, params: map[string]string{"index_type": "HNSW", "metric_type": "COSINE", "M": "16", "efConstruction": "200"}}},
			consistency: entity.ClBounded,
		}
	}
	// The upstream collection, field for field (OpenRAG's
	// MilvusDB._create_schema and _create_index).
	sch := entity.NewSchema().WithName(coll).WithDynamicFieldEnabled(true).WithAutoID(true).
		WithField(typed(fPK, entity.FieldTypeInt64).WithIsPrimaryKey(true).WithIsAutoID(true)).
		WithField(varchar(fText, upstreamLen).WithEnableAnalyzer(true).WithEnableMatch(true).WithAnalyzerParams(analyzerParams)).
		WithField(varchar(fPartition, upstreamLen).WithIsPartitionKey(true)).
		WithField(varchar(fFileID, upstreamLen)).
		WithField(typed(fVector, entity.FieldTypeFloatVector).WithDim(int64(dim)))
	if p == ProfileOpenRAG {
		// client/v2 v2.6.2 numbers TIMESTAMPTZ 15 while the protocol says 26;
		// the protocol's number is what Milvus and pymilvus use.
		sch = sch.WithField(typed(fCreatedAt, timestamptzPB).WithNullable(true))
	}
	sch = sch.WithField(typed(fSparse, entity.FieldTypeSparseVector)).
		WithFunction(entity.NewFunction().WithName(bm25Function).WithType(entity.FunctionTypeBM25).
			WithInputFields(fText).WithOutputFields(fSparse))
	idx := []indexSpec{
		{field: fFileID, name: "file_id_idx", params: map[string]string{"index_type": "INVERTED"}},
		{field: fPartition, name: "partition_idx", params: map[string]string{"index_type": "INVERTED"}},
		{field: fVector, name: fVector, params: map[string]string{"index_type": "HNSW", "metric_type": "COSINE", "M": "128", "efConstruction": "256"}},
		{field: fSparse, name: "sparse_idx", params: map[string]string{"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25",
			"inverted_index_algo": "DAAT_MAXSCORE", "bm25_k1": "1.2", "bm25_b": "0.75"}},
	}
	if p == ProfileOpenRAG {
		idx = append(idx, indexSpec{field: fCreatedAt, name: "created_at_idx", params: map[string]string{"index_type": "STL_SORT"}})
	}
	return profileSchema{schema: sch, indexes: idx, consistency: entity.ClStrong}
}

// verify checks an existing collection against the profile: every field
// the profile has (type, primary key, auto ID, partition key, lengths,
// analyzer), the BM25 function, every index and its parameters, and for
// openrag the schema version. Extra fields are allowed (a newer RAGondin
// may add some); the first difference is named in the error.
func (s *Store) verify(ctx context.Context) error {
	coll, err := s.c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(s.coll))
	if err != nil {
		return fmt.Errorf("milvus: describe collection %s: %w", s.coll, err)
	}
	have := make(map[string]*entity.Field)
	for _, f := range coll.Schema.Fields {
		have[f.Name] = f
	}
	differ := func(format string, args ...any) error {
		return fmt.Errorf("milvus collection %s does not match schema profile %s: %s", s.coll, s.prof, fmt.Sprintf(format, args...))
	}
	if v := have[fVector]; v != nil && v.DataType == entity.FieldTypeFloatVector {
		dim, err := strconv.Atoi(v.TypeParams[entity.TypeParamDim])
		if err != nil {
			return differ("field %q has unreadable dimension %q", fVector, v.TypeParams[entity.TypeParamDim])
		}
		if s.dim == 0 {
			s.dim = dim
		}
		if dim != s.dim {
			return fmt.Errorf("milvus collection %s has dimension %d, ragnode is configured for %d", s.coll, dim, s.dim)
		}
	}
	want := s.prof.schema(s.coll, s.dim)
	for _, w := range want.schema.Fields {
		h := have[w.Name]
		switch {
		case h == nil:
			return differ("it has no field %q", w.Name)
		case h.DataType != w.DataType:
			return differ("field %q is %s, the profile needs %s", w.Name, typeName(h.DataType), typeName(w.DataType))
		case h.PrimaryKey != w.PrimaryKey:
			return differ("field %q primary key is %v, the profile needs %v", w.Name, h.PrimaryKey, w.PrimaryKey)
		case h.AutoID != w.AutoID:
			return differ("field %q auto ID is %v, the profile needs %v", w.Name, h.AutoID, w.AutoID)
		case h.IsPartitionKey != w.IsPartitionKey:
			return differ("field %q partition key is %v, the profile needs %v", w.Name, h.IsPartitionKey, w.IsPartitionKey)
		case h.Nullable != w.Nullable:
			return differ("field %q nullable is %v, the profile needs %v", w.Name, h.Nullable, w.Nullable)
		}
		for _, key := range []string{entity.TypeParamMaxLength, "enable_analyzer", "enable_match"} {
			if wv, ok := w.TypeParams[key]; ok && h.TypeParams[key] != wv {
				return differ("field %q %s is %q, the profile needs %q", w.Name, key, h.TypeParams[key], wv)
			}
		}
		if wv, ok := w.TypeParams["analyzer_params"]; ok && !sameJSON(wv, h.TypeParams["analyzer_params"]) {
			return differ("field %q analyzer_params are %s, the profile needs %s", w.Name, h.TypeParams["analyzer_params"], wv)
		}
	}
	if s.prof.upstream() {
		if !coll.Schema.EnableDynamicField {
			return differ("its dynamic field is disabled")
		}
		found := false
		for _, fn := range coll.Schema.Functions {
			if fn.Type == entity.FunctionTypeBM25 && reflect.DeepEqual(fn.InputFieldNames, []string{fText}) && reflect.DeepEqual(fn.OutputFieldNames, []string{fSparse}) {
				found = true
			}
		}
		if !found {
			return differ("it has no BM25 function from %q to %q", fText, fSparse)
		}
	}
	if err := s.verifyIndexes(ctx, want.indexes, differ); err != nil {
		return err
	}
	if s.prof == ProfileOpenRAG {
		if got := coll.Properties[SchemaVersionProperty]; got != s.version {
			return differ("property %s is %q, the profile needs %q", SchemaVersionProperty, got, s.version)
		}
	}
	return nil
}

// verifyIndexes checks each wanted index by field. A ragnode collection
// whose vector index is missing gets one (older ragnode versions created
// it after the collection); any other missing or different index is
// refused.
func (s *Store) verifyIndexes(ctx context.Context, want []indexSpec, differ func(string, ...any) error) error {
	// The raw DescribeIndex names each index's field, which the client's
	// IndexDescription does not carry.
	resp, err := s.c.GetService().DescribeIndex(ctx, &milvuspb.DescribeIndexRequest{CollectionName: s.coll})
	if err == nil && resp.GetStatus().GetCode() != 0 && resp.GetStatus().GetCode() != 700 {
		err = fmt.Errorf("%s", resp.GetStatus().GetReason())
	}
	if err != nil {
		return fmt.Errorf("milvus: describe indexes of %s: %w", s.coll, err)
	}
	byField := map[string]map[string]string{}
	for _, d := range resp.GetIndexDescriptions() {
		byField[d.GetFieldName()] = flattenIndexParams(entity.KvPairsMap(d.GetParams()))
	}
	for _, w := range want {
		h := byField[w.field]
		if h == nil {
			if !s.prof.upstream() {
				task, err := s.c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(s.coll, w.field, w.index()))
				if err == nil {
					err = task.Await(ctx)
				}
				if err != nil {
					return fmt.Errorf("milvus: create index on %s.%s: %w", s.coll, w.field, err)
				}
				continue
			}
			return differ("field %q has no index", w.field)
		}
		keys := make([]string, 0, len(w.params))
		for k := range w.params {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s.prof == ProfileRagnode && k != "index_type" && k != "metric_type" {
				continue // ragnode's own graph parameters may be tuned
			}
			if !sameParam(h[k], w.params[k]) {
				return differ("index on %q has %s %q, the profile needs %q", w.field, k, h[k], w.params[k])
			}
		}
	}
	return nil
}

// flattenIndexParams merges the JSON "params" value pymilvus sends into the
// top level, so parameters compare however the index was created.
func flattenIndexParams(p map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range p {
		out[k] = v
	}
	var nested map[string]any
	if json.Unmarshal([]byte(p["params"]), &nested) == nil {
		for k, v := range nested {
			if _, ok := out[k]; !ok {
				out[k] = fmt.Sprint(v)
			}
		}
	}
	return out
}

// sameParam compares parameter values, numbers by value ("1.2" == "1.20").
func sameParam(a, b string) bool {
	if a == b {
		return true
	}
	x, err1 := strconv.ParseFloat(a, 64)
	y, err2 := strconv.ParseFloat(b, 64)
	return err1 == nil && err2 == nil && x == y
}

func sameJSON(a, b string) bool {
	var x, y any
	if json.Unmarshal([]byte(a), &x) != nil || json.Unmarshal([]byte(b), &y) != nil {
		return false
	}
	return reflect.DeepEqual(x, y)
}

func typeName(t entity.FieldType) string {
	if t == timestamptzPB {
		return "Timestamptz"
	}
	return t.Name()
}
