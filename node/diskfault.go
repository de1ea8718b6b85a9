package node

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

// A node that cannot write its data (a full, over-quota or read-only disk)
// drains itself with reason "disk": it takes no new work, and what it runs
// is handed back at the drain deadline, --requeue-after from now. Uploads
// through it answer 507. Its self-registration loop probes the disk and
// lifts the drain once a write succeeds again; no operator step is needed.
const drainDisk = "disk"

// noteDiskFault starts the drain on the first NoSpace failure.
func (n *Node) noteDiskFault(err error) {
	if !errors.Is(err, errs.NoSpace) || !n.diskFaulty.CompareAndSwap(false, true) {
		return
	}
	n.log.Error("data disk refuses writes; draining this node until it recovers", "error", err)
	// Whatever the proposal's fate, the drain may be in the ledger: lift
	// it once the disk takes writes (registerSelf, liftDiskDrain).
	n.diskLift.Store(true)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_, perr := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdSetDrain, NodeID: n.id, Draining: true,
			Deadline: time.Now().Add(n.cfg.RequeueAfter).UnixNano(), Error: drainDisk})
		if perr != nil {
			n.log.Warn("disk fault: could not mark node draining", "error", perr)
			n.diskFaulty.Store(false) // try again on the next failure
		}
	}()
}

// The lift of a disk drain must not wait for this node's copy of the
// ledger to show the drain. While the disk refused writes the node's Raft
// log could not grow, so its ledger is behind the cluster's; the leader,
// after each append the node rejected, waits longer before the next one
// (hashicorp/raft backs a failing follower off exponentially, up to about
// 10 s a try), and every proposal the node makes meanwhile waits up to 5 s
// for its own apply. Lifting only once the local ledger showed the drain
// left the node drained for tens of seconds after its disk was freed, past
// a minute on a loaded host (the disk-full scenario's intermittent "drain
// not lifted after the disk is freed", seed 860671). So a node that asked
// for a disk drain (diskLift) proposes the lift as soon as its probe
// write succeeds, and keeps proposing it until the leader answers; the
// lift is conditional (OnlyIfReason): it ends a disk drain and leaves any
// other (an operator's) alone, and is a no-op when there is none.

// liftDiskDrain is the command that ends this node's disk drain, and only
// that one.
func (n *Node) liftDiskDrain() fsm.Command {
	return fsm.Command{Type: fsm.CmdSetDrain, NodeID: n.id, Draining: false, OnlyIfReason: drainDisk}
}

// diskRecovered reports whether a disk drain may be lifted: the probe write
// succeeds.
func (n *Node) diskRecovered() bool {
	if err := n.blobs.probe(); err != nil {
		return false
	}
	if n.diskFaulty.CompareAndSwap(true, false) {
		n.log.Info("data disk takes writes again; lifting the drain")
	}
	return true
}

// diskWatchedLog reports a Raft log that cannot append as a disk fault, so
// a node whose disk filled up drains like one whose blob writes fail
// (Raft itself only logs the error and keeps failing). failing, when set,
// is asked first: the blob store's injected fault (tests), so a test's
// full disk refuses Raft appends too, as a real one does.
type diskWatchedLog struct {
	raft.LogStore
	fault   func(error)
	failing func() error
}

func (d diskWatchedLog) StoreLog(l *raft.Log) error {
	err := d.injected()
	if err == nil {
		err = d.LogStore.StoreLog(l)
	}
	if err != nil {
		d.fault(diskError(err))
	}
	return err
}

func (d diskWatchedLog) StoreLogs(ls []*raft.Log) error {
	err := d.injected()
	if err == nil {
		err = d.LogStore.StoreLogs(ls)
	}
	if err != nil {
		d.fault(diskError(err))
	}
	return err
}

func (d diskWatchedLog) injected() error {
	if d.failing == nil {
		return nil
	}
	return d.failing()
}
