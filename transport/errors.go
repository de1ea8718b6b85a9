package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer/store/filter"
)

// kindStatus is the one table from failure kind to HTTP status; both
// directions below read it.
var kindStatus = []struct {
	kind *errs.Kind
	code int
}{
	{errs.Invalid, http.StatusBadRequest},
	{errs.NotFound, http.StatusNotFound},
	{errs.Conflict, http.StatusConflict},
	{errs.TooLarge, http.StatusRequestEntityTooLarge},
	{errs.Unsupported, http.StatusUnsupportedMediaType},
	{errs.NoSpace, http.StatusInsufficientStorage},
	{errs.Forbidden, http.StatusForbidden},
	{errs.Busy, http.StatusTooManyRequests},
	{errs.Unavailable, http.StatusServiceUnavailable},
}

// rejectionKind classifies the ledger's rejections.
var rejectionKind = []struct {
	err  error
	kind *errs.Kind
}{
	{fsm.ErrInvalid, errs.Invalid},
	{fsm.ErrUnknownTask, errs.NotFound},
	{fsm.ErrFileMissing, errs.NotFound},
	{fsm.ErrUnknownNode, errs.NotFound},
	{fsm.ErrFileExists, errs.Conflict},
	{fsm.ErrConflict, errs.Conflict},
	{fsm.ErrStaleAttempt, errs.Conflict},
	{fsm.ErrDuplicate, errs.Conflict},
	{fsm.ErrNoCapacity, errs.Conflict},
}

// kindOf finds the failure kind of err: an errs kind, or the kind of an fsm
// rejection; nil when it has none.
func kindOf(err error) *errs.Kind {
	if k := errs.KindOf(err); k != nil {
		return k
	}
	for _, r := range rejectionKind {
		if errors.Is(err, r.err) {
			return r.kind
		}
	}
	return nil
}

// StatusOf is the one place a failure becomes an HTTP status. Node code
// returns errs kinds and fsm rejections; nothing outside transport picks a
// status code.
func StatusOf(err error) int {
	if err == nil {
		return http.StatusOK
	}
	if errors.Is(err, filter.ErrBudget) {
		// Checked before its kind (Invalid, 400): the filter is well-formed
		// but too costly here, which 422 says and the message quantifies.
		return http.StatusUnprocessableEntity
	}
	if k := kindOf(err); k != nil {
		for _, ks := range kindStatus {
			if ks.kind == k {
				return ks.code
			}
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// kindOfStatus is StatusOf read backwards: a peer's answer becomes the kind
// it was made from, so a forwarded failure keeps its meaning. FastAPI's 422
// is a validation failure too.
func kindOfStatus(code int) *errs.Kind {
	if code == http.StatusUnprocessableEntity {
		return errs.Invalid
	}
	for _, ks := range kindStatus {
		if ks.code == code {
			return ks.kind
		}
	}
	return nil
}

// invalidf is a request transport itself could not decode.
func invalidf(format string, args ...any) error { return errs.Errorf(errs.Invalid, format, args...) }

// StatusError is a non-2xx answer from a node.
type StatusError struct {
	Code int
	Msg  string
	// RetryAfter is the server's Retry-After on a 429 or 503, else 0.
	RetryAfter time.Duration
}

// RetryAfterSeconds is what a node puts in Retry-After when it refuses a
// submission for being over an admission cap.
const RetryAfterSeconds = 2

// setRetryAfter tells a client refused for load when to come back.
func setRetryAfter(w http.ResponseWriter, err error) {
	if errors.Is(err, errs.Busy) {
		w.Header().Set("Retry-After", strconv.Itoa(RetryAfterSeconds))
	}
}

func (e *StatusError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.Msg, e.Code) }

// Is makes errors.Is(err, errs.NotFound) hold for a 404 from a peer.
func (e *StatusError) Is(target error) bool {
	k := kindOfStatus(e.Code)
	return k != nil && target == error(k)
}

// IsStatus reports whether err is an HTTP answer with that code.
func IsStatus(err error, code int) bool {
	var se *StatusError
	return errors.As(err, &se) && se.Code == code
}
