package fsm

import (
	"fmt"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// The event history is part of the replicated state, so every node shows
// the same events and they survive restarts (snapshots carry them).
//
// Two sources, both deterministic:
//   - events the FSM derives from the commands it applies: node registering,
//     changing status, leaving, drains, requeues, task failures and
//     operator cancellations. They cost no extra Raft entry, and only
//     commands that change those things produce one: ordinary task
//     transitions (assign, progress, completion) never do.
//   - CmdEvents, proposed by the leader for what the ledger does not see:
//     leader changes, Serf members joining, failing and leaving, repair
//     passes. The leader batches them into one entry.
//
// Guarantees: sequence numbers increase by one per event and are never
// reused (EventSeq survives the events it numbered); the history holds at
// most EventRetainCount events and none older than EventRetainMaxAge
// (measured on the proposer's clock of the applying command, like task
// retention); an event's message is at most eventMsgMax bytes. Snapshots
// written before the history existed decode with an empty one.

const (
	// EventRetainCount bounds the history by count.
	EventRetainCount = 2000
	// EventRetainMaxAge bounds the history by age.
	EventRetainMaxAge = int64(7 * 24 * time.Hour)
	// EventsPerCommand bounds one CmdEvents (the leader's batches are far
	// smaller), so no single entry can flush the whole history.
	EventsPerCommand = 256
	eventMsgMax      = 512
)

// CmdEvents appends leader-recorded events (Command.Events) to the history.
const CmdEvents CmdType = "events"

// Event is one entry of the replicated cluster history.
type Event struct {
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"time"` // unix ns, the proposer's clock
	Kind   string `json:"kind"`
	NodeID string `json:"node_id,omitempty"`
	TaskID string `json:"task_id,omitempty"`
	Msg    string `json:"msg"`
}

// Event kinds.
const (
	EvLeader         = "leader"
	EvMemberJoin     = "member_join"
	EvMemberFailed   = "member_failed"
	EvMemberLeave    = "member_leave"
	EvMemberReap     = "member_reap"
	EvRepair         = "repair"
	EvNodeRegistered = "node_registered"
	EvNodeStatus     = "node_status" // followed by the new status in Msg
	EvNodeRemoved    = "node_removed"
	EvDrain          = "drain"
	EvUndrain        = "undrain"
	EvRequeue        = "requeue"
	EvRelease        = "release"
	EvTaskFailed     = "task_failed"
	EvTaskCancelled  = "task_cancelled"
	// EvTaskPoison: a task failed by the poison quarantine (it lost more
	// nodes or runners than --max-node-losses allows).
	EvTaskPoison = "task_poison"
	// EvEventsDropped: a leader queued more than it could record.
	EvEventsDropped = "events_dropped"
)

// EventsSince returns copies of the held events newer than seq, oldest
// first, at most limit of them (0: all held).
func (s *State) EventsSince(seq uint64, limit int) []Event {
	i := len(s.Events)
	for i > 0 && s.Events[i-1].Seq > seq {
		i--
	}
	out := s.Events[i:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return append([]Event(nil), out...)
}

// eventPre is what the event derivation needs from before a command.
type eventPre struct {
	seen     bool
	status   string
	draining bool
	name     string
	attempt  int
}

// applyNoting applies one command and records the events it implies.
func (s *State) applyNoting(c Command) Result {
	var pre eventPre
	switch c.Type {
	case CmdRegisterNode:
		if c.Node != nil {
			if n := s.Nodes[c.Node.ID]; n != nil {
				pre = eventPre{seen: true, status: n.Status}
			}
		}
	case CmdNodeStatus, CmdSetDrain, CmdRemoveNode, CmdReleaseNode:
		if n := s.Nodes[c.NodeID]; n != nil {
			pre = eventPre{seen: true, status: n.Status, draining: n.Draining, name: n.Name}
		}
	}
	r := s.apply(c)
	if !r.Rejected() {
		s.deriveEvents(c, pre, r)
	}
	s.compactEvents(c.Now)
	return r
}

func (s *State) deriveEvents(c Command, pre eventPre, r Result) {
	switch c.Type {
	case CmdRegisterNode:
		n := s.Nodes[c.Node.ID]
		switch {
		case !pre.seen:
			s.addEvent(c.Now, EvNodeRegistered, n.ID, "", "%s registered (%d GPUs, %d CPU slots)", n.Name, len(n.GPUs), n.CPUSlots)
		case pre.status != NodeAlive:
			s.addEvent(c.Now, EvNodeStatus, n.ID, "", "%s is alive in the ledger (was %s)", n.Name, pre.status)
		}
	case CmdNodeStatus:
		if n := s.Nodes[c.NodeID]; pre.seen && pre.status != n.Status {
			s.addEvent(c.Now, EvNodeStatus, n.ID, "", "%s is %s in the ledger (was %s)", n.Name, n.Status, pre.status)
		}
	case CmdRemoveNode:
		s.addEvent(c.Now, EvNodeRemoved, c.NodeID, "", "%s removed from the ledger", pre.name)
	case CmdSetDrain:
		n := s.Nodes[c.NodeID]
		switch {
		case n.Draining && !pre.draining:
			s.addEvent(c.Now, EvDrain, n.ID, "", "%s draining (%s)", n.Name, n.DrainReason)
		case !n.Draining && pre.draining:
			s.addEvent(c.Now, EvUndrain, n.ID, "", "%s no longer draining", n.Name)
		}
	case CmdReleaseNode:
		if r.Applied > 0 {
			s.addEvent(c.Now, EvRelease, c.NodeID, "", "%d tasks of %s requeued: %s", r.Applied, pre.name, s.releaseReason(c, pre))
		}
	case CmdRequeueTasks:
		// One event per command, not per task: a drain deadline or a lost
		// node requeues hundreds at once and would flush the history.
		if r.Applied == 1 {
			for _, ref := range c.Refs {
				if t := s.Tasks[ref.ID]; t != nil && t.Attempt == ref.Attempt+1 {
					s.addEvent(c.Now, EvRequeue, t.LastNode, t.ID, "%s requeued (attempt %d): %s", t.FileID, t.Attempt, t.Error)
					break
				}
			}
		} else if r.Applied > 1 {
			s.addEvent(c.Now, EvRequeue, "", "", "%d tasks requeued: %s", r.Applied, c.Error)
		}
	case CmdFailTask:
		t := s.Tasks[c.TaskID]
		if t == nil {
			return
		}
		if t.State == Failed && c.NodeLoss {
			return // recorded as EvTaskPoison by the quarantine
		}
		if t.State == Failed {
			s.addEvent(c.Now, EvTaskFailed, t.LastNode, t.ID, "%s failed (attempt %d): %s", t.FileID, t.Attempt, t.Error)
		} else {
			s.addEvent(c.Now, EvRequeue, t.LastNode, t.ID, "%s requeued after a failure (attempt %d): %s", t.FileID, t.Attempt, t.Error)
		}
	case CmdCancelTask:
		if t := s.Tasks[c.TaskID]; t != nil {
			s.addEvent(c.Now, EvTaskCancelled, t.LastNode, t.ID, "%s cancelled", t.FileID)
		}
	}
}

func (s *State) releaseReason(c Command, pre eventPre) string {
	if c.Error != "" {
		return c.Error
	}
	return "node " + pre.name + " released its work"
}

// applyEvents appends leader-recorded events. Seq is assigned here; a
// missing time is the command's.
func (s *State) applyEvents(c Command) Result {
	if len(c.Events) == 0 || len(c.Events) > EventsPerCommand {
		return rejectf(CodeInvalid, "events command with %d events (1 to %d)", len(c.Events), EventsPerCommand)
	}
	for _, e := range c.Events {
		if e.Kind == "" {
			return rejectf(CodeInvalid, "event without kind")
		}
	}
	for _, e := range c.Events {
		if e.Time == 0 {
			e.Time = c.Now
		}
		s.appendEvent(e)
	}
	return Result{Applied: len(c.Events)}
}

func (s *State) addEvent(now int64, kind, nodeID, taskID, format string, args ...any) {
	s.appendEvent(Event{Time: now, Kind: kind, NodeID: nodeID, TaskID: taskID, Msg: fmt.Sprintf(format, args...)})
}

func (s *State) appendEvent(e Event) {
	s.EventSeq++
	e.Seq = s.EventSeq
	e.Msg = printable(e.Msg, eventMsgMax)
	s.Events = append(s.Events, e)
}

// printable makes an event message one line of printable text of at most
// max bytes, cut on a character boundary. Messages carry file IDs, task
// errors and internal keys (partition and file joined by a NUL, FileKey):
// a raw control byte makes `ragnode events | grep` call the output binary
// and can move a terminal's cursor. NUL, the key separator, reads as "/";
// line breaks and tabs as a space; other control characters and invalid
// UTF-8 as a \x escape. Pure, so every node records the same text.
func printable(msg string, limit int) string {
	clean := true
	for i := 0; i < len(msg); i++ {
		if c := msg[i]; c < 0x20 || c == 0x7f || c >= utf8.RuneSelf {
			clean = false
			break
		}
	}
	if clean && len(msg) <= limit {
		return msg
	}
	var b strings.Builder
	for i := 0; i < len(msg); {
		r, size := utf8.DecodeRuneInString(msg[i:])
		var part string
		switch {
		case r == 0:
			part = "/"
		case r == '\n' || r == '\r' || r == '\t':
			part = " "
		case r == utf8.RuneError && size == 1:
			part = fmt.Sprintf("\\x%02x", msg[i])
		case !unicode.IsPrint(r) && r != ' ':
			if r < 0x100 {
				part = fmt.Sprintf("\\x%02x", r)
			} else {
				part = fmt.Sprintf("\\u%04x", r)
			}
		default:
			part = msg[i : i+size]
		}
		if b.Len()+len(part) > limit {
			break
		}
		b.WriteString(part)
		i += size
	}
	return b.String()
}

// compactEvents drops events beyond the count or older than the age bound.
// Re-slicing from the front keeps this O(dropped); append reallocates the
// backing array as it fills, which frees the dropped prefix.
func (s *State) compactEvents(now int64) {
	k := 0
	if over := len(s.Events) - EventRetainCount; over > 0 {
		k = over
	}
	for now > 0 && k < len(s.Events) && now-s.Events[k].Time > EventRetainMaxAge {
		k++
	}
	if k > 0 {
		s.Events = s.Events[k:]
	}
}

// checkEvents is the history's part of CheckInvariants.
func (s *State) checkEvents() error {
	if len(s.Events) > EventRetainCount {
		return fmt.Errorf("event history holds %d events, bound %d", len(s.Events), EventRetainCount)
	}
	for i, e := range s.Events {
		if i > 0 && e.Seq <= s.Events[i-1].Seq {
			return fmt.Errorf("event %d has seq %d after %d", i, e.Seq, s.Events[i-1].Seq)
		}
		if e.Seq > s.EventSeq {
			return fmt.Errorf("event seq %d beyond the counter %d", e.Seq, s.EventSeq)
		}
		if e.Kind == "" {
			return fmt.Errorf("event %d has no kind", e.Seq)
		}
	}
	return nil
}
