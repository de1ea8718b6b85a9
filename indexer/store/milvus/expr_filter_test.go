package milvus

import (
	"slices"
	"testing"

	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/milvustest"
)

// Query.Expr reaches Milvus as the user wrote it, ANDed with the
// partition condition.
func TestSearchExprPassedAsIs(t *testing.T) {
	addr, _ := milvustest.Start(t)
	s := open(t, addr, dim)
	recs := []store.Record{
		rec("p1", "a", 0, axis(0), map[string]any{"filename": "a.pdf"}),
		rec("p1", "b", 0, axis(0), map[string]any{"filename": "b.pdf"}),
		rec("p2", "b", 0, axis(0), map[string]any{"filename": "b.pdf"}),
	}
	if err := s.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	hs, err := s.Search(ctx, store.Query{Vector: axis(0), Partitions: []string{"p1"}, Expr: `file_id == "b" or file_id == "zz"`})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, h := range hs {
		got = append(got, h.ID)
	}
	if !slices.Equal(got, sorted(recs[1])) {
		t.Fatalf("hits %v, want %v", got, sorted(recs[1]))
	}
}
