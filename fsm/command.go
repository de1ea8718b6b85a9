package fsm

import (
	"encoding/json"
	"fmt"
)

// CmdType names a command.
type CmdType string

const (
	CmdRegisterNode CmdType = "register_node"
	CmdNodeStatus   CmdType = "node_status"
	CmdRemoveNode   CmdType = "remove_node"
	CmdSubmitTasks  CmdType = "submit_tasks"
	CmdAssignTasks  CmdType = "assign_tasks"
	CmdTaskProgress CmdType = "task_progress"
	CmdCompleteTask CmdType = "complete_task"
	CmdFailTask     CmdType = "fail_task"
	CmdRequeueTasks CmdType = "requeue_tasks"
	CmdCancelTask   CmdType = "cancel_task"
	CmdSetDrain     CmdType = "set_drain"
	CmdReleaseNode  CmdType = "release_node"
	CmdSettings     CmdType = "settings"
	CmdDeleteFile   CmdType = "delete_file"
	CmdDeletePart   CmdType = "delete_partition"
	CmdFileMetadata CmdType = "file_metadata"
	CmdBlobHolders  CmdType = "blob_holders"
	CmdChunkHolders CmdType = "chunk_holders"
	CmdBatch        CmdType = "batch"
	// CmdClusterID records the cluster's identity once; a different ID
	// later is refused, so two clusters' logs can never be told apart.
	CmdClusterID CmdType = "cluster_id"
	// Credentials (tokens.go): role tokens by hash, and the peer secret.
	CmdCreateToken CmdType = "create_token"
	CmdRevokeToken CmdType = "revoke_token"
	CmdPeerSecret  CmdType = "peer_secret"
)

// Command is one ledger change. Exactly the payload fields its Type needs are
// set. Now is the proposer's clock, so Apply never reads one.
type Command struct {
	Type CmdType `json:"t"`
	Now  int64   `json:"now"`

	Node        *Node        `json:"node,omitempty"`
	NodeID      string       `json:"node_id,omitempty"`
	Status      string       `json:"status,omitempty"`
	Tasks       []Task       `json:"tasks,omitempty"`
	Assignments []Assignment `json:"assignments,omitempty"`
	TaskID      string       `json:"task_id,omitempty"`
	Attempt     int          `json:"attempt,omitempty"`
	Stage       string       `json:"stage,omitempty"`
	Chunks      int          `json:"chunks,omitempty"`
	// Error is the failure message (CmdFailTask), the reason recorded on
	// requeued or released tasks (CmdRequeueTasks, CmdReleaseNode), or the
	// drain reason (CmdSetDrain).
	Error string `json:"error,omitempty"`
	// Permanent marks a failure that retrying cannot fix (corrupt file).
	Permanent bool      `json:"permanent,omitempty"`
	Draining  bool      `json:"draining,omitempty"`
	Deadline  int64     `json:"deadline,omitempty"`
	Settings  *Settings `json:"settings,omitempty"`
	Partition string    `json:"partition,omitempty"`
	FileID    string    `json:"file_id,omitempty"`
	// Metadata, in CmdFileMetadata, is merged into the file's: a key whose
	// value is null is deleted.
	Metadata map[string]any `json:"metadata,omitempty"`
	Blob     *Blob          `json:"blob,omitempty"`
	// Remove lists holders to drop in CmdBlobHolders.
	Remove []string `json:"remove,omitempty"`
	// Refs fence requeues: a task is only touched at the attempt named here.
	Refs []TaskRef `json:"refs,omitempty"`
	// ChunkHolders are the nodes holding a file's chunks (completion, or
	// CmdChunkHolders for the file's live task TaskID).
	ChunkHolders []string `json:"chunk_holders,omitempty"`
	// Started, on a completion or failure, is when the run began (the
	// worker's clock): a short task is never reported running on its own.
	Started int64 `json:"started,omitempty"`
	// Chain, on a completion or failure, hands the freed slot to the next
	// queued task that fits it, in the same Apply.
	Chain bool `json:"chain,omitempty"`
	// OnlyIfFailed makes CmdReleaseNode a no-op when the node is alive again.
	OnlyIfFailed bool `json:"only_if_failed,omitempty"`
	// OnlyIfReason makes a CmdSetDrain that lifts a drain (Draining false)
	// a no-op unless the node is draining for this reason: a node lifts
	// the drain it set on itself without lifting an operator's.
	OnlyIfReason string `json:"only_if_reason,omitempty"`
	// NodeLoss, on CmdReleaseNode, CmdRequeueTasks and CmdFailTask, says the
	// attempts end because their node was declared failed or their runner
	// was killed under them: each counts towards the task's poison
	// quarantine (Task.NodeLosses) instead of its attempts. A node's
	// departure, a drain or a restart is no loss.
	NodeLoss bool `json:"node_loss,omitempty"`
	// ClusterID, in CmdClusterID, is the identity generated at bootstrap.
	ClusterID string    `json:"cluster_id,omitempty"`
	Batch     []Command `json:"batch,omitempty"`
	// Move, in CmdCopyFile, deletes the source in the same Apply.
	Move bool `json:"move,omitempty"`
	// Token (CmdCreateToken), TokenID (CmdRevokeToken) and PeerSecret
	// (CmdPeerSecret): see tokens.go.
	Token      *Token `json:"token,omitempty"`
	TokenID    string `json:"token_id,omitempty"`
	PeerSecret string `json:"peer_secret,omitempty"`
	// Events, in CmdEvents, are leader-recorded history entries (events.go).
	Events []Event `json:"events,omitempty"`
	// Next, on a completion or failure, is a task prefetched to the same
	// node that starts in the freed allocation in the same Apply (the
	// handoff, prefetch.go); Result.Chained names it when it started.
	Next *TaskRef `json:"next,omitempty"`
	// Limit, in CmdPrefetchTasks, is the per-node bound on prefetched tasks;
	// on a handoff with Chain, and on any completion with Chain, the depth
	// to which the same Apply tops the node's prefetch queue back up from
	// the queue, after the chained start (0: no top-up).
	Limit int `json:"limit,omitempty"`
}

// TaskRef names one attempt of a task.
type TaskRef struct {
	ID      string `json:"id"`
	Attempt int    `json:"attempt"`
}

// Assignment places one queued task, fenced by the attempt it was planned for.
type Assignment struct {
	TaskID   string `json:"task_id"`
	Attempt  int    `json:"attempt"`
	NodeID   string `json:"node_id"`
	GPU      int    `json:"gpu"`
	Milli    int    `json:"milli"`
	MemBytes uint64 `json:"mem_bytes"`
}

// Result is what Apply returns for one command. Err is a rejection's human
// message and Code its class (see Error, FirstError); a rejected command
// changed nothing but what every Apply advances (the applied index and the
// retention of finished tasks). Results from nodes that predate Code carry
// only Err.
type Result struct {
	Err     string   `json:"err,omitempty"`
	Code    Code     `json:"code,omitempty"`
	Batch   []Result `json:"batch,omitempty"`
	Applied int      `json:"applied,omitempty"`
	// Chained names the task that took over a freed slot.
	Chained string `json:"chained,omitempty"`
	// Index is the Raft log index the command was committed at. The leader
	// fills it in after Apply (it is not part of the state), so a follower
	// that forwarded the write can wait to apply it before answering: a
	// client reads its own writes on the node it wrote through.
	Index uint64 `json:"index,omitempty"`
}

// Encode serialises a command for the Raft log.
func Encode(c Command) ([]byte, error) { return json.Marshal(c) }

// Decode parses a Raft log entry.
func Decode(b []byte) (Command, error) {
	var c Command
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("decode command: %w", err)
	}
	return c, nil
}
