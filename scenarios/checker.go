package scenarios

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// Finish stops the workload, undoes every fault (heal, resume, restart),
// waits for the ledger to settle, checks the invariants and prints the
// report. The test fails on any violation.
func (e *Env) Finish() {
	t := e.T
	if e.wl != nil {
		e.wl.Stop()
	}
	if e.Net != nil {
		_ = e.Net.Heal()
	}
	for _, p := range e.Procs() {
		switch e.stateOf(p) {
		case paused:
			_ = p.Resume()
			e.setState(p, up)
		case down:
			e.Restart(p)
		}
	}
	members := len(e.Members())
	voters := min(members, 5)
	if voters%2 == 0 {
		voters--
	}
	e.WaitHealthy(voters, 60*time.Second)
	tasks := e.settle(120 * time.Second)
	e.stopSampler()
	e.checkLedger(tasks)
	e.checkChunks(tasks)
	e.checkGPU()
	e.checkLeaders()
	e.checkMembership(30 * time.Second)
	rep := e.report(tasks)
	fmt.Print(rep)
	e.mu.Lock()
	failed := len(e.failures) > 0
	e.mu.Unlock()
	if failed {
		e.dumpLogs()
		t.Fatalf("scenario %s FAILED (seed %d); see report above", e.Name, e.Seed)
	}
}

// settle waits until no task is queued, assigned or running, and returns
// the ledger (as the leader has it).
func (e *Env) settle(d time.Duration) []transport.TaskView {
	deadline := time.Now().Add(d)
	var last []transport.TaskView
	var active int
	for time.Now().Before(deadline) {
		l := e.Leader()
		if l == nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		ctx, cancel := quick(5 * time.Second)
		ts, err := l.Client().Tasks(ctx, "", "")
		cancel()
		if err != nil {
			time.Sleep(200 * time.Millisecond)
			continue
		}
		last = ts
		// Every snapshot of the tail of the run is held to the allocation
		// rules, prefetched work included.
		if err := checkHolds(ts); err != nil {
			e.Fail("ledger snapshot while settling: %v", err)
		}
		active = 0
		for _, tv := range ts {
			if unsettled(tv.State) {
				active++
			}
		}
		if active == 0 {
			return ts
		}
		time.Sleep(300 * time.Millisecond)
	}
	var stuck []string
	for _, tv := range last {
		if unsettled(tv.State) {
			stuck = append(stuck, fmt.Sprintf("%s %s/%s %s on %s attempt %d", tv.ID[:8], tv.Partition, tv.FileID, tv.State, tv.NodeID, tv.Attempt))
		}
	}
	sort.Strings(stuck)
	if len(stuck) > 10 {
		stuck = append(stuck[:10], fmt.Sprintf("... %d more", len(stuck)-10))
	}
	e.Fail("ledger did not settle within %s: %d tasks stuck: %s", d, active, strings.Join(stuck, "; "))
	return last
}

// unsettled states are those a task leaves by itself: waiting, placed,
// prefetched to a node, running.
func unsettled(state string) bool {
	switch state {
	case "queued", "assigned", "running", "prefetched":
		return true
	}
	return false
}

// checkHolds verifies, on one ledger snapshot as the API shows it, the
// allocation rules the FSM's CheckInvariants states: a prefetched task
// holds nothing (no card, no share) but names its node; every started
// (assigned or running) task holds exactly one allocation, a share of one
// card or a CPU slot, on a named node; no card is allocated over one whole
// GPU; a finished or queued task holds nothing.
func checkHolds(ts []transport.TaskView) error {
	type card struct {
		node string
		gpu  int
	}
	used := map[card]int{}
	for _, tv := range ts {
		switch tv.State {
		case "prefetched":
			if tv.GPUs != "" || tv.GPU >= 0 {
				return fmt.Errorf("prefetched task %s holds gpu %d share %q", tv.ID, tv.GPU, tv.GPUs)
			}
			if tv.NodeID == "" {
				return fmt.Errorf("prefetched task %s names no node", tv.ID)
			}
		case "assigned", "running":
			if tv.NodeID == "" {
				return fmt.Errorf("%s task %s holds no allocation", tv.State, tv.ID)
			}
			if tv.GPU < 0 {
				if tv.GPUs != "" {
					return fmt.Errorf("task %s holds a CPU slot and a GPU share %q", tv.ID, tv.GPUs)
				}
				continue
			}
			m, err := gpu.ParseFraction(tv.GPUs)
			if err != nil || m <= 0 {
				return fmt.Errorf("task %s on gpu %d of %s has share %q (%v)", tv.ID, tv.GPU, tv.NodeID, tv.GPUs, err)
			}
			used[card{tv.NodeID, tv.GPU}] += m
		default:
			if tv.GPUs != "" {
				return fmt.Errorf("%s task %s still holds share %q", tv.State, tv.ID, tv.GPUs)
			}
		}
	}
	for c, m := range used {
		if m > gpu.MilliPerGPU {
			return fmt.Errorf("gpu %d of %s allocated %d milli-GPUs", c.gpu, c.node, m)
		}
	}
	return nil
}

func (e *Env) checkLedger(tasks []transport.TaskView) {
	if err := checkHolds(tasks); err != nil {
		e.Fail("final ledger: %v", err)
	}
	if e.wl == nil {
		return
	}
	byFile := map[string][]transport.TaskView{}
	for _, tv := range tasks {
		byFile[tv.Partition+"/"+tv.FileID] = append(byFile[tv.Partition+"/"+tv.FileID], tv)
	}
	subs := e.wl.Submitted()
	known := map[string]bool{}
	for _, s := range subs {
		k := s.Partition + "/" + s.FileID
		known[k] = true
		ts := byFile[k]
		if len(ts) != 1 {
			e.Fail("file %s has %d tasks in the ledger, want exactly 1", k, len(ts))
			continue
		}
		tv := ts[0]
		switch {
		case !s.Corrupt && tv.State != "completed":
			e.Fail("good file %s ended %s (error %q), want completed", k, tv.State, tv.Error)
		case s.Empty && tv.Chunks != 0:
			e.Fail("empty file %s completed with %d chunks", k, tv.Chunks)
		case !s.Corrupt && !s.Empty && tv.Chunks <= 0:
			e.Fail("good file %s completed with %d chunks", k, tv.Chunks)
		case s.Corrupt && tv.State != "failed":
			e.Fail("corrupt file %s ended %s, want failed", k, tv.State)
		case s.Corrupt && !strings.HasPrefix(tv.Error, s.Reason):
			e.Fail("corrupt file %s failed with %q, want a reason starting %q", k, tv.Error, s.Reason)
		}
	}
	for k := range byFile {
		if !known[k] {
			e.Fail("ledger holds a task for %s, which the workload never had accepted", k)
		}
	}
}

func (e *Env) checkChunks(tasks []transport.TaskView) {
	want := map[string]string{} // chunk ID -> file
	files := map[string]bool{}
	for _, tv := range tasks {
		if tv.State != "completed" {
			continue
		}
		files[tv.Partition+"/"+tv.FileID] = true
		for i := 0; i < tv.Chunks; i++ {
			want[store.ChunkID(tv.Partition, tv.FileID, i)] = tv.Partition + "/" + tv.FileID
		}
	}
	have := map[string]int{} // chunk ID -> copies across nodes
	for _, p := range e.Live() {
		ctx, cancel := quick(10 * time.Second)
		ids, err := p.PeerClient().ChunkIDs(ctx, "", "")
		cancel()
		if err != nil {
			e.Fail("chunk ids of %s: %v", p.Name, err)
			continue
		}
		seen := map[string]bool{}
		for _, id := range ids {
			if seen[id] {
				e.Fail("chunk %s twice in %s's store", id, p.Name)
			}
			seen[id] = true
			have[id]++
		}
	}
	missing, extra, single := 0, 0, 0
	var ex []string
	for id, f := range want {
		if have[id] == 0 {
			missing++
			if len(ex) < 5 {
				ex = append(ex, "missing "+id+" of "+f)
			}
		} else if have[id] < 2 && len(e.Live()) > 1 {
			single++
		}
	}
	for id := range have {
		if _, ok := want[id]; !ok {
			extra++
			if len(ex) < 10 {
				ex = append(ex, "unexpected "+id)
			}
		}
	}
	if missing > 0 || extra > 0 {
		e.Fail("chunk stores: %d expected chunks missing, %d unexpected chunk IDs (of %d expected): %s", missing, extra, len(want), strings.Join(ex, "; "))
	}
	e.Metric("chunks: %d expected over %d files, %d distinct in stores, %d with a single copy", len(want), len(files), len(have), single)
}

func (e *Env) checkGPU() {
	e.mu.Lock()
	bad, n := e.gpuBad, e.samples
	e.mu.Unlock()
	if len(bad) > 0 {
		if len(bad) > 5 {
			bad = bad[:5]
		}
		e.Fail("GPU quota overbooked: %s", strings.Join(bad, "; "))
	}
	e.Metric("GPU samples: %d member lists, %d overbooked", n, len(bad))
}

var electionRe = regexp.MustCompile(`election won.*term[=":\s]+(\d+)`)

// checkLeaders reads every node's log for Raft's "election won" lines: at
// most one winner per term.
func (e *Env) checkLeaders() {
	winners := map[string][]string{}
	for _, p := range e.Procs() {
		f, err := os.Open(p.LogPath())
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			if m := electionRe.FindStringSubmatch(sc.Text()); m != nil {
				winners[m[1]] = append(winners[m[1]], p.Name)
			}
		}
		f.Close()
	}
	for term, ws := range winners {
		if len(ws) > 1 {
			e.Fail("term %s has %d leaders: %v", term, len(ws), ws)
		}
	}
	e.Metric("elections: %d terms won, at most one leader each: %v", len(winners), len(winners) > 0)
}

// checkMembership waits until every live node lists the same alive members,
// which are exactly the live processes.
func (e *Env) checkMembership(d time.Duration) {
	deadline := time.Now().Add(d)
	var views map[string]string
	want := []string{}
	for _, p := range e.Live() {
		want = append(want, p.Name)
	}
	sort.Strings(want)
	wantS := strings.Join(want, ",")
	for time.Now().Before(deadline) {
		views = map[string]string{}
		ok := true
		for _, p := range e.Live() {
			ctx, cancel := quick(2 * time.Second)
			ms, err := p.Client().Members(ctx)
			cancel()
			if err != nil {
				views[p.Name] = "error: " + err.Error()
				ok = false
				continue
			}
			var alive []string
			for _, m := range ms {
				if m.SerfStatus == "alive" {
					alive = append(alive, m.Name)
				}
			}
			sort.Strings(alive)
			views[p.Name] = strings.Join(alive, ",")
			if views[p.Name] != wantS {
				ok = false
			}
		}
		if ok {
			return
		}
		time.Sleep(300 * time.Millisecond)
	}
	e.Fail("membership did not converge within %s: want alive [%s], views %v", d, wantS, views)
}

func (e *Env) report(tasks []transport.TaskView) string {
	var b strings.Builder
	e.mu.Lock()
	defer e.mu.Unlock()
	verdict := "PASS"
	if len(e.failures) > 0 {
		verdict = "FAIL"
	}
	fmt.Fprintf(&b, "\n=== scenario %s: %s (seed %d, %s, namespaces %v)\n", e.Name, verdict, e.Seed, time.Since(e.Start).Round(100*time.Millisecond), e.Net != nil)
	fmt.Fprintf(&b, "fault schedule:\n")
	for _, ev := range e.events {
		fmt.Fprintf(&b, "  +%-8s %s\n", ev.At, ev.What)
	}
	completed, failed, other := 0, 0, 0
	for _, tv := range tasks {
		switch tv.State {
		case "completed":
			completed++
		case "failed":
			failed++
		default:
			other++
		}
	}
	fmt.Fprintf(&b, "ledger: %d tasks, %d completed, %d failed, %d other\n", len(tasks), completed, failed, other)
	if e.wl != nil {
		subs := e.wl.Submitted()
		retried := 0
		for _, s := range subs {
			if s.Tries > 1 {
				retried++
			}
		}
		lat, id := e.wl.MaxLatency()
		fmt.Fprintf(&b, "workload: %d accepted (%d needed retries), longest refusal %s (%s)\n", len(subs), retried, lat.Round(time.Millisecond), id)
	}
	b.WriteString(e.throughput(tasks))
	for _, m := range e.metrics {
		fmt.Fprintf(&b, "  %s\n", m)
	}
	if len(e.failures) > 0 {
		fmt.Fprintf(&b, "VIOLATED INVARIANTS (seed %d, replay with RAGNODE_SEED=%d):\n", e.Seed, e.Seed)
		for _, f := range e.failures {
			fmt.Fprintf(&b, "  - %s\n", f)
		}
	}
	fmt.Fprintf(&b, "verdict: %s\n", verdict)
	return b.String()
}

// throughput counts completions per second before the first fault, during
// the faults and after the last one.
func (e *Env) throughput(tasks []transport.TaskView) string {
	if len(e.faultAt) == 0 {
		return ""
	}
	first, last := e.faultAt[0], e.faultAt[len(e.faultAt)-1]
	var fins []time.Time
	for _, tv := range tasks {
		if tv.State == "completed" && tv.Finished > 0 {
			fins = append(fins, time.Unix(0, tv.Finished))
		}
	}
	if len(fins) == 0 {
		return ""
	}
	sort.Slice(fins, func(i, j int) bool { return fins[i].Before(fins[j]) })
	end := fins[len(fins)-1]
	var nb, nd, na int
	for _, f := range fins {
		switch {
		case f.Before(first):
			nb++
		case !f.After(last):
			nd++
		default:
			na++
		}
	}
	rate := func(n int, a, b time.Time) string {
		s := b.Sub(a).Seconds()
		if s <= 0.05 {
			return fmt.Sprintf("%d done", n)
		}
		return fmt.Sprintf("%.1f/s (%d in %.1fs)", float64(n)/s, n, s)
	}
	return fmt.Sprintf("throughput: before %s, during %s, after %s\n", rate(nb, e.Start, first), rate(nd, first, last), rate(na, last, end))
}

// CountLog counts the lines of p's log that contain every one of subs.
func CountLog(p *harness.Proc, subs ...string) int {
	f, err := os.Open(p.LogPath())
	if err != nil {
		return 0
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
lines:
	for sc.Scan() {
		for _, s := range subs {
			if !strings.Contains(sc.Text(), s) {
				continue lines
			}
		}
		n++
	}
	return n
}
