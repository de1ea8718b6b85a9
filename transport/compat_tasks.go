package transport

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// RAGondin's task states. RAGondin had no separate embedding state: it
// embedded while inserting, so embedding reports as INSERTING. CANCELLED is
// openrag's (2026) state for a task stopped by DELETE /indexer/task/{id}.
const (
	ragQueued      = "QUEUED"
	ragSerializing = "SERIALIZING"
	ragChunking    = "CHUNKING"
	ragInserting   = "INSERTING"
	ragCompleted   = "COMPLETED"
	ragFailed      = "FAILED"
	ragCancelled   = "CANCELLED"
)

var ragActive = []string{ragQueued, ragSerializing, ragChunking, ragInserting}

const (
	defaultQueueTasksLimit = 1000
	defaultLogLines        = 100
)

// ragTaskState maps the ledger's state and stage to RAGondin's vocabulary.
// A running task that has not reported a stage yet is loading its file,
// which RAGondin called SERIALIZING.
func ragTaskState(state, stage string) string {
	switch fsm.TaskState(state) {
	case fsm.Queued, fsm.Assigned, fsm.Prefetched:
		return ragQueued
	case fsm.Running:
		switch stage {
		case fsm.StageChunking:
			return ragChunking
		case fsm.StageEmbedding, fsm.StageInserting:
			return ragInserting
		default:
			return ragSerializing
		}
	case fsm.Completed:
		return ragCompleted
	case fsm.Failed:
		return ragFailed
	case fsm.Cancelled:
		return ragCancelled
	}
	return strings.ToUpper(state)
}

func taskDetails(tv TaskView) map[string]any {
	meta := tv.Metadata
	if meta == nil {
		meta = map[string]any{}
	}
	return map[string]any{"file_id": tv.FileID, "partition": tv.Partition, "metadata": meta}
}

func (c *compat) task(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	tv, err := c.b.Task(r.Context(), id)
	if err != nil {
		writeCompatError(w, err, taskNotFound(id))
		return
	}
	state := ragTaskState(tv.State, tv.Stage)
	body := map[string]any{"task_id": tv.ID, "task_state": state, "details": taskDetails(tv)}
	if state == ragFailed { // openrag: only a failed task links its error
		body["error_url"] = taskStatusURL(r, tv.ID) + "/error"
	}
	WriteJSON(w, http.StatusOK, body)
}

// cancelTask is openrag's DELETE /indexer/task/{id}. The ledger records the
// cancellation at once; the node running the task cancels the run when it
// sees the change.
func (c *compat) cancelTask(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	err := c.b.Cancel(r.Context(), id)
	switch {
	case err == nil:
		WriteJSON(w, http.StatusOK, map[string]string{"message": fmt.Sprintf("Cancellation signal sent for task %s", id)})
	case errors.Is(err, fsm.ErrUnknownTask), StatusOf(err) == http.StatusNotFound:
		writeDetail(w, http.StatusNotFound, "%s", taskNotFound(id))
	case errors.Is(err, fsm.ErrConflict), StatusOf(err) == http.StatusConflict:
		state := "finished"
		if tv, terr := c.b.Task(r.Context(), id); terr == nil {
			state = ragTaskState(tv.State, tv.Stage)
		}
		writeDetail(w, http.StatusConflict, "Task '%s' is already %s and cannot be cancelled.", id, state)
	default:
		writeCompatError(w, err, taskNotFound(id))
	}
}

// taskError answers RAGondin's {"task_id", "traceback": [lines]}. ragnode
// keeps an error message rather than a Python traceback; its lines stand in.
func (c *compat) taskError(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	tv, err := c.b.Task(r.Context(), id)
	if err != nil {
		writeCompatError(w, err, taskNotFound(id))
		return
	}
	msg := strings.TrimRight(tv.Error, "\n")
	if msg == "" && tv.State == string(fsm.Cancelled) {
		msg = "Task was cancelled."
	}
	if msg == "" {
		writeDetail(w, http.StatusNotFound, "No error found for task '%s'.", id)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"task_id": tv.ID, "traceback": strings.Split(msg, "\n")})
}

// ledgerTime turns a ledger time (Command.Now, Unix nanoseconds; a value
// too small to be nanoseconds is taken to be seconds) into a time.
func ledgerTime(t int64) time.Time {
	if t > 1e15 {
		return time.Unix(0, t).UTC()
	}
	return time.Unix(t, 0).UTC()
}

// logTime is loguru's time repr, which RAGondin's log lines start with.
func logTime(t int64) string { return ledgerTime(t).Format("2006-01-02 15:04:05.000000-07:00") }

// taskLogLines is what the ledger knows of a task, as RAGondin's
// "{time} - {LEVEL} - {message} - {extra}" lines. RAGondin grepped its
// log file; ragnode keeps no per-task log, so the lines are built from the
// task's record: submission, start (node, attempt), stage, failures, end.
func taskLogLines(tv TaskView) []string {
	extra := fmt.Sprintf("{'task_id': '%s', 'partition': '%s', 'file_id': '%s'}", tv.ID, tv.Partition, tv.FileID)
	line := func(t int64, level, msg string) string {
		return fmt.Sprintf("%s - %s - %s - %s", logTime(t), level, msg, extra)
	}
	var out []string
	if tv.Submitted > 0 {
		out = append(out, line(tv.Submitted, "INFO", fmt.Sprintf("Task queued (filename=%s, size=%d).", tv.FileName, tv.Size)))
	}
	if tv.Failures > 0 {
		at := tv.Started
		if at == 0 {
			at = tv.Submitted
		}
		out = append(out, line(at, "WARNING", fmt.Sprintf("%d earlier attempt(s) failed.", tv.Failures)))
	}
	if tv.Started > 0 {
		node := tv.NodeID
		if node == "" {
			node = "unknown"
		}
		out = append(out, line(tv.Started, "INFO", fmt.Sprintf("Attempt %d started on node %s.", tv.Attempt, node)))
	}
	state := ragTaskState(tv.State, tv.Stage)
	switch state {
	case ragSerializing, ragChunking, ragInserting:
		if tv.Stage != "" && tv.Started > 0 {
			out = append(out, line(tv.Started, "INFO", fmt.Sprintf("Stage: %s (%s).", tv.Stage, state)))
		}
	case ragCompleted:
		out = append(out, line(tv.Finished, "INFO", fmt.Sprintf("Task completed: %d chunks.", tv.Chunks)))
	case ragFailed:
		msg := strings.ReplaceAll(strings.TrimSpace(tv.Error), "\n", " | ")
		out = append(out, line(tv.Finished, "ERROR", "Task failed: "+msg))
	case ragCancelled:
		out = append(out, line(tv.Finished, "WARNING", "Task cancelled."))
	}
	return out
}

// taskLogs answers RAGondin's {"task_id", "logs": [lines]}, oldest first,
// the last max_lines of them.
func (c *compat) taskLogs(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("task_id")
	maxLines, ferr := queryInt(r, "max_lines", defaultLogLines, 0)
	if ferr != nil {
		writeValidation(w, *ferr)
		return
	}
	tv, err := c.b.Task(r.Context(), id)
	if err != nil {
		writeCompatError(w, err, fmt.Sprintf("No logs found for task '%s'", id))
		return
	}
	lines := taskLogLines(tv)
	if len(lines) > maxLines {
		lines = lines[len(lines)-maxLines:]
	}
	if len(lines) == 0 {
		writeDetail(w, http.StatusNotFound, "No logs found for task '%s'", id)
		return
	}
	WriteJSON(w, http.StatusOK, map[string]any{"task_id": tv.ID, "logs": lines})
}

// queueTasks is RAGondin's GET /queue/tasks: ?task_status=active (the four
// active states), an exact state (case-insensitive), or none for all;
// openrag's UIs send status= instead, read the same. Tasks come oldest
// first, a page at a time (offset, limit); total counts every match so a
// client sees when a page is not everything.
func (c *compat) queueTasks(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	want := q.Get("task_status")
	if want == "" {
		want = q.Get("status")
	}
	var verrs []fieldError
	offset, ferr := queryInt(r, "offset", 0, 0)
	if ferr != nil {
		verrs = append(verrs, *ferr)
	}
	limit, ferr := queryInt(r, "limit", defaultQueueTasksLimit, 1)
	if ferr != nil {
		verrs = append(verrs, *ferr)
	}
	if len(verrs) > 0 {
		writeValidation(w, verrs...)
		return
	}
	all, err := c.b.Tasks(r.Context(), "", ScopeOf(r.Context()))
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	matches := func(state string) bool {
		switch {
		case want == "":
			return true
		case strings.EqualFold(want, "active"):
			return state == ragQueued || state == ragSerializing || state == ragChunking || state == ragInserting
		}
		return strings.EqualFold(want, state)
	}
	tasks := []map[string]any{}
	total := 0
	for _, tv := range all {
		state := ragTaskState(tv.State, tv.Stage)
		if !matches(state) || !InScope(r.Context(), tv.Partition) {
			continue
		}
		total++
		if total <= offset || len(tasks) == limit {
			continue
		}
		item := map[string]any{"task_id": tv.ID, "state": state, "details": taskDetails(tv),
			"url": taskStatusURL(r, tv.ID)}
		if state == ragFailed {
			item["error_url"] = taskStatusURL(r, tv.ID) + "/error"
		}
		tasks = append(tasks, item)
	}
	WriteJSON(w, http.StatusOK, map[string]any{"tasks": tasks, "total": total, "offset": offset, "limit": limit})
}

// queueInfo answers RAGondin's {"workers": {...}, "tasks": {...}}. The
// backend's task counts are folded into RAGondin's states; keys may be
// ledger states or stages (lower case) or RAGondin's own names, so a
// backend that already counts by stage keeps that detail. A bare "running"
// count lands in SERIALIZING, as a running task with no stage does.
// total_cancelled is openrag's (2026); cancelled tasks are not failures.
func (c *compat) queueInfo(w http.ResponseWriter, r *http.Request) {
	qi, err := c.b.QueueInfo(r.Context())
	if err != nil {
		writeCompatError(w, err, "")
		return
	}
	counts := map[string]int{}
	for k, n := range qi.Tasks {
		switch strings.ToLower(k) {
		case "queued", "assigned", "prefetched":
			counts[ragQueued] += n
		case "running", "loading", "serializing":
			counts[ragSerializing] += n
		case "chunking":
			counts[ragChunking] += n
		case "embedding", "inserting":
			counts[ragInserting] += n
		case "completed":
			counts[ragCompleted] += n
		case "failed":
			counts[ragFailed] += n
		case "cancelled", "canceled":
			counts[ragCancelled] += n
		}
	}
	active := map[string]int{}
	total := 0
	for _, s := range ragActive {
		active[s] = counts[s]
		total += counts[s]
	}
	// max_per_actor was a per-actor setting in RAGondin; a node stands for
	// an actor here and nodes differ in size, so it is the most slots one
	// node offers. A backend that does not count per node leaves the
	// RAGondin arithmetic: total slots over the pool.
	perWorker := qi.MaxPerNode
	if perWorker == 0 && qi.PoolSize > 0 {
		perWorker = qi.TotalSlots / qi.PoolSize
	}
	WriteJSON(w, http.StatusOK, map[string]any{
		"workers": map[string]int{
			"total_slots":   qi.TotalSlots,
			"free_slots":    qi.FreeSlots,
			"busy_slots":    qi.BusySlots,
			"pool_size":     qi.PoolSize,
			"max_per_actor": perWorker,
		},
		"tasks": map[string]any{
			"active":          total,
			"active_statuses": active,
			"total_completed": counts[ragCompleted],
			"total_failed":    counts[ragFailed],
			"total_cancelled": counts[ragCancelled],
		},
	})
}

// supportedTypes is openrag's GET /indexer/supported/types.
func (c *compat) supportedTypes(w http.ResponseWriter, r *http.Request) {
	info := c.b.CompatInfo()
	ext, mt := info.Extensions, info.MimeTypes
	if ext == nil {
		ext = []string{}
	}
	if mt == nil {
		mt = []string{}
	}
	WriteJSON(w, http.StatusOK, map[string]any{"extensions": ext, "mimetypes": mt})
}
