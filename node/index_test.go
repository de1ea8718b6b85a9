package node

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/transport"
)

// indexCluster runs 3 nodes with the real pipeline (built-in embedder and
// local store) and waits for three voters.
func indexCluster(t *testing.T, mod func(i int, cfg *Config)) (*cluster, []*Node) {
	c := newCluster(t)
	ns := c.startN(3, mod)
	waitFor(t, 20*time.Second, "three voters, all registered", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		v, _ := countVoters(l)
		k := 0
		l.fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return v == 3 && k == 3
	})
	return c, ns
}

func submitFolder(t *testing.T, via *Node, dir, partition string) map[string]string {
	t.Helper()
	ids := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		tv, err := clientOf(via).Submit(ctxT(t, 30*time.Second), transport.SubmitRequest{Partition: partition, FileID: filepath.ToSlash(rel), FileName: info.Name()}, f)
		if err != nil {
			return err
		}
		ids[filepath.ToSlash(rel)] = tv.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

func values(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	sort.Strings(out)
	return out
}

// allChunkIDs returns the union of every live node's store, per node too.
func allChunkIDs(t *testing.T, ns []*Node) (map[string]int, map[string][]string) {
	union := map[string]int{}
	per := map[string][]string{}
	for _, n := range ns {
		select {
		case <-n.Done():
			continue
		default:
		}
		ids, err := n.store.ChunkIDs(context.Background(), "", "")
		if err != nil {
			t.Fatal(err)
		}
		per[n.name] = ids
		for _, id := range ids {
			union[id]++
		}
	}
	return union, per
}

func expectedChunkIDs(final map[string]*fsm.Task) map[string]bool {
	want := map[string]bool{}
	for _, tk := range final {
		if tk.State != fsm.Completed {
			continue
		}
		for i := 0; i < tk.Chunks; i++ {
			want[store.ChunkID(tk.Partition, tk.FileID, i)] = true
		}
	}
	return want
}

func TestClusterIndexesMixedFolderAndSearchFindsIt(t *testing.T) {
	c, ns := indexCluster(t, nil)
	ids := submitFolder(t, ns[1], "../examples/docs", "docs")
	final := waitTerminal(t, c, values(ids), 60*time.Second)
	requireAllCompleted(t, final)
	for _, tk := range final {
		if tk.Chunks == 0 {
			t.Fatalf("%s produced no chunks", tk.FileID)
		}
	}
	// The chunk IDs across the stores are exactly what the completed files produce.
	union, per := allChunkIDs(t, ns)
	want := expectedChunkIDs(final)
	for id := range want {
		if union[id] == 0 {
			t.Fatalf("chunk %s missing from every store", id)
		}
	}
	for id, k := range union {
		if !want[id] {
			t.Fatalf("unexpected chunk %s in the stores", id)
		}
		if k < 2 {
			t.Fatalf("chunk %s held by %d stores, want 2 (chunk replicas)", id, k)
		}
	}
	t.Logf("chunks per node: %d/%d/%d", len(per["n1"]), len(per["n2"]), len(per["n3"]))

	queries := map[string]string{
		"how does a candidate win an election and become leader": "raft-consensus.md",
		"how many indexing workers share one graphics card":      "gpu-sharing.txt",
		"restart servers one at a time and wait until healthy":   "ops/rolling-restart.html",
		"who is oncall for the storage team":                     "ops/contacts.csv",
		"HNSW index with cosine metric":                          "ops/service.json",
	}
	for q, file := range queries {
		for _, via := range ns {
			hits, err := clientOf(via).Search(ctxT(t, 10*time.Second), transport.SearchRequest{Text: q, TopK: 3})
			if err != nil {
				t.Fatal(err)
			}
			if len(hits) == 0 || hits[0].FileID != file {
				t.Fatalf("search %q via %s: want %s first, got %+v", q, via.name, file, hits)
			}
			if hits[0].Metadata["filename"] == nil || hits[0].Partition != "docs" || hits[0].Text == "" {
				t.Fatalf("hit lacks fields: %+v", hits[0])
			}
		}
	}
	// Partition and metadata filters.
	hits, err := clientOf(ns[0]).Search(ctxT(t, 10*time.Second), transport.SearchRequest{Text: "leader election", Partitions: []string{"nope"}, TopK: 3})
	if err != nil || len(hits) != 0 {
		t.Fatalf("search of an empty partition: %v %v", err, hits)
	}
}

func TestTaskRunTwiceLeavesOneCopyOfEachChunk(t *testing.T) {
	c, ns := indexCluster(t, nil)
	ids := submitFolder(t, ns[0], "../examples/docs", "p")
	final := waitTerminal(t, c, values(ids), 60*time.Second)
	requireAllCompleted(t, final)
	before, _ := allChunkIDs(t, ns)
	// Run every task's pipeline again on every node, as a slow node whose
	// attempt was superseded would.
	for _, tk := range final {
		data, err := ns[0].readFile(context.Background(), *tk)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			res, err := n.pipe.Run(context.Background(), indexer.Input{TaskID: tk.ID, Partition: tk.Partition, FileID: tk.FileID,
				FileName: tk.File.Name, Data: data, Metadata: tk.Metadata, GPU: -1}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if res.Chunks != tk.Chunks {
				t.Fatalf("rerun of %s gave %d chunks, ledger says %d", tk.FileID, res.Chunks, tk.Chunks)
			}
		}
	}
	after, per := allChunkIDs(t, ns)
	want := expectedChunkIDs(final)
	for id := range after {
		if !want[id] {
			t.Fatalf("rerun created unexpected chunk %s", id)
		}
	}
	for name, list := range per {
		seen := map[string]bool{}
		for _, id := range list {
			if seen[id] {
				t.Fatalf("%s holds chunk %s twice", name, id)
			}
			seen[id] = true
		}
		if len(list) > len(want) {
			t.Fatalf("%s holds %d chunks after running everything, at most %d exist", name, len(list), len(want))
		}
	}
	if len(before) != len(want) {
		t.Fatalf("before rerun: %d distinct chunks, want %d", len(before), len(want))
	}
	// Re-indexing a file with fewer chunks trims the surplus.
	md := final[ids["raft-consensus.md"]]
	tv, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: md.FileID, FileName: "raft-consensus.md"},
		strings.NewReader("# Raft\n\nA short replacement about leaders and terms."))
	if err != nil {
		t.Fatal(err)
	}
	f2 := waitTerminal(t, c, []string{tv.ID}, 30*time.Second)
	requireAllCompleted(t, f2)
	if f2[tv.ID].Chunks >= md.Chunks {
		t.Fatalf("replacement has %d chunks, original %d", f2[tv.ID].Chunks, md.Chunks)
	}
	for _, n := range ns {
		waitFor(t, 5*time.Second, n.name+" trims the re-indexed file", func() bool {
			got, _ := n.store.ChunkIDs(context.Background(), "p", md.FileID)
			return len(got) <= f2[tv.ID].Chunks
		})
	}
	hits, _ := clientOf(ns[2]).Search(ctxT(t, 10*time.Second), transport.SearchRequest{Text: "majority of votes candidate", TopK: 10})
	for _, h := range hits {
		if h.FileID == md.FileID && strings.Contains(h.Text, "majority of votes") {
			t.Fatalf("search serves the old version's text: %q", h.Text)
		}
	}
}

// Chosen behaviour: chunks are written to --chunk-replicas (2) nodes, so a
// node that dies does not take its chunks out of search at all.
func TestDeadNodeChunksStaySearchableFromReplica(t *testing.T) {
	c, ns := indexCluster(t, nil)
	ids := submitFolder(t, ns[0], "../examples/docs", "p")
	final := waitTerminal(t, c, values(ids), 60*time.Second)
	requireAllCompleted(t, final)
	victim := ns[2]
	if victim == c.leader() {
		victim = ns[1]
	}
	victim.Kill()
	var via *Node
	for _, n := range c.live() {
		via = n
	}
	waitFor(t, 10*time.Second, "gossip to notice the death", func() bool {
		ms, _ := clientOf(via).Members(ctxT(t, 2*time.Second))
		for _, m := range ms {
			if m.ID == victim.ID() {
				return m.SerfStatus == "failed"
			}
		}
		return false
	})
	requireSearchable(t, via, ids, "after "+victim.name+" died")
}

// requireSearchable checks that a search for each file's opening words,
// through via, returns that file among the hits.
func requireSearchable(t *testing.T, via *Node, ids map[string]string, when string) {
	t.Helper()
	for file := range ids {
		hits, err := clientOf(via).Search(ctxT(t, 10*time.Second), transport.SearchRequest{Text: file + " " + firstWords(t, file), TopK: 20})
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, h := range hits {
			found = found || h.FileID == file
		}
		if !found {
			t.Fatalf("%s unsearchable %s", file, when)
		}
	}
}

func firstWords(t *testing.T, rel string) string {
	b, err := os.ReadFile(filepath.Join("../examples/docs", rel))
	if err != nil {
		t.Fatal(err)
	}
	w := strings.Fields(string(b))
	if len(w) > 30 {
		w = w[:30]
	}
	return strings.Join(w, " ")
}

// The converter hook runs with CUDA_VISIBLE_DEVICES set to the GPU the
// ledger allocated, and its output is what gets indexed.
func TestConverterSeesAllocatedGPU(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.GPU.Declared = 2
		cfg.TaskMilli = 600 // one task per card; the converter sleeps so both run at once, on GPUs 0 and 1
		cfg.Indexer.Converters = []string{`pdf=sh -c "sleep 1; echo converted on gpu $CUDA_VISIBLE_DEVICES from $(wc -c < {in}) bytes > {out}"`}
	})
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	var ids []string
	for i := 0; i < 2; i++ {
		tv, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: fmt.Sprintf("scan-%d.pdf", i), FileName: "scan.pdf"},
			strings.NewReader("%PDF-1.4 not really a pdf, the converter handles it"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tv.ID)
	}
	final := waitTerminal(t, c, ids, 30*time.Second)
	requireAllCompleted(t, final)
	seen := map[string]bool{}
	for _, tk := range final {
		hits, err := ns[0].Search(ctxT(t, 5*time.Second), transport.SearchRequest{Text: "converted on gpu", Partitions: []string{"p"}, TopK: 5})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range hits {
			if h.FileID == tk.FileID {
				seen[strings.TrimSpace(h.Text)] = true
			}
		}
	}
	if !seen["converted on gpu 0 from 51 bytes"] && !seen["converted on gpu 1 from 51 bytes"] {
		t.Fatalf("converter output not indexed with its GPU: %v", seen)
	}
	if len(seen) != 2 {
		t.Fatalf("two tasks on two cards should see GPUs 0 and 1: %v", seen)
	}
}

func TestSharedPathSubmission(t *testing.T) {
	dir := t.TempDir()
	c, ns := indexCluster(t, func(_ int, cfg *Config) { cfg.SharedRoots = []string{dir} })
	p := filepath.Join(dir, "nfs-doc.md")
	if err := os.WriteFile(p, []byte("# Shared storage\n\nEvery node mounts the same NFS export."), 0o644); err != nil {
		t.Fatal(err)
	}
	// Outside the root, directly or through a link inside it: refused.
	secret := filepath.Join(t.TempDir(), "key")
	if err := os.WriteFile(secret, []byte("private"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(secret, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"/etc/passwd", secret, filepath.Join(dir, "link"), dir + "/../" + filepath.Base(dir) + "/../x"} {
		_, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: "bad", FileName: "bad.txt", SharedPath: bad}, nil)
		if !transport.IsStatus(err, http.StatusForbidden) && !transport.IsStatus(err, http.StatusBadRequest) {
			t.Fatalf("shared path %s: %v, want 403", bad, err)
		}
		if bad != dir+"/../"+filepath.Base(dir)+"/../x" && !transport.IsStatus(err, http.StatusForbidden) {
			t.Fatalf("shared path %s: %v, want 403", bad, err)
		}
	}
	tv, err := clientOf(ns[1]).Submit(ctxT(t, 10*time.Second), transport.SubmitRequest{Partition: "p", FileID: "nfs-doc.md", FileName: "nfs-doc.md", SharedPath: p}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tv.Hash != "" {
		t.Fatal("a shared-path submission stored a blob")
	}
	requireAllCompleted(t, waitTerminal(t, c, []string{tv.ID}, 30*time.Second))
	// ns[2] may apply the completion a moment after the leader did.
	var hits []transport.Hit
	waitFor(t, 10*time.Second, "the file to be searchable through another node", func() bool {
		hits, err = ns[2].Search(ctxT(t, 5*time.Second), transport.SearchRequest{Text: "NFS export mounted by every node", TopK: 1})
		return err == nil && len(hits) == 1 && hits[0].FileID == "nfs-doc.md"
	})
}

func aliveChunkHolders(n *Node, partition, fileID string) int {
	k := 0
	n.fsm.View(func(s *fsm.State) {
		f := s.Files[fsm.FileKey(partition, fileID)]
		if f == nil {
			return
		}
		for _, h := range f.ChunkHolders {
			if nd := s.Nodes[h]; nd != nil && nd.Status == fsm.NodeAlive {
				k++
			}
		}
	})
	return k
}

// A lost copy is made again, so losing one node after another (each after
// the repair) never makes a completed file unsearchable.
func TestChunkCopiesRepairedAfterNodeLossAndLeave(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(4, nil)
	waitFor(t, 20*time.Second, "four registered nodes", func() bool {
		l := c.leader()
		k := 0
		if l != nil {
			l.fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		}
		return k == 4
	})
	ids := submitFolder(t, ns[0], "../examples/docs", "p")
	requireAllCompleted(t, waitTerminal(t, c, values(ids), 60*time.Second))
	l := c.mustLeader(t)
	for file := range ids {
		if k := aliveChunkHolders(l, "p", file); k != 2 {
			t.Fatalf("%s has %d recorded chunk holders, want 2", file, k)
		}
	}
	allRepaired := func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		for file := range ids {
			if aliveChunkHolders(l, "p", file) < 2 {
				return false
			}
		}
		return true
	}
	// One node leaves (hands its copies off), then another dies.
	var leaver, victim *Node
	for _, n := range c.live() {
		if n == c.leader() {
			continue
		}
		if leaver == nil {
			leaver = n
		} else if victim == nil {
			victim = n
		}
	}
	if err := clientOf(leaver).Leave(ctxT(t, 60*time.Second)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "copies complete after the leave", allRepaired)
	victim.Kill()
	waitFor(t, 10*time.Second, "the death noticed", func() bool {
		l := c.leader()
		st := ""
		if l != nil {
			l.fsm.View(func(s *fsm.State) { st = s.Nodes[victim.ID()].Status })
		}
		return st == fsm.NodeFailed
	})
	waitFor(t, 30*time.Second, "copies repaired after the death", allRepaired)
	via := c.mustLeader(t)
	requireSearchable(t, via, ids, "after a leave and a death")
}
