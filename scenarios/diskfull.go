package scenarios

import (
	"fmt"
	"net/http"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// DiskFull fills p's data dir (a tmpfs of its own: NewEnvOnTmpfs) for d,
// then frees it, and checks what a full disk must do: an upload through p
// answers 507, p drains itself (takes no new work), the tasks it had run
// elsewhere, and once space is back p lifts its drain with no operator
// step. p should be a follower: a leader whose log cannot append steps
// down, which the other faults already cover.
func (e *Env) DiskFull(p *harness.Proc, d time.Duration) {
	if e.tmpfsMB == 0 || e.wl == nil {
		e.Fail("DiskFull needs NewEnvOnTmpfs and a running workload")
		return
	}
	tasks := e.ActiveOn(p)
	e.markFault()
	n, err := p.FillDisk()
	if err != nil {
		e.Fail("fill the disk of %s: %v", p.Name, err)
		return
	}
	e.Event("disk of %s full (%d MB written to fill it; %d active tasks)", p.Name, n>>20, len(tasks))

	// An upload through the full node: 507 naming the reason. A small
	// upload may still fit in pages the node's bbolt files hold free (as
	// on a real full disk), so the probe is 8 MB: it needs new space. The
	// probes are workload documents, garbage PDFs: one accepted (a race
	// with the fill) is expected in the ledger, failed with "pdf:".
	start := time.Now()
	var last error
	got507 := false
	junk := make([]byte, 8<<20)
	e.Rand.Read(junk)
	for i := 0; time.Since(start) < 20*time.Second; i++ {
		doc := Doc{Partition: "alpha", FileID: fmt.Sprintf("%s/diskfull-%s-%d-%d.pdf", e.Name, p.Name, time.Now().UnixNano(), i),
			Name: "probe.pdf", Body: append([]byte("%PDF-1.7\n"), junk...), Corrupt: true, Reason: "pdf:"}
		last = e.wl.SubmitVia(p, doc)
		if last != nil && transport.IsStatus(last, http.StatusInsufficientStorage) {
			got507 = true
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !got507 {
		e.Fail("upload through %s with a full disk: %v, want 507", p.Name, last)
	} else {
		e.Event("upload through %s: %v", p.Name, last)
	}

	// Asked of the other nodes first: the full node's own ledger stops
	// advancing while its Raft log cannot grow, so its view of its own
	// drain lags the cluster's (which is what placement follows).
	drained := func(want bool) bool {
		var order []*harness.Proc
		for _, q := range e.Live() {
			if q != p {
				order = append(order, q)
			}
		}
		for _, q := range append(order, p) {
			ctx, cancel := quick(2 * time.Second)
			ms, err := q.Client().Members(ctx)
			cancel()
			if err != nil {
				continue
			}
			for _, m := range ms {
				if m.Name == p.Name {
					return m.Draining == want
				}
			}
		}
		return false
	}
	if dt, ok := waitCond(30*time.Second, func() bool { return drained(true) }); ok {
		e.Event("%s drained itself for its disk after %s", p.Name, dt.Round(time.Millisecond))
	} else {
		e.Fail("%s did not drain itself within 30s of its disk filling up", p.Name)
	}
	if len(tasks) > 0 {
		if dt, err := e.WaitMoved(p, tasks, 30*time.Second); err != nil {
			e.Fail("disk full: %v", err)
		} else {
			e.Event("%d tasks of %s placed elsewhere after %s", len(tasks), p.Name, dt.Round(time.Millisecond))
			e.Metric("disk full -> tasks elsewhere (%s): %s", p.Name, dt.Round(time.Millisecond))
		}
	}
	time.Sleep(d)
	if err := p.FreeDisk(); err != nil {
		e.Fail("free the disk of %s: %v", p.Name, err)
	}
	freed := time.Now()
	e.Event("disk of %s freed", p.Name)
	if dt, ok := waitCond(60*time.Second, func() bool { return drained(false) }); ok {
		e.Event("%s lifted its drain %s after the disk was freed", p.Name, dt.Round(time.Millisecond))
		e.Metric("disk freed -> drain lifted (%s): %s", p.Name, time.Since(freed).Round(time.Millisecond))
	} else {
		e.Fail("%s still drained 60s after its disk was freed", p.Name)
	}
	e.markFault()
}

// waitCond polls cond until it holds or d passes; it returns how long it
// took.
func waitCond(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < d {
		if cond() {
			return time.Since(start), true
		}
		time.Sleep(200 * time.Millisecond)
	}
	return time.Since(start), false
}
