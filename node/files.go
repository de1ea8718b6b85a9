package node

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/indexer/store"
	"github.com/ragnode/ragnode/transport"
)

func fileView(f *fsm.File) transport.FileView {
	meta := map[string]any{}
	for k, v := range f.Metadata {
		meta[k] = v
	}
	return transport.FileView{Partition: f.Partition, FileID: f.FileID, FileName: f.Ref.Name, TaskID: f.TaskID,
		State: string(f.State), Metadata: meta, Chunks: f.LiveChunks, Size: f.Ref.Size, Updated: f.Updated}
}

func fileMissing(partition, fileID string) error {
	return transport.Errorf(http.StatusNotFound, "File '%s' not found in partition '%s'.", fileID, partition)
}

// File implements transport.CompatBackend.
func (n *Node) File(ctx context.Context, partition, fileID string) (transport.FileView, error) {
	var fv transport.FileView
	ok := false
	n.fsm.View(func(s *fsm.State) {
		if f := s.Files[fsm.FileKey(partition, fileID)]; f != nil {
			fv, ok = fileView(f), true
		}
	})
	if !ok {
		return fv, fileMissing(partition, fileID)
	}
	return fv, nil
}

// UpdateFileMetadata merges metadata into a file without re-embedding. The
// ledger is the source of truth (search answers with the ledger's metadata);
// the stores are updated too so store-side filters agree.
func (n *Node) UpdateFileMetadata(ctx context.Context, partition, fileID string, meta map[string]any) error {
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdFileMetadata, Partition: partition, FileID: fileID, Metadata: meta})
	if err != nil {
		return err
	}
	if res.Err != "" {
		return fileMissing(partition, fileID)
	}
	n.storeFanOut(ctx, func(ctx context.Context, c *transport.Client) error {
		return c.Do(ctx, http.MethodPost, "/v1/internal/chunks/metadata", nil, jsonReader(transport.ChunkMetadata{Partition: partition, FileID: fileID, Metadata: meta}), nil)
	}, func(ctx context.Context) error { return n.store.UpdateMetadata(ctx, partition, fileID, meta) })
	return nil
}

// DeleteFile implements transport.CompatBackend.
func (n *Node) DeleteFile(ctx context.Context, partition, fileID string) error {
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdDeleteFile, Partition: partition, FileID: fileID})
	if err != nil {
		return err
	}
	if res.Err != "" {
		return fileMissing(partition, fileID)
	}
	n.storeFanOut(ctx, func(ctx context.Context, c *transport.Client) error {
		return c.Do(ctx, http.MethodPost, "/v1/internal/chunks/delete", nil, jsonReader(transport.ChunkDelete{Partition: partition, FileID: fileID}), nil)
	}, func(ctx context.Context) error { return n.store.DeleteFile(ctx, partition, fileID) })
	return nil
}

// Partitions implements transport.CompatBackend.
func (n *Node) Partitions(ctx context.Context) ([]transport.PartitionView, error) {
	byName := map[string]*transport.PartitionView{}
	n.fsm.View(func(s *fsm.State) {
		for _, f := range s.Files {
			p := byName[f.Partition]
			if p == nil {
				p = &transport.PartitionView{Name: f.Partition, Created: f.Updated}
				byName[f.Partition] = p
			}
			if f.Updated < p.Created {
				p.Created = f.Updated
			}
			p.Files = append(p.Files, fileView(f))
		}
	})
	out := make([]transport.PartitionView, 0, len(byName))
	for _, p := range byName {
		sort.Slice(p.Files, func(i, j int) bool { return p.Files[i].FileID < p.Files[j].FileID })
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// DeletePartition implements transport.CompatBackend.
func (n *Node) DeletePartition(ctx context.Context, partition string) error {
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdDeletePart, Partition: partition})
	if err != nil {
		return err
	}
	if res.Applied == 0 {
		return transport.Errorf(http.StatusNotFound, "Partition '%s' not found.", partition)
	}
	n.storeFanOut(ctx, func(ctx context.Context, c *transport.Client) error {
		return c.Do(ctx, http.MethodPost, "/v1/internal/chunks/delete", nil, jsonReader(transport.ChunkDelete{Partition: partition}), nil)
	}, func(ctx context.Context) error { return n.store.DeletePartition(ctx, partition) })
	return nil
}

// storeFanOut applies a store change on every alive node (local stores) or
// once (shared store). It is best effort: search filters by the ledger, and
// the janitor repairs nodes that were down.
func (n *Node) storeFanOut(ctx context.Context, remote func(context.Context, *transport.Client) error, local func(context.Context) error) {
	if n.cfg.Indexer.VDB != "local" {
		if err := local(ctx); err != nil {
			n.log.Warn("store update", "error", err)
		}
		return
	}
	done := make(chan struct{})
	peers := n.alivePeers()
	for _, addr := range peers {
		go func(addr string) {
			defer func() { done <- struct{}{} }()
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := remote(cctx, n.client(addr)); err != nil {
				n.log.Warn("store update on peer", "peer", addr, "error", err)
			}
		}(addr)
	}
	if err := local(ctx); err != nil {
		n.log.Warn("store update", "error", err)
	}
	for range peers {
		<-done
	}
}

// alivePeers returns other alive nodes' API addresses.
func (n *Node) alivePeers() []string {
	return n.rankPeers("", 1<<30)
}

// QueueInfo implements transport.CompatBackend.
func (n *Node) QueueInfo(ctx context.Context) (transport.QueueInfo, error) {
	qi := transport.QueueInfo{PoolSize: n.cfg.PoolSize, Tasks: map[string]int{}}
	n.fsm.View(func(s *fsm.State) {
		for _, nd := range s.Nodes {
			if nd.Status != fsm.NodeAlive || nd.Draining {
				continue
			}
			if len(nd.GPUs) == 0 || n.cfg.TaskMilli == 0 && n.cfg.TaskMem == 0 {
				qi.TotalSlots += nd.CPUSlots
				continue
			}
			for _, g := range nd.GPUs {
				k := gpu.MilliPerGPU
				if n.cfg.TaskMilli > 0 {
					k = gpu.MilliPerGPU / n.cfg.TaskMilli
				}
				if n.cfg.TaskMem > 0 {
					if usable := fsm.UsableMem(nd, g.Index); usable/n.cfg.TaskMem < uint64(k) {
						k = int(usable / n.cfg.TaskMem)
					}
				}
				qi.TotalSlots += k
			}
		}
		if qi.PoolSize > 0 && qi.TotalSlots > qi.PoolSize {
			qi.TotalSlots = qi.PoolSize
		}
		qi.BusySlots = s.ActiveTotal()
		for k, v := range s.Counts() {
			qi.Tasks[string(k)] = v
		}
	})
	qi.FreeSlots = qi.TotalSlots - qi.BusySlots
	if qi.FreeSlots < 0 {
		qi.FreeSlots = 0
	}
	return qi, nil
}

// janitor removes local copies the ledger no longer needs: blobs whose last
// file was deleted, and chunks of deleted files.
func (n *Node) janitor() {
	defer n.wg.Done()
	sub := n.fsm.Subscribe()
	defer n.fsm.Unsubscribe(sub)
	t := time.NewTicker(n.tick() * 5)
	defer t.Stop()
	prevBlobs := map[string]bool{}
	prevFiles := map[string][2]string{}
	// checked maps a file to the live version this node last reconciled its
	// chunk copy against.
	checked := map[string]string{}
	for {
		select {
		case <-n.stopCh:
			return
		case <-sub:
		case <-t.C:
		}
		// Coalesce bursts of applies.
		select {
		case <-n.stopCh:
			return
		case <-time.After(200 * time.Millisecond):
		}
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
				if len(f.ChunkHolders) > 0 && !containsStr(f.ChunkHolders, n.id) {
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
		if n.cfg.Indexer.VDB == "local" {
			ls, _ := n.store.(*store.Local)
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
				if ls == nil || !ls.HasFile(f.Partition, f.FileID) {
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
	}
}

// ReplicateBlob implements transport.Backend: the leader asks a surviving
// holder to restore the replication factor.
func (n *Node) ReplicateBlob(ctx context.Context, hash string, want int) error {
	if !n.blobs.Has(hash) {
		return transport.Errorf(http.StatusNotFound, "blob %s not held here", hash)
	}
	var have []string
	var size int64
	n.fsm.View(func(s *fsm.State) {
		if b := s.Blobs[hash]; b != nil {
			size = b.Size
			for _, h := range b.Holders {
				if nd := s.Nodes[h]; nd != nil && nd.Status == fsm.NodeAlive {
					have = append(have, h)
				}
			}
		}
	})
	if !containsStr(have, n.id) {
		have = append(have, n.id)
	}
	holders := n.replicate(ctx, hash, want-len(have), have)
	if len(holders) == len(have) {
		return nil
	}
	_, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdBlobHolders, Blob: &fsm.Blob{Hash: hash, Size: size, Holders: holders}})
	return err
}

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

// ChunkMetadata implements transport.Backend (fan-out target of a PATCH).
func (n *Node) ChunkMetadata(ctx context.Context, m transport.ChunkMetadata) error {
	return n.store.UpdateMetadata(ctx, m.Partition, m.FileID, m.Metadata)
}

// ChunkDelete implements transport.Backend (fan-out target of a delete).
func (n *Node) ChunkDelete(ctx context.Context, d transport.ChunkDelete) error {
	if d.FileID == "" {
		return n.store.DeletePartition(ctx, d.Partition)
	}
	return n.store.DeleteFile(ctx, d.Partition, d.FileID)
}

func jsonReader(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
