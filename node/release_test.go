package node

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"fmt"
	"hash/crc32"
	"math/rand"
	"runtime"
	"runtime/debug"
	rtmetrics "runtime/metrics"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// heldBytes is the memory the Go runtime holds from the OS (all classes,
// less heap pages already returned): what a node's RSS follows.
func heldBytes() uint64 {
	s := []rtmetrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64() - s[1].Value.Uint64()
}

// overBudgetPPTX is a deck of 25 slides of 3 MiB of varied text each: no
// part is suspicious alone (ratio ~3x), together they inflate past the
// loader's 64 MiB per-document budget, so the task reads 64 MiB before it
// fails.
func overBudgetPPTX(t *testing.T) []byte {
	rng := rand.New(rand.NewSource(1))
	var words bytes.Buffer
	words.WriteString(`<p:sld xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><a:p><a:t>`)
	for words.Len() < 3<<20 {
		fmt.Fprintf(&words, "w%x ", rng.Int63())
	}
	words.WriteString(`</a:t></a:p></p:sld>`)
	// Deflate the slide once and store it 25 times raw: the test's own
	// compression work stays small under -race.
	var deflated bytes.Buffer
	fw, err := flate.NewWriter(&deflated, flate.BestSpeed)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fw.Write(words.Bytes()); err != nil {
		t.Fatal(err)
	}
	if err := fw.Close(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for i := 1; i <= 25; i++ {
		w, err := zw.CreateRaw(&zip.FileHeader{Name: fmt.Sprintf("ppt/slides/slide%d.xml", i), Method: zip.Deflate,
			CRC32: crc32.ChecksumIEEE(words.Bytes()), CompressedSize64: uint64(deflated.Len()), UncompressedSize64: uint64(words.Len())})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(deflated.Bytes()); err != nil {
			t.Fatal(err)
		}
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestMemoryReleasedAfterFailedTask: a document that fails on the total
// decompressed-size cap leaves the node holding about what it held before
// (the worker returns freed heap to the OS after a failed task), not its
// high-water mark. Bounds are generous: other tests' leftovers and the
// upload's own buffers are noise of a few tens of MB.
func TestMemoryReleasedAfterFailedTask(t *testing.T) {
	c := newCluster(t)
	n := c.start(baseConfig(t, "n1"))
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	data := overBudgetPPTX(t)
	runtime.GC()
	debug.FreeOSMemory()
	base := heldBytes()

	stop := make(chan struct{})
	peak := make(chan uint64, 1)
	go func() {
		var hi uint64
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				peak <- hi
				return
			case <-tick.C:
				hi = max(hi, heldBytes())
			}
		}
	}()
	tv, err := clientOf(n).Submit(ctxT(t, 3*time.Minute), transport.SubmitRequest{Partition: "p", FileID: "deck.pptx", FileName: "deck.pptx"}, bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	data = nil
	tk := waitTerminal(t, c, []string{tv.ID}, 5*time.Minute)[tv.ID]
	if tk.State != fsm.Failed || !strings.Contains(tk.Error, "more than 64 MiB inflated") {
		t.Fatalf("deck ended %s: %q", tk.State, tk.Error)
	}
	if tk.Attempt != 1 {
		t.Errorf("a document over a cap was retried: attempt %d", tk.Attempt)
	}
	close(stop)
	hi := <-peak
	const slack = 64 << 20
	var now uint64
	waitFor(t, time.Minute, "memory back near its level before the task", func() bool {
		now = heldBytes()
		return now < base+slack
	})
	t.Logf("held by the runtime: %d MB before, peak %d MB, %d MB after the failure", base>>20, hi>>20, now>>20)
}
