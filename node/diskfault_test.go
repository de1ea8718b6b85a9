package node

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// TestFullDiskDrainsAndRecovers: a node whose disk refuses writes answers
// uploads with 507 and the reason, drains itself (no new work, its running
// work handed back at the deadline), and lifts the drain once writes
// succeed again, with no operator step.
func TestFullDiskDrainsAndRecovers(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(2, nil)
	waitFor(t, 15*time.Second, "two registered nodes", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		k := 0
		l.fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 2
	})
	sick := ns[1]
	full := error(syscall.ENOSPC)
	sick.blobs.fault.Store(&full)
	_, err := clientOf(sick).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: "a.txt", FileName: "a.txt"}, strings.NewReader("hello"))
	if !transport.IsStatus(err, http.StatusInsufficientStorage) || !strings.Contains(err.Error(), "no space left") {
		t.Fatalf("upload to a full disk: %v", err)
	}
	drainedFor := func(reason string) bool {
		ok := false
		ns[0].fsm.View(func(s *fsm.State) {
			nd := s.Nodes[sick.ID()]
			ok = nd != nil && nd.Draining && nd.DrainReason == reason
		})
		return ok
	}
	waitFor(t, 10*time.Second, "the node to drain itself for its disk", func() bool { return drainedFor(drainDisk) })
	// Uploads through the healthy node still work and never land on the sick one.
	tv, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: "b.txt", FileName: "b.txt"}, strings.NewReader("hello world"))
	if err != nil {
		t.Fatal(err)
	}
	final := waitTerminal(t, c, []string{tv.ID}, 30*time.Second)
	if tk := final[tv.ID]; tk.State != fsm.Completed || tk.LastNode == sick.ID() {
		t.Fatalf("task ended %s on %s", tk.State, tk.LastNode)
	}
	sick.blobs.fault.Store(nil)
	waitFor(t, 10*time.Second, "the drain to be lifted after recovery", func() bool {
		lifted := false
		ns[0].fsm.View(func(s *fsm.State) { lifted = !s.Nodes[sick.ID()].Draining })
		return lifted
	})
}

type failingLog struct {
	raft.LogStore
	err error
}

func (f failingLog) StoreLog(*raft.Log) error    { return f.err }
func (f failingLog) StoreLogs([]*raft.Log) error { return f.err }

// TestRaftLogAppendFailureIsADiskFault: a log store that cannot append
// (ENOSPC from bolt) is reported as NoSpace, so the node drains; another
// failure is passed on without being called a disk fault.
func TestRaftLogAppendFailureIsADiskFault(t *testing.T) {
	var got []error
	d := diskWatchedLog{LogStore: failingLog{err: fmt.Errorf("write: %w", syscall.ENOSPC)}, fault: func(err error) { got = append(got, err) }}
	if err := d.StoreLogs([]*raft.Log{{Index: 1}}); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("StoreLogs = %v", err)
	}
	if err := d.StoreLog(&raft.Log{Index: 2}); err == nil {
		t.Fatal("StoreLog hid the error")
	}
	if len(got) != 2 || !errors.Is(got[0], errs.NoSpace) {
		t.Fatalf("faults %v", got)
	}
	got = nil
	d = diskWatchedLog{LogStore: failingLog{err: errors.New("bolt: database not open")}, fault: func(err error) {
		if errors.Is(err, errs.NoSpace) {
			got = append(got, err)
		}
	}}
	_ = d.StoreLog(&raft.Log{Index: 3})
	if len(got) != 0 {
		t.Fatalf("a non-disk error was called a disk fault: %v", got)
	}
}
