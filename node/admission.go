package node

import (
	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

// admit refuses a submission while the queue is over an admission cap
// (openrag #663: without one every upload is accepted and the queue grows
// without bound). It runs before anything of the submission is stored, so
// a refused upload leaves nothing behind. The check reads this node's
// ledger copy, so under a burst through many nodes the caps are soft by the
// submissions in flight: a bound, not an exact count.
func (n *Node) admit(partition string, files int, bytes int64) error {
	c := n.cfg
	if c.MaxQueued == 0 && c.MaxQueuedBytes == 0 && c.MaxQueuedPerPartition == 0 {
		return nil
	}
	var queued, inPart int
	var qbytes int64
	n.fsm.View(func(s *fsm.State) {
		queued, qbytes, inPart = s.Waiting(partition) // queued and prefetched
	})
	switch {
	case c.MaxQueued > 0 && queued+files > c.MaxQueued:
		return errs.Errorf(errs.Busy, "the cluster has %d tasks queued (--max-queued %d); retry later", queued, c.MaxQueued)
	case c.MaxQueuedPerPartition > 0 && inPart+files > c.MaxQueuedPerPartition:
		return errs.Errorf(errs.Busy, "partition %s has %d tasks queued (--max-queued-per-partition %d); retry later", partition, inPart, c.MaxQueuedPerPartition)
	case c.MaxQueuedBytes > 0 && qbytes+bytes > c.MaxQueuedBytes && queued > 0:
		return errs.Errorf(errs.Busy, "the cluster has %d bytes queued (--max-queued-bytes %d); retry later", qbytes, c.MaxQueuedBytes)
	}
	return nil
}
