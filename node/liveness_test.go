package node

import (
	"errors"
	"fmt"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
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

// settleGoroutines waits until no more goroutines run than before: a
// stopping node's goroutines take a moment to return. On failure it prints
// the goroutines, grouped by stack, so the leak names itself.
func settleGoroutines(t *testing.T, before int, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		now := runtime.NumGoroutine()
		if now <= before {
			return
		}
		if time.Now().After(deadline) {
			var b strings.Builder
			_ = pprof.Lookup("goroutine").WriteTo(&b, 1)
			t.Fatalf("%d goroutines %s after a refused start, %d before:\n%s", now, d, before, b.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// steadyGoroutines waits until the goroutine count has held for quiet (a
// running cluster opens its keep-alive connections in its first seconds)
// and returns it.
func steadyGoroutines(t *testing.T, quiet, limit time.Duration) int {
	t.Helper()
	deadline := time.Now().Add(limit)
	last, since := runtime.NumGoroutine(), time.Now()
	for time.Since(since) < quiet && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
		if k := runtime.NumGoroutine(); k != last {
			last, since = k, time.Now()
		}
	}
	return last
}

// TestRefusedStartLeavesNoGoroutine: a start whose join fails (nothing at
// the address, or a cluster of another identity) stops what it started:
// no goroutine of the refused node remains, and its ports are free again.
func TestRefusedStartLeavesNoGoroutine(t *testing.T) {
	t.Run("unreachable join", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		dead := ln.Addr().String()
		ln.Close()
		cfg := baseConfig(t, "lonely")
		cfg.Join = []string{dead}
		cfg.JoinTimeout = time.Second
		before := runtime.NumGoroutine()
		n, err := Start(cfg)
		if err == nil {
			n.Kill()
			t.Fatal("start joined a cluster at an address where nothing listens")
		}
		settleGoroutines(t, before, 10*time.Second)
	})
	t.Run("other cluster", func(t *testing.T) {
		a := newCluster(t)
		an := a.start(baseConfig(t, "a1"))
		b := newCluster(t)
		bn := b.start(baseConfig(t, "b1"))
		waitFor(t, 15*time.Second, "both clusters to record their identity", func() bool {
			return an.clusterID.Load().(string) != "" && bn.clusterID.Load().(string) != ""
		})
		cfg := b.cfgs["b1"]
		bn.Kill()
		cfg.Join = []string{an.SerfAddr()}
		cfg.JoinTimeout = 5 * time.Second
		before := steadyGoroutines(t, 3*time.Second, 20*time.Second)
		n, err := Start(cfg)
		if !errors.Is(err, ErrOtherCluster) {
			if n != nil {
				n.Kill()
			}
			t.Fatalf("start with another cluster's data dir: %v", err)
		}
		settleGoroutines(t, before, 15*time.Second)
		// The refused node's ports can be bound again at once.
		for _, p := range []int{cfg.HTTPPort, cfg.RaftPort} {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
			if err != nil {
				t.Fatalf("port %d still held after the refused start: %v", p, err)
			}
			l.Close()
		}
	})
}
