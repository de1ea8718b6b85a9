package fsm

import (
	"bytes"
	"fmt"
	"math/rand"
	"sort"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/gpu"
)

func node(id string, gpus int, mem uint64) *Node {
	n := &Node{ID: id, Name: id, CPUSlots: 2}
	for i := 0; i < gpus; i++ {
		n.GPUs = append(n.GPUs, gpu.Device{Index: i, UUID: fmt.Sprintf("%s-%d", id, i), MemTotal: mem})
	}
	return n
}

func mustApply(t *testing.T, s *State, idx uint64, c Command) Result {
	t.Helper()
	r := s.Apply(idx, c)
	if err := s.CheckInvariants(); err != nil {
		t.Fatalf("invariant after %s: %v", c.Type, err)
	}
	return r
}

func submitOne(id, part, file string) Command {
	return Command{Type: CmdSubmitTasks, Now: 1, Tasks: []Task{{ID: id, Partition: part, FileID: file, ReqMilli: 250}}}
}

func TestLifecycleAndFencing(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Node: node("n1", 1, 0)})
	mustApply(t, s, 2, submitOne("t1", "p", "f1"))
	if s.Tasks["t1"].State != Queued || s.Tasks["t1"].Attempt != 1 {
		t.Fatalf("submitted task: %+v", s.Tasks["t1"])
	}
	r := mustApply(t, s, 3, Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: "t1", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 250}}})
	if r.Batch[0].Err != "" {
		t.Fatal(r.Batch[0].Err)
	}
	if m, _ := s.GPUUsage("n1", 0); m != 250 {
		t.Fatalf("usage %d", m)
	}
	mustApply(t, s, 4, Command{Type: CmdTaskProgress, TaskID: "t1", Attempt: 1, Stage: StageLoading, Now: 5})
	// The node dies: requeue fences attempt 1 out.
	mustApply(t, s, 5, Command{Type: CmdNodeStatus, NodeID: "n1", Status: NodeFailed, Now: 6})
	r = mustApply(t, s, 6, Command{Type: CmdReleaseNode, NodeID: "n1", OnlyIfFailed: true, Now: 7})
	if r.Applied != 1 || s.Tasks["t1"].Attempt != 2 || s.Tasks["t1"].State != Queued {
		t.Fatalf("release: %+v %+v", r, s.Tasks["t1"])
	}
	if m, _ := s.GPUUsage("n1", 0); m != 0 {
		t.Fatalf("usage after release %d", m)
	}
	// The slow worker's completion of attempt 1 arrives late and is rejected.
	r = mustApply(t, s, 7, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 1, Chunks: 3})
	if !strings.Contains(r.Err, "stale attempt") || s.Tasks["t1"].State != Queued {
		t.Fatalf("stale completion accepted: %+v %+v", r, s.Tasks["t1"])
	}
	// Assignment planned for the old attempt is rejected too.
	mustApply(t, s, 8, Command{Type: CmdRegisterNode, Node: node("n1", 1, 0), Now: 8})
	r = mustApply(t, s, 9, Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: "t1", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 250}}})
	if r.Batch[0].Err == "" {
		t.Fatal("assignment for a stale attempt accepted")
	}
	mustApply(t, s, 10, Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: "t1", Attempt: 2, NodeID: "n1", GPU: 0, Milli: 250}}})
	r = mustApply(t, s, 11, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 2, Chunks: 3, Now: 12})
	if r.Err != "" || s.Tasks["t1"].State != Completed || s.Tasks["t1"].Finished != 12 {
		t.Fatalf("complete: %+v %+v", r, s.Tasks["t1"])
	}
	if f := s.Files[FileKey("p", "f1")]; f.State != Completed || f.Chunks != 3 {
		t.Fatalf("file: %+v", f)
	}
}

func TestAssignRejectsOverAllocation(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Node: node("n1", 1, 4<<30)})
	var as []Assignment
	var tasks []Task
	for i := 0; i < 6; i++ {
		id := fmt.Sprintf("t%d", i)
		tasks = append(tasks, Task{ID: id, Partition: "p", FileID: id})
		as = append(as, Assignment{TaskID: id, Attempt: 1, NodeID: "n1", GPU: 0, Milli: 250})
	}
	mustApply(t, s, 2, Command{Type: CmdSubmitTasks, Tasks: tasks})
	r := mustApply(t, s, 3, Command{Type: CmdAssignTasks, Assignments: as})
	ok := 0
	for _, br := range r.Batch {
		if br.Err == "" {
			ok++
		}
	}
	if ok != 4 {
		t.Fatalf("%d of 6 quarter-GPU tasks placed on one card, want 4", ok)
	}
	// Memory: 4 GiB card, 1 GiB reserve, 1 GiB tasks -> 3 fit.
	s = New()
	n := node("n1", 1, 4<<30)
	n.GPUReserve = 1 << 30
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Node: n})
	mustApply(t, s, 2, Command{Type: CmdSubmitTasks, Tasks: tasks})
	for i := range as {
		as[i].Milli = gpu.MilliForMem(1<<30, 4<<30)
		as[i].MemBytes = 1 << 30
	}
	r = mustApply(t, s, 3, Command{Type: CmdAssignTasks, Assignments: as})
	ok = 0
	for _, br := range r.Batch {
		if br.Err == "" {
			ok++
		}
	}
	if ok != 3 {
		t.Fatalf("%d 1GiB tasks placed on a 4GiB card with 1GiB reserve, want 3", ok)
	}
}

func TestFailuresEndFailedAfterMaxAttempts(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdSettings, Settings: &Settings{MaxAttempts: 2, RetainCount: 10}})
	mustApply(t, s, 2, Command{Type: CmdRegisterNode, Node: node("n1", 1, 0)})
	mustApply(t, s, 3, submitOne("t1", "p", "f"))
	for attempt := 1; attempt <= 2; attempt++ {
		mustApply(t, s, 4, Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: "t1", Attempt: attempt, NodeID: "n1", GPU: 0, Milli: 250}}})
		mustApply(t, s, 5, Command{Type: CmdFailTask, TaskID: "t1", Attempt: attempt, Error: fmt.Sprintf("boom %d", attempt)})
	}
	tk := s.Tasks["t1"]
	if tk.State != Failed || tk.Error != "boom 2" || tk.Failures != 2 {
		t.Fatalf("task after 2 failures: %+v", tk)
	}
	// A permanent failure ends at once.
	mustApply(t, s, 6, submitOne("t2", "p", "g"))
	mustApply(t, s, 7, Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: "t2", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 250}}})
	mustApply(t, s, 8, Command{Type: CmdFailTask, TaskID: "t2", Attempt: 1, Error: "pdf: corrupt", Permanent: true})
	if s.Tasks["t2"].State != Failed {
		t.Fatalf("permanent failure requeued: %+v", s.Tasks["t2"])
	}
}

func TestSubmitModes(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: "a", Partition: "p", FileID: "f", Mode: ModeCreate}}})
	r := mustApply(t, s, 2, Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: "b", Partition: "p", FileID: "f", Mode: ModeCreate}}})
	if !strings.Contains(r.Batch[0].Err, "file exists") {
		t.Fatalf("second create: %+v", r)
	}
	r = mustApply(t, s, 3, Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: "c", Partition: "p", FileID: "g", Mode: ModeReplace}}})
	if !strings.Contains(r.Batch[0].Err, "not found") {
		t.Fatalf("replace of missing: %+v", r)
	}
	mustApply(t, s, 4, Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: "d", Partition: "p", FileID: "f", Mode: ModeReplace}}})
	if s.Tasks["a"].State != Cancelled || s.Files[FileKey("p", "f")].TaskID != "d" {
		t.Fatalf("replace did not supersede: %+v", s.Tasks["a"])
	}
	r = mustApply(t, s, 5, Command{Type: CmdDeleteFile, Partition: "p", FileID: "f"})
	if r.Err != "" || s.Tasks["d"].State != Cancelled {
		t.Fatalf("delete: %+v", r)
	}
	r = mustApply(t, s, 6, Command{Type: CmdDeleteFile, Partition: "p", FileID: "f"})
	if r.Err == "" {
		t.Fatal("second delete accepted")
	}
}

func TestRetentionCompactsFinishedTasks(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdSettings, Settings: &Settings{MaxAttempts: 1, RetainCount: 5, RetainMaxAge: 100}})
	for i := 0; i < 20; i++ {
		id := fmt.Sprintf("t%02d", i)
		mustApply(t, s, uint64(2+2*i), Command{Type: CmdSubmitTasks, Now: int64(i), Tasks: []Task{{ID: id, FileID: id}}})
		mustApply(t, s, uint64(3+2*i), Command{Type: CmdCancelTask, TaskID: id, Now: int64(i)})
	}
	if len(s.Tasks) != 5 {
		t.Fatalf("%d tasks retained, want 5", len(s.Tasks))
	}
	if _, ok := s.Tasks["t19"]; !ok {
		t.Fatal("newest finished task compacted")
	}
	mustApply(t, s, 100, Command{Type: CmdSettings, Now: 1000, Settings: &s.Settings})
	if len(s.Tasks) != 0 {
		t.Fatalf("%d tasks older than the max age kept", len(s.Tasks))
	}
}

// randomLog builds a plausible command log: some valid, some stale, some
// conflicting, so Apply's rejection paths run too. Every command type is
// generated, files share a few blob hashes (so blob bookkeeping and its
// garbage collection run), and nodes leave and come back. The generator
// replays its own log on a scratch state to aim most reports at live
// attempts (a uniform pick would almost never complete a task); the log is
// still a pure function of the seed.
func randomLog(seed int64, n int) []Command {
	rng := rand.New(rand.NewSource(seed))
	sim := New()
	var log []Command
	emit := func(c Command) {
		log = append(log, c)
		sim.Apply(uint64(len(log)), c)
	}
	nodes := []string{"a", "b", "c"}
	for i, id := range nodes {
		emit(Command{Type: CmdRegisterNode, Now: int64(i), Node: node(id, 1+i%2, 8<<30)})
	}
	emit(Command{Type: CmdSettings, Settings: &Settings{MaxAttempts: 3, RetainCount: 50, MaxNodeLosses: 1}})
	var ids []string
	part := func() string { return fmt.Sprint("p", rng.Intn(3)) }
	file := func() string { return fmt.Sprint("f", rng.Intn(30)) }
	hash := func() string { return fmt.Sprint("h", rng.Intn(5)) }
	holders := func() []string {
		var hs []string
		for _, nd := range append(nodes, "gone") {
			if rng.Intn(3) == 0 {
				hs = append(hs, nd)
			}
		}
		return hs
	}
	// pick names a task and an attempt: usually one in a state that accepts
	// the command, at its live attempt; else any ID ever submitted (maybe
	// compacted away) at a guessed attempt.
	pick := func(ok func(*Task) bool) (string, int) {
		if rng.Intn(4) > 0 {
			var live []*Task
			for _, t := range sim.Tasks {
				if ok(t) {
					live = append(live, t)
				}
			}
			if len(live) > 0 {
				sort.Slice(live, func(i, j int) bool { return live[i].ID < live[j].ID })
				t := live[rng.Intn(len(live))]
				return t.ID, t.Attempt
			}
		}
		if len(ids) == 0 {
			return "none", 1
		}
		return ids[rng.Intn(len(ids))], 1 + rng.Intn(2)
	}
	queued := func(t *Task) bool { return t.State == Queued }
	active := func(t *Task) bool { return t.State.Active() }
	anyTask := func(*Task) bool { return true }
	prefetched := func(t *Task) bool { return t.State == Prefetched }
	// next is, half the time, a handoff to a prefetched task (often on
	// another node than the one ending, or at a stale attempt).
	next := func() *TaskRef {
		if rng.Intn(2) == 0 {
			return nil
		}
		id, att := pick(prefetched)
		return &TaskRef{ID: id, Attempt: att}
	}
	for i := 0; i < n; i++ {
		now := int64(100 + i)
		switch rng.Intn(13) {
		case 0, 1:
			var ts []Task
			for k := 0; k < 1+rng.Intn(4); k++ {
				id := fmt.Sprintf("t%d-%d", i, k)
				ids = append(ids, id)
				f := file()
				tk := Task{ID: id, Partition: part(), FileID: f, ReqMilli: 250,
					File: FileRef{Hash: hash(), Size: 10, Name: f + ".txt"},
					Mode: []string{ModeUpsert, ModeUpsert, ModeCreate, ModeReplace}[rng.Intn(4)]}
				switch rng.Intn(4) {
				case 0:
					tk.ReqMilli = 0 // CPU
				case 1:
					tk.ReqMilli, tk.ReqMem = 0, uint64(1+rng.Intn(4))<<30 // memory only
				}
				if rng.Intn(3) == 0 {
					tk.Metadata = map[string]any{"k": rng.Intn(3)}
				}
				ts = append(ts, tk)
			}
			if rng.Intn(10) == 0 {
				id, _ := pick(anyTask)
				ts = append(ts, Task{ID: id, Partition: part(), FileID: file()}) // duplicate ID
			}
			emit(Command{Type: CmdSubmitTasks, Now: now, Tasks: ts})
		case 2, 3:
			id, att := pick(queued)
			emit(Command{Type: CmdAssignTasks, Now: now, Assignments: []Assignment{{
				TaskID: id, Attempt: att, NodeID: nodes[rng.Intn(3)], GPU: rng.Intn(3) - 1, Milli: []int{250, 500, 1000}[rng.Intn(3)], MemBytes: uint64(rng.Intn(3)) << 30}}})
		case 4:
			id, att := pick(active)
			emit(Command{Type: CmdTaskProgress, Now: now, TaskID: id, Attempt: att, Stage: StageEmbedding})
		case 5:
			id, att := pick(active)
			emit(Command{Type: CmdCompleteTask, Now: now, TaskID: id, Attempt: att, Chunks: rng.Intn(9), Chain: rng.Intn(2) == 0, ChunkHolders: holders(), Next: next(), Limit: rng.Intn(3)})
		case 6:
			id, att := pick(active)
			emit(Command{Type: CmdFailTask, Now: now, TaskID: id, Attempt: att, Error: "x", Permanent: rng.Intn(4) == 0, Chain: rng.Intn(2) == 0, Next: next(),
				NodeLoss: rng.Intn(3) == 0})
		case 7:
			nd := nodes[rng.Intn(3)]
			st := []string{NodeAlive, NodeFailed}[rng.Intn(2)]
			emit(Command{Type: CmdBatch, Now: now, Batch: []Command{
				{Type: CmdNodeStatus, Now: now, NodeID: nd, Status: st},
				{Type: CmdReleaseNode, Now: now, NodeID: nd, OnlyIfFailed: true, NodeLoss: rng.Intn(2) == 0},
				{Type: CmdSetDrain, NodeID: nodes[rng.Intn(3)], Draining: rng.Intn(2) == 0},
			}})
		case 8:
			switch rng.Intn(3) {
			case 0:
				id, _ := pick(anyTask)
				emit(Command{Type: CmdCancelTask, Now: now, TaskID: id})
			case 1:
				emit(Command{Type: CmdDeleteFile, Now: now, Partition: part(), FileID: file()})
			default:
				id, att := pick(active)
				emit(Command{Type: CmdRequeueTasks, Now: now, Refs: []TaskRef{{ID: id, Attempt: att}}, NodeLoss: rng.Intn(2) == 0})
			}
		case 9:
			// Nodes leave and come back, sometimes with another GPU count
			// (work on a vanished card is requeued).
			nd := nodes[rng.Intn(3)]
			if rng.Intn(2) == 0 {
				emit(Command{Type: CmdRemoveNode, Now: now, NodeID: nd})
			} else {
				emit(Command{Type: CmdRegisterNode, Now: now, Node: node(nd, rng.Intn(3), 8<<30)})
			}
		case 10:
			if rng.Intn(8) == 0 {
				emit(Command{Type: CmdDeletePart, Now: now, Partition: part()})
				break
			}
			// Values set and cleared (null deletes the key).
			md := map[string]any{}
			for _, k := range []string{"k", "x", "y"} {
				switch rng.Intn(3) {
				case 0:
					md[k] = rng.Intn(5)
				case 1:
					md[k] = nil
				}
			}
			emit(Command{Type: CmdFileMetadata, Now: now, Partition: part(), FileID: file(), Metadata: md})
		case 11:
			if rng.Intn(2) == 0 {
				emit(Command{Type: CmdBlobHolders, Now: now, Blob: &Blob{Hash: hash(), Size: 10, Holders: holders()}, Remove: holders()})
				break
			}
			// Mostly a live version; else a random file and task.
			p, f, taskID := part(), file(), "none"
			if len(ids) > 0 {
				taskID = ids[rng.Intn(len(ids))]
			}
			var live []*File
			for _, fl := range sim.Files {
				if fl.LiveTask != "" {
					live = append(live, fl)
				}
			}
			if len(live) > 0 && rng.Intn(4) > 0 {
				sort.Slice(live, func(i, j int) bool {
					return FileKey(live[i].Partition, live[i].FileID) < FileKey(live[j].Partition, live[j].FileID)
				})
				fl := live[rng.Intn(len(live))]
				p, f, taskID = fl.Partition, fl.FileID, fl.LiveTask
			}
			emit(Command{Type: CmdChunkHolders, Now: now, Partition: p, FileID: f, TaskID: taskID, ChunkHolders: holders(), Remove: holders()})
		case 12:
			// Prefetch queued tasks, or promote (assign) a prefetched one,
			// on a random node: often not the one it waits on.
			if rng.Intn(3) == 0 {
				id, att := pick(prefetched)
				emit(Command{Type: CmdAssignTasks, Now: now, Assignments: []Assignment{{
					TaskID: id, Attempt: att, NodeID: nodes[rng.Intn(3)], GPU: rng.Intn(3) - 1, Milli: []int{250, 500}[rng.Intn(2)]}}})
				break
			}
			var as []Assignment
			for k := 0; k < 1+rng.Intn(3); k++ {
				id, att := pick(queued)
				as = append(as, Assignment{TaskID: id, Attempt: att, NodeID: nodes[rng.Intn(3)]})
			}
			emit(Command{Type: CmdPrefetchTasks, Now: now, Limit: 1 + rng.Intn(3), Assignments: as})
		}
	}
	return log
}

// roundTrip is c as a peer decodes it from the Raft log: each replica gets
// its own copy, so no two states share a command's maps and slices.
func roundTrip(t *testing.T, c Command) Command {
	t.Helper()
	enc, err := Encode(c)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := Decode(enc)
	if err != nil {
		t.Fatal(err)
	}
	return dc
}

func TestSameLogSameStateAndInvariants(t *testing.T) {
	// Commands of each type that some replica applied (not rejected).
	applied := map[CmdType]int{}
	handoffs := 0 // prefetched tasks started by a completion or failure
	poisoned := 0 // tasks the quarantine failed
	for seed := int64(1); seed <= 20; seed++ {
		log := randomLog(seed, 400)
		a, b := New(), New()
		for i, c := range log {
			for k, s := range []*State{a, b} {
				res := s.Apply(uint64(i+1), roundTrip(t, c))
				if err := s.CheckInvariants(); err != nil {
					t.Fatalf("seed %d step %d (%s) replica %d: %v", seed, i, c.Type, k, err)
				}
				if res.FirstError() == nil {
					applied[c.Type]++
				}
				if c.Next != nil && res.Chained == c.Next.ID {
					handoffs++
				}
				for j, sub := range res.Batch {
					if c.Type == CmdBatch && !sub.Rejected() {
						applied[c.Batch[j].Type]++
					}
				}
			}
		}
		ja, _ := a.Marshal()
		jb, _ := b.Marshal()
		if !bytes.Equal(ja, jb) {
			t.Fatalf("seed %d: two FSMs diverged on the same log", seed)
		}
		for _, e := range a.Events {
			if e.Kind == EvTaskPoison {
				poisoned++
			}
		}
		// Snapshot then restore gives an identical state, and it keeps working.
		r, err := Unmarshal(ja)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.CheckInvariants(); err != nil {
			t.Fatalf("restored: %v", err)
		}
		jr, _ := r.Marshal()
		if !bytes.Equal(ja, jr) {
			t.Fatalf("seed %d: restore differs from snapshot", seed)
		}
		more := randomLog(seed+1000, 50)
		for i, c := range more {
			for k, s := range []*State{a, r} {
				s.Apply(uint64(len(log)+i+1), roundTrip(t, c))
				if err := s.CheckInvariants(); err != nil {
					t.Fatalf("seed %d more step %d (%s) replica %d: %v", seed, i, c.Type, k, err)
				}
			}
		}
		ja, _ = a.Marshal()
		jr, _ = r.Marshal()
		if !bytes.Equal(ja, jr) {
			t.Fatalf("seed %d: restored state diverged after more commands", seed)
		}
	}
	t.Logf("applied %v", applied)
	// The log must apply every command type, or the property says little.
	for _, ct := range []CmdType{CmdRegisterNode, CmdNodeStatus, CmdRemoveNode, CmdSubmitTasks, CmdAssignTasks,
		CmdTaskProgress, CmdCompleteTask, CmdFailTask, CmdRequeueTasks, CmdCancelTask, CmdSetDrain, CmdReleaseNode,
		CmdSettings, CmdDeleteFile, CmdDeletePart, CmdFileMetadata, CmdBlobHolders, CmdChunkHolders, CmdBatch, CmdPrefetchTasks} {
		if applied[ct] == 0 {
			t.Errorf("no %s in randomLog was ever applied", ct)
		}
	}
	if handoffs == 0 {
		t.Error("no completion or failure in randomLog ever started a prefetched task")
	}
	if poisoned == 0 {
		t.Error("no task in randomLog was ever quarantined")
	}
}

func TestSnapshot100kTasks(t *testing.T) {
	if testing.Short() {
		t.Skip("large snapshot in -short mode")
	}
	const n = 100000
	s := ledger100k(t)
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	r, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Tasks) != n || r.QueuedCount() != n/2 {
		t.Fatalf("restored %d tasks, %d queued", len(r.Tasks), r.QueuedCount())
	}
	if err := r.CheckInvariants(); err != nil {
		t.Fatal(err)
	}
	b2, _ := r.Marshal()
	if !bytes.Equal(b, b2) {
		t.Fatal("100k-task restore differs")
	}
}

func BenchmarkApplySubmitAssignComplete(b *testing.B) {
	s := New()
	s.Apply(1, Command{Type: CmdRegisterNode, Node: node("n1", 8, 80<<30)})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		id := fmt.Sprintf("%048x", i)
		s.Apply(uint64(i), Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: id, Partition: "p", FileID: id}}})
		s.Apply(uint64(i), Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: id, Attempt: 1, NodeID: "n1", GPU: i % 8, Milli: 250}}})
		s.Apply(uint64(i), Command{Type: CmdCompleteTask, TaskID: id, Attempt: 1})
	}
}

// Two chained completions hand their slots to two partitions in turn. a
// keeps two queued tasks (a2, a3) after a0 and a1 run, so a rule that
// always picks partition a would chain a2 then a3 and fail here.
func TestChainHandsFreedSlotRoundRobin(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Node: node("n1", 1, 0)})
	var tasks []Task
	for i := 0; i < 4; i++ {
		tasks = append(tasks, Task{ID: fmt.Sprintf("a%d", i), Partition: "a", FileID: fmt.Sprint("a", i), ReqMilli: 500})
	}
	tasks = append(tasks, Task{ID: "b0", Partition: "b", FileID: "b0", ReqMilli: 500})
	mustApply(t, s, 2, Command{Type: CmdSubmitTasks, Tasks: tasks})
	mustApply(t, s, 3, Command{Type: CmdAssignTasks, Assignments: []Assignment{
		{TaskID: "a0", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 500}, {TaskID: "a1", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 500}}})
	r := mustApply(t, s, 4, Command{Type: CmdCompleteTask, TaskID: "a0", Attempt: 1, Chain: true})
	first := r.Chained
	r = mustApply(t, s, 5, Command{Type: CmdCompleteTask, TaskID: "a1", Attempt: 1, Chain: true})
	second := r.Chained
	got := []string{first, second}
	sort.Strings(got)
	if got[0] != "a2" || got[1] != "b0" {
		t.Fatalf("chained %v, want one task of each partition (a2, b0)", got)
	}
	if m, _ := s.GPUUsage("n1", 0); m != 1000 {
		t.Fatalf("usage after chaining %d, want 1000", m)
	}
	// A draining node gets nothing chained.
	mustApply(t, s, 6, Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: "c0", Partition: "c", FileID: "c0", ReqMilli: 500}}})
	mustApply(t, s, 7, Command{Type: CmdSetDrain, NodeID: "n1", Draining: true})
	r = mustApply(t, s, 8, Command{Type: CmdCompleteTask, TaskID: first, Attempt: 1, Chain: true})
	if r.Chained != "" || s.Tasks["c0"].State != Queued {
		t.Fatalf("chained %q onto a draining node", r.Chained)
	}
}
