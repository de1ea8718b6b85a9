package node

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// The observer is this node's memory of what it saw happen: a bounded
// history per task and an hour of throughput buckets, fed by diffing each
// applied ledger against the previous one. Neither is replicated: they cover
// what this node observed since it started, which the console says. (The
// cluster's event history is replicated: fsm/events.go derives most events
// while applying commands, and the leader records the rest, see
// observe_events.go. The observer only queues those it sees: Serf member
// events, repair tallies.) Memory is bounded: history by historyCap per task
// and by the ledger's own task retention, series by seriesBuckets, queued
// events by pendingCap.
const (
	historyCap    = 32
	seriesBucket  = 10 * time.Second
	seriesBuckets = 360 // one hour
	// observeMinGap keeps a flood of applies from turning the diff into a
	// busy loop: the ledger is diffed at most this often.
	observeMinGap = 250 * time.Millisecond
)

type taskObs struct {
	state      fsm.TaskState
	stage      string
	node       string
	attempt    int
	stageSince int64
}

type bucket struct {
	start      int64
	completed  int
	failed     int
	queueDepth int
	stageSum   map[string]float64 // ms
	stageN     map[string]int
}

type observer struct {
	self  string
	since int64
	m     *metrics

	mu      sync.Mutex
	primed  bool
	tasks   map[string]taskObs
	hist    map[string][]transport.TaskHistory
	leader  string
	buckets [seriesBuckets]bucket
	repairs map[string]*repairTally
	// repairsSent is when each kind's last summary was queued (unix ns).
	repairsSent map[string]int64
	// pending are events for the replicated history, taken by the event
	// loop, which proposes them while this node leads and drops them
	// otherwise (the leader sees the same Serf events and records them).
	pending []fsm.Event
	dropped int
	// index is the ledger index of the last full diff.
	index uint64
	// totals caches ledger totals for /metrics (metrics_cache.go).
	totals atomic.Pointer[ledgerTotals]
	// scraped is when /metrics last read the totals (unix ns; 0: never).
	scraped atomic.Int64
}

func newObserver(self string, m *metrics, now time.Time) *observer {
	return &observer{self: self, since: now.UnixNano(), m: m, tasks: map[string]taskObs{},
		hist: map[string][]transport.TaskHistory{}, repairs: map[string]*repairTally{}, repairsSent: map[string]int64{}}
}

// observeLoop diffs the ledger after applies (coalesced, at most every
// observeMinGap) until the node stops.
func (n *Node) observeLoop() {
	defer n.wg.Done()
	n.wg.Add(1)
	go n.eventLoop()
	var last time.Time
	n.watchLedger(n.stopCh, n.tick(), func() {
		if d := observeMinGap - time.Since(last); d > 0 && !pause(n.stopCh, d) {
			return
		}
		last = time.Now()
		_, lid := n.raft.LeaderWithID()
		n.fsm.View(func(s *fsm.State) {
			n.obs.scan(s, string(lid), last)
			n.refreshTotals(s, last) // metrics_cache.go
		})
	})
}

// queueEvent queues one event for the replicated history; the caller holds
// o.mu. Past pendingCap (a leader that cannot commit) the newest are counted
// and dropped, so memory stays bounded.
func (o *observer) queueEvent(now int64, kind, nodeID, taskID, format string, args ...any) {
	if len(o.pending) >= pendingCap {
		o.dropped++
		return
	}
	o.pending = append(o.pending, fsm.Event{Time: now, Kind: kind, NodeID: nodeID, TaskID: taskID, Msg: fmt.Sprintf(format, args...)})
}

func (o *observer) bucketAt(now int64) *bucket {
	start := now - now%int64(seriesBucket)
	b := &o.buckets[slotOf(start)]
	if b.start != start {
		*b = bucket{start: start, stageSum: map[string]float64{}, stageN: map[string]int{}}
	}
	return b
}

// slotOf is the bucket slot of a bucket start time (never negative).
func slotOf(start int64) int {
	i := (start / int64(seriesBucket)) % seriesBuckets
	if i < 0 {
		i += seriesBuckets
	}
	return int(i)
}

// scan diffs the ledger against what was seen last time. The first scan only
// records (nothing that happened before this node started is an event).
func (o *observer) scan(s *fsm.State, leader string, at time.Time) {
	now := at.UnixNano()
	o.mu.Lock()
	defer o.mu.Unlock()
	if leader != o.leader {
		if o.primed || leader != "" {
			o.m.leaderChanges.Inc()
		}
		o.leader = leader
	}
	b := o.bucketAt(now)
	b.queueDepth = s.QueuedCount()
	if o.primed && s.Index == o.index {
		// Nothing applied since the last diff (a tick, not an apply): a
		// walk of every task would find nothing.
		o.flushRepairs(now)
		return
	}
	o.index = s.Index
	for id, t := range s.Tasks {
		node := t.NodeID
		if !t.State.Active() {
			node = t.LastNode
		}
		cur := taskObs{state: t.State, stage: t.Stage, node: node, attempt: t.Attempt, stageSince: now}
		prev, seen := o.tasks[id]
		if seen && prev.state == cur.state && prev.stage == cur.stage && prev.node == cur.node && prev.attempt == cur.attempt {
			continue
		}
		if seen && prev.stage == cur.stage && prev.state == cur.state {
			cur.stageSince = prev.stageSince
		}
		o.tasks[id] = cur
		if !o.primed && t.State.Terminal() {
			continue // old news: kept only so it is not reported later
		}
		h := append(o.hist[id], transport.TaskHistory{Time: now, State: string(t.State), Stage: t.Stage, NodeID: node, Attempt: t.Attempt, Error: t.Error})
		if len(h) > historyCap {
			h = append(h[:0:0], h[len(h)-historyCap:]...)
		}
		o.hist[id] = h
		if !o.primed {
			continue
		}
		if !seen {
			// Born and maybe finished between two scans: count the end.
			prev = taskObs{state: "", attempt: cur.attempt}
		}
		// A stage ended: the task left it (new stage, or left running).
		if prev.state == fsm.Running && prev.stage != "" && (prev.stage != cur.stage || cur.state != fsm.Running) {
			ms := float64(now-prev.stageSince) / 1e6
			b.stageSum[prev.stage] += ms
			b.stageN[prev.stage]++
		}
		if seen && cur.attempt > prev.attempt {
			o.m.requeues.Inc()
		}
		if cur.state != prev.state {
			switch cur.state {
			case fsm.Completed:
				b.completed++
				if node == o.self {
					o.m.completions.Inc()
				}
			case fsm.Failed:
				b.failed++
				if node == o.self {
					o.m.failures.Inc()
				}
			}
		}
	}
	// Tasks the ledger dropped (retention) go from memory too.
	if len(o.tasks) > len(s.Tasks) {
		for id := range o.tasks {
			if s.Tasks[id] == nil {
				delete(o.tasks, id)
				delete(o.hist, id)
			}
		}
	}
	o.flushRepairs(now)
	o.primed = true
}

// serfEvent records members joining, failing, leaving and being reaped.
func (o *observer) serfEvent(e serf.Event) {
	me, ok := e.(serf.MemberEvent)
	if !ok || me.Type == serf.EventMemberUpdate {
		return
	}
	kind := map[serf.EventType]string{serf.EventMemberJoin: fsm.EvMemberJoin, serf.EventMemberLeave: fsm.EvMemberLeave,
		serf.EventMemberFailed: fsm.EvMemberFailed, serf.EventMemberReap: fsm.EvMemberReap}[me.Type]
	now := time.Now().UnixNano()
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, m := range me.Members {
		o.queueEvent(now, kind, m.Tags[tagID], "", "%s %s (serf, %s:%d)", m.Name, kind[len("member_"):], m.Addr, m.Port)
	}
}

// repair counts one repair call's outcome (leader only). Calls come in
// passes of up to hundreds, so events are one summary per kind at the next
// scan rather than one per call, which would flush the history.
func (o *observer) repair(what, key string, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	o.m.repairs.WithLabelValues(what, result).Inc()
	o.mu.Lock()
	defer o.mu.Unlock()
	r := o.repairs[what]
	if r == nil {
		r = &repairTally{}
		o.repairs[what] = r
	}
	if err != nil {
		r.failed++
		// Keys join partition and file with a NUL (fsm.FileKey); the
		// history is read with grep and shown in a browser.
		r.lastErr = strings.ReplaceAll(key, "\x00", "/") + ": " + err.Error()
	} else {
		r.ok++
	}
}

type repairTally struct {
	ok, failed int
	lastErr    string
}

// repairSummaryEvery spaces the repair summaries of one kind. Passes run
// every few seconds while copies are missing (a rolling restart keeps
// them going for minutes); one event per pass filled the history with
// them and pushed out what an operator needs, so the calls of a minute
// are summed into one event.
const repairSummaryEvery = time.Minute

// flushRepairs turns the tallies into events, at most one per kind per
// repairSummaryEvery; the caller holds o.mu.
func (o *observer) flushRepairs(now int64) {
	for what, r := range o.repairs {
		last, summarised := o.repairsSent[what]
		if summarised && now-last < int64(repairSummaryEvery) {
			continue // still summing
		}
		over := ""
		if summarised {
			over = " in the last " + time.Duration(now-last).Round(time.Second).String()
		}
		if r.failed > 0 {
			o.queueEvent(now, fsm.EvRepair, "", "", "%s: %d done, %d failed%s (last: %s)", what, r.ok, r.failed, over, r.lastErr)
		} else {
			o.queueEvent(now, fsm.EvRepair, "", "", "%s: %d done%s", what, r.ok, over)
		}
		delete(o.repairs, what)
		o.repairsSent[what] = now
	}
	for what, at := range o.repairsSent {
		// A kind quiet for a whole period starts afresh: its next
		// summary goes out at once.
		if _, pending := o.repairs[what]; !pending && now-at >= int64(repairSummaryEvery) {
			delete(o.repairsSent, what)
		}
	}
}

func (o *observer) history(id string) []transport.TaskHistory {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]transport.TaskHistory{}, o.hist[id]...)
}

// takeEvents hands over the queued events and how many were dropped.
func (o *observer) takeEvents() ([]fsm.Event, int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	evs, d := o.pending, o.dropped
	o.pending, o.dropped = nil, 0
	return evs, d
}

// series returns the last hour, oldest bucket first; empty buckets are zero.
func (o *observer) series(at time.Time) transport.ConsoleSeries {
	o.mu.Lock()
	defer o.mu.Unlock()
	now := at.UnixNano()
	cur := now - now%int64(seriesBucket)
	out := transport.ConsoleSeries{BucketSeconds: int(seriesBucket / time.Second), Points: make([]transport.ConsolePoint, 0, seriesBuckets)}
	for i := seriesBuckets - 1; i >= 0; i-- {
		start := cur - int64(i)*int64(seriesBucket)
		p := transport.ConsolePoint{Time: start, StageMeanMS: map[string]float64{}}
		if b := &o.buckets[slotOf(start)]; b.start == start {
			p.Completed, p.Failed, p.QueueDepth = b.completed, b.failed, b.queueDepth
			for st, sum := range b.stageSum {
				p.StageMeanMS[st] = sum / float64(b.stageN[st])
			}
		}
		out.Points = append(out.Points, p)
	}
	return out
}
