package node

import (
	"bytes"
	"context"
	"io"
	"slices"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/transport"
)

// PutChunks implements transport.Backend: a replica write from a peer.
func (n *Node) PutChunks(ctx context.Context, w transport.ChunkWrite) error {
	_, err := (indexer.StoreSink{Store: n.store}).WriteFile(ctx, indexer.Write{Partition: w.Partition, FileID: w.FileID, Records: transport.RecordsFromWire(w.Records)})
	return err
}

// Apply implements transport.Backend.
func (n *Node) Apply(ctx context.Context, c fsm.Command) (fsm.Result, error) {
	return n.prop.Propose(ctx, c)
}

// OpenBlob implements transport.Backend. The whole copy is verified before
// its first byte leaves: a corrupt one is quarantined and refused with a
// 404 that names the corruption, so the caller goes to another holder and
// knows why, where a body cut short mid-stream would look like a network
// fault. (A second read, mostly from the page cache; the stream is
// verified again, and cut short if the copy changed meanwhile.)
func (n *Node) OpenBlob(hash string) (io.ReadCloser, int64, error) {
	if _, err := n.blobs.Verify(hash); err != nil {
		return nil, 0, err
	}
	return n.blobs.Open(hash)
}

// PutBlob implements transport.Backend.
func (n *Node) PutBlob(ctx context.Context, hash string, body io.Reader) error {
	if !validHash(hash) {
		return errs.Errorf(errs.Invalid, "invalid blob hash %q", hash)
	}
	_, _, err := n.blobs.Put(body, 0, hash)
	return err
}

// PutBlobs implements transport.Backend: receive many replicas; small ones
// in one transaction, large ones with one filesystem sync.
func (n *Node) PutBlobs(ctx context.Context, body io.Reader) error {
	var smalls [][]byte
	var wants []string
	large := false
	err := transport.ReadBatch(body, func(e transport.BatchEntry) error {
		if !validHash(e.FileID) {
			return errs.Errorf(errs.Invalid, "invalid blob hash %q", e.FileID)
		}
		data, err := io.ReadAll(io.LimitReader(e.Body, bulkSmall+1))
		if err != nil {
			return err
		}
		if len(data) <= bulkSmall {
			smalls, wants = append(smalls, data), append(wants, e.FileID)
			return nil
		}
		large = true
		_, _, err = n.blobs.PutLargeNoSync(io.MultiReader(bytes.NewReader(data), e.Body), 0, e.FileID)
		return err
	})
	if err != nil {
		return err
	}
	if len(smalls) > 0 {
		if _, err := n.blobs.PutSmall(smalls, wants); err != nil {
			return err
		}
	}
	if large {
		return n.blobs.Sync()
	}
	return nil
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

// ReplicateBlob implements transport.Backend: the leader asks a surviving
// holder to restore the replication factor.
func (n *Node) ReplicateBlob(ctx context.Context, hash string, want int) error {
	if !n.blobs.Has(hash) {
		return errs.Errorf(errs.NotFound, "blob %s not held here", hash)
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
	if !slices.Contains(have, n.id) {
		have = append(have, n.id)
	}
	holders := n.replicate(ctx, hash, want-len(have), have)
	if len(holders) == len(have) {
		return nil
	}
	_, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdBlobHolders, Blob: &fsm.Blob{Hash: hash, Size: size, Holders: holders}})
	return err
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
