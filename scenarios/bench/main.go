// Command bench runs ragnode's benchmarks and writes BENCHMARKS.md:
//
//	go run ./scenarios/bench -out BENCHMARKS.md     (what `make bench` runs)
//	go run ./scenarios/bench -only ledger,dispatch  (a subset, printed only)
//	go run ./scenarios/bench -smoke                 (tiny sizes: checks it runs)
//
// Cluster benchmarks start real ragnode processes on 127.0.0.x through
// scenarios/harness (the binary is built once); the fixed-latency runner
// (`--runner sleep:D`) isolates ragnode's own overhead from task work.
// Snapshot, indexing and micro-benchmarks run in this process or through
// `go test -bench`. Every process a benchmark starts is killed when it ends.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// section is one table of BENCHMARKS.md.
type section struct {
	Title  string
	Setup  string
	Header []string
	Rows   [][]string
	Notes  []string
	Err    string
}

type bench struct {
	name string
	run  func(ctx context.Context, tb *benchTB) []section
}

var (
	flagOut   = flag.String("out", "", "write the report to this Markdown file (default: stdout only)")
	flagOnly  = flag.String("only", "", "comma-separated benchmarks: "+strings.Join(names(), ","))
	flagSmoke = flag.Bool("smoke", false, "tiny sizes: check that every benchmark runs, figures meaningless")
	flagLAN   = flag.Bool("lan", true, "also measure leader failover with --timing lan")
)

func benches() []bench {
	return []bench{
		{"micro", benchMicro},
		{"ledger", benchLedger},
		{"dispatch", benchDispatch},
		{"sched", benchSched},
		{"schedkill", benchSchedKill},
		{"failover", benchFailover},
		{"memory", benchMemory},
		{"indexing", benchIndexing},
		{"pdf", benchPDF},
		{"retrieval", benchRetrieval},
	}
}

func names() []string {
	var ns []string
	for _, b := range []string{"micro", "ledger", "dispatch", "sched", "schedkill", "failover", "memory", "indexing", "pdf", "retrieval"} {
		ns = append(ns, b)
	}
	return ns
}

// scale shrinks counts in smoke mode.
func scale(n, smoke int) int {
	if *flagSmoke {
		return smoke
	}
	return n
}

func main() {
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *flagProfile != "" {
		if err := runProfile(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "profile:", err)
			os.Exit(1)
		}
		return
	}
	want := map[string]bool{}
	for _, s := range strings.Split(*flagOnly, ",") {
		if s = strings.TrimSpace(s); s != "" {
			want[s] = true
		}
	}
	var all []section
	t0 := time.Now()
	for _, b := range benches() {
		if len(want) > 0 && !want[b.name] {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		logf("== %s", b.name)
		bt := time.Now()
		secs := runOne(ctx, b)
		logf("== %s done in %s", b.name, time.Since(bt).Round(time.Second))
		for _, s := range secs {
			fmt.Fprintln(os.Stderr, render(s))
		}
		all = append(all, secs...)
	}
	total := time.Since(t0)
	doc := header(total) + "\n"
	for _, s := range all {
		doc += render(s) + "\n"
	}
	if *flagOut != "" {
		if err := os.WriteFile(*flagOut, []byte(doc), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		logf("wrote %s (total %s)", *flagOut, total.Round(time.Second))
	}
	for _, s := range all {
		if s.Err != "" {
			os.Exit(1)
		}
	}
}

func runOne(ctx context.Context, b bench) (out []section) {
	tb := newTB(b.name)
	defer tb.close()
	defer func() {
		if v := recover(); v != nil {
			logf("%s failed: %v", b.name, v)
			out = append(out, section{Title: b.name, Err: fmt.Sprint(v)})
		}
	}()
	return b.run(ctx, tb)
}

func header(total time.Duration) string {
	var sb strings.Builder
	sb.WriteString("# ragnode benchmarks\n\n")
	sb.WriteString("Produced by `make bench` (`go run ./scenarios/bench -out BENCHMARKS.md`); rerun it to reproduce.\n\n")
	fmt.Fprintf(&sb, "| | |\n|---|---|\n")
	fmt.Fprintf(&sb, "| date | %s |\n", time.Now().UTC().Format("2006-01-02 15:04 UTC"))
	fmt.Fprintf(&sb, "| CPU | %s |\n", cpuModel())
	fmt.Fprintf(&sb, "| cores | %d (GOMAXPROCS %d) |\n", runtime.NumCPU(), runtime.GOMAXPROCS(0))
	fmt.Fprintf(&sb, "| memory | %s |\n", memTotal())
	fmt.Fprintf(&sb, "| Go | %s |\n", goVersion())
	fmt.Fprintf(&sb, "| OS | %s/%s, kernel %s |\n", runtime.GOOS, runtime.GOARCH, kernel())
	fmt.Fprintf(&sb, "| load average at start / end | %s / %s |\n", loadAtStart, loadAvg())
	fmt.Fprintf(&sb, "| total run time | %s |\n", total.Round(time.Second))
	if *flagSmoke {
		sb.WriteString("\n**Smoke run: sizes were shrunk, the figures are meaningless.**\n")
	}
	return sb.String()
}

func render(s section) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "## %s\n\n", s.Title)
	if s.Setup != "" {
		sb.WriteString(s.Setup + "\n\n")
	}
	if s.Err != "" {
		fmt.Fprintf(&sb, "**Failed:** %s\n\n", s.Err)
	}
	if len(s.Header) > 0 {
		sb.WriteString("| " + strings.Join(s.Header, " | ") + " |\n|")
		for range s.Header {
			sb.WriteString("---|")
		}
		sb.WriteString("\n")
		for _, r := range s.Rows {
			sb.WriteString("| " + strings.Join(r, " | ") + " |\n")
		}
		sb.WriteString("\n")
	}
	for _, n := range s.Notes {
		sb.WriteString(n + "\n\n")
	}
	return sb.String()
}

func met(ok bool) string {
	if ok {
		return "met"
	}
	return "**missed**"
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return runtime.GOARCH
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "model name") {
			if _, v, ok := strings.Cut(line, ":"); ok {
				return strings.TrimSpace(v)
			}
		}
	}
	return runtime.GOARCH
}

func memTotal() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "?"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "MemTotal:") {
			var kb uint64
			fmt.Sscanf(strings.TrimSpace(strings.TrimPrefix(line, "MemTotal:")), "%d", &kb)
			return fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
		}
	}
	return "?"
}

func goVersion() string {
	out, err := exec.Command("go", "version").Output()
	if err != nil {
		return runtime.Version()
	}
	return strings.TrimSpace(strings.TrimPrefix(string(out), "go version "))
}

var loadAtStart = loadAvg()

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

func kernel() string {
	b, err := os.ReadFile("/proc/sys/kernel/osrelease")
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(b))
}
