package fsm

import "sort"

// Copies and moves of indexed files (openrag's POST .../file/{id}/copy and
// PATCH with a "partition" key). The node writes the copy's chunks first,
// taken from the source's stored chunks (vectors included, so nothing is
// embedded again), then commits CmdCopyFile: a new file version whose task
// is already completed, live with the chunks written. The source version
// must still be the live one that was read, so a copy never mixes two
// versions; with Move the source file is deleted in the same Apply.

// CmdCopyFile: Partition/FileID name the source, TaskID its live task as
// read, Tasks[0] the new version (ID, Partition, FileID, Metadata, Chunks;
// its File ref is the source's), ChunkHolders the nodes holding the
// written chunks, Move whether the source goes.
const CmdCopyFile CmdType = "copy_file"

func (s *State) applyCopy(c Command) Result {
	if len(c.Tasks) != 1 || c.Tasks[0].ID == "" {
		return rejectf(CodeInvalid, "copy_file needs exactly one new task")
	}
	in := c.Tasks[0]
	src := s.Files[FileKey(c.Partition, c.FileID)]
	if src == nil {
		return reject(ErrFileMissing, c.Partition+"/"+c.FileID)
	}
	if src.LiveTask == "" || src.LiveTask != c.TaskID || src.LiveChunks != in.Chunks {
		return rejectf(CodeConflict, "%s: %s/%s changed while it was copied (live %q, copied %q)", ErrConflict, c.Partition, c.FileID, src.LiveTask, c.TaskID)
	}
	k := FileKey(in.Partition, in.FileID)
	if _, exists := s.Files[k]; exists {
		return reject(ErrFileExists, in.Partition+"/"+in.FileID)
	}
	if _, dup := s.Tasks[in.ID]; dup {
		return rejectf(CodeDuplicate, "%s %s", ErrDuplicate, in.ID)
	}
	s.Seq++
	t := &Task{ID: in.ID, Seq: s.Seq, Partition: in.Partition, FileID: in.FileID, File: src.Ref, Metadata: in.Metadata,
		State: Completed, Attempt: 1, Submitted: c.Now, Started: c.Now, Finished: c.Now, Chunks: in.Chunks, Mode: ModeCreate}
	s.Tasks[t.ID] = t
	s.Finished = append(s.Finished, t.ID)
	holders := append([]string(nil), c.ChunkHolders...)
	sort.Strings(holders)
	s.Files[k] = &File{Partition: t.Partition, FileID: t.FileID, TaskID: t.ID, Ref: src.Ref, Metadata: t.Metadata,
		State: Completed, Chunks: t.Chunks, Updated: c.Now, LiveTask: t.ID, LiveChunks: t.Chunks, ChunkHolders: holders}
	if c.Move {
		// The blob stays: the copy's version uses it.
		s.deleteFile(FileKey(c.Partition, c.FileID), c.Now)
	}
	return Result{Applied: 1}
}
