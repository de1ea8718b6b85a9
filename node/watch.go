package node

import "time"

// watchLedger runs fn now, then again after applies and at least every
// interval, until done closes. Applies are coalesced: a burst of them
// wakes fn once. Every loop of a node that follows the ledger (its worker
// pool, its self-registration, its janitor, the leader's scheduler) runs
// through here.
func (n *Node) watchLedger(done <-chan struct{}, every time.Duration, fn func()) {
	sub := n.fsm.Subscribe()
	defer n.fsm.Unsubscribe(sub)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		fn()
		select {
		case <-done:
			return
		case <-sub:
		case <-t.C:
		}
	}
}

// pause waits d unless done closes first, and reports whether it waited.
func pause(done <-chan struct{}, d time.Duration) bool {
	select {
	case <-done:
		return false
	case <-time.After(d):
		return true
	}
}
