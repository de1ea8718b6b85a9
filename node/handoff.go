package node

import (
	"context"
	"math"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/scheduler"
)

// The worker's half of prefetch (the ledger's is fsm/prefetch.go): when a
// run ends, the oldest task prefetched to this node that suits the freed
// slot starts at once, and the ending run's report names it (Command.Next)
// so the ledger moves the allocation in the same Apply. The slot never
// waits for a Raft round trip; the ledger never counts it twice.

// startPrefetched starts the next prefetched task in the slot that ended
// (a card share or a CPU slot, as the ledger held it for ended) and returns
// its reference for the handoff, or nil when there is none to start.
func (p *workerPool) startPrefetched(ended fsm.Task) *fsm.TaskRef {
	var cands []fsm.Task
	gpus := 0
	p.n.fsm.View(func(s *fsm.State) {
		if nd := s.Nodes[p.n.id]; nd != nil {
			gpus = len(nd.GPUs)
		}
		for _, t := range s.PrefetchedOn(p.n.id) {
			cands = append(cands, *t)
		}
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return nil
	}
	for _, t := range cands {
		ref := fsm.TaskRef{ID: t.ID, Attempt: t.Attempt}
		if _, busy := p.running[ref]; busy {
			continue // another ending run took it
		}
		// The ledger's rule for the handoff (fsm startNext): a card share
		// passes to a task that wants a card, a CPU slot to one that does
		// not take a card on this node.
		if ended.GPU >= 0 && !scheduler.WantsGPU(t.ReqMilli, t.ReqMem) {
			continue
		}
		if ended.GPU < 0 && scheduler.UsesGPU(t.ReqMilli, t.ReqMem, gpus) {
			continue
		}
		t.NodeID, t.GPU = p.n.id, ended.GPU
		ctx, cancel := context.WithCancel(context.Background())
		p.running[ref] = &run{cancel: cancel, pending: true, queued: make(chan struct{})}
		p.wg.Add(1)
		go p.execute(ctx, ref, t)
		return &ref
	}
	return nil
}

// prefetchLimit is the prefetch queue this node asks its handoff reports
// to refill (fsm topUp): enough to keep its slots busy through one report
// round trip (runs in flight × round trip ÷ run length, plus one), between
// the leader's prefetchBase and the --prefetch bound. Tasks long against a
// round trip get the base; 10 ms tasks against a 30 ms round trip, 13.
func (p *workerPool) prefetchLimit() int {
	hi := p.n.cfg.prefetchDepth()
	lo := min(hi, prefetchBase)
	p.mu.Lock()
	run, rtt, k := p.runAvg, p.reportAvg, p.active()
	p.mu.Unlock()
	if run <= 0 || rtt <= 0 {
		return lo
	}
	want := int(math.Ceil(float64(k)*rtt/run)) + 1
	return max(lo, min(hi, want))
}

// note folds d into the moving average *avg (weight 1/8).
func (p *workerPool) note(avg *float64, d time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if *avg == 0 {
		*avg = float64(d)
		return
	}
	*avg += (float64(d) - *avg) / 8
}

// handoffQueued lets the run started for ref report: the report asking
// for its slot is in the report lane, ahead of its own.
func (p *workerPool) handoffQueued(ref fsm.TaskRef) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if r := p.running[ref]; r != nil && r.queued != nil {
		select {
		case <-r.queued:
		default:
			close(r.queued)
		}
	}
}

// settleHandoff runs once the handoff's report came back (and, when it
// was committed, was applied here): the started run stays if the ledger
// took the handoff (the answer names it as chained; without an answer,
// the ledger holds it here at its attempt), else it is cancelled (the
// leader will start it again, or it was requeued elsewhere). The run may
// have ended and reported meanwhile; if that report was refused as stale,
// its entry goes, so a task the ledger still holds here runs again.
func (p *workerPool) settleHandoff(ref fsm.TaskRef, res fsm.Result, err error) {
	held := err == nil && res.Chained == ref.ID
	if !held {
		// Not chained by this report, but the ledger may hold the run here
		// all the same: the leader's pass promoted the prefetched task on
		// this node first (the answer came after the local apply). Cancelling
		// it then would start the same attempt a second time.
		p.n.fsm.View(func(s *fsm.State) {
			t := s.Tasks[ref.ID]
			held = t != nil && t.Attempt == ref.Attempt && t.State.Active() && t.NodeID == p.n.id
		})
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	r := p.running[ref]
	if r == nil || !r.pending {
		return
	}
	r.pending = false
	if held {
		p.handoffs.Add(1)
	}
	if !held && !r.displaced {
		r.displaced = true
		r.cancel()
		p.n.log.Debug("prefetched start refused by the ledger; run cancelled", "task", ref.ID, "attempt", ref.Attempt)
	}
	if r.done && (r.rejected || r.displaced) {
		delete(p.running, ref)
	}
}
