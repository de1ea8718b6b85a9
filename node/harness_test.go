package node

import (
	"context"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/transport"
)

// cluster runs real nodes in this process: real Raft over TCP, real Serf,
// real HTTP, all on 127.0.0.1.
type cluster struct {
	t     *testing.T
	mu    sync.Mutex
	nodes map[string]*Node
	cfgs  map[string]Config
}

func newCluster(t *testing.T) *cluster {
	c := &cluster{t: t, nodes: map[string]*Node{}, cfgs: map[string]Config{}}
	t.Cleanup(func() {
		c.mu.Lock()
		ns := make([]*Node, 0, len(c.nodes))
		for _, n := range c.nodes {
			ns = append(ns, n)
		}
		c.mu.Unlock()
		var wg sync.WaitGroup
		for _, n := range ns {
			wg.Add(1)
			go func(n *Node) { defer wg.Done(); n.Kill() }(n)
		}
		wg.Wait()
	})
	return c
}

func testLogger(name string) hclog.Logger {
	if os.Getenv("RAGNODE_TEST_LOG") != "" {
		return hclog.New(&hclog.LoggerOptions{Name: name, Level: hclog.LevelFromString(os.Getenv("RAGNODE_TEST_LOG"))})
	}
	return hclog.NewNullLogger()
}

func baseConfig(t *testing.T, name string) Config {
	return Config{
		DataDir:           t.TempDir(),
		Name:              name,
		Bind:              "127.0.0.1",
		Timing:            TimingFast,
		StabilizationTime: 300 * time.Millisecond,
		DeadServerTimeout: 2 * time.Second,
		RequeueAfter:      time.Second,
		DrainTimeout:      5 * time.Second,
		GPU:               gpu.Config{Declared: 0},
		CPUSlots:          2,
		CheckInvariants:   true,
		Logger:            testLogger(name),
	}
}

// start launches a node; ports 0 pick free ones (recorded for restarts).
func (c *cluster) start(cfg Config) *Node {
	c.t.Helper()
	n, err := Start(cfg)
	if err != nil {
		c.t.Fatalf("start %s: %v", cfg.Name, err)
	}
	// Cleanups run last-registered first: this one comes after the data
	// dir's t.TempDir, so the node is down before its directory is removed
	// (the cluster-wide kill registered by newCluster would run after).
	c.t.Cleanup(n.Kill)
	// Pin the ports so a restart comes back on the same addresses.
	cfg.HTTPPort = portOf(n.httpAddr)
	cfg.RaftPort = portOf(n.raftAddr)
	cfg.SerfPort = portOf(n.serfAddr)
	c.mu.Lock()
	c.nodes[cfg.Name] = n
	c.cfgs[cfg.Name] = cfg
	c.mu.Unlock()
	return n
}

func portOf(addr string) int {
	var p int
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == ':' {
			fmt.Sscanf(addr[i+1:], "%d", &p)
			break
		}
	}
	return p
}

// startN starts n nodes; the first bootstraps, the others join it.
func (c *cluster) startN(k int, mod func(i int, cfg *Config)) []*Node {
	var out []*Node
	for i := 0; i < k; i++ {
		cfg := baseConfig(c.t, fmt.Sprintf("n%d", i+1))
		if i > 0 {
			cfg.Join = []string{out[0].SerfAddr()}
		}
		if mod != nil {
			mod(i, &cfg)
		}
		out = append(out, c.start(cfg))
	}
	return out
}

func (c *cluster) restart(name string) *Node {
	c.t.Helper()
	c.mu.Lock()
	cfg := c.cfgs[name]
	c.mu.Unlock()
	return c.start(cfg)
}

func (c *cluster) live() []*Node {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*Node
	for _, n := range c.nodes {
		select {
		case <-n.Done():
		default:
			out = append(out, n)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

func (c *cluster) leader() *Node {
	for _, n := range c.live() {
		if n.raft.State() == raft.Leader {
			return n
		}
	}
	return nil
}

// mustLeader waits for a leader: under load an election can be under way
// at the instant a test asks, and a nil leader would panic the test.
func (c *cluster) mustLeader(t *testing.T) *Node {
	t.Helper()
	var l *Node
	waitFor(t, 30*time.Second, "a leader", func() bool {
		l = c.leader()
		return l != nil
	})
	return l
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func suffrage(n *Node) map[string]raft.ServerSuffrage {
	out := map[string]raft.ServerSuffrage{}
	f := n.raft.GetConfiguration()
	if f.Error() != nil {
		return out
	}
	for _, s := range f.Configuration().Servers {
		out[string(s.ID)] = s.Suffrage
	}
	return out
}

func countVoters(n *Node) (voters, nonvoters int) {
	for _, s := range suffrage(n) {
		if s == raft.Voter {
			voters++
		} else {
			nonvoters++
		}
	}
	return
}

func clientOf(n *Node) *transport.Client { return transport.NewClient(n.HTTPAddr(), n.cfg.Token) }

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// view copies what fn extracts from a node's state.
func taskStates(n *Node) map[string]fsm.TaskState {
	out := map[string]fsm.TaskState{}
	n.fsm.View(func(s *fsm.State) {
		for id, t := range s.Tasks {
			out[id] = t.State
		}
	})
	return out
}

func submitReq(partition, fileID string) transport.SubmitRequest {
	return transport.SubmitRequest{Partition: partition, FileID: fileID, FileName: fileID}
}

func drainReq(node string) transport.DrainRequest { return transport.DrainRequest{Node: node} }
