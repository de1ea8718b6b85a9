package store

import (
	"context"
	"fmt"
	"runtime"
	"sort"
	"sync"

	bolt "go.etcd.io/bbolt"
)

// Search ranks the chunks that match q's partitions and filter, in the
// mode q.Resolve gives (dense cosine, BM25, or both fused by RRF), and
// returns the TopK best, ties broken by ID. Hits carry no vector. An
// unusable query is a *QueryError.
func (l *Local) Search(ctx context.Context, q Query) ([]Hit, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	k := q.TopK
	if k <= 0 {
		k = DefaultTopK
	}
	mode, qerr := q.Resolve()
	if !l.loaded.Load() {
		// Not waiting: a caller with other nodes to ask should not stand
		// behind a minute of loading.
		return nil, l.notLoaded()
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.slots) == 0 {
		return []Hit{}, nil
	}
	if qerr != nil {
		return nil, qerr
	}
	if mode != ModeBM25 && len(q.Vector) != l.dim {
		return nil, fmt.Errorf("store: query has dimension %d, store holds dimension %d", len(q.Vector), l.dim)
	}
	match := l.matcher(q)
	var best []candidate
	switch mode {
	case ModeDense:
		best = l.denseTop(q.Vector, match, k)
	case ModeBM25:
		best = l.bm25Top(q.Text, q.Partitions, match, k)
	case ModeHybrid:
		depth := q.Depth
		if depth <= 0 {
			depth = max(4*k, MinCandidateDepth)
		}
		rrfk := q.RRFK
		if rrfk <= 0 {
			rrfk = DefaultRRFK
		}
		lists := [][]candidate{l.denseTop(q.Vector, match, depth), l.bm25Top(q.Text, q.Partitions, match, depth)}
		best = l.fuse(lists, rrfk, k)
	}
	return l.load(best)
}

// matcher returns whether the chunk at a slot passes q's partition and
// metadata conditions; every mode filters through it.
func (l *Local) matcher(q Query) func(slot int) bool {
	var parts map[string]bool
	if len(q.Partitions) > 0 {
		parts = make(map[string]bool, len(q.Partitions))
		for _, p := range q.Partitions {
			parts[p] = true
		}
	}
	return func(i int) bool {
		s := &l.slots[i]
		if parts != nil && !parts[s.partition] {
			return false
		}
		if q.Where != nil && !q.Where(s.partition, s.fileID) {
			return false
		}
		for key, want := range q.Filter {
			if got, ok := s.strMeta[key]; !ok || got != want {
				return false
			}
		}
		return true
	}
}

// denseTop scans every vector (exact cosine) and returns the k best
// matching slots, best first.
func (l *Local) denseTop(vector []float32, match func(int) bool, k int) []candidate {
	qv := normalized(vector)
	n := len(l.slots)
	workers := runtime.GOMAXPROCS(0)
	if n < 20000 {
		workers = 1
	}
	heaps := make([]topK, workers)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		lo, hi := n*w/workers, n*(w+1)/workers
		h := &heaps[w]
		h.l, h.k = l, k
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := lo; i < hi; i++ {
				if !match(i) {
					continue
				}
				h.offer(i, dot(qv, l.vecs[i*l.dim:(i+1)*l.dim]))
			}
		}()
	}
	wg.Wait()
	all := heaps[0]
	for _, h := range heaps[1:] {
		for _, c := range h.items {
			all.offer(c.slot, c.score)
		}
	}
	return all.sorted()
}

// bm25Top returns the k best matching slots by BM25 of text, best first;
// chunks sharing no token with the text are not candidates.
func (l *Local) bm25Top(text string, partitions []string, match func(int) bool, k int) []candidate {
	if len(partitions) == 0 {
		partitions = nil
	}
	h := topK{l: l, k: k}
	l.bm.score(text, partitions, match, func(slot int, s float64) { h.offer(slot, float32(s)) })
	return h.sorted()
}

// load reads the records of the ranked slots.
func (l *Local) load(best []candidate) ([]Hit, error) {
	hits := make([]Hit, 0, len(best))
	err := l.db.View(func(tx *bolt.Tx) error {
		chunks := tx.Bucket(bucketChunks)
		for _, c := range best {
			v := chunks.Get([]byte(l.slots[c.slot].id))
			if v == nil {
				return fmt.Errorf("chunk %s missing on disk", l.slots[c.slot].id)
			}
			rec, err := decodeRecord(v)
			if err != nil {
				return err
			}
			rec.Vector = nil
			hits = append(hits, Hit{Record: rec, Score: c.score})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: search: %w", err)
	}
	return hits, nil
}

// sorted returns the heap's candidates best first (the heap is spent).
func (h *topK) sorted() []candidate {
	best := h.items
	sort.Slice(best, func(a, b int) bool { return h.better(best[a], best[b]) })
	return best
}

// notLoaded says why Search cannot answer: a Load under way (with its
// progress) or one that failed.
func (l *Local) notLoaded() error {
	if l.mu.TryRLock() {
		err := l.loadErr
		l.mu.RUnlock()
		if err != nil {
			return err
		}
	}
	done, total := l.LoadProgress()
	if total > 0 {
		return fmt.Errorf("%w (%d of %d chunks); other nodes answer searches meanwhile", ErrIndexLoading, done, total)
	}
	return fmt.Errorf("%w; other nodes answer searches meanwhile", ErrIndexLoading)
}
