package node

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/transport"
)

// Chunk copies, like blobs, are tracked in the ledger (File.ChunkHolders),
// so the leader can see a file whose copies died or left and have a
// surviving holder copy it again: a completed file stays searchable as long
// as one copy survives at a time.

// fileRecords reads a file's live chunks from the local store.
func (n *Node) fileRecords(ctx context.Context, partition, fileID, taskID string, want int) ([]store.Record, error) {
	ls, ok := n.store.(*store.Local)
	if !ok {
		return nil, fmt.Errorf("chunk copies are only kept with --vdb local")
	}
	recs, err := ls.FileRecords(ctx, partition, fileID)
	if err != nil {
		return nil, err
	}
	if len(recs) != want {
		return nil, transport.Errorf(http.StatusConflict, "holds %d chunks of %s, live version has %d", len(recs), fileID, want)
	}
	for _, r := range recs {
		if t, _ := r.Metadata[indexer.MetaTask].(string); t != taskID {
			return nil, transport.Errorf(http.StatusConflict, "holds another version of %s", fileID)
		}
	}
	return recs, nil
}

// RepairChunks implements transport.Backend: copy this node's chunks of a
// file to more nodes until Want alive nodes hold them, then record it.
func (n *Node) RepairChunks(ctx context.Context, r transport.ChunkRepair) error {
	var live int
	var alive []string
	n.fsm.View(func(s *fsm.State) {
		f := s.Files[fsm.FileKey(r.Partition, r.FileID)]
		if f == nil || f.LiveTask != r.TaskID {
			return
		}
		live = f.LiveChunks
		for _, h := range f.ChunkHolders {
			if nd := s.Nodes[h]; nd != nil && nd.Status == fsm.NodeAlive && !(h == n.id && n.leaving.Load()) {
				alive = append(alive, h)
			}
		}
	})
	if live == 0 {
		return nil
	}
	recs, err := n.fileRecords(ctx, r.Partition, r.FileID, r.TaskID, live)
	if err != nil {
		return err
	}
	skip := append([]string{n.id}, alive...)
	added := n.pushChunks(ctx, r.Partition, r.FileID, recs, r.Want-len(alive), skip)
	if len(added) == 0 {
		return nil
	}
	_, err = n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdChunkHolders, Partition: r.Partition, FileID: r.FileID, TaskID: r.TaskID, ChunkHolders: added})
	return err
}

// handleChunkRepair (leader) finds live files with fewer alive chunk holders
// than --chunk-replicas (capped by the alive nodes) and asks a survivor to
// copy them.
func (n *Node) handleChunkRepair(ctx context.Context) {
	if n.cfg.Indexer.VDB != "local" {
		return
	}
	type job struct {
		r      transport.ChunkRepair
		holder string
	}
	var jobs []job
	n.fsm.View(func(s *fsm.State) {
		alive := 0
		for _, nd := range s.Nodes {
			if nd.Status == fsm.NodeAlive {
				alive++
			}
		}
		want := n.cfg.Indexer.ChunkReplicas
		if alive < want {
			want = alive
		}
		for _, f := range s.Files {
			if f.LiveTask == "" || f.LiveChunks == 0 || len(f.ChunkHolders) == 0 {
				continue
			}
			var live []string
			for _, h := range f.ChunkHolders {
				if nd := s.Nodes[h]; nd != nil && nd.Status == fsm.NodeAlive {
					live = append(live, h)
				}
			}
			if len(live) > 0 && len(live) < want {
				jobs = append(jobs, job{transport.ChunkRepair{Partition: f.Partition, FileID: f.FileID, TaskID: f.LiveTask, Want: want}, live[0]})
			}
		}
	})
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].r.FileID < jobs[j].r.FileID })
	for i, j := range jobs {
		if i == 256 {
			break // the rest next round; a pass must not hold the leader loop for long
		}
		cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		var err error
		if j.holder == n.id {
			err = n.RepairChunks(cctx, j.r)
		} else if addr := n.httpAddrOf(j.holder); addr != "" {
			err = n.client(addr).RepairChunks(cctx, j.r)
		}
		cancel()
		if err != nil {
			n.log.Warn("repair chunk copies", "file", j.r.FileID, "holder", j.holder, "error", err)
		}
	}
}

// handOffChunks runs before a node leaves for good: for every live file this
// node holds, copies go to other nodes until enough holders remain without
// it, so a departure never takes the last copies with it.
func (n *Node) handOffChunks(ctx context.Context) {
	if n.cfg.Indexer.VDB != "local" {
		return
	}
	var reqs []transport.ChunkRepair
	n.fsm.View(func(s *fsm.State) {
		alive := 0
		for id, nd := range s.Nodes {
			if nd.Status == fsm.NodeAlive && id != n.id {
				alive++
			}
		}
		want := n.cfg.Indexer.ChunkReplicas
		if alive < want {
			want = alive
		}
		for _, f := range s.Files {
			if f.LiveTask != "" && f.LiveChunks > 0 && containsStr(f.ChunkHolders, n.id) {
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
