package contain

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Why the parent ended a child; read back when its exit is classified.
const (
	reasonNone    int32 = iota
	reasonCancel        // the caller's context ended
	reasonMemory        // the parent saw it pass its memory limit
	reasonCPU           // the parent saw it pass its CPU time
	reasonDiscard       // it failed in a way that leaves it suspect
	reasonClose         // the pool closed
	reasonRetire        // recycled after its documents
)

// startTimeout bounds a child's start and handshake.
const startTimeout = 30 * time.Second

// watchEvery is how often the parent samples a busy child's resident size
// and CPU time. A parser allocating at memory bandwidth overshoots the
// limit by what it can allocate in that time; the address-space limit, set
// at the same level plus the runtime's margin, stops a faster climb.
const watchEvery = 20 * time.Millisecond

// asMargin is address space a Go child maps beyond its heap: measured at
// 1.6 GB for an idle child and 2.0 GB once the PDF engine is compiled
// (amd64, Go 1.26), the Go runtime reserving far more than it touches.
// The address-space limit is the backstop against a burst the watch would
// see too late; the resident-size watch holds the limit itself.
const asMargin = 3 << 30

// child is the parent's handle on one parser process.
type child struct {
	pid    int
	cmd    *exec.Cmd
	stdin  *os.File
	stdout *bufio.Reader
	outF   *os.File
	stderr *tailBuffer
	cg     *cgroupV2
	cgDir  string // this child's own cgroup ("" without cgroups)

	exited  chan struct{} // closed once reaped
	errDone chan struct{} // closed once stderr reached its end
	state   *os.ProcessState
	reason  atomic.Int32
	docs    int
	seq     uint64
	// docCPU is the child's CPU time when its current document began.
	docCPU time.Duration
}

func startChild(ctx context.Context, cfg Config, cg *cgroupV2) (*child, error) {
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("parser child: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("parser child: %w", err)
	}
	errR, errW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		outR.Close()
		outW.Close()
		return nil, fmt.Errorf("parser child: %w", err)
	}
	cmd := exec.Command(cfg.Command[0], cfg.Command[1:]...)
	cmd.Env = append(childEnv(os.Environ()), fmt.Sprintf("%s=%d", envChild, protoVersion))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = inR, outW, errW
	childAttrs(cmd)
	err = spawn(cmd)
	// The child holds its ends now (or never will).
	inR.Close()
	outW.Close()
	errW.Close()
	if err != nil {
		inW.Close()
		outR.Close()
		errR.Close()
		return nil, fmt.Errorf("parser child: start %s: %w", cfg.Command[0], err)
	}
	c := &child{pid: cmd.Process.Pid, cmd: cmd, stdin: inW, outF: outR, stdout: bufio.NewReaderSize(outR, 64<<10),
		stderr: &tailBuffer{headMax: 1 << 10, max: 4 << 10}, cg: cg, exited: make(chan struct{}), errDone: make(chan struct{})}
	go func() {
		_, _ = io.Copy(c.stderr, errR)
		errR.Close()
		close(c.errDone)
	}()
	go func() {
		_ = cmd.Wait()
		c.state = cmd.ProcessState
		if c.cgDir != "" {
			c.cg.remove(c.cgDir)
		}
		close(c.exited)
	}()
	// The child reads nothing but its config until it has answered, so
	// it is in its cgroup before it can parse a byte.
	if cg != nil {
		dir, err := cg.place(c.pid, cfg.Memory)
		if err != nil {
			c.kill(reasonDiscard)
			return nil, fmt.Errorf("parser child: cgroup: %w", err)
		}
		c.cgDir = dir
	}
	cm := configMsg{Memory: cfg.Memory, CPU: cfg.CPU, Loader: cfg.Loader}
	if cfg.Memory > 0 && cg == nil && !raceEnabled && rlimitSupported {
		// The race detector maps terabytes of shadow memory up front: an
		// address-space limit would stop the child before it starts.
		cm.AS = cfg.Memory + asMargin
	}
	if err := c.handshake(ctx, cm); err != nil {
		c.kill(reasonDiscard)
		c.waitExit(time.Second)
		return nil, fmt.Errorf("parser child: %w%s", err, c.stderr.lastLines(5))
	}
	return c, nil
}

// childEnv is the node's environment less its own settings and the
// upstream aliases that carry credentials: a child reads hostile bytes and
// needs none of them, while a converter may need the rest (model paths,
// its own tokens).
func childEnv(env []string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case name == EnvDebug:
		case strings.HasPrefix(name, "RAGNODE_"), name == envChild:
			continue
		case name == "AUTH_TOKEN", name == "EMBEDDER_API_KEY", name == "VDB_PASSWORD":
			continue
		}
		out = append(out, kv)
	}
	return out
}

func (c *child) handshake(ctx context.Context, cm configMsg) error {
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	done := make(chan error, 1)
	stdin, stdout := c.stdin, c.stdout
	go func() {
		if err := writeFrame(stdin, cm); err != nil {
			done <- fmt.Errorf("send config: %w", err)
			return
		}
		var h helloMsg
		if err := readFrame(stdout, &h, maxControl); err != nil {
			done <- fmt.Errorf("no answer (%v)", err)
			return
		}
		if h.Err != "" {
			done <- errors.New(h.Err)
			return
		}
		done <- nil
	}()
	select {
	case err := <-done:
		return err
	case <-c.exited:
		// The reader sees the closed pipe too; prefer its message.
		select {
		case err := <-done:
			return err
		case <-time.After(time.Second):
			return fmt.Errorf("exited at start (%s)", c.state)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *child) alive() bool {
	select {
	case <-c.exited:
		return false
	default:
		return true
	}
}

// do sends one document and waits for its answer, the child's end, a
// limit, or the context. Any error leaves the child unusable (the caller
// discards it); the document's own errors come inside the response.
func (c *child) do(ctx context.Context, req Request, cfg Config) (responseMsg, error) {
	c.seq++
	c.docs++
	m := requestMsg{Seq: c.seq, Req: req, DataLen: uint64(len(req.Data))}
	m.Req.Data = nil
	if d, ok := ctx.Deadline(); ok {
		m.Deadline = d.UnixNano()
	}
	c.docCPU = cpuTime(c.pid)
	type answer struct {
		resp responseMsg
		err  error
	}
	got := make(chan answer, 1)
	stdin, stdout := c.stdin, c.stdout
	go func() {
		// Written apart from the read: a child that stops reading must not
		// hold the caller, and a closed pipe ends the write.
		if err := writeFrame(stdin, m); err != nil {
			return
		}
		_, _ = stdin.Write(req.Data)
	}()
	go func() {
		var r responseMsg
		err := readFrame(stdout, &r, MaxResponse+maxControl)
		got <- answer{r, err}
	}()
	tick := time.NewTicker(watchEvery)
	defer tick.Stop()
	for {
		select {
		case a := <-got:
			if a.err == nil && a.resp.Seq == m.Seq {
				return a.resp, nil
			}
			var big *tooLargeError
			if errors.As(a.err, &big) {
				c.kill(reasonDiscard)
				return responseMsg{}, &DocError{Err: fmt.Errorf("document text of %s is larger than the %s a parse may return", FormatBytes(big.n), FormatBytes(MaxResponse))}
			}
			// The stream ended or broke: the child is gone or going.
			if !c.waitExit(2 * time.Second) {
				c.kill(reasonDiscard)
				return responseMsg{}, &LostError{Detail: fmt.Sprintf("bad answer (%v)%s", a.err, c.stderr.lastLines(5))}
			}
			return responseMsg{}, c.exitError(cfg)
		case <-c.exited:
			return responseMsg{}, c.exitError(cfg)
		case <-ctx.Done():
			c.kill(reasonCancel)
			c.waitExit(time.Second)
			return responseMsg{}, ctx.Err()
		case <-tick.C:
			if r := c.overLimit(cfg); r != reasonNone {
				c.kill(r)
				c.waitExit(time.Second)
				return responseMsg{}, c.exitError(cfg)
			}
		}
	}
}

// overLimit samples a busy child (where the system lets the parent see it).
func (c *child) overLimit(cfg Config) int32 {
	if cfg.Memory > 0 && c.cg == nil {
		if rss := residentBytes(c.pid); rss > cfg.Memory {
			return reasonMemory
		}
	}
	if cfg.CPU > 0 {
		// The child's own RLIMIT_CPU fires first; this catches a child too
		// wedged to act on it.
		if used := cpuTime(c.pid) - c.docCPU; used > cfg.CPU+2*time.Second {
			return reasonCPU
		}
	}
	return reasonNone
}

// exitError classifies a child's end.
func (c *child) exitError(cfg Config) error {
	reaped := c.waitExit(2 * time.Second)
	// The runtime's last words decide some cases: let them arrive (a
	// helper that inherited stderr may hold it open, hence the bound).
	select {
	case <-c.errDone:
	case <-time.After(200 * time.Millisecond):
	}
	limit := func(e LimitError, by string) error {
		e.By = by
		return &e
	}
	memErr := LimitError{Resource: "memory", Limit: FormatBytes(cfg.Memory), Flag: "--parser-memory"}
	cpuErr := LimitError{Resource: "CPU time", Limit: cfg.CPU.String(), Flag: "--parser-cpu"}
	switch c.reason.Load() {
	case reasonMemory:
		return limit(memErr, "resident-size watch")
	case reasonCPU:
		return limit(cpuErr, "CPU time watch")
	case reasonClose:
		return ErrClosed
	}
	if c.cgDir != "" && c.cg.oomKilled(c.cgDir) {
		return limit(memErr, "cgroup memory.max")
	}
	if !reaped {
		return &LostError{Detail: "did not exit after its stream ended" + c.stderr.lastLines(5)}
	}
	st := c.state
	tail := c.stderr.String()
	ws, _ := st.Sys().(syscall.WaitStatus)
	switch {
	case st.Exited() && st.ExitCode() == exitMemory && cfg.Memory > 0:
		return limit(memErr, "child's self-watch")
	case st.Exited() && st.ExitCode() == exitCPU && cfg.CPU > 0:
		return limit(cpuErr, "RLIMIT_CPU")
	case st.Exited() && cfg.Memory > 0 && outOfMemory(tail):
		// The Go runtime's own end when an allocation passes the
		// address-space limit.
		return limit(memErr, "RLIMIT_AS")
	case ws.Signaled() && ws.Signal() == syscall.SIGKILL && cfg.CPU > 0 && st.SystemTime()+st.UserTime()-c.docCPU >= cfg.CPU:
		return limit(cpuErr, "RLIMIT_CPU")
	case ws.Signaled():
		return &LostError{Detail: fmt.Sprintf("killed by signal %d (%v)%s", int(ws.Signal()), ws.Signal(), c.stderr.lastLines(5))}
	}
	return &LostError{Detail: st.String() + c.stderr.lastLines(5)}
}

// outOfMemory tells the Go runtime's messages for a failed allocation.
func outOfMemory(stderr string) bool {
	for _, s := range []string{"out of memory", "cannot allocate memory", "failed to reserve", "ThreadSanitizer: requested allocation"} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// kill ends the child and every process of its group (OCR helpers); the
// first reason given is the one its exit is classified by.
func (c *child) kill(reason int32) {
	c.reason.CompareAndSwap(reasonNone, reason)
	killGroup(c.pid)
	c.closePipes()
}

var pipesMu sync.Mutex

func (c *child) closePipes() {
	pipesMu.Lock()
	defer pipesMu.Unlock()
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
	}
	if c.outF != nil {
		c.outF.Close()
		c.outF = nil
	}
}

// retire lets an idle child end on its own (it exits when its stdin
// closes), killing it if it has not after a grace.
func (c *child) retire() {
	c.reason.CompareAndSwap(reasonNone, reasonRetire)
	pipesMu.Lock()
	if c.stdin != nil {
		c.stdin.Close()
		c.stdin = nil
	}
	pipesMu.Unlock()
	go func() {
		if !c.waitExit(5 * time.Second) {
			killGroup(c.pid)
		}
		c.closePipes()
	}()
}

// waitExit waits up to d for the child to be reaped.
func (c *child) waitExit(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-c.exited:
		return true
	case <-t.C:
		return false
	}
}

// tailBuffer keeps the first headMax and the last max bytes written: the
// Go runtime's reason for dying comes first, its goroutine dump after.
type tailBuffer struct {
	mu      sync.Mutex
	headMax int
	max     int
	head    []byte
	buf     []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if k := min(t.headMax-len(t.head), len(p)); k > 0 {
		t.head = append(t.head, p[:k]...)
	}
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// String is the head and the tail.
func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.head) + "\n" + string(t.buf)
}

// lastLines is for messages: the first line (the Go runtime's reason, if
// it died of one) and the last n-1.
func (t *tailBuffer) lastLines(n int) string {
	t.mu.Lock()
	first, _, _ := strings.Cut(string(t.head), "\n")
	tail := string(t.buf)
	t.mu.Unlock()
	s := strings.TrimSpace(strings.ToValidUTF8(tail, "?"))
	if s == "" {
		return ""
	}
	lines := strings.Split(s, "\n")
	if len(lines) > n-1 {
		lines = lines[len(lines)-(n-1):]
	}
	if first = strings.TrimSpace(strings.ToValidUTF8(first, "?")); first != "" && first != lines[0] {
		lines = append([]string{first, "..."}, lines...)
	}
	return "; stderr: " + strings.Join(lines, " | ")
}
