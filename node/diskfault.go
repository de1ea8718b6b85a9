package node

import (
	"context"
	"errors"
	"time"

	"github.com/hashicorp/raft"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/node/errs"
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
// (Raft itself only logs the error and keeps failing).
type diskWatchedLog struct {
	raft.LogStore
	fault func(error)
}

func (d diskWatchedLog) StoreLog(l *raft.Log) error {
	err := d.LogStore.StoreLog(l)
	if err != nil {
		d.fault(diskError(err))
	}
	return err
}

func (d diskWatchedLog) StoreLogs(ls []*raft.Log) error {
	err := d.LogStore.StoreLogs(ls)
	if err != nil {
		d.fault(diskError(err))
	}
	return err
}
