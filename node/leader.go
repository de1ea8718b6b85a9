package node

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/ragnode/ragnode/fsm"
)

// leaderWatch starts the leader's loops when this node wins an election and
// stops them when it loses leadership. Everything those loops need is read
// from the FSM, so a new leader picks up exactly where the old one was.
func (n *Node) leaderWatch() {
	defer n.wg.Done()
	n.wg.Add(1)
	go n.leaderObserveLoop() // leader_churn.go
	var lc *leaderRun
	defer func() { lc.stop() }()
	for {
		select {
		case isLeader := <-n.leaderNotify:
			if isLeader && lc == nil {
				lc = n.startLeaderRun()
			} else if !isLeader {
				lc.stop()
				lc = nil
			}
			if isLeader {
				n.setStateTag()
			}
		case <-n.stopCh:
			return
		}
	}
}

type leaderRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *Node) startLeaderRun() *leaderRun {
	ctx, cancel := context.WithCancel(context.Background())
	lr := &leaderRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(lr.done)
		n.leaderLoop(ctx)
	}()
	return lr
}

func (lr *leaderRun) stop() {
	if lr == nil {
		return
	}
	lr.cancel()
	<-lr.done
}

func (n *Node) tick() time.Duration {
	if n.cfg.Timing == TimingFast {
		return 200 * time.Millisecond
	}
	return 500 * time.Millisecond
}

// leaderLoop establishes leadership and runs the leader's duties until ctx
// ends (leadership revoked or the node stopping). Each duty is its own
// goroutine, as Consul's leader runs its start*/stop* pairs: failure
// handling and requeue (reconcileLoop) never wait behind peer I/O of the
// copy repairs (replicationLoop) or behind a scheduling pass.
func (n *Node) leaderLoop(ctx context.Context) {
	n.log.Info("became leader")
	defer n.log.Info("leader loops stopped")
	if !n.establishLeadership(ctx) {
		return
	}
	n.writeSettings(ctx)
	n.ensureClusterID(ctx)
	n.ensurePeerSecret(ctx)

	upd, rec := 2*time.Second, 10*time.Second
	if n.cfg.Timing == TimingFast {
		upd, rec = 300*time.Millisecond, 500*time.Millisecond
	}
	ap := autopilot.New(n.raft, &apDelegate{n: n},
		autopilot.WithLogger(n.log.Named("autopilot")),
		autopilot.WithPromoter(oddPromoter{}),
		autopilot.WithUpdateInterval(upd),
		autopilot.WithReconcileInterval(rec))
	ap.Start(ctx)
	defer func() {
		<-ap.Stop()
		n.apState.Store(nil)
	}()

	var wg sync.WaitGroup
	defer wg.Wait()
	for _, duty := range []func(context.Context){
		func(ctx context.Context) { n.reconcileLoop(ctx, ap) },
		n.scheduleLoop,
		n.replicationLoop,
		n.callbackLoop,
		n.catalogLoop,
	} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			duty(ctx)
		}()
	}
	<-ctx.Done()
}

func (n *Node) writeSettings(ctx context.Context) {
	want := fsm.Settings{MaxAttempts: n.cfg.MaxAttempts, RetainCount: n.cfg.RetainCount, RetainMaxAge: int64(n.cfg.RetainMaxAge),
		MaxNodeLosses: n.cfg.MaxNodeLosses}
	var have fsm.Settings
	n.fsm.View(func(s *fsm.State) { have = s.Settings })
	if have == want {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.prop.Propose(cctx, fsm.Command{Type: fsm.CmdSettings, Settings: &want}); err != nil {
		n.log.Warn("write settings", "error", err)
	}
}

// Establishing leadership. A leader that cannot apply its predecessors'
// entries must not act on the state, yet must not hold office doing
// nothing either: nothing else would move leadership while its heartbeats
// keep the followers content, and scheduling, requeue, autopilot and
// repairs would stop cluster-wide. So, as Nomad's leader does, the barrier
// is retried with backoff, and after establishTries failures in a row the
// node hands leadership to another voter; if none can take it (a one-voter
// cluster, or the transfer fails) it keeps retrying.
const (
	establishTries    = 3
	barrierTimeout    = 10 * time.Second
	establishMaxPause = 5 * time.Second
	// stepDownWait is how long a node that transferred leadership waits
	// for the revocation before trying the barrier again: the transfer can
	// succeed and the same node win the next election.
	stepDownWait = 10 * time.Second
)

// leadership is the node's state around holding office.
type leadership struct {
	// barrier replaces Raft's barrier when set: tests inject failures.
	barrier atomic.Pointer[func(time.Duration) error]
	// stepDowns counts transfers after a failure to establish leadership.
	stepDowns atomic.Int64
	// history: leader changes and leaderless gaps (leader_churn.go).
	history leaderHistory
}

func (n *Node) barrier(timeout time.Duration) error {
	if f := n.lead.barrier.Load(); f != nil {
		return (*f)(timeout)
	}
	return n.raft.Barrier(timeout).Error()
}

// establishLeadership returns true once the barrier holds: this leader has
// applied everything committed by its predecessors before it acts on the
// state. It returns false when ctx ends first (leadership revoked, node
// stopping).
func (n *Node) establishLeadership(ctx context.Context) bool {
	wait := n.tick()
	fails := 0
	for {
		err := n.barrier(barrierTimeout)
		if err == nil {
			if fails > 0 {
				n.log.Info("leadership established after failed barriers", "failures", fails)
			}
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		fails++
		n.log.Warn("leader barrier failed", "attempt", fails, "error", err)
		if fails%establishTries == 0 && n.stepDown(ctx) {
			// Revocation cancels ctx; if it does not come (this node won
			// again), try once more.
			select {
			case <-ctx.Done():
				return false
			case <-time.After(stepDownWait):
			}
			continue
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
		wait = min(2*wait, establishMaxPause)
	}
}

// stepDown hands leadership to another voter; false if it could not.
func (n *Node) stepDown(ctx context.Context) bool {
	if n.raft.State() != raft.Leader || ctx.Err() != nil {
		return false
	}
	if !n.otherVoters() {
		n.log.Error("cannot establish leadership and no other voter can take it; retrying")
		return false
	}
	n.log.Error("cannot establish leadership; transferring it to another voter", "after_failures", establishTries)
	if err := n.raft.LeadershipTransfer().Error(); err != nil {
		n.log.Warn("leadership transfer after failed barriers", "error", err)
		return false
	}
	n.lead.stepDowns.Add(1)
	return true
}
