// Package catalog mirrors the ledger's files into OpenRAG's PostgreSQL
// catalog (tables partitions and files, as OpenRAG's models define them),
// so that OpenRAG's partition and file routes read what ragnode indexed.
//
// Guarantees: the catalog is written only from the replicated ledger (the
// leader's applied state), never from a request; each sync is one database
// transaction that also stores the Raft index it reflects, and a sync at an
// index below the stored one is refused, so a leader change neither skips
// a change (the new leader syncs its full state, which includes every
// committed change) nor applies an older view over a newer one (a deposed
// leader's late sync is refused). A sync killed half-way rolls back whole.
//
// This file is the pure part: which rows the ledger wants and how they
// differ from the rows the database has. mirror.go does the I/O.
package catalog

import (
	"encoding/json"
	"reflect"
	"sort"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// Row is one files row: a (partition, file ID) and what OpenRAG keeps of
// it. RelationshipID and ParentID come from the file's metadata keys of
// the same names, as OpenRAG's indexer takes them.
type Row struct {
	Partition      string
	FileID         string
	Metadata       map[string]any
	RelationshipID *string
	ParentID       *string
}

// OwnerKey and OwnerValue mark the files rows ragnode manages, so rows
// OpenRAG's own indexer wrote are never touched.
const (
	OwnerKey   = "indexed_by"
	OwnerValue = "ragnode"
)

// Key identifies a row.
type Key struct{ Partition, FileID string }

// Want returns the rows the ledger holds: every file with live chunks (a
// completed task), keyed by partition and file ID. file_metadata is the
// file's metadata plus filename, file_size, partition, file_id and
// indexed_at, as OpenRAG stores them.
func Want(files map[string]*fsm.File) map[Key]Row {
	out := make(map[Key]Row, len(files))
	for _, f := range files {
		if f == nil || f.LiveTask == "" {
			continue
		}
		meta := make(map[string]any, len(f.Metadata)+2)
		for k, v := range f.Metadata {
			meta[k] = v
		}
		// The keys OpenRAG's own indexer stores with a file.
		meta["filename"] = f.Ref.Name
		meta["file_size"] = f.Ref.Size
		meta["partition"], meta["file_id"] = f.Partition, f.FileID
		if f.Updated > 0 {
			meta["indexed_at"] = time.Unix(0, f.Updated).UTC().Format(time.RFC3339Nano)
		}
		meta[OwnerKey] = OwnerValue
		r := Row{Partition: f.Partition, FileID: f.FileID, Metadata: normalize(meta)}
		r.RelationshipID = strPtr(f.Metadata["relationship_id"])
		r.ParentID = strPtr(f.Metadata["parent_id"])
		out[Key{f.Partition, f.FileID}] = r
	}
	return out
}

func strPtr(v any) *string {
	s, ok := v.(string)
	if !ok || s == "" {
		return nil
	}
	return &s
}

// normalize round-trips metadata through JSON so that it compares equal to
// what the database gives back (numbers as float64).
func normalize(m map[string]any) map[string]any {
	b, err := json.Marshal(m)
	if err != nil {
		return m
	}
	var out map[string]any
	if json.Unmarshal(b, &out) != nil {
		return m
	}
	return out
}

// Plan is what one sync changes.
type Plan struct {
	Upserts        []Row    // new or changed files rows
	Deletes        []Key    // files rows the ledger no longer has
	AddPartitions  []string // partitions rows to create
	DropPartitions []string // partitions left without files
}

// Empty reports a plan that changes nothing.
func (p Plan) Empty() bool {
	return len(p.Upserts) == 0 && len(p.Deletes) == 0 && len(p.AddPartitions) == 0 && len(p.DropPartitions) == 0
}

// Diff computes the plan that turns have (the ragnode rows in the
// database) and ownedPartitions (the partitions rows ragnode created) into
// want. Partitions follow their files: a partition ragnode created goes
// with its last file, as in ragnode's ledger; one OpenRAG created stays.
// The result is sorted, so a plan is deterministic.
func Diff(have map[Key]Row, ownedPartitions []string, want map[Key]Row) Plan {
	var p Plan
	for k, w := range want {
		h, ok := have[k]
		if !ok || !sameRow(h, w) {
			p.Upserts = append(p.Upserts, w)
		}
	}
	for k := range have {
		if _, ok := want[k]; !ok {
			p.Deletes = append(p.Deletes, k)
		}
	}
	wantParts := map[string]bool{}
	for k := range want {
		wantParts[k.Partition] = true
	}
	hp := map[string]bool{}
	for _, name := range ownedPartitions {
		hp[name] = true
		if !wantParts[name] {
			p.DropPartitions = append(p.DropPartitions, name)
		}
	}
	for name := range wantParts {
		if !hp[name] {
			p.AddPartitions = append(p.AddPartitions, name)
		}
	}
	sort.Slice(p.Upserts, func(i, j int) bool { return less(keyOf(p.Upserts[i]), keyOf(p.Upserts[j])) })
	sort.Slice(p.Deletes, func(i, j int) bool { return less(p.Deletes[i], p.Deletes[j]) })
	sort.Strings(p.AddPartitions)
	sort.Strings(p.DropPartitions)
	return p
}

func keyOf(r Row) Key { return Key{r.Partition, r.FileID} }

func less(a, b Key) bool {
	if a.Partition != b.Partition {
		return a.Partition < b.Partition
	}
	return a.FileID < b.FileID
}

func sameRow(a, b Row) bool {
	return reflect.DeepEqual(a.Metadata, b.Metadata) && eqPtr(a.RelationshipID, b.RelationshipID) && eqPtr(a.ParentID, b.ParentID)
}

func eqPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}
