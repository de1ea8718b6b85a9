package node

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
)

// metrics is one node's Prometheus registry. It is per node, never the
// global default, because tests run several nodes in one process and each
// must report only its own counters.
//
// Two kinds of series: ledger gauges (tasks by state, queue depth, GPU and
// CPU allocation, members) read at scrape time from this node's copy of the
// replicated ledger, so every node reports the same cluster-wide values;
// and this node's own counters (completions, failures and stage durations
// of the tasks its workers ran, leader changes and requeues it observed,
// repairs it made as leader), which sum across nodes.
type metrics struct {
	reg           *prometheus.Registry
	completions   prometheus.Counter
	failures      prometheus.Counter
	requeues      prometheus.Counter
	leaderChanges prometheus.Counter
	// raftLeaderChanges counts elections as this node's Raft saw them
	// (leader_churn.go), leaderless gaps included; leaderChanges counts
	// what the ledger scans happened to see.
	raftLeaderChanges prometheus.Counter
	stageSeconds      *prometheus.HistogramVec
	repairs           *prometheus.CounterVec
	deps              *depMetrics // metrics_instrument.go
}

func newMetrics() *metrics {
	m := &metrics{
		reg: prometheus.NewRegistry(),
		completions: prometheus.NewCounter(prometheus.CounterOpts{Name: "ragnode_task_completions_total",
			Help: "Tasks this node's workers completed (observed since start)."}),
		failures: prometheus.NewCounter(prometheus.CounterOpts{Name: "ragnode_task_failures_total",
			Help: "Tasks that ended failed on this node's workers (observed since start)."}),
		requeues: prometheus.NewCounter(prometheus.CounterOpts{Name: "ragnode_task_requeues_total",
			Help: "Requeues (attempt increments) this node observed in the ledger."}),
		leaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "ragnode_leader_changes_total",
			Help: "Leader changes this node observed."}),
		raftLeaderChanges: prometheus.NewCounter(prometheus.CounterOpts{Name: "ragnode_raft_leader_changes_total",
			Help: "Leader changes (elections, a return to the same leader after a leaderless gap included) this node's Raft observed since start."}),
		stageSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ragnode_stage_duration_seconds",
			Help:    "Time tasks run by this node's workers spent in each pipeline stage (timed by the worker).",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 10)}, []string{"stage"}),
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ragnode_repairs_total",
			Help: "Blob and chunk-copy repair calls this node made as leader."}, []string{"kind", "result"}),
	}
	m.reg.MustRegister(m.completions, m.failures, m.requeues, m.leaderChanges, m.raftLeaderChanges, m.stageSeconds, m.repairs,
		collectors.NewGoCollector(), goMetricsBridge())
	m.deps = newDepMetrics(m.reg)
	return m
}

func (m *metrics) handler() http.Handler {
	// ContinueOnError: a series the go-metrics bridge could not express
	// must not cost the scrape everything else.
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError})
}

// stageWatch times the stages of one run on this node's workers; the
// pipeline reports each stage as it enters it, and end closes the last.
type stageWatch struct {
	h     *prometheus.HistogramVec
	mu    sync.Mutex
	stage string
	since time.Time
}

func (m *metrics) stageWatch() *stageWatch { return &stageWatch{h: m.stageSeconds} }

func (w *stageWatch) enter(stage string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if stage == w.stage {
		return
	}
	now := time.Now()
	if w.stage != "" {
		w.h.WithLabelValues(w.stage).Observe(now.Sub(w.since).Seconds())
	}
	w.stage, w.since = stage, now
}

func (w *stageWatch) end() { w.enter("") }

// ledgerCollector reads the ledger and Raft at scrape time.
type ledgerCollector struct{ n *Node }

var (
	descTasks      = prometheus.NewDesc("ragnode_tasks", "Tasks in the ledger by state.", []string{"state"}, nil)
	descQueue      = prometheus.NewDesc("ragnode_queue_depth", "Queued tasks waiting for a slot.", nil, nil)
	descGPUMilli   = prometheus.NewDesc("ragnode_gpu_milli_allocated", "Milli-GPUs allocated to tasks on a card.", []string{"node", "gpu"}, nil)
	descGPUTotal   = prometheus.NewDesc("ragnode_gpu_milli_capacity", "Milli-GPUs a card offers (1000 per card; a gauge, so not named _total).", []string{"node", "gpu"}, nil)
	descGPUMem     = prometheus.NewDesc("ragnode_gpu_memory_allocated_bytes", "GPU memory allocated to tasks on a card.", []string{"node", "gpu"}, nil)
	descGPUMemTot  = prometheus.NewDesc("ragnode_gpu_memory_total_bytes", "Memory of a card.", []string{"node", "gpu"}, nil)
	descCPUUsed    = prometheus.NewDesc("ragnode_cpu_slots_used", "CPU task slots in use on a GPU-less node.", []string{"node"}, nil)
	descCPUTotal   = prometheus.NewDesc("ragnode_cpu_slots", "CPU task slots of a GPU-less node.", []string{"node"}, nil)
	descMembers    = prometheus.NewDesc("ragnode_members", "Serf members by status, as this node sees them.", []string{"status"}, nil)
	descRaftState  = prometheus.NewDesc("ragnode_raft_state", "1 for this node's current Raft state.", []string{"state"}, nil)
	descRaftTerm   = prometheus.NewDesc("ragnode_raft_term", "Current Raft term.", nil, nil)
	descRaftCommit = prometheus.NewDesc("ragnode_raft_commit_index", "Raft commit index.", nil, nil)
	descRaftApply  = prometheus.NewDesc("ragnode_raft_applied_index", "Raft applied index.", nil, nil)
	descChurn      = prometheus.NewDesc("ragnode_raft_election_churn", "1 while leader changes in the last 10 minutes exceed the churn threshold (status is then not healthy).", nil, nil)
	descLeaderless = prometheus.NewDesc("ragnode_raft_leaderless_longest_seconds", "Longest stretch without a known leader in the last 10 minutes, as this node saw it.", nil, nil)
)

// Describe lists the descriptors without collecting: registration happens
// before Raft and Serf exist.
func (c ledgerCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descTasks, descQueue, descGPUMilli, descGPUTotal, descGPUMem, descGPUMemTot,
		descCPUUsed, descCPUTotal, descMembers, descRaftState, descRaftTerm, descRaftCommit, descRaftApply,
		descPartTasks, descBacklog, descContact, descChurn, descLeaderless} {
		ch <- d
	}
}

func (c ledgerCollector) Collect(ch chan<- prometheus.Metric) {
	n := c.n
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	n.fsm.View(func(s *fsm.State) {
		tot := n.totalsFor(s) // metrics_cache.go
		counts := tot.counts
		for _, st := range fsm.TaskStates {
			gauge(descTasks, float64(counts[st]), string(st))
		}
		gauge(descQueue, float64(s.QueuedCount()))
		for id, nd := range s.Nodes {
			if nd.Status == fsm.NodeLeft {
				continue
			}
			name := nd.Name
			if name == "" {
				name = id
			}
			if len(nd.GPUs) == 0 {
				gauge(descCPUUsed, float64(s.CPUUsed(id)), name)
				gauge(descCPUTotal, float64(nd.CPUSlots), name)
			}
			for i, g := range nd.GPUs {
				milli, mem := s.GPUUsage(id, i)
				idx := strconv.Itoa(g.Index)
				gauge(descGPUMilli, float64(milli), name, idx)
				gauge(descGPUTotal, float64(gpu.MilliPerGPU), name, idx)
				gauge(descGPUMem, float64(mem), name, idx)
				gauge(descGPUMemTot, float64(g.MemTotal), name, idx)
			}
		}
		c.collectCluster(ch, s, tot)
	})
	byStatus := map[string]int{"alive": 0, "failed": 0, "left": 0}
	for _, m := range n.serf.Members() {
		byStatus[serfStatus(m.Status)]++
	}
	for st, v := range byStatus {
		gauge(descMembers, float64(v), st)
	}
	cur := n.raft.State()
	for _, st := range []raft.RaftState{raft.Follower, raft.Candidate, raft.Leader, raft.Shutdown} {
		v := 0.0
		if st == cur {
			v = 1
		}
		gauge(descRaftState, v, st.String())
	}
	stats := n.raft.Stats()
	for d, k := range map[*prometheus.Desc]string{descRaftTerm: "term", descRaftCommit: "commit_index", descRaftApply: "applied_index"} {
		v, _ := strconv.ParseUint(stats[k], 10, 64)
		gauge(d, float64(v))
	}
	lh := n.lead.history.summary(time.Now())
	churn := 0.0
	if lh.churn {
		churn = 1
	}
	gauge(descChurn, churn)
	gauge(descLeaderless, lh.longest.Seconds())
}
