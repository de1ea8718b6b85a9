// Package catalog mirrors the ledger into OpenRAG's PostgreSQL catalog
// (its partitions, files and jobs tables, as OpenRAG's newest models
// define them: schema.go), so that OpenRAG's routes, UIs and quotas read
// what ragnode indexed; and it reads OpenRAG's users and memberships for
// the nodes' authorization (users.go).
//
// Guarantees: partitions, files and jobs rows are written only from the
// replicated ledger (the leader's applied state), never from a request;
// each sync is one database transaction that also stores the Raft index
// it reflects, and a sync at an index below the stored one is refused, so
// a leader change neither skips a change (the new leader syncs its full
// state, which includes every committed change) nor applies an older view
// over a newer one (a deposed leader's late sync is refused). A sync
// killed half-way rolls back whole. Rows OpenRAG itself wrote are never
// changed. What a request adds is only who made it: the uploading user of
// a task's jobs row and the creator of a partition, which the next sync
// turns into files.created_by, users.file_count and the creator's owner
// membership.
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
	// ContentSHA256 is the SHA-256 of the file's bytes (its blob's name),
	// OpenRAG's duplicate detection, unique in a partition: nil for a file
	// whose content another file of the partition already has.
	ContentSHA256 *string
	ChunkCount    int
	// IndexedAt is when the live version's indexing completed.
	IndexedAt time.Time
	// IndexationConfig is how the file was indexed (Options).
	IndexationConfig map[string]any
	// Task is the task whose chunks are live; its jobs row names the
	// uploader. Not a column.
	Task string
	// CreatedBy is the uploader's OpenRAG user, filled in by Sync from the
	// jobs rows (nil: a ragnode token with no OpenRAG admin, or unknown).
	CreatedBy *int64
}

// PartitionRow is one partitions row ragnode created: the ledger's
// partition with the settings PATCH /partition/{p} stored.
type PartitionRow struct {
	Name             string
	Created          time.Time // written once, never compared
	Description      string
	Embedder         string
	IndexationPreset string
	RetrievalPreset  string
	Dimension        int
	CollectionName   *string
	ChatHistoryDepth int
	ChatLLM          *string
}

// Job is one jobs row: a ledger task in OpenRAG's job vocabulary. Its
// user_id column is the request's (see the package doc), never Sync's.
type Job struct {
	ID        string
	Partition string
	FileID    string
	Filename  string
	Status    string
	Error     *string
	Created   time.Time
	Started   *time.Time
	Completed *time.Time
}

// OpenRAG's job states (core.models.catalog.DocumentStatus): it folds
// every running stage into SERIALIZING.
const (
	JobQueued      = "QUEUED"
	JobSerializing = "SERIALIZING"
	JobCompleted   = "COMPLETED"
	JobFailed      = "FAILED"
	JobCancelled   = "CANCELLED"
)

// maxJobError bounds a stored error, as OpenRAG truncates its own.
const maxJobError = 4000

// OwnerKey and OwnerValue mark the files rows ragnode manages, so rows
// OpenRAG's own indexer wrote are never touched.
const (
	OwnerKey   = "indexed_by"
	OwnerValue = "ragnode"
)

// Key identifies a files row.
type Key struct{ Partition, FileID string }

// Options are the node's settings the rows carry.
type Options struct {
	// Dimension is the embedder's vector size (partitions.dimension; 0
	// keeps OpenRAG's default).
	Dimension int
	// CollectionName is the vector store collection, when there is one.
	CollectionName string
	// IndexationConfig is stored with every file (files.indexation_config).
	IndexationConfig map[string]any
}

// View is everything a sync makes the catalog reflect.
type View struct {
	Files      map[Key]Row
	Partitions map[string]PartitionRow
	Jobs       map[string]Job
}

// Snapshot is the view of the ledger state s. Call it inside fsm.View.
func Snapshot(s *fsm.State, o Options) View {
	v := View{Files: WantFiles(s.Files, o), Partitions: map[string]PartitionRow{}, Jobs: map[string]Job{}}
	created := map[string]int64{}
	for _, f := range s.Files {
		if f == nil || f.LiveTask == "" {
			continue
		}
		at := f.Updated
		if t := s.Tasks[f.LiveTask]; t != nil && t.Submitted > 0 {
			at = t.Submitted
		}
		if c, ok := created[f.Partition]; !ok || at < c {
			created[f.Partition] = at
		}
	}
	for name, rec := range s.Partitions {
		if rec != nil && rec.Created > 0 {
			created[name] = rec.Created
		} else if _, ok := created[name]; !ok {
			created[name] = 0
		}
	}
	for name, at := range created {
		var cfg map[string]any
		if rec := s.Partitions[name]; rec != nil {
			cfg = rec.Config
		}
		v.Partitions[name] = partitionRow(name, at, cfg, o)
	}
	for id, t := range s.Tasks {
		if t == nil {
			continue
		}
		v.Jobs[id] = jobOf(t)
	}
	return v
}

// partitionRow is a partition's row; cfg holds PATCH /partition/{p}'s
// keys, OpenRAG's defaults standing for those never set.
func partitionRow(name string, created int64, cfg map[string]any, o Options) PartitionRow {
	str := func(k, def string) string {
		if s, ok := cfg[k].(string); ok {
			return s
		}
		return def
	}
	opt := func(k string) *string {
		if s, ok := cfg[k].(string); ok && s != "" {
			return &s
		}
		return nil
	}
	p := PartitionRow{
		Name: name, Created: ledgerTime(created),
		Description: str("description", ""), Embedder: str("embedder", "default"),
		IndexationPreset: str("indexation_preset", "default"), RetrievalPreset: str("retrieval_preset", "default"),
		Dimension: o.Dimension, ChatLLM: opt("chat_llm"),
	}
	if p.Dimension <= 0 {
		p.Dimension = 1024 // OpenRAG's column default
	}
	if n, ok := number(cfg["chat_history_depth"]); ok {
		p.ChatHistoryDepth = n
	}
	if o.CollectionName != "" {
		c := o.CollectionName
		p.CollectionName = &c
	}
	return p
}

func number(v any) (int, bool) {
	switch n := v.(type) {
	case float64:
		return int(n), true
	case int:
		return n, true
	case int64:
		return int(n), true
	case json.Number:
		i, err := n.Int64()
		return int(i), err == nil
	}
	return 0, false
}

// jobOf is a task's jobs row.
func jobOf(t *fsm.Task) Job {
	j := Job{ID: t.ID, Partition: t.Partition, FileID: t.FileID, Filename: t.File.Name,
		Status: jobStatus(t.State), Created: ledgerTime(t.Submitted)}
	if t.Started > 0 {
		s := ledgerTime(t.Started)
		j.Started = &s
	}
	if t.Finished > 0 && t.State.Terminal() {
		c := ledgerTime(t.Finished)
		j.Completed = &c
	}
	if t.Error != "" && (t.State == fsm.Failed || t.State == fsm.Cancelled) {
		e := t.Error
		if r := []rune(e); len(r) > maxJobError {
			e = string(r[:maxJobError])
		}
		j.Error = &e
	}
	return j
}

func jobStatus(s fsm.TaskState) string {
	switch s {
	case fsm.Running:
		return JobSerializing
	case fsm.Completed:
		return JobCompleted
	case fsm.Failed:
		return JobFailed
	case fsm.Cancelled:
		return JobCancelled
	}
	return JobQueued // queued, assigned, prefetched: not started
}

// ledgerTime is a ledger time (Unix nanoseconds) as PostgreSQL keeps it:
// UTC, microseconds.
func ledgerTime(ns int64) time.Time {
	if ns <= 0 {
		return time.Unix(0, 0).UTC()
	}
	return time.Unix(0, ns).UTC().Truncate(time.Microsecond)
}

// Want returns the files rows the ledger holds with no node options.
func Want(files map[string]*fsm.File) map[Key]Row { return WantFiles(files, Options{}) }

// WantFiles returns the files rows the ledger holds: every file with live
// chunks (a completed task), keyed by partition and file ID.
// file_metadata is the file's metadata plus filename, file_size,
// partition, file_id and indexed_at, as OpenRAG stores them.
func WantFiles(files map[string]*fsm.File, o Options) map[Key]Row {
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
		r := Row{Partition: f.Partition, FileID: f.FileID, Metadata: normalize(meta),
			ChunkCount: f.LiveChunks, IndexedAt: ledgerTime(f.Updated), Task: f.LiveTask}
		if r.ChunkCount == 0 {
			r.ChunkCount = f.Chunks
		}
		if o.IndexationConfig != nil {
			r.IndexationConfig = normalize(o.IndexationConfig)
		}
		r.RelationshipID = strPtr(f.Metadata["relationship_id"])
		r.ParentID = strPtr(f.Metadata["parent_id"])
		r.ContentSHA256 = strPtr(f.Ref.Hash)
		out[Key{f.Partition, f.FileID}] = r
	}
	dedupeContent(out, nil)
	return out
}

// dedupeContent keeps one content hash per partition: the file that comes
// first by ID keeps it, the others get none, so the catalog's unique index
// holds (ragnode itself allows two file IDs with the same bytes). taken
// holds the (partition, hash) pairs rows ragnode does not own already use.
func dedupeContent(rows map[Key]Row, taken map[Key]bool) {
	keys := make([]Key, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return less(keys[i], keys[j]) })
	seen := map[Key]bool{}
	for _, k := range keys {
		r := rows[k]
		if r.ContentSHA256 == nil {
			continue
		}
		hk := Key{r.Partition, *r.ContentSHA256}
		if seen[hk] || taken[hk] {
			r.ContentSHA256 = nil
			rows[k] = r
			continue
		}
		seen[hk] = true
	}
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
	Upserts          []Row          // new or changed files rows
	Deletes          []Key          // files rows the ledger no longer has
	AddPartitions    []PartitionRow // partitions rows to create
	UpdatePartitions []PartitionRow // settings changed on rows ragnode created
	DropPartitions   []string       // ragnode's partitions the ledger no longer has
	JobUpserts       []Job          // new or changed jobs rows
	JobDeletes       []string       // jobs the ledger dropped
	// FileCounts is the change of each user's users.file_count, as
	// OpenRAG keeps it: +1 for a file row the user uploaded, -1 when the
	// row goes.
	FileCounts map[int64]int
}

// Empty reports a plan that changes nothing.
func (p Plan) Empty() bool {
	return len(p.Upserts) == 0 && len(p.Deletes) == 0 && len(p.AddPartitions) == 0 && len(p.UpdatePartitions) == 0 &&
		len(p.DropPartitions) == 0 && len(p.JobUpserts) == 0 && len(p.JobDeletes) == 0 && len(p.FileCounts) == 0
}

// Have is what the catalog holds of ragnode's rows.
type Have struct {
	Files map[Key]Row
	// Partitions are the rows ragnode created (with their settings);
	// Existing names every partitions row, whoever wrote it.
	Partitions map[string]PartitionRow
	Existing   map[string]bool
	Jobs       map[string]Job
}

// Diff computes the plan that turns have into want. Partitions follow
// the ledger: a partition ragnode created goes when the ledger has it no
// more; one OpenRAG created stays and keeps its settings. The result is
// sorted, so a plan is deterministic.
func Diff(have Have, want View) Plan {
	var p Plan
	counts := map[int64]int{}
	for k, w := range want.Files {
		h, ok := have.Files[k]
		if !ok || !sameRow(h, w) {
			p.Upserts = append(p.Upserts, w)
		}
		if !ok || !eqID(h.CreatedBy, w.CreatedBy) {
			if ok && h.CreatedBy != nil {
				counts[*h.CreatedBy]--
			}
			if w.CreatedBy != nil {
				counts[*w.CreatedBy]++
			}
		}
	}
	for k, h := range have.Files {
		if _, ok := want.Files[k]; !ok {
			p.Deletes = append(p.Deletes, k)
			if h.CreatedBy != nil {
				counts[*h.CreatedBy]--
			}
		}
	}
	for u, n := range counts {
		if n != 0 {
			if p.FileCounts == nil {
				p.FileCounts = map[int64]int{}
			}
			p.FileCounts[u] = n
		}
	}
	for name, w := range want.Partitions {
		h, owned := have.Partitions[name]
		switch {
		case owned && !samePartition(h, w):
			p.UpdatePartitions = append(p.UpdatePartitions, w)
		case !owned && !have.Existing[name]:
			p.AddPartitions = append(p.AddPartitions, w)
		}
	}
	for name := range have.Partitions {
		if _, ok := want.Partitions[name]; !ok {
			p.DropPartitions = append(p.DropPartitions, name)
		}
	}
	for id, w := range want.Jobs {
		if h, ok := have.Jobs[id]; !ok || !sameJob(h, w) {
			p.JobUpserts = append(p.JobUpserts, w)
		}
	}
	for id := range have.Jobs {
		if _, ok := want.Jobs[id]; !ok {
			p.JobDeletes = append(p.JobDeletes, id)
		}
	}
	sort.Slice(p.Upserts, func(i, j int) bool { return less(keyOf(p.Upserts[i]), keyOf(p.Upserts[j])) })
	sort.Slice(p.Deletes, func(i, j int) bool { return less(p.Deletes[i], p.Deletes[j]) })
	byName := func(ps []PartitionRow) {
		sort.Slice(ps, func(i, j int) bool { return ps[i].Name < ps[j].Name })
	}
	byName(p.AddPartitions)
	byName(p.UpdatePartitions)
	sort.Strings(p.DropPartitions)
	sort.Slice(p.JobUpserts, func(i, j int) bool { return p.JobUpserts[i].ID < p.JobUpserts[j].ID })
	sort.Strings(p.JobDeletes)
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
	return reflect.DeepEqual(a.Metadata, b.Metadata) && eqPtr(a.RelationshipID, b.RelationshipID) && eqPtr(a.ParentID, b.ParentID) &&
		eqPtr(a.ContentSHA256, b.ContentSHA256) && a.ChunkCount == b.ChunkCount && a.IndexedAt.Equal(b.IndexedAt) &&
		reflect.DeepEqual(a.IndexationConfig, b.IndexationConfig) && eqID(a.CreatedBy, b.CreatedBy)
}

func samePartition(a, b PartitionRow) bool {
	return a.Description == b.Description && a.Embedder == b.Embedder && a.IndexationPreset == b.IndexationPreset &&
		a.RetrievalPreset == b.RetrievalPreset && a.Dimension == b.Dimension && eqPtr(a.CollectionName, b.CollectionName) &&
		a.ChatHistoryDepth == b.ChatHistoryDepth && eqPtr(a.ChatLLM, b.ChatLLM)
}

func sameJob(a, b Job) bool {
	return a.Partition == b.Partition && a.FileID == b.FileID && a.Filename == b.Filename && a.Status == b.Status &&
		eqPtr(a.Error, b.Error) && a.Created.Equal(b.Created) && eqTime(a.Started, b.Started) && eqTime(a.Completed, b.Completed)
}

func eqPtr(a, b *string) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func eqID(a, b *int64) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

func eqTime(a, b *time.Time) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Equal(*b)
}
