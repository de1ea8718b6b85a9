package scenarios

import (
	"context"
	"fmt"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// The nemesis: every fault is recorded in the schedule.

// Kill sends SIGKILL to p; when it led, it measures the time to the next
// leader; when it had tasks, the time until they run elsewhere.
func (e *Env) Kill(p *harness.Proc) {
	wasLeader := e.Leader()
	tasks := e.ActiveOn(p)
	e.markFault()
	p.Kill()
	e.setState(p, down)
	e.Event("kill -9 %s (leader=%v, %d active tasks)", p.Name, wasLeader != nil && wasLeader.Name == p.Name, len(tasks))
	e.afterLoss(p, wasLeader, tasks)
}

func (e *Env) afterLoss(p *harness.Proc, wasLeader *harness.Proc, tasks []string) {
	if wasLeader != nil && wasLeader.Name == p.Name {
		start := time.Now()
		l, err := e.WaitLeader(p.Name, 30*time.Second)
		if err != nil {
			e.Fail("leader loss: %v", err)
		} else {
			d := time.Since(start)
			e.Event("new leader %s after %s", l.Name, d.Round(time.Millisecond))
			e.Metric("leader loss -> next leader: %s", d.Round(time.Millisecond))
		}
	}
	if len(tasks) > 0 {
		d, err := e.WaitMoved(p, tasks, 30*time.Second)
		if err != nil {
			e.Fail("node loss: %v", err)
		} else {
			e.Event("%d tasks of %s requeued and placed elsewhere after %s", len(tasks), p.Name, d.Round(time.Millisecond))
			e.Metric("node loss -> tasks elsewhere (%s): %s", p.Name, d.Round(time.Millisecond))
		}
	}
}

// Restart starts a stopped or killed node again on its data dir.
func (e *Env) Restart(p *harness.Proc) {
	if e.stateOf(p) != down {
		return
	}
	if err := p.Start(e.joinAddrs(p)...); err != nil {
		e.Fail("restart %s: %v", p.Name, err)
		return
	}
	e.setState(p, up)
	e.markFault()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.WaitReady(ctx); err != nil {
		e.Fail("restart %s: %v", p.Name, err)
		return
	}
	e.Event("%s restarted, sees a leader after %s", p.Name, time.Since(start).Round(time.Millisecond))
}

func (e *Env) joinAddrs(self *harness.Proc) []string {
	var out []string
	for _, q := range e.Members() {
		if q != self {
			out = append(out, q.SerfAddr())
		}
	}
	return out
}

// Term sends SIGTERM (a restart-style shutdown) and waits for the exit.
func (e *Env) Term(p *harness.Proc) {
	wasLeader := e.Leader()
	e.markFault()
	e.Event("SIGTERM %s (leader=%v)", p.Name, wasLeader != nil && wasLeader.Name == p.Name)
	start := time.Now()
	e.setState(p, down) // clients move on to other nodes from now
	if err := p.Stop(30 * time.Second); err != nil {
		e.Fail("SIGTERM %s: %v", p.Name, err)
	}
	e.Event("%s exited after %s", p.Name, time.Since(start).Round(time.Millisecond))
	if wasLeader != nil && wasLeader.Name == p.Name {
		l, err := e.WaitLeader(p.Name, 30*time.Second)
		if err != nil {
			e.Fail("leader handover: %v", err)
		} else {
			d := time.Since(start)
			e.Event("new leader %s %s after SIGTERM", l.Name, d.Round(time.Millisecond))
			e.Metric("graceful leader stop -> next leader: %s", d.Round(time.Millisecond))
		}
	}
}

// WaitHealthy waits until the cluster is healthy, caught up, with at least
// voters voters (a departure may leave an even count: that is allowed).
func (e *Env) WaitHealthy(voters int, d time.Duration) {
	deadline := time.Now().Add(d)
	var last transport.Status
	var lastErr error
	for time.Now().Before(deadline) {
		for _, p := range e.Live() {
			ctx, cancel := quick(2 * time.Second)
			st, err := p.Client().Status(ctx)
			cancel()
			if err != nil {
				lastErr = err
				continue
			}
			last = st
			// Election churn (status's count of leader changes over ten
			// minutes) is a signal for operators, not a Raft fault to heal:
			// the faults a scenario injects cause elections themselves, and
			// on a loaded CI host more than the threshold. Healed means
			// every voter healthy and caught up.
			healed := st.Healthy || st.ElectionChurn && len(st.Unhealthy) == 1
			if healed && st.CaughtUp && st.Voters >= voters {
				e.Event("cluster healthy (%d voters, %d non-voters)", st.Voters, st.NonVoters)
				return
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.Fail("cluster not healthy with >= %d voters within %s: last %+v err %v", voters, d, last, lastErr)
}

// Pause SIGSTOPs p for d, then SIGCONTs it.
func (e *Env) Pause(p *harness.Proc, d time.Duration) {
	tasks := e.ActiveOn(p)
	e.markFault()
	if err := p.Pause(); err != nil {
		e.Fail("pause %s: %v", p.Name, err)
		return
	}
	e.setState(p, paused)
	e.Event("SIGSTOP %s (%d active tasks) for %s", p.Name, len(tasks), d)
	start := time.Now()
	if len(tasks) > 0 {
		if md, err := e.WaitMoved(p, tasks, d+10*time.Second); err != nil {
			e.Fail("slow node: %v", err)
		} else {
			e.Event("tasks of paused %s placed elsewhere after %s", p.Name, md.Round(time.Millisecond))
			e.Metric("paused node -> tasks elsewhere (%s): %s", p.Name, md.Round(time.Millisecond))
		}
	}
	if r := d - time.Since(start); r > 0 {
		time.Sleep(r)
	}
	if err := p.Resume(); err != nil {
		e.Fail("resume %s: %v", p.Name, err)
	}
	e.setState(p, up)
	e.markFault()
	e.Event("SIGCONT %s", p.Name)
}

// Isolate cuts side off from every other node for d, then heals. It checks
// that a cut-off old leader commits nothing.
func (e *Env) Isolate(side []*harness.Proc, d time.Duration) {
	if e.Net == nil {
		e.Event("partition skipped: no namespaces")
		return
	}
	names := make([]string, len(side))
	for i, p := range side {
		names[i] = p.Name
	}
	old := e.Leader()
	isolatedLeader := old != nil && contains(names, old.Name) && len(side)*2 < len(e.Members())
	var tasks []string
	for _, p := range side {
		tasks = append(tasks, e.ActiveOn(p)...)
	}
	var commit0 uint64
	e.markFault()
	if err := e.Net.Partition(names...); err != nil {
		e.Fail("partition: %v", err)
		return
	}
	e.Event("partition %v from the rest (leader inside: %v, %d active tasks) for %s", names, isolatedLeader, len(tasks), d)
	start := time.Now()
	if isolatedLeader {
		// Acknowledgements already on the wire at the cut may still commit:
		// the baseline is the first answer read after a short grace. The
		// old leader's status can be slow while it still asks its lost
		// voters for their stats, hence the retries.
		time.Sleep(200 * time.Millisecond)
		for t0 := time.Now(); time.Since(t0) < 10*time.Second; {
			if st, err := LocalStatus(old, 5*time.Second); err == nil {
				commit0 = st.CommitIndex
				e.Event("old leader %s commit_index %d after the cut", old.Name, commit0)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		l, err := e.WaitLeaderAmong(e.Except(names), 30*time.Second)
		if err != nil {
			e.Fail("majority side: %v", err)
		} else {
			dd := time.Since(start)
			e.Event("majority elected %s after %s", l.Name, dd.Round(time.Millisecond))
			e.Metric("leader cut off -> next leader: %s", dd.Round(time.Millisecond))
		}
	}
	for _, p := range side {
		ids := e.ActiveOnVia(p, e.Except(names))
		if len(ids) > 0 {
			md, err := e.WaitMovedVia(p, ids, e.Except(names), 30*time.Second)
			if err != nil {
				e.Fail("partition: %v", err)
			} else {
				e.Event("tasks of cut-off %s placed elsewhere after %s", p.Name, md.Round(time.Millisecond))
				e.Metric("cut-off node -> tasks elsewhere (%s): %s", p.Name, md.Round(time.Millisecond))
			}
		}
	}
	for time.Since(start) < d {
		if isolatedLeader {
			if st, err := LocalStatus(old, time.Second); err == nil && st.CommitIndex > commit0 {
				e.Fail("isolated old leader %s committed while cut off: commit_index %d -> %d", old.Name, commit0, st.CommitIndex)
				commit0 = st.CommitIndex
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err := e.Net.Heal(); err != nil {
		e.Fail("heal: %v", err)
	}
	e.markFault()
	e.Event("healed %v", names)
}

// Except returns the live processes whose names are not in names.
func (e *Env) Except(names []string) []*harness.Proc {
	var out []*harness.Proc
	for _, p := range e.Live() {
		if !contains(names, p.Name) {
			out = append(out, p)
		}
	}
	return out
}

// WaitLeaderAmong waits until one of ps claims leadership and the others
// agree.
func (e *Env) WaitLeaderAmong(ps []*harness.Proc, d time.Duration) (*harness.Proc, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		for _, p := range ps {
			st, err := LocalStatus(p, time.Second)
			if err == nil && st.LeaderID != "" && st.LeaderID == st.NodeID {
				return p, nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("no leader among the majority within %s", d)
}

// ActiveOnVia is ActiveOn reading the ledger of one of via.
func (e *Env) ActiveOnVia(p *harness.Proc, via []*harness.Proc) []string {
	id, _ := nodeID(p)
	for _, q := range via {
		ctx, cancel := quick(2 * time.Second)
		ts, err := q.Client().Tasks(ctx, "", "")
		cancel()
		if err != nil {
			continue
		}
		var out []string
		for _, t := range ts {
			if (t.State == "assigned" || t.State == "running") && t.NodeID == id {
				out = append(out, t.ID)
			}
		}
		return out
	}
	return nil
}

// WaitMovedVia is WaitMoved reading the ledger of via.
func (e *Env) WaitMovedVia(p *harness.Proc, ids []string, via []*harness.Proc, d time.Duration) (time.Duration, error) {
	start := time.Now()
	id, _ := nodeID(p)
	want := map[string]bool{}
	for _, x := range ids {
		want[x] = true
	}
	for time.Since(start) < d {
		for _, q := range via {
			ctx, cancel := quick(2 * time.Second)
			ts, err := q.Client().Tasks(ctx, "", "")
			cancel()
			if err != nil {
				continue
			}
			n := 0
			for _, t := range ts {
				if want[t.ID] && (t.State == "queued" || t.NodeID == id && (t.State == "assigned" || t.State == "running")) {
					n++
				}
			}
			if n == 0 {
				return time.Since(start), nil
			}
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	return time.Since(start), fmt.Errorf("tasks of %s not placed elsewhere within %s", p.Name, d)
}

// AddNode starts a new node that joins the live ones.
func (e *Env) AddNode() *harness.Proc {
	p := e.newProc()
	if err := p.Start(e.joinAddrs(p)...); err != nil {
		e.Fail("add node: %v", err)
		return p
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	start := time.Now()
	if err := p.WaitReady(ctx); err != nil {
		e.Fail("add node %s: %v", p.Name, err)
	}
	e.markFault()
	e.Event("added %s, ready after %s", p.Name, time.Since(start).Round(time.Millisecond))
	return p
}

// Leave makes p depart for good.
func (e *Env) Leave(p *harness.Proc) {
	tasks := e.ActiveOn(p)
	e.markFault()
	e.Event("%s leaves (%d active tasks)", p.Name, len(tasks))
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	err := p.Client().Leave(ctx)
	cancel()
	if err != nil {
		e.Fail("leave %s: %v", p.Name, err)
	}
	e.setState(p, left)
	if err := p.Wait(30 * time.Second); err != nil {
		e.Fail("left node %s did not exit: %v", p.Name, err)
		p.Kill()
	}
	e.Event("%s left after %s", p.Name, time.Since(start).Round(time.Millisecond))
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// voters is how many voters the cluster should settle on.
func (e *Env) voters() int {
	v := min(len(e.Members()), 5)
	if v%2 == 0 {
		v--
	}
	return v
}

// RandomFaults runs a seeded random schedule of faults for d. Every fault
// is undone before the next one, so that a quorum always survives.
func (e *Env) RandomFaults(d time.Duration) {
	end := time.Now().Add(d)
	acts := []string{"kill-leader", "kill-worker", "restart", "pause", "add", "leave"}
	if e.Net != nil {
		acts = append(acts, "partition-leader", "partition-minority")
	}
	if e.tmpfsMB > 0 {
		acts = append(acts, "disk-full")
	}
	for time.Now().Before(end) {
		time.Sleep(time.Duration(500+e.Rand.Intn(1500)) * time.Millisecond)
		act := acts[e.Rand.Intn(len(acts))]
		switch act {
		case "kill-leader", "kill-worker":
			var p *harness.Proc
			if act == "kill-leader" {
				p = e.Leader()
			} else {
				p = e.Follower(true)
			}
			if p == nil {
				continue
			}
			e.Kill(p)
			time.Sleep(time.Duration(500+e.Rand.Intn(2500)) * time.Millisecond)
			e.Restart(p)
		case "restart":
			live := e.Live()
			p := live[e.Rand.Intn(len(live))]
			e.Term(p)
			e.Restart(p)
		case "pause":
			if p := e.Follower(true); p != nil {
				e.Pause(p, time.Duration(3000+e.Rand.Intn(3000))*time.Millisecond)
			}
		case "add":
			if len(e.Members()) >= 5 {
				continue
			}
			e.AddNode()
		case "leave":
			if len(e.Members()) <= 3 {
				continue
			}
			if p := e.Follower(false); p != nil {
				e.Leave(p)
			}
		case "partition-leader":
			if l := e.Leader(); l != nil {
				e.Isolate([]*harness.Proc{l}, time.Duration(4000+e.Rand.Intn(4000))*time.Millisecond)
			}
		case "disk-full":
			if p := e.Follower(true); p != nil {
				e.DiskFull(p, time.Duration(2000+e.Rand.Intn(3000))*time.Millisecond)
			}
		case "partition-minority":
			if p := e.Follower(true); p != nil {
				e.Isolate([]*harness.Proc{p}, time.Duration(3000+e.Rand.Intn(4000))*time.Millisecond)
			}
		}
		e.WaitHealthy(e.voters(), 60*time.Second)
	}
}
