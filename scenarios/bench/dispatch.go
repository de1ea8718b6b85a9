package main

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/ragnode/ragnode/transport"
)

// benchDispatch measures, on an idle 3-node cluster, the time from a
// submission's acknowledgement (the client has its answer) to the task
// running on a worker (the worker's `started` timestamp in the ledger; all
// processes share this machine's clock). One file at a time, each after the
// previous task finished, through the three nodes in turn. It runs with
// `--timing lan` (the headline: what users run) and `--timing fast`.
func benchDispatch(ctx context.Context, tb *benchTB) []section {
	n := scale(150, 10)
	sec := section{
		Title: "2. Dispatch latency (idle 3-node cluster)",
		Setup: fmt.Sprintf("`--timing lan` and `--timing fast`, `--runner sleep:50ms --gpus 1 --task-gpus 0.25`; %d tiny files submitted one at a time (each after the previous task ended), "+
			"through the three nodes in turn. *ack → running*: from the client receiving the submit answer to the worker's `started` timestamp in the ledger "+
			"(set when the worker begins the task; one machine, one clock); a task already running when the answer reached the client counts as 0.", n),
		Header: []string{"timing", "measure", "p50", "p99", "max", "target", "status"},
	}
	for i, timing := range []string{"lan", "fast"} {
		if ctx.Err() != nil {
			break
		}
		rtb := newTB("dispatch")
		sec.Rows = append(sec.Rows, dispatchOnce(ctx, rtb, timing, 50+i, n)...)
		rtb.close()
	}
	return []section{sec}
}

// dispatchOnce is one cluster's dispatch measurement, as table rows.
func dispatchOnce(ctx context.Context, tb *benchTB, timing string, base, n int) [][]string {
	cl := startCluster(tb, 3, base, 3, clusterArgs(timing, "sleep:50ms", "--stabilization-time", "1s")...)
	addrs := addrsOf(cl.procs)
	type sample struct {
		id       string
		sent     time.Time
		ack      time.Time
		nodeAddr string
	}
	var ss []sample
	for i := 0; i < n && ctx.Err() == nil; i++ {
		addr := addrs[i%len(addrs)]
		c := transport.NewClient(addr, "")
		req := transport.SubmitRequest{Partition: "dispatch", FileID: fmt.Sprintf("d%05d.txt", i)}
		t0 := time.Now()
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		tv, err := c.Submit(cctx, req, bytes.NewReader(fileBody("dispatch", i)))
		cancel()
		if err != nil {
			logf("  dispatch submit: %v", err)
			continue
		}
		ss = append(ss, sample{id: tv.ID, sent: t0, ack: time.Now(), nodeAddr: addr})
		// Idle cluster: the 50 ms task ends before the next submission.
		time.Sleep(70 * time.Millisecond)
	}
	cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	if _, err := waitFinished(cctx, cl.procs[0].Client(), len(ss), 200*time.Millisecond); err != nil {
		tb.Fatalf("%v", err)
	}
	all, err := cl.procs[0].Client().Tasks(cctx, "", "dispatch")
	if err != nil {
		tb.Fatalf("tasks: %v", err)
	}
	byID := map[string]transport.TaskView{}
	for _, t := range all {
		byID[t.ID] = t
	}
	var ackToRun, subToRun, ackLat []time.Duration
	early := 0
	for _, s := range ss {
		t, ok := byID[s.id]
		if !ok || t.Started == 0 {
			continue
		}
		d := time.Unix(0, t.Started).Sub(s.ack)
		if d < 0 {
			early++
			d = 0
		}
		ackToRun = append(ackToRun, d)
		subToRun = append(subToRun, time.Duration(t.Started-t.Submitted))
		ackLat = append(ackLat, s.ack.Sub(s.sent))
	}
	p50, p99 := percentile(ackToRun, 50), percentile(ackToRun, 99)
	logf("dispatch %s: %d samples (%d already running at the ack), ack->running p50 %s p99 %s", timing, len(ackToRun), early, ms(p50), ms(p99))
	return [][]string{
		{timing, fmt.Sprintf("ack → running (%d samples, %d already running)", len(ackToRun), early), ms(p50), ms(p99), ms(percentile(ackToRun, 100)), "p50 < 20 ms, p99 < 100 ms", met(p50 < 20*time.Millisecond && p99 < 100*time.Millisecond)},
		{timing, "(context) submit request → ack", ms(percentile(ackLat, 50)), ms(percentile(ackLat, 99)), ms(percentile(ackLat, 100)), "", ""},
		{timing, "(context) ledger `submitted` → `started`", ms(percentile(subToRun, 50)), ms(percentile(subToRun, 99)), ms(percentile(subToRun, 100)), "", ""},
	}
}
