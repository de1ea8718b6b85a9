package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// benchSched measures scheduling efficiency: with `--runner sleep:L` and K
// slots (4 per node: `--gpus 1 --task-gpus 0.25`), N tasks submitted with
// the CLI (`ragnode submit FOLDER`), time T from the first submit to the last
// completion (the ledger's `finished`); efficiency = (N·L/K) / T. Each shape
// runs with `--timing lan` (what users run: the headline), `--timing fast`,
// and on Dask distributed in the same run (scenarios/bench/dask/sched.py:
// as many workers as nodes, 4 threads each), so the ratio compares like
// with like on this machine at this moment. A second table varies
// --prefetch on the hardest shape, which is where its default comes from.
func benchSched(ctx context.Context, tb *benchTB) []section {
	bin := harness.Binary(tb)
	type shape struct {
		lat   time.Duration
		tasks int
		nodes int
	}
	var shapes []shape
	for _, l := range []struct {
		lat   time.Duration
		tasks int
	}{{50 * time.Millisecond, scale(2000, 40)}, {10 * time.Millisecond, scale(5000, 40)}} {
		for _, k := range []int{3, 5, 9} {
			shapes = append(shapes, shape{l.lat, l.tasks, k})
		}
	}
	folders := map[int]string{}
	folder := func(n int) string {
		dir, ok := folders[n]
		if !ok {
			dir = filepath.Join(tb.TempDir(), fmt.Sprint("folder", n))
			makeFiles(dir, n, "sched")
			folders[n] = dir
		}
		return dir
	}
	base := 60
	run := func(s shape, timing string, extra ...string) schedRun {
		base++
		return schedOnce(ctx, bin, base, folder(s.tasks), s.lat, s.tasks, s.nodes, timing, extra...)
	}
	const ratioTarget = 1.05
	sec := section{
		Title: "3. Scheduling efficiency (fixed-latency runner), side by side with Dask distributed",
		Setup: "Each ragnode figure: a fresh cluster, every node `ragnode start --timing T --runner sleep:L --gpus 1 --task-gpus 0.25` (4 slots per node; " +
			fmt.Sprintf("--prefetch %d, the default), `--stabilization-time 1s` so lan clusters finish forming before the run; ", defaultPrefetch) +
			"the tasks submitted with `ragnode submit FOLDER` (tiny .txt files), T = first submit → last completion (ledger `finished`), ideal = tasks × L / K, efficiency = ideal / T. " +
			"Every node is a real `ragnode` process on this machine (9 nodes too). " +
			"Dask: `scenarios/bench/dask/sched.py` in the same bench run, in its strongest setup: a standalone `dask scheduler`, as many `dask worker --no-nanny --nthreads 4 --resources GPU=1` processes as nodes, " +
			"the same tasks (`time.sleep(L)`) submitted at once with `client.map(..., resources={\"GPU\": 0.25})` (the quarter-card shape of ragnode's slots); " +
			"and, as a second column, the weaker `LocalCluster(processes=True)` with nannies that earlier tables used. T = first submit → last completion. " +
			"*lan ÷ Dask* is the headline: ragnode with `--timing lan` (the default users run) over Dask's strongest setup on the same shape.",
		Header: []string{"task", "nodes", "slots K", "tasks", "ideal", "T lan", "efficiency lan", "efficiency fast", "Dask (standalone, no nanny, GPU 0.25)", "Dask LocalCluster", "lan ÷ Dask", "target", "status"},
	}
	dask := daskRunner()
	if dask.err != "" {
		sec.Notes = append(sec.Notes, "Dask distributed unavailable on this machine: "+dask.err+" (Debian: `apt-get install python3-distributed`); its column says so.")
	} else {
		sec.Notes = append(sec.Notes, "Dask: "+dask.version+" via "+dask.python+".")
	}
	if *flagSchedShape != "" {
		// A diagnostic: one shape, lan only, no Dask, no 3b.
		extra := strings.Fields(*flagSchedExtra)
		if *flagSchedPprof != "" {
			benchToken = "bench-admin-token-for-pprof-0123456789"
			extra = append(extra, "--pprof")
		}
		for _, s := range shapes {
			if fmt.Sprintf("%s/%d", s.lat, s.nodes) == *flagSchedShape {
				run(s, "lan", extra...)
			}
		}
		return nil
	}
	for _, s := range shapes {
		if ctx.Err() != nil {
			break
		}
		k := 4 * s.nodes
		ideal := time.Duration(float64(s.tasks) * float64(s.lat) / float64(k))
		logf("sched: %s x %d on %d nodes (K=%d, ideal %s)", s.lat, s.tasks, s.nodes, k, ideal.Round(time.Millisecond))
		lan := run(s, "lan")
		fast := run(s, "fast")
		d := dask.run(ctx, "standalone", s.nodes, s.tasks, s.lat)
		dl := dask.run(ctx, "local", s.nodes, s.tasks, s.lat)
		row := []string{s.lat.String(), fmt.Sprint(s.nodes), fmt.Sprint(k), fmt.Sprint(s.tasks), secs(ideal), lan.T(), lan.eff(), fast.eff(), d.eff(), dl.eff()}
		switch {
		case lan.err != "" || d.err != "":
			row = append(row, "-", fmt.Sprintf("≥ %.2f × Dask", ratioTarget), "**missed** ("+strings.TrimSpace(lan.err+" "+d.err)+")")
		default:
			r := lan.efficiency / d.efficiency
			row = append(row, fmt.Sprintf("%.3f", r), fmt.Sprintf("≥ %.2f", ratioTarget), met(r >= ratioTarget))
		}
		sec.Rows = append(sec.Rows, row)
	}
	// --prefetch on the hardest shape (10 ms tasks, 5 nodes: the most
	// handoffs per second), lan timing.
	depth := section{
		Title: "3b. Prefetch depth (10 ms tasks, 5 nodes, `--timing lan`)",
		Setup: "As table 3, varying `--prefetch` (0 = off: each slot waits for its completion to commit and the leader's chained assignment to come back). " +
			"--prefetch is a bound: the leader's passes queue 2 per node (or fewer), and a node's reports refill its queue to what keeps its slots busy through one report round trip (slots × round trip ÷ task time + 1), up to the bound. " +
			fmt.Sprintf("The default is %d: 10 ms tasks against a 30 to 60 ms round trip want 5 to 13, and long tasks only ever get 2.", defaultPrefetch),
		Header: []string{"--prefetch", "T", "efficiency"},
	}
	hard := shape{10 * time.Millisecond, scale(5000, 40), 5}
	for _, p := range []int{0, 2, 4, 16} {
		if ctx.Err() != nil {
			break
		}
		logf("sched: prefetch %d", p)
		r := run(hard, "lan", "--prefetch", fmt.Sprint(p))
		depth.Rows = append(depth.Rows, []string{fmt.Sprint(p), r.T(), r.eff()})
	}
	return []section{sec, depth}
}

var (
	flagSchedShape = flag.String("sched-shape", "", "sched: run only this shape (e.g. 10ms/5), lan timing only, no Dask, and print no table")
	flagSchedPprof = flag.String("sched-pprof", "", "sched with -sched-shape: start nodes with --pprof and an admin token, and write a 10 s CPU profile of the first and last node, taken once the submit is done, with this prefix")
	flagSchedKill  = flag.Bool("sched-kill-leader", false, "sched with -sched-shape: kill -9 the leader once a third of the tasks finished, and check that every task still completes")
	flagSchedExtra = flag.String("sched-extra", "", "sched with -sched-shape: extra `ragnode start` flags, space-separated")
)

// defaultPrefetch mirrors node.DefaultPrefetch for the table's text (the
// bench is a separate binary that drives ragnode processes).
const defaultPrefetch = 16

type schedRun struct {
	efficiency float64
	t          time.Duration
	done       int
	err        string
}

func (r schedRun) eff() string {
	if r.err != "" {
		return "-"
	}
	return fmt.Sprintf("%.3f", r.efficiency)
}

func (r schedRun) T() string {
	if r.err != "" {
		return "-"
	}
	return secs(r.t)
}

// schedOnce runs one shape on a fresh ragnode cluster.
func schedOnce(ctx context.Context, bin string, base int, dir string, lat time.Duration, tasks, nodes int, timing string, extra ...string) schedRun {
	rtb := newTB("sched")
	defer rtb.close()
	args := clusterArgs(timing, "sleep:"+lat.String(), append([]string{"--stabilization-time", "1s"}, extra...)...)
	// ragnode keeps at most five voters; a ninth node is a non-voter.
	cl := startCluster(rtb, nodes, base, min(nodes, 5), args...)
	ideal := time.Duration(float64(tasks) * float64(lat) / float64(4*nodes))
	t0 := time.Now()
	sub := []string{"submit", dir, "--addr", cl.procs[0].HTTPAddr(), "--partition", "sched", "-o", "json"}
	if benchToken != "" {
		sub = append(sub, "--token", benchToken)
	}
	cmd := exec.CommandContext(ctx, bin, sub...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		logf("  cli submit: %v: %s", err, tail(out, 300))
	}
	logf("  %s %v: submit done after %s", timing, extra, time.Since(t0).Round(time.Millisecond))
	if *flagSchedPprof != "" {
		for _, i := range []int{0, len(cl.procs) - 1} {
			go func() {
				out := fmt.Sprintf("%s.%s.cpu.pprof", *flagSchedPprof, cl.procs[i].Name)
				c := exec.Command("curl", "-s", "-o", out, "-H", "Authorization: Bearer "+benchToken,
					"http://"+cl.procs[i].HTTPAddr()+"/debug/pprof/profile?seconds=10")
				if err := c.Run(); err != nil {
					logf("  pprof %s: %v", cl.procs[i].Name, err)
				}
			}()
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 4*ideal+90*time.Second)
	defer cancel()
	client := cl.procs[0].Client()
	if *flagSchedKill {
		// kill -9 of the leader once a third of the tasks finished; the
		// survivors must finish every task.
		l := cl.leader(cctx)
		for _, p := range cl.procs {
			if p != l {
				client = p.Client()
				break
			}
		}
		for cctx.Err() == nil {
			if m, err := counts(cctx, client); err == nil && finishedOf(m) >= tasks/3 {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		l.Kill()
		logf("  killed the leader %s (kill -9) with a third of the tasks finished", l.Name)
	}
	if _, err := waitFinished(cctx, client, tasks, 100*time.Millisecond); err != nil {
		return schedRun{err: err.Error()}
	}
	all, err := client.Tasks(cctx, "", "sched")
	if err != nil {
		return schedRun{err: "tasks: " + err.Error()}
	}
	var last int64
	r := schedRun{}
	for _, t := range all {
		if t.State == "completed" {
			r.done++
		}
		if t.Finished > last {
			last = t.Finished
		}
	}
	r.t = time.Unix(0, last).Sub(t0)
	r.efficiency = float64(ideal) / float64(r.t)
	if r.done != tasks {
		r.err = fmt.Sprintf("%d of %d completed", r.done, tasks)
	}
	logf("  %s %v: T %s, efficiency %.3f (%d completed)", timing, extra, r.t.Round(time.Millisecond), r.efficiency, r.done)
	if *flagSchedShape != "" {
		logTimeline(all, t0, 4*nodes)
	}
	return r
}

// logTimeline prints, for a diagnostic run, where T went: when the first
// task started, the mean busy slots in each tenth of T, and the gap from
// the last start to the last finish (the tail).
func logTimeline(all []transport.TaskView, t0 time.Time, slots int) {
	var first, lastStart, last int64
	for _, t := range all {
		if t.Started > 0 && (first == 0 || t.Started < first) {
			first = t.Started
		}
		lastStart = max(lastStart, t.Started)
		last = max(last, t.Finished)
	}
	if first == 0 || last <= t0.UnixNano() {
		return
	}
	const buckets = 10
	span := float64(last - t0.UnixNano())
	busy := make([]float64, buckets)
	for _, t := range all {
		if t.Started == 0 || t.Finished == 0 {
			continue
		}
		for b := 0; b < buckets; b++ {
			lo := t0.UnixNano() + int64(span*float64(b)/buckets)
			hi := t0.UnixNano() + int64(span*float64(b+1)/buckets)
			if ov := min(hi, t.Finished) - max(lo, t.Started); ov > 0 {
				busy[b] += float64(ov)
			}
		}
	}
	var line []string
	for b := range busy {
		line = append(line, fmt.Sprintf("%.0f%%", 100*busy[b]/(span/buckets)/float64(slots)))
	}
	logf("  first start +%s; slot use by tenth of T: %s; last start → last finish %s",
		time.Duration(first-t0.UnixNano()).Round(time.Millisecond), strings.Join(line, " "), time.Duration(last-lastStart).Round(time.Millisecond))
}

// dask runs scenarios/bench/dask/sched.py with a Python that has
// distributed, or says why it cannot.
type dask struct {
	python, script, version, err string
}

func daskRunner() dask {
	_, file, _, _ := runtime.Caller(0)
	d := dask{script: filepath.Join(filepath.Dir(file), "dask", "sched.py")}
	// Debian's python3-distributed lives under the system interpreter; a
	// pyenv or venv python3 first on PATH may lack it.
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		out, err := exec.Command(py, "-c", "import distributed; print(distributed.__version__)").Output()
		if err == nil {
			d.python, d.version = py, strings.TrimSpace(string(out))
			return d
		}
		d.err = fmt.Sprintf("%s cannot import distributed", py)
	}
	return d
}

type daskRun struct {
	efficiency float64
	err        string
}

func (r daskRun) eff() string {
	if r.err != "" {
		return "unavailable"
	}
	return fmt.Sprintf("%.3f", r.efficiency)
}

func (d dask) run(ctx context.Context, setup string, workers, tasks int, lat time.Duration) daskRun {
	if d.err != "" {
		return daskRun{err: d.err}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, d.python, d.script, "--setup", setup, "--workers", fmt.Sprint(workers), "--tasks", fmt.Sprint(tasks),
		"--latency-ms", fmt.Sprint(float64(lat)/float64(time.Millisecond)))
	out, err := cmd.Output()
	if err != nil {
		return daskRun{err: fmt.Sprintf("dask: %v", err)}
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		Efficiency float64 `json:"efficiency"`
		Completed  int     `json:"completed"`
		T          float64 `json:"T_s"`
		Error      string  `json:"error"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return daskRun{err: fmt.Sprintf("dask output %q: %v", tail(out, 200), err)}
	}
	if res.Error != "" {
		return daskRun{err: res.Error}
	}
	if res.Completed != tasks {
		return daskRun{err: fmt.Sprintf("dask completed %d of %d", res.Completed, tasks)}
	}
	logf("  dask %s, %d workers: T %.3f s, efficiency %.3f", setup, workers, res.T, res.Efficiency)
	return daskRun{efficiency: res.Efficiency}
}
