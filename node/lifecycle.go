package node

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
)

// selfRegisterLoop keeps this node's ledger record (addresses, GPUs, slots)
// current, and lifts a drain this node set on itself for a restart.
func (n *Node) selfRegisterLoop() {
	defer n.wg.Done()
	n.watchLedger(n.stopCh, n.tick(), n.registerSelf)
}

func (n *Node) registerSelf() {
	n.adoptClusterID()
	if n.leaving.Load() {
		return
	}
	if addr, _ := n.raft.LeaderWithID(); addr == "" {
		return
	}
	want := n.selfRecord()
	var cur *fsm.Node
	n.fsm.View(func(s *fsm.State) {
		if nd := s.Nodes[n.id]; nd != nil {
			c := *nd
			cur = &c
		}
	})
	var cmds []fsm.Command
	if cur == nil || !sameRecord(cur, want) || cur.Status != fsm.NodeAlive {
		cmds = append(cmds, fsm.Command{Type: fsm.CmdRegisterNode, Node: want})
	}
	if cur != nil && cur.Draining && cur.DrainReason == "restart" && !n.stopping() {
		cmds = append(cmds, fsm.Command{Type: fsm.CmdSetDrain, NodeID: n.id, Draining: false})
	}
	// A disk drain is lifted on this node's own evidence, not its (lagging)
	// ledger's: diskfault.go.
	lifting := false
	if (n.diskLift.Load() || cur != nil && cur.Draining && cur.DrainReason == drainDisk) && !n.stopping() && n.diskRecovered() {
		cmds = append(cmds, n.liftDiskDrain())
		lifting = true
	}
	if len(cmds) == 0 {
		return
	}
	c := cmds[0]
	if len(cmds) > 1 {
		c = fsm.Command{Type: fsm.CmdBatch, Batch: cmds}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := n.prop.Propose(ctx, c)
	if err == nil {
		err = res.FirstError()
	}
	if err != nil {
		n.log.Debug("self registration", "error", err)
		return
	}
	if lifting && !n.diskFaulty.Load() {
		// The leader applied the lift (or found no disk drain to lift); a
		// new fault since the probe would have set diskFaulty again.
		n.diskLift.Store(false)
	}
}

func (n *Node) selfRecord() *fsm.Node {
	rec := &fsm.Node{
		ID: n.id, Name: n.name, RaftAddr: n.raftAddr, SerfAddr: n.serfAddr, HTTPAddr: n.httpAddr,
		Version: Version, GPUs: n.devices, GPUReserve: n.cfg.GPUReserve, CPUSlots: n.cfg.CPUSlots,
		MaxConcurrent: n.cfg.MaxConcurrent,
	}
	// An abandoned run still burns its slot: advertise that much less, so
	// the scheduler never hands the slot to another task.
	cpuOut, gpuOut := n.pool.Abandoned()
	rec.CPUSlots = max(rec.CPUSlots-cpuOut, 0)
	if gpuOut > 0 {
		// Card capacity is in milli-GPUs the node cannot lower per card;
		// the concurrency cap bounds the node instead. It never goes to 0,
		// which would mean "unlimited".
		rec.MaxConcurrent = max(n.slotCapacity()-cpuOut-gpuOut, 1)
	}
	return rec
}

// slotCapacity is how many tasks of the configured shape this node can
// run at once, before any cap.
func (n *Node) slotCapacity() int {
	if n.cfg.MaxConcurrent > 0 {
		return n.cfg.MaxConcurrent
	}
	if len(n.devices) == 0 || (n.cfg.TaskMilli == 0 && n.cfg.TaskMem == 0) {
		return n.cfg.CPUSlots
	}
	k := 0
	for _, d := range n.devices {
		switch {
		case n.cfg.TaskMilli > 0:
			k += gpu.MilliPerGPU / n.cfg.TaskMilli
		case d.MemTotal > n.cfg.GPUReserve:
			k += int((d.MemTotal - n.cfg.GPUReserve) / n.cfg.TaskMem)
		}
	}
	return k
}

func sameRecord(a, b *fsm.Node) bool {
	if a.Name != b.Name || a.RaftAddr != b.RaftAddr || a.SerfAddr != b.SerfAddr || a.HTTPAddr != b.HTTPAddr ||
		a.Version != b.Version || a.GPUReserve != b.GPUReserve || a.CPUSlots != b.CPUSlots ||
		a.MaxConcurrent != b.MaxConcurrent || len(a.GPUs) != len(b.GPUs) {
		return false
	}
	for i := range a.GPUs {
		if a.GPUs[i] != b.GPUs[i] {
			return false
		}
	}
	return true
}

// drainSelf stops new work from coming here, waits for running tasks up to
// timeout, then hands the rest back to the queue.
func (n *Node) drainSelf(timeout time.Duration, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	deadline := time.Now().Add(timeout)
	_, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdSetDrain, NodeID: n.id, Draining: true, Deadline: deadline.UnixNano(), Error: reason})
	cancel()
	if err != nil {
		n.log.Warn("drain: could not mark node draining", "error", err)
	}
	for time.Now().Before(deadline) && n.pool.Running() > 0 {
		time.Sleep(50 * time.Millisecond)
	}
	var refs []fsm.TaskRef
	n.fsm.View(func(s *fsm.State) {
		for _, t := range s.TasksOn(n.id) {
			refs = append(refs, fsm.TaskRef{ID: t.ID, Attempt: t.Attempt})
		}
	})
	if len(refs) == 0 {
		return
	}
	n.log.Info("drain: handing back unfinished tasks", "count", len(refs))
	ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdRequeueTasks, Refs: refs, Error: "node " + n.name + " stopped (" + reason + ")"}); err != nil {
		n.log.Warn("drain: hand back", "error", err)
	}
}

// Stop is a restart: the node stops taking work, lets running tasks finish up
// to the drain timeout and hands the rest back, transfers leadership if it
// holds it, and stops Raft and Serf without leaving, so its membership stays.
func (n *Node) Stop() {
	n.stopOnce.Do(func() {
		n.log.Info("stopping (restart: membership kept)")
		n.drainSelf(n.cfg.DrainTimeout, "restart")
		if n.raft.State() == raft.Leader && n.otherVoters() {
			if err := n.raft.LeadershipTransfer().Error(); err != nil {
				n.log.Warn("leadership transfer", "error", err)
			}
		}
		n.shutdown()
	})
}

// Kill stops the node abruptly: no drain, no leadership transfer, no leave.
// Tests use it to stand in for a crash.
func (n *Node) Kill() {
	n.stopOnce.Do(func() { n.shutdown() })
}

// shutdown also ends a start that failed part-way (Start's cleanup), so
// every step allows for what was never made: the loops may have started
// before a refused join, or not at all.
func (n *Node) shutdown() {
	close(n.stopCh)
	if n.pool != nil {
		n.pool.stopAll()
	}
	if n.pipe != nil {
		// Parser children end with their node (after the runs that used
		// them were cancelled).
		_ = n.pipe.Close()
	}
	if n.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_ = n.httpSrv.Shutdown(ctx)
		cancel()
	}
	n.closeAll()
	n.wg.Wait()
	if n.peers != nil {
		n.peers.closeIdle()
	}
	close(n.doneCh)
}

// abortStart undoes a Start that failed: loops stopped and waited for,
// listeners, Raft, Serf and the stores closed, so a caller that retries
// (or a test) is left with no goroutine and no port of this node.
func (n *Node) abortStart() {
	n.stopOnce.Do(n.shutdown)
}

func (n *Node) closeAll() {
	if n.serf != nil {
		_ = n.serf.Shutdown()
	}
	if n.raft != nil {
		n.shutdownRaft()
	}
	if n.trans != nil {
		_ = n.trans.Close()
	}
	if n.stable != nil {
		n.stable.closeWrites()
	}
	if n.logStore != nil {
		_ = n.logStore.Close()
	}
	if n.httpSrv != nil {
		_ = n.httpSrv.Close()
	}
	if n.httpLn != nil {
		// Also when Serve never ran (a start that failed half-way).
		_ = n.httpLn.Close()
	}
	if n.blobs != nil {
		n.blobs.Close()
	}
	if n.store != nil {
		_ = n.store.Close()
	}
}

// Leave departs for good: drain, hand over leadership, get removed from Raft
// by the leader, leave Serf, stop.
func (n *Node) Leave(ctx context.Context) error {
	if !n.leaving.CompareAndSwap(false, true) {
		return errs.Errorf(errs.Conflict, "leave already in progress")
	}
	n.setTag(tagLeaving, "1")
	n.drainSelf(n.cfg.DrainTimeout, "leave")
	n.handOffChunks(ctx)
	if n.raft.State() == raft.Leader && n.otherVoters() {
		if err := n.raft.LeadershipTransfer().Error(); err != nil {
			n.log.Warn("leadership transfer before leave", "error", err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := n.removeSelfFromRaft(ctx)
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			n.leaving.Store(false)
			n.setTag(tagLeaving, "")
			return fmt.Errorf("leave: remove from raft: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Out of Raft: from here on this data dir must not come back as this
	// node (departed.go).
	if err := markLeft(n.cfg.DataDir, n.id, n.clusterID.Load().(string)); err != nil {
		n.log.Warn("record the departure in the data dir (the leader still refuses this node back)", "error", err)
	}
	if err := n.serf.Leave(); err != nil {
		n.log.Warn("serf leave", "error", err)
	}
	n.log.Info("left the cluster")
	go n.stopOnce.Do(n.shutdown)
	return nil
}

func (n *Node) otherVoters() bool {
	cf := n.raft.GetConfiguration()
	if cf.Error() != nil {
		return false
	}
	for _, s := range cf.Configuration().Servers {
		if s.Suffrage == raft.Voter && string(s.ID) != n.id {
			return true
		}
	}
	return false
}

func (n *Node) removeSelfFromRaft(ctx context.Context) error {
	if n.raft.State() == raft.Leader {
		return n.RemoveServer(ctx, n.id)
	}
	c, err := n.peers.leader()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return c.RemoveServer(cctx, n.id)
}

// RemoveServer drops a server from Raft and marks it left in the ledger.
func (n *Node) RemoveServer(ctx context.Context, id string) error {
	if n.raft.State() != raft.Leader {
		c, err := n.peers.leader()
		if err != nil {
			return err
		}
		return c.RemoveServer(ctx, id)
	}
	if err := n.raft.RemoveServer(raft.ServerID(id), 0, 10*time.Second).Error(); err != nil {
		return fmt.Errorf("remove server %s: %w", id, err)
	}
	now := time.Now().UnixNano()
	_, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: []fsm.Command{
		{Type: fsm.CmdNodeStatus, Now: now, NodeID: id, Status: fsm.NodeLeft},
		{Type: fsm.CmdReleaseNode, Now: now, NodeID: id, Error: "node left the cluster"},
	}})
	return err
}

func (n *Node) stopping() bool {
	select {
	case <-n.stopCh:
		return true
	default:
		return false
	}
}

// raftShutdownGrace bounds Raft's shutdown before its connections are
// closed under it: an RPC blocked on a peer that stopped reading (or a
// snapshot being read from one) holds Raft's shutdown until that
// connection is closed, and raft.NetworkTransport.Close closes only the
// listener, so the connections are closed through the stream layer's
// tracker (raft_stream.go).
const raftShutdownGrace = 5 * time.Second

func (n *Node) shutdownRaft() {
	done := make(chan error, 1)
	f := n.raft.Shutdown()
	go func() { done <- f.Error() }()
	select {
	case err := <-done:
		if err != nil {
			n.log.Warn("raft shutdown", "error", err)
		}
		return
	case <-time.After(raftShutdownGrace):
	}
	cut := 0
	if n.raftConns != nil {
		cut = n.raftConns.closeAll()
	}
	// Expected when peers stop at the same time (systemctl stop on every
	// node): each waits on RPCs to the others, whose Raft no longer
	// answers but whose transport is still open.
	n.log.Info("raft shutdown waiting on peers; closed its connections under it", "after", raftShutdownGrace, "connections", cut)
	if n.trans != nil {
		_ = n.trans.Close()
	}
	select {
	case <-done:
	case <-time.After(raftShutdownGrace):
		// With no connection left, what holds Raft is local: the FSM or
		// the disk.
		n.log.Error("raft did not shut down with its connections closed (an FSM apply or a disk write is stuck); leaving its goroutines")
	}
}
