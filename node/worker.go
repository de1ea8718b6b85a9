package node

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// workerPool runs the tasks the applied log assigns to this node. It never
// runs a task the ledger does not hold here at that attempt: when the ledger
// moves a task away (requeue, cancel) the local run is cancelled. The one
// exception is brief and bounded: when a run ends and the ledger holds a
// task prefetched here, that task starts at once in the slot just freed
// (no other run takes the slot meanwhile) and the report that ends the old
// run asks the ledger to hand the allocation over (fsm prefetch.go). Until
// the answer is applied here the new run is pending: it is not displaced,
// and it reports its end only after the handoff's report is queued (the
// report lane keeps their order, propose.go, so the ledger applies the
// handoff first); if the ledger refused the handoff, it is cancelled and
// waits for the leader to start it.
type workerPool struct {
	n       *Node
	factory RunnerFactory

	mu      sync.Mutex
	running map[fsm.TaskRef]*run
	idle    []*slot
	stopped bool
	wg      sync.WaitGroup
	// abandoned counts runs whose runner ignored cancellation past
	// abandonGrace, by the slot kind they held: their goroutine still
	// burns the slot, so the node advertises that much less capacity.
	abandonedCPU, abandonedGPU int
	lastRelease                atomic.Int64
	// mem is the --memory-high guard (memguard.go).
	mem *memGuard
	// handoffs counts prefetched starts the ledger confirmed (handoff.go).
	handoffs atomic.Int64
	// runAvg and reportAvg are moving averages (ns, under mu) of a run's
	// length and of a final report's round trip: prefetchLimit's inputs.
	runAvg, reportAvg float64
	// orphans are runs that a previous process of this node left running:
	// it died (a clean stop hands its work back first), maybe of the
	// document itself. They are not started again here but handed back as
	// a lost node's work, so the poison quarantine counts them even when
	// the node came back before anyone declared it failed. The value is
	// when the hand-back was last tried.
	orphans     map[fsm.TaskRef]time.Time
	orphansSeen bool
}

// abandonGrace is how long a cancelled or timed-out runner may take to
// return before its run is abandoned.
const abandonGrace = 2 * time.Second

// stopGrace bounds how long shutdown waits for runs to return.
const stopGrace = 10 * time.Second

type run struct {
	cancel    context.CancelFunc
	displaced bool // the ledger moved the task away; report nothing
	// done means the run ended and its report went out. The entry stays until
	// the local state no longer shows the task here at this attempt; without
	// it a follower that has not applied the completion yet would run the
	// task again.
	done bool
	// pending is set while the run was started from the prefetch queue and
	// the handoff that gives it a slot is not yet applied here; queued is
	// closed once the report asking for that handoff is in the report
	// lane, ahead of anything this run reports.
	pending bool
	queued  chan struct{}
	// rejected: the run ended and the ledger refused its report as stale
	// while it was pending; settling drops the entry (handoff.go).
	rejected bool
}

type slot struct {
	r    Runner
	uses int
}

func newWorkerPool(n *Node) *workerPool {
	return &workerPool{n: n, factory: n.cfg.Runner, running: map[fsm.TaskRef]*run{}, mem: newMemGuard(n.cfg.MemoryHigh),
		orphans: map[fsm.TaskRef]time.Time{}}
}

func (p *workerPool) loop() {
	defer p.n.wg.Done()
	if p.mem.high > 0 {
		p.n.wg.Add(1)
		go p.memGuardLoop()
	}
	p.n.watchLedger(p.n.stopCh, time.Second, p.sync)
}

func (p *workerPool) sync() {
	if !p.n.replayed() {
		return // running nothing is safe: the leader requeues after the grace
	}
	want := map[fsm.TaskRef]fsm.Task{}
	p.n.fsm.View(func(s *fsm.State) {
		for _, t := range s.TasksOn(p.n.id) {
			want[fsm.TaskRef{ID: t.ID, Attempt: t.Attempt}] = *t
		}
	})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.stopped {
		return
	}
	p.setOrphansAside(want)
	for ref, r := range p.running {
		if _, ok := want[ref]; ok || r.pending {
			continue
		}
		if r.done {
			delete(p.running, ref)
		} else if !r.displaced {
			r.displaced = true
			r.cancel()
		}
	}
	for ref, t := range want {
		if _, ok := p.running[ref]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(context.Background())
		p.running[ref] = &run{cancel: cancel}
		p.wg.Add(1)
		go p.execute(ctx, ref, t)
	}
}

// setOrphansAside keeps orphaned runs out of want and hands them back. At
// the first pass after start, a task the ledger shows running here was
// started by the previous process: this one has started nothing yet, and
// an assigned task that never reported running was never started.
func (p *workerPool) setOrphansAside(want map[fsm.TaskRef]fsm.Task) {
	if !p.orphansSeen {
		p.orphansSeen = true
		for ref, t := range want {
			if t.State == fsm.Running {
				p.orphans[ref] = time.Time{}
			}
		}
	}
	var lost []fsm.TaskRef
	for ref, tried := range p.orphans {
		if _, ok := want[ref]; !ok {
			delete(p.orphans, ref)
			continue
		}
		delete(want, ref)
		if time.Since(tried) > orphanRetry {
			p.orphans[ref] = time.Now()
			lost = append(lost, ref)
		}
	}
	if len(lost) == 0 {
		return
	}
	sort.Slice(lost, func(i, j int) bool { return lost[i].ID < lost[j].ID })
	p.n.log.Warn("work left running by this node's previous process; handing it back as lost", "tasks", len(lost))
	go p.report(fsm.Command{Type: fsm.CmdRequeueTasks, Refs: lost, NodeLoss: true,
		Error: "node " + p.n.name + " restarted while running it"}, true)
}

// orphanRetry spaces hand-backs of orphaned runs that did not land (no
// leader yet after the restart).
const orphanRetry = 5 * time.Second

// Running returns the number of local runs still executing.
func (p *workerPool) Running() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.active()
}

func (p *workerPool) active() int {
	k := 0
	for _, r := range p.running {
		if !r.done {
			k++
		}
	}
	return k
}

func (p *workerPool) getSlot() (*slot, error) {
	p.mu.Lock()
	if k := len(p.idle); k > 0 {
		s := p.idle[k-1]
		p.idle = p.idle[:k-1]
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	r, err := p.factory()
	if err != nil {
		return nil, fmt.Errorf("create runner: %w", err)
	}
	return &slot{r: r}, nil
}

// putSlot recycles a runner, closing it after --max-tasks-per-worker uses.
func (p *workerPool) putSlot(s *slot) {
	s.uses++
	max := p.n.cfg.MaxTasksPerWorker
	p.mu.Lock()
	if (max > 0 && s.uses >= max) || p.stopped {
		p.mu.Unlock()
		_ = s.r.Close()
		return
	}
	p.idle = append(p.idle, s)
	p.mu.Unlock()
}

func (p *workerPool) execute(ctx context.Context, ref fsm.TaskRef, t fsm.Task) {
	defer p.wg.Done()
	rejected := false // the ledger refused the final report as stale
	defer func() {
		p.mu.Lock()
		if r := p.running[ref]; r != nil {
			switch {
			case r.displaced, rejected && !r.pending:
				delete(p.running, ref)
			default:
				r.done, r.rejected = true, rejected
			}
		}
		p.mu.Unlock()
	}()
	log := p.n.log.With("task", t.ID, "attempt", t.Attempt)
	var started *time.Timer
	if t.State == fsm.Assigned {
		// Marking the task running costs a ledger write; a task that ends
		// within startReportDelay is reported once, by its completion.
		started = time.AfterFunc(startReportDelay, func() {
			p.report(fsm.Command{Type: fsm.CmdTaskProgress, TaskID: t.ID, Attempt: t.Attempt, Stage: fsm.StageLoading}, false)
		})
	}
	runCtx, cancel := context.WithDeadline(ctx, p.deadline(t))
	defer cancel()
	stages := p.n.metrics.stageWatch()
	defer stages.end()
	job := Job{
		Task:   t,
		GPU:    t.GPU,
		Open:   func(ctx context.Context) ([]byte, error) { return p.n.readFile(ctx, t) },
		Logger: log,
		Progress: func(stage string) {
			stages.enter(stage) // metrics.go: stage durations
			if stage == fsm.StageLoading {
				return // already reported on start
			}
			p.report(fsm.Command{Type: fsm.CmdTaskProgress, TaskID: t.ID, Attempt: t.Attempt, Stage: stage}, false)
		},
	}
	var out Outcome
	startedAt := time.Now().UnixNano()
	p.mu.Lock()
	var queued chan struct{}
	if r := p.running[ref]; r != nil {
		queued = r.queued
	}
	p.mu.Unlock()
	s, err := p.getSlot()
	if err == nil {
		var abandoned bool
		out, err, abandoned = p.runBounded(runCtx, s.r, job, t)
		if abandoned {
			// The runner still holds the slot: never reuse it.
			err = fmt.Errorf("runner did not stop within %s of being cancelled; its slot stays out of use: %w", abandonGrace, runCtx.Err())
		} else {
			p.putSlot(s)
		}
	}
	if started != nil {
		started.Stop()
	}
	p.note(&p.runAvg, time.Since(time.Unix(0, startedAt)))
	if queued != nil {
		// A prefetched start reports nothing before the report that asks
		// for its slot is queued (in practice it long is: that report
		// leaves as this run starts).
		select {
		case <-queued:
		case <-p.n.stopCh:
		}
	}
	p.mu.Lock()
	displaced := p.running[ref] != nil && p.running[ref].displaced
	stopped := p.stopped
	p.mu.Unlock()
	if displaced || stopped {
		// The ledger moved the task, or this node is going down and hands it
		// back through the drain: reporting now would only be rejected.
		log.Debug("run ended without report", "displaced", displaced, "stopped", stopped)
		return
	}
	var c fsm.Command
	switch {
	case err == nil:
		c = fsm.Command{Type: fsm.CmdCompleteTask, TaskID: t.ID, Attempt: t.Attempt, Chunks: out.Chunks, ChunkHolders: out.ChunkHolders, Chain: true, Started: startedAt}
	case errors.Is(runCtx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
		// The budget spans attempts: another attempt would start with
		// none left, so the timeout is final.
		p.n.metrics.runFailed("timeout")
		c = fsm.Command{Type: fsm.CmdFailTask, TaskID: t.ID, Attempt: t.Attempt,
			Error: p.timeoutMessage(t), Permanent: true, Chain: true, Started: startedAt}
	default:
		log.Warn("task failed", "error", err)
		p.n.metrics.runFailed(failKind(err))
		p.n.noteDiskFault(diskError(err))
		p.releaseMemory()
		c = fsm.Command{Type: fsm.CmdFailTask, TaskID: t.ID, Attempt: t.Attempt, Error: err.Error(), Permanent: IsPermanent(err),
			NodeLoss: IsRunnerLost(err), Chain: true, Started: startedAt}
	}
	if p.n.overMemory() {
		// Over --memory-high: the freed slot takes nothing new (memguard.go).
		c.Chain = false
		p.report(c, true)
		return
	}
	next := p.startPrefetched(t)
	if next == nil {
		if c.Type == fsm.CmdCompleteTask {
			// The same Apply chains a queued task into the freed slot and
			// refills this node's prefetch queue (fsm topUp).
			c.Limit = p.prefetchLimit()
		}
		res, err := p.finalReport(c, nil)
		rejected = err == nil && res.Code == fsm.CodeStaleAttempt
		return
	}
	// The same Apply refills this node's prefetch queue (fsm topUp).
	c.Next, c.Limit = next, p.prefetchLimit()
	res, err := p.finalReport(c, func() { p.handoffQueued(*next) })
	rejected = err == nil && res.Code == fsm.CodeStaleAttempt
	p.settleHandoff(*next, res, err)
}

// finalReport sends a run's last report and waits for its answer; queued
// runs once it is in the report lane. A report the ledger refused as
// stale drops the run's entry (execute): should the ledger still come to
// hold the task here at this attempt (a handoff applied after all), the
// next sync runs it again rather than leaving it running with nothing
// behind it.
func (p *workerPool) finalReport(c fsm.Command, queued func()) (fsm.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	t0 := time.Now()
	pd, err := p.n.prop.enqueue(ctx, c)
	if queued != nil {
		queued()
	}
	var res fsm.Result
	if err == nil {
		res, err = p.n.prop.await(ctx, pd)
	}
	if err == nil {
		p.note(&p.reportAvg, time.Since(t0))
	}
	if err != nil {
		p.n.log.Warn("report to leader failed", "type", c.Type, "task", c.TaskID, "error", err)
		return res, err
	}
	if res.Err != "" {
		p.n.log.Debug("report rejected", "type", c.Type, "task", c.TaskID, "reason", res.Err)
	}
	return res, nil
}

// runBounded runs the runner, and gives up on it abandonGrace after its
// context ends: a runner that ignores cancellation must not hold a report,
// a shutdown, or a slot count hostage.
func (p *workerPool) runBounded(ctx context.Context, r Runner, job Job, t fsm.Task) (Outcome, error, bool) {
	type result struct {
		out Outcome
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := safeRun(ctx, r, job)
		done <- result{out, err}
	}()
	select {
	case res := <-done:
		return res.out, res.err, false
	case <-ctx.Done():
	}
	select {
	case res := <-done:
		return res.out, res.err, false
	case <-time.After(abandonGrace):
	}
	p.mu.Lock()
	if t.GPU >= 0 {
		p.abandonedGPU++
	} else {
		p.abandonedCPU++
	}
	p.mu.Unlock()
	p.n.log.Error("runner ignored cancellation; run abandoned, slot kept out of use", "task", t.ID, "attempt", t.Attempt, "gpu", t.GPU)
	go func() { // the slot comes back if the runner ever returns
		<-done
		p.mu.Lock()
		if t.GPU >= 0 {
			p.abandonedGPU--
		} else {
			p.abandonedCPU--
		}
		p.mu.Unlock()
		p.n.log.Info("abandoned run returned; slot back in use", "task", t.ID)
	}()
	return Outcome{}, ctx.Err(), true
}

// Abandoned returns the runs given up on that have not returned since.
func (p *workerPool) Abandoned() (cpu, gpu int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.abandonedCPU, p.abandonedGPU
}

// deadline is when a task's time budget ends: --task-timeout from its
// first placement, across attempts, so a document that keeps losing its
// node (or its parser) cannot start its budget again each time.
func (p *workerPool) deadline(t fsm.Task) time.Time {
	if t.FirstStart > 0 {
		return time.Unix(0, t.FirstStart).Add(p.n.cfg.TaskTimeout)
	}
	return time.Now().Add(p.n.cfg.TaskTimeout)
}

func (p *workerPool) timeoutMessage(t fsm.Task) string {
	msg := fmt.Sprintf("task timed out after %s", p.n.cfg.TaskTimeout)
	if t.Attempt > 1 && t.FirstStart > 0 {
		msg += fmt.Sprintf(" (its budget counts from its first start, across %d attempts)", t.Attempt)
	}
	return msg
}

func failKind(err error) string {
	switch {
	case IsPermanent(err):
		return "permanent"
	case IsRunnerLost(err):
		return "lost"
	}
	return "error"
}

// startReportDelay is how long a run goes before it is reported running.
const startReportDelay = 100 * time.Millisecond

// safeRun turns a runner panic into a task failure: one bad file must never
// take the node down.
func safeRun(ctx context.Context, r Runner, job Job) (out Outcome, err error) {
	defer func() {
		if v := recover(); v != nil {
			err = Permanent(fmt.Errorf("runner panic: %v", v))
		}
	}()
	return r.Run(ctx, job)
}

// report sends a ledger update. Final reports wait (retrying across leader
// changes); progress is fire-and-forget.
func (p *workerPool) report(c fsm.Command, wait bool) {
	send := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := p.n.prop.Propose(ctx, c)
		if err != nil {
			p.n.log.Warn("report to leader failed", "type", c.Type, "task", c.TaskID, "error", err)
			return
		}
		if res.Err != "" {
			p.n.log.Debug("report rejected", "type", c.Type, "task", c.TaskID, "reason", res.Err)
		}
	}
	if wait {
		send()
		return
	}
	go send()
}

func (p *workerPool) stopAll() {
	p.mu.Lock()
	p.stopped = true
	for _, r := range p.running {
		r.cancel()
	}
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(stopGrace + abandonGrace):
		// Only an abandoned runner can still be here; the process exits
		// without it.
		p.n.log.Warn("shutdown: runs still executing after the grace; leaving them")
	}
	for _, s := range idle {
		_ = s.r.Close()
	}
}

// readFile fetches a task's bytes: shared path, or the verified blob (local
// or a holder's).
func (n *Node) readFile(ctx context.Context, t fsm.Task) ([]byte, error) {
	if t.File.SharedPath != "" {
		return n.readShared(ctx, t.File.SharedPath, t.File.Name)
	}
	return n.readBlob(ctx, t.File.Hash) // blobverify.go
}

// releaseMemory hands freed heap back to the OS after a failed task, at
// most every memoryReleaseGap: a document that failed on a cap (a zip bomb,
// a huge table) leaves its high-water mark in the Go heap, and a node's
// resident size should come back down rather than stay at its worst.
func (p *workerPool) releaseMemory() {
	now := time.Now().UnixNano()
	last := p.lastRelease.Load()
	if now-last < int64(memoryReleaseGap) || !p.lastRelease.CompareAndSwap(last, now) {
		return
	}
	go debug.FreeOSMemory()
}

const memoryReleaseGap = 10 * time.Second
