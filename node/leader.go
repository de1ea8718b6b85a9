package node

import (
	"context"
	"sort"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/scheduler"
)

func sortServers(s []raft.Server) {
	sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID })
}

func (n *Node) triggerReconcile() {
	select {
	case n.reconcileCh <- struct{}{}:
	default:
	}
}

func (n *Node) serfLoop() {
	defer n.wg.Done()
	for {
		select {
		case e := <-n.serfEvents:
			if _, ok := e.(serf.MemberEvent); ok {
				n.maybeBootstrapExpect()
				n.triggerReconcile()
			}
		case <-n.stopCh:
			return
		}
	}
}

// leaderWatch starts the leader's loops when this node wins an election and
// stops them when it loses leadership. Everything those loops need is read
// from the FSM, so a new leader picks up exactly where the old one was.
func (n *Node) leaderWatch() {
	defer n.wg.Done()
	var lc *leaderRun
	defer func() { lc.stop() }()
	for {
		select {
		case isLeader := <-n.leaderNotify:
			if isLeader && lc == nil {
				lc = n.startLeaderRun()
			} else if !isLeader {
				lc.stop()
				lc = nil
			}
			if isLeader {
				n.setStateTag()
			}
		case <-n.stopCh:
			return
		}
	}
}

type leaderRun struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (n *Node) startLeaderRun() *leaderRun {
	ctx, cancel := context.WithCancel(context.Background())
	lr := &leaderRun{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(lr.done)
		n.leaderLoop(ctx)
	}()
	return lr
}

func (lr *leaderRun) stop() {
	if lr == nil {
		return
	}
	lr.cancel()
	<-lr.done
}

func (n *Node) tick() time.Duration {
	if n.cfg.Timing == TimingFast {
		return 200 * time.Millisecond
	}
	return 500 * time.Millisecond
}

func (n *Node) leaderLoop(ctx context.Context) {
	n.log.Info("became leader")
	defer n.log.Info("leader loops stopped")
	// The barrier makes sure this leader has applied everything committed by
	// its predecessors before it acts on the state.
	if err := n.raft.Barrier(10 * time.Second).Error(); err != nil {
		n.log.Warn("leader barrier", "error", err)
		return
	}
	n.writeSettings(ctx)

	upd, rec := 2*time.Second, 10*time.Second
	if n.cfg.Timing == TimingFast {
		upd, rec = 300*time.Millisecond, 500*time.Millisecond
	}
	ap := autopilot.New(n.raft, &apDelegate{n: n},
		autopilot.WithLogger(n.log.Named("autopilot")),
		autopilot.WithPromoter(oddPromoter{}),
		autopilot.WithUpdateInterval(upd),
		autopilot.WithReconcileInterval(rec))
	n.ap = ap
	ap.Start(ctx)
	defer func() {
		<-ap.Stop()
		n.apState.Store(nil)
	}()

	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		n.scheduleLoop(ctx)
	}()
	defer wg.Wait()

	t := time.NewTicker(n.tick())
	defer t.Stop()
	var lastRepl time.Time
	for {
		n.reconcileMembers(ctx, ap)
		n.handleFailedNodes(ctx)
		n.handleDrainDeadlines(ctx)
		if time.Since(lastRepl) > 5*n.tick() {
			n.handleBlobReplication(ctx)
			n.handleChunkRepair(ctx)
			lastRepl = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-n.reconcileCh:
		}
	}
}

func (n *Node) writeSettings(ctx context.Context) {
	want := fsm.Settings{MaxAttempts: n.cfg.MaxAttempts, RetainCount: n.cfg.RetainCount, RetainMaxAge: int64(n.cfg.RetainMaxAge)}
	var have fsm.Settings
	n.fsm.View(func(s *fsm.State) { have = s.Settings })
	if have == want {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.prop.Propose(cctx, fsm.Command{Type: fsm.CmdSettings, Settings: &want}); err != nil {
		n.log.Warn("write settings", "error", err)
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
	for _, m := range n.serf.Members() {
		id := m.Tags[tagID]
		if id == "" {
			continue
		}
		switch m.Status {
		case serf.StatusAlive, serf.StatusLeaving:
			if n.leaving.Load() && id == n.id {
				continue
			}
			if s, ok := inRaft[id]; !ok || string(s.Address) != m.Tags[tagRaft] {
				err := ap.AddServer(&autopilot.Server{ID: raft.ServerID(id), Name: m.Name, Address: raft.ServerAddress(m.Tags[tagRaft]),
					NodeStatus: autopilot.NodeAlive, Version: m.Tags[tagVersion]})
				if err != nil {
					n.log.Warn("add raft server", "id", id, "error", err)
				} else {
					n.log.Info("added raft non-voter", "id", id, "name", m.Name)
				}
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
	if len(cmds) == 0 {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.prop.Propose(cctx, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds}); err != nil {
		n.log.Warn("write node status", "error", err)
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
				cmds = append(cmds, fsm.Command{Type: fsm.CmdReleaseNode, Now: now, NodeID: id, OnlyIfFailed: true,
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

// scheduleLoop places queued tasks whenever the state changes (coalesced)
// and on a timer, appending each pass's assignments as one command.
func (n *Node) scheduleLoop(ctx context.Context) {
	sub := n.fsm.Subscribe()
	defer n.fsm.Unsubscribe(sub)
	t := time.NewTicker(500 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-sub:
		case <-t.C:
		}
		as := n.schedulePass()
		if len(as) == 0 {
			// Nothing placeable: let a few applies accumulate before looking
			// again. Under load the ledger applies hundreds of commands a
			// second and chained slots already refill themselves; a pass per
			// apply would spend the leader's CPU rebuilding the same answer.
			select {
			case <-ctx.Done():
				return
			case <-time.After(schedIdleGap):
			}
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := n.prop.Propose(cctx, fsm.Command{Type: fsm.CmdAssignTasks, Assignments: as})
		cancel()
		if err != nil {
			n.log.Warn("propose assignments", "error", err)
		}
	}
}

// schedIdleGap is the pause after a pass that placed nothing.
const schedIdleGap = 5 * time.Millisecond

// schedulePass builds the scheduler's input from the ledger and runs it.
func (n *Node) schedulePass() []fsm.Assignment {
	var in scheduler.Input
	attempts := map[string]int{}
	n.fsm.View(func(s *fsm.State) {
		if s.QueuedCount() == 0 {
			return
		}
		in = SchedulerInput(s, n.cfg.PoolSize, n.cfg.Placement)
		for _, t := range in.Queued {
			attempts[t.ID] = s.Tasks[t.ID].Attempt
		}
	})
	if len(in.Queued) == 0 {
		return nil
	}
	// Gossip takes seconds to declare a node failed on a LAN; the leader
	// knows sooner (autopilot cannot reach it), so new work avoids it now.
	if ap := n.apState.Load(); ap != nil {
		for i := range in.Nodes {
			if ss, ok := ap.Servers[raft.ServerID(in.Nodes[i].ID)]; ok && !ss.Health.Healthy && in.Nodes[i].ID != n.id {
				in.Nodes[i].Eligible = false
			}
		}
	}
	out := scheduler.Schedule(in)
	as := make([]fsm.Assignment, 0, len(out))
	for _, a := range out {
		as = append(as, fsm.Assignment{TaskID: a.TaskID, Attempt: attempts[a.TaskID], NodeID: a.NodeID, GPU: a.GPU, Milli: a.Milli, MemBytes: a.MemBytes})
	}
	return as
}

// SchedulerInput converts ledger state into the scheduler's pure input.
func SchedulerInput(s *fsm.State, poolSize int, policy scheduler.Policy) scheduler.Input {
	in := scheduler.Input{Running: s.ActiveTotal(), PoolSize: poolSize, Policy: policy}
	ids := make([]string, 0, len(s.Nodes))
	for id := range s.Nodes {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		nd := s.Nodes[id]
		sn := scheduler.Node{
			ID:            id,
			Eligible:      nd.Status == fsm.NodeAlive && !nd.Draining,
			CPUSlots:      nd.CPUSlots,
			CPUUsed:       s.CPUUsed(id),
			Running:       s.ActiveOn(id),
			MaxConcurrent: nd.MaxConcurrent,
		}
		for i, g := range nd.GPUs {
			milli, mem := s.GPUUsage(id, i)
			sn.GPUs = append(sn.GPUs, scheduler.GPU{Index: i, MilliUsed: milli, MemTotal: g.MemTotal, MemReserve: nd.GPUReserve, MemUsed: mem})
		}
		in.Nodes = append(in.Nodes, sn)
	}
	if !anyRoom(in) {
		return in
	}
	for _, t := range s.QueuedHeads(schedWindow) {
		in.Queued = append(in.Queued, scheduler.Task{ID: t.ID, Partition: t.Partition, Seq: t.Seq, Milli: t.ReqMilli, MemBytes: t.ReqMem})
	}
	return in
}

// schedWindow bounds how deep into each partition's queue a pass looks: no
// pass can place more tasks than there are slots, and reading 512 heads
// instead of the whole queue keeps a pass cheap while Apply waits.
const schedWindow = 512

// anyRoom reports whether some eligible node could take any task at all, so
// a full cluster skips building the queue.
func anyRoom(in scheduler.Input) bool {
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

// selfRegisterLoop keeps this node's ledger record (addresses, GPUs, slots)
// current, and lifts a drain this node set on itself for a restart.
func (n *Node) selfRegisterLoop() {
	defer n.wg.Done()
	sub := n.fsm.Subscribe()
	defer n.fsm.Unsubscribe(sub)
	t := time.NewTicker(n.tick())
	defer t.Stop()
	for {
		select {
		case <-n.stopCh:
			return
		case <-sub:
		case <-t.C:
		}
		if n.leaving.Load() {
			continue
		}
		if addr, _ := n.raft.LeaderWithID(); addr == "" {
			continue
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
		if len(cmds) == 0 {
			continue
		}
		c := cmds[0]
		if len(cmds) > 1 {
			c = fsm.Command{Type: fsm.CmdBatch, Batch: cmds}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := n.prop.Propose(ctx, c); err != nil {
			n.log.Debug("self registration", "error", err)
		}
		cancel()
	}
}

func (n *Node) selfRecord() *fsm.Node {
	return &fsm.Node{
		ID: n.id, Name: n.name, RaftAddr: n.raftAddr, SerfAddr: n.serfAddr, HTTPAddr: n.httpAddr,
		Version: Version, GPUs: n.devices, GPUReserve: n.cfg.GPUReserve, CPUSlots: n.cfg.CPUSlots,
		MaxConcurrent: n.cfg.MaxConcurrent,
	}
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

// apDelegate is autopilot's view of the application.
type apDelegate struct{ n *Node }

func (d *apDelegate) AutopilotConfig() *autopilot.Config {
	threshold := 10 * time.Second
	if d.n.cfg.Timing == TimingFast {
		threshold = 2 * time.Second
	}
	return &autopilot.Config{
		CleanupDeadServers:      true,
		LastContactThreshold:    threshold,
		MaxTrailingLogs:         500,
		MinQuorum:               3,
		ServerStabilizationTime: d.n.cfg.StabilizationTime,
	}
}

func (d *apDelegate) NotifyState(s *autopilot.State) { d.n.apState.Store(s) }

func (d *apDelegate) FetchServerStats(ctx context.Context, servers map[raft.ServerID]*autopilot.Server) map[raft.ServerID]*autopilot.ServerStats {
	out := map[raft.ServerID]*autopilot.ServerStats{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for id, srv := range servers {
		if srv.NodeStatus != autopilot.NodeAlive {
			continue
		}
		wg.Add(1)
		go func(id raft.ServerID) {
			defer wg.Done()
			st, ok := d.n.statsOf(ctx, string(id))
			if !ok {
				return
			}
			mu.Lock()
			out[id] = &autopilot.ServerStats{LastContact: time.Duration(st.LastContactNS), LastTerm: st.LastTerm, LastIndex: st.LastIndex}
			mu.Unlock()
		}(id)
	}
	wg.Wait()
	return out
}

// KnownServers maps Serf members onto autopilot's view. A failed member is
// reported failed only after --dead-server-timeout, which is when autopilot
// may remove it (never below a quorum of three).
func (d *apDelegate) KnownServers() map[raft.ServerID]*autopilot.Server {
	n := d.n
	since := map[string]int64{}
	n.fsm.View(func(s *fsm.State) {
		for id, nd := range s.Nodes {
			if nd.Status == fsm.NodeFailed {
				since[id] = nd.StatusSince
			}
		}
	})
	_, leaderID := n.raft.LeaderWithID()
	now := time.Now().UnixNano()
	out := map[raft.ServerID]*autopilot.Server{}
	for _, m := range n.serf.Members() {
		id := m.Tags[tagID]
		if id == "" {
			continue
		}
		st := autopilot.NodeAlive
		switch m.Status {
		case serf.StatusFailed:
			if t, ok := since[id]; ok && now-t >= int64(n.cfg.DeadServerTimeout) {
				st = autopilot.NodeFailed
			}
		case serf.StatusLeft:
			st = autopilot.NodeLeft
		}
		out[raft.ServerID(id)] = &autopilot.Server{
			ID: raft.ServerID(id), Name: m.Name, Address: raft.ServerAddress(m.Tags[tagRaft]),
			NodeStatus: st, Version: m.Tags[tagVersion], IsLeader: raft.ServerID(id) == leaderID,
			NodeType: autopilot.NodeVoter,
			Meta:     map[string]string{"expect": m.Tags[tagExpect]},
		}
	}
	return out
}

func (d *apDelegate) RemoveFailedServer(s *autopilot.Server) {
	n := d.n
	n.log.Info("removing failed server from raft", "id", s.ID, "name", s.Name)
	if err := n.raft.RemoveServer(s.ID, 0, 10*time.Second).Error(); err != nil {
		n.log.Warn("remove failed server", "id", s.ID, "error", err)
	}
}

// statsOf returns a server's Raft position, locally for this node.
func (n *Node) statsOf(ctx context.Context, id string) (st struct {
	LastContactNS int64
	LastTerm      uint64
	LastIndex     uint64
}, ok bool) {
	if id == n.id {
		rs := n.RaftStats()
		st.LastTerm, st.LastIndex, st.LastContactNS = rs.LastTerm, rs.LastIndex, rs.LastContactNS
		return st, true
	}
	addr := n.httpAddrOf(id)
	if addr == "" {
		return st, false
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rs, err := n.client(addr).RaftStats(cctx)
	if err != nil || rs.ID != id {
		return st, false
	}
	st.LastTerm, st.LastIndex, st.LastContactNS = rs.LastTerm, rs.LastIndex, rs.LastContactNS
	return st, true
}

// oddPromoter promotes stable, healthy non-voters until there are five
// voters, keeping the voter count odd (an even count adds no failure
// tolerance but makes quorum bigger). It never demotes.
type oddPromoter struct{}

const maxVoters = 5

func (oddPromoter) GetServerExt(*autopilot.Config, *autopilot.ServerState) interface{} { return nil }
func (oddPromoter) GetStateExt(*autopilot.Config, *autopilot.State) interface{}        { return nil }
func (oddPromoter) GetNodeTypes(_ *autopilot.Config, s *autopilot.State) map[raft.ServerID]autopilot.NodeType {
	out := map[raft.ServerID]autopilot.NodeType{}
	for id := range s.Servers {
		out[id] = autopilot.NodeVoter
	}
	return out
}
func (oddPromoter) FilterFailedServerRemovals(_ *autopilot.Config, _ *autopilot.State, f *autopilot.FailedServers) *autopilot.FailedServers {
	return f
}

// Every ragnode may vote; the cap of five is applied by promotions.
func (oddPromoter) IsPotentialVoter(autopilot.NodeType) bool { return true }

func (oddPromoter) CalculatePromotionsAndDemotions(c *autopilot.Config, s *autopilot.State) autopilot.RaftChanges {
	return promotions(c, s, time.Now())
}

func promotions(c *autopilot.Config, s *autopilot.State, now time.Time) autopilot.RaftChanges {
	var voters []raft.ServerID
	var ready []raft.ServerID
	for id, srv := range s.Servers {
		if srv.HasVotingRights() {
			voters = append(voters, id)
			continue
		}
		if srv.State == autopilot.RaftNonVoter && srv.Server.NodeStatus == autopilot.NodeAlive &&
			srv.Health.IsStable(now, c.ServerStabilizationTime) {
			ready = append(ready, id)
		}
	}
	sort.Slice(ready, func(i, j int) bool { return ready[i] < ready[j] })
	sort.Slice(voters, func(i, j int) bool { return voters[i] < voters[j] })
	target := len(voters) + len(ready)
	if target > maxVoters {
		target = maxVoters
	}
	if target%2 == 0 {
		target--
	}
	var ch autopilot.RaftChanges
	for i := 0; i < target-len(voters) && i < len(ready); i++ {
		ch.Promotions = append(ch.Promotions, ready[i])
	}
	// An even count (a voter left and nobody can replace it) makes quorum
	// bigger without adding tolerance: demote one follower to get odd again.
	if len(ch.Promotions) == 0 && len(voters) > maxVoters || (len(voters)%2 == 0 && len(voters) > 2 && len(ch.Promotions) == 0) {
		for i := len(voters) - 1; i >= 0; i-- {
			if voters[i] != s.Leader {
				ch.Demotions = append(ch.Demotions, voters[i])
				break
			}
		}
	}
	return ch
}
