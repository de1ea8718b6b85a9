package node

import (
	"context"

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
		p.running[ref] = &run{cancel: cancel, pending: true, confirmed: make(chan struct{})}
		p.wg.Add(1)
		go p.execute(ctx, ref, t)
		return &ref
	}
	return nil
}

// settleHandoff runs once the handoff's report came back (and, when it
// was committed, was applied here): the started run stays if the ledger
// now holds it here at its attempt, else it is cancelled (the leader will
// start it again, or it was requeued elsewhere).
func (p *workerPool) settleHandoff(ref fsm.TaskRef) {
	held := false
	p.n.fsm.View(func(s *fsm.State) {
		t := s.Tasks[ref.ID]
		held = t != nil && t.Attempt == ref.Attempt && t.State.Active() && t.NodeID == p.n.id
	})
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
	close(r.confirmed)
}
