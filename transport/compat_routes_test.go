package transport

import (
	"context"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

// The rest of fakeCompat's CompatBackend: tasks, cancel, info, chunks.

func (f *fakeCompat) Tasks(ctx context.Context, state, partition string) ([]TaskView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []TaskView
	for _, t := range f.tasks {
		if (state == "" || t.State == state) && (partition == "" || t.Partition == partition) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Submitted != out[j].Submitted {
			return out[i].Submitted < out[j].Submitted
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func (f *fakeCompat) Cancel(ctx context.Context, id string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	switch {
	case !ok:
		return fmt.Errorf("cancel: %w: %s", fsm.ErrUnknownTask, id)
	case fsm.TaskState(t.State).Terminal():
		return fmt.Errorf("cancel: %w: task %s is already %s", fsm.ErrConflict, id, t.State)
	}
	t.State, t.Finished = string(fsm.Cancelled), t.Submitted+5e8
	f.tasks[id] = t
	return nil
}

func (f *fakeCompat) CompatInfo() CompatInfo {
	return CompatInfo{Version: "9.9.9", Extensions: []string{"md", "pdf", "txt"},
		MimeTypes: []string{"application/pdf", "text/markdown", "text/plain"}}
}

// addChunks gives a file n chunks, as a finished task would.
func (f *fakeCompat) addChunks(partition, fileID string, n int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := [2]string{partition, fileID}
	fv := f.files[key]
	var cs []ChunkView
	for i := range n {
		cs = append(cs, ChunkView{ID: fmt.Sprintf("%s-c%d", fileID, i), Partition: partition, FileID: fileID,
			FileName: fv.FileName, Index: i, Page: i + 1, Text: fmt.Sprintf("text %d of %s", i, fileID),
			Vector: []float32{float32(i), 1}, Metadata: maps.Clone(fv.Metadata), FileSize: fv.Size, Created: fv.Created})
	}
	fv.Chunks = n
	f.files[key] = fv
	f.chunks[key] = cs
}

func (f *fakeCompat) FileChunks(ctx context.Context, partition, fileID string, vectors bool) ([]ChunkView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := [2]string{partition, fileID}
	if _, ok := f.files[key]; !ok {
		return nil, errs.Errorf(errs.NotFound, "file missing")
	}
	out := []ChunkView{}
	for _, c := range f.chunks[key] {
		if !vectors {
			c.Vector = nil
		}
		out = append(out, c)
	}
	return out, nil
}

func (f *fakeCompat) Chunk(ctx context.Context, id string) (ChunkView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, cs := range f.chunks {
		for _, c := range cs {
			if c.ID == id {
				c.Vector = nil
				return c, nil
			}
		}
	}
	return ChunkView{}, errs.Errorf(errs.NotFound, "no chunk %s", id)
}

func (f *fakeCompat) updateTask(id string, fn func(*TaskView)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[id]
	fn(&t)
	f.tasks[id] = t
}

// add uploads a small text file and returns its task ID.
func (e *compatEnv) add(partition, fileID, meta string) string {
	e.t.Helper()
	parts := []part{{name: "file", filename: fileID + ".txt", body: "x"}}
	if meta != "" {
		parts = append([]part{{name: "metadata", body: meta}}, parts...)
	}
	code, body := e.upload("POST", "/indexer/partition/"+partition+"/file/"+fileID, parts...)
	if code != 201 {
		e.t.Fatalf("add %s/%s = %d %s", partition, fileID, code, body)
	}
	return taskIDFrom(e.t, body, e.srv.URL)
}

// raw sends a request without the token, with the given headers.
func (e *compatEnv) raw(method, path string, hdr ...string) (*http.Response, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, strings.TrimSpace(string(b))
}

func TestCompatPublicRoutes(t *testing.T) {
	e := newCompatEnv(t)
	if resp, body := e.raw("GET", "/health_check"); resp.StatusCode != 200 || body != `"RAG API is up."` {
		t.Fatalf("health without token = %d %s", resp.StatusCode, body)
	}
	if resp, body := e.raw("GET", "/version"); resp.StatusCode != 200 || body != `{"server":"ragnode","version":"9.9.9"}` {
		t.Fatalf("version without token = %d %s", resp.StatusCode, body)
	}
	// Only GET is public, and only those two paths.
	if resp, _ := e.raw("POST", "/health_check"); resp.StatusCode != 401 {
		t.Fatalf("POST health without token = %d", resp.StatusCode)
	}
	if resp, body := e.raw("GET", "/health_check/x"); resp.StatusCode != 401 || body != `{"detail":"Not authenticated"}` {
		t.Fatalf("GET /health_check/x = %d %s", resp.StatusCode, body)
	}
	// /v1 keeps its own error body.
	if resp, body := e.raw("GET", "/v1/status", "Authorization", "Bearer nope"); resp.StatusCode != 401 ||
		body != `{"error":"missing or invalid bearer token"}` {
		t.Fatalf("/v1 bad token = %d %s", resp.StatusCode, body)
	}
	if resp, body := e.raw("GET", "/queue/info", "Authorization", "Basic abc"); resp.StatusCode != 401 ||
		body != `{"detail":"Invalid token"}` || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("basic auth = %d %s", resp.StatusCode, body)
	}
}

func newCORSEnv(t *testing.T, origins ...string) *compatEnv {
	t.Helper()
	fake := newFakeCompat()
	s := NewServer(stubBackend{}, compatToken)
	s.MountCompat(fake)
	s.SetCORSOrigins(origins)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &compatEnv{t: t, srv: srv, fake: fake}
}

func TestCompatCORS(t *testing.T) {
	preflight := []string{"Origin", "https://ui.example", "Access-Control-Request-Method", "POST",
		"Access-Control-Request-Headers", "authorization, content-type"}

	// Default: no CORS at all; a preflight is just an unauthenticated call.
	e := newCORSEnv(t)
	resp, _ := e.raw("OPTIONS", "/indexer/partition/p/file/a", preflight...)
	if resp.StatusCode != 401 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("no-CORS preflight = %d %v", resp.StatusCode, resp.Header)
	}

	// A listed origin: preflight answered before auth, requests echoed.
	e = newCORSEnv(t, "https://ui.example", " https://admin.example/ ")
	resp, body := e.raw("OPTIONS", "/indexer/partition/p/file/a", preflight...)
	h := resp.Header
	if resp.StatusCode != 200 || body != "OK" || h.Get("Access-Control-Allow-Origin") != "https://ui.example" ||
		h.Get("Access-Control-Allow-Methods") != "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT" ||
		h.Get("Access-Control-Allow-Headers") != "authorization, content-type" || h.Get("Access-Control-Max-Age") != "600" ||
		h.Get("Vary") != "Origin" || h.Get("Access-Control-Allow-Credentials") != "true" {
		t.Fatalf("preflight = %d %q %v", resp.StatusCode, body, h)
	}
	resp, _ = e.raw("OPTIONS", "/queue/info", "Origin", "https://admin.example", "Access-Control-Request-Method", "GET")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://admin.example" {
		t.Fatalf("second origin preflight = %d %v", resp.StatusCode, resp.Header)
	}
	// A simple request still needs the token, and carries the CORS header
	// so the browser lets the page read the 401.
	resp, body = e.raw("GET", "/queue/info", "Origin", "https://ui.example")
	if resp.StatusCode != 401 || body != `{"detail":"Not authenticated"}` || resp.Header.Get("Access-Control-Allow-Origin") != "https://ui.example" {
		t.Fatalf("cors GET without token = %d %s %v", resp.StatusCode, body, resp.Header)
	}
	code, _ := e.do("GET", "/queue/info", "", nil, "Origin", "https://ui.example")
	if code != 200 {
		t.Fatalf("cors GET with token = %d", code)
	}
	// Another origin: preflight refused as Starlette does, simple requests
	// get no CORS header.
	resp, body = e.raw("OPTIONS", "/queue/info", "Origin", "https://evil.example", "Access-Control-Request-Method", "GET")
	if resp.StatusCode != 400 || body != "Disallowed CORS origin" || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign preflight = %d %q %v", resp.StatusCode, body, resp.Header)
	}
	resp, _ = e.raw("GET", "/health_check", "Origin", "https://evil.example")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("foreign GET = %d %v", resp.StatusCode, resp.Header)
	}
	// A plain OPTIONS (no Access-Control-Request-Method) is not a preflight.
	resp, _ = e.raw("OPTIONS", "/queue/info", "Origin", "https://ui.example")
	if resp.StatusCode != 401 {
		t.Fatalf("plain OPTIONS = %d", resp.StatusCode)
	}

	// "*": any origin, echoed so a fetch with credentials works too.
	e = newCORSEnv(t, "*")
	resp, _ = e.raw("OPTIONS", "/search", "Origin", "https://any.example", "Access-Control-Request-Method", "GET")
	if resp.StatusCode != 200 || resp.Header.Get("Access-Control-Allow-Origin") != "https://any.example" ||
		resp.Header.Get("Access-Control-Allow-Credentials") != "true" || resp.Header.Get("Vary") != "Origin" {
		t.Fatalf("wildcard preflight = %d %v", resp.StatusCode, resp.Header)
	}
}

func TestCompatSupportedTypes(t *testing.T) {
	e := newCompatEnv(t)
	e.expect("GET", "/indexer/supported/types", 200,
		`{"extensions":["md","pdf","txt"],"mimetypes":["application/pdf","text/markdown","text/plain"]}`)
}

func TestCompatUploadExtraFields(t *testing.T) {
	e := newCompatEnv(t)
	code, body := e.upload("POST", "/indexer/partition/p/file/a",
		part{name: "workspace_ids", body: `["w1","w2"]`},
		part{name: "callback_url", body: "https://hook.example/done"},
		part{name: "callback_token", body: "tok"},
		part{name: "metadata", body: `{"k":"v"}`},
		part{name: "file", filename: "a.txt", body: "hello"})
	if code != 201 {
		t.Fatalf("upload with openrag fields = %d %s", code, body)
	}
	r, got := e.fake.upload(taskIDFrom(t, body, e.srv.URL))
	if got != "hello" || fmt.Sprint(r.Metadata) != "map[k:v]" {
		t.Fatalf("submitted %+v %q", r, got)
	}
}

func TestCompatCancelTask(t *testing.T) {
	e := newCompatEnv(t)
	id := e.add("p", "a", "")
	e.expect("DELETE", "/indexer/task/"+id, 200, fmt.Sprintf(`{"message":"Cancellation signal sent for task %s"}`, id))
	body := e.expect("GET", "/indexer/task/"+id, 200, "")
	// openrag links an error for FAILED tasks only.
	jsonEq(t, body, map[string]any{"task_id": id, "task_state": "CANCELLED",
		"details": map[string]any{"file_id": "a", "partition": "p", "metadata": map[string]any{}}})
	e.expect("DELETE", "/indexer/task/"+id, 409, fmt.Sprintf(`{"detail":"Task '%s' is already CANCELLED and cannot be cancelled."}`, id))
	id2 := e.add("p", "b", "")
	e.fake.setTask(id2, string(fsm.Completed), "", "")
	e.expect("DELETE", "/indexer/task/"+id2, 409, fmt.Sprintf(`{"detail":"Task '%s' is already COMPLETED and cannot be cancelled."}`, id2))
	e.expect("DELETE", "/indexer/task/nope", 404, `{"detail":"Task 'nope' not found."}`)
}

func TestCompatQueueTasks(t *testing.T) {
	e := newCompatEnv(t)
	ids := []string{e.add("p", "a", ""), e.add("p", "b", `{"x":1}`), e.add("q", "c", ""), e.add("q", "d", "")}
	e.fake.setTask(ids[1], string(fsm.Running), fsm.StageChunking, "")
	e.fake.setTask(ids[2], string(fsm.Failed), "", "boom")
	e.fake.setTask(ids[3], string(fsm.Completed), "", "")
	u := func(id string) string { return e.srv.URL + "/indexer/task/" + id }
	item := func(i int, state, fileID, part string, meta map[string]any) map[string]any {
		m := map[string]any{"task_id": ids[i], "state": state, "url": u(ids[i]),
			"details": map[string]any{"file_id": fileID, "partition": part, "metadata": meta}}
		if state == "FAILED" || state == "CANCELLED" {
			m["error_url"] = u(ids[i]) + "/error"
		}
		return m
	}
	none := map[string]any{}
	all := []any{item(0, "QUEUED", "a", "p", none), item(1, "CHUNKING", "b", "p", map[string]any{"x": 1}),
		item(2, "FAILED", "c", "q", none), item(3, "COMPLETED", "d", "q", none)}

	jsonEq(t, e.expect("GET", "/queue/tasks", 200, ""), map[string]any{"tasks": all, "total": 4, "offset": 0, "limit": 1000})
	jsonEq(t, e.expect("GET", "/queue/tasks?task_status=active", 200, ""),
		map[string]any{"tasks": all[:2], "total": 2, "offset": 0, "limit": 1000})
	jsonEq(t, e.expect("GET", "/queue/tasks?task_status=failed", 200, ""),
		map[string]any{"tasks": all[2:3], "total": 1, "offset": 0, "limit": 1000})
	jsonEq(t, e.expect("GET", "/queue/tasks?status=COMPLETED", 200, ""),
		map[string]any{"tasks": all[3:], "total": 1, "offset": 0, "limit": 1000})
	jsonEq(t, e.expect("GET", "/queue/tasks?offset=1&limit=2", 200, ""),
		map[string]any{"tasks": all[1:3], "total": 4, "offset": 1, "limit": 2})
	jsonEq(t, e.expect("GET", "/queue/tasks?offset=9", 200, ""),
		map[string]any{"tasks": []any{}, "total": 4, "offset": 9, "limit": 1000})
	jsonEq(t, e.expect("GET", "/queue/tasks?task_status=nonsense", 200, ""),
		map[string]any{"tasks": []any{}, "total": 0, "offset": 0, "limit": 1000})
	e.expect("GET", "/queue/tasks?limit=0&offset=-1", 422, `{"detail":[`+
		`{"type":"greater_than_equal","loc":["query","offset"],"msg":"Input should be greater than or equal to 0","input":"-1","ctx":{"ge":0}},`+
		`{"type":"greater_than_equal","loc":["query","limit"],"msg":"Input should be greater than or equal to 1","input":"0","ctx":{"ge":1}}]}`)
}

func TestCompatTaskLogs(t *testing.T) {
	e := newCompatEnv(t)
	id := e.add("p", "a", "")
	extra := fmt.Sprintf(" - {'task_id': '%s', 'partition': 'p', 'file_id': 'a'}", id)
	queued := "2023-11-14 22:13:21.123456+00:00 - INFO - Task queued (filename=a.txt, size=1)." + extra
	jsonEq(t, e.expect("GET", "/indexer/task/"+id+"/logs", 200, ""), map[string]any{"task_id": id, "logs": []string{queued}})

	e.fake.updateTask(id, func(tv *TaskView) {
		tv.State, tv.Error, tv.Attempt, tv.Failures, tv.NodeID = string(fsm.Failed), "convert: boom\nexit 1", 3, 2, "n2"
		tv.Started, tv.Finished = tv.Submitted+2e9, tv.Submitted+3e9
	})
	lines := []string{queued,
		"2023-11-14 22:13:23.123456+00:00 - WARNING - 2 earlier attempt(s) failed." + extra,
		"2023-11-14 22:13:23.123456+00:00 - INFO - Attempt 3 started on node n2." + extra,
		"2023-11-14 22:13:24.123456+00:00 - ERROR - Task failed: convert: boom | exit 1" + extra}
	jsonEq(t, e.expect("GET", "/indexer/task/"+id+"/logs", 200, ""), map[string]any{"task_id": id, "logs": lines})
	jsonEq(t, e.expect("GET", "/indexer/task/"+id+"/logs?max_lines=2", 200, ""), map[string]any{"task_id": id, "logs": lines[2:]})
	e.expect("GET", "/indexer/task/"+id+"/logs?max_lines=0", 404, fmt.Sprintf(`{"detail":"No logs found for task '%s'"}`, id))
	e.expect("GET", "/indexer/task/"+id+"/logs?max_lines=many", 422,
		`{"detail":[{"type":"int_parsing","loc":["query","max_lines"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"many"}]}`)
	e.expect("GET", "/indexer/task/nope/logs", 404, `{"detail":"No logs found for task 'nope'"}`)

	e.fake.updateTask(id, func(tv *TaskView) { tv.State, tv.Failures, tv.Chunks = string(fsm.Completed), 0, 7 })
	body := e.expect("GET", "/indexer/task/"+id+"/logs?max_lines=1", 200, "")
	jsonEq(t, body, map[string]any{"task_id": id, "logs": []string{"2023-11-14 22:13:24.123456+00:00 - INFO - Task completed: 7 chunks." + extra}})
}

func TestCompatFileChunksAndExtract(t *testing.T) {
	e := newCompatEnv(t)
	e.add("p", "a", `{"author":"ann"}`)
	e.add("p", "b", "")
	e.add("p", "empty", "")
	e.fake.addChunks("p", "a", 2)
	e.fake.addChunks("p", "b", 1)
	x := func(id string) string { return e.srv.URL + "/extract/" + id }
	fileMeta := func(fileID string, extra map[string]any) map[string]any {
		m := map[string]any{"source": fileID + ".txt", "filename": fileID + ".txt", "partition": "p", "file_id": fileID,
			"file_size": "1.00 B", "created_at": "2023-11-14T22:13:20.123456"}
		maps.Copy(m, extra)
		return m
	}

	jsonEq(t, e.expect("GET", "/partition/p/file/a", 200, ""), map[string]any{
		"metadata":  fileMeta("a", map[string]any{"author": "ann", "page": 1}),
		"documents": []any{map[string]any{"link": x("a-c0")}, map[string]any{"link": x("a-c1")}}})
	jsonEq(t, e.expect("GET", "/partition/p/file/empty", 200, ""), map[string]any{
		"metadata": fileMeta("empty", nil), "documents": []any{}})

	chunkMeta := func(fileID string, i int, extra map[string]any) map[string]any {
		return fileMeta(fileID, mergeMaps(map[string]any{"_id": fmt.Sprintf("%s-c%d", fileID, i), "page": i + 1, "chunk_index": i}, extra))
	}
	jsonEq(t, e.expect("GET", "/extract/a-c1", 200, ""), map[string]any{
		"page_content": "text 1 of a", "metadata": chunkMeta("a", 1, map[string]any{"author": "ann"})})
	e.expect("GET", "/extract/zz", 404, `{"detail":"Extract 'zz' not found."}`)

	jsonEq(t, e.expect("GET", "/partition/p/chunks?include_embedding=false", 200, ""), map[string]any{"chunks": []any{
		map[string]any{"link": x("a-c0"), "content": "text 0 of a", "metadata": chunkMeta("a", 0, map[string]any{"author": "ann"})},
		map[string]any{"link": x("a-c1"), "content": "text 1 of a", "metadata": chunkMeta("a", 1, map[string]any{"author": "ann"})},
		map[string]any{"link": x("b-c0"), "content": "text 0 of b", "metadata": chunkMeta("b", 0, nil)}}})
	jsonEq(t, e.expect("GET", "/partition/p/chunks?file_id=a&limit=1", 200, ""), map[string]any{"total": 2, "chunks": []any{
		map[string]any{"link": x("a-c0"), "content": "text 0 of a",
			"metadata": chunkMeta("a", 0, map[string]any{"author": "ann", "vector": []float32{0, 1}})}}})
	jsonEq(t, e.expect("GET", "/partition/p/chunks?limit=2&include_embedding=0", 200, ""), map[string]any{"total": 3, "chunks": []any{
		map[string]any{"link": x("a-c0"), "content": "text 0 of a", "metadata": chunkMeta("a", 0, map[string]any{"author": "ann"})},
		map[string]any{"link": x("a-c1"), "content": "text 1 of a", "metadata": chunkMeta("a", 1, map[string]any{"author": "ann"})}}})
	e.expect("GET", "/partition/nope/chunks", 404, `{"detail":"Partition 'nope' not found."}`)
	e.expect("GET", "/partition/p/chunks?file_id=ghost", 404, `{"detail":"File 'ghost' not found in partition 'p'."}`)
	e.expect("GET", "/partition/p/chunks?include_embedding=maybe", 422,
		`{"detail":[{"type":"bool_parsing","loc":["query","include_embedding"],"msg":"Input should be a valid boolean, unable to interpret input","input":"maybe"}]}`)
}

func mergeMaps(a, b map[string]any) map[string]any {
	maps.Copy(a, b)
	return a
}

func TestCompatPartitionPaging(t *testing.T) {
	e := newCompatEnv(t)
	e.add("p", "a", "")
	e.add("p", "b", "")
	e.add("q", "c", "")
	jsonEq(t, e.expect("GET", "/partition?limit=1&offset=1", 200, ""), map[string]any{"total": 2,
		"partitions": []any{map[string]any{"partition": "q", "created_at": "2023-11-14T22:13:20+00:00", "file_count": 1, "document_count": 1}}})
	body := e.expect("GET", "/partition/p?limit=1", 200, "")
	m := decode(t, body)
	files := m["files"].([]any)
	if m["total"] != 2.0 || len(files) != 1 || files[0].(map[string]any)["file_id"] != "a" {
		t.Fatalf("paged files %s", body)
	}
	body = e.expect("GET", "/partition/p?offset=1", 200, "")
	if m := decode(t, body); len(m["files"].([]any)) != 1 || m["total"] != nil {
		t.Fatalf("offset files %s", body)
	}
	e.expect("GET", "/partition?limit=x", 422,
		`{"detail":[{"type":"int_parsing","loc":["query","limit"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"x"}]}`)
}

func TestCompatSimilarityThreshold(t *testing.T) {
	e := newCompatEnv(t)
	e.add("p", "a", "") // the fake scores its chunks 1.00, 0.99, 0.98
	body := e.expect("GET", "/search?text=x&similarity_threshold=0.985", 200, "")
	if docs := decode(t, body)["documents"].([]any); len(docs) != 2 {
		t.Fatalf("threshold 0.985: %s", body)
	}
	body = e.expect("GET", "/search/partition/p?text=x&similarity_threshold=0&top_k=2", 200, "")
	if docs := decode(t, body)["documents"].([]any); len(docs) != 2 {
		t.Fatalf("threshold 0: %s", body)
	}
	body = e.expect("GET", "/search/partition/p/file/a?text=x&similarity_threshold=1", 200, "")
	if docs := decode(t, body)["documents"].([]any); len(docs) != 1 {
		t.Fatalf("threshold 1: %s", body)
	}
	e.expect("GET", "/search?text=x&similarity_threshold=1.5", 422,
		`{"detail":[{"type":"less_than_equal","loc":["query","similarity_threshold"],"msg":"Input should be less than or equal to 1","input":"1.5","ctx":{"le":1}}]}`)
	e.expect("GET", "/search?text=x&similarity_threshold=-0.1", 422,
		`{"detail":[{"type":"greater_than_equal","loc":["query","similarity_threshold"],"msg":"Input should be greater than or equal to 0","input":"-0.1","ctx":{"ge":0}}]}`)
	e.expect("GET", "/search?similarity_threshold=high", 422, `{"detail":[`+
		`{"type":"missing","loc":["query","text"],"msg":"Field required","input":null},`+
		`{"type":"float_parsing","loc":["query","similarity_threshold"],"msg":"Input should be a valid number, unable to parse string as a number","input":"high"}]}`)
}

func TestCompatTopKCapped(t *testing.T) {
	e := newCompatEnv(t)
	e.add("p", "a", "")
	e.expect("GET", "/search?text=x&top_k=1001", 422,
		`{"detail":[{"type":"less_than_equal","loc":["query","top_k"],"msg":"Input should be less than or equal to 1000","input":"1001","ctx":{"le":1000}}]}`)
	e.expect("GET", "/search?text=x&top_k=1000000000", 422,
		`{"detail":[{"type":"less_than_equal","loc":["query","top_k"],"msg":"Input should be less than or equal to 1000","input":"1000000000","ctx":{"le":1000}}]}`)
	e.expect("GET", "/search?text=x&top_k=1000", 200, "")
}
