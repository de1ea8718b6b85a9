package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/ragnode/ragnode/fsm"
)

// TestLeaderHistory: the first leader a node learns of is no change; a new
// leader is, and so is the same leader back after a leaderless gap; gaps
// are measured, the current one included; what left the window goes.
func TestLeaderHistory(t *testing.T) {
	var h leaderHistory
	t0 := time.Unix(1_000_000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	if h.observe("", at(0)) || h.observe("a", at(time.Second)) {
		t.Fatal("learning the first leader counted as a change")
	}
	if s := h.summary(at(2 * time.Second)); s.changes != 0 || s.longest != 0 || s.churn {
		t.Fatalf("start counted: %+v", s)
	}
	h.observe("", at(10*time.Second))
	if !h.observe("b", at(17*time.Second)) {
		t.Fatal("a new leader after a gap is not a change")
	}
	h.observe("", at(20*time.Second))
	if !h.observe("b", at(22*time.Second)) {
		t.Fatal("the same leader back after a gap is not a change")
	}
	if h.observe("b", at(23*time.Second)) {
		t.Fatal("the same leader, no gap, counted")
	}
	if !h.observe("c", at(30*time.Second)) || !h.observe("a", at(40*time.Second)) {
		t.Fatal("a direct handover is not a change")
	}
	s := h.summary(at(41 * time.Second))
	if s.changes != 4 || s.longest != 7*time.Second || !s.churn {
		t.Fatalf("summary %+v, want 4 changes, longest gap 7s, churn", s)
	}
	if !strings.Contains(s.String(), "4 leader changes") {
		t.Fatalf("reason %q", s.String())
	}
	// A gap under way counts with its length so far.
	h.observe("", at(50*time.Second))
	if s := h.summary(at(70 * time.Second)); s.longest != 20*time.Second {
		t.Fatalf("current gap: %+v", s)
	}
	h.observe("a", at(71*time.Second))
	// Past the window all of it is history.
	if s := h.summary(at(71*time.Second + churnWindow + time.Second)); s.changes != 0 || s.longest != 0 || s.churn {
		t.Fatalf("after the window: %+v", s)
	}
}

// TestRepairSummariesOnePerMinute: repair passes every few seconds make at
// most one summary per kind per minute, carrying the calls it sums; a key
// holding a NUL (partition and file) is shown as partition/file.
func TestRepairSummariesOnePerMinute(t *testing.T) {
	o := newObserver("me", newMetrics(), time.Now())
	s := fsm.New()
	t0 := time.Unix(2_000_000, 0)
	var evs []fsm.Event
	for pass := 0; pass < 60; pass++ { // five minutes, a pass every five seconds
		o.repair("re-replicate blob", "h", nil)
		o.repair("re-replicate blob", "h", nil)
		o.repair("repair chunk copies", "legal\x00a.pdf", errors.New("holder gone"))
		s.Index++
		o.scan(s, "", t0.Add(time.Duration(pass)*5*time.Second))
		got, _ := o.takeEvents()
		evs = append(evs, got...)
	}
	perKind := map[string][]fsm.Event{}
	done := 0
	for _, e := range evs {
		if e.Kind != fsm.EvRepair {
			continue
		}
		kind := e.Msg[:strings.Index(e.Msg, ":")]
		perKind[kind] = append(perKind[kind], e)
		if strings.ContainsRune(e.Msg, 0) {
			t.Fatalf("NUL in %q", e.Msg)
		}
		if kind == "re-replicate blob" {
			var k int
			if _, err := fmt.Sscanf(e.Msg, "re-replicate blob: %d done", &k); err != nil {
				t.Fatalf("summary %q: %v", e.Msg, err)
			}
			done += k
		}
	}
	for kind, es := range perKind {
		// 5 minutes: the first summary at once, then one a minute.
		if len(es) > 6 {
			t.Fatalf("%d summaries of %s in five minutes", len(es), kind)
		}
		for i := 1; i < len(es); i++ {
			if gap := time.Duration(es[i].Time - es[i-1].Time); gap < repairSummaryEvery {
				t.Fatalf("%s summaries %s apart: %q then %q", kind, gap, es[i-1].Msg, es[i].Msg)
			}
		}
	}
	if len(perKind["repair chunk copies"]) == 0 || !strings.Contains(perKind["repair chunk copies"][0].Msg, "legal/a.pdf: holder gone") {
		t.Fatalf("chunk summaries %+v", perKind["repair chunk copies"])
	}
	// Nothing is lost by summing: what was not summarised yet is still
	// held for the next summary.
	held := 0
	o.mu.Lock()
	if r := o.repairs["re-replicate blob"]; r != nil {
		held = r.ok
	}
	o.mu.Unlock()
	if done+held != 120 {
		t.Fatalf("summaries carry %d calls and %d are held, want 120", done, held)
	}
}

// TestChurnShowsInStatus: leadership moved more often than the churn
// threshold in the window makes status unhealthy with the reason, and the
// counter and the console summary say the same.
func TestChurnShowsInStatus(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(3, nil)
	waitFor(t, 20*time.Second, "a healthy cluster", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		st, err := clientOf(l).Status(ctxT(t, 5*time.Second))
		return err == nil && st.Healthy && st.Voters == 3
	})
	deadline := time.Now().Add(60 * time.Second)
	for moved := 0; moved <= churnThreshold; {
		if time.Now().After(deadline) {
			t.Fatalf("only %d leadership transfers in 60s", moved)
		}
		l := c.mustLeader(t)
		if err := l.raft.LeadershipTransfer().Error(); err != nil {
			// Leadership moved between asking and transferring: try
			// again with whoever leads now.
			t.Logf("transfer: %v", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		moved++
		waitFor(t, 15*time.Second, "a new leader", func() bool {
			nl := c.leader()
			return nl != nil && nl != l
		})
	}
	l := c.mustLeader(t)
	var reasons []string
	waitFor(t, 15*time.Second, "status to report the churn", func() bool {
		st, err := clientOf(ns[0]).Status(ctxT(t, 5*time.Second))
		if err != nil {
			return false
		}
		reasons = st.Unhealthy
		return st.ElectionChurn && !st.Healthy && st.LeaderChanges > churnThreshold
	})
	found := false
	for _, r := range reasons {
		found = found || strings.Contains(r, "election churn")
	}
	if !found {
		t.Fatalf("unhealthy reasons %q do not name the churn", reasons)
	}
	if v := testutil.ToFloat64(l.metrics.raftLeaderChanges); v <= churnThreshold {
		t.Fatalf("ragnode_raft_leader_changes_total %v on the leader", v)
	}
	sum, err := l.ConsoleSummary(context.Background())
	if err != nil || !sum.ElectionChurn || sum.LeaderChanges <= churnThreshold {
		t.Fatalf("console summary %+v, %v", sum, err)
	}
}
