package node

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// stalledPeer accepts connections and never answers: a half-dead holder.
// accepted reports how many connections it holds.
func stalledPeer(t *testing.T) (addr string, accepted func() int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String(), func() int {
		mu.Lock()
		defer mu.Unlock()
		return len(conns)
	}
}

// TestFailedNodeRequeuedWhileRepairsStall: the leader's copy repairs call a
// holder that accepts connections and never answers. Failure handling runs
// apart from them, so a killed node's tasks are still requeued within
// --requeue-after plus two seconds.
func TestFailedNodeRequeuedWhileRepairsStall(t *testing.T) {
	rec := newRecorder(30 * time.Second)
	c, ns := gpuCluster(t, 3, rec, nil)
	l := c.mustLeader(t)
	ctx := ctxT(t, 30*time.Second)

	// A registered node that only the ledger knows, holding the only copy
	// of more blobs than a repair pass runs at once.
	stalled := "0000000000000000000000000000dead"
	stalledAddr, accepted := stalledPeer(t)
	if _, err := l.Apply(ctx, fsm.Command{Type: fsm.CmdRegisterNode, Node: &fsm.Node{ID: stalled, Name: "stalled", HTTPAddr: stalledAddr}}); err != nil {
		t.Fatal(err)
	}
	var tasks []fsm.Task
	var cmds []fsm.Command
	for i := 0; i < 2*repairConcurrency; i++ {
		sum := sha256.Sum256([]byte(fmt.Sprint("stalled blob ", i)))
		h := hex.EncodeToString(sum[:])
		cmds = append(cmds, fsm.Command{Type: fsm.CmdBlobHolders, Blob: &fsm.Blob{Hash: h, Size: 10, Holders: []string{stalled}}})
		tasks = append(tasks, fsm.Task{ID: NewTaskID(), Partition: "stalled", FileID: fmt.Sprint("s", i), File: fsm.FileRef{Hash: h, Size: 10, Name: "s.txt"}})
	}
	cmds = append(cmds, fsm.Command{Type: fsm.CmdSubmitTasks, Tasks: tasks})
	if _, err := l.Apply(ctx, fsm.Command{Type: fsm.CmdBatch, Batch: cmds}); err != nil {
		t.Fatal(err)
	}
	for _, tk := range tasks { // only their files' blobs matter here
		if _, err := l.Apply(ctx, fsm.Command{Type: fsm.CmdCancelTask, TaskID: tk.ID}); err != nil {
			t.Fatal(err)
		}
	}

	var victim *Node
	for _, n := range ns {
		if n != l {
			victim = n
		}
	}
	submitMany(t, []*Node{l}, 12, "work")
	waitFor(t, 10*time.Second, "tasks running on the victim", func() bool {
		running := 0
		l.fsm.View(func(s *fsm.State) { running = s.ActiveOn(victim.ID()) })
		return running > 0
	})
	// The repair pass is blocked on the stalled holder, as many calls at
	// once as it may make, before the kill.
	waitFor(t, 15*time.Second, "repairs blocked on the stalled holder", func() bool { return accepted() >= repairConcurrency })
	killed := time.Now()
	victim.Kill()
	limit := l.cfg.RequeueAfter + 2*time.Second
	deadline := killed.Add(limit)
	for {
		active := -1
		l.fsm.View(func(s *fsm.State) { active = s.ActiveOn(victim.ID()) })
		if active == 0 {
			t.Logf("victim's tasks requeued %s after the kill", time.Since(killed).Round(time.Millisecond))
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("victim still holds %d tasks %s after the kill (limit %s)", active, time.Since(killed).Round(time.Millisecond), limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
