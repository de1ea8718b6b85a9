package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/ragnode/ragnode/fsm"
)

// Job is one attempt of one task, as a runner sees it.
type Job struct {
	Task fsm.Task
	// GPU is the card the ledger allocated (-1 = CPU slot); runners pass it to
	// GPU tools as CUDA_VISIBLE_DEVICES.
	GPU int
	// Open returns the file's bytes, from the local blob store, a holder node,
	// or the shared path.
	Open func(ctx context.Context) ([]byte, error)
	// Progress reports a pipeline stage to the ledger.
	Progress func(stage string)
	Logger   hclog.Logger
}

// Outcome is what a finished job reports.
type Outcome struct {
	Chunks int
	// ChunkHolders are the nodes whose local stores hold the chunks.
	ChunkHolders []string
}

// Runner executes jobs. One instance serves one worker slot at a time and is
// closed and rebuilt after --max-tasks-per-worker jobs.
type Runner interface {
	Run(ctx context.Context, job Job) (Outcome, error)
	Close() error
}

// RunnerFactory builds a runner instance.
type RunnerFactory func() (Runner, error)

type permanentError struct{ err error }

func (e permanentError) Error() string { return e.err.Error() }
func (e permanentError) Unwrap() error { return e.err }

// Permanent marks an error that retrying cannot fix (a corrupt file): the task
// fails at once instead of using up its attempts.
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanentError{err}
}

// IsPermanent reports whether err was marked Permanent.
func IsPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

type lostError struct{ err error }

func (e lostError) Error() string { return e.err.Error() }
func (e lostError) Unwrap() error { return e.err }

// RunnerLost marks a run whose runner was killed under it by something
// other than this node's cancel or limits (a parser child's crash, a
// signal): like a node lost while running the task, it counts towards the
// task's poison quarantine (--max-node-losses) rather than its attempts.
func RunnerLost(err error) error {
	if err == nil {
		return nil
	}
	return lostError{err}
}

// IsRunnerLost reports whether err was marked RunnerLost.
func IsRunnerLost(err error) bool {
	var l lostError
	return errors.As(err, &l)
}

// ChecksumRunner reads the whole file and verifies its SHA-256 against the
// ledger, so a fetch failure or a damaged copy fails the task.
type ChecksumRunner struct{}

// Run implements Runner.
func (ChecksumRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	job.Progress(fsm.StageLoading)
	b, err := job.Open(ctx)
	if err != nil {
		return Outcome{}, err
	}
	if job.Task.File.Hash != "" {
		sum := sha256.Sum256(b)
		if got := hex.EncodeToString(sum[:]); got != job.Task.File.Hash {
			return Outcome{}, fmt.Errorf("file checksum %s does not match ledger %s", got[:12], job.Task.File.Hash[:12])
		}
	}
	return Outcome{}, nil
}

// Close implements Runner.
func (ChecksumRunner) Close() error { return nil }

// SleepRunner takes a fixed time per task: a benchmarking aid that isolates
// ragnode's scheduling overhead from the work itself.
type SleepRunner struct{ D time.Duration }

// Run implements Runner.
func (r SleepRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	t := time.NewTimer(r.D)
	defer t.Stop()
	select {
	case <-t.C:
		return Outcome{Chunks: 1}, nil
	case <-ctx.Done():
		return Outcome{}, ctx.Err()
	}
}

// Close implements Runner.
func (SleepRunner) Close() error { return nil }

// ParseRunner understands "sleep:50ms" and "checksum"; "" and "index" return
// nil so the caller picks the indexing pipeline.
func ParseRunner(spec string) (RunnerFactory, error) {
	switch {
	case spec == "" || spec == "index":
		return nil, nil
	case spec == "checksum":
		return func() (Runner, error) { return ChecksumRunner{}, nil }, nil
	case strings.HasPrefix(spec, "sleep:"):
		d, err := time.ParseDuration(strings.TrimPrefix(spec, "sleep:"))
		if err != nil || d < 0 {
			return nil, fmt.Errorf("--runner %q: want sleep:DURATION, e.g. sleep:50ms", spec)
		}
		return func() (Runner, error) { return SleepRunner{D: d}, nil }, nil
	}
	return nil, fmt.Errorf("--runner %q: want index, checksum or sleep:DURATION", spec)
}
