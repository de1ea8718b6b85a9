package milvus

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/milvustest"
)

func attemptRecs(n int, label string) []store.Record {
	recs := make([]store.Record, n)
	for i := range recs {
		recs[i] = ragondinRec("p", "f", i, fmt.Sprintf("%s chunk %d", label, i), axis(i))
	}
	return recs
}

// texts returns the file's rows' texts as the server holds them, sorted.
func texts(t *testing.T, srv *milvustest.Server, coll string) []string {
	t.Helper()
	var out []string
	for _, r := range srv.Rows(coll) {
		out = append(out, r["text"].(string))
	}
	slices.Sort(out)
	return out
}

func TestReplaceFileWindowCloses(t *testing.T) {
	addr, srv := milvustest.Target(t)
	coll := collName(t, addr)
	s := openProfile(t, addr, coll, ProfileRagondin, dim)
	if err := s.ReplaceFile(ctx, "p", "f", Fence{Task: "t1", Attempt: 1}, attemptRecs(3, "old")); err != nil {
		t.Fatal(err)
	}
	var inWindow []string
	var windowHits []store.Hit
	if srv != nil {
		var once sync.Once
		srv.BeforeDelete(func(string) {
			once.Do(func() {
				// Between the insert and the delete: both copies stored, a
				// search still answers each chunk once.
				inWindow = texts(t, srv, coll)
				windowHits, _ = s.Search(ctx, store.Query{Vector: axis(0), TopK: 10})
			})
		})
	}
	// A re-index of the file (a new task) with fewer chunks.
	if err := s.ReplaceFile(ctx, "p", "f", Fence{Task: "t2", Attempt: 1}, attemptRecs(2, "new")); err != nil {
		t.Fatal(err)
	}
	if srv != nil {
		srv.BeforeDelete(nil)
		if len(inWindow) != 5 {
			t.Errorf("in the window the server held %v, want old and new rows", inWindow)
		}
		ids := map[string]int{}
		for _, h := range windowHits {
			ids[h.ID]++
		}
		if len(windowHits) != 3 || ids[store.ChunkID("p", "f", 0)] != 1 {
			t.Errorf("a search in the window returned %d hits %v, want each of the 3 chunks once", len(windowHits), ids)
		}
		if got := texts(t, srv, coll); !slices.Equal(got, []string{"new chunk 0", "new chunk 1"}) {
			t.Errorf("after the write the server holds %v", got)
		}
	}
	recs, err := s.FileRecords(ctx, "p", "f")
	if err != nil || len(recs) != 2 || recs[0].Text != "new chunk 0" || recs[1].Text != "new chunk 1" {
		t.Fatalf("after the write: %+v, %v", recs, err)
	}
}

// TestStaleAttemptNeverStays runs two attempts of one task in each order
// and interleaving; only the later attempt's rows may remain.
func TestStaleAttemptNeverStays(t *testing.T) {
	stale, fresh := Fence{Task: "t", Seq: 5, Attempt: 1}, Fence{Task: "t", Seq: 5, Attempt: 2}
	oldTask, newTask := Fence{Task: "a", Seq: 5, Attempt: 3}, Fence{Task: "b", Seq: 6, Attempt: 1}
	for _, c := range []struct {
		name string
		// first runs; when it reaches its first delete, second runs whole
		// (nil: second runs after first).
		first, second Fence
		interleave    bool
	}{
		{"stale then fresh", stale, fresh, false},
		{"fresh then stale", fresh, stale, false},
		{"fresh inside stale's window", stale, fresh, true},
		{"stale inside fresh's window", fresh, stale, true},
		{"old task after new task", newTask, oldTask, false},
		{"old task inside new task's window", newTask, oldTask, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			addr, srv := milvustest.Target(t)
			if c.interleave {
				milvustest.NeedStandIn(t, srv)
			}
			coll := collName(t, addr)
			s := openProfile(t, addr, coll, ProfileRagondin, dim)
			label := func(f Fence) string { return fmt.Sprintf("%s/%d/%d", f.Task, f.Seq, f.Attempt) }
			later := c.first
			if c.second.Seq > later.Seq || c.second.Seq == later.Seq && c.second.Attempt > later.Attempt {
				later = c.second
			}
			var inner error
			if c.interleave {
				// Not a sync.Once: the inner write's own deletes come back
				// here while the outer call is still inside the hook.
				var fired atomic.Bool
				srv.BeforeDelete(func(string) {
					if fired.CompareAndSwap(false, true) {
						inner = s.ReplaceFile(ctx, "p", "f", c.second, attemptRecs(2, label(c.second)))
					}
				})
			}
			if err := s.ReplaceFile(ctx, "p", "f", c.first, attemptRecs(2, label(c.first))); err != nil {
				t.Fatal(err)
			}
			if c.interleave {
				srv.BeforeDelete(nil)
				if inner != nil {
					t.Fatal(inner)
				}
			} else if err := s.ReplaceFile(ctx, "p", "f", c.second, attemptRecs(2, label(c.second))); err != nil {
				t.Fatal(err)
			}
			recs, err := s.FileRecords(ctx, "p", "f")
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, r := range recs {
				got = append(got, r.Text)
			}
			if want := []string{label(later) + " chunk 0", label(later) + " chunk 1"}; !slices.Equal(got, want) {
				t.Fatalf("rows %v, want %v", got, want)
			}
			if srv != nil {
				if n, _ := srv.Count(coll, `file_id == "f"`); n != 2 {
					t.Fatalf("%d rows stored, want 2 (no hidden duplicate)", n)
				}
			}
		})
	}
}

func TestReplaceFileRefusesForeignRecords(t *testing.T) {
	addr, _ := milvustest.Target(t)
	s := openProfile(t, addr, collName(t, addr), ProfileRagondin, dim)
	recs := attemptRecs(1, "x")
	if err := s.ReplaceFile(ctx, "p", "other", Fence{Task: "t"}, recs); err == nil {
		t.Fatal("a record of another file was accepted")
	}
	recs[0].Metadata[kWrite] = "forged"
	if err := s.ReplaceFile(ctx, "p", "f", Fence{Task: "t"}, recs); err == nil {
		t.Fatal("a reserved metadata key was accepted")
	}
}

// A metadata update rewrites rows under their own fence: a stale attempt
// writing afterwards still loses to the attempt that wrote them.
func TestMetadataUpdateKeepsTheFence(t *testing.T) {
	addr, srv := milvustest.Target(t)
	coll := collName(t, addr)
	s := openProfile(t, addr, coll, ProfileRagondin, dim)
	if err := s.ReplaceFile(ctx, "p", "f", Fence{Task: "t", Seq: 1, Attempt: 2}, attemptRecs(2, "fresh")); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateMetadata(ctx, "p", "f", map[string]any{"lang": "it"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ReplaceFile(ctx, "p", "f", Fence{Task: "t", Seq: 1, Attempt: 1}, attemptRecs(2, "stale")); err != nil {
		t.Fatal(err)
	}
	recs, err := s.FileRecords(ctx, "p", "f")
	if err != nil || len(recs) != 2 || recs[0].Text != "fresh chunk 0" || recs[0].Metadata["lang"] != "it" {
		t.Fatalf("rows %+v, %v", recs, err)
	}
	if srv != nil {
		if got := texts(t, srv, coll); !slices.Equal(got, []string{"fresh chunk 0", "fresh chunk 1"}) {
			t.Fatalf("stored %v", got)
		}
	}
}
