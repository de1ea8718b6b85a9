// Package contain runs the load stage of the indexing pipeline (the
// loaders, OCR and external converters: everything that reads a document's
// own bytes) in a child process of the node, so that no document can hurt
// the node.
//
// The child is this same binary started again: any binary that imports this
// package (the ragnode binary, and every test binary that could start a
// child) becomes a parser child when it finds the child variable in its
// environment at start-up, before its main or its tests run, and never
// returns to them. It reads requests (a file's bytes, its name, the
// converter to use) from stdin and writes the loaded document to stdout, as
// length-prefixed, versioned gob frames.
//
// Guarantee: a document parsed through a Pool can cost the calling process
// no more than the encoded text it returns (at most MaxResponse bytes) and
// the request it sent; the memory, CPU time and wall time of the parse
// itself are the child's, and are bounded:
//   - memory: a cgroup v2 memory.max where a delegated, writable v2 subtree
//     is found (cgroup.go); otherwise an address-space rlimit on the child
//     (with a margin for the Go runtime), a heap limit inside it
//     (debug.SetMemoryLimit), and the parent's watch of its resident size;
//   - CPU time per document: RLIMIT_CPU, raised by the child before each
//     document, and the parent's watch of its CPU time;
//   - time: the caller's context (the task's deadline).
//
// The parent kills the child (its whole process group, so OCR helpers die
// with it) when the context ends or a limit is passed, and Parse returns at
// once: the caller's slot is free, nothing is left running on its behalf.
// A child killed for a limit comes back as a *LimitError naming the limit
// ("parser exceeded 2 GiB of memory"); it is permanent, the same document
// would do the same again. A child that died for another reason (a crash,
// a signal nobody here sent) comes back as a *LostError, not permanent:
// the ledger counts these towards its poison quarantine. Children are kept
// for the next document and retired after Config.MaxDocs documents, so
// whatever a parser library leaks dies with its process.
package contain

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ragnode/ragnode/indexer/convert"
	"github.com/ragnode/ragnode/indexer/loader"
)

// Request is one file for the load stage.
type Request struct {
	FileName string
	Data     []byte
	// GPU is the card the task holds (-1: none), for converters.
	GPU int
	// Converter, when set, converts the file to markdown first.
	Converter *convert.Converter
	// TmpDir is where converters get their working directory.
	TmpDir string
	// Kind, when set, skips detection; a name under "test:" runs a hook
	// registered by a test binary (see testHooks).
	Kind string
}

// DefaultMemory, DefaultCPU and DefaultMaxDocs are the defaults the CLI
// shows for --parser-memory, --parser-cpu and --parser-max-docs.
const (
	DefaultMemory  = 2 << 30
	DefaultCPU     = 10 * time.Minute
	DefaultMaxDocs = 100
)

// MaxResponse bounds one document's encoded text as the parent reads it:
// what the parent's heap may hold for one parse. A text that long makes far
// more chunks than a file may have at the default --max-chunks.
const MaxResponse = 256 << 20

// Config tunes a Pool.
type Config struct {
	// Memory is the child's memory limit in bytes (0: none).
	Memory uint64
	// CPU is the CPU time one document may use (0: none).
	CPU time.Duration
	// MaxDocs retires a child after this many documents (0: never).
	MaxDocs int
	// MaxIdle is how many idle children are kept for reuse (0: 1).
	MaxIdle int
	// Loader is the child's loader configuration (PDF engine, OCR).
	// PDFSlots is forced to 1: a child reads one document at a time.
	Loader loader.Options
	// Command starts a child (nil: this executable, with no arguments).
	Command []string
	// Logger receives the children's lifecycle (nil: none).
	Logger hclog.Logger
	// Cgroup lets the pool hold the memory limit with cgroup v2 where a
	// delegated subtree is found (cgroup_linux.go); that moves this
	// process into a leaf cgroup, which only a process that is one node
	// should do (the CLI sets it; tests leave it off).
	Cgroup bool
	// cgroupRoot overrides the cgroup v2 mount for tests.
	cgroupRoot string
}

// Pool starts, keeps and retires parser children. It is safe for
// concurrent use; each Parse has a child to itself.
type Pool struct {
	cfg  Config
	log  hclog.Logger
	cg   *cgroupV2 // nil: rlimits only
	mu   sync.Mutex
	idle []*child
	live map[*child]struct{}
	// closed refuses new work; live children are killed.
	closed bool
	// started counts children ever started (tests and metrics).
	started int
}

// NewPool prepares a pool; children start on demand.
func NewPool(cfg Config) (*Pool, error) {
	if cfg.MaxIdle <= 0 {
		cfg.MaxIdle = 1
	}
	if cfg.Logger == nil {
		cfg.Logger = hclog.NewNullLogger()
	}
	if len(cfg.Command) == 0 {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("parser child: find this executable: %w", err)
		}
		cfg.Command = []string{exe}
	}
	cfg.Loader.PDFSlots = 1
	p := &Pool{cfg: cfg, log: cfg.Logger, live: map[*child]struct{}{}}
	if cfg.Memory > 0 && cfg.Cgroup {
		cg, err := findCgroupV2(cfg.cgroupRoot)
		switch {
		case err != nil:
			p.log.Debug("parser memory limit by rlimit", "why", err)
		default:
			p.cg = cg
			p.log.Info("parser memory limit by cgroup v2", "dir", cg.base)
		}
	}
	return p, nil
}

// Mechanism names how the memory limit is enforced, for logs and status.
func (p *Pool) Mechanism() string {
	switch {
	case p.cfg.Memory == 0:
		return "none"
	case p.cg != nil:
		return "cgroup v2 memory.max"
	case !raceEnabled && rlimitSupported:
		return "RLIMIT_AS + heap limit + resident-size watch"
	}
	return "heap limit + resident-size watch"
}

// Started returns how many children this pool has started.
func (p *Pool) Started() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// Live returns how many children are running (idle or busy).
func (p *Pool) Live() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.live)
}

// ErrClosed is returned by Parse after Close.
var ErrClosed = errors.New("parser pool closed")

// Parse runs the load stage for one file in a child.
func (p *Pool) Parse(ctx context.Context, req Request) (loader.Document, error) {
	if err := ctx.Err(); err != nil {
		return loader.Document{}, err
	}
	c, err := p.get(ctx)
	if err != nil {
		return loader.Document{}, err
	}
	resp, err := c.do(ctx, req, p.cfg)
	if err != nil {
		p.discard(c)
		return loader.Document{}, err
	}
	p.put(c)
	if resp.Err != "" {
		e := errors.New(resp.Err)
		if resp.Permanent {
			return loader.Document{}, &DocError{Err: e}
		}
		return loader.Document{}, e
	}
	return resp.Doc, nil
}

// Warm starts one child in the background that starts its PDF engine at
// once (Loader.Prestart): with Loader.CompileCacheDir set, it fills the
// compile cache, so that the children after it load the engine in well
// under a second instead of compiling it for seconds each.
func (p *Pool) Warm() {
	go func() {
		cfg := p.cfg
		cfg.Loader.Prestart = true
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return
		}
		p.started++
		p.mu.Unlock()
		c, err := startChild(context.Background(), cfg, p.cg)
		if err != nil {
			p.log.Warn("parser child did not start", "error", err)
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.retire()
			return
		}
		p.live[c] = struct{}{}
		p.mu.Unlock()
		p.put(c)
	}()
}

func (p *Pool) get(ctx context.Context) (*child, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	for len(p.idle) > 0 {
		c := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if c.alive() {
			p.mu.Unlock()
			return c, nil
		}
		delete(p.live, c)
	}
	p.started++
	p.mu.Unlock()
	c, err := startChild(ctx, p.cfg, p.cg)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		c.retire()
		return nil, ErrClosed
	}
	p.live[c] = struct{}{}
	p.mu.Unlock()
	p.log.Debug("parser child started", "pid", c.pid)
	return c, nil
}

// put keeps a child that answered for the next document, or retires it
// after MaxDocs documents or beyond MaxIdle.
func (p *Pool) put(c *child) {
	p.mu.Lock()
	if p.closed || (p.cfg.MaxDocs > 0 && c.docs >= p.cfg.MaxDocs) || len(p.idle) >= p.cfg.MaxIdle {
		delete(p.live, c)
		p.mu.Unlock()
		p.log.Debug("parser child retired", "pid", c.pid, "documents", c.docs)
		c.retire()
		return
	}
	p.idle = append(p.idle, c)
	p.mu.Unlock()
}

func (p *Pool) discard(c *child) {
	c.kill(reasonDiscard)
	p.mu.Lock()
	delete(p.live, c)
	p.mu.Unlock()
}

// Close kills every child, busy or idle; Parse fails with ErrClosed after.
func (p *Pool) Close() error {
	p.mu.Lock()
	p.closed = true
	all := make([]*child, 0, len(p.live))
	for c := range p.live {
		all = append(all, c)
	}
	p.live = map[*child]struct{}{}
	p.idle = nil
	p.mu.Unlock()
	for _, c := range all {
		c.kill(reasonClose)
	}
	for _, c := range all {
		c.waitExit(time.Second)
	}
	return nil
}

// LimitError is a child killed for passing a limit: the document needs more
// than a node allows. It is permanent.
type LimitError struct {
	Resource string // "memory" or "CPU time"
	Limit    string // "2 GiB", "10m0s"
	Flag     string // the setting that holds the limit
	By       string // what caught it, for logs: the watch, an rlimit, the cgroup
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("parser exceeded %s of %s (limit %s)", e.Limit, e.Resource, e.Flag)
}

// LostError is a child that died for a reason of its own (a crash, a signal
// nobody here sent): the document may be to blame, or the machine. Not
// permanent; the ledger counts such ends towards its poison quarantine.
type LostError struct{ Detail string }

func (e *LostError) Error() string { return "parser child died: " + e.Detail }

// DocError is a document the loaders cannot read: permanent.
type DocError struct{ Err error }

func (e *DocError) Error() string { return e.Err.Error() }
func (e *DocError) Unwrap() error { return e.Err }

// IsPermanent reports whether retrying err cannot help: a document the
// loaders refuse, or a limit the document passed.
func IsPermanent(err error) bool {
	var d *DocError
	var l *LimitError
	return errors.As(err, &d) || errors.As(err, &l)
}

// Load runs the load stage in this process: the converter when the request
// names one (its markdown then through the loaders), else detection and the
// loader of the detected kind. Errors the document causes are *DocError; a
// converter's own failure is not (it may be the converter's).
func Load(ctx context.Context, req Request) (loader.Document, error) {
	if h := hookFor(req.Kind); h != nil {
		return h(ctx, req)
	}
	if doc, ok, err := debugDoc(ctx, req.Data); ok {
		return doc, err
	}
	if c := req.Converter; c != nil {
		out, err := c.Run(ctx, req.Data, req.GPU, req.TmpDir)
		if err != nil {
			if ctx.Err() != nil {
				return loader.Document{}, err
			}
			return loader.Document{}, fmt.Errorf("converter %s: %w", c.Ext, err)
		}
		doc, err := loader.Load(ctx, loader.MD, out)
		if err != nil {
			return loader.Document{}, &DocError{fmt.Errorf("converter %s output: %w", c.Ext, err)}
		}
		return doc, nil
	}
	kind := loader.Kind(req.Kind)
	if kind == "" {
		head := req.Data
		if len(head) > 4096 {
			head = head[:4096]
		}
		k, err := loader.Detect(req.FileName, head)
		if err != nil {
			return loader.Document{}, &DocError{err}
		}
		kind = k
	}
	doc, err := loader.Load(ctx, kind, req.Data)
	if err != nil {
		if ctx.Err() != nil {
			return loader.Document{}, err
		}
		return loader.Document{}, &DocError{err}
	}
	return doc, nil
}

// testHooks are loaders that only a test binary registers (before any
// init function runs: package-level variable initialisation), so that a
// test can make a child do what no real document reliably does.
var testHooks map[string]func(ctx context.Context, req Request) (loader.Document, error)

func hookFor(kind string) func(ctx context.Context, req Request) (loader.Document, error) {
	if !strings.HasPrefix(kind, "test:") {
		return nil
	}
	return testHooks[kind]
}

// FormatBytes renders a limit the way operators write it (2 GiB, 512 MiB).
func FormatBytes(b uint64) string {
	switch {
	case b >= 1<<30 && b%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", b>>30)
	case b >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(b)/(1<<30))
	case b >= 1<<20 && b%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", b>>20)
	case b >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
	}
	return fmt.Sprintf("%d bytes", b)
}
