package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

func taskID() string {
	var b [24]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// ledgerCommands builds what n submissions put in the ledger, as
// Node.Submit records them (a blob-holders entry and a task per file), in
// batches of per files, and the cancels that finish the first half.
func ledgerCommands(n, per int, holders []string) (submits, cancels []fsm.Command) {
	now := time.Now().UnixNano()
	var ids []string
	for i := 0; i < n; i += per {
		var cmds []fsm.Command
		var tasks []fsm.Task
		for j := i; j < i+per && j < n; j++ {
			h := fmt.Sprintf("%064x", j+1)
			cmds = append(cmds, fsm.Command{Type: fsm.CmdBlobHolders, Now: now, Blob: &fsm.Blob{Hash: h, Size: 1200, Holders: holders}})
			id := taskID()
			ids = append(ids, id)
			tasks = append(tasks, fsm.Task{ID: id, Partition: "mem", FileID: fmt.Sprintf("docs/dir-%03d/file-%06d.txt", j%500, j),
				File: fsm.FileRef{Hash: h, Size: 1200, Name: fmt.Sprintf("file-%06d.txt", j)}, ReqMilli: 250,
				Metadata: map[string]any{"source": "bench"}})
		}
		cmds = append(cmds, fsm.Command{Type: fsm.CmdSubmitTasks, Now: now, Tasks: tasks})
		submits = append(submits, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds})
	}
	for i := 0; i < n/2; i += per {
		var cmds []fsm.Command
		for j := i; j < i+per && j < n/2; j++ {
			cmds = append(cmds, fsm.Command{Type: fsm.CmdCancelTask, Now: now, TaskID: ids[j]})
		}
		cancels = append(cancels, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds})
	}
	return submits, cancels
}

// benchMemory measures the resident memory of real nodes holding 100,000
// tasks (half queued, half finished), and the snapshot size and restore
// time of such a ledger in this process (fsm.State Marshal/Unmarshal, which
// is what FSM.Snapshot and FSM.Restore run).
func benchMemory(ctx context.Context, tb *benchTB) []section {
	n := scale(100000, 2000)
	cl := startCluster(tb, 3, 160, 3, "--timing", "fast", "--gpus", "1", "--task-gpus", "0.25", "--runner", "sleep:50ms", "--retain", "200000")
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	// Ledger commands go straight to /v1/internal/apply: a peer route.
	c := cl.procs[0].PeerClient()
	var holders []string
	for _, p := range cl.procs[:2] {
		holders = append(holders, nodeID(cctx, p))
	}
	base := map[string]uint64{}
	for _, p := range cl.procs {
		base[p.Name], _ = rssOf(pidOf(p))
	}
	// No node takes work, so half the tasks stay queued.
	for _, p := range cl.procs {
		if err := c.Drain(cctx, transport.DrainRequest{Node: p.Name}); err != nil {
			tb.Fatalf("drain: %v", err)
		}
	}
	submits, cancels := ledgerCommands(n, 1000, holders)
	t0 := time.Now()
	for _, cmd := range append(submits, cancels...) {
		if _, err := c.Apply(cctx, cmd); err != nil {
			tb.Fatalf("apply: %v", err)
		}
	}
	load := time.Since(t0)
	m, err := counts(cctx, c)
	if err != nil {
		tb.Fatalf("%v", err)
	}
	logf("memory: %v after %s; settling", m, load.Round(time.Millisecond))
	time.Sleep(5 * time.Second)
	var rows [][]string
	var worst uint64
	for _, p := range cl.procs {
		rss, err := rssOf(pidOf(p))
		if err != nil {
			tb.Fatalf("rss %s: %v", p.Name, err)
		}
		st, _ := localStatus(cctx, p)
		role := "follower"
		if st.LeaderID == st.NodeID {
			role = "leader"
		}
		if rss > worst {
			worst = rss
		}
		anon, file := rssParts(pidOf(p))
		rows = append(rows, []string{p.Name + " (" + role + ")", fmt.Sprintf("%d queued + %d finished", m["queued"], finishedOf(m)),
			mib(base[p.Name]), mib(rss), mib(anon) + " / " + mib(file), "< 300 MB", met(rss < 300e6)})
	}
	logf("memory: worst RSS %s", mib(worst))

	// Snapshot and restore of the same ledger, in this process.
	s := fsm.New()
	idx := uint64(1)
	s.Apply(idx, fsm.Command{Type: fsm.CmdSettings, Settings: &fsm.Settings{MaxAttempts: 3, RetainCount: 200000}})
	for _, cmd := range append(submits, cancels...) {
		idx++
		s.Apply(idx, cmd)
	}
	runtime.GC()
	t1 := time.Now()
	data, err := s.Marshal()
	if err != nil {
		tb.Fatalf("marshal: %v", err)
	}
	marshal := time.Since(t1)
	var restores []time.Duration
	for i := 0; i < 3; i++ {
		runtime.GC()
		t2 := time.Now()
		r, err := fsm.Unmarshal(data)
		if err != nil {
			tb.Fatalf("unmarshal: %v", err)
		}
		restores = append(restores, time.Since(t2))
		if len(r.Tasks) != n {
			tb.Fatalf("restored %d tasks", len(r.Tasks))
		}
	}
	restore := median(restores)
	logf("snapshot: %s, marshal %s, restore %s", mib(uint64(len(data))), marshal.Round(time.Millisecond), restore.Round(time.Millisecond))
	return []section{{
		Title: "5. Memory: 100,000 tasks in the ledger",
		Setup: fmt.Sprintf("3 real nodes (`--timing fast --retain 200000 --gpus 1 --task-gpus 0.25`, all drained so nothing runs); %d tasks recorded "+
			"as `Submit` records them (one blob-holders entry and one task per file, 1,000 files per ledger command, sent through `/v1/internal/apply`, "+
			"%s), then the first half cancelled (finished). RSS = VmRSS from /proc after 5 s.", n, load.Round(time.Millisecond)),
		Header: []string{"node", "ledger", "RSS before", "RSS with 100k tasks", "of which anonymous / file-backed (bbolt mmaps)", "target", "status"},
		Rows:   rows,
		Notes: []string{fmt.Sprintf("Snapshot of the same ledger (built in the bench process with fsm.State.Apply, the commands above): "+
			"**%s** (JSON), Marshal (`FSM.Snapshot`) %s, restore (`FSM.Restore`: Unmarshal + index rebuild) **%s** (median of 3) — target < 2 s: %s.",
			mib(uint64(len(data))), ms(marshal), ms(restore), met(restore < 2*time.Second))},
	}}
}

func mib(b uint64) string { return fmt.Sprintf("%.1f MB", float64(b)/1e6) }

// rssParts reads RssAnon and RssFile (bytes): the process's own memory, and
// the file pages it has mapped (the bbolt Raft log, blob and chunk stores),
// which the kernel can drop.
func rssParts(pid int) (anon, file uint64) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseUint(f[1], 10, 64)
		switch f[0] {
		case "RssAnon:":
			anon = kb << 10
		case "RssFile:":
			file = kb << 10
		}
	}
	return anon, file
}
