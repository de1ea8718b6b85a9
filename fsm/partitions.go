package fsm

import (
	"fmt"
	"maps"
	"sort"
)

// Partitions are first-class ledger entries: created empty, configured,
// listed and deleted even when they hold no file.
//
// A partition exists when it has a record in State.Partitions or when a
// file names it. The second rule keeps snapshots and logs written before
// partition records existed meaning what they meant: their partitions are
// implied by their files and still appear, with no record until something
// (a configuration change) needs one. A submission never writes a record,
// so uploads cost what they did before.

// Partition is a partition's own record.
type Partition struct {
	Name string `json:"name"`
	// Created is when CmdCreatePartition committed (the proposer's clock);
	// 0 for a record made by configuring a partition that was only implied
	// by its files, whose creation time is then its earliest file's.
	Created int64 `json:"created,omitempty"`
	// Config holds the settings PATCH /partition/{p} stores (description,
	// presets, ...). ragnode keeps and returns them; it acts on none.
	Config map[string]any `json:"config,omitempty"`
}

// Partition commands.
const (
	// CmdCreatePartition records an empty partition; refused (CodeConflict)
	// when the partition exists, by record or by files.
	CmdCreatePartition CmdType = "create_partition"
	// CmdPartitionConfig merges Metadata into a partition's Config (a null
	// value deletes the key); the partition must exist, else the rejection
	// is ErrPartitionMissing.
	CmdPartitionConfig CmdType = "partition_config"
)

// CodePartitionMissing: the command needs a partition that does not exist.
const CodePartitionMissing Code = "partition_missing"

// ErrPartitionMissing matches rejections of CodePartitionMissing.
var ErrPartitionMissing error = sentinel(CodePartitionMissing, "partition not found")

// HasPartition reports whether a partition exists, by record or by files.
// It is linear in files when there is no record; callers on hot paths keep
// to records.
func (s *State) HasPartition(name string) bool {
	if _, ok := s.Partitions[name]; ok {
		return true
	}
	for _, f := range s.Files {
		if f.Partition == name {
			return true
		}
	}
	return false
}

// PartitionNames lists every existing partition, sorted.
func (s *State) PartitionNames() []string {
	seen := map[string]bool{}
	for name := range s.Partitions {
		seen[name] = true
	}
	for _, f := range s.Files {
		seen[f.Partition] = true
	}
	out := make([]string, 0, len(seen))
	for name := range seen {
		out = append(out, name)
	}
	sort.Strings(out)
	return out
}

// applyPartition is the apply switch's dispatch for partition commands.
func (s *State) applyPartition(c Command) Result {
	if c.Partition == "" {
		return rejectf(CodeInvalid, "%s without a partition", c.Type)
	}
	switch c.Type {
	case CmdCreatePartition:
		if s.HasPartition(c.Partition) {
			return rejectf(CodeConflict, "%s: partition %s already exists", ErrConflict, c.Partition)
		}
		if s.Partitions == nil {
			s.Partitions = map[string]*Partition{}
		}
		s.Partitions[c.Partition] = &Partition{Name: c.Partition, Created: c.Now, Config: mergeConfig(nil, c.Metadata)}
		return Result{Applied: 1}
	case CmdPartitionConfig:
		p := s.Partitions[c.Partition]
		if p == nil {
			if !s.HasPartition(c.Partition) {
				return reject(ErrPartitionMissing, c.Partition)
			}
			// Implied by its files: the record is made now, with no
			// creation time of its own (see Partition.Created).
			p = &Partition{Name: c.Partition}
			if s.Partitions == nil {
				s.Partitions = map[string]*Partition{}
			}
			s.Partitions[c.Partition] = p
		}
		// Copy on write, as file metadata: a snapshot being written may
		// still read the old map.
		p.Config = mergeConfig(p.Config, c.Metadata)
		return Result{Applied: 1}
	}
	return rejectf(CodeInvalid, "unknown partition command %q", c.Type)
}

// dropPartition removes a partition's record, returning 1 if there was one
// (CmdDeletePart counts it as deleted like a file).
func (s *State) dropPartition(name string) int {
	if _, ok := s.Partitions[name]; !ok {
		return 0
	}
	delete(s.Partitions, name)
	return 1
}

// mergeConfig returns a new map: old with patch merged in, null values
// deleting their key; nil when empty.
func mergeConfig(old, patch map[string]any) map[string]any {
	out := maps.Clone(old)
	if out == nil {
		out = map[string]any{}
	}
	for k, v := range patch {
		if v == nil {
			delete(out, k)
			continue
		}
		out[k] = v
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

// checkPartitions is CheckInvariants' part for partition records: each is
// keyed by its own non-empty name.
func (s *State) checkPartitions() error {
	for k, p := range s.Partitions {
		if p == nil || p.Name != k || k == "" {
			return fmt.Errorf("partition record %q is keyed %q", partName(p), k)
		}
	}
	return nil
}

func partName(p *Partition) string {
	if p == nil {
		return "<nil>"
	}
	return p.Name
}
