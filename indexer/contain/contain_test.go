//go:build unix

package contain

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ragnode/ragnode/indexer/loader"
)

// The hooks are registered during variable initialisation, which precedes
// every init function: the child (this test binary started again) has them
// before it starts serving.
var _ = func() bool {
	testHooks = map[string]func(ctx context.Context, req Request) (loader.Document, error){
		// An inflate bomb: the request is a gzip stream of many members,
		// read whole as a careless loader would.
		"test:inflate": func(ctx context.Context, req Request) (loader.Document, error) {
			zr, err := gzip.NewReader(bytes.NewReader(req.Data))
			if err != nil {
				return loader.Document{}, err
			}
			b, err := io.ReadAll(zr)
			return loader.Document{Pages: []loader.Page{{Text: string(b[:min(len(b), 16)])}}}, err
		},
		"test:spin": func(ctx context.Context, req Request) (loader.Document, error) {
			x := 0
			for {
				x++
			}
		},
		"test:sleep": func(ctx context.Context, req Request) (loader.Document, error) {
			time.Sleep(time.Hour)
			return loader.Document{}, nil
		},
		"test:crash": func(ctx context.Context, req Request) (loader.Document, error) {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Hour)
			return loader.Document{}, nil
		},
		"test:huge": func(ctx context.Context, req Request) (loader.Document, error) {
			b := make([]byte, 64<<30)
			return loader.Document{Title: string(b[:1])}, nil
		},
		"test:pid": func(ctx context.Context, req Request) (loader.Document, error) {
			return loader.Document{Title: itoa(os.Getpid())}, nil
		},
	}
	return true
}()

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := NewPool(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// bomb is a gzip stream that inflates to members × 32 MiB of zeros from a
// few kilobytes each.
func bomb(t *testing.T, members int) []byte {
	t.Helper()
	var one bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&one, gzip.BestCompression)
	zero := make([]byte, 1<<20)
	for i := 0; i < 32; i++ {
		zw.Write(zero)
	}
	zw.Close()
	return bytes.Repeat(one.Bytes(), members)
}

func processGone(pid int) bool {
	return syscall.Kill(pid, 0) != nil
}

func TestParseInChild(t *testing.T) {
	p := newPool(t, Config{Memory: 1 << 30, CPU: time.Minute})
	for i := 0; i < 3; i++ {
		doc, err := p.Parse(context.Background(), Request{FileName: "a.txt", Data: []byte("hello child\n")})
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.TrimSpace(doc.Text()); got != "hello child" {
			t.Fatalf("text %q", got)
		}
	}
	if n := p.Started(); n != 1 {
		t.Fatalf("%d children started for 3 documents, want 1 (reused)", n)
	}
	_, err := p.Parse(context.Background(), Request{FileName: "a.exe", Data: []byte("MZ\x90\x00binary")})
	if err == nil || !IsPermanent(err) || !errors.Is(err, loader.ErrUnsupported) && !strings.Contains(err.Error(), "unsupported") {
		t.Fatalf("unsupported file: %v (permanent %v)", err, IsPermanent(err))
	}
	if n := p.Started(); n != 1 {
		t.Fatalf("a document error cost the child: %d started", n)
	}
}

func TestRecycleAfterMaxDocs(t *testing.T) {
	p := newPool(t, Config{MaxDocs: 2})
	pids := map[string]int{}
	for i := 0; i < 5; i++ {
		doc, err := p.Parse(context.Background(), Request{Kind: "test:pid"})
		if err != nil {
			t.Fatal(err)
		}
		pids[doc.Title]++
	}
	if len(pids) != 3 || p.Started() != 3 {
		t.Fatalf("5 documents at 2 per child ran in %v (started %d), want 3 children", pids, p.Started())
	}
	for pid, n := range pids {
		if n > 2 {
			t.Fatalf("child %s read %d documents", pid, n)
		}
	}
}

func TestInflateBombKilledForMemory(t *testing.T) {
	const limit = 256 << 20
	p := newPool(t, Config{Memory: limit, CPU: time.Minute})
	data := bomb(t, 64) // 2 GiB inflated
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	t0 := time.Now()
	_, err := p.Parse(context.Background(), Request{Kind: "test:inflate", Data: data})
	took := time.Since(t0)
	runtime.ReadMemStats(&after)
	var le *LimitError
	if !errors.As(err, &le) || le.Resource != "memory" || !IsPermanent(err) {
		t.Fatalf("bomb ended with %v, want a permanent memory LimitError", err)
	}
	if !strings.Contains(err.Error(), "parser exceeded 256 MiB of memory") {
		t.Fatalf("message does not name the limit: %q", err)
	}
	t.Logf("bomb killed after %s by the %s: %v (mechanism: %s)", took.Round(time.Millisecond), le.By, err, p.Mechanism())
	// The parent held the 2 MiB request and nothing of the inflation.
	if grow := int64(after.HeapInuse) - int64(before.HeapInuse); grow > 32<<20 {
		t.Fatalf("parent heap grew by %d MiB while the child inflated the bomb", grow>>20)
	}
	if p.Live() != 0 {
		t.Fatalf("%d children alive after the kill", p.Live())
	}
	// The slot is free: the next document gets a fresh child at once.
	t1 := time.Now()
	if _, err := p.Parse(context.Background(), Request{FileName: "b.txt", Data: []byte("after the bomb")}); err != nil {
		t.Fatal(err)
	}
	t.Logf("next document answered in %s", time.Since(t1).Round(time.Millisecond))
}

func TestCPULimit(t *testing.T) {
	p := newPool(t, Config{CPU: time.Second})
	t0 := time.Now()
	_, err := p.Parse(context.Background(), Request{Kind: "test:spin"})
	var le *LimitError
	if !errors.As(err, &le) || le.Resource != "CPU time" || !IsPermanent(err) {
		t.Fatalf("spinning parser ended with %v, want a CPU LimitError", err)
	}
	if d := time.Since(t0); d > 15*time.Second {
		t.Fatalf("CPU limit of 1s took %s to act", d)
	}
	t.Logf("%v after %s", err, time.Since(t0).Round(time.Millisecond))
}

func TestCancelKillsChildAtOnce(t *testing.T) {
	p := newPool(t, Config{Memory: 1 << 30})
	// Learn the pid the next parse will use.
	doc, err := p.Parse(context.Background(), Request{Kind: "test:pid"})
	if err != nil {
		t.Fatal(err)
	}
	pid := 0
	for _, c := range doc.Title {
		pid = pid*10 + int(c-'0')
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	var perr error
	var returned time.Time
	go func() {
		defer wg.Done()
		_, perr = p.Parse(ctx, Request{Kind: "test:sleep"})
		returned = time.Now()
	}()
	time.Sleep(300 * time.Millisecond)
	cancelled := time.Now()
	cancel()
	wg.Wait()
	if !errors.Is(perr, context.Canceled) {
		t.Fatalf("cancelled parse returned %v", perr)
	}
	if d := returned.Sub(cancelled); d > 500*time.Millisecond {
		t.Fatalf("Parse returned %s after the cancel", d)
	}
	if !processGone(pid) {
		t.Fatalf("child %d still runs after the cancel", pid)
	}
	if p.Live() != 0 {
		t.Fatalf("%d children alive", p.Live())
	}
}

func TestDeadlineKillsChild(t *testing.T) {
	p := newPool(t, Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_, err := p.Parse(ctx, Request{Kind: "test:sleep"})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
}

func TestCrashIsLostNotPermanent(t *testing.T) {
	p := newPool(t, Config{Memory: 1 << 30, CPU: time.Minute})
	_, err := p.Parse(context.Background(), Request{Kind: "test:crash"})
	var lost *LostError
	if !errors.As(err, &lost) || IsPermanent(err) {
		t.Fatalf("crashed child: %v, want a LostError", err)
	}
	if !strings.Contains(err.Error(), "killed") {
		t.Fatalf("crash detail missing: %v", err)
	}
	t.Log(err)
}

func TestCloseKillsChildren(t *testing.T) {
	p := newPool(t, Config{MaxIdle: 2})
	if _, err := p.Parse(context.Background(), Request{Kind: "test:pid"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := p.Parse(ctx, Request{Kind: "test:sleep"})
		errc <- err
	}()
	time.Sleep(200 * time.Millisecond)
	p.Close()
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("busy parse at close: %v", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Close left a parse running")
	}
	if _, err := p.Parse(context.Background(), Request{Kind: "test:pid"}); !errors.Is(err, ErrClosed) {
		t.Fatalf("parse after close: %v", err)
	}
}

func TestFrameBounds(t *testing.T) {
	var b bytes.Buffer
	if err := writeFrame(&b, responseMsg{Seq: 1, Doc: loader.Document{Title: strings.Repeat("x", 1000)}}); err != nil {
		t.Fatal(err)
	}
	var r responseMsg
	var big *tooLargeError
	if err := readFrame(bytes.NewReader(b.Bytes()), &r, 100); !errors.As(err, &big) {
		t.Fatalf("oversized frame: %v", err)
	}
	if err := readFrame(bytes.NewReader(b.Bytes()), &r, 1<<20); err != nil || r.Seq != 1 {
		t.Fatalf("frame: %v %+v", err, r.Seq)
	}
	bad := append([]byte(nil), b.Bytes()...)
	bad[3] = protoVersion + 1
	if err := readFrame(bytes.NewReader(bad), &r, 1<<20); !errors.Is(err, errFrame) {
		t.Fatalf("other version accepted: %v", err)
	}
	if err := writeFrameMax(io.Discard, r, 10); !errors.As(err, &big) {
		t.Fatalf("writeFrameMax: %v", err)
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[uint64]string{2 << 30: "2 GiB", 512 << 20: "512 MiB", 3 << 29: "1.5 GiB", 100: "100 bytes"} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}

func TestAddressSpaceLimit(t *testing.T) {
	if raceEnabled {
		t.Skip("no address-space limit under the race detector")
	}
	p := newPool(t, Config{Memory: 256 << 20})
	_, err := p.Parse(context.Background(), Request{Kind: "test:huge"})
	var le *LimitError
	if !errors.As(err, &le) || le.Resource != "memory" {
		t.Fatalf("a 64 GiB allocation ended with %v", err)
	}
	t.Logf("%v (by %s)", err, le.By)
}

func TestChildEnvDropsNodeSettings(t *testing.T) {
	got := childEnv([]string{"PATH=/bin", "RAGNODE_TOKEN=s3cret", "RAGNODE_GOSSIP_KEY=k", "AUTH_TOKEN=a", "VDB_PASSWORD=p",
		"HF_HOME=/models", EnvDebug + "=1", envChild + "=1"})
	want := []string{"PATH=/bin", "HF_HOME=/models", EnvDebug + "=1"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("child env %v, want %v", got, want)
	}
}
