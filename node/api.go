package node

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/transport"
)

// Apply implements transport.Backend.
func (n *Node) Apply(ctx context.Context, c fsm.Command) (fsm.Result, error) {
	return n.prop.Propose(ctx, c)
}

// RaftStats implements transport.Backend.
func (n *Node) RaftStats() transport.RaftStats {
	st := n.raft.Stats()
	rs := transport.RaftStats{ID: n.id}
	rs.LastTerm, _ = strconv.ParseUint(st["last_log_term"], 10, 64)
	rs.LastIndex, _ = strconv.ParseUint(st["last_log_index"], 10, 64)
	switch lc := st["last_contact"]; lc {
	case "0", "":
	case "never":
		rs.LastContactNS = int64(time.Hour)
	default:
		if d, err := time.ParseDuration(lc); err == nil {
			rs.LastContactNS = int64(d)
		}
	}
	return rs
}

type localKey struct{}

// Status implements transport.Backend. Followers ask the leader, which alone
// knows every voter's health.
func (n *Node) Status(ctx context.Context) (transport.Status, error) {
	if n.raft.State() != raft.Leader && ctx.Value(localKey{}) == nil && !transport.LocalStatusRequested(ctx) {
		if c, err := n.leaderClient(); err == nil {
			var st transport.Status
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			err = c.Do(cctx, http.MethodGet, "/v1/status", map[string][]string{"local": {"1"}}, nil, &st)
			cancel()
			if err == nil {
				return st, nil
			}
		}
	}
	return n.localStatus(ctx), nil
}

// LocalStatusContext marks a status request that must not be forwarded.
func LocalStatusContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, localKey{}, true)
}

func (n *Node) localStatus(ctx context.Context) transport.Status {
	stats := n.raft.Stats()
	st := transport.Status{NodeID: n.id, Tasks: map[string]int{}}
	st.Term, _ = strconv.ParseUint(stats["term"], 10, 64)
	st.CommitIndex, _ = strconv.ParseUint(stats["commit_index"], 10, 64)
	st.AppliedIndex, _ = strconv.ParseUint(stats["applied_index"], 10, 64)
	st.LastIndex, _ = strconv.ParseUint(stats["last_log_index"], 10, 64)
	_, lid := n.raft.LeaderWithID()
	st.LeaderID = string(lid)
	if st.LeaderID != "" {
		st.LeaderHTTP = n.httpAddrOf(st.LeaderID)
	}
	var voters []string
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			if s.Suffrage == raft.Voter {
				voters = append(voters, string(s.ID))
			} else {
				st.NonVoters++
			}
		}
	}
	st.Voters = len(voters)
	n.fsm.View(func(s *fsm.State) {
		for k, v := range s.Counts() {
			st.Tasks[string(k)] = v
		}
	})
	if n.raft.State() != raft.Leader {
		return st
	}
	// Every voter must have reached the commit index seen before asking.
	target := st.CommitIndex
	caught := true
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, id := range voters {
		wg.Add(1)
		go func(id string) {
			defer wg.Done()
			s, ok := n.statsOf(ctx, id)
			mu.Lock()
			defer mu.Unlock()
			if !ok || s.LastIndex < target {
				caught = false
			}
		}(id)
	}
	wg.Wait()
	st.CaughtUp = caught
	if ap := n.apState.Load(); ap != nil {
		st.FailureTolerance = ap.FailureTolerance
		st.Healthy = ap.Healthy && caught
		// Autopilot's state can lag a membership change by one update interval.
		for _, id := range voters {
			if _, ok := ap.Servers[raft.ServerID(id)]; !ok {
				st.Healthy = false
			}
		}
	}
	return st
}

// Members implements transport.Backend.
func (n *Node) Members(ctx context.Context) ([]transport.Member, error) {
	rows := map[string]*transport.Member{}
	get := func(id string) *transport.Member {
		m := rows[id]
		if m == nil {
			m = &transport.Member{ID: id, SerfStatus: "unknown", RaftSuffrage: "none", GPUs: []transport.MemberGPU{}}
			rows[id] = m
		}
		return m
	}
	for _, sm := range n.serf.Members() {
		id := sm.Tags[tagID]
		if id == "" {
			continue
		}
		m := get(id)
		m.Name = sm.Name
		m.HTTPAddr = sm.Tags[tagHTTP]
		m.RaftAddr = sm.Tags[tagRaft]
		m.SerfAddr = fmt.Sprintf("%s:%d", sm.Addr, sm.Port)
		m.Version = sm.Tags[tagVersion]
		m.SerfStatus = serfStatus(sm.Status)
	}
	n.fsm.View(func(s *fsm.State) {
		for id, nd := range s.Nodes {
			m := get(id)
			if m.Name == "" {
				m.Name, m.HTTPAddr, m.RaftAddr, m.SerfAddr, m.Version = nd.Name, nd.HTTPAddr, nd.RaftAddr, nd.SerfAddr, nd.Version
				if nd.Status == fsm.NodeLeft {
					m.SerfStatus = "left"
				}
			}
			m.CPUSlots = nd.CPUSlots
			m.Draining = nd.Draining
			m.Running = s.ActiveOn(id)
			for i, g := range nd.GPUs {
				milli, mem := s.GPUUsage(id, i)
				m.GPUs = append(m.GPUs, transport.MemberGPU{Index: g.Index, UUID: g.UUID, Name: g.Name,
					MilliTotal: gpu.MilliPerGPU, MilliUsed: milli, MemTotal: g.MemTotal, MemUsed: mem})
			}
		}
	})
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			m := get(string(s.ID))
			if m.RaftAddr == "" {
				m.RaftAddr = string(s.Address)
			}
			if s.Suffrage == raft.Voter {
				m.RaftSuffrage = "voter"
			} else {
				m.RaftSuffrage = "nonvoter"
			}
		}
	}
	_, lid := n.raft.LeaderWithID()
	if m, ok := rows[string(lid)]; ok {
		m.Leader = true
	}
	if ap := n.apState.Load(); ap != nil {
		for id, ss := range ap.Servers {
			if m, ok := rows[string(id)]; ok {
				m.LastContact = ss.Stats.LastContact.Round(time.Millisecond).String()
				h := ss.Health.Healthy
				m.Healthy = &h
			}
		}
	} else if m, ok := rows[n.id]; ok && n.raft.State() != raft.Leader {
		m.LastContact = time.Since(n.raft.LastContact()).Round(time.Millisecond).String()
	}
	out := make([]transport.Member, 0, len(rows))
	for _, m := range rows {
		out = append(out, *m)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Name != out[j].Name {
			return out[i].Name < out[j].Name
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

func serfStatus(s serf.MemberStatus) string {
	switch s {
	case serf.StatusAlive, serf.StatusLeaving:
		return "alive"
	case serf.StatusFailed:
		return "failed"
	case serf.StatusLeft:
		return "left"
	}
	return "unknown"
}

// NewTaskID returns 48 lowercase hex characters (24 random bytes), the
// format RAGondin clients expect. IDs are drawn here, never inside Apply.
func NewTaskID() string {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(fmt.Sprintf("crypto/rand: %v", err))
	}
	return hex.EncodeToString(b[:])
}

// Submit implements transport.Backend: store the bytes, then record the task.
func (n *Node) Submit(ctx context.Context, req transport.SubmitRequest, body io.Reader) (transport.TaskView, error) {
	if req.Partition == "" {
		req.Partition = "default"
	}
	if strings.TrimSpace(req.FileID) == "" || strings.Contains(req.FileID, "\x00") {
		return transport.TaskView{}, transport.Errorf(http.StatusBadRequest, "file_id must not be blank")
	}
	if req.FileName == "" {
		req.FileName = filepath.Base(req.FileID)
	}
	switch req.Mode {
	case fsm.ModeUpsert, fsm.ModeCreate, fsm.ModeReplace:
	default:
		return transport.TaskView{}, transport.Errorf(http.StatusBadRequest, "mode must be create, replace or empty")
	}
	ref := fsm.FileRef{Name: req.FileName}
	var cmds []fsm.Command
	now := time.Now().UnixNano()
	if req.SharedPath != "" {
		st, err := os.Stat(req.SharedPath)
		if err != nil {
			return transport.TaskView{}, transport.Errorf(http.StatusBadRequest, "shared path: %v", err)
		}
		if !st.Mode().IsRegular() {
			return transport.TaskView{}, transport.Errorf(http.StatusBadRequest, "shared path %s is not a regular file", req.SharedPath)
		}
		ref.SharedPath, ref.Size = req.SharedPath, st.Size()
	} else {
		br := bufio.NewReaderSize(body, 4096)
		if err := n.checkType(req.FileName, br); err != nil {
			return transport.TaskView{}, err
		}
		hash, size, err := n.blobs.Put(br, n.cfg.MaxFileSize, "")
		if err != nil {
			return transport.TaskView{}, err
		}
		ref.Hash, ref.Size = hash, size
		holders := n.replicate(ctx, hash, n.cfg.Replicas-1, []string{n.id})
		cmds = append(cmds, fsm.Command{Type: fsm.CmdBlobHolders, Now: now, Blob: &fsm.Blob{Hash: hash, Size: size, Holders: holders}})
	}
	t := fsm.Task{ID: NewTaskID(), Partition: req.Partition, FileID: req.FileID, File: ref, Metadata: req.Metadata,
		ReqMilli: n.cfg.TaskMilli, ReqMem: n.cfg.TaskMem, Mode: req.Mode}
	cmds = append(cmds, fsm.Command{Type: fsm.CmdSubmitTasks, Now: now, Tasks: []fsm.Task{t}})
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds})
	if err != nil {
		return transport.TaskView{}, fmt.Errorf("submit %s: %w", req.FileID, err)
	}
	sub := res.Batch[len(res.Batch)-1]
	// "duplicate task id" for this request's own fresh ID means an earlier try
	// of this same proposal was committed and the proposer retried after
	// losing the answer: the task is recorded, the submission succeeded.
	if len(sub.Batch) == 1 && sub.Batch[0].Err != "" && sub.Batch[0].Err != "duplicate task id "+t.ID {
		e := sub.Batch[0].Err
		switch {
		case strings.HasPrefix(e, fsm.ErrFileExists.Error()):
			return transport.TaskView{}, transport.Errorf(http.StatusConflict, "%s", e)
		case strings.HasPrefix(e, fsm.ErrFileMissing.Error()):
			return transport.TaskView{}, transport.Errorf(http.StatusNotFound, "%s", e)
		}
		return transport.TaskView{}, transport.Errorf(http.StatusBadRequest, "%s", e)
	}
	var tv transport.TaskView
	var found bool
	n.fsm.View(func(s *fsm.State) {
		if st := s.Tasks[t.ID]; st != nil {
			tv, found = viewOf(st), true
		}
	})
	if !found {
		t.State = fsm.Queued
		t.Attempt = 1
		tv = viewOf(&t)
	}
	return tv, nil
}

func viewOf(t *fsm.Task) transport.TaskView {
	v := transport.TaskView{ID: t.ID, State: string(t.State), Stage: t.Stage, Partition: t.Partition, FileID: t.FileID,
		FileName: t.File.Name, Size: t.File.Size, Hash: t.File.Hash, Metadata: t.Metadata, NodeID: t.NodeID, GPU: t.GPU,
		Attempt: t.Attempt, Failures: t.Failures, Error: t.Error, Chunks: t.Chunks,
		Submitted: t.Submitted, Started: t.Started, Finished: t.Finished}
	if t.State.Active() {
		if t.GPU >= 0 {
			v.GPUs = gpu.FormatMilli(t.Milli)
		}
	} else {
		v.GPU = -1
		v.NodeID = t.LastNode
	}
	return v
}

// Tasks implements transport.Backend.
func (n *Node) Tasks(ctx context.Context, state, partition string) ([]transport.TaskView, error) {
	var out []transport.TaskView
	n.fsm.View(func(s *fsm.State) {
		out = make([]transport.TaskView, 0, len(s.Tasks))
		for _, t := range s.Tasks {
			if (state == "" || string(t.State) == state) && (partition == "" || t.Partition == partition) {
				out = append(out, viewOf(t))
			}
		}
	})
	sort.Slice(out, func(i, j int) bool {
		if out[i].Submitted != out[j].Submitted {
			return out[i].Submitted < out[j].Submitted
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// Task implements transport.Backend.
func (n *Node) Task(ctx context.Context, id string) (transport.TaskView, error) {
	var tv transport.TaskView
	ok := false
	n.fsm.View(func(s *fsm.State) {
		if t := s.Tasks[id]; t != nil {
			tv, ok = viewOf(t), true
		}
	})
	if !ok {
		return tv, transport.Errorf(http.StatusNotFound, "task %s not found", id)
	}
	return tv, nil
}

// Cancel implements transport.Backend.
func (n *Node) Cancel(ctx context.Context, id string) error {
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdCancelTask, TaskID: id})
	if err != nil {
		return err
	}
	if res.Err != "" {
		if strings.HasPrefix(res.Err, fsm.ErrUnknownTask.Error()) {
			return transport.Errorf(http.StatusNotFound, "task %s not found", id)
		}
		return transport.Errorf(http.StatusConflict, "%s", res.Err)
	}
	return nil
}

// Drain implements transport.Backend. The node may be named by ID or name.
func (n *Node) Drain(ctx context.Context, req transport.DrainRequest) error {
	var id string
	n.fsm.View(func(s *fsm.State) {
		for nid, nd := range s.Nodes {
			if nid == req.Node || nd.Name == req.Node {
				id = nid
			}
		}
	})
	if id == "" {
		return transport.Errorf(http.StatusNotFound, "no node named %q", req.Node)
	}
	c := fsm.Command{Type: fsm.CmdSetDrain, NodeID: id, Draining: !req.Cancel, Error: "operator"}
	if !req.Cancel && req.Deadline != "" {
		d, err := time.ParseDuration(req.Deadline)
		if err != nil || d <= 0 {
			return transport.Errorf(http.StatusBadRequest, "deadline %q is not a positive duration", req.Deadline)
		}
		c.Deadline = time.Now().Add(d).UnixNano()
	}
	res, err := n.prop.Propose(ctx, c)
	if err != nil {
		return err
	}
	return res.Error()
}

// OpenBlob implements transport.Backend.
func (n *Node) OpenBlob(hash string) (io.ReadCloser, int64, error) { return n.blobs.Open(hash) }

// PutBlob implements transport.Backend.
func (n *Node) PutBlob(ctx context.Context, hash string, body io.Reader) error {
	if !validHash(hash) {
		return transport.Errorf(http.StatusBadRequest, "invalid blob hash %q", hash)
	}
	_, _, err := n.blobs.Put(body, 0, hash)
	return err
}

// PeakRunning is the most tasks this node ran at once (tests, benchmarks).
func (n *Node) PeakRunning() int { return n.pool.Peak() }

// isDuplicate recognises the rejection of a retried submission whose first
// try was applied: the task exists, so the submission succeeded.
func isDuplicate(err string) bool { return strings.HasPrefix(err, "duplicate task id") }
