package scheduler

import (
	"fmt"
	"math/rand"
	"reflect"
	"testing"

	"github.com/ragnode/ragnode/gpu"
)

const gib = 1 << 30

func gpus(n int, mem uint64) []GPU {
	gs := make([]GPU, n)
	for i := range gs {
		gs[i] = GPU{Index: i, MemTotal: mem}
	}
	return gs
}

func tasks(part string, seq0 uint64, n, milli int, mem uint64) []Task {
	ts := make([]Task, n)
	for i := range ts {
		ts[i] = Task{ID: fmt.Sprintf("%s-%d", part, i), Partition: part, Seq: seq0 + uint64(i), Milli: milli, MemBytes: mem}
	}
	return ts
}

func TestParsePolicy(t *testing.T) {
	for in, want := range map[string]Policy{"": Spread, "spread": Spread, "Spread": Spread, "binpack": BinPack, "BIN-PACK": BinPack, " bin_pack ": BinPack} {
		if got, err := ParsePolicy(in); err != nil || got != want {
			t.Errorf("ParsePolicy(%q) = %q, %v", in, got, err)
		}
	}
	if _, err := ParsePolicy("random"); err == nil {
		t.Error("ParsePolicy(random) accepted")
	}
}

func TestRules(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Input
		want []Assignment
	}{
		{
			name: "quarter GPUs pack four to a card",
			in: Input{
				Nodes:  []Node{{ID: "a", Eligible: true, GPUs: gpus(2, 80*gib), MaxConcurrent: 0}},
				Queued: tasks("p", 1, 5, 250, 0),
			},
			want: []Assignment{
				{"p-0", "a", 0, 250, 0}, {"p-1", "a", 0, 250, 0}, {"p-2", "a", 0, 250, 0},
				{"p-3", "a", 0, 250, 0}, {"p-4", "a", 1, 250, 0},
			},
		},
		{
			name: "bin-pack within node prefers the busiest card that fits",
			in: Input{
				Nodes: []Node{{ID: "a", Eligible: true, GPUs: []GPU{
					{Index: 0, MilliUsed: 100, MemTotal: 80 * gib},
					{Index: 1, MilliUsed: 700, MemTotal: 80 * gib},
					{Index: 2, MilliUsed: 800, MemTotal: 80 * gib},
				}}},
				Queued: tasks("p", 1, 2, 300, 0),
			},
			want: []Assignment{{"p-0", "a", 1, 300, 0}, {"p-1", "a", 0, 300, 0}},
		},
		{
			name: "memory-only request takes its share of the card, memory is checked with reserve",
			in: Input{
				Nodes: []Node{{ID: "a", Eligible: true, GPUs: []GPU{
					{Index: 0, MemTotal: 80 * gib, MemReserve: 10 * gib, MemUsed: 55 * gib},
					{Index: 1, MemTotal: 80 * gib},
				}}},
				Queued: tasks("p", 1, 2, 0, 20*gib),
			},
			want: []Assignment{{"p-0", "a", 1, 250, 20 * gib}, {"p-1", "a", 1, 250, 20 * gib}},
		},
		{
			name: "milli and memory must both fit",
			in: Input{
				Nodes: []Node{{ID: "a", Eligible: true, GPUs: []GPU{
					{Index: 0, MilliUsed: 900, MemTotal: 80 * gib},
					{Index: 1, MilliUsed: 0, MemTotal: 80 * gib, MemUsed: 75 * gib},
					{Index: 2, MilliUsed: 500, MemTotal: 80 * gib},
				}}},
				Queued: []Task{{ID: "t", Seq: 1, Milli: 200, MemBytes: 10 * gib}},
			},
			want: []Assignment{{"t", "a", 2, 200, 10 * gib}},
		},
		{
			name: "GPU-less nodes run GPU tasks on CPU slots",
			in: Input{
				Nodes:  []Node{{ID: "laptop", Eligible: true, CPUSlots: 2}},
				Queued: append(tasks("p", 1, 2, 250, 0), Task{ID: "m", Partition: "p", Seq: 9, MemBytes: gib}),
			},
			want: []Assignment{{"p-0", "laptop", -1, 0, 0}, {"p-1", "laptop", -1, 0, 0}},
		},
		{
			name: "CPU tasks use CPU slots even on GPU nodes",
			in: Input{
				Nodes:  []Node{{ID: "a", Eligible: true, GPUs: gpus(1, 80*gib), CPUSlots: 3, CPUUsed: 2}},
				Queued: tasks("p", 1, 2, 0, 0),
			},
			want: []Assignment{{"p-0", "a", -1, 0, 0}},
		},
		{
			name: "GPU task on a GPU node never falls back to a CPU slot",
			in: Input{
				Nodes:  []Node{{ID: "a", Eligible: true, GPUs: []GPU{{Index: 0, MilliUsed: 1000}}, CPUSlots: 4}},
				Queued: tasks("p", 1, 1, 100, 0),
			},
			want: nil,
		},
		{
			name: "ineligible nodes get nothing",
			in: Input{
				Nodes: []Node{
					{ID: "a", Eligible: false, CPUSlots: 10},
					{ID: "b", Eligible: true, CPUSlots: 1},
				},
				Queued: tasks("p", 1, 3, 0, 0),
			},
			want: []Assignment{{"p-0", "b", -1, 0, 0}},
		},
		{
			name: "MaxConcurrent caps a node",
			in: Input{
				Nodes:  []Node{{ID: "a", Eligible: true, GPUs: gpus(1, 80*gib), Running: 1, MaxConcurrent: 3}},
				Queued: tasks("p", 1, 4, 100, 0),
			},
			want: []Assignment{{"p-0", "a", 0, 100, 0}, {"p-1", "a", 0, 100, 0}},
		},
		{
			name: "PoolSize caps the cluster",
			in: Input{
				Nodes:    []Node{{ID: "a", Eligible: true, CPUSlots: 10}, {ID: "b", Eligible: true, CPUSlots: 10}},
				Queued:   tasks("p", 1, 5, 0, 0),
				Running:  2,
				PoolSize: 4,
			},
			want: []Assignment{{"p-0", "a", -1, 0, 0}, {"p-1", "b", -1, 0, 0}},
		},
		{
			name: "PoolSize already reached",
			in: Input{
				Nodes:   []Node{{ID: "a", Eligible: true, CPUSlots: 10}},
				Queued:  tasks("p", 1, 5, 0, 0),
				Running: 4, PoolSize: 4,
			},
			want: nil,
		},
		{
			name: "a big request does not block small ones behind it",
			in: Input{
				Nodes: []Node{{ID: "a", Eligible: true, GPUs: []GPU{{Index: 0, MilliUsed: 500, MemTotal: 80 * gib}}}},
				Queued: []Task{
					{ID: "big", Seq: 1, Milli: 1000},
					{ID: "huge-mem", Seq: 2, MemBytes: 100 * gib},
					{ID: "small", Seq: 3, Milli: 250},
				},
			},
			want: []Assignment{{"small", "a", 0, 250, 0}},
		},
		{
			name: "spread picks fewest running, ties lowest ID",
			in: Input{
				Nodes: []Node{
					{ID: "c", Eligible: true, CPUSlots: 4},
					{ID: "b", Eligible: true, CPUSlots: 4, Running: 1, CPUUsed: 1},
					{ID: "a", Eligible: true, CPUSlots: 4, Running: 1, CPUUsed: 1},
				},
				Queued: tasks("p", 1, 4, 0, 0),
			},
			want: []Assignment{{"p-0", "c", -1, 0, 0}, {"p-1", "a", -1, 0, 0}, {"p-2", "b", -1, 0, 0}, {"p-3", "c", -1, 0, 0}},
		},
		{
			name: "binpack fills the fullest node first",
			in: Input{
				Nodes: []Node{
					{ID: "a", Eligible: true, GPUs: gpus(2, 80*gib)},
					{ID: "b", Eligible: true, GPUs: []GPU{{Index: 0, MilliUsed: 500, MemTotal: 80 * gib}, {Index: 1, MemTotal: 80 * gib}}, Running: 1},
				},
				Queued: tasks("p", 1, 7, 250, 0),
				Policy: BinPack,
			},
			want: []Assignment{
				{"p-0", "b", 0, 250, 0}, {"p-1", "b", 0, 250, 0}, {"p-2", "b", 1, 250, 0}, {"p-3", "b", 1, 250, 0},
				{"p-4", "b", 1, 250, 0}, {"p-5", "b", 1, 250, 0}, {"p-6", "a", 0, 250, 0},
			},
		},
		{
			name: "binpack ties go to the lowest ID",
			in: Input{
				Nodes:  []Node{{ID: "b", Eligible: true, CPUSlots: 2}, {ID: "a", Eligible: true, CPUSlots: 2}},
				Queued: tasks("p", 1, 3, 0, 0),
				Policy: BinPack,
			},
			want: []Assignment{{"p-0", "a", -1, 0, 0}, {"p-1", "a", -1, 0, 0}, {"p-2", "b", -1, 0, 0}},
		},
		{
			name: "duplicate task IDs are assigned once",
			in: Input{
				Nodes:  []Node{{ID: "a", Eligible: true, CPUSlots: 5}},
				Queued: []Task{{ID: "x", Seq: 2}, {ID: "x", Seq: 1}},
			},
			want: []Assignment{{"x", "a", -1, 0, 0}},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Schedule(tc.in)
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got  %v\nwant %v", got, tc.want)
			}
			check(t, tc.in, got)
		})
	}
}

func TestPartitionFairness(t *testing.T) {
	// A huge, older partition must not starve a small, younger one.
	q := append(tasks("big", 1, 1000, 0, 0), tasks("small", 5000, 3, 0, 0)...)
	q = append(q, tasks("mid", 2000, 10, 0, 0)...)
	in := Input{Nodes: []Node{{ID: "a", Eligible: true, CPUSlots: 8}}, Queued: q}
	got := Schedule(in)
	var order []string
	for _, a := range got {
		order = append(order, a.TaskID)
	}
	want := []string{"big-0", "mid-0", "small-0", "big-1", "mid-1", "small-1", "big-2", "mid-2"}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("order %v\nwant  %v", order, want)
	}
}

func TestPartitionTurnSkipsInfeasibleHead(t *testing.T) {
	// A partition whose oldest task fits nowhere still gets its turn.
	q := []Task{
		{ID: "a-huge", Partition: "a", Seq: 1, Milli: 1000},
		{ID: "a-small", Partition: "a", Seq: 2, Milli: 100},
		{ID: "b-0", Partition: "b", Seq: 3, Milli: 100},
		{ID: "b-1", Partition: "b", Seq: 4, Milli: 100},
	}
	in := Input{Nodes: []Node{{ID: "n", Eligible: true, GPUs: []GPU{{Index: 0, MilliUsed: 800}}}}, Queued: q}
	got := Schedule(in)
	want := []Assignment{{"a-small", "n", 0, 100, 0}, {"b-0", "n", 0, 100, 0}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v want %v", got, want)
	}
}

func TestDeterministicAndPure(t *testing.T) {
	r := rand.New(rand.NewSource(7))
	for iter := 0; iter < 100; iter++ {
		in := randomInput(r)
		snapshot := deepCopy(in)
		want := Schedule(in)
		if !reflect.DeepEqual(in, snapshot) {
			t.Fatal("Schedule modified its input")
		}
		for k := 0; k < 3; k++ {
			sh := deepCopy(in)
			r.Shuffle(len(sh.Queued), func(i, j int) { sh.Queued[i], sh.Queued[j] = sh.Queued[j], sh.Queued[i] })
			r.Shuffle(len(sh.Nodes), func(i, j int) { sh.Nodes[i], sh.Nodes[j] = sh.Nodes[j], sh.Nodes[i] })
			if got := Schedule(sh); !reflect.DeepEqual(got, want) {
				t.Fatalf("iter %d: shuffled input changed the result\n got %v\nwant %v", iter, got, want)
			}
		}
	}
}

func TestProperties(t *testing.T) {
	for _, seed := range []int64{1, 2, 3} {
		r := rand.New(rand.NewSource(seed))
		for iter := 0; iter < 150; iter++ {
			in := randomInput(r)
			got := Schedule(in)
			if t.Failed() {
				return
			}
			check(t, in, got)
			if t.Failed() {
				t.Logf("seed %d iter %d input %+v", seed, iter, in)
				return
			}
		}
	}
}

func randomInput(r *rand.Rand) Input {
	in := Input{Policy: []Policy{Spread, BinPack}[r.Intn(2)]}
	nn := r.Intn(6)
	for i := 0; i < nn; i++ {
		n := Node{ID: fmt.Sprintf("n%d", r.Intn(10)*10+i), Eligible: r.Intn(5) > 0, CPUSlots: r.Intn(4)}
		n.CPUUsed = r.Intn(n.CPUSlots + 1)
		if r.Intn(3) > 0 {
			for g := 0; g < 1+r.Intn(4); g++ {
				mem := uint64(r.Intn(3)+1) * 16 * gib
				gg := GPU{Index: g, MilliUsed: r.Intn(5) * 250, MemTotal: mem}
				if r.Intn(3) == 0 {
					gg.MemReserve = uint64(r.Intn(4)) * gib
				}
				gg.MemUsed = uint64(r.Int63n(int64(mem / 2)))
				n.GPUs = append(n.GPUs, gg)
			}
		}
		n.Running = n.CPUUsed + r.Intn(3)
		if r.Intn(3) == 0 {
			n.MaxConcurrent = n.Running + r.Intn(4)
		}
		in.Running += n.Running
		in.Nodes = append(in.Nodes, n)
	}
	if r.Intn(3) == 0 {
		in.PoolSize = in.Running + r.Intn(8)
	}
	nparts := 1 + r.Intn(4)
	nt := r.Intn(40)
	for i := 0; i < nt; i++ {
		t := Task{ID: fmt.Sprintf("t%d", i), Partition: fmt.Sprintf("p%d", r.Intn(nparts)), Seq: uint64(r.Intn(1000))}
		switch r.Intn(5) {
		case 0: // CPU
		case 1:
			t.Milli = []int{100, 250, 333, 500, 1000, 1200}[r.Intn(6)]
		case 2:
			t.MemBytes = uint64(1+r.Intn(40)) * gib
		case 3:
			t.Milli = 1 + r.Intn(1000)
			t.MemBytes = uint64(r.Intn(20)) * gib
		case 4:
			t.Milli = 250
		}
		in.Queued = append(in.Queued, t)
	}
	return in
}

func deepCopy(in Input) Input {
	out := in
	out.Nodes = nil
	for _, n := range in.Nodes {
		n.GPUs = append([]GPU(nil), n.GPUs...)
		out.Nodes = append(out.Nodes, n)
	}
	out.Queued = append([]Task(nil), in.Queued...)
	return out
}

// check verifies the invariants of an assignment list against the input,
// with its own, deliberately simple arithmetic.
func check(t *testing.T, in Input, got []Assignment) {
	t.Helper()
	type key struct {
		node string
		gpu  int
	}
	nodes := map[string]*Node{}
	gpuState := map[key]*GPU{}
	post := deepCopy(in)
	for i := range post.Nodes {
		n := &post.Nodes[i]
		nodes[n.ID] = n
		for j := range n.GPUs {
			gpuState[key{n.ID, n.GPUs[j].Index}] = &n.GPUs[j]
		}
	}
	taskByID := map[string]Task{}
	for _, q := range in.Queued {
		taskByID[q.ID] = q
	}
	assigned := map[string]bool{}
	for _, a := range got {
		tk, ok := taskByID[a.TaskID]
		if !ok || assigned[a.TaskID] {
			t.Errorf("unknown or repeated task %q", a.TaskID)
			continue
		}
		assigned[a.TaskID] = true
		n := nodes[a.NodeID]
		if n == nil || !n.Eligible {
			t.Errorf("task %s on missing/ineligible node %q", a.TaskID, a.NodeID)
			continue
		}
		n.Running++
		if a.GPU < 0 {
			if a.Milli != 0 || a.MemBytes != 0 {
				t.Errorf("CPU assignment with GPU share: %+v", a)
			}
			if (tk.Milli > 0 || tk.MemBytes > 0) && len(n.GPUs) > 0 {
				t.Errorf("GPU task %s on a CPU slot of GPU node %s", tk.ID, n.ID)
			}
			n.CPUUsed++
			continue
		}
		g := gpuState[key{a.NodeID, a.GPU}]
		if g == nil {
			t.Errorf("unknown GPU in %+v", a)
			continue
		}
		wantMilli := tk.Milli
		if wantMilli <= 0 {
			wantMilli = gpu.MilliForMem(tk.MemBytes, g.MemTotal)
		}
		if a.Milli != wantMilli || a.MemBytes != tk.MemBytes || a.Milli <= 0 {
			t.Errorf("assignment %+v for task %+v", a, tk)
		}
		g.MilliUsed += a.Milli
		g.MemUsed += a.MemBytes
	}
	total := in.Running + len(got)
	if in.PoolSize > 0 && len(got) > 0 && total > in.PoolSize {
		t.Errorf("pool %d exceeded: %d", in.PoolSize, total)
	}
	// Over-allocation is judged only on what the scheduler added: the
	// input may already be over (e.g. a MaxConcurrent lowered at runtime).
	orig := deepCopy(in)
	for i := range post.Nodes {
		n, o := &post.Nodes[i], &orig.Nodes[i]
		if n.Running > o.Running && n.MaxConcurrent > 0 && n.Running > n.MaxConcurrent {
			t.Errorf("node %s over MaxConcurrent: %d > %d", n.ID, n.Running, n.MaxConcurrent)
		}
		if n.CPUUsed > o.CPUUsed && n.CPUUsed > n.CPUSlots {
			t.Errorf("node %s CPU slots over: %d > %d", n.ID, n.CPUUsed, n.CPUSlots)
		}
		for j := range n.GPUs {
			g, og := &n.GPUs[j], &o.GPUs[j]
			if g.MilliUsed > og.MilliUsed && g.MilliUsed > 1000 {
				t.Errorf("node %s GPU %d over 1000 milli: %d", n.ID, g.Index, g.MilliUsed)
			}
			if g.MemUsed > og.MemUsed && g.MemUsed+g.MemReserve > g.MemTotal {
				t.Errorf("node %s GPU %d over memory: %d+%d > %d", n.ID, g.Index, g.MemUsed, g.MemReserve, g.MemTotal)
			}
		}
	}
	// Maximality: unless the pool is full, nothing left over fits anywhere.
	if in.PoolSize > 0 && total >= in.PoolSize {
		return
	}
	for _, tk := range in.Queued {
		if assigned[tk.ID] {
			continue
		}
		for i := range post.Nodes {
			if n := &post.Nodes[i]; feasible(tk, n) {
				t.Errorf("task %+v left queued but fits on node %s (%+v)", tk, n.ID, *n)
			}
		}
	}
}

func feasible(tk Task, n *Node) bool {
	if !n.Eligible || (n.MaxConcurrent > 0 && n.Running >= n.MaxConcurrent) {
		return false
	}
	if (tk.Milli <= 0 && tk.MemBytes == 0) || len(n.GPUs) == 0 {
		return n.CPUUsed < n.CPUSlots
	}
	for _, g := range n.GPUs {
		m := tk.Milli
		if m <= 0 {
			m = gpu.MilliForMem(tk.MemBytes, g.MemTotal)
		}
		if g.MilliUsed+m > 1000 {
			continue
		}
		if tk.MemBytes > 0 && g.MemUsed+tk.MemBytes+g.MemReserve > g.MemTotal {
			continue
		}
		return true
	}
	return false
}
