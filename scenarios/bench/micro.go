package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// benchMicro runs the Go micro-benchmarks with `go test -bench` and
// tabulates them.
func benchMicro(ctx context.Context, tb *benchTB) []section {
	pkgs := []string{"./fsm", "./scheduler", "./node", "./indexer/chunk", "./indexer/embed", "./indexer/store"}
	re := "^(BenchmarkApplySubmitAssignComplete|BenchmarkSnapshot100kTasks|BenchmarkSchedule10kTasks100Nodes|BenchmarkSchedulePass10kTasks100Nodes|BenchmarkSchedulerInput10kTasks100Nodes|BenchmarkSplit|BenchmarkLexical|BenchmarkLocalSearch100k)$"
	benchtime := "1s"
	if *flagSmoke {
		benchtime = "1x"
	}
	args := append([]string{"test", "-run", "^$", "-bench", re, "-benchtime", benchtime, "-benchmem", "-count", "1"}, pkgs...)
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(file), "..", "..")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_CFLAGS=-Wno-deprecated-declarations")
	t0 := time.Now()
	out, err := cmd.CombinedOutput()
	logf("micro: go %s (%s)", strings.Join(args, " "), time.Since(t0).Round(time.Second))
	if err != nil {
		tb.Fatalf("go test -bench: %v\n%s", err, tail(out, 3000))
	}
	sec := section{
		Title:  "7. Go micro-benchmarks",
		Setup:  "`go test -run '^$' -bench '" + re + "' -benchtime " + benchtime + " -benchmem " + strings.Join(pkgs, " ") + "`",
		Header: []string{"package", "benchmark", "time/op", "other", "allocs/op", "target", "status"},
	}
	pkg := ""
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "pkg: ") {
			pkg = strings.TrimPrefix(strings.TrimPrefix(line, "pkg: "), "github.com/ragnode/ragnode/")
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 {
			continue
		}
		name := f[0]
		if i := strings.LastIndex(name, "-"); i > 0 {
			name = name[:i]
		}
		var nsop float64
		var other []string
		allocs := ""
		for i := 2; i+1 < len(f); i += 2 {
			v, unit := f[i], f[i+1]
			switch unit {
			case "ns/op":
				nsop, _ = strconv.ParseFloat(v, 64)
			case "allocs/op":
				allocs = v
			case "B/op":
			default:
				other = append(other, v+" "+unit)
			}
		}
		tgt, st := "", ""
		if strings.HasPrefix(name, "BenchmarkSchedule10kTasks100Nodes") || name == "BenchmarkSchedulePass10kTasks100Nodes" {
			tgt, st = "< 10 ms", met(nsop < 10e6)
		}
		if name == "BenchmarkSnapshot100kTasks/restore" {
			tgt, st = "< 2 s", met(nsop < 2e9)
		}
		sec.Rows = append(sec.Rows, []string{pkg, strings.TrimPrefix(name, "Benchmark"), dur(nsop), strings.Join(other, ", "), allocs, tgt, st})
	}
	sec.Notes = append(sec.Notes, "*SchedulePass10kTasks100Nodes* is the leader's whole pass (ledger → scheduler input → placement) over "+
		"10,000 queued tasks and 100 nodes; *SchedulerInput10kTasks100Nodes* is its part that holds the FSM read lock.")
	return []section{sec}
}

func dur(ns float64) string {
	switch {
	case ns >= 1e9:
		return fmt.Sprintf("%.2f s", ns/1e9)
	case ns >= 1e6:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	case ns >= 1e3:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	}
	return fmt.Sprintf("%.0f ns", ns)
}
