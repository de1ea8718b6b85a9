package fsm

import (
	"fmt"
	"runtime"
	"testing"
)

// ledger100k is 100,000 tasks like TestSnapshot100kTasks builds them: half
// queued, half finished (cancelled), each with a file and metadata.
func ledger100k(tb testing.TB) *State {
	s := New()
	s.Apply(1, Command{Type: CmdRegisterNode, Node: node("n1", 4, 80<<30)})
	s.Apply(2, Command{Type: CmdSettings, Settings: &Settings{MaxAttempts: 3, RetainCount: 200000}})
	const n = 100000
	batch := make([]Task, 0, 1000)
	for i := 0; i < n; i++ {
		batch = append(batch, Task{ID: fmt.Sprintf("%048x", i), Partition: "p", FileID: fmt.Sprintf("dir/file-%d.pdf", i), ReqMilli: 250,
			File: FileRef{Hash: fmt.Sprintf("%064x", i), Size: 1000, Name: "file.pdf"}, Metadata: map[string]any{"k": "v"}})
		if len(batch) == cap(batch) {
			s.Apply(uint64(3+i), Command{Type: CmdSubmitTasks, Now: int64(i), Tasks: batch})
			batch = batch[:0]
		}
	}
	for i := 0; i < n/2; i++ {
		s.Apply(uint64(n+i), Command{Type: CmdCancelTask, TaskID: fmt.Sprintf("%048x", i), Now: int64(n + i)})
	}
	if len(s.Tasks) != n {
		tb.Fatalf("%d tasks", len(s.Tasks))
	}
	return s
}

// BenchmarkSnapshot100kTasks measures what a Raft snapshot and a restore of
// a 100,000-task ledger cost: Marshal (FSM.Snapshot) and Unmarshal
// (FSM.Restore, indexes rebuilt).
func BenchmarkSnapshot100kTasks(b *testing.B) {
	s := ledger100k(b)
	data, err := s.Marshal()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("marshal", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := s.Marshal(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("restore", func(b *testing.B) {
		b.SetBytes(int64(len(data)))
		for b.Loop() {
			if _, err := Unmarshal(data); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(len(data))/(1<<20), "MiB")
	})
}

// BenchmarkLedger100kHeap reports the live heap a 100,000-task ledger holds
// (half queued, half finished) after a GC.
func BenchmarkLedger100kHeap(b *testing.B) {
	var s *State
	for b.Loop() {
		var before, after runtime.MemStats
		s = nil
		runtime.GC()
		runtime.ReadMemStats(&before)
		s = ledger100k(b)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/1e6, "MB-heap")
	}
	runtime.KeepAlive(s)
}
