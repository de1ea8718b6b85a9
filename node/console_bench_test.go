package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// BenchmarkConsoleAndMetrics measures the targets on a real node
// (Raft, Serf, HTTP on 127.0.0.1) whose ledger holds 10,000 and then
// 100,000 tasks, submitted through Raft while the node is drained so they
// stay queued (the console's task filter and the metrics walk every task
// whatever its state). Each op is one HTTP request, as the browser or
// Prometheus makes it:
//
//	go test -run '^$' -bench BenchmarkConsoleAndMetrics -benchtime 20x ./node
//
// first-load is what the page fetches before its first paint (page, script,
// styles, summary, one task page, events, series); live updates are the
// page's 1.5 s poll of summary plus one summary request.
func BenchmarkConsoleAndMetrics(b *testing.B) {
	n, err := Start(Config{DataDir: b.TempDir(), Name: "bench", Bind: "127.0.0.1", Timing: TimingFast,
		CPUSlots: 2, Token: "tok", Logger: testLogger("bench")})
	if err != nil {
		b.Fatal(err)
	}
	defer n.Kill()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ok := false
		n.fsm.View(func(s *fsm.State) { ok = s.Nodes[n.ID()] != nil })
		if ok {
			break
		}
		if time.Now().After(deadline) {
			b.Fatal("node never registered")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdSetDrain, NodeID: n.ID(), Draining: true, Error: "benchmark"}); err != nil {
		b.Fatal(err)
	}
	have := 0
	fill := func(to int) {
		const batch = 5000
		for have < to {
			ts := make([]fsm.Task, 0, batch)
			for i := 0; i < batch && have < to; i++ {
				ts = append(ts, fsm.Task{ID: fmt.Sprintf("t%07d", have), Partition: fmt.Sprintf("p%03d", have%50),
					FileID: fmt.Sprintf("f%07d.txt", have), ReqMilli: 250})
				have++
			}
			r, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdSubmitTasks, Tasks: ts})
			if err == nil {
				err = r.FirstError()
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	get := func(b *testing.B, path string) {
		req, _ := http.NewRequest(http.MethodGet, "http://"+n.HTTPAddr()+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			b.Fatalf("GET %s: %d", path, resp.StatusCode)
		}
	}
	run := func(name string, paths ...string) {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				for _, p := range paths {
					get(b, p)
				}
			}
		})
	}
	firstLoad := []string{"/ui/", "/ui/app.js", "/ui/style.css", "/v1/console/summary", "/v1/console/tasks?limit=25",
		"/v1/console/events?since=0", "/v1/console/series"}
	for _, size := range []int{10000, 100000} {
		fill(size)
		k := fmt.Sprintf("%dk", size/1000)
		run("first-load/"+k, firstLoad...)
		run("summary/"+k, "/v1/console/summary")
		run("tasks-page/"+k, "/v1/console/tasks?limit=25")
		run("tasks-search/"+k, "/v1/console/tasks?limit=25&q=f00012")
		run("metrics/"+k, "/metrics")
	}
}
