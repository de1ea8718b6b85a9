package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Leader churn. A cluster that keeps electing leaders still answers, and
// autopilot still calls every server healthy (each one is reachable
// between elections), yet every leaderless gap stalls scheduling and
// proposals for seconds. So each node keeps what its own Raft saw of the
// leader over the last churnWindow, and `status` (answered by the leader)
// is not healthy while elections come faster than churnThreshold per
// window. Leader observations come from Raft itself, so a node sees every
// election it takes part in, its own included.
const (
	churnWindow = 10 * time.Minute
	// churnThreshold: more leader changes than this in churnWindow is
	// churn. A rolling restart of five voters moves the leader once or
	// twice; anything near one change every two minutes means elections
	// are failing, whatever their cause.
	churnThreshold = 3
	// churnKeep bounds the recorded changes: past it the oldest go, and
	// the count stays well above the threshold.
	churnKeep = 256
)

type leaderGap struct{ start, end time.Time }

// leaderHistory is what this node's Raft reported about the leader.
type leaderHistory struct {
	mu      sync.Mutex
	seen    bool   // a leader has been known at least once
	leader  string // the last known leader's ID
	changes []time.Time
	gaps    []leaderGap // ended leaderless gaps, newest last
	lostAt  time.Time   // start of the current gap; zero while a leader is known
}

// observe records one leader observation ("" while none is known) and
// says whether it was a leader change. The first leader a node learns of
// is not a change: it says nothing about elections.
func (h *leaderHistory) observe(leader string, now time.Time) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if leader == "" {
		if h.seen && h.lostAt.IsZero() {
			h.lostAt = now
		}
		return false
	}
	if !h.seen {
		h.seen, h.leader = true, leader
		return false
	}
	// Back from a gap to the same leader is still an election (a new
	// term): the gap stalled the cluster as much as a new leader would.
	changed := leader != h.leader || !h.lostAt.IsZero()
	if !h.lostAt.IsZero() {
		h.gaps = append(h.gaps, leaderGap{h.lostAt, now})
		h.lostAt = time.Time{}
	}
	h.leader = leader
	if changed {
		h.changes = append(h.changes, now)
	}
	h.prune(now)
	return changed
}

// prune drops what left the window; the caller holds h.mu.
func (h *leaderHistory) prune(now time.Time) {
	from := now.Add(-churnWindow)
	i := 0
	for i < len(h.changes) && (h.changes[i].Before(from) || len(h.changes)-i > churnKeep) {
		i++
	}
	h.changes = h.changes[i:]
	j := 0
	for j < len(h.gaps) && (h.gaps[j].end.Before(from) || len(h.gaps)-j > churnKeep) {
		j++
	}
	h.gaps = h.gaps[j:]
}

// churnSummary is the window as status, metrics and the console show it.
type churnSummary struct {
	changes int
	longest time.Duration // longest leaderless gap in the window, the current one included
	churn   bool
}

func (h *leaderHistory) summary(now time.Time) churnSummary {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.prune(now)
	var s churnSummary
	s.changes = len(h.changes)
	from := now.Add(-churnWindow)
	for _, g := range h.gaps {
		start := g.start
		if start.Before(from) {
			start = from
		}
		s.longest = max(s.longest, g.end.Sub(start))
	}
	if !h.lostAt.IsZero() {
		s.longest = max(s.longest, now.Sub(h.lostAt))
	}
	s.churn = s.changes > churnThreshold
	return s
}

func (s churnSummary) String() string {
	return fmt.Sprintf("election churn: %d leader changes in the last %s (more than %d), longest leaderless gap %s",
		s.changes, churnWindow, churnThreshold, s.longest.Round(time.Millisecond))
}

// leaderObserveLoop feeds the node's leader history from Raft's leader
// observations until the node stops.
func (n *Node) leaderObserveLoop() {
	defer n.wg.Done()
	ch := make(chan raft.Observation, 64)
	obs := raft.NewObserver(ch, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	n.raft.RegisterObserver(obs)
	defer n.raft.DeregisterObserver(obs)
	// What Raft knew before the observer was registered.
	_, id := n.raft.LeaderWithID()
	n.noteLeader(string(id))
	for {
		select {
		case o := <-ch:
			n.noteLeader(string(o.Data.(raft.LeaderObservation).LeaderID))
		case <-n.stopCh:
			return
		}
	}
}

func (n *Node) noteLeader(id string) {
	if n.lead.history.observe(id, time.Now()) {
		n.metrics.raftLeaderChanges.Inc()
	}
}
