package node

import (
	"context"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/scheduler"
)

// scheduleLoop places queued tasks whenever the state changes (coalesced)
// and on a timer, appending each pass's assignments and prefetches as one
// entry.
func (n *Node) scheduleLoop(ctx context.Context) {
	n.watchLedger(ctx.Done(), 500*time.Millisecond, func() {
		as, pre, steal := n.schedulePass()
		if len(as) == 0 && len(pre) == 0 && len(steal) == 0 {
			// Nothing placeable: let a few applies accumulate before looking
			// again. Under load the ledger applies hundreds of commands a
			// second and chained slots already refill themselves; a pass per
			// apply would spend the leader's CPU rebuilding the same answer.
			pause(ctx.Done(), schedIdleGap)
			return
		}
		var cmds []fsm.Command
		if len(as) > 0 {
			cmds = append(cmds, fsm.Command{Type: fsm.CmdAssignTasks, Assignments: as})
		}
		if len(pre) > 0 {
			cmds = append(cmds, fsm.Command{Type: fsm.CmdPrefetchTasks, Assignments: pre, Limit: n.cfg.leaderPrefetch()})
		}
		if len(steal) > 0 {
			cmds = append(cmds, fsm.Command{Type: fsm.CmdRequeueTasks, Refs: steal, Error: "prefetched elsewhere; moved to an idle node"})
		}
		c := cmds[0]
		if len(cmds) > 1 {
			c = fsm.Command{Type: fsm.CmdBatch, Batch: cmds}
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := n.prop.Propose(cctx, c)
		cancel()
		if err != nil {
			n.log.Warn("propose assignments", "error", err)
		}
	})
}

// schedIdleGap is the pause after a pass that placed nothing.
const schedIdleGap = 5 * time.Millisecond

// schedulePass builds the scheduler's input from the ledger and runs it:
// first prefetched tasks on nodes with a free slot are started there
// (promotions), then queued tasks are placed, then what is left fills the
// nodes' prefetch queues (prefetch.go of fsm and scheduler). With nothing
// queued, prefetched tasks that a busy node holds and an idle node could
// run now are sent back to the queue (steal), so a node stuck behind long
// runs does not keep work another node is free for.
func (n *Node) schedulePass() ([]fsm.Assignment, []fsm.Assignment, []fsm.TaskRef) {
	var in scheduler.Input
	var promote []fsm.Assignment
	var steal []fsm.TaskRef
	var held map[string]int
	var heads []*fsm.Task
	attempts := map[string]int{}
	depth := n.cfg.leaderPrefetch()
	n.fsm.View(func(s *fsm.State) {
		if s.QueuedCount() == 0 && s.PrefetchedTotal() == 0 {
			return
		}
		in = SchedulerInput(s, n.cfg.PoolSize, n.cfg.Placement)
		promote = prefetchPromotions(s, in)
		if len(promote) == 0 && s.QueuedCount() == 0 {
			steal = prefetchSteals(s, in, time.Now().Add(-stealAfter).UnixNano())
		}
		if len(promote) > 0 || s.QueuedCount() == 0 {
			return
		}
		for _, t := range in.Queued {
			attempts[t.ID] = s.Tasks[t.ID].Attempt
		}
		room := false
		for _, nd := range in.Nodes {
			room = room || depth > 0 && nd.Eligible && s.PrefetchedCount(nd.ID) < depth
		}
		if room {
			held = map[string]int{}
			for _, nd := range in.Nodes {
				held[nd.ID] = s.PrefetchedCount(nd.ID)
			}
			if len(in.Queued) == 0 { // no room to place: the queue is still wanted
				// No pass prefetches more than depth per node; reading no
				// further keeps the pass (once per handoff) cheap.
				heads = s.QueuedHeads(min(schedWindow, depth*len(in.Nodes)))
				for _, t := range heads {
					attempts[t.ID] = t.Attempt
				}
			}
		}
	})
	if len(promote) > 0 || len(steal) > 0 {
		// The next pass sees the promoted tasks' slots taken, and the
		// stolen tasks queued.
		return promote, nil, steal
	}
	if len(in.Queued) == 0 && len(heads) == 0 {
		return nil, nil, nil
	}
	// Gossip takes seconds to declare a node failed on a LAN; the leader
	// knows sooner (autopilot cannot reach it), so new work avoids it now.
	if ap := n.apState.Load(); ap != nil {
		for i := range in.Nodes {
			if ss, ok := ap.Servers[raft.ServerID(in.Nodes[i].ID)]; ok && !ss.Health.Healthy && in.Nodes[i].ID != n.id {
				in.Nodes[i].Eligible = false
			}
		}
	}
	out := scheduler.Schedule(in)
	as := make([]fsm.Assignment, 0, len(out))
	placed := make(map[string]bool, len(out))
	for _, a := range out {
		as = append(as, fsm.Assignment{TaskID: a.TaskID, Attempt: attempts[a.TaskID], NodeID: a.NodeID, GPU: a.GPU, Milli: a.Milli, MemBytes: a.MemBytes})
		placed[a.TaskID] = true
	}
	if held == nil {
		return as, nil, nil
	}
	pin := scheduler.PrefetchInput{Depth: depth}
	for _, nd := range in.Nodes {
		pin.Nodes = append(pin.Nodes, scheduler.PrefetchNode{Node: nd, Held: held[nd.ID]})
	}
	for _, t := range in.Queued {
		if !placed[t.ID] {
			pin.Queued = append(pin.Queued, t)
		}
	}
	for _, t := range heads {
		pin.Queued = append(pin.Queued, scheduler.Task{ID: t.ID, Partition: t.Partition, Seq: t.Seq, Milli: t.ReqMilli, MemBytes: t.ReqMem})
	}
	var pre []fsm.Assignment
	for _, p := range scheduler.Prefetch(pin) {
		pre = append(pre, fsm.Assignment{TaskID: p.TaskID, Attempt: attempts[p.TaskID], NodeID: p.NodeID})
	}
	return as, pre, nil
}

// stealAfter is how long a prefetched task waits on a busy node before the
// leader may move it to one with a free slot. Shorter waits are the normal
// end of a burst (the busy node gets to it in a task's time); moving them
// would only cost a requeue and an attempt each.
const stealAfter = 5 * time.Second

// prefetchSteals picks prefetched tasks, waiting since before cutoff, to
// send back to the queue because a node other than theirs has a slot for
// them now (the scheduler's own placement decides, over those tasks,
// oldest first). Their nodes had no slot (else promotion would have
// started them there). The requeue raises their attempts, so their old
// node cannot start them.
func prefetchSteals(s *fsm.State, in scheduler.Input, cutoff int64) []fsm.TaskRef {
	if s.PrefetchedTotal() == 0 || !scheduler.AnyRoom(in) {
		return nil
	}
	owner := map[string]string{}
	q := in
	q.Queued = nil
	for _, nd := range in.Nodes {
		for _, t := range s.PrefetchedOn(nd.ID) {
			if t.PrefetchedAt > cutoff {
				continue
			}
			owner[t.ID] = nd.ID
			q.Queued = append(q.Queued, scheduler.Task{ID: t.ID, Partition: t.Partition, Seq: t.Seq, Milli: t.ReqMilli, MemBytes: t.ReqMem})
		}
	}
	var out []fsm.TaskRef
	for _, a := range scheduler.Schedule(q) {
		if a.NodeID != owner[a.TaskID] {
			out = append(out, fsm.TaskRef{ID: a.TaskID, Attempt: s.Tasks[a.TaskID].Attempt})
		}
	}
	return out
}

// prefetchPromotions starts prefetched tasks on nodes that have a free slot for
// them: a slot freed without a handoff (a cancel, a requeue, a handoff the
// ledger refused) must not idle while its node holds waiting work. Each
// node's prefetched tasks go through the scheduler restricted to that node,
// with the pool cap counted across nodes.
func prefetchPromotions(s *fsm.State, in scheduler.Input) []fsm.Assignment {
	var out []fsm.Assignment
	running := in.Running
	for _, nd := range in.Nodes {
		pts := s.PrefetchedOn(nd.ID)
		if len(pts) == 0 {
			continue
		}
		one := scheduler.Input{Nodes: []scheduler.Node{nd}, Running: running, PoolSize: in.PoolSize, Policy: in.Policy}
		if !scheduler.AnyRoom(one) {
			continue
		}
		for _, t := range pts {
			one.Queued = append(one.Queued, scheduler.Task{ID: t.ID, Partition: t.Partition, Seq: t.Seq, Milli: t.ReqMilli, MemBytes: t.ReqMem})
		}
		for _, a := range scheduler.Schedule(one) {
			out = append(out, fsm.Assignment{TaskID: a.TaskID, Attempt: s.Tasks[a.TaskID].Attempt, NodeID: a.NodeID, GPU: a.GPU, Milli: a.Milli, MemBytes: a.MemBytes})
			running++
		}
	}
	return out
}

// SchedulerInput converts ledger state into the scheduler's pure input.
func SchedulerInput(s *fsm.State, poolSize int, policy scheduler.Policy) scheduler.Input {
	in := scheduler.Input{Running: s.ActiveTotal(), PoolSize: poolSize, Policy: policy}
	ids := make([]string, 0, len(s.Nodes))
	for id := range s.Nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		nd := s.Nodes[id]
		sn := scheduler.Node{
			ID:            id,
			Eligible:      nd.Status == fsm.NodeAlive && !nd.Draining,
			CPUSlots:      nd.CPUSlots,
			CPUUsed:       s.CPUUsed(id),
			Running:       s.ActiveOn(id),
			MaxConcurrent: nd.MaxConcurrent,
		}
		for i, g := range nd.GPUs {
			milli, mem := s.GPUUsage(id, i)
			sn.GPUs = append(sn.GPUs, scheduler.GPU{Index: i, MilliUsed: milli, MemTotal: g.MemTotal, MemReserve: nd.GPUReserve, MemUsed: mem})
		}
		in.Nodes = append(in.Nodes, sn)
	}
	if !scheduler.AnyRoom(in) {
		return in
	}
	for _, t := range s.QueuedHeads(schedWindow) {
		in.Queued = append(in.Queued, scheduler.Task{ID: t.ID, Partition: t.Partition, Seq: t.Seq, Milli: t.ReqMilli, MemBytes: t.ReqMem})
	}
	return in
}

// schedWindow bounds how deep into each partition's queue a pass looks: no
// pass can place more tasks than there are slots, and reading 512 heads
// instead of the whole queue keeps a pass cheap while Apply waits.
const schedWindow = 512

// DefaultPrefetch is the default of --prefetch: the most tasks each node
// holds beyond the ones it runs. See BENCHMARKS.md (scheduling) for the
// measurement it comes from. The leader's passes queue prefetchBase per
// node; a node asks for more in its handoff reports only while its tasks
// are short against its report round trip (workerPool.prefetchLimit), so
// long tasks are not pinned to a node in numbers.
const DefaultPrefetch = 16

// prefetchBase is the per-node queue the leader's passes fill (at most
// the --prefetch bound).
const prefetchBase = 2

// leaderPrefetch is the per-node queue the leader's passes fill.
func (c *Config) leaderPrefetch() int { return min(c.prefetchDepth(), prefetchBase) }

// prefetchDepth is the per-node prefetch bound in force: Config.Prefetch,
// 0 meaning the default and a negative value none.
func (c *Config) prefetchDepth() int {
	switch {
	case c.Prefetch < 0:
		return 0
	case c.Prefetch == 0:
		return DefaultPrefetch
	}
	return c.Prefetch
}
