package milvus

import (
	"context"
	"sort"

	"github.com/ragnode/ragnode/indexer/store"
)

// FileRecords returns a file's chunks with their vectors, ordered by index.
func (s *Store) FileRecords(ctx context.Context, partition, fileID string) ([]store.Record, error) {
	var out []store.Record
	if err := s.scan(ctx, fileExpr(partition, fileID), rowPage, true, func(r store.Record) { out = append(out, r) }); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// Record returns the chunk with that ID, vector included; false when none.
func (s *Store) Record(ctx context.Context, id string) (store.Record, bool, error) {
	var rec store.Record
	found := false
	err := s.scan(ctx, eq(fID, id), 1, true, func(r store.Record) {
		if r.ID == id {
			rec, found = r, true
		}
	})
	return rec, found, err
}
