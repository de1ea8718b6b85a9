package node

import (
	"context"
	"sort"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
)

func (n *Node) triggerReconcile() {
	select {
	case n.reconcileCh <- struct{}{}:
	default:
	}
}

// reconcileLoop (leader) keeps Raft membership and node status in step with
// Serf, requeues the work of failed nodes and enforces drain deadlines. It
// proposes to the ledger and changes Raft membership, and calls no peer.
func (n *Node) reconcileLoop(ctx context.Context, ap *autopilot.Autopilot) {
	t := time.NewTicker(n.tick())
	defer t.Stop()
	for {
		n.reconcileMembers(ctx, ap)
		n.handleFailedNodes(ctx)
		n.handleDrainDeadlines(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.reconcileCh:
		}
	}
}

// reconcileMembers turns Serf's view into Raft membership and ledger node
// status, the way Consul's leader does: alive members missing from Raft (or
// present under another address) are added as non-voters through autopilot,
// which promotes them once stable; status changes are written to the ledger.
func (n *Node) reconcileMembers(ctx context.Context, ap *autopilot.Autopilot) {
	cf := n.raft.GetConfiguration()
	if err := cf.Error(); err != nil {
		return
	}
	inRaft := map[string]raft.Server{}
	for _, s := range cf.Configuration().Servers {
		inRaft[string(s.ID)] = s
	}
	status := map[string]string{}
	n.fsm.View(func(s *fsm.State) {
		for id, nd := range s.Nodes {
			status[id] = nd.Status
		}
	})
	now := time.Now().UnixNano()
	var cmds []fsm.Command
	seen := map[string]bool{}
	for _, m := range n.serf.Members() {
		id := m.Tags[tagID]
		if id == "" {
			continue
		}
		if !n.foreignMember(m) {
			seen[id] = true
		}
		switch m.Status {
		case serf.StatusAlive, serf.StatusLeaving:
			if (n.leaving.Load() && id == n.id) || m.Tags[tagLeaving] == "1" {
				continue
			}
			if n.foreignMember(m) {
				n.log.Warn("refusing a member of another cluster", "member", m.Name, "its_cluster", m.Tags[tagCluster], "this_cluster", n.clusterID.Load())
				continue
			}
			if n.departedMember(m, status[id]) { // departed.go
				continue
			}
			if s, ok := inRaft[id]; !ok || string(s.Address) != m.Tags[tagRaft] {
				n.addRaftMember(ap, m, id)
			}
			if st, ok := status[id]; ok && st != fsm.NodeAlive {
				cmds = append(cmds, fsm.Command{Type: fsm.CmdNodeStatus, Now: now, NodeID: id, Status: fsm.NodeAlive})
			}
		case serf.StatusFailed:
			if st, ok := status[id]; ok && st == fsm.NodeAlive {
				cmds = append(cmds, fsm.Command{Type: fsm.CmdNodeStatus, Now: now, NodeID: id, Status: fsm.NodeFailed})
			}
		case serf.StatusLeft:
			if st, ok := status[id]; ok && st != fsm.NodeLeft {
				cmds = append(cmds, fsm.Command{Type: fsm.CmdNodeStatus, Now: now, NodeID: id, Status: fsm.NodeLeft},
					fsm.Command{Type: fsm.CmdReleaseNode, Now: now, NodeID: id, Error: "node left the cluster"})
			}
		}
	}
	// A node the ledger calls alive that neither Raft nor gossip knows
	// will never get a Serf event: one of the snapshot's nodes after a
	// restore whose leader died before retiring them (snapshot_admin.go).
	// Failing it starts the grace after which its work is requeued.
	for id, st := range status {
		if _, ok := inRaft[id]; !ok && st == fsm.NodeAlive && !seen[id] {
			cmds = append(cmds, fsm.Command{Type: fsm.CmdNodeStatus, Now: now, NodeID: id, Status: fsm.NodeFailed})
		}
	}
	if len(cmds) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.prop.Propose(cctx, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds}); err != nil {
		n.log.Warn("write node status", "error", err)
	}
}

// addRaftMember adds a Serf member to Raft as a non-voter, once it has
// shown the cluster's credential where Serf did not check it.
func (n *Node) addRaftMember(ap *autopilot.Autopilot, m serf.Member, id string) {
	if !n.memberCredentialOK(m, m.Tags[tagRaft]) {
		return
	}
	err := ap.AddServer(&autopilot.Server{ID: raft.ServerID(id), Name: m.Name, Address: raft.ServerAddress(m.Tags[tagRaft]),
		NodeStatus: autopilot.NodeAlive, Version: m.Tags[tagVersion]})
	if err != nil {
		n.log.Warn("add raft server", "id", id, "error", err)
	} else {
		n.log.Info("added raft non-voter", "id", id, "name", m.Name)
	}
}

// handleFailedNodes requeues the work of nodes that have been failed for
// longer than --requeue-after. The failure time lives in the ledger, so the
// grace period survives a leader change.
func (n *Node) handleFailedNodes(ctx context.Context) {
	now := time.Now().UnixNano()
	var cmds []fsm.Command
	n.fsm.View(func(s *fsm.State) {
		for id, nd := range s.Nodes {
			if nd.Status == fsm.NodeAlive || s.ActiveOn(id) == 0 {
				continue
			}
			// The grace counts from when the node stopped answering, which is
			// the Serf failure time less memberlist's suspicion period.
			if now-nd.StatusSince >= int64(n.cfg.RequeueAfter-n.detectLag) {
				// A loss: it counts towards each running task's poison
				// quarantine (fsm loseNode).
				cmds = append(cmds, fsm.Command{Type: fsm.CmdReleaseNode, Now: now, NodeID: id, OnlyIfFailed: true, NodeLoss: true,
					Error: "node " + nd.Name + " failed; requeued after " + n.cfg.RequeueAfter.String()})
			}
		}
	})
	n.proposeAll(ctx, cmds, "requeue work of failed node")
}

// handleDrainDeadlines hands back tasks still running on a draining node
// once its deadline has passed.
func (n *Node) handleDrainDeadlines(ctx context.Context) {
	now := time.Now().UnixNano()
	var refs []fsm.TaskRef
	n.fsm.View(func(s *fsm.State) {
		for id, nd := range s.Nodes {
			if !nd.Draining || nd.DrainDeadline == 0 || now < nd.DrainDeadline {
				continue
			}
			for _, t := range s.TasksOn(id) {
				refs = append(refs, fsm.TaskRef{ID: t.ID, Attempt: t.Attempt})
			}
		}
	})
	if len(refs) == 0 {
		return
	}
	sort.Slice(refs, func(i, j int) bool { return refs[i].ID < refs[j].ID })
	n.proposeAll(ctx, []fsm.Command{{Type: fsm.CmdRequeueTasks, Now: now, Refs: refs, Error: "drain deadline passed"}}, "requeue at drain deadline")
}

func (n *Node) proposeAll(ctx context.Context, cmds []fsm.Command, what string) {
	if len(cmds) == 0 {
		return
	}
	sort.Slice(cmds, func(i, j int) bool { return cmds[i].NodeID < cmds[j].NodeID })
	c := cmds[0]
	if len(cmds) > 1 {
		c = fsm.Command{Type: fsm.CmdBatch, Now: cmds[0].Now, Batch: cmds}
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.prop.Propose(cctx, c); err != nil {
		n.log.Warn(what, "error", err)
	}
}
