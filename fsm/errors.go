package fsm

import (
	"errors"
	"fmt"
)

// Code classifies why Apply rejected a command. It travels in Result.Code so
// callers branch on it (errors.Is against the sentinels below) instead of
// matching the wording of Result.Err, which is for people and logs.
type Code string

const (
	// CodeStaleAttempt: the report or assignment names an attempt that is no
	// longer the live one (the task was requeued, finished or reassigned).
	CodeStaleAttempt Code = "stale_attempt"
	CodeUnknownTask  Code = "unknown_task"
	CodeUnknownNode  Code = "unknown_node"
	// CodeFileExists: a ModeCreate submission for a file that exists.
	CodeFileExists Code = "file_exists"
	// CodeFileMissing: the command needs a file that does not exist
	// (ModeReplace submission, delete, metadata update).
	CodeFileMissing Code = "file_missing"
	// CodeDuplicate: a submission reuses a task ID the ledger already holds.
	CodeDuplicate Code = "duplicate"
	// CodeConflict: the command is well formed but contradicts the state,
	// e.g. cancelling a task that is already terminal, or chunk holders for
	// a file version that is not live.
	CodeConflict Code = "conflict"
	// CodeInvalid: the command is malformed (missing fields, nested batch,
	// unknown command type, GPU fraction out of range); retrying it as is
	// cannot succeed.
	CodeInvalid Code = "invalid"
	// CodeNoCapacity: an assignment does not fit its node right now (not
	// eligible, at its concurrency limit, no CPU slot, no such GPU, GPU lacks
	// milli-GPUs or memory).
	CodeNoCapacity Code = "no_capacity"
)

// Sentinels for errors.Is against Result.Error(). Each stands for its Code,
// not for a message: a rejection matches the sentinel of its code whatever
// its Err text says. The texts of the first five are also the prefixes of
// the Err they produce ("unknown task: t1"), which older callers match on.
var (
	ErrStaleAttempt error = sentinel(CodeStaleAttempt, "stale attempt")
	ErrUnknownTask  error = sentinel(CodeUnknownTask, "unknown task")
	ErrUnknownNode  error = sentinel(CodeUnknownNode, "unknown node")
	ErrFileExists   error = sentinel(CodeFileExists, "file exists")
	ErrFileMissing  error = sentinel(CodeFileMissing, "file not found")
	ErrDuplicate    error = sentinel(CodeDuplicate, "duplicate task id")
	ErrConflict     error = sentinel(CodeConflict, "conflict")
	ErrInvalid      error = sentinel(CodeInvalid, "invalid command")
	ErrNoCapacity   error = sentinel(CodeNoCapacity, "no capacity")
)

// sentinelError is a sentinel: comparable by identity and tied to one code.
type sentinelError struct {
	code Code
	msg  string
}

func (e *sentinelError) Error() string { return e.msg }

func sentinel(code Code, msg string) error { return &sentinelError{code: code, msg: msg} }

// Rejection is a rejected command as an error. Msg is Result.Err verbatim;
// Code is empty when the result came from a node that predates codes, and
// then the rejection matches no sentinel (its text is all there is).
type Rejection struct {
	Code Code
	Msg  string
}

func (e *Rejection) Error() string { return e.Msg }

// Is makes errors.Is(rej, ErrX) true for the sentinel of rej's code.
func (e *Rejection) Is(target error) bool {
	s, ok := target.(*sentinelError)
	return ok && e.Code != "" && s.code == e.Code
}

// CodeOf returns the code of a rejection (or of a sentinel) anywhere in
// err's chain, or "" when there is none.
func CodeOf(err error) Code {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Code
	}
	var s *sentinelError
	if errors.As(err, &s) {
		return s.code
	}
	return ""
}

// Rejected reports whether this command itself was rejected. A batch that
// was applied has Rejected() false even when some of its inner commands
// were rejected; FirstError looks inside.
func (r Result) Rejected() bool { return r.Err != "" }

// Error turns a rejection into a *Rejection, or nil.
func (r Result) Error() error {
	if r.Err == "" {
		return nil
	}
	return &Rejection{Code: r.Code, Msg: r.Err}
}

// FirstError is the rejection of r itself or else of the first rejected
// inner result, depth first (CmdBatch, CmdSubmitTasks and CmdAssignTasks
// report per-item results in Batch); nil when nothing was rejected.
func (r Result) FirstError() error {
	if r.Err != "" {
		return r.Error()
	}
	for _, b := range r.Batch {
		if err := b.FirstError(); err != nil {
			return err
		}
	}
	return nil
}

// rejectf builds every rejection Apply makes, so each carries both the code
// callers branch on and the human message.
func rejectf(code Code, format string, args ...any) Result {
	return Result{Code: code, Err: fmt.Sprintf(format, args...)}
}

// reject is rejectf for the common "<sentinel text>: <subject>" message.
func reject(err error, what string) Result {
	return rejectf(CodeOf(err), "%s: %s", err, what)
}
