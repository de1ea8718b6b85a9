package scheduler

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"
)

func pnode(id string, held int, cards int) PrefetchNode {
	n := PrefetchNode{Node: Node{ID: id, Eligible: true, CPUSlots: 1}, Held: held}
	for i := 0; i < cards; i++ {
		n.GPUs = append(n.GPUs, GPU{Index: i, MemTotal: 16 << 30})
	}
	return n
}

func TestPrefetchFillsEachNodeToDepthRoundRobin(t *testing.T) {
	var q []Task
	for i := 0; i < 10; i++ {
		q = append(q, Task{ID: fmt.Sprintf("t%d", i), Partition: "p", Seq: uint64(i + 1), Milli: 250})
	}
	in := PrefetchInput{Nodes: []PrefetchNode{pnode("a", 0, 1), pnode("b", 1, 1), pnode("c", 0, 1)}, Queued: q, Depth: 2}
	got := Prefetch(in)
	per := map[string]int{}
	for _, a := range got {
		per[a.NodeID]++
	}
	// a and c had room for 2, b for 1: 5 in all, the oldest five.
	if per["a"] != 2 || per["b"] != 1 || per["c"] != 2 || len(got) != 5 {
		t.Fatalf("plan %v", got)
	}
	// The emptiest nodes are served first, one task a round.
	want := []PrefetchAssignment{{"t0", "a"}, {"t1", "c"}, {"t2", "b"}, {"t3", "a"}, {"t4", "c"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
}

func TestPrefetchSkipsIneligibleAndUnfitNodes(t *testing.T) {
	cpuOnly := pnode("cpu", 0, 0)
	cpuOnly.CPUSlots = 0 // no slot of any kind: runs nothing
	drained := pnode("drained", 0, 1)
	drained.Eligible = false
	small := pnode("small", 0, 1)
	small.GPUs[0].MemTotal = 1 << 30
	q := []Task{{ID: "big", Partition: "p", Seq: 1, MemBytes: 4 << 30}, {ID: "cpu1", Partition: "p", Seq: 2}}
	got := Prefetch(PrefetchInput{Nodes: []PrefetchNode{cpuOnly, drained, small}, Queued: q, Depth: 3})
	// Only "small" can take anything, and only the CPU task (1 slot): the
	// 4 GiB request does not fit its 1 GiB card.
	want := []PrefetchAssignment{{"cpu1", "small"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
	if Prefetch(PrefetchInput{Nodes: []PrefetchNode{pnode("a", 0, 1)}, Queued: q, Depth: 0}) != nil {
		t.Fatal("depth 0 planned a prefetch")
	}
}

func TestPrefetchRoundRobinAcrossPartitions(t *testing.T) {
	q := []Task{{ID: "a1", Partition: "a", Seq: 1}, {ID: "a2", Partition: "a", Seq: 2}, {ID: "a3", Partition: "a", Seq: 3}, {ID: "b1", Partition: "b", Seq: 4}}
	got := Prefetch(PrefetchInput{Nodes: []PrefetchNode{pnode("n", 0, 0)}, Queued: q, Depth: 2})
	want := []PrefetchAssignment{{"a1", "n"}, {"b1", "n"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("plan %v, want %v", got, want)
	}
}

func TestPrefetchIgnoresInputOrder(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	var q []Task
	for i := 0; i < 40; i++ {
		q = append(q, Task{ID: fmt.Sprintf("t%02d", i), Partition: fmt.Sprint("p", i%3), Seq: uint64(i), Milli: []int{0, 250, 1000}[i%3]})
	}
	nodes := []PrefetchNode{pnode("a", 1, 1), pnode("b", 0, 0), pnode("c", 2, 2), pnode("d", 0, 1)}
	base := Prefetch(PrefetchInput{Nodes: nodes, Queued: q, Depth: 4})
	if len(base) != 4+3+2+4 {
		t.Fatalf("planned %d, want 13", len(base))
	}
	for k := 0; k < 20; k++ {
		q2 := append([]Task(nil), q...)
		n2 := append([]PrefetchNode(nil), nodes...)
		rng.Shuffle(len(q2), func(i, j int) { q2[i], q2[j] = q2[j], q2[i] })
		rng.Shuffle(len(n2), func(i, j int) { n2[i], n2[j] = n2[j], n2[i] })
		if got := Prefetch(PrefetchInput{Nodes: n2, Queued: q2, Depth: 4}); !reflect.DeepEqual(got, base) {
			t.Fatalf("shuffle %d: %v, want %v", k, got, base)
		}
	}
}
