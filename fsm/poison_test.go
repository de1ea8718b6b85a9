package fsm

import (
	"strings"
	"testing"
)

func poisonCluster(t *testing.T) *State {
	t.Helper()
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Now: 1, Node: node("a", 1, 8<<30)})
	mustApply(t, s, 2, Command{Type: CmdRegisterNode, Now: 1, Node: node("b", 1, 8<<30)})
	mustApply(t, s, 3, Command{Type: CmdSubmitTasks, Now: 2, Tasks: []Task{
		{ID: "t1", Partition: "p", FileID: "poison", ReqMilli: 250},
		// A client cannot start a task with counts of its own.
		{ID: "t2", Partition: "p", FileID: "ok", ReqMilli: 250, NodeLosses: 9, FirstStart: 7},
	}})
	return s
}

func assignAt(t *testing.T, s *State, idx uint64, now int64, id, nodeID string) {
	t.Helper()
	tk := s.Tasks[id]
	r := mustApply(t, s, idx, Command{Type: CmdAssignTasks, Now: now, Assignments: []Assignment{
		{TaskID: id, Attempt: tk.Attempt, NodeID: nodeID, GPU: 0, Milli: 250}}})
	if err := r.FirstError(); err != nil {
		t.Fatalf("assign %s to %s: %v", id, nodeID, err)
	}
}

// Each way an attempt can end with its node or runner lost counts once;
// the third loss (past the default of 2) fails the task as poison, and
// its budget's start stays the first placement's.
func TestNodeLossesQuarantinePoison(t *testing.T) {
	s := poisonCluster(t)
	if tk := s.Tasks["t2"]; tk.NodeLosses != 0 || tk.FirstStart != 0 {
		t.Fatalf("submitted counts kept: %+v", tk)
	}
	assignAt(t, s, 4, 100, "t1", "a")
	if got := s.Tasks["t1"].FirstStart; got != 100 {
		t.Fatalf("first start %d, want 100", got)
	}
	// 1: node a declared failed and released.
	mustApply(t, s, 5, Command{Type: CmdNodeStatus, Now: 110, NodeID: "a", Status: NodeFailed})
	mustApply(t, s, 6, Command{Type: CmdReleaseNode, Now: 120, NodeID: "a", OnlyIfFailed: true, NodeLoss: true, Error: "node a failed"})
	tk := s.Tasks["t1"]
	if tk.State != Queued || tk.NodeLosses != 1 || tk.Failures != 0 || tk.Attempt != 2 {
		t.Fatalf("after the first loss: %s losses %d failures %d attempt %d", tk.State, tk.NodeLosses, tk.Failures, tk.Attempt)
	}
	// A drain's hand-back and an ordinary failure are not losses.
	assignAt(t, s, 7, 130, "t1", "b")
	mustApply(t, s, 8, Command{Type: CmdRequeueTasks, Now: 140, Refs: []TaskRef{{ID: "t1", Attempt: 2}}, Error: "drain deadline passed"})
	assignAt(t, s, 9, 150, "t1", "b")
	mustApply(t, s, 10, Command{Type: CmdFailTask, Now: 160, TaskID: "t1", Attempt: 3, Error: "embedder down"})
	if tk.NodeLosses != 1 || tk.Failures != 1 || tk.FirstStart != 100 {
		t.Fatalf("drain and failure: losses %d failures %d first start %d", tk.NodeLosses, tk.Failures, tk.FirstStart)
	}
	// 2: the runner killed under it (a parser child's crash).
	assignAt(t, s, 11, 170, "t1", "b")
	mustApply(t, s, 12, Command{Type: CmdFailTask, Now: 180, TaskID: "t1", Attempt: 4, Error: "parser child died: killed by signal 9", NodeLoss: true})
	if tk.State != Queued || tk.NodeLosses != 2 || tk.Failures != 1 {
		t.Fatalf("after the runner's loss: %s losses %d failures %d", tk.State, tk.NodeLosses, tk.Failures)
	}
	// 3: past the limit, whichever command reports it.
	assignAt(t, s, 13, 190, "t1", "b")
	mustApply(t, s, 14, Command{Type: CmdRequeueTasks, Now: 200, Refs: []TaskRef{{ID: "t1", Attempt: 5}}, Error: "node b failed", NodeLoss: true})
	if tk.State != Failed || tk.NodeLosses != 3 || tk.Finished != 200 {
		t.Fatalf("third loss: %s losses %d", tk.State, tk.NodeLosses)
	}
	if want := "suspected poison document: lost 3 nodes while running it (last: node b failed)"; tk.Error != want {
		t.Fatalf("error %q, want %q", tk.Error, want)
	}
	if f := s.Files[FileKey("p", "poison")]; f.State != Failed {
		t.Fatalf("file is %s", f.State)
	}
	var ev *Event
	for i := range s.Events {
		if s.Events[i].Kind == EvTaskPoison {
			ev = &s.Events[i]
		}
	}
	if ev == nil || ev.TaskID != "t1" || !strings.Contains(ev.Msg, "poison quarantined: suspected poison document: lost 3 nodes") {
		t.Fatalf("no poison event: %+v", s.Events)
	}
	// The other task ran on: one bad file never blocks the queue.
	if s.Tasks["t2"].State != Queued {
		t.Fatalf("t2 is %s", s.Tasks["t2"].State)
	}
}

// A failure reported with NodeLoss quarantines as the release does, and
// its event is the poison one only.
func TestRunnerLossQuarantineEvent(t *testing.T) {
	s := poisonCluster(t)
	mustApply(t, s, 4, Command{Type: CmdSettings, Settings: &Settings{MaxAttempts: 3, MaxNodeLosses: 1}})
	assignAt(t, s, 5, 10, "t1", "a")
	mustApply(t, s, 6, Command{Type: CmdFailTask, Now: 11, TaskID: "t1", Attempt: 1, Error: "parser child died", NodeLoss: true})
	assignAt(t, s, 7, 12, "t1", "b")
	mustApply(t, s, 8, Command{Type: CmdFailTask, Now: 13, TaskID: "t1", Attempt: 2, Error: "parser child died", NodeLoss: true, Chain: true})
	if tk := s.Tasks["t1"]; tk.State != Failed || !strings.HasPrefix(tk.Error, PoisonPrefix+": lost 2 nodes") {
		t.Fatalf("t1 %s: %q", tk.State, tk.Error)
	}
	kinds := map[string]int{}
	for _, e := range s.Events {
		if e.TaskID == "t1" {
			kinds[e.Kind]++
		}
	}
	if kinds[EvTaskPoison] != 1 || kinds[EvTaskFailed] != 0 {
		t.Fatalf("events of t1: %v", kinds)
	}
}

// Prefetched work never started: a lost node's queue goes back without a
// count. A negative limit turns the quarantine off.
func TestNodeLossesSkipPrefetchedAndCanBeOff(t *testing.T) {
	s := poisonCluster(t)
	mustApply(t, s, 4, Command{Type: CmdSettings, Settings: &Settings{MaxAttempts: 3, MaxNodeLosses: -1}})
	mustApply(t, s, 5, Command{Type: CmdPrefetchTasks, Now: 5, Limit: 2, Assignments: []Assignment{{TaskID: "t2", Attempt: 1, NodeID: "a"}}})
	idx := uint64(6)
	for i := 0; i < 5; i++ {
		assignAt(t, s, idx, int64(10+i), "t1", "a")
		mustApply(t, s, idx+1, Command{Type: CmdReleaseNode, Now: int64(10 + i), NodeID: "a", NodeLoss: true, Error: "node a failed"})
		idx += 2
	}
	if tk := s.Tasks["t1"]; tk.State != Queued || tk.NodeLosses != 5 {
		t.Fatalf("quarantine off: t1 %s after %d losses", tk.State, tk.NodeLosses)
	}
	if tk := s.Tasks["t2"]; tk.NodeLosses != 0 || tk.State != Queued {
		t.Fatalf("prefetched task counted: %s %d", tk.State, tk.NodeLosses)
	}
}

// Snapshots from before the quarantine decode with no losses and the
// default limit.
func TestPoisonSnapshotCompatibility(t *testing.T) {
	old := `{"nodes":{"n1":{"id":"n1","name":"n1","gpus":[{"index":0,"mem_total":0}],"cpu_slots":2,"status":"alive"}},
	"tasks":{"t1":{"id":"t1","seq":1,"partition":"p","file_id":"f","file":{"size":0,"name":"a.md"},"state":"running","attempt":2,"failures":1,"req_milli":250,"node_id":"n1","gpu":0,"milli":250,"started":5}},
	"allocs":{"t1":{"node_id":"n1","gpu":0,"milli":250,"mem_bytes":0}},"files":{},"blobs":{},"settings":{"max_attempts":3,"retain_count":100},"seq":1,"finished":[],"index":9}`
	s, err := Unmarshal([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	if s.maxNodeLosses() != DefaultMaxNodeLosses || s.Tasks["t1"].NodeLosses != 0 || s.Tasks["t1"].FirstStart != 0 {
		t.Fatalf("old snapshot: limit %d, task %+v", s.maxNodeLosses(), s.Tasks["t1"])
	}
	mustApply(t, s, 10, Command{Type: CmdReleaseNode, Now: 20, NodeID: "n1", NodeLoss: true, Error: "lost"})
	if tk := s.Tasks["t1"]; tk.NodeLosses != 1 || tk.State != Queued {
		t.Fatalf("after a loss: %+v", tk)
	}
	b, _ := s.Marshal()
	if !strings.Contains(string(b), `"node_losses":1`) {
		t.Fatal("node losses not in the snapshot")
	}
}

func TestInvariantsCatchCountsBeyondAttempts(t *testing.T) {
	s := poisonCluster(t)
	s.Tasks["t1"].NodeLosses = 1 // queued at attempt 1: no attempt ended yet
	if err := s.CheckInvariants(); err == nil || !strings.Contains(err.Error(), "node losses") {
		t.Fatalf("invariant missed: %v", err)
	}
}
