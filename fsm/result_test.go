package fsm

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
)

var allSentinels = map[Code]error{
	CodeStaleAttempt: ErrStaleAttempt,
	CodeUnknownTask:  ErrUnknownTask,
	CodeUnknownNode:  ErrUnknownNode,
	CodeFileExists:   ErrFileExists,
	CodeFileMissing:  ErrFileMissing,
	CodeDuplicate:    ErrDuplicate,
	CodeConflict:     ErrConflict,
	CodeInvalid:      ErrInvalid,
	CodeNoCapacity:   ErrNoCapacity,
}

// wantRejected checks that res is rejected with exactly the sentinel want
// (and no other), with the matching Code and a human message.
func wantRejected(t *testing.T, what string, res Result, want error) {
	t.Helper()
	err := res.Error()
	if !res.Rejected() || err == nil || res.Err == "" {
		t.Fatalf("%s: not rejected: %+v", what, res)
	}
	if err.Error() != res.Err {
		t.Fatalf("%s: Error() %q, want the message %q", what, err, res.Err)
	}
	for code, s := range allSentinels {
		if got := errors.Is(err, s); got != (s == want) {
			t.Fatalf("%s: errors.Is(%q [%s], %v) = %v", what, res.Err, res.Code, s, got)
		}
		if s == want && (res.Code != code || CodeOf(err) != code) {
			t.Fatalf("%s: code %q / CodeOf %q, want %q", what, res.Code, CodeOf(err), code)
		}
	}
	// Wrapping keeps the match, as callers add context.
	if !errors.Is(fmt.Errorf("propose: %w", err), want) {
		t.Fatalf("%s: wrapped rejection lost its sentinel", what)
	}
}

func assignCmd(id string, attempt int, node string, gpuIdx, milli int, mem uint64) Command {
	return Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: id, Attempt: attempt, NodeID: node, GPU: gpuIdx, Milli: milli, MemBytes: mem}}}
}

func TestRejectionCodes(t *testing.T) {
	s := New()
	n := node("n1", 1, 4<<30)
	n.CPUSlots = 1
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Node: n})
	mustApply(t, s, 2, submitOne("t1", "p", "f1"))

	wantRejected(t, "cancel unknown task", mustApply(t, s, 3, Command{Type: CmdCancelTask, TaskID: "nope"}), ErrUnknownTask)
	wantRejected(t, "progress of unknown task", mustApply(t, s, 3, Command{Type: CmdTaskProgress, TaskID: "nope", Attempt: 1}), ErrUnknownTask)
	wantRejected(t, "status of unknown node", mustApply(t, s, 3, Command{Type: CmdNodeStatus, NodeID: "nope", Status: NodeAlive}), ErrUnknownNode)
	wantRejected(t, "drain of unknown node", mustApply(t, s, 3, Command{Type: CmdSetDrain, NodeID: "nope"}), ErrUnknownNode)
	wantRejected(t, "assign to unknown node", mustApply(t, s, 3, assignCmd("t1", 1, "nope", 0, 250, 0)).Batch[0], ErrUnknownNode)

	// Stale: a report for a task that is only queued, an assignment for an
	// attempt that is not the current one.
	wantRejected(t, "complete of a queued task", mustApply(t, s, 4, Command{Type: CmdCompleteTask, TaskID: "t1", Attempt: 1}), ErrStaleAttempt)
	wantRejected(t, "assign of a stale attempt", mustApply(t, s, 4, assignCmd("t1", 2, "n1", 0, 250, 0)).Batch[0], ErrStaleAttempt)

	// Capacity: fractions over one card, memory, CPU slots, missing GPU.
	wantRejected(t, "invalid fraction", mustApply(t, s, 5, assignCmd("t1", 1, "n1", 0, 1001, 0)).Batch[0], ErrInvalid)
	wantRejected(t, "no such GPU", mustApply(t, s, 5, assignCmd("t1", 1, "n1", 3, 250, 0)).Batch[0], ErrNoCapacity)
	wantRejected(t, "GPU memory", mustApply(t, s, 5, assignCmd("t1", 1, "n1", 0, 250, 5<<30)).Batch[0], ErrNoCapacity)
	mustApply(t, s, 6, Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: "t2", Partition: "p", FileID: "f2"}, {ID: "t3", Partition: "p", FileID: "f3"}, {ID: "t4", Partition: "p", FileID: "f4"}}})
	if r := mustApply(t, s, 7, Command{Type: CmdAssignTasks, Assignments: []Assignment{
		{TaskID: "t1", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 800},
		{TaskID: "t2", Attempt: 1, NodeID: "n1", GPU: -1},
	}}); r.FirstError() != nil {
		t.Fatal(r.FirstError())
	}
	wantRejected(t, "GPU over-allocation", mustApply(t, s, 8, assignCmd("t3", 1, "n1", 0, 250, 0)).Batch[0], ErrNoCapacity)
	wantRejected(t, "no CPU slot", mustApply(t, s, 8, assignCmd("t3", 1, "n1", -1, 0, 0)).Batch[0], ErrNoCapacity)
	mustApply(t, s, 9, Command{Type: CmdSetDrain, NodeID: "n1", Draining: true})
	wantRejected(t, "draining node", mustApply(t, s, 9, assignCmd("t3", 1, "n1", 0, 100, 0)).Batch[0], ErrNoCapacity)

	// Submissions: duplicate ID, create over an existing file, replace of a
	// missing one, no ID.
	sub := mustApply(t, s, 10, Command{Type: CmdSubmitTasks, Tasks: []Task{
		{ID: "t1", Partition: "p", FileID: "f9"},
		{ID: "c1", Partition: "p", FileID: "f1", Mode: ModeCreate},
		{ID: "r1", Partition: "p", FileID: "zz", Mode: ModeReplace},
		{Partition: "p", FileID: "f8"},
	}})
	wantRejected(t, "duplicate submit", sub.Batch[0], ErrDuplicate)
	if sub.Batch[0].Err != "duplicate task id t1" {
		t.Fatalf("duplicate wording changed: %q", sub.Batch[0].Err) // node matches it on old peers
	}
	wantRejected(t, "create of existing", sub.Batch[1], ErrFileExists)
	wantRejected(t, "replace of missing", sub.Batch[2], ErrFileMissing)
	wantRejected(t, "task without id", sub.Batch[3], ErrInvalid)
	if sub.Rejected() || sub.FirstError() == nil || !errors.Is(sub.FirstError(), ErrDuplicate) {
		t.Fatalf("submit result: Rejected %v, FirstError %v", sub.Rejected(), sub.FirstError())
	}

	wantRejected(t, "delete of missing file", mustApply(t, s, 11, Command{Type: CmdDeleteFile, Partition: "p", FileID: "zz"}), ErrFileMissing)
	wantRejected(t, "metadata of missing file", mustApply(t, s, 11, Command{Type: CmdFileMetadata, Partition: "p", FileID: "zz"}), ErrFileMissing)

	// Conflicts: cancel of a finished task, chunk holders of a version that
	// is not live.
	mustApply(t, s, 12, Command{Type: CmdCancelTask, TaskID: "t4"})
	wantRejected(t, "cancel of a cancelled task", mustApply(t, s, 13, Command{Type: CmdCancelTask, TaskID: "t4"}), ErrConflict)
	wantRejected(t, "chunk holders not live", mustApply(t, s, 13, Command{Type: CmdChunkHolders, Partition: "p", FileID: "f1", TaskID: "t1"}), ErrConflict)

	// Malformed commands.
	batch := mustApply(t, s, 14, Command{Type: CmdBatch, Batch: []Command{
		{Type: CmdSettings},
		{Type: CmdBatch},
		{Type: "no_such_command"},
	}})
	if batch.Rejected() || batch.Batch[0].Rejected() {
		t.Fatalf("batch: %+v", batch)
	}
	wantRejected(t, "nested batch", batch.Batch[1], ErrInvalid)
	wantRejected(t, "unknown command", batch.Batch[2], ErrInvalid)
	if err := batch.FirstError(); err == nil || err.Error() != "nested batch" {
		t.Fatalf("FirstError of batch = %v, want the nested batch rejection", err)
	}
	wantRejected(t, "register without node", mustApply(t, s, 15, Command{Type: CmdRegisterNode}), ErrInvalid)
	wantRejected(t, "blob holders without blob", mustApply(t, s, 15, Command{Type: CmdBlobHolders}), ErrInvalid)
}

func TestFirstErrorRecursesAndAcceptsNil(t *testing.T) {
	inner := rejectf(CodeUnknownTask, "unknown task: x")
	r := Result{Batch: []Result{{}, {Batch: []Result{{}, inner}}, rejectf(CodeConflict, "later")}}
	if err := r.FirstError(); !errors.Is(err, ErrUnknownTask) {
		t.Fatalf("FirstError = %v, want the nested unknown task", err)
	}
	if err := (Result{Batch: []Result{{}, {}}}).FirstError(); err != nil {
		t.Fatalf("FirstError of an all-applied batch = %v", err)
	}
	if err := (Result{}).Error(); err != nil {
		t.Fatalf("Error of an applied result = %v", err)
	}
}

func TestResultJSONKeepsCode(t *testing.T) {
	in := Result{Batch: []Result{{}, rejectf(CodeNoCapacity, "node n1 has no free CPU slot")}, Applied: 2, Index: 7}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	var out Result
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if len(out.Batch) != 2 || out.Batch[1].Code != CodeNoCapacity || out.Batch[1].Err != in.Batch[1].Err || out.Index != 7 {
		t.Fatalf("round trip: %s -> %+v", b, out)
	}
	if !errors.Is(out.FirstError(), ErrNoCapacity) {
		t.Fatalf("decoded result lost its sentinel: %v", out.FirstError())
	}
	// An applied result stays compact: no code key.
	if b, _ := json.Marshal(Result{}); string(b) != "{}" {
		t.Fatalf("empty result encodes as %s", b)
	}
}

// A result from a node that predates codes has only Err: it is still an
// error with that text, but it claims no class.
func TestResultWithoutCodeMatchesNoSentinel(t *testing.T) {
	var old Result
	if err := json.Unmarshal([]byte(`{"err":"unknown task: t1"}`), &old); err != nil {
		t.Fatal(err)
	}
	err := old.Error()
	var rej *Rejection
	if !old.Rejected() || !errors.As(err, &rej) || rej.Code != "" || err.Error() != "unknown task: t1" {
		t.Fatalf("old result: %#v", err)
	}
	for _, s := range allSentinels {
		if errors.Is(err, s) {
			t.Fatalf("code-less rejection matches %v", s)
		}
	}
	if CodeOf(err) != "" || CodeOf(errors.New("other")) != "" || CodeOf(nil) != "" {
		t.Fatal("CodeOf invented a code")
	}
}

func TestSentinelsAreDistinctAndCoded(t *testing.T) {
	seen := map[string]bool{}
	for code, s := range allSentinels {
		if CodeOf(s) != code {
			t.Fatalf("CodeOf(%v) = %q, want %q", s, CodeOf(s), code)
		}
		if seen[s.Error()] {
			t.Fatalf("two sentinels read %q", s)
		}
		seen[s.Error()] = true
		for _, other := range allSentinels {
			if (other == s) != errors.Is(s, other) {
				t.Fatalf("errors.Is(%v, %v) = %v", s, other, errors.Is(s, other))
			}
		}
	}
}

// chainNext places by the scheduler's rule: a memory-only task takes its
// Need of the freed card, a CPU task never takes a card, and a GPU task
// never takes the CPU slot of a GPU node.
func TestChainUsesPlacementRule(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdRegisterNode, Node: node("n1", 1, 16<<30)})
	mustApply(t, s, 2, Command{Type: CmdSubmitTasks, Tasks: []Task{
		{ID: "g0", Partition: "a", FileID: "g0", ReqMilli: 1000},
		{ID: "c0", Partition: "a", FileID: "c0"},
		{ID: "m0", Partition: "b", FileID: "m0", ReqMem: 4 << 30},
	}})
	mustApply(t, s, 3, Command{Type: CmdAssignTasks, Assignments: []Assignment{
		{TaskID: "g0", Attempt: 1, NodeID: "n1", GPU: 0, Milli: 1000},
		{TaskID: "c0", Attempt: 1, NodeID: "n1", GPU: -1},
	}})
	// A freed CPU slot on a GPU node: m0 wants a card, so nothing chains.
	if r := mustApply(t, s, 4, Command{Type: CmdCompleteTask, TaskID: "c0", Attempt: 1, Chain: true}); r.Chained != "" {
		t.Fatalf("GPU task %s chained into a CPU slot", r.Chained)
	}
	r := mustApply(t, s, 5, Command{Type: CmdCompleteTask, TaskID: "g0", Attempt: 1, Chain: true})
	if r.Chained != "m0" {
		t.Fatalf("chained %q, want m0", r.Chained)
	}
	if m0 := s.Tasks["m0"]; m0.Milli != 250 || m0.MemBytes != 4<<30 || m0.GPU != 0 {
		t.Fatalf("m0 allocation %+v, want 250 milli and 4 GiB on GPU 0", m0)
	}
	// A CPU task does not take the freed card.
	mustApply(t, s, 6, Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: "c1", Partition: "c", FileID: "c1"}}})
	if r := mustApply(t, s, 7, Command{Type: CmdCompleteTask, TaskID: "m0", Attempt: 1, Chain: true}); r.Chained != "" {
		t.Fatalf("CPU task %s chained onto a GPU", r.Chained)
	}
}

func TestFileMetadataNullDeletesKey(t *testing.T) {
	s := New()
	mustApply(t, s, 1, Command{Type: CmdSubmitTasks, Tasks: []Task{{ID: "t1", Partition: "p", FileID: "f", Metadata: map[string]any{"a": "1", "b": "2"}}}})
	// Through the wire encoding, as a client's {"b": null} arrives.
	c, err := Decode([]byte(`{"t":"file_metadata","now":5,"partition":"p","file_id":"f","metadata":{"b":null,"c":3,"zz":null}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r := mustApply(t, s, 2, c); r.Rejected() {
		t.Fatal(r.Error())
	}
	f := s.Files[FileKey("p", "f")]
	want := map[string]any{"a": "1", "c": float64(3)}
	if fmt.Sprint(f.Metadata) != fmt.Sprint(want) {
		t.Fatalf("file metadata %v, want %v", f.Metadata, want)
	}
	if _, ok := f.Metadata["b"]; ok {
		t.Fatal("null kept as a key")
	}
	if fmt.Sprint(s.Tasks["t1"].Metadata) != fmt.Sprint(want) {
		t.Fatalf("task metadata %v, want %v", s.Tasks["t1"].Metadata, want)
	}
	// Clearing every key leaves no metadata.
	mustApply(t, s, 3, Command{Type: CmdFileMetadata, Partition: "p", FileID: "f", Metadata: map[string]any{"a": nil, "c": nil}})
	if len(f.Metadata) != 0 || len(s.Tasks["t1"].Metadata) != 0 {
		t.Fatalf("metadata after clearing: %v / %v", f.Metadata, s.Tasks["t1"].Metadata)
	}
}

func TestClusterIDIsWrittenOnce(t *testing.T) {
	s := New()
	if r := s.Apply(1, Command{Type: CmdClusterID, ClusterID: "a1"}); r.Rejected() || s.ClusterID() != "a1" {
		t.Fatalf("first id: %+v, have %q", r, s.ClusterID())
	}
	if r := s.Apply(2, Command{Type: CmdClusterID, ClusterID: "a1"}); r.Rejected() {
		t.Fatalf("same id again must be a no-op: %+v", r)
	}
	r := s.Apply(3, Command{Type: CmdClusterID, ClusterID: "b2"})
	if !errors.Is(r.Error(), ErrConflict) || s.ClusterID() != "a1" {
		t.Fatalf("another id: %+v, have %q", r, s.ClusterID())
	}
	if r := s.Apply(4, Command{Type: CmdClusterID}); !errors.Is(r.Error(), ErrInvalid) {
		t.Fatalf("empty id: %+v", r)
	}
	// The identity survives a snapshot.
	b, err := s.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.ClusterID() != "a1" {
		t.Fatalf("restored id %q", back.ClusterID())
	}
}
