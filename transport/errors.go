package transport

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/node/errs"
)

// StatusOf is the one place a failure becomes an HTTP status. Node code
// returns errs kinds and fsm rejections; nothing outside transport picks a
// status code.
func StatusOf(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, errs.Invalid), errors.Is(err, fsm.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(err, errs.NotFound), errors.Is(err, fsm.ErrUnknownTask),
		errors.Is(err, fsm.ErrFileMissing), errors.Is(err, fsm.ErrUnknownNode):
		return http.StatusNotFound
	case errors.Is(err, errs.Conflict), errors.Is(err, fsm.ErrFileExists), errors.Is(err, fsm.ErrConflict),
		errors.Is(err, fsm.ErrStaleAttempt), errors.Is(err, fsm.ErrDuplicate), errors.Is(err, fsm.ErrNoCapacity):
		return http.StatusConflict
	case errors.Is(err, errs.TooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, errs.Unsupported):
		return http.StatusUnsupportedMediaType
	case errors.Is(err, errs.NoSpace):
		return http.StatusInsufficientStorage
	case errors.Is(err, errs.Forbidden):
		return http.StatusForbidden
	case errors.Is(err, errs.Busy):
		return http.StatusTooManyRequests
	case errors.Is(err, errs.Unavailable):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	}
	return http.StatusInternalServerError
}

// kindOfStatus is StatusOf read backwards: a peer's answer becomes the kind
// it was made from, so a forwarded failure keeps its meaning.
func kindOfStatus(code int) *errs.Kind {
	switch code {
	case http.StatusBadRequest, http.StatusUnprocessableEntity:
		return errs.Invalid
	case http.StatusNotFound:
		return errs.NotFound
	case http.StatusConflict:
		return errs.Conflict
	case http.StatusRequestEntityTooLarge:
		return errs.TooLarge
	case http.StatusUnsupportedMediaType:
		return errs.Unsupported
	case http.StatusInsufficientStorage:
		return errs.NoSpace
	case http.StatusForbidden:
		return errs.Forbidden
	case http.StatusTooManyRequests:
		return errs.Busy
	case http.StatusServiceUnavailable:
		return errs.Unavailable
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
