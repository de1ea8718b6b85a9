package node

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/node/catalog"
	"github.com/ragnode/ragnode/node/catalog/catalogtest"
	"github.com/ragnode/ragnode/transport"
)

// The HTTP calls the two indexer UIs make on their main screens, replayed
// against a 3-node cluster through a follower, in the order a user's
// session makes them. The calls (paths, query strings, form field order,
// methods) are taken from:
//
//   - linagora/openrag-admin-ui src/lib/api/indexer.ts ("admin UI"):
//     fetchPartitions, addFile (FormData: file, then metadata),
//     fetchTask, fetchTasks (?status=), fetchFilesFromPartition,
//     fetchFile, fetchExtract, deleteFile, deletePartition;
//   - linagora/openrag ui/src/lib/api/{partitions,indexing,jobs,documents}.ts
//     ("openrag UI"): getSupportedTypes, createPartition (POST, then
//     getPartitionConfig), updatePartition (PATCH JSON), listPartitions,
//     uploadFile (FormData: file, metadata, workspace_ids), getQueueInfo,
//     listTasks (?task_status=), getTaskStatus, cancelTask, getTaskError,
//     listPartitionFiles (?limit=), getFileDetail (?limit=),
//     listPartitionChunks (include_embedding=false&file_id=), getExtract,
//     updateFileMetadata, copyFile, deleteFile.
func TestUIReplayThroughFollower(t *testing.T) {
	c, ns := indexCluster(t, nil)
	f := followerOf(t, c, ns)
	ui := compatClient{t: t, base: "http://" + f.HTTPAddr()}
	enc := url.PathEscape
	must := func(method, path string, body *bytes.Buffer, ctype string, wantCode int) map[string]any {
		t.Helper()
		var code int
		var out string
		if body == nil {
			code, out = ui.do(method, path, nil, ctype)
		} else {
			code, out = ui.do(method, path, body, ctype)
		}
		if code != wantCode {
			t.Fatalf("%s %s = %d %s; want %d", method, path, code, out, wantCode)
		}
		var m map[string]any
		if out != "" {
			if err := json.Unmarshal([]byte(out), &m); err != nil && wantCode < 300 {
				var s string
				if json.Unmarshal([]byte(out), &s) != nil {
					t.Fatalf("%s %s: not JSON: %s", method, path, out)
				}
			}
		}
		return m
	}
	form := func(fields ...string) (*bytes.Buffer, string) {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		for i := 0; i+1 < len(fields); i += 2 {
			if fields[i] == "file" {
				fw, _ := mw.CreateFormFile("file", "notes.md")
				fw.Write([]byte(fields[i+1]))
				continue
			}
			mw.WriteField(fields[i], fields[i+1])
		}
		mw.Close()
		return &buf, mw.FormDataContentType()
	}
	taskOf := func(m map[string]any) string {
		u, _ := m["task_status_url"].(string)
		if !strings.HasPrefix(u, ui.base+"/indexer/task/") {
			t.Fatalf("task_status_url %q not on the follower", u)
		}
		return strings.TrimPrefix(u, ui.base+"/indexer/task/")
	}
	poll := func(id string) {
		t.Helper()
		waitFor(t, 30*time.Second, "task "+id+" terminal", func() bool {
			m := must("GET", "/indexer/task/"+enc(id), nil, "", 200)
			s, _ := m["task_state"].(string)
			return s == "COMPLETED" || s == "FAILED" || s == "CANCELLED"
		})
	}

	// --- admin UI: login (/users/info decides the upload dialog's quota:
	// file_quota - total_files files, -1 none) and the dashboard's actors.
	me := must("GET", "/users/info", nil, "", 200)
	if me["is_admin"] != true || me["file_quota"] != -1.0 || me["total_files"] != 0.0 {
		t.Fatalf("users/info %v", me)
	}
	actors := must("GET", "/actors/", nil, "", 200)["actors"].([]any)
	if len(actors) != 3 {
		t.Fatalf("actors %v", actors)
	}
	for _, a := range actors {
		if a := a.(map[string]any); a["class_name"] != "Indexer" || a["state"] != "ALIVE" || a["namespace"] == "" {
			t.Fatalf("actor %v", a)
		}
	}
	restarted := actors[0].(map[string]any)["name"].(string)
	if m := must("POST", "/actors/"+enc(restarted)+"/restart", nil, "", 200); m["message"] != "Actor "+restarted+" restarted successfully." {
		t.Fatalf("restart %v", m)
	}

	// --- openrag UI: settings, partitions screen.
	types := must("GET", "/indexer/supported/types", nil, "", 200)
	if fmt.Sprint(types["extensions"]) == "[]" {
		t.Fatalf("supported types %v", types)
	}
	must("POST", "/partition/"+enc("team docs"), nil, "", 201)
	cfg := must("GET", "/partition/"+enc("team docs")+"/config", nil, "", 200)
	if cfg["name"] != "team docs" || cfg["document_count"] != 0.0 {
		t.Fatalf("config %v", cfg)
	}
	cfg = must("PATCH", "/partition/"+enc("team docs"), bytes.NewBufferString(`{"description":"Team"}`), "application/json", 200)
	if cfg["description"] != "Team" {
		t.Fatalf("patched config %v", cfg)
	}
	lp := must("GET", "/partition/", nil, "", 200)
	if rows := lp["partitions"].([]any); len(rows) != 1 || rows[0].(map[string]any)["document_count"] != 0.0 {
		t.Fatalf("partition list %v", lp)
	}
	// The admin UI shows new Date(created_at): today, not January 1970.
	if at, err := time.Parse(time.RFC3339Nano, lp["partitions"].([]any)[0].(map[string]any)["created_at"].(string)); err != nil ||
		time.Since(at) > time.Hour || time.Since(at) < -time.Hour {
		t.Fatalf("created_at %v: %v", lp["partitions"], err)
	}

	// --- openrag UI: upload (file, metadata, workspace_ids).
	body, ct := form("file", "# Notes\n\nMeeting notes about the budget.", "metadata", `{"author":"ana"}`, "workspace_ids", `[]`)
	up := taskOf(must("POST", "/indexer/partition/"+enc("team docs")+"/file/"+enc("n-1"), body, ct, 201))
	// --- admin UI: upload (file first, then metadata).
	body, ct = form("file", "# Plan\n\nThe roadmap for next year.", "metadata", `{"author":"bo"}`)
	up2 := taskOf(must("POST", "/indexer/partition/"+enc("team docs")+"/file/"+enc("n-2"), body, ct, 201))
	poll(up)
	poll(up2)

	// --- jobs page: queue summary, filters, paging.
	qi := must("GET", "/queue/info", nil, "", 200)
	if qi["tasks"].(map[string]any)["total_completed"] != 2.0 {
		t.Fatalf("queue info %v", qi)
	}
	done := must("GET", "/queue/tasks?task_status="+url.QueryEscape("COMPLETED"), nil, "", 200)
	if done["total"] != 2.0 || len(done["tasks"].([]any)) != 2 {
		t.Fatalf("completed tasks %v", done)
	}
	page := must("GET", "/queue/tasks?task_status=COMPLETED&offset=1&limit=1", nil, "", 200)
	if rows := page["tasks"].([]any); page["total"] != 2.0 || len(rows) != 1 || rows[0].(map[string]any)["task_id"] != up2 {
		t.Fatalf("page 2 of completed %v", page)
	}
	if act := must("GET", "/queue/tasks?status=ACTIVE", nil, "", 200); len(act["tasks"].([]any)) != 0 {
		t.Fatalf("admin UI active filter %v", act)
	}

	// Cancel from the jobs page: a task held in the queue (every node
	// drained, so it stays QUEUED until cancelled).
	for _, n := range ns {
		if err := clientOf(f).Drain(ctxT(t, 10*time.Second), transport.DrainRequest{Node: n.cfg.Name}); err != nil {
			t.Fatal(err)
		}
	}
	body, ct = form("file", "# Draft\n\nnot yet", "metadata", `{}`)
	held := taskOf(must("POST", "/indexer/partition/"+enc("team docs")+"/file/"+enc("n-3"), body, ct, 201))
	if act := must("GET", "/queue/tasks?task_status=active", nil, "", 200); len(act["tasks"].([]any)) != 1 {
		t.Fatalf("active while drained %v", act)
	}
	if m := must("DELETE", "/indexer/task/"+enc(held), nil, "", 200); m["message"] != "Cancellation signal sent for task "+held {
		t.Fatalf("cancel %v", m)
	}
	if m := must("GET", "/indexer/task/"+enc(held), nil, "", 200); m["task_state"] != "CANCELLED" || m["error_url"] != nil {
		t.Fatalf("cancelled task %v", m)
	}
	must("GET", "/indexer/task/"+enc(held)+"/error", nil, "", 200)
	must("DELETE", "/indexer/task/"+enc(up), nil, "", 409)
	for _, n := range ns {
		clientOf(f).Drain(ctxT(t, 10*time.Second), transport.DrainRequest{Node: n.cfg.Name, Cancel: true})
	}
	if m := must("GET", "/queue/info", nil, "", 200); m["tasks"].(map[string]any)["total_cancelled"] != 1.0 {
		t.Fatalf("queue info after cancel %v", m)
	}

	// --- documents screen: file list, a file's chunks, an extract.
	files := must("GET", "/partition/"+enc("team docs")+"?limit=50", nil, "", 200)
	if rows := files["files"].([]any); len(rows) != 3 || rows[0].(map[string]any)["file_id"] != "n-1" {
		t.Fatalf("file list %v", files)
	}
	detail := must("GET", "/partition/"+enc("team docs")+"/file/"+enc("n-1")+"?limit=2000", nil, "", 200)
	docs := detail["documents"].([]any)
	if len(docs) == 0 || detail["metadata"].(map[string]any)["author"] != "ana" {
		t.Fatalf("file detail %v", detail)
	}
	ch := must("GET", "/partition/"+enc("team docs")+"/chunks?include_embedding=false&file_id=n-1", nil, "", 200)
	if cs := ch["chunks"].([]any); len(cs) != len(docs) || !strings.Contains(cs[0].(map[string]any)["content"].(string), "budget") {
		t.Fatalf("chunks %v", ch)
	}
	link := docs[0].(map[string]any)["link"].(string)
	u, err := url.Parse(link)
	if err != nil || u.Host != strings.TrimPrefix(ui.base, "http://") {
		t.Fatalf("extract link %q", link)
	}
	ex := must("GET", u.Path, nil, "", 200)
	if !strings.Contains(ex["page_content"].(string), "budget") {
		t.Fatalf("extract %v", ex)
	}
	// admin UI's own calls for the same screens.
	must("GET", "/partition/"+enc("team docs"), nil, "", 200)
	must("GET", "/partition/"+enc("team docs")+"/file/"+enc("n-2"), nil, "", 200)

	// --- openrag UI: edit metadata, copy, delete.
	body, ct = form("metadata", `{"reviewed":true}`)
	must("PATCH", "/indexer/partition/"+enc("team docs")+"/file/"+enc("n-1"), body, ct, 200)
	body, ct = form("source_partition", "team docs", "source_file_id", "n-1")
	must("POST", "/indexer/partition/"+enc("archive")+"/file/"+enc("n-1")+"/copy", body, ct, 201)
	if m := must("GET", "/partition/"+enc("archive")+"/file/"+enc("n-1"), nil, "", 200); m["metadata"].(map[string]any)["reviewed"] != true {
		t.Fatalf("copied file %v", m)
	}
	must("DELETE", "/indexer/partition/"+enc("team docs")+"/file/"+enc("n-2"), nil, "", 204)
	must("DELETE", "/partition/"+enc("archive"), nil, "", 204)
	must("DELETE", "/partition/"+enc("team docs"), nil, "", 204)
	if m := must("GET", "/partition/", nil, "", 200); len(m["partitions"].([]any)) != 0 {
		t.Fatalf("partitions left %v", m)
	}
}

// The admin UI's upload dialog under a catalog user with a file quota: it
// allows file_quota - total_files files (from /users/info), and an upload
// past the quota is refused with OpenRAG's status and message.
func TestUIReplayUploadQuota(t *testing.T) {
	dsn := catalogtest.Start(t)
	t.Setenv("DEFAULT_FILE_QUOTA", "10")
	const boot = "ragnode-admin-token"
	c, ns := indexCluster(t, func(_ int, cfg *Config) { cfg.Catalog, cfg.Token = dsn, boot })
	f := followerOf(t, c, ns)
	admin := bearerClient{t, "http://" + f.HTTPAddr(), boot}
	if code, body := admin.do("POST", "/partition/team", nil, ""); code != 201 {
		t.Fatalf("create: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the partition in the catalog", func() bool {
		return catalogCount(t, dsn, `SELECT count(*) FROM partitions WHERE partition = 'team'`) == 1
	})
	catalogExec(t, dsn, `INSERT INTO users (id, display_name, token, is_admin, file_quota) VALUES (2, 'Ann', $1, false, 2)`, catalog.HashToken("or-ann"))
	catalogExec(t, dsn, `INSERT INTO partition_memberships (partition_name, user_id, role) VALUES ('team', 2, 'editor')`)
	ann := bearerClient{t, admin.base, "or-ann"}
	remaining := func() float64 {
		m := ann.json("GET", "/users/info", 200)
		return m["file_quota"].(float64) - m["total_files"].(float64)
	}
	if r := remaining(); r != 2 {
		t.Fatalf("the dialog allows %v files, want 2", r)
	}
	for _, id := range []string{"a", "b"} {
		if code, body := ann.upload("team", id, "# "+id+"\n\ntext", `{}`); code != 201 {
			t.Fatalf("upload %s: %d %s", id, code, body)
		}
	}
	if r := remaining(); r != 0 {
		t.Fatalf("the dialog allows %v files after two, want 0", r)
	}
	code, body := ann.upload("team", "c", "# c\n\ntext", `{}`)
	if code != 403 || !strings.HasPrefix(body, `{"detail":"File quota exceeded. You have `) || !strings.HasSuffix(body, `Limit: 2"}`) {
		t.Fatalf("past the quota: %d %s", code, body)
	}

	// An unknown extension is refused, unless the metadata names a
	// supported mimetype (openrag's rule): then it is indexed as that.
	if code, body := admin.uploadNamed("misc", "n1", "notes.xyz", "plain words", `{}`); code != 415 {
		t.Fatalf("unknown extension: %d %s", code, body)
	}
	code, body = admin.uploadNamed("misc", "n2", "notes.xyz", "plain words about budgets", `{"mimetype":"text/plain"}`)
	if code != 201 {
		t.Fatalf("unknown extension with a mimetype: %d %s", code, body)
	}
	id := body[strings.LastIndex(body, "/")+1 : len(body)-2]
	waitFor(t, 30*time.Second, "the text/plain task", func() bool {
		m := admin.json("GET", "/indexer/task/"+id, 200)
		return m["task_state"] == "COMPLETED"
	})
}
