package node

import (
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// Ledger totals for /metrics (tasks by state and partition, replication
// backlog) walk every task and file: about 100 ms of CPU with 100,000
// tasks on a loaded machine, over the 50 ms a scrape may take. So the
// observer, which already walks the ledger after applies (at most every
// observeMinGap), computes them once per applied index in the background,
// and a scrape reads them: O(partitions), not O(tasks). A scrape takes
// the cached totals if they are of the current index or younger than
// totalsMaxAge (a ledger in constant churn), and otherwise computes them
// itself, so a quiet ledger is always exact.

const totalsMaxAge = time.Second

type ledgerTotals struct {
	index  uint64
	at     time.Time
	counts map[fsm.TaskState]int
	parts  map[string]map[fsm.TaskState]int
	blobs  int
	chunks int
}

// computeTotals walks the ledger once; the caller holds its read lock.
func (n *Node) computeTotals(s *fsm.State, at time.Time) *ledgerTotals {
	t := &ledgerTotals{index: s.Index, at: at, counts: map[fsm.TaskState]int{}, parts: partitionCounts(s)}
	for _, m := range t.parts {
		for st, v := range m {
			t.counts[st] += v
		}
	}
	t.blobs, t.chunks = n.replicationBacklog(s)
	return t
}

// refreshTotals recomputes the cache if the ledger moved; the caller holds
// its read lock.
func (n *Node) refreshTotals(s *fsm.State, at time.Time) {
	if t := n.obs.totals.Load(); t == nil || t.index != s.Index {
		n.obs.totals.Store(n.computeTotals(s, at))
	}
}

// totalsFor returns fresh-enough totals; the caller holds the read lock.
func (n *Node) totalsFor(s *fsm.State) *ledgerTotals {
	if t := n.obs.totals.Load(); t != nil && (t.index == s.Index || time.Since(t.at) < totalsMaxAge) {
		return t
	}
	t := n.computeTotals(s, time.Now())
	n.obs.totals.Store(t)
	return t
}
