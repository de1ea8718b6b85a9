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
// and on a timer, appending each pass's assignments as one command.
func (n *Node) scheduleLoop(ctx context.Context) {
	n.watchLedger(ctx.Done(), 500*time.Millisecond, func() {
		as := n.schedulePass()
		if len(as) == 0 {
			// Nothing placeable: let a few applies accumulate before looking
			// again. Under load the ledger applies hundreds of commands a
			// second and chained slots already refill themselves; a pass per
			// apply would spend the leader's CPU rebuilding the same answer.
			pause(ctx.Done(), schedIdleGap)
			return
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := n.prop.Propose(cctx, fsm.Command{Type: fsm.CmdAssignTasks, Assignments: as})
		cancel()
		if err != nil {
			n.log.Warn("propose assignments", "error", err)
		}
	})
}

// schedIdleGap is the pause after a pass that placed nothing.
const schedIdleGap = 5 * time.Millisecond

// schedulePass builds the scheduler's input from the ledger and runs it.
func (n *Node) schedulePass() []fsm.Assignment {
	var in scheduler.Input
	attempts := map[string]int{}
	n.fsm.View(func(s *fsm.State) {
		if s.QueuedCount() == 0 {
			return
		}
		in = SchedulerInput(s, n.cfg.PoolSize, n.cfg.Placement)
		for _, t := range in.Queued {
			attempts[t.ID] = s.Tasks[t.ID].Attempt
		}
	})
	if len(in.Queued) == 0 {
		return nil
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
	for _, a := range out {
		as = append(as, fsm.Assignment{TaskID: a.TaskID, Attempt: attempts[a.TaskID], NodeID: a.NodeID, GPU: a.GPU, Milli: a.Milli, MemBytes: a.MemBytes})
	}
	return as
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
