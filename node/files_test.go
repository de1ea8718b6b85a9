package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// blobFiles lists what a node's blob store holds: stored blobs and any
// upload left behind in its temp directory.
func blobFiles(t *testing.T, n *Node) []string {
	out, err := n.blobs.List()
	if err != nil {
		t.Fatal(err)
	}
	tmp, _ := os.ReadDir(filepath.Join(n.cfg.DataDir, "blobs", "tmp"))
	for _, e := range tmp {
		out = append(out, "tmp/"+e.Name())
	}
	return out
}

func setDrainAll(t *testing.T, via *Node, ns []*Node, on bool) {
	t.Helper()
	for _, n := range ns {
		res, err := via.Apply(ctxT(t, 5*time.Second), fsm.Command{Type: fsm.CmdSetDrain, NodeID: n.ID(), Draining: on, Error: "operator"})
		if err != nil || res.Err != "" {
			t.Fatalf("drain %s: %v %s", n.name, err, res.Err)
		}
	}
}

func aliveBlobHolders(n *Node, hash string) int {
	k := 0
	n.fsm.View(func(s *fsm.State) {
		if b := s.Blobs[hash]; b != nil {
			k = len(aliveHolders(s, b.Holders))
		}
	})
	return k
}

func TestUploadSurvivesUploaderDeathAndIsReReplicated(t *testing.T) {
	c, ns := indexCluster(t, nil)
	l := c.mustLeader(t)
	var uploader *Node
	for _, n := range ns {
		if n != l {
			uploader = n
		}
	}
	// Nothing may run yet: drain everyone so the task waits in the queue.
	setDrainAll(t, l, ns, true)
	tv, err := clientOf(uploader).Submit(ctxT(t, 10*time.Second), submitReq("p", "raft.md"), strings.NewReader("# Raft\n\nLeaders replicate the log to followers."))
	if err != nil {
		t.Fatal(err)
	}
	if k := aliveBlobHolders(l, tv.Hash); k != 2 {
		t.Fatalf("upload acknowledged with %d holders, want 2", k)
	}
	uploader.Kill()
	var rest []*Node
	for _, n := range ns {
		if n != uploader {
			rest = append(rest, n)
		}
	}
	setDrainAll(t, l, rest, false)
	waitFor(t, 10*time.Second, "uploader marked failed", func() bool {
		st := ""
		l.fsm.View(func(s *fsm.State) { st = s.Nodes[uploader.ID()].Status })
		return st == fsm.NodeFailed
	})
	final := waitTerminal(t, c, []string{tv.ID}, 30*time.Second)
	requireAllCompleted(t, final)
	// The dead holder is replaced: two alive holders again.
	waitFor(t, 20*time.Second, "blob re-replicated to two alive holders", func() bool {
		l := c.leader()
		return l != nil && aliveBlobHolders(l, tv.Hash) == 2
	})
	for _, n := range rest {
		if !n.blobs.Has(tv.Hash) {
			t.Fatalf("%s does not hold the blob after re-replication", n.name)
		}
	}
}

func TestOversizeUploadGets413AndLeavesNothing(t *testing.T) {
	_, ns := indexCluster(t, func(_ int, cfg *Config) { cfg.MaxFileSize = 1024 })
	big := strings.Repeat("too big ", 400)
	_, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), submitReq("p", "big.txt"), strings.NewReader(big))
	if !transport.IsStatus(err, http.StatusRequestEntityTooLarge) {
		t.Fatalf("oversize upload: %v, want 413", err)
	}
	for _, n := range ns {
		if files := blobFiles(t, n); len(files) != 0 {
			t.Fatalf("%s kept %v after a refused upload", n.name, files)
		}
		if len(taskStates(n)) != 0 {
			t.Fatalf("%s has a task for a refused upload", n.name)
		}
	}
	// Unsupported type: 415 with the supported list, nothing stored.
	_, err = clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), submitReq("p", "x.gif"), bytes.NewReader([]byte("GIF89a0000")))
	if !transport.IsStatus(err, http.StatusUnsupportedMediaType) || !strings.Contains(err.Error(), "pdf") {
		t.Fatalf("gif upload: %v, want 415 listing supported types", err)
	}
}

func TestDeletingLastFileRemovesBlobOnEveryHolder(t *testing.T) {
	c, ns := indexCluster(t, func(_ int, cfg *Config) { cfg.OrphanBlobGrace = 3 * time.Second })
	body := "# Shared\n\nThe same bytes under two names."
	a, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), submitReq("p", "a.md"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, err := clientOf(ns[1]).Submit(ctxT(t, 10*time.Second), submitReq("p", "b.md"), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if a.Hash != b.Hash {
		t.Fatal("same bytes, different blobs")
	}
	requireAllCompleted(t, waitTerminal(t, c, []string{a.ID, b.ID}, 30*time.Second))
	holders := func() int {
		k := 0
		for _, n := range ns {
			if n.blobs.Has(a.Hash) {
				k++
			}
		}
		return k
	}
	if holders() < 2 {
		t.Fatalf("blob on %d nodes, want at least 2", holders())
	}
	// A file with a blob of its own, deleted after a.md: once its blob is
	// gone everywhere, the collection has run past a.md's deletion. (It
	// may come and go between two janitor passes: the orphan sweep, with
	// the grace shortened here, removes it then.)
	other, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), submitReq("p", "c.md"), strings.NewReader("# Alone\n\nOnly this file has these bytes."))
	if err != nil {
		t.Fatal(err)
	}
	requireAllCompleted(t, waitTerminal(t, c, []string{other.ID}, 30*time.Second))
	if err := ns[2].DeleteFile(ctxT(t, 10*time.Second), "p", "a.md"); err != nil {
		t.Fatal(err)
	}
	if err := ns[2].DeleteFile(ctxT(t, 10*time.Second), "p", "c.md"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "c.md's blob gone from every holder", func() bool {
		for _, n := range ns {
			if n.blobs.Has(other.Hash) {
				return false
			}
		}
		return true
	})
	if holders() < 2 {
		t.Fatal("blob deleted while another file still uses it")
	}
	if err := ns[2].DeleteFile(ctxT(t, 10*time.Second), "p", "b.md"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "blob gone from every holder", func() bool { return holders() == 0 })
	// And the chunks are gone from every store.
	waitFor(t, 10*time.Second, "chunks of deleted files gone", func() bool {
		union, _ := allChunkIDs(t, ns)
		return len(union) == 0
	})
}

// compatClient speaks the RAGondin API over real HTTP.
type compatClient struct {
	t    *testing.T
	base string
}

func (cc compatClient) do(method, path string, body io.Reader, ctype string) (int, string) {
	cc.t.Helper()
	req, err := http.NewRequest(method, cc.base+path, body)
	if err != nil {
		cc.t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cc.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (cc compatClient) upload(method, partition, fileID, name, content, metadata string) (int, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	if metadata != "" {
		mw.WriteField("metadata", metadata)
	}
	fw, _ := mw.CreateFormFile("file", name)
	fw.Write([]byte(content))
	mw.Close()
	return cc.do(method, "/indexer/partition/"+url.PathEscape(partition)+"/file/"+url.PathEscape(fileID), &buf, mw.FormDataContentType())
}

var taskURL = regexp.MustCompile(`^\{"task_status_url":"(http://[^"]+/indexer/task/([0-9a-f]{48}))"\}$`)

func (cc compatClient) waitState(taskID, want string) {
	cc.t.Helper()
	waitFor(cc.t, 30*time.Second, "task "+taskID+" "+want, func() bool {
		code, body := cc.do("GET", "/indexer/task/"+taskID, nil, "")
		var v struct {
			State string `json:"task_state"`
		}
		json.Unmarshal([]byte(body), &v)
		if v.State == "FAILED" && want != "FAILED" {
			cc.t.Fatalf("task failed: %s", body)
		}
		return code == 200 && v.State == want
	})
}

func TestCompatAPIWalkthroughThroughFollower(t *testing.T) {
	c, ns := indexCluster(t, nil)
	var via *Node
	for _, n := range ns {
		if n != c.leader() {
			via = n
		}
	}
	cc := compatClient{t: t, base: "http://" + via.HTTPAddr()}

	code, body := cc.upload("POST", "legal", "contract-1", "contract.md", "# Contract\n\nThe tenant pays rent monthly to the landlord.", `{"author":"ana","year":2024}`)
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("add: %d %s", code, body)
	}
	taskID := m[2]
	cc.waitState(taskID, "COMPLETED")
	code, body = cc.do("GET", "/indexer/task/"+taskID, nil, "")
	var tv struct {
		TaskID  string `json:"task_id"`
		State   string `json:"task_state"`
		Details struct {
			FileID    string         `json:"file_id"`
			Partition string         `json:"partition"`
			Metadata  map[string]any `json:"metadata"`
		} `json:"details"`
	}
	if json.Unmarshal([]byte(body), &tv); code != 200 || tv.TaskID != taskID || tv.Details.FileID != "contract-1" || tv.Details.Partition != "legal" || tv.Details.Metadata["author"] != "ana" {
		t.Fatalf("task status: %d %s", code, body)
	}
	code, body = cc.do("GET", "/partition/check-file/legal/file/contract-1", nil, "")
	if code != 200 || body != `"File 'contract-1' exists in partition 'legal'."` {
		t.Fatalf("check-file: %d %s", code, body)
	}
	code, body = cc.do("GET", "/partition/legal/file/contract-1", nil, "")
	var fm struct {
		Metadata map[string]any `json:"metadata"`
	}
	if json.Unmarshal([]byte(body), &fm); code != 200 || fm.Metadata["filename"] != "contract.md" || fm.Metadata["partition"] != "legal" ||
		fm.Metadata["file_id"] != "contract-1" || fm.Metadata["author"] != "ana" || fm.Metadata["year"] != float64(2024) {
		t.Fatalf("file metadata: %d %s", code, body)
	}
	code, body = cc.upload("POST", "legal", "contract-1", "contract.md", "again", "")
	if code != 409 {
		t.Fatalf("second add: %d %s", code, body)
	}
	form := url.Values{"metadata": {`{"status":"signed"}`}}
	code, body = cc.do("PATCH", "/indexer/partition/legal/file/contract-1", strings.NewReader(form.Encode()), "application/x-www-form-urlencoded")
	if code != 200 || body != `{"message":"Metadata for file 'contract-1' successfully updated."}` {
		t.Fatalf("patch: %d %s", code, body)
	}
	_, body = cc.do("GET", "/partition/legal/file/contract-1", nil, "")
	if json.Unmarshal([]byte(body), &fm); fm.Metadata["status"] != "signed" || fm.Metadata["author"] != "ana" {
		t.Fatalf("metadata not merged: %s", body)
	}
	// Search serves the patched metadata without re-embedding.
	code, body = cc.do("GET", "/search?partitions=all&text="+url.QueryEscape("tenant pays rent")+"&top_k=3", nil, "")
	if code != 200 || !strings.Contains(body, `"status":"signed"`) || !strings.Contains(body, "tenant pays rent") {
		t.Fatalf("search after patch: %d %s", code, body)
	}
	code, body = cc.do("GET", "/search/partition/legal?text="+url.QueryEscape("landlord"), nil, "")
	if code != 200 || !strings.Contains(body, "contract-1") {
		t.Fatalf("partition search: %d %s", code, body)
	}
	code, body = cc.upload("POST", "legal", "pic", "pic.gif", "GIF89a....", "")
	if code != 415 {
		t.Fatalf("unsupported type: %d %s", code, body)
	}
	code, body = cc.upload("POST", "legal", "c2", "c2.md", "# x", `{not json`)
	if code != 400 {
		t.Fatalf("bad metadata: %d %s", code, body)
	}
	code, body = cc.upload("POST", "legal", " ", "c3.md", "# x", "")
	if code != 400 {
		t.Fatalf("blank file id: %d %s", code, body)
	}
	code, body = cc.do("GET", "/partition/", nil, "")
	if code != 200 || !strings.Contains(body, `"legal"`) {
		t.Fatalf("partitions: %d %s", code, body)
	}
	code, body = cc.do("GET", "/queue/info", nil, "")
	if code != 200 || !strings.Contains(body, "total_slots") {
		t.Fatalf("queue info: %d %s", code, body)
	}
	code, _ = cc.do("GET", "/health_check", nil, "")
	if code != 200 {
		t.Fatalf("health: %d", code)
	}
	code, body = cc.do("DELETE", "/indexer/partition/legal/file/contract-1", nil, "")
	if code != 204 || body != "" {
		t.Fatalf("delete: %d %q", code, body)
	}
	code, body = cc.do("DELETE", "/indexer/partition/legal/file/contract-1", nil, "")
	if code != 404 {
		t.Fatalf("second delete: %d %s", code, body)
	}
	code, body = cc.do("GET", "/partition/check-file/legal/file/contract-1", nil, "")
	if code != 404 || body != `{"detail":"File 'contract-1' not found in partition 'legal'."}` {
		t.Fatalf("check deleted file: %d %s", code, body)
	}
	// Delete a whole partition.
	code, body = cc.upload("POST", "tmp", "note", "note.txt", "a note about partitions", "")
	if code != 201 {
		t.Fatalf("add to tmp: %d %s", code, body)
	}
	code, _ = cc.do("DELETE", "/partition/tmp", nil, "")
	if code != 204 {
		t.Fatalf("delete partition: %d", code)
	}
	code, _ = cc.do("GET", "/partition/check-file/tmp/file/note", nil, "")
	if code != 404 {
		t.Fatalf("file of deleted partition still there: %d", code)
	}
	unknown := strings.Repeat("ab", 24)
	code, body = cc.do("GET", "/indexer/task/"+unknown, nil, "")
	if code != 404 || body != fmt.Sprintf(`{"detail":"Task '%s' not found."}`, unknown) {
		t.Fatalf("unknown task: %d %s", code, body)
	}
}

func TestCompatHundredUploadsAllComplete(t *testing.T) {
	_, ns := indexCluster(t, nil)
	var mu sync.Mutex
	var ids []string
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	sem := make(chan struct{}, 8)
	for i := 0; i < 100; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			cc := compatClient{t: t, base: "http://" + ns[i%3].HTTPAddr()}
			code, body := cc.upload("POST", "bulk", fmt.Sprintf("doc-%03d", i), fmt.Sprintf("doc-%03d.txt", i),
				fmt.Sprintf("Document number %d talks about topic %d in some detail.", i, i%7), "")
			m := taskURL.FindStringSubmatch(body)
			if code != 201 || m == nil {
				errs <- fmt.Sprintf("%d %s", code, body)
				return
			}
			mu.Lock()
			ids = append(ids, m[2])
			mu.Unlock()
		}(i)
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatalf("upload: %s", e)
	}
	cc := compatClient{t: t, base: "http://" + ns[0].HTTPAddr()}
	for _, id := range ids {
		cc.waitState(id, "COMPLETED")
	}
}
