package fsm

import (
	"errors"
	"reflect"
	"testing"
)

func TestPartitionCreateConfigureDelete(t *testing.T) {
	s := New()
	r := mustApply(t, s, 1, Command{Type: CmdCreatePartition, Partition: "empty", Now: 10})
	if r.Rejected() || s.Partitions["empty"].Created != 10 {
		t.Fatalf("create: %+v %+v", r, s.Partitions["empty"])
	}
	if got := s.PartitionNames(); !reflect.DeepEqual(got, []string{"empty"}) {
		t.Fatalf("names %v", got)
	}
	// A second create is a conflict, and changes nothing.
	r = mustApply(t, s, 2, Command{Type: CmdCreatePartition, Partition: "empty", Now: 20})
	if !errors.Is(r.Error(), ErrConflict) || s.Partitions["empty"].Created != 10 {
		t.Fatalf("second create: %+v %+v", r, s.Partitions["empty"])
	}
	// Config merges, a null deletes.
	mustApply(t, s, 3, Command{Type: CmdPartitionConfig, Partition: "empty", Metadata: map[string]any{"description": "d", "chat_llm": "x"}})
	mustApply(t, s, 4, Command{Type: CmdPartitionConfig, Partition: "empty", Metadata: map[string]any{"chat_llm": nil, "embedder": "e"}})
	if want := map[string]any{"description": "d", "embedder": "e"}; !reflect.DeepEqual(s.Partitions["empty"].Config, want) {
		t.Fatalf("config %v, want %v", s.Partitions["empty"].Config, want)
	}
	// Configuring a partition that does not exist is refused.
	r = mustApply(t, s, 5, Command{Type: CmdPartitionConfig, Partition: "nope", Metadata: map[string]any{"a": 1.0}})
	if !errors.Is(r.Error(), ErrPartitionMissing) || s.Partitions["nope"] != nil {
		t.Fatalf("config of missing: %+v", r)
	}
	// Deleting the empty partition counts its record.
	r = mustApply(t, s, 6, Command{Type: CmdDeletePart, Partition: "empty"})
	if r.Applied != 1 || len(s.Partitions) != 0 || s.HasPartition("empty") {
		t.Fatalf("delete: %+v %v", r, s.Partitions)
	}
	r = mustApply(t, s, 7, Command{Type: CmdDeletePart, Partition: "empty"})
	if r.Applied != 0 {
		t.Fatalf("second delete applied %d", r.Applied)
	}
	r = mustApply(t, s, 8, Command{Type: CmdCreatePartition})
	if !errors.Is(r.Error(), ErrInvalid) {
		t.Fatalf("create without a name: %+v", r)
	}
}

func TestPartitionImpliedByFiles(t *testing.T) {
	s := New()
	mustApply(t, s, 1, submitOne("t1", "p", "f1"))
	if !s.HasPartition("p") || s.Partitions["p"] != nil {
		t.Fatalf("a submission implies its partition without a record: %v", s.Partitions)
	}
	r := mustApply(t, s, 2, Command{Type: CmdCreatePartition, Partition: "p", Now: 5})
	if !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("create over files: %+v", r)
	}
	// Configuring an implied partition makes its record, with no creation
	// time of its own.
	mustApply(t, s, 3, Command{Type: CmdPartitionConfig, Partition: "p", Metadata: map[string]any{"description": "x"}})
	if p := s.Partitions["p"]; p == nil || p.Created != 0 || p.Config["description"] != "x" {
		t.Fatalf("record %+v", p)
	}
	r = mustApply(t, s, 4, Command{Type: CmdDeletePart, Partition: "p"})
	if r.Applied != 2 || s.HasPartition("p") {
		t.Fatalf("delete: %+v", r)
	}
}

// A snapshot written before partition records existed decodes, and its
// partitions (implied by files) still exist; a new snapshot round-trips
// its records.
func TestPartitionSnapshotCompatibility(t *testing.T) {
	old := []byte(`{"nodes":{},"tasks":{},"allocs":{},"files":{"p\u0000f":{"partition":"p","file_id":"f","task_id":"t","ref":{"size":1,"name":"a.txt"},"state":"completed","chunks":1,"updated":3}},"blobs":{},"settings":{"max_attempts":3,"retain_count":100000},"seq":1,"finished":[],"index":9}`)
	s, err := Unmarshal(old)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if got := s.PartitionNames(); !reflect.DeepEqual(got, []string{"p"}) {
		t.Fatalf("old snapshot partitions %v", got)
	}
	mustApply(t, s, 10, Command{Type: CmdCreatePartition, Partition: "q", Now: 7, Metadata: map[string]any{"description": "d"}})
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	s2, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s2.Partitions, s.Partitions) || !reflect.DeepEqual(s2.PartitionNames(), []string{"p", "q"}) {
		t.Fatalf("round trip %v / %v", s2.Partitions, s2.PartitionNames())
	}
	s2.Partitions["q"].Name = "other"
	if s2.CheckInvariants() == nil {
		t.Fatal("a record keyed by another name passes the invariants")
	}
}
