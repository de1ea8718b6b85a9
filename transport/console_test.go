package transport

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/errs"
)

// fakeConsole answers with fixed values and records the task query.
type fakeConsole struct{ q ConsoleTaskQuery }

func (f *fakeConsole) ConsoleSummary(ctx context.Context) (ConsoleSummary, error) {
	return ConsoleSummary{Node: ConsoleNodeRef{ID: "id1", Name: "n1"}, Leader: ConsoleNodeRef{ID: "id1", Name: "n1"},
		Term: 2, CommitIndex: 10, AppliedIndex: 10, Members: []Member{{ID: "id1", Name: "n1", GPUs: []MemberGPU{}}},
		Counts: map[string]int{"queued": 1}, Stages: map[string]int{}, QueueDepth: 1,
		GPUs: []ConsoleGPU{{NodeID: "id1", Node: "n1", Index: 0, Name: "gpu", MilliTotal: 1000, MilliUsed: 250, MemTotal: 100, MemUsed: 10, MemReserve: 5,
			Tasks: []ConsoleGPUTask{{TaskID: "t1", FileID: "a.txt", Milli: 250, Mem: 10}}}},
		CPUs: []ConsoleCPU{{NodeID: "id2", Node: "n2", Slots: 2, Used: 1}}, LastEvent: 3, ObservingSince: 7}, nil
}

func (f *fakeConsole) ConsoleTasks(ctx context.Context, q ConsoleTaskQuery) (ConsoleTaskPage, error) {
	f.q = q
	return ConsoleTaskPage{Total: 1, Offset: q.Offset, Limit: q.Limit, Tasks: []TaskView{{ID: "t1", State: "queued", Partition: "p", FileID: "a.txt", GPU: -1, Attempt: 1, Submitted: 5}}}, nil
}

func (f *fakeConsole) ConsoleTask(ctx context.Context, id string) (ConsoleTaskDetail, error) {
	if id != "t1" {
		return ConsoleTaskDetail{}, errs.Errorf(errs.NotFound, "task %s not found", id)
	}
	return ConsoleTaskDetail{Task: TaskView{ID: "t1", State: "failed", Partition: "p", FileID: "a.txt", GPU: -1, Attempt: 1, Error: "boom"},
		History: []TaskHistory{{Time: 1, State: "queued", Attempt: 1}, {Time: 2, State: "failed", NodeID: "id1", Attempt: 1, Error: "boom"}}, ObservingSince: 7}, nil
}

func (f *fakeConsole) ConsoleEvents(ctx context.Context, since uint64) ([]ConsoleEvent, error) {
	return []ConsoleEvent{{Seq: since + 1, Time: 9, Kind: "leader", NodeID: "id1", Msg: "n1 is leader"}}, nil
}

func (f *fakeConsole) ConsoleSeries(ctx context.Context) (ConsoleSeries, error) {
	return ConsoleSeries{BucketSeconds: 10, Points: []ConsolePoint{{Time: 10, Completed: 2, QueueDepth: 3, StageMeanMS: map[string]float64{"loading": 1.5}}}}, nil
}

func (f *fakeConsole) Retry(ctx context.Context, id string) (TaskView, error) {
	if id != "t1" {
		return TaskView{}, errs.Errorf(errs.Conflict, "task %s is running", id)
	}
	return TaskView{ID: "t2", State: "queued", Partition: "p", FileID: "a.txt", GPU: -1, Attempt: 1}, nil
}

func consoleServer(t *testing.T, metricsOpen bool) (*httptest.Server, *fakeConsole) {
	f := &fakeConsole{}
	s := NewServer(nil, "secret")
	s.MountConsole(f, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ragnode_up 1\n") }), metricsOpen)
	ts := httptest.NewServer(s)
	t.Cleanup(ts.Close)
	return ts, f
}

func get(t *testing.T, ts *httptest.Server, method, path, token string) (int, string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(method, ts.URL+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), resp.Header
}

// TestConsoleJSONShapes pins the exact JSON the page reads.
func TestConsoleJSONShapes(t *testing.T) {
	ts, f := consoleServer(t, false)
	for _, c := range []struct {
		method, path string
		code         int
		want         string
	}{
		{"GET", "/v1/console/summary", 200, `{"node":{"id":"id1","name":"n1"},"leader":{"id":"id1","name":"n1"},"term":2,"commit_index":10,"applied_index":10,` +
			`"members":[{"id":"id1","name":"n1","http_addr":"","raft_addr":"","serf_addr":"","serf_status":"","raft_suffrage":"","leader":false,"version":"","gpus":[],"cpu_slots":0,"running":0,"draining":false}],` +
			`"counts":{"queued":1},"stages":{},"queue_depth":1,` +
			`"gpus":[{"node_id":"id1","node":"n1","index":0,"name":"gpu","milli_total":1000,"milli_used":250,"mem_total":100,"mem_used":10,"mem_reserve":5,"tasks":[{"task_id":"t1","file_id":"a.txt","milli":250,"mem":10}]}],` +
			`"cpus":[{"node_id":"id2","node":"n2","slots":2,"used":1}],"last_event":3,"observing_since":7,"leader_changes_10m":0,"longest_leaderless_ms":0,"election_churn":false}`},
		{"GET", "/v1/console/tasks?state=failed&q=a.t&offset=5&limit=10", 200, `{"total":1,"offset":5,"limit":10,"tasks":[{"id":"t1","state":"queued","partition":"p","file_id":"a.txt","size":0,"node_id":"","gpu":-1,"attempt":1,"failures":0,"error":"","chunks":0,"submitted":5}]}`},
		{"GET", "/v1/console/tasks/t1", 200, `{"task":{"id":"t1","state":"failed","partition":"p","file_id":"a.txt","size":0,"node_id":"","gpu":-1,"attempt":1,"failures":0,"error":"boom","chunks":0,"submitted":0},` +
			`"history":[{"time":1,"state":"queued","attempt":1},{"time":2,"state":"failed","node_id":"id1","attempt":1,"error":"boom"}],"observing_since":7}`},
		{"GET", "/v1/console/tasks/nope", 404, `{"error":"task nope not found"}`},
		{"GET", "/v1/console/events?since=4", 200, `[{"seq":5,"time":9,"kind":"leader","node_id":"id1","msg":"n1 is leader"}]`},
		{"GET", "/v1/console/events?since=-1", 400, `{"error":"since must be a non-negative integer, got \"-1\""}`},
		{"GET", "/v1/console/series", 200, `{"bucket_seconds":10,"points":[{"time":10,"completed":2,"failed":0,"queue_depth":3,"stage_mean_ms":{"loading":1.5}}]}`},
		{"GET", "/v1/console/tasks?limit=x", 400, `{"error":"limit must be an integer, got \"x\""}`},
		{"POST", "/v1/console/tasks/t1/retry", 201, `{"id":"t2","state":"queued","partition":"p","file_id":"a.txt","size":0,"node_id":"","gpu":-1,"attempt":1,"failures":0,"error":"","chunks":0,"submitted":0}`},
		{"POST", "/v1/console/tasks/t9/retry", 409, `{"error":"task t9 is running"}`},
	} {
		code, body, _ := get(t, ts, c.method, c.path, "secret")
		if code != c.code || strings.TrimSpace(body) != c.want {
			t.Errorf("%s %s: %d %s\nwant %d %s", c.method, c.path, code, body, c.code, c.want)
		}
	}
	if f.q != (ConsoleTaskQuery{State: "failed", Q: "a.t", Offset: 5, Limit: 10}) {
		t.Errorf("query reached the backend as %+v", f.q)
	}
	var v any
	_, body, _ := get(t, ts, "GET", "/v1/console/summary", "secret")
	if err := json.Unmarshal([]byte(body), &v); err != nil {
		t.Fatal(err)
	}
}

// TestConsoleAuth: the page is public, every data route and /metrics keep
// the token (unless metrics are opened), and nothing else becomes public.
func TestConsoleAuth(t *testing.T) {
	ts, _ := consoleServer(t, false)
	for _, c := range []struct {
		method, path, token string
		code                int
	}{
		{"GET", "/ui/", "", 200},
		{"GET", "/ui/app.js", "", 200},
		{"GET", "/ui/style.css", "", 200},
		{"HEAD", "/ui/", "", 200},
		{"GET", "/", "", 302},
		{"GET", "/ui", "", 302},
		{"GET", "/ui/missing.js", "", 404},
		{"POST", "/ui/", "", 401},
		{"GET", "/v1/console/summary", "", 401},
		{"GET", "/v1/console/summary", "wrong", 401},
		{"POST", "/v1/console/tasks/t1/retry", "", 401},
		{"GET", "/metrics", "", 401},
		{"GET", "/metrics", "secret", 200},
		{"GET", "/v1/status", "", 401},
		{"GET", "/uix", "", 401},
	} {
		code, _, h := get(t, ts, c.method, c.path, c.token)
		if code != c.code {
			t.Errorf("%s %s (token %q): %d, want %d", c.method, c.path, c.token, code, c.code)
		}
		if code == 302 && h.Get("Location") != "/ui/" {
			t.Errorf("%s redirects to %q", c.path, h.Get("Location"))
		}
	}
	_, page, _ := get(t, ts, "GET", "/ui/", "")
	for _, s := range []string{`<script src="app.js">`, `id="members"`, `id="login-form"`} {
		if !strings.Contains(page, s) {
			t.Errorf("page lacks %s", s)
		}
	}
	if strings.Contains(page, "http://") || strings.Contains(page, "https://") {
		t.Error("page references an outside URL")
	}
	open, _ := consoleServer(t, true)
	if code, body, _ := get(t, open, "GET", "/metrics", ""); code != 200 || body != "ragnode_up 1\n" {
		t.Errorf("open metrics: %d %q", code, body)
	}
	if code, _, _ := get(t, open, "GET", "/v1/console/summary", ""); code != 401 {
		t.Errorf("--metrics-open opened the summary too: %d", code)
	}
}
