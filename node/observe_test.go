package node

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/hashicorp/serf/serf"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ragnode/ragnode/fsm"
)

// TestObserverDiffs drives the ledger diff by hand: history per task, stage
// durations, this node's counters, and the repair tallies it queues for the
// replicated history (ledger changes are not its events any more).
func TestObserverDiffs(t *testing.T) {
	m := newMetrics()
	o := newObserver("me", m, time.Now())
	s := fsm.New()
	s.Nodes["me"] = &fsm.Node{ID: "me", Name: "n1", Status: fsm.NodeAlive}
	s.Tasks["old"] = &fsm.Task{ID: "old", State: fsm.Completed, LastNode: "me", Attempt: 1}
	t0 := time.Unix(1000, 0)
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "me", t0)
	if len(o.history("old")) != 0 {
		t.Fatalf("first scan: history of a finished task %v", o.history("old"))
	}
	task := &fsm.Task{ID: "t1", FileID: "a.txt", State: fsm.Queued, Attempt: 1}
	s.Tasks["t1"] = task
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "me", t0.Add(time.Second))
	task.State, task.NodeID, task.Stage = fsm.Running, "me", fsm.StageLoading
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "me", t0.Add(2*time.Second))
	task.Stage = fsm.StageChunking
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "me", t0.Add(2500*time.Millisecond))
	task.State, task.NodeID, task.LastNode, task.Stage, task.Attempt, task.Error = fsm.Queued, "", "me", "", 2, "node lost"
	s.Nodes["me"].Draining, s.Nodes["me"].DrainReason = true, "operator"
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "me", t0.Add(3*time.Second))
	task.State, task.NodeID, task.Stage = fsm.Running, "me", fsm.StageLoading
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "me", t0.Add(4*time.Second))
	task.State, task.Stage = fsm.Completed, ""
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "me", t0.Add(5*time.Second))
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "", t0.Add(6*time.Second))

	h := o.history("t1")
	var states []string
	for _, e := range h {
		states = append(states, e.State+"/"+e.Stage)
	}
	if got, want := fmt.Sprint(states), "[queued/ running/loading running/chunking queued/ running/loading completed/]"; got != want {
		t.Fatalf("history %s, want %s", got, want)
	}
	if h[3].Attempt != 2 || h[3].Error != "node lost" || h[3].NodeID != "me" {
		t.Fatalf("requeue entry %+v", h[3])
	}
	if evs, _ := o.takeEvents(); len(evs) != 0 {
		t.Fatalf("ledger diffs queued events (the FSM derives those): %+v", evs)
	}
	if v := testutil.ToFloat64(m.leaderChanges); v != 2 {
		t.Fatalf("leader changes %v, want 2 (elected, lost)", v)
	}
	if v := testutil.ToFloat64(m.completions); v != 1 {
		t.Fatalf("completions %v", v)
	}
	if v := testutil.ToFloat64(m.requeues); v != 1 {
		t.Fatalf("requeues %v", v)
	}
	w := m.stageWatch()
	w.enter(fsm.StageLoading)
	w.enter(fsm.StageLoading)
	w.enter(fsm.StageChunking)
	w.end()
	w.end()
	if n := testutil.CollectAndCount(m.stageSeconds); n != 2 {
		t.Fatalf("stage histograms %d, want loading and chunking", n)
	}
	var done, chunkMS float64
	for _, p := range o.series(t0.Add(6 * time.Second)).Points {
		done += float64(p.Completed)
		if v, ok := p.StageMeanMS[fsm.StageChunking]; ok {
			chunkMS = v
		}
	}
	if done != 1 || chunkMS != 500 {
		t.Fatalf("series: %v completions, chunking mean %vms", done, chunkMS)
	}
	// The ledger dropping a task (retention) drops its history.
	delete(s.Tasks, "t1")
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "", t0.Add(7*time.Second))
	if len(o.history("t1")) != 0 {
		t.Fatal("history kept for a task the ledger dropped")
	}
	for i := 0; i < 300; i++ {
		o.repair("re-replicate blob", "h1", nil)
	}
	o.repair("re-replicate blob", "h2", errors.New("boom"))
	if v := testutil.ToFloat64(m.repairs.WithLabelValues("re-replicate blob", "error")); v != 1 {
		t.Fatalf("repairs %v", v)
	}
	s.Index++ // a new apply, as the loop would see
	o.scan(s, "", t0.Add(8*time.Second))
	evs, dropped := o.takeEvents()
	if len(evs) != 1 || dropped != 0 || evs[0].Kind != fsm.EvRepair || evs[0].Msg != "re-replicate blob: 300 done, 1 failed (last: h2: boom)" {
		t.Fatalf("repair events %+v", evs)
	}
	if evs, _ := o.takeEvents(); len(evs) != 0 {
		t.Fatalf("events handed over twice: %+v", evs)
	}
}

// TestObserverQueueBounded: Serf member events are queued for the leader to
// record, and past pendingCap they are counted, not held.
func TestObserverQueueBounded(t *testing.T) {
	o := newObserver("me", newMetrics(), time.Now())
	m := serf.Member{Name: "n2", Addr: net.ParseIP("127.0.0.1"), Port: 7946, Tags: map[string]string{tagID: "id2"}}
	o.serfEvent(serf.MemberEvent{Type: serf.EventMemberUpdate, Members: []serf.Member{m}})
	for i := 0; i < pendingCap+5; i++ {
		o.serfEvent(serf.MemberEvent{Type: serf.EventMemberFailed, Members: []serf.Member{m}})
	}
	evs, dropped := o.takeEvents()
	if len(evs) != pendingCap || dropped != 5 {
		t.Fatalf("queued %d, dropped %d", len(evs), dropped)
	}
	if e := evs[0]; e.Kind != fsm.EvMemberFailed || e.NodeID != "id2" || e.Msg != "n2 failed (serf, 127.0.0.1:7946)" {
		t.Fatalf("event %+v", e)
	}
}

func TestHistoryBounded(t *testing.T) {
	o := newObserver("me", newMetrics(), time.Now())
	s := fsm.New()
	task := &fsm.Task{ID: "t", State: fsm.Queued}
	s.Tasks["t"] = task
	for i := 0; i < historyCap*3; i++ {
		task.Attempt = i
		s.Index++ // a new apply, as the loop would see
		o.scan(s, "", time.Unix(int64(i), 0))
	}
	h := o.history("t")
	if len(h) != historyCap || h[len(h)-1].Attempt != historyCap*3-1 {
		t.Fatalf("history len %d, last %+v", len(h), h[len(h)-1])
	}
}
