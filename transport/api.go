// Package transport is ragnode's wire: the HTTP API every node serves (the
// /v1 API, the peer routes under /v1/internal/, the RAGondin-compatible
// routes), its Go client, bearer-token checks, and the wire types nodes
// exchange. Forwarding writes to the leader is node's (node/propose.go).
//
// Guarantee: transport is the only place a failure becomes an HTTP status
// (StatusOf), and a peer's status becomes the same failure kind again on the
// client side, so errors.Is works across a forwarded call; the peer wire
// types have frozen JSON names (wire.go).
package transport

import (
	"github.com/ragnode/ragnode/fsm"
)

// Member is one row of `ragnode members`.
type Member struct {
	ID           string      `json:"id"`
	Name         string      `json:"name"`
	HTTPAddr     string      `json:"http_addr"`
	RaftAddr     string      `json:"raft_addr"`
	SerfAddr     string      `json:"serf_addr"`
	SerfStatus   string      `json:"serf_status"`
	RaftSuffrage string      `json:"raft_suffrage"`
	Leader       bool        `json:"leader"`
	LastContact  string      `json:"last_contact,omitempty"`
	Healthy      *bool       `json:"healthy,omitempty"`
	Version      string      `json:"version"`
	GPUs         []MemberGPU `json:"gpus"`
	CPUSlots     int         `json:"cpu_slots"`
	Running      int         `json:"running"`
	Draining     bool        `json:"draining"`
}

// MemberGPU is one GPU of a member with its allocated quota.
type MemberGPU struct {
	Index      int    `json:"index"`
	UUID       string `json:"uuid"`
	Name       string `json:"name"`
	MilliTotal int    `json:"milli_total"`
	MilliUsed  int    `json:"milli_used"`
	MemTotal   uint64 `json:"mem_total"`
	MemUsed    uint64 `json:"mem_used"`
}

// Status is `ragnode status`.
type Status struct {
	NodeID           string `json:"node_id"`
	LeaderID         string `json:"leader_id"`
	LeaderHTTP       string `json:"leader_http"`
	Term             uint64 `json:"term"`
	CommitIndex      uint64 `json:"commit_index"`
	AppliedIndex     uint64 `json:"applied_index"`
	LastIndex        uint64 `json:"last_index"`
	Voters           int    `json:"voters"`
	NonVoters        int    `json:"nonvoters"`
	FailureTolerance int    `json:"failure_tolerance"`
	Healthy          bool   `json:"healthy"`
	// CaughtUp is true when every voter's log reached the leader's last index
	// at the moment of the answer.
	CaughtUp bool           `json:"caught_up"`
	Tasks    map[string]int `json:"tasks"`
	// LeaderChanges is how many times the leader changed in the last ten
	// minutes and LongestLeaderlessMS the longest stretch without one
	// there, as the answering node's Raft saw them; ElectionChurn is set
	// while the changes exceed the churn threshold, and the cluster is not
	// healthy meanwhile.
	LeaderChanges       int   `json:"leader_changes_10m"`
	LongestLeaderlessMS int64 `json:"longest_leaderless_ms"`
	ElectionChurn       bool  `json:"election_churn"`
	// Unhealthy says why Healthy is false, one line per failed condition.
	Unhealthy []string `json:"unhealthy,omitempty"`
	// Warnings are the answering node's security warnings (an open client
	// API on a reachable address).
	Warnings []string `json:"warnings,omitempty"`
}

// RaftStats is what autopilot needs from each server.
type RaftStats struct {
	ID            string `json:"id"`
	LastTerm      uint64 `json:"last_term"`
	LastIndex     uint64 `json:"last_index"`
	LastContactNS int64  `json:"last_contact_ns"`
}

// ApplyRequest carries one command to the leader.
type ApplyRequest struct {
	Command fsm.Command `json:"command"`
}

// DrainRequest starts or cancels a drain.
type DrainRequest struct {
	Node     string `json:"node"`
	Deadline string `json:"deadline,omitempty"`
	Cancel   bool   `json:"cancel,omitempty"`
}

// TaskView is a task as the API shows it.
type TaskView struct {
	ID        string         `json:"id"`
	State     string         `json:"state"`
	Stage     string         `json:"stage,omitempty"`
	Partition string         `json:"partition"`
	FileID    string         `json:"file_id"`
	FileName  string         `json:"filename,omitempty"`
	Size      int64          `json:"size"`
	Hash      string         `json:"hash,omitempty"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	NodeID    string         `json:"node_id"`
	GPU       int            `json:"gpu"`
	GPUs      string         `json:"gpus,omitempty"`
	Attempt   int            `json:"attempt"`
	Failures  int            `json:"failures"`
	Error     string         `json:"error"`
	Chunks    int            `json:"chunks"`
	Submitted int64          `json:"submitted"`
	Started   int64          `json:"started,omitempty"`
	Finished  int64          `json:"finished,omitempty"`
}

// ErrorBody is every non-2xx answer of the /v1 API.
type ErrorBody struct {
	Error string `json:"error"`
}
