package node

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/transport"
)

// RaftStats implements transport.Backend.
func (n *Node) RaftStats() transport.RaftStats {
	st := n.raft.Stats()
	rs := transport.RaftStats{ID: n.id}
	rs.LastTerm, _ = strconv.ParseUint(st["last_log_term"], 10, 64)
	rs.LastIndex, _ = strconv.ParseUint(st["last_log_index"], 10, 64)
	switch lc := st["last_contact"]; lc {
	case "0", "":
	case "never":
		rs.LastContactNS = int64(time.Hour)
	default:
		if d, err := time.ParseDuration(lc); err == nil {
			rs.LastContactNS = int64(d)
		}
	}
	return rs
}

// Status implements transport.Backend. Followers ask the leader, which alone
// knows every voter's health.
func (n *Node) Status(ctx context.Context) (transport.Status, error) {
	if n.raft.State() != raft.Leader && !transport.LocalStatusRequested(ctx) {
		if c, err := n.peers.leader(); err == nil {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			st, err := c.LocalStatus(cctx)
			cancel()
			if err == nil {
				st.Warnings = n.securityWarnings()
				return st, nil
			}
		}
	}
	st := n.localStatus(ctx)
	st.Warnings = n.securityWarnings()
	return st, nil
}

func (n *Node) localStatus(ctx context.Context) transport.Status {
	stats := n.raft.Stats()
	st := transport.Status{NodeID: n.id, Tasks: map[string]int{}}
	st.Term, _ = strconv.ParseUint(stats["term"], 10, 64)
	st.CommitIndex, _ = strconv.ParseUint(stats["commit_index"], 10, 64)
	st.AppliedIndex, _ = strconv.ParseUint(stats["applied_index"], 10, 64)
	st.LastIndex, _ = strconv.ParseUint(stats["last_log_index"], 10, 64)
	_, lid := n.raft.LeaderWithID()
	st.LeaderID = string(lid)
	if st.LeaderID != "" {
		st.LeaderHTTP = n.peers.addrOf(st.LeaderID)
	}
	var voters []string
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters = append(voters, string(s.ID))
			} else {
				st.NonVoters++
			}
		}
	}
	st.Voters = len(voters)
	n.fsm.View(func(s *fsm.State) {
		for k, v := range s.Counts() {
			st.Tasks[string(k)] = v
		}
	})
	lh := n.lead.history.summary(time.Now())
	st.LeaderChanges, st.LongestLeaderlessMS, st.ElectionChurn = lh.changes, lh.longest.Milliseconds(), lh.churn
	if n.raft.State() != raft.Leader {
		if st.LeaderID == "" {
			st.Unhealthy = append(st.Unhealthy, "no leader elected")
		}
		return st
	}
	// Every voter must have reached the commit index seen before asking.
	target := st.CommitIndex
	caught := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range voters {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			s, ok := n.statsOf(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if !ok || s.LastIndex < target {
				caught = false
			}
		}(id)
	}
	wg.Wait()
	st.CaughtUp = caught
	st.Unhealthy = n.unhealthyReasons(voters, caught, target, lh)
	st.Healthy = len(st.Unhealthy) == 0
	if ap := n.apState.Load(); ap != nil {
		st.FailureTolerance = ap.FailureTolerance
	}
	return st
}

// unhealthyReasons (leader) lists every condition that keeps the cluster
// from healthy, so an operator (and `status --wait-healthy`) sees which
// one holds.
func (n *Node) unhealthyReasons(voters []string, caught bool, target uint64, lh churnSummary) []string {
	var out []string
	if !caught {
		out = append(out, fmt.Sprintf("a voter's log is behind the leader's commit index %d", target))
	}
	ap := n.apState.Load()
	if ap == nil {
		out = append(out, "autopilot has not reported yet (a new leader's first update)")
	} else {
		var sick []string
		for id, ss := range ap.Servers {
			if !ss.Health.Healthy {
				name := ss.Server.Name
				if name == "" {
					name = string(id)
				}
				sick = append(sick, name)
			}
		}
		sort.Strings(sick)
		if len(sick) > 0 {
			out = append(out, "autopilot reports unhealthy servers: "+strings.Join(sick, ", "))
		} else if !ap.Healthy {
			out = append(out, "autopilot reports the cluster unhealthy")
		}
		// Autopilot's state can lag a membership change by one update interval.
		for _, id := range voters {
			if _, ok := ap.Servers[raft.ServerID(id)]; !ok {
				out = append(out, "autopilot has not seen voter "+id+" yet")
			}
		}
	}
	if lh.churn {
		out = append(out, lh.String())
	}
	return out
}

// Members implements transport.Backend.
func (n *Node) Members(ctx context.Context) ([]transport.Member, error) {
	rows := map[string]*transport.Member{}
	get := func(id string) *transport.Member {
		m := rows[id]
		if m == nil {
			m = &transport.Member{ID: id, SerfStatus: "unknown", RaftSuffrage: "none", GPUs: []transport.MemberGPU{}}
			rows[id] = m
		}
		return m
	}
	for _, sm := range n.serf.Members() {
		id := sm.Tags[tagID]
		if id == "" {
			continue
		}
		m := get(id)
		m.Name = sm.Name
		m.HTTPAddr = sm.Tags[tagHTTP]
		m.RaftAddr = sm.Tags[tagRaft]
		m.SerfAddr = fmt.Sprintf("%s:%d", sm.Addr, sm.Port)
		m.Version = sm.Tags[tagVersion]
		m.SerfStatus = serfStatus(sm.Status)
	}
	n.fsm.View(func(s *fsm.State) {
		for id, nd := range s.Nodes {
			m := get(id)
			if m.Name == "" {
				m.Name, m.HTTPAddr, m.RaftAddr, m.SerfAddr, m.Version = nd.Name, nd.HTTPAddr, nd.RaftAddr, nd.SerfAddr, nd.Version
				if nd.Status == fsm.NodeLeft {
					m.SerfStatus = "left"
				}
			}
			m.CPUSlots = nd.CPUSlots
			m.Draining = nd.Draining
			m.Running = s.ActiveOn(id)
			for i, g := range nd.GPUs {
				milli, mem := s.GPUUsage(id, i)
				m.GPUs = append(m.GPUs, transport.MemberGPU{Index: g.Index, UUID: g.UUID, Name: g.Name,
					MilliTotal: gpu.MilliPerGPU, MilliUsed: milli, MemTotal: g.MemTotal, MemUsed: mem})
			}
		}
	})
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			m := get(string(s.ID))
			if m.RaftAddr == "" {
				m.RaftAddr = string(s.Address)
			}
			if s.Suffrage == raft.Voter {
				m.RaftSuffrage = "voter"
			} else {
				m.RaftSuffrage = "nonvoter"
			}
		}
	}
	_, lid := n.raft.LeaderWithID()
	if m, ok := rows[string(lid)]; ok {
		m.Leader = true
	}
	if ap := n.apState.Load(); ap != nil {
		for id, ss := range ap.Servers {
			if m, ok := rows[string(id)]; ok {
				m.LastContact = ss.Stats.LastContact.Round(time.Millisecond).String()
				h := ss.Health.Healthy
				m.Healthy = &h
			}
		}
	} else if m, ok := rows[n.id]; ok && n.raft.State() != raft.Leader {
		m.LastContact = time.Since(n.raft.LastContact()).Round(time.Millisecond).String()
	}
	out := make([]transport.Member, 0, len(rows))
	for _, m := range rows {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func serfStatus(s serf.MemberStatus) string {
	switch s {
	case serf.StatusAlive, serf.StatusLeaving:
		return "alive"
	case serf.StatusFailed:
		return "failed"
	case serf.StatusLeft:
		return "left"
	}
	return "unknown"
}
