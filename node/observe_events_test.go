package node

import (
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// TestEventsSurviveRestart: the history is in the replicated state, so a
// node that restarts shows what happened before it stopped, numbered on,
// with its new election recorded once in the new term.
func TestEventsSurviveRestart(t *testing.T) {
	c := newCluster(t)
	n := c.startN(1, nil)[0]
	var before []transport.ConsoleEvent
	waitFor(t, 20*time.Second, "registered and leader events", func() bool {
		consoleGet(t, n, "/v1/console/events", &before)
		k := map[string]bool{}
		for _, e := range before {
			k[e.Kind] = true
		}
		return k[fsm.EvLeader] && k[fsm.EvNodeRegistered]
	})
	if err := clientOf(n).Drain(ctxT(t, 10*time.Second), transport.DrainRequest{Node: "n1"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "drain event", func() bool {
		consoleGet(t, n, "/v1/console/events", &before)
		e := before[len(before)-1]
		return e.Kind == fsm.EvDrain && strings.Contains(e.Msg, "n1 draining") && e.NodeID == n.ID()
	})
	n.Stop()
	back := c.restart("n1")
	var after []transport.ConsoleEvent
	defer func() {
		if t.Failed() {
			t.Logf("before %+v\nafter %+v", before, after)
		}
	}()
	waitFor(t, 20*time.Second, "history back and a new leader event", func() bool {
		consoleGet(t, back, "/v1/console/events", &after)
		for _, e := range after[min(len(before), len(after)):] {
			if e.Kind == fsm.EvLeader {
				return true
			}
		}
		return false
	})
	for i := range before {
		if after[i] != before[i] {
			t.Fatalf("event %d after restart %+v, before %+v", i, after[i], before[i])
		}
	}
	var leaders []transport.ConsoleEvent
	for _, e := range after {
		if e.Kind == fsm.EvLeader {
			leaders = append(leaders, e)
		}
	}
	if len(leaders) != 2 || leaders[1].NodeID != back.ID() || !strings.Contains(leaders[1].Msg, "n1 is leader (term") || leaders[1].Msg == leaders[0].Msg {
		t.Fatalf("leader events %+v", leaders)
	}
	var since []transport.ConsoleEvent
	consoleGet(t, back, "/v1/console/events?since="+strconv.FormatUint(before[len(before)-1].Seq, 10), &since)
	if len(since) != len(after)-len(before) || since[0].Seq != before[len(before)-1].Seq+1 {
		t.Fatalf("events since %d: %+v", before[len(before)-1].Seq, since)
	}
	var sum transport.ConsoleSummary
	consoleGet(t, back, "/v1/console/summary", &sum)
	if sum.LastEvent < after[len(after)-1].Seq {
		t.Fatalf("summary last_event %d, history at %d", sum.LastEvent, after[len(after)-1].Seq)
	}
}

// TestLeaderChangeRecorded: when the leader dies, the new leader records
// its election, the old leader's Serf failure and the ledger's status
// change in the history every survivor shows.
func TestLeaderChangeRecorded(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(3, nil)
	waitFor(t, 20*time.Second, "three registered nodes", func() bool {
		k := 0
		ns[0].fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 3
	})
	// Joiners are promoted after a stabilization time: with fewer than
	// three voters the leader's death would leave no quorum.
	waitFor(t, 15*time.Second, "three voters", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		v, _ := countVoters(l)
		return v == 3
	})
	old := c.leader()
	var before []transport.ConsoleEvent
	waitFor(t, 10*time.Second, "the first leader's event", func() bool {
		consoleGet(t, old, "/v1/console/events", &before)
		for _, e := range before {
			if e.Kind == fsm.EvLeader && e.NodeID == old.ID() {
				return true
			}
		}
		return false
	})
	last := before[len(before)-1].Seq
	oldID := old.ID()
	old.Kill()
	var survivor, next *Node
	waitFor(t, 30*time.Second, "a new leader", func() bool {
		next = c.leader()
		return next != nil && next != old
	})
	for _, n := range ns {
		if n != old {
			survivor = n
		}
	}
	waitFor(t, 30*time.Second, "the new election and the old leader's failure in the history", func() bool {
		var evs []transport.ConsoleEvent
		consoleGet(t, survivor, "/v1/console/events?since="+strconv.FormatUint(last, 10), &evs)
		elected, failed := false, false
		for _, e := range evs {
			elected = elected || (e.Kind == fsm.EvLeader && e.NodeID == next.ID())
			failed = failed || (e.Kind == fsm.EvMemberFailed && e.NodeID == oldID)
		}
		return elected && failed
	})
}
