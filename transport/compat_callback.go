package transport

import "strings"

// CallbackBody is the JSON a node POSTs to an upload's callback_url when
// its task ends. partition, file_id and status ("indexed" or "failed")
// are openrag's (openrag/services/workers/webhook.py
// send_indexing_callback), so its receivers (cozy-stack) read it as they
// read openrag's; a cancelled task is "failed" there, since it was not
// indexed. The rest is ragnode's: the task, its RAGondin state
// (COMPLETED, FAILED, CANCELLED), its chunk count and its error.
type CallbackBody struct {
	Partition string `json:"partition"`
	FileID    string `json:"file_id"`
	Status    string `json:"status"`
	TaskID    string `json:"task_id"`
	TaskState string `json:"task_state"`
	Chunks    int    `json:"chunks"`
	Error     string `json:"error,omitempty"`
}

// NewCallbackBody builds the body for a task that ended in state (a
// ledger state: completed, failed or cancelled).
func NewCallbackBody(taskID, partition, fileID, state string, chunks int, errMsg string) CallbackBody {
	status := "failed"
	if state == "completed" {
		status = "indexed"
	}
	return CallbackBody{Partition: partition, FileID: fileID, Status: status, TaskID: taskID,
		TaskState: strings.ToUpper(state), Chunks: chunks, Error: errMsg}
}
