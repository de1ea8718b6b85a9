package node

import (
	"context"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/transport"
)

// QueueInfo implements transport.CompatBackend.
func (n *Node) QueueInfo(ctx context.Context) (transport.QueueInfo, error) {
	qi := transport.QueueInfo{PoolSize: n.cfg.PoolSize, Tasks: map[string]int{}}
	n.fsm.View(func(s *fsm.State) {
		for _, nd := range s.Nodes {
			if nd.Status != fsm.NodeAlive || nd.Draining {
				continue
			}
			slots := nd.CPUSlots
			if len(nd.GPUs) > 0 && (n.cfg.TaskMilli > 0 || n.cfg.TaskMem > 0) {
				slots = gpuSlots(nd, n.cfg.TaskMilli, n.cfg.TaskMem)
			}
			qi.TotalSlots += slots
			qi.MaxPerNode = max(qi.MaxPerNode, slots)
		}
		if qi.PoolSize > 0 && qi.TotalSlots > qi.PoolSize {
			qi.TotalSlots = qi.PoolSize
		}
		qi.MaxPerNode = min(qi.MaxPerNode, qi.TotalSlots)
		qi.BusySlots = s.ActiveTotal()
		qi.Tasks = taskCounts(s)
	})
	qi.FreeSlots = qi.TotalSlots - qi.BusySlots
	if qi.FreeSlots < 0 {
		qi.FreeSlots = 0
	}
	return qi, nil
}

// gpuSlots is how many tasks of milli GPU fraction and mem bytes fit on a
// node's cards.
func gpuSlots(nd *fsm.Node, milli int, mem uint64) int {
	slots := 0
	for _, g := range nd.GPUs {
		k := gpu.MilliPerGPU
		if milli > 0 {
			k = gpu.MilliPerGPU / milli
		}
		if mem > 0 {
			if usable := fsm.UsableMem(nd, g.Index); usable/mem < uint64(k) {
				k = int(usable / mem)
			}
		}
		slots += k
	}
	return slots
}

// taskCounts counts tasks by state, and running tasks by the stage they
// last reported (loading, chunking, embedding, inserting), which is what
// RAGondin's queue view shows.
func taskCounts(s *fsm.State) map[string]int {
	out := map[string]int{}
	for _, t := range s.Tasks {
		k := string(t.State)
		if t.State == fsm.Running && t.Stage != "" {
			k = t.Stage
		}
		out[k]++
	}
	return out
}
