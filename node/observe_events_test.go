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
