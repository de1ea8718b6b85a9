package catalog

import (
	"reflect"
	"testing"

	"github.com/ragnode/ragnode/fsm"
)

func TestDiff(t *testing.T) {
	rel := "r"
	have := map[Key]Row{
		{"p", "same"}:    {Partition: "p", FileID: "same", Metadata: map[string]any{"a": 1.0}},
		{"p", "changed"}: {Partition: "p", FileID: "changed", Metadata: map[string]any{"a": 1.0}},
		{"p", "gone"}:    {Partition: "p", FileID: "gone"},
		{"q", "gone"}:    {Partition: "q", FileID: "gone"},
	}
	want := map[Key]Row{
		{"p", "same"}:    {Partition: "p", FileID: "same", Metadata: map[string]any{"a": 1.0}},
		{"p", "changed"}: {Partition: "p", FileID: "changed", Metadata: map[string]any{"a": 1.0}, RelationshipID: &rel},
		{"r", "new"}:     {Partition: "r", FileID: "new"},
	}
	p := Diff(have, []string{"p", "q"}, want)
	if len(p.Upserts) != 2 || p.Upserts[0].FileID != "changed" || p.Upserts[1].FileID != "new" {
		t.Errorf("upserts %+v", p.Upserts)
	}
	if !reflect.DeepEqual(p.Deletes, []Key{{"p", "gone"}, {"q", "gone"}}) {
		t.Errorf("deletes %v", p.Deletes)
	}
	if !reflect.DeepEqual(p.AddPartitions, []string{"r"}) || !reflect.DeepEqual(p.DropPartitions, []string{"q"}) {
		t.Errorf("partitions +%v -%v", p.AddPartitions, p.DropPartitions)
	}
	if !Diff(want, []string{"p", "r"}, want).Empty() {
		t.Error("a catalog equal to the ledger has a plan")
	}
}

func TestWantMapsOpenRAGColumns(t *testing.T) {
	w := Want(map[string]*fsm.File{
		"k1": {Partition: "p", FileID: "f", LiveTask: "t", Ref: fsm.FileRef{Name: "f.pdf", Size: 7},
			Metadata: map[string]any{"relationship_id": "thread", "parent_id": "", "n": 3}},
		"k2": {Partition: "p", FileID: "pending"},
	})
	r, ok := w[Key{"p", "f"}]
	if len(w) != 1 || !ok {
		t.Fatalf("want %v", w)
	}
	if r.RelationshipID == nil || *r.RelationshipID != "thread" || r.ParentID != nil {
		t.Errorf("relationship %v parent %v", r.RelationshipID, r.ParentID)
	}
	if r.Metadata["filename"] != "f.pdf" || r.Metadata["file_size"] != 7.0 || r.Metadata["n"] != 3.0 || r.Metadata[OwnerKey] != OwnerValue {
		t.Errorf("metadata %v", r.Metadata)
	}
}
