package node

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ragnode/ragnode/fsm"
)

// browserPath finds a Chromium to drive, or "".
func browserPath() string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// TestConsoleInBrowser opens /ui/ of a real 3-node cluster in headless
// Chromium, logs in with the token and checks that the members table lists
// every node and that a submitted task shows in the task list and its
// detail, and that its drain button drains a node.
// RAGNODE_CONSOLE_SCREENSHOT=file.png saves what the page looked like.
func TestConsoleInBrowser(t *testing.T) {
	bin := browserPath()
	if bin == "" {
		t.Skip("no chromium on PATH (Debian package chromium): the console's browser test needs one")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	c := newCluster(t)
	ns := c.startN(3, func(i int, cfg *Config) {
		cfg.Token = "browser-token"
		if i == 2 {
			cfg.GPU.Declared = 1
			cfg.TaskMilli = 250
		}
	})
	waitFor(t, 20*time.Second, "three registered nodes", func() bool {
		k := 0
		ns[0].fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 3
	})
	tv, err := clientOf(ns[1]).Submit(ctxT(t, 10*time.Second), submitReq("docs", "browser-check.md"), strings.NewReader("# Console\n\nshown in a browser"))
	if err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(1400, 1800), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()

	step := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser: %s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		step("text of "+sel, err)
		return v
	}
	poll := func(what, expr string, d time.Duration) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d)))
		step(what, err)
	}
	step("open the page", chromedp.Do(ctx, chromedp.Navigate("http://"+ns[2].HTTPAddr()+"/"))) // the redirect to /ui/
	step("login field", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#token"))))
	step("type the token", chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), "browser-token")))
	step("log in", chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#login-form button"))))
	poll("members shown", `document.querySelectorAll("#members tbody tr").length > 0`, 20*time.Second)
	poll("three members and the task listed",
		`document.querySelectorAll("#members tbody tr").length === 3 && document.querySelector("#tasks tbody").innerText.includes("browser-check.md")`, 30*time.Second)
	members, where := text("#members tbody"), text("#where")
	step("open the task", chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#tasks tbody tr[data-id="`+tv.ID+`"]`)),
		chromedp.WaitVisible(chromedp.CSS("#detail"))))
	poll("history shown", `document.querySelectorAll("#history tbody tr").length > 0`, 10*time.Second)
	detail := text("#detail")
	// An action through the page: drain n2, see it in the table and the events.
	step("drain n2", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-drain="n2"]`))))
	poll("drain shown", `document.querySelector('#members tr[data-name="n2"]').innerText.includes("draining") && document.querySelector("#events").innerText.includes("n2 draining")`, 15*time.Second)
	draining := false
	ns[0].fsm.View(func(s *fsm.State) { draining = s.Nodes[ns[1].ID()].Draining })
	if !draining {
		t.Error("the page's drain button did not drain n2 in the ledger")
	}
	step("wait for a series refresh", chromedp.Do(ctx, chromedp.Sleep(11*time.Second)))
	tasks := text("#tasks tbody")
	for _, n := range ns {
		if !strings.Contains(members, n.Name()) {
			t.Errorf("members table lacks %s:\n%s", n.Name(), members)
		}
	}
	if !strings.Contains(tasks, "browser-check.md") || !strings.Contains(detail, tv.ID) {
		t.Errorf("task not shown: list %q detail %q", tasks, detail)
	}
	if !strings.Contains(where, "answered by n3") {
		t.Errorf("header %q", where)
	}
	if out := os.Getenv("RAGNODE_CONSOLE_SCREENSHOT"); out != "" {
		png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		if err := os.WriteFile(filepath.Clean(out), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
