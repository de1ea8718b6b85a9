package node

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// poisonRunner stands in for a document that takes its node down: a
// "poison" file blocks (as a parse eating the node's memory would) and
// tells the test which node runs it, so the test can kill that node.
// Every other file completes at once.
type poisonRunner struct {
	node string
	hit  chan<- poisonHit
}

type poisonHit struct {
	node       string
	attempt    int
	firstStart int64
}

func (r *poisonRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	if strings.HasPrefix(job.Task.FileID, "poison") {
		r.hit <- poisonHit{node: r.node, attempt: job.Task.Attempt, firstStart: job.Task.FirstStart}
		<-ctx.Done()
		return Outcome{}, ctx.Err()
	}
	select {
	case <-time.After(20 * time.Millisecond):
		return Outcome{Chunks: 1}, nil
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

func (r *poisonRunner) Close() error { return nil }

func taskOn(c *cluster, id string) (fsm.Task, bool) {
	var out fsm.Task
	ok := false
	for _, n := range c.live() {
		n.fsm.View(func(s *fsm.State) {
			if tk := s.Tasks[id]; tk != nil && (!ok || tk.NodeLosses > out.NodeLosses || tk.State.Terminal()) {
				out, ok = *tk, true
			}
		})
	}
	return out, ok
}

// TestPoisonTaskQuarantinedAfterNodeLosses: a task whose node dies under it
// three times (past the default --max-node-losses of 2) fails as a
// suspected poison document, with an event saying so, while the files
// submitted beside it complete. Losses are counted whether the leader
// declares the node failed or the node comes back first and hands back
// what its previous process left running; the task's budget counts from
// its first placement on every attempt.
func TestPoisonTaskQuarantinedAfterNodeLosses(t *testing.T) {
	hits := make(chan poisonHit, 16)
	c := newCluster(t)
	ns := c.startN(3, func(i int, cfg *Config) {
		name := cfg.Name
		cfg.Runner = func() (Runner, error) { return &poisonRunner{node: name, hit: hits}, nil }
	})
	waitFor(t, 20*time.Second, "three voters", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		v, _ := countVoters(l)
		return v == 3
	})
	l := c.mustLeader(t)
	tv, err := clientOf(l).Submit(ctxT(t, 30*time.Second), submitReq("p", "poison.txt"), strings.NewReader("a document that kills"))
	if err != nil {
		t.Fatal(err)
	}
	ids := submitMany(t, ns, 12, "ordinary")
	var firstStart int64
	for loss := 1; loss <= 3; loss++ {
		var h poisonHit
		select {
		case h = <-hits:
		case <-time.After(60 * time.Second):
			t.Fatalf("the poison task did not run again after %d losses", loss-1)
		}
		if firstStart == 0 {
			firstStart = h.firstStart
		}
		if h.firstStart == 0 || h.firstStart != firstStart {
			t.Fatalf("attempt %d's budget starts at %d, the first at %d", h.attempt, h.firstStart, firstStart)
		}
		// A document that takes its node down does so after it started:
		// the ledger shows it running (an assigned task that never
		// reported running was never started, and is simply run again).
		waitFor(t, 10*time.Second, "the poison task reported running", func() bool {
			tk, _ := taskOn(c, tv.ID)
			return tk.State == fsm.Running && tk.Attempt == h.attempt
		})
		c.mu.Lock()
		victim := c.nodes[h.node]
		c.mu.Unlock()
		t0 := time.Now()
		victim.Kill()
		quick := loss == 2 // this time the node is back before it is declared failed
		if quick {
			c.restart(h.node)
		}
		waitFor(t, 60*time.Second, "the loss to be counted", func() bool {
			tk, ok := taskOn(c, tv.ID)
			return ok && (tk.NodeLosses >= loss || tk.State.Terminal())
		})
		tk, _ := taskOn(c, tv.ID)
		t.Logf("loss %d on %s counted after %s: %s", loss, h.node, time.Since(t0).Round(time.Millisecond), tk.Error)
		if loss < 3 {
			if tk.State.Terminal() {
				t.Fatalf("task ended %s after %d losses: %s", tk.State, loss, tk.Error)
			}
			if !quick {
				c.restart(h.node)
			}
		}
	}
	var tk fsm.Task
	waitFor(t, 30*time.Second, "the poison task to fail", func() bool {
		tk, _ = taskOn(c, tv.ID)
		return tk.State == fsm.Failed
	})
	if !strings.HasPrefix(tk.Error, "suspected poison document: lost 3 nodes while running it") || tk.NodeLosses != 3 || tk.Failures != 0 {
		t.Fatalf("poison task: %s, %d losses, %d failures: %q", tk.State, tk.NodeLosses, tk.Failures, tk.Error)
	}
	var ev *fsm.Event
	c.mustLeader(t).fsm.View(func(s *fsm.State) {
		for _, e := range s.Events {
			if e.Kind == fsm.EvTaskPoison && e.TaskID == tv.ID {
				e := e
				ev = &e
			}
		}
	})
	if ev == nil || !strings.Contains(ev.Msg, "suspected poison document") {
		t.Fatal("no poison event in the history")
	}
	select {
	case h := <-hits:
		t.Fatalf("the poison task ran again (attempt %d on %s) after its quarantine", h.attempt, h.node)
	default:
	}
	requireAllCompleted(t, waitTerminal(t, c, ids, 60*time.Second))
}

// TestRestartHandsBackOrphansOnce: the hand-back of a previous process's
// runs is fenced by attempt: the node does not run them, and a release
// by the leader for the same loss does not count it twice.
func TestRestartHandsBackOrphansOnce(t *testing.T) {
	hits := make(chan poisonHit, 16)
	c := newCluster(t)
	ns := c.startN(1, func(i int, cfg *Config) {
		name := cfg.Name
		cfg.Runner = func() (Runner, error) { return &poisonRunner{node: name, hit: hits}, nil }
		cfg.MaxNodeLosses = 5
	})
	c.mustLeader(t)
	tv, err := clientOf(ns[0]).Submit(ctxT(t, 30*time.Second), submitReq("p", "poison.txt"), strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	h := <-hits
	// Running in the ledger (the start report lands after 100 ms).
	waitFor(t, 10*time.Second, "the task reported running", func() bool {
		tk, _ := taskOn(c, tv.ID)
		return tk.State == fsm.Running
	})
	ns[0].Kill()
	back := c.restart(ns[0].name)
	var tk fsm.Task
	waitFor(t, 30*time.Second, "the orphan handed back", func() bool {
		tk, _ = taskOn(c, tv.ID)
		return tk.NodeLosses == 1
	})
	if !strings.Contains(tk.Error, "restarted while running it") {
		t.Fatalf("error %q", tk.Error)
	}
	// It runs again, at its next attempt, on the one node there is.
	select {
	case h2 := <-hits:
		if h2.attempt != h.attempt+1 || h2.node != back.name {
			t.Fatalf("ran again at attempt %d on %s (first run: attempt %d)", h2.attempt, h2.node, h.attempt)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handed-back task did not run again")
	}
	time.Sleep(500 * time.Millisecond)
	if tk, _ = taskOn(c, tv.ID); tk.NodeLosses != 1 {
		t.Fatalf("one loss counted %d times", tk.NodeLosses)
	}
}
