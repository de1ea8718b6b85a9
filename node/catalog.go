package node

import (
	"context"
	"errors"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/node/catalog"
)

// catalogLoop is the leader's duty of keeping OpenRAG's catalog (--catalog)
// in step with the ledger. After every apply it takes the ledger's
// partitions, files and tasks at the applied index and syncs them in one
// transaction that stores that index (package catalog). It is level-triggered: a new leader, a lost
// connection or a failed sync all end in the same full sync of the current
// state, so nothing is skipped and nothing applied twice; a sync a deposed
// leader still had in flight is refused by the stored index.
func (n *Node) catalogLoop(ctx context.Context) {
	if n.cfg.Catalog == "" {
		return
	}
	ch := n.fsm.Subscribe()
	defer n.fsm.Unsubscribe(ch)
	var m *catalog.Mirror
	defer func() {
		if m != nil {
			m.Close()
		}
	}()
	retry := time.NewTimer(0)
	defer retry.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-ch:
		case <-retry.C:
		}
		if m == nil {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			var err error
			m, err = catalog.Open(cctx, n.cfg.Catalog)
			cancel()
			if err != nil {
				n.log.Warn("catalog: connect", "error", err)
				m = nil
				retry.Reset(2 * time.Second)
				continue
			}
		}
		var want catalog.View
		var index uint64
		opts := n.catalogOptions()
		n.fsm.View(func(s *fsm.State) {
			want, index = catalog.Snapshot(s, opts), s.Index
		})
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		p, err := m.Sync(cctx, index, want)
		cancel()
		switch {
		case errors.Is(err, catalog.ErrStale):
			// Another leader already wrote a newer view; ours will catch up.
			n.log.Info("catalog: newer view already stored", "error", err)
			retry.Reset(time.Second)
		case err != nil:
			n.log.Warn("catalog: sync", "index", index, "error", err)
			m.Close()
			m = nil
			retry.Reset(2 * time.Second)
		case !p.Empty():
			n.log.Debug("catalog: synced", "index", index, "upserts", len(p.Upserts), "deletes", len(p.Deletes), "jobs", len(p.JobUpserts))
		}
		// Each sync reads the whole catalog: under a stream of applies,
		// sync at most once a tick (later applies coalesce into the next).
		select {
		case <-ctx.Done():
			return
		case <-time.After(n.tick()):
		}
	}
}
