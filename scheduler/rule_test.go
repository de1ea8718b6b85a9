package scheduler

import (
	"math/rand"
	"testing"

	"github.com/ragnode/ragnode/gpu"
)

func TestWantsAndUsesGPU(t *testing.T) {
	for _, c := range []struct {
		milli      int
		mem        uint64
		gpus       int
		wants, use bool
	}{
		{0, 0, 2, false, false},
		{0, 0, 0, false, false},
		{250, 0, 2, true, true},
		{0, gib, 2, true, true},
		{250, gib, 0, true, false}, // a GPU request on a CPU-only node runs on the CPU
		{-5, 0, 2, false, false},   // a negative fraction is no request
	} {
		if got := WantsGPU(c.milli, c.mem); got != c.wants {
			t.Errorf("WantsGPU(%d, %d) = %v", c.milli, c.mem, got)
		}
		if got := UsesGPU(c.milli, c.mem, c.gpus); got != c.use {
			t.Errorf("UsesGPU(%d, %d, %d) = %v", c.milli, c.mem, c.gpus, got)
		}
	}
}

func TestNeed(t *testing.T) {
	for _, c := range []struct {
		milli     int
		mem, card uint64
		want      int
	}{
		{250, 0, 16 * gib, 250},
		{250, 8 * gib, 16 * gib, 250}, // an explicit fraction wins over memory
		{0, 4 * gib, 16 * gib, 250},
		{0, 5 * gib, 16 * gib, 313},              // rounded up
		{0, 4 * gib, 0, gpu.MilliPerGPU},         // unknown card size: whole card
		{0, 32 * gib, 16 * gib, gpu.MilliPerGPU}, // capped at one card
		{0, 0, 16 * gib, 0},
	} {
		if got := Need(c.milli, c.mem, c.card); got != c.want {
			t.Errorf("Need(%d, %d, %d) = %d, want %d", c.milli, c.mem, c.card, got, c.want)
		}
	}
}

func TestFitsGPU(t *testing.T) {
	card := GPU{Index: 0, MilliUsed: 500, MemTotal: 16 * gib, MemReserve: 2 * gib, MemUsed: 10 * gib}
	for _, c := range []struct {
		name  string
		milli int
		mem   uint64
		g     GPU
		want  bool
	}{
		{"exactly the free milli", 500, 0, card, true},
		{"one milli too many", 501, 0, card, false},
		{"exactly the free memory", 100, 4 * gib, card, true},
		{"memory beyond usable", 100, 4*gib + 1, card, false},
		{"memory-only takes its share of milli", 0, 4 * gib, card, true},
		{"memory-only share over free milli", 0, 4 * gib, GPU{MilliUsed: 800, MemTotal: 16 * gib}, false},
		{"reserve above total", 100, 1, GPU{MemTotal: gib, MemReserve: 2 * gib}, false},
		{"already over usable", 100, 1, GPU{MemTotal: 4 * gib, MemReserve: gib, MemUsed: 3*gib + 1}, false},
		{"no memory asked ignores memory", 100, 0, GPU{MemTotal: gib, MemReserve: 2 * gib}, true},
		{"full card", 1, 0, GPU{MilliUsed: gpu.MilliPerGPU}, false},
	} {
		if got := FitsGPU(c.milli, c.mem, c.g); got != c.want {
			t.Errorf("%s: FitsGPU(%d, %d, %+v) = %v", c.name, c.milli, c.mem, c.g, got)
		}
	}
}

func TestAnyRoom(t *testing.T) {
	full := GPU{MilliUsed: gpu.MilliPerGPU}
	for _, c := range []struct {
		name string
		in   Input
		want bool
	}{
		{"no nodes", Input{}, false},
		{"free CPU slot", Input{Nodes: []Node{{ID: "a", Eligible: true, CPUSlots: 1}}}, true},
		{"ineligible", Input{Nodes: []Node{{ID: "a", CPUSlots: 1}}}, false},
		{"slots used", Input{Nodes: []Node{{ID: "a", Eligible: true, CPUSlots: 1, CPUUsed: 1, GPUs: []GPU{full}}}}, false},
		{"a card with room", Input{Nodes: []Node{{ID: "a", Eligible: true, GPUs: []GPU{full, {MilliUsed: 999}}}}}, true},
		{"at MaxConcurrent", Input{Nodes: []Node{{ID: "a", Eligible: true, CPUSlots: 2, Running: 1, MaxConcurrent: 1}}}, false},
		{"pool full", Input{Nodes: []Node{{ID: "a", Eligible: true, CPUSlots: 2}}, Running: 3, PoolSize: 3}, false},
		{"pool not full", Input{Nodes: []Node{{ID: "a", Eligible: true, CPUSlots: 2}}, Running: 2, PoolSize: 3}, true},
		{"second node has room", Input{Nodes: []Node{{ID: "a", Eligible: true}, {ID: "b", Eligible: true, CPUSlots: 1}}}, true},
	} {
		if got := AnyRoom(c.in); got != c.want {
			t.Errorf("%s: AnyRoom = %v", c.name, got)
		}
	}
}

// anyRoomLiteral is the leader's test as it stood before it moved here;
// AnyRoom must agree with it on every input.
func anyRoomLiteral(in Input) bool {
	if in.PoolSize > 0 && in.Running >= in.PoolSize {
		return false
	}
	for _, nd := range in.Nodes {
		if !nd.Eligible || (nd.MaxConcurrent > 0 && nd.Running >= nd.MaxConcurrent) {
			continue
		}
		if nd.CPUUsed < nd.CPUSlots {
			return true
		}
		for _, g := range nd.GPUs {
			if g.MilliUsed < 1000 {
				return true
			}
		}
	}
	return false
}

// No room means no assignment: a caller may skip the pass on AnyRoom.
func TestAnyRoomProperties(t *testing.T) {
	r := rand.New(rand.NewSource(11))
	for iter := 0; iter < 500; iter++ {
		in := randomInput(r)
		room := AnyRoom(in)
		if room != anyRoomLiteral(in) {
			t.Fatalf("iter %d: AnyRoom %v disagrees with the leader's rule on %+v", iter, room, in)
		}
		if got := Schedule(in); !room && len(got) > 0 {
			t.Fatalf("iter %d: AnyRoom false but Schedule assigned %v", iter, got)
		}
	}
}

// Schedule's choices satisfy the exported rule: every GPU assignment takes
// Need on a card where FitsGPU held, and a CPU assignment never lands on a
// node where the task would use a card.
func TestScheduleFollowsRule(t *testing.T) {
	r := rand.New(rand.NewSource(12))
	for iter := 0; iter < 300; iter++ {
		in := randomInput(r)
		byID := map[string]Task{}
		for _, tk := range in.Queued {
			if _, ok := byID[tk.ID]; !ok || tk.Seq < byID[tk.ID].Seq {
				byID[tk.ID] = tk
			}
		}
		post := deepCopy(in)
		nodes := map[string]*Node{}
		for i := range post.Nodes {
			nodes[post.Nodes[i].ID] = &post.Nodes[i]
		}
		for _, a := range Schedule(in) {
			tk, n := byID[a.TaskID], nodes[a.NodeID]
			if a.GPU < 0 {
				if UsesGPU(tk.Milli, tk.MemBytes, len(n.GPUs)) {
					t.Fatalf("iter %d: %+v put a GPU task in a CPU slot of %s", iter, a, n.ID)
				}
				continue
			}
			var g *GPU
			for i := range n.GPUs {
				if n.GPUs[i].Index == a.GPU {
					g = &n.GPUs[i]
				}
			}
			if !FitsGPU(tk.Milli, tk.MemBytes, *g) || a.Milli != Need(tk.Milli, tk.MemBytes, g.MemTotal) {
				t.Fatalf("iter %d: %+v breaks the rule on %+v", iter, a, *g)
			}
			g.MilliUsed += a.Milli
			g.MemUsed += a.MemBytes
		}
	}
}
