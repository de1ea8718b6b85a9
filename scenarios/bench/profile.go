package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/node"
	"github.com/ragnode/ragnode/transport"
)

var (
	flagProfile         = flag.String("profile", "", "instead of the benchmarks: run an in-process 3-node cluster under the ledger load and write CPU, block and mutex profiles with this prefix")
	flagProfileN        = flag.Int("profile-n", 10000, "files submitted under -profile")
	flagProfileShared   = flag.Bool("profile-shared", false, "-profile: submit with --shared-path (no blob work)")
	flagProfileWait     = flag.Bool("profile-wait", false, "-profile: keep profiling until every task finished")
	flagProfileRunner   = flag.String("profile-runner", "sleep:50ms", "-profile: the nodes' runner")
	flagProfileNodes    = flag.Int("profile-nodes", 3, "-profile: nodes in the in-process cluster")
	flagProfileTiming   = flag.String("profile-timing", "fast", "-profile: the nodes' --timing (fast or lan)")
	flagProfilePrefetch = flag.Int("profile-prefetch", 0, "-profile: the nodes' --prefetch (0: the default)")
	flagProfileBulk     = flag.Bool("profile-bulk", false, "-profile: submit as `ragnode submit FOLDER` does (bulk requests of 256 files, 8 at a time, to the first node) instead of 64 one-by-one clients")
)

// runProfile starts three nodes in this process (node.Start, the same
// configuration `ragnode start --timing fast --gpus 1 --task-gpus 0.25`
// builds), submits files from 64 clients and profiles the whole process,
// so the profile covers the three nodes together.
func runProfile(ctx context.Context) error {
	tb := newTB("profile")
	defer tb.close()
	runner, err := node.ParseRunner(*flagProfileRunner)
	if err != nil {
		return err
	}
	var nodes []*node.Node
	defer func() {
		for _, n := range nodes {
			n.Kill()
		}
	}()
	nn := *flagProfileNodes
	for i := 0; i < nn; i++ {
		cfg := node.Config{DataDir: tb.TempDir(), Name: fmt.Sprintf("p%d", i+1), Bind: fmt.Sprintf("127.77.250.%d", 1+i),
			HTTPPort: node.DefaultHTTPPort, RaftPort: node.DefaultRaftPort, SerfPort: node.DefaultSerfPort,
			Timing: node.Timing(*flagProfileTiming), StabilizationTime: time.Second, GPU: gpu.Config{Declared: 1}, TaskMilli: 250, Runner: runner, Prefetch: *flagProfilePrefetch}
		if i > 0 {
			cfg.Join = []string{nodes[0].SerfAddr()}
		}
		n, err := node.Start(cfg)
		if err != nil {
			return err
		}
		nodes = append(nodes, n)
	}
	var addrs []string
	for _, n := range nodes {
		addrs = append(addrs, n.HTTPAddr())
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		voters := 0
		if f := nodes[0].Raft().GetConfiguration(); f.Error() == nil {
			voters = len(f.Configuration().Servers)
		}
		regd := 0
		nodes[0].FSM().View(func(s *fsm.State) { regd = len(s.Nodes) })
		if voters == nn && regd == nn {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("in-process cluster did not form")
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(2 * time.Second)
	shared := ""
	if *flagProfileShared {
		shared = filepath.Join(tb.TempDir(), "shared.txt")
		_ = os.WriteFile(shared, []byte("shared\n"), 0o644)
	}
	runtime.SetBlockProfileRate(10000)
	runtime.SetMutexProfileFraction(10)
	f, err := os.Create(*flagProfile + ".cpu.pprof")
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	idx0 := nodes[0].Raft().AppliedIndex()
	var d time.Duration
	var errs int
	if *flagProfileBulk {
		d, errs = submitBulkLikeCLI(ctx, addrs[0], *flagProfileN, "p", "prof")
	} else {
		_, d, errs = submitMany(ctx, addrs, *flagProfileN, 64, "p", "prof", shared)
	}
	logf("profile: %d files in %s (%.0f/s), %d errors, %d raft entries", *flagProfileN, d.Round(time.Millisecond), float64(*flagProfileN)/d.Seconds(), errs,
		nodes[0].Raft().AppliedIndex()-idx0)
	if *flagProfileWait {
		t0 := time.Now()
		for {
			var fin, q, act int
			nodes[0].FSM().View(func(s *fsm.State) {
				c := s.Counts()
				fin = c[fsm.Completed] + c[fsm.Failed] + c[fsm.Cancelled]
				q = c[fsm.Queued]
				act = s.ActiveTotal()
			})
			if fin >= *flagProfileN || time.Since(t0) > 2*time.Minute {
				logf("profile: all finished %s after the last submit (%d raft entries in all)", time.Since(t0).Round(time.Millisecond), nodes[0].Raft().AppliedIndex()-idx0)
				break
			}
			if time.Since(t0)%time.Second < 20*time.Millisecond {
				logf("  finished %d queued %d active %d", fin, q, act)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	pprof.StopCPUProfile()
	for _, name := range []string{"block", "mutex"} {
		pf, err := os.Create(*flagProfile + "." + name + ".pprof")
		if err != nil {
			return err
		}
		_ = pprof.Lookup(name).WriteTo(pf, 0)
		pf.Close()
	}
	logf("wrote %s.{cpu,block,mutex}.pprof", *flagProfile)
	return nil
}

// submitBulkLikeCLI submits n tiny files the way `ragnode submit FOLDER`
// does: bulk requests of 256 files, 8 in flight, to one node.
func submitBulkLikeCLI(ctx context.Context, addr string, n int, partition, prefix string) (time.Duration, int) {
	c := transport.NewClient(addr, "")
	t0 := time.Now()
	var next atomic.Int64
	var errs atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(256) - 256)
				if lo >= n {
					return
				}
				hi := min(lo+256, n)
				var files []transport.BatchFile
				for i := lo; i < hi; i++ {
					body := fileBody(prefix, i)
					files = append(files, transport.BatchFile{FileID: fmt.Sprintf("%s/f%06d.txt", prefix, i), FileName: fmt.Sprintf("f%06d.txt", i),
						Size: int64(len(body)), Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }})
				}
				res, err := c.SubmitBatch(ctx, partition, nil, files)
				if err != nil {
					logf("  bulk submit: %v", err)
					errs.Add(int64(hi - lo))
					continue
				}
				for _, r := range res {
					if r.Error != "" {
						errs.Add(1)
					}
				}
			}
		}()
	}
	wg.Wait()
	return time.Since(t0), int(errs.Load())
}
