package fsm

import (
	"fmt"
	"sort"
)

// Completion callbacks (openrag's callback_url): the ledger records, per
// task, where to POST when the task reaches its final state and how far
// delivery got, so a new leader knows what its predecessor did.
//
// Delivery is at most once per task: the leader commits a claim
// (CallbackClaimed, naming itself) before it sends anything, and only the
// claimer may record delivery. A claim left behind by a leader that lost
// its term is closed as failed by the next leader, never sent again: the
// old leader may have sent it already, and a second POST would break the
// promise. A task reaches one final state once (a re-upload is a new
// task), so once per task is once per final state.

// Callback is a task's completion callback and its delivery record.
type Callback struct {
	URL string `json:"url"`
	// Token is sent as "Authorization: Bearer <token>". It is kept in the
	// ledger (and its snapshots), like the task's metadata.
	Token string `json:"token,omitempty"`
	// State is "" until claimed, then CallbackClaimed, then
	// CallbackDelivered or CallbackFailed.
	State   string `json:"state,omitempty"`
	Claimer string `json:"claimer,omitempty"`
	Claimed int64  `json:"claimed,omitempty"`
	Done    int64  `json:"done,omitempty"`
	// Attempts is how many POSTs the claimer made (on the outcome).
	Attempts int    `json:"attempts,omitempty"`
	Error    string `json:"error,omitempty"`
}

// Callback delivery states.
const (
	CallbackClaimed   = "claimed"
	CallbackDelivered = "delivered"
	CallbackFailed    = "failed"
)

// CmdCallback moves a task's callback along: Status is the new state,
// NodeID the leader making the change, Chunks the POSTs made (on an
// outcome), Error the reason of a failure.
const CmdCallback CmdType = "callback"

// Pending reports whether the callback is due and nobody claimed it.
func (cb *Callback) Pending(t *Task) bool {
	return cb != nil && cb.State == "" && t.State.Terminal()
}

func (s *State) applyCallback(c Command) Result {
	t := s.Tasks[c.TaskID]
	if t == nil {
		return reject(ErrUnknownTask, c.TaskID)
	}
	if t.Callback == nil {
		return rejectf(CodeInvalid, "task %s has no callback", t.ID)
	}
	// Copy on write: views and snapshots may hold the old record.
	cb := *t.Callback
	switch c.Status {
	case CallbackClaimed:
		if !t.State.Terminal() {
			return rejectf(CodeConflict, "%s: task %s is %s, its callback is not due", ErrConflict, t.ID, t.State)
		}
		if cb.State != "" {
			return rejectf(CodeConflict, "%s: callback of task %s is already %s by %s", ErrConflict, t.ID, cb.State, cb.Claimer)
		}
		if c.NodeID == "" {
			return rejectf(CodeInvalid, "callback claim without a node")
		}
		cb.State, cb.Claimer, cb.Claimed = CallbackClaimed, c.NodeID, c.Now
	case CallbackDelivered, CallbackFailed:
		if cb.State != CallbackClaimed {
			return rejectf(CodeConflict, "%s: callback of task %s is %q, not claimed", ErrConflict, t.ID, cb.State)
		}
		// Only the claimer knows it delivered; anyone (the next leader)
		// may close a claim as failed.
		if c.Status == CallbackDelivered && c.NodeID != cb.Claimer {
			return rejectf(CodeConflict, "%s: callback of task %s was claimed by %s, not %s", ErrConflict, t.ID, cb.Claimer, c.NodeID)
		}
		cb.State, cb.Done, cb.Attempts, cb.Error = c.Status, c.Now, c.Chunks, c.Error
	default:
		return rejectf(CodeInvalid, "callback state %q", c.Status)
	}
	t.Callback = &cb
	s.noteCallback(t)
	return Result{Applied: 1}
}

// noteCallback keeps t's entry in the unclaimed index in step with its
// callback record.
func (s *State) noteCallback(t *Task) {
	if t.Callback != nil && t.Callback.State == "" {
		s.unclaimed[t.ID] = struct{}{}
	} else {
		delete(s.unclaimed, t.ID)
	}
}

// CallbacksDue lists the tasks whose callback is due and unclaimed
// (Pending), by task ID: the callback loop's work, found without a walk of
// every task.
func (s *State) CallbacksDue() []*Task {
	var out []*Task
	for id := range s.unclaimed {
		if t := s.Tasks[id]; t.Callback.Pending(t) {
			out = append(out, t)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// checkCallbacks holds the unclaimed index to a recount.
func (s *State) checkCallbacks() error {
	k := 0
	for id, t := range s.Tasks {
		if t.Callback != nil && t.Callback.State == "" {
			k++
			if _, ok := s.unclaimed[id]; !ok {
				return fmt.Errorf("task %s has an unclaimed callback missing from the index", id)
			}
		}
	}
	if len(s.unclaimed) != k {
		return fmt.Errorf("unclaimed-callback index holds %d, recount %d", len(s.unclaimed), k)
	}
	return nil
}
