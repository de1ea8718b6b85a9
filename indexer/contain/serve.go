package contain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/metrics"
	"time"

	"github.com/ragnode/ragnode/indexer/convert"
	"github.com/ragnode/ragnode/indexer/loader"
)

// Exit codes of a child that ends itself; the parent reads them.
const (
	exitMemory   = 3 // passed its memory limit (self-watch)
	exitCPU      = 4 // passed its CPU time (SIGXCPU)
	exitProtocol = 5 // the parent spoke nonsense, or could not be answered
)

// A binary that imports this package can be started as a parser child. The
// check runs at package initialisation, before main and before a test
// binary's TestMain, so no binary that could start a child lacks it, and a
// child never reaches the program it was built into.
func init() {
	if os.Getenv(envChild) == "" {
		return
	}
	// Converters and OCR helpers the child runs must not become children.
	_ = os.Unsetenv(envChild)
	os.Exit(serveChild())
}

func serveChild() int {
	in := bufio.NewReaderSize(os.Stdin, 64<<10)
	out := privateStdout()
	var cfg configMsg
	if err := readFrame(in, &cfg, maxControl); err != nil {
		fmt.Fprintln(os.Stderr, "parser child: read config:", err)
		return exitProtocol
	}
	hello := helloMsg{Pid: os.Getpid()}
	if err := applyLimits(cfg); err != nil {
		hello.Err = err.Error()
	}
	debugDocs = os.Getenv(EnvDebug) == "1"
	loader.Configure(cfg.Loader)
	// An operator's converter may need more address space than a parser
	// (CUDA maps far more than it uses): it keeps the deadline and the
	// kill, not the address-space cap.
	convert.OnStart = liftAddressSpace
	// A converter has a process group of its own, which the parent's kill
	// of the child's group misses: it dies with the child instead.
	convert.Prepare = func(cmd *exec.Cmd) {
		if cmd.SysProcAttr != nil {
			dieWithParent(cmd.SysProcAttr)
		}
	}
	if err := writeFrame(out, hello); err != nil || hello.Err != "" {
		return exitProtocol
	}
	if cfg.Memory > 0 {
		go watchSelf(cfg.Memory)
	}
	for {
		var m requestMsg
		if err := readFrame(in, &m, maxControl); err != nil {
			if errors.Is(err, io.EOF) {
				return 0 // retired: the parent closed our stdin
			}
			fmt.Fprintln(os.Stderr, "parser child: read request:", err)
			return exitProtocol
		}
		if m.DataLen > maxRequest {
			return exitProtocol
		}
		data := make([]byte, m.DataLen)
		if _, err := io.ReadFull(in, data); err != nil {
			return exitProtocol
		}
		m.Req.Data = data
		startDocument(cfg.CPU)
		resp := parseOne(m)
		m.Req.Data, data = nil, nil
		err := writeFrameMax(out, resp, MaxResponse)
		var big *tooLargeError
		if errors.As(err, &big) {
			resp = responseMsg{Seq: m.Seq, Permanent: true,
				Err: fmt.Sprintf("document text of %s is larger than the %s a parse may return", FormatBytes(big.n), FormatBytes(MaxResponse))}
			err = writeFrame(out, resp)
		}
		if err != nil {
			return exitProtocol
		}
		releaseIfLarge()
	}
}

// idleHeap is what an idle child may keep of a document's heap: above it
// the child hands the memory back before waiting for the next document
// (a node keeps as many idle children as it has slots).
const idleHeap = 64 << 20

func releaseIfLarge() {
	s := []metrics.Sample{{Name: "/memory/classes/heap/free:bytes"}, {Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	if s[0].Value.Uint64()+s[1].Value.Uint64() > idleHeap {
		debug.FreeOSMemory()
	}
}

func parseOne(m requestMsg) responseMsg {
	ctx := context.Background()
	if m.Deadline > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, time.Unix(0, m.Deadline))
		defer cancel()
	}
	doc, err := Load(ctx, m.Req)
	if err != nil {
		return responseMsg{Seq: m.Seq, Err: err.Error(), Permanent: IsPermanent(err)}
	}
	return responseMsg{Seq: m.Seq, Doc: doc}
}

// heapLimitShare is the part of the memory limit given to the Go heap
// limit: the collector works hard before the resident size reaches the
// limit, so a document that fits is not killed for garbage it left.
const heapLimitShare = 0.85

func applyLimits(cfg configMsg) error {
	if cfg.Memory > 0 {
		debug.SetMemoryLimit(int64(float64(cfg.Memory) * heapLimitShare))
	}
	if cfg.AS > 0 {
		if err := setAddressSpace(cfg.AS); err != nil {
			return fmt.Errorf("address-space limit: %w", err)
		}
	}
	if cfg.CPU > 0 {
		if err := catchCPULimit(); err != nil {
			return fmt.Errorf("CPU limit: %w", err)
		}
	}
	return nil
}

// watchSelf ends the child once the memory the Go runtime holds passes the
// limit: a portable guard under the parent's resident-size watch and the
// address-space limit, which a slow climb might not reach first.
func watchSelf(limit uint64) {
	samples := []metrics.Sample{{Name: "/memory/classes/total:bytes"}, {Name: "/memory/classes/heap/released:bytes"}}
	for range time.Tick(50 * time.Millisecond) {
		metrics.Read(samples)
		used := samples[0].Value.Uint64() - samples[1].Value.Uint64()
		if used > limit {
			fmt.Fprintf(os.Stderr, "parser child: %d bytes in use, limit %d\n", used, limit)
			os.Exit(exitMemory)
		}
	}
}
