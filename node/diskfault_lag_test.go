package node

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// TestDiskDrainLiftedWhileLedgerLags: a follower whose disk is full long
// enough for the leader to back off its replication (its Raft log refuses
// appends, as a full disk's does) lifts its disk drain within seconds of
// the disk taking writes again, without waiting for its own copy of the
// ledger to catch up and show the drain (the disk-full scenario's "drain
// not lifted after the disk is freed").
func TestDiskDrainLiftedWhileLedgerLags(t *testing.T) {
	rec := newRecorder(20 * time.Millisecond)
	c, ns := gpuCluster(t, 3, rec, nil)
	l := c.mustLeader(t)
	var sick *Node
	var healthy []*Node
	for _, n := range ns {
		if n != l && sick == nil {
			sick = n
		} else {
			healthy = append(healthy, n)
		}
	}
	drained := func() (bool, string) {
		var d bool
		var why string
		c.mustLeader(t).fsm.View(func(s *fsm.State) {
			if nd := s.Nodes[sick.ID()]; nd != nil {
				d, why = nd.Draining, nd.DrainReason
			}
		})
		return d, why
	}

	full := error(syscall.ENOSPC)
	sick.blobs.fault.Store(&full)
	_, err := clientOf(sick).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: "probe.txt", FileName: "probe.txt"}, strings.NewReader("x"))
	if !transport.IsStatus(err, http.StatusInsufficientStorage) {
		t.Fatalf("upload to a full disk: %v", err)
	}
	waitFor(t, 10*time.Second, "the disk drain", func() bool { d, why := drained(); return d && why == drainDisk })
	// Entries keep coming while the disk is full, each append refused by
	// the sick follower, so the leader backs off replicating to it.
	end := time.Now().Add(12 * time.Second)
	for i := 0; time.Now().Before(end); i++ {
		_ = submitMany(t, healthy, 2, "while-full-"+string(rune('a'+i%26))+time.Now().Format("150405.000"))
		time.Sleep(300 * time.Millisecond)
	}
	behind := sick.fsm.AppliedIndex() < c.mustLeader(t).fsm.AppliedIndex()
	if !behind {
		t.Log("the sick node's ledger is not behind; the test checks less than it should")
	}

	sick.blobs.fault.Store(nil)
	freed := time.Now()
	waitFor(t, 20*time.Second, "the drain lifted", func() bool { d, _ := drained(); return !d })
	took := time.Since(freed)
	t.Logf("drain lifted %s after the disk was freed (sick ledger behind the leader's when freed: %v)", took.Round(time.Millisecond), behind)
	if took > 2*time.Second {
		t.Fatalf("drain lifted %s after the disk took writes again, want within 2s", took.Round(time.Millisecond))
	}
	if sick.raft.State() == raft.Shutdown {
		t.Fatal("the sick node's Raft shut down")
	}
}
