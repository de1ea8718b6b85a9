package node

import (
	"context"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// deafRunner ignores cancellation: it returns only when the test lets it.
type deafRunner struct {
	started chan string
	release chan struct{}
}

func (d *deafRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	d.started <- job.Task.ID
	<-d.release
	return Outcome{}, nil
}
func (d *deafRunner) Close() error { return nil }

// TestRunnerIgnoringCancelIsAbandonedAndShutdownEnds: a cancelled task
// whose runner never returns is abandoned after the grace; its CPU slot is
// taken out of what the node advertises (so it is never handed to another
// task), and a stop of the node still ends.
func TestRunnerIgnoringCancelIsAbandonedAndShutdownEnds(t *testing.T) {
	dr := &deafRunner{started: make(chan string, 4), release: make(chan struct{})}
	t.Cleanup(func() { close(dr.release) })
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.Runner = func() (Runner, error) { return dr, nil }
		cfg.CPUSlots = 2
	})
	n := ns[0]
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	ids := submitMany(t, ns, 1, "deaf")
	select {
	case <-dr.started:
	case <-time.After(10 * time.Second):
		t.Fatal("task never started")
	}
	if err := clientOf(n).Cancel(ctxT(t, 5*time.Second), ids[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, abandonGrace+5*time.Second, "the run to be abandoned", func() bool {
		cpu, _ := n.pool.Abandoned()
		return cpu == 1
	})
	waitFor(t, 5*time.Second, "the node to advertise one CPU slot less", func() bool {
		slots := -1
		n.fsm.View(func(s *fsm.State) { slots = s.Nodes[n.ID()].CPUSlots })
		return slots == 1
	})
	if st := taskStates(n)[ids[0]]; st != fsm.Cancelled {
		t.Fatalf("task is %s", st)
	}
	stopped := make(chan struct{})
	go func() { n.Stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(stopGrace + abandonGrace + n.cfg.DrainTimeout + 10*time.Second):
		t.Fatal("stop hung on the abandoned runner")
	}
}
