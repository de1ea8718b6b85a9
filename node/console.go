package node

import (
	"bytes"
	"context"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/transport"
)

// The console's backend (transport.ConsoleBackend): compact views of the
// ledger and of this node's observations. Every answer is bounded by the
// members, the running tasks or a page size, never the whole ledger.

const (
	consoleDefaultLimit = 50
	consoleMaxLimit     = 500
)

// ConsoleSummary implements transport.ConsoleBackend.
func (n *Node) ConsoleSummary(ctx context.Context) (transport.ConsoleSummary, error) {
	members, err := n.Members(ctx)
	if err != nil {
		return transport.ConsoleSummary{}, err
	}
	sum := transport.ConsoleSummary{Node: transport.ConsoleNodeRef{ID: n.id, Name: n.name}, Members: members,
		Counts: map[string]int{}, Stages: map[string]int{}, GPUs: []transport.ConsoleGPU{}, CPUs: []transport.ConsoleCPU{},
		ObservingSince: n.obs.since}
	lh := n.lead.history.summary(time.Now())
	sum.LeaderChanges, sum.LongestLeaderlessMS, sum.ElectionChurn = lh.changes, lh.longest.Milliseconds(), lh.churn
	stats := n.raft.Stats()
	sum.Term = parseU(stats["term"])
	sum.CommitIndex = parseU(stats["commit_index"])
	sum.AppliedIndex = parseU(stats["applied_index"])
	_, lid := n.raft.LeaderWithID()
	sum.Leader.ID = string(lid)
	for _, m := range members {
		if m.ID == sum.Leader.ID {
			sum.Leader.Name = m.Name
		}
	}
	n.fsm.View(func(s *fsm.State) {
		// The observer's totals when they are of this very index (exact),
		// else a walk of the ledger (metrics_cache.go).
		counts := map[fsm.TaskState]int(nil)
		if t := n.obs.totals.Load(); t != nil && t.index == s.Index {
			counts = t.counts
		} else {
			counts = s.Counts()
		}
		for k, v := range counts {
			sum.Counts[string(k)] = v
		}
		sum.QueueDepth = s.QueuedCount()
		sum.LastEvent = s.EventSeq
		perGPU := map[gpuKeyView][]transport.ConsoleGPUTask{}
		for id, a := range s.Allocs {
			t := s.Tasks[id]
			if t == nil {
				continue
			}
			if t.State == fsm.Running && t.Stage != "" {
				sum.Stages[t.Stage]++
			}
			if a.GPU >= 0 {
				k := gpuKeyView{a.NodeID, a.GPU}
				perGPU[k] = append(perGPU[k], transport.ConsoleGPUTask{TaskID: id, FileID: t.FileID, Milli: a.Milli, Mem: a.MemBytes})
			}
		}
		for id, nd := range s.Nodes {
			if nd.Status == fsm.NodeLeft {
				continue
			}
			if len(nd.GPUs) == 0 {
				sum.CPUs = append(sum.CPUs, transport.ConsoleCPU{NodeID: id, Node: nd.Name, Slots: nd.CPUSlots, Used: s.CPUUsed(id)})
			}
			for i, g := range nd.GPUs {
				milli, mem := s.GPUUsage(id, i)
				tasks := perGPU[gpuKeyView{id, i}]
				sort.Slice(tasks, func(a, b int) bool { return tasks[a].TaskID < tasks[b].TaskID })
				if tasks == nil {
					tasks = []transport.ConsoleGPUTask{}
				}
				sum.GPUs = append(sum.GPUs, transport.ConsoleGPU{NodeID: id, Node: nd.Name, Index: g.Index, Name: g.Name,
					MilliTotal: gpu.MilliPerGPU, MilliUsed: milli, MemTotal: g.MemTotal, MemUsed: mem,
					MemReserve: nd.GPUReserve, Tasks: tasks})
			}
		}
	})
	sort.Slice(sum.GPUs, func(i, j int) bool {
		if sum.GPUs[i].Node != sum.GPUs[j].Node {
			return sum.GPUs[i].Node < sum.GPUs[j].Node
		}
		return sum.GPUs[i].Index < sum.GPUs[j].Index
	})
	sort.Slice(sum.CPUs, func(i, j int) bool { return sum.CPUs[i].Node < sum.CPUs[j].Node })
	return sum, nil
}

type gpuKeyView struct {
	node string
	gpu  int
}

// ConsoleTasks implements transport.ConsoleBackend: a filtered page, newest
// first. q matches a substring of the ID, partition, file ID, file name,
// node ID or error, case-insensitively.
func (n *Node) ConsoleTasks(ctx context.Context, q transport.ConsoleTaskQuery) (transport.ConsoleTaskPage, error) {
	if q.Offset < 0 || q.Limit < 0 {
		return transport.ConsoleTaskPage{}, errs.Errorf(errs.Invalid, "offset and limit must not be negative")
	}
	if q.Limit == 0 {
		q.Limit = consoleDefaultLimit
	}
	if q.Limit > consoleMaxLimit {
		q.Limit = consoleMaxLimit
	}
	needle := strings.ToLower(q.Q)
	// Filter under the read lock, sort outside it (a sort of the whole
	// ledger must not hold applies back), then build the page's views in a
	// second, short read; a task the ledger dropped in between is skipped.
	type hit struct {
		seq uint64
		id  string
	}
	var hits []hit
	n.fsm.View(func(s *fsm.State) {
		for _, t := range s.Tasks {
			if q.State != "" && string(t.State) != q.State {
				continue
			}
			if q.Partition != "" && t.Partition != q.Partition {
				continue
			}
			if needle != "" && !taskMatches(t, needle) {
				continue
			}
			hits = append(hits, hit{t.Seq, t.ID})
		}
	})
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].seq != hits[j].seq {
			return hits[i].seq > hits[j].seq
		}
		return hits[i].id < hits[j].id
	})
	page := transport.ConsoleTaskPage{Total: len(hits), Offset: q.Offset, Limit: q.Limit, Tasks: []transport.TaskView{}}
	n.fsm.View(func(s *fsm.State) {
		for i := q.Offset; i < len(hits) && i < q.Offset+q.Limit; i++ {
			if t := s.Tasks[hits[i].id]; t != nil {
				page.Tasks = append(page.Tasks, viewOf(t))
			}
		}
	})
	return page, nil
}

func taskMatches(t *fsm.Task, needle string) bool {
	for _, f := range []string{t.ID, t.Partition, t.FileID, t.File.Name, t.NodeID, t.LastNode, t.Error} {
		if strings.Contains(strings.ToLower(f), needle) {
			return true
		}
	}
	return false
}

// ConsoleTask implements transport.ConsoleBackend.
func (n *Node) ConsoleTask(ctx context.Context, id string) (transport.ConsoleTaskDetail, error) {
	tv, err := n.Task(ctx, id)
	if err != nil {
		return transport.ConsoleTaskDetail{}, err
	}
	return transport.ConsoleTaskDetail{Task: tv, History: n.obs.history(id), ObservingSince: n.obs.since}, nil
}

// ConsoleEvents implements transport.ConsoleBackend: the replicated
// history (fsm/events.go) newer than since, oldest first, so every node
// answers the same and a restart loses nothing. Bounded by the history's
// own bound (fsm.EventRetainCount).
func (n *Node) ConsoleEvents(ctx context.Context, since uint64) ([]transport.ConsoleEvent, error) {
	var evs []fsm.Event
	n.fsm.View(func(s *fsm.State) { evs = s.EventsSince(since, 0) })
	out := make([]transport.ConsoleEvent, len(evs))
	for i, e := range evs {
		out[i] = transport.ConsoleEvent{Seq: e.Seq, Time: e.Time, Kind: e.Kind, NodeID: e.NodeID, TaskID: e.TaskID, Msg: e.Msg}
	}
	return out, nil
}

// ConsoleSeries implements transport.ConsoleBackend.
func (n *Node) ConsoleSeries(ctx context.Context) (transport.ConsoleSeries, error) {
	return n.obs.series(time.Now()), nil
}

// Retry implements transport.ConsoleBackend. The ledger has no retry
// command; a retry is a new submission of the same bytes, name and
// metadata in replace mode, through the ordinary submit path. Only the
// file's current task may be retried, and only once it failed or was
// cancelled, so a retry never races a newer version of the file.
func (n *Node) Retry(ctx context.Context, id string) (transport.TaskView, error) {
	var t fsm.Task
	var current, found bool
	n.fsm.View(func(s *fsm.State) {
		if st := s.Tasks[id]; st != nil {
			t, found = *st, true
			f := s.Files[fsm.FileKey(st.Partition, st.FileID)]
			current = f != nil && f.TaskID == id
		}
	})
	switch {
	case !found:
		return transport.TaskView{}, errs.Errorf(errs.NotFound, "task %s not found", id)
	case t.State != fsm.Failed && t.State != fsm.Cancelled:
		return transport.TaskView{}, errs.Errorf(errs.Conflict, "task %s is %s; only failed or cancelled tasks are retried", id, t.State)
	case !current:
		return transport.TaskView{}, errs.Errorf(errs.Conflict, "task %s is no longer the current version of %s/%s", id, t.Partition, t.FileID)
	}
	req := transport.SubmitRequest{Partition: t.Partition, FileID: t.FileID, FileName: t.File.Name,
		Metadata: t.Metadata, Mode: fsm.ModeReplace, SharedPath: t.File.SharedPath, Size: t.File.Size}
	var body []byte
	if t.File.SharedPath == "" {
		b, err := n.readFile(ctx, t)
		if err != nil {
			return transport.TaskView{}, errs.Wrap(errs.Unavailable, err)
		}
		body = b
	}
	return n.Submit(ctx, req, bytes.NewReader(body))
}

func parseU(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}
