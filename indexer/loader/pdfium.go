package loader

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sync"
	"time"

	"github.com/klippa-app/go-pdfium"
	"github.com/klippa-app/go-pdfium/webassembly"
	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/experimental"
)

// The PDF engine is PDFium compiled to WebAssembly and run by wazero (pure
// Go, no cgo). Compiling the module costs seconds, so it happens once per
// process. Instances (module instantiations) are kept in the pool and
// reused: instantiating one costs far more than reading a short document.
// An instance is discarded instead of reused when its document failed,
// trapped, panicked or timed out (its state is suspect), and after a large
// document (WebAssembly linear memory never shrinks, so a kept instance
// would hold its peak for good); the pool makes a fresh one.

var (
	engineOnce sync.Once
	enginePool pdfium.Pool
	engineErr  error
	engineUp   = make(chan struct{})
)

// ErrEngine marks failures of the PDF engine itself (could not start, the
// instance trapped or panicked) as opposed to problems of the document.
var ErrEngine = errors.New("pdf engine failure")

// engine returns the process pool, starting it on first use. Concurrent
// callers all wait for the one start-up.
func engine() (pdfium.Pool, error) {
	engineOnce.Do(func() {
		defer close(engineUp)
		o := options()
		rc := wazero.NewRuntimeConfig().
			// The bundled build lowers setjmp/longjmp to exception handling.
			WithCoreFeatures(api.CoreFeaturesV2 | experimental.CoreFeaturesExceptionHandling).
			// Lets Kill interrupt a call that runs away (timeouts), at
			// the price of a check at every function entry and loop.
			WithCloseOnContextDone(o.PDFInterrupt != PDFInterruptPage)
		if o.CompileCacheDir != "" {
			// One directory per interrupt mode: wazero's cache key is the
			// module and the CPU, not whether the code was compiled with
			// termination checks, so a shared one would hand either mode
			// the other's code.
			dir := filepath.Join(o.CompileCacheDir, string(o.PDFInterrupt))
			if c, err := wazero.NewCompilationCacheWithDir(dir); err == nil {
				rc = rc.WithCompilationCache(c)
			}
		}
		enginePool, engineErr = webassembly.Init(webassembly.Config{
			MinIdle:  0,
			MaxIdle:  o.PDFSlots,
			MaxTotal: o.PDFSlots,
			// Documents are passed as bytes: the module gets no file system.
			FSConfig:      wazero.NewFSConfig(),
			RuntimeConfig: rc,
			Stdout:        io.Discard,
			Stderr:        io.Discard,
			ReuseWorkers:  true,
		})
		if engineErr != nil {
			engineErr = fmt.Errorf("%w: start: %v", ErrEngine, engineErr)
		}
	})
	<-engineUp
	return enginePool, engineErr
}

// withInstance runs fn on a pool instance. The instance is killed when ctx
// ends first (wazero then aborts the running call); a panic in fn or the
// runtime fails this document only. After fn the instance goes back to the
// pool only if fn succeeded and returned keep.
func withInstance(ctx context.Context, fn func(inst pdfium.Pdfium) (keep bool, err error)) (err error) {
	// Wait for the start-up within the document's budget: a canceled task
	// must not sit out a compilation it no longer needs.
	select {
	case <-engineUp:
	default:
		go func() { _, _ = engine() }()
		select {
		case <-engineUp:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	pool, err := engine()
	if err != nil {
		return err
	}
	inst, err := pool.GetInstanceWithContext(ctx)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: no instance: %v", ErrEngine, err)
	}
	var (
		mu     sync.Mutex
		killed bool
	)
	kill := func() {
		mu.Lock()
		defer mu.Unlock()
		if !killed {
			killed = true
			_ = inst.Kill()
		}
	}
	// Without instruction-level interrupts a Kill cannot stop a running
	// call, and closing the module under it is unsafe: the instance is
	// killed (replaced) once the call returns, below.
	stop := func() bool { return false }
	if options().PDFInterrupt != PDFInterruptPage {
		stop = context.AfterFunc(ctx, kill)
	}
	keep := false
	defer func() {
		stop()
		if r := recover(); r != nil {
			err = fmt.Errorf("%w: %v", ErrEngine, r)
		}
		if err != nil || ctx.Err() != nil || !keep {
			kill()
			if ctx.Err() != nil {
				err = ctx.Err()
			}
			return
		}
		mu.Lock()
		if !killed {
			killed = true
			_ = inst.Close()
		}
		mu.Unlock()
	}()
	keep, err = fn(inst)
	return err
}

// Warmup blocks until the PDF engine is ready (or failed to start) and
// reports how long the wait was. Benchmarks use it to separate start-up
// from steady-state speed.
func Warmup() (time.Duration, error) {
	start := time.Now()
	_, err := engine()
	return time.Since(start), err
}
