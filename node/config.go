// Package node wires one running ragnode: identity, Raft and Serf, bootstrap
// and join, the leader's loops (membership, scheduling, failure handling,
// drain deadlines), the worker pool and graceful shutdown.
//
// Guarantee: every ledger change goes through Raft; a node only runs the
// tasks the applied log assigns to it, and reports results fenced by the
// task's attempt, so a slow or partitioned node can never overwrite newer
// work. Stop is a restart (membership kept); Leave is a departure.
package node

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"runtime"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/scheduler"
)

// Version is reported in members and Serf tags.
const Version = "0.1.0"

// Default ports. Several nodes on one host pass different ports and data dirs.
const (
	DefaultHTTPPort = 7070
	DefaultRaftPort = 7071
	DefaultSerfPort = 7072
)

// Defaults the CLI shows.
const (
	DefaultJoinTimeout  = 60 * time.Second
	DefaultTaskTimeout  = 30 * time.Minute
	DefaultDrainTimeout = 30 * time.Second
	// An upload body silent this long is cut: long enough for a client
	// on a congested link, short enough that stalled clients cannot pile
	// up sockets and temporary files.
	DefaultUploadIdleTimeout = 60 * time.Second
	// Uploads one token may have in flight: above what `ragnode submit
	// --parallel` and batch clients use, far below the descriptors a node
	// has.
	DefaultMaxUploadsPerToken = 32
)

// NewGossipKey returns a random 32-byte key, base64-encoded, for --gossip-key.
func NewGossipKey() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b[:]), nil
}

// Timing selects failure-detection speed.
type Timing string

const (
	// TimingLAN suits real networks: Raft 1 s timeouts, memberlist LAN defaults.
	TimingLAN Timing = "lan"
	// TimingFast suits one machine (tests, demos): sub-second detection.
	TimingFast Timing = "fast"
)

// Config is everything `ragnode start` takes.
type Config struct {
	DataDir   string
	Name      string
	Bind      string
	Advertise string
	// Ports; 0 lets the OS pick one (tests). The CLI's defaults are
	// DefaultHTTPPort, DefaultRaftPort and DefaultSerfPort.
	HTTPPort int
	RaftPort int
	SerfPort int

	Join            []string
	JoinTimeout     time.Duration
	BootstrapExpect int
	GossipKey       []byte
	Token           string
	Timing          Timing
	// CORSOrigins may call the API from a browser ("*": any); none: no CORS.
	CORSOrigins []string

	DeadServerTimeout time.Duration
	StabilizationTime time.Duration

	// GPU and work limits.
	GPU               gpu.Config
	GPUReserve        uint64
	TaskMilli         int
	TaskMem           uint64
	CPUSlots          int
	PoolSize          int
	MaxConcurrent     int
	MaxTasksPerWorker int
	TaskTimeout       time.Duration
	RequeueAfter      time.Duration
	MaxAttempts       int
	DrainTimeout      time.Duration
	Placement         scheduler.Policy
	RetainCount       int
	RetainMaxAge      time.Duration

	// MaxNodeLosses: a task whose node (or runner) is lost under it more
	// often than this fails as a suspected poison document (0: the
	// ledger's default, 2; negative: never).
	MaxNodeLosses int

	// Admission control: past these caps (0: none) a submission answers
	// 429 with Retry-After and nothing of it is stored. Queued tasks and
	// their bytes count cluster-wide; MaxQueuedPerPartition per partition.
	MaxQueued             int
	MaxQueuedBytes        int64
	MaxQueuedPerPartition int

	// SharedRoots are the directories shared_path submissions may name
	// (--shared-root); none means shared paths are refused.
	SharedRoots []string

	// Files.
	Replicas    int   // copies of each uploaded blob, this node included
	MaxFileSize int64 // bytes; uploads above it get 413
	// Upload limits (transport/upload_limits.go): an upload whose body is
	// silent for UploadIdleTimeout is cut; a token (a remote IP on an open
	// cluster) has at most MaxUploadsPerToken uploads in flight. 0: the
	// default; negative: no limit.
	UploadIdleTimeout  time.Duration
	MaxUploadsPerToken int

	Indexer IndexerConfig

	// Pprof serves Go's profiles on /debug/pprof/ (behind the token).
	Pprof bool
	// MetricsOpen serves /metrics without the token (for a Prometheus
	// scraper that holds none); everything else keeps the token check.
	MetricsOpen bool

	// Runner builds the task body; nil uses the indexing pipeline.
	Runner RunnerFactory

	Logger hclog.Logger
	// CheckInvariants makes the FSM verify the ledger after every apply.
	CheckInvariants bool

	// CallbackAllowPrivate lets callback_url name any address
	// (--callback-allow-private); off, only globally routable unicast
	// addresses pass (publicAddr), at upload and at connect time.
	CallbackAllowPrivate bool
	// JoinSecret (--join-secret) stands for a gossip key derived from it
	// (security.go); Insecure lets a node on a non-loopback address run
	// without any cluster credential.
	JoinSecret string
	Insecure   bool
	// Transition (--transition accept|prefer, transition.go) is the window
	// of a rolling restart that turns TLS or gossip encryption on: the node
	// also accepts peers that have not got it yet.
	Transition string
	// TLS (tls.go): PEM files; all three or none. VerifyIncomingClients
	// requires client certificates on the client API too.
	CAFile                string
	CertFile              string
	KeyFile               string
	VerifyIncomingClients bool
	// Catalog is the DSN of OpenRAG's PostgreSQL catalog the leader
	// mirrors the ledger's files into (empty: none); see node/catalog.
	Catalog string
	// Prefetch bounds the tasks queued on each node beyond the ones it runs
	// (--prefetch); 0: DefaultPrefetch, negative: none.
	Prefetch int
	// MemoryHigh: above this resident size (bytes; 0: no guard) the node
	// takes no new work until it is back under (memguard.go).
	MemoryHigh uint64
	// ScrubRate bounds the blob scrub's reads (bytes per second,
	// blobscrub.go); 0: DefaultScrubRate, negative: no scrub.
	ScrubRate int64
	// OrphanBlobGrace is how long a local blob no ledger entry names is
	// kept before the janitor removes it (0: DefaultOrphanBlobGrace): an
	// upload stores its blob before the ledger records it.
	OrphanBlobGrace time.Duration
}

// Defaults fills zero fields with defaults.
func (c *Config) Defaults() {
	if c.Bind == "" {
		c.Bind = "127.0.0.1"
	}
	if c.JoinTimeout == 0 {
		c.JoinTimeout = DefaultJoinTimeout
	}
	if c.Timing == "" {
		c.Timing = TimingLAN
	}
	if c.DeadServerTimeout == 0 {
		c.DeadServerTimeout = 30 * time.Second
		if c.Timing == TimingFast {
			c.DeadServerTimeout = 5 * time.Second
		}
	}
	if c.StabilizationTime == 0 {
		c.StabilizationTime = 10 * time.Second
		if c.Timing == TimingFast {
			c.StabilizationTime = time.Second
		}
	}
	if c.CPUSlots == 0 {
		c.CPUSlots = runtime.NumCPU()
	}
	if c.RequeueAfter == 0 {
		c.RequeueAfter = 10 * time.Second
		if c.Timing == TimingFast {
			c.RequeueAfter = 2 * time.Second
		}
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = 3
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
	}
	if c.TaskTimeout == 0 {
		c.TaskTimeout = DefaultTaskTimeout
	}
	if c.Placement == "" {
		c.Placement = scheduler.Spread
	}
	if c.Replicas == 0 {
		c.Replicas = 2
	}
	if c.MaxFileSize == 0 {
		c.MaxFileSize = 100 << 20
	}
	if c.UploadIdleTimeout == 0 {
		c.UploadIdleTimeout = DefaultUploadIdleTimeout
	}
	if c.MaxUploadsPerToken == 0 {
		c.MaxUploadsPerToken = DefaultMaxUploadsPerToken
	}
	if c.RetainCount == 0 {
		c.RetainCount = 100000
	}
	if c.ScrubRate == 0 {
		c.ScrubRate = DefaultScrubRate
	}
	if c.OrphanBlobGrace == 0 {
		c.OrphanBlobGrace = DefaultOrphanBlobGrace
	}
	if c.Logger == nil {
		c.Logger = hclog.NewNullLogger()
	}
}

// Validate rejects impossible settings with a message an operator can act on.
func (c *Config) Validate() error {
	if c.DataDir == "" {
		return fmt.Errorf("--data-dir is required")
	}
	if net.ParseIP(c.Bind) == nil {
		return fmt.Errorf("--bind %q is not an IP address", c.Bind)
	}
	if c.Advertise != "" && net.ParseIP(c.Advertise) == nil {
		return fmt.Errorf("--advertise %q is not an IP address", c.Advertise)
	}
	for _, p := range []int{c.HTTPPort, c.RaftPort, c.SerfPort} {
		if p < 0 || p > 65535 {
			return fmt.Errorf("port %d out of range", p)
		}
	}
	if c.TaskMilli < 0 || c.TaskMilli > gpu.MilliPerGPU {
		return fmt.Errorf("--task-gpus must be between 0 and 1, got %s", gpu.FormatMilli(c.TaskMilli))
	}
	if c.BootstrapExpect < 0 {
		return fmt.Errorf("--bootstrap-expect must be >= 0")
	}
	if n := len(c.GossipKey); n != 0 && n != 16 && n != 24 && n != 32 {
		return fmt.Errorf("--gossip-key must decode to 16, 24 or 32 bytes, got %d", n)
	}
	if c.Placement != scheduler.Spread && c.Placement != scheduler.BinPack {
		return fmt.Errorf("--placement must be spread or binpack")
	}
	if err := c.validateSecurity(); err != nil {
		return err
	}
	return c.validateLimits()
}

// maxDeclaredGPUs bounds --gpus: no machine has more cards, and the ledger
// keeps a record per card.
const maxDeclaredGPUs = 64

// validateLimits refuses counts, sizes and durations that cannot work
// (after Defaults, so zero already means "the default" where it can).
func (c *Config) validateLimits() error {
	for _, f := range []struct {
		flag string
		v    int64
	}{
		{"--cpu-slots", int64(c.CPUSlots)}, {"--pool-size", int64(c.PoolSize)}, {"--max-concurrent", int64(c.MaxConcurrent)},
		{"--max-tasks-per-worker", int64(c.MaxTasksPerWorker)}, {"--max-attempts", int64(c.MaxAttempts)},
		{"--replicas", int64(c.Replicas)}, {"--retain", int64(c.RetainCount)}, {"--max-file-size", c.MaxFileSize},
		{"--chunk-replicas", int64(c.Indexer.ChunkReplicas)}, {"--max-queued", int64(c.MaxQueued)},
		{"--max-queued-bytes", c.MaxQueuedBytes}, {"--max-queued-per-partition", int64(c.MaxQueuedPerPartition)}, {"--embed-batch", int64(c.Indexer.EmbedBatch)},
		{"--embed-concurrency", int64(c.Indexer.EmbedConcurrency)}, {"--embedder-dim", int64(c.Indexer.EmbedderDim)}, {"--max-chunks", int64(c.Indexer.MaxChunks)},
		{"--chunk-size", int64(c.Indexer.ChunkSize)}, {"--chunk-overlap", int64(c.Indexer.ChunkOverlap)},
	} {
		if f.v < 0 {
			return fmt.Errorf("%s must not be negative, got %d", f.flag, f.v)
		}
	}
	for _, f := range []struct {
		flag string
		v    time.Duration
	}{
		{"--task-timeout", c.TaskTimeout}, {"--requeue-after", c.RequeueAfter}, {"--drain-timeout", c.DrainTimeout},
		{"--join-timeout", c.JoinTimeout}, {"--stabilization-time", c.StabilizationTime},
		{"--dead-server-timeout", c.DeadServerTimeout}, {"--retain-age", c.RetainMaxAge},
	} {
		if f.v < 0 {
			return fmt.Errorf("%s must not be negative, got %s", f.flag, f.v)
		}
	}
	if c.GPU.Declared > maxDeclaredGPUs {
		return fmt.Errorf("--gpus %d: at most %d GPUs per node", c.GPU.Declared, maxDeclaredGPUs)
	}
	if c.Indexer.ChunkSize > 0 && c.Indexer.ChunkOverlap >= c.Indexer.ChunkSize {
		return fmt.Errorf("--chunk-overlap (%d) must be smaller than --chunk-size (%d)", c.Indexer.ChunkOverlap, c.Indexer.ChunkSize)
	}
	return nil
}

// advertiseIP is the address other nodes use.
func (c *Config) advertiseIP() string {
	if c.Advertise != "" {
		return c.Advertise
	}
	if ip := net.ParseIP(c.Bind); ip != nil && ip.IsUnspecified() {
		return "127.0.0.1"
	}
	return c.Bind
}

func (c *Config) raftTimeouts() (hb, election, lease, commit time.Duration) {
	if c.Timing == TimingFast {
		return 300 * time.Millisecond, 300 * time.Millisecond, 150 * time.Millisecond, time.Millisecond
	}
	return time.Second, time.Second, 500 * time.Millisecond, 5 * time.Millisecond
}
