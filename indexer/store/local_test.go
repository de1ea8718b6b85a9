package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var ctx = context.Background()

func openTemp(t testing.TB) (*Local, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "chunks.db")
	l, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l, path
}

// rec builds a chunk whose vector points mostly along axis dir.
func rec(part, file string, idx, dir int, meta map[string]any) Record {
	v := make([]float32, 8)
	v[dir%8] = 1
	v[(dir+1)%8] = 0.1
	return Record{
		ID: ChunkID(part, file, idx), Partition: part, FileID: file, Index: idx,
		Text: fmt.Sprintf("%s/%s#%d", part, file, idx), Page: idx + 1,
		Headings: []string{"H1", "H2"}, Vector: v, Metadata: meta,
	}
}

func ids(t *testing.T, s Store, part, file string) []string {
	t.Helper()
	got, err := s.ChunkIDs(ctx, part, file)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func wantIDs(recs ...Record) []string {
	out := []string{}
	for _, r := range recs {
		out = append(out, r.ID)
	}
	slices.Sort(out)
	return out
}

func TestChunkID(t *testing.T) {
	a, b := ChunkID("a", "bc", 0), ChunkID("ab", "c", 0)
	if a == b {
		t.Fatal("length prefix missing")
	}
	if len(a) != 32 || ChunkID("a", "bc", 0) != a || ChunkID("a", "bc", 1) == a {
		t.Fatalf("bad id %q", a)
	}
}

func TestLocalUpsertDeleteSearch(t *testing.T) {
	l, _ := openTemp(t)
	f1 := []Record{rec("p1", "f1", 0, 0, nil), rec("p1", "f1", 1, 1, nil), rec("p1", "f1", 2, 2, nil)}
	f2 := []Record{rec("p1", "f2", 0, 3, nil)}
	p2 := []Record{rec("p2", "f1", 0, 0, nil)}
	for _, batch := range [][]Record{f1, f2, p2} {
		if err := l.Upsert(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	// Re-upsert with new text: no duplicates, content replaced.
	again := rec("p1", "f1", 1, 1, nil)
	again.Text = "new text"
	if err := l.Upsert(ctx, []Record{again, again}); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, l, "", ""); !slices.Equal(got, wantIDs(append(append(f1, f2...), p2...)...)) {
		t.Fatalf("all ids = %v", got)
	}
	hits, err := l.Search(ctx, Query{Vector: again.Vector, TopK: 1})
	if err != nil || len(hits) != 1 || hits[0].Text != "new text" || hits[0].Score < 0.99 {
		t.Fatalf("hits %+v err %v", hits, err)
	}
	if !slices.Equal(hits[0].Headings, []string{"H1", "H2"}) || hits[0].Page != 2 {
		t.Errorf("fields not kept: %+v", hits[0])
	}

	if err := l.DeleteFileFrom(ctx, "p1", "f1", 1); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, l, "p1", "f1"); !slices.Equal(got, wantIDs(f1[0])) {
		t.Fatalf("after DeleteFileFrom: %v", got)
	}
	if got := ids(t, l, "", "f1"); !slices.Equal(got, wantIDs(f1[0], p2[0])) {
		t.Fatalf("file f1 across partitions: %v", got)
	}
	if err := l.DeleteFile(ctx, "p1", "f1"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, l, "p1", ""); !slices.Equal(got, wantIDs(f2...)) {
		t.Fatalf("after DeleteFile: %v", got)
	}
	if err := l.DeletePartition(ctx, "p1"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, l, "", ""); !slices.Equal(got, wantIDs(p2...)) {
		t.Fatalf("after DeletePartition: %v", got)
	}
	// Deleting what is not there is fine.
	if err := l.DeleteFile(ctx, "nope", "nope"); err != nil {
		t.Fatal(err)
	}
}

func TestLocalMoveBetweenFiles(t *testing.T) {
	l, _ := openTemp(t)
	r := rec("p", "a", 0, 0, nil)
	l.Upsert(ctx, []Record{r})
	r.FileID = "b" // same ID, now filed elsewhere
	l.Upsert(ctx, []Record{r})
	if err := l.DeleteFile(ctx, "p", "a"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, l, "p", "b"); len(got) != 1 {
		t.Fatalf("deleting the old file removed the moved chunk: %v", got)
	}
}

func TestLocalFiltersAndMetadata(t *testing.T) {
	l, _ := openTemp(t)
	recs := []Record{
		rec("p1", "a", 0, 0, map[string]any{"filename": "a.pdf", "lang": "en"}),
		rec("p1", "a", 1, 0, map[string]any{"filename": "a.pdf", "lang": "en"}),
		rec("p1", "b", 0, 0, map[string]any{"filename": "b.pdf", "lang": "de"}),
		rec("p2", "c", 0, 0, map[string]any{"filename": "c.pdf", "lang": "en"}),
	}
	if err := l.Upsert(ctx, recs); err != nil {
		t.Fatal(err)
	}
	q := recs[0].Vector
	hitIDs := func(q Query) []string {
		hs, err := l.Search(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, h := range hs {
			out = append(out, h.ID)
		}
		slices.Sort(out)
		return out
	}
	if got := hitIDs(Query{Vector: q, Partitions: []string{"p2"}}); !slices.Equal(got, wantIDs(recs[3])) {
		t.Errorf("partition filter: %v", got)
	}
	if got := hitIDs(Query{Vector: q, Filter: map[string]string{"lang": "en"}}); !slices.Equal(got, wantIDs(recs[0], recs[1], recs[3])) {
		t.Errorf("metadata filter: %v", got)
	}
	if got := hitIDs(Query{Vector: q, Partitions: []string{"p1", "p2"}, Filter: map[string]string{"lang": "de"}}); !slices.Equal(got, wantIDs(recs[2])) {
		t.Errorf("both filters: %v", got)
	}

	if err := l.UpdateMetadata(ctx, "p1", "a", map[string]any{"lang": "fr", "tag": "x", "filename": nil}); err != nil {
		t.Fatal(err)
	}
	if got := hitIDs(Query{Vector: q, Filter: map[string]string{"lang": "fr", "tag": "x"}}); !slices.Equal(got, wantIDs(recs[0], recs[1])) {
		t.Errorf("after update: %v", got)
	}
	hs, _ := l.Search(ctx, Query{Vector: q, Filter: map[string]string{"lang": "fr"}, TopK: 1})
	if len(hs) != 1 || hs[0].Score < 0.99 {
		t.Fatalf("vector lost after metadata update: %+v", hs)
	}
	if _, ok := hs[0].Metadata["filename"]; ok {
		t.Error("nil value should remove the key")
	}
	if got := hitIDs(Query{Vector: q, Filter: map[string]string{"lang": "en"}}); !slices.Equal(got, wantIDs(recs[3])) {
		t.Errorf("other files changed: %v", got)
	}
}

func TestLocalRanking(t *testing.T) {
	l, _ := openTemp(t)
	var recs []Record
	for i := 0; i < 8; i++ {
		recs = append(recs, rec("p", "f", i, i, nil))
	}
	l.Upsert(ctx, recs)
	q := make([]float32, 8)
	q[3], q[4] = 1, 0.5
	hs, err := l.Search(ctx, Query{Vector: q, TopK: 3})
	if err != nil || len(hs) != 3 {
		t.Fatal(hs, err)
	}
	if hs[0].Index != 3 || hs[1].Index != 4 || hs[0].Score < hs[1].Score || hs[1].Score < hs[2].Score {
		t.Errorf("order: %d %d %d", hs[0].Index, hs[1].Index, hs[2].Index)
	}
	if _, err := l.Search(ctx, Query{Vector: []float32{1, 2}}); err == nil {
		t.Error("wrong query dimension accepted")
	}
	bad := rec("p", "g", 0, 0, nil)
	bad.Vector = []float32{1, 2, 3}
	if err := l.Upsert(ctx, []Record{bad}); err == nil || !strings.Contains(err.Error(), "dimension 3") {
		t.Errorf("wrong record dimension: %v", err)
	}
}

func TestLocalPersistence(t *testing.T) {
	l, path := openTemp(t)
	recs := []Record{rec("p", "a", 0, 0, map[string]any{"n": 1.5, "s": "x"}), rec("p", "a", 1, 5, nil), rec("q", "b", 0, 2, nil)}
	l.Upsert(ctx, recs)
	l.DeleteFileFrom(ctx, "p", "a", 1)
	l.Close()

	l2, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if got := ids(t, l2, "", ""); !slices.Equal(got, wantIDs(recs[0], recs[2])) {
		t.Fatalf("after reopen: %v", got)
	}
	hs, _ := l2.Search(ctx, Query{Vector: recs[0].Vector, Filter: map[string]string{"s": "x"}})
	if len(hs) != 1 || hs[0].ID != recs[0].ID || hs[0].Metadata["n"] != 1.5 || hs[0].Score < 0.99 {
		t.Fatalf("hits %+v", hs)
	}
	// The index survived too.
	if err := l2.DeletePartition(ctx, "q"); err != nil {
		t.Fatal(err)
	}
	if got := ids(t, l2, "", ""); !slices.Equal(got, wantIDs(recs[0])) {
		t.Fatalf("after partition delete: %v", got)
	}
}

func TestLocalSecondOpenTimesOut(t *testing.T) {
	old := lockTimeout
	lockTimeout = 50 * time.Millisecond
	defer func() { lockTimeout = old }()
	_, path := openTemp(t)
	start := time.Now()
	_, err := OpenLocal(path)
	if err == nil || !strings.Contains(err.Error(), "locked by another process") {
		t.Fatalf("err = %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("second open did not fail fast")
	}
}

func TestLocalConcurrent(t *testing.T) {
	l, _ := openTemp(t)
	done := make(chan error)
	for w := 0; w < 4; w++ {
		go func(w int) {
			var err error
			for i := 0; i < 20 && err == nil; i++ {
				r := rec(fmt.Sprint("p", w), "f", i, i, nil)
				if err = l.Upsert(ctx, []Record{r}); err == nil {
					_, err = l.Search(ctx, Query{Vector: r.Vector, TopK: 3})
				}
			}
			done <- err
		}(w)
	}
	for w := 0; w < 4; w++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if got := ids(t, l, "", ""); len(got) != 80 {
		t.Fatalf("%d ids", len(got))
	}
}

func BenchmarkLocalSearch100k(b *testing.B) {
	const n, dim = 100_000, 384
	l, _ := openTemp(b)
	rng := rand.New(rand.NewPCG(1, 2))
	batch := make([]Record, 0, 10_000)
	for i := 0; i < n; i++ {
		v := make([]float32, dim)
		for j := range v {
			v[j] = rng.Float32()*2 - 1
		}
		batch = append(batch, Record{ID: ChunkID("p", fmt.Sprint(i/100), i%100), Partition: "p",
			FileID: fmt.Sprint(i / 100), Index: i % 100, Vector: v, Metadata: map[string]any{"filename": "x"}})
		if len(batch) == cap(batch) {
			if err := l.Upsert(ctx, batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	q := make([]float32, dim)
	for j := range q {
		q[j] = rng.Float32()*2 - 1
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		hs, err := l.Search(ctx, Query{Vector: q, TopK: 10})
		if err != nil || len(hs) != 10 {
			b.Fatal(err)
		}
	}
	b.ReportMetric(b.Elapsed().Seconds()*1000/float64(b.N), "ms/op")
}
