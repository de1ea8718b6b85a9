package scenarios

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// gate skips a scenario by profile: short runs only the short set, full
// runs all, off none. The reason is printed.
func gate(t *testing.T, inShort bool) {
	t.Helper()
	switch p := Profile(); {
	case p == "off":
		fmt.Printf("SKIP %s: RAGNODE_SCENARIOS=off\n", t.Name())
		t.Skip("RAGNODE_SCENARIOS=off")
	case p == "short" && !inShort:
		t.Skip("full profile only (RAGNODE_SCENARIOS=full)")
	case testing.Short():
		fmt.Printf("SKIP %s: -short\n", t.Name())
		t.Skip("-short")
	}
}

func full() bool { return Profile() == "full" }

func seed() int64 {
	if s, err := strconv.ParseInt(os.Getenv("RAGNODE_SEED"), 10, 64); err == nil {
		return s
	}
	return 0
}

// 1. leader-kill: kill -9 the leader under load, three times in a row (once
// in the short profile).
func TestLeaderKill(t *testing.T) {
	gate(t, true)
	e := NewEnv(t, "leader-kill", 3, seed(), false)
	rounds := 1
	if full() {
		rounds = 3
	}
	e.RunWorkload(150*time.Millisecond, 0)
	time.Sleep(2 * time.Second)
	for i := 0; i < rounds; i++ {
		l := e.Leader()
		if l == nil {
			t.Fatal("no leader")
		}
		e.Kill(l)
		time.Sleep(1500 * time.Millisecond)
		e.Restart(l)
		e.WaitHealthy(3, 30*time.Second)
	}
	time.Sleep(time.Second)
	e.Finish()
}

// 2. worker-kill: kill -9 a non-leader with tasks running.
func TestWorkerKill(t *testing.T) {
	gate(t, true)
	e := NewEnv(t, "worker-kill", 3, seed(), false)
	w := e.RunWorkload(150*time.Millisecond, 0)
	w.Burst(12)
	f := e.Follower(true)
	e.Kill(f)
	time.Sleep(2 * time.Second)
	e.Restart(f)
	e.WaitHealthy(3, 30*time.Second)
	time.Sleep(time.Second)
	e.Finish()
}

// 3. rolling-restart: restart every node in turn with SIGTERM (followers
// first, leader last) while submitting; 3 nodes, then 5 in the full profile.
// No submission may be refused for longer than a leader handover.
func TestRollingRestart(t *testing.T) {
	gate(t, true)
	sizes := []int{3}
	if full() {
		sizes = []int{3, 5}
	}
	for _, n := range sizes {
		t.Run(fmt.Sprintf("%dnodes", n), func(t *testing.T) {
			e := NewEnv(t, fmt.Sprintf("rolling-restart-%d", n), n, seed(), false)
			w := e.RunWorkload(200*time.Millisecond, 0)
			time.Sleep(time.Second)
			w.Burst(150) // in flight through the restarts
			l := e.Leader()
			var order []*harness.Proc
			for _, p := range e.Live() {
				if l == nil || p.Name != l.Name {
					order = append(order, p)
				}
			}
			if l != nil {
				order = append(order, l)
			}
			voters := min(n, 5)
			for _, p := range order {
				e.Term(p)
				e.Restart(p)
				e.WaitHealthy(voters, 60*time.Second)
				time.Sleep(time.Second) // keep submitting between restarts
			}
			time.Sleep(time.Second)
			e.checkEventHistory()
			e.Finish()
			if lat, id := w.MaxLatency(); lat > 10*time.Second {
				t.Errorf("submission %s refused for %s, longer than a leader handover", id, lat)
			}
		})
	}
}

// 4. partition-leader: cut the leader off from the majority for 20 s, heal;
// the old leader must commit nothing while cut off.
func TestPartitionLeader(t *testing.T) {
	gate(t, false)
	e := NewEnv(t, "partition-leader", 3, seed(), true)
	e.RunWorkload(200*time.Millisecond, 0)
	time.Sleep(2 * time.Second)
	l := e.Leader()
	if l == nil {
		t.Fatal("no leader")
	}
	e.Isolate([]*harness.Proc{l}, 20*time.Second)
	time.Sleep(3 * time.Second)
	e.Finish()
}

// 5. partition-minority: cut one follower with tasks off, heal; its tasks
// are requeued and its late completions are rejected (stale attempt).
func TestPartitionMinority(t *testing.T) {
	gate(t, false)
	e := NewEnv(t, "partition-minority", 3, seed(), true, "--log-level", "debug")
	w := e.RunWorkload(200*time.Millisecond, 0)
	w.Burst(12)
	f := e.Follower(true)
	e.Isolate([]*harness.Proc{f}, 8*time.Second)
	time.Sleep(3 * time.Second)
	e.Finish()
	// The cut-off node's completions of requeued attempts reach the leader
	// only after the heal, and must be refused as stale.
	stale := CountLog(f, "report rejected", "stale attempt")
	displaced := CountLog(f, "run ended without report")
	fmt.Printf("partition-minority: %s reported %d late results rejected as stale, %d runs ended displaced\n", f.Name, stale, displaced)
	if stale+displaced == 0 {
		t.Errorf("cut-off %s shows neither a stale rejection nor a displaced run", f.Name)
	}
}

// 6. slow-node: SIGSTOP a node past the requeue time, SIGCONT it.
func TestSlowNode(t *testing.T) {
	gate(t, false)
	e := NewEnv(t, "slow-node", 3, seed(), false)
	w := e.RunWorkload(200*time.Millisecond, 0)
	w.Burst(12)
	f := e.Follower(true)
	e.Pause(f, 6*time.Second)
	time.Sleep(3 * time.Second)
	e.Finish()
}

// 7. grow-and-shrink: add two nodes mid-run, then make one leave.
func TestGrowAndShrink(t *testing.T) {
	gate(t, false)
	e := NewEnv(t, "grow-and-shrink", 3, seed(), false)
	e.RunWorkload(150*time.Millisecond, 0)
	time.Sleep(2 * time.Second)
	e.AddNode()
	a := e.AddNode()
	e.WaitHealthy(5, 60*time.Second)
	time.Sleep(2 * time.Second)
	e.Leave(a)
	e.WaitHealthy(3, 60*time.Second)
	time.Sleep(time.Second)
	e.Finish()
}

// 8. random: a seeded random schedule of the faults above for a fixed time.
func TestRandom(t *testing.T) {
	gate(t, false)
	d := 60 * time.Second
	if s, err := time.ParseDuration(os.Getenv("RAGNODE_RANDOM_DURATION")); err == nil {
		d = s
	}
	// On tmpfs data dirs where they can be mounted, so the schedule
	// includes disk-full faults.
	var e *Env
	if ok, why := CanMountTmpfs(); ok {
		e = NewEnvOnTmpfs(t, "random", 3, seed(), diskScenarioMB)
	} else {
		fmt.Printf("random: no disk-full faults in the schedule: %s\n", why)
		e = NewEnv(t, "random", 3, seed(), false)
	}
	fmt.Printf("random scenario seed %d (replay: RAGNODE_SEED=%d)\n", e.Seed, e.Seed)
	e.RunWorkload(250*time.Millisecond, 0)
	e.RandomFaults(d)
	e.Finish()
}

// diskScenarioMB is the size of each node's tmpfs data dir in the disk
// scenarios: room for a few minutes of workload, small enough to fill
// quickly.
const diskScenarioMB = 192

// 9. disk-full: a follower's data disk fills up under load (its own tmpfs,
// filled to ENOSPC): uploads through it answer 507, it drains itself, its
// tasks run elsewhere, and it takes work again once space is freed.
func TestDiskFull(t *testing.T) {
	gate(t, false)
	if ok, why := CanMountTmpfs(); !ok {
		fmt.Printf("SKIP %s: %s\n", t.Name(), why)
		t.Skip(why)
	}
	e := NewEnvOnTmpfs(t, "disk-full", 3, seed(), diskScenarioMB)
	w := e.RunWorkload(150*time.Millisecond, 0)
	w.Burst(12)
	f := e.Follower(true)
	if f == nil {
		t.Fatal("no follower")
	}
	e.DiskFull(f, 3*time.Second)
	e.WaitHealthy(3, 30*time.Second)
	time.Sleep(time.Second)
	e.Finish()
}

// 10. election-churn: SIGSTOP whoever leads, four times over, each for
// longer than an election. The cluster keeps every task, and the leader's
// status says the elections churn (issue 27: a churning cluster said
// healthy before) with the changes counted, while Raft itself heals.
func TestElectionChurn(t *testing.T) {
	gate(t, false)
	e := NewEnv(t, "election-churn", 3, seed(), false)
	e.RunWorkload(200*time.Millisecond, 0)
	time.Sleep(2 * time.Second)
	const pauses = 4
	for i := 0; i < pauses; i++ {
		l := e.Leader()
		if l == nil {
			t.Fatal("no leader")
		}
		e.Pause(l, 3*time.Second)
		e.WaitHealthy(3, 30*time.Second)
	}
	var last transport.Status
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if l := e.Leader(); l != nil {
			if st, err := LocalStatus(l, 2*time.Second); err == nil {
				last = st
				if st.ElectionChurn && !st.Healthy {
					break
				}
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !last.ElectionChurn || last.Healthy || last.LeaderChanges < pauses || !slices.ContainsFunc(last.Unhealthy, func(r string) bool { return strings.Contains(r, "election churn") }) {
		e.Fail("after %d leader pauses status shows no churn: %+v", pauses, last)
	} else {
		e.Metric("after %d leader pauses: %d leader changes in 10 min, longest leaderless gap %d ms, healthy %v", pauses, last.LeaderChanges, last.LongestLeaderlessMS, last.Healthy)
	}
	e.Finish()
}

// checkEventHistory holds issue 27's rules for the event history after
// faults: repair summaries (at most one per kind per minute) are at most a
// quarter of the events, and every message is printable text.
func (e *Env) checkEventHistory() {
	live := e.Live()
	if len(live) == 0 {
		e.Fail("event history: no live node")
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	evs, err := live[0].Client().ConsoleEvents(ctx, 0)
	if err != nil {
		e.Fail("event history: %v", err)
		return
	}
	repairs := 0
	for _, ev := range evs {
		if ev.Kind == "repair" {
			repairs++
		}
		if i := strings.IndexFunc(ev.Msg, func(r rune) bool { return unicode.IsControl(r) || r == utf8.RuneError }); i >= 0 {
			e.Fail("event %d (%s) holds an unprintable character at byte %d: %q", ev.Seq, ev.Kind, i, ev.Msg)
		}
	}
	if repairs*4 > len(evs) {
		e.Fail("event history: %d of %d events are repair summaries (more than a quarter)", repairs, len(evs))
	}
	e.Metric("event history: %d events, %d repair summaries", len(evs), repairs)
}
