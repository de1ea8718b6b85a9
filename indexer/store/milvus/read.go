package milvus

import (
	"context"
	"sort"

	"github.com/ragnode/ragnode/indexer/store"
)

// FileRecords returns a file's chunks with their vectors, ordered by index.
func (s *Store) FileRecords(ctx context.Context, partition, fileID string) ([]store.Record, error) {
	var out []store.Record
	seen := map[string]bool{}
	if err := s.scan(ctx, fileExpr(partition, fileID), rowPage, true, func(r row) {
		if !seen[r.ID] {
			seen[r.ID] = true
			out = append(out, r.Record)
		}
	}); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Index < out[j].Index })
	return out, nil
}

// Record returns the chunk with that ID, vector included; false when none.
func (s *Store) Record(ctx context.Context, id string) (store.Record, bool, error) {
	var rec store.Record
	found := false
	key := fID
	if s.prof.upstream() {
		key = kChunkID
	}
	err := s.scan(ctx, eq(key, id), 1, true, func(r row) {
		if r.ID == id && !found {
			rec, found = r.Record, true
		}
	})
	return rec, found, err
}
