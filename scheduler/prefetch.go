package scheduler

// Prefetch plans which queued tasks wait in which node's prefetch queue.
// A prefetched task holds no capacity (the ledger gives it its node's slot
// only when a run there ends), so this is not placement: it only decides
// who runs next where, so that a node never waits a Raft round trip between
// two tasks. Guarantees, like Schedule's: a pure function of the input (any
// slice order gives the same plan); each node ends with at most Depth
// prefetched tasks; only eligible nodes get any; a task goes only to a node
// that could run it on an empty slot (a card large enough, or a CPU slot);
// tasks are taken FIFO within a partition and round-robin across
// partitions, and nodes are filled one task per round, so a short queue is
// shared out rather than given to the first node.

// PrefetchNode is one node's prefetch queue as the leader sees it.
type PrefetchNode struct {
	Node
	// Held is the number of tasks already prefetched to the node.
	Held int
}

// PrefetchInput is everything one prefetch pass looks at.
type PrefetchInput struct {
	Nodes  []PrefetchNode
	Queued []Task // any order; tasks the placement pass just placed excluded
	Depth  int    // per-node bound; <= 0 plans nothing
}

// PrefetchAssignment puts one task in a node's prefetch queue.
type PrefetchAssignment struct {
	TaskID, NodeID string
}

// Prefetch returns the tasks to prefetch, in the order decided.
func Prefetch(in PrefetchInput) []PrefetchAssignment {
	if in.Depth <= 0 || len(in.Queued) == 0 {
		return nil
	}
	nodes := make([]PrefetchNode, 0, len(in.Nodes))
	for _, n := range in.Nodes {
		if n.Eligible && n.Held < in.Depth {
			nodes = append(nodes, n)
		}
	}
	sortPrefetchNodes(nodes)
	parts := partitionsOf(in.Queued)
	var out []PrefetchAssignment
	taken := map[string]bool{}
	// Each round offers every node with room one task: the next task, in
	// fair order, that it could run.
	for {
		progress := false
		for i := range nodes {
			n := &nodes[i]
			if n.Held >= in.Depth {
				continue
			}
			t := nextFor(parts, taken, &n.Node)
			if t == nil {
				continue
			}
			taken[t.ID] = true
			n.Held++
			out = append(out, PrefetchAssignment{TaskID: t.ID, NodeID: n.ID})
			progress = true
		}
		if !progress {
			return out
		}
	}
}

// nextFor takes the oldest untaken task that n could run, going round the
// partitions from where the last take left off.
func nextFor(parts []*partition, taken map[string]bool, n *Node) *Task {
	for k := 0; k < len(parts); k++ {
		p := parts[0]
		// Rotate: the partition asked now goes to the back, whatever it gives.
		copy(parts, parts[1:])
		parts[len(parts)-1] = p
		for p.next < len(p.tasks) && taken[p.tasks[p.next].ID] {
			p.next++
		}
		for i := p.next; i < len(p.tasks); i++ {
			t := p.tasks[i]
			if taken[t.ID] || !CouldRun(n, t.Milli, t.MemBytes) {
				continue
			}
			if i == p.next {
				p.next++
			}
			return t
		}
	}
	return nil
}

// CouldRun reports whether a request fits n when n runs nothing: a card of
// enough memory for a GPU request (on a node with cards), else a CPU slot.
func CouldRun(n *Node, milli int, mem uint64) bool {
	if !UsesGPU(milli, mem, len(n.GPUs)) {
		return n.CPUSlots > 0
	}
	for _, g := range n.GPUs {
		empty := GPU{Index: g.Index, MemTotal: g.MemTotal, MemReserve: g.MemReserve}
		if FitsGPU(milli, mem, empty) {
			return true
		}
	}
	return false
}

func sortPrefetchNodes(ns []PrefetchNode) {
	// Fewest held first, then by ID: a node that ran dry is refilled first.
	for i := 1; i < len(ns); i++ {
		for j := i; j > 0 && less(ns[j], ns[j-1]); j-- {
			ns[j], ns[j-1] = ns[j-1], ns[j]
		}
	}
}

func less(a, b PrefetchNode) bool {
	if a.Held != b.Held {
		return a.Held < b.Held
	}
	return a.ID < b.ID
}
