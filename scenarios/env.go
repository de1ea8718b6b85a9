// Package scenarios runs real multi-process ragnode clusters under faults
// (kill -9, SIGTERM restarts, network partitions, SIGSTOP, growth and
// departure) while a workload submits documents, then checks invariants:
// every file ends exactly once, chunk stores hold exactly the expected chunk
// IDs, GPU quota never overbooked, one leader per term, membership converged.
package scenarios

import (
	"context"
	"fmt"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// Profile is the RAGNODE_SCENARIOS setting: "short" (unset), "full" or "off".
func Profile() string {
	switch p := os.Getenv("RAGNODE_SCENARIOS"); p {
	case "", "short":
		return "short"
	default:
		return p
	}
}

// NodeArgs are passed to every node.
var NodeArgs = []string{"--timing", "fast", "--gpus", "1", "--task-gpus", "0.25",
	"--requeue-after", "2s", "--drain-timeout", "3s", "--chunk-size", "48", "--chunk-overlap", "8",
	"--join-timeout", "2m"}

type nodeState int

const (
	up nodeState = iota
	down
	paused
	left
)

func (s nodeState) String() string {
	return [...]string{"up", "down", "paused", "left"}[s]
}

// Event is one entry of the fault schedule.
type Event struct {
	At   time.Duration
	What string
}

// Env is one scenario run: a cluster, its network, the workload, the
// samplers and the collected facts.
type Env struct {
	T     *testing.T
	Name  string
	Seed  int64
	Rand  *rand.Rand
	C     *harness.Cluster
	Net   *harness.Net // nil when namespaces are unavailable
	Start time.Time

	mu       sync.Mutex
	procs    []*harness.Proc
	state    map[string]nodeState
	idx      map[string]int
	events   []Event
	failures []string
	metrics  []string
	faultAt  []time.Time // first fault / last heal, for throughput windows
	gpuBad   []string
	samples  int

	wl       *Workload
	tmpfsMB  int // > 0: every node's data dir is a tmpfs of this size (disk-full faults)
	stopSamp chan struct{}
	sampDone chan struct{}
	nextIP   int
}

// NoNetReason is set when namespaces could not be created.
var noNetOnce sync.Once

// NewEnv starts n nodes (the first bootstraps, the others join) inside
// network namespaces when possible, otherwise on 127.0.0.x.
func NewEnv(t *testing.T, name string, n int, seed int64, needNet bool, extra ...string) *Env {
	t.Helper()
	return newEnv(t, name, n, seed, needNet, 0, extra...)
}

// NewEnvOnTmpfs is NewEnv with every node's data dir on a tmpfs of its own
// of sizeMB, so that DiskFull can fill one node's disk; it skips the test,
// saying why, where tmpfs cannot be mounted (not root).
func NewEnvOnTmpfs(t *testing.T, name string, n int, seed int64, sizeMB int, extra ...string) *Env {
	t.Helper()
	return newEnv(t, name, n, seed, false, sizeMB, extra...)
}

// CanMountTmpfs tells whether NewEnvOnTmpfs can run here, and if not why.
func CanMountTmpfs() (bool, string) {
	if os.Geteuid() != 0 {
		return false, "mounting a tmpfs needs root"
	}
	return true, ""
}

func newEnv(t *testing.T, name string, n int, seed int64, needNet bool, tmpfsMB int, extra ...string) *Env {
	t.Helper()
	if seed == 0 {
		seed = time.Now().UnixNano() % 1_000_000
	}
	e := &Env{T: t, Name: name, Seed: seed, Rand: rand.New(rand.NewSource(seed)),
		state: map[string]nodeState{}, idx: map[string]int{}, tmpfsMB: tmpfsMB}
	e.C = harness.New(t, append(append([]string(nil), NodeArgs...), extra...)...)
	net, err := harness.NewNet(t)
	if err != nil {
		if needNet {
			t.Skipf("SKIP %s: network namespaces unavailable (%v); partition scenarios need them", name, err)
		}
		noNetOnce.Do(func() {
			fmt.Printf("scenarios: network namespaces unavailable (%v); using 127.0.0.x, partition scenarios will be skipped\n", err)
		})
	} else {
		e.Net = net
	}
	t.Logf("%s: seed %d (replay with RAGNODE_SEED=%d), namespaces %v", name, seed, seed, e.Net != nil)
	e.Start = time.Now()
	ps := make([]*harness.Proc, 0, n)
	for i := 0; i < n; i++ {
		p := e.newProc()
		var join []string
		if i > 0 {
			join = []string{ps[0].SerfAddr()}
		}
		if err := p.Start(join...); err != nil {
			t.Fatal(err)
		}
		ps = append(ps, p)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	voters := min(n, 5)
	if voters%2 == 0 {
		voters--
	}
	for _, p := range ps {
		if err := p.WaitReady(ctx); err != nil {
			e.dumpLogs()
			t.Fatal(err)
		}
	}
	if err := harness.WaitHealthy(ctx, ps[0], voters); err != nil {
		e.dumpLogs()
		t.Fatal(err)
	}
	e.Event("cluster of %d up", n)
	e.stopSamp, e.sampDone = make(chan struct{}), make(chan struct{})
	go e.sampler()
	t.Cleanup(func() { e.stopSampler() })
	return e
}

func (e *Env) newProc() *harness.Proc {
	e.mu.Lock()
	e.nextIP++
	i := e.nextIP
	e.mu.Unlock()
	name := fmt.Sprintf("n%d", i)
	ip := fmt.Sprintf("127.0.%d.%d", 50+i, 10+i)
	p := e.C.Add(name, ip)
	if e.tmpfsMB > 0 {
		if err := p.MountTmpfs(e.tmpfsMB); err != nil {
			e.T.Skipf("SKIP %s: data dirs on tmpfs: %v", e.Name, err)
		}
	}
	if e.Net != nil {
		if err := e.Net.Attach(p, i); err != nil {
			e.T.Fatal(err)
		}
	}
	e.mu.Lock()
	e.procs = append(e.procs, p)
	e.state[name] = up
	e.idx[name] = i
	e.mu.Unlock()
	return p
}

// Event appends a line to the fault schedule.
func (e *Env) Event(format string, args ...any) {
	ev := Event{At: time.Since(e.Start).Round(10 * time.Millisecond), What: fmt.Sprintf(format, args...)}
	e.mu.Lock()
	e.events = append(e.events, ev)
	e.mu.Unlock()
	if testing.Verbose() {
		fmt.Printf("  [%s +%6s] %s\n", e.Name, ev.At, ev.What)
	}
}

// Metric records a figure for the report.
func (e *Env) Metric(format string, args ...any) {
	e.mu.Lock()
	e.metrics = append(e.metrics, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

// Fail records a violated invariant (the test fails at the report).
func (e *Env) Fail(format string, args ...any) {
	e.mu.Lock()
	e.failures = append(e.failures, fmt.Sprintf(format, args...))
	e.mu.Unlock()
}

// Procs returns every process ever started, in order.
func (e *Env) Procs() []*harness.Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]*harness.Proc(nil), e.procs...)
}

// Live returns the processes that are up (not down, paused or left).
func (e *Env) Live() []*harness.Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*harness.Proc
	for _, p := range e.procs {
		if e.state[p.Name] == up {
			out = append(out, p)
		}
	}
	return out
}

// Member returns the processes that belong to the cluster (not left).
func (e *Env) Members() []*harness.Proc {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []*harness.Proc
	for _, p := range e.procs {
		if e.state[p.Name] != left {
			out = append(out, p)
		}
	}
	return out
}

func (e *Env) setState(p *harness.Proc, s nodeState) {
	e.mu.Lock()
	e.state[p.Name] = s
	e.mu.Unlock()
}

func (e *Env) stateOf(p *harness.Proc) nodeState {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.state[p.Name]
}

func (e *Env) markFault() {
	e.mu.Lock()
	e.faultAt = append(e.faultAt, time.Now())
	e.mu.Unlock()
}

func quick(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}

// LocalStatus asks one node for its own view (never forwarded).
func LocalStatus(p *harness.Proc, d time.Duration) (transport.Status, error) {
	ctx, cancel := quick(d)
	defer cancel()
	var st transport.Status
	err := p.Client().Do(ctx, http.MethodGet, "/v1/status", url.Values{"local": {"1"}}, nil, &st)
	return st, err
}

// Leader returns the live process that the live nodes agree leads, or nil.
func (e *Env) Leader() *harness.Proc {
	for _, p := range e.Live() {
		st, err := LocalStatus(p, time.Second)
		if err != nil || st.LeaderID == "" {
			continue
		}
		if st.LeaderID == st.NodeID {
			return p
		}
		for _, q := range e.Live() {
			if id, _ := nodeID(q); id == st.LeaderID {
				return q
			}
		}
	}
	return nil
}

var idCache sync.Map

// nodeID reads the node's ID from its data dir.
func nodeID(p *harness.Proc) (string, error) {
	if v, ok := idCache.Load(p.DataDir); ok {
		return v.(string), nil
	}
	b, err := os.ReadFile(p.DataDir + "/node-id")
	if err != nil {
		return "", err
	}
	id := strings.TrimSpace(string(b))
	idCache.Store(p.DataDir, id)
	return id, nil
}

// WaitLeader waits until a live node other than not leads, and returns it.
func (e *Env) WaitLeader(not string, d time.Duration) (*harness.Proc, error) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if l := e.Leader(); l != nil && l.Name != not {
			return l, nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return nil, fmt.Errorf("no leader other than %q within %s", not, d)
}

// Follower returns a live non-leader, preferring one with running tasks.
func (e *Env) Follower(withTasks bool) *harness.Proc {
	l := e.Leader()
	var cands []*harness.Proc
	for _, p := range e.Live() {
		if l == nil || p.Name != l.Name {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	if withTasks && l != nil {
		best, bestN := cands[e.Rand.Intn(len(cands))], -1
		for _, p := range cands {
			if n := len(e.ActiveOn(p)); n > bestN {
				best, bestN = p, n
			}
		}
		return best
	}
	return cands[e.Rand.Intn(len(cands))]
}

// ActiveOn lists the IDs of tasks assigned to or running on p, per the
// ledger of any live node.
func (e *Env) ActiveOn(p *harness.Proc) []string {
	id, err := nodeID(p)
	if err != nil {
		return nil
	}
	for _, q := range e.Live() {
		if q == p {
			continue
		}
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

// WaitMoved waits until none of ids is active on p any more (requeued and
// placed elsewhere, or finished), asking the other live nodes; it returns
// how long that took.
func (e *Env) WaitMoved(p *harness.Proc, ids []string, d time.Duration) (time.Duration, error) {
	var via []*harness.Proc
	for _, q := range e.Live() {
		if q != p {
			via = append(via, q)
		}
	}
	return e.WaitMovedVia(p, ids, via, d)
}

// sampler polls every live node's members for GPU overbooking.
func (e *Env) sampler() {
	defer close(e.sampDone)
	tk := time.NewTicker(300 * time.Millisecond)
	defer tk.Stop()
	for {
		select {
		case <-e.stopSamp:
			return
		case <-tk.C:
		}
		for _, p := range e.Live() {
			ctx, cancel := quick(time.Second)
			ms, err := p.Client().Members(ctx)
			cancel()
			if err != nil {
				continue
			}
			e.mu.Lock()
			e.samples++
			for _, m := range ms {
				for _, g := range m.GPUs {
					if g.MilliUsed > g.MilliTotal || g.MilliUsed < 0 {
						e.gpuBad = append(e.gpuBad, fmt.Sprintf("%s sees %s gpu%d milli_used %d > total %d at +%s",
							p.Name, m.Name, g.Index, g.MilliUsed, g.MilliTotal, time.Since(e.Start).Round(time.Millisecond)))
					}
				}
			}
			e.mu.Unlock()
		}
	}
}

func (e *Env) stopSampler() {
	if e.stopSamp == nil {
		return
	}
	select {
	case <-e.stopSamp:
	default:
		close(e.stopSamp)
	}
	<-e.sampDone
}

func (e *Env) dumpLogs() {
	for _, p := range e.Procs() {
		e.T.Logf("---- %s log tail (%s) ----\n%s", p.Name, p.LogPath(), p.TailLog(3000))
	}
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
