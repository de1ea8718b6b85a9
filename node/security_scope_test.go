package node

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// scopeWorld is what the attack test set up on a real node: two tenants'
// partitions (pa, the tokens' own; pb and "pa/hidden", not theirs) with
// indexed files whose text holds secrets.
type scopeWorld struct {
	base                 string
	paTask, paChunk      string
	pbTask, pbChunk      string
	hiddenTask           string
	markers              []string // what no scoped answer may contain
	readTok, indexTok    string
	admin                string
	paFile, pbFile, hidF string
}

func (w scopeWorld) call(t *testing.T, method, path, auth, ctype string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, w.base+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if auth != "" {
		req.Header.Set("Authorization", "Bearer "+auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

var chunkIDInLink = regexp.MustCompile(`/extract/([^"/?]+)`)

func setUpScopeWorld(t *testing.T) scopeWorld {
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) { cfg.Token = "admintok" })
	n := ns[0]
	w := scopeWorld{base: "http://" + n.HTTPAddr(), admin: "admintok", paFile: "pub.txt", pbFile: "secret.txt", hidF: "h.txt"}
	ctx := ctxT(t, time.Minute)
	waitFor(t, 20*time.Second, "a leader", func() bool { return c.leader() != nil })
	for _, role := range []string{fsm.RoleRead, fsm.RoleIndex} {
		tok, err := clientOf(n).CreateToken(ctx, transport.TokenRequest{Role: role, Partition: "pa"})
		if err != nil {
			t.Fatal(err)
		}
		if role == fsm.RoleRead {
			w.readTok = tok.Secret
		} else {
			w.indexTok = tok.Secret
		}
	}
	upload := func(partition, fileID, text string) string {
		var buf bytes.Buffer
		mw := multipart.NewWriter(&buf)
		fw, _ := mw.CreateFormFile("file", fileID)
		fw.Write([]byte(text))
		mw.WriteField("metadata", `{"relationship_id":"rel"}`)
		mw.Close()
		code, body := w.call(t, "POST", "/indexer/partition/"+url.PathEscape(partition)+"/file/"+url.PathEscape(fileID), w.admin, mw.FormDataContentType(), buf.Bytes())
		m := taskURL.FindStringSubmatch(body)
		if code != http.StatusCreated || m == nil {
			t.Fatalf("upload %s/%s: %d %s", partition, fileID, code, body)
		}
		return m[2]
	}
	w.paTask = upload("pa", w.paFile, "The public notice of tenant A: opening hours are nine to five.")
	w.pbTask = upload("pb", w.pbFile, "Tenant B payroll. SECRETPBX the salary of the director is 9 million.")
	w.hiddenTask = upload("pa/hidden", w.hidF, "Hidden tenant. SECRETHIDX do not read.")
	for _, id := range []string{w.paTask, w.pbTask, w.hiddenTask} {
		waitFor(t, 60*time.Second, "task "+id+" completed", func() bool {
			done := false
			n.fsm.View(func(s *fsm.State) { done = s.Tasks[id] != nil && s.Tasks[id].State == fsm.Completed })
			return done
		})
	}
	chunkOf := func(partition string) string {
		code, body := w.call(t, "GET", "/partition/"+url.PathEscape(partition)+"/file/"+url.PathEscape(map[string]string{"pa": w.paFile, "pb": w.pbFile}[partition]), w.admin, "", nil)
		m := chunkIDInLink.FindStringSubmatch(body)
		if code != http.StatusOK || m == nil {
			t.Fatalf("chunks of %s: %d %s", partition, code, body)
		}
		return m[1]
	}
	w.paChunk, w.pbChunk = chunkOf("pa"), chunkOf("pb")
	w.markers = []string{"SECRETPBX", "SECRETHIDX", w.pbTask, w.hiddenTask, w.pbChunk, w.pbFile, `"pb"`, "pa/hidden"}
	return w
}

// ledgerOf is the part of the ledger an attack must not change: every
// partition, and each file's live task and every task's state outside pa.
func ledgerOf(t *testing.T, w scopeWorld) string {
	t.Helper()
	code, body := w.call(t, "GET", "/v1/tasks", w.admin, "", nil)
	if code != http.StatusOK {
		t.Fatalf("tasks: %d %s", code, body)
	}
	var tasks []transport.TaskView
	if err := json.Unmarshal([]byte(body), &tasks); err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, tv := range tasks {
		if tv.Partition != "pa" {
			lines = append(lines, tv.ID+" "+tv.Partition+"/"+tv.FileID+" "+string(tv.State))
		}
	}
	_, parts := w.call(t, "GET", "/partition", w.admin, "", nil)
	var pv struct {
		Partitions []struct {
			Partition string `json:"partition"`
			Files     int    `json:"file_count"`
		} `json:"partitions"`
	}
	json.Unmarshal([]byte(parts), &pv)
	for _, p := range pv.Partitions {
		lines = append(lines, "partition "+p.Partition+" "+strings.Repeat("f", p.Files))
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}

// attack is one way of pointing a request at another tenant's data.
type attack struct {
	name string
	// path values; query and form fields
	partition, fileID, task, chunk string
	query                          url.Values
	form                           map[string]string
	jsonParts                      []string // nil: no "partitions" key
}

func attacksOn(w scopeWorld) []attack {
	other := func(p string) url.Values {
		return url.Values{"partition": {p}, "partitions": {p}, "text": {"SECRETPBX"}}
	}
	otherForm := func(p string) map[string]string {
		return map[string]string{"source_partition": p, "source_file_id": w.pbFile, "metadata": `{"partition":"` + p + `"}`}
	}
	return []attack{
		// Everything the request names is pb's.
		{name: "pb everywhere", partition: "pb", fileID: w.pbFile, task: w.pbTask, chunk: w.pbChunk,
			query: other("pb"), form: otherForm("pb"), jsonParts: []string{"pb"}},
		// The hole of issue 21: pb's objects, with ?partition=pa added.
		{name: "pb objects, pa in the query", partition: "pb", fileID: w.pbFile, task: w.pbTask, chunk: w.pbChunk,
			query: url.Values{"partition": {"pa"}, "partitions": {"pa"}, "text": {"SECRETPBX"}}, form: otherForm("pb"), jsonParts: []string{"pb"}},
		// The token's own partition in the path, another one hidden in
		// the query, the form, the metadata or the body.
		{name: "pa in the path, pb elsewhere", partition: "pa", fileID: w.paFile, task: w.pbTask, chunk: w.pbChunk,
			query: other("pb"), form: otherForm("pb"), jsonParts: []string{"pa", "pb"}},
		{name: "pa in the path, a move to pc", partition: "pa", fileID: w.paFile, task: w.paTask, chunk: w.paChunk,
			query: url.Values{"text": {"x"}}, form: map[string]string{"metadata": `{"partition":"pc"}`}, jsonParts: []string{"pa"}},
		// An escaped slash: the partition "pa/hidden", not "pa".
		{name: "%2F", partition: "pa%2Fhidden", fileID: w.hidF, task: w.hiddenTask, chunk: w.pbChunk,
			query: url.Values{"partition": {"pa/hidden"}, "text": {"SECRETHIDX"}}, form: otherForm("pa/hidden"), jsonParts: []string{"pa/hidden"}},
		// Naming no partition means all of them.
		{name: "no partition named", partition: "pa", fileID: w.paFile, task: w.pbTask, chunk: w.pbChunk,
			query: url.Values{"text": {"SECRETPBX"}}, form: map[string]string{}, jsonParts: nil},
	}
}

// build turns a route and an attack into a request: path values filled
// in, the query appended, and a body of the route's kind (JSON for /v1,
// a multipart form with a file part elsewhere).
func (a attack) build(rt transport.Route, copyTarget string) (method, path, ctype string, body []byte) {
	method = rt.Method()
	if method == "" {
		method = "GET"
	}
	fileID := a.fileID
	if strings.HasSuffix(rt.Path(), "/copy") {
		fileID = copyTarget
	}
	r := strings.NewReplacer("{partition}", a.partition, "{file_id}", url.PathEscape(fileID), "{task_id}", a.task, "{id}", a.task,
		"{extract_id}", a.chunk, "{relationship_id}", "rel", "{kind}", "file", "{action}", "ancestors", "{rest...}", url.PathEscape(fileID)+"/ancestors", "{op}", "list",
		"{hash}", strings.Repeat("ab", 32), "{$}", "")
	path = r.Replace(rt.Path())
	if len(a.query) > 0 {
		path += "?" + a.query.Encode()
	}
	if method == "GET" || method == "DELETE" {
		return method, path, "", nil
	}
	if strings.HasPrefix(rt.Path(), "/v1/") {
		m := map[string]any{"text": "SECRETPBX", "top_k": 5}
		if a.jsonParts != nil {
			m["partitions"] = a.jsonParts
		}
		body, _ = json.Marshal(m)
		return method, path, "application/json", body
	}
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for k, v := range a.form {
		mw.WriteField(k, v)
	}
	fw, _ := mw.CreateFormFile("file", "x.txt")
	fw.Write([]byte("planted by an attacker"))
	mw.Close()
	return method, path, mw.FormDataContentType(), buf.Bytes()
}

// TestScopedTokenNeverTouchesAnotherPartition is issue 21's table: every
// route of the route table × read and index tokens scoped to pa × every
// place a partition can hide. A scoped token never gets a 2xx that reads
// another partition (no 2xx body holds its secrets, IDs or name), and
// nothing outside pa changes.
func TestScopedTokenNeverTouchesAnotherPartition(t *testing.T) {
	w := setUpScopeWorld(t)

	// The checks below can fail: the admin token reads pb's secret through
	// the same routes, and a scoped token reads its own partition.
	if code, body := w.call(t, "GET", "/extract/"+w.pbChunk, w.admin, "", nil); code != 200 || !strings.Contains(body, "SECRETPBX") {
		t.Fatalf("admin extract of pb's chunk: %d %s", code, body)
	}
	for _, p := range []string{"/extract/" + w.paChunk, "/indexer/task/" + w.paTask, "/partition/pa/chunks", "/search/partition/pa?text=public"} {
		if code, body := w.call(t, "GET", p, w.readTok, "", nil); code != 200 {
			t.Fatalf("scoped read of its own partition %s: %d %s", p, code, body)
		}
	}
	before := ledgerOf(t, w)

	routes := transport.Routes()
	// Deletions last, so that a deletion the check let through shows as a
	// changed ledger rather than as later requests finding nothing.
	sort.SliceStable(routes, func(i, j int) bool {
		return routes[i].Method() != "DELETE" && routes[j].Method() == "DELETE"
	})
	tried := 0
	for _, rt := range routes {
		for _, tok := range []struct{ name, secret string }{{"read", w.readTok}, {"index", w.indexTok}} {
			for _, a := range attacksOn(w) {
				if rt.Method() == "DELETE" && strings.Contains(rt.Path(), "{partition}") && a.partition == "pa" {
					continue // deleting in its own partition is the token's right
				}
				method, path, ctype, body := a.build(rt, "stolen")
				code, answer := w.call(t, method, path, tok.secret, ctype, body)
				tried++
				if code < 200 || code > 299 {
					continue
				}
				for _, m := range w.markers {
					if strings.Contains(answer, m) {
						t.Errorf("%s token, %s, %s %s: %d with %q in the answer:\n%.400s", tok.name, a.name, method, path, code, m, answer)
					}
				}
			}
		}
	}
	if tried < 6*len(routes) {
		t.Fatalf("only %d requests for %d routes", tried, len(routes))
	}
	if after := ledgerOf(t, w); after != before {
		t.Fatalf("the attacks changed the ledger outside pa:\nbefore:\n%s\nafter:\n%s", before, after)
	}
	// The copy attack targeted pa/stolen from pb's file.
	if code, body := w.call(t, "GET", "/partition/pa/file/stolen", w.admin, "", nil); code != http.StatusNotFound {
		t.Fatalf("pb's file copied into pa: %d %.300s", code, body)
	}
	// A listing a scoped token may call is filtered to its partition.
	code, body := w.call(t, "GET", "/partition", w.readTok, "", nil)
	if code != 200 || !strings.Contains(body, `"pa"`) || strings.Contains(body, `"pb"`) {
		t.Fatalf("scoped partition listing: %d %s", code, body)
	}
	code, body = w.call(t, "GET", "/queue/tasks", w.readTok, "", nil)
	var q struct {
		Tasks []struct {
			ID      string `json:"task_id"`
			Details struct {
				Partition string `json:"partition"`
			} `json:"details"`
		} `json:"tasks"`
	}
	if err := json.Unmarshal([]byte(body), &q); code != 200 || err != nil || len(q.Tasks) == 0 {
		t.Fatalf("scoped queue listing: %d %v %.300s", code, err, body)
	}
	for _, tk := range q.Tasks {
		if tk.Details.Partition != "pa" || tk.ID == w.pbTask {
			t.Fatalf("scoped queue listing shows %s of partition %q", tk.ID, tk.Details.Partition)
		}
	}
}
