package milvus

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/client/v2/milvusclient"

	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/milvustest"
)

func openV3(t *testing.T, addr, coll, vfield string, d int) *Store {
	t.Helper()
	s, err := Open(ctx, Config{Address: addr, Collection: coll, Dim: d, Schema: ProfileOpenRAG, VectorField: vfield, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// meta decodes a stored row's dynamic field.
func meta(t *testing.T, r milvustest.Row) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r["$meta"].([]byte), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func TestOpenRAGSchema3Collection(t *testing.T) {
	addr, srv := milvustest.Start(t)
	openV3(t, addr, "vdb_test", "vector_bge_m3", dim)
	sch := srv.Schema("vdb_test")
	byName := map[string]*schemapb.FieldSchema{}
	for _, f := range sch.Fields {
		byName[f.Name] = f
	}
	if f := byName["vector_bge_m3"]; f == nil || f.DataType != schemapb.DataType_FloatVector || !f.Nullable {
		t.Errorf("dense field %v", f)
	}
	if byName["vector"] != nil {
		t.Error("a collection made for a named embedder has the legacy vector field")
	}
	text := byName["text"]
	params := map[string]string{}
	for _, kv := range text.TypeParams {
		params[kv.Key] = kv.Value
	}
	if _, on := params["enable_match"]; on || !strings.Contains(params["analyzer_params"], `"filter":["lowercase",`) {
		t.Errorf("text params %v", params)
	}
	if v := srv.Property("vdb_test", SchemaVersionProperty); v != "3" {
		t.Errorf("schema version %q", v)
	}
}

// TestOpenRAGRowsCarryUpstreamKeys: a file written in schema 3 has the row
// keys upstream's _chunk_to_entity writes, created_at from the upload's
// metadata in the typed column, and the neighbour links upstream's
// searcher (_fetch_surrounding) follows.
func TestOpenRAGRowsCarryUpstreamKeys(t *testing.T) {
	addr, srv := milvustest.Start(t)
	s := openV3(t, addr, "vdb_test", "vector_bge_m3", dim)
	recs := make([]store.Record, 3)
	for i := range recs {
		recs[i] = ragondinRec("p", "f", i, fmt.Sprintf("chunk %d of the annual report", i), axis(i))
		recs[i].Metadata["created_at"] = "2025-03-04T05:06:07+02:00"
	}
	recs[1].Metadata["chunk_type"] = "forged" // upstream's typed fields win over metadata
	before := time.Now().UTC()
	if err := s.ReplaceFile(ctx, "p", "f", Fence{Task: "t-f", Seq: 1, Attempt: 1}, recs); err != nil {
		t.Fatal(err)
	}
	rows := srv.Rows("vdb_test")
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	wantCreated := time.Date(2025, 3, 4, 3, 6, 7, 0, time.UTC).UnixMicro()
	bySection := map[float64]map[string]any{}
	for _, r := range rows {
		m := meta(t, r)
		idx := int(m["chunk_index"].(float64))
		if r["created_at"] != wantCreated {
			t.Errorf("chunk %d created_at %v, want %d", idx, r["created_at"], wantCreated)
		}
		if r["vector_bge_m3"] == nil {
			t.Errorf("chunk %d has no vector", idx)
		}
		if m["chunk_type"] != "text" || m["page"] != float64(idx+1) || m["header"] != "H" || m["token_count"].(float64) < 5 {
			t.Errorf("chunk %d keys %v", idx, m)
		}
		at, err := time.Parse("2006-01-02T15:04:05.000000-07:00", m["indexed_at"].(string))
		if err != nil || at.Before(before.Truncate(time.Microsecond)) || !strings.HasSuffix(m["indexed_at"].(string), "+00:00") {
			t.Errorf("indexed_at %v: %v", m["indexed_at"], err)
		}
		if _, dup := m["created_at"]; dup {
			t.Errorf("created_at is also a dynamic key: %v", m)
		}
		sid := m["section_id"].(float64)
		if sid >= 1<<53 {
			t.Errorf("section_id %v does not survive a float64 round trip", sid)
		}
		bySection[sid] = m
	}
	// The links: each chunk's neighbours are the chunks before and after it
	// in the file, none past the ends.
	for sid, m := range bySection {
		idx := int(m["chunk_index"].(float64))
		prev, next := m["prev_section_id"], m["next_section_id"]
		if (idx == 0) != (prev == nil) || (idx == 2) != (next == nil) {
			t.Errorf("chunk %d links %v %v", idx, prev, next)
		}
		if prev != nil && int(bySection[prev.(float64)]["chunk_index"].(float64)) != idx-1 || next != nil && int(bySection[next.(float64)]["chunk_index"].(float64)) != idx+1 {
			t.Errorf("chunk %d (section %v) links to the wrong chunks", idx, sid)
		}
	}
	// Upstream's searcher asks for the neighbours of a hit by section_id
	// within the hit's partition.
	mid := bySection[func() float64 {
		for sid, m := range bySection {
			if m["chunk_index"] == float64(1) {
				return sid
			}
		}
		return -1
	}()]
	expr := fmt.Sprintf(`(section_id in [%d, %d]) and (partition == "p")`, int64(mid["prev_section_id"].(float64)), int64(mid["next_section_id"].(float64)))
	if n, err := srv.Count("vdb_test", expr); err != nil || n != 2 {
		t.Fatalf("neighbours of chunk 1: %d, %v", n, err)
	}
	// Reads give the upload's metadata back, the row keys as row state.
	got, err := s.FileRecords(ctx, "p", "f")
	if err != nil || len(got) != 3 {
		t.Fatalf("FileRecords %v %v", got, err)
	}
	if got[0].Metadata["created_at"] != "2025-03-04T05:06:07+02:00" {
		t.Errorf("created_at read back as %v", got[0].Metadata["created_at"])
	}
	for _, k := range []string{"section_id", "prev_section_id", "next_section_id", "chunk_type", "token_count", "header", "indexed_at", kCreatedAtRaw} {
		if _, ok := got[1].Metadata[k]; ok {
			t.Errorf("row key %s leaks into metadata %v", k, got[1].Metadata)
		}
	}
	// A metadata rewrite keeps the row state: same sections, same
	// indexed_at, same created_at.
	old := map[float64]string{}
	for sid, m := range bySection {
		old[sid] = m["indexed_at"].(string)
	}
	if err := s.UpdateMetadata(ctx, "p", "f", map[string]any{"lang": "de"}); err != nil {
		t.Fatal(err)
	}
	rows = srv.Rows("vdb_test")
	if len(rows) != 3 {
		t.Fatalf("%d rows after the rewrite", len(rows))
	}
	for _, r := range rows {
		m := meta(t, r)
		if old[m["section_id"].(float64)] != m["indexed_at"] || m["lang"] != "de" || r["created_at"] != wantCreated {
			t.Errorf("rewritten row %v (created_at %v)", m, r["created_at"])
		}
	}
}

func TestOpenRAGCreatedAtThatIsNoTimeStaysNull(t *testing.T) {
	addr, srv := milvustest.Start(t)
	s := openV3(t, addr, "vdb_test", "", dim)
	cases := []string{"yesterday", "2025-01-02T03:04:05+15:00", ""}
	var recs []store.Record
	for i, v := range cases {
		r := ragondinRec("p", fmt.Sprint("f", i), 0, "text", axis(i))
		r.Metadata["created_at"] = v
		recs = append(recs, r)
	}
	day := ragondinRec("p", "day", 0, "text", axis(0))
	day.Metadata["created_at"] = "2025-01-02"
	recs = append(recs, day)
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	for _, r := range srv.Rows("vdb_test") {
		m := meta(t, r)
		want := any(nil)
		if r["file_id"] == "day" {
			want = time.Date(2025, 1, 2, 0, 0, 0, 0, time.UTC).UnixMicro()
		}
		if r["created_at"] != want {
			t.Errorf("%s: created_at %v, want %v", r["file_id"], r["created_at"], want)
		}
		if m[kCreatedAtRaw] == nil {
			t.Errorf("%s: the given value is lost: %v", r["file_id"], m)
		}
	}
}

// TestOpenRAGSecondEmbedder: a second embedder's node adds its own dense
// field to the live collection (nullable, indexed, loaded), and each
// embedder's searches see only the rows it embedded, as upstream's
// ensure_vector_field and per-field search do.
func TestOpenRAGSecondEmbedder(t *testing.T) {
	addr, srv := milvustest.Start(t)
	a := openV3(t, addr, "vdb_test", "vector_a", dim)
	if err := a.ReplaceFile(ctx, "pa", "fa", Fence{Task: "ta", Seq: 1, Attempt: 1}, []store.Record{ragondinRec("pa", "fa", 0, "alpha", axis(0))}); err != nil {
		t.Fatal(err)
	}
	b := openV3(t, addr, "vdb_test", "vector_b", 3)
	sch := srv.Schema("vdb_test")
	var vb *schemapb.FieldSchema
	for _, f := range sch.Fields {
		if f.Name == "vector_b" {
			vb = f
		}
	}
	if vb == nil || !vb.Nullable || srv.Index("vdb_test", "vector_b")["index_type"] != "HNSW" {
		t.Fatalf("second embedder's field %v, index %v", vb, srv.Index("vdb_test", "vector_b"))
	}
	if b.Dim() != 3 || a.Dim() != dim {
		t.Fatalf("dims %d %d", a.Dim(), b.Dim())
	}
	vec3 := []float32{0, 1, 0}
	if err := b.ReplaceFile(ctx, "pb", "fb", Fence{Task: "tb", Seq: 2, Attempt: 1}, []store.Record{{
		ID: store.ChunkID("pb", "fb", 0), Partition: "pb", FileID: "fb", Text: "beta", Vector: vec3, Metadata: map[string]any{},
	}}); err != nil {
		t.Fatal(err)
	}
	hits, err := b.Search(ctx, store.Query{Vector: vec3, TopK: 5, Mode: store.ModeDense})
	if err != nil || len(hits) != 1 || hits[0].FileID != "fb" {
		t.Fatalf("b's dense search %v %v", hits, err)
	}
	hits, err = a.Search(ctx, store.Query{Vector: axis(0), TopK: 5, Mode: store.ModeDense})
	if err != nil || len(hits) != 1 || hits[0].FileID != "fa" {
		t.Fatalf("a's dense search %v %v", hits, err)
	}
	// A reopen of either finds its field and verifies it.
	if s := openV3(t, addr, "vdb_test", "vector_b", 0); s.Dim() != 3 {
		t.Fatalf("reopened dim %d", s.Dim())
	}
	// Reading a's file through b's field fails, naming why, instead of
	// returning vectors of the wrong rows.
	if _, err := b.FileRecords(ctx, "pa", "fa"); err == nil || !strings.Contains(err.Error(), "another embedder") {
		t.Fatalf("cross-embedder read: %v", err)
	}
}

// TestOpenRAGNoLegacyFieldAdded: on a collection whose embedders have
// their own fields, a node left at the default "vector" is refused naming
// them, rather than writing rows into a field OpenRAG does not search.
func TestOpenRAGNoLegacyFieldAdded(t *testing.T) {
	addr, srv := milvustest.Start(t)
	openV3(t, addr, "vdb_test", "vector_a", dim).Close()
	_, err := Open(ctx, Config{Address: addr, Dim: dim, Schema: ProfileOpenRAG})
	if err == nil || !strings.Contains(err.Error(), "(vector_a)") || !strings.Contains(err.Error(), "--vdb-vector-field") {
		t.Fatalf("err = %v", err)
	}
	for _, f := range srv.Schema("vdb_test").Fields {
		if f.Name == "vector" {
			t.Fatal("the legacy field was added")
		}
	}
}

// TestOpenRAGAddedFieldOnEmptyCollection: on an empty loaded collection a
// refresh would leave the new field unloaded, so it is released and
// loaded; a search on the field then works.
func TestOpenRAGAddedFieldOnEmptyCollection(t *testing.T) {
	addr, _ := milvustest.Start(t)
	openV3(t, addr, "vdb_test", "vector_a", dim)
	b := openV3(t, addr, "vdb_test", "vector_b", dim)
	if _, err := b.Search(ctx, store.Query{Vector: axis(1), TopK: 1, Mode: store.ModeDense}); err != nil {
		t.Fatalf("search on the added field: %v", err)
	}
}

func TestOpenRAGVectorFieldCap(t *testing.T) {
	addr, srv := milvustest.Start(t)
	openV3(t, addr, "vdb_test", "vector_0", dim).Close()
	c, err := milvusclient.New(ctx, &milvusclient.ClientConfig{Address: addr})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	// Eight more embedders: with sparse, ten vector fields.
	for i := 1; i <= 8; i++ {
		openV3(t, addr, "vdb_test", fmt.Sprint("vector_", i), dim).Close()
	}
	_, err = Open(ctx, Config{Address: addr, Dim: dim, Schema: ProfileOpenRAG, VectorField: "vector_9"})
	if err == nil || !strings.Contains(err.Error(), "10 vector fields") {
		t.Fatalf("eleventh vector field: %v", err)
	}
	if n := len(srv.Schema("vdb_test").Fields); n != 1+3+9+1+1+1 { // _id text partition file_id, 9 dense, created_at, sparse, $meta
		t.Fatalf("%d fields", n)
	}
}

// TestOpenRAGLowercaseAnalyzer: schema 3's analyzer lowercases, so a query
// finds a term whatever its case; schema 1's did not (the reason for
// upstream's migration 2).
func TestOpenRAGLowercaseAnalyzer(t *testing.T) {
	for _, c := range []struct {
		prof Profile
		hits int
	}{{ProfileOpenRAG, 1}, {ProfileOpenRAGv1, 0}} {
		t.Run(string(c.prof), func(t *testing.T) {
			addr, _ := milvustest.Target(t)
			s := openProfile(t, addr, collName(t, addr), c.prof, dim)
			if err := s.Upsert(ctx, []store.Record{ragondinRec("p", "f", 0, "Rapport annuel", axis(0)), ragondinRec("p", "g", 0, "budget", axis(1))}); err != nil {
				t.Fatal(err)
			}
			hits, err := s.Search(ctx, store.Query{Text: "rapport", Mode: store.ModeBM25, TopK: 5})
			if err != nil || len(hits) != c.hits {
				t.Fatalf("bm25 'rapport' over 'Rapport annuel': %v %v, want %d hits", hits, err, c.hits)
			}
		})
	}
}

// TestUpstreamSearchParameters: what reaches Milvus is upstream's search:
// dense ef 64 on the embedder's field, BM25 with drop_ratio_build 0.2,
// each hybrid leg top_k deep, RRF k 100.
func TestUpstreamSearchParameters(t *testing.T) {
	addr, srv := milvustest.Start(t)
	s := openV3(t, addr, "vdb_test", "vector_bge_m3", dim)
	if err := s.Upsert(ctx, []store.Record{ragondinRec("p", "f", 0, "raft leader", axis(0))}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Search(ctx, store.Query{Vector: axis(0), Text: "raft", TopK: 7}); err != nil {
		t.Fatal(err)
	}
	calls := srv.Searches()
	if len(calls) != 2 {
		t.Fatalf("calls %+v", calls)
	}
	dense, sparse := calls[0], calls[1]
	if !dense.Hybrid || dense.AnnsField != "vector_bge_m3" || dense.Metric != "COSINE" || dense.TopK != 7 || dense.Params["ef"] != float64(64) {
		t.Errorf("dense leg %+v", dense)
	}
	if sparse.AnnsField != "sparse" || sparse.Metric != "BM25" || sparse.TopK != 7 || sparse.Params["drop_ratio_build"] != 0.2 {
		t.Errorf("bm25 leg %+v", sparse)
	}
	if dense.Ranker != "rrf" || dense.RankParams["k"] != float64(100) {
		t.Errorf("ranker %q %v", dense.Ranker, dense.RankParams)
	}
	// More hits than ef 64 asks for a larger ef, which HNSW requires.
	if _, err := s.Search(ctx, store.Query{Vector: axis(0), TopK: 100, Mode: store.ModeDense}); err != nil {
		t.Fatal(err)
	}
	if last := srv.Searches()[2]; last.Hybrid || last.Params["ef"] != float64(100) {
		t.Errorf("dense search for 100 hits %+v", last)
	}
}

// TestSchemaVersionRefusalSaysWhatToRun: every mismatch is a
// *SchemaVersionError naming the version found, the one needed and the
// command or flag that fixes it.
func TestSchemaVersionRefusalSaysWhatToRun(t *testing.T) {
	cases := []struct {
		name        string
		stamp       string // "" = no property
		prof        Profile
		found, want string
		says        []string
	}{
		{"RAGondin's collection, openrag", "", ProfileOpenRAG, "0", "3", []string{"migrate.py --dry-run", "--vdb-schema ragondin"}},
		{"v1, openrag", "1", ProfileOpenRAG, "1", "3", []string{"migrate.py --dry-run", "--vdb-schema openrag-v1"}},
		{"v2, openrag", "2", ProfileOpenRAG, "2", "3", []string{"migrate.py --dry-run", "no ragnode profile writes version 2"}},
		{"v3, openrag-v1", "3", ProfileOpenRAGv1, "3", "1", []string{"newer OpenRAG", "--vdb-schema openrag"}},
		{"v3, ragondin", "3", ProfileRagondin, "3", "0", []string{"newer OpenRAG", "--vdb-schema openrag"}},
		{"unreadable", "three", ProfileOpenRAG, "three", "3", []string{"not a version"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, srv := milvustest.Start(t)
			var props []*commonpb.KeyValuePair
			if c.stamp != "" {
				props = append(props, &commonpb.KeyValuePair{Key: SchemaVersionProperty, Value: c.stamp})
			}
			srv.CreateRaw(upstreamSchema(ragondinAnalyzer), props...)
			ragondinIndexes(srv)
			_, err := Open(ctx, Config{Address: addr, Schema: c.prof, Timeout: 5 * time.Second})
			var ve *SchemaVersionError
			if !errors.As(err, &ve) {
				t.Fatalf("err = %v, want a *SchemaVersionError", err)
			}
			if ve.Found != c.found || ve.Want != c.want || ve.Profile != c.prof || ve.Collection != "vdb_test" {
				t.Errorf("error %+v", ve)
			}
			msg := err.Error()
			if !strings.Contains(msg, "version "+c.found) || !strings.Contains(msg, "version "+c.want) {
				t.Errorf("%q does not name both versions", msg)
			}
			for _, s := range c.says {
				if !strings.Contains(msg, s) {
					t.Errorf("%q does not say %q", msg, s)
				}
			}
			if len(srv.Rows("vdb_test")) != 0 || srv.Property("vdb_test", SchemaVersionProperty) != c.stamp {
				t.Error("the refused collection was changed")
			}
		})
	}
}

// TestSchema3FieldsVerified: a schema-3 collection whose embedder field
// lost its nullability (a hand-made one) is refused naming the field.
func TestSchema3FieldsVerified(t *testing.T) {
	addr, srv := milvustest.Start(t)
	kv := func(k, v string) *commonpb.KeyValuePair { return &commonpb.KeyValuePair{Key: k, Value: v} }
	sch := upstreamSchema(`{"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["<image_description>", "</image_description>", "[Image Placeholder]", "_english_", "_french_", "[CHUNK_START]", "[CHUNK_END]", "[CONTEXT]"]}]}`)
	sch.Fields[1].TypeParams = sch.Fields[1].TypeParams[:2]
	sch.Fields[1].TypeParams = append(sch.Fields[1].TypeParams, kv("analyzer_params", `{"tokenizer": "standard", "filter": ["lowercase", {"type": "stop", "stop_words": ["<image_description>", "</image_description>", "[Image Placeholder]", "_english_", "_french_", "[CHUNK_START]", "[CHUNK_END]", "[CONTEXT]"]}]}`))
	sch.Fields = append(sch.Fields, &schemapb.FieldSchema{Name: "created_at", DataType: schemapb.DataType_Timestamptz, Nullable: true})
	srv.CreateRaw(sch, kv(SchemaVersionProperty, "3"))
	ragondinIndexes(srv)
	srv.SetIndex("vdb_test", "created_at", "created_at_idx", map[string]string{"index_type": "STL_SORT"})
	_, err := Open(ctx, Config{Address: addr, Schema: ProfileOpenRAG, Timeout: 5 * time.Second})
	if err == nil || !regexp.MustCompile(`field "vector" nullable is false, the profile needs true`).MatchString(err.Error()) {
		t.Fatalf("err = %v", err)
	}
	if !slices.ContainsFunc(srv.Schema("vdb_test").Fields, func(f *schemapb.FieldSchema) bool { return f.Name == "vector" && !f.Nullable }) {
		t.Fatal("the collection was changed")
	}
}

// TestSectionLinksAcrossBatches: a file written in several insert batches
// is linked end to end, with one indexed_at.
func TestSectionLinksAcrossBatches(t *testing.T) {
	addr, srv := milvustest.Start(t)
	s := openV3(t, addr, "vdb_test", "", dim)
	recs := make([]store.Record, writeBatch+1)
	for i := range recs {
		recs[i] = ragondinRec("p", "big", i, fmt.Sprint("chunk ", i), axis(i))
	}
	if err := s.ReplaceFile(ctx, "p", "big", Fence{Task: "t", Seq: 1, Attempt: 1}, recs); err != nil {
		t.Fatal(err)
	}
	at := map[any]bool{}
	for _, r := range srv.Rows("vdb_test") {
		m := meta(t, r)
		i := int(m["chunk_index"].(float64))
		at[m["indexed_at"]] = true
		if hasNext := m["next_section_id"] != nil; hasNext != (i < writeBatch) {
			t.Errorf("chunk %d next_section_id %v", i, m["next_section_id"])
		}
	}
	if len(at) != 1 {
		t.Errorf("indexed_at values %v", at)
	}
}
