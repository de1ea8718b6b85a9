package node

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/hashicorp/serf/serf"
	bolt "go.etcd.io/bbolt"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/embed"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/transport"
)

// Serf tag keys.
const (
	tagID      = "id"
	tagHTTP    = "http"
	tagRaft    = "raft"
	tagVersion = "ver"
	tagExpect  = "expect"
	tagState   = "state" // "1" once the node holds Raft state
)

// Node is one running ragnode.
type Node struct {
	cfg     Config
	log     hclog.Logger
	id      string
	name    string
	devices []gpu.Device
	gpuSrc  string

	fsm      *fsm.FSM
	raft     *raft.Raft
	logStore *raftboltdb.BoltStore
	snaps    raft.SnapshotStore
	trans    *raft.NetworkTransport

	serf       *serf.Serf
	serfEvents chan serf.Event

	httpLn   net.Listener
	httpSrv  *http.Server
	api      *transport.Server
	httpAddr string
	raftAddr string
	serfAddr string

	prop  *proposer
	pool  *workerPool
	blobs *blobStore
	store store.Store
	emb   embed.Embedder
	pipe  *indexer.Pipeline

	ap      *autopilot.Autopilot
	apState atomic.Pointer[autopilot.State]

	// detectLag is how long memberlist has already been failing to reach a
	// node when Serf reports it failed (its suspicion timeout, at least).
	detectLag    time.Duration
	reconcileCh  chan struct{}
	leaderNotify chan bool
	stopCh       chan struct{}
	doneCh       chan struct{}
	stopOnce     sync.Once
	wg           sync.WaitGroup
	leaving      atomic.Bool

	clientsMu sync.Mutex
	clients   map[string]*transport.Client
}

// ID returns the node's persistent ID.
func (n *Node) ID() string { return n.id }

// Name returns the node's name.
func (n *Node) Name() string { return n.name }

// HTTPAddr returns the advertised API address.
func (n *Node) HTTPAddr() string { return n.httpAddr }

// SerfAddr returns the advertised gossip address (what --join takes).
func (n *Node) SerfAddr() string { return n.serfAddr }

// FSM exposes the replicated state for read-only views.
func (n *Node) FSM() *fsm.FSM { return n.fsm }

// Raft exposes the Raft instance (tests and status).
func (n *Node) Raft() *raft.Raft { return n.raft }

// Done is closed when the node has stopped (after Stop or Leave).
func (n *Node) Done() <-chan struct{} { return n.doneCh }

// Start brings a node up: identity, stores, Raft, Serf, the API, then join or
// bootstrap. It returns once the node serves its API.
func Start(cfg Config) (*Node, error) {
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	id, err := loadOrCreateID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	n := &Node{
		cfg:         cfg,
		id:          id,
		name:        cfg.Name,
		fsm:         fsm.NewFSM(),
		serfEvents:  make(chan serf.Event, 1024),
		reconcileCh: make(chan struct{}, 1),
		stopCh:      make(chan struct{}),
		doneCh:      make(chan struct{}),
		clients:     map[string]*transport.Client{},
	}
	if n.name == "" {
		host, _ := os.Hostname()
		n.name = fmt.Sprintf("%s-%s", host, id[:6])
	}
	n.log = cfg.Logger.Named(n.name)
	n.fsm.Check = cfg.CheckInvariants
	n.devices, n.gpuSrc, err = gpu.Inventory(nil, cfg.GPU)
	if err != nil {
		return nil, fmt.Errorf("gpu inventory: %w", err)
	}
	n.log.Info("gpu inventory", "source", n.gpuSrc, "gpus", len(n.devices))
	if n.blobs, err = openBlobStore(filepath.Join(cfg.DataDir, "blobs")); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			n.closeAll()
		}
	}()
	if err := n.startIndexer(); err != nil {
		return nil, err
	}
	if n.cfg.Runner == nil {
		n.cfg.Runner = func() (Runner, error) { return pipelineRunner{n: n}, nil }
	}
	if err := n.startHTTP(); err != nil {
		return nil, err
	}
	hasState, err := n.startRaft()
	if err != nil {
		return nil, err
	}
	n.prop = newProposer(n)
	if err := n.startSerf(hasState); err != nil {
		return nil, err
	}
	n.pool = newWorkerPool(n)
	n.serveHTTP()

	n.wg.Add(5)
	go n.janitor()
	go n.serfLoop()
	go n.leaderWatch()
	go n.selfRegisterLoop()
	go n.pool.loop()

	if !hasState {
		switch {
		case cfg.BootstrapExpect > 1:
			n.log.Info("waiting for peers before bootstrap", "expect", cfg.BootstrapExpect)
		case len(cfg.Join) == 0:
			if err := n.bootstrap([]raft.Server{{ID: raft.ServerID(n.id), Address: raft.ServerAddress(n.raftAddr)}}); err != nil {
				return nil, err
			}
		}
	}
	if len(cfg.Join) > 0 {
		if err := n.joinWithRetry(cfg.Join, cfg.JoinTimeout); err != nil {
			return nil, err
		}
	}
	ok = true
	n.log.Info("node started", "id", n.id, "http", n.httpAddr, "raft", n.raftAddr, "serf", n.serfAddr)
	return n, nil
}

func loadOrCreateID(dir string) (string, error) {
	p := filepath.Join(dir, "node-id")
	b, err := os.ReadFile(p)
	if err == nil {
		id := strings.TrimSpace(string(b))
		if len(id) == 32 {
			return id, nil
		}
		return "", fmt.Errorf("node id file %s is damaged", p)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("read node id: %w", err)
	}
	var raw [16]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(raw[:])
	tmp := p + ".tmp"
	if err := os.WriteFile(tmp, []byte(id+"\n"), 0o640); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	if err := os.Rename(tmp, p); err != nil {
		return "", fmt.Errorf("write node id: %w", err)
	}
	return id, nil
}

func (n *Node) startHTTP() error {
	addr := net.JoinHostPort(n.cfg.Bind, strconv.Itoa(n.cfg.HTTPPort))
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen http %s: %w", addr, err)
	}
	n.httpLn = ln
	n.httpAddr = net.JoinHostPort(n.cfg.advertiseIP(), strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	n.api = transport.NewServer(n, n.cfg.Token)
	n.api.MountCompat(n)
	if n.cfg.Pprof {
		n.api.Handle("/debug/pprof/", http.HandlerFunc(pprof.Index))
		n.api.Handle("/debug/pprof/profile", http.HandlerFunc(pprof.Profile))
		n.api.Handle("/debug/pprof/trace", http.HandlerFunc(pprof.Trace))
	}
	n.httpSrv = &http.Server{Handler: n.api, ReadHeaderTimeout: 10 * time.Second}
	return nil
}

// serveHTTP starts answering on the listener opened by startHTTP. It runs
// once Raft and Serf exist: peers (a leader's autopilot polling a node that
// is restarting) connect as soon as the port is open, and their requests
// wait in the backlog until then instead of reaching a half-built node.
func (n *Node) serveHTTP() {
	go func() {
		if err := n.httpSrv.Serve(n.httpLn); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("http server", "error", err)
		}
	}()
}

// API exposes the HTTP handler mux so other packages can mount routes.
func (n *Node) API() *transport.Server { return n.api }

func (n *Node) startRaft() (bool, error) {
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("create raft dir: %w", err)
	}
	store, err := raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bolt.Options{Timeout: 2 * time.Second},
	})
	if err != nil {
		return false, fmt.Errorf("open raft log %s (is another ragnode using this data dir?): %w", dir, err)
	}
	n.logStore = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, n.log.Named("snapshot"))
	if err != nil {
		return false, fmt.Errorf("snapshot store: %w", err)
	}
	n.snaps = snaps
	bind := net.JoinHostPort(n.cfg.Bind, strconv.Itoa(n.cfg.RaftPort))
	var adv net.Addr
	if n.cfg.RaftPort != 0 {
		adv, err = net.ResolveTCPAddr("tcp", net.JoinHostPort(n.cfg.advertiseIP(), strconv.Itoa(n.cfg.RaftPort)))
		if err != nil {
			return false, err
		}
	}
	trans, err := raft.NewTCPTransportWithLogger(bind, adv, 8, 10*time.Second, n.log.Named("raft-net"))
	if err != nil {
		return false, fmt.Errorf("listen raft %s: %w", bind, err)
	}
	n.trans = trans
	n.raftAddr = string(trans.LocalAddr())

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.Logger = n.log.Named("raft")
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout, rc.CommitTimeout = n.cfg.raftTimeouts()
	rc.SnapshotThreshold = 16384
	rc.TrailingLogs = 20480
	rc.MaxAppendEntries = 256
	// Buffered: an unbuffered notify channel has deadlocked Nomad.
	n.leaderNotify = make(chan bool, 16)
	rc.NotifyCh = n.leaderNotify
	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return false, fmt.Errorf("inspect raft state: %w", err)
	}
	r, err := raft.NewRaft(rc, n.fsm, store, store, snaps, trans)
	if err != nil {
		return false, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	return hasState, nil
}

func (n *Node) startSerf(hasState bool) error {
	sc := serf.DefaultConfig()
	sc.NodeName = n.name
	sc.Logger = n.log.Named("serf").StandardLogger(&hclog.StandardLoggerOptions{InferLevels: true})
	sc.EventCh = n.serfEvents
	sc.SnapshotPath = filepath.Join(n.cfg.DataDir, "serf", "local.snapshot")
	if err := os.MkdirAll(filepath.Dir(sc.SnapshotPath), 0o750); err != nil {
		return err
	}
	sc.RejoinAfterLeave = true
	sc.Tags = map[string]string{
		tagID:      n.id,
		tagHTTP:    n.httpAddr,
		tagRaft:    n.raftAddr,
		tagVersion: Version,
	}
	if n.cfg.BootstrapExpect > 0 {
		sc.Tags[tagExpect] = strconv.Itoa(n.cfg.BootstrapExpect)
	}
	if hasState {
		sc.Tags[tagState] = "1"
	}
	mc := sc.MemberlistConfig
	if n.cfg.Timing == TimingFast {
		mc.ProbeInterval = 200 * time.Millisecond
		mc.ProbeTimeout = 100 * time.Millisecond
		mc.GossipInterval = 50 * time.Millisecond
		mc.SuspicionMult = 2
		mc.PushPullInterval = 5 * time.Second
		mc.TCPTimeout = time.Second
		sc.ReapInterval = time.Second
	}
	n.detectLag = time.Duration(mc.SuspicionMult+1) * mc.ProbeInterval
	mc.Name = n.name
	mc.BindAddr = n.cfg.Bind
	mc.BindPort = n.cfg.SerfPort
	mc.AdvertiseAddr = n.cfg.advertiseIP()
	mc.AdvertisePort = n.cfg.SerfPort
	mc.Logger = sc.Logger
	if len(n.cfg.GossipKey) > 0 {
		mc.SecretKey = n.cfg.GossipKey
	}
	s, err := serf.Create(sc)
	if err != nil {
		return fmt.Errorf("start serf on %s:%d: %w", n.cfg.Bind, n.cfg.SerfPort, err)
	}
	n.serf = s
	lm := s.LocalMember()
	n.serfAddr = net.JoinHostPort(lm.Addr.String(), strconv.Itoa(int(lm.Port)))
	return nil
}

func (n *Node) bootstrap(servers []raft.Server) error {
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	n.log.Info("bootstrapped cluster", "servers", len(servers))
	n.setStateTag()
	return nil
}

func (n *Node) setStateTag() {
	tags := map[string]string{}
	for k, v := range n.serf.LocalMember().Tags {
		tags[k] = v
	}
	if tags[tagState] == "1" {
		return
	}
	tags[tagState] = "1"
	if err := n.serf.SetTags(tags); err != nil {
		n.log.Warn("set serf tags", "error", err)
	}
}

func (n *Node) joinWithRetry(addrs []string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	backoff := 200 * time.Millisecond
	for {
		_, err := n.serf.Join(addrs, true)
		if err == nil {
			n.log.Info("joined cluster", "via", strings.Join(addrs, ","))
			return nil
		}
		if time.Now().Add(backoff).After(deadline) {
			return fmt.Errorf("join %s: %w", strings.Join(addrs, ","), err)
		}
		n.log.Warn("join failed, retrying", "error", err, "in", backoff)
		select {
		case <-time.After(backoff):
		case <-n.stopCh:
			return errors.New("join: node stopping")
		}
		if backoff < 5*time.Second {
			backoff *= 2
		}
	}
}

// maybeBootstrapExpect bootstraps once when BootstrapExpect nodes that have
// no Raft state see each other. Every one of them computes the same server
// list (sorted by ID) and bootstraps with it, which raft treats as one
// cluster; if any peer already holds state, nobody bootstraps and the leader
// of that cluster adds us instead.
func (n *Node) maybeBootstrapExpect() {
	if n.cfg.BootstrapExpect <= 1 {
		return
	}
	hasState, err := raft.HasExistingState(n.logStore, n.logStore, n.snaps)
	if err == nil && hasState {
		return
	}
	if n.raft.Leader() != "" {
		return
	}
	var servers []raft.Server
	for _, m := range n.serf.Members() {
		if m.Status != serf.StatusAlive || m.Tags[tagID] == "" {
			continue
		}
		if m.Tags[tagState] == "1" {
			return
		}
		if m.Tags[tagExpect] != strconv.Itoa(n.cfg.BootstrapExpect) {
			n.log.Warn("peer has a different --bootstrap-expect", "peer", m.Name, "expect", m.Tags[tagExpect])
			return
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(m.Tags[tagID]), Address: raft.ServerAddress(m.Tags[tagRaft])})
	}
	if len(servers) < n.cfg.BootstrapExpect {
		return
	}
	sortServers(servers)
	if err := n.bootstrap(servers); err != nil {
		n.log.Error("bootstrap-expect", "error", err)
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

func (n *Node) shutdown() {
	close(n.stopCh)
	n.pool.stopAll()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	_ = n.httpSrv.Shutdown(ctx)
	cancel()
	n.closeAll()
	n.wg.Wait()
	close(n.doneCh)
}

func (n *Node) closeAll() {
	if n.serf != nil {
		_ = n.serf.Shutdown()
	}
	if n.raft != nil {
		if err := n.raft.Shutdown().Error(); err != nil {
			n.log.Warn("raft shutdown", "error", err)
		}
	}
	if n.trans != nil {
		_ = n.trans.Close()
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
		return transport.Errorf(http.StatusConflict, "leave already in progress")
	}
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
			return fmt.Errorf("leave: remove from raft: %w", err)
		}
		time.Sleep(200 * time.Millisecond)
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
	c, err := n.leaderClient()
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
		c, err := n.leaderClient()
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

// leaderClient returns an API client for the current leader.
func (n *Node) leaderClient() (*transport.Client, error) {
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		return nil, transport.Errorf(http.StatusServiceUnavailable, "no leader elected yet")
	}
	h := n.httpAddrOf(string(id))
	if h == "" {
		return nil, transport.Errorf(http.StatusServiceUnavailable, "leader %s has no known API address yet", id)
	}
	return n.client(h), nil
}

// httpAddrOf finds a node's API address from Serf tags, then the ledger.
func (n *Node) httpAddrOf(id string) string {
	if id == n.id {
		return n.httpAddr
	}
	for _, m := range n.serf.Members() {
		if m.Tags[tagID] == id && m.Status == serf.StatusAlive {
			return m.Tags[tagHTTP]
		}
	}
	var h string
	n.fsm.View(func(s *fsm.State) {
		if nd := s.Nodes[id]; nd != nil {
			h = nd.HTTPAddr
		}
	})
	return h
}

func (n *Node) client(addr string) *transport.Client {
	n.clientsMu.Lock()
	defer n.clientsMu.Unlock()
	c := n.clients[addr]
	if c == nil {
		c = transport.NewClient(addr, n.cfg.Token)
		n.clients[addr] = c
	}
	return c
}

func (n *Node) stopping() bool {
	select {
	case <-n.stopCh:
		return true
	default:
		return false
	}
}
