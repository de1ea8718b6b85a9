package node

import (
	"context"
	"fmt"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/fsm"
)

// The leader's part of the replicated event history (fsm/events.go): what
// the ledger cannot derive from its own commands. The leader records its
// own election (once per term) and the Serf member events and repair
// tallies the observer queued, as one CmdEvents entry per flush, so events
// never add a Raft write per task transition. A follower drops what it
// queued: the leader sees the same Serf events and records them once.
// Events are best effort (a leader that loses office between queueing and
// committing loses them; the next leader records its own election).

const (
	// pendingCap bounds the events queued between two flushes.
	pendingCap = fsm.EventsPerCommand
	// eventFlushEvery is how often the queue is flushed: a member event
	// reaches the history within about this long.
	eventFlushEvery = 500 * time.Millisecond
)

// eventLoop flushes the observer's queued events while this node leads.
func (n *Node) eventLoop() {
	defer n.wg.Done()
	t := time.NewTicker(eventFlushEvery)
	defer t.Stop()
	var recordedTerm uint64
	for {
		select {
		case <-n.stopCh:
			return
		case <-t.C:
		}
		evs, dropped := n.obs.takeEvents()
		if n.raft.State() != raft.Leader {
			continue
		}
		now := time.Now().UnixNano()
		if term := n.raft.CurrentTerm(); term != recordedTerm {
			lead := fsm.Event{Time: now, Kind: fsm.EvLeader, NodeID: n.id, Msg: fmt.Sprintf("%s is leader (term %d)", n.name, term)}
			evs = append([]fsm.Event{lead}, evs...)
			if n.proposeEvents(evs, dropped, now) {
				recordedTerm = term
			}
			continue
		}
		n.proposeEvents(evs, dropped, now)
	}
}

// proposeEvents commits one batch of events; false if it did not commit.
func (n *Node) proposeEvents(evs []fsm.Event, dropped int, now int64) bool {
	if dropped > 0 {
		evs = append(evs, fsm.Event{Time: now, Kind: fsm.EvEventsDropped, NodeID: n.id,
			Msg: fmt.Sprintf("%d events dropped: more than %d queued between flushes", dropped, pendingCap)})
	}
	if len(evs) == 0 {
		return true
	}
	if len(evs) > fsm.EventsPerCommand {
		evs = evs[:fsm.EventsPerCommand]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdEvents, Now: now, Events: evs})
	if err == nil {
		err = res.FirstError()
	}
	if err != nil {
		n.log.Warn("record events", "events", len(evs), "error", err)
		return false
	}
	return true
}
