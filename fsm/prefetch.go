package fsm

import (
	"sort"

	"github.com/ragnode/ragnode/scheduler"
)

// Prefetch: besides the tasks it runs, a node may hold a short queue of next
// tasks the leader placed on it (CmdPrefetchTasks). A prefetched task holds
// no GPU share and no CPU slot: it names its node and nothing else. When a
// run on that node ends, the report that ends it (CmdCompleteTask or
// CmdFailTask with Next) starts one prefetched task in the allocation just
// freed, in the same Apply, so the slot passes from A to B without a second
// Raft round trip and without ever being counted twice: A's allocation is
// dropped before B's is taken, and B's goes through assignOne's fit test.
//
// Guarantees (checked by CheckInvariants):
//   - a prefetched task holds no allocation, no milli-GPUs, no bytes;
//   - it sits on a registered node that is not draining, and the
//     per-node index agrees with the tasks;
//   - it is fenced like an assigned task: a start names its attempt, and a
//     requeue (node failure and release, drain, leave, CmdRequeueTasks)
//     raises the attempt, so a node acting on an old prefetch is refused.

// Prefetched is a task placed in a node's prefetch queue: it will start
// there when a slot frees, and holds nothing until then.
const Prefetched TaskState = "prefetched"

// TaskStates is every state a task can be in, in lifecycle order: what a
// per-state count iterates so its parts sum to the whole.
var TaskStates = []TaskState{Queued, Prefetched, Assigned, Running, Completed, Failed, Cancelled}

// CmdPrefetchTasks puts queued tasks into nodes' prefetch queues.
// Assignments name task, attempt and node (GPU fields are ignored: nothing
// is reserved); Limit is the per-node bound the leader plans for, enforced
// here so a replayed or duplicated plan cannot overfill a queue.
const CmdPrefetchTasks CmdType = "prefetch_tasks"

// PrefetchedOn lists the tasks prefetched to a node, oldest submission first:
// the order the node starts them in.
func (s *State) PrefetchedOn(nodeID string) []*Task {
	m := s.prefetched[nodeID]
	out := make([]*Task, 0, len(m))
	for id := range m {
		out = append(out, s.Tasks[id])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// PrefetchedCount is the number of tasks prefetched to a node.
func (s *State) PrefetchedCount(nodeID string) int { return len(s.prefetched[nodeID]) }

// PrefetchedTotal is the number of prefetched tasks in the cluster.
func (s *State) PrefetchedTotal() int {
	k := 0
	for _, m := range s.prefetched {
		k += len(m)
	}
	return k
}

// Waiting is what admission control counts as not yet started: queued
// and prefetched tasks, their file bytes, and those of one partition.
func (s *State) Waiting(partition string) (tasks int, bytes int64, inPartition int) {
	tasks, bytes, inPartition = s.QueuedCount(), s.QueuedBytes(), s.QueuedIn(partition)
	for _, m := range s.prefetched {
		for id := range m {
			t := s.Tasks[id]
			tasks++
			bytes += t.File.Size
			if t.Partition == partition {
				inPartition++
			}
		}
	}
	return tasks, bytes, inPartition
}

func (s *State) addPrefetched(t *Task) {
	m := s.prefetched[t.NodeID]
	if m == nil {
		m = map[string]struct{}{}
		s.prefetched[t.NodeID] = m
	}
	m[t.ID] = struct{}{}
}

// unprefetch drops t from its node's prefetch index; t's state is the
// caller's to change.
func (s *State) unprefetch(t *Task) {
	if m := s.prefetched[t.NodeID]; m != nil {
		delete(m, t.ID)
		if len(m) == 0 {
			delete(s.prefetched, t.NodeID)
		}
	}
}

func (s *State) prefetch(c Command) Result {
	if c.Limit <= 0 {
		return rejectf(CodeInvalid, "prefetch_tasks without a per-node limit")
	}
	res := Result{Batch: make([]Result, len(c.Assignments))}
	for i, a := range c.Assignments {
		res.Batch[i] = s.prefetchOne(a, c.Limit, c.Now)
	}
	return res
}

func (s *State) prefetchOne(a Assignment, limit int, now int64) Result {
	t := s.Tasks[a.TaskID]
	if t == nil {
		return reject(ErrUnknownTask, a.TaskID)
	}
	if t.State != Queued || t.Attempt != a.Attempt {
		return rejectf(CodeStaleAttempt, "%s: task %s is %s at attempt %d", ErrStaleAttempt, t.ID, t.State, t.Attempt)
	}
	n := s.Nodes[a.NodeID]
	if n == nil {
		return reject(ErrUnknownNode, a.NodeID)
	}
	if n.Status != NodeAlive || n.Draining {
		return rejectf(CodeNoCapacity, "node %s is not eligible (%s, draining=%v)", n.ID, n.Status, n.Draining)
	}
	if len(s.prefetched[n.ID]) >= limit {
		return rejectf(CodeNoCapacity, "node %s already holds %d prefetched tasks", n.ID, limit)
	}
	s.queue.remove(t.ID)
	t.State = Prefetched
	t.Stage = ""
	t.NodeID, t.GPU, t.Milli, t.MemBytes = n.ID, 0, 0, 0
	t.LastNode = n.ID
	t.PrefetchedAt = now
	s.addPrefetched(t)
	s.syncFile(t, now)
	return Result{}
}

// startNext starts the prefetched task ref in the allocation freed just
// now, and returns its ID, or "" when it cannot take that slot (not
// prefetched to this node at that attempt, another kind of slot, or it does
// not fit): it then stays prefetched and the caller may chain instead.
func (s *State) startNext(freed Alloc, ref TaskRef, now int64) string {
	t := s.Tasks[ref.ID]
	if t == nil || t.State != Prefetched || t.Attempt != ref.Attempt || t.NodeID != freed.NodeID {
		return ""
	}
	n := s.Nodes[freed.NodeID]
	if n == nil || freed.GPU >= len(n.GPUs) {
		return ""
	}
	a := Assignment{TaskID: t.ID, Attempt: t.Attempt, NodeID: n.ID, GPU: freed.GPU}
	if freed.GPU >= 0 {
		if !scheduler.WantsGPU(t.ReqMilli, t.ReqMem) {
			return ""
		}
		a.Milli = scheduler.Need(t.ReqMilli, t.ReqMem, n.GPUs[freed.GPU].MemTotal)
		a.MemBytes = t.ReqMem
	} else if scheduler.UsesGPU(t.ReqMilli, t.ReqMem, len(n.GPUs)) {
		return ""
	}
	if r := s.assignOne(a, now); r.Rejected() {
		return ""
	}
	// The node started it before reporting: it is running, not waiting.
	t.State = Running
	t.Stage = StageLoading
	t.Started = now
	s.syncFile(t, now)
	return t.ID
}

// requeuePrefetched sends a node's prefetched tasks back to the queue (it
// drains, or it is gone), raising their attempts so the node cannot start
// them any more.
func (s *State) requeuePrefetched(nodeID, reason string, now int64) int {
	ts := s.PrefetchedOn(nodeID)
	for _, t := range ts {
		t.Error = reason
		s.requeue(t, now)
	}
	return len(ts)
}

// topUp refills a node's prefetch queue to limit from the heads of the
// queue, in the same Apply as the handoff that consumed one of its tasks:
// without it every handoff would cost the leader a second Raft entry to
// refill the queue. Partitions take turns from ChainCursor, as in
// chainNext, and only tasks the node could run on an empty slot are taken.
func (s *State) topUp(nodeID string, limit int, now int64) {
	n := s.Nodes[nodeID]
	if n == nil || limit <= 0 || n.Status != NodeAlive || n.Draining {
		return
	}
	sn := scheduler.Node{ID: n.ID, CPUSlots: n.CPUSlots}
	for i, g := range n.GPUs {
		sn.GPUs = append(sn.GPUs, scheduler.GPU{Index: i, MemTotal: g.MemTotal, MemReserve: n.GPUReserve})
	}
	for len(s.prefetched[nodeID]) < limit {
		parts := make([]string, 0, len(s.queue.byPart))
		for p := range s.queue.byPart {
			parts = append(parts, p)
		}
		if len(parts) == 0 {
			return
		}
		sort.Strings(parts)
		start := sort.SearchStrings(parts, s.ChainCursor)
		if start < len(parts) && parts[start] == s.ChainCursor {
			start++
		}
		took := false
		for i := 0; i < len(parts) && !took; i++ {
			p := parts[(start+i)%len(parts)]
			head := s.Tasks[s.queue.byPart[p][0].id]
			if !scheduler.CouldRun(&sn, head.ReqMilli, head.ReqMem) {
				continue
			}
			if r := s.prefetchOne(Assignment{TaskID: head.ID, Attempt: head.Attempt, NodeID: nodeID}, limit, now); !r.Rejected() {
				s.ChainCursor = p
				took = true
			}
		}
		if !took {
			return
		}
	}
}
