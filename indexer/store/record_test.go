package store

import "testing"

func TestLocalRecordByID(t *testing.T) {
	l, _ := openTemp(t)
	a := rec("p", "f", 1, 2, map[string]any{"k": "v"})
	if err := l.Upsert(ctx, []Record{rec("p", "f", 0, 1, nil), a}); err != nil {
		t.Fatal(err)
	}
	got, ok, err := l.Record(ctx, a.ID)
	if err != nil || !ok || got.Text != a.Text || got.Index != 1 || got.Page != 2 || got.Metadata["k"] != "v" || len(got.Vector) != 8 {
		t.Fatalf("Record = %+v %v %v", got, ok, err)
	}
	if _, ok, err := l.Record(ctx, "missing"); ok || err != nil {
		t.Fatalf("missing record: %v %v", ok, err)
	}
	if err := l.DeleteFile(ctx, "p", "f"); err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := l.Record(ctx, a.ID); ok {
		t.Fatal("deleted record still read")
	}
}
