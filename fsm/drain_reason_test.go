package fsm

import "testing"

// TestLiftOnlyIfReason: a conditional lift ends a drain of its reason and
// nothing else: an operator's drain stays, and with no drain it records
// nothing.
func TestLiftOnlyIfReason(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Now: 1, Node: node("n1", 1, 0)})
	lift := Command{Type: CmdSetDrain, Now: 2, NodeID: "n1", Draining: false, OnlyIfReason: "disk"}

	mustApply(t, s, 2, Command{Type: CmdSetDrain, Now: 2, NodeID: "n1", Draining: true, Error: "disk"})
	mustApply(t, s, 3, lift)
	if s.Nodes["n1"].Draining {
		t.Fatal("a disk drain survived the disk lift")
	}
	events := len(s.Events)
	mustApply(t, s, 4, lift)
	if len(s.Events) != events || s.Nodes["n1"].Draining {
		t.Fatalf("a lift with no drain changed something: %+v", s.Events[events:])
	}
	mustApply(t, s, 5, Command{Type: CmdSetDrain, Now: 5, NodeID: "n1", Draining: true, Deadline: 99})
	mustApply(t, s, 6, lift)
	if n := s.Nodes["n1"]; !n.Draining || n.DrainDeadline != 99 {
		t.Fatalf("the disk lift ended an operator's drain: %+v", n)
	}
	// An unconditional lift still ends any drain.
	mustApply(t, s, 7, Command{Type: CmdSetDrain, Now: 7, NodeID: "n1", Draining: false})
	if s.Nodes["n1"].Draining {
		t.Fatal("plain lift")
	}
}
