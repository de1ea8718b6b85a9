package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
)

// recorder is a runner shared by every node of a test cluster. It records
// concurrency per node and cluster-wide, and what ran where.
type recorder struct {
	mu       sync.Mutex
	d        time.Duration
	cur      map[string]int
	peak     map[string]int
	total    int
	peakAll  int
	starts   map[string][]time.Time
	runs     map[string]int // task ID -> runs started
	failFile string
	closed   int
}

func newRecorder(d time.Duration) *recorder {
	return &recorder{d: d, cur: map[string]int{}, peak: map[string]int{}, starts: map[string][]time.Time{}, runs: map[string]int{}}
}

type recRunner struct {
	r    *recorder
	node string
}

func (r *recorder) factory(node string) RunnerFactory {
	return func() (Runner, error) { return &recRunner{r: r, node: node}, nil }
}

func (rr *recRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	r := rr.r
	r.mu.Lock()
	r.cur[rr.node]++
	r.total++
	if r.cur[rr.node] > r.peak[rr.node] {
		r.peak[rr.node] = r.cur[rr.node]
	}
	if r.total > r.peakAll {
		r.peakAll = r.total
	}
	r.starts[rr.node] = append(r.starts[rr.node], time.Now())
	r.runs[job.Task.ID]++
	fail := r.failFile != "" && job.Task.FileID == r.failFile
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.cur[rr.node]--
		r.total--
		r.mu.Unlock()
	}()
	if _, err := job.Open(ctx); err != nil {
		return Outcome{}, err
	}
	select {
	case <-time.After(r.d):
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
	if fail {
		return Outcome{}, errors.New("simulated parser crash on " + job.Task.FileID)
	}
	return Outcome{Chunks: 1}, nil
}

func (rr *recRunner) Close() error {
	rr.r.mu.Lock()
	rr.r.closed++
	rr.r.mu.Unlock()
	return nil
}

func (r *recorder) peaks() (map[string]int, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for k, v := range r.peak {
		out[k] = v
	}
	return out, r.peakAll
}

func gpuCluster(t *testing.T, k int, rec *recorder, mod func(i int, cfg *Config)) (*cluster, []*Node) {
	c := newCluster(t)
	ns := c.startN(k, func(i int, cfg *Config) {
		cfg.GPU = gpu.Config{Declared: 1}
		cfg.TaskMilli = 250
		cfg.Runner = rec.factory(cfg.Name)
		if mod != nil {
			mod(i, cfg)
		}
	})
	waitFor(t, 15*time.Second, "all nodes registered with a leader", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		ok := 0
		l.fsm.View(func(s *fsm.State) {
			for _, nd := range s.Nodes {
				if nd.Status == fsm.NodeAlive {
					ok++
				}
			}
		})
		want := k
		if want%2 == 0 {
			want--
		}
		v, _ := countVoters(l)
		return ok == k && v == want
	})
	return c, ns
}

func submitMany(t *testing.T, via []*Node, k int, prefix string) []string {
	t.Helper()
	ids := make([]string, k)
	var wg sync.WaitGroup
	errs := make(chan error, k)
	sem := make(chan struct{}, 16)
	for i := 0; i < k; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			n := via[i%len(via)]
			tv, err := clientOf(n).Submit(ctxT(t, 30*time.Second), submitReq("p"+fmt.Sprint(i%3), fmt.Sprintf("%s-%04d.txt", prefix, i)),
				strings.NewReader(fmt.Sprintf("document %d", i)))
			if err != nil {
				errs <- err
				return
			}
			ids[i] = tv.ID
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("submit: %v", err)
	}
	return ids
}

// waitTerminal waits until every task is terminal on the leader's ledger
// and returns the final states.
func waitTerminal(t *testing.T, c *cluster, ids []string, d time.Duration) map[string]*fsm.Task {
	t.Helper()
	var out map[string]*fsm.Task
	waitFor(t, d, fmt.Sprintf("%d tasks to finish", len(ids)), func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		out = map[string]*fsm.Task{}
		done := true
		l.fsm.View(func(s *fsm.State) {
			for _, id := range ids {
				tk := s.Tasks[id]
				if tk == nil || !tk.State.Terminal() {
					done = false
					return
				}
				cp := *tk
				out[id] = &cp
			}
		})
		return done
	})
	return out
}

func requireAllCompleted(t *testing.T, final map[string]*fsm.Task) {
	t.Helper()
	for id, tk := range final {
		if tk.State != fsm.Completed {
			t.Fatalf("task %s ended %s: %s", id, tk.State, tk.Error)
		}
	}
}

func TestQuarterGPUTasksRespectQuota(t *testing.T) {
	rec := newRecorder(30 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, nil)
	ids := submitMany(t, ns, 300, "q")
	final := waitTerminal(t, c, ids, 60*time.Second)
	requireAllCompleted(t, final)
	peaks, _ := rec.peaks()
	for _, n := range ns {
		if peaks[n.name] > 4 {
			t.Fatalf("%s ran %d tasks at once on one GPU with 0.25 each", n.name, peaks[n.name])
		}
		if peaks[n.name] == 0 {
			t.Fatalf("%s ran nothing: placement did not spread", n.name)
		}
	}
	t.Logf("peaks per node: %v", peaks)
}

func TestPoolSizeCapsClusterConcurrency(t *testing.T) {
	rec := newRecorder(30 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, func(_ int, cfg *Config) { cfg.PoolSize = 5 })
	ids := submitMany(t, ns, 60, "pool")
	final := waitTerminal(t, c, ids, 60*time.Second)
	requireAllCompleted(t, final)
	if _, all := rec.peaks(); all > 5 || all < 2 {
		t.Fatalf("cluster ran %d tasks at once with --pool-size 5", all)
	}
}

func TestGPUMemoryRequestsOnUnequalCards(t *testing.T) {
	// Long enough runs that the cards fill up even on a loaded machine:
	// the test is about where the peak stops, not how fast it is reached.
	rec := newRecorder(600 * time.Millisecond)
	mems := []uint64{4 << 30, 16 << 30}
	c, ns := gpuCluster(t, 2, rec, func(i int, cfg *Config) {
		cfg.GPU = gpu.Config{Declared: 1, DeclaredMem: mems[i]}
		cfg.TaskMilli = 0
		cfg.TaskMem = 1 << 30
		cfg.GPUReserve = 1 << 30
	})
	ids := submitMany(t, ns, 80, "mem")
	final := waitTerminal(t, c, ids, 60*time.Second)
	requireAllCompleted(t, final)
	peaks, _ := rec.peaks()
	if peaks["n1"] != 3 || peaks["n2"] != 15 {
		t.Fatalf("peaks %v, want n1 (4 GiB card) 3 and n2 (16 GiB card) 15", peaks)
	}
}

func TestKilledWorkerTasksRequeuedAndCompletedOnce(t *testing.T) {
	rec := newRecorder(400 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, nil)
	l := c.mustLeader(t)
	var victim *Node
	for _, n := range ns {
		if n != l {
			victim = n
		}
	}
	ids := submitMany(t, []*Node{l}, 24, "kill")
	waitFor(t, 10*time.Second, "tasks running on the victim", func() bool {
		running := 0
		l.fsm.View(func(s *fsm.State) { running = s.ActiveOn(victim.ID()) })
		return running > 0
	})
	victim.Kill()
	final := waitTerminal(t, c, ids, 60*time.Second)
	requireAllCompleted(t, final)
	requeued := 0
	for _, tk := range final {
		if tk.Attempt > 1 {
			requeued++
		}
	}
	if requeued == 0 {
		t.Fatal("no task was requeued after the worker died")
	}
	// Every task completed exactly once: one terminal record, finished once.
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
				t.Errorf("task %s finished %d times", id, seen[id])
			}
		}
	})
}

func TestLeaderKillMidRunLosesNothing(t *testing.T) {
	rec := newRecorder(100 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, nil)
	ids := submitMany(t, ns, 60, "lk")
	time.Sleep(300 * time.Millisecond)
	var l *Node
	waitFor(t, 10*time.Second, "a leader to kill", func() bool { l = c.leader(); return l != nil })
	l.Kill()
	final := waitTerminal(t, c, ids, 60*time.Second)
	requireAllCompleted(t, final)
}

func TestDrainStopsNewWorkAndFinishesRunning(t *testing.T) {
	rec := newRecorder(200 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, nil)
	target := ns[1]
	ids := submitMany(t, ns, 12, "drain-a")
	waitFor(t, 10*time.Second, "work on the target", func() bool {
		return target.pool.Running() > 0
	})
	if err := clientOf(ns[0]).Drain(ctxT(t, 5*time.Second), drainReq(target.name)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "drain applied on target", func() bool {
		d := false
		target.fsm.View(func(s *fsm.State) { d = s.Nodes[target.ID()].Draining })
		return d
	})
	drainedAt := time.Now()
	more := submitMany(t, ns, 24, "drain-b")
	final := waitTerminal(t, c, append(ids, more...), 60*time.Second)
	requireAllCompleted(t, final)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	// Work submitted after the drain runs once. Its attempt may still be
	// above 1: the leader may move a prefetched task that waited on a busy
	// node to an idle one (a new attempt fences the old holder), but such a
	// task had not started.
	for _, id := range more {
		if k := rec.runs[id]; k != 1 {
			t.Fatalf("task %s ran %d times (attempt %d)", id, k, final[id].Attempt)
		}
	}
	for _, st := range rec.starts[target.name] {
		// A run may start a beat after the drain commits if it was assigned before.
		if st.After(drainedAt.Add(500 * time.Millisecond)) {
			t.Fatalf("draining node started a task %s after the drain", st.Sub(drainedAt))
		}
	}
}

func TestFailingFileEndsFailedOthersComplete(t *testing.T) {
	rec := newRecorder(10 * time.Millisecond)
	rec.failFile = "bad-0003.txt"
	c, ns := gpuCluster(t, 3, rec, func(_ int, cfg *Config) { cfg.MaxAttempts = 2; cfg.MaxTasksPerWorker = 2 })
	// 40 runs on at most 12 slots: some runner instance must serve twice.
	ids := submitMany(t, ns, 40, "bad")
	final := waitTerminal(t, c, ids, 60*time.Second)
	for _, tk := range final {
		if tk.FileID == rec.failFile {
			if tk.State != fsm.Failed || tk.Failures != 2 || !strings.Contains(tk.Error, "simulated parser crash") {
				t.Fatalf("bad file ended %s after %d failures: %q", tk.State, tk.Failures, tk.Error)
			}
		} else if tk.State != fsm.Completed {
			t.Fatalf("good file %s ended %s", tk.FileID, tk.State)
		}
	}
	rec.mu.Lock()
	closed := rec.closed
	rec.mu.Unlock()
	if closed == 0 {
		t.Fatal("--max-tasks-per-worker 2 never recycled a runner")
	}
}

func TestStaleAttemptCompletionRejected(t *testing.T) {
	rec := newRecorder(300 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, nil)
	ids := submitMany(t, ns[:1], 1, "stale")
	waitFor(t, 5*time.Second, "task running", func() bool {
		return taskStates(c.leader())[ids[0]].Active()
	})
	var tk fsm.Task
	c.leader().fsm.View(func(s *fsm.State) { tk = *s.Tasks[ids[0]] })
	// Hand it back (attempt+1), then report completion for the old attempt.
	res, err := ns[2].Apply(ctxT(t, 5*time.Second), fsm.Command{Type: fsm.CmdRequeueTasks, Refs: []fsm.TaskRef{{ID: tk.ID, Attempt: tk.Attempt}}})
	if err != nil || res.Applied != 1 {
		t.Fatalf("requeue: %v %+v", err, res)
	}
	res, err = ns[2].Apply(ctxT(t, 5*time.Second), fsm.Command{Type: fsm.CmdCompleteTask, TaskID: tk.ID, Attempt: tk.Attempt, Chunks: 9})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(res.Err, "stale attempt") {
		t.Fatalf("stale completion accepted: %+v", res)
	}
	final := waitTerminal(t, c, ids, 30*time.Second)
	if f := final[ids[0]]; f.State != fsm.Completed || f.Attempt != tk.Attempt+1 || f.Chunks == 9 {
		t.Fatalf("final task %+v", f)
	}
}

// blockRunner runs until its context ends and records how it ended.
type blockRunner struct {
	started chan string
	ended   chan error
}

func (b *blockRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	b.started <- job.Task.ID
	<-ctx.Done()
	b.ended <- ctx.Err()
	return Outcome{}, ctx.Err()
}
func (b *blockRunner) Close() error { return nil }

func TestCancelStopsRunningTaskPromptly(t *testing.T) {
	br := &blockRunner{started: make(chan string, 4), ended: make(chan error, 4)}
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.Runner = func() (Runner, error) { return br, nil }
	})
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	ids := submitMany(t, ns, 1, "cancel")
	select {
	case <-br.started:
	case <-time.After(10 * time.Second):
		t.Fatal("task never started")
	}
	t0 := time.Now()
	if err := clientOf(ns[0]).Cancel(ctxT(t, 5*time.Second), ids[0]); err != nil {
		t.Fatal(err)
	}
	select {
	case <-br.ended:
		t.Logf("cancel reached the runner in %s", time.Since(t0).Round(time.Millisecond))
	case <-time.After(2 * time.Second):
		t.Fatal("cancel did not stop the running task within 2s")
	}
	if st := taskStates(ns[0])[ids[0]]; st != fsm.Cancelled {
		t.Fatalf("task is %s", st)
	}
}

func TestTaskTimeoutFailsWedgedTask(t *testing.T) {
	br := &blockRunner{started: make(chan string, 4), ended: make(chan error, 4)}
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.Runner = func() (Runner, error) { return br, nil }
		cfg.TaskTimeout = 300 * time.Millisecond
		cfg.MaxAttempts = 1
	})
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	ids := submitMany(t, ns, 1, "wedged")
	final := waitTerminal(t, c, ids, 10*time.Second)
	tk := final[ids[0]]
	if tk.State != fsm.Failed || !strings.Contains(tk.Error, "timed out after 300ms") {
		t.Fatalf("wedged task ended %s: %q", tk.State, tk.Error)
	}
}
