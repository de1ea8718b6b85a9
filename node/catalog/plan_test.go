package catalog

import (
	"reflect"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

func TestDiff(t *testing.T) {
	rel := "r"
	u7, u8 := int64(7), int64(8)
	have := Have{
		Files: map[Key]Row{
			{"p", "same"}:    {Partition: "p", FileID: "same", Metadata: map[string]any{"a": 1.0}, CreatedBy: &u7},
			{"p", "changed"}: {Partition: "p", FileID: "changed", Metadata: map[string]any{"a": 1.0}},
			{"p", "gone"}:    {Partition: "p", FileID: "gone", CreatedBy: &u7},
			{"q", "gone"}:    {Partition: "q", FileID: "gone"},
		},
		Partitions: map[string]PartitionRow{"p": {Name: "p", Embedder: "default"}, "q": {Name: "q"}},
		Existing:   map[string]bool{"p": true, "q": true, "theirs": true},
		Jobs:       map[string]Job{"t1": {ID: "t1", Status: JobQueued}, "t2": {ID: "t2", Status: JobCompleted}},
	}
	want := View{
		Files: map[Key]Row{
			{"p", "same"}:    {Partition: "p", FileID: "same", Metadata: map[string]any{"a": 1.0}, CreatedBy: &u7},
			{"p", "changed"}: {Partition: "p", FileID: "changed", Metadata: map[string]any{"a": 1.0}, RelationshipID: &rel, CreatedBy: &u8},
			{"r", "new"}:     {Partition: "r", FileID: "new", CreatedBy: &u8},
		},
		Partitions: map[string]PartitionRow{"p": {Name: "p", Embedder: "e5"}, "r": {Name: "r"}, "theirs": {Name: "theirs"}},
		Jobs:       map[string]Job{"t1": {ID: "t1", Status: JobSerializing}, "t3": {ID: "t3", Status: JobQueued}},
	}
	p := Diff(have, want)
	if len(p.Upserts) != 2 || p.Upserts[0].FileID != "changed" || p.Upserts[1].FileID != "new" {
		t.Errorf("upserts %+v", p.Upserts)
	}
	if !reflect.DeepEqual(p.Deletes, []Key{{"p", "gone"}, {"q", "gone"}}) {
		t.Errorf("deletes %v", p.Deletes)
	}
	// theirs exists (OpenRAG's): neither added nor changed.
	if len(p.AddPartitions) != 1 || p.AddPartitions[0].Name != "r" || !reflect.DeepEqual(p.DropPartitions, []string{"q"}) ||
		len(p.UpdatePartitions) != 1 || p.UpdatePartitions[0].Embedder != "e5" {
		t.Errorf("partitions +%v ~%v -%v", p.AddPartitions, p.UpdatePartitions, p.DropPartitions)
	}
	if len(p.JobUpserts) != 2 || p.JobUpserts[0].ID != "t1" || p.JobUpserts[1].ID != "t3" || !reflect.DeepEqual(p.JobDeletes, []string{"t2"}) {
		t.Errorf("jobs +%v -%v", p.JobUpserts, p.JobDeletes)
	}
	// 7 lost "gone"; 8 gained "changed" and "new".
	if !reflect.DeepEqual(p.FileCounts, map[int64]int{7: -1, 8: 2}) {
		t.Errorf("file counts %v", p.FileCounts)
	}
	same := Have{Files: want.Files, Partitions: want.Partitions, Existing: map[string]bool{"p": true, "r": true, "theirs": true}, Jobs: want.Jobs}
	if !Diff(same, want).Empty() {
		t.Error("a catalog equal to the ledger has a plan")
	}
}

func TestWantMapsOpenRAGColumns(t *testing.T) {
	w := WantFiles(map[string]*fsm.File{
		"k1": {Partition: "p", FileID: "f", LiveTask: "t", LiveChunks: 4, Updated: t0, Ref: fsm.FileRef{Name: "f.pdf", Size: 7, Hash: "h1"},
			Metadata: map[string]any{"relationship_id": "thread", "parent_id": "", "n": 3}},
		"k2": {Partition: "p", FileID: "pending"},
		// The same bytes under another ID: the first by ID keeps the hash.
		"k3": {Partition: "p", FileID: "g", LiveTask: "t3", Ref: fsm.FileRef{Name: "g.pdf", Hash: "h1"}},
		"k4": {Partition: "other", FileID: "g", LiveTask: "t4", Ref: fsm.FileRef{Name: "g.pdf", Hash: "h1"}},
	}, Options{IndexationConfig: map[string]any{"chunk_size": 512}})
	r, ok := w[Key{"p", "f"}]
	if len(w) != 3 || !ok {
		t.Fatalf("want %v", w)
	}
	if r.RelationshipID == nil || *r.RelationshipID != "thread" || r.ParentID != nil {
		t.Errorf("relationship %v parent %v", r.RelationshipID, r.ParentID)
	}
	if r.Metadata["filename"] != "f.pdf" || r.Metadata["file_size"] != 7.0 || r.Metadata["n"] != 3.0 || r.Metadata[OwnerKey] != OwnerValue {
		t.Errorf("metadata %v", r.Metadata)
	}
	if r.ChunkCount != 4 || !r.IndexedAt.Equal(time.Unix(0, t0)) || r.Task != "t" || r.IndexationConfig["chunk_size"] != 512.0 {
		t.Errorf("columns %+v", r)
	}
	if r.ContentSHA256 == nil || *r.ContentSHA256 != "h1" || w[Key{"p", "g"}].ContentSHA256 != nil ||
		w[Key{"other", "g"}].ContentSHA256 == nil {
		t.Errorf("content hashes: f %v, p/g %v, other/g %v", r.ContentSHA256, w[Key{"p", "g"}].ContentSHA256, w[Key{"other", "g"}].ContentSHA256)
	}
}

func TestSnapshotPartitionsAndJobs(t *testing.T) {
	s := stateOf(file("docs", "a", nil))
	s.Partitions = map[string]*fsm.Partition{
		"empty": {Name: "empty", Created: t0 + 9e9, Config: map[string]any{"description": "Team", "chat_history_depth": 4.0, "chat_llm": "big"}},
	}
	s.Tasks["q"] = &fsm.Task{ID: "q", Partition: "docs", FileID: "b", State: fsm.Queued, Submitted: t0}
	s.Tasks["r"] = &fsm.Task{ID: "r", Partition: "docs", FileID: "c", State: fsm.Running, Stage: fsm.StageEmbedding, Submitted: t0, Started: t0 + 1}
	s.Tasks["f"] = &fsm.Task{ID: "f", Partition: "docs", FileID: "d", State: fsm.Failed, Error: "boom", Submitted: t0, Finished: t0 + 2}
	s.Tasks["x"] = &fsm.Task{ID: "x", Partition: "docs", FileID: "e", State: fsm.Cancelled, Submitted: t0, Finished: t0 + 3}
	v := Snapshot(s, Options{Dimension: 384, CollectionName: "vdb"})
	e := v.Partitions["empty"]
	if len(v.Partitions) != 2 || e.Description != "Team" || e.ChatHistoryDepth != 4 || e.ChatLLM == nil || *e.ChatLLM != "big" ||
		e.Dimension != 384 || e.CollectionName == nil || *e.CollectionName != "vdb" || e.Embedder != "default" || !e.Created.Equal(time.Unix(0, t0+9e9)) {
		t.Errorf("partitions %+v", v.Partitions)
	}
	if d := v.Partitions["docs"]; !d.Created.Equal(time.Unix(0, t0)) || d.Description != "" {
		t.Errorf("docs %+v", d)
	}
	status := map[string]string{}
	for id, j := range v.Jobs {
		status[id] = j.Status
	}
	if !reflect.DeepEqual(status, map[string]string{"t-docs-a": JobCompleted, "q": JobQueued, "r": JobSerializing, "f": JobFailed, "x": JobCancelled}) {
		t.Errorf("job states %v", status)
	}
	if f := v.Jobs["f"]; f.Error == nil || *f.Error != "boom" || f.Completed == nil || f.Started != nil {
		t.Errorf("failed job %+v", f)
	}
	if q := v.Jobs["q"]; q.Completed != nil || q.Error != nil || q.Filename != "" {
		t.Errorf("queued job %+v", q)
	}
}
