package node

import (
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/indexer/store/milvustest"
)

func TestLiveRecordsKeepsOnlyTheLiveVersion(t *testing.T) {
	lf := liveFile{file: &fsm.File{}, task: "t2", chunks: 2}
	rec := func(i int, task string) store.Record {
		return store.Record{ID: fmt.Sprint(i, task), Index: i, Metadata: map[string]any{indexer.MetaTask: task}}
	}
	got, complete := lf.liveRecords([]store.Record{rec(1, "t2"), rec(0, "t1"), rec(2, "t2"), {Index: 0}})
	if complete || len(got) != 1 || got[0].ID != "1t2" {
		t.Fatalf("stale and trimmed copies kept: %v complete=%v", got, complete)
	}
	got, complete = lf.liveRecords([]store.Record{rec(1, "t2"), rec(0, "t2")})
	if !complete || len(got) != 2 || got[0].Index != 0 || got[1].Index != 1 {
		t.Fatalf("live set %v complete=%v", got, complete)
	}
	if (liveFile{file: &fsm.File{}, chunks: 1}).accepts(rec(0, "")) {
		t.Fatal("a file with no live task accepted a chunk")
	}
}

func TestVersionTimeIsTheTaskSubmission(t *testing.T) {
	s := &fsm.State{Tasks: map[string]*fsm.Task{"t1": {ID: "t1", Submitted: 5}}}
	f := &fsm.File{Updated: 9}
	if got := versionTime(s, "t1", f); got != 5 {
		t.Fatalf("versionTime = %d; want the submission 5", got)
	}
	if got := versionTime(s, "gone", f); got != 9 {
		t.Fatalf("versionTime of a trimmed task = %d; want the file's time 9", got)
	}
}

// Every node answers a file's chunk list and each extract, including the
// node that holds no copy (chunk replicas 2 of 3): it asks the holders.
func TestCompatChunksAndExtractsFromEveryNode(t *testing.T) {
	_, ns := indexCluster(t, nil)
	cc := compatClient{t: t, base: "http://" + ns[0].HTTPAddr()}
	text := "# Lease\n\nThe tenant pays rent monthly.\n\n## Repairs\n\nThe landlord repairs the roof."
	code, body := cc.upload("POST", "legal", "lease", "lease.md", text, `{"author":"ana"}`)
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("add: %d %s", code, body)
	}
	taskID := m[2]
	cc.waitState(taskID, "COMPLETED")
	var live int
	var holders []string
	ns[0].fsm.View(func(s *fsm.State) {
		f := s.Files[fsm.FileKey("legal", "lease")]
		live, holders = f.LiveChunks, f.ChunkHolders
	})
	if live == 0 || len(holders) != 2 {
		t.Fatalf("live chunks %d, holders %v", live, holders)
	}
	// created_at is the version's submission, not the file's last change.
	tv, err := clientOf(ns[0]).Task(ctxT(t, 5*time.Second), taskID)
	if err != nil {
		t.Fatal(err)
	}
	created := time.Unix(0, tv.Submitted).UTC().Format("2006-01-02T15:04:05.000000")
	for _, n := range ns {
		cc := compatClient{t: t, base: "http://" + n.HTTPAddr()}
		code, body := cc.do("GET", "/partition/legal/file/lease", nil, "")
		var fv struct {
			Metadata  map[string]any      `json:"metadata"`
			Documents []map[string]string `json:"documents"`
		}
		if json.Unmarshal([]byte(body), &fv); code != 200 || len(fv.Documents) != live || fv.Metadata["author"] != "ana" ||
			fv.Metadata["source"] != "lease.md" || fv.Metadata["file_size"] == nil || fv.Metadata["page"] == nil ||
			fv.Metadata["created_at"] != created {
			t.Fatalf("node %s: file = %d %s (want %d documents)", n.cfg.Name, code, body, live)
		}
		var texts []string
		for _, d := range fv.Documents {
			u, err := url.Parse(d["link"])
			if err != nil || !strings.HasPrefix(u.Path, "/extract/") {
				t.Fatalf("link %q", d["link"])
			}
			code, body := cc.do("GET", u.Path, nil, "")
			var ex struct {
				Content  string         `json:"page_content"`
				Metadata map[string]any `json:"metadata"`
			}
			if json.Unmarshal([]byte(body), &ex); code != 200 || ex.Metadata["file_id"] != "lease" || ex.Metadata["_id"] != strings.TrimPrefix(u.Path, "/extract/") {
				t.Fatalf("node %s: extract %s = %d %s", n.cfg.Name, u.Path, code, body)
			}
			texts = append(texts, ex.Content)
		}
		if all := strings.Join(texts, " "); !strings.Contains(all, "tenant pays rent") || !strings.Contains(all, "repairs the roof") {
			t.Fatalf("node %s: extracts %q", n.cfg.Name, texts)
		}
		code, body = cc.do("GET", "/partition/legal/chunks?file_id=lease&include_embedding=false", nil, "")
		var lc struct {
			Chunks []map[string]any `json:"chunks"`
		}
		if json.Unmarshal([]byte(body), &lc); code != 200 || len(lc.Chunks) != live {
			t.Fatalf("node %s: chunks = %d %s", n.cfg.Name, code, body)
		}
		code, body = cc.do("GET", "/extract/"+strings.Repeat("0", 32), nil, "")
		if code != 404 || body != fmt.Sprintf(`{"detail":"Extract '%s' not found."}`, strings.Repeat("0", 32)) {
			t.Fatalf("node %s: unknown extract = %d %s", n.cfg.Name, code, body)
		}
	}
	// A finished task cannot be cancelled; the ledger says why.
	code, body = cc.do("DELETE", "/indexer/task/"+taskID, nil, "")
	if code != 409 || body != fmt.Sprintf(`{"detail":"Task '%s' is already COMPLETED and cannot be cancelled."}`, taskID) {
		t.Fatalf("cancel completed = %d %s", code, body)
	}
	// After a delete, the old chunk links are gone even where copies linger.
	code, _ = cc.do("GET", "/partition/legal/file/lease", nil, "")
	_, body = cc.do("GET", "/partition/legal/chunks?file_id=lease&limit=1&include_embedding=true", nil, "")
	var lc struct {
		Total  int              `json:"total"`
		Chunks []map[string]any `json:"chunks"`
	}
	if json.Unmarshal([]byte(body), &lc); code != 200 || lc.Total != live || len(lc.Chunks) != 1 || lc.Chunks[0]["metadata"].(map[string]any)["vector"] == nil {
		t.Fatalf("limited chunks with embedding: %s", body)
	}
	link := lc.Chunks[0]["link"].(string)
	u, _ := url.Parse(link)
	if code, _ := cc.do("DELETE", "/indexer/partition/legal/file/lease", nil, ""); code != 204 {
		t.Fatalf("delete = %d", code)
	}
	if code, body := cc.do("GET", u.Path, nil, ""); code != 404 {
		t.Fatalf("extract of deleted file = %d %s", code, body)
	}
}

// DELETE /indexer/task/{id} stops a running task; every compat view then
// reads CANCELLED.
func TestCompatCancelRunningTask(t *testing.T) {
	br := &blockRunner{started: make(chan string, 4), ended: make(chan error, 4)}
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.Runner = func() (Runner, error) { return br, nil }
	})
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	cc := compatClient{t: t, base: "http://" + ns[0].HTTPAddr()}
	code, body := cc.upload("POST", "p", "slow", "slow.txt", "some text", "")
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("add: %d %s", code, body)
	}
	id := m[2]
	select {
	case <-br.started:
	case <-time.After(10 * time.Second):
		t.Fatal("task never started")
	}
	code, body = cc.do("DELETE", "/indexer/task/"+id, nil, "")
	if code != 200 || body != fmt.Sprintf(`{"message":"Cancellation signal sent for task %s"}`, id) {
		t.Fatalf("cancel = %d %s", code, body)
	}
	select {
	case <-br.ended:
	case <-time.After(5 * time.Second):
		t.Fatal("cancel did not reach the runner")
	}
	_, body = cc.do("GET", "/indexer/task/"+id, nil, "")
	// openrag links an error for a FAILED task only.
	if !strings.Contains(body, `"task_state":"CANCELLED"`) || strings.Contains(body, `"error_url"`) {
		t.Fatalf("task after cancel: %s", body)
	}
	code, body = cc.do("DELETE", "/indexer/task/"+id, nil, "")
	if code != 409 || body != fmt.Sprintf(`{"detail":"Task '%s' is already CANCELLED and cannot be cancelled."}`, id) {
		t.Fatalf("second cancel = %d %s", code, body)
	}
	_, body = cc.do("GET", "/queue/info", nil, "")
	if !strings.Contains(body, `"total_cancelled":1`) || !strings.Contains(body, `"total_failed":0`) {
		t.Fatalf("queue info: %s", body)
	}
	_, body = cc.do("GET", "/queue/tasks?status=cancelled", nil, "")
	var qt struct {
		Tasks []map[string]any `json:"tasks"`
		Total int              `json:"total"`
	}
	if json.Unmarshal([]byte(body), &qt); qt.Total != 1 || len(qt.Tasks) != 1 || qt.Tasks[0]["task_id"] != id {
		t.Fatalf("queue tasks: %s", body)
	}
	_, body = cc.do("GET", "/indexer/task/"+id+"/logs", nil, "")
	if !strings.Contains(body, "Task queued (filename=slow.txt, size=9).") || !strings.Contains(body, "WARNING - Task cancelled.") {
		t.Fatalf("logs: %s", body)
	}
}

// With one shared store (Milvus, here its fake) the chunk views read it
// directly, and the ledger still decides what is live.
func TestCompatChunksWithSharedStore(t *testing.T) {
	addr, _ := milvustest.Start(t)
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.Indexer.VDB, cfg.Indexer.VDBAddr = "milvus", addr
	})
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	cc := compatClient{t: t, base: "http://" + ns[0].HTTPAddr()}
	code, body := cc.upload("POST", "p", "doc", "doc.md", "# Title\n\nShared stores answer extracts too.", "")
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("add: %d %s", code, body)
	}
	cc.waitState(m[2], "COMPLETED")
	_, body = cc.do("GET", "/partition/p/file/doc", nil, "")
	var fv struct {
		Documents []map[string]string `json:"documents"`
	}
	if json.Unmarshal([]byte(body), &fv); len(fv.Documents) == 0 {
		t.Fatalf("file: %s", body)
	}
	u, _ := url.Parse(fv.Documents[0]["link"])
	code, body = cc.do("GET", u.Path, nil, "")
	if code != 200 || !strings.Contains(body, "Shared stores answer extracts too.") {
		t.Fatalf("extract = %d %s", code, body)
	}
	if code, _ := cc.do("DELETE", "/indexer/partition/p/file/doc", nil, ""); code != 204 {
		t.Fatalf("delete = %d", code)
	}
	if code, body := cc.do("GET", u.Path, nil, ""); code != 404 {
		t.Fatalf("extract after delete = %d %s", code, body)
	}
}
