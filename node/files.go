package node

import (
	"context"
	"fmt"
	"maps"
	"sort"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

func fileView(s *fsm.State, f *fsm.File) transport.FileView {
	meta := map[string]any{}
	for k, v := range f.Metadata {
		meta[k] = v
	}
	return transport.FileView{Partition: f.Partition, FileID: f.FileID, FileName: f.Ref.Name, TaskID: f.TaskID,
		State: string(f.State), Metadata: meta, Chunks: f.LiveChunks, Size: f.Ref.Size, Updated: f.Updated,
		Created: versionTime(s, f.TaskID, f)}
}

// File implements transport.CompatBackend.
func (n *Node) File(ctx context.Context, partition, fileID string) (transport.FileView, error) {
	var fv transport.FileView
	ok := false
	n.fsm.View(func(s *fsm.State) {
		if f := s.Files[fsm.FileKey(partition, fileID)]; f != nil {
			fv, ok = fileView(s, f), true
		}
	})
	if !ok {
		return fv, errs.Errorf(errs.NotFound, "file %s not found in partition %s", fileID, partition)
	}
	return fv, nil
}

// UpdateFileMetadata merges metadata into a file without re-embedding. The
// ledger is the source of truth (search answers with the ledger's metadata);
// the stores are updated too so store-side filters agree.
func (n *Node) UpdateFileMetadata(ctx context.Context, partition, fileID string, meta map[string]any) error {
	if err := validMetadata(meta); err != nil {
		return err
	}
	if target, ok := meta["partition"]; ok {
		// openrag's update_metadata: a "partition" key moves the file.
		p, isStr := target.(string)
		if !isStr {
			return errs.Errorf(errs.Invalid, "metadata key partition must be a string")
		}
		rest := maps.Clone(meta)
		delete(rest, "partition")
		if p != partition {
			return n.moveFile(ctx, partition, fileID, p, rest)
		}
		meta = rest
	}
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdFileMetadata, Partition: partition, FileID: fileID, Metadata: meta})
	if err != nil {
		return err
	}
	if err := res.Error(); err != nil {
		return fmt.Errorf("update metadata of %s: %w", fileID, err)
	}
	n.chunks.UpdateMetadata(ctx, partition, fileID, meta)
	return nil
}

// DeleteFile implements transport.CompatBackend.
func (n *Node) DeleteFile(ctx context.Context, partition, fileID string) error {
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdDeleteFile, Partition: partition, FileID: fileID})
	if err != nil {
		return err
	}
	if err := res.Error(); err != nil {
		return fmt.Errorf("delete %s: %w", fileID, err)
	}
	n.chunks.DeleteFile(ctx, partition, fileID)
	return nil
}

// Partitions implements transport.CompatBackend: every partition with a
// record (fsm/partitions.go) or with files. created is the record's
// creation, else (a partition implied by files, or a record made by
// configuring one) its earliest file version's submission.
func (n *Node) Partitions(ctx context.Context) ([]transport.PartitionView, error) {
	byName := map[string]*transport.PartitionView{}
	n.fsm.View(func(s *fsm.State) {
		for _, f := range s.Files {
			fv := fileView(s, f)
			p := byName[f.Partition]
			if p == nil {
				p = &transport.PartitionView{Name: f.Partition, Created: fv.Created}
				byName[f.Partition] = p
			}
			if fv.Created < p.Created {
				p.Created = fv.Created
			}
			p.Files = append(p.Files, fv)
		}
		for name, rec := range s.Partitions {
			p := byName[name]
			if p == nil {
				p = &transport.PartitionView{Name: name}
				byName[name] = p
			}
			if rec.Created != 0 {
				p.Created = rec.Created
			}
			p.Config = maps.Clone(rec.Config)
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
		return errs.Errorf(errs.NotFound, "partition %s not found", partition)
	}
	n.chunks.DeletePartition(ctx, partition)
	return nil
}
