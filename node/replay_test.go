package node

import (
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// TestRestartRunsNothingFromReplay: a node restarted after kill -9 replays
// a log full of assignments that completed, in a partition since deleted.
// It must start no runner for any of them.
func TestRestartRunsNothingFromReplay(t *testing.T) {
	rec := newRecorder(20 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, nil)
	l := c.mustLeader(t)
	ids := submitMany(t, ns, 40, "replay")
	final := waitTerminal(t, c, ids, 60*time.Second)
	requireAllCompleted(t, final)
	for _, p := range []string{"p0", "p1", "p2"} {
		if err := l.DeletePartition(ctxT(t, 10*time.Second), p); err != nil {
			t.Fatal(err)
		}
	}
	var victim *Node
	for _, n := range ns {
		if n != l && len(rec.startsOn(n.name)) > 0 {
			victim = n
		}
	}
	if victim == nil {
		t.Fatal("no follower ran any of 40 tasks: the scheduler left both followers idle")
	}
	runsBefore := rec.runsOf(ids)
	ranBefore := len(rec.startsOn(victim.name))
	victim.Kill()
	back := c.restart(victim.name)
	waitFor(t, 15*time.Second, "the restarted node to catch up", func() bool {
		return back.replayed() && back.fsm.AppliedIndex() >= l.fsm.AppliedIndex()
	})
	// Positive evidence that the restarted node's pool has run passes over
	// its caught-up ledger: it starts new work.
	fresh := submitMany(t, []*Node{l}, 30, "after")
	waitFor(t, 30*time.Second, "the restarted node to start new work", func() bool {
		return len(rec.startsOn(victim.name)) > ranBefore
	})
	requireAllCompleted(t, waitTerminal(t, c, fresh, 60*time.Second))
	for id, k := range rec.runsOf(ids) {
		if k != runsBefore[id] {
			t.Fatalf("task %s ran %d times before the restart and %d after: started again from the replayed log", id, runsBefore[id], k)
		}
	}
	back.fsm.View(func(s *fsm.State) {
		if len(s.Tasks) > 0 && s.ActiveTotal() > 0 {
			t.Fatalf("ledger shows %d active tasks after the partition was deleted", s.ActiveTotal())
		}
	})
}

// runsOf is how many runs each of ids started so far.
func (r *recorder) runsOf(ids []string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(ids))
	for _, id := range ids {
		out[id] = r.runs[id]
	}
	return out
}

func (r *recorder) startsOn(node string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.starts[node]...)
}
