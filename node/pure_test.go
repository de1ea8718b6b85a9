package node

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/scheduler"
	"github.com/ragnode/ragnode/transport"
)

// Unit tests of the pure pieces of node: no sockets, no Raft.

func TestPackFlattensBatchesAndUnpackSplitsResults(t *testing.T) {
	single := &pending{cmd: fsm.Command{Type: fsm.CmdCancelTask, TaskID: "a", Now: 7}}
	sub := &pending{cmd: fsm.Command{Type: fsm.CmdBatch, Batch: []fsm.Command{
		{Type: fsm.CmdBlobHolders}, {Type: fsm.CmdSubmitTasks}}}}
	last := &pending{cmd: fsm.Command{Type: fsm.CmdCancelTask, TaskID: "b"}}
	batch := []*pending{single, sub, last}
	cmd, spans, direct := pack(batch)
	if direct || cmd.Type != fsm.CmdBatch || len(cmd.Batch) != 4 || cmd.Now != 7 {
		t.Fatalf("pack = %+v direct=%v", cmd, direct)
	}
	if cmd.Batch[0].TaskID != "a" || cmd.Batch[1].Type != fsm.CmdBlobHolders || cmd.Batch[3].TaskID != "b" {
		t.Fatalf("order lost: %+v", cmd.Batch)
	}
	res := fsm.Result{Index: 42, Batch: []fsm.Result{{Err: "r0"}, {Err: "r1"}, {Err: "r2"}, {Err: "r3"}}}
	out := unpack(batch, spans, direct, res, nil)
	if out[0].res.Err != "r0" || out[0].res.Index != 42 {
		t.Fatalf("single got %+v", out[0])
	}
	if len(out[1].res.Batch) != 2 || out[1].res.Batch[0].Err != "r1" || out[1].res.Batch[1].Err != "r2" || out[1].res.Index != 42 {
		t.Fatalf("batch caller got %+v", out[1])
	}
	if out[2].res.Err != "r3" {
		t.Fatalf("last got %+v", out[2])
	}
	// A short answer is an error for everyone, never a misattributed result.
	for _, o := range unpack(batch, spans, direct, fsm.Result{Batch: res.Batch[:3]}, nil) {
		if o.err == nil {
			t.Fatal("short result accepted")
		}
	}
	// A lone plain command goes as is.
	cmd, spans, direct = pack([]*pending{single})
	if !direct || cmd.Type != fsm.CmdCancelTask {
		t.Fatalf("lone command packed as %+v", cmd)
	}
	if o := unpack([]*pending{single}, spans, direct, fsm.Result{Applied: 1, Index: 3}, nil); o[0].res.Applied != 1 || o[0].res.Index != 3 {
		t.Fatalf("direct result %+v", o[0])
	}
}

func TestRetryableClassification(t *testing.T) {
	cases := []struct {
		err  error
		want bool
	}{
		{raft.ErrNotLeader, true},
		{fmt.Errorf("apply: %w", raft.ErrLeadershipLost), true},
		{raft.ErrRaftShutdown, false},
		{errs.New(errs.Unavailable, "no leader elected yet"), true},
		{errs.New(errs.Invalid, "bad"), false},
		{&transport.StatusError{Code: 503, Msg: "no leader"}, true},
		{&transport.StatusError{Code: 500, Msg: "boom"}, true},
		{&transport.StatusError{Code: 409, Msg: "conflict"}, false},
		{&transport.StatusError{Code: 400, Msg: "bad"}, false},
		{errors.New("dial tcp 127.0.0.1:1: connection refused"), true},
	}
	for _, c := range cases {
		if got := retryable(c.err); got != c.want {
			t.Errorf("retryable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

func TestSchedulerInputFromLedger(t *testing.T) {
	s := fsm.New()
	idx := uint64(0)
	apply := func(c fsm.Command) fsm.Result {
		idx++
		r := s.Apply(idx, c)
		if err := s.CheckInvariants(); err != nil {
			t.Fatal(err)
		}
		return r
	}
	apply(fsm.Command{Type: fsm.CmdRegisterNode, Node: &fsm.Node{ID: "b", Name: "b", CPUSlots: 1,
		GPUs: []gpu.Device{{Index: 0, MemTotal: 16 << 30}}, GPUReserve: 1 << 30}})
	apply(fsm.Command{Type: fsm.CmdRegisterNode, Node: &fsm.Node{ID: "a", Name: "a", CPUSlots: 2}})
	apply(fsm.Command{Type: fsm.CmdSetDrain, NodeID: "a", Draining: true})
	apply(fsm.Command{Type: fsm.CmdSubmitTasks, Now: 1, Tasks: []fsm.Task{
		{ID: "t1", Partition: "p", FileID: "f1", ReqMilli: 250}, {ID: "t2", Partition: "q", FileID: "f2"}}})
	in := SchedulerInput(s, 3, scheduler.Spread)
	if len(in.Nodes) != 2 || in.Nodes[0].ID != "a" || in.Nodes[1].ID != "b" {
		t.Fatalf("nodes not sorted by ID: %+v", in.Nodes)
	}
	if in.Nodes[0].Eligible || !in.Nodes[1].Eligible {
		t.Fatalf("a draining node must not be eligible: %+v", in.Nodes)
	}
	if g := in.Nodes[1].GPUs; len(g) != 1 || g[0].MemTotal != 16<<30 || g[0].MemReserve != 1<<30 {
		t.Fatalf("gpu view %+v", g)
	}
	if len(in.Queued) != 2 || in.PoolSize != 3 || in.Policy != scheduler.Spread {
		t.Fatalf("queue %+v pool %d", in.Queued, in.PoolSize)
	}
	// A full cluster skips reading the queue.
	apply(fsm.Command{Type: fsm.CmdSetDrain, NodeID: "b", Draining: true})
	if in := SchedulerInput(s, 0, scheduler.Spread); len(in.Queued) != 0 {
		t.Fatalf("no eligible node, yet the queue was read: %+v", in.Queued)
	}
}

func TestLiveHitsKeepsOnlyTheLiveVersion(t *testing.T) {
	s := fsm.New()
	s.Apply(1, fsm.Command{Type: fsm.CmdRegisterNode, Node: &fsm.Node{ID: "n", Name: "n", CPUSlots: 1}})
	s.Apply(2, fsm.Command{Type: fsm.CmdSubmitTasks, Now: 1, Tasks: []fsm.Task{{ID: "t1", Partition: "p", FileID: "f",
		File: fsm.FileRef{Name: "f.txt"}, Metadata: map[string]any{"lang": "fr"}}}})
	s.Apply(3, fsm.Command{Type: fsm.CmdAssignTasks, Assignments: []fsm.Assignment{{TaskID: "t1", Attempt: 1, NodeID: "n", GPU: -1}}})
	if r := s.Apply(4, fsm.Command{Type: fsm.CmdCompleteTask, TaskID: "t1", Attempt: 1, Chunks: 2, Now: 2}); r.Err != "" {
		t.Fatalf("complete: %s", r.Err)
	}
	hit := func(id string, idx int, task string, score float32) store.Hit {
		return store.Hit{Record: store.Record{ID: id, Partition: "p", FileID: "f", Index: idx, Text: id,
			Metadata: map[string]any{indexer.MetaTask: task, "lang": "stale"}}, Score: score}
	}
	hits := []store.Hit{
		hit("c0", 0, "t1", 0.5), hit("c0", 0, "t1", 0.9), // two copies: the best score wins
		hit("c1", 1, "t1", 0.7),
		hit("c2", 2, "t1", 0.95),  // beyond the live chunk count: trimmed
		hit("old", 0, "t0", 0.99), // an older version's copy
		{Record: store.Record{ID: "x", Partition: "p", FileID: "gone", Metadata: map[string]any{indexer.MetaTask: "t9"}}, Score: 1},
	}
	out := liveHits(s, hits, transport.SearchRequest{TopK: 5})
	if len(out) != 2 || out[0].ChunkID != "c0" || out[0].Score != 0.9 || out[1].ChunkID != "c1" {
		t.Fatalf("live hits = %+v", out)
	}
	if out[0].Metadata["lang"] != "fr" || out[0].Metadata["filename"] != "f.txt" {
		t.Fatalf("metadata must come from the ledger: %+v", out[0].Metadata)
	}
	if out := liveHits(s, hits, transport.SearchRequest{TopK: 5, Filter: map[string]string{"lang": "de"}}); len(out) != 0 {
		t.Fatalf("filter ignored: %+v", out)
	}
	if out := liveHits(s, hits, transport.SearchRequest{TopK: 1, Filter: map[string]string{"file_id": "f"}}); len(out) != 1 || out[0].ChunkID != "c0" {
		t.Fatalf("file filter with top 1: %+v", out)
	}
}

func TestTaskCountsByStage(t *testing.T) {
	s := fsm.New()
	s.Apply(1, fsm.Command{Type: fsm.CmdRegisterNode, Node: &fsm.Node{ID: "n", Name: "n", CPUSlots: 3}})
	s.Apply(2, fsm.Command{Type: fsm.CmdSubmitTasks, Now: 1, Tasks: []fsm.Task{
		{ID: "a", Partition: "p", FileID: "a"}, {ID: "b", Partition: "p", FileID: "b"}, {ID: "c", Partition: "p", FileID: "c"}, {ID: "d", Partition: "p", FileID: "d"}}})
	s.Apply(3, fsm.Command{Type: fsm.CmdAssignTasks, Assignments: []fsm.Assignment{
		{TaskID: "a", Attempt: 1, NodeID: "n", GPU: -1}, {TaskID: "b", Attempt: 1, NodeID: "n", GPU: -1}, {TaskID: "c", Attempt: 1, NodeID: "n", GPU: -1}}})
	s.Apply(4, fsm.Command{Type: fsm.CmdTaskProgress, TaskID: "a", Attempt: 1, Stage: fsm.StageChunking, Now: 2})
	s.Apply(5, fsm.Command{Type: fsm.CmdTaskProgress, TaskID: "b", Attempt: 1, Stage: fsm.StageEmbedding, Now: 2})
	got := taskCounts(s)
	if got[fsm.StageChunking] != 1 || got[fsm.StageEmbedding] != 1 || got["queued"] != 1 || got["assigned"]+got["running"] != 1 {
		t.Fatalf("counts = %v", got)
	}
}

func TestNameValidationIsOneRule(t *testing.T) {
	long := make([]byte, maxNameLen+1)
	for i := range long {
		long[i] = 'a'
	}
	for _, bad := range []string{"", "  ", "a\x00b", "tab\there", string(long), "\xff\xfe"} {
		if err := validFileID(bad); !errors.Is(err, errs.Invalid) {
			t.Errorf("validFileID(%q) = %v, want Invalid", bad, err)
		}
		if err := validPartition(bad); !errors.Is(err, errs.Invalid) {
			t.Errorf("validPartition(%q) = %v, want Invalid", bad, err)
		}
	}
	for _, good := range []string{"a.txt", "docs/2026/report.pdf", "été ☃"} {
		if err := validFileID(good); err != nil {
			t.Errorf("validFileID(%q) = %v", good, err)
		}
	}
}

// TestSearchModesReachTheStores: /v1/search in each mode on a real node;
// an unknown mode is refused.
func TestSearchModesReachTheStores(t *testing.T) {
	c := newCluster(t)
	n := c.start(baseConfig(t, "n1"))
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	ctx := ctxT(t, 30*time.Second)
	cl := clientOf(n)
	var ids []string
	for id, body := range map[string]string{
		"raft.txt":  "Raft elects a leader by majority vote; the leader appends entries to the replicated log.",
		"serf.txt":  "Serf gossips membership and detects failed members with randomized probes.",
		"milvus.md": "# Milvus\n\nA vector database storing embeddings, searched by cosine similarity.",
	} {
		tv, err := cl.Submit(ctx, transport.SubmitRequest{Partition: "p", FileID: id, FileName: id}, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tv.ID)
	}
	requireAllCompleted(t, waitTerminal(t, c, ids, 30*time.Second))
	for _, mode := range []string{"", "hybrid", "dense", "bm25"} {
		hits, err := cl.Search(ctx, transport.SearchRequest{Text: "gossip membership probes", TopK: 2, Mode: mode})
		if err != nil || len(hits) == 0 || hits[0].FileID != "serf.txt" {
			t.Fatalf("mode %q: %v %+v", mode, err, hits)
		}
	}
	if _, err := cl.Search(ctx, transport.SearchRequest{Text: "x", Mode: "telepathy"}); !transport.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("unknown mode: %v", err)
	}
}

// --pdf-interrupt auto leaves wazero's per-instruction checks out where a
// parser child can be killed instead, and keeps them in process.
func TestPDFInterruptAuto(t *testing.T) {
	for _, tc := range []struct {
		flag      string
		inprocess bool
		want      string
	}{
		{"", false, "page"}, {"auto", false, "page"}, {"AUTO", true, "instruction"}, {"", true, "instruction"},
		{"instruction", false, "instruction"}, {"page", true, "page"},
	} {
		got, err := pdfInterruptMode(&IndexerConfig{PDFInterrupt: tc.flag, ParserInProcess: tc.inprocess})
		if err != nil || got != tc.want {
			t.Errorf("%q in process %v: %q %v, want %q", tc.flag, tc.inprocess, got, err, tc.want)
		}
	}
	if _, err := pdfInterruptMode(&IndexerConfig{PDFInterrupt: "never"}); err == nil || !strings.Contains(err.Error(), "want auto, instruction or page") {
		t.Fatalf("an unknown mode: %v", err)
	}
}
