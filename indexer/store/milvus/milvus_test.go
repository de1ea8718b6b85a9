package milvus

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/milvustest"
)

const dim = 4

var ctx = context.Background()

func open(t *testing.T, addr string, d int) *Store {
	t.Helper()
	s, err := Open(ctx, Config{Address: addr, Dim: d, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func rec(part, file string, idx int, vec []float32, meta map[string]any) store.Record {
	return store.Record{
		ID: store.ChunkID(part, file, idx), Partition: part, FileID: file, Index: idx,
		Text: fmt.Sprintf("chunk %d of %s", idx, file), Page: idx + 1, Headings: []string{"Intro"},
		Vector: vec, Metadata: meta,
	}
}

func axis(i int) []float32 {
	v := make([]float32, dim)
	v[i%dim] = 1
	return v
}

func ids(t *testing.T, s *Store, part, file string) []string {
	t.Helper()
	got, err := s.ChunkIDs(ctx, part, file)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func sorted(recs ...store.Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

func TestCreateAndReopen(t *testing.T) {
	addr, srv := milvustest.Start(t)
	s := open(t, addr, dim)
	idx := srv.Index("ragnode", "vector")
	if idx["index_type"] != "HNSW" || idx["metric_type"] != "COSINE" {
		t.Errorf("index params %v", idx)
	}
	s.Close()

	if s2 := open(t, addr, 0); s2.Dim() != dim {
		t.Errorf("dimension learned from the collection: %d", s2.Dim())
	}
	_, err := Open(ctx, Config{Address: addr, Dim: 8})
	if err == nil || err.Error() != "milvus collection ragnode has dimension 4, ragnode is configured for 8" {
		t.Fatalf("err = %v", err)
	}
	_, err = Open(ctx, Config{Address: addr, Collection: "other"})
	if err == nil || !strings.Contains(err.Error(), "no dimension") {
		t.Fatalf("err = %v", err)
	}
}

func TestForeignCollectionRefused(t *testing.T) {
	addr, srv := milvustest.Start(t)
	srv.CreateRaw(&schemapb.CollectionSchema{Name: "ragnode", Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "vector", DataType: schemapb.DataType_FloatVector, TypeParams: []*commonpb.KeyValuePair{{Key: "dim", Value: "4"}}},
	}})
	_, err := Open(ctx, Config{Address: addr, Dim: dim})
	if err == nil || !strings.Contains(err.Error(), `field "id" is Int64, the profile needs VarChar`) {
		t.Fatalf("err = %v", err)
	}
}

func TestDialTimeout(t *testing.T) {
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	_, err := Open(ctx, Config{Address: addr, Dim: dim, Timeout: 300 * time.Millisecond})
	if err == nil || time.Since(start) > 5*time.Second {
		t.Fatalf("err = %v after %v", err, time.Since(start))
	}
}

func TestUpsertDelete(t *testing.T) {
	addr, srv := milvustest.Start(t)
	s := open(t, addr, dim)
	f1 := []store.Record{rec("p1", "f1", 0, axis(0), nil), rec("p1", "f1", 1, axis(1), nil), rec("p1", "f1", 2, axis(2), nil)}
	f2 := []store.Record{rec("p1", "f2", 0, axis(3), nil)}
	p2 := []store.Record{rec("p2", "f1", 0, axis(0), nil)}
	for _, b := range [][]store.Record{f1, f2, p2} {
		if err := s.Upsert(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	again := f1[1]
	again.Text = "rewritten"
	if err := s.Upsert(ctx, []store.Record{again, again}); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Rows("ragnode")); n != 5 {
		t.Fatalf("%d rows after re-upsert, want 5", n)
	}
	hs, err := s.Search(ctx, store.Query{Vector: axis(1), TopK: 1})
	if err != nil || len(hs) != 1 || hs[0].Text != "rewritten" || hs[0].Page != 2 || hs[0].Headings[0] != "Intro" {
		t.Fatalf("hits %+v err %v", hs, err)
	}

	if err := s.DeleteFileFrom(ctx, "p1", "f1", 1); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "p1", "f1"); !slices.Equal(got, sorted(f1[0])) {
		t.Fatalf("after DeleteFileFrom: %v", got)
	}
	if got := ids(t, s, "", "f1"); !slices.Equal(got, sorted(f1[0], p2[0])) {
		t.Fatalf("f1 in all partitions: %v", got)
	}
	if err := s.DeleteFile(ctx, "p1", "f1"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "p1", ""); !slices.Equal(got, sorted(f2...)) {
		t.Fatalf("after DeleteFile: %v", got)
	}
	if err := s.DeletePartition(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "", ""); !slices.Equal(got, sorted(p2...)) {
		t.Fatalf("after DeletePartition: %v", got)
	}
	if err := s.Upsert(ctx, []store.Record{rec("p", "f", 0, []float32{1, 2}, nil)}); err == nil {
		t.Error("wrong dimension accepted")
	}
}

func TestSearchFilters(t *testing.T) {
	addr, _ := milvustest.Start(t)
	s := open(t, addr, dim)
	recs := []store.Record{
		rec("p1", "a", 0, axis(0), map[string]any{"filename": "a.pdf", "lang": "en"}),
		rec("p1", "b", 0, axis(0), map[string]any{"filename": "b.pdf", "lang": "de"}),
		rec("p2", "c", 0, axis(0), map[string]any{"filename": "c.pdf", "lang": "en"}),
		rec("p3", "d", 0, axis(1), map[string]any{"filename": "d.pdf", "lang": "en", `we"ird\key`: `va"l\ue`}),
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	search := func(q store.Query) []string {
		t.Helper()
		q.Vector = axis(0)
		hs, err := s.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for i, h := range hs {
			out = append(out, h.ID)
			if i > 0 && h.Score > hs[i-1].Score {
				t.Errorf("hits not best first")
			}
		}
		slices.Sort(out)
		return out
	}
	if got := search(store.Query{Partitions: []string{"p1", "p2"}, Filter: map[string]string{"lang": "en"}}); !slices.Equal(got, sorted(recs[0], recs[2])) {
		t.Errorf("partition+metadata: %v", got)
	}
	if got := search(store.Query{Filter: map[string]string{`we"ird\key`: `va"l\ue`}}); !slices.Equal(got, sorted(recs[3])) {
		t.Errorf("escaped metadata filter: %v", got)
	}
	hs, _ := s.Search(ctx, store.Query{Vector: axis(0), TopK: 2})
	if len(hs) != 2 || hs[0].Score < 0.99 || hs[0].Metadata["filename"] == nil {
		t.Errorf("top-2 hits %+v", hs)
	}
}

func TestUpdateMetadataKeepsVectors(t *testing.T) {
	addr, srv := milvustest.Start(t)
	s := open(t, addr, dim)
	old := rowPage
	rowPage = 2 // exercise paging: 5 chunks in 3 pages
	defer func() { rowPage = old }()
	var recs []store.Record
	for i := 0; i < 5; i++ {
		recs = append(recs, rec("p", "f", i, []float32{1, float32(i), 0.5, -1}, map[string]any{"filename": "f.pdf", "lang": "en"}))
	}
	other := rec("p", "g", 0, axis(2), map[string]any{"lang": "en"})
	if err := s.Upsert(ctx, append(recs, other)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMetadata(ctx, "p", "f", map[string]any{"lang": "fr", "tags": []any{"x"}, "filename": nil}); err != nil {
		t.Fatal(err)
	}
	rows := srv.Rows("ragnode")
	if len(rows) != 6 {
		t.Fatalf("%d rows", len(rows))
	}
	for _, r := range rows {
		if r["file_id"] != "f" {
			if !strings.Contains(string(r["metadata"].([]byte)), `"en"`) {
				t.Errorf("other file changed: %s", r["metadata"])
			}
			continue
		}
		i := r["idx"].(int64)
		if !slices.Equal(r["vector"].([]float32), recs[i].Vector) {
			t.Errorf("chunk %d vector changed: %v", i, r["vector"])
		}
		if m := string(r["metadata"].([]byte)); m != `{"lang":"fr","tags":["x"]}` {
			t.Errorf("chunk %d metadata %s", i, m)
		}
		if r["text"] != recs[i].Text {
			t.Errorf("chunk %d text %v", i, r["text"])
		}
	}
}

func TestChunkIDsPaging(t *testing.T) {
	addr, _ := milvustest.Start(t)
	s := open(t, addr, dim)
	old := idPage
	idPage = 3
	defer func() { idPage = old }()
	var recs []store.Record
	for i := 0; i < 10; i++ {
		recs = append(recs, rec("p", "f", i, axis(i), nil))
	}
	s.Upsert(ctx, recs)
	if got := ids(t, s, "p", "f"); !slices.Equal(got, sorted(recs...)) {
		t.Fatalf("paged ids: %v", got)
	}
	if got := ids(t, s, "", ""); len(got) != 10 {
		t.Fatalf("all ids: %d", len(got))
	}
}

func TestEscapingFileID(t *testing.T) {
	addr, srv := milvustest.Start(t)
	s := open(t, addr, dim)
	tricky := `a"b\c`
	// Pasted raw, this would become `file_id == "x" or file_id != "y"` and
	// match every file.
	inject := `x" or file_id != "y`
	recs := []store.Record{
		rec("p", tricky, 0, axis(0), nil), rec("p", tricky, 1, axis(1), nil),
		rec("p", inject, 0, axis(2), nil),
		rec("p", "y", 0, axis(3), nil), rec("p", `a"b`, 0, axis(0), nil), rec("p", `a"b\\c`, 0, axis(0), nil),
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "p", tricky); !slices.Equal(got, sorted(recs[0], recs[1])) {
		t.Fatalf("ids of %q: %v", tricky, got)
	}
	if err := s.DeleteFileFrom(ctx, "p", tricky, 1); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteFile(ctx, "p", inject); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "p", ""); !slices.Equal(got, sorted(recs[0], recs[3], recs[4], recs[5])) {
		t.Fatalf("after deletes: %v", got)
	}
	if err := s.DeleteFile(ctx, "p", tricky); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, s, "p", ""); !slices.Equal(got, sorted(recs[3], recs[4], recs[5])) {
		t.Fatalf("after deleting %q: %v", tricky, got)
	}
	want := `(partition == "p") and (file_id == "x\" or file_id != \"y")`
	if !slices.Contains(srv.Exprs(), want) {
		t.Errorf("expression %s not sent; sent %q", want, srv.Exprs())
	}
}

func TestQuote(t *testing.T) {
	for in, want := range map[string]string{
		`plain`:      `"plain"`,
		`a"b`:        `"a\"b"`,
		`a\b`:        `"a\\b"`,
		`\"`:         `"\\\""`,
		"line\nnext": `"line\nnext"`,
		"nul\x00":    `"nul\u0000"`,
		"ünï":        `"ünï"`,
	} {
		if got := quote(in); got != want {
			t.Errorf("quote(%q) = %s, want %s", in, got, want)
		}
	}
}
