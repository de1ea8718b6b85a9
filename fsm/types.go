// Package fsm owns ragnode's replicated state: the node registry, the task
// ledger, GPU allocations, files and blobs.
//
// Guarantee: State.Apply is a pure function of the state and the command. It
// reads no clock, draws no random numbers and does no I/O; every time it
// records comes inside the command. So the same log applied on any node gives
// the same state, and CheckInvariants holds after every Apply. A command it
// refuses changes nothing of its own and comes back with a Result whose Code
// says why (errors.Is against the Err sentinels), so callers never parse
// messages. Card fit and fractions use the scheduler's placement rule
// (scheduler.Need, scheduler.FitsGPU), so the ledger and the scheduler
// cannot disagree on what fits a card.
package fsm

import (
	"github.com/ragnode/ragnode/gpu"
)

// TaskState is where a task is in its life.
type TaskState string

const (
	Queued    TaskState = "queued"
	Assigned  TaskState = "assigned"
	Running   TaskState = "running"
	Completed TaskState = "completed"
	Failed    TaskState = "failed"
	Cancelled TaskState = "cancelled"
)

// Terminal reports whether the task will never run again.
func (s TaskState) Terminal() bool { return s == Completed || s == Failed || s == Cancelled }

// Active reports whether the task holds an allocation.
func (s TaskState) Active() bool { return s == Assigned || s == Running }

// Pipeline stages reported while a task runs.
const (
	StageLoading   = "loading"
	StageChunking  = "chunking"
	StageEmbedding = "embedding"
	StageInserting = "inserting"
)

// Serf-derived liveness of a node as the leader last recorded it.
const (
	NodeAlive  = "alive"
	NodeFailed = "failed"
	NodeLeft   = "left"
)

// Node is one registered cluster member and its capacity.
type Node struct {
	ID            string       `json:"id"`
	Name          string       `json:"name"`
	RaftAddr      string       `json:"raft_addr"`
	SerfAddr      string       `json:"serf_addr"`
	HTTPAddr      string       `json:"http_addr"`
	Version       string       `json:"version"`
	GPUs          []gpu.Device `json:"gpus"`
	GPUReserve    uint64       `json:"gpu_reserve"`
	CPUSlots      int          `json:"cpu_slots"`
	MaxConcurrent int          `json:"max_concurrent"`
	// Status and StatusSince are written by the leader from Serf events.
	Status      string `json:"status"`
	StatusSince int64  `json:"status_since"`
	Draining    bool   `json:"draining"`
	// DrainReason is "restart" when the node drained itself on SIGTERM, so it
	// can lift its own drain when it comes back; operator drains stay.
	DrainReason string `json:"drain_reason,omitempty"`
	// DrainDeadline is unix nanoseconds after which running tasks are handed back; 0 = none.
	DrainDeadline int64 `json:"drain_deadline,omitempty"`
}

// FileRef says where a task's bytes are.
type FileRef struct {
	Hash       string `json:"hash,omitempty"` // SHA-256 hex of the blob
	Size       int64  `json:"size"`
	Name       string `json:"name"` // original file name, for type detection and display
	SharedPath string `json:"shared_path,omitempty"`
}

// Task is one file to index.
type Task struct {
	ID        string         `json:"id"`
	Seq       uint64         `json:"seq"`
	Partition string         `json:"partition"`
	FileID    string         `json:"file_id"`
	File      FileRef        `json:"file"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	State     TaskState      `json:"state"`
	Stage     string         `json:"stage,omitempty"`
	// Attempt is the fencing token: it grows on every requeue, and a report
	// carrying another value is rejected.
	Attempt int `json:"attempt"`
	// Failures counts runner failures; node loss does not count.
	Failures int `json:"failures"`
	// NodeLosses counts the attempts that ended with their node declared
	// failed or their runner killed under them (a parser child's crash).
	// Past Settings.MaxNodeLosses the task fails as a suspected poison
	// document instead of walking on to the next node.
	NodeLosses int `json:"node_losses,omitempty"`
	// FirstStart is when the task was first placed on a node (the placing
	// command's clock). Its time budget counts from here across attempts:
	// a task that keeps losing its node cannot restart its budget.
	FirstStart int64 `json:"first_start,omitempty"`
	// Request is what the task asks for when placed.
	ReqMilli int    `json:"req_milli"`
	ReqMem   uint64 `json:"req_mem"`
	// Allocation while assigned or running.
	NodeID    string `json:"node_id,omitempty"`
	GPU       int    `json:"gpu"`
	Milli     int    `json:"milli"`
	MemBytes  uint64 `json:"mem_bytes"`
	Submitted int64  `json:"submitted"`
	Started   int64  `json:"started,omitempty"`
	Finished  int64  `json:"finished,omitempty"`
	// LastNode is where the latest attempt was placed; kept after the task ends.
	LastNode string `json:"last_node,omitempty"`
	Error    string `json:"error,omitempty"`
	Chunks   int    `json:"chunks"`
	// Mode says how the submission treats an existing file of the same
	// (partition, file ID): ModeUpsert replaces it, ModeCreate is refused if it
	// exists, ModeReplace is refused if it does not.
	Mode string `json:"mode,omitempty"`
	// Callback, when set, is POSTed when the task ends (callback.go).
	Callback *Callback `json:"callback,omitempty"`
	// PrefetchedAt is when the task last entered a node's prefetch queue
	// (the command's clock); the leader moves long-waiting ones elsewhere.
	PrefetchedAt int64 `json:"prefetched_at,omitempty"`
}

// Submission modes.
const (
	ModeUpsert  = ""
	ModeCreate  = "create"
	ModeReplace = "replace"
)

// Alloc is a task's hold on a node's GPU or CPU slot.
type Alloc struct {
	NodeID   string `json:"node_id"`
	GPU      int    `json:"gpu"` // -1 = CPU slot
	Milli    int    `json:"milli"`
	MemBytes uint64 `json:"mem_bytes"`
}

// File is the current version of a (partition, file ID).
type File struct {
	Partition string         `json:"partition"`
	FileID    string         `json:"file_id"`
	TaskID    string         `json:"task_id"`
	Ref       FileRef        `json:"ref"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	State     TaskState      `json:"state"`
	Chunks    int            `json:"chunks"`
	Updated   int64          `json:"updated"`
	// LiveTask is the last task that completed for this file: its chunks are
	// the ones search serves, until a newer task completes (so a replaced
	// file stays searchable while it is re-indexed).
	LiveTask   string `json:"live_task,omitempty"`
	LiveChunks int    `json:"live_chunks,omitempty"`
	// ChunkHolders are the nodes whose local stores hold the live chunks
	// (empty with a shared vector store).
	ChunkHolders []string `json:"chunk_holders,omitempty"`
}

// Blob is a content-addressed file copy and the nodes holding it.
type Blob struct {
	Hash    string   `json:"hash"`
	Size    int64    `json:"size"`
	Holders []string `json:"holders"`
}

// Settings are cluster-wide knobs that Apply needs.
type Settings struct {
	MaxAttempts  int   `json:"max_attempts"`
	RetainCount  int   `json:"retain_count"`   // finished tasks kept; 0 = default
	RetainMaxAge int64 `json:"retain_max_age"` // nanoseconds; 0 = no age limit
	// MaxNodeLosses is how many node losses a task may survive (0: the
	// default, DefaultMaxNodeLosses; negative: no quarantine). Absent in
	// snapshots from before the quarantine, which then get the default.
	MaxNodeLosses int `json:"max_node_losses,omitempty"`
}

// DefaultMaxNodeLosses is --max-node-losses' default: a third lost node
// quarantines the task.
const DefaultMaxNodeLosses = 2

// DefaultSettings apply until the leader writes its own.
func DefaultSettings() Settings {
	return Settings{MaxAttempts: 3, RetainCount: 100000}
}
