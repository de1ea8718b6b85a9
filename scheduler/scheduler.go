// Package scheduler decides placement and nothing else: given a snapshot of
// nodes and queued tasks it returns which task goes to which node, GPU and
// fraction. Its guarantees: the output is a pure function of the Input (the
// same Input, in any slice order, gives the same assignments, so every Raft
// peer and every retry agrees), it never over-allocates a GPU's milli-GPUs
// or usable memory, a node's CPU slots, MaxConcurrent or the cluster's
// PoolSize, it never uses an ineligible node, and it is maximal: a queued
// task is left unassigned only when it fits nowhere after the pass (or the
// pool cap is reached). Queues are FIFO within a partition and round-robin
// across partitions. The placement rule itself (WantsGPU, UsesGPU, Need,
// FitsGPU, AnyRoom) is exported so the FSM and the leader apply the same
// test. It does not import Raft, the FSM or the network; the FSM imports it,
// so it must stay that way.
package scheduler

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/ragnode/ragnode/gpu"
)

// Policy chooses among the nodes a task fits on.
type Policy string

const (
	// Spread puts each task on the least busy node, to spread load and
	// failure impact.
	Spread Policy = "spread"
	// BinPack fills the fullest nodes first, keeping whole nodes (and whole
	// cards) free for large requests and for scale-down.
	BinPack Policy = "binpack"
)

// ParsePolicy accepts "spread" (also the empty string, the default) and
// "binpack" ("bin-pack", "bin_pack"), case-insensitively.
func ParsePolicy(s string) (Policy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "spread":
		return Spread, nil
	case "binpack", "bin-pack", "bin_pack":
		return BinPack, nil
	}
	return "", fmt.Errorf("scheduler: unknown policy %q (want spread or binpack)", s)
}

// GPU is one card's current load on a node.
type GPU struct {
	Index      int
	MilliUsed  int
	MemTotal   uint64 // usable = MemTotal - MemReserve
	MemReserve uint64
	MemUsed    uint64
}

// Node is one node's capacity and load as the leader sees it.
type Node struct {
	ID            string
	Eligible      bool  // alive and not draining; ineligible nodes never get work
	GPUs          []GPU // empty = CPU-only node
	CPUSlots      int   // total CPU slots of the node
	CPUUsed       int   // CPU-slot tasks currently on the node
	Running       int   // all tasks assigned/running on the node
	MaxConcurrent int   // 0 = unlimited
}

// Task is a queued task's request. A task wants a GPU when Milli > 0 or
// MemBytes > 0.
type Task struct {
	ID        string
	Partition string
	Seq       uint64 // submission order
	Milli     int
	MemBytes  uint64
}

// Input is everything one scheduling pass looks at.
type Input struct {
	Nodes    []Node
	Queued   []Task // any order
	Running  int    // cluster-wide assigned+running
	PoolSize int    // 0 = no cap
	Policy   Policy
}

// Assignment places one task. GPU is -1 for a CPU slot, in which case Milli
// and MemBytes are 0 because nothing on a card is reserved.
type Assignment struct {
	TaskID, NodeID string
	GPU            int
	Milli          int
	MemBytes       uint64
}

// node is the scheduler's private, mutable copy of a Node.
type node struct {
	id      string
	gpus    []GPU
	cpuFree int
	running int
	max     int
	// Upper bounds over the cards, kept exact by refresh.
	maxFreeMilli int
	maxFreeMem   uint64
}

func (n *node) capped() bool { return n.max > 0 && n.running >= n.max }

// open reports whether any task at all could still land on n; once false
// it stays false for the rest of the pass because usage only grows.
func (n *node) open() bool {
	if n.capped() {
		return false
	}
	return roomIn(n.cpuFree, n.gpus)
}

// roomIn reports whether a node with cpuFree free CPU slots and these cards
// could take some task: a free slot, or a card not fully allocated.
func roomIn(cpuFree int, gpus []GPU) bool {
	if cpuFree > 0 {
		return true
	}
	for i := range gpus {
		if gpus[i].MilliUsed < gpu.MilliPerGPU {
			return true
		}
	}
	return false
}

// The placement rule. These functions are the one definition of what a
// request takes and where it fits; the FSM applies them when it chains a
// freed slot and when it checks an assignment, so the scheduler's plan, the
// ledger's acceptance and the leader's "is there room" test cannot drift.

// WantsGPU reports whether a request of milli milli-GPUs and mem bytes of
// GPU memory asks for a card at all; otherwise it runs in a CPU slot.
func WantsGPU(milli int, mem uint64) bool { return milli > 0 || mem > 0 }

// UsesGPU reports whether the request takes a card on a node with gpus
// cards rather than a CPU slot: a GPU request on a CPU-only node runs on
// the CPU, but on a GPU node it never takes the CPU slot.
func UsesGPU(milli int, mem uint64, gpus int) bool { return WantsGPU(milli, mem) && gpus > 0 }

// Need is the milli-GPUs the request takes on a card of gpuMemTotal bytes:
// the explicit fraction when there is one, else the memory's share of the
// card (gpu.MilliForMem, rounded up, a whole card if the total is unknown).
// It is 0 for a request that does not want a GPU.
func Need(milli int, mem uint64, gpuMemTotal uint64) int {
	if milli > 0 {
		return milli
	}
	return gpu.MilliForMem(mem, gpuMemTotal)
}

// FitsGPU reports whether the request fits on g right now: its Need within
// the card's free milli-GPUs and, when it asks for memory, its memory within
// the card's usable (MemTotal - MemReserve) memory not yet used.
func FitsGPU(reqMilli int, reqMem uint64, g GPU) bool {
	if Need(reqMilli, reqMem, g.MemTotal) > gpu.MilliPerGPU-g.MilliUsed {
		return false
	}
	if reqMem > 0 {
		if g.MemReserve > g.MemTotal || g.MemUsed > g.MemTotal-g.MemReserve {
			return false
		}
		if reqMem > g.MemTotal-g.MemReserve-g.MemUsed {
			return false
		}
	}
	return true
}

// AnyRoom reports whether some eligible node could take any task at all (a
// free CPU slot or a card not fully allocated, within MaxConcurrent and the
// pool cap). When it is false Schedule assigns nothing, so a caller may skip
// building the queue for a pass.
func AnyRoom(in Input) bool {
	if in.PoolSize > 0 && in.Running >= in.PoolSize {
		return false
	}
	for i := range in.Nodes {
		nd := &in.Nodes[i]
		if !nd.Eligible || (nd.MaxConcurrent > 0 && nd.Running >= nd.MaxConcurrent) {
			continue
		}
		if roomIn(nd.CPUSlots-nd.CPUUsed, nd.GPUs) {
			return true
		}
	}
	return false
}

// scan looks at the cards of n for t. It returns the index into n.gpus of
// the feasible card with the most milli used (ties: lowest card index),
// packing cards so that whole ones stay free for large requests, or -1.
// With limit > 0 it also counts how many more tasks shaped like t the
// cards could take, and gives up (-1) as soon as that count reaches limit,
// because BinPack would then prefer the node it already has.
func scan(t *Task, n *node, limit int) (best, free int) {
	best = -1
	for i := range n.gpus {
		g := &n.gpus[i]
		if !FitsGPU(t.Milli, t.MemBytes, *g) {
			continue
		}
		if best < 0 || g.MilliUsed > n.gpus[best].MilliUsed ||
			(g.MilliUsed == n.gpus[best].MilliUsed && g.Index < n.gpus[best].Index) {
			best = i
		}
		if limit > 0 {
			k := (gpu.MilliPerGPU - g.MilliUsed) / Need(t.Milli, t.MemBytes, g.MemTotal)
			if t.MemBytes > 0 {
				if km := (g.MemTotal - g.MemReserve - g.MemUsed) / t.MemBytes; km < uint64(k) {
					k = int(km)
				}
			}
			if free += k; free >= limit {
				return -1, free
			}
		}
	}
	return best, free
}

// refresh recomputes the per-node bounds that let choose skip a node
// without looking at its cards.
func (n *node) refresh() {
	n.maxFreeMilli, n.maxFreeMem = 0, 0
	for i := range n.gpus {
		g := &n.gpus[i]
		n.maxFreeMilli = max(n.maxFreeMilli, gpu.MilliPerGPU-g.MilliUsed)
		if usable := g.MemTotal - min(g.MemReserve, g.MemTotal); g.MemUsed < usable {
			n.maxFreeMem = max(n.maxFreeMem, usable-g.MemUsed)
		}
	}
}

// mayFit is a cheap necessary condition for t to fit on one of n's cards.
func mayFit(t *Task, n *node) bool {
	return max(t.Milli, 1) <= n.maxFreeMilli && t.MemBytes <= n.maxFreeMem
}

type shape struct {
	milli int
	mem   uint64
}

type partition struct {
	tasks []*Task
	next  int
}

// Schedule assigns as many queued tasks as fit, in the order it decided
// them. It does not modify in.
func Schedule(in Input) []Assignment {
	budget := -1 // unlimited
	if in.PoolSize > 0 {
		budget = in.PoolSize - in.Running
		if budget <= 0 {
			return nil
		}
	}

	// Private copies, sorted by ID so that "lowest ID" is the first
	// candidate and the caller's order cannot leak into the result.
	nodes := make([]node, 0, len(in.Nodes))
	gpuCount := 0
	for i := range in.Nodes {
		if in.Nodes[i].Eligible {
			gpuCount += len(in.Nodes[i].GPUs)
		}
	}
	gpuBuf := make([]GPU, 0, gpuCount)
	for i := range in.Nodes {
		src := &in.Nodes[i]
		if !src.Eligible {
			continue
		}
		start := len(gpuBuf)
		gpuBuf = append(gpuBuf, src.GPUs...)
		gs := gpuBuf[start:len(gpuBuf):len(gpuBuf)]
		slices.SortStableFunc(gs, func(a, b GPU) int { return cmp.Compare(a.Index, b.Index) })
		n := node{id: src.ID, gpus: gs, cpuFree: max(src.CPUSlots-src.CPUUsed, 0), running: src.Running, max: src.MaxConcurrent}
		n.refresh()
		if n.open() {
			nodes = append(nodes, n)
		}
	}
	if len(nodes) == 0 || len(in.Queued) == 0 {
		return nil
	}
	slices.SortStableFunc(nodes, func(a, b node) int { return strings.Compare(a.id, b.id) })
	openNodes := len(nodes)

	parts := partitionsOf(in.Queued)

	// Usage only grows during a pass, so a request that fitted nowhere
	// still fits nowhere later: remember failures to skip repeats cheaply.
	failed := map[shape]bool{}
	minFailedMilli := math.MaxInt          // milli-only requests at least this big fail
	minFailedMem := uint64(math.MaxUint64) // memory-only requests at least this big fail
	cpuFailed := false                     // plain CPU tasks fail
	// What the cards still offer, rebuilt after a failure; an assignment
	// only makes it too generous, so skipping on it is always safe.
	bounds := clusterBounds{cpuOnly: true}
	var boundsBuf []freeCard

	var out []Assignment
	for len(parts) > 0 {
		live := parts[:0]
		for _, p := range parts {
			// The partition's turn: its oldest task that fits anywhere.
			for p.next < len(p.tasks) {
				t := p.tasks[p.next]
				p.next++
				switch {
				case !WantsGPU(t.Milli, t.MemBytes):
					if cpuFailed {
						continue
					}
				case t.MemBytes == 0:
					if t.Milli >= minFailedMilli {
						continue
					}
				case t.Milli <= 0:
					if t.MemBytes >= minFailedMem {
						continue
					}
				}
				if WantsGPU(t.Milli, t.MemBytes) && !bounds.mayFit(t) {
					continue
				}
				sh := shape{t.Milli, t.MemBytes}
				if failed[sh] {
					continue
				}
				ni, gi := choose(t, nodes, in.Policy)
				if ni < 0 {
					failed[sh] = true
					if WantsGPU(t.Milli, t.MemBytes) {
						boundsBuf = bounds.rebuild(nodes, boundsBuf)
					}
					switch {
					case !WantsGPU(t.Milli, t.MemBytes):
						cpuFailed = true
					case t.MemBytes == 0:
						minFailedMilli = min(minFailedMilli, t.Milli)
					case t.Milli <= 0:
						minFailedMem = min(minFailedMem, t.MemBytes)
					}
					continue
				}
				n := &nodes[ni]
				a := Assignment{TaskID: t.ID, NodeID: n.id, GPU: -1}
				if gi >= 0 {
					g := &n.gpus[gi]
					a.GPU, a.Milli, a.MemBytes = g.Index, Need(t.Milli, t.MemBytes, g.MemTotal), t.MemBytes
					g.MilliUsed += a.Milli
					g.MemUsed += t.MemBytes
					n.refresh()
				} else {
					n.cpuFree--
				}
				n.running++
				out = append(out, a)
				if !n.open() {
					openNodes--
				}
				if budget > 0 {
					budget--
				}
				if budget == 0 || openNodes == 0 {
					return out
				}
				break
			}
			if p.next < len(p.tasks) {
				live = append(live, p)
			}
		}
		parts = live
	}
	return out
}

// clusterBounds is a cheap, conservative feasibility test for GPU-wanting
// tasks: the Pareto frontier of (free milli, free memory) over the cards of
// uncapped GPU nodes, and whether a GPU-less node has a CPU slot. A task
// that passes none of it fits nowhere.
type clusterBounds struct {
	cpuOnly  bool
	frontier []freeCard // free milli descending, free memory ascending
}

type freeCard struct {
	milli int
	mem   uint64
}

// mayFit reports whether t could fit somewhere.
func (b *clusterBounds) mayFit(t *Task) bool {
	if b.cpuOnly {
		return true
	}
	m := max(t.Milli, 1)
	// Cards with enough milli form a prefix; the last has the most memory.
	i := sort.Search(len(b.frontier), func(i int) bool { return b.frontier[i].milli < m })
	return i > 0 && b.frontier[i-1].mem >= t.MemBytes
}

// rebuild recomputes the bounds from the current usage, reusing buf.
func (b *clusterBounds) rebuild(nodes []node, buf []freeCard) []freeCard {
	b.cpuOnly = false
	buf = buf[:0]
	for i := range nodes {
		n := &nodes[i]
		if n.capped() {
			continue
		}
		if len(n.gpus) == 0 {
			b.cpuOnly = b.cpuOnly || n.cpuFree > 0
			continue
		}
		for j := range n.gpus {
			g := &n.gpus[j]
			fc := freeCard{milli: gpu.MilliPerGPU - g.MilliUsed}
			if usable := g.MemTotal - min(g.MemReserve, g.MemTotal); g.MemUsed < usable {
				fc.mem = usable - g.MemUsed
			}
			if fc.milli > 0 {
				buf = append(buf, fc)
			}
		}
	}
	slices.SortFunc(buf, func(x, y freeCard) int {
		if c := cmp.Compare(y.milli, x.milli); c != 0 {
			return c
		}
		return cmp.Compare(y.mem, x.mem)
	})
	f := buf[:0]
	for _, c := range buf {
		if len(f) == 0 || c.mem > f[len(f)-1].mem {
			f = append(f, c)
		}
	}
	b.frontier = f
	return buf
}

// partitionsOf groups the queue by partition, each FIFO by Seq, and orders
// the partitions by their oldest task. Ties are broken on IDs and names so
// the caller's slice order never matters; a task ID queued twice is
// considered once (its oldest entry).
func partitionsOf(queued []Task) []*partition {
	ts := make([]*Task, len(queued))
	for i := range queued {
		ts[i] = &queued[i]
	}
	slices.SortFunc(ts, func(a, b *Task) int {
		if c := cmp.Compare(a.Seq, b.Seq); c != 0 {
			return c
		}
		if c := strings.Compare(a.ID, b.ID); c != 0 {
			return c
		}
		if c := strings.Compare(a.Partition, b.Partition); c != 0 {
			return c
		}
		if c := cmp.Compare(a.Milli, b.Milli); c != 0 {
			return c
		}
		return cmp.Compare(a.MemBytes, b.MemBytes)
	})
	seen := make(map[string]struct{}, len(ts))
	index := map[string]int{}
	var parts []*partition
	for _, t := range ts {
		if _, dup := seen[t.ID]; dup {
			continue
		}
		seen[t.ID] = struct{}{}
		pi, ok := index[t.Partition]
		if !ok {
			pi = len(parts)
			index[t.Partition] = pi
			parts = append(parts, &partition{})
		}
		parts[pi].tasks = append(parts[pi].tasks, t)
	}
	return parts
}

// choose returns the node (index into nodes) and card (index into its
// gpus, -1 for a CPU slot) for t under the policy, or -1, -1. BinPack's
// "fullest node" is the one with the fewest free slots for a task shaped
// like t (in the resource t would consume there, capped by MaxConcurrent):
// that compares cards and CPU slots in one unit, whatever the node's mix.
func choose(t *Task, nodes []node, policy Policy) (int, int) {
	bestN, bestG, bestKey := -1, -1, 0
	for i := range nodes {
		n := &nodes[i]
		if n.capped() {
			continue
		}
		// Nodes are sorted by ID, so only a strictly better key may replace
		// the current choice: ties keep the lowest ID.
		if policy != BinPack && bestN >= 0 && n.running >= bestKey {
			continue
		}
		gi, key := -1, n.running
		if UsesGPU(t.Milli, t.MemBytes, len(n.gpus)) {
			if !mayFit(t, n) {
				continue
			}
			limit := 0
			if policy == BinPack {
				limit = math.MaxInt
				if bestN >= 0 && (n.max == 0 || n.max-n.running >= bestKey) {
					limit = bestKey
				}
			}
			if gi, key = scan(t, n, limit); gi < 0 {
				continue
			}
			if policy != BinPack {
				key = n.running
			}
		} else {
			if n.cpuFree <= 0 {
				continue
			}
			if policy == BinPack {
				key = n.cpuFree
			}
		}
		if policy == BinPack && n.max > 0 {
			key = min(key, n.max-n.running)
		}
		if bestN < 0 || key < bestKey {
			bestN, bestG, bestKey = i, gi, key
			if policy == BinPack && key <= 1 {
				break // nothing can have fewer free slots and still fit
			}
		}
	}
	return bestN, bestG
}
