package node

import (
	"math"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"

	gometrics "github.com/hashicorp/go-metrics"
	"github.com/prometheus/client_golang/prometheus"
)

// The go-metrics bridge: hashicorp/raft, serf and memberlist report through
// github.com/hashicorp/go-metrics (v0.6.1 here, see the replace in go.mod),
// and raft only through its package-level global, which has no per-instance
// option. So one sink is installed as that global once per process and its
// collector is registered in every node's registry; with one node per
// process (every deployment) that is exactly the node's own Raft and
// gossip. Several nodes in one process (tests) share it.
//
// go-metrics' own PrometheusSink (github.com/hashicorp/go-metrics/prometheus)
// is not used: it keeps go-metrics' camelCase names, counters without
// _total and timers in milliseconds, which promtool check metrics rejects.
// This sink names every series ragnode_<key in snake_case>: counters get
// _total, samples become summaries (count and sum, no quantiles:
// Prometheus derives rates and means from those) in base units, timers
// (milliseconds in go-metrics) as _seconds, message sizes as _bytes (see
// sampleUnit), gauges keep their value. Keys that raft also
// emits with the peer ID inside the name are blocked: their labelled twins
// (label peer_id) carry the same numbers with bounded names.

// goMetricsBlocked are the legacy per-peer keys (peer ID in the name).
var goMetricsBlocked = []string{
	"raft.replication.appendEntries.rpc.", "raft.replication.appendEntries.logs.",
	"raft.replication.heartbeat.", "raft.replication.installSnapshot.",
}

var (
	bridgeOnce sync.Once
	bridge     *goMetricsSink
)

// goMetricsBridge returns the process's sink, installing it as go-metrics'
// global on first use.
func goMetricsBridge() *goMetricsSink {
	bridgeOnce.Do(func() {
		bridge = newGoMetricsSink()
		conf := gometrics.DefaultConfig("")
		conf.EnableHostname = false
		conf.EnableHostnameLabel = false
		conf.EnableServiceLabel = false
		conf.EnableRuntimeMetrics = false // the Go collector reports those
		conf.EnableTypePrefix = false
		conf.TimerGranularity = time.Millisecond
		conf.FilterDefault = true
		conf.BlockedPrefixes = goMetricsBlocked
		// go-metrics' New never fails (v0.6.1 returns a nil error always);
		// were it to, the bridge would stay empty, not take the node down.
		_, _ = gometrics.NewGlobal(conf, bridge)
	})
	return bridge
}

type gmKind int

const (
	gmGauge gmKind = iota
	gmCounter
	gmSample
)

type gmSeries struct {
	kind   gmKind
	name   string
	help   string
	labels []string // names, sorted
	values []string
	value  float64 // gauge value or counter total
	count  uint64  // samples
	sum    float64 // samples, seconds
}

// goMetricsSink is a go-metrics MetricSink and a Prometheus collector.
type goMetricsSink struct {
	mu       sync.Mutex
	series   map[string]*gmSeries
	families map[string]string // name -> label names, the first seen wins
}

func newGoMetricsSink() *goMetricsSink {
	return &goMetricsSink{series: map[string]*gmSeries{}, families: map[string]string{}}
}

var (
	camelBoundary = regexp.MustCompile(`([a-z0-9])([A-Z])`)
	nonName       = regexp.MustCompile(`[^a-zA-Z0-9_]+`)
)

// snake turns camelCase and any character a Prometheus name cannot hold
// into snake_case.
func snake(s string) string {
	snakeMu.Lock()
	out, ok := snakeMemo[s]
	snakeMu.Unlock()
	if ok {
		return out
	}
	out = camelBoundary.ReplaceAllString(s, "${1}_${2}")
	out = strings.Trim(strings.ToLower(nonName.ReplaceAllString(out, "_")), "_")
	snakeMu.Lock()
	if len(snakeMemo) < snakeMemoMax {
		snakeMemo[s] = out
	}
	snakeMu.Unlock()
	return out
}

// snake runs for every go-metrics sample (Raft and Serf emit several per
// ledger apply): its two regular expressions were a few percent of a busy
// node's CPU. The keys and label names are a small fixed set; the memo is
// bounded all the same.
const snakeMemoMax = 4096

var (
	snakeMu   sync.Mutex
	snakeMemo = map[string]string{}
)

// sampleUnit tells the samples that are not timers: go-metrics has one
// sample type for durations and for sizes, queue lengths and ratios. It
// returns the name's unit suffix and the factor to base units.
func sampleUnit(key []string) (suffix string, scale float64) {
	k := strings.Join(key, ".")
	switch {
	case k == "serf.msgs.received" || k == "serf.msgs.sent" || k == "memberlist.size.remote":
		return "_bytes", 1
	case strings.HasPrefix(k, "serf.queue.") || k == "memberlist.queue.broadcasts" || k == "raft.fsm.applyBatchNum":
		return "", 1
	case strings.HasSuffix(k, ".saturation"):
		return "_ratio", 1
	}
	return "_seconds", 1.0 / 1000 // timers, in TimerGranularity (ms)
}

// promName turns a go-metrics key into a Prometheus name under ragnode_.
func promName(key []string, kind gmKind) string {
	s := "ragnode_" + snake(strings.Join(key, "_"))
	switch kind {
	case gmCounter:
		s = strings.TrimSuffix(s, "_total") + "_total"
	case gmSample:
		unit, _ := sampleUnit(key)
		s = strings.TrimSuffix(strings.TrimSuffix(s, "_ms"), unit) + unit
	}
	return s
}

func (g *goMetricsSink) update(key []string, labels []gometrics.Label, kind gmKind, fn func(*gmSeries)) {
	name := promName(key, kind)
	ls := append([]gometrics.Label(nil), labels...)
	sort.Slice(ls, func(i, j int) bool { return ls[i].Name < ls[j].Name })
	names := make([]string, len(ls))
	values := make([]string, len(ls))
	for i, l := range ls {
		names[i] = snake(l.Name)
		values[i] = l.Value
	}
	sig := strings.Join(names, ",")
	id := name + "\x00" + strings.Join(values, "\x00")
	g.mu.Lock()
	defer g.mu.Unlock()
	if have, ok := g.families[name]; ok && have != sig {
		return // one family must keep one set of label names
	}
	g.families[name] = sig
	s := g.series[id]
	if s == nil {
		s = &gmSeries{kind: kind, name: name, help: "go-metrics " + strings.Join(key, "."), labels: names, values: values}
		g.series[id] = s
	}
	fn(s)
}

// SetGauge implements go-metrics' MetricSink.
func (g *goMetricsSink) SetGauge(key []string, val float32) { g.SetGaugeWithLabels(key, val, nil) }

// SetGaugeWithLabels implements go-metrics' MetricSink.
func (g *goMetricsSink) SetGaugeWithLabels(key []string, val float32, labels []gometrics.Label) {
	g.update(key, labels, gmGauge, func(s *gmSeries) { s.value = float64(val) })
}

// SetPrecisionGauge implements go-metrics' PrecisionGaugeMetricSink.
func (g *goMetricsSink) SetPrecisionGauge(key []string, val float64) {
	g.SetPrecisionGaugeWithLabels(key, val, nil)
}

// SetPrecisionGaugeWithLabels implements go-metrics' PrecisionGaugeMetricSink.
func (g *goMetricsSink) SetPrecisionGaugeWithLabels(key []string, val float64, labels []gometrics.Label) {
	g.update(key, labels, gmGauge, func(s *gmSeries) { s.value = val })
}

// EmitKey implements go-metrics' MetricSink; nothing here emits keys, and a
// key/value stream has no Prometheus form.
func (g *goMetricsSink) EmitKey(key []string, val float32) {}

// IncrCounter implements go-metrics' MetricSink.
func (g *goMetricsSink) IncrCounter(key []string, val float32) {
	g.IncrCounterWithLabels(key, val, nil)
}

// IncrCounterWithLabels implements go-metrics' MetricSink.
func (g *goMetricsSink) IncrCounterWithLabels(key []string, val float32, labels []gometrics.Label) {
	if val < 0 || math.IsNaN(float64(val)) {
		return // a Prometheus counter never goes down
	}
	g.update(key, labels, gmCounter, func(s *gmSeries) { s.value += float64(val) })
}

// AddSample implements go-metrics' MetricSink.
func (g *goMetricsSink) AddSample(key []string, val float32) { g.AddSampleWithLabels(key, val, nil) }

// AddSampleWithLabels implements go-metrics' MetricSink. Samples are timers
// in milliseconds (the configured TimerGranularity) unless sampleUnit
// knows them as sizes, lengths or ratios.
func (g *goMetricsSink) AddSampleWithLabels(key []string, val float32, labels []gometrics.Label) {
	_, scale := sampleUnit(key)
	g.update(key, labels, gmSample, func(s *gmSeries) {
		s.count++
		s.sum += float64(val) * scale
	})
}

// Describe sends nothing: the series are only known as go-metrics reports
// them, which makes this an unchecked collector.
func (g *goMetricsSink) Describe(chan<- *prometheus.Desc) {}

// Collect implements prometheus.Collector.
func (g *goMetricsSink) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.series {
		d := prometheus.NewDesc(s.name, s.help, s.labels, nil)
		switch s.kind {
		case gmGauge:
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, s.value, s.values...)
		case gmCounter:
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, s.value, s.values...)
		case gmSample:
			ch <- prometheus.MustNewConstSummary(d, s.count, s.sum, nil, s.values...)
		}
	}
}
