package transport

import "strings"

// CallbackBody is the JSON a node POSTs to an upload's callback_url when
// its task ends: the task's final state in the same words and shape as
// GET /indexer/task/{id}, so a receiver can parse both alike. Error is the
// failure or cancellation reason ("" when it completed).
type CallbackBody struct {
	TaskID    string         `json:"task_id"`
	TaskState string         `json:"task_state"`
	Details   CallbackDetail `json:"details"`
	Chunks    int            `json:"chunks"`
	Error     string         `json:"error,omitempty"`
}

// CallbackDetail names the file the task indexed.
type CallbackDetail struct {
	FileID    string `json:"file_id"`
	Partition string `json:"partition"`
}

// RagFinalState is the RAGondin name of a final ledger state: COMPLETED,
// FAILED or CANCELLED.
func RagFinalState(state string) string { return strings.ToUpper(state) }
