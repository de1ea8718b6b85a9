package node

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer/contain"
)

// debugDoc is a document a parser child started with contain.EnvDebug
// treats as the verb says (contain/debug.go).
func debugDoc(verb string, body []byte) []byte {
	return append([]byte(contain.DebugMagic+verb+"\n"), body...)
}

// gzipBomb inflates to members × 32 MiB of zeros from about 32 KiB each.
func gzipBomb(members int) []byte {
	var one bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for i := 0; i < 32; i++ {
		zw.Write(zero)
	}
	zw.Close()
	return bytes.Repeat(one.Bytes(), members)
}

func parserPoolOf(t *testing.T, n *Node) *contain.Pool {
	t.Helper()
	p, ok := n.pipe.Parser().(*contain.Pool)
	if !ok {
		t.Fatalf("node parses in process (%T)", n.pipe.Parser())
	}
	return p
}

func submitBytes(t *testing.T, n *Node, name string, data []byte) string {
	t.Helper()
	tv, err := clientOf(n).Submit(ctxT(t, 30*time.Second), submitReq("p", name), bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return tv.ID
}

func oneParsingNode(t *testing.T, mod func(cfg *Config)) (*cluster, *Node) {
	t.Setenv(contain.EnvDebug, "1")
	c := newCluster(t)
	ns := c.startN(1, func(_ int, cfg *Config) {
		cfg.CPUSlots = 1
		cfg.Indexer.ParserMemory = 256 << 20
		if mod != nil {
			mod(cfg)
		}
	})
	c.mustLeader(t)
	return c, ns[0]
}

// TestParserBombFailsTaskNamingLimit: an inflate bomb (2 GiB from 2 MiB)
// parsed through the real pipeline: its child is killed at the 256 MiB
// limit, the task fails at once and for good naming the limit, the node's
// own heap stays where it was, and the one slot runs the next file at once.
func TestParserBombFailsTaskNamingLimit(t *testing.T) {
	c, n := oneParsingNode(t, nil)
	bomb := debugDoc("inflate", []byte(base64.StdEncoding.EncodeToString(gzipBomb(64))))
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapInuse
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			var m runtime.MemStats
			runtime.ReadMemStats(&m)
			peak = max(peak, m.HeapInuse)
		}
	}()
	bombID := submitBytes(t, n, "bomb.txt", bomb)
	nextID := submitBytes(t, n, "next.txt", []byte("an ordinary file after the bomb"))
	final := waitTerminal(t, c, []string{bombID, nextID}, 60*time.Second)
	close(stop)
	wg.Wait()
	b, next := final[bombID], final[nextID]
	if b.State != fsm.Failed || !strings.Contains(b.Error, "parser exceeded 256 MiB of memory") || b.Attempt != 1 {
		t.Fatalf("bomb ended %s at attempt %d: %q", b.State, b.Attempt, b.Error)
	}
	if next.State != fsm.Completed {
		t.Fatalf("next file ended %s: %s", next.State, next.Error)
	}
	// One slot: the next file could only start once the bomb's run ended.
	if gap := time.Duration(next.Finished - b.Finished); gap > 3*time.Second {
		t.Fatalf("the next file finished %s after the bomb failed: the slot was not free", gap)
	}
	t.Logf("bomb: %q; next file done %s after it; node heap in use %d MiB at start, peak %d MiB",
		b.Error, time.Duration(next.Finished-b.Finished).Round(time.Millisecond), base>>20, peak>>20)
	if peak > base+96<<20 {
		t.Fatalf("node heap grew from %d to %d MiB while the child inflated the bomb", base>>20, peak>>20)
	}
}

// TestCancelKillsParserChild: cancelling a task whose document is being
// parsed ends its child at once.
func TestCancelKillsParserChild(t *testing.T) {
	c, n := oneParsingNode(t, nil)
	pool := parserPoolOf(t, n)
	id := submitBytes(t, n, "wedged.txt", debugDoc("sleep", nil))
	waitFor(t, 20*time.Second, "the document in its child", func() bool {
		return taskStates(n)[id] == fsm.Running && pool.Live() == 1
	})
	t0 := time.Now()
	if err := clientOf(n).Cancel(ctxT(t, 10*time.Second), id); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the child gone", func() bool { return pool.Live() == 0 })
	t.Logf("child gone %s after the cancel", time.Since(t0).Round(time.Millisecond))
	waitTerminal(t, c, []string{id}, 10*time.Second)
}

// TestParserCrashCountsAsLoss: a child killed by a signal nobody here sent
// (what the kernel's OOM killer does) ends the attempt as a lost runner:
// the task is retried elsewhere, and past --max-node-losses quarantined.
func TestParserCrashCountsAsLoss(t *testing.T) {
	c, n := oneParsingNode(t, func(cfg *Config) { cfg.MaxNodeLosses = 1; cfg.MaxAttempts = 5 })
	id := submitBytes(t, n, "crash.txt", debugDoc("crash", nil))
	tk := waitTerminal(t, c, []string{id}, 60*time.Second)[id]
	if tk.State != fsm.Failed || tk.NodeLosses != 2 || tk.Failures != 0 ||
		!strings.HasPrefix(tk.Error, "suspected poison document: lost 2 nodes while running it (last: parser child died: killed by signal 9") {
		t.Fatalf("crashing document: %s, %d losses, %d failures: %q", tk.State, tk.NodeLosses, tk.Failures, tk.Error)
	}
}

// TestParserInProcessKeepsOldBehaviour: --parser-inprocess parses in the
// node, no child.
func TestParserInProcessKeepsOldBehaviour(t *testing.T) {
	c, n := oneParsingNode(t, func(cfg *Config) { cfg.Indexer.ParserInProcess = true })
	if n.pipe.Parser() != nil {
		t.Fatalf("in-process node has a parser pool %T", n.pipe.Parser())
	}
	id := submitBytes(t, n, "plain.txt", []byte("parsed in the node"))
	if tk := waitTerminal(t, c, []string{id}, 30*time.Second)[id]; tk.State != fsm.Completed || tk.Chunks == 0 {
		t.Fatalf("task %s, %d chunks: %s", tk.State, tk.Chunks, tk.Error)
	}
}
