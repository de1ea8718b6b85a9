package node

import (
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// Ledger totals for /metrics (tasks by state and partition, replication
// backlog) walk every task and file: about 100 ms of CPU with 100,000
// tasks on a loaded machine, over the 50 ms a scrape may take. So the
// observer, which already walks the ledger after applies (at most every
// observeMinGap), computes them in the background, and a scrape reads
// them: O(partitions), not O(tasks). A scrape takes the cached totals if
// they are of the current index or younger than totalsMaxAge (a ledger in
// constant churn), and otherwise computes them itself, so a quiet ledger
// is always exact.
//
// The background walk is paid only for readers: it runs while /metrics
// was scraped within totalsScrapedRecently, and at most every
// totalsRefreshGap (under half of totalsMaxAge, so a scrape in churn
// still finds them young enough). Five nodes on two cores walking 5,000
// tasks and files after every apply was a quarter of the CPU of a 10 ms
// task run (BENCHMARKS.md §3) with nobody reading the figures.

const (
	totalsMaxAge          = time.Second
	totalsRefreshGap      = 400 * time.Millisecond
	totalsScrapedRecently = 5 * time.Minute
)

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

// refreshTotals recomputes the cache if the ledger moved, someone scrapes
// and the cache is older than totalsRefreshGap; the caller holds its read
// lock.
func (n *Node) refreshTotals(s *fsm.State, at time.Time) {
	if sc := n.obs.scraped.Load(); sc == 0 || at.Sub(time.Unix(0, sc)) > totalsScrapedRecently {
		return
	}
	if t := n.obs.totals.Load(); t == nil || (t.index != s.Index && at.Sub(t.at) >= totalsRefreshGap) {
		n.obs.totals.Store(n.computeTotals(s, at))
	}
}

// totalsFor returns fresh-enough totals; the caller holds the read lock.
func (n *Node) totalsFor(s *fsm.State) *ledgerTotals {
	n.obs.scraped.Store(time.Now().UnixNano())
	if t := n.obs.totals.Load(); t != nil && (t.index == s.Index || time.Since(t.at) < totalsMaxAge) {
		return t
	}
	t := n.computeTotals(s, time.Now())
	n.obs.totals.Store(t)
	return t
}
