package fsm

import (
	"fmt"
	"sort"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/scheduler"
)

type gpuKey struct {
	node string
	gpu  int
}

type gpuUse struct {
	milli int
	mem   uint64
}

// MetaClusterID is the State.Meta key of the cluster's identity.
const MetaClusterID = "cluster_id"

// ClusterID returns the cluster's identity, "" before the first leader
// recorded it.
func (s *State) ClusterID() string { return s.Meta[MetaClusterID] }

// State is the whole replicated state. The exported fields are the snapshot;
// the unexported indexes are derived from them and rebuilt on restore.
type State struct {
	Nodes    map[string]*Node `json:"nodes"`
	Tasks    map[string]*Task `json:"tasks"`
	Allocs   map[string]Alloc `json:"allocs"`
	Files    map[string]*File `json:"files"`
	Blobs    map[string]*Blob `json:"blobs"`
	Settings Settings         `json:"settings"`
	Seq      uint64           `json:"seq"`
	Finished []string         `json:"finished"` // terminal task IDs, oldest first
	// ChainCursor is the partition that last received a chained slot, so
	// chaining goes round-robin across partitions.
	ChainCursor string            `json:"chain_cursor,omitempty"`
	Index       uint64            `json:"index"` // last applied Raft index
	Meta        map[string]string `json:"meta,omitempty"`
	// Partitions are the partitions' own records (partitions.go); older
	// snapshots have none and their partitions are implied by their files.
	Partitions map[string]*Partition `json:"partitions,omitempty"`
	// Tokens are the role tokens by ID (tokens.go); absent in old snapshots.
	Tokens map[string]*Token `json:"tokens,omitempty"`
	// Events is the bounded cluster history, oldest first (events.go).
	Events   []Event `json:"events,omitempty"`
	EventSeq uint64  `json:"event_seq,omitempty"`

	finHead int
	usage   map[gpuKey]gpuUse
	cpuUsed map[string]int
	active  map[string]int // node -> assigned+running tasks
	queue   *queueIndex
	byNode  map[string]map[string]struct{}
	// prefetched is node -> tasks prefetched to it (prefetch.go).
	prefetched map[string]map[string]struct{}
	// unclaimed is the tasks whose callback nobody claimed yet, due or
	// not (callback.go).
	unclaimed map[string]struct{}
}

// New returns an empty state.
func New() *State {
	s := &State{
		Nodes:    map[string]*Node{},
		Tasks:    map[string]*Task{},
		Allocs:   map[string]Alloc{},
		Files:    map[string]*File{},
		Blobs:    map[string]*Blob{},
		Settings: DefaultSettings(),
	}
	s.rebuild()
	return s
}

// FileKey is the Files map key of a (partition, file ID).
func FileKey(partition, fileID string) string { return partition + "\x00" + fileID }

func (s *State) rebuild() {
	s.usage = map[gpuKey]gpuUse{}
	s.cpuUsed = map[string]int{}
	s.active = map[string]int{}
	s.queue = newQueueIndex()
	s.byNode = map[string]map[string]struct{}{}
	s.prefetched = map[string]map[string]struct{}{}
	s.unclaimed = map[string]struct{}{}
	// Sorted first, so every add is an append rather than an insertion.
	var qs []*Task
	for _, t := range s.Tasks {
		if t.State == Queued {
			qs = append(qs, t)
		}
		if t.State == Prefetched {
			s.addPrefetched(t)
		}
		s.noteCallback(t)
	}
	sort.Slice(qs, func(i, j int) bool { return qs[i].Seq < qs[j].Seq })
	for _, t := range qs {
		s.queue.add(t)
	}
	for id, a := range s.Allocs {
		s.addUse(id, a)
	}
}

func (s *State) addUse(taskID string, a Alloc) {
	if a.GPU < 0 {
		s.cpuUsed[a.NodeID]++
	} else {
		k := gpuKey{a.NodeID, a.GPU}
		u := s.usage[k]
		u.milli += a.Milli
		u.mem += a.MemBytes
		s.usage[k] = u
	}
	s.active[a.NodeID]++
	m := s.byNode[a.NodeID]
	if m == nil {
		m = map[string]struct{}{}
		s.byNode[a.NodeID] = m
	}
	m[taskID] = struct{}{}
}

func (s *State) dropUse(taskID string, a Alloc) {
	if a.GPU < 0 {
		s.cpuUsed[a.NodeID]--
	} else {
		k := gpuKey{a.NodeID, a.GPU}
		u := s.usage[k]
		u.milli -= a.Milli
		u.mem -= a.MemBytes
		if u.milli == 0 && u.mem == 0 {
			delete(s.usage, k)
		} else {
			s.usage[k] = u
		}
	}
	s.active[a.NodeID]--
	if s.active[a.NodeID] == 0 {
		delete(s.active, a.NodeID)
	}
	delete(s.byNode[a.NodeID], taskID)
}

// GPUUsage returns the milli-GPUs and bytes allocated on one GPU.
func (s *State) GPUUsage(nodeID string, gpuIndex int) (milli int, mem uint64) {
	u := s.usage[gpuKey{nodeID, gpuIndex}]
	return u.milli, u.mem
}

// CPUUsed returns the CPU-slot tasks on a node.
func (s *State) CPUUsed(nodeID string) int { return s.cpuUsed[nodeID] }

// ActiveOn returns the assigned and running tasks on a node.
func (s *State) ActiveOn(nodeID string) int { return s.active[nodeID] }

// ActiveTotal returns the assigned and running tasks in the cluster.
func (s *State) ActiveTotal() int { return len(s.Allocs) }

// TasksOn lists the assigned and running tasks on a node, sorted by ID.
func (s *State) TasksOn(nodeID string) []*Task {
	m := s.byNode[nodeID]
	out := make([]*Task, 0, len(m))
	for id := range m {
		out = append(out, s.Tasks[id])
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// QueuedCount is the number of queued tasks.
func (s *State) QueuedCount() int { return s.queue.len() }

// Counts returns the number of tasks in each state.
func (s *State) Counts() map[TaskState]int {
	c := map[TaskState]int{}
	for _, t := range s.Tasks {
		c[t.State]++
	}
	return c
}

// Apply applies one command and returns its result. It must stay
// deterministic: no clocks, no randomness, no map-order-dependent output.
func (s *State) Apply(index uint64, c Command) Result {
	if index > s.Index {
		s.Index = index
	}
	r := s.applyNoting(c)
	s.compact(c.Now)
	return r
}

func (s *State) apply(c Command) Result {
	switch c.Type {
	case CmdBatch:
		res := Result{Batch: make([]Result, len(c.Batch))}
		for i, sub := range c.Batch {
			if sub.Type == CmdBatch {
				res.Batch[i] = rejectf(CodeInvalid, "nested batch")
				continue
			}
			res.Batch[i] = s.applyNoting(sub)
		}
		return res
	case CmdRegisterNode:
		return s.registerNode(c)
	case CmdEvents:
		return s.applyEvents(c)
	case CmdNodeStatus:
		n, ok := s.Nodes[c.NodeID]
		if !ok {
			return reject(ErrUnknownNode, c.NodeID)
		}
		if n.Status != c.Status {
			n.Status = c.Status
			n.StatusSince = c.Now
		}
		return Result{}
	case CmdRemoveNode:
		if _, ok := s.Nodes[c.NodeID]; !ok {
			return reject(ErrUnknownNode, c.NodeID)
		}
		s.releaseNode(c.NodeID, "node "+c.NodeID+" left the cluster", false, c.Now)
		delete(s.Nodes, c.NodeID)
		for _, b := range s.Blobs {
			b.Holders = without(b.Holders, c.NodeID)
		}
		return Result{}
	case CmdSubmitTasks:
		return s.submit(c)
	case CmdAssignTasks:
		return s.assign(c)
	case CmdPrefetchTasks:
		return s.prefetch(c)
	case CmdTaskProgress:
		t, r := s.current(c.TaskID, c.Attempt)
		if t == nil {
			return r
		}
		t.State = Running
		t.Stage = c.Stage
		if t.Started == 0 {
			t.Started = c.Now
		}
		s.syncFile(t, c.Now)
		return Result{}
	case CmdCompleteTask:
		t, r := s.current(c.TaskID, c.Attempt)
		if t == nil {
			return r
		}
		t.Chunks = c.Chunks
		t.Error = ""
		if t.Started == 0 {
			t.Started = c.Started
		}
		a := s.Allocs[t.ID]
		s.finish(t, Completed, c.Now)
		if f := s.Files[FileKey(t.Partition, t.FileID)]; f != nil && f.TaskID == t.ID {
			f.ChunkHolders = append([]string(nil), c.ChunkHolders...)
			sort.Strings(f.ChunkHolders)
		}
		if c.Next != nil {
			if id := s.startNext(a, *c.Next, c.Now); id != "" {
				if c.Chain {
					s.topUp(a.NodeID, c.Limit, c.Now)
				}
				return Result{Chained: id}
			}
		}
		if c.Chain {
			id := s.chainNext(a, "", c.Now)
			s.topUp(a.NodeID, c.Limit, c.Now)
			return Result{Chained: id}
		}
		return Result{}
	case CmdFailTask:
		t, r := s.current(c.TaskID, c.Attempt)
		if t == nil {
			return r
		}
		if t.Started == 0 {
			t.Started = c.Started
		}
		a := s.Allocs[t.ID]
		switch {
		case c.NodeLoss:
			s.loseNode(t, c.Error, c.Now)
		default:
			t.Failures++
			t.Error = c.Error
			if c.Permanent || t.Failures >= s.maxAttempts() {
				s.finish(t, Failed, c.Now)
			} else {
				s.requeue(t, c.Now)
			}
		}
		if c.Next != nil && c.Next.ID != t.ID {
			if id := s.startNext(a, *c.Next, c.Now); id != "" {
				if c.Chain {
					s.topUp(a.NodeID, c.Limit, c.Now)
				}
				return Result{Chained: id}
			}
		}
		if c.Chain {
			// Not the task that just failed: its retry goes through the scheduler.
			return Result{Chained: s.chainNext(a, t.ID, c.Now)}
		}
		return Result{}
	case CmdRequeueTasks:
		n := 0
		for _, ref := range c.Refs {
			t := s.Tasks[ref.ID]
			if t == nil || t.Attempt != ref.Attempt || !(t.State.Active() || t.State == Prefetched) {
				continue
			}
			if c.NodeLoss && t.State.Active() {
				s.loseNode(t, c.Error, c.Now)
				n++
				continue
			}
			if c.Error != "" {
				t.Error = c.Error
			}
			s.requeue(t, c.Now)
			n++
		}
		return Result{Applied: n}
	case CmdCancelTask:
		t := s.Tasks[c.TaskID]
		if t == nil {
			return reject(ErrUnknownTask, c.TaskID)
		}
		if t.State.Terminal() {
			return rejectf(CodeConflict, "task %s is already %s", t.ID, t.State)
		}
		s.finish(t, Cancelled, c.Now)
		return Result{}
	case CmdSetDrain:
		n, ok := s.Nodes[c.NodeID]
		if !ok {
			return reject(ErrUnknownNode, c.NodeID)
		}
		if !c.Draining && c.OnlyIfReason != "" && (!n.Draining || n.DrainReason != c.OnlyIfReason) {
			return Result{} // not that drain: left as it is
		}
		n.Draining = c.Draining
		n.DrainDeadline, n.DrainReason = 0, ""
		if c.Draining {
			n.DrainDeadline = c.Deadline
			n.DrainReason = c.Error
			// Prefetched work has not started: it goes back at once rather
			// than waiting out the drain deadline.
			s.requeuePrefetched(n.ID, "node "+n.Name+" is draining", c.Now)
		}
		return Result{}
	case CmdReleaseNode:
		n, ok := s.Nodes[c.NodeID]
		if !ok {
			return reject(ErrUnknownNode, c.NodeID)
		}
		if c.OnlyIfFailed && n.Status == NodeAlive {
			return Result{}
		}
		reason := c.Error
		if reason == "" {
			reason = "node " + n.Name + " released its work"
		}
		return Result{Applied: s.releaseNode(c.NodeID, reason, c.NodeLoss, c.Now)}
	case CmdCreateToken, CmdRevokeToken, CmdPeerSecret:
		return s.applySecurity(c)
	case CmdClusterID:
		switch have := s.Meta[MetaClusterID]; {
		case c.ClusterID == "":
			return rejectf(CodeInvalid, "cluster_id without an ID")
		case have == c.ClusterID:
			return Result{}
		case have != "":
			return rejectf(CodeConflict, "this ledger belongs to cluster %s, not %s", have, c.ClusterID)
		}
		if s.Meta == nil {
			s.Meta = map[string]string{}
		}
		s.Meta[MetaClusterID] = c.ClusterID
		return Result{Applied: 1}
	case CmdSettings:
		if c.Settings != nil {
			s.Settings = *c.Settings
		}
		return Result{}
	case CmdDeleteFile:
		k := FileKey(c.Partition, c.FileID)
		if _, ok := s.Files[k]; !ok {
			return reject(ErrFileMissing, c.Partition+"/"+c.FileID)
		}
		s.dropUnusedBlobs([]string{s.deleteFile(k, c.Now)})
		return Result{}
	case CmdDeletePart:
		keys := make([]string, 0)
		for k, f := range s.Files {
			if f.Partition == c.Partition {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		hashes := make([]string, 0, len(keys))
		for _, k := range keys {
			hashes = append(hashes, s.deleteFile(k, c.Now))
		}
		s.dropUnusedBlobs(hashes)
		return Result{Applied: len(keys) + s.dropPartition(c.Partition)}
	case CmdFileMetadata:
		f, ok := s.Files[FileKey(c.Partition, c.FileID)]
		if !ok {
			return reject(ErrFileMissing, c.Partition+"/"+c.FileID)
		}
		// Copy on write: metadata maps are shared between a task, its file
		// and the command that brought them, and are never changed in place.
		merged := make(map[string]any, len(f.Metadata)+len(c.Metadata))
		for k, v := range f.Metadata {
			merged[k] = v
		}
		for k, v := range c.Metadata {
			// A JSON null is how a client clears a key (merge-patch style):
			// storing it would keep the key the client asked to drop.
			if v == nil {
				delete(merged, k)
				continue
			}
			merged[k] = v
		}
		if len(merged) == 0 {
			merged = nil
		}
		f.Metadata = merged
		if t := s.Tasks[f.TaskID]; t != nil {
			t.Metadata = merged
		}
		f.Updated = c.Now
		return Result{}
	case CmdChunkHolders:
		f := s.Files[FileKey(c.Partition, c.FileID)]
		if f == nil || f.LiveTask != c.TaskID {
			return rejectf(CodeConflict, "chunk holders for a file version that is not live")
		}
		for _, h := range c.ChunkHolders {
			if !contains(f.ChunkHolders, h) {
				f.ChunkHolders = append(f.ChunkHolders, h)
			}
		}
		for _, h := range c.Remove {
			f.ChunkHolders = without(f.ChunkHolders, h)
		}
		sort.Strings(f.ChunkHolders)
		return Result{}
	case CmdCreatePartition, CmdPartitionConfig:
		return s.applyPartition(c)
	case CmdCallback:
		return s.applyCallback(c)
	case CmdCopyFile:
		return s.applyCopy(c)
	case CmdBlobHolders:
		if c.Blob == nil {
			return rejectf(CodeInvalid, "blob_holders without blob")
		}
		b := s.Blobs[c.Blob.Hash]
		if b == nil {
			b = &Blob{Hash: c.Blob.Hash, Size: c.Blob.Size}
			s.Blobs[b.Hash] = b
		}
		for _, h := range c.Blob.Holders {
			if !contains(b.Holders, h) {
				b.Holders = append(b.Holders, h)
			}
		}
		for _, h := range c.Remove {
			b.Holders = without(b.Holders, h)
		}
		sort.Strings(b.Holders)
		return Result{}
	}
	return rejectf(CodeInvalid, "unknown command type %q", c.Type)
}

// maxNodeLosses is the losses a task survives; negative: no quarantine.
func (s *State) maxNodeLosses() int {
	if s.Settings.MaxNodeLosses == 0 {
		return DefaultMaxNodeLosses
	}
	return s.Settings.MaxNodeLosses
}

// PoisonPrefix starts the error of a task failed by the quarantine.
const PoisonPrefix = "suspected poison document"

// loseNode ends an attempt whose node or runner was lost under it: the
// task goes back to the queue, unless this loss is one more than the
// quarantine allows. A document that takes down whatever parses it would
// otherwise walk through the cluster node by node (node losses do not
// count as failures, so --max-attempts never stops it).
func (s *State) loseNode(t *Task, reason string, now int64) {
	t.NodeLosses++
	t.Error = reason
	if max := s.maxNodeLosses(); max >= 0 && t.NodeLosses > max {
		t.Error = fmt.Sprintf("%s: lost %d nodes while running it (last: %s)", PoisonPrefix, t.NodeLosses, reason)
		s.finish(t, Failed, now)
		s.addEvent(now, EvTaskPoison, t.LastNode, t.ID, "%s quarantined: %s", t.FileID, t.Error)
		return
	}
	s.requeue(t, now)
}

func (s *State) maxAttempts() int {
	if s.Settings.MaxAttempts <= 0 {
		return 1
	}
	return s.Settings.MaxAttempts
}

// current returns the task if the report's attempt is the live one.
func (s *State) current(id string, attempt int) (*Task, Result) {
	t := s.Tasks[id]
	if t == nil {
		return nil, reject(ErrUnknownTask, id)
	}
	if t.Attempt != attempt || !t.State.Active() {
		return nil, rejectf(CodeStaleAttempt, "%s: task %s is at attempt %d (%s), report is for attempt %d", ErrStaleAttempt, id, t.Attempt, t.State, attempt)
	}
	return t, Result{}
}

func (s *State) registerNode(c Command) Result {
	if c.Node == nil || c.Node.ID == "" {
		return rejectf(CodeInvalid, "register_node without node")
	}
	in := *c.Node
	in.GPUs = append([]gpu.Device(nil), in.GPUs...)
	old, ok := s.Nodes[in.ID]
	if ok {
		in.Draining = old.Draining
		in.DrainDeadline = old.DrainDeadline
		in.DrainReason = old.DrainReason
		if old.Status == NodeAlive {
			in.StatusSince = old.StatusSince
		} else {
			in.StatusSince = c.Now
		}
	} else {
		in.StatusSince = c.Now
	}
	in.Status = NodeAlive
	s.Nodes[in.ID] = &in
	// Work the node can no longer hold (a GPU vanished, fewer CPU slots, a
	// smaller card or a larger reserve) goes back to the queue so the
	// capacity invariants keep holding. Tasks keep their place in ID order,
	// so every replica requeues the same ones.
	cpuLeft := in.CPUSlots
	memLeft := make([]uint64, len(in.GPUs))
	for i := range in.GPUs {
		memLeft[i] = usableMem(&in, i)
	}
	for _, t := range s.TasksOn(in.ID) {
		a := s.Allocs[t.ID]
		keep := true
		switch {
		case a.GPU >= len(in.GPUs):
			keep = false
		case a.GPU < 0:
			keep = cpuLeft > 0
			if keep {
				cpuLeft--
			}
		case a.MemBytes > 0:
			keep = a.MemBytes <= memLeft[a.GPU]
			if keep {
				memLeft[a.GPU] -= a.MemBytes
			}
		}
		if !keep {
			t.Error = "capacity of node changed"
			s.requeue(t, c.Now)
		}
	}
	return Result{}
}

func (s *State) submit(c Command) Result {
	res := Result{Batch: make([]Result, len(c.Tasks))}
	var released []string
	defer func() { s.dropUnusedBlobs(released) }()
	for i := range c.Tasks {
		in := c.Tasks[i]
		if in.ID == "" {
			res.Batch[i] = rejectf(CodeInvalid, "task without id")
			continue
		}
		if _, dup := s.Tasks[in.ID]; dup {
			res.Batch[i] = rejectf(CodeDuplicate, "%s %s", ErrDuplicate, in.ID)
			continue
		}
		k := FileKey(in.Partition, in.FileID)
		old, exists := s.Files[k]
		switch {
		case in.Mode == ModeCreate && exists:
			res.Batch[i] = reject(ErrFileExists, in.Partition+"/"+in.FileID)
			continue
		case in.Mode == ModeReplace && !exists:
			res.Batch[i] = reject(ErrFileMissing, in.Partition+"/"+in.FileID)
			continue
		}
		t := in
		// Shared, not copied (100k tasks of a bulk submission carry the same
		// keys): maps are copy-on-write here.
		t.Metadata = in.Metadata
		s.Seq++
		t.Seq = s.Seq
		t.State = Queued
		t.Stage = ""
		t.Attempt = 1
		t.Failures, t.NodeLosses, t.FirstStart = 0, 0, 0
		t.NodeID, t.GPU, t.Milli, t.MemBytes = "", 0, 0, 0
		t.Submitted = c.Now
		t.Started, t.Finished, t.Error, t.Chunks = 0, 0, "", 0
		if t.Callback != nil {
			t.Callback = &Callback{URL: t.Callback.URL, Token: t.Callback.Token}
		}
		if exists {
			// The old version's chunks stay searchable: the new task overwrites
			// them by chunk ID and trims the surplus when it completes.
			if ot := s.Tasks[old.TaskID]; ot != nil && !ot.State.Terminal() {
				ot.Error = "superseded by task " + t.ID
				s.finish(ot, Cancelled, c.Now)
			}
		}
		s.Tasks[t.ID] = &t
		s.queue.add(&t)
		s.noteCallback(&t)
		nf := &File{Partition: t.Partition, FileID: t.FileID, TaskID: t.ID, Ref: t.File,
			Metadata: t.Metadata, State: Queued, Updated: c.Now}
		if exists {
			nf.LiveTask, nf.LiveChunks = old.LiveTask, old.LiveChunks
		}
		s.Files[k] = nf
		if exists && old.Ref.Hash != "" && old.Ref.Hash != t.File.Hash {
			released = append(released, old.Ref.Hash)
		}
	}
	return res
}

func (s *State) assign(c Command) Result {
	res := Result{Batch: make([]Result, len(c.Assignments))}
	for i, a := range c.Assignments {
		res.Batch[i] = s.assignOne(a, c.Now)
	}
	return res
}

func (s *State) assignOne(a Assignment, now int64) Result {
	t := s.Tasks[a.TaskID]
	if t == nil {
		return reject(ErrUnknownTask, a.TaskID)
	}
	// A prefetched task is placed only on its own node: that is where it
	// waits, and where it may already be starting.
	pre := t.State == Prefetched && t.NodeID == a.NodeID
	if (t.State != Queued && !pre) || t.Attempt != a.Attempt {
		return rejectf(CodeStaleAttempt, "%s: task %s is %s at attempt %d", ErrStaleAttempt, t.ID, t.State, t.Attempt)
	}
	n := s.Nodes[a.NodeID]
	if n == nil {
		return reject(ErrUnknownNode, a.NodeID)
	}
	if n.Status != NodeAlive || n.Draining {
		return rejectf(CodeNoCapacity, "node %s is not eligible (%s, draining=%v)", n.ID, n.Status, n.Draining)
	}
	if n.MaxConcurrent > 0 && s.active[n.ID] >= n.MaxConcurrent {
		return rejectf(CodeNoCapacity, "node %s is at its concurrency limit", n.ID)
	}
	if a.GPU < 0 {
		if s.cpuUsed[n.ID] >= n.CPUSlots {
			return rejectf(CodeNoCapacity, "node %s has no free CPU slot", n.ID)
		}
		a.Milli, a.MemBytes = 0, 0
	} else {
		if a.GPU >= len(n.GPUs) {
			return rejectf(CodeNoCapacity, "node %s has no GPU %d", n.ID, a.GPU)
		}
		if a.Milli <= 0 || a.Milli > gpu.MilliPerGPU {
			return rejectf(CodeInvalid, "invalid GPU fraction %d", a.Milli)
		}
		// The scheduler's own fit test, so a plan it made is never refused
		// here for a reason it did not know.
		if g := s.gpuView(n, a.GPU); !scheduler.FitsGPU(a.Milli, a.MemBytes, g) {
			if g.MilliUsed+a.Milli > gpu.MilliPerGPU {
				return rejectf(CodeNoCapacity, "GPU %d of node %s has %d milli-GPUs free, task needs %d", a.GPU, n.ID, gpu.MilliPerGPU-g.MilliUsed, a.Milli)
			}
			return rejectf(CodeNoCapacity, "GPU %d of node %s lacks memory for the task", a.GPU, n.ID)
		}
	}
	al := Alloc{NodeID: n.ID, GPU: a.GPU, Milli: a.Milli, MemBytes: a.MemBytes}
	if pre {
		s.unprefetch(t)
	} else {
		s.queue.remove(t.ID)
	}
	t.State = Assigned
	t.Stage = ""
	t.NodeID, t.GPU, t.Milli, t.MemBytes = al.NodeID, al.GPU, al.Milli, al.MemBytes
	t.LastNode = al.NodeID
	if t.FirstStart == 0 {
		t.FirstStart = now
	}
	s.Allocs[t.ID] = al
	s.addUse(t.ID, al)
	s.syncFile(t, now)
	return Result{}
}

// gpuView is card idx of n with its current allocations, as the placement
// rule (scheduler.FitsGPU) sees a card.
func (s *State) gpuView(n *Node, idx int) scheduler.GPU {
	u := s.usage[gpuKey{n.ID, idx}]
	return scheduler.GPU{Index: idx, MilliUsed: u.milli, MemTotal: n.GPUs[idx].MemTotal, MemReserve: n.GPUReserve, MemUsed: u.mem}
}

// usableMem is a GPU's memory less the node's reserve.
func usableMem(n *Node, idx int) uint64 {
	total := n.GPUs[idx].MemTotal
	if total <= n.GPUReserve {
		return 0
	}
	return total - n.GPUReserve
}

// UsableMem is exported for callers that build scheduler input.
func UsableMem(n *Node, idx int) uint64 { return usableMem(n, idx) }

func (s *State) freeAlloc(t *Task) {
	if t.State == Prefetched {
		s.unprefetch(t)
	}
	if a, ok := s.Allocs[t.ID]; ok {
		s.dropUse(t.ID, a)
		delete(s.Allocs, t.ID)
	}
	t.NodeID, t.GPU, t.Milli, t.MemBytes = "", 0, 0, 0
}

func (s *State) requeue(t *Task, now int64) {
	s.freeAlloc(t)
	t.State = Queued
	t.Stage = ""
	t.Attempt++
	s.queue.add(t)
	s.syncFile(t, now)
}

func (s *State) finish(t *Task, st TaskState, now int64) {
	s.freeAlloc(t)
	s.queue.remove(t.ID)
	t.State = st
	t.Finished = now
	s.Finished = append(s.Finished, t.ID)
	s.syncFile(t, now)
}

// releaseNode requeues a node's work; lost says the node was declared
// failed (not drained, not departed), which counts against each running
// task's quarantine. Tasks go in ID order, so every replica records the
// same events.
func (s *State) releaseNode(nodeID, reason string, lost bool, now int64) int {
	ts := s.TasksOn(nodeID)
	for _, t := range ts {
		if lost {
			s.loseNode(t, reason, now)
			continue
		}
		t.Error = reason
		s.requeue(t, now)
	}
	return len(ts) + s.requeuePrefetched(nodeID, reason, now)
}

func (s *State) syncFile(t *Task, now int64) {
	f := s.Files[FileKey(t.Partition, t.FileID)]
	if f == nil || f.TaskID != t.ID {
		return
	}
	f.State = t.State
	f.Chunks = t.Chunks
	f.Updated = now
	if t.State == Completed {
		f.LiveTask, f.LiveChunks = t.ID, t.Chunks
	}
}

// deleteFile removes a file and returns its blob hash for dropUnusedBlobs.
func (s *State) deleteFile(k string, now int64) string {
	f := s.Files[k]
	if t := s.Tasks[f.TaskID]; t != nil && !t.State.Terminal() {
		t.Error = "file deleted"
		s.finish(t, Cancelled, now)
	}
	delete(s.Files, k)
	return f.Ref.Hash
}

// dropUnusedBlobs forgets the blobs among hashes that no file or unfinished
// task uses any more. It scans the ledger once for the whole set, so deleting
// a partition of 20,000 files stays linear.
func (s *State) dropUnusedBlobs(hashes []string) {
	if len(hashes) == 0 {
		return
	}
	cand := make(map[string]bool, len(hashes))
	for _, h := range hashes {
		cand[h] = true
	}
	for _, f := range s.Files {
		delete(cand, f.Ref.Hash)
	}
	for _, t := range s.Tasks {
		if !t.State.Terminal() {
			delete(cand, t.File.Hash)
		}
	}
	for h := range cand {
		delete(s.Blobs, h)
	}
}

// compact drops the oldest finished tasks beyond the retention count or age.
func (s *State) compact(now int64) {
	keep := s.Settings.RetainCount
	if keep <= 0 {
		keep = DefaultSettings().RetainCount
	}
	for len(s.Finished)-s.finHead > 0 {
		id := s.Finished[s.finHead]
		t := s.Tasks[id]
		if t != nil && t.State.Terminal() {
			over := len(s.Finished)-s.finHead > keep
			old := s.Settings.RetainMaxAge > 0 && now > 0 && now-t.Finished > s.Settings.RetainMaxAge
			if !over && !old {
				break
			}
			delete(s.Tasks, id)
			delete(s.unclaimed, id)
		}
		s.Finished[s.finHead] = ""
		s.finHead++
	}
	// Reclaim the consumed prefix now and then so the slice does not grow forever.
	if s.finHead > 1024 && s.finHead*2 > len(s.Finished) {
		s.Finished = append([]string(nil), s.Finished[s.finHead:]...)
		s.finHead = 0
	}
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func without(xs []string, x string) []string {
	out := xs[:0]
	for _, v := range xs {
		if v != x {
			out = append(out, v)
		}
	}
	return out
}

// chainNext hands a just-freed allocation straight to the next queued task
// that fits it on the same node and GPU, inside the same Apply. It saves the
// scheduler's round trip (a second Raft commit) between one task ending and
// the next one starting in the same slot; the cluster-wide decisions (where
// idle capacity goes, spreading) stay with the scheduler. Partitions take
// turns (round-robin from ChainCursor) and each gives its oldest task, so
// chaining keeps the scheduler's FIFO-within, fair-across order.
func (s *State) chainNext(freed Alloc, exclude string, now int64) string {
	n := s.Nodes[freed.NodeID]
	if n == nil || freed.GPU >= len(n.GPUs) {
		return ""
	}
	parts := make([]string, 0, len(s.queue.byPart))
	for p := range s.queue.byPart {
		parts = append(parts, p)
	}
	if len(parts) == 0 {
		return ""
	}
	sort.Strings(parts)
	start := sort.SearchStrings(parts, s.ChainCursor)
	if start < len(parts) && parts[start] == s.ChainCursor {
		start++
	}
	for i := 0; i < len(parts); i++ {
		p := parts[(start+i)%len(parts)]
		head := s.Tasks[s.queue.byPart[p][0].id]
		if head.ID == exclude {
			continue
		}
		a := Assignment{TaskID: head.ID, Attempt: head.Attempt, NodeID: freed.NodeID, GPU: freed.GPU}
		// The scheduler's rule decides card or CPU slot and the fraction;
		// assignOne then applies its fit test, as for a planned assignment.
		if freed.GPU >= 0 {
			if !scheduler.WantsGPU(head.ReqMilli, head.ReqMem) {
				continue // a CPU task does not take a GPU slot
			}
			a.Milli = scheduler.Need(head.ReqMilli, head.ReqMem, n.GPUs[freed.GPU].MemTotal)
			a.MemBytes = head.ReqMem
		} else if scheduler.UsesGPU(head.ReqMilli, head.ReqMem, len(n.GPUs)) {
			continue // a GPU task belongs on a GPU of this node, not its CPU slot
		}
		if r := s.assignOne(a, now); !r.Rejected() {
			s.ChainCursor = p
			return head.ID
		}
	}
	return ""
}
