package node

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
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
// Chromium and checks what a person would see: after logging in with the
// token, three members with the leader marked; four GPU bars per node
// holding the running tasks' shares; the task counts moving as tasks
// finish; a submitted task in the list and its detail; the drain button
// draining the node in the ledger; and a killed node turning failed within
// seconds. It saves a screenshot (taken while tasks run) as a test
// artefact: in the test's ArtifactDir (go test -artifacts), or at
// RAGNODE_CONSOLE_SCREENSHOT=file.png.
func TestConsoleInBrowser(t *testing.T) {
	bin := browserPath()
	if bin == "" {
		t.Skip("no chromium on PATH (Debian package chromium): the console's browser test needs one")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	slow, err := ParseRunner("sleep:20s")
	if err != nil {
		t.Fatal(err)
	}
	c := newCluster(t)
	ns := c.startN(3, func(i int, cfg *Config) {
		cfg.Token = "browser-token"
		cfg.GPU.Declared = 4
		cfg.TaskMilli = 250
		cfg.Runner = slow
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
		chromedp.Flag("headless", true), chromedp.WindowSize(1280, 1600), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 180*time.Second)
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
	eval := func(expr string) int {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[int](expr))
		step("evaluate "+expr, err)
		return v
	}
	poll := func(what, expr string, d time.Duration) {
		t.Helper()
		_, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(d)))
		if err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Logf("page when %q failed:\n%s", what, body)
		}
		step(what, err)
	}
	step("open the page", chromedp.Do(ctx, chromedp.Navigate("http://"+ns[2].HTTPAddr()+"/"))) // the redirect to /ui/
	step("login field", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#token"))))
	step("type the token", chromedp.Do(ctx, chromedp.SendKeys(chromedp.CSS("#token"), "browser-token")))
	step("log in", chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#login-form button"))))
	poll("three members, one marked leader, and the task listed",
		`document.querySelectorAll("#members tbody tr").length === 3 && document.querySelector("#members tbody").innerText.split("★ leader").length === 2 && document.querySelector("#tasks tbody").innerText.includes("browser-check.md")`, 30*time.Second)
	members, where := text("#members tbody"), text("#where")
	// The marked row is the leader's (re-read: under load an election may
	// happen between the page's poll and this check).
	var leader *Node
	waitFor(t, 30*time.Second, "the page marking the current leader", func() bool {
		leader = c.leader()
		return leader != nil && eval(`[...document.querySelectorAll("#members tbody tr")].filter(r => r.innerText.includes("★ leader") && r.dataset.name === "`+leader.Name()+`").length`) == 1
	})

	// Work arrives while the page is open (a browser under load starts
	// slowly; tasks submitted earlier could be done before it looks).
	for i := 0; i < 17; i++ {
		name := "report-" + string(rune('a'+i)) + ".md"
		if _, err := clientOf(ns[i%3]).Submit(ctxT(t, 10*time.Second), submitReq("reports", name), strings.NewReader("# "+name)); err != nil {
			t.Fatal(err)
		}
	}
	// Four bars per node, holding the running tasks' shares.
	poll("twelve GPU bars with running shares", `document.querySelectorAll("#gpus .gpu").length === 12 && document.querySelectorAll("#gpus .bar div").length >= 6`, 30*time.Second)
	for _, n := range ns {
		if k := eval(`[...document.querySelectorAll("#gpus .gpu .lbl")].filter(l => l.innerText.startsWith("` + n.Name() + ` GPU ")).length`); k != 4 {
			t.Errorf("%s has %d GPU bars, want 4", n.Name(), k)
		}
	}
	shares := eval(`document.querySelectorAll("#gpus .bar div").length`)
	// Some card's label counts the shares its bar draws (first fit may put
	// one to four quarter-GPU tasks on a card).
	if shares == 0 || !regexp.MustCompile(`[1-9][0-9]*/1000 milli`).MatchString(text("#gpus")) {
		t.Errorf("no task shares on the bars: %q", text("#gpus"))
	}
	countsBefore := text("#counts")
	saveScreenshot(t, ctx)

	// The counts move as the running tasks finish.
	poll("task counts moving", `document.querySelector("#counts").innerText !== `+jsString(countsBefore)+` && document.querySelector("#counts").innerText.includes("completed")`, 60*time.Second)

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
	// A read token sees the same page without the actions it may not take.
	rt, err := clientOf(ns[0]).CreateToken(ctxT(t, 10*time.Second), transport.TokenRequest{Role: "read"})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "the read token known to the page's node", func() bool {
		_, err := transport.NewClient(ns[2].HTTPAddr(), rt.Secret).Status(ctxT(t, 5*time.Second))
		return err == nil
	})
	step("log out", chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#logout"))))
	login := func(token string) {
		t.Helper()
		step("login field", chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS("#token"))))
		_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelector("#token").value = `+jsString(token)+`; document.querySelector("#login-form button").click(); true`))
		step("log in with another token", err)
	}
	login(rt.Secret)
	poll("read-only page: members, no drain buttons, no task actions",
		`document.querySelector("#role").innerText === "read-only" && document.querySelectorAll("#members tbody tr").length === 3 && document.querySelectorAll("button[data-drain]").length === 0 && document.querySelectorAll("#detail-actions button").length === 0`, 20*time.Second)
	step("log out", chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#logout"))))
	login("browser-token")
	poll("admin page: drain buttons back", `document.querySelectorAll("button[data-drain]").length === 3`, 20*time.Second)

	// A killed node turns failed in the members table within seconds.
	victim := ns[0]
	if victim == leader {
		victim = ns[1]
	}
	killed := time.Now()
	victim.Kill()
	poll("killed node shown failed", `document.querySelector('#members tr[data-name="`+victim.Name()+`"] .s-failed') !== null`, 20*time.Second)
	t.Logf("%s shown failed %.1fs after the kill", victim.Name(), time.Since(killed).Seconds())
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
}

// saveScreenshot writes a PNG of the viewport as a test artefact.
func saveScreenshot(t *testing.T, ctx context.Context) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := os.Getenv("RAGNODE_CONSOLE_SCREENSHOT")
	if out == "" {
		out = filepath.Join(t.ArtifactDir(), "console.png")
	}
	if err := os.WriteFile(filepath.Clean(out), png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", out, len(png))
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// TestConsoleWithoutToken: on a cluster without --token (the default) the
// console shows the cluster at once, with no login form and no log-out
// button, and a virtual GPU's memory reads "not declared"; on one with a
// token the form asks for it.
func TestConsoleWithoutToken(t *testing.T) {
	bin := browserPath()
	if bin == "" {
		t.Skip("no chromium on PATH (Debian package chromium): the console's browser test needs one")
	}
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	c := newCluster(t)
	open := c.startN(1, func(i int, cfg *Config) { cfg.GPU.Declared = 2 })[0]
	guarded := c.start(func() Config {
		cfg := baseConfig(t, "guarded")
		cfg.Token = "secret"
		return cfg
	}())
	waitFor(t, 20*time.Second, "the open node registered", func() bool {
		ok := false
		open.fsm.View(func(s *fsm.State) { ok = s.Nodes[open.ID()] != nil })
		return ok
	})
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox,
		chromedp.Flag("headless", true), chromedp.WindowSize(1280, 1000), chromedp.UserDataDir(t.TempDir()))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancelA()
	bctx, cancelB := chromedp.NewContext(actx)
	defer cancelB()
	ctx, cancel := context.WithTimeout(bctx, 90*time.Second)
	defer cancel()
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingTimeout(30*time.Second))); err != nil {
			body, _ := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("body")))
			t.Fatalf("browser: %s: %v\npage:\n%s", what, err, body)
		}
	}
	if _, err := chromedp.Run(ctx, chromedp.Navigate("http://"+open.HTTPAddr()+"/ui/")); err != nil {
		t.Fatal(err)
	}
	poll("members and GPUs shown without a token", `document.querySelector("#app").hidden === false && document.querySelector("#login").hidden === true &&
		document.querySelectorAll("#members tbody tr").length === 1 && document.querySelectorAll("#gpus .gpu").length === 2`)
	poll("no log-out button and virtual memory not declared", `document.querySelector("#logout").hidden === true &&
		document.querySelector("#gpus").innerText.includes("memory not declared") && !document.querySelector("#gpus").innerText.includes("0 B of 0 B")`)
	if _, err := chromedp.Run(ctx, chromedp.Navigate("http://"+guarded.HTTPAddr()+"/ui/")); err != nil {
		t.Fatal(err)
	}
	poll("a token asked for where the API wants one", `document.querySelector("#login").hidden === false && document.querySelector("#app").hidden === true &&
		document.querySelector("#login-error").innerText.includes("needs an API token")`)
}
