package transport

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

// stubBackend satisfies Backend for NewServer; the compat API never calls it,
// so any call panics on the nil interface and fails the test loudly.
type stubBackend struct{ Backend }

const compatToken = "s3cret"

// fakeCompat is an in-memory CompatBackend with the node's error contract.
type fakeCompat struct {
	mu       sync.Mutex
	files    map[[2]string]FileView // (partition, file ID)
	tasks    map[string]TaskView
	created  map[string]int64
	bodies   map[string]string // task ID -> uploaded bytes
	reqs     map[string]SubmitRequest
	lastReq  SearchRequest
	maxBytes int64
	chunks   map[[2]string][]ChunkView // set by addChunks
	pconfig  map[string]map[string]any // partition configs (UpdatePartition)
	seq      int
}

// fakeUpdated is the submission time the fake gives every file version.
const fakeUpdated = 1_700_000_000_123_456_000

func newFakeCompat() *fakeCompat {
	return &fakeCompat{
		files:    map[[2]string]FileView{},
		tasks:    map[string]TaskView{},
		created:  map[string]int64{},
		bodies:   map[string]string{},
		reqs:     map[string]SubmitRequest{},
		maxBytes: 1 << 16,
		chunks:   map[[2]string][]ChunkView{},
		pconfig:  map[string]map[string]any{},
	}
}

func (f *fakeCompat) Submit(ctx context.Context, req SubmitRequest, body io.Reader) (TaskView, error) {
	switch strings.ToLower(filepath.Ext(req.FileName)) {
	case ".exe", ".png":
		return TaskView{}, errorfHTTP(http.StatusUnsupportedMediaType, "unsupported file type %q", filepath.Ext(req.FileName))
	}
	data, err := io.ReadAll(io.LimitReader(body, f.maxBytes+1))
	if err != nil {
		return TaskView{}, err
	}
	if int64(len(data)) > f.maxBytes {
		return TaskView{}, errorfHTTP(http.StatusRequestEntityTooLarge, "file exceeds %d bytes", f.maxBytes)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	key := [2]string{req.Partition, req.FileID}
	_, exists := f.files[key]
	switch {
	case req.Mode == fsm.ModeCreate && exists:
		return TaskView{}, errorfHTTP(http.StatusConflict, "file exists: %s", req.FileID)
	case req.Mode == fsm.ModeReplace && !exists:
		return TaskView{}, errorfHTTP(http.StatusNotFound, "file missing: %s", req.FileID)
	}
	var b [24]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	f.seq++
	tv := TaskView{ID: id, State: string(fsm.Queued), Partition: req.Partition, FileID: req.FileID,
		FileName: req.FileName, Metadata: maps.Clone(req.Metadata), Size: int64(len(data)),
		Submitted: fakeUpdated + int64(f.seq)*1e9}
	f.tasks[id] = tv
	f.bodies[id] = string(data)
	f.reqs[id] = req
	if _, ok := f.created[req.Partition]; !ok {
		f.created[req.Partition] = 1_700_000_000 * 1e9
	}
	f.files[key] = FileView{Partition: req.Partition, FileID: req.FileID, FileName: req.FileName, TaskID: id,
		State: string(fsm.Queued), Metadata: maps.Clone(req.Metadata), Size: int64(len(data)), Created: fakeUpdated}
	delete(f.chunks, key)
	return tv, nil
}

// upload returns what Submit received for a task.
func (f *fakeCompat) upload(id string) (SubmitRequest, string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.reqs[id], f.bodies[id]
}

func (f *fakeCompat) fileCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.files)
}

func (f *fakeCompat) lastSearch() SearchRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.lastReq
}

func (f *fakeCompat) Task(ctx context.Context, id string) (TaskView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.tasks[id]
	if !ok {
		return TaskView{}, errorfHTTP(http.StatusNotFound, "no task %s", id)
	}
	return t, nil
}

func (f *fakeCompat) setTask(id, state, stage, errMsg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.tasks[id]
	t.State, t.Stage, t.Error = state, stage, errMsg
	f.tasks[id] = t
}

func (f *fakeCompat) File(ctx context.Context, partition, fileID string) (FileView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fv, ok := f.files[[2]string{partition, fileID}]
	if !ok {
		return FileView{}, errorfHTTP(http.StatusNotFound, "file missing")
	}
	return fv, nil
}

func (f *fakeCompat) UpdateFileMetadata(ctx context.Context, partition, fileID string, meta map[string]any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := [2]string{partition, fileID}
	fv, ok := f.files[key]
	if !ok {
		return errorfHTTP(http.StatusNotFound, "file missing")
	}
	if fv.Metadata == nil {
		fv.Metadata = map[string]any{}
	}
	maps.Copy(fv.Metadata, meta)
	f.files[key] = fv
	return nil
}

func (f *fakeCompat) DeleteFile(ctx context.Context, partition, fileID string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	key := [2]string{partition, fileID}
	if _, ok := f.files[key]; !ok {
		return errorfHTTP(http.StatusNotFound, "file missing")
	}
	delete(f.files, key)
	return nil
}

func (f *fakeCompat) Partitions(ctx context.Context) ([]PartitionView, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []PartitionView
	for name, created := range f.created {
		p := PartitionView{Name: name, Created: created, Files: []FileView{}, Config: maps.Clone(f.pconfig[name])}
		for k, fv := range f.files {
			if k[0] == name {
				p.Files = append(p.Files, fv)
			}
		}
		sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].FileID < p.Files[j].FileID })
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (f *fakeCompat) DeletePartition(ctx context.Context, partition string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.created[partition]; !ok {
		return errorfHTTP(http.StatusNotFound, "no partition")
	}
	delete(f.created, partition)
	for k := range f.files {
		if k[0] == partition {
			delete(f.files, k)
		}
	}
	return nil
}

// Search returns three chunks per file, scored by file order, and records
// the request so tests can see what the handler asked for.
func (f *fakeCompat) Search(ctx context.Context, req SearchRequest) ([]Hit, error) {
	for k := range req.Filter {
		if k != "file_id" {
			return nil, errs.Errorf(errs.Invalid, "filter on %s not supported by the fake", k)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastReq = req
	want := map[string]bool{}
	for _, p := range req.Partitions {
		want[p] = true
	}
	keys := make([][2]string, 0, len(f.files))
	for k := range f.files {
		if (len(want) == 0 || want[k[0]]) && (req.Filter["file_id"] == "" || req.Filter["file_id"] == k[1]) {
			keys = append(keys, k)
		}
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i][0]+"/"+keys[i][1] < keys[j][0]+"/"+keys[j][1] })
	var hits []Hit
	for i, k := range keys {
		fv := f.files[k]
		for c := range 3 {
			hits = append(hits, Hit{
				Score: 1 - float32(i*3+c)/100, ChunkID: fmt.Sprintf("%s-%d", fv.TaskID[:8], c),
				Partition: fv.Partition, FileID: fv.FileID, FileName: fv.FileName, Page: c + 1, Index: c,
				Text: fmt.Sprintf("chunk %d of %s", c, fv.FileID), Metadata: maps.Clone(fv.Metadata),
				FileSize: fv.Size, Created: fv.Created,
			})
		}
	}
	sort.SliceStable(hits, func(i, j int) bool { return hits[i].Score > hits[j].Score })
	if len(hits) > req.TopK {
		hits = hits[:req.TopK]
	}
	return hits, nil
}

func (f *fakeCompat) QueueInfo(ctx context.Context) (QueueInfo, error) {
	return QueueInfo{TotalSlots: 8, FreeSlots: 5, BusySlots: 3, PoolSize: 2,
		Tasks: map[string]int{"queued": 2, "assigned": 1, "running": 1, "chunking": 1, "embedding": 2,
			"completed": 7, "failed": 1, "cancelled": 2}}, nil
}

type compatEnv struct {
	t    *testing.T
	srv  *httptest.Server
	fake *fakeCompat
}

func newCompatEnv(t *testing.T) *compatEnv {
	t.Helper()
	fake := newFakeCompat()
	s := NewServer(stubBackend{}, compatToken)
	s.MountCompat(fake)
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &compatEnv{t: t, srv: srv, fake: fake}
}

type part struct{ name, filename, body string }

func multipartBody(t *testing.T, parts ...part) (io.Reader, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, p := range parts {
		var w io.Writer
		var err error
		if p.filename != "" {
			w, err = mw.CreateFormFile(p.name, p.filename)
		} else {
			w, err = mw.CreateFormField(p.name)
		}
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, p.body)
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// do sends a request with the token and returns status and body. path is
// sent as given (already escaped), so tests can put %2F in it.
func (e *compatEnv) do(method, path, contentType string, body io.Reader, hdr ...string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL, body)
	if err != nil {
		e.t.Fatal(err)
	}
	req.URL.Opaque = "//" + req.URL.Host + path
	if i := strings.IndexByte(path, '?'); i >= 0 {
		req.URL.Opaque = "//" + req.URL.Host + path[:i]
		req.URL.RawQuery = path[i+1:]
	}
	req.Header.Set("Authorization", "Bearer "+compatToken)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp.StatusCode, strings.TrimSpace(string(b))
}

func (e *compatEnv) upload(method, path string, parts ...part) (int, string) {
	e.t.Helper()
	body, ct := multipartBody(e.t, parts...)
	return e.do(method, path, ct, body)
}

func (e *compatEnv) expect(method, path string, wantCode int, wantBody string) string {
	e.t.Helper()
	code, body := e.do(method, path, "", nil)
	if code != wantCode || (wantBody != "" && body != wantBody) {
		e.t.Fatalf("%s %s = %d %s; want %d %s", method, path, code, body, wantCode, wantBody)
	}
	return body
}

func decode(t *testing.T, body string) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
	return m
}

func jsonEq(t *testing.T, got string, want any) {
	t.Helper()
	var g, w any
	if err := json.Unmarshal([]byte(got), &g); err != nil {
		t.Fatalf("decode %q: %v", got, err)
	}
	wb, _ := json.Marshal(want)
	_ = json.Unmarshal(wb, &w)
	gb, _ := json.Marshal(g)
	wb, _ = json.Marshal(w)
	if !bytes.Equal(gb, wb) {
		t.Fatalf("body\n got %s\nwant %s", gb, wb)
	}
}

var taskURLRe = regexp.MustCompile(`^(https?://[^/]+)/indexer/task/([0-9a-f]{48})$`)

func taskIDFrom(t *testing.T, body, wantBase string) string {
	t.Helper()
	m := decode(t, body)
	u, _ := m["task_status_url"].(string)
	sm := taskURLRe.FindStringSubmatch(u)
	if len(m) != 1 || sm == nil || sm[1] != wantBase {
		t.Fatalf("task_status_url body %s; want one key, base %s, 48-hex id", body, wantBase)
	}
	return sm[2]
}

func TestCompatSequence(t *testing.T) {
	e := newCompatEnv(t)
	const fpath = "/indexer/partition/docs/file/f1"

	// Add, metadata first so the file part streams straight into Submit.
	code, body := e.upload("POST", fpath,
		part{name: "metadata", body: `{"author":"ann","tags":["a"]}`},
		part{name: "file", filename: "report.pdf", body: "%PDF hello"})
	if code != http.StatusCreated {
		t.Fatalf("add = %d %s", code, body)
	}
	id := taskIDFrom(t, body, e.srv.URL)
	if r, got := e.fake.upload(id); got != "%PDF hello" || r.Size != -1 || r.Mode != fsm.ModeCreate || r.FileName != "report.pdf" || r.Partition != "docs" ||
		r.FileID != "f1" || r.Metadata["author"] != "ann" {
		t.Fatalf("submit request %+v body %q", r, got)
	}

	// Task status.
	body = e.expect("GET", "/indexer/task/"+id, 200, "")
	jsonEq(t, body, map[string]any{"task_id": id, "task_state": "QUEUED",
		"details": map[string]any{"file_id": "f1", "partition": "docs",
			"metadata": map[string]any{"author": "ann", "tags": []string{"a"}}}})

	// check-file and file metadata.
	e.expect("GET", "/partition/check-file/docs/file/f1", 200, `"File 'f1' exists in partition 'docs'."`)
	body = e.expect("GET", "/partition/docs/file/f1", 200, "")
	jsonEq(t, body, map[string]any{"metadata": map[string]any{"author": "ann", "tags": []string{"a"},
		"source": "report.pdf", "filename": "report.pdf", "partition": "docs", "file_id": "f1",
		"file_size": "10.00 B", "created_at": "2023-11-14T22:13:20.123456"}, "documents": []any{}})

	// Second add of the same ID.
	code, body = e.upload("POST", fpath, part{name: "file", filename: "report.pdf", body: "x"})
	if code != http.StatusConflict || body != `{"detail":"File 'f1' already exists in partition docs"}` {
		t.Fatalf("second add = %d %s", code, body)
	}

	// Patch, urlencoded, merges into the existing metadata.
	code, body = e.do("PATCH", fpath, "application/x-www-form-urlencoded",
		strings.NewReader(url.Values{"metadata": {`{"author":"bob","year":2024}`}}.Encode()))
	if code != 200 || body != `{"message":"Metadata for file 'f1' successfully updated."}` {
		t.Fatalf("patch = %d %s", code, body)
	}
	// Patch, multipart.
	code, body = e.upload("PATCH", fpath, part{name: "metadata", body: `{"lang":"fr"}`})
	if code != 200 {
		t.Fatalf("multipart patch = %d %s", code, body)
	}
	body = e.expect("GET", "/partition/docs/file/f1", 200, "")
	meta := decode(t, body)["metadata"].(map[string]any)
	if meta["author"] != "bob" || meta["year"] != 2024.0 || meta["lang"] != "fr" || meta["tags"] == nil {
		t.Fatalf("merged metadata %v", meta)
	}
	code, body = e.do("PATCH", fpath, "application/x-www-form-urlencoded", strings.NewReader("metadata=%7Bnope"))
	if code != 400 || body != `{"detail":"Invalid JSON in metadata"}` {
		t.Fatalf("patch bad json = %d %s", code, body)
	}
	code, body = e.do("PATCH", "/indexer/partition/docs/file/ghost", "application/x-www-form-urlencoded",
		strings.NewReader("metadata=%7B%7D"))
	if code != 404 || body != `{"detail":"File 'ghost' not found in partition 'docs'."}` {
		t.Fatalf("patch missing = %d %s", code, body)
	}

	// Rejections before or by the backend.
	code, body = e.upload("POST", "/indexer/partition/docs/file/bin", part{name: "file", filename: "tool.exe", body: "MZ"})
	if code != http.StatusUnsupportedMediaType || !strings.HasPrefix(body, `{"detail":"unsupported file type`) {
		t.Fatalf("exe = %d %s", code, body)
	}
	code, _ = e.upload("POST", "/indexer/partition/docs/file/img", part{name: "file", filename: "a.PNG", body: "x"})
	if code != http.StatusUnsupportedMediaType {
		t.Fatalf("png = %d", code)
	}
	for _, bad := range []string{`{"a":`, `[1,2]`, `"str"`, `null`, `42`} {
		code, body = e.upload("POST", "/indexer/partition/docs/file/m",
			part{name: "metadata", body: bad}, part{name: "file", filename: "a.txt", body: "x"})
		if code != 400 {
			t.Fatalf("metadata %s = %d %s", bad, code, body)
		}
	}
	code, body = e.upload("POST", "/indexer/partition/docs/file/%20%20", part{name: "file", filename: "a.txt", body: "x"})
	if code != 400 || body != `{"detail":"File ID cannot be empty."}` {
		t.Fatalf("blank id = %d %s", code, body)
	}
	code, body = e.upload("POST", "/indexer/partition/docs/file/a%2Fb", part{name: "file", filename: "a.txt", body: "x"})
	if code != 400 || body != `{"detail":"File ID contains forbidden characters: /"}` {
		t.Fatalf("slash id = %d %s", code, body)
	}
	code, body = e.upload("POST", "/indexer/partition/docs/file/nofile", part{name: "metadata", body: `{}`})
	if code != 422 || body != `{"detail":[{"type":"missing","loc":["body","file"],"msg":"Field required","input":null}]}` {
		t.Fatalf("no file = %d %s", code, body)
	}
	code, body = e.do("POST", "/indexer/partition/docs/file/plain", "text/plain", strings.NewReader("x"))
	if code != 400 {
		t.Fatalf("not multipart = %d %s", code, body)
	}
	code, body = e.upload("POST", "/indexer/partition/docs/file/big",
		part{name: "file", filename: "big.txt", body: strings.Repeat("x", int(e.fake.maxBytes)+1)})
	if code != http.StatusRequestEntityTooLarge {
		t.Fatalf("too large = %d %s", code, body)
	}
	if n := e.fake.fileCount(); n != 1 {
		t.Fatalf("rejected uploads left %d files", n)
	}

	// Replace: 202 on an existing file, 404 on a missing one.
	code, body = e.upload("PUT", fpath, part{name: "file", filename: "report2.pdf", body: "v2"})
	if code != http.StatusAccepted {
		t.Fatalf("put = %d %s", code, body)
	}
	id2 := taskIDFrom(t, body, e.srv.URL)
	if r, got := e.fake.upload(id2); id2 == id || got != "v2" || r.Mode != fsm.ModeReplace {
		t.Fatalf("replace task %s: %+v body %q", id2, r, got)
	}
	code, body = e.upload("PUT", "/indexer/partition/docs/file/ghost", part{name: "file", filename: "a.txt", body: "x"})
	if code != 404 || body != `{"detail":"'ghost' not found in partition 'docs'"}` {
		t.Fatalf("put missing = %d %s", code, body)
	}

	// Second file, metadata after the file part (spooled path).
	code, body = e.upload("POST", "/indexer/partition/docs/file/f2",
		part{name: "file", filename: "notes.md", body: "# notes"},
		part{name: "metadata", body: `{"kind":"note"}`})
	if code != 201 {
		t.Fatalf("add f2 = %d %s", code, body)
	}
	id3 := taskIDFrom(t, body, e.srv.URL)
	if r, got := e.fake.upload(id3); got != "# notes" || r.Metadata["kind"] != "note" || r.Size != int64(len(got)) {
		t.Fatalf("spooled upload: %+v body %q", r, got)
	}
	code, _ = e.upload("POST", "/indexer/partition/other/file/o1", part{name: "file", filename: "o.txt", body: "o"})
	if code != 201 {
		t.Fatalf("add o1 = %d", code)
	}

	// Search.
	body = e.expect("GET", "/search/partition/docs/file/f2?text=notes&top_k=2", 200, "")
	docs := decode(t, body)["documents"].([]any)
	if len(docs) != 2 || e.fake.lastSearch().TopK != 2 || e.fake.lastSearch().Filter["file_id"] != "f2" {
		t.Fatalf("file search: %d docs, backend request %+v", len(docs), e.fake.lastSearch())
	}
	for _, d := range docs {
		if md := d.(map[string]any)["metadata"].(map[string]any); md["file_id"] != "f2" {
			t.Fatalf("file search returned %v", md)
		}
	}
	first := docs[0].(map[string]any)
	jsonEq(t, mustJSON(t, first), map[string]any{
		"link":    e.srv.URL + "/extract/" + id3[:8] + "-0",
		"content": "chunk 0 of f2",
		"metadata": map[string]any{"kind": "note", "_id": id3[:8] + "-0", "score": first["metadata"].(map[string]any)["score"],
			"file_id": "f2", "partition": "docs", "filename": "notes.md", "page": 1, "chunk_index": 0,
			"source": "notes.md", "file_size": "7.00 B", "created_at": "2023-11-14T22:13:20.123456"},
	})

	body = e.expect("GET", "/search?partitions=all&text=hello", 200, "")
	if docs := decode(t, body)["documents"].([]any); len(docs) != 5 || e.fake.lastSearch().Partitions != nil || e.fake.lastSearch().TopK != 5 {
		t.Fatalf("search all: %d docs, request %+v", len(docs), e.fake.lastSearch())
	}
	e.expect("GET", "/search?partitions=docs&partitions=other&text=hello&top_k=50", 200, "")
	if got := e.fake.lastSearch(); fmt.Sprint(got.Partitions) != "[docs other]" || got.TopK != 50 || got.Text != "hello" {
		t.Fatalf("search two partitions: request %+v", got)
	}
	body = e.expect("GET", "/search/partition/other?text=o", 200, "")
	if docs := decode(t, body)["documents"].([]any); len(docs) != 3 || fmt.Sprint(e.fake.lastSearch().Partitions) != "[other]" {
		t.Fatalf("search partition: %s", body)
	}
	e.expect("GET", "/search?partitions=all", 422, `{"detail":[{"type":"missing","loc":["query","text"],"msg":"Field required","input":null}]}`)
	e.expect("GET", "/search/partition/docs?text=x&top_k=zero", 422,
		`{"detail":[{"type":"int_parsing","loc":["query","top_k"],"msg":"Input should be a valid integer, unable to parse string as an integer","input":"zero"}]}`)
	e.expect("GET", "/search/partition/docs?text=x&top_k=0", 422,
		`{"detail":[{"type":"greater_than_equal","loc":["query","top_k"],"msg":"Input should be greater than or equal to 1","input":"0","ctx":{"ge":1}}]}`)

	// Delete a file: 204 with no body, then 404.
	e.expect("DELETE", "/indexer/partition/docs/file/f2", 204, "")
	e.expect("DELETE", "/indexer/partition/docs/file/f2", 404, `{"detail":"'f2' not found in partition 'docs'"}`)
	e.expect("GET", "/partition/check-file/docs/file/f2", 404, `{"detail":"File 'f2' not found in partition 'docs'."}`)
	e.expect("GET", "/partition/docs/file/f2", 404, `{"detail":"File 'f2' not found in partition 'docs'."}`)

	// Partitions.
	body = e.expect("GET", "/partition/", 200, "")
	jsonEq(t, body, map[string]any{"partitions": []any{
		map[string]any{"partition": "docs", "created_at": "2023-11-14T22:13:20+00:00", "file_count": 1, "document_count": 1},
		map[string]any{"partition": "other", "created_at": "2023-11-14T22:13:20+00:00", "file_count": 1, "document_count": 1}}})
	e.expect("GET", "/partition", 200, body)
	body = e.expect("GET", "/partition/docs", 200, "")
	files := decode(t, body)["files"].([]any)
	if len(files) != 1 {
		t.Fatalf("files %s", body)
	}
	f1 := files[0].(map[string]any)
	if f1["link"] != e.srv.URL+"/partition/docs/file/f1" || f1["file_id"] != "f1" || f1["filename"] != "report2.pdf" || f1["partition"] != "docs" {
		t.Fatalf("file entry %v", f1)
	}
	e.expect("GET", "/partition/docs/", 200, body)
	e.expect("GET", "/partition/nope", 404, `{"detail":"Partition 'nope' not found."}`)
	e.expect("DELETE", "/partition/docs", 204, "")
	e.expect("DELETE", "/partition/docs", 404, `{"detail":"Partition 'docs' not found."}`)
	e.expect("GET", "/partition/docs", 404, `{"detail":"Partition 'docs' not found."}`)

	// Tasks.
	e.expect("GET", "/indexer/task/nope", 404, `{"detail":"Task 'nope' not found."}`)
	e.expect("GET", "/indexer/task/nope/error", 404, `{"detail":"Task 'nope' not found."}`)
	e.expect("GET", "/indexer/task/"+id+"/error", 404, fmt.Sprintf(`{"detail":"No error found for task '%s'."}`, id))
	e.fake.setTask(id, string(fsm.Failed), "", "convert: boom\nexit status 1\n")
	body = e.expect("GET", "/indexer/task/"+id, 200, "")
	if m := decode(t, body); m["task_state"] != "FAILED" || m["error_url"] != e.srv.URL+"/indexer/task/"+id+"/error" {
		t.Fatalf("failed task %s", body)
	}
	body = e.expect("GET", "/indexer/task/"+id+"/error", 200, "")
	jsonEq(t, body, map[string]any{"task_id": id, "traceback": []string{"convert: boom", "exit status 1"}})
	e.fake.setTask(id, string(fsm.Cancelled), "", "")
	body = e.expect("GET", "/indexer/task/"+id+"/error", 200, "")
	jsonEq(t, body, map[string]any{"task_id": id, "traceback": []string{"Task was cancelled."}})

	// Health and queue.
	e.expect("GET", "/health_check", 200, `"RAG API is up."`)
	body = e.expect("GET", "/queue/info", 200, "")
	jsonEq(t, body, map[string]any{
		"workers": map[string]any{"total_slots": 8, "free_slots": 5, "busy_slots": 3, "pool_size": 2, "max_per_actor": 4},
		"tasks": map[string]any{"active": 7, "total_completed": 7, "total_failed": 1, "total_cancelled": 2,
			"active_statuses": map[string]any{"QUEUED": 3, "SERIALIZING": 1, "CHUNKING": 1, "INSERTING": 2}},
	})
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCompatForwardedURL(t *testing.T) {
	e := newCompatEnv(t)
	body, ct := multipartBody(t, part{name: "file", filename: "a.txt", body: "x"})
	code, resp := e.do("POST", "/indexer/partition/p/file/a", ct, body,
		"X-Forwarded-Proto", "https, http", "X-Forwarded-Host", "rag.example.com")
	if code != 201 {
		t.Fatalf("add = %d %s", code, resp)
	}
	taskIDFrom(t, resp, "https://rag.example.com")
}

func TestCompatRequiresToken(t *testing.T) {
	e := newCompatEnv(t)
	for _, path := range []string{"/partition/", "/indexer/task/x", "/queue/info", "/queue/tasks", "/extract/x",
		"/indexer/supported/types", "/search?text=x"} {
		resp, err := http.Get(e.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || strings.TrimSpace(string(b)) != `{"detail":"Not authenticated"}` {
			t.Fatalf("GET %s without token = %d %s", path, resp.StatusCode, b)
		}
	}
	body, ct := multipartBody(t, part{name: "file", filename: "a.txt", body: "x"})
	req, _ := http.NewRequest("POST", e.srv.URL+"/indexer/partition/p/file/a", body)
	req.Header.Set("Content-Type", ct)
	req.Header.Set("Authorization", "Bearer wrong")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || e.fake.fileCount() != 0 || strings.TrimSpace(string(b)) != `{"detail":"Invalid token"}` {
		t.Fatalf("upload with wrong token = %d, %d files", resp.StatusCode, e.fake.fileCount())
	}
}

func TestRagTaskState(t *testing.T) {
	for _, c := range []struct{ state, stage, want string }{
		{"queued", "", "QUEUED"},
		{"assigned", "", "QUEUED"},
		{"running", "", "SERIALIZING"},
		{"running", fsm.StageLoading, "SERIALIZING"},
		{"running", fsm.StageChunking, "CHUNKING"},
		{"running", fsm.StageEmbedding, "INSERTING"},
		{"running", fsm.StageInserting, "INSERTING"},
		{"completed", "", "COMPLETED"},
		{"failed", "", "FAILED"},
		{"cancelled", "", "CANCELLED"},
	} {
		if got := ragTaskState(c.state, c.stage); got != c.want {
			t.Errorf("ragTaskState(%q, %q) = %q; want %q", c.state, c.stage, got, c.want)
		}
	}
}

// errorfHTTP builds the error a real backend returns for a status.
func errorfHTTP(code int, format string, args ...any) error {
	return errs.Errorf(kindOfStatus(code), format, args...)
}
