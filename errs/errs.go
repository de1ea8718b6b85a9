// Package errs names the ways a request to a node can fail, independent of
// how the failure is shown. Node code returns these kinds wrapped with
// context; transport alone turns a kind into an HTTP status (and RAGondin's
// wording), and turns a peer's HTTP status back into the kind, so a failure
// keeps its meaning across a forwarded call.
//
// Guarantee: errors.Is(err, K) holds for every error built with New, Wrap or
// Errorf of kind K, through any number of fmt.Errorf("...: %w") wrappings.
package errs

import (
	"errors"
	"fmt"
)

// Kind is a class of failure. Kinds are compared by identity.
type Kind struct{ name string }

func (k *Kind) Error() string { return k.name }

// The kinds. Each maps to one HTTP status in transport.
var (
	// Invalid: the request can never succeed as sent (400).
	Invalid = &Kind{"invalid request"}
	// NotFound: what the request names does not exist (404).
	NotFound = &Kind{"not found"}
	// Conflict: the request contradicts the current state (409): the file
	// exists, the task is already final, a leave is under way.
	Conflict = &Kind{"conflict"}
	// TooLarge: a size limit was exceeded (413).
	TooLarge = &Kind{"too large"}
	// Unsupported: the file type cannot be indexed here (415).
	Unsupported = &Kind{"unsupported media type"}
	// Unavailable: the cluster cannot answer now, a retry may succeed (503):
	// no leader, the leader's address unknown, the node stopping.
	Unavailable = &Kind{"unavailable"}
	// NoSpace: this node cannot store the data (507).
	NoSpace = &Kind{"insufficient storage"}
	// Forbidden: the caller may not do this, whoever it is (403).
	Forbidden = &Kind{"forbidden"}
	// Busy: the cluster is over an admission cap; retry later (429).
	Busy = &Kind{"too many requests"}
)

// Error is a failure of one kind with its message.
type Error struct {
	Kind *Kind
	Msg  string
	Err  error // the cause, if any
}

func (e *Error) Error() string { return e.Msg }

// Unwrap exposes the cause, so an fsm rejection or an os error inside stays
// matchable too.
func (e *Error) Unwrap() error { return e.Err }

// Is matches the error's kind.
func (e *Error) Is(target error) bool {
	k, ok := target.(*Kind)
	return ok && k == e.Kind
}

// New returns an error of kind k with a fixed message.
func New(k *Kind, msg string) error { return &Error{Kind: k, Msg: msg} }

// Errorf returns an error of kind k with a formatted message. A %w verb
// keeps its operand as the cause.
func Errorf(k *Kind, format string, args ...any) error {
	err := fmt.Errorf(format, args...)
	return &Error{Kind: k, Msg: err.Error(), Err: errors.Unwrap(err)}
}

// Wrap classifies err as kind k, keeping its message and its chain.
func Wrap(k *Kind, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Kind: k, Msg: err.Error(), Err: err}
}

// KindOf returns the kind of err, or nil when it has none.
func KindOf(err error) *Kind {
	for _, k := range All {
		if errors.Is(err, k) {
			return k
		}
	}
	return nil
}

// All lists the kinds, most specific first.
var All = []*Kind{Invalid, NotFound, Conflict, TooLarge, Unsupported, NoSpace, Forbidden, Busy, Unavailable}
