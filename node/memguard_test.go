package node

import (
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

func TestMemDecision(t *testing.T) {
	const high = 1000
	alive := &fsm.Node{ID: "n"}
	memDrained := &fsm.Node{ID: "n", Draining: true, DrainReason: drainMemory}
	opDrained := &fsm.Node{ID: "n", Draining: true}
	for _, tc := range []struct {
		name      string
		used      uint64
		was       bool
		rec       *fsm.Node
		wantOver  bool
		wantDrain *bool // nil: no command
	}{
		{"under, alive", 500, false, alive, false, nil},
		{"over: drain", 1001, false, alive, true, ptr(true)},
		{"over, already drained by the operator: leave it", 2000, false, opDrained, true, nil},
		{"between the marks stays over", 980, true, memDrained, true, nil},
		{"between the marks stays under", 980, false, alive, false, nil},
		{"back under: lift own drain", 900, true, memDrained, false, ptr(false)},
		{"under: never lift the operator's drain", 100, false, opDrained, false, nil},
		{"not registered: no command", 5000, false, nil, true, nil},
	} {
		over, cmd := memDecision(tc.used, high, tc.was, tc.rec)
		if over != tc.wantOver {
			t.Errorf("%s: over %v, want %v", tc.name, over, tc.wantOver)
		}
		switch {
		case tc.wantDrain == nil && cmd != nil:
			t.Errorf("%s: unexpected %+v", tc.name, *cmd)
		case tc.wantDrain != nil && (cmd == nil || cmd.Type != fsm.CmdSetDrain || cmd.Draining != *tc.wantDrain):
			t.Errorf("%s: command %+v, want drain=%v", tc.name, cmd, *tc.wantDrain)
		case tc.wantDrain != nil && *tc.wantDrain && cmd.Error != drainMemory:
			t.Errorf("%s: drain reason %q", tc.name, cmd.Error)
		}
	}
}

func ptr[T any](v T) *T { return &v }

func TestResidentBytesReadsSomething(t *testing.T) {
	b, err := residentBytes()
	if err != nil {
		t.Fatal(err)
	}
	if b < 1<<20 {
		t.Fatalf("resident size %d bytes: a Go test process holds more than 1 MiB", b)
	}
}

// A node over --memory-high drains itself and gets no work; back under,
// it lifts its own drain and takes work again.
func TestMemoryHighNodeTakesNoNewWork(t *testing.T) {
	rec := newRecorder(20 * time.Millisecond)
	c, ns := gpuCluster(t, 2, rec, func(i int, cfg *Config) {
		if i == 1 {
			cfg.MemoryHigh = 1 // any process is over one byte
		}
	})
	hot := ns[1]
	drainOf := func() (bool, string) {
		var d bool
		var r string
		c.leader().fsm.View(func(s *fsm.State) {
			if nd := s.Nodes[hot.ID()]; nd != nil {
				d, r = nd.Draining, nd.DrainReason
			}
		})
		return d, r
	}
	waitFor(t, 15*time.Second, "the node over its mark to drain itself", func() bool {
		d, r := drainOf()
		return d && r == drainMemory
	})
	ids := submitMany(t, ns, 30, "mem")
	requireAllCompleted(t, waitTerminal(t, c, ids, 60*time.Second))
	if peaks, _ := rec.peaks(); peaks[hot.name] != 0 {
		t.Fatalf("the node over --memory-high ran %d tasks at once", peaks[hot.name])
	}
	// Memory comes back down (as the guard would read it).
	hot.pool.mem.mu.Lock()
	hot.pool.mem.read = func() (uint64, error) { return 0, nil }
	hot.pool.mem.mu.Unlock()
	waitFor(t, 15*time.Second, "the drain to be lifted", func() bool {
		d, _ := drainOf()
		return !d
	})
	ids = submitMany(t, ns, 30, "mem2")
	requireAllCompleted(t, waitTerminal(t, c, ids, 60*time.Second))
	if peaks, _ := rec.peaks(); peaks[hot.name] == 0 {
		t.Fatal("the node back under its mark took no work")
	}
}
