package embed

import (
	"context"
	"math"
	"slices"
	"strings"
	"testing"
)

func dot(a, b []float32) float64 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return s
}

func TestLexicalDeterministicAndNormalised(t *testing.T) {
	l := NewLexical(0)
	if l.Dim() != 384 || l.Name() != "lexical-384" {
		t.Fatalf("dim %d name %q", l.Dim(), l.Name())
	}
	texts := []string{"The quick brown fox jumps over the lazy dog.", "Raft snapshots", "", "!!! ..."}
	a, err := l.Embed(context.Background(), texts)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := NewLexical(384).Embed(context.Background(), texts)
	for i := range texts {
		if !slices.Equal(a[i], b[i]) {
			t.Errorf("text %d: not deterministic", i)
		}
		if len(a[i]) != 384 {
			t.Errorf("text %d: len %d", i, len(a[i]))
		}
	}
	for i := 0; i < 2; i++ {
		if n := math.Sqrt(dot(a[i], a[i])); math.Abs(n-1) > 1e-5 {
			t.Errorf("text %d: norm %v", i, n)
		}
	}
	for i := 2; i < 4; i++ {
		if dot(a[i], a[i]) != 0 {
			t.Errorf("text %d without words should embed to zero", i)
		}
	}
}

func TestLexicalFolding(t *testing.T) {
	l := NewLexical(128)
	v, _ := l.Embed(context.Background(), []string{"CAFÉ Straße", "café straße", "cafe\u0301 STRASSE"})
	if !slices.Equal(v[0], v[1]) {
		t.Error("case folding should make these equal")
	}
	if d := dot(v[0], v[2]); d < 0.4 {
		t.Errorf("decomposed accent / ss variant too dissimilar: %v", d)
	}
}

func TestLexicalParallelMatchesSerial(t *testing.T) {
	l := NewLexical(64)
	var texts []string
	for i := 0; i < 50; i++ {
		texts = append(texts, strings.Repeat("word", i%5+1)+" number "+string(rune('a'+i%26)))
	}
	all, _ := l.Embed(context.Background(), texts)
	for i, tx := range texts {
		one, _ := l.Embed(context.Background(), []string{tx})
		if !slices.Equal(one[0], all[i]) {
			t.Fatalf("text %d differs between batch and single", i)
		}
	}
}

func TestLexicalRelevance(t *testing.T) {
	docs := []string{
		"Raft elects a leader among the servers. When the leader fails, followers time out and start an election; the candidate with a majority of votes becomes the new leader.",
		"To bake sourdough bread, feed the starter the night before, mix flour, water and salt, let the dough rise slowly and bake it in a hot Dutch oven.",
		"The HNSW index builds a navigable small-world graph over vectors; search walks the graph greedily to find approximate nearest neighbours quickly.",
		"PDF files store text as positioned glyphs; extracting words requires grouping glyphs by their coordinates and inserting spaces where gaps are large.",
		"Kubernetes schedules pods onto nodes according to resource requests, taints and tolerations, and restarts containers that fail their liveness probes.",
	}
	queries := []string{
		"how is a new raft leader elected after a failure",
		"sourdough starter and dough rising",
		"approximate nearest neighbour search with an HNSW graph",
		"extracting text words from PDF glyph positions",
		"how are pods scheduled on kubernetes nodes",
	}
	l := NewLexical(384)
	dv, _ := l.Embed(context.Background(), docs)
	qv, _ := l.Embed(context.Background(), queries)
	for qi, q := range qv {
		best, bestScore := -1, -2.0
		for di, d := range dv {
			if s := dot(q, d); s > bestScore {
				best, bestScore = di, s
			}
		}
		if best != qi {
			t.Errorf("query %q ranked doc %d first (score %.3f), want %d (score %.3f)", queries[qi], best, bestScore, qi, dot(q, dv[qi]))
		}
	}
}

func BenchmarkLexical(b *testing.B) {
	// ~512 tokens: about 380 words of ordinary prose.
	words := strings.Fields(`Raft elects a leader among the servers and replicates a log of
		commands; when the leader fails followers time out and start an election.
		Documents are split into chunks of roughly five hundred tokens, embedded and
		stored with their metadata so that retrieval can filter by partition.`)
	var sb strings.Builder
	for i := 0; i < 380; i++ {
		sb.WriteString(words[(i*7)%len(words)])
		sb.WriteByte(' ')
	}
	chunk := sb.String()
	l := NewLexical(384)
	ctx := context.Background()
	b.Run("single", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := l.Embed(ctx, []string{chunk}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "chunks/s")
	})
	b.Run("batch64", func(b *testing.B) {
		batch := make([]string, 64)
		for i := range batch {
			batch[i] = chunk
		}
		for i := 0; i < b.N; i++ {
			if _, err := l.Embed(ctx, batch); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N*64)/b.Elapsed().Seconds(), "chunks/s")
	})
}
