package fsm

import (
	"bytes"
	"testing"

	"github.com/ragnode/ragnode/gpu"
)

// fuzzBase is a small live cluster: two nodes (one with two GPUs), tasks in
// every state across two partitions, a blob, a drain. Fuzzed commands land
// on it, so most of them reach real code instead of "unknown task".
func fuzzBase() []Command {
	gpuNode := &Node{ID: "n1", Name: "n1", CPUSlots: 2, MaxConcurrent: 4, GPUReserve: 1 << 30,
		GPUs: []gpu.Device{{Index: 0, UUID: "g0", MemTotal: 16 << 30}, {Index: 1, UUID: "g1", MemTotal: 8 << 30}}}
	cpuNode := &Node{ID: "n2", Name: "n2", CPUSlots: 1}
	task := func(id, part, file, hash string, milli int, mem uint64) Task {
		return Task{ID: id, Partition: part, FileID: file, ReqMilli: milli, ReqMem: mem,
			File: FileRef{Hash: hash, Size: 10, Name: file + ".md"}, Metadata: map[string]any{"k": id}}
	}
	return []Command{
		{Type: CmdRegisterNode, Now: 1, Node: gpuNode},
		{Type: CmdRegisterNode, Now: 1, Node: cpuNode},
		{Type: CmdSettings, Now: 2, Settings: &Settings{MaxAttempts: 2, RetainCount: 50}},
		{Type: CmdBlobHolders, Now: 2, Blob: &Blob{Hash: "h1", Size: 10, Holders: []string{"n1"}}},
		{Type: CmdSubmitTasks, Now: 3, Tasks: []Task{
			task("t1", "p1", "f1", "h1", 500, 4<<30), task("t2", "p1", "f2", "h2", 250, 0),
			task("t3", "p2", "f3", "h3", 0, 0), task("t4", "p2", "f4", "h4", 0, 0),
			task("t5", "p1", "f5", "h5", 300, 0), task("t6", "p2", "f6", "h1", 100, 1<<30)}},
		{Type: CmdAssignTasks, Now: 4, Assignments: []Assignment{
			{TaskID: "t1", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 500, MemBytes: 4 << 30},
			{TaskID: "t2", Attempt: 1, NodeID: "n1", GPU: 1, Milli: 250},
			{TaskID: "t3", Attempt: 1, NodeID: "n2", GPU: -1},
			{TaskID: "t4", Attempt: 1, NodeID: "n1", GPU: -1}}},
		{Type: CmdTaskProgress, Now: 5, TaskID: "t1", Attempt: 1, Stage: StageChunking},
		{Type: CmdCompleteTask, Now: 6, TaskID: "t2", Attempt: 1, Chunks: 7, Started: 5, ChunkHolders: []string{"n1"}, Chain: true},
		{Type: CmdFailTask, Now: 7, TaskID: "t3", Attempt: 1, Error: "boom", Started: 6},
		{Type: CmdSubmitTasks, Now: 8, Tasks: []Task{task("t7", "p1", "f7", "h1", 250, 0), task("t8", "p2", "f8", "h1", 0, 0)}},
		{Type: CmdPrefetchTasks, Now: 8, Limit: 2, Assignments: []Assignment{
			{TaskID: "t7", Attempt: 1, NodeID: "n1"}, {TaskID: "t8", Attempt: 1, NodeID: "n1"}}},
		{Type: CmdSetDrain, Now: 8, NodeID: "n2", Draining: true, Deadline: 100, Error: "restart"},
	}
}

// fuzzSeeds are real encoded commands of every type, each valid against
// fuzzBase, so mutations start from the shapes the cluster really sends.
func fuzzSeeds() []Command {
	return []Command{
		{Type: CmdRegisterNode, Now: 10, Node: &Node{ID: "n1", Name: "n1", CPUSlots: 2, MaxConcurrent: 4, GPUReserve: 1 << 30,
			GPUs: []gpu.Device{{Index: 0, UUID: "g0", MemTotal: 16 << 30}, {Index: 1, UUID: "g1", MemTotal: 8 << 30}}}},
		{Type: CmdRegisterNode, Now: 10, Node: &Node{ID: "n3", Name: "n3", CPUSlots: 1, GPUs: []gpu.Device{{Index: 0, MemTotal: 1 << 30}}}},
		{Type: CmdNodeStatus, Now: 10, NodeID: "n1", Status: NodeFailed},
		{Type: CmdRemoveNode, Now: 10, NodeID: "n1"},
		{Type: CmdSubmitTasks, Now: 10, Tasks: []Task{{ID: "t9", Partition: "p1", FileID: "f1", Mode: ModeReplace, ReqMilli: 200,
			File: FileRef{Hash: "h9", Name: "f1.md"}}}},
		{Type: CmdAssignTasks, Now: 10, Assignments: []Assignment{{TaskID: "t6", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 100, MemBytes: 1 << 30}}},
		{Type: CmdTaskProgress, Now: 10, TaskID: "t4", Attempt: 1, Stage: StageEmbedding},
		{Type: CmdCompleteTask, Now: 10, TaskID: "t1", Attempt: 1, Chunks: 3, ChunkHolders: []string{"n2", "n1"}, Chain: true},
		{Type: CmdFailTask, Now: 10, TaskID: "t4", Attempt: 1, Error: "corrupt", Permanent: true, Chain: true},
		{Type: CmdRequeueTasks, Now: 10, Refs: []TaskRef{{ID: "t1", Attempt: 1}, {ID: "t4", Attempt: 1}}, Error: "drain"},
		{Type: CmdCancelTask, Now: 10, TaskID: "t5"},
		{Type: CmdSetDrain, Now: 10, NodeID: "n1", Draining: true},
		{Type: CmdReleaseNode, Now: 10, NodeID: "n1", OnlyIfFailed: true},
		{Type: CmdBatch, Now: 10, Batch: []Command{
			{Type: CmdNodeStatus, Now: 10, NodeID: "n1", Status: NodeFailed},
			{Type: CmdReleaseNode, Now: 10, NodeID: "n1", OnlyIfFailed: true, NodeLoss: true, Error: "node n1 failed"}}},
		{Type: CmdFailTask, Now: 10, TaskID: "t1", Attempt: 1, Error: "parser child died", NodeLoss: true, Chain: true},
		{Type: CmdRequeueTasks, Now: 10, Refs: []TaskRef{{ID: "t1", Attempt: 1}, {ID: "t7", Attempt: 1}}, Error: "lost", NodeLoss: true},
		{Type: CmdSettings, Now: 10, Settings: &Settings{MaxAttempts: 3, RetainCount: 50, MaxNodeLosses: -1}},
		{Type: CmdSettings, Now: 10, Settings: &Settings{MaxAttempts: 1, RetainCount: 1, RetainMaxAge: 5}},
		{Type: CmdDeleteFile, Now: 10, Partition: "p1", FileID: "f1"},
		{Type: CmdDeletePart, Now: 10, Partition: "p2"},
		{Type: CmdFileMetadata, Now: 10, Partition: "p1", FileID: "f2", Metadata: map[string]any{"lang": "en", "n": 2.0}},
		{Type: CmdBlobHolders, Now: 10, Blob: &Blob{Hash: "h1", Holders: []string{"n2"}}, Remove: []string{"n1"}},
		{Type: CmdChunkHolders, Now: 10, Partition: "p1", FileID: "f2", TaskID: "t2", ChunkHolders: []string{"n2"}, Remove: []string{"n1"}},
		{Type: CmdCreatePartition, Now: 10, Partition: "empty"},
		{Type: CmdPartitionConfig, Now: 10, Partition: "p1", Metadata: map[string]any{"description": "d", "chat_llm": nil}},
		{Type: CmdCallback, Now: 10, TaskID: "t2", Status: CallbackClaimed, NodeID: "n2"},
		{Type: CmdCopyFile, Now: 10, Partition: "p1", FileID: "f2", TaskID: "t2", ChunkHolders: []string{"n2"},
			Tasks: []Task{{ID: "c1", Partition: "p3", FileID: "f2", Chunks: 7}}, Move: true},
		{Type: CmdPrefetchTasks, Now: 10, Limit: 3, Assignments: []Assignment{{TaskID: "t6", Attempt: 1, NodeID: "n1"}}},
		{Type: CmdCompleteTask, Now: 10, TaskID: "t1", Attempt: 1, Chunks: 2, Next: &TaskRef{ID: "t7", Attempt: 1}, Chain: true, Limit: 3},
		{Type: CmdFailTask, Now: 10, TaskID: "t4", Attempt: 1, Error: "x", Next: &TaskRef{ID: "t8", Attempt: 1}},
		{Type: CmdAssignTasks, Now: 10, Assignments: []Assignment{{TaskID: "t7", Attempt: 1, NodeID: "n1", GPU: 1, Milli: 250}}},
		{Type: CmdBatch, Now: 10, Batch: []Command{
			{Type: CmdCompleteTask, Now: 10, TaskID: "t1", Attempt: 1, Chunks: 1},
			{Type: CmdAssignTasks, Now: 10, Assignments: []Assignment{{TaskID: "t6", Attempt: 1, NodeID: "n1", GPU: 1, Milli: 300}}},
			{Type: CmdBatch}}},
	}
}

func encodeLines(t testing.TB, cs ...Command) []byte {
	var b bytes.Buffer
	for _, c := range cs {
		e, err := Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(e)
		b.WriteByte('\n')
	}
	return b.Bytes()
}

// FuzzApply decodes each line of the input as a Raft log entry and applies
// it after fuzzBase. Each one must be refused (by Decode, or with an error
// that leaves the state as only Apply's housekeeping changes it) or leave
// CheckInvariants true; Apply must be deterministic, and a snapshot of the
// result must restore to the same state.
func FuzzApply(f *testing.F) {
	seeds := fuzzSeeds()
	for _, c := range seeds {
		f.Add(encodeLines(f, c))
	}
	f.Add(encodeLines(f, seeds...))
	f.Add([]byte("{}\n{\"t\":\"batch\",\"batch\":[{\"t\":\"nope\"}]}\nnot json\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		s := New()
		for i, c := range fuzzBase() {
			s.Apply(uint64(i+1), c)
		}
		if err := s.CheckInvariants(); err != nil {
			t.Fatalf("base state: %v", err)
		}
		idx := uint64(100)
		for _, line := range bytes.Split(data, []byte("\n")) {
			c, err := Decode(line)
			if err != nil {
				continue
			}
			idx++
			before := snapshotOf(t, s)
			r := s.Apply(idx, c)
			if err := s.CheckInvariants(); err != nil {
				t.Fatalf("%s broke an invariant: %v\ncommand: %s", c.Type, err, line)
			}
			after := snapshotOf(t, s)
			twin := restoreOf(t, before)
			twin.Apply(idx, c)
			if !bytes.Equal(snapshotOf(t, twin), after) {
				t.Fatalf("%s applied to a restored copy gives another state\ncommand: %s", c.Type, line)
			}
			if r.Error() != nil {
				want := restoreOf(t, before)
				want.Index = max(want.Index, idx)
				want.compact(c.Now)
				if !bytes.Equal(snapshotOf(t, want), after) {
					t.Fatalf("%s was refused (%v) but changed the state\ncommand: %s", c.Type, r.Error(), line)
				}
			}
			if err := restoreOf(t, after).CheckInvariants(); err != nil {
				t.Fatalf("snapshot after %s restores broken: %v", c.Type, err)
			}
		}
	})
}

func snapshotOf(t *testing.T, s *State) []byte {
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func restoreOf(t *testing.T, b []byte) *State {
	s, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Found by FuzzApply (testdata/fuzz/FuzzApply/ceb3ceb6c822446b): a node
// that registers again with less capacity keeps work it can no longer
// hold. registerNode requeues tasks on a GPU that vanished, but not CPU
// tasks beyond the new slot count, nor GPU tasks beyond the new usable
// memory (a smaller GPU, a larger reserve), so CheckInvariants fails.
func TestRegisterWithLessCapacityRequeuesWork(t *testing.T) {
	shrink := map[string]func(n *Node){
		"fewer CPU slots":    func(n *Node) { n.CPUSlots = 0 },
		"smaller GPU":        func(n *Node) { n.GPUs[0].MemTotal = 2 << 30 },
		"larger GPU reserve": func(n *Node) { n.GPUReserve = 15 << 30 },
	}
	for name, change := range shrink {
		t.Run(name, func(t *testing.T) {
			s := New()
			for i, c := range fuzzBase() {
				s.Apply(uint64(i+1), c)
			}
			n := *s.Nodes["n1"]
			n.GPUs = append([]gpu.Device(nil), n.GPUs...)
			change(&n)
			s.Apply(100, Command{Type: CmdRegisterNode, Now: 100, Node: &n})
			if err := s.CheckInvariants(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
