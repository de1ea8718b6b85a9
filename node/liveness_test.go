package node

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
)

// TestLeaderStepsDownWhenBarrierFails: a leader whose barrier keeps failing
// retries it, then hands leadership on instead of holding office with no
// duties running, and the new leader schedules work.
func TestLeaderStepsDownWhenBarrierFails(t *testing.T) {
	rec := newRecorder(20 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, nil)
	l := c.mustLeader(t)

	var calls atomic.Int32
	fail := func(time.Duration) error {
		calls.Add(1)
		return errors.New("injected barrier failure")
	}
	l.lead.barrier.Store(&fail)

	// A fresh leader run on l: leadership moves away and comes back.
	var other *Node
	for _, n := range ns {
		if n != l {
			other = n
			break
		}
	}
	if err := l.raft.LeadershipTransferToServer(raft.ServerID(other.id), raft.ServerAddress(other.raftAddr)).Error(); err != nil {
		t.Fatalf("transfer away: %v", err)
	}
	waitFor(t, 15*time.Second, "the other node to lead", func() bool { return other.raft.State() == raft.Leader })
	calls.Store(0)
	if err := other.raft.LeadershipTransferToServer(raft.ServerID(l.id), raft.ServerAddress(l.raftAddr)).Error(); err != nil {
		t.Fatalf("transfer back: %v", err)
	}
	waitFor(t, 15*time.Second, "the barrier to be tried on the new leader", func() bool { return calls.Load() > 0 })
	waitFor(t, 30*time.Second, "the failing leader to step down", func() bool {
		return l.lead.stepDowns.Load() > 0 && l.raft.State() != raft.Leader
	})
	if got := calls.Load(); got < establishTries {
		t.Fatalf("stepped down after %d barrier tries, want at least %d", got, establishTries)
	}
	nl := c.mustLeader(t)
	if nl == l {
		t.Fatal("the failing node leads again")
	}
	ids := submitMany(t, ns, 6, "after-stepdown")
	requireAllCompleted(t, waitTerminal(t, c, ids, 30*time.Second))
}
