package node

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
	autopilot "github.com/hashicorp/raft-autopilot"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/hashicorp/serf/serf"

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
	// tagLeaving is set by a node that is leaving for good, before it asks
	// to be removed from Raft, so the leader's reconcile does not add it
	// back while Serf still lists it alive. A restarted process gossips
	// fresh tags without it, so a node that left can come back.
	tagLeaving = "leaving"
	tagCluster = "cluster" // the cluster identity from the data dir, "" until known
)

// Node is one running ragnode.
type Node struct {
	cfg     Config
	log     hclog.Logger
	id      string
	name    string
	devices []gpu.Device
	gpuSrc  string
	// filterLimit, above zero, replaces filter.DefaultBudget for this
	// node's searches (tests lower it; request goroutines read it).
	filterLimit atomic.Int64

	fsm      *fsm.FSM
	raft     *raft.Raft
	logStore *raftboltdb.BoltStore
	stable   *closableStable // Raft's view of logStore's term and vote
	snaps    raft.SnapshotStore
	trans    *raft.NetworkTransport
	// raftConns are trans's live connections (raft_stream.go).
	raftConns *connTracker

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
	// store is this node's own store (what peers' internal calls reach);
	// chunks is the strategy every other use goes through.
	store  store.Store
	chunks chunkStore
	emb    embed.Embedder
	pipe   *indexer.Pipeline

	apState atomic.Pointer[autopilot.State]

	// detectLag is how long memberlist has already been failing to reach a
	// node when Serf reports it failed (its suspicion timeout, at least).
	detectLag   time.Duration
	reconcileCh chan struct{}
	// caughtUp is set once the FSM has applied the committed log; see
	// replayed.
	caughtUp atomic.Bool
	// diskFaulty is set while a disk drain is under way; see diskfault.go.
	diskFaulty atomic.Bool
	// diskLift: this node asked for a disk drain and has not yet had its
	// lift answered by the leader (diskfault.go).
	diskLift atomic.Bool
	// clusterID (a string) is this node's cluster identity, "" until known.
	clusterID    atomic.Value
	leaderNotify chan bool
	stopCh       chan struct{}
	doneCh       chan struct{}
	stopOnce     sync.Once
	wg           sync.WaitGroup
	leaving      atomic.Bool
	// lead: establishing leadership and stepping down (leader.go).
	lead leadership

	peers *peers

	// obs and metrics feed the console and /metrics (observe.go, metrics.go).
	obs     *observer
	metrics *metrics

	// Security (security*.go): the gossip keyring Serf and the Raft
	// handshake share (nil: no membership credential), and the peer
	// secret last written to the node credential file (a string; a
	// restored ledger brings another).
	keyring     *memberlist.Keyring
	credWritten atomic.Value
	credMu      sync.Mutex
	// restoreMu serialises snapshot restores (snapshot_admin.go).
	restoreMu sync.Mutex
	// memberChecks: members refused entry to Raft lately (member_check.go).
	memberChecks memberChecks
	tls          *transport.TLSMaterial // nil: TLS off
	// catUsers reads OpenRAG's users (--catalog; catalog_users.go).
	catUsers *catalogUsers
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
	if err := checkNotLeft(cfg.DataDir); err != nil { // departed.go
		return nil, err
	}
	id, err := loadOrCreateID(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	clusterID, err := loadClusterID(cfg.DataDir)
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
	}
	n.clusterID.Store(clusterID)
	if n.name == "" {
		host, _ := os.Hostname()
		n.name = fmt.Sprintf("%s-%s", host, id[:6])
	}
	n.log = cfg.Logger.Named(n.name)
	n.metrics = newMetrics()
	n.metrics.reg.MustRegister(ledgerCollector{n})
	n.obs = newObserver(n.id, n.metrics, time.Now())
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
			n.abortStart() // lifecycle.go
		}
	}()
	if err := n.startIndexer(); err != nil {
		return nil, err
	}
	if n.cfg.Runner == nil {
		n.cfg.Runner = func() (Runner, error) { return pipelineRunner{n: n}, nil }
	}
	if err := n.initSecurity(); err != nil {
		return nil, err
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
	n.peers = newPeers(n.id, n.httpAddr, n.peerClient, n.serf, n.raft, n.fsm, n.foreignMember)
	n.pool = newWorkerPool(n)
	n.serveHTTP()
	n.startIndexLoad() // indexload.go: after Raft, Serf and HTTP

	n.startBlobIntegrity() // blobscrub.go
	n.wg.Add(6)
	go n.observeLoop()
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
		if err := n.checkJoinedCluster(); err != nil {
			_ = n.serf.Leave() // so the other cluster forgets us at once
			return nil, err
		}
	}
	ok = true
	n.log.Info("node started", "id", n.id, "http", n.httpAddr, "raft", n.raftAddr, "serf", n.serfAddr)
	if w := n.cfg.openWarning(); w != "" {
		n.log.Warn(w)
	}
	return n, nil
}

// API exposes the HTTP handler mux so other packages can mount routes.
func (n *Node) API() *transport.Server { return n.api }
