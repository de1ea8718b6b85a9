package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// clock is what the progress display reads the time from; tests pass a
// fake one so rate, ETA and the 10-second cadence are deterministic.
type clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// Progress display of submit --wait.
const (
	// rateWindow is how far back the rate looks: long enough to smooth the
	// bursts of a batch finishing at once, short enough to follow a cluster
	// that speeds up or slows down.
	rateWindow = 30 * time.Second
	// plainEvery is how often a non-terminal stderr (a log file, CI) gets a
	// line: often enough to show life, rarely enough to keep logs short.
	plainEvery = 10 * time.Second
	// redrawEvery bounds terminal redraws.
	redrawEvery = 200 * time.Millisecond
	barWidth    = 24
)

// counts is what one poll of the ledger says about the submitted tasks.
type counts struct {
	Done, Failed, Running, Total int
}

func (c counts) finished() int { return c.Done + c.Failed }

type sample struct {
	at       time.Time
	finished int
}

// progress draws submit --wait's state: on a terminal one line redrawn in
// place, elsewhere a plain line every plainEvery. Every figure comes from
// the counts it is given, so the percentage, the counter and the end line
// agree with the ledger.
type progress struct {
	w        io.Writer
	tty      bool
	clock    clock
	samples  []sample // within rateWindow, oldest first
	lastDraw time.Time
	drawn    int    // width of the line on screen (tty), to blank its tail
	lastLine string // what was last written
	last     counts
}

func newProgress(w io.Writer, clk clock) *progress {
	return &progress{w: w, tty: isTerminal(w), clock: clk}
}

// isTerminal reports whether w is a terminal: redrawing with carriage
// returns anywhere else fills files with them.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// update records a poll and draws it when due.
func (p *progress) update(c counts) {
	now := p.clock.Now()
	p.last = c
	p.samples = append(p.samples, sample{now, c.finished()})
	cut := 0
	// Keep one sample at or before the window's start so the rate spans
	// the whole window once there is that much history.
	for cut+1 < len(p.samples) && now.Sub(p.samples[cut+1].at) >= rateWindow {
		cut++
	}
	p.samples = p.samples[cut:]
	every := plainEvery
	if p.tty {
		every = redrawEvery
	}
	if !p.lastDraw.IsZero() && now.Sub(p.lastDraw) < every {
		return
	}
	p.draw(now, false)
}

// done draws the final state, always, so the last line shown is exact.
func (p *progress) done() {
	p.draw(p.clock.Now(), true)
}

func (p *progress) draw(now time.Time, final bool) {
	p.lastDraw = now
	line := p.line()
	if !p.tty {
		// The final state may be the line just written (a run shorter
		// than one poll): a log needs it once.
		if !final || line != p.lastLine {
			fmt.Fprintln(p.w, line)
		}
		p.lastLine = line
		return
	}
	pad := ""
	if n := len(line); n < p.drawn {
		pad = strings.Repeat(" ", p.drawn-n)
	}
	p.drawn = len(line)
	end := ""
	if final {
		end = "\n"
	}
	fmt.Fprintf(p.w, "\r%s%s%s", line, pad, end)
}

// rate is finished tasks per second over the window; ok is false until
// there are two samples a second apart.
func (p *progress) rate() (float64, bool) {
	if len(p.samples) < 2 {
		return 0, false
	}
	a, b := p.samples[0], p.samples[len(p.samples)-1]
	span := b.at.Sub(a.at)
	if span < time.Second {
		return 0, false
	}
	return float64(b.finished-a.finished) / span.Seconds(), true
}

func (p *progress) line() string {
	c := p.last
	pct := 100
	if c.Total > 0 {
		// Floored: 100% only when every task has ended.
		pct = c.finished() * 100 / c.Total
	}
	fill := barWidth
	if c.Total > 0 {
		fill = c.finished() * barWidth / c.Total
	}
	bar := strings.Repeat("=", fill) + strings.Repeat(" ", barWidth-fill)
	queued := max(c.Total-c.finished()-c.Running, 0)
	s := fmt.Sprintf("done %d  failed %d  running %d  queued %d  [%s] %d/%d %3d%%",
		c.Done, c.Failed, c.Running, queued, bar, c.finished(), c.Total, pct)
	left := c.Total - c.finished()
	r, ok := p.rate()
	switch {
	case left == 0:
	case !ok:
		s += "  rate -  ETA -"
	case r <= 0:
		s += "  " + formatRate(0) + "  ETA -"
	default:
		eta := time.Duration(float64(left) / r * float64(time.Second))
		s += "  " + formatRate(r) + "  ETA " + formatETA(eta)
	}
	return s
}

// formatRate picks the unit that keeps the figure readable: a slow cluster
// shows tasks/min rather than 0.0 tasks/s.
func formatRate(perSec float64) string {
	switch {
	case perSec >= 10:
		return fmt.Sprintf("%.0f tasks/s", perSec)
	case perSec >= 1:
		return fmt.Sprintf("%.1f tasks/s", perSec)
	default:
		return fmt.Sprintf("%.1f tasks/min", perSec*60)
	}
}

// formatETA drops the seconds past an hour: they are noise there.
func formatETA(d time.Duration) string {
	if d < time.Hour {
		return d.Round(time.Second).String()
	}
	return strings.TrimSuffix(d.Round(time.Minute).String(), "0s")
}
