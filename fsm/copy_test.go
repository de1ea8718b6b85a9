package fsm

import (
	"errors"
	"testing"
)

// completedFile submits and completes one file with n chunks.
func completedFile(t *testing.T, s *State, idx *uint64, task, part, file string, n int) {
	t.Helper()
	next := func() uint64 { *idx++; return *idx }
	mustApply(t, s, next(), Command{Type: CmdRegisterNode, Node: node("n1", 0, 0)})
	sub := submitOne(task, part, file)
	sub.Tasks[0].File = FileRef{Hash: "h-" + task, Size: 10, Name: file + ".md"}
	mustApply(t, s, next(), sub)
	mustApply(t, s, next(), Command{Type: CmdBlobHolders, Blob: &Blob{Hash: "h-" + task, Size: 10, Holders: []string{"n1"}}})
	mustApply(t, s, next(), Command{Type: CmdAssignTasks, Assignments: []Assignment{{TaskID: task, Attempt: 1, NodeID: "n1", GPU: -1}}})
	if r := mustApply(t, s, next(), Command{Type: CmdCompleteTask, TaskID: task, Attempt: 1, Chunks: n, ChunkHolders: []string{"n1"}}); r.Rejected() {
		t.Fatal(r.Err)
	}
}

func copyCmd(srcTask, newTask string, chunks int, move bool) Command {
	return Command{Type: CmdCopyFile, Partition: "p", FileID: "f", TaskID: srcTask, Move: move, Now: 50,
		ChunkHolders: []string{"n2", "n1"},
		Tasks:        []Task{{ID: newTask, Partition: "q", FileID: "g", Chunks: chunks, Metadata: map[string]any{"a": "b"}}}}
}

func TestCopyFile(t *testing.T) {
	s := New()
	var idx uint64
	completedFile(t, s, &idx, "t1", "p", "f", 3)
	if r := mustApply(t, s, 10, copyCmd("stale", "t2", 3, false)); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("copy of a version that is not live: %+v", r)
	}
	if r := mustApply(t, s, 11, copyCmd("t1", "t2", 2, false)); !errors.Is(r.Error(), ErrConflict) {
		t.Fatalf("copy with a short chunk count: %+v", r)
	}
	if r := mustApply(t, s, 12, copyCmd("t1", "t2", 3, false)); r.Rejected() {
		t.Fatal(r.Err)
	}
	g := s.Files[FileKey("q", "g")]
	if g == nil || g.LiveTask != "t2" || g.LiveChunks != 3 || g.State != Completed || g.Ref.Hash != "h-t1" ||
		len(g.ChunkHolders) != 2 || g.ChunkHolders[0] != "n1" || g.Metadata["a"] != "b" {
		t.Fatalf("copy %+v", g)
	}
	if s.Files[FileKey("p", "f")] == nil || s.Tasks["t2"].State != Completed {
		t.Fatal("a copy removed its source or left its task open")
	}
	if r := mustApply(t, s, 13, copyCmd("t1", "t3", 3, false)); !errors.Is(r.Error(), ErrFileExists) {
		t.Fatalf("copy over an existing file: %+v", r)
	}
	// Deleting the source keeps the blob the copy uses.
	mustApply(t, s, 14, Command{Type: CmdDeleteFile, Partition: "p", FileID: "f"})
	if s.Blobs["h-t1"] == nil {
		t.Fatal("the copy's blob was dropped with its source")
	}
}

func TestMoveFile(t *testing.T) {
	s := New()
	var idx uint64
	completedFile(t, s, &idx, "t1", "p", "f", 2)
	if r := mustApply(t, s, 10, copyCmd("t1", "t2", 2, true)); r.Rejected() {
		t.Fatal(r.Err)
	}
	if s.Files[FileKey("p", "f")] != nil || s.Files[FileKey("q", "g")] == nil || s.Blobs["h-t1"] == nil {
		t.Fatalf("move: files %v blobs %v", s.Files, s.Blobs)
	}
	if r := mustApply(t, s, 11, copyCmd("t1", "t3", 2, true)); !errors.Is(r.Error(), ErrFileMissing) {
		t.Fatalf("move of a moved file: %+v", r)
	}
}
