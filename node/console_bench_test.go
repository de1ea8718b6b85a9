package node

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
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
// styles, summary, one task page, events, series); live-update is a ledger
// change committed through Raft until the summary shows it (the page adds
// up to its 1.5 s poll period). -short runs the 10,000-task half only.
func BenchmarkConsoleAndMetrics(b *testing.B) {
	n, ctx, fill := consoleBenchLedger(b)
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
	sizes := []int{10000, 100000}
	if testing.Short() {
		sizes = sizes[:1]
	}
	// live-update: one ledger change (a drain toggled through Raft) until
	// the summary the page polls shows it; the page adds up to one poll
	// period (1.5 s) on top.
	liveUpdate := func(name string) {
		b.Run(name, func(b *testing.B) {
			on := false
			for b.Loop() {
				on = !on
				if _, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdSetDrain, NodeID: n.ID(), Draining: on, Error: "benchmark"}); err != nil {
					b.Fatal(err)
				}
				for {
					var sum transport.ConsoleSummary
					if err := clientOf(n).Do(ctx, http.MethodGet, "/v1/console/summary", nil, nil, &sum); err != nil {
						b.Fatal(err)
					}
					if len(sum.Members) == 1 && sum.Members[0].Draining == on {
						break
					}
				}
			}
		})
	}
	for _, size := range sizes {
		fill(size)
		k := fmt.Sprintf("%dk", size/1000)
		run("first-load/"+k, firstLoad...)
		run("summary/"+k, "/v1/console/summary")
		run("tasks-page/"+k, "/v1/console/tasks?limit=25")
		run("tasks-search/"+k, "/v1/console/tasks?limit=25&q=f00012")
		run("metrics/"+k, "/metrics")
		liveUpdate("live-update/" + k)
	}
}

// consoleBenchLedger starts a real node, drains it (so submitted tasks stay
// queued) and returns a fill(to) that submits tasks through Raft, 5000
// per entry, until the ledger holds to of them.
func consoleBenchLedger(b *testing.B) (*Node, context.Context, func(int)) {
	n, err := Start(Config{DataDir: b.TempDir(), Name: "bench", Bind: "127.0.0.1", Timing: TimingFast,
		CPUSlots: 2, Token: "tok", Logger: testLogger("bench")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(n.Kill)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)
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
	return n, ctx, fill
}

// BenchmarkConsoleBrowserFirstPaint times, in headless Chromium, the page
// from navigation (token already in the tab's session) until the members
// table and the first task page are drawn, with 10,000 tasks queued:
//
//	go test -run '^$' -bench BenchmarkConsoleBrowserFirstPaint -benchtime 5x ./node
func BenchmarkConsoleBrowserFirstPaint(b *testing.B) {
	bin := browserPath()
	if bin == "" {
		b.Skip("no chromium on PATH (Debian package chromium)")
	}
	n, _, fill := consoleBenchLedger(b)
	fill(10000)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(1280, 1600), chromedp.UserDataDir(b.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 5*time.Minute)
	defer cancel()
	url := "http://" + n.HTTPAddr() + "/ui/"
	// Log in once: the token stays in the tab's sessionStorage.
	if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
		b.Fatal(err)
	}
	if err := chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#token")), chromedp.SendKeys(chromedp.CSS("#token"), "tok"),
		chromedp.Click(chromedp.CSS("#login-form button"))); err != nil {
		b.Fatal(err)
	}
	drawn := `document.querySelectorAll("#members tbody tr").length === 1 && document.querySelectorAll("#tasks tbody tr").length === 25`
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](drawn, chromedp.WithPollingTimeout(60*time.Second))); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if _, err := chromedp.Run(ctx, chromedp.Navigate(url)); err != nil {
			b.Fatal(err)
		}
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](drawn, chromedp.WithPollingTimeout(60*time.Second), chromedp.WithPollingInterval(5*time.Millisecond))); err != nil {
			b.Fatal(err)
		}
	}
}
