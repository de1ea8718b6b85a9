package node

import (
	"bytes"
	"io"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

func consoleGet(t *testing.T, n *Node, path string, out any) {
	t.Helper()
	if err := clientOf(n).Do(ctxT(t, 10*time.Second), http.MethodGet, path, nil, nil, out); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestConsoleEndpointsOnCluster runs the console's endpoints and /metrics
// against a real node: summary, paginated task list, detail with the
// observed history, events, series, retry, and metrics that promtool accepts.
func TestConsoleEndpointsOnCluster(t *testing.T) {
	c := newCluster(t)
	n := c.startN(1, func(i int, cfg *Config) { cfg.Token = "tok" })[0]
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	cl := clientOf(n)
	ok, err := cl.Submit(ctxT(t, 10*time.Second), submitReq("p", "good.txt"), strings.NewReader("hello console"))
	if err != nil {
		t.Fatal(err)
	}
	bad, err := cl.Submit(ctxT(t, 10*time.Second), submitReq("p", "bad.docx"), strings.NewReader("PK\x03\x04 not really a docx"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "both tasks final", func() bool {
		st := taskStates(n)
		return st[ok.ID] == fsm.Completed && st[bad.ID] == fsm.Failed
	})

	var sum transport.ConsoleSummary
	waitFor(t, 10*time.Second, "summary lists the node", func() bool {
		consoleGet(t, n, "/v1/console/summary", &sum)
		return len(sum.Members) == 1 && sum.Members[0].Name == "n1" && sum.Leader.Name == "n1"
	})
	if sum.Counts["completed"] != 1 || sum.Counts["failed"] != 1 || len(sum.CPUs) != 1 || sum.CPUs[0].Slots != 2 || sum.Node.ID != n.ID() {
		t.Fatalf("summary %+v", sum)
	}

	var page transport.ConsoleTaskPage
	consoleGet(t, n, "/v1/console/tasks?limit=1", &page)
	if page.Total != 2 || len(page.Tasks) != 1 || page.Tasks[0].ID != bad.ID {
		t.Fatalf("first page (newest first) %+v", page)
	}
	consoleGet(t, n, "/v1/console/tasks?limit=1&offset=1", &page)
	if len(page.Tasks) != 1 || page.Tasks[0].ID != ok.ID {
		t.Fatalf("second page %+v", page)
	}
	consoleGet(t, n, "/v1/console/tasks?q=GOOD", &page)
	if page.Total != 1 || page.Tasks[0].FileID != "good.txt" {
		t.Fatalf("search %+v", page)
	}
	consoleGet(t, n, "/v1/console/tasks?state=failed", &page)
	if page.Total != 1 || page.Tasks[0].ID != bad.ID {
		t.Fatalf("state filter %+v", page)
	}

	var det transport.ConsoleTaskDetail
	waitFor(t, 5*time.Second, "history reaches the final state", func() bool {
		consoleGet(t, n, "/v1/console/tasks/"+ok.ID, &det)
		h := det.History
		return len(h) >= 1 && h[len(h)-1].State == "completed"
	})
	if det.Task.ID != ok.ID || det.ObservingSince == 0 || det.History[len(det.History)-1].NodeID != n.ID() {
		t.Fatalf("detail %+v", det)
	}

	// The observer diffs the ledger at most every observeMinGap: wait for it.
	var evs []transport.ConsoleEvent
	waitFor(t, 5*time.Second, "leader and task_failed events", func() bool {
		consoleGet(t, n, "/v1/console/events", &evs)
		kinds := map[string]bool{}
		for _, e := range evs {
			kinds[e.Kind] = true
		}
		return kinds["leader"] && kinds["task_failed"]
	})
	var ser transport.ConsoleSeries
	consoleGet(t, n, "/v1/console/series", &ser)
	done := 0
	for _, p := range ser.Points {
		done += p.Completed
	}
	if len(ser.Points) != seriesBuckets || done != 1 {
		t.Fatalf("series: %d points, %d completions", len(ser.Points), done)
	}

	// Retry: a running or completed task is refused, a failed one resubmitted.
	var tv transport.TaskView
	if err := cl.Do(ctxT(t, 10*time.Second), http.MethodPost, "/v1/console/tasks/"+ok.ID+"/retry", nil, nil, &tv); err == nil {
		t.Fatal("retry of a completed task accepted")
	}
	if err := cl.Do(ctxT(t, 10*time.Second), http.MethodPost, "/v1/console/tasks/"+bad.ID+"/retry", nil, nil, &tv); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if tv.ID == bad.ID || tv.FileID != "bad.docx" || tv.Partition != "p" {
		t.Fatalf("retry gave %+v", tv)
	}
	if err := cl.Do(ctxT(t, 10*time.Second), http.MethodPost, "/v1/console/tasks/"+bad.ID+"/retry", nil, nil, &tv); err == nil {
		t.Fatal("second retry of a superseded task accepted")
	}

	// /metrics keeps the token and carries the series the README lists.
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("/metrics without token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+n.HTTPAddr()+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer tok")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	text := string(body)
	for _, want := range []string{
		`ragnode_tasks{state="completed"} 1`, `ragnode_queue_depth `, `ragnode_task_completions_total 1`,
		`ragnode_task_failures_total `, `ragnode_stage_duration_seconds_bucket{stage="loading"`, `ragnode_raft_state{state="Leader"} 1`,
		`ragnode_raft_term `, `ragnode_raft_commit_index `, `ragnode_raft_applied_index `, `ragnode_leader_changes_total 1`,
		`ragnode_members{status="alive"} 1`, `ragnode_cpu_slots{node="n1"} 2`, `ragnode_cpu_slots_used{node="n1"} `,
		`ragnode_task_requeues_total 0`, `go_goroutines `,
		`ragnode_runner_failures_total{reason="timeout"} 0`,
		`ragnode_vector_store_request_duration_seconds_count{op="write"} 1`, `ragnode_vector_store_errors_total{op="write"} 0`,
		`ragnode_embedder_request_duration_seconds_count `, `ragnode_embedder_errors_total 0`,
		`ragnode_partition_tasks{partition="p",state="completed"} 1`, `ragnode_replication_backlog{kind="blob"} 0`,
		`ragnode_raft_apply_total `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	// The failed task ran once, its retry (above) maybe once more by now.
	if !regexp.MustCompile(`(?m)^ragnode_runner_failures_total\{reason="permanent"\} [12]$`).MatchString(text) {
		t.Error("metrics lack the permanent runner failure")
	}
	if t.Failed() {
		t.Log(text)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian package prometheus); metrics content checked, format not")
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestMetricsGPUAndOpen: GPU gauges per card, and --metrics-open serving
// /metrics without the token while the rest keeps it.
func TestMetricsGPUAndOpen(t *testing.T) {
	c := newCluster(t)
	n := c.startN(1, func(i int, cfg *Config) {
		cfg.Token, cfg.MetricsOpen = "tok", true
		cfg.GPU.Declared = 2
	})[0]
	waitFor(t, 10*time.Second, "registered", func() bool {
		found := false
		n.fsm.View(func(s *fsm.State) { found = s.Nodes[n.ID()] != nil })
		return found
	})
	resp, err := http.Get("http://" + n.HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("open /metrics: %d", resp.StatusCode)
	}
	for _, want := range []string{`ragnode_gpu_milli_capacity{gpu="0",node="n1"} 1000`, `ragnode_gpu_milli_allocated{gpu="1",node="n1"} 0`,
		`ragnode_gpu_memory_total_bytes{gpu="1",node="n1"}`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	resp, err = http.Get("http://" + n.HTTPAddr() + "/v1/console/summary")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("summary without token under --metrics-open: %d", resp.StatusCode)
	}
}

// TestConsoleEventsOnNodeLoss: a node killed while running a task shows up
// in the replicated events as a failed member, a ledger status change and a
// release of its tasks, identical on every survivor, and the task's history
// (this node's observation) records the requeue.
func TestConsoleEventsOnNodeLoss(t *testing.T) {
	slow, err := ParseRunner("sleep:60s")
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	ns := c.startN(3, func(i int, cfg *Config) { cfg.Runner = slow })
	waitFor(t, 20*time.Second, "three registered nodes", func() bool {
		k := 0
		ns[0].fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 3
	})
	var ids []string
	for i := 0; i < 6; i++ {
		tv, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), submitReq("p", "f"+string(rune('a'+i))+".txt"), strings.NewReader("x"))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tv.ID)
	}
	victim := ns[2]
	if c.leader() == victim {
		victim = ns[1]
	}
	var onVictim string
	waitFor(t, 20*time.Second, "a task running on the victim", func() bool {
		ns[0].fsm.View(func(s *fsm.State) {
			for _, id := range ids {
				if t := s.Tasks[id]; t != nil && t.NodeID == victim.ID() && t.State.Active() {
					onVictim = id
				}
			}
		})
		return onVictim != ""
	})
	victim.Kill()
	watcher := ns[0]
	if watcher == victim {
		watcher = ns[1]
	}
	// The history is replicated: every survivor answers the same events.
	var survivors []*Node
	for _, n := range ns {
		if n != victim {
			survivors = append(survivors, n)
		}
	}
	var evs []transport.ConsoleEvent
	waitFor(t, 30*time.Second, "member_failed, node failed and release events", func() bool {
		consoleGet(t, watcher, "/v1/console/events", &evs)
		kinds := map[string]bool{}
		for _, e := range evs {
			if e.NodeID == victim.ID() {
				kinds[e.Kind] = true
				if e.Kind == fsm.EvNodeStatus && strings.Contains(e.Msg, "is failed") {
					kinds["node_failed"] = true
				}
			}
		}
		return kinds[fsm.EvMemberFailed] && kinds["node_failed"] && kinds[fsm.EvRelease]
	})
	last := evs[len(evs)-1].Seq
	for _, n := range survivors {
		var got []transport.ConsoleEvent
		waitFor(t, 10*time.Second, "the same history on "+n.name, func() bool {
			consoleGet(t, n, "/v1/console/events", &got)
			return len(got) >= len(evs) && got[len(evs)-1].Seq == last
		})
		for i := range evs {
			if got[i] != evs[i] {
				t.Fatalf("%s has event %+v where %s has %+v", n.name, got[i], watcher.name, evs[i])
			}
		}
	}
	// The history is this node's observation, diffed at most every
	// observeMinGap: wait for it to catch up.
	waitFor(t, 10*time.Second, "the requeue in the task's history", func() bool {
		var det transport.ConsoleTaskDetail
		consoleGet(t, watcher, "/v1/console/tasks/"+onVictim, &det)
		for _, h := range det.History {
			if h.Attempt == 2 && h.Error != "" {
				return true
			}
		}
		return false
	})
}
