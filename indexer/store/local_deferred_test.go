package store

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// TestLocalDeferredLoad: a store opened without its index answers Search
// with ErrIndexLoading at once, holds writes until Load, and afterwards
// has both what was on disk and what was written meanwhile. A failed check
// is kept as the answer.
func TestLocalDeferredLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chunks.db")
	first, err := OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	old := rec("p", "old", 0, 1, nil)
	if err := first.Upsert(ctx, []Record{old}); err != nil {
		t.Fatal(err)
	}
	first.Close()

	l, err := OpenLocalDeferred(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if _, err := l.Search(ctx, Query{Vector: old.Vector, TopK: 5}); !errors.Is(err, ErrIndexLoading) {
		t.Fatalf("search before the load: %v", err)
	}
	// A write started before the load lands after it, in the index too.
	check := make(chan struct{})
	loadDone := make(chan error, 1)
	go func() {
		loadDone <- l.Load(func(*bolt.DB) error { <-check; return nil })
	}()
	time.Sleep(50 * time.Millisecond) // the load holds the lock
	fresh := rec("p", "new", 0, 2, nil)
	upserted := make(chan error, 1)
	go func() { upserted <- l.Upsert(ctx, []Record{fresh}) }()
	select {
	case err := <-upserted:
		t.Fatalf("upsert did not wait for the load: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	close(check)
	if err := <-loadDone; err != nil {
		t.Fatal(err)
	}
	if err := <-upserted; err != nil {
		t.Fatal(err)
	}
	if !l.Loaded() {
		t.Fatal("not loaded")
	}
	got := ids(t, l, "p", "")
	if want := wantIDs(old, fresh); len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("after the load: %v, want %v", got, want)
	}
	hs, err := l.Search(ctx, Query{Vector: fresh.Vector, TopK: 1})
	if err != nil || len(hs) != 1 || hs[0].ID != fresh.ID {
		t.Fatalf("search after the load: %+v %v", hs, err)
	}

	// A failed load is the answer from then on.
	l2, err := OpenLocalDeferred(filepath.Join(t.TempDir(), "c.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	boom := errors.New("damaged")
	if err := l2.Load(func(*bolt.DB) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("load: %v", err)
	}
	if _, err := l2.Search(ctx, Query{Vector: fresh.Vector}); !errors.Is(err, boom) {
		t.Fatalf("search after a failed load: %v", err)
	}
}
