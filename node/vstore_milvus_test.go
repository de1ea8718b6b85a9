package node

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/indexer/store/milvustest"
	"github.com/ragnode/ragnode/transport"
)

// A node writing RAGondin's collection: rows carry the task and attempt,
// RAGondin's metadata keys are top-level dynamic fields, a re-index
// replaces the file's rows without leaving a second copy, and /search runs
// Milvus's hybrid search.
func TestRagondinProfileThroughANode(t *testing.T) {
	addr, srv := milvustest.Start(t)
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.Indexer.VDB, cfg.Indexer.VDBAddr, cfg.Indexer.VDBSchema = "milvus", addr, "ragondin"
	})
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	if srv.Schema("vdb_test") == nil {
		t.Fatal("the ragondin profile did not create vdb_test")
	}
	cc := compatClient{t: t, base: "http://" + ns[0].HTTPAddr()}
	doc := "# Raft\n\nThe leader replicates the log to followers.\n\n# Gossip\n\nSerf spreads membership by gossip."
	code, body := cc.upload("POST", "p", "doc", "doc.md", doc, `{"lang": "en"}`)
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("add: %d %s", code, body)
	}
	cc.waitState(m[2], "COMPLETED")
	rows := srv.Rows("vdb_test")
	if len(rows) == 0 {
		t.Fatal("no rows written")
	}
	first := len(rows)
	for _, r := range rows {
		var meta map[string]any
		if err := json.Unmarshal(r["$meta"].([]byte), &meta); err != nil {
			t.Fatal(err)
		}
		if meta["ragnode_task"] != m[2] || meta["ragnode_attempt"] != float64(1) || meta["filename"] != "doc.md" || meta["lang"] != "en" ||
			meta["source"] != "doc.md" || meta["file_size"] != float64(len(doc)) || meta["created_at"] == nil || meta["page"] == nil {
			t.Fatalf("row metadata %v", meta)
		}
		if r["partition"] != "p" || r["file_id"] != "doc" {
			t.Fatalf("row %v", r)
		}
	}
	hits, err := clientOf(ns[0]).Search(ctxT(t, 10*time.Second), transport.SearchRequest{Text: "leader replicates log", TopK: 3})
	if err != nil || len(hits) == 0 || !strings.Contains(hits[0].Text, "leader replicates") {
		t.Fatalf("hybrid search: %v, %v", hits, err)
	}
	if srv.HybridSearches() == 0 {
		t.Fatal("/search did not use Milvus's hybrid search")
	}
	// Re-index the file with other content: the old task's rows go.
	code, body = cc.upload("PUT", "p", "doc", "doc.md", "# Only\n\nOne short section now.", "")
	m2 := taskURL.FindStringSubmatch(body)
	if code != 202 && code != 201 || m2 == nil {
		t.Fatalf("replace: %d %s", code, body)
	}
	cc.waitState(m2[2], "COMPLETED")
	rows = srv.Rows("vdb_test")
	for _, r := range rows {
		if !strings.Contains(string(r["$meta"].([]byte)), m2[2]) {
			t.Fatalf("a row of the old task survived the re-index: %v (had %d rows before)", r, first)
		}
	}
	if len(rows) == 0 {
		t.Fatal("the re-index left no rows")
	}
}
