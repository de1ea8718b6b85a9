package store

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// BenchmarkLocalSearchText100k times dense, BM25 and hybrid search over 100k
// chunks of ~150 Zipf-distributed words (a 20k-word vocabulary, like
// prose), and reports the postings count and their memory.
func BenchmarkLocalSearchText100k(b *testing.B) {
	const n, dim, words = 100_000, 384, 150
	l, _ := openTemp(b)
	rng := rand.New(rand.NewPCG(1, 2))
	zipf := rand.NewZipf(rng, 1.1, 2, 20_000)
	text := func(k int) string {
		var sb strings.Builder
		for range k {
			fmt.Fprintf(&sb, "w%d ", zipf.Uint64())
		}
		return sb.String()
	}
	batch := make([]Record, 0, 10_000)
	for i := 0; i < n; i++ {
		v := make([]float32, dim)
		for j := range v {
			v[j] = rng.Float32()*2 - 1
		}
		batch = append(batch, Record{ID: ChunkID("p", fmt.Sprint(i/100), i%100), Partition: "p",
			FileID: fmt.Sprint(i / 100), Index: i % 100, Text: text(words), Vector: v})
		if len(batch) == cap(batch) {
			if err := l.Upsert(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	postings := 0
	for _, p := range l.bm.parts {
		for _, ps := range p.terms {
			postings += len(ps)
		}
	}
	q := make([]float32, dim)
	for j := range q {
		q[j] = rng.Float32()*2 - 1
	}
	qt := text(6)
	for _, mode := range []Mode{ModeDense, ModeBM25, ModeHybrid} {
		b.Run(string(mode), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				hs, err := l.Search(ctx, Query{Vector: q, Text: qt, Mode: mode, TopK: 10})
				if err != nil || len(hs) != 10 {
					b.Fatal(err, len(hs))
				}
			}
			b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/op")
			b.ReportMetric(float64(postings), "postings")
			b.ReportMetric(float64(postings*8)/(1<<20), "postingMiB")
		})
	}
}
