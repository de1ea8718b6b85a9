package node

import (
	"sync"

	"github.com/hashicorp/raft"
)

// closableStable is Raft's stable store (term and vote) with a close that
// waits for writes in flight and drops the ones that come after it.
//
// Why: hashicorp/raft's heartbeat fast path runs on a transport goroutine
// and checks for shutdown only on entry, so it can still be in
// appendEntries after Shutdown has returned and the node has closed its
// stores; a term write then fails, and raft panics on any stable-store
// error, taking the whole process down. Once the node has stopped Raft, a
// dropped term update is harmless: nothing acts on it, and a restart reads
// the term and vote that were persisted before the stop.
type closableStable struct {
	raft.StableStore
	mu     sync.RWMutex
	closed bool
}

func (s *closableStable) Set(k, v []byte) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.StableStore.Set(k, v)
}

func (s *closableStable) SetUint64(k []byte, v uint64) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil
	}
	return s.StableStore.SetUint64(k, v)
}

// closeWrites waits for writes in flight and drops every later one; call it
// after Raft's shutdown, before closing the underlying store.
func (s *closableStable) closeWrites() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}
