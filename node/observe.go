package node

import (
	"fmt"
	"sync"
	"time"

	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// The observer is this node's memory of what it saw happen: a bounded
// history per task, a bounded ring of cluster events and an hour of
// throughput buckets, all fed by diffing each applied ledger against the
// previous one (plus Serf member events and repair results). Nothing here
// is replicated: it covers what this node observed since it started, which
// the console says. Memory is bounded: events by eventCap, history by
// historyCap per task and by the ledger's own task retention, series by
// seriesBuckets.
const (
	eventCap      = 1000
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

type nodeObs struct {
	status   string
	draining bool
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
	nodes   map[string]nodeObs
	names   map[string]string
	leader  string
	events  *ring[transport.ConsoleEvent]
	seq     uint64
	buckets [seriesBuckets]bucket
	repairs map[string]*repairTally
}

func newObserver(self string, m *metrics, now time.Time) *observer {
	return &observer{self: self, since: now.UnixNano(), m: m, tasks: map[string]taskObs{},
		hist: map[string][]transport.TaskHistory{}, nodes: map[string]nodeObs{}, names: map[string]string{},
		events: newRing[transport.ConsoleEvent](eventCap), repairs: map[string]*repairTally{}}
}

// observeLoop diffs the ledger after applies (coalesced, at most every
// observeMinGap) until the node stops.
func (n *Node) observeLoop() {
	defer n.wg.Done()
	var last time.Time
	n.watchLedger(n.stopCh, n.tick(), func() {
		if d := observeMinGap - time.Since(last); d > 0 && !pause(n.stopCh, d) {
			return
		}
		last = time.Now()
		_, lid := n.raft.LeaderWithID()
		n.fsm.View(func(s *fsm.State) { n.obs.scan(s, string(lid), last) })
	})
}

// addEvent records one event; the caller holds o.mu.
func (o *observer) addEvent(now int64, kind, nodeID, taskID, format string, args ...any) {
	o.seq++
	o.events.Add(transport.ConsoleEvent{Seq: o.seq, Time: now, Kind: kind, NodeID: nodeID, TaskID: taskID, Msg: fmt.Sprintf(format, args...)})
}

// event records one event from outside the ledger diff.
func (o *observer) event(kind, nodeID, taskID, format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.addEvent(time.Now().UnixNano(), kind, nodeID, taskID, format, args...)
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

func (o *observer) nameOf(id string) string {
	if nm := o.names[id]; nm != "" {
		return nm
	}
	return id
}

// scan diffs the ledger against what was seen last time. The first scan only
// records (nothing that happened before this node started is an event).
func (o *observer) scan(s *fsm.State, leader string, at time.Time) {
	now := at.UnixNano()
	o.mu.Lock()
	defer o.mu.Unlock()
	for id, nd := range s.Nodes {
		o.names[id] = nd.Name
	}
	if leader != o.leader {
		if o.primed || leader != "" {
			if leader == "" {
				o.addEvent(now, "leader_lost", o.leader, "", "no leader (was %s)", o.nameOf(o.leader))
			} else {
				o.addEvent(now, "leader", leader, "", "%s is leader", o.nameOf(leader))
			}
			o.m.leaderChanges.Inc()
		}
		o.leader = leader
	}
	for id, nd := range s.Nodes {
		cur := nodeObs{status: nd.Status, draining: nd.Draining}
		prev, seen := o.nodes[id]
		o.nodes[id] = cur
		if !o.primed {
			continue
		}
		if !seen {
			o.addEvent(now, "node_registered", id, "", "%s registered (%d GPUs, %d CPU slots)", nd.Name, len(nd.GPUs), nd.CPUSlots)
			continue
		}
		if prev.status != cur.status {
			o.addEvent(now, "node_"+cur.status, id, "", "%s is %s in the ledger (was %s)", nd.Name, cur.status, prev.status)
		}
		if prev.draining != cur.draining {
			if cur.draining {
				o.addEvent(now, "drain", id, "", "%s draining (%s)", nd.Name, nd.DrainReason)
			} else {
				o.addEvent(now, "undrain", id, "", "%s no longer draining", nd.Name)
			}
		}
	}
	b := o.bucketAt(now)
	b.queueDepth = s.QueuedCount()
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
			o.addEvent(now, "requeue", prev.node, id, "%s requeued (attempt %d): %s", t.FileID, cur.attempt, t.Error)
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
				o.addEvent(now, "task_failed", node, id, "%s failed: %s", t.FileID, t.Error)
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
	kind := map[serf.EventType]string{serf.EventMemberJoin: "member_join", serf.EventMemberLeave: "member_leave",
		serf.EventMemberFailed: "member_failed", serf.EventMemberReap: "member_reap"}[me.Type]
	for _, m := range me.Members {
		o.event(kind, m.Tags[tagID], "", "%s %s (serf, %s:%d)", m.Name, kind[len("member_"):], m.Addr, m.Port)
	}
}

// repair counts one repair call's outcome (leader only). Calls come in
// passes of up to hundreds, so events are one summary per kind at the next
// scan rather than one per call, which would flush the ring.
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
		r.lastErr = key + ": " + err.Error()
	} else {
		r.ok++
	}
}

type repairTally struct {
	ok, failed int
	lastErr    string
}

// flushRepairs turns the tallies into events; the caller holds o.mu.
func (o *observer) flushRepairs(now int64) {
	for what, r := range o.repairs {
		if r.failed > 0 {
			o.addEvent(now, "repair", "", "", "%s: %d done, %d failed (last: %s)", what, r.ok, r.failed, r.lastErr)
		} else {
			o.addEvent(now, "repair", "", "", "%s: %d done", what, r.ok)
		}
		delete(o.repairs, what)
	}
}

func (o *observer) history(id string) []transport.TaskHistory {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]transport.TaskHistory{}, o.hist[id]...)
}

// eventsSince returns the held events newer than seq, oldest first.
func (o *observer) eventsSince(seq uint64) []transport.ConsoleEvent {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := []transport.ConsoleEvent{}
	for _, e := range o.events.List() {
		if e.Seq > seq {
			out = append(out, e)
		}
	}
	return out
}

func (o *observer) lastEvent() uint64 {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.seq
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
