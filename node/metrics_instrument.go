package node

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/embed"
	"github.com/ragnode/ragnode/indexer/store"
)

// Latency and error series of the embedder, the vector store and the
// runner, wrapped around them once at start-up (indexer.go) so the pipeline
// and the stores stay free of metrics code. A call its own context
// cancelled (a cancelled or displaced task) is timed but not counted as an
// error: the dependency did not fail.

var ioBuckets = prometheus.ExponentialBuckets(0.001, 4, 10) // 1 ms .. ~4.4 min

type depMetrics struct {
	embedSeconds   prometheus.Histogram
	embedErrors    prometheus.Counter
	embedTexts     prometheus.Counter
	storeSeconds   *prometheus.HistogramVec
	storeErrors    *prometheus.CounterVec
	runnerFailures *prometheus.CounterVec
}

func newDepMetrics(reg *prometheus.Registry) *depMetrics {
	d := &depMetrics{
		embedSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "ragnode_embedder_request_duration_seconds",
			Help: "Time of one embedder call (a batch of texts) on this node.", Buckets: ioBuckets}),
		embedErrors: prometheus.NewCounter(prometheus.CounterOpts{Name: "ragnode_embedder_errors_total",
			Help: "Embedder calls on this node that failed."}),
		embedTexts: prometheus.NewCounter(prometheus.CounterOpts{Name: "ragnode_embedder_texts_total",
			Help: "Texts this node sent to the embedder."}),
		storeSeconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "ragnode_vector_store_request_duration_seconds",
			Help: "Time of one vector-store operation on this node (write: a file's chunks to every copy).", Buckets: ioBuckets}, []string{"op"}),
		storeErrors: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ragnode_vector_store_errors_total",
			Help: "Vector-store operations on this node that failed."}, []string{"op"}),
		runnerFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "ragnode_runner_failures_total",
			Help: "Task runs on this node's workers that failed, retried or not, by reason (timeout, permanent, error)."}, []string{"reason"}),
	}
	for _, op := range []string{"write", "search"} {
		d.storeSeconds.WithLabelValues(op)
		d.storeErrors.WithLabelValues(op)
	}
	for _, r := range []string{"timeout", "permanent", "error"} {
		d.runnerFailures.WithLabelValues(r)
	}
	reg.MustRegister(d.embedSeconds, d.embedErrors, d.embedTexts, d.storeSeconds, d.storeErrors, d.runnerFailures)
	return d
}

// failed tells whether err is the dependency's failure rather than the
// caller giving up.
func failed(ctx context.Context, err error) bool {
	return err != nil && !(ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)))
}

// runFailed counts one failed run by reason.
func (m *metrics) runFailed(reason string) { m.deps.runnerFailures.WithLabelValues(reason).Inc() }

type meteredEmbedder struct {
	embed.Embedder
	d *depMetrics
}

// instrumentEmbedder wraps an embedder with latency and error series.
func (m *metrics) instrumentEmbedder(e embed.Embedder) embed.Embedder {
	return meteredEmbedder{Embedder: e, d: m.deps}
}

func (e meteredEmbedder) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	start := time.Now()
	v, err := e.Embedder.Embed(ctx, texts)
	e.d.embedSeconds.Observe(time.Since(start).Seconds())
	e.d.embedTexts.Add(float64(len(texts)))
	if failed(ctx, err) {
		e.d.embedErrors.Inc()
	}
	return v, err
}

type meteredChunks struct {
	chunkStore
	d *depMetrics
}

// instrumentChunks wraps the vector-store strategy's writes and searches.
func (m *metrics) instrumentChunks(c chunkStore) chunkStore {
	return meteredChunks{chunkStore: c, d: m.deps}
}

func (c meteredChunks) observe(ctx context.Context, op string, start time.Time, err error) {
	c.d.storeSeconds.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if failed(ctx, err) {
		c.d.storeErrors.WithLabelValues(op).Inc()
	}
}

func (c meteredChunks) WriteFile(ctx context.Context, w indexer.Write) ([]string, error) {
	start := time.Now()
	h, err := c.chunkStore.WriteFile(ctx, w)
	c.observe(ctx, "write", start, err)
	return h, err
}

func (c meteredChunks) Search(ctx context.Context, q store.Query) ([]store.Hit, error) {
	start := time.Now()
	h, err := c.chunkStore.Search(ctx, q)
	c.observe(ctx, "search", start, err)
	return h, err
}
