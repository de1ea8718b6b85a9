package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/ragnode/ragnode/scenarios/harness"
	"github.com/ragnode/ragnode/transport"
)

// benchFailover measures (a) leader kill -9 → the next task starting: at the
// kill a client submits one file to a survivor (retrying until accepted),
// and the figure is the worker's `started` timestamp minus the kill time;
// the killed node is restarted and the cluster healthy again before the next
// run; (b) node kill -9 → every task it ran running on another node.
func benchFailover(ctx context.Context, tb *benchTB) []section {
	var out []section
	timings := []string{"fast"}
	if *flagLAN && !*flagSmoke {
		timings = append(timings, "lan")
	}
	lead := section{
		Title:  "4a. Leader failover: kill -9 of the leader → next task started",
		Setup:  "3 nodes, `--runner sleep:50ms --gpus 1 --task-gpus 0.25`; idle cluster; at the kill a client submits one file to a survivor (retrying until accepted); figure = worker `started` − kill time. The killed node is restarted and the cluster is healthy again before the next run.",
		Header: []string{"timing", "runs", "median", "min", "max", "target", "status"},
	}
	node := section{
		Title:  "4b. Node loss: kill -9 of a worker → its tasks running elsewhere",
		Setup:  "3 nodes, `--runner sleep:60s --gpus 1 --task-gpus 0.25`, 6 tasks running (2 per node); a follower is killed; figure = time until every task it ran is running (ledger state) on another node.",
		Header: []string{"timing", "--requeue-after", "tasks moved", "kill → all running elsewhere", "target", "status"},
	}
	for ti, timing := range timings {
		if ctx.Err() != nil {
			break
		}
		runs := scale(5, 2)
		if timing == "lan" {
			runs = 3
		}
		ds := leaderFailover(ctx, tb, timing, 120+10*ti, runs)
		if len(ds) > 0 {
			med := median(ds)
			lead.Rows = append(lead.Rows, []string{timing, fmt.Sprint(len(ds)), secs(med), secs(percentile(ds, 0)), secs(percentile(ds, 100)), "median < 3 s", met(med < 3*time.Second)})
		}
		requeue := 2 * time.Second
		if timing == "lan" {
			requeue = 10 * time.Second
		}
		moved, d, err := nodeLoss(ctx, tb, timing, 140+10*ti)
		row := []string{timing, requeue.String(), fmt.Sprint(moved), secs(d), "< " + (requeue + 2*time.Second).String(), met(err == nil && d < requeue+2*time.Second)}
		if err != nil {
			row[3] = "-"
			row[5] = "**missed** (" + err.Error() + ")"
		}
		node.Rows = append(node.Rows, row)
	}
	out = append(out, lead, node)
	return out
}

func leaderFailover(ctx context.Context, tb *benchTB, timing string, base, runs int) []time.Duration {
	rtb := newTB("failover")
	defer rtb.close()
	cl := startCluster(rtb, 3, base, 3, clusterArgs(timing, "sleep:50ms")...)
	var ds []time.Duration
	for r := 0; r < runs && ctx.Err() == nil; r++ {
		cctx, cancel := context.WithTimeout(ctx, 120*time.Second)
		l := cl.leader(cctx)
		var surv []*harness.Proc
		for _, p := range cl.procs {
			if p != l {
				surv = append(surv, p)
			}
		}
		t0 := time.Now()
		l.Kill()
		c := surv[r%2].Client()
		var tv transport.TaskView
		var err error
		for cctx.Err() == nil {
			sctx, scancel := context.WithTimeout(cctx, 20*time.Second)
			tv, err = c.Submit(sctx, transport.SubmitRequest{Partition: "failover", FileID: fmt.Sprintf("%s-%d.txt", timing, r)}, bytes.NewReader(fileBody("failover-"+timing, r)))
			scancel()
			if err == nil {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		var started int64
		for cctx.Err() == nil && err == nil {
			t, terr := c.Task(cctx, tv.ID)
			if terr == nil && t.Started != 0 {
				started = t.Started
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		if started != 0 {
			d := time.Unix(0, started).Sub(t0)
			ds = append(ds, d)
			logf("  failover %s run %d: killed %s, next task started after %s", timing, r+1, l.Name, d.Round(time.Millisecond))
		} else {
			logf("  failover %s run %d: no task started (%v)", timing, r+1, err)
		}
		// Bring the node back and wait for a healthy 3-voter cluster.
		if err := l.Start(surv[0].SerfAddr()); err != nil {
			logf("  restart %s: %v", l.Name, err)
		}
		if err := harness.WaitHealthy(cctx, surv[0], 3); err != nil {
			logf("  not healthy after restart: %v", err)
		}
		cancel()
	}
	return ds
}

func nodeLoss(ctx context.Context, tb *benchTB, timing string, base int) (int, time.Duration, error) {
	rtb := newTB("nodeloss")
	defer rtb.close()
	cl := startCluster(rtb, 3, base, 3, clusterArgs(timing, "sleep:60s")...)
	cctx, cancel := context.WithTimeout(ctx, 90*time.Second)
	defer cancel()
	_, _, errs := submitMany(cctx, addrsOf(cl.procs), 6, 6, "loss", "loss-"+timing, "")
	if errs > 0 {
		return 0, 0, fmt.Errorf("%d submits failed", errs)
	}
	c := cl.procs[0].Client()
	var tasks []transport.TaskView
	for cctx.Err() == nil {
		ts, err := c.Tasks(cctx, "running", "loss")
		if err == nil && len(ts) == 6 {
			tasks = ts
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if tasks == nil {
		return 0, 0, fmt.Errorf("6 tasks not running")
	}
	l := cl.leader(cctx)
	var victim *harness.Proc
	for _, p := range cl.procs {
		if p != l {
			victim = p
			break
		}
	}
	vid := nodeID(cctx, victim)
	moved := map[string]int{}
	for _, t := range tasks {
		if t.NodeID == vid {
			moved[t.ID] = t.Attempt
		}
	}
	if len(moved) == 0 {
		return 0, 0, fmt.Errorf("victim %s runs no task", victim.Name)
	}
	t0 := time.Now()
	victim.Kill()
	lc := l.Client()
	for cctx.Err() == nil {
		ok := 0
		for id, att := range moved {
			t, err := lc.Task(cctx, id)
			if err == nil && t.State == "running" && t.NodeID != vid && t.Attempt > att {
				ok++
			}
		}
		if ok == len(moved) {
			d := time.Since(t0)
			logf("  node loss %s: %d tasks running elsewhere after %s", timing, len(moved), d.Round(time.Millisecond))
			return len(moved), d, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return len(moved), 0, fmt.Errorf("tasks not moved within 90 s")
}
