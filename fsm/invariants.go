package fsm

import (
	"fmt"
	"sort"

	"github.com/ragnode/ragnode/gpu"
)

// CheckInvariants verifies the ledger's safety rules. It is cheap enough
// (linear in tasks) to run after every Apply in tests and debug builds.
//
//   - the milli-GPUs on a GPU never exceed gpu.MilliPerGPU, and its allocated
//     bytes never exceed its usable memory;
//   - a node's CPU-slot tasks never exceed its CPU slots;
//   - every assigned or running task holds exactly one allocation, which
//     matches the task's own record, and no other task holds one;
//   - a queued or terminal task holds nothing;
//   - no task is on a node that is not registered;
//   - the derived indexes agree with a recount from scratch (the
//     unclaimed-callback index too, callback.go);
//   - every partition record is keyed by its own non-empty name;
//   - the event history is bounded and its sequence numbers increase;
//   - a prefetched task holds nothing (no allocation, no milli-GPUs, no
//     bytes), waits on a registered node that is not draining, and the
//     per-node prefetch index agrees with the tasks (prefetch.go).
//   - every failure and every node loss a task counts ended one of its
//     attempts: a live task counts at most Attempt-1 of them together
//     (each was followed by a requeue), a finished one at most Attempt;
//     so the quarantine's count can never run ahead of the runs it saw.
//
// Together with running after every Apply, the first and the allocation
// rules say: no GPU is over its capacity at any applied index, and each
// started task holds exactly one allocation (Allocs is keyed by task).
func (s *State) CheckInvariants() error {
	if err := s.checkEvents(); err != nil {
		return err
	}
	type use struct {
		milli int
		mem   uint64
	}
	gpus := map[gpuKey]use{}
	cpu := map[string]int{}
	active := map[string]int{}
	queued, prefetched := 0, 0
	var queuedBytes int64
	for id, a := range s.Allocs {
		t := s.Tasks[id]
		if t == nil {
			return fmt.Errorf("allocation held by unknown task %s", id)
		}
		if !t.State.Active() {
			return fmt.Errorf("task %s is %s but holds an allocation", id, t.State)
		}
		if t.NodeID != a.NodeID || t.GPU != a.GPU || t.Milli != a.Milli || t.MemBytes != a.MemBytes {
			return fmt.Errorf("task %s record %s/%d/%d differs from its allocation %+v", id, t.NodeID, t.GPU, t.Milli, a)
		}
		n := s.Nodes[a.NodeID]
		if n == nil {
			return fmt.Errorf("task %s is on unregistered node %s", id, a.NodeID)
		}
		if a.GPU >= 0 {
			if a.GPU >= len(n.GPUs) {
				return fmt.Errorf("task %s is on missing GPU %d of node %s", id, a.GPU, n.ID)
			}
			k := gpuKey{a.NodeID, a.GPU}
			u := gpus[k]
			u.milli += a.Milli
			u.mem += a.MemBytes
			gpus[k] = u
		} else {
			cpu[a.NodeID]++
		}
		active[a.NodeID]++
	}
	for id, t := range s.Tasks {
		if t.ID != id {
			return fmt.Errorf("task keyed %s has id %s", id, t.ID)
		}
		if err := checkAttemptCounts(t); err != nil {
			return err
		}
		_, has := s.Allocs[id]
		if t.State.Active() && !has {
			return fmt.Errorf("task %s is %s without an allocation", id, t.State)
		}
		if t.State == Prefetched {
			if err := s.checkPrefetched(t); err != nil {
				return err
			}
			prefetched++
		} else if !t.State.Active() && (t.NodeID != "" || t.Milli != 0) {
			return fmt.Errorf("task %s is %s but still names node %q", id, t.State, t.NodeID)
		}
		inQ := s.queue.has(id)
		if (t.State == Queued) != inQ {
			return fmt.Errorf("queue index disagrees for task %s (%s)", id, t.State)
		}
		if t.State == Queued {
			queued++
			queuedBytes += t.File.Size
		}
	}
	indexed := 0
	for n, m := range s.prefetched {
		for id := range m {
			if t := s.Tasks[id]; t == nil || t.State != Prefetched || t.NodeID != n {
				return fmt.Errorf("prefetch index of node %s holds task %s, which is not prefetched there", n, id)
			}
		}
		indexed += len(m)
	}
	if indexed != prefetched {
		return fmt.Errorf("prefetch index holds %d tasks, %d are prefetched", indexed, prefetched)
	}
	if queued != s.queue.len() {
		return fmt.Errorf("queue index holds %d tasks, %d are queued", s.queue.len(), queued)
	}
	if queuedBytes != s.queue.bytes {
		return fmt.Errorf("queue index counts %d bytes, queued tasks hold %d", s.queue.bytes, queuedBytes)
	}
	for p, l := range s.queue.byPart {
		for i, e := range l {
			t := s.Tasks[e.id]
			if t == nil || t.Partition != p || t.Seq != e.seq || (i > 0 && l[i-1].seq >= e.seq) {
				return fmt.Errorf("queue index of partition %q out of order or stale at %d", p, i)
			}
		}
	}
	keys := make([]gpuKey, 0, len(gpus))
	for k := range gpus {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].node != keys[j].node {
			return keys[i].node < keys[j].node
		}
		return keys[i].gpu < keys[j].gpu
	})
	for _, k := range keys {
		u := gpus[k]
		if u.milli > gpu.MilliPerGPU {
			return fmt.Errorf("GPU %d of node %s over-allocated: %d milli", k.gpu, k.node, u.milli)
		}
		if u.mem > 0 && u.mem > usableMem(s.Nodes[k.node], k.gpu) {
			return fmt.Errorf("GPU %d of node %s over-allocated: %d bytes", k.gpu, k.node, u.mem)
		}
		if got := s.usage[k]; got.milli != u.milli || got.mem != u.mem {
			return fmt.Errorf("usage index of GPU %d on %s is %+v, recount %+v", k.gpu, k.node, got, u)
		}
	}
	for k, u := range s.usage {
		if _, ok := gpus[k]; !ok && (u.milli != 0 || u.mem != 0) {
			return fmt.Errorf("usage index has phantom use on GPU %d of %s", k.gpu, k.node)
		}
	}
	for n, c := range cpu {
		if c > s.Nodes[n].CPUSlots {
			return fmt.Errorf("node %s runs %d CPU tasks on %d slots", n, c, s.Nodes[n].CPUSlots)
		}
		if s.cpuUsed[n] != c {
			return fmt.Errorf("cpu index of %s is %d, recount %d", n, s.cpuUsed[n], c)
		}
	}
	for n, c := range active {
		if s.active[n] != c {
			return fmt.Errorf("active index of %s is %d, recount %d", n, s.active[n], c)
		}
		if len(s.byNode[n]) != c {
			return fmt.Errorf("per-node index of %s holds %d, recount %d", n, len(s.byNode[n]), c)
		}
	}
	if err := s.checkTokenInvariants(); err != nil {
		return err
	}
	if err := s.checkCallbacks(); err != nil {
		return err
	}
	return s.checkPartitions()
}

// checkPrefetched holds a prefetched task to "holds nothing, waits on an
// eligible-at-placement node".
func (s *State) checkPrefetched(t *Task) error {
	if _, has := s.Allocs[t.ID]; has || t.Milli != 0 || t.MemBytes != 0 {
		return fmt.Errorf("prefetched task %s holds an allocation (%d milli, %d bytes)", t.ID, t.Milli, t.MemBytes)
	}
	n := s.Nodes[t.NodeID]
	if n == nil {
		return fmt.Errorf("prefetched task %s waits on unregistered node %q", t.ID, t.NodeID)
	}
	if n.Draining {
		return fmt.Errorf("prefetched task %s waits on draining node %s", t.ID, n.ID)
	}
	if _, ok := s.prefetched[t.NodeID][t.ID]; !ok {
		return fmt.Errorf("prefetched task %s is missing from node %s's prefetch index", t.ID, t.NodeID)
	}
	return nil
}

// checkAttemptCounts holds a task's failure and node-loss counts to the
// attempts they ended.
func checkAttemptCounts(t *Task) error {
	if t.Failures < 0 || t.NodeLosses < 0 {
		return fmt.Errorf("task %s has negative counts (%d failures, %d node losses)", t.ID, t.Failures, t.NodeLosses)
	}
	ended := t.Attempt - 1
	if t.State.Terminal() {
		ended = t.Attempt
	}
	if t.Failures+t.NodeLosses > ended {
		return fmt.Errorf("task %s (%s) counts %d failures and %d node losses in %d attempts", t.ID, t.State, t.Failures, t.NodeLosses, t.Attempt)
	}
	return nil
}
