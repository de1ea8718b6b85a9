package fsm

import (
	"errors"
	"testing"
)

func TestCallbackAtMostOnce(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Node: node("n1", 0, 0)})
	sub := submitOne("t1", "p", "f")
	// Whatever delivery state a proposer sends, a new task starts undelivered.
	sub.Tasks[0].Callback = &Callback{URL: "http://x/cb", Token: "tok", State: CallbackDelivered}
	mustApply(t, s, 2, sub)
	if cb := s.Tasks["t1"].Callback; cb.State != "" || cb.URL != "http://x/cb" || cb.Token != "tok" {
		t.Fatalf("submitted callback %+v", cb)
	}
	claim := Command{Type: CmdCallback, TaskID: "t1", Status: CallbackClaimed, NodeID: "n1", Now: 5}
	if r := mustApply(t, s, 3, claim); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("claim before the task ended: %+v", r)
	}
	if s.Tasks["t1"].Callback.Pending(s.Tasks["t1"]) || len(s.CallbacksDue()) != 0 {
		t.Fatal("pending before the task ended")
	}
	mustApply(t, s, 4, Command{Type: CmdCancelTask, TaskID: "t1", Now: 6})
	if !s.Tasks["t1"].Callback.Pending(s.Tasks["t1"]) {
		t.Fatal("not pending after the task ended")
	}
	// The callback loop's index lists it (mustApply also checks the index
	// against a recount after every Apply).
	if due := s.CallbacksDue(); len(due) != 1 || due[0].ID != "t1" {
		t.Fatalf("due %v, want t1", due)
	}
	if r := mustApply(t, s, 5, claim); r.Rejected() {
		t.Fatalf("claim: %+v", r)
	}
	if due := s.CallbacksDue(); len(due) != 0 {
		t.Fatalf("due %v after the claim, want none", due)
	}
	// A second claim (another leader) is refused: nothing is sent twice.
	claim2 := claim
	claim2.NodeID = "n2"
	if r := mustApply(t, s, 6, claim2); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("second claim: %+v", r)
	}
	// Only the claimer records delivery.
	if r := mustApply(t, s, 7, Command{Type: CmdCallback, TaskID: "t1", Status: CallbackDelivered, NodeID: "n2"}); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("delivery by a non-claimer: %+v", r)
	}
	held := s.Tasks["t1"].Callback
	r := mustApply(t, s, 8, Command{Type: CmdCallback, TaskID: "t1", Status: CallbackDelivered, NodeID: "n1", Chunks: 2, Now: 9})
	if cb := s.Tasks["t1"].Callback; r.Rejected() || cb.State != CallbackDelivered || cb.Attempts != 2 || cb.Done != 9 || cb.Claimed != 5 {
		t.Fatalf("delivered: %+v %+v", r, cb)
	}
	if held.State != CallbackClaimed {
		t.Fatal("the record was changed in place")
	}
	// After an outcome nothing changes it again.
	if r := mustApply(t, s, 9, Command{Type: CmdCallback, TaskID: "t1", Status: CallbackFailed, NodeID: "n1"}); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("outcome after outcome: %+v", r)
	}
}

// The next leader closes a claim it inherited as failed, without being
// the claimer; the old claimer cannot then record a delivery.
func TestCallbackInheritedClaimIsClosed(t *testing.T) {
	s := New()
	sub := submitOne("t1", "p", "f")
	sub.Tasks[0].Callback = &Callback{URL: "http://x/cb"}
	mustApply(t, s, 1, sub)
	mustApply(t, s, 2, Command{Type: CmdCancelTask, TaskID: "t1"})
	mustApply(t, s, 3, Command{Type: CmdCallback, TaskID: "t1", Status: CallbackClaimed, NodeID: "old"})
	if r := mustApply(t, s, 4, Command{Type: CmdCallback, TaskID: "t1", Status: CallbackFailed, NodeID: "new", Error: "abandoned"}); r.Rejected() {
		t.Fatal(r.Err)
	}
	if r := mustApply(t, s, 5, Command{Type: CmdCallback, TaskID: "t1", Status: CallbackDelivered, NodeID: "old"}); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("late delivery by the old claimer: %+v", r)
	}
	if r := mustApply(t, s, 6, Command{Type: CmdCallback, TaskID: "t1", Status: "bogus"}); !errors.Is(r.Error(), ErrInvalid) {
		t.Fatalf("bad state: %+v", r)
	}
	mustApply(t, s, 7, submitOne("t2", "p", "g"))
	if r := mustApply(t, s, 8, Command{Type: CmdCallback, TaskID: "t2", Status: CallbackClaimed, NodeID: "n"}); !errors.Is(r.Error(), ErrInvalid) {
		t.Fatalf("claim of a task without callback: %+v", r)
	}
}
