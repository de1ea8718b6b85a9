package fsm

import (
	"encoding/json"
	"strings"
	"testing"
)

func kinds(evs []Event) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Kind
	}
	return out
}

// TestEventsDerivedFromCommands walks a node and two tasks through the
// changes the history records and checks each event, its order and that
// ordinary task transitions record nothing.
func TestEventsDerivedFromCommands(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdSettings, Now: 1, Settings: &Settings{MaxAttempts: 2, RetainCount: 10}})
	mustApply(t, s, 2, Command{Type: CmdRegisterNode, Now: 2, Node: node("n1", 1, 0)})
	mustApply(t, s, 3, Command{Type: CmdRegisterNode, Now: 3, Node: node("n1", 1, 0)}) // re-register while alive: nothing
	mustApply(t, s, 4, submitOne("t1", "p", "f1"))
	mustApply(t, s, 5, Command{Type: CmdAssignTasks, Now: 5, Assignments: []Assignment{{TaskID: "t1", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 250}}})
	mustApply(t, s, 6, Command{Type: CmdTaskProgress, Now: 6, TaskID: "t1", Attempt: 1, Stage: StageLoading})
	if len(s.Events) != 1 {
		t.Fatalf("task transitions recorded events: %v", kinds(s.Events))
	}
	mustApply(t, s, 7, Command{Type: CmdFailTask, Now: 7, TaskID: "t1", Attempt: 1, Error: "boom"})
	mustApply(t, s, 8, Command{Type: CmdAssignTasks, Now: 8, Assignments: []Assignment{{TaskID: "t1", Attempt: 2, NodeID: "n1", GPU: 0, Milli: 250}}})
	mustApply(t, s, 9, Command{Type: CmdFailTask, Now: 9, TaskID: "t1", Attempt: 2, Error: "boom again"})
	// A stale report is rejected and records nothing.
	mustApply(t, s, 10, Command{Type: CmdFailTask, Now: 10, TaskID: "t1", Attempt: 1, Error: "late"})
	mustApply(t, s, 11, Command{Type: CmdSetDrain, Now: 11, NodeID: "n1", Draining: true, Error: "maintenance"})
	mustApply(t, s, 12, Command{Type: CmdSetDrain, Now: 12, NodeID: "n1", Draining: true, Error: "maintenance"}) // no change
	mustApply(t, s, 13, Command{Type: CmdSetDrain, Now: 13, NodeID: "n1"})
	mustApply(t, s, 14, submitOne("t2", "p", "f2"))
	mustApply(t, s, 15, Command{Type: CmdAssignTasks, Now: 15, Assignments: []Assignment{{TaskID: "t2", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 250}}})
	mustApply(t, s, 16, Command{Type: CmdNodeStatus, Now: 16, NodeID: "n1", Status: NodeFailed})
	mustApply(t, s, 17, Command{Type: CmdReleaseNode, Now: 17, NodeID: "n1", OnlyIfFailed: true})
	mustApply(t, s, 18, Command{Type: CmdRegisterNode, Now: 18, Node: node("n1", 1, 0)})
	mustApply(t, s, 19, Command{Type: CmdCancelTask, Now: 19, TaskID: "t2"})
	mustApply(t, s, 20, Command{Type: CmdRemoveNode, Now: 20, NodeID: "n1"})

	want := []string{EvNodeRegistered, EvRequeue, EvTaskFailed, EvDrain, EvUndrain, EvNodeStatus, EvRelease, EvNodeStatus, EvTaskCancelled, EvNodeRemoved}
	if got := kinds(s.Events); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("events %v, want %v", got, want)
	}
	checks := []struct {
		i            int
		time         int64
		node, task   string
		msgFragments []string
	}{
		{0, 2, "n1", "", []string{"n1 registered", "1 GPUs"}},
		{1, 7, "n1", "t1", []string{"attempt 2", "boom"}},
		{2, 9, "n1", "t1", []string{"f1 failed", "boom again"}},
		{3, 11, "n1", "", []string{"maintenance"}},
		{5, 16, "n1", "", []string{"failed in the ledger", "was alive"}},
		{6, 17, "n1", "", []string{"1 tasks of n1 requeued"}},
		{7, 18, "n1", "", []string{"alive in the ledger", "was failed"}},
		{8, 19, "n1", "t2", []string{"f2 cancelled"}},
	}
	for _, c := range checks {
		e := s.Events[c.i]
		if e.Seq != uint64(c.i+1) || e.Time != c.time || e.NodeID != c.node || e.TaskID != c.task {
			t.Errorf("event %d: %+v", c.i, e)
		}
		for _, f := range c.msgFragments {
			if !strings.Contains(e.Msg, f) {
				t.Errorf("event %d message %q lacks %q", c.i, e.Msg, f)
			}
		}
	}
	if got := s.EventsSince(8, 0); len(got) != 2 || got[0].Seq != 9 {
		t.Fatalf("EventsSince(8): %+v", got)
	}
	if got := s.EventsSince(0, 3); len(got) != 3 || got[2].Seq != 3 {
		t.Fatalf("EventsSince(0, 3): %+v", got)
	}
}

// TestEventsRequeueSummaries: a mass requeue is one event, a single one
// names its task, and sub-commands of a batch record theirs.
func TestEventsRequeueSummaries(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Now: 1, Node: node("n1", 1, 0)})
	var refs []TaskRef
	for _, id := range []string{"a", "b", "c"} {
		mustApply(t, s, 2, submitOne(id, "p", id))
		mustApply(t, s, 3, Command{Type: CmdAssignTasks, Now: 3, Assignments: []Assignment{{TaskID: id, Attempt: 1, NodeID: "n1", GPU: 0, Milli: 250}}})
		refs = append(refs, TaskRef{ID: id, Attempt: 1})
	}
	mustApply(t, s, 4, Command{Type: CmdRequeueTasks, Now: 4, Refs: refs[:1], Error: "drain deadline passed"})
	mustApply(t, s, 5, Command{Type: CmdBatch, Now: 5, Batch: []Command{
		{Type: CmdRequeueTasks, Now: 5, Refs: refs[1:], Error: "drain deadline passed"},
		{Type: CmdSetDrain, Now: 5, NodeID: "n1", Draining: true, Error: "x"},
	}})
	got := s.Events[1:]
	if len(got) != 3 || got[0].Kind != EvRequeue || got[0].TaskID != "a" || got[1].Kind != EvRequeue || got[1].TaskID != "" ||
		!strings.Contains(got[1].Msg, "2 tasks requeued") || got[2].Kind != EvDrain {
		t.Fatalf("events %+v", got)
	}
}

// TestEventsCommandAndBounds: CmdEvents appends the leader's events,
// rejects bad ones whole, and the history keeps its count and age bounds
// while sequence numbers keep counting.
func TestEventsCommandAndBounds(t *testing.T) {
	s := New()
	r := mustApply(t, s, 1, Command{Type: CmdEvents, Now: 10, Events: []Event{{Kind: EvLeader, NodeID: "n1", Msg: "n1 is leader"}, {Kind: EvMemberJoin, Time: 9, Msg: strings.Repeat("x", 2000)}}})
	if r.Applied != 2 || len(s.Events) != 2 || s.Events[0].Time != 10 || s.Events[1].Time != 9 || len(s.Events[1].Msg) != eventMsgMax {
		t.Fatalf("events command: %+v %+v", r, s.Events)
	}
	for _, bad := range [][]Event{nil, {{Msg: "no kind"}}, make([]Event, EventsPerCommand+1)} {
		if r := mustApply(t, s, 2, Command{Type: CmdEvents, Now: 11, Events: bad}); r.Code != CodeInvalid || len(s.Events) != 2 {
			t.Fatalf("bad events accepted: %+v", r)
		}
	}
	now := int64(100)
	for i := 0; i < EventRetainCount/EventsPerCommand+2; i++ {
		evs := make([]Event, EventsPerCommand)
		for j := range evs {
			evs[j] = Event{Kind: EvRepair, Msg: "r"}
		}
		mustApply(t, s, uint64(3+i), Command{Type: CmdEvents, Now: now, Events: evs})
	}
	total := uint64(2 + (EventRetainCount/EventsPerCommand+2)*EventsPerCommand)
	if len(s.Events) != EventRetainCount || s.EventSeq != total || s.Events[len(s.Events)-1].Seq != total {
		t.Fatalf("count bound: %d events, seq %d, want %d", len(s.Events), s.EventSeq, total)
	}
	// Age: any later command (here one that records nothing) drops what
	// has grown older than the bound.
	mustApply(t, s, 100, Command{Type: CmdEvents, Now: now + EventRetainMaxAge - 1, Events: []Event{{Kind: EvLeader}}})
	if len(s.Events) != EventRetainCount {
		t.Fatalf("dropped before the age bound: %d", len(s.Events))
	}
	mustApply(t, s, 101, Command{Type: CmdNodeStatus, Now: now + EventRetainMaxAge + 1, NodeID: "ghost"})
	if len(s.Events) != 1 || s.Events[0].Seq != total+1 || s.EventSeq != total+1 {
		t.Fatalf("age bound: %+v seq %d", s.Events, s.EventSeq)
	}
}

// TestEventsSnapshot: the history travels in snapshots, and a snapshot
// from before the history existed decodes with none and numbers on from 1.
func TestEventsSnapshot(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Now: 1, Node: node("n1", 1, 0)})
	mustApply(t, s, 2, Command{Type: CmdEvents, Now: 2, Events: []Event{{Kind: EvLeader, NodeID: "n1", Msg: "n1 is leader"}}})
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Events) != 2 || r.EventSeq != 2 || r.Events[1] != s.Events[1] {
		t.Fatalf("restored history %+v seq %d", r.Events, r.EventSeq)
	}
	var old map[string]json.RawMessage
	if err := json.Unmarshal(b, &old); err != nil {
		t.Fatal(err)
	}
	delete(old, "events")
	delete(old, "event_seq")
	ob, _ := json.Marshal(old)
	o, err := Unmarshal(ob)
	if err != nil {
		t.Fatalf("old snapshot: %v", err)
	}
	if len(o.Events) != 0 || o.Nodes["n1"] == nil {
		t.Fatalf("old snapshot decoded as %+v", o)
	}
	mustApply(t, o, 3, Command{Type: CmdSetDrain, Now: 3, NodeID: "n1", Draining: true})
	if len(o.Events) != 1 || o.Events[0].Seq != 1 {
		t.Fatalf("history after an old snapshot: %+v", o.Events)
	}
}
