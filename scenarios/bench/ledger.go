package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
)

// Cluster flags shared by the ledger, dispatch and failover benchmarks: 3
// nodes, one virtual GPU each in quarter slots (12 slots), fixed 50 ms tasks.
var slotArgs = []string{"--gpus", "1", "--task-gpus", "0.25"}

// clusterArgs are a bench node's flags. The bench's 64 one-by-one clients
// all come from 127.0.0.1 without a token, which the per-client upload
// cap (32) would refuse: the cap is off here, as it measures throughput.
func clusterArgs(timing, runner string, extra ...string) []string {
	a := append([]string{"--timing", timing, "--runner", runner, "--max-uploads-per-token", "0"}, slotArgs...)
	return append(a, extra...)
}

// benchLedger measures tasks accepted into the replicated ledger per second
// on a fresh 3-node cluster (fsync on: raft-boltdb and blob writes sync),
// three ways: the CLI submitting a folder, 64 concurrent Go clients posting
// one file each, and (diagnostic) the same 64 clients with --shared-path,
// which skips the blob write and its replication.
func benchLedger(ctx context.Context, tb *benchTB) []section {
	n := scale(20000, 300)
	const target = 5000.0
	type run struct {
		name  string
		do    func(cl *cluster) (time.Duration, int)
		check bool
	}
	bin := harness.Binary(tb)
	dir := filepath.Join(tb.TempDir(), "folder")
	makeFiles(dir, n, "bulk")
	shared := filepath.Join(tb.TempDir(), "shared.txt")
	if err := os.WriteFile(shared, []byte("one shared file\n"), 0o644); err != nil {
		panic(err)
	}
	runs := []run{
		{"bulk: `ragnode submit FOLDER` (the CLI, default flags)", func(cl *cluster) (time.Duration, int) {
			t0 := time.Now()
			cctx, cancel := context.WithTimeout(ctx, ledgerCap)
			defer cancel()
			cmd := exec.CommandContext(cctx, bin, "submit", dir, "--addr", cl.procs[1].HTTPAddr(), "-o", "json")
			cmd.Stdout = nil
			out, err := cmd.CombinedOutput()
			d := time.Since(t0)
			if cctx.Err() != nil {
				logf("  cli submit stopped at the %s cap", ledgerCap)
				return d, 0
			}
			if err != nil {
				logf("  cli submit: %v: %s", err, tail(out, 400))
				return d, 1
			}
			return d, 0
		}, true},
		{"one by one: 64 concurrent clients over the 3 nodes", func(cl *cluster) (time.Duration, int) {
			_, d, errs := submitMany(ctx, addrsOf(cl.procs), n, 64, "p", "one", "")
			return d, errs
		}, true},
		{"diagnostic: 64 clients, `--shared-path` (no blob write, no blob replication)", func(cl *cluster) (time.Duration, int) {
			_, d, errs := submitMany(ctx, addrsOf(cl.procs), n/2, 64, "p", "shared", shared)
			return d, errs
		}, false},
	}
	sec := section{
		Title: "1. Ledger throughput (3 nodes, loopback, fsync on)",
		Setup: fmt.Sprintf("A fresh 3-node cluster per row (`--timing fast --runner sleep:50ms --gpus 1 --task-gpus 0.25`: tasks are scheduled and run while the "+
			"submissions arrive, as in production); %d tiny distinct .txt files per row. Rate = files / wall time from the first request to the last "+
			"acknowledgement; every acknowledged task is in the replicated ledger (checked through `status`).", n),
		Header: []string{"submission", "tasks", "wall", "tasks/s", "target", "status"},
	}
	for i, r := range runs {
		if ctx.Err() != nil {
			break
		}
		logf("ledger: %s", r.name)
		rtb := newTB("ledger")
		func() {
			defer rtb.close()
			cl := startCluster(rtb, 3, 10+10*i, 3, clusterArgs("fast", "sleep:50ms")...)
			submitDeadline = time.Now().Add(ledgerCap)
			d, errs := r.do(cl)
			submitDeadline = time.Time{}
			cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			m, err := counts(cctx, cl.procs[0].Client())
			cancel()
			total := 0
			for _, v := range m {
				total += v
			}
			rate := float64(total) / d.Seconds()
			logf("  %d tasks in ledger (%v), %d errors, %s, %.0f tasks/s", total, err, errs, d.Round(time.Millisecond), rate)
			tgt, st := fmt.Sprintf("≥ %.0f/s", target), met(rate >= target)
			if !r.check {
				tgt, st = "(diagnostic)", "-"
			}
			if errs > 0 {
				st += fmt.Sprintf(" (%d errors)", errs)
			}
			if r.check && total < n {
				st += fmt.Sprintf(" (stopped at the %s cap)", ledgerCap)
			}
			sec.Rows = append(sec.Rows, []string{r.name, fmt.Sprint(total), secs(d), fmt.Sprintf("%.0f", rate), tgt, st})
		}()
	}
	return []section{sec}
}

// ledgerCap bounds each ledger row so `make bench` stays under 10 minutes;
// a row that hits it reports the tasks accepted in that time.
const ledgerCap = 40 * time.Second

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
