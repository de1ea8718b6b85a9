// Package harness runs real ragnode processes for scenario tests and
// benchmarks: it builds the binary once, starts nodes each with its own data
// dir and address, and can kill, stop, restart, pause and resume them.
//
// Guarantee: every process a Cluster starts is killed when the test ends, and
// every address it uses is on this machine (127.0.0.0/8 or a network
// namespace the harness created).
package harness

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ragnode/ragnode/transport"
)

var (
	buildOnce sync.Once
	buildBin  string
	buildErr  error
)

// Binary builds ragnode once per test process and returns its path. Set
// RAGNODE_BIN to use a prebuilt binary.
func Binary(tb testing.TB) string {
	tb.Helper()
	if p := os.Getenv("RAGNODE_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "ragnode-bin-")
		if err != nil {
			buildErr = err
			return
		}
		buildBin = filepath.Join(dir, "ragnode")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		cmd := exec.Command("go", "build", "-o", buildBin, ".")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_CFLAGS=-Wno-deprecated-declarations")
		out, err := cmd.CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		tb.Fatal(buildErr)
	}
	return buildBin
}

// Proc is one ragnode process.
type Proc struct {
	Name     string
	IP       string
	HTTPPort int
	RaftPort int
	SerfPort int
	DataDir  string
	Args     []string // extra start arguments
	// Wrap prefixes the command (e.g. ip netns exec NAME).
	Wrap []string

	c      *Cluster
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
	logF   *os.File
}

// Cluster is a set of processes sharing a binary, token and base args.
type Cluster struct {
	TB    testing.TB
	Bin   string
	Dir   string
	Token string
	// Args are passed to every node's start command.
	Args []string

	mu    sync.Mutex
	procs []*Proc
}

// New returns an empty cluster whose processes die with the test.
func New(tb testing.TB, args ...string) *Cluster {
	c := &Cluster{TB: tb, Bin: Binary(tb), Dir: tb.TempDir(), Args: args}
	tb.Cleanup(func() {
		for _, p := range c.Procs() {
			p.Kill()
		}
	})
	return c
}

// Procs returns the processes started so far.
func (c *Cluster) Procs() []*Proc {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*Proc(nil), c.procs...)
}

// Add declares a node (not started) on ip with the default ports.
func (c *Cluster) Add(name, ip string, args ...string) *Proc {
	p := &Proc{Name: name, IP: ip, HTTPPort: 7070, RaftPort: 7071, SerfPort: 7072,
		DataDir: filepath.Join(c.Dir, name), Args: args, c: c}
	c.mu.Lock()
	c.procs = append(c.procs, p)
	c.mu.Unlock()
	return p
}

// HTTPAddr is the node's API address.
func (p *Proc) HTTPAddr() string { return p.IP + ":" + strconv.Itoa(p.HTTPPort) }

// SerfAddr is what --join takes.
func (p *Proc) SerfAddr() string { return p.IP + ":" + strconv.Itoa(p.SerfPort) }

// Client returns an API client for the node.
func (p *Proc) Client() *transport.Client { return transport.NewClient(p.HTTPAddr(), p.c.Token) }

// LogPath is where the node's stderr goes.
func (p *Proc) LogPath() string { return filepath.Join(p.c.Dir, p.Name+".log") }

// Start launches the process with its flags plus join addresses.
func (p *Proc) Start(join ...string) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s already running", p.Name)
	}
	args := []string{"start", "--data-dir", p.DataDir, "--name", p.Name, "--bind", p.IP,
		"--http-port", strconv.Itoa(p.HTTPPort), "--raft-port", strconv.Itoa(p.RaftPort), "--serf-port", strconv.Itoa(p.SerfPort)}
	if p.c.Token != "" {
		args = append(args, "--token", p.c.Token)
	}
	// Namespaced nodes bind 10.x addresses, which need a cluster credential.
	args = append(args, "--join-secret", "scenario-cluster-join-secret")
	for _, j := range join {
		args = append(args, "--join", j)
	}
	args = append(args, p.c.Args...)
	args = append(args, p.Args...)
	argv := append(append([]string(nil), p.Wrap...), p.c.Bin)
	argv = append(argv, args...)
	f, err := os.OpenFile(p.LogPath(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "\n==== start %s: %v\n", time.Now().Format(time.RFC3339Nano), argv)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "RAGNODE_ENV_FILE=/nonexistent")
	// Pdeathsig: a test binary killed hard takes its nodes with it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	p.cmd, p.logF = cmd, f
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}, f *os.File) {
		_ = cmd.Wait()
		f.Close()
		close(ch)
	}(cmd, p.exited, f)
	return nil
}

// Running reports whether the process is alive.
func (p *Proc) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

func (p *Proc) signal(sig syscall.Signal) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil || p.cmd.Process == nil {
		return fmt.Errorf("%s is not running", p.Name)
	}
	return p.cmd.Process.Signal(sig)
}

func (p *Proc) wait(d time.Duration) error {
	p.mu.Lock()
	ch := p.exited
	p.mu.Unlock()
	if ch == nil {
		return nil
	}
	select {
	case <-ch:
		p.mu.Lock()
		p.cmd = nil
		p.mu.Unlock()
		return nil
	case <-time.After(d):
		return fmt.Errorf("%s did not exit within %s", p.Name, d)
	}
}

// Kill sends SIGKILL (a crash) and waits for the process to go.
func (p *Proc) Kill() {
	p.mu.Lock()
	if p.cmd != nil && p.cmd.Process != nil {
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGCONT)
	}
	p.mu.Unlock()
	_ = p.wait(10 * time.Second)
}

// Stop sends SIGTERM (a restart-style shutdown) and waits up to d.
func (p *Proc) Stop(d time.Duration) error {
	if err := p.signal(syscall.SIGTERM); err != nil {
		return err
	}
	if err := p.wait(d); err != nil {
		p.Kill()
		return err
	}
	return nil
}

// Pause freezes the process (SIGSTOP); Resume thaws it.
func (p *Proc) Pause() error  { return p.signal(syscall.SIGSTOP) }
func (p *Proc) Resume() error { return p.signal(syscall.SIGCONT) }

// WaitReady polls the node's status until it answers with a leader.
func (p *Proc) WaitReady(ctx context.Context) error {
	c := p.Client()
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := c.Status(cctx)
		cancel()
		if err == nil && st.LeaderID != "" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %v (log %s)", p.Name, err, p.LogPath())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TailLog returns the last n bytes of the node's log, for failure reports.
func (p *Proc) TailLog(n int64) string {
	f, err := os.Open(p.LogPath())
	if err != nil {
		return ""
	}
	defer f.Close()
	st, _ := f.Stat()
	if st.Size() > n {
		_, _ = f.Seek(st.Size()-n, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	return string(b)
}

// WaitHealthy waits until the cluster reports healthy with the given voters.
func WaitHealthy(ctx context.Context, p *Proc, voters int) error {
	c := p.Client()
	var last transport.Status
	var lastErr error
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		st, err := c.Status(cctx)
		cancel()
		if err == nil {
			last = st
			if st.Healthy && st.CaughtUp && st.Voters == voters {
				return nil
			}
		}
		lastErr = err
		select {
		case <-ctx.Done():
			return fmt.Errorf("cluster not healthy via %s: last %+v err %v", p.Name, last, lastErr)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Wait waits up to d for the process to exit by itself.
func (p *Proc) Wait(d time.Duration) error { return p.wait(d) }

// PeerClient returns a client with the node credential, for the checks
// that read a node's own store through a peer route. The node writes the
// credential to DATA_DIR/node-credential once its ledger has it.
func (p *Proc) PeerClient() *transport.Client {
	b, _ := os.ReadFile(filepath.Join(p.DataDir, "node-credential"))
	secret := strings.TrimSpace(string(b))
	return transport.NewPeerClient(p.HTTPAddr(), func() string { return secret })
}
