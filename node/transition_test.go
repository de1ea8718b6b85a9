package node

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// reconfigure changes a stopped node's config for its next restart.
func (c *cluster) reconfigure(name string, mod func(*Config)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cfg := c.cfgs[name]
	mod(&cfg)
	c.cfgs[name] = cfg
}

// rollingRestart restarts every node, followers first and the leader last,
// each with its config changed by mod, and checks the cluster is whole
// (a leader, three voters, every node registered and able to take a
// submit through Raft) after each one. submit is how this phase reaches a
// node's API. With settle > 0, every node must also see all three members
// alive for that long after each restart: a gossip break shows only once
// failure detection has had time to act on it.
func rollingRestart(t *testing.T, c *cluster, settle time.Duration, mod func(*Config), submit func(n *Node, name string) error) {
	t.Helper()
	l := c.mustLeader(t)
	var order []string
	for _, n := range c.live() {
		if n != l {
			order = append(order, n.name)
		}
	}
	order = append(order, l.name)
	for _, name := range order {
		c.mu.Lock()
		n := c.nodes[name]
		c.mu.Unlock()
		n.Stop()
		c.reconfigure(name, mod)
		nn := c.restart(name)
		waitFor(t, 45*time.Second, "cluster whole after restarting "+name, func() bool {
			l := c.leader()
			if l == nil {
				return false
			}
			v, _ := countVoters(l)
			alive := 0
			l.fsm.View(func(s *fsm.State) {
				for _, nd := range s.Nodes {
					if nd.Status == fsm.NodeAlive {
						alive++
					}
				}
			})
			return v == 3 && alive == 3 && nn.raft.AppliedIndex() >= l.raft.CommitIndex()-1
		})
		// A submit through the restarted node goes through Raft over the
		// new transport (forwarded to the leader, unless it is one).
		waitFor(t, 30*time.Second, "a submit through "+name, func() bool {
			return submit(nn, fmt.Sprintf("after-%s-%d.txt", name, time.Now().UnixNano())) == nil
		})
		if settle > 0 {
			waitFor(t, 30*time.Second, "every node seeing three members after restarting "+name, func() bool {
				for _, n := range c.live() {
					if aliveMembers(n) != 3 {
						return false
					}
				}
				return true
			})
			for deadline := time.Now().Add(settle); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				for _, n := range c.live() {
					if k := aliveMembers(n); k != 3 {
						t.Fatalf("after restarting %s, %s sees %d alive members: gossip broke", name, n.name, k)
					}
				}
			}
		}
	}
}

// rawRaftRefused reports whether the Raft port hangs up on a connection
// that brings no credential (plain Raft bytes).
func rawRaftRefused(t *testing.T, addr string) bool {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = conn.Write(make([]byte, 64))
	_ = conn.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = conn.Read(make([]byte, 1))
	return errors.Is(err, io.EOF) || strings.Contains(fmt.Sprint(err), "reset")
}

func allCompletedOnce(t *testing.T, c *cluster, succ *successes) {
	t.Helper()
	var ids []string
	c.mustLeader(t).fsm.View(func(s *fsm.State) {
		for id := range s.Tasks {
			ids = append(ids, id)
		}
	})
	final := waitTerminal(t, c, ids, 120*time.Second)
	requireAllCompleted(t, final)
	for id, tk := range final {
		if tk.Chunks != 1 {
			t.Fatalf("task %s completed with %d chunks, want 1", id, tk.Chunks)
		}
	}
	succ.mu.Lock()
	defer succ.mu.Unlock()
	ran := map[string]int{}
	for _, per := range succ.per {
		for id, k := range per {
			ran[id] += k
		}
	}
	for id := range final {
		if ran[id] == 0 {
			t.Fatalf("task %s is completed in the ledger but no run of it succeeded", id)
		}
	}
	t.Logf("%d tasks, all completed", len(final))
}

// TestRollingRestartToTLS: a plaintext cluster with work in flight moves to
// mutual TLS by two rolling restarts — every node with TLS and
// --transition tls, then every node without the flag — and keeps every
// task and its quorum throughout. In the window a plaintext client still
// gets an answer; after it, plaintext HTTP and plain Raft are refused.
func TestRollingRestartToTLS(t *testing.T) {
	pki := newTestPKI(t)
	succ := &successes{per: map[string]map[string]int{}}
	c := newCluster(t)
	ns := c.startN(3, func(_ int, cfg *Config) {
		cfg.Token = "s3cret"
		name := cfg.Name
		cfg.Runner = func() (Runner, error) { return successRunner{s: succ, node: name, d: 200 * time.Millisecond}, nil }
	})
	waitVoters(t, c, 3)
	submitPlain := func(n *Node, name string) error {
		_, err := clientOf(n).Submit(ctxT(t, 10*time.Second), submitReq("p", name), strings.NewReader("doc "+name))
		return err
	}
	submitTLS := func(n *Node, name string) error {
		_, err := tlsClientOf(t, n, "s3cret", pki.ca, "", "").Submit(ctxT(t, 10*time.Second), submitReq("p", name), strings.NewReader("doc "+name))
		return err
	}
	submitMany(t, ns, 30, "before")

	// Roll 1: TLS on, plaintext peers still let in.
	rollingRestart(t, c, 0, func(cfg *Config) {
		cfg.CAFile = pki.ca
		cfg.CertFile, cfg.KeyFile = pki.issue(t, cfg.Name, false)
		cfg.Transition = transitionTLS
	}, submitTLS)
	for _, n := range c.live() {
		if err := submitPlain(n, "window-"+n.name+".txt"); err != nil {
			t.Fatalf("plaintext client in the transition window, %s: %v", n.name, err)
		}
		if ws := n.securityWarnings(); len(ws) == 0 || !strings.Contains(strings.Join(ws, " "), "--transition") {
			t.Fatalf("%s does not warn about its open window: %v", n.name, ws)
		}
	}

	// Roll 2: the window closes.
	rollingRestart(t, c, 0, func(cfg *Config) { cfg.Transition = "" }, submitTLS)
	for _, n := range c.live() {
		if err := submitPlain(n, "late-"+n.name+".txt"); err == nil {
			t.Fatalf("%s still answers plaintext HTTP after the window closed", n.name)
		}
		if !rawRaftRefused(t, n.raftAddr) {
			t.Fatalf("%s's Raft port took a plaintext connection after the window closed", n.name)
		}
		// The peer plane still refuses a client token over TLS.
		_, err := tlsClientOf(t, n, "s3cret", pki.ca, "", "").Apply(ctxT(t, 10*time.Second), fsm.Command{Type: fsm.CmdRegisterNode, Node: &fsm.Node{ID: "fake", Name: "fake", CPUSlots: 64}})
		if !transport.IsStatus(err, 403) {
			t.Fatalf("client token on a peer route of %s: %v, want 403", n.name, err)
		}
	}
	allCompletedOnce(t, c, succ)
}

// TestRollingRestartToGossipKey: a cluster with no membership credential
// turns gossip encryption (and with it the Raft handshake) on by three
// rolling restarts, memberlist's procedure: key in and plaintext out
// (gossip-accept), encrypted out (gossip-prefer), then neither. Every
// task survives; afterwards a node without the key cannot join and the
// Raft port refuses plain Raft.
func TestRollingRestartToGossipKey(t *testing.T) {
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		t.Fatal(err)
	}
	succ := &successes{per: map[string]map[string]int{}}
	c := newCluster(t)
	ns := c.startN(3, func(_ int, cfg *Config) {
		name := cfg.Name
		cfg.Runner = func() (Runner, error) { return successRunner{s: succ, node: name, d: 200 * time.Millisecond}, nil }
	})
	waitVoters(t, c, 3)
	submit := func(n *Node, name string) error {
		_, err := clientOf(n).Submit(ctxT(t, 10*time.Second), submitReq("p", name), strings.NewReader("doc "+name))
		return err
	}
	submitMany(t, ns, 30, "before")
	for _, stage := range []string{transitionGossipAccept, transitionGossipPrefer, ""} {
		rollingRestart(t, c, 1500*time.Millisecond, func(cfg *Config) {
			cfg.GossipKey = raw
			cfg.Transition = stage
		}, submit)
		for _, n := range c.live() {
			if alive := aliveMembers(n); alive != 3 {
				t.Fatalf("stage %q: %s sees %d alive members", stage, n.name, alive)
			}
		}
	}
	for _, n := range c.live() {
		if !rawRaftRefused(t, n.raftAddr) {
			t.Fatalf("%s's Raft port took plain Raft after the transition", n.name)
		}
	}
	// A node without the key cannot join any more.
	out := baseConfig(t, "outsider")
	out.Join = []string{c.mustLeader(t).SerfAddr()}
	if n, err := Start(out); err == nil {
		t.Cleanup(n.Kill)
		// A refusal shows only as something that does not happen: watch
		// the member list for a while.
		for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			if k := aliveMembers(c.mustLeader(t)); k != 3 {
				t.Fatalf("a node without the gossip key joined after the transition (%d members)", k)
			}
		}
	}
	allCompletedOnce(t, c, succ)
}

func aliveMembers(n *Node) int {
	k := 0
	for _, m := range n.serf.Members() {
		if m.Status.String() == "alive" {
			k++
		}
	}
	return k
}

func waitVoters(t *testing.T, c *cluster, k int) {
	t.Helper()
	waitFor(t, 20*time.Second, fmt.Sprintf("%d voters", k), func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		v, _ := countVoters(l)
		return v == k
	})
}
