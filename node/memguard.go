package node

import (
	"context"
	"fmt"
	"os"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// The memory guard (--memory-high): a node whose resident size is over the
// mark takes no new work until it is back under. It drains itself with
// reason "memory" and no deadline, the way a disk fault does
// (diskfault.go), so the leader neither assigns nor prefetches to it, its
// prefetched tasks go back to the queue, and its running tasks finish
// where they are (nothing is handed back: they are what will free the
// memory). Its own reports stop chaining and handing off while it is over.
// The drain is lifted by the node itself once the resident size is below
// memLowFraction of the mark (the gap keeps it from flapping at the line);
// an operator's drain, a restart drain or a disk drain is never lifted here.
//
// What is measured: the process's resident set (VmRSS, from
// /proc/self/statm), which is what an OOM killer and a container limit
// see; where /proc is missing, the Go runtime's mapped memory less what it
// has returned to the OS.
const drainMemory = "memory"

// memLowFraction of the mark is "back under".
const memLowFraction = 0.95

// memGuardEvery is how often the guard samples.
const memGuardEvery = 500 * time.Millisecond

type memGuard struct {
	high uint64
	over atomic.Bool
	mu   sync.Mutex
	read func() (uint64, error) // resident bytes; swapped only by tests
}

func newMemGuard(high uint64) *memGuard {
	return &memGuard{high: high, read: residentBytes}
}

func (g *memGuard) sample() (uint64, error) {
	g.mu.Lock()
	read := g.read
	g.mu.Unlock()
	return read()
}

// overMemory reports whether this node is over --memory-high.
func (n *Node) overMemory() bool { return n.pool.mem.over.Load() }

// memGuardLoop samples the resident size and keeps the ledger's drain in
// step with it; reconciling every tick (rather than proposing once on the
// edge) survives a lost proposal and a leader change.
func (p *workerPool) memGuardLoop() {
	defer p.n.wg.Done()
	g := p.mem
	t := time.NewTicker(memGuardEvery)
	defer t.Stop()
	for {
		used, err := g.sample()
		if err != nil {
			p.n.log.Warn("memory guard: cannot read resident size", "error", err)
		} else {
			var cur *fsm.Node
			p.n.fsm.View(func(s *fsm.State) {
				if nd := s.Nodes[p.n.id]; nd != nil {
					c := *nd
					cur = &c
				}
			})
			was := g.over.Load()
			over, cmd := memDecision(used, g.high, was, cur)
			if over != was {
				g.over.Store(over)
				p.n.log.Info("memory guard", "over", over, "resident", used, "high", g.high)
			}
			if cmd != nil && !p.n.stopping() {
				cmd.NodeID = p.n.id
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				if _, err := p.n.prop.Propose(ctx, *cmd); err != nil {
					p.n.log.Debug("memory guard: drain change", "error", err)
				}
				cancel()
			}
		}
		select {
		case <-p.n.stopCh:
			return
		case <-t.C:
		}
	}
}

// memDecision is the guard's rule, pure: whether the node is over the mark
// after this sample of used bytes (with hysteresis from wasOver), and the
// drain change the ledger needs, if any, given the node's record there.
func memDecision(used, high uint64, wasOver bool, rec *fsm.Node) (bool, *fsm.Command) {
	over := wasOver
	switch {
	case used > high:
		over = true
	case float64(used) < float64(high)*memLowFraction:
		over = false
	}
	if rec == nil {
		return over, nil // not registered yet: nothing to drain
	}
	switch {
	case over && !rec.Draining:
		return over, &fsm.Command{Type: fsm.CmdSetDrain, Draining: true, Error: drainMemory}
	case !over && rec.Draining && rec.DrainReason == drainMemory:
		return over, &fsm.Command{Type: fsm.CmdSetDrain, Draining: false}
	}
	return over, nil
}

// residentBytes is the process's resident set size.
func residentBytes() (uint64, error) {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return runtimeMapped(), nil
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0, fmt.Errorf("/proc/self/statm: unexpected %q", b)
	}
	pages, err := strconv.ParseUint(f[1], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("/proc/self/statm: %w", err)
	}
	return pages * uint64(os.Getpagesize()), nil
}

// runtimeMapped is the Go runtime's memory mapped from the OS less the heap
// it has released back: the best stand-in for the resident size without /proc.
func runtimeMapped() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	rtmetrics.Read(s)
	if s[0].Value.Kind() != rtmetrics.KindUint64 || s[1].Value.Kind() != rtmetrics.KindUint64 {
		return 0
	}
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}
