package node

import (
	"testing"

	"github.com/hashicorp/raft"
)

// Writes pass through until the node closes them; after that a late term
// write (Raft's heartbeat path racing its own shutdown) succeeds without
// touching the store, so raft has no error to panic on.
func TestClosableStableDropsWritesAfterClose(t *testing.T) {
	mem := raft.NewInmemStore()
	s := &closableStable{StableStore: mem}
	if err := s.SetUint64([]byte("CurrentTerm"), 3); err != nil {
		t.Fatal(err)
	}
	s.closeWrites()
	if err := s.SetUint64([]byte("CurrentTerm"), 4); err != nil {
		t.Fatalf("write after close: %v", err)
	}
	if err := s.Set([]byte("LastVoteCand"), []byte("x")); err != nil {
		t.Fatalf("write after close: %v", err)
	}
	if v, err := mem.GetUint64([]byte("CurrentTerm")); err != nil || v != 3 {
		t.Fatalf("term in the store = %d, %v; want 3 (the write after close dropped)", v, err)
	}
	if _, err := mem.Get([]byte("LastVoteCand")); err == nil {
		t.Fatal("a vote written after close reached the store")
	}
}
