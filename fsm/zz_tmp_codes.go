package fsm

import "errors"

// TEMPORARY until the typed-result branch lands.
var (
	ErrInvalid    = errors.New("invalid")
	ErrConflict   = errors.New("conflict")
	ErrDuplicate  = errors.New("duplicate task id")
	ErrNoCapacity = errors.New("no capacity")
)
