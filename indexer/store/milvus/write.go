package milvus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/milvus-io/milvus/client/v2/milvusclient"

	"github.com/ragnode/ragnode/indexer/store"
)

// Upsert writes recs in batches; within one call the last record of an ID
// wins. In the ragnode profile it is a Milvus upsert by chunk ID. In the
// upstream profiles, whose keys Milvus assigns, it inserts the rows under a
// new write ID and then deletes the older rows of the same chunk IDs (the
// replacement step of ReplaceFile, scoped to the chunks written). A
// failure part-way may leave earlier batches written; upserting the same
// records again is the remedy.
func (s *Store) Upsert(ctx context.Context, recs []store.Record) error {
	return s.upsert(ctx, recs, nil)
}

// upsert is Upsert; tags, when not nil, are the rows' own fence tags, kept
// (UpdateMetadata rewrites rows without changing which write they count as).
func (s *Store) upsert(ctx context.Context, recs []store.Record, tags []fenceTag) error {
	if tags != nil && len(tags) != len(recs) {
		return errors.New("milvus: one tag per record")
	}
	rows, err := s.dedupe(recs)
	if err != nil {
		return err
	}
	if tags != nil && len(rows) != len(recs) {
		return errors.New("milvus: a rewrite of rows has duplicate chunk IDs")
	}
	if !s.prof.upstream() {
		for start := 0; start < len(rows); start += writeBatch {
			cols, err := s.columns(rows[start:min(start+writeBatch, len(rows))], fenceTag{}, nil, nil)
			if err != nil {
				return err
			}
			if _, err := s.c.Upsert(ctx, milvusclient.NewColumnBasedInsertOption(s.coll, cols...)); err != nil {
				return fmt.Errorf("milvus: upsert into %s: %w", s.coll, err)
			}
		}
		return nil
	}
	tag := fenceTag{write: newWriteID()}
	byFile := map[[2]string][]*store.Record{}
	for _, r := range rows {
		k := [2]string{r.Partition, r.FileID}
		byFile[k] = append(byFile[k], r)
		if t, ok := r.Metadata[metaTask].(string); ok && tag.task == "" {
			tag.task = t
		}
	}
	if err := s.insert(ctx, rows, tag, tags); err != nil {
		return err
	}
	for k, rs := range byFile {
		ids := make([]string, len(rs))
		for i, r := range rs {
			ids[i] = r.ID
		}
		for start := 0; start < len(ids); start += writeBatch {
			expr := and(fileExpr(k[0], k[1]), inList(kChunkID, ids[start:min(start+writeBatch, len(ids))]), fWriteNot(tag.write))
			if err := s.delete(ctx, expr); err != nil {
				return err
			}
		}
	}
	return nil
}

// metaTask is indexer.MetaTask, the metadata key naming the writing task
// (not imported: indexer imports store, and this package is a store).
const metaTask = "_task"

func fWriteNot(w string) string { return kWrite + " != " + quote(w) }

func (s *Store) dedupe(recs []store.Record) ([]*store.Record, error) {
	last := make(map[string]int, len(recs))
	for i := range recs {
		if err := s.validate(&recs[i]); err != nil {
			return nil, err
		}
		last[recs[i].ID] = i
	}
	rows := make([]*store.Record, 0, len(last))
	for i := range recs {
		if last[recs[i].ID] == i {
			rows = append(rows, &recs[i])
		}
	}
	return rows, nil
}

func (s *Store) insert(ctx context.Context, rows []*store.Record, tag fenceTag, tags []fenceTag) error {
	// One indexed_at and one view of each file's last chunk for the whole
	// write, whatever batches it is sent in.
	if tag.indexedAt == "" {
		tag.indexedAt = time.Now().UTC().Format(isoMicros)
	}
	last := lastIndexes(rows)
	for start := 0; start < len(rows); start += writeBatch {
		var batchTags []fenceTag
		if tags != nil {
			batchTags = tags[start:min(start+writeBatch, len(rows))]
		}
		cols, err := s.columns(rows[start:min(start+writeBatch, len(rows))], tag, batchTags, last)
		if err != nil {
			return err
		}
		if _, err := s.c.Insert(ctx, milvusclient.NewColumnBasedInsertOption(s.coll, cols...)); err != nil {
			return fmt.Errorf("milvus: insert into %s: %w", s.coll, err)
		}
	}
	return nil
}

func newWriteID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func (s *Store) validate(r *store.Record) error {
	maxName := maxNameLen
	if s.prof.upstream() {
		maxName = upstreamLen
	}
	switch {
	case r.ID == "" || len(r.ID) > maxIDLen:
		return fmt.Errorf("milvus: record ID %q must be 1-%d bytes", r.ID, maxIDLen)
	case r.Partition == "" || len(r.Partition) > maxName:
		return fmt.Errorf("milvus: record %s: partition must be 1-%d bytes", r.ID, maxName)
	case r.FileID == "" || len(r.FileID) > maxName:
		return fmt.Errorf("milvus: record %s: file ID must be 1-%d bytes", r.ID, maxName)
	case len(r.Text) > maxTextLen:
		return fmt.Errorf("milvus: record %s: text is %d bytes, the collection holds at most %d", r.ID, len(r.Text), maxTextLen)
	case len(r.Vector) != s.dim:
		return fmt.Errorf("milvus: record %s has dimension %d, collection %s has dimension %d", r.ID, len(r.Vector), s.coll, s.dim)
	}
	return nil
}

// DeleteFile removes every chunk of the file.
func (s *Store) DeleteFile(ctx context.Context, partition, fileID string) error {
	if partition == "" || fileID == "" {
		return errors.New("milvus: delete needs a partition and a file ID")
	}
	return s.delete(ctx, fileExpr(partition, fileID))
}

// DeleteFileFrom removes the file's chunks with Index >= fromIndex.
func (s *Store) DeleteFileFrom(ctx context.Context, partition, fileID string, fromIndex int) error {
	if partition == "" || fileID == "" {
		return errors.New("milvus: delete needs a partition and a file ID")
	}
	idx := fIdx
	if s.prof.upstream() {
		idx = kChunkIndex
	}
	return s.delete(ctx, and(fileExpr(partition, fileID), fmt.Sprintf("%s >= %d", idx, fromIndex)))
}

// DeletePartition removes every chunk of the partition.
func (s *Store) DeletePartition(ctx context.Context, partition string) error {
	if partition == "" {
		return errors.New("milvus: delete needs a partition")
	}
	return s.delete(ctx, eq(fPartition, partition))
}

func (s *Store) delete(ctx context.Context, expr string) error {
	if _, err := s.c.Delete(ctx, milvusclient.NewDeleteOption(s.coll).WithExpr(expr)); err != nil {
		return fmt.Errorf("milvus: delete from %s where %s: %w", s.coll, expr, err)
	}
	return nil
}

// UpdateMetadata reads the file's rows with their vectors and writes them
// again with merged metadata; a nil value removes the key.
func (s *Store) UpdateMetadata(ctx context.Context, partition, fileID string, meta map[string]any) error {
	var recs []store.Record
	var tags []fenceTag
	seen := map[string]bool{}
	err := s.scan(ctx, fileExpr(partition, fileID), rowPage, true, func(r row) {
		if seen[r.ID] {
			return // a replacement's window: its delete removes the other copy
		}
		seen[r.ID] = true
		m := make(map[string]any, len(r.Metadata)+len(meta))
		for k, v := range r.Metadata {
			m[k] = v
		}
		for k, v := range meta {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		r.Metadata = m
		recs = append(recs, r.Record)
		tags = append(tags, r.tag)
	})
	if err != nil {
		return err
	}
	if !s.prof.upstream() {
		tags = nil
	}
	return s.upsert(ctx, recs, tags)
}

// ChunkIDs lists chunk IDs, sorted; empty partition or fileID match all.
func (s *Store) ChunkIDs(ctx context.Context, partition, fileID string) ([]string, error) {
	var conds []string
	if partition != "" {
		conds = append(conds, eq(fPartition, partition))
	}
	if fileID != "" {
		conds = append(conds, eq(fFileID, fileID))
	}
	seen := map[string]bool{}
	ids := []string{}
	err := s.scan(ctx, and(conds...), idPage, false, func(r row) {
		// Upstream, a reader may catch a replacement between its insert
		// and its delete; a chunk is listed once.
		if !seen[r.ID] {
			seen[r.ID] = true
			ids = append(ids, r.ID)
		}
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	return ids, nil
}
