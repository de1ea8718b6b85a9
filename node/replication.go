package node

import (
	"context"
	"errors"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/transport"
)

// Blobs and chunk copies are both tracked in the ledger (Blob.Holders,
// File.ChunkHolders), so the leader sees a blob or a file whose copies died
// or left and asks a surviving holder to copy it again: an upload stays
// indexable, and a completed file searchable, as long as one copy survives
// at a time. Targets are chosen by one rendezvous ranking (peers.ranked), so
// every caller places the copies of a key on the same nodes.

// Bounds of one repair pass, so a slow or half-dead holder costs one worker
// for one call timeout, never the leader's other duties.
const (
	repairConcurrency = 4
	repairPassMax     = 256
	blobCallTimeout   = time.Minute
	chunkCallTimeout  = 30 * time.Second
)

// aliveHolders keeps the holders the ledger records as alive.
func aliveHolders(s *fsm.State, holders []string) []string {
	var out []string
	for _, h := range holders {
		if nd := s.Nodes[h]; nd != nil && nd.Status == fsm.NodeAlive {
			out = append(out, h)
		}
	}
	return out
}

// aliveCount caps a replication factor at the nodes that can hold a copy.
func aliveCount(s *fsm.State, except string) int {
	alive := 0
	for id, nd := range s.Nodes {
		if nd.Status == fsm.NodeAlive && id != except {
			alive++
		}
	}
	return alive
}

// repairJob is one call the leader makes to a holder.
type repairJob struct {
	key    string
	holder string
	call   func(ctx context.Context) error
}

// runRepairs makes the calls with bounded concurrency and a timeout each,
// and returns once all have finished or ctx ended.
func (n *Node) runRepairs(ctx context.Context, what string, jobs []repairJob, timeout time.Duration) {
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].key < jobs[j].key })
	if len(jobs) > repairPassMax {
		jobs = jobs[:repairPassMax] // the rest next pass
	}
	var g errgroup.Group
	g.SetLimit(repairConcurrency)
	for _, j := range jobs {
		if ctx.Err() != nil {
			break
		}
		g.Go(func() error {
			cctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			// A holder that lost its copy since the ledger said otherwise
			// answers NotFound: the next pass picks another holder.
			err := j.call(cctx)
			if err != nil && !errors.Is(err, errs.NotFound) {
				n.log.Warn(what, "key", j.key, "holder", j.holder, "error", err)
			}
			if !errors.Is(err, errs.NotFound) {
				n.obs.repair(what, j.key, err)
			}
			return nil
		})
	}
	_ = g.Wait()
}

// blobRepairs lists blobs still needed whose alive holders are fewer than
// the replication factor, each to be copied by a surviving holder.
func (n *Node) blobRepairs() []repairJob {
	var jobs []repairJob
	n.fsm.View(func(s *fsm.State) {
		want := min(n.cfg.Replicas, aliveCount(s, ""))
		needed := map[string]bool{}
		for _, f := range s.Files {
			if f.Ref.Hash != "" {
				needed[f.Ref.Hash] = true
			}
		}
		for h := range needed {
			b := s.Blobs[h]
			if b == nil {
				continue
			}
			live := aliveHolders(s, b.Holders)
			if len(live) == 0 || len(live) >= want {
				continue
			}
			hash, holder := h, live[0]
			jobs = append(jobs, repairJob{key: hash, holder: holder, call: func(ctx context.Context) error {
				if holder == n.id {
					return n.ReplicateBlob(ctx, hash, want)
				}
				c := n.peers.of(holder)
				if c == nil {
					return nil
				}
				return c.ReplicateBlob(ctx, hash, want)
			}})
		}
	})
	return jobs
}

// chunkRepairs lists live files with fewer alive chunk holders than
// --chunk-replicas (capped by the alive nodes), each to be copied by a
// survivor.
func (n *Node) chunkRepairs() []repairJob {
	if n.chunks.copies() == nil {
		return nil
	}
	var jobs []repairJob
	n.fsm.View(func(s *fsm.State) {
		want := min(n.cfg.Indexer.ChunkReplicas, aliveCount(s, ""))
		for _, f := range s.Files {
			if f.LiveTask == "" || f.LiveChunks == 0 || len(f.ChunkHolders) == 0 {
				continue
			}
			live := aliveHolders(s, f.ChunkHolders)
			if len(live) == 0 || len(live) >= want {
				continue
			}
			r := transport.ChunkRepair{Partition: f.Partition, FileID: f.FileID, TaskID: f.LiveTask, Want: want}
			holder := live[0]
			jobs = append(jobs, repairJob{key: f.Partition + "\x00" + f.FileID, holder: holder, call: func(ctx context.Context) error {
				if holder == n.id {
					return n.RepairChunks(ctx, r)
				}
				c := n.peers.of(holder)
				if c == nil {
					return nil
				}
				return c.RepairChunks(ctx, r)
			}})
		}
	})
	return jobs
}

// replicationLoop (leader) restores blob and chunk copies, in its own
// goroutine so that failure handling never waits on peer I/O.
func (n *Node) replicationLoop(ctx context.Context) {
	t := time.NewTicker(5 * n.tick())
	defer t.Stop()
	for {
		n.runRepairs(ctx, "re-replicate blob", n.blobRepairs(), blobCallTimeout)
		n.runRepairs(ctx, "repair chunk copies", n.chunkRepairs(), chunkCallTimeout)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// replicate copies a local blob to up to want other alive nodes and returns
// the holders (have plus the new copies).
func (n *Node) replicate(ctx context.Context, hash string, want int, have []string) []string {
	holders := slices.Clone(have)
	for _, p := range n.peers.ranked(hash) {
		if want <= 0 {
			break
		}
		if slices.Contains(have, p.ID) {
			continue
		}
		rc, _, err := n.blobs.Open(hash)
		if err != nil {
			n.log.Warn("replicate: open local blob", "hash", hash, "error", err)
			return holders
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = n.peers.client(p.HTTP).PutBlob(cctx, hash, rc)
		cancel()
		rc.Close()
		if err != nil {
			n.log.Warn("replicate blob", "to", p.ID, "error", err)
			continue
		}
		holders = append(holders, p.ID)
		want--
	}
	return holders
}

// pushChunks copies a file's records to up to want peers not in skip and
// returns the peers that took them. A missing copy costs redundancy, not
// correctness: the leader's repair loop restores it later.
func (n *Node) pushChunks(ctx context.Context, partition, fileID string, recs []store.Record, want int, skip []string) []string {
	var got []string
	for _, p := range n.peers.ranked(partition + "\x00" + fileID) {
		if len(got) >= want {
			break
		}
		if slices.Contains(skip, p.ID) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := n.peers.client(p.HTTP).PutChunks(cctx, transport.ChunkWrite{Partition: partition, FileID: fileID, Records: transport.RecordsToWire(recs)})
		cancel()
		if err != nil {
			n.log.Warn("chunk replica write", "to", p.ID, "error", err)
			continue
		}
		got = append(got, p.ID)
	}
	return got
}

// fileRecords reads a file's live chunks from this node's copy store.
func (n *Node) fileRecords(ctx context.Context, partition, fileID, taskID string, want int) ([]store.Record, error) {
	ls := n.chunks.copies()
	if ls == nil {
		return nil, errs.New(errs.Invalid, "chunk copies are only kept with --vdb local")
	}
	recs, err := ls.FileRecords(ctx, partition, fileID)
	if err != nil {
		return nil, err
	}
	if len(recs) != want {
		return nil, errs.Errorf(errs.Conflict, "holds %d chunks of %s, live version has %d", len(recs), fileID, want)
	}
	for _, r := range recs {
		if t, _ := r.Metadata[indexer.MetaTask].(string); t != taskID {
			return nil, errs.Errorf(errs.Conflict, "holds another version of %s", fileID)
		}
	}
	return recs, nil
}

// handOffChunks runs before a node leaves for good: for every live file this
// node holds, copies go to other nodes until enough holders remain without
// it, so a departure never takes the last copies with it.
func (n *Node) handOffChunks(ctx context.Context) {
	if n.chunks.copies() == nil {
		return
	}
	var reqs []transport.ChunkRepair
	n.fsm.View(func(s *fsm.State) {
		want := min(n.cfg.Indexer.ChunkReplicas, aliveCount(s, n.id))
		for _, f := range s.Files {
			if f.LiveTask != "" && f.LiveChunks > 0 && slices.Contains(f.ChunkHolders, n.id) {
				reqs = append(reqs, transport.ChunkRepair{Partition: f.Partition, FileID: f.FileID, TaskID: f.LiveTask, Want: want})
			}
		}
	})
	for _, r := range reqs {
		if err := n.RepairChunks(ctx, r); err != nil {
			n.log.Warn("hand off chunks before leaving", "file", r.FileID, "error", err)
		}
	}
	if len(reqs) > 0 {
		n.log.Info("handed off chunk copies before leaving", "files", len(reqs))
	}
}
