package node

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/hashicorp/serf/serf"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/transport"
)

func containsStr(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// handleBlobReplication (leader) finds blobs still needed whose alive holders
// are fewer than the replication factor, and asks a surviving holder to copy.
func (n *Node) handleBlobReplication(ctx context.Context) {
	type job struct {
		hash   string
		holder string
	}
	var jobs []job
	want := n.cfg.Replicas
	n.fsm.View(func(s *fsm.State) {
		alive := 0
		for _, nd := range s.Nodes {
			if nd.Status == fsm.NodeAlive {
				alive++
			}
		}
		if alive < want {
			want = alive
		}
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
			var live []string
			for _, id := range b.Holders {
				if nd := s.Nodes[id]; nd != nil && nd.Status == fsm.NodeAlive {
					live = append(live, id)
				}
			}
			if len(live) > 0 && len(live) < want {
				jobs = append(jobs, job{h, live[0]})
			}
		}
	})
	sort.Slice(jobs, func(i, j int) bool { return jobs[i].hash < jobs[j].hash })
	for _, j := range jobs {
		addr := n.httpAddrOf(j.holder)
		if addr == "" {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		var err error
		if j.holder == n.id {
			err = n.ReplicateBlob(cctx, j.hash, want)
		} else {
			err = n.client(addr).ReplicateBlob(cctx, j.hash, want)
		}
		cancel()
		if err != nil && !strings.Contains(err.Error(), "not held") {
			n.log.Warn("re-replicate blob", "hash", j.hash, "error", err)
		}
	}
}

// replicate copies a local blob to up to want other alive nodes and returns
// the holders (have plus the new copies). Targets are ranked by rendezvous
// hashing on the blob, so copies spread evenly and the choice is stable.
func (n *Node) replicate(ctx context.Context, hash string, want int, have []string) []string {
	holders := append([]string(nil), have...)
	if want <= 0 {
		return holders
	}
	skip := map[string]bool{}
	for _, h := range have {
		skip[h] = true
	}
	type cand struct {
		id, addr string
		score    uint64
	}
	var cands []cand
	for _, m := range n.serf.Members() {
		id := m.Tags[tagID]
		if id == "" || skip[id] || m.Status != serf.StatusAlive || m.Tags[tagHTTP] == "" {
			continue
		}
		sum := sha256.Sum256([]byte(hash + "/" + id))
		cands = append(cands, cand{id: id, addr: m.Tags[tagHTTP], score: binary.BigEndian.Uint64(sum[:8])})
	}
	sort.Slice(cands, func(i, j int) bool { return cands[i].score > cands[j].score })
	for _, c := range cands {
		if want == 0 {
			break
		}
		rc, _, err := n.blobs.Open(hash)
		if err != nil {
			n.log.Warn("replicate: open local blob", "hash", hash, "error", err)
			return holders
		}
		cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		err = n.client(c.addr).PutBlob(cctx, hash, rc)
		cancel()
		rc.Close()
		if err != nil {
			n.log.Warn("replicate blob", "to", c.id, "error", err)
			continue
		}
		holders = append(holders, c.id)
		want--
	}
	return holders
}

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

// pushChunks copies a file's records to up to want peers not in skip,
// ranked by rendezvous hash on the file, and returns the peers that took
// them. A missing copy costs redundancy, not correctness: the leader's
// repair loop restores it later.
func (n *Node) pushChunks(ctx context.Context, partition, fileID string, recs []store.Record, want int, skip []string) []string {
	var got []string
	if want <= 0 {
		return nil
	}
	for _, addr := range n.rankPeers(partition+"\x00"+fileID, 1<<30) {
		if len(got) == want {
			break
		}
		id := n.idOfHTTP(addr)
		if id == "" || containsStr(skip, id) {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, time.Minute)
		err := n.client(addr).PutChunks(cctx, transport.ChunkWrite{Partition: partition, FileID: fileID, Records: recs})
		cancel()
		if err != nil {
			n.log.Warn("chunk replica write", "to", addr, "error", err)
			continue
		}
		got = append(got, id)
	}
	return got
}
