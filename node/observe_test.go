package node

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ragnode/ragnode/fsm"
)

func TestRingBoundedOrdered(t *testing.T) {
	r := newRing[int](3)
	if got := r.List(); len(got) != 0 {
		t.Fatalf("empty ring lists %v", got)
	}
	for i := 1; i <= 7; i++ {
		r.Add(i)
		if r.Len() > 3 {
			t.Fatalf("ring grew to %d", r.Len())
		}
	}
	if got := fmt.Sprint(r.List()); got != "[5 6 7]" {
		t.Fatalf("ring holds %s, want the newest three oldest first", got)
	}
}

func TestEventRingKeepsNewest(t *testing.T) {
	o := newObserver("me", newMetrics(), time.Now())
	for i := 0; i < eventCap+50; i++ {
		o.event("test", "", "", "event %d", i)
	}
	evs := o.eventsSince(0)
	if len(evs) != eventCap {
		t.Fatalf("held %d events, want the cap %d", len(evs), eventCap)
	}
	for i := 1; i < len(evs); i++ {
		if evs[i].Seq != evs[i-1].Seq+1 || evs[i].Time < evs[i-1].Time {
			t.Fatalf("events out of order at %d: %+v then %+v", i, evs[i-1], evs[i])
		}
	}
	if evs[0].Seq != 51 || evs[len(evs)-1].Msg != fmt.Sprintf("event %d", eventCap+49) {
		t.Fatalf("oldest kept seq %d, newest %q", evs[0].Seq, evs[len(evs)-1].Msg)
	}
	if got := o.eventsSince(o.lastEvent() - 2); len(got) != 2 {
		t.Fatalf("eventsSince(last-2) gave %d events", len(got))
	}
}

// TestObserverDiffs drives the ledger diff by hand: history per task,
// requeue and drain events, stage durations and this node's counters.
func TestObserverDiffs(t *testing.T) {
	m := newMetrics()
	o := newObserver("me", m, time.Now())
	s := fsm.New()
	s.Nodes["me"] = &fsm.Node{ID: "me", Name: "n1", Status: fsm.NodeAlive}
	s.Tasks["old"] = &fsm.Task{ID: "old", State: fsm.Completed, LastNode: "me", Attempt: 1}
	t0 := time.Unix(1000, 0)
	o.scan(s, "me", t0)
	if len(o.history("old")) != 0 || o.lastEvent() != 1 {
		t.Fatalf("first scan: history of a finished task %v, events %v", o.history("old"), o.eventsSince(0))
	}
	task := &fsm.Task{ID: "t1", FileID: "a.txt", State: fsm.Queued, Attempt: 1}
	s.Tasks["t1"] = task
	o.scan(s, "me", t0.Add(time.Second))
	task.State, task.NodeID, task.Stage = fsm.Running, "me", fsm.StageLoading
	o.scan(s, "me", t0.Add(2*time.Second))
	task.Stage = fsm.StageChunking
	o.scan(s, "me", t0.Add(2500*time.Millisecond))
	task.State, task.NodeID, task.LastNode, task.Stage, task.Attempt, task.Error = fsm.Queued, "", "me", "", 2, "node lost"
	s.Nodes["me"].Draining, s.Nodes["me"].DrainReason = true, "operator"
	o.scan(s, "me", t0.Add(3*time.Second))
	task.State, task.NodeID, task.Stage = fsm.Running, "me", fsm.StageLoading
	o.scan(s, "me", t0.Add(4*time.Second))
	task.State, task.Stage = fsm.Completed, ""
	o.scan(s, "me", t0.Add(5*time.Second))
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
	var kinds []string
	for _, e := range o.eventsSince(0) {
		kinds = append(kinds, e.Kind)
	}
	if got, want := fmt.Sprint(kinds), "[leader drain requeue leader_lost]"; got != want {
		t.Fatalf("events %s, want %s", got, want)
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
	before := o.lastEvent()
	o.scan(s, "", t0.Add(8*time.Second))
	evs := o.eventsSince(before)
	if len(evs) != 1 || evs[0].Msg != "re-replicate blob: 300 done, 1 failed (last: h2: boom)" {
		t.Fatalf("repair events %+v", evs)
	}
}

func TestHistoryBounded(t *testing.T) {
	o := newObserver("me", newMetrics(), time.Now())
	s := fsm.New()
	task := &fsm.Task{ID: "t", State: fsm.Queued}
	s.Tasks["t"] = task
	for i := 0; i < historyCap*3; i++ {
		task.Attempt = i
		o.scan(s, "", time.Unix(int64(i), 0))
	}
	h := o.history("t")
	if len(h) != historyCap || h[len(h)-1].Attempt != historyCap*3-1 {
		t.Fatalf("history len %d, last %+v", len(h), h[len(h)-1])
	}
}
