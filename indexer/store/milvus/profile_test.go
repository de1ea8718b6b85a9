package milvus

import (
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

// collName is a collection name of the test's own, dropped at the end, so
// the suite can run against one real Milvus (RAGNODE_MILVUS_ADDR).
func collName(t *testing.T, addr string) string {
	t.Helper()
	name := "rn_" + regexp.MustCompile(`[^A-Za-z0-9_]`).ReplaceAllString(t.Name(), "_") + fmt.Sprintf("_%d", time.Now().UnixNano()%1e9)
	t.Cleanup(func() {
		c, err := milvusclient.New(ctx, &milvusclient.ClientConfig{Address: addr})
		if err != nil {
			return
		}
		defer c.Close(ctx)
		_ = c.DropCollection(ctx, milvusclient.NewDropCollectionOption(name))
	})
	return name
}

func openProfile(t *testing.T, addr, coll string, p Profile, d int) *Store {
	t.Helper()
	s, err := Open(ctx, Config{Address: addr, Collection: coll, Dim: d, Schema: p, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// ragondinRec is a chunk with the metadata RAGondin's indexer sets.
func ragondinRec(part, file string, idx int, text string, vec []float32) store.Record {
	return store.Record{
		ID: store.ChunkID(part, file, idx), Partition: part, FileID: file, Index: idx, Text: text, Page: idx + 1,
		Headings: []string{"H"}, Vector: vec,
		Metadata: map[string]any{"filename": file + ".pdf", "source": "/data/" + file + ".pdf", "file_size": "12 KB",
			"created_at": "2025-01-02T03:04:05", "lang": "fr", metaTask: "t-" + file},
	}
}

func TestUpstreamProfilesCreateTheExactCollection(t *testing.T) {
	for _, p := range []Profile{ProfileRagondin, ProfileOpenRAGv1} {
		t.Run(string(p), func(t *testing.T) {
			addr, srv := milvustest.Target(t)
			milvustest.NeedStandIn(t, srv)
			openProfile(t, addr, "vdb_test", p, dim)
			sch := srv.Schema("vdb_test")
			if !sch.EnableDynamicField || !sch.AutoID {
				t.Errorf("dynamic %v auto %v", sch.EnableDynamicField, sch.AutoID)
			}
			got := map[string]*schemapb.FieldSchema{}
			for _, f := range sch.Fields {
				got[f.Name] = f
			}
			param := func(f, k string) string {
				for _, kv := range got[f].GetTypeParams() {
					if kv.Key == k {
						return kv.Value
					}
				}
				return ""
			}
			if f := got["_id"]; f == nil || f.DataType != schemapb.DataType_Int64 || !f.IsPrimaryKey || !f.AutoID {
				t.Errorf("_id = %v", f)
			}
			if f := got["text"]; f == nil || f.DataType != schemapb.DataType_VarChar || param("text", "max_length") != "65535" ||
				param("text", "enable_analyzer") != "true" || param("text", "enable_match") != "true" ||
				!strings.Contains(param("text", "analyzer_params"), `"tokenizer":"standard"`) || !strings.Contains(param("text", "analyzer_params"), "_french_") {
				t.Errorf("text = %v", f)
			}
			if f := got["partition"]; f == nil || !f.IsPartitionKey || param("partition", "max_length") != "65535" {
				t.Errorf("partition = %v", f)
			}
			if f := got["sparse"]; f == nil || f.DataType != schemapb.DataType_SparseFloatVector {
				t.Errorf("sparse = %v", f)
			}
			if f := got["vector"]; f == nil || param("vector", "dim") != "4" {
				t.Errorf("vector = %v", f)
			}
			if len(sch.Functions) != 1 || sch.Functions[0].Type != schemapb.FunctionType_BM25 || sch.Functions[0].Name != "text_bm25_emb" ||
				!slices.Equal(sch.Functions[0].InputFieldNames, []string{"text"}) || !slices.Equal(sch.Functions[0].OutputFieldNames, []string{"sparse"}) {
				t.Errorf("functions = %v", sch.Functions)
			}
			if ix := srv.Index("vdb_test", "vector"); ix["index_type"] != "HNSW" || ix["metric_type"] != "COSINE" || ix["M"] != "128" || ix["efConstruction"] != "256" {
				t.Errorf("vector index %v", ix)
			}
			if ix := srv.Index("vdb_test", "sparse"); ix["index_type"] != "SPARSE_INVERTED_INDEX" || ix["metric_type"] != "BM25" || ix["bm25_k1"] != "1.2" || ix["bm25_b"] != "0.75" || ix["inverted_index_algo"] != "DAAT_MAXSCORE" {
				t.Errorf("sparse index %v", ix)
			}
			for _, f := range []string{"file_id", "partition"} {
				if ix := srv.Index("vdb_test", f); ix["index_type"] != "INVERTED" {
					t.Errorf("%s index %v", f, ix)
				}
			}
			created := got["created_at"]
			version := srv.Property("vdb_test", SchemaVersionProperty)
			if p == ProfileOpenRAGv1 {
				if created == nil || created.DataType != schemapb.DataType_Timestamptz || !created.Nullable {
					t.Errorf("created_at = %v", created)
				}
				if ix := srv.Index("vdb_test", "created_at"); ix["index_type"] != "STL_SORT" {
					t.Errorf("created_at index %v", ix)
				}
				if version != "1" {
					t.Errorf("schema version %q", version)
				}
			} else if created != nil || version != "" {
				t.Errorf("ragondin has created_at %v, version %q", created, version)
			}
		})
	}
}

// upstreamSchema is the collection as RAGondin's own code creates it
// (pymilvus: index params nested under "params").
func upstreamSchema(analyzer string) *schemapb.CollectionSchema {
	kv := func(k, v string) *commonpb.KeyValuePair { return &commonpb.KeyValuePair{Key: k, Value: v} }
	return &schemapb.CollectionSchema{Name: "vdb_test", EnableDynamicField: true, AutoID: true, Fields: []*schemapb.FieldSchema{
		{Name: "_id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true, AutoID: true},
		{Name: "text", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "65535"), kv("enable_analyzer", "true"), kv("enable_match", "true"), kv("analyzer_params", analyzer)}},
		{Name: "partition", DataType: schemapb.DataType_VarChar, IsPartitionKey: true, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "65535")}},
		{Name: "file_id", DataType: schemapb.DataType_VarChar, TypeParams: []*commonpb.KeyValuePair{kv("max_length", "65535")}},
		{Name: "vector", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{kv("dim", "4")}},
		{Name: "sparse", DataType: schemapb.DataType_SparseFloatVector},
	}, Functions: []*schemapb.FunctionSchema{{Name: "text_bm25_emb", Type: schemapb.FunctionType_BM25, InputFieldNames: []string{"text"}, OutputFieldNames: []string{"sparse"}}}}
}

const ragondinAnalyzer = `{"tokenizer": "standard", "filter": [{"type": "stop", "stop_words": ["<image_description>", "</image_description>", "[Image Placeholder]", "_english_", "_french_", "[CHUNK_START]", "[CHUNK_END]", "[CONTEXT]"]}]}`

func ragondinIndexes(srv *milvustest.Server) {
	srv.SetIndex("vdb_test", "file_id", "file_id_idx", map[string]string{"index_type": "INVERTED"})
	srv.SetIndex("vdb_test", "partition", "partition_idx", map[string]string{"index_type": "INVERTED"})
	srv.SetIndex("vdb_test", "vector", "vector", map[string]string{"index_type": "HNSW", "metric_type": "COSINE", "params": `{"M": 128, "efConstruction": 256, "metric_type": "COSINE"}`})
	srv.SetIndex("vdb_test", "sparse", "sparse_idx", map[string]string{"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25", "params": `{"inverted_index_algo": "DAAT_MAXSCORE", "bm25_k1": 1.2, "bm25_b": 0.75}`})
}

func TestCollectionMadeByRAGondinOpens(t *testing.T) {
	addr, srv := milvustest.Target(t)
	milvustest.NeedStandIn(t, srv)
	srv.CreateRaw(upstreamSchema(ragondinAnalyzer))
	ragondinIndexes(srv)
	s := openProfile(t, addr, "vdb_test", ProfileRagondin, 0)
	if s.Dim() != dim {
		t.Fatalf("dim %d", s.Dim())
	}
	if err := s.Upsert(ctx, []store.Record{ragondinRec("p", "f", 0, "hello world", axis(0))}); err != nil {
		t.Fatal(err)
	}
	// The row is what RAGondin reads: metadata as top-level dynamic keys.
	rows := srv.Rows("vdb_test")
	if len(rows) != 1 {
		t.Fatalf("rows %v", rows)
	}
	meta := string(rows[0]["$meta"].([]byte))
	for _, want := range []string{`"filename":"f.pdf"`, `"source":"/data/f.pdf"`, `"file_size":"12 KB"`, `"created_at":"2025-01-02T03:04:05"`, `"page":1`, `"lang":"fr"`, `"ragnode_task":"t-f"`} {
		if !strings.Contains(meta, want) {
			t.Errorf("$meta %s lacks %s", meta, want)
		}
	}
	if rows[0]["text"] != "hello world" || rows[0]["partition"] != "p" || rows[0]["file_id"] != "f" {
		t.Errorf("row %v", rows[0])
	}
}

func TestIncompatibleCollectionRefusedNamingTheField(t *testing.T) {
	cases := []struct {
		name    string
		prof    Profile
		mutate  func(*schemapb.CollectionSchema)
		after   func(*milvustest.Server)
		props   []*commonpb.KeyValuePair
		message string
	}{
		{"other analyzer", ProfileRagondin, func(s *schemapb.CollectionSchema) {
			s.Fields[1].TypeParams[3].Value = `{"tokenizer": "jieba"}`
		}, nil, nil, `field "text" analyzer_params`},
		{"no sparse", ProfileRagondin, func(s *schemapb.CollectionSchema) {
			s.Fields = s.Fields[:5]
			s.Functions = nil
		}, func(srv *milvustest.Server) { srv.SetIndex("vdb_test", "sparse", "", nil) }, nil, `no field "sparse"`},
		{"varchar key", ProfileRagondin, func(s *schemapb.CollectionSchema) {
			s.Fields[0] = &schemapb.FieldSchema{Name: "_id", DataType: schemapb.DataType_VarChar, IsPrimaryKey: true,
				TypeParams: []*commonpb.KeyValuePair{{Key: "max_length", Value: "64"}}}
		}, nil, nil, `field "_id" is VarChar, the profile needs Int64`},
		{"index params", ProfileRagondin, nil, func(srv *milvustest.Server) {
			srv.SetIndex("vdb_test", "sparse", "sparse_idx", map[string]string{"index_type": "SPARSE_INVERTED_INDEX", "metric_type": "BM25", "bm25_k1": "1.5", "bm25_b": "0.75", "inverted_index_algo": "DAAT_MAXSCORE"})
		}, nil, `index on "sparse" has bm25_k1 "1.5"`},
		{"no partition index", ProfileRagondin, nil, func(srv *milvustest.Server) { srv.SetIndex("vdb_test", "partition", "", nil) }, nil, `field "partition" has no index`},
		{"no dynamic field", ProfileRagondin, func(s *schemapb.CollectionSchema) { s.EnableDynamicField = false }, nil, nil, "dynamic field is disabled"},
		{"openrag-v1 without created_at", ProfileOpenRAGv1, nil, nil, []*commonpb.KeyValuePair{{Key: SchemaVersionProperty, Value: "1"}}, `no field "created_at"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			addr, srv := milvustest.Target(t)
			milvustest.NeedStandIn(t, srv)
			sch := upstreamSchema(ragondinAnalyzer)
			if c.mutate != nil {
				c.mutate(sch)
			}
			srv.CreateRaw(sch, c.props...)
			ragondinIndexes(srv)
			if c.after != nil {
				c.after(srv)
			}
			_, err := Open(ctx, Config{Address: addr, Schema: c.prof, Timeout: 5 * time.Second})
			if err == nil || !strings.Contains(err.Error(), c.message) {
				t.Fatalf("err = %v, want it to name %s", err, c.message)
			}
		})
	}
}

func TestOpenRAGSchemaVersionChecked(t *testing.T) {
	addr, _ := milvustest.Target(t)
	coll := collName(t, addr)
	openProfile(t, addr, coll, ProfileOpenRAGv1, dim).Close()
	_, err := Open(ctx, Config{Address: addr, Collection: coll, Schema: ProfileOpenRAG})
	var ve *SchemaVersionError
	if !errors.As(err, &ve) || ve.Found != "1" || ve.Want != "3" || !strings.Contains(err.Error(), "migrate.py") || !strings.Contains(err.Error(), "--vdb-schema openrag-v1") {
		t.Fatalf("err = %v", err)
	}
	if s := openProfile(t, addr, coll, ProfileOpenRAGv1, 0); s.Dim() != dim {
		t.Fatalf("reopened with dim %d", s.Dim())
	}
	if _, err := Open(ctx, Config{Address: addr, Collection: coll, Schema: "bogus"}); err == nil || !strings.Contains(err.Error(), "unknown schema profile") {
		t.Fatalf("err = %v", err)
	}
}

func TestUpstreamRoundTripAndFilters(t *testing.T) {
	addr, _ := milvustest.Target(t)
	coll := collName(t, addr)
	s := openProfile(t, addr, coll, ProfileRagondin, dim)
	a0, a1 := ragondinRec("p1", "a", 0, "alpha text", axis(0)), ragondinRec("p1", "a", 1, "beta text", axis(1))
	b0 := ragondinRec("p2", "b", 0, "gamma text", axis(2))
	b0.Metadata["lang"] = "en"
	if err := s.Upsert(ctx, []store.Record{a0, a1, b0}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "", ""); !slices.Equal(got, sorted(a0, a1, b0)) {
		t.Fatalf("ids %v", got)
	}
	// Writing again replaces, never duplicates.
	a0.Text = "alpha again"
	if err := s.Upsert(ctx, []store.Record{a0}); err != nil {
		t.Fatal(err)
	}
	recs, err := s.FileRecords(ctx, "p1", "a")
	if err != nil || len(recs) != 2 || recs[0].Text != "alpha again" || recs[0].Page != 1 || recs[0].Metadata["filename"] != "a.pdf" || !slices.Equal(recs[0].Headings, []string{"H"}) {
		t.Fatalf("records %+v, %v", recs, err)
	}
	if _, ok := recs[0].Metadata[kWrite]; ok {
		t.Errorf("fence keys leak into metadata: %v", recs[0].Metadata)
	}
	hits, err := s.Search(ctx, store.Query{Vector: axis(2), TopK: 5, Filter: map[string]string{"lang": "en"}})
	if err != nil || len(hits) != 1 || hits[0].ID != b0.ID {
		t.Fatalf("filtered hits %v, %v", hits, err)
	}
	hits, err = s.Search(ctx, store.Query{Vector: axis(2), TopK: 5, Partitions: []string{"p1"}})
	if err != nil || len(hits) != 2 {
		t.Fatalf("partition hits %v, %v", hits, err)
	}
	if _, err := s.Search(ctx, store.Query{Vector: axis(0), Filter: map[string]string{"bad key": "x"}}); err == nil {
		t.Fatal("a filter key that is no field name was accepted")
	}
	if err := s.UpdateMetadata(ctx, "p1", "a", map[string]any{"lang": "de", "source": nil}); err != nil {
		t.Fatal(err)
	}
	recs, _ = s.FileRecords(ctx, "p1", "a")
	if len(recs) != 2 || recs[1].Metadata["lang"] != "de" || recs[1].Metadata["source"] != nil || recs[1].Vector[1] != 1 {
		t.Fatalf("after update %+v", recs)
	}
	if err := s.DeleteFileFrom(ctx, "p1", "a", 1); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "p1", "a"); !slices.Equal(got, sorted(a0)) {
		t.Fatalf("after trim %v", got)
	}
	if err := s.DeletePartition(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "", ""); !slices.Equal(got, sorted(a0)) {
		t.Fatalf("after partition delete %v", got)
	}
	r, ok, err := s.Record(ctx, a0.ID)
	if err != nil || !ok || r.Text != "alpha again" {
		t.Fatalf("record %+v %v %v", r, ok, err)
	}
}

func TestUpstreamHybridSearch(t *testing.T) {
	addr, srv := milvustest.Target(t)
	coll := collName(t, addr)
	s := openProfile(t, addr, coll, ProfileRagondin, dim)
	recs := []store.Record{
		ragondinRec("p", "f", 0, "the raft consensus protocol elects a leader", axis(0)),
		ragondinRec("p", "f", 1, "gossip protocols spread membership", axis(1)),
		ragondinRec("p", "f", 2, "milvus stores dense and sparse vectors", axis(2)),
		ragondinRec("p", "f", 3, "unrelated cooking recipe", axis(3)),
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	bm, err := s.Search(ctx, store.Query{Text: "raft leader", Mode: store.ModeBM25, TopK: 3})
	if err != nil || len(bm) == 0 || bm[0].ID != recs[0].ID {
		t.Fatalf("bm25 %v, %v", bm, err)
	}
	for _, h := range bm {
		if h.ID == recs[3].ID {
			t.Errorf("bm25 returned a chunk without the terms: %v", h)
		}
	}
	// Dense points at chunk 2, BM25 at chunk 0: both lead the fused list,
	// each with 1/(k+1) + (its rank in the other list, if any).
	hy, err := s.Search(ctx, store.Query{Vector: axis(2), Text: "raft leader", TopK: 4, RRFK: 10})
	if err != nil || len(hy) < 2 {
		t.Fatalf("hybrid %v, %v", hy, err)
	}
	top := []string{hy[0].ID, hy[1].ID}
	slices.Sort(top)
	if want := sorted(recs[0], recs[2]); !slices.Equal(top, want) {
		t.Fatalf("hybrid top two %v, want %v", top, want)
	}
	if srv != nil {
		// With k = 10 the best possible fused score is 2/11; chunk 0 is
		// first in BM25 and (cosine 0 to axis 2, tied) lower in dense.
		if hy[0].Score > 2.0/11+1e-6 || hy[0].Score < 1.0/11-1e-6 {
			t.Errorf("fused score %v outside (1/11, 2/11]", hy[0].Score)
		}
	}
	if _, err := s.Search(ctx, store.Query{Mode: store.ModeBM25}); err == nil {
		t.Fatal("bm25 without text accepted")
	}
}

func TestRagnodeProfileRefusesBM25(t *testing.T) {
	addr, _ := milvustest.Target(t)
	s := openProfile(t, addr, collName(t, addr), ProfileRagnode, dim)
	_, err := s.Search(ctx, store.Query{Text: "x", Mode: store.ModeBM25})
	var qe *store.QueryError
	if err == nil || !errorsAs(err, &qe) {
		t.Fatalf("err = %v", err)
	}
}
