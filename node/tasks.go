package node

import (
	"context"
	"sort"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/transport"
)

func viewOf(t *fsm.Task) transport.TaskView {
	v := transport.TaskView{ID: t.ID, State: string(t.State), Stage: t.Stage, Partition: t.Partition, FileID: t.FileID,
		FileName: t.File.Name, Size: t.File.Size, Hash: t.File.Hash, Metadata: t.Metadata, NodeID: t.NodeID, GPU: t.GPU,
		Attempt: t.Attempt, Failures: t.Failures, Error: t.Error, Chunks: t.Chunks,
		Submitted: t.Submitted, Started: t.Started, Finished: t.Finished}
	if t.State.Active() {
		if t.GPU >= 0 {
			v.GPUs = gpu.FormatMilli(t.Milli)
		}
	} else {
		v.GPU = -1
		v.NodeID = t.LastNode
	}
	return v
}

// Tasks implements transport.Backend.
func (n *Node) Tasks(ctx context.Context, state, partition string) ([]transport.TaskView, error) {
	var out []transport.TaskView
	n.fsm.View(func(s *fsm.State) {
		out = make([]transport.TaskView, 0, len(s.Tasks))
		for _, t := range s.Tasks {
			if (state == "" || string(t.State) == state) && (partition == "" || t.Partition == partition) {
				out = append(out, viewOf(t))
			}
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Submitted != out[j].Submitted {
			return out[i].Submitted < out[j].Submitted
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Task implements transport.Backend.
func (n *Node) Task(ctx context.Context, id string) (transport.TaskView, error) {
	var tv transport.TaskView
	ok := false
	n.fsm.View(func(s *fsm.State) {
		if t := s.Tasks[id]; t != nil {
			tv, ok = viewOf(t), true
		}
	})
	if !ok {
		return tv, errs.Errorf(errs.NotFound, "task %s not found", id)
	}
	return tv, nil
}

// Cancel implements transport.Backend.
func (n *Node) Cancel(ctx context.Context, id string) error {
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdCancelTask, TaskID: id})
	if err != nil {
		return err
	}
	return res.Error() // fsm.ErrUnknownTask, or fsm.ErrConflict when already final
}

// Drain implements transport.Backend. The node may be named by ID or name.
func (n *Node) Drain(ctx context.Context, req transport.DrainRequest) error {
	var id string
	n.fsm.View(func(s *fsm.State) {
		for nid, nd := range s.Nodes {
			if nid == req.Node || nd.Name == req.Node {
				id = nid
			}
		}
	})
	if id == "" {
		return errs.Errorf(errs.NotFound, "no node named %q", req.Node)
	}
	c := fsm.Command{Type: fsm.CmdSetDrain, NodeID: id, Draining: !req.Cancel, Error: "operator"}
	if !req.Cancel && req.Deadline != "" {
		d, err := time.ParseDuration(req.Deadline)
		if err != nil || d <= 0 {
			return errs.Errorf(errs.Invalid, "deadline %q is not a positive duration", req.Deadline)
		}
		c.Deadline = time.Now().Add(d).UnixNano()
	}
	res, err := n.prop.Propose(ctx, c)
	if err != nil {
		return err
	}
	return res.Error()
}
