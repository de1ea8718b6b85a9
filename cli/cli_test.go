package cli

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/node"
)

func run(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := Run(append([]string{"ragnode"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

func startNode(t *testing.T, token string) *node.Node {
	t.Helper()
	n, err := node.Start(node.Config{DataDir: t.TempDir(), Name: "solo", Bind: "127.0.0.1", Timing: node.TimingFast,
		GPU: gpu.Config{Declared: 1}, TaskMilli: 250, Token: token, CheckInvariants: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill)
	deadline := time.Now().Add(10 * time.Second)
	for n.Raft().Leader() == "" {
		if time.Now().After(deadline) {
			t.Fatal("no leader")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return n
}

func TestContractJSONOutputs(t *testing.T) {
	n := startNode(t, "tok")
	addr := n.HTTPAddr()
	var members []map[string]any
	deadline := time.Now().Add(10 * time.Second)
	for {
		out, errOut, code := run(t, "members", "--addr", addr, "--token", "tok", "-o", "json")
		if code != 0 {
			t.Fatalf("members: %d %s", code, errOut)
		}
		members = nil
		if err := json.Unmarshal([]byte(out), &members); err != nil {
			t.Fatalf("members -o json is not a JSON array: %v\n%s", err, out)
		}
		if len(members) == 1 && members[0]["gpus"] != nil && len(members[0]["gpus"].([]any)) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("members never showed the node's GPU: %s", out)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, k := range []string{"id", "name", "serf_status", "raft_suffrage", "leader", "http_addr", "gpus", "running"} {
		if _, ok := members[0][k]; !ok {
			t.Fatalf("members element lacks %q: %v", k, members[0])
		}
	}
	g := members[0]["gpus"].([]any)[0].(map[string]any)
	for _, k := range []string{"index", "uuid", "name", "milli_total", "milli_used", "mem_total", "mem_used"} {
		if _, ok := g[k]; !ok {
			t.Fatalf("gpu element lacks %q: %v", k, g)
		}
	}
	out, _, code := run(t, "status", "--addr", addr, "--token", "tok", "-o", "json")
	var st map[string]any
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil {
		t.Fatalf("status -o json: %d %s", code, out)
	}
	for _, k := range []string{"leader_id", "term", "commit_index", "applied_index", "voters", "failure_tolerance", "healthy"} {
		if _, ok := st[k]; !ok {
			t.Fatalf("status lacks %q: %v", k, st)
		}
	}
	// Submit a folder with flags after the paths, wait for it.
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("alpha"), 0o644)
	os.WriteFile(filepath.Join(dir, "sub", "b.md"), []byte("# beta"), 0o644)
	out, errOut, code := run(t, "submit", dir, "--addr", addr, "--token", "tok", "--partition", "legal", "--metadata", "team=x", "--wait", "-o", "json")
	if code != 0 {
		t.Fatalf("submit --wait: %d %s", code, errOut)
	}
	var tasks []map[string]any
	if err := json.Unmarshal([]byte(out), &tasks); err != nil || len(tasks) != 2 {
		t.Fatalf("submit -o json: %v %s", err, out)
	}
	ids := map[string]bool{}
	for _, tk := range tasks {
		for _, k := range []string{"id", "state", "partition", "file_id", "node_id", "attempt", "error"} {
			if _, ok := tk[k]; !ok {
				t.Fatalf("task lacks %q: %v", k, tk)
			}
		}
		if tk["state"] != "completed" || tk["partition"] != "legal" || len(tk["id"].(string)) != 48 {
			t.Fatalf("task %v", tk)
		}
		ids[tk["file_id"].(string)] = true
	}
	if !ids["a.txt"] || !ids["sub/b.md"] {
		t.Fatalf("file IDs should be paths relative to the folder: %v", ids)
	}
	out, _, code = run(t, "tasks", "--addr", addr, "--token", "tok", "--state", "completed", "-o", "json")
	if code != 0 || !strings.Contains(out, "sub/b.md") {
		t.Fatalf("tasks: %d %s", code, out)
	}
}

func TestErrorsAreOneLineAndExitOne(t *testing.T) {
	n := startNode(t, "tok")
	cases := [][]string{
		{"members", "--addr", "127.0.0.1:1"},
		{"status", "--bogus-flag"},
		{"members", "--addr", n.HTTPAddr()}, // no token
		{"tasks", "show", "nope", "--addr", n.HTTPAddr(), "--token", "tok"},
		{"start", "--task-gpus", "1.5", "--data-dir", t.TempDir()},
		{"submit", "/does/not/exist", "--addr", n.HTTPAddr(), "--token", "tok"},
		{"frobnicate"},
	}
	for _, args := range cases {
		if args[0] == "frobnicate" {
			continue // handled by urfave's CommandNotFound (os.Exit); covered by the binary test
		}
		out, errOut, code := run(t, args...)
		if code != 1 {
			t.Errorf("%v: exit %d, want 1 (stdout %q)", args, code, out)
		}
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "ragnode: ") || strings.Contains(errOut, "goroutine") {
			t.Errorf("%v: stderr is not one line: %q", args, errOut)
		}
	}
}

func TestReorderArgs(t *testing.T) {
	app := NewApp(os.Stdout, os.Stderr)
	got := reorderArgs(app, []string{"ragnode", "submit", "docs", "--wait", "--partition", "p", "x"})
	want := []string{"ragnode", "submit", "--wait", "--partition", "p", "--", "docs", "x"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("got %v want %v", got, want)
	}
}

// TestStartRefusesFlagsThatCannotWork: each value below used to start a
// node that could never run a task (or ran each one into a failure); now
// start exits 1 with one line naming the flag, before touching the data dir.
func TestStartRefusesFlagsThatCannotWork(t *testing.T) {
	cases := []struct{ flag, value string }{
		{"--task-timeout", "-1s"}, {"--task-timeout", "0s"}, {"--cpu-slots", "-1"}, {"--replicas", "-3"},
		{"--chunk-replicas", "0"}, {"--embed-batch", "0"}, {"--max-attempts", "-1"}, {"--pool-size", "-1"},
		{"--gpus", "100000"}, {"--requeue-after", "-5s"}, {"--chunk-size", "100"},
		// Beyond the table: the other counts and durations.
		{"--max-chunks", "-1"}, {"--embed-concurrency", "0"}, {"--drain-timeout", "-1s"}, {"--max-file-size", "-1"},
		{"--join-timeout", "0s"}, {"--max-queued", "-1"}, {"--pdf-interrupt", "never"},
		{"--vdb-schema", "ragondinn"},
		{"--upload-idle-timeout", "-1s"}, {"--max-uploads-per-token", "-1"},
	}
	for _, c := range cases {
		dir := filepath.Join(t.TempDir(), "data")
		args := []string{"start", "--data-dir", dir, "--http-port", "0", "--raft-port", "0", "--serf-port", "0", c.flag, c.value}
		if c.flag == "--chunk-size" {
			args = append(args, "--chunk-overlap", "100")
		}
		_, errOut, code := run(t, args...)
		if code != 1 {
			t.Errorf("%s %s: exit %d, want 1", c.flag, c.value, code)
			continue
		}
		want := strings.TrimPrefix(c.flag, "--")
		if c.flag == "--chunk-size" {
			want = "chunk-overlap"
		}
		if lines := strings.Split(strings.TrimSpace(errOut), "\n"); len(lines) != 1 || !strings.HasPrefix(lines[0], "ragnode: ") || !strings.Contains(lines[0], want) {
			t.Errorf("%s %s: stderr %q does not name the flag in one line", c.flag, c.value, errOut)
		}
		if _, err := os.Stat(dir); err == nil {
			t.Errorf("%s %s: the data dir was created", c.flag, c.value)
		}
	}
}

// TestSubmitWaitsOutBackpressure: a cluster over its admission cap answers
// 429 with Retry-After; the CLI says so, waits, and retries until accepted.
func TestSubmitWaitsOutBackpressure(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if calls.Add(1) <= 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			_, _ = io.WriteString(w, `{"error":"the cluster has 3 tasks queued (--max-queued 3); retry later"}`)
			return
		}
		w.WriteHeader(http.StatusCreated)
		_, _ = io.WriteString(w, `[{"file_id":"a.txt","task":{"id":"t1","state":"queued","partition":"p","file_id":"a.txt"}}]`)
	}))
	defer srv.Close()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.txt"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := run(t, "submit", filepath.Join(dir, "a.txt"), "--addr", strings.TrimPrefix(srv.URL, "http://"), "--partition", "p")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	if n := strings.Count(errOut, "retrying in"); n != 2 || !strings.Contains(errOut, "--max-queued 3") {
		t.Fatalf("stderr %q: want two visible retries", errOut)
	}
	if calls.Load() != 3 {
		t.Fatalf("%d calls, want 3", calls.Load())
	}
}
