package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// benchTB lets the test harness run outside `go test`: it satisfies
// testing.TB (the embedded nil interface provides the unexported method),
// records cleanups and temp dirs, and turns Fatal into a panic that the
// section runner recovers.
type benchTB struct {
	testing.TB
	name     string
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

func newTB(name string) *benchTB { return &benchTB{name: name} }

func (t *benchTB) Helper()      {}
func (t *benchTB) Name() string { return t.name }
func (t *benchTB) Cleanup(f func()) {
	t.mu.Lock()
	t.cleanups = append(t.cleanups, f)
	t.mu.Unlock()
}
func (t *benchTB) TempDir() string {
	d, err := os.MkdirTemp("", "ragnode-bench-")
	if err != nil {
		panic(err)
	}
	t.mu.Lock()
	t.dirs = append(t.dirs, d)
	t.mu.Unlock()
	return d
}
func (t *benchTB) Fatal(args ...any)                 { panic(fmt.Sprint(args...)) }
func (t *benchTB) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (t *benchTB) Error(args ...any)                 { logf("error: %s", fmt.Sprint(args...)) }
func (t *benchTB) Errorf(format string, args ...any) { logf("error: "+format, args...) }
func (t *benchTB) Log(args ...any)                   { logf("%s", fmt.Sprint(args...)) }
func (t *benchTB) Logf(format string, args ...any)   { logf(format, args...) }

// close runs cleanups (kills the processes) and removes temp dirs.
func (t *benchTB) close() {
	t.mu.Lock()
	cs, ds := t.cleanups, t.dirs
	t.cleanups, t.dirs = nil, nil
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	for _, d := range ds {
		_ = os.RemoveAll(d)
	}
}

var start = time.Now()

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "[%6.1fs] %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
}

// cluster is a started set of real ragnode processes.
type cluster struct {
	tb    *benchTB
	c     *harness.Cluster
	procs []*harness.Proc
}

// startCluster starts k nodes on 127.0.0.(base+i) with args and waits until
// every node is registered in the ledger (and, when voters > 0, until the
// cluster is healthy with that many voters).
// benchToken, when set (-sched-pprof), starts clusters with this admin
// token, which /debug/pprof needs.
var benchToken string

func startCluster(tb *benchTB, k, base, voters int, args ...string) *cluster {
	hc := harness.New(tb)
	hc.Token = benchToken
	var ps []*harness.Proc
	for i := 0; i < k; i++ {
		// 127.77.BASE.x: clear of the 127.0.0.x addresses tests use.
		p := hc.Add(fmt.Sprintf("n%d", i+1), fmt.Sprintf("127.77.%d.%d", base, i+1), args...)
		var join []string
		if i > 0 {
			join = []string{ps[0].SerfAddr()}
		}
		if err := p.Start(join...); err != nil {
			tb.Fatalf("start: %v", err)
		}
		ps = append(ps, p)
	}
	cl := &cluster{tb: tb, c: hc, procs: ps}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	for _, p := range ps {
		if err := p.WaitReady(ctx); err != nil {
			tb.Fatalf("%v\n%s", err, p.TailLog(2000))
		}
	}
	if voters > 0 {
		if err := harness.WaitHealthy(ctx, ps[0], voters); err != nil {
			tb.Fatalf("%v", err)
		}
	}
	cl.waitMembers(ctx, k)
	return cl
}

// waitMembers waits until k members are alive and registered with slots.
func (cl *cluster) waitMembers(ctx context.Context, k int) {
	c := cl.procs[0].Client()
	for {
		ms, err := c.Members(ctx)
		if err == nil {
			alive := 0
			for _, m := range ms {
				if m.SerfStatus == "alive" && (len(m.GPUs) > 0 || m.CPUSlots > 0) && !m.Draining {
					alive++
				}
			}
			if alive >= k {
				return
			}
		}
		select {
		case <-ctx.Done():
			cl.tb.Fatalf("only some of %d members registered: %v %+v", k, err, ms)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// leader returns the proc that holds leadership now.
func (cl *cluster) leader(ctx context.Context) *harness.Proc {
	for {
		for _, p := range cl.procs {
			if !p.Running() {
				continue
			}
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			st, err := localStatus(cctx, p)
			cancel()
			if err == nil && st.LeaderID != "" && st.LeaderID == st.NodeID {
				return p
			}
		}
		select {
		case <-ctx.Done():
			cl.tb.Fatalf("no leader found")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// localStatus asks one node for its own view (not forwarded to the leader).
func localStatus(ctx context.Context, p *harness.Proc) (transport.Status, error) {
	var st transport.Status
	err := p.Client().Do(ctx, http.MethodGet, "/v1/status", url.Values{"local": {"1"}}, nil, &st)
	return st, err
}

// pidOf finds a node's process by its --data-dir argument.
func pidOf(p *harness.Proc) int {
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		for i := 0; i+1 < len(args); i++ {
			if args[i] == "--data-dir" && args[i+1] == p.DataDir && strings.Contains(args[0], "ragnode") {
				return pid
			}
		}
	}
	return 0
}

// nodeID returns a proc's node ID (from its local status).
func nodeID(ctx context.Context, p *harness.Proc) string {
	b, err := os.ReadFile(filepath.Join(p.DataDir, "node-id"))
	if err == nil {
		return strings.TrimSpace(string(b))
	}
	return ""
}

// counts returns the cluster's task counts by state.
func counts(ctx context.Context, c *transport.Client) (map[string]int, error) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	st, err := c.Status(cctx)
	if err != nil {
		return nil, err
	}
	return st.Tasks, nil
}

func finishedOf(m map[string]int) int { return m["completed"] + m["failed"] + m["cancelled"] }

// waitFinished polls until at least n tasks are finished.
func waitFinished(ctx context.Context, c *transport.Client, n int, every time.Duration) (map[string]int, error) {
	last := time.Now()
	for {
		m, err := counts(ctx, c)
		if err == nil && finishedOf(m) >= n {
			return m, nil
		}
		if time.Since(last) > 5*time.Second {
			logf("  ... %v", m)
			last = time.Now()
		}
		select {
		case <-ctx.Done():
			return m, fmt.Errorf("waiting for %d finished tasks: %w (last %v, err %v)", n, ctx.Err(), m, err)
		case <-time.After(every):
		}
	}
}

// makeFiles writes n tiny distinct .txt files into dir.
func makeFiles(dir string, n int, prefix string) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	for i := 0; i < n; i++ {
		b := fmt.Appendf(nil, "benchmark document %s %d: a few words of text to index.\n", prefix, i)
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%06d.txt", i)), b, 0o644); err != nil {
			panic(err)
		}
	}
}

// fileBody is the content of tiny file i.
func fileBody(prefix string, i int) []byte {
	return fmt.Appendf(nil, "benchmark document %s %d: a few words of text to index.\n", prefix, i)
}

// submitMany submits n tiny files from conc concurrent clients spread over
// the procs' API addresses; each file is one HTTP request. It returns the
// created tasks' IDs and the client-side ack times, and the wall time.
// submitDeadline, when set, stops submitMany handing out new files.
var submitDeadline time.Time

type submitted struct {
	ID  string
	Ack time.Time
}

func submitMany(ctx context.Context, addrs []string, n, conc int, partition, prefix string, shared string) ([]submitted, time.Duration, int) {
	out := make([]submitted, n)
	var next atomic.Int64
	var errs atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			c := transport.NewClient(addrs[w%len(addrs)], "")
			for {
				i := int(next.Add(1) - 1)
				if i >= n || (!submitDeadline.IsZero() && time.Now().After(submitDeadline)) {
					return
				}
				req := transport.SubmitRequest{Partition: partition, FileID: fmt.Sprintf("%s/f%06d.txt", prefix, i), FileName: fmt.Sprintf("f%06d.txt", i)}
				var body *bytes.Reader
				if shared != "" {
					req.SharedPath = shared
				} else {
					body = bytes.NewReader(fileBody(prefix, i))
				}
				var tv transport.TaskView
				var err error
				for try := 0; try < 5; try++ {
					cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
					if body != nil {
						body.Seek(0, 0)
						tv, err = c.Submit(cctx, req, body)
					} else {
						tv, err = c.Submit(cctx, req, nil)
					}
					cancel()
					if err == nil {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				if err != nil {
					if errs.Add(1) < 5 {
						logf("  submit %d: %v", i, err)
					}
					continue
				}
				out[i] = submitted{ID: tv.ID, Ack: time.Now()}
			}
		}(w)
	}
	wg.Wait()
	return out, time.Since(t0), int(errs.Load())
}

func addrsOf(ps []*harness.Proc) []string {
	var a []string
	for _, p := range ps {
		if p.Running() {
			a = append(a, p.HTTPAddr())
		}
	}
	return a
}

// percentile of sorted durations.
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	k := int(math.Ceil(p/100*float64(len(s)))) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(s) {
		k = len(s) - 1
	}
	return s[k]
}

func median(ds []time.Duration) time.Duration { return percentile(ds, 50) }

func ms(d time.Duration) string { return strconv.FormatFloat(float64(d)/1e6, 'f', 1, 64) + " ms" }

func secs(d time.Duration) string { return strconv.FormatFloat(d.Seconds(), 'f', 2, 64) + " s" }

// rssOf reads VmRSS (bytes) of a process from /proc.
func rssOf(pid int) (uint64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, err := strconv.ParseUint(f[1], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}
