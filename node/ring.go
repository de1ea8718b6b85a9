package node

// ring is a bounded, ordered buffer: Add past its capacity drops the oldest
// entry, so memory stays fixed however long the node runs. Not safe for
// concurrent use; its owner locks.
type ring[T any] struct {
	buf  []T
	head int // index of the oldest entry once full
	full bool
}

func newRing[T any](capacity int) *ring[T] { return &ring[T]{buf: make([]T, 0, capacity)} }

func (r *ring[T]) Add(v T) {
	if !r.full {
		r.buf = append(r.buf, v)
		r.full = len(r.buf) == cap(r.buf)
		return
	}
	r.buf[r.head] = v
	r.head = (r.head + 1) % len(r.buf)
}

// Len is the number of entries held.
func (r *ring[T]) Len() int { return len(r.buf) }

// List copies the entries, oldest first.
func (r *ring[T]) List() []T {
	out := make([]T, 0, len(r.buf))
	out = append(out, r.buf[r.head:]...)
	return append(out, r.buf[:r.head]...)
}
