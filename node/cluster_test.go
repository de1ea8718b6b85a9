package node

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"

	"github.com/ragnode/ragnode/fsm"
)

func TestThreeNodesJoin(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(3, nil)
	waitFor(t, 15*time.Second, "three voters", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		v, nv := countVoters(l)
		return v == 3 && nv == 0
	})
	for _, n := range ns {
		n := n
		waitFor(t, 10*time.Second, "members on "+n.name, func() bool {
			ms, err := clientOf(n).Members(ctxT(t, 2*time.Second))
			if err != nil || len(ms) != 3 {
				return false
			}
			leaders := 0
			for _, m := range ms {
				if m.SerfStatus != "alive" || m.RaftSuffrage != "voter" || m.HTTPAddr == "" {
					return false
				}
				if m.Leader {
					leaders++
				}
			}
			return leaders == 1
		})
	}
}

func TestBootstrapExpectFormsOneCluster(t *testing.T) {
	c := newCluster(t)
	var ns []*Node
	for i := 0; i < 3; i++ {
		cfg := baseConfig(t, []string{"a", "b", "c"}[i])
		cfg.BootstrapExpect = 3
		if i > 0 {
			cfg.Join = []string{ns[0].SerfAddr()}
		}
		ns = append(ns, c.start(cfg))
	}
	waitFor(t, 15*time.Second, "one cluster with three voters", func() bool {
		var lead raft.ServerID
		for _, n := range ns {
			_, id := n.raft.LeaderWithID()
			if id == "" || (lead != "" && id != lead) {
				return false
			}
			lead = id
			if v, _ := countVoters(n); v != 3 {
				return false
			}
		}
		return true
	})
	// Exactly one term-leader pair across the nodes: nobody formed a cluster of its own.
	terms := map[string]bool{}
	for _, n := range ns {
		terms[n.raft.Stats()["term"]] = true
	}
	if len(terms) != 1 {
		t.Fatalf("nodes disagree on the term: %v", terms)
	}
}

func TestLeaderKillElectsNewLeaderAndAcceptsWrites(t *testing.T) {
	c := newCluster(t)
	c.startN(3, nil)
	waitFor(t, 15*time.Second, "three voters", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		v, _ := countVoters(l)
		return v == 3
	})
	old := c.mustLeader(t)
	t0 := time.Now()
	old.Kill()
	var nl *Node
	waitFor(t, 10*time.Second, "a new leader", func() bool {
		nl = c.leader()
		return nl != nil && nl != old
	})
	t.Logf("leader kill to new leader: %s", time.Since(t0).Round(time.Millisecond))
	// A write through a surviving follower (forwarded to the leader) succeeds.
	var via *Node
	for _, n := range c.live() {
		if n != nl {
			via = n
		}
	}
	tv, err := clientOf(via).Submit(ctxT(t, 10*time.Second), submitReq("p", "after-failover.txt"), strings.NewReader("hello after failover"))
	if err != nil {
		t.Fatalf("write after failover: %v", err)
	}
	waitFor(t, 5*time.Second, "write replicated", func() bool {
		for _, n := range c.live() {
			if _, ok := taskStates(n)[tv.ID]; !ok {
				return false
			}
		}
		return true
	})
}

func TestRestartKeepsIdentityAndVote(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(3, nil)
	waitFor(t, 15*time.Second, "three voters", func() bool {
		l := c.leader()
		return l != nil && func() bool { v, _ := countVoters(l); return v == 3 }()
	})
	victim := ns[2]
	if victim.raft.State() == raft.Leader {
		victim = ns[1]
	}
	id := victim.ID()
	victim.Stop()
	back := c.restart(victim.name)
	if back.ID() != id {
		t.Fatalf("restart changed the node ID: %s -> %s", id, back.ID())
	}
	waitFor(t, 15*time.Second, "restarted node back as voter", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		s := suffrage(l)
		return len(s) == 3 && s[id] == raft.Voter && back.raft.Leader() != ""
	})
	// The node lifted the drain it set on itself for the restart.
	waitFor(t, 5*time.Second, "restart drain lifted", func() bool {
		draining := true
		back.fsm.View(func(s *fsm.State) {
			if nd := s.Nodes[id]; nd != nil {
				draining = nd.Draining
			}
		})
		return !draining
	})
}

func TestLeaveRemovesNode(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(3, nil)
	waitFor(t, 15*time.Second, "three voters", func() bool {
		l := c.leader()
		return l != nil && func() bool { v, _ := countVoters(l); return v == 3 }()
	})
	leaving := ns[1]
	if leaving.raft.State() == raft.Leader {
		leaving = ns[2]
	}
	if err := clientOf(leaving).Leave(ctxT(t, 60*time.Second)); err != nil {
		t.Fatalf("leave: %v", err)
	}
	select {
	case <-leaving.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("node did not stop after leave")
	}
	var other *Node
	for _, n := range c.live() {
		other = n
	}
	waitFor(t, 10*time.Second, "left node gone from raft and shown as left", func() bool {
		if _, ok := suffrage(other)[leaving.ID()]; ok {
			return false
		}
		ms, err := clientOf(other).Members(ctxT(t, 2*time.Second))
		if err != nil {
			return false
		}
		for _, m := range ms {
			if m.ID == leaving.ID() {
				return m.SerfStatus == "left" && m.RaftSuffrage == "none"
			}
		}
		return false
	})
}

func TestSixNodesFiveVotersAndPromotionAfterDeadVoter(t *testing.T) {
	c := newCluster(t)
	c.startN(6, nil)
	waitFor(t, 25*time.Second, "five voters and one non-voter", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		v, nv := countVoters(l)
		return v == 5 && nv == 1
	})
	l := c.mustLeader(t)
	var victim *Node
	for _, n := range c.live() {
		if n != l && suffrage(l)[n.ID()] == raft.Voter {
			victim = n
			break
		}
	}
	victim.Kill()
	waitFor(t, 30*time.Second, "dead voter replaced", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		s := suffrage(l)
		if _, still := s[victim.ID()]; still {
			return false
		}
		v, nv := countVoters(l)
		return v == 5 && nv == 0
	})
}

func TestRollingRestartThreeNodes(t *testing.T) {
	c := newCluster(t)
	c.startN(3, nil)
	waitFor(t, 15*time.Second, "healthy cluster", func() bool { return healthy(c) })
	// Write something to check the log afterwards.
	first := c.live()[0]
	var ids []string
	for i := 0; i < 5; i++ {
		tv, err := clientOf(first).Submit(ctxT(t, 10*time.Second), submitReq("p", "f"+string(rune('a'+i))), strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tv.ID)
	}
	// Monitor leaderless time from the outside.
	var mu sync.Mutex
	var worstGap time.Duration
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		var since time.Time
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if c.leader() == nil {
				if since.IsZero() {
					since = time.Now()
				}
			} else if !since.IsZero() {
				mu.Lock()
				if g := time.Since(since); g > worstGap {
					worstGap = g
				}
				mu.Unlock()
				since = time.Time{}
			}
		}
	}()
	// Followers first, leader last.
	order := c.live()
	sort.Slice(order, func(i, j int) bool {
		return order[i].raft.State() != raft.Leader && order[j].raft.State() == raft.Leader
	})
	for _, n := range order {
		name := n.name
		n.Stop()
		c.restart(name)
		waitFor(t, 30*time.Second, "healthy after restarting "+name, func() bool { return healthy(c) })
	}
	close(stop)
	wg.Wait()
	t.Logf("longest leaderless gap during the rolling restart: %s", worstGap)
	if worstGap > 5*time.Second {
		t.Fatalf("cluster was without a leader for %s", worstGap)
	}
	for _, n := range c.live() {
		if v, _ := countVoters(n); v != 3 {
			t.Fatalf("%s sees %d voters", n.name, v)
		}
		st := taskStates(n)
		for _, id := range ids {
			if _, ok := st[id]; !ok {
				t.Fatalf("%s lost task %s", n.name, id)
			}
		}
	}
}

// healthy asks any node's status API, the way `status --wait-healthy` does.
func healthy(c *cluster) bool {
	for _, n := range c.live() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		st, err := clientOf(n).Status(ctx)
		cancel()
		if err != nil || !st.Healthy || !st.CaughtUp || st.FailureTolerance < 1 || st.Voters != 3 {
			return false
		}
	}
	return true
}

func TestWrongGossipKeyRefusedAndTokenRequired(t *testing.T) {
	c := newCluster(t)
	key := func(b byte) []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = b
		}
		return k
	}
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.GossipKey = key(1)
		cfg.Token = "s3cret"
	})
	bad := baseConfig(t, "intruder")
	bad.GossipKey = key(2)
	bad.Join = []string{ns[0].SerfAddr()}
	bad.JoinTimeout = time.Second
	if n, err := Start(bad); err == nil {
		n.Kill()
		t.Fatal("a node with the wrong gossip key joined")
	}
	none := baseConfig(t, "nokey")
	none.Join = []string{ns[0].SerfAddr()}
	none.JoinTimeout = time.Second
	if n, err := Start(none); err == nil {
		n.Kill()
		t.Fatal("a node without the gossip key joined")
	}
	good := baseConfig(t, "friend")
	good.GossipKey = key(1)
	good.Token = "s3cret"
	good.Join = []string{ns[0].SerfAddr()}
	c.start(good)

	resp, err := http.Get("http://" + ns[0].HTTPAddr() + "/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: got %d, want 401", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+ns[0].HTTPAddr()+"/v1/status", nil)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong token: got %d, want 401", resp.StatusCode)
	}
	if _, err := clientOf(ns[0]).Status(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("right token refused: %v", err)
	}
	// Node-to-node calls carry the token: the joined node's writes reach the leader.
	waitFor(t, 10*time.Second, "token-protected node registered through the leader", func() bool {
		ok := false
		ns[0].fsm.View(func(s *fsm.State) { _, ok = s.Nodes[c.nodes["friend"].ID()] })
		return ok
	})
}

func TestPromotionsKeepVotersOddAndAtMostFive(t *testing.T) {
	cfg := &autopilot.Config{ServerStabilizationTime: time.Second}
	now := time.Now()
	mk := func(voters, ready, unstable int) *autopilot.State {
		s := &autopilot.State{Servers: map[raft.ServerID]*autopilot.ServerState{}, Leader: "v0"}
		add := func(id string, st autopilot.RaftState, since time.Time) {
			s.Servers[raft.ServerID(id)] = &autopilot.ServerState{
				Server: autopilot.Server{ID: raft.ServerID(id), NodeStatus: autopilot.NodeAlive}, State: st,
				Health: autopilot.ServerHealth{Healthy: true, StableSince: since}}
		}
		for i := 0; i < voters; i++ {
			st := autopilot.RaftVoter
			if i == 0 {
				st = autopilot.RaftLeader
			}
			add(fmt.Sprint("v", i), st, now.Add(-time.Hour))
		}
		for i := 0; i < ready; i++ {
			add(fmt.Sprint("r", i), autopilot.RaftNonVoter, now.Add(-time.Hour))
		}
		for i := 0; i < unstable; i++ {
			add(fmt.Sprint("u", i), autopilot.RaftNonVoter, now)
		}
		return s
	}
	cases := []struct {
		voters, ready, unstable, promote, demote int
	}{
		{1, 2, 0, 2, 0}, // 1 -> 3
		{1, 1, 0, 0, 0}, // 2 would be even: wait
		{1, 5, 0, 4, 0}, // cap at 5
		{3, 3, 0, 2, 0}, // 3 -> 5, one stays non-voter
		{4, 1, 0, 1, 0}, // a dead voter was removed: back to 5
		{4, 0, 0, 0, 1}, // nobody to promote: demote to 3
		{3, 0, 2, 0, 0}, // not yet stable
		{5, 1, 0, 0, 0},
	}
	for _, tc := range cases {
		ch := promotions(cfg, mk(tc.voters, tc.ready, tc.unstable), now)
		if len(ch.Promotions) != tc.promote || len(ch.Demotions) != tc.demote {
			t.Errorf("%d voters, %d ready, %d unstable: promote %v demote %v, want %d/%d", tc.voters, tc.ready, tc.unstable, ch.Promotions, ch.Demotions, tc.promote, tc.demote)
		}
		for _, d := range ch.Demotions {
			if d == "v0" {
				t.Errorf("demoted the leader")
			}
		}
	}
}
