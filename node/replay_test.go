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
		t.Skip("no follower ran a task")
	}
	ranBefore := len(rec.startsOn(victim.name))
	victim.Kill()
	back := c.restart(victim.name)
	waitFor(t, 15*time.Second, "the restarted node to catch up", func() bool {
		return back.replayed() && back.fsm.AppliedIndex() >= l.fsm.AppliedIndex()
	})
	time.Sleep(2 * time.Second) // a pool pass or two after catching up
	if got := len(rec.startsOn(victim.name)); got != ranBefore {
		t.Fatalf("the restarted node started %d runners from the replayed log", got-ranBefore)
	}
	back.fsm.View(func(s *fsm.State) {
		if len(s.Tasks) > 0 && s.ActiveTotal() > 0 {
			t.Fatalf("ledger shows %d active tasks after the partition was deleted", s.ActiveTotal())
		}
	})
}

func (r *recorder) startsOn(node string) []time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]time.Time(nil), r.starts[node]...)
}
