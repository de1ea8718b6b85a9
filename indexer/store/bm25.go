package store

import (
	"math"
	"sync"
)

// BM25 parameters, Milvus's and Lucene's defaults.
const (
	bm25K1 = 1.2
	bm25B  = 0.75
)

// bm25Index is the in-memory inverted index of chunk texts, one per
// partition so that a partition's statistics (document count, average
// length, document frequencies) are its own and DeletePartition drops its
// index whole. It keeps no forward index: removing a chunk re-analyzes the
// chunk's stored text, which is what was indexed. Callers hold Local.mu.
type bm25Index struct {
	parts map[string]*bm25Part
}

// bm25Part is one partition's index. Chunks get a document number, reused
// after deletion so the per-document slices stay as long as the partition.
type bm25Part struct {
	docs     int      // live documents
	totalLen int64    // sum of live document lengths, in tokens
	lens     []uint32 // document number -> length in tokens
	slot     []int32  // document number -> Local slot; -1 when free
	free     []uint32 // free document numbers
	// terms maps a token to its postings; a term's document frequency is
	// the length of its list, so it can never drift from the postings.
	terms map[string][]posting
}

// posting is one (document, term frequency) pair: 8 bytes.
type posting struct {
	doc, tf uint32
}

func newBM25Index() *bm25Index { return &bm25Index{parts: map[string]*bm25Part{}} }

// termCounts analyzes text into token -> count and the document length.
func termCounts(text string) (map[string]uint32, int) {
	counts := map[string]uint32{}
	n := 0
	analyze(text, func(tok string) {
		counts[tok]++
		n++
	})
	return counts, n
}

// add indexes text as a document of partition held at slot and returns
// its document number.
func (x *bm25Index) add(partition string, slot int, text string) uint32 {
	p := x.parts[partition]
	if p == nil {
		p = &bm25Part{terms: map[string][]posting{}}
		x.parts[partition] = p
	}
	counts, n := termCounts(text)
	var doc uint32
	if k := len(p.free); k > 0 {
		doc = p.free[k-1]
		p.free = p.free[:k-1]
		p.lens[doc], p.slot[doc] = uint32(n), int32(slot)
	} else {
		doc = uint32(len(p.lens))
		p.lens = append(p.lens, uint32(n))
		p.slot = append(p.slot, int32(slot))
	}
	for t, c := range counts {
		p.terms[t] = append(p.terms[t], posting{doc, c})
	}
	p.docs++
	p.totalLen += int64(n)
	return doc
}

// remove unindexes document doc of partition, whose indexed text was text.
// A partition already dropped is a no-op.
func (x *bm25Index) remove(partition string, doc uint32, text string) {
	p := x.parts[partition]
	if p == nil || int(doc) >= len(p.slot) || p.slot[doc] < 0 {
		return
	}
	counts, _ := termCounts(text)
	for t := range counts {
		ps := p.terms[t]
		for i := range ps {
			if ps[i].doc == doc {
				// Order within a list does not matter: swap-remove.
				ps[i] = ps[len(ps)-1]
				ps = ps[:len(ps)-1]
				break
			}
		}
		if len(ps) == 0 {
			delete(p.terms, t)
		} else {
			p.terms[t] = ps
		}
	}
	p.docs--
	p.totalLen -= int64(p.lens[doc])
	p.lens[doc], p.slot[doc] = 0, -1
	p.free = append(p.free, doc)
	if p.docs == 0 {
		delete(x.parts, partition)
	}
}

// moved records that document doc of partition now lives at slot.
func (x *bm25Index) moved(partition string, doc uint32, slot int) {
	if p := x.parts[partition]; p != nil && int(doc) < len(p.slot) {
		p.slot[doc] = int32(slot)
	}
}

// dropPartition forgets a partition's index in O(1).
func (x *bm25Index) dropPartition(partition string) { delete(x.parts, partition) }

// score computes the BM25 score of query against every document of the
// given partitions (all when nil) and calls offer for each one that scored
// and that keep(slot) accepts. Statistics are pooled over those
// partitions, so a query over several partitions scores as if they were
// one corpus. A token repeated in the query counts once per occurrence,
// as a sum of term queries does.
func (x *bm25Index) score(query string, partitions []string, keep func(slot int) bool, offer func(slot int, score float64)) {
	qc, _ := termCounts(query)
	if len(qc) == 0 {
		return
	}
	var parts []*bm25Part
	if partitions == nil {
		for _, p := range x.parts {
			parts = append(parts, p)
		}
	} else {
		seen := map[string]bool{}
		for _, name := range partitions {
			if p := x.parts[name]; p != nil && !seen[name] {
				seen[name] = true
				parts = append(parts, p)
			}
		}
	}
	var n, total int64
	for _, p := range parts {
		n += int64(p.docs)
		total += p.totalLen
	}
	if n == 0 {
		return
	}
	avgdl := float64(total) / float64(n)
	weights := make(map[string]float64, len(qc))
	for t, qtf := range qc {
		df := 0
		for _, p := range parts {
			df += len(p.terms[t])
		}
		if df > 0 {
			weights[t] = float64(qtf) * idf(n, df)
		}
	}
	for _, p := range parts {
		// Accumulating in a dense array by document number is several
		// times faster than a map when common terms touch most documents;
		// the filter then runs once per document, not per posting.
		acc := getScratch(len(p.lens))
		for t, w := range weights {
			for _, ps := range p.terms[t] {
				acc[ps.doc] += w * tfNorm(float64(ps.tf), float64(p.lens[ps.doc]), avgdl)
			}
		}
		for doc, sc := range acc {
			if sc > 0 {
				if slot := int(p.slot[doc]); keep(slot) {
					offer(slot, sc)
				}
			}
		}
		putScratch(acc)
	}
}

var scratchPool sync.Pool // *[]float64

// getScratch returns a zeroed []float64 of length n.
func getScratch(n int) []float64 {
	if bp, ok := scratchPool.Get().(*[]float64); ok && cap(*bp) >= n {
		b := (*bp)[:n]
		clear(b)
		return b
	}
	return make([]float64, n)
}

func putScratch(b []float64) { scratchPool.Put(&b) }

// idf is Lucene's BM25 idf, ln(1 + (N - df + 0.5)/(df + 0.5)): always
// positive, so a term in every document still counts a little.
func idf(n int64, df int) float64 {
	return math.Log(1 + (float64(n)-float64(df)+0.5)/(float64(df)+0.5))
}

// tfNorm is BM25's saturated, length-normalised term frequency.
func tfNorm(tf, dl, avgdl float64) float64 {
	if avgdl == 0 {
		return 0
	}
	return tf * (bm25K1 + 1) / (tf + bm25K1*(1-bm25B+bm25B*dl/avgdl))
}
