package node

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

// proposer carries commands to the leader. Concurrent proposals are packed
// into one Batch entry (one Raft write, one fsync, one forwarding round trip),
// which is what lifts ledger throughput from fsync-bound to thousands of
// commands per second. It retries across leader changes; every command is
// idempotent or fenced by attempt numbers, so a retry of an applied command
// is rejected rather than applied twice.
//
// Worker reports take their own lane (reportLoop): one batch in flight at
// a time, so they reach the ledger in the order this node made them. A
// run started from the prefetch queue may then report its end as soon as
// the report that handed it its slot is queued (handoff.go), without
// waiting a Raft round trip for that report to come back: the ledger
// applies the handoff first.
type proposer struct {
	n   *Node
	in  chan *pending
	rin chan *pending
	sem chan struct{}
	// linger is how long a batch that starts with a worker report waits
	// for more, in nanoseconds (reportLinger; tests lengthen it).
	linger atomic.Int64
}

// reportLinger: a worker's completions and stage updates that happen
// within this long of each other leave the node as one proposal (one
// forwarding round trip, one Raft entry, one fsync on the leader) instead
// of one each. It is not on a task's critical path when prefetch is on:
// the next task started before its predecessor's report left.
const reportLinger = 2 * time.Millisecond

// isReport reports whether c is a worker's report on a run.
func isReport(c fsm.Command) bool {
	switch c.Type {
	case fsm.CmdTaskProgress, fsm.CmdCompleteTask, fsm.CmdFailTask:
		return true
	}
	return false
}

type pending struct {
	ctx  context.Context
	cmd  fsm.Command
	done chan proposal
}

type proposal struct {
	res fsm.Result
	err error
}

const maxBatch = 512

func newProposer(n *Node) *proposer {
	p := &proposer{n: n, in: make(chan *pending, 4096), rin: make(chan *pending, 4096), sem: make(chan struct{}, 16)}
	p.linger.Store(int64(reportLinger))
	n.wg.Add(2)
	go p.loop()
	go p.reportLoop()
	return p
}

// Propose applies cmd through the leader and returns its result.
func (p *proposer) Propose(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	pd, err := p.enqueue(ctx, cmd)
	if err != nil {
		return fsm.Result{}, err
	}
	return p.await(ctx, pd)
}

// enqueue hands cmd to its lane; await waits for its result. Reports
// enqueued one after the other are applied in that order.
func (p *proposer) enqueue(ctx context.Context, cmd fsm.Command) (*pending, error) {
	if cmd.Now == 0 {
		cmd.Now = time.Now().UnixNano()
	}
	pd := &pending{ctx: ctx, cmd: cmd, done: make(chan proposal, 1)}
	lane := p.in
	if isReport(cmd) {
		lane = p.rin
	}
	select {
	case lane <- pd:
		return pd, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-p.n.stopCh:
		return nil, errNodeStopping
	}
}

func (p *proposer) await(ctx context.Context, pd *pending) (fsm.Result, error) {
	select {
	case o := <-pd.done:
		return o.res, o.err
	case <-ctx.Done():
		return fsm.Result{}, ctx.Err()
	case <-p.n.stopCh:
		// Raft is going away and nothing more will be applied here: waiting
		// for the answer would hold shutdown (n.wg) for the caller's timeout.
		return fsm.Result{}, errNodeStopping
	}
}

func (p *proposer) loop() {
	defer p.n.wg.Done()
	for {
		batch, _, ok := p.nextBatch(p.in)
		if !ok {
			return
		}
		select {
		case p.sem <- struct{}{}:
		case <-p.n.stopCh:
			return
		}
		go func() {
			defer func() { <-p.sem }()
			p.flush(batch, false)
		}()
	}
}

// nextBatch waits for a proposal on lane and takes whatever else is already
// waiting there, up to maxBatch; false means the node is stopping.
func (p *proposer) nextBatch(lane chan *pending) ([]*pending, int, bool) {
	var first *pending
	select {
	case first = <-lane:
	case <-p.n.stopCh:
		return nil, 0, false
	}
	batch := []*pending{first}
	size := first.size()
	for size < maxBatch {
		select {
		case pd := <-lane:
			batch = append(batch, pd)
			size += pd.size()
		default:
			return batch, size, true
		}
	}
	return batch, size, true
}

// reportLoop sends worker reports, one batch at a time and in order: the
// next batch leaves once the leader has answered the previous one (applied
// it, or refused it), and holds everything that arrived meanwhile.
func (p *proposer) reportLoop() {
	defer p.n.wg.Done()
	for {
		batch, size, ok := p.nextBatch(p.rin)
		if !ok {
			return
		}
		if linger := time.Duration(p.linger.Load()); linger > 0 && size < maxBatch {
			if !p.lingerFill(p.rin, linger, &batch, &size) {
				return
			}
		}
		p.flush(batch, true)
	}
}

// lingerFill adds what arrives within linger to the batch; false means
// the node is stopping.
func (p *proposer) lingerFill(lane chan *pending, linger time.Duration, batch *[]*pending, size *int) bool {
	t := time.NewTimer(linger)
	defer t.Stop()
	for *size < maxBatch {
		select {
		case pd := <-lane:
			*batch = append(*batch, pd)
			*size += pd.size()
		case <-t.C:
			return true
		case <-p.n.stopCh:
			return false
		}
	}
	return true
}

// size is how many ledger commands a proposal carries.
func (pd *pending) size() int {
	if pd.cmd.Type == fsm.CmdBatch {
		return len(pd.cmd.Batch)
	}
	return 1
}

// flush sends one Raft entry for the whole batch and answers each caller.
// With ordered (the report lane) it returns once the leader answered and
// waits for the local apply in the background, so the next batch can leave.
func (p *proposer) flush(batch []*pending, ordered bool) {
	cmd, spans, direct := pack(batch)
	// The batch lives as long as its longest-waiting caller.
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		for _, pd := range batch {
			select {
			case <-pd.ctx.Done():
			case <-ctx.Done():
				return
			}
		}
		cancel()
	}()
	res, err := p.sendWithRetry(ctx, cmd)
	answer := func() {
		defer cancel()
		if err == nil && res.Index > 0 {
			// Read-your-writes on this node: wait (briefly) until the local
			// state has applied the write before answering.
			wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
			_ = p.n.fsm.WaitApplied(wctx, res.Index)
			wcancel()
		}
		for i, o := range unpack(batch, spans, direct, res, err) {
			batch[i].done <- o
		}
	}
	if ordered {
		go answer()
		return
	}
	answer()
}

// span is where one caller's commands sit in a packed entry.
type span struct{ off, n int }

// pack builds one entry for the batch. A proposal that is itself a batch (a
// submission: blob holders + task) is flattened into the entry, so it stays
// atomic while sharing the entry with its neighbours. A lone plain command
// is sent as is (direct).
func pack(batch []*pending) (cmd fsm.Command, spans []span, direct bool) {
	spans = make([]span, len(batch))
	var cmds []fsm.Command
	for i, pd := range batch {
		if pd.cmd.Type == fsm.CmdBatch {
			spans[i] = span{len(cmds), len(pd.cmd.Batch)}
			cmds = append(cmds, pd.cmd.Batch...)
		} else {
			spans[i] = span{len(cmds), 1}
			cmds = append(cmds, pd.cmd)
		}
	}
	direct = len(batch) == 1 && batch[0].cmd.Type != fsm.CmdBatch
	if direct {
		return batch[0].cmd, spans, true
	}
	return fsm.Command{Type: fsm.CmdBatch, Now: batch[0].cmd.Now, Batch: cmds}, spans, false
}

// unpack gives each caller its part of the entry's result: a batch caller
// its inner results, a plain caller its one result, all with the index.
func unpack(batch []*pending, spans []span, direct bool, res fsm.Result, err error) []proposal {
	want := 0
	for _, sp := range spans {
		want += sp.n
	}
	if err == nil && !direct && len(res.Batch) != want {
		err = fmt.Errorf("leader returned %d results for %d commands", len(res.Batch), want)
	}
	out := make([]proposal, len(batch))
	for i, pd := range batch {
		if err != nil {
			out[i] = proposal{err: err}
			continue
		}
		switch {
		case direct:
			out[i].res = res
		case pd.cmd.Type == fsm.CmdBatch:
			sp := spans[i]
			out[i].res = fsm.Result{Batch: res.Batch[sp.off : sp.off+sp.n], Index: res.Index}
		default:
			out[i].res = res.Batch[spans[i].off]
			out[i].res.Index = res.Index
		}
	}
	return out
}

func (p *proposer) sendWithRetry(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	b, err := fsm.Encode(cmd)
	if err != nil {
		return fsm.Result{}, err
	}
	backoff := 20 * time.Millisecond
	for {
		res, err := p.send(ctx, cmd, b)
		if err == nil || !retryable(err) {
			return res, err
		}
		select {
		case <-ctx.Done():
			return fsm.Result{}, fmt.Errorf("propose %s: %w (last error: %v)", cmd.Type, ctx.Err(), err)
		case <-p.n.stopCh:
			return fsm.Result{}, fmt.Errorf("propose %s: node stopping (last error: %v)", cmd.Type, err)
		case <-time.After(backoff):
		}
		if backoff < time.Second {
			backoff *= 2
		}
	}
}

func (p *proposer) send(ctx context.Context, cmd fsm.Command, b []byte) (fsm.Result, error) {
	if p.n.raft.State() == raft.Leader {
		f := p.n.raft.Apply(b, 10*time.Second)
		if err := f.Error(); err != nil {
			return fsm.Result{}, err
		}
		res, _ := f.Response().(fsm.Result)
		res.Index = f.Index()
		return res, nil
	}
	c, err := p.n.peers.leader()
	if err != nil {
		return fsm.Result{}, err
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	return c.Apply(cctx, cmd)
}

// retryable errors are those where the command may simply not have reached
// a leader: no leader yet, leadership moved, the leader unreachable.
func retryable(err error) bool {
	switch {
	case errors.Is(err, raft.ErrNotLeader), errors.Is(err, raft.ErrLeadershipLost),
		errors.Is(err, raft.ErrLeadershipTransferInProgress), errors.Is(err, raft.ErrEnqueueTimeout),
		errors.Is(err, raft.ErrAbortedByRestore):
		return true
	case errors.Is(err, raft.ErrRaftShutdown):
		return false
	case errs.KindOf(err) != nil:
		// A classified failure, local or the leader's answer (a
		// StatusError carries its status's kind): only "not now" (no
		// leader yet, the leader stopping) is worth retrying.
		return errors.Is(err, errs.Unavailable)
	}
	// Network errors talking to the leader, and answers of no kind (500, a
	// proxy's 502 or 504): the leader failed mid-way, which may pass.
	return true
}

var errNodeStopping = errs.New(errs.Unavailable, "node stopping")
