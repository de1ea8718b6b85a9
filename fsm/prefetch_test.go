package fsm

import (
	"errors"
	"testing"
)

// prefetchCluster is one node with one card, two 500-milli tasks running
// on it (the card is full) and tasks t3..t5 queued: t3 and t4 of 500, t5 of
// a whole card.
func prefetchCluster(t *testing.T) *State {
	t.Helper()
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Node: node("n1", 1, 0)})
	mustApply(t, s, 2, Command{Type: CmdRegisterNode, Node: node("n2", 1, 0)})
	var ts []Task
	for _, id := range []string{"t1", "t2", "t3", "t4"} {
		ts = append(ts, Task{ID: id, Partition: "p", FileID: "f" + id, ReqMilli: 500})
	}
	ts = append(ts, Task{ID: "t5", Partition: "p", FileID: "ft5", ReqMilli: 1000})
	mustApply(t, s, 3, Command{Type: CmdSubmitTasks, Now: 3, Tasks: ts})
	r := mustApply(t, s, 4, Command{Type: CmdAssignTasks, Now: 4, Assignments: []Assignment{
		{TaskID: "t1", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 500},
		{TaskID: "t2", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 500}}})
	if err := r.FirstError(); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestPrefetchHoldsNothingAndIsBounded(t *testing.T) {
	s := prefetchCluster(t)
	r := mustApply(t, s, 5, Command{Type: CmdPrefetchTasks, Now: 5, Limit: 2, Assignments: []Assignment{
		{TaskID: "t3", Attempt: 1, NodeID: "n1"}, {TaskID: "t4", Attempt: 1, NodeID: "n1"}, {TaskID: "t5", Attempt: 1, NodeID: "n1"}}})
	if err := r.Batch[0].Error(); err != nil {
		t.Fatal(err)
	}
	if err := r.Batch[1].Error(); err != nil {
		t.Fatal(err)
	}
	// The third is over the per-node bound.
	if err := r.Batch[2].Error(); !errors.Is(err, ErrNoCapacity) {
		t.Fatalf("third prefetch: %v, want no capacity", err)
	}
	if m, _ := s.GPUUsage("n1", 0); m != 1000 {
		t.Fatalf("card use %d after prefetch, want the running tasks' 1000", m)
	}
	if s.ActiveOn("n1") != 2 || s.PrefetchedCount("n1") != 2 || s.QueuedCount() != 1 {
		t.Fatalf("active %d prefetched %d queued %d", s.ActiveOn("n1"), s.PrefetchedCount("n1"), s.QueuedCount())
	}
	// Admission control counts prefetched work as waiting.
	if w, _, inP := s.Waiting("p"); w != 3 || inP != 3 {
		t.Fatalf("waiting %d (%d in p), want 2 prefetched + 1 queued", w, inP)
	}
	if t3 := s.Tasks["t3"]; t3.State != Prefetched || t3.NodeID != "n1" || t3.Milli != 0 {
		t.Fatalf("t3 %+v", t3)
	}
	if got := s.PrefetchedOn("n1"); len(got) != 2 || got[0].ID != "t3" || got[1].ID != "t4" {
		t.Fatalf("prefetched order %v", got)
	}
	// A prefetch without a bound is malformed.
	r = mustApply(t, s, 6, Command{Type: CmdPrefetchTasks, Assignments: []Assignment{{TaskID: "t5", Attempt: 1, NodeID: "n2"}}})
	if !errors.Is(r.Error(), ErrInvalid) {
		t.Fatalf("unbounded prefetch: %v", r.Error())
	}
	// A report for a task that has not started is stale.
	r = mustApply(t, s, 7, Command{Type: CmdCompleteTask, TaskID: "t3", Attempt: 1})
	if !errors.Is(r.Error(), ErrStaleAttempt) {
		t.Fatalf("completion of a prefetched task: %v", r.Error())
	}
}

// The handoff: "t1 completed, t3 started" is one command; the card's share
// passes from t1 to t3 in that Apply and is never counted twice.
func TestHandoffMovesAllocationAtomically(t *testing.T) {
	s := prefetchCluster(t)
	mustApply(t, s, 5, Command{Type: CmdPrefetchTasks, Now: 5, Limit: 3, Assignments: []Assignment{
		{TaskID: "t3", Attempt: 1, NodeID: "n1"}, {TaskID: "t5", Attempt: 1, NodeID: "n1"}, {TaskID: "t4", Attempt: 1, NodeID: "n1"}}})
	r := mustApply(t, s, 6, Command{Type: CmdCompleteTask, Now: 60, TaskID: "t1", Attempt: 1, Chunks: 2, Next: &TaskRef{ID: "t3", Attempt: 1}, Chain: true})
	if r.Error() != nil || r.Chained != "t3" {
		t.Fatalf("handoff: %+v", r)
	}
	t3 := s.Tasks["t3"]
	if t3.State != Running || t3.Stage != StageLoading || t3.Started != 60 || t3.GPU != 0 || t3.Milli != 500 || t3.Attempt != 1 {
		t.Fatalf("t3 after handoff %+v", t3)
	}
	if s.Tasks["t1"].State != Completed {
		t.Fatalf("t1 %s", s.Tasks["t1"].State)
	}
	if m, _ := s.GPUUsage("n1", 0); m != 1000 {
		t.Fatalf("card use %d after handoff, want 1000", m)
	}
	// t5 needs a whole card: taking t2's half would overbook it, so the
	// handoff is refused and t5 keeps waiting; chaining finds nothing
	// either (t4 is prefetched, not queued) and the half stays free.
	r = mustApply(t, s, 7, Command{Type: CmdCompleteTask, Now: 70, TaskID: "t2", Attempt: 1, Next: &TaskRef{ID: "t5", Attempt: 1}, Chain: true})
	if r.Error() != nil || r.Chained != "" {
		t.Fatalf("oversized handoff: %+v", r)
	}
	if s.Tasks["t5"].State != Prefetched {
		t.Fatalf("t5 %s", s.Tasks["t5"].State)
	}
	if m, _ := s.GPUUsage("n1", 0); m != 500 {
		t.Fatalf("card use %d, want t3's 500", m)
	}
	// A failure hands off too; the failed task goes back to the queue.
	r = mustApply(t, s, 8, Command{Type: CmdFailTask, Now: 80, TaskID: "t3", Attempt: 1, Error: "boom", Next: &TaskRef{ID: "t4", Attempt: 1}})
	if r.Error() != nil || r.Chained != "t4" {
		t.Fatalf("handoff on failure: %+v", r)
	}
	if t3 := s.Tasks["t3"]; t3.State != Queued || t3.Attempt != 2 {
		t.Fatalf("failed t3 %+v", t3)
	}
	if s.Tasks["t4"].State != Running || s.ActiveOn("n1") != 1 {
		t.Fatalf("t4 %s, active %d", s.Tasks["t4"].State, s.ActiveOn("n1"))
	}
}

// Attempt numbers fence the handoff both ways: a stale completion starts
// nothing, and a handoff naming an old prefetch attempt is refused.
func TestHandoffIsFenced(t *testing.T) {
	s := prefetchCluster(t)
	mustApply(t, s, 5, Command{Type: CmdPrefetchTasks, Now: 5, Limit: 2, Assignments: []Assignment{{TaskID: "t3", Attempt: 1, NodeID: "n1"}}})
	// A completion for an attempt that is not live changes nothing.
	r := mustApply(t, s, 6, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 7, Next: &TaskRef{ID: "t3", Attempt: 1}})
	if !errors.Is(r.Error(), ErrStaleAttempt) || s.Tasks["t3"].State != Prefetched {
		t.Fatalf("stale completion: %v, t3 %s", r.Error(), s.Tasks["t3"].State)
	}
	// The handoff names t3 at another attempt: t1 completes, t3 waits.
	r = mustApply(t, s, 7, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 1, Next: &TaskRef{ID: "t3", Attempt: 2}})
	if r.Error() != nil || r.Chained != "" || s.Tasks["t3"].State != Prefetched {
		t.Fatalf("fenced handoff: %+v, t3 %s", r, s.Tasks["t3"].State)
	}
	// Another node cannot start n1's prefetched task, by handoff or plan.
	mustApply(t, s, 8, Command{Type: CmdSubmitTasks, Now: 8, Tasks: []Task{{ID: "x", Partition: "p", FileID: "fx", ReqMilli: 500}}})
	mustApply(t, s, 9, Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: "x", Attempt: 1, NodeID: "n2", GPU: 0, Milli: 500}}})
	r = mustApply(t, s, 10, Command{Type: CmdCompleteTask, TaskID: "x", Attempt: 1, Next: &TaskRef{ID: "t3", Attempt: 1}})
	if r.Chained != "" || s.Tasks["t3"].NodeID != "n1" {
		t.Fatalf("handoff across nodes: %+v", r)
	}
	r = mustApply(t, s, 11, Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: "t3", Attempt: 1, NodeID: "n2", GPU: 0, Milli: 500}}})
	if !errors.Is(r.Batch[0].Error(), ErrStaleAttempt) {
		t.Fatalf("assigning n1's prefetched task to n2: %v", r.Batch[0].Error())
	}
	// The leader may promote it on its own node when a slot is free.
	r = mustApply(t, s, 12, Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: "t3", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 500}}})
	if err := r.FirstError(); err != nil || s.Tasks["t3"].State != Assigned || s.PrefetchedCount("n1") != 0 {
		t.Fatalf("promotion: %v, t3 %s", err, s.Tasks["t3"].State)
	}
}

// A prefetched task whose node drains, dies or leaves goes back to the
// queue at a new attempt, as assigned work does; cancel ends it.
func TestPrefetchedWorkIsRequeued(t *testing.T) {
	prefetch := func(s *State, idx uint64, ids ...string) {
		var as []Assignment
		for _, id := range ids {
			as = append(as, Assignment{TaskID: id, Attempt: s.Tasks[id].Attempt, NodeID: "n1"})
		}
		if err := mustApply(t, s, idx, Command{Type: CmdPrefetchTasks, Limit: 4, Assignments: as}).FirstError(); err != nil {
			t.Fatal(err)
		}
	}
	queuedAt := func(s *State, id string, attempt int) {
		t.Helper()
		if tk := s.Tasks[id]; tk.State != Queued || tk.Attempt != attempt || tk.NodeID != "" {
			t.Fatalf("%s: %+v", id, tk)
		}
	}
	t.Run("drain", func(t *testing.T) {
		s := prefetchCluster(t)
		prefetch(s, 5, "t3", "t4")
		mustApply(t, s, 6, Command{Type: CmdSetDrain, NodeID: "n1", Draining: true, Deadline: 100})
		queuedAt(s, "t3", 2)
		queuedAt(s, "t4", 2)
		// Running work stays until the deadline, as before.
		if s.ActiveOn("n1") != 2 {
			t.Fatalf("active %d", s.ActiveOn("n1"))
		}
		r := mustApply(t, s, 7, Command{Type: CmdPrefetchTasks, Limit: 4, Assignments: []Assignment{{TaskID: "t3", Attempt: 2, NodeID: "n1"}}})
		if !errors.Is(r.Batch[0].Error(), ErrNoCapacity) {
			t.Fatalf("prefetch to a draining node: %v", r.Batch[0].Error())
		}
	})
	t.Run("failed and released", func(t *testing.T) {
		s := prefetchCluster(t)
		prefetch(s, 5, "t3")
		mustApply(t, s, 6, Command{Type: CmdNodeStatus, NodeID: "n1", Status: NodeFailed})
		r := mustApply(t, s, 7, Command{Type: CmdReleaseNode, NodeID: "n1", OnlyIfFailed: true})
		if r.Applied != 3 {
			t.Fatalf("released %d, want 2 running + 1 prefetched", r.Applied)
		}
		queuedAt(s, "t3", 2)
		// The dead node's handoff, arriving late, is fenced out.
		r = mustApply(t, s, 8, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 1, Next: &TaskRef{ID: "t3", Attempt: 1}})
		if !errors.Is(r.Error(), ErrStaleAttempt) {
			t.Fatalf("late handoff: %v", r.Error())
		}
	})
	t.Run("leaves", func(t *testing.T) {
		s := prefetchCluster(t)
		prefetch(s, 5, "t3")
		mustApply(t, s, 6, Command{Type: CmdRemoveNode, NodeID: "n1"})
		queuedAt(s, "t3", 2)
	})
	t.Run("requeue by ref", func(t *testing.T) {
		s := prefetchCluster(t)
		prefetch(s, 5, "t3")
		r := mustApply(t, s, 6, Command{Type: CmdRequeueTasks, Refs: []TaskRef{{ID: "t3", Attempt: 1}}})
		if r.Applied != 1 {
			t.Fatalf("applied %d", r.Applied)
		}
		queuedAt(s, "t3", 2)
	})
	t.Run("cancel", func(t *testing.T) {
		s := prefetchCluster(t)
		prefetch(s, 5, "t3")
		mustApply(t, s, 6, Command{Type: CmdCancelTask, TaskID: "t3"})
		if s.Tasks["t3"].State != Cancelled || s.PrefetchedCount("n1") != 0 {
			t.Fatalf("t3 %s, prefetched %d", s.Tasks["t3"].State, s.PrefetchedCount("n1"))
		}
	})
}

// The invariants see a prefetched task that holds something.
func TestInvariantsCatchPrefetchedHoldingShare(t *testing.T) {
	s := prefetchCluster(t)
	mustApply(t, s, 5, Command{Type: CmdPrefetchTasks, Limit: 1, Assignments: []Assignment{{TaskID: "t3", Attempt: 1, NodeID: "n1"}}})
	s.Tasks["t3"].Milli = 250
	if err := s.CheckInvariants(); err == nil {
		t.Fatal("a prefetched task holding milli-GPUs passed the invariants")
	}
	s.Tasks["t3"].Milli = 0
	delete(s.prefetched["n1"], "t3")
	if err := s.CheckInvariants(); err == nil {
		t.Fatal("a prefetched task missing from the index passed the invariants")
	}
}

// Snapshots keep prefetched tasks (the index is rebuilt from them), and a
// snapshot written before prefetch existed still decodes.
func TestPrefetchSnapshotCompatibility(t *testing.T) {
	s := prefetchCluster(t)
	mustApply(t, s, 5, Command{Type: CmdPrefetchTasks, Limit: 2, Assignments: []Assignment{{TaskID: "t3", Attempt: 1, NodeID: "n1"}}})
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if got := r.PrefetchedOn("n1"); len(got) != 1 || got[0].ID != "t3" {
		t.Fatalf("restored prefetch %v", got)
	}
	res := r.Apply(6, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 1, Next: &TaskRef{ID: "t3", Attempt: 1}})
	if res.Chained != "t3" {
		t.Fatalf("handoff after restore: %+v", res)
	}
	// The shape of a snapshot from before prefetch: no prefetched tasks, no
	// new fields.
	old := `{"nodes":{"n1":{"id":"n1","name":"n1","gpus":[{"index":0,"mem_total":0}],"cpu_slots":2,"status":"alive"}},
	"tasks":{"t1":{"id":"t1","seq":1,"partition":"p","file_id":"f","file":{"size":0,"name":"a.md"},"state":"assigned","attempt":1,"req_milli":250,"node_id":"n1","gpu":0,"milli":250},
	"t2":{"id":"t2","seq":2,"partition":"p","file_id":"g","file":{"size":0,"name":"b.md"},"state":"queued","attempt":1,"req_milli":250,"gpu":0}},
	"allocs":{"t1":{"node_id":"n1","gpu":0,"milli":250,"mem_bytes":0}},"files":{},"blobs":{},"settings":{"max_attempts":3,"retain_count":100},"seq":2,"finished":[],"index":9}`
	o, err := Unmarshal([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if err := o.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	res = o.Apply(10, Command{Type: CmdPrefetchTasks, Limit: 1, Assignments: []Assignment{{TaskID: "t2", Attempt: 1, NodeID: "n1"}}})
	if err := res.FirstError(); err != nil || o.PrefetchedCount("n1") != 1 {
		t.Fatalf("prefetch on an old snapshot: %v", err)
	}
}

// The handoff's Apply refills the node's prefetch queue to Limit from the
// queue (no second entry from the leader), only for work the node could
// run, and never past the bound.
func TestHandoffTopsUpPrefetchQueue(t *testing.T) {
	s := prefetchCluster(t)
	mustApply(t, s, 5, Command{Type: CmdRegisterNode, Node: node("cpu", 0, 0)})
	mustApply(t, s, 6, Command{Type: CmdSubmitTasks, Now: 6, Tasks: []Task{{ID: "t6", Partition: "p", FileID: "f6", ReqMilli: 500}}})
	mustApply(t, s, 7, Command{Type: CmdPrefetchTasks, Limit: 2, Assignments: []Assignment{{TaskID: "t3", Attempt: 1, NodeID: "n1"}}})
	r := mustApply(t, s, 8, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 1, Next: &TaskRef{ID: "t3", Attempt: 1}, Chain: true, Limit: 2})
	if r.Chained != "t3" {
		t.Fatalf("handoff %+v", r)
	}
	got := s.PrefetchedOn("n1")
	if len(got) != 2 || got[0].ID != "t4" || got[1].ID != "t5" {
		t.Fatalf("after the top-up n1 holds %v, want t4 t5", got)
	}
	if s.QueuedCount() != 1 {
		t.Fatalf("queued %d, want t6 left", s.QueuedCount())
	}
	// Without Limit the handoff refills nothing.
	r = mustApply(t, s, 9, Command{Type: CmdCompleteTask, TaskID: "t2", Attempt: 1, Next: &TaskRef{ID: "t4", Attempt: 1}, Chain: true})
	if r.Chained != "t4" || s.PrefetchedCount("n1") != 1 || s.QueuedCount() != 1 {
		t.Fatalf("handoff without a limit: %+v, prefetched %d, queued %d", r, s.PrefetchedCount("n1"), s.QueuedCount())
	}
}

// A completion that chains a queued task into its slot (no prefetched task
// to hand to) tops the node's prefetch queue up to Limit in the same Apply,
// after the chained start; without Limit it refills nothing.
func TestChainedCompletionTopsUpPrefetchQueue(t *testing.T) {
	s := prefetchCluster(t)
	r := mustApply(t, s, 5, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 1, Chain: true, Limit: 2})
	if r.Rejected() || r.Chained != "t3" {
		t.Fatalf("chained completion %+v, want t3 chained", r)
	}
	got := s.PrefetchedOn("n1")
	if len(got) != 2 || got[0].ID != "t4" || got[1].ID != "t5" {
		t.Fatalf("after the top-up n1 holds %v, want t4 t5", got)
	}
	if m, _ := s.GPUUsage("n1", 0); m != 1000 || s.QueuedCount() != 0 {
		t.Fatalf("card use %d (want t2 + t3), queued %d", m, s.QueuedCount())
	}
	s2 := prefetchCluster(t)
	r = mustApply(t, s2, 5, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 1, Chain: true})
	if r.Chained != "t3" || s2.PrefetchedCount("n1") != 0 {
		t.Fatalf("without a limit: %+v, prefetched %d", r, s2.PrefetchedCount("n1"))
	}
}
