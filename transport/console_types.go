package transport

// The console's view types: compact answers the /ui/ page polls. They are
// built per request from this node's ledger copy (which holds the
// replicated event history) and its in-memory observations (task history,
// series), never the whole ledger.

// ConsoleSummary is GET /v1/console/summary: what one refresh of the page
// needs, sized by the number of members and running tasks, not the ledger.
type ConsoleSummary struct {
	Node         ConsoleNodeRef `json:"node"`
	Leader       ConsoleNodeRef `json:"leader"`
	Term         uint64         `json:"term"`
	CommitIndex  uint64         `json:"commit_index"`
	AppliedIndex uint64         `json:"applied_index"`
	Members      []Member       `json:"members"`
	Counts       map[string]int `json:"counts"`
	Stages       map[string]int `json:"stages"`
	QueueDepth   int            `json:"queue_depth"`
	GPUs         []ConsoleGPU   `json:"gpus"`
	CPUs         []ConsoleCPU   `json:"cpus"`
	// LastEvent is the sequence number of the newest event, so the page asks
	// /v1/console/events only when something happened.
	LastEvent uint64 `json:"last_event"`
	// ObservingSince is when this node started observing (unix ns): task
	// history and series cover only what it saw since (events are
	// replicated and cover the whole retained history).
	ObservingSince int64 `json:"observing_since"`
	// Leader changes and the longest leaderless gap in the last ten
	// minutes as this node saw them, and whether that is election churn
	// (the page shows a banner; status is not healthy meanwhile).
	LeaderChanges       int   `json:"leader_changes_10m"`
	LongestLeaderlessMS int64 `json:"longest_leaderless_ms"`
	ElectionChurn       bool  `json:"election_churn"`
}

// ConsoleNodeRef names a node.
type ConsoleNodeRef struct {
	ID   string `json:"id"`
	Name string `json:"name"`
}

// ConsoleGPU is one card: what each running task holds, the reserve and what is free.
type ConsoleGPU struct {
	NodeID     string           `json:"node_id"`
	Node       string           `json:"node"`
	Index      int              `json:"index"`
	Name       string           `json:"name"`
	MilliTotal int              `json:"milli_total"`
	MilliUsed  int              `json:"milli_used"`
	MemTotal   uint64           `json:"mem_total"`
	MemUsed    uint64           `json:"mem_used"`
	MemReserve uint64           `json:"mem_reserve"`
	Tasks      []ConsoleGPUTask `json:"tasks"`
}

// ConsoleGPUTask is one task's share of a card.
type ConsoleGPUTask struct {
	TaskID string `json:"task_id"`
	FileID string `json:"file_id"`
	Milli  int    `json:"milli"`
	Mem    uint64 `json:"mem"`
}

// ConsoleCPU is a GPU-less node's task slots.
type ConsoleCPU struct {
	NodeID string `json:"node_id"`
	Node   string `json:"node"`
	Slots  int    `json:"slots"`
	Used   int    `json:"used"`
}

// ConsoleTaskQuery filters GET /v1/console/tasks.
type ConsoleTaskQuery struct {
	State string
	Q     string
	// Partition, when set, keeps only that partition's tasks (a scoped
	// caller's listing).
	Partition string
	Offset    int
	Limit     int
}

// ConsoleTaskPage is one page of tasks, newest first.
type ConsoleTaskPage struct {
	Total  int        `json:"total"`
	Offset int        `json:"offset"`
	Limit  int        `json:"limit"`
	Tasks  []TaskView `json:"tasks"`
}

// ConsoleTaskDetail is a task and the changes this node observed of it.
type ConsoleTaskDetail struct {
	Task           TaskView      `json:"task"`
	History        []TaskHistory `json:"history"`
	ObservingSince int64         `json:"observing_since"`
}

// TaskHistory is one observed change of a task's state, stage, node or attempt.
type TaskHistory struct {
	Time    int64  `json:"time"`
	State   string `json:"state"`
	Stage   string `json:"stage,omitempty"`
	NodeID  string `json:"node_id,omitempty"`
	Attempt int    `json:"attempt"`
	Error   string `json:"error,omitempty"`
}

// ConsoleEvent is one cluster event this node observed.
type ConsoleEvent struct {
	Seq    uint64 `json:"seq"`
	Time   int64  `json:"time"`
	Kind   string `json:"kind"`
	NodeID string `json:"node_id,omitempty"`
	TaskID string `json:"task_id,omitempty"`
	Msg    string `json:"msg"`
}

// ConsoleSeries is the last hour in fixed buckets, oldest first.
type ConsoleSeries struct {
	BucketSeconds int            `json:"bucket_seconds"`
	Points        []ConsolePoint `json:"points"`
}

// ConsolePoint is one bucket: completions and failures in it, the queue
// depth at its end and the mean duration (ms) of each stage that ended in it.
type ConsolePoint struct {
	Time        int64              `json:"time"`
	Completed   int                `json:"completed"`
	Failed      int                `json:"failed"`
	QueueDepth  int                `json:"queue_depth"`
	StageMeanMS map[string]float64 `json:"stage_mean_ms"`
}
