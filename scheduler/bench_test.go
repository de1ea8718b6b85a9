package scheduler

import (
	"fmt"
	"math/rand"
	"testing"
)

// benchInput is a cluster of 100 nodes (80 with 8 x 80 GiB cards, 20
// CPU-only) and 10,000 queued tasks over 20 partitions with mixed requests.
func benchInput(policy Policy) Input {
	r := rand.New(rand.NewSource(42))
	in := Input{Policy: policy}
	for i := 0; i < 100; i++ {
		n := Node{ID: fmt.Sprintf("node-%03d", i), Eligible: i%25 != 0, CPUSlots: 4}
		if i < 80 {
			n.GPUs = gpus(8, 80*gib)
		}
		in.Nodes = append(in.Nodes, n)
	}
	for i := 0; i < 10000; i++ {
		t := Task{ID: fmt.Sprintf("task-%05d", i), Partition: fmt.Sprintf("part-%02d", r.Intn(20)), Seq: uint64(i)}
		switch r.Intn(4) {
		case 0:
			t.Milli = 250
		case 1:
			t.Milli = 500
		case 2:
			t.MemBytes = 10 * gib
		case 3:
			t.Milli, t.MemBytes = 1000, 40*gib
		}
		in.Queued = append(in.Queued, t)
	}
	return in
}

func BenchmarkSchedule10kTasks100Nodes(b *testing.B) {
	for _, p := range []Policy{Spread, BinPack} {
		b.Run(string(p), func(b *testing.B) {
			in := benchInput(p)
			b.ReportAllocs()
			var n int
			for b.Loop() {
				n = len(Schedule(in))
			}
			b.ReportMetric(float64(n), "assigned")
		})
	}
}

// TestBenchInputSane keeps the benchmark honest: it must place work and
// respect the invariants.
func TestBenchInputSane(t *testing.T) {
	in := benchInput(Spread)
	got := Schedule(in)
	if len(got) == 0 {
		t.Fatal("nothing scheduled")
	}
	check(t, in, got)
}

// BenchmarkScheduleMixedShapes has requests of many distinct sizes, most of
// which stop fitting early, so the pass relies on its failure bounds.
func BenchmarkScheduleMixedShapes(b *testing.B) {
	in := benchInput(Spread)
	r := rand.New(rand.NewSource(9))
	for i := range in.Queued {
		in.Queued[i].Milli = 1 + r.Intn(1000)
		in.Queued[i].MemBytes = uint64(1+r.Intn(80)) * gib
	}
	for b.Loop() {
		Schedule(in)
	}
}
