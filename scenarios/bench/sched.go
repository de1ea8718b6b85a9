package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
)

// benchSched measures scheduling efficiency: with `--runner sleep:L` and K
// slots (4 per node: `--gpus 1 --task-gpus 0.25`), N tasks submitted with
// the CLI (`ragnode submit FOLDER`), time T from the first submit to the last
// completion (the ledger's `finished`); efficiency = (N·L/K) / T.
func benchSched(ctx context.Context, tb *benchTB) []section {
	bin := harness.Binary(tb)
	type cfg struct {
		lat   time.Duration
		tasks int
		nodes int
		tgt   float64
	}
	var cfgs []cfg
	for _, l := range []struct {
		lat   time.Duration
		tasks int
		tgt   float64
	}{{50 * time.Millisecond, scale(2000, 40), 0.95}, {10 * time.Millisecond, scale(5000, 40), 0.85}} {
		for _, k := range []int{1, 3, 5} {
			cfgs = append(cfgs, cfg{l.lat, l.tasks, k, l.tgt})
		}
	}
	folders := map[int]string{}
	sec := section{
		Title: "3. Scheduling efficiency (fixed-latency runner)",
		Setup: "Each row: a fresh cluster, every node `ragnode start --timing fast --runner sleep:L --gpus 1 --task-gpus 0.25` (4 slots per node), " +
			"the tasks submitted with `ragnode submit FOLDER` (tiny .txt files), T = first submit → last completion (ledger `finished`). " +
			"Ideal = tasks × L / K. Reference (Dask distributed, this machine, 3 workers, 12 slots): 0.97 (50 ms), 0.85 (10 ms).",
		Header: []string{"task", "nodes", "slots K", "tasks", "submit done", "T", "ideal", "efficiency", "target", "status"},
	}
	for i, c := range cfgs {
		if ctx.Err() != nil {
			break
		}
		dir, ok := folders[c.tasks]
		if !ok {
			dir = filepath.Join(tb.TempDir(), "folder")
			makeFiles(dir, c.tasks, "sched")
			folders[c.tasks] = dir
		}
		k := 4 * c.nodes
		ideal := time.Duration(float64(c.tasks) * float64(c.lat) / float64(k))
		logf("sched: %s x %d on %d nodes (K=%d, ideal %s)", c.lat, c.tasks, c.nodes, k, ideal.Round(time.Millisecond))
		row := func() []string {
			rtb := newTB("sched")
			defer rtb.close()
			cl := startCluster(rtb, c.nodes, 60+i, c.nodes, clusterArgs("fast", "sleep:"+c.lat.String())...)
			t0 := time.Now()
			cmd := exec.CommandContext(ctx, bin, "submit", dir, "--addr", cl.procs[0].HTTPAddr(), "--partition", "sched", "-o", "json")
			out, err := cmd.CombinedOutput()
			subDone := time.Since(t0)
			if err != nil {
				logf("  cli submit: %v: %s", err, tail(out, 300))
			}
			cctx, cancel := context.WithTimeout(ctx, 4*ideal+90*time.Second)
			defer cancel()
			if _, err := waitFinished(cctx, cl.procs[0].Client(), c.tasks, 100*time.Millisecond); err != nil {
				return []string{c.lat.String(), fmt.Sprint(c.nodes), fmt.Sprint(k), fmt.Sprint(c.tasks), secs(subDone), "-", secs(ideal), "-", fmt.Sprintf("≥ %.2f", c.tgt), "**missed** (" + err.Error() + ")"}
			}
			all, err := cl.procs[0].Client().Tasks(cctx, "", "sched")
			if err != nil {
				tb.Fatalf("tasks: %v", err)
			}
			var last int64
			done := 0
			for _, t := range all {
				if t.State == "completed" {
					done++
				}
				if t.Finished > last {
					last = t.Finished
				}
			}
			T := time.Unix(0, last).Sub(t0)
			eff := float64(ideal) / float64(T)
			logf("  submit %s, T %s, efficiency %.3f (%d completed)", subDone.Round(time.Millisecond), T.Round(time.Millisecond), eff, done)
			st := met(eff >= c.tgt)
			if done != c.tasks {
				st += fmt.Sprintf(" (%d of %d completed)", done, c.tasks)
			}
			return []string{c.lat.String(), fmt.Sprint(c.nodes), fmt.Sprint(k), fmt.Sprint(c.tasks), secs(subDone), secs(T), secs(ideal),
				fmt.Sprintf("%.3f", eff), fmt.Sprintf("≥ %.2f", c.tgt), st}
		}()
		sec.Rows = append(sec.Rows, row)
	}
	return []section{sec}
}
