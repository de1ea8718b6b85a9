package node

import (
	"context"
	"slices"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// janitorMinGap is the least time between two janitor passes.
const janitorMinGap = 2 * time.Second

// DefaultOrphanBlobGrace is how long a local blob the ledger does not name
// is kept: longer than an upload takes from storing its blob to the
// ledger recording it.
const DefaultOrphanBlobGrace = 2 * time.Minute

// janitor removes local copies the ledger no longer needs: blobs whose last
// file was deleted, and chunks of deleted files.
func (n *Node) janitor() {
	defer n.wg.Done()
	prevBlobs := map[string]bool{}
	prevFiles := map[string][2]string{}
	// checked maps a file to the live version this node last reconciled its
	// chunk copy against.
	checked := map[string]string{}
	// A blob that came and went between two passes was never in prevBlobs;
	// the orphan sweep finds it (and the blobs of uploads the ledger never
	// recorded) by listing the local store, less often.
	orphans := orphanSweep{grace: n.cfg.OrphanBlobGrace}
	var last time.Time
	n.watchLedger(n.stopCh, 5*n.tick(), func() {
		// Coalesce bursts of applies, and under constant churn pass at most
		// every janitorMinGap: a pass walks every blob and file, and
		// nothing it deletes is urgent.
		wait := max(200*time.Millisecond, janitorMinGap-time.Since(last))
		if !pause(n.stopCh, wait) {
			return
		}
		last = time.Now()
		blobs := map[string]bool{}
		files := map[string][2]string{}
		var stale []*fsm.File
		n.fsm.View(func(s *fsm.State) {
			for h := range s.Blobs {
				blobs[h] = true
			}
			for k, f := range s.Files {
				files[k] = [2]string{f.Partition, f.FileID}
				if f.LiveTask == "" || checked[k] == f.LiveTask {
					continue
				}
				checked[k] = f.LiveTask
				// The live version's holders were written (and trimmed) by
				// the task; a copy anywhere else is an older version.
				if len(f.ChunkHolders) > 0 && !slices.Contains(f.ChunkHolders, n.id) {
					cp := *f
					stale = append(stale, &cp)
				}
			}
		})
		for k := range checked {
			if _, ok := files[k]; !ok {
				delete(checked, k)
			}
		}
		for h := range prevBlobs {
			if !blobs[h] {
				if err := n.blobs.Delete(h); err != nil {
					n.log.Warn("delete blob", "hash", h, "error", err)
				}
			}
		}
		if ls := n.chunks.copies(); ls != nil {
			for k, pf := range prevFiles {
				if _, ok := files[k]; !ok {
					ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
					if err := n.store.DeleteFile(ctx, pf[0], pf[1]); err != nil {
						n.log.Warn("delete chunks of deleted file", "file", pf[1], "error", err)
					}
					cancel()
				}
			}
			for _, f := range stale {
				if !ls.HasFile(f.Partition, f.FileID) {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				if err := n.store.DeleteFile(ctx, f.Partition, f.FileID); err != nil {
					n.log.Warn("drop stale chunk copy", "file", f.FileID, "error", err)
				}
				cancel()
			}
		}
		prevBlobs, prevFiles = blobs, files
		orphans.pass(n, blobs, last)
	})
}

// orphanSweep removes local blobs that no ledger entry has named for a
// whole grace period.
type orphanSweep struct {
	grace time.Duration
	last  time.Time
	since map[string]time.Time // local blob -> first pass that found it unnamed
}

func (o *orphanSweep) pass(n *Node, named map[string]bool, now time.Time) {
	// A node still replaying its log names too few blobs.
	if now.Sub(o.last) < max(janitorMinGap, o.grace/2) || !n.replayed() {
		return
	}
	o.last = now
	local, err := n.blobs.List()
	if err != nil {
		n.log.Warn("list local blobs", "error", err)
		return
	}
	next := make(map[string]time.Time)
	for _, h := range local {
		if named[h] {
			continue
		}
		first, ok := o.since[h]
		if !ok {
			next[h] = now
			continue
		}
		if now.Sub(first) < o.grace {
			next[h] = first
			continue
		}
		if err := n.blobs.Delete(h); err != nil {
			n.log.Warn("delete orphan blob", "hash", h, "error", err)
			next[h] = first
		}
	}
	o.since = next
}
