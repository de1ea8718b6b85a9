package fsm

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime/debug"
	"sync"

	"github.com/hashicorp/raft"
)

// FSM adapts State to raft.FSM. Readers use View; Apply holds the write lock
// only for the in-memory change.
type FSM struct {
	mu    sync.RWMutex
	state *State
	// subs are signalled (without blocking) after every apply and restore,
	// so watchers (the worker pool, the scheduler loop) wake up coalesced.
	subsMu sync.Mutex
	subs   []chan struct{}
	// Check, when set, runs CheckInvariants after every apply and panics on a
	// violation: a broken ledger must stop the node, not spread.
	Check bool
}

// NewFSM returns an FSM over an empty state.
func NewFSM() *FSM { return &FSM{state: New()} }

// Subscribe returns a channel that receives a value after applies.
func (f *FSM) Subscribe() <-chan struct{} {
	ch := make(chan struct{}, 1)
	f.subsMu.Lock()
	f.subs = append(f.subs, ch)
	f.subsMu.Unlock()
	return ch
}

// Unsubscribe stops deliveries to ch.
func (f *FSM) Unsubscribe(ch <-chan struct{}) {
	f.subsMu.Lock()
	defer f.subsMu.Unlock()
	for i, c := range f.subs {
		if c == ch {
			f.subs = append(f.subs[:i], f.subs[i+1:]...)
			return
		}
	}
}

func (f *FSM) notify() {
	f.subsMu.Lock()
	for _, ch := range f.subs {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	f.subsMu.Unlock()
}

// AppliedIndex is the last Raft index applied to the state.
func (f *FSM) AppliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.state.Index
}

// WaitApplied blocks until index is applied or ctx ends.
func (f *FSM) WaitApplied(ctx context.Context, index uint64) error {
	if f.AppliedIndex() >= index {
		return nil
	}
	ch := f.Subscribe()
	defer f.Unsubscribe(ch)
	for f.AppliedIndex() < index {
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// View runs fn with the state read-locked. fn must not keep references.
func (f *FSM) View(fn func(s *State)) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	fn(f.state)
}

// Apply implements raft.FSM.
func (f *FSM) Apply(l *raft.Log) interface{} {
	if l.Type != raft.LogCommand {
		return nil
	}
	c, err := Decode(l.Data)
	if err != nil {
		return rejectf(CodeInvalid, "%s", err)
	}
	f.mu.Lock()
	r := f.state.Apply(l.Index, c)
	if f.Check {
		if err := f.state.CheckInvariants(); err != nil {
			f.mu.Unlock()
			panic(fmt.Sprintf("ledger invariant broken at index %d by %s: %v", l.Index, c.Type, err))
		}
	}
	f.mu.Unlock()
	f.notify()
	return r
}

// Snapshot implements raft.FSM. The state is serialised under the read lock
// so Persist can run while Apply continues.
func (f *FSM) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	b, err := f.state.Marshal()
	f.mu.RUnlock()
	if err != nil {
		return nil, err
	}
	return snapshot(b), nil
}

// Restore implements raft.FSM.
func (f *FSM) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("read snapshot: %w", err)
	}
	s, err := Unmarshal(b)
	if err != nil {
		return err
	}
	f.mu.Lock()
	f.state = s
	f.mu.Unlock()
	f.notify()
	return nil
}

type snapshot []byte

func (s snapshot) Persist(sink raft.SnapshotSink) error {
	if _, err := sink.Write(s); err != nil {
		sink.Cancel()
		return fmt.Errorf("write snapshot: %w", err)
	}
	return sink.Close()
}

// Release hands the serialised copy's memory back to the OS at once: a
// ledger of 100k tasks makes a snapshot of about 100 MB, which would
// otherwise stay in the process's resident size until the runtime's
// scavenger gets to it.
func (s snapshot) Release() { debug.FreeOSMemory() }

// Marshal serialises the state.
func (s *State) Marshal() ([]byte, error) {
	cp := *s
	cp.Finished = s.Finished[s.finHead:]
	return json.Marshal(&cp)
}

// Unmarshal restores a state written by Marshal and rebuilds its indexes.
func Unmarshal(b []byte) (*State, error) {
	s := New()
	if err := json.Unmarshal(b, s); err != nil {
		return nil, fmt.Errorf("decode snapshot: %w", err)
	}
	if s.Nodes == nil {
		s.Nodes = map[string]*Node{}
	}
	if s.Tasks == nil {
		s.Tasks = map[string]*Task{}
	}
	if s.Allocs == nil {
		s.Allocs = map[string]Alloc{}
	}
	if s.Files == nil {
		s.Files = map[string]*File{}
	}
	if s.Blobs == nil {
		s.Blobs = map[string]*Blob{}
	}
	s.rebuild()
	return s, nil
}
