package store

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// trec builds a chunk with the given text and a vector along axis dir.
func trec(part, file string, idx, dir int, text string, meta map[string]any) Record {
	r := rec(part, file, idx, dir, meta)
	r.Text = text
	return r
}

func search(t *testing.T, l *Local, q Query) []Hit {
	t.Helper()
	hits, err := l.Search(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	return hits
}

func hitIDs(hits []Hit) []string {
	out := []string{}
	for _, h := range hits {
		out = append(out, h.ID)
	}
	return out
}

func TestAnalyze(t *testing.T) {
	var got []string
	analyze("The Quick-brown fox doesn't jump over 3.14 or 1,000 dogs, e.g. U.S.A; foo_bar 日本 naïve", func(s string) { got = append(got, s) })
	want := []string{"quick", "brown", "fox", "doesn't", "jump", "over", "3.14", "1,000", "dogs", "e.g", "u.s.a", "foo_bar", "日", "本", "naïve"}
	if !slices.Equal(got, want) {
		t.Fatalf("analyze:\n got %q\nwant %q", got, want)
	}
}

// TestBM25HandComputed checks scores against the BM25 formula worked out
// here by hand, with per-partition and pooled statistics.
func TestBM25HandComputed(t *testing.T) {
	l, _ := openTemp(t)
	d1 := trec("p1", "f", 0, 0, "The quick brown fox", nil)     // quick brown fox: 3 tokens
	d2 := trec("p1", "f", 1, 1, "quick QUICK dog", nil)         // quick×2 dog: 3
	d3 := trec("p1", "f", 2, 2, "a lazy brown dog sleeps", nil) // lazy brown dog sleeps: 4
	o := trec("p2", "f", 0, 3, "dog dog dog", nil)              // dog×3: 3
	if err := l.Upsert(ctx, []Record{d1, d2, d3, o}); err != nil {
		t.Fatal(err)
	}
	bm := func(tf, dl, avgdl float64) float64 { return tf * 2.2 / (tf + 1.2*(0.25+0.75*dl/avgdl)) }
	idf := func(n, df float64) float64 { return math.Log(1 + (n-df+0.5)/(df+0.5)) }

	// Partition p1 alone: N=3, avgdl=10/3, df(quick)=2, df(dog)=2.
	avg := 10.0 / 3
	want := map[string]float64{
		d1.ID: idf(3, 2) * bm(1, 3, avg),
		d2.ID: idf(3, 2)*bm(2, 3, avg) + idf(3, 2)*bm(1, 3, avg),
		d3.ID: idf(3, 2) * bm(1, 4, avg),
	}
	check := func(hits []Hit, want map[string]float64, order []string) {
		t.Helper()
		if !slices.Equal(hitIDs(hits), order) {
			t.Fatalf("order %v, want %v", hitIDs(hits), order)
		}
		for _, h := range hits {
			if math.Abs(float64(h.Score)-want[h.ID]) > 1e-5 {
				t.Errorf("%s: score %v, want %v", h.Text, h.Score, want[h.ID])
			}
		}
	}
	hits := search(t, l, Query{Text: "quick dog", Partitions: []string{"p1"}})
	check(hits, want, []string{d2.ID, d1.ID, d3.ID})

	// Both partitions pooled: N=4, avgdl=13/4, df(quick)=2, df(dog)=3.
	avg = 13.0 / 4
	want = map[string]float64{
		d1.ID: idf(4, 2) * bm(1, 3, avg),
		d2.ID: idf(4, 2)*bm(2, 3, avg) + idf(4, 3)*bm(1, 3, avg),
		d3.ID: idf(4, 3) * bm(1, 4, avg),
		o.ID:  idf(4, 3) * bm(3, 3, avg),
	}
	order := []string{d2.ID, d1.ID, o.ID, d3.ID}
	slices.SortFunc(order, func(a, b string) int { return -cmpF(want[a], want[b]) })
	check(search(t, l, Query{Text: "quick dog"}), want, order)

	// Stop words and unknown words alone match nothing.
	if hits := search(t, l, Query{Text: "the of zebra"}); len(hits) != 0 {
		t.Fatalf("stop-word query matched %v", hitIDs(hits))
	}
}

func cmpF(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// indexState summarises the BM25 index for comparison: per partition the
// document count, total length and each term's (chunk ID, tf) postings.
func indexState(l *Local) map[string]string {
	out := map[string]string{}
	for name, p := range l.bm.parts {
		terms := map[string][]string{}
		for t, ps := range p.terms {
			for _, e := range ps {
				terms[t] = append(terms[t], fmt.Sprintf("%s:%d:%d", l.slots[p.slot[e.doc]].id, e.tf, p.lens[e.doc]))
			}
			slices.Sort(terms[t])
		}
		out[name] = fmt.Sprintf("docs=%d len=%d terms=%v", p.docs, p.totalLen, terms)
	}
	return out
}

var words = []string{"raft", "leader", "vote", "log", "term", "snapshot", "index", "chunk", "the", "of", "partition", "file", "Vector", "search"}

func randText(r *rand.Rand) string {
	n := r.IntN(12)
	s := ""
	for range n {
		s += words[r.IntN(len(words))] + " "
	}
	return s
}

// TestBM25IncrementalEqualsRebuild applies random upserts, replacements and
// deletes, then checks the incrementally kept index equals the one rebuilt
// by reopening the file, and that both rank alike.
func TestBM25IncrementalEqualsRebuild(t *testing.T) {
	l, path := openTemp(t)
	r := rand.New(rand.NewPCG(1, 2))
	for step := range 300 {
		part := fmt.Sprintf("p%d", r.IntN(3))
		file := fmt.Sprintf("f%d", r.IntN(4))
		var err error
		switch op := r.IntN(10); {
		case op < 6:
			var batch []Record
			for i := range r.IntN(4) + 1 {
				batch = append(batch, trec(part, file, r.IntN(5)+i, r.IntN(8), randText(r), nil))
			}
			err = l.Upsert(ctx, batch)
		case op < 8:
			err = l.DeleteFileFrom(ctx, part, file, r.IntN(5))
		case op < 9:
			err = l.DeleteFile(ctx, part, file)
		default:
			err = l.DeletePartition(ctx, part)
		}
		if err != nil {
			t.Fatalf("step %d: %v", step, err)
		}
	}
	before := indexState(l)
	queries := []Query{{Text: "raft leader"}, {Text: "snapshot index chunk", Partitions: []string{"p1"}}, {Text: "vector search log", TopK: 50}}
	var hitsBefore [][]Hit
	for _, q := range queries {
		hitsBefore = append(hitsBefore, search(t, l, q))
	}
	l.Close()
	l2, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	after := indexState(l2)
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Fatalf("incremental index differs from rebuild:\n%v\n%v", before, after)
	}
	if len(before) == 0 {
		t.Fatal("random ops left an empty store: test proves nothing")
	}
	for i, q := range queries {
		got := search(t, l2, q)
		if fmt.Sprint(hitIDs(got)) != fmt.Sprint(hitIDs(hitsBefore[i])) {
			t.Fatalf("query %q: %v after reopen, %v before", q.Text, hitIDs(got), hitIDs(hitsBefore[i]))
		}
		for j := range got {
			if got[j].Score != hitsBefore[i][j].Score {
				t.Fatalf("query %q hit %d: score %v after reopen, %v before", q.Text, j, got[j].Score, hitsBefore[i][j].Score)
			}
		}
	}
}

func TestBM25DeleteRemovesPostings(t *testing.T) {
	l, path := openTemp(t)
	a := trec("p1", "f1", 0, 0, "zebra giraffe", nil)
	b := trec("p1", "f2", 0, 1, "giraffe", nil)
	c := trec("p2", "f1", 0, 2, "zebra okapi", nil)
	if err := l.Upsert(ctx, []Record{a, b, c}); err != nil {
		t.Fatal(err)
	}
	if err := l.DeleteFile(ctx, "p1", "f1"); err != nil {
		t.Fatal(err)
	}
	p1 := l.bm.parts["p1"]
	if _, ok := p1.terms["zebra"]; ok || len(p1.terms["giraffe"]) != 1 || p1.docs != 1 || p1.totalLen != 1 {
		t.Fatalf("p1 after delete: %+v", p1)
	}
	if got := hitIDs(search(t, l, Query{Text: "zebra"})); !slices.Equal(got, []string{c.ID}) {
		t.Fatalf("zebra: %v", got)
	}
	// Replacing a text unindexes the old one.
	b.Text = "okapi"
	if err := l.Upsert(ctx, []Record{b}); err != nil {
		t.Fatal(err)
	}
	if hits := search(t, l, Query{Text: "giraffe"}); len(hits) != 0 {
		t.Fatalf("giraffe after replace: %v", hitIDs(hits))
	}
	if err := l.DeletePartition(ctx, "p2"); err != nil {
		t.Fatal(err)
	}
	if _, ok := l.bm.parts["p2"]; ok {
		t.Fatal("p2 index survives DeletePartition")
	}
	if got := hitIDs(search(t, l, Query{Text: "zebra okapi"})); !slices.Equal(got, []string{b.ID}) {
		t.Fatalf("after partition delete: %v", got)
	}
	// Reopen rebuilds the same index.
	l.Close()
	l2, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := hitIDs(search(t, l2, Query{Text: "zebra okapi giraffe"})); !slices.Equal(got, []string{b.ID}) {
		t.Fatalf("after reopen: %v", got)
	}
}

// TestHybridRRFOrder builds rankings whose fusion is worked out by hand.
func TestHybridRRFOrder(t *testing.T) {
	l, _ := openTemp(t)
	// Dense ranking for a query along axis 0: a (axis 0), b (axis 7, whose
	// vector leaks 0.1 onto axis 0), then c and d (orthogonal, tied, by ID).
	a := trec("p", "f", 0, 0, "nothing relevant", nil)
	b := trec("p", "f", 1, 7, "alpha", nil)
	c := trec("p", "f", 2, 3, "alpha beta", nil)
	d := trec("p", "f", 3, 4, "unrelated words here", nil)
	if err := l.Upsert(ctx, []Record{a, b, c, d}); err != nil {
		t.Fatal(err)
	}
	qv := make([]float32, 8)
	qv[0] = 1
	dense := hitIDs(search(t, l, Query{Vector: qv, Mode: ModeDense}))
	cd := []string{c.ID, d.ID}
	slices.Sort(cd)
	if !slices.Equal(dense, append([]string{a.ID, b.ID}, cd...)) {
		t.Fatalf("dense order %v", dense)
	}
	lex := hitIDs(search(t, l, Query{Text: "alpha beta", Mode: ModeBM25}))
	if !slices.Equal(lex, []string{c.ID, b.ID}) {
		t.Fatalf("bm25 order %v", lex)
	}
	// RRF: rank r (from 1) scores 1/(k+r) in each list it appears in.
	for _, k := range []int{1, 100} {
		want := map[string]float64{}
		for _, list := range [][]string{dense, lex} {
			for r, id := range list {
				want[id] += 1 / float64(k+r+1)
			}
		}
		order := []string{a.ID, b.ID, c.ID, d.ID}
		slices.SortFunc(order, func(x, y string) int {
			if s := -cmpF(want[x], want[y]); s != 0 {
				return s
			}
			return cmpS(x, y)
		})
		q := Query{Vector: qv, Text: "alpha beta", RRFK: k}
		if k == DefaultRRFK {
			q.RRFK = 0 // the default
		}
		hits := search(t, l, q)
		if !slices.Equal(hitIDs(hits), order) {
			t.Fatalf("k=%d: hybrid order %v, want %v (scores %v)", k, hitIDs(hits), order, want)
		}
		for _, h := range hits {
			if math.Abs(float64(h.Score)-want[h.ID]) > 1e-6 {
				t.Errorf("k=%d %s: fused score %v, want %v", k, h.Text, h.Score, want[h.ID])
			}
		}
	}
	// Text with no indexable token leaves the dense ranking as it is.
	if got := hitIDs(search(t, l, Query{Vector: qv, Text: "the of and"})); !slices.Equal(got, dense) {
		t.Fatalf("stop-word text: %v, want dense order %v", got, dense)
	}
	// Depth 1 keeps only each list's head: a and c tie at 1/2, by ID.
	got := hitIDs(search(t, l, Query{Vector: qv, Text: "alpha beta", RRFK: 1, Depth: 1}))
	ac := []string{a.ID, c.ID}
	slices.Sort(ac)
	if !slices.Equal(got, ac) {
		t.Fatalf("depth 1: %v, want %v", got, ac)
	}
}

func cmpS(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func TestSearchModesHonourFilters(t *testing.T) {
	l, _ := openTemp(t)
	recs := []Record{
		trec("p1", "f1", 0, 0, "raft leader election", map[string]any{"lang": "en"}),
		trec("p1", "f2", 0, 0, "raft leader election", map[string]any{"lang": "fr"}),
		trec("p2", "f1", 0, 0, "raft leader election", map[string]any{"lang": "en"}),
	}
	if err := l.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	qv := recs[0].Vector
	for _, mode := range []Mode{ModeDense, ModeBM25, ModeHybrid} {
		q := Query{Vector: qv, Text: "raft election", Mode: mode, Partitions: []string{"p1"}, Filter: map[string]string{"lang": "en"}}
		if got := hitIDs(search(t, l, q)); !slices.Equal(got, []string{recs[0].ID}) {
			t.Errorf("%s: %v, want only p1/f1", mode, got)
		}
		q.Partitions, q.Filter = []string{"p2", "p1"}, nil
		if got := search(t, l, q); len(got) != 3 {
			t.Errorf("%s over p1,p2: %d hits", mode, len(got))
		}
	}
}

func TestQueryResolve(t *testing.T) {
	v := []float32{1}
	for _, c := range []struct {
		q    Query
		want Mode
		bad  bool
	}{
		{Query{Vector: v}, ModeDense, false},
		{Query{Vector: v, Text: "x"}, ModeHybrid, false},
		{Query{Text: "x"}, ModeBM25, false},
		{Query{}, ModeDense, true},
		{Query{Text: "x", Mode: ModeDense}, ModeDense, true},
		{Query{Vector: v, Mode: ModeBM25}, ModeBM25, true},
		{Query{Text: "x", Mode: ModeHybrid}, ModeHybrid, true},
		{Query{Vector: v, Text: "x", Mode: "fuzzy"}, "fuzzy", true},
	} {
		m, err := c.q.Resolve()
		var qe *QueryError
		if m != c.want || (err != nil) != c.bad || (err != nil && !errors.As(err, &qe)) {
			t.Errorf("%+v: mode %q err %v", c.q, m, err)
		}
	}
	l, _ := openTemp(t)
	if err := l.Upsert(ctx, []Record{trec("p", "f", 0, 0, "x", nil)}); err != nil {
		t.Fatal(err)
	}
	var qe *QueryError
	if _, err := l.Search(ctx, Query{Text: "x", Mode: ModeHybrid}); !errors.As(err, &qe) {
		t.Fatalf("hybrid without vector: %v", err)
	}
}

func TestFuseHitsAcrossStores(t *testing.T) {
	h := func(id string, s float32) Hit { return Hit{Record: Record{ID: id}, Score: s} }
	dense := []Hit{h("a", 0.9), h("b", 0.8), h("c", 0.1)}
	bm25 := []Hit{h("b", 7), h("c", 5)}
	got := FuseHits([][]Hit{dense, bm25}, 1, 3)
	// b: 1/3 + 1/2; a: 1/2; c: 1/4 + 1/3.
	if len(got) != 3 || got[0].ID != "b" || got[1].ID != "c" || got[2].ID != "a" {
		t.Fatalf("fused order %v", got)
	}
	if want := float32(1.0/3 + 1.0/2); got[0].Score != want {
		t.Fatalf("b scored %v, want %v", got[0].Score, want)
	}
	if got := FuseHits([][]Hit{dense, bm25}, 0, 1); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("default k, top 1: %v", got)
	}
}
