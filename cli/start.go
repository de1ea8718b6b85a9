package cli

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/node"
	"github.com/ragnode/ragnode/scheduler"
)

func startFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "env-file", Usage: "read environment variables from this file (default .env when present)"},
		&cli.StringFlag{Name: "data-dir", Value: "./ragnode-data", Usage: "where the node keeps its identity, Raft log, blobs and chunks", EnvVars: envs("DATA_DIR")},
		&cli.StringFlag{Name: "name", Usage: "node name (default: hostname plus ID prefix)", EnvVars: envs("NAME")},
		&cli.StringFlag{Name: "bind", Value: "127.0.0.1", Usage: "IP to listen on", EnvVars: envs("BIND")},
		&cli.StringFlag{Name: "advertise", Usage: "IP other nodes use to reach this one (default: --bind)", EnvVars: envs("ADVERTISE")},
		&cli.IntFlag{Name: "http-port", Value: node.DefaultHTTPPort, Usage: "HTTP API port", EnvVars: envs("HTTP_PORT")},
		&cli.IntFlag{Name: "raft-port", Value: node.DefaultRaftPort, Usage: "Raft port", EnvVars: envs("RAFT_PORT")},
		&cli.IntFlag{Name: "serf-port", Value: node.DefaultSerfPort, Usage: "Serf gossip port (what --join takes)", EnvVars: envs("SERF_PORT")},
		&cli.StringSliceFlag{Name: "join", Usage: "HOST:SERFPORT of a member to join (repeatable)", EnvVars: envs("JOIN")},
		&cli.DurationFlag{Name: "join-timeout", Value: node.DefaultJoinTimeout, Usage: "keep retrying --join this long", EnvVars: envs("JOIN_TIMEOUT")},
		&cli.IntFlag{Name: "bootstrap-expect", Usage: "wait for N nodes, then bootstrap one cluster with all of them", EnvVars: envs("BOOTSTRAP_EXPECT")},
		&cli.StringFlag{Name: "gossip-key", Usage: "base64 key (16/24/32 bytes) encrypting gossip; see 'ragnode keygen'", EnvVars: envs("GOSSIP_KEY")},
		&cli.StringFlag{Name: "token", Usage: "bootstrap admin bearer token; every client API call must carry it or a role token", EnvVars: envs("TOKEN", "AUTH_TOKEN")},
		&cli.StringSliceFlag{Name: "cors-origins", Usage: "browser origins allowed to call the API, comma-separated or repeated (* for any; default none)", EnvVars: envs("CORS_ORIGINS")},
		&cli.StringFlag{Name: "log-level", Value: "info", Usage: "trace, debug, info, warn, error", EnvVars: envs("LOG_LEVEL")},
		&cli.StringFlag{Name: "timing", Value: "lan", Usage: "failure detection: lan (real networks) or fast (one machine: tests, demos)", EnvVars: envs("TIMING")},
		&cli.DurationFlag{Name: "stabilization-time", Usage: "health a new node must show before it is promoted to voter (default 10s; 1s with --timing fast)", EnvVars: envs("STABILIZATION_TIME")},
		&cli.DurationFlag{Name: "dead-server-timeout", Usage: "remove a voter failed this long (default 30s; 5s with --timing fast)", EnvVars: envs("DEAD_SERVER_TIMEOUT")},
		// GPU and work limits.
		&cli.IntFlag{Name: "gpus", Value: -1, Usage: "declare N virtual GPUs instead of asking NVML (-1: NVML, else none)", EnvVars: envs("GPUS")},
		&cli.StringFlag{Name: "gpu-mem", Usage: "memory of each declared GPU (e.g. 16GiB); overrides NVML's figure", EnvVars: envs("GPU_MEM")},
		&cli.StringFlag{Name: "gpu-reserve", Usage: "memory kept free on each card for other services (vLLM, ...)", EnvVars: envs("GPU_RESERVE")},
		&cli.StringFlag{Name: "task-gpus", Value: "0.25", Usage: "fraction of a GPU each task reserves (0 to 1)", EnvVars: envs("TASK_GPUS", "RAY_NUM_GPUS")},
		&cli.StringFlag{Name: "task-gpu-mem", Usage: "GPU memory each task reserves (e.g. 1GiB), placed by free memory", EnvVars: envs("TASK_GPU_MEM")},
		&cli.IntFlag{Name: "cpu-slots", Usage: "tasks a GPU-less node runs at once (default: CPU count)", EnvVars: envs("CPU_SLOTS")},
		&cli.IntFlag{Name: "pool-size", Usage: "cluster-wide cap on running tasks (0: none)", EnvVars: envs("POOL_SIZE", "RAY_POOL_SIZE")},
		&cli.IntFlag{Name: "max-concurrent", Usage: "cap on tasks running on this node (0: none)", EnvVars: envs("MAX_CONCURRENT")},
		&cli.IntFlag{Name: "max-tasks-per-worker", Usage: "rebuild a worker slot's runner after N tasks (0: never)", EnvVars: envs("MAX_TASKS_PER_WORKER")},
		&cli.DurationFlag{Name: "task-timeout", Value: node.DefaultTaskTimeout, Usage: "fail a task that runs longer", EnvVars: envs("TASK_TIMEOUT")},
		&cli.DurationFlag{Name: "requeue-after", Usage: "requeue a failed node's tasks after this grace (default 10s; 2s with --timing fast)", EnvVars: envs("REQUEUE_AFTER")},
		&cli.IntFlag{Name: "max-attempts", Value: 3, Usage: "runner failures before a task ends failed", EnvVars: envs("MAX_ATTEMPTS")},
		&cli.IntFlag{Name: "max-node-losses", Value: fsm.DefaultMaxNodeLosses, Usage: "nodes (or parser children) a task may lose while running before it fails as a suspected poison document (-1: never)", EnvVars: envs("MAX_NODE_LOSSES")},
		&cli.DurationFlag{Name: "drain-timeout", Value: node.DefaultDrainTimeout, Usage: "on SIGTERM, let running tasks finish this long before handing them back", EnvVars: envs("DRAIN_TIMEOUT")},
		&cli.StringFlag{Name: "placement", Value: "spread", Usage: "spread (across nodes) or binpack", EnvVars: envs("PLACEMENT")},
		&cli.IntFlag{Name: "retain", Value: 100000, Usage: "finished tasks kept in the ledger", EnvVars: envs("RETAIN")},
		&cli.DurationFlag{Name: "retain-age", Usage: "drop finished tasks older than this (0: keep by count only)", EnvVars: envs("RETAIN_AGE")},
		&cli.IntFlag{Name: "max-queued", Usage: "refuse submissions (429, Retry-After) while this many tasks are queued cluster-wide (0: no cap)", EnvVars: envs("MAX_QUEUED")},
		&cli.StringFlag{Name: "max-queued-bytes", Usage: "refuse submissions while queued files hold this much (e.g. 10GiB; empty: no cap)", EnvVars: envs("MAX_QUEUED_BYTES")},
		&cli.IntFlag{Name: "max-queued-per-partition", Usage: "refuse submissions to a partition while it has this many tasks queued (0: no cap)", EnvVars: envs("MAX_QUEUED_PER_PARTITION")},
		&cli.DurationFlag{Name: "upload-idle-timeout", Value: node.DefaultUploadIdleTimeout, Usage: "cut an upload whose body sends nothing for this long, removing what it spooled (0: never)", EnvVars: envs("UPLOAD_IDLE_TIMEOUT")},
		&cli.IntFlag{Name: "max-uploads-per-token", Value: node.DefaultMaxUploadsPerToken, Usage: "uploads one token (one address on a cluster without --token) may have in flight; more get 429 with Retry-After (0: no cap)", EnvVars: envs("MAX_UPLOADS_PER_TOKEN")},
		&cli.StringSliceFlag{Name: "shared-root", Usage: "directory that shared-path submissions may name (repeatable; none: shared paths refused)", EnvVars: envs("SHARED_ROOT")},
		&cli.BoolFlag{Name: "metrics-open", Usage: "serve /metrics without --token (every other route keeps it)", EnvVars: envs("METRICS_OPEN")},
		&cli.BoolFlag{Name: "pprof", Usage: "serve Go profiles on /debug/pprof/ (behind --token)", EnvVars: envs("PPROF")},
		&cli.BoolFlag{Name: "callback-allow-private", Usage: "let upload callback_url name loopback, private and link-local addresses", EnvVars: envs("CALLBACK_ALLOW_PRIVATE")},
		&cli.StringFlag{Name: "runner", Value: "index", Usage: "task body: index (the pipeline), checksum, or sleep:DURATION (benchmarking aid)", EnvVars: envs("RUNNER")},
		&cli.StringFlag{Name: "join-secret", Usage: "cluster secret (16+ characters) a node must hold to join; stands for a gossip key (give it or --gossip-key)", EnvVars: envs("JOIN_SECRET")},
		&cli.BoolFlag{Name: "insecure", Usage: "allow a non-loopback --bind without --gossip-key or --join-secret", EnvVars: envs("INSECURE")},
		&cli.StringFlag{Name: "transition", Usage: "during a rolling restart that turns on TLS or gossip encryption: tls, gossip-accept or gossip-prefer (comma-separated); this node still accepts peers without it (README: Security)", EnvVars: envs("TRANSITION")},
		&cli.StringFlag{Name: "ca-file", Usage: "cluster CA (PEM): with --cert-file and --key-file turns on TLS for Raft, peers and the API", EnvVars: envs("CA_FILE")},
		&cli.StringFlag{Name: "cert-file", Usage: "this node's certificate (see 'ragnode tls cert create'); reloaded on SIGHUP", EnvVars: envs("CERT_FILE")},
		&cli.StringFlag{Name: "key-file", Usage: "key of --cert-file", EnvVars: envs("KEY_FILE")},
		&cli.BoolFlag{Name: "verify-incoming-clients", Usage: "with TLS, require client certificates on the client API too", EnvVars: envs("VERIFY_INCOMING_CLIENTS")},
		&cli.StringFlag{Name: "catalog", Usage: "postgres://... DSN of OpenRAG's catalog database: the leader keeps its partitions and files tables in step with the ledger", EnvVars: envs("CATALOG")},
		&cli.IntFlag{Name: "prefetch", Value: node.DefaultPrefetch, Usage: "at most this many tasks queued on each node beyond its running ones, started the moment a slot frees; a node asks for more than 2 only while its tasks are short against a report round trip (0: none)", EnvVars: envs("PREFETCH")},
		&cli.StringFlag{Name: "memory-high", Usage: "take no new work while this node's resident memory is above this (e.g. 8GiB; empty: no guard)", EnvVars: envs("MEMORY_HIGH")},
		&cli.StringFlag{Name: "scrub-rate", Value: "8MiB", Usage: "re-hash local blobs in the background at most this much per second, quarantining corrupt copies (0: no scrub)", EnvVars: envs("SCRUB_RATE")},
	}
}

func startCommand() *cli.Command {
	return &cli.Command{
		Name:  "start",
		Usage: "run a node (bootstraps a new cluster, or joins one with --join)",
		Flags: groupStartFlags(append(append(startFlags(), indexerFlags()...), parserFlags()...)),
		Action: func(c *cli.Context) error {
			cfg, err := configFromFlags(c)
			if err != nil {
				return err
			}
			if os.Getenv("GOGC") == "" {
				// The ledger is a large, long-lived heap: collecting at 50%
				// growth instead of 100% keeps the resident size near it.
				debug.SetGCPercent(50)
			}
			n, err := node.Start(cfg)
			if err != nil {
				return err
			}
			sig := make(chan os.Signal, 2)
			signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
			stopHUP := reloadOnHUP(n, cfg.Logger)
			defer stopHUP()
			select {
			case s := <-sig:
				cfg.Logger.Info("signal received: restarting-style shutdown", "signal", s.String())
				go func() {
					<-sig
					cfg.Logger.Warn("second signal: exiting now")
					os.Exit(1)
				}()
				// A hard deadline: the drain, a leadership transfer and the
				// stores' close all have their own bounds, but shutdown must
				// end even if one of them does not.
				stopped := make(chan struct{})
				go func() { n.Stop(); close(stopped) }()
				select {
				case <-stopped:
				case <-time.After(cfg.DrainTimeout + stopDeadline):
					cfg.Logger.Warn("shutdown did not finish in time; exiting", "after", cfg.DrainTimeout+stopDeadline)
				}
			case <-n.Done():
			}
			return nil
		},
	}
}

// stopDeadline is how long shutdown may take beyond the drain timeout.
const stopDeadline = 30 * time.Second

// mustBePositive lists the flags where an explicit 0 cannot work (the node
// treats a zero field as "use the default", so it cannot tell on its own).
var mustBePositive = []string{"task-timeout", "max-attempts", "replicas", "chunk-replicas", "embed-batch", "embed-concurrency", "chunk-size", "join-timeout"}

func configFromFlags(c *cli.Context) (node.Config, error) {
	for _, f := range mustBePositive {
		if !c.IsSet(f) {
			continue
		}
		if v := c.Value(f); fmt.Sprint(v) == "0" || fmt.Sprint(v) == "0s" {
			return node.Config{}, fmt.Errorf("--%s must be greater than 0", f)
		}
	}
	level := hclog.LevelFromString(c.String("log-level"))
	if level == hclog.NoLevel {
		return node.Config{}, fmt.Errorf("--log-level %q: want trace, debug, info, warn or error", c.String("log-level"))
	}
	cfg := node.Config{
		DataDir:               c.String("data-dir"),
		Name:                  c.String("name"),
		Bind:                  c.String("bind"),
		Advertise:             c.String("advertise"),
		HTTPPort:              c.Int("http-port"),
		RaftPort:              c.Int("raft-port"),
		SerfPort:              c.Int("serf-port"),
		Join:                  c.StringSlice("join"),
		JoinTimeout:           c.Duration("join-timeout"),
		BootstrapExpect:       c.Int("bootstrap-expect"),
		Token:                 c.String("token"),
		CORSOrigins:           c.StringSlice("cors-origins"),
		Timing:                node.Timing(c.String("timing")),
		DeadServerTimeout:     c.Duration("dead-server-timeout"),
		StabilizationTime:     c.Duration("stabilization-time"),
		CPUSlots:              c.Int("cpu-slots"),
		PoolSize:              c.Int("pool-size"),
		MaxConcurrent:         c.Int("max-concurrent"),
		MaxTasksPerWorker:     c.Int("max-tasks-per-worker"),
		TaskTimeout:           c.Duration("task-timeout"),
		RequeueAfter:          c.Duration("requeue-after"),
		MaxAttempts:           c.Int("max-attempts"),
		MaxNodeLosses:         c.Int("max-node-losses"),
		DrainTimeout:          c.Duration("drain-timeout"),
		RetainCount:           c.Int("retain"),
		RetainMaxAge:          c.Duration("retain-age"),
		GPU:                   gpu.Config{Declared: c.Int("gpus")},
		Pprof:                 c.Bool("pprof"),
		MetricsOpen:           c.Bool("metrics-open"),
		SharedRoots:           c.StringSlice("shared-root"),
		MaxQueued:             c.Int("max-queued"),
		MaxQueuedPerPartition: c.Int("max-queued-per-partition"),
		CallbackAllowPrivate:  c.Bool("callback-allow-private"),
		JoinSecret:            c.String("join-secret"),
		Insecure:              c.Bool("insecure"),
		Transition:            c.String("transition"),
		CAFile:                c.String("ca-file"),
		CertFile:              c.String("cert-file"),
		KeyFile:               c.String("key-file"),
		VerifyIncomingClients: c.Bool("verify-incoming-clients"),
		Logger:                hclog.New(&hclog.LoggerOptions{Name: "ragnode", Level: level, Output: c.App.ErrWriter}),
	}
	if cfg.Timing != node.TimingLAN && cfg.Timing != node.TimingFast {
		return cfg, fmt.Errorf("--timing %q: want lan or fast", cfg.Timing)
	}
	if k := c.String("gossip-key"); k != "" {
		b, err := base64.StdEncoding.DecodeString(k)
		if err != nil {
			return cfg, fmt.Errorf("--gossip-key is not valid base64: %v", err)
		}
		cfg.GossipKey = b
	}
	var err error
	if cfg.TaskMilli, err = gpu.ParseFraction(c.String("task-gpus")); err != nil {
		return cfg, fmt.Errorf("--task-gpus: %w", err)
	}
	for flag, dst := range map[string]*uint64{"gpu-mem": &cfg.GPU.DeclaredMem, "gpu-reserve": &cfg.GPUReserve, "task-gpu-mem": &cfg.TaskMem} {
		if *dst, err = parseSizeFlag(flag, c.String(flag)); err != nil {
			return cfg, err
		}
	}
	if v := c.String("max-queued-bytes"); v != "" {
		b, err := parseSizeFlag("max-queued-bytes", v)
		if err != nil {
			return cfg, err
		}
		cfg.MaxQueuedBytes = int64(b)
	}
	switch d := c.Duration("upload-idle-timeout"); {
	case d < 0:
		return cfg, fmt.Errorf("--upload-idle-timeout must not be negative, got %s", d)
	case d == 0:
		cfg.UploadIdleTimeout = -1 // none; Config's 0 means the default
	default:
		cfg.UploadIdleTimeout = d
	}
	switch k := c.Int("max-uploads-per-token"); {
	case k < 0:
		return cfg, fmt.Errorf("--max-uploads-per-token must not be negative, got %d", k)
	case k == 0:
		cfg.MaxUploadsPerToken = -1 // no cap; Config's 0 means the default
	default:
		cfg.MaxUploadsPerToken = k
	}
	switch k := c.Int("prefetch"); {
	case k < 0:
		return cfg, fmt.Errorf("--prefetch must not be negative, got %d", k)
	case k == 0:
		cfg.Prefetch = -1 // none; Config's 0 means the default
	default:
		cfg.Prefetch = k
	}
	if v := c.String("memory-high"); v != "" {
		b, err := parseSizeFlag("memory-high", v)
		if err != nil {
			return cfg, err
		}
		cfg.MemoryHigh = b
	}
	switch v, err := parseSizeFlag("scrub-rate", c.String("scrub-rate")); {
	case err != nil:
		return cfg, err
	case v == 0:
		cfg.ScrubRate = -1 // none; Config's 0 means the default
	default:
		cfg.ScrubRate = int64(v)
	}
	if cfg.TaskMem > 0 && !c.IsSet("task-gpus") && os.Getenv("RAY_NUM_GPUS") == "" && os.Getenv("RAGNODE_TASK_GPUS") == "" {
		// A memory request replaces the default fraction rather than adding to it.
		cfg.TaskMilli = 0
	}
	if cfg.Placement, err = scheduler.ParsePolicy(c.String("placement")); err != nil {
		return cfg, fmt.Errorf("--placement: %w", err)
	}
	if cfg.Runner, err = node.ParseRunner(c.String("runner")); err != nil {
		return cfg, err
	}
	if err := applyIndexerFlags(c, &cfg); err != nil {
		return cfg, err
	}
	if err := applyParserFlags(c, &cfg); err != nil {
		return cfg, err
	}
	switch k := cfg.MaxNodeLosses; {
	case k == 0:
		return cfg, fmt.Errorf("--max-node-losses 0 would fail every task on a node that dies; want 1 or more, or -1 for no quarantine")
	case k < -1:
		return cfg, fmt.Errorf("--max-node-losses must be -1 (never) or at least 1, got %d", k)
	}
	cfg.Catalog = c.String("catalog")
	return cfg, nil
}

func keygenCommand() *cli.Command {
	return &cli.Command{
		Name:  "keygen",
		Usage: "print a new random gossip encryption key (32 bytes, base64)",
		Action: func(c *cli.Context) error {
			k, err := node.NewGossipKey()
			if err != nil {
				return err
			}
			fmt.Fprintln(c.App.Writer, k)
			return nil
		},
	}
}
