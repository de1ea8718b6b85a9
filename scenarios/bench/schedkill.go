package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// benchSchedKill is table 3's shape with the head killed: 3 nodes (or Dask
// workers), 12 slots, 2,000 tasks of 50 ms, and once a third have
// completed, kill -9 of the ragnode leader — or of the Dask scheduler
// process. Then: how many tasks completed in all. ragnode's ledger is
// replicated, so a new leader requeues what the dead one held (prefetched
// work included) and every task completes once; Dask's task state lives in
// its scheduler, so what was not done dies with it.
func benchSchedKill(ctx context.Context, tb *benchTB) []section {
	bin := harness.Binary(tb)
	const nodes = 3
	lat := 50 * time.Millisecond
	tasks := scale(2000, 60)
	dir := filepath.Join(tb.TempDir(), "folder")
	makeFiles(dir, tasks, "kill")
	sec := section{
		Title: "3c. The head killed with a third done (50 ms tasks, 3 nodes, 12 slots)",
		Setup: fmt.Sprintf("ragnode: as table 3 (`--timing lan`, --prefetch %d), the folder submitted through a follower; once the submit is answered and a third of the tasks have completed, "+
			"`kill -9` of the leader; then every task waited for on a survivor. Dask: `scenarios/bench/dask/schedkill.py`, a `dask-scheduler` process and 3 `dask-worker` processes of 4 threads, "+
			"the same tasks with `client.map`; at a third completed, SIGKILL to the scheduler process, then up to 30 s for anything more. "+
			"T: ragnode, first submit → last completion; Dask, until every future had ended (completed or cancelled with the scheduler).", defaultPrefetch),
		Header: []string{"system", "tasks", "completed at the kill", "completed in all", "lost", "T"},
	}
	r := schedKillOnce(ctx, bin, 90, dir, lat, tasks, nodes)
	if r.err != "" {
		sec.Rows = append(sec.Rows, []string{"ragnode (lan)", fmt.Sprint(tasks), "-", "-", "-", "**failed**: " + r.err})
	} else {
		sec.Rows = append(sec.Rows, []string{"ragnode (lan)", fmt.Sprint(tasks), fmt.Sprint(r.atKill), fmt.Sprint(r.done), fmt.Sprint(tasks - r.done), secs(r.t)})
	}
	d := daskRunner()
	if d.err != "" {
		sec.Rows = append(sec.Rows, []string{"Dask distributed", fmt.Sprint(tasks), "-", "-", "-", "unavailable: " + d.err})
		return []section{sec}
	}
	dr := d.runKill(ctx, nodes, tasks, lat)
	if dr.err != "" {
		sec.Rows = append(sec.Rows, []string{"Dask " + d.version, fmt.Sprint(tasks), "-", "-", "-", "**failed**: " + dr.err})
	} else {
		sec.Rows = append(sec.Rows, []string{"Dask " + d.version, fmt.Sprint(tasks), fmt.Sprint(dr.atKill), fmt.Sprint(dr.done), fmt.Sprint(tasks - dr.done), secs(dr.t)})
	}
	if r.err == "" && r.done != tasks {
		sec.Err = fmt.Sprintf("ragnode lost %d of %d tasks to a leader kill", tasks-r.done, tasks)
	}
	return []section{sec}
}

type killRun struct {
	atKill, done int
	t            time.Duration
	err          string
}

func schedKillOnce(ctx context.Context, bin string, base int, dir string, lat time.Duration, tasks, nodes int) killRun {
	rtb := newTB("schedkill")
	defer rtb.close()
	cl := startCluster(rtb, nodes, base, nodes, clusterArgs("lan", "sleep:"+lat.String(), "--stabilization-time", "1s")...)
	leader := cl.leader(ctx)
	var via, survivor *harness.Proc
	for _, p := range cl.procs {
		if p != leader {
			if via == nil {
				via = p
			} else {
				survivor = p
			}
		}
	}
	t0 := time.Now()
	out, err := exec.CommandContext(ctx, bin, "submit", dir, "--addr", via.HTTPAddr(), "--partition", "sched", "-o", "json").CombinedOutput()
	if err != nil {
		return killRun{err: fmt.Sprintf("cli submit: %v: %s", err, tail(out, 300))}
	}
	c := survivor.Client()
	var r killRun
	for {
		m, err := counts(ctx, c)
		if err == nil && m["completed"]*3 >= tasks {
			r.atKill = m["completed"]
			break
		}
		select {
		case <-ctx.Done():
			return killRun{err: ctx.Err().Error()}
		case <-time.After(20 * time.Millisecond):
		}
	}
	logf("  killing leader %s with %d of %d completed", leader.Name, r.atKill, tasks)
	leader.Kill()
	cctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	if _, err := waitFinished(cctx, c, tasks, 100*time.Millisecond); err != nil {
		return killRun{err: err.Error()}
	}
	// Status comes from the leader, the task list from the survivor's own
	// ledger, which may be a few entries behind: read it until it has
	// caught up.
	var all []transport.TaskView
	for {
		all, err = c.Tasks(cctx, "", "sched")
		if err != nil {
			return killRun{err: "tasks: " + err.Error()}
		}
		open := 0
		for _, t := range all {
			if t.State != "completed" && t.State != "failed" && t.State != "cancelled" {
				open++
			}
		}
		if open == 0 || cctx.Err() != nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var last int64
	for _, t := range all {
		if t.State == "completed" {
			r.done++
		} else {
			logf("  task %s ended %s at attempt %d: %s", t.ID, t.State, t.Attempt, t.Error)
		}
		if t.Finished > last {
			last = t.Finished
		}
	}
	r.t = time.Unix(0, last).Sub(t0)
	logf("  ragnode: %d of %d completed after the leader kill, T %s", r.done, tasks, r.t.Round(time.Millisecond))
	return r
}

func (d dask) runKill(ctx context.Context, workers, tasks int, lat time.Duration) killRun {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	script := filepath.Join(filepath.Dir(d.script), "schedkill.py")
	out, err := exec.CommandContext(cctx, d.python, script, "--workers", fmt.Sprint(workers), "--tasks", fmt.Sprint(tasks),
		"--latency-ms", fmt.Sprint(float64(lat)/float64(time.Millisecond))).Output()
	if err != nil {
		return killRun{err: fmt.Sprintf("dask: %v", err)}
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var res struct {
		Completed int     `json:"completed"`
		AtKill    int     `json:"completed_at_kill"`
		T         float64 `json:"T_s"`
		Error     string  `json:"error"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &res); err != nil {
		return killRun{err: fmt.Sprintf("dask output %q: %v", tail(out, 200), err)}
	}
	if res.Error != "" {
		return killRun{err: res.Error}
	}
	logf("  dask: %d of %d completed after the scheduler kill", res.Completed, tasks)
	return killRun{atKill: res.AtKill, done: res.Completed, t: time.Duration(res.T * float64(time.Second))}
}
