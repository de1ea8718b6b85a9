package node

import (
	"fmt"
	"math/rand"
	"testing"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/scheduler"
)

// benchLedger is a ledger with 100 alive nodes (80 with 8 x 80 GiB cards, 20
// CPU-only) and 10,000 queued tasks over 20 partitions with mixed requests:
// the shape of scheduler.BenchmarkSchedule10kTasks100Nodes, held in the FSM.
func benchLedger(tb testing.TB) *fsm.State {
	s := fsm.New()
	idx := uint64(1)
	for i := 0; i < 100; i++ {
		nd := &fsm.Node{ID: fmt.Sprintf("node-%03d", i), Name: fmt.Sprintf("node-%03d", i), CPUSlots: 4}
		if i < 80 {
			for g := 0; g < 8; g++ {
				nd.GPUs = append(nd.GPUs, gpu.Device{Index: g, UUID: fmt.Sprintf("%s-%d", nd.ID, g), MemTotal: 80 << 30})
			}
		}
		if r := s.Apply(idx, fsm.Command{Type: fsm.CmdRegisterNode, Node: nd}); r.Err != "" {
			tb.Fatal(r.Err)
		}
		idx++
		if i%25 == 0 {
			s.Apply(idx, fsm.Command{Type: fsm.CmdSetDrain, NodeID: nd.ID, Draining: true})
			idx++
		}
	}
	r := rand.New(rand.NewSource(42))
	var batch []fsm.Task
	for i := 0; i < 10000; i++ {
		t := fsm.Task{ID: fmt.Sprintf("%048x", i), Partition: fmt.Sprintf("part-%02d", r.Intn(20)), FileID: fmt.Sprintf("f%05d", i)}
		switch r.Intn(4) {
		case 0:
			t.ReqMilli = 250
		case 1:
			t.ReqMilli = 500
		case 2:
			t.ReqMem = 10 << 30
		case 3:
			t.ReqMilli, t.ReqMem = 1000, 40<<30
		}
		batch = append(batch, t)
		if len(batch) == 1000 {
			s.Apply(idx, fsm.Command{Type: fsm.CmdSubmitTasks, Now: int64(i), Tasks: batch})
			idx++
			batch = nil
		}
	}
	if s.QueuedCount() != 10000 {
		tb.Fatalf("%d queued", s.QueuedCount())
	}
	return s
}

// BenchmarkSchedulePass10kTasks100Nodes is the leader's whole pass as
// schedulePass runs it: ledger -> scheduler input (under the FSM read
// lock in production), then the placement itself.
func BenchmarkSchedulePass10kTasks100Nodes(b *testing.B) {
	s := benchLedger(b)
	b.ReportAllocs()
	var n int
	for b.Loop() {
		in := SchedulerInput(s, 0, scheduler.Spread)
		n = len(scheduler.Schedule(in))
	}
	b.ReportMetric(float64(n), "assigned")
}

// BenchmarkSchedulerInput10kTasks100Nodes is the part of the pass that
// holds the FSM read lock (Apply waits for it).
func BenchmarkSchedulerInput10kTasks100Nodes(b *testing.B) {
	s := benchLedger(b)
	b.ReportAllocs()
	for b.Loop() {
		SchedulerInput(s, 0, scheduler.Spread)
	}
}
