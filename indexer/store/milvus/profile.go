package milvus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"

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
	// ProfileOpenRAGv1 is OpenRAG's collection at schema version 1:
	// RAGondin's plus a nullable TIMESTAMPTZ created_at with an STL_SORT
	// index and the openrag.schema_version property. Kept for collections
	// OpenRAG has not migrated yet.
	ProfileOpenRAGv1 Profile = "openrag-v1"
	// ProfileOpenRAG is OpenRAG's newest collection, schema version 3
	// (migrations 1.add_created_at_temporal_fields, 2.rebuild_text_analyzer,
	// 3.split_vector_per_embedder): the BM25 analyzer lowercases and text
	// match is off, and the dense vectors live in one nullable field per
	// embedder (Config.VectorField; "vector" is the field of an embedder
	// whose model_endpoints.vector_field is NULL).
	ProfileOpenRAG Profile = "openrag"
)

// Profiles lists every profile, oldest upstream layout last.
var Profiles = []Profile{ProfileRagnode, ProfileOpenRAG, ProfileOpenRAGv1, ProfileRagondin}

// SchemaVersionProperty is the collection property OpenRAG checks before
// it uses a collection.
const SchemaVersionProperty = "openrag.schema_version"

// OpenRAGSchemaVersion is the schema version of the openrag profile,
// OpenRAG's VectorDBConfig.schema_version.
const OpenRAGSchemaVersion = "3"

// LegacyVectorField is the dense field of an embedder whose
// model_endpoints.vector_field is NULL, and the only dense field of the
// older layouts (upstream's resolve_vector_field(None)).
const LegacyVectorField = "vector"

// vectorFieldPrefix starts every per-embedder dense field's name
// (upstream's VECTOR_FIELD_PREFIX).
const vectorFieldPrefix = "vector_"

// MaxVectorFields is Milvus's cap on vector fields per collection, sparse
// included, as upstream's ensure_vector_field enforces it.
const MaxVectorFields = 10

// Valid reports an unknown profile.
func (p Profile) Valid() error {
	for _, q := range Profiles {
		if p == q {
			return nil
		}
	}
	return fmt.Errorf("milvus: unknown schema profile %q (want %s)", string(p), profileList())
}

func profileList() string {
	names := make([]string, len(Profiles))
	for i, p := range Profiles {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

func (p Profile) upstream() bool { return p != ProfileRagnode }

// openrag reports the layouts with the typed created_at and the version
// property.
func (p Profile) openrag() bool { return p == ProfileOpenRAG || p == ProfileOpenRAGv1 }

// SchemaVersion is the openrag.schema_version the profile stamps and
// requires; "" for the layouts that carry none.
func (p Profile) SchemaVersion() string {
	switch p {
	case ProfileOpenRAG:
		return OpenRAGSchemaVersion
	case ProfileOpenRAGv1:
		return "1"
	}
	return ""
}

// profileForVersion is the ragnode profile that writes a collection at an
// OpenRAG schema version ("" when none does).
func profileForVersion(v string) Profile {
	switch v {
	case "", "0":
		return ProfileRagondin
	case "1":
		return ProfileOpenRAGv1
	case OpenRAGSchemaVersion:
		return ProfileOpenRAG
	}
	return ""
}

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
	fVector    = LegacyVectorField
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
	// The upload's created_at as given: the typed column holds only what
	// parses as a time, and reading it back would need a TIMESTAMPTZ
	// decoder the Go client lacks (see timestamptzColumn).
	kCreatedAtRaw = "ragnode_created_at"

	// Row keys upstream's MilvusVectorStore._chunk_to_entity writes; its
	// searcher fetches a hit's neighbours by section_id within the
	// partition.
	kSectionID   = "section_id"
	kPrevSection = "prev_section_id"
	kNextSection = "next_section_id"
	kChunkType   = "chunk_type"
	kTokenCount  = "token_count"
	kHeader      = "header"
	kIndexedAt   = "indexed_at"

	maxIDLen      = 64
	maxTextLen    = 65535
	maxNameLen    = 1024
	upstreamLen   = 65535 // RAGondin's MAX_LENGTH for text, partition, file_id
	bm25Function  = "text_bm25_emb"
	writeBatch    = 500 // rows per write request, to stay far below gRPC limits
	timestamptzPB = entity.FieldType(schemapb.DataType_Timestamptz)
)

// stopFilter is the stop filter every upstream analyzer has: the chunk
// markers OpenRAG's chunker inserts plus the English and French lists.
var stopFilter = map[string]any{
	"type": "stop",
	"stop_words": []any{"<image_description>", "</image_description>", "[Image Placeholder]",
		"_english_", "_french_", "[CHUNK_START]", "[CHUNK_END]", "[CONTEXT]"},
}

// analyzerParams is RAGondin's and OpenRAG v1's analyzer for text.
var analyzerParams = map[string]any{"tokenizer": "standard", "filter": []any{stopFilter}}

// analyzerParamsV3 is OpenRAG's analyzer since migration
// 2.rebuild_text_analyzer: lowercase first, because a custom analyzer
// inherits nothing and the stop lists are lowercase.
var analyzerParamsV3 = map[string]any{"tokenizer": "standard", "filter": []any{"lowercase", stopFilter}}

// Search parameters of upstream's MilvusVectorStore (the same tuning as
// its legacy MilvusDB, so they apply to every upstream profile).
const (
	denseEF        = 64  // DEFAULT_DENSE_SEARCH_PARAMS params.ef
	dropRatioBuild = 0.2 // DEFAULT_BM25_SEARCH_PARAMS params.drop_ratio_build
)

// Query page sizes: Milvus caps offset+limit at 16384, and rows with
// vectors are large. Variables so tests can exercise paging.
var (
	idPage  = 10000
	rowPage = 1000
)

// indexSpec is one index as Milvus's DescribeIndex reports it: type,
// metric and the other build parameters.
type indexSpec struct {
	field, name       string
	indexType, metric string
	params            map[string]any
}

// flat is the parameter map sent to CreateIndex, and what a described
// index flattens to (flattenIndexParams) for comparison.
func (ix indexSpec) flat() map[string]string {
	m := map[string]string{"index_type": ix.indexType}
	if ix.metric != "" {
		m["metric_type"] = ix.metric
	}
	for k, v := range ix.params {
		m[k] = fmt.Sprint(v)
	}
	return m
}

func (ix indexSpec) index() index.Index { return index.NewGenericIndex(ix.name, ix.flat()) }

type profileSchema struct {
	schema      *entity.Schema
	indexes     []indexSpec
	consistency entity.ConsistencyLevel
	properties  map[string]string
}

// dense is the HNSW COSINE index every upstream dense field gets
// (upstream's _add_dense_index); Milvus names an index created without a
// name after its field.
func denseIndex(field string) indexSpec {
	return indexSpec{field: field, name: field, indexType: "HNSW", metric: "COSINE",
		params: map[string]any{"M": 128, "efConstruction": 256}}
}

func (p Profile) schema(coll string, dim int, vfield string) profileSchema {
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
			indexes:     []indexSpec{{field: fVector, indexType: "HNSW", metric: "COSINE", params: map[string]any{"M": 16, "efConstruction": 200}}},
			consistency: entity.ClBounded,
		}
	}
	// The upstream collection, field for field and in upstream's order
	// (OpenRAG's _create_schema and _create_index).
	text := varchar(fText, upstreamLen).WithEnableAnalyzer(true)
	dense := typed(fVector, entity.FieldTypeFloatVector).WithDim(int64(dim))
	if p == ProfileOpenRAG {
		// Migration 2 dropped enable_match; migration 3 made the dense
		// field per embedder and nullable (other embedders' rows leave it
		// null).
		text = text.WithAnalyzerParams(analyzerParamsV3)
		dense = typed(vfield, entity.FieldTypeFloatVector).WithDim(int64(dim)).WithNullable(true)
	} else {
		text = text.WithEnableMatch(true).WithAnalyzerParams(analyzerParams)
	}
	sch := entity.NewSchema().WithName(coll).WithDynamicFieldEnabled(true).WithAutoID(true).
		WithField(typed(fPK, entity.FieldTypeInt64).WithIsPrimaryKey(true).WithIsAutoID(true)).
		WithField(text).
		WithField(varchar(fPartition, upstreamLen).WithIsPartitionKey(true)).
		WithField(varchar(fFileID, upstreamLen)).
		WithField(dense)
	if p.openrag() {
		// client/v2 v2.6.2 numbers TIMESTAMPTZ 15 while the protocol says 26;
		// the protocol's number is what Milvus and pymilvus use.
		sch = sch.WithField(typed(fCreatedAt, timestamptzPB).WithNullable(true))
	}
	sch = sch.WithField(typed(fSparse, entity.FieldTypeSparseVector)).
		WithFunction(entity.NewFunction().WithName(bm25Function).WithType(entity.FunctionTypeBM25).
			WithInputFields(fText).WithOutputFields(fSparse))
	idx := []indexSpec{
		{field: fFileID, name: "file_id_idx", indexType: "INVERTED"},
		{field: fPartition, name: "partition_idx", indexType: "INVERTED"},
		denseIndex(dense.Name),
		{field: fSparse, name: "sparse_idx", indexType: "SPARSE_INVERTED_INDEX", metric: "BM25",
			params: map[string]any{"inverted_index_algo": "DAAT_MAXSCORE", "bm25_k1": 1.2, "bm25_b": 0.75}},
	}
	var props map[string]string
	if p.openrag() {
		idx = append(idx, indexSpec{field: fCreatedAt, name: "created_at_idx", indexType: "STL_SORT"})
		props = map[string]string{SchemaVersionProperty: p.SchemaVersion()}
	}
	return profileSchema{schema: sch, indexes: idx, consistency: entity.ClStrong, properties: props}
}

// SchemaVersionError is the refusal to open an OpenRAG collection at
// another schema version than the profile's: OpenRAG's own search raises
// VDBSchemaMigrationRequiredError on any mismatch, so writing into it
// would only produce rows nobody reads.
type SchemaVersionError struct {
	Collection string
	Profile    Profile
	// Found is the collection's openrag.schema_version ("0" when it has
	// none, as upstream reads a missing stamp); Want is the profile's
	// ("0" for RAGondin's layout, which carries none).
	Found, Want string
	// Fix is what to run.
	Fix string
}

func (e *SchemaVersionError) Error() string {
	return fmt.Sprintf("milvus collection %s is at OpenRAG schema version %s, --vdb-schema %s writes version %s: %s",
		e.Collection, e.Found, e.Profile, e.Want, e.Fix)
}

// migrateCmd is how OpenRAG's newest guide runs its Milvus migrations.
const migrateCmd = "uv run python services/persistence/migrations/milvus/migrate.py --dry-run, then without --dry-run"

func versionError(coll string, p Profile, found string) *SchemaVersionError {
	want := p.SchemaVersion()
	if want == "" {
		want = "0"
	}
	e := &SchemaVersionError{Collection: coll, Profile: p, Found: found, Want: want}
	fv, ferr := strconv.Atoi(found)
	wv, _ := strconv.Atoi(want)
	same := profileForVersion(found)
	switch {
	case ferr != nil:
		e.Fix = fmt.Sprintf("the property is not a version; set the collection's real one (alter_collection_properties %s) or let OpenRAG's migration runner report it", SchemaVersionProperty)
	case fv < wv && same != "":
		e.Fix = fmt.Sprintf("migrate it with OpenRAG's runner, OpenRAG and ragnode stopped (%s), or keep writing its layout with --vdb-schema %s", migrateCmd, same)
	case fv < wv:
		e.Fix = fmt.Sprintf("migrate it with OpenRAG's runner, OpenRAG and ragnode stopped (%s); no ragnode profile writes version %s", migrateCmd, found)
	case same != "":
		e.Fix = fmt.Sprintf("a newer OpenRAG migrated it: start ragnode with --vdb-schema %s", same)
	default:
		e.Fix = fmt.Sprintf("a newer OpenRAG migrated it and no ragnode profile writes version %s: downgrade it with OpenRAG's runner (migrate.py --downgrade --target %s)", found, want)
	}
	return e
}

// checkVersion compares the collection's schema version with the
// profile's before anything else, as upstream's search does.
func (s *Store) checkVersion(coll *entity.Collection) error {
	raw, stamped := coll.Properties[SchemaVersionProperty]
	want := s.prof.SchemaVersion()
	switch {
	case !s.prof.upstream():
		return nil
	case want == "" && !stamped:
		return nil // RAGondin's layout carries no version
	case !stamped:
		return versionError(s.coll, s.prof, "0")
	case raw != want:
		return versionError(s.coll, s.prof, raw)
	}
	return nil
}

// verify checks an existing collection against the profile: the schema
// version first, then every field the profile has (type, primary key,
// auto ID, partition key, nullability, lengths, analyzer), the BM25
// function and every index and its parameters. Extra fields are allowed
// (other embedders' dense fields, a newer layout's additions); the first
// difference is named in the error. In the openrag profile a missing
// dense field of this embedder is added, as upstream's
// ensure_vector_field does on an embedder's first write.
func (s *Store) verify(ctx context.Context) error {
	coll, err := s.c.DescribeCollection(ctx, milvusclient.NewDescribeCollectionOption(s.coll))
	if err != nil {
		return fmt.Errorf("milvus: describe collection %s: %w", s.coll, err)
	}
	if err := s.checkVersion(coll); err != nil {
		return err
	}
	have := make(map[string]*entity.Field)
	for _, f := range coll.Schema.Fields {
		have[f.Name] = f
	}
	differ := func(format string, args ...any) error {
		return fmt.Errorf("milvus collection %s does not match schema profile %s: %s", s.coll, s.prof, fmt.Sprintf(format, args...))
	}
	if v := have[s.vfield]; v != nil && v.DataType == entity.FieldTypeFloatVector {
		dim, err := strconv.Atoi(v.TypeParams[entity.TypeParamDim])
		if err != nil {
			return differ("field %q has unreadable dimension %q", s.vfield, v.TypeParams[entity.TypeParamDim])
		}
		if s.dim == 0 {
			s.dim = dim
		}
		if dim != s.dim {
			in := ""
			if s.vfield != fVector {
				in = " in field " + s.vfield
			}
			return fmt.Errorf("milvus collection %s has dimension %d%s, ragnode is configured for %d", s.coll, dim, in, s.dim)
		}
	}
	want := s.prof.schema(s.coll, s.dim, s.vfield)
	added := false
	for _, w := range want.schema.Fields {
		h := have[w.Name]
		if h == nil && w.Name == s.vfield && s.prof == ProfileOpenRAG {
			if s.vfield == LegacyVectorField {
				// Migration 3 dropped the shared field and gave every
				// embedder its own: adding "vector" back would hide this
				// node's rows from OpenRAG's searches, which read the
				// embedder's field.
				return fmt.Errorf("milvus collection %s has no field %q: OpenRAG keeps one dense field per embedder there (%s); start ragnode with --vdb-vector-field set to the model_endpoints.vector_field of the embedder it uses",
					s.coll, LegacyVectorField, strings.Join(denseFields(coll.Schema), ", "))
			}
			if err := s.addVectorField(ctx, coll.Schema, w); err != nil {
				return err
			}
			added = true
			continue
		}
		if err := compareField(w, h); err != nil {
			return differ("%s", err)
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
	if added {
		return s.reloadForNewField(ctx)
	}
	return nil
}

func compareField(w, h *entity.Field) error {
	switch {
	case h == nil:
		return fmt.Errorf("it has no field %q", w.Name)
	case h.DataType != w.DataType:
		return fmt.Errorf("field %q is %s, the profile needs %s", w.Name, typeName(h.DataType), typeName(w.DataType))
	case h.PrimaryKey != w.PrimaryKey:
		return fmt.Errorf("field %q primary key is %v, the profile needs %v", w.Name, h.PrimaryKey, w.PrimaryKey)
	case h.AutoID != w.AutoID:
		return fmt.Errorf("field %q auto ID is %v, the profile needs %v", w.Name, h.AutoID, w.AutoID)
	case h.IsPartitionKey != w.IsPartitionKey:
		return fmt.Errorf("field %q partition key is %v, the profile needs %v", w.Name, h.IsPartitionKey, w.IsPartitionKey)
	case h.Nullable != w.Nullable:
		return fmt.Errorf("field %q nullable is %v, the profile needs %v", w.Name, h.Nullable, w.Nullable)
	}
	for _, key := range []string{entity.TypeParamMaxLength, "enable_analyzer", "enable_match"} {
		if wv, ok := w.TypeParams[key]; ok && h.TypeParams[key] != wv {
			return fmt.Errorf("field %q %s is %q, the profile needs %q", w.Name, key, h.TypeParams[key], wv)
		}
	}
	if wv, ok := w.TypeParams["analyzer_params"]; ok && !sameJSON(wv, h.TypeParams["analyzer_params"]) {
		return fmt.Errorf("field %q analyzer_params are %s, the profile needs %s", w.Name, h.TypeParams["analyzer_params"], wv)
	}
	return nil
}

// addVectorField adds this embedder's dense field to a schema-3
// collection that lacks it, nullable (the rows already there have no
// vector for it) and indexed, as upstream's _ensure_vector_field_sync.
func (s *Store) addVectorField(ctx context.Context, sch *entity.Schema, w *entity.Field) error {
	if s.dim == 0 {
		return fmt.Errorf("milvus collection %s has no dense field %q for this embedder and no dimension is configured to add it", s.coll, w.Name)
	}
	n := 0
	for _, f := range sch.Fields {
		if isVectorType(f.DataType) {
			n++
		}
	}
	if n >= MaxVectorFields {
		return fmt.Errorf("milvus collection %s already holds %d vector fields, the most Milvus allows; delete an unused embedder in OpenRAG to make room for %q", s.coll, MaxVectorFields, w.Name)
	}
	err := s.c.AddCollectionField(ctx, milvusclient.NewAddCollectionFieldOption(s.coll, w))
	if err != nil && !strings.Contains(strings.ToLower(err.Error()), "already exist") {
		return fmt.Errorf("milvus: add vector field %s to %s: %w", w.Name, s.coll, err)
	}
	ix := denseIndex(w.Name)
	task, err := s.c.CreateIndex(ctx, milvusclient.NewCreateIndexOption(s.coll, ix.field, ix.index()).WithIndexName(ix.name))
	if err == nil {
		err = task.Await(ctx)
	}
	if err != nil {
		return fmt.Errorf("milvus: index vector field %s of %s: %w", w.Name, s.coll, err)
	}
	return nil
}

// reloadForNewField makes a field added to a loaded collection
// searchable. Upstream's _reload_for_new_field: a refresh keeps the other
// fields serving, but on an empty collection it does not load the new
// field, so an empty one is released and loaded instead.
func (s *Store) reloadForNewField(ctx context.Context) error {
	state, err := s.c.GetLoadState(ctx, milvusclient.NewGetLoadStateOption(s.coll))
	if err != nil {
		return fmt.Errorf("milvus: load state of %s: %w", s.coll, err)
	}
	if state.State != entity.LoadStateLoaded {
		return nil // prepare loads it with every field
	}
	rows, err := s.exists(ctx, "")
	if err != nil {
		return err
	}
	if !rows {
		if err := s.c.ReleaseCollection(ctx, milvusclient.NewReleaseCollectionOption(s.coll)); err != nil {
			return fmt.Errorf("milvus: release %s: %w", s.coll, err)
		}
		return nil
	}
	// RefreshLoad, not LoadCollection(...WithRefresh(true)): client/v2
	// v2.6.2 drops that option from the request, so the load is a no-op.
	task, err := s.c.RefreshLoad(ctx, milvusclient.NewRefreshLoadOption(s.coll))
	if err == nil {
		err = task.Await(ctx)
	}
	if err != nil {
		return fmt.Errorf("milvus: refresh load of %s: %w", s.coll, err)
	}
	return nil
}

func denseFields(sch *entity.Schema) []string {
	var out []string
	for _, f := range sch.Fields {
		if isVectorType(f.DataType) && f.DataType != entity.FieldTypeSparseVector {
			out = append(out, f.Name)
		}
	}
	return out
}

func isVectorType(t entity.FieldType) bool {
	switch t {
	case entity.FieldTypeFloatVector, entity.FieldTypeBinaryVector, entity.FieldTypeFloat16Vector,
		entity.FieldTypeBFloat16Vector, entity.FieldTypeSparseVector, entity.FieldTypeInt8Vector:
		return true
	}
	return false
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
		err = errors.New(resp.GetStatus().GetReason())
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
		flat := w.flat()
		keys := make([]string, 0, len(flat))
		for k := range flat {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if s.prof == ProfileRagnode && k != "index_type" && k != "metric_type" {
				continue // ragnode's own graph parameters may be tuned
			}
			if !sameParam(h[k], flat[k]) {
				return differ("index on %q has %s %q, the profile needs %q", w.field, k, h[k], flat[k])
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

// typeName is the protocol's name of a type (the client's own names
// miss some, and number TIMESTAMPTZ differently).
func typeName(t entity.FieldType) string { return schemapb.DataType(t).String() }
