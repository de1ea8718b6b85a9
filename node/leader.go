package node

import (
	"context"
	"sync"
	"time"

	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/ragnode/ragnode/fsm"
)

// leaderWatch starts the leader's loops when this node wins an election and
// stops them when it loses leadership. Everything those loops need is read
// from the FSM, so a new leader picks up exactly where the old one was.
func (n *Node) leaderWatch() {
	defer n.wg.Done()
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
	// The barrier makes sure this leader has applied everything committed by
	// its predecessors before it acts on the state.
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		n.log.Warn("leader barrier", "error", err)
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
	want := fsm.Settings{MaxAttempts: n.cfg.MaxAttempts, RetainCount: n.cfg.RetainCount, RetainMaxAge: int64(n.cfg.RetainMaxAge)}
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
