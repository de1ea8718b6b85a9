package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer/store"
)

// holdIndexLoads makes every chunk index load wait until the returned
// release is called (or its node stops).
func holdIndexLoads(t *testing.T) (release func()) {
	ch := make(chan struct{})
	hook := func(stop <-chan struct{}) {
		select {
		case <-ch:
		case <-stop:
		}
	}
	indexLoadHook.Store(&hook)
	var once bool
	release = func() {
		if !once {
			once = true
			close(ch)
		}
	}
	t.Cleanup(func() {
		release()
		indexLoadHook.Store(nil)
	})
	return release
}

func tagOf(n *Node, key string) string { return n.serf.LocalMember().Tags[key] }

// TestStatusBeforeIndexLoads: a node whose chunk store holds thousands of
// chunks is in its cluster and answers status while its index has not
// loaded; its own search answers 503 saying why; once the load ends it
// searches.
func TestStatusBeforeIndexLoads(t *testing.T) {
	cfg := baseConfig(t, "big")
	const chunks = 5000
	pre, err := store.OpenLocal(filepath.Join(cfg.DataDir, "chunks.db"))
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]store.Record, chunks)
	for i := range recs {
		v := make([]float32, 384)
		v[i%384], v[(i+1)%384] = 1, 0.5
		recs[i] = store.Record{ID: store.ChunkID("p", fmt.Sprint("f", i/50), i%50), Partition: "p", FileID: fmt.Sprint("f", i/50),
			Index: i % 50, Text: fmt.Sprintf("chunk %d of a sizeable store", i), Vector: v}
	}
	if err := pre.Upsert(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	pre.Close()

	release := holdIndexLoads(t)
	c := newCluster(t)
	t0 := time.Now()
	n := c.start(cfg)
	st, err := clientOf(n).Status(ctxT(t, 5*time.Second))
	if err != nil {
		t.Fatalf("status while the index loads: %v", err)
	}
	waitFor(t, 5*time.Second-time.Since(t0), "a leader while the index loads", func() bool {
		st, err = clientOf(n).Status(ctxT(t, 5*time.Second))
		return err == nil && st.LeaderID != ""
	})
	t.Logf("status with a leader %s after start, index not loaded", time.Since(t0).Round(time.Millisecond))
	if got := tagOf(n, tagIndex); got != "loading" {
		t.Fatalf("gossiped index tag %q while loading", got)
	}
	q := store.Query{Vector: recs[7].Vector, TopK: 3}
	_, err = n.LocalSearch(context.Background(), q)
	if errs.KindOf(err) != errs.Unavailable || !strings.Contains(err.Error(), "still loading") {
		t.Fatalf("local search while loading: %v", err)
	}
	if _, err := n.chunks.Search(context.Background(), q); errs.KindOf(err) != errs.Unavailable {
		t.Fatalf("search on a lone loading node: %v, want 503", err)
	}

	release()
	waitFor(t, 30*time.Second, "the index to load", func() bool { return tagOf(n, tagIndex) == "" })
	hits, err := n.LocalSearch(context.Background(), q)
	if err != nil || len(hits) == 0 || hits[0].Score < 0.99 {
		t.Fatalf("local search after the load: %+v, %v", hits, err)
	}
}

// TestSearchSkipsLoadingPeer: a node restarted with its index loading is
// left out of its peers' search fan-out, and a search through it is
// answered by the others.
func TestSearchSkipsLoadingPeer(t *testing.T) {
	c, ns := indexCluster(t, nil)
	ids := submitFolder(t, ns[0], "../examples/docs", "docs")
	requireAllCompleted(t, waitTerminal(t, c, values(ids), 60*time.Second))
	requireSearchable(t, ns[0], ids, "before the restart")

	slow := ns[1]
	slow.Stop()
	release := holdIndexLoads(t)
	slow = c.restart(slow.name)
	waitFor(t, 15*time.Second, "the others to see it loading", func() bool {
		for _, p := range ns[0].peers.searchable() {
			if p.ID == slow.ID() {
				return false
			}
		}
		return len(ns[0].peers.alive()) == 2
	})
	_, serr := slow.LocalSearch(context.Background(), store.Query{Text: "raft", TopK: 3})
	if errs.KindOf(serr) != errs.Unavailable {
		t.Fatalf("the loading node's own search: %v", serr)
	}
	requireSearchable(t, slow, ids, "through a node whose index loads")
	requireSearchable(t, ns[0], ids, "while a peer's index loads")

	release()
	waitFor(t, 30*time.Second, "the load to end", func() bool { return tagOf(slow, tagIndex) == "" })
	waitFor(t, 15*time.Second, "the peers to ask it again", func() bool {
		for _, p := range ns[0].peers.searchable() {
			if p.ID == slow.ID() {
				return true
			}
		}
		return false
	})
	var n int
	slow.fsm.View(func(s *fsm.State) { n = len(s.Files) })
	if n == 0 {
		t.Fatal("the restarted node's ledger lost its files")
	}
}

// TestDamagedChunkStoreFoundByTheLoad: damage in chunks.db no longer keeps
// the node out of its cluster; the load finds it, names the file and the
// remedy, gossips the failure, and the store is not read again.
func TestDamagedChunkStoreFoundByTheLoad(t *testing.T) {
	cfg := baseConfig(t, "damaged")
	path := filepath.Join(cfg.DataDir, "chunks.db")
	writeChunkStore(t, path)
	scribble(t, path, 8<<10)

	c := newCluster(t)
	n := c.start(cfg)
	if _, err := clientOf(n).Status(ctxT(t, 5*time.Second)); err != nil {
		t.Fatalf("status: %v", err)
	}
	waitFor(t, 30*time.Second, "the load to fail", func() bool { return tagOf(n, tagIndex) == "failed" })
	_, err := n.LocalSearch(context.Background(), store.Query{Text: "word", TopK: 3})
	wantDamaged(t, err, path, storeChunks, "move its data directory aside")
	rec := store.Record{ID: "c00000", Partition: "p", FileID: "f000", Text: "word", Vector: []float32{1, 0, 0, 0}}
	if err := n.store.Upsert(context.Background(), []store.Record{rec}); !errors.Is(err, ErrDamagedStore) {
		t.Fatalf("write to a damaged store: %v", err)
	}
}
