package node

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// successes counts, per node, the runs of each task that returned without
// error: what "ran to completion" means on the worker side.
type successes struct {
	mu  sync.Mutex
	per map[string]map[string]int // node -> task -> successful runs
}

type successRunner struct {
	s    *successes
	node string
	d    time.Duration
}

func (r successRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	select {
	case <-time.After(r.d):
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	r.s.mu.Lock()
	m := r.s.per[r.node]
	if m == nil {
		m = map[string]int{}
		r.s.per[r.node] = m
	}
	m[job.Task.ID]++
	r.s.mu.Unlock()
	return Outcome{Chunks: 1}, nil
}

func (successRunner) Close() error { return nil }

// A node holding prefetched work is killed: its prefetched tasks go back
// to the queue like its running ones, and every task completes exactly
// once in the ledger, each completion backed by a run that ended well.
func TestKillNodeHoldingPrefetchedWork(t *testing.T) {
	succ := &successes{per: map[string]map[string]int{}}
	c, ns := gpuCluster(t, 3, newRecorder(0), func(_ int, cfg *Config) {
		cfg.TaskMilli = 500 // two slots per node
		cfg.Prefetch = 3
		name := cfg.Name
		cfg.Runner = func() (Runner, error) { return successRunner{s: succ, node: name, d: 300 * time.Millisecond}, nil }
	})
	l := c.leader()
	var victim *Node
	for _, n := range ns {
		if n != l {
			victim = n
		}
	}
	ids := submitMany(t, []*Node{l}, 45, "pf")
	var held []fsm.TaskRef
	waitFor(t, 20*time.Second, "the victim running work and holding prefetched work", func() bool {
		held = held[:0]
		running := 0
		l.fsm.View(func(s *fsm.State) {
			running = s.ActiveOn(victim.ID())
			for _, tk := range s.PrefetchedOn(victim.ID()) {
				held = append(held, fsm.TaskRef{ID: tk.ID, Attempt: tk.Attempt})
			}
		})
		return running > 0 && len(held) > 0
	})
	victim.Kill()
	final := waitTerminal(t, c, ids, 90*time.Second)
	requireAllCompleted(t, final)
	// The victim's prefetched tasks were placed again, at a later attempt
	// (none of them could complete on a dead node).
	moved := 0
	for _, ref := range held {
		if tk := final[ref.ID]; tk.Attempt > ref.Attempt && tk.LastNode != victim.ID() {
			moved++
		}
	}
	if moved == 0 {
		t.Fatalf("none of the victim's %d prefetched tasks %v was requeued elsewhere", len(held), held)
	}
	l = c.leader()
	l.fsm.View(func(s *fsm.State) {
		seen := map[string]int{}
		for _, id := range s.Finished {
			if id != "" {
				seen[id]++
			}
		}
		for _, id := range ids {
			if seen[id] != 1 {
				t.Errorf("task %s finished %d times in the ledger", id, seen[id])
			}
		}
		if s.PrefetchedTotal() != 0 {
			t.Errorf("%d tasks still prefetched after the run", s.PrefetchedTotal())
		}
	})
	// Every completion in the ledger stands for a run that really ended
	// well on some node. (A node may run a task more than once: a
	// prefetched start whose handoff the ledger refused, say because the
	// task was moved meanwhile, is cancelled and its outcome dropped, and
	// the task runs again where the ledger put it. Chunk writes are
	// idempotent; the ledger completes it once.)
	succ.mu.Lock()
	defer succ.mu.Unlock()
	for _, id := range ids {
		runs := 0
		for _, m := range succ.per {
			runs += m[id]
		}
		if runs == 0 {
			t.Errorf("task %s completed in the ledger without any run ending well", id)
		}
	}
	t.Logf("victim held %d prefetched tasks; %d requeued elsewhere", len(held), moved)
}

// With prefetch on, slots pass from one task to the next by handoff (the
// worker starts the next task itself); with it off, none happens and the
// work completes all the same.
func TestHandoffsHappenOnlyWithPrefetch(t *testing.T) {
	for _, tc := range []struct {
		name     string
		prefetch int
	}{{"on", 2}, {"off", -1}} {
		t.Run(tc.name, func(t *testing.T) {
			rec := newRecorder(40 * time.Millisecond)
			c, ns := gpuCluster(t, 2, rec, func(_ int, cfg *Config) { cfg.Prefetch = tc.prefetch })
			ids := submitMany(t, ns, 60, "h"+tc.name)
			final := waitTerminal(t, c, ids, 60*time.Second)
			requireAllCompleted(t, final)
			var hs int64
			for _, n := range ns {
				hs += n.pool.handoffs.Load()
			}
			peaks, _ := rec.peaks()
			for _, n := range ns {
				if peaks[n.name] > 4 {
					t.Fatalf("%s ran %d at once on one card of quarter tasks", n.name, peaks[n.name])
				}
			}
			switch {
			case tc.prefetch > 0 && hs == 0:
				t.Fatal("prefetch on, yet no slot was handed over by a worker")
			case tc.prefetch < 0 && hs != 0:
				t.Fatalf("prefetch off, yet %d handoffs", hs)
			}
			t.Logf("handoffs %d", hs)
		})
	}
}

// Reports that leave a node within the linger share one Raft entry.
func TestReportsWithinLingerShareOneEntry(t *testing.T) {
	c := newCluster(t)
	n := c.startN(1, nil)[0]
	waitFor(t, 10*time.Second, "the node registered under its own leadership", func() bool {
		ok := false
		n.fsm.View(func(s *fsm.State) { ok = s.Nodes[n.ID()] != nil })
		return c.leader() != nil && ok
	})
	n.prop.linger.Store(int64(time.Second)) // far longer than the gap below
	type answer struct {
		res fsm.Result
		err error
	}
	out := make(chan answer, 2)
	send := func(stage string) {
		res, err := n.prop.Propose(ctxT(t, 10*time.Second), fsm.Command{Type: fsm.CmdTaskProgress, TaskID: "nope", Attempt: 1, Stage: stage})
		out <- answer{res, err}
	}
	go send(fsm.StageChunking)
	time.Sleep(20 * time.Millisecond) // the second report comes later, inside the linger
	go send(fsm.StageEmbedding)
	a, b := <-out, <-out
	if a.err != nil || b.err != nil {
		t.Fatal(a.err, b.err)
	}
	if a.res.Index == 0 || a.res.Index != b.res.Index {
		t.Fatalf("two reports in entries %d and %d, want one", a.res.Index, b.res.Index)
	}
	// Each still gets its own answer (both name an unknown task).
	if a.res.Code != fsm.CodeUnknownTask || b.res.Code != fsm.CodeUnknownTask {
		t.Fatalf("answers %+v %+v", a.res, b.res)
	}
}

// byName sleeps long for files named long*, briefly for the others.
type byName struct{}

func (byName) Run(ctx context.Context, job Job) (Outcome, error) {
	d := 50 * time.Millisecond
	if strings.HasPrefix(job.Task.FileID, "long") {
		d = 12 * time.Second // well past stealAfter
	}
	select {
	case <-time.After(d):
		return Outcome{Chunks: 1}, nil
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

func (byName) Close() error { return nil }

// Work prefetched to a node stuck behind a long run moves to a node that
// is free once nothing else is queued and it has waited stealAfter, rather
// than waiting for the run.
func TestPrefetchedWorkMovesToIdleNode(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(2, func(_ int, cfg *Config) {
		cfg.CPUSlots = 1
		cfg.Prefetch = 2
		cfg.Runner = func() (Runner, error) { return byName{}, nil }
	})
	waitFor(t, 15*time.Second, "both nodes registered", func() bool {
		l := c.leader()
		k := 0
		if l != nil {
			l.fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		}
		return k == 2
	})
	cl := clientOf(ns[0])
	long, err := cl.Submit(ctxT(t, 10*time.Second), submitReq("p", "long.txt"), strings.NewReader("long"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the long task running", func() bool {
		return taskStates(ns[0])[long.ID].Active()
	})
	var ids []string
	for i := 0; i < 8; i++ {
		tv, err := cl.Submit(ctxT(t, 10*time.Second), submitReq("p", fmt.Sprintf("short-%d.txt", i)), strings.NewReader(fmt.Sprint("short ", i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tv.ID)
	}
	final := waitTerminal(t, c, append(ids, long.ID), 90*time.Second)
	requireAllCompleted(t, final)
	moved := 0
	for _, id := range ids {
		if final[id].Finished > final[long.ID].Finished {
			t.Errorf("short task %s finished after the long run (attempt %d on %s)", id, final[id].Attempt, final[id].LastNode)
		}
		if final[id].Attempt > 1 {
			moved++
		}
	}
	t.Logf("%d short tasks moved off the busy node", moved)
}

// A node asks for the prefetch queue that keeps its slots busy through one
// report round trip, between the leader's base and the --prefetch bound.
func TestPrefetchLimitCoversOneReportRoundTrip(t *testing.T) {
	pool := func(prefetch, runs int, runLen, rtt time.Duration) *workerPool {
		p := &workerPool{n: &Node{cfg: Config{Prefetch: prefetch}}, running: map[fsm.TaskRef]*run{}}
		for i := 0; i < runs; i++ {
			p.running[fsm.TaskRef{ID: fmt.Sprint("t", i), Attempt: 1}] = &run{}
		}
		p.runAvg, p.reportAvg = float64(runLen), float64(rtt)
		return p
	}
	for _, c := range []struct {
		name        string
		prefetch, k int
		run, rtt    time.Duration
		want        int
	}{
		{"no measurement yet", 0, 4, 0, 0, prefetchBase},
		{"10 ms tasks, 30 ms round trip", 0, 4, 10 * time.Millisecond, 30 * time.Millisecond, 13},
		{"long tasks", 0, 4, time.Minute, 30 * time.Millisecond, prefetchBase},
		{"capped by the default bound", 0, 4, time.Millisecond, time.Second, DefaultPrefetch},
		{"capped by --prefetch", 4, 4, 10 * time.Millisecond, 30 * time.Millisecond, 4},
		{"--prefetch under the base", 1, 4, 10 * time.Millisecond, 30 * time.Millisecond, 1},
		{"prefetch off", -1, 4, 10 * time.Millisecond, 30 * time.Millisecond, 0},
	} {
		if got := pool(c.prefetch, c.k, c.run, c.rtt).prefetchLimit(); got != c.want {
			t.Errorf("%s: limit %d, want %d", c.name, got, c.want)
		}
	}
}
