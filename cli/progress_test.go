package cli

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

type fakeClock struct{ t time.Time }

func (f *fakeClock) Now() time.Time          { return f.t }
func (f *fakeClock) advance(d time.Duration) { f.t = f.t.Add(d) }

// TestProgressPlain: a stderr that is not a terminal gets one plain line
// per 10 s and an exact last line, and never a carriage return.
func TestProgressPlain(t *testing.T) {
	clk := &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
	var buf bytes.Buffer
	p := newProgress(&buf, clk)
	if p.tty {
		t.Fatal("a buffer is not a terminal")
	}
	// 100 tasks, 2 finishing per second, polled every 500 ms for 25 s.
	for i := 0; i <= 50; i++ {
		fin := i // one per poll = 2/s
		p.update(counts{Done: fin, Running: 4, Total: 100})
		clk.advance(500 * time.Millisecond)
	}
	p.update(counts{Done: 98, Failed: 2, Total: 100})
	p.done()
	out := buf.String()
	if strings.Contains(out, "\r") {
		t.Fatalf("carriage return written to a non-terminal:\n%q", out)
	}
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	// t=0, 10 s, 20 s, then the final line.
	if len(lines) != 4 {
		t.Fatalf("want 3 periodic lines and a final one, got %d:\n%s", len(lines), out)
	}
	if !strings.HasPrefix(lines[0], "done 0  failed 0  running 4  queued 96  [") || !strings.Contains(lines[0], "0/100   0%  rate -  ETA -") {
		t.Fatalf("first line: %q", lines[0])
	}
	// At 10 s: 20 done, 2/s over the 10 s seen so far, 80 left: 40 s.
	if !strings.Contains(lines[1], "20/100  20%  2.0 tasks/s  ETA 40s") {
		t.Fatalf("line at 10 s: %q", lines[1])
	}
	if !strings.Contains(lines[2], "40/100  40%  2.0 tasks/s  ETA 30s") {
		t.Fatalf("line at 20 s: %q", lines[2])
	}
	last := lines[3]
	if !strings.HasPrefix(last, "done 98  failed 2  running 0  queued 0  [========================] 100/100 100%") ||
		strings.Contains(last, "ETA") {
		t.Fatalf("final line: %q", last)
	}
}

// TestProgressWindow: the rate is over the last 30 s, so a stall shows as
// a rate falling to zero and no ETA rather than an all-run average.
func TestProgressWindow(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	var buf bytes.Buffer
	p := newProgress(&buf, clk)
	for i := 0; i < 60; i++ { // 60 s at 10/s
		p.update(counts{Done: i * 10, Total: 5000})
		clk.advance(time.Second)
	}
	if r, ok := p.rate(); !ok || r != 10 {
		t.Fatalf("rate after a steady minute: %v %v", r, ok)
	}
	for i := 0; i < 31; i++ { // stalled
		p.update(counts{Done: 590, Running: 3, Total: 5000})
		clk.advance(time.Second)
	}
	if r, _ := p.rate(); r != 0 {
		t.Fatalf("rate after a 31 s stall: %v", r)
	}
	if l := p.line(); !strings.Contains(l, "0.0 tasks/min  ETA -") {
		t.Fatalf("stalled line: %q", l)
	}
	// Slow: 1 task every 10 s reads as tasks/min, ETA in hours.
	for i := 1; i <= 4; i++ {
		clk.advance(10 * time.Second)
		p.update(counts{Done: 590 + i, Total: 5000})
	}
	if l := p.line(); !strings.Contains(l, "6.0 tasks/min") || !strings.Contains(l, "ETA 12h14m") {
		t.Fatalf("slow line: %q", l)
	}
}

// TestProgressTerminal: on a terminal the line is redrawn in place, at most
// every 200 ms, blanks what a longer earlier line left, and ends with a
// newline.
func TestProgressTerminal(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0)}
	var buf bytes.Buffer
	p := newProgress(&buf, clk)
	p.tty = true
	p.update(counts{Done: 0, Running: 5, Total: 5})
	clk.advance(100 * time.Millisecond)
	p.update(counts{Done: 1, Running: 4, Total: 5}) // too soon: not drawn
	clk.advance(2 * time.Second)
	p.update(counts{Done: 5, Total: 5})
	p.done()
	out := buf.String()
	if n := strings.Count(out, "\r"); n != 3 {
		t.Fatalf("want 3 redraws, got %d: %q", n, out)
	}
	if strings.Contains(out, "done 1 ") {
		t.Fatalf("a redraw within 200 ms was written: %q", out)
	}
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
		t.Fatalf("want one newline, at the end: %q", out)
	}
	// A run shorter than one poll: the final line once, not twice.
	buf.Reset()
	q := newProgress(&buf, clk)
	q.update(counts{Done: 2, Total: 2})
	q.done()
	if n := strings.Count(buf.String(), "\n"); n != 1 {
		t.Fatalf("a run ended at the first poll printed %d lines: %q", n, buf.String())
	}
	draws := strings.Split(strings.TrimSuffix(out, "\n"), "\r")
	last := draws[len(draws)-1]
	if !strings.HasPrefix(last, "done 5  failed 0  running 0  queued 0  [========================] 5/5 100%") {
		t.Fatalf("final draw: %q", last)
	}
	if len(draws[2]) < len(draws[1]) || strings.TrimRight(draws[2], " ") != strings.TrimRight(last, " ") {
		t.Fatalf("the second draw does not blank the longer first one: %q vs %q", draws[2], draws[1])
	}
}
