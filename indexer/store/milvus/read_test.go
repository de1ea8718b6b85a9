package milvus

import (
	"testing"

	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/milvustest"
)

func TestRecordAndFileRecords(t *testing.T) {
	addr, _ := milvustest.Start(t)
	s := open(t, addr, dim)
	f := []store.Record{rec("p", "f", 1, axis(1), map[string]any{"k": "v"}), rec("p", "f", 0, axis(0), nil)}
	other := rec("p", "g", 0, axis(2), nil)
	if err := s.Upsert(ctx, append(f, other)); err != nil {
		t.Fatal(err)
	}
	got, ok, err := s.Record(ctx, f[0].ID)
	if err != nil || !ok || got.ID != f[0].ID || got.Index != 1 || got.Text != f[0].Text || got.Metadata["k"] != "v" || len(got.Vector) != dim {
		t.Fatalf("Record = %+v %v %v", got, ok, err)
	}
	if _, ok, err := s.Record(ctx, "missing"); ok || err != nil {
		t.Fatalf("missing: %v %v", ok, err)
	}
	recs, err := s.FileRecords(ctx, "p", "f")
	if err != nil || len(recs) != 2 || recs[0].Index != 0 || recs[1].Index != 1 || len(recs[0].Vector) != dim {
		t.Fatalf("FileRecords = %+v %v", recs, err)
	}
}
