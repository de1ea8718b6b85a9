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
)

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
	addr := n.peers.addrOf(id)
	if addr == "" {
		return st, false
	}
	cctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	rs, err := n.peers.client(addr).RaftStats(cctx)
	if err != nil || rs.ID != id {
		return st, false
	}
	st.LastTerm, st.LastIndex, st.LastContactNS = rs.LastTerm, rs.LastIndex, rs.LastContactNS
	return st, true
}

// oddPromoter promotes stable, healthy non-voters until there are five
// voters, keeping the voter count odd (an even count adds no failure
// tolerance but makes quorum bigger). When a voter left and no non-voter can
// replace it, it demotes one follower to get back to an odd count.
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
