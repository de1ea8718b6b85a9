package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// Ledger backup and disaster recovery (`ragnode snapshot save|restore`).
//
// A save is a user snapshot of this node's own Raft: consistent at one
// index, taken on any node (a follower first catches up with the commit
// index it knows), streamed in transport's snapshot file format.
//
// A restore runs on the leader, which hands the ledger to Raft's Restore:
// Raft writes it as a snapshot past the end of its log, so followers
// install it as they would any snapshot. Before Raft sees a byte, the file
// is spooled to disk, its checksum checked and its ledger decoded in a
// scratch FSM, because Raft panics when the FSM cannot restore what it
// was handed. What the ledger brings along is settled here:
//   - identity: the restoring cluster keeps its own, written into the
//     ledger before Raft restores it. Adopting the snapshot's would let
//     the old cluster's nodes (their data dirs name it, and their Raft logs
//     may carry higher terms) gossip, serve and rejoin as members; keeping
//     it leaves them foreign, refused as any other cluster's node is.
//     Replacing a cluster's non-empty ledger with another cluster's needs
//     force: that is the restore to a wrong address;
//   - nodes: the snapshot's nodes that are not members here are recorded
//     as departed (never re-added to Raft under those IDs) and their tasks
//     requeued;
//   - the peer secret and the role tokens are the snapshot's: peers read
//     the secret from the ledger on every call (security.go);
//   - blobs and chunk copies are node-local and not in the ledger: the
//     answer counts the files whose bytes are on no member.

// restoreTimeout bounds how long Raft may take to accept a restore and
// to commit the entry after it (followers installing the snapshot).
const restoreTimeout = 5 * time.Minute

// SaveSnapshot implements transport.SnapshotBackend.
func (n *Node) SaveSnapshot(ctx context.Context) (transport.SnapshotHeader, io.ReadCloser, error) {
	// A follower snapshots what it has applied: wait (briefly) for the
	// entries it already knows are committed, so a save taken right after
	// a write on another node holds it.
	commit := n.raft.CommitIndex()
	for deadline := time.Now().Add(5 * time.Second); n.raft.AppliedIndex() < commit && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return transport.SnapshotHeader{}, nil, ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	f := n.raft.Snapshot()
	if err := f.Error(); err != nil {
		if errors.Is(err, raft.ErrNothingNewToSnapshot) {
			return transport.SnapshotHeader{}, nil, errs.New(errs.Unavailable, "nothing to save yet: this node has applied no ledger entry")
		}
		return transport.SnapshotHeader{}, nil, fmt.Errorf("take snapshot: %w", err)
	}
	meta, rc, err := f.Open()
	if err != nil {
		return transport.SnapshotHeader{}, nil, fmt.Errorf("open snapshot: %w", err)
	}
	var cid string
	n.fsm.View(func(s *fsm.State) { cid = s.ClusterID() })
	return transport.SnapshotHeader{
		ClusterID: cid, NodeID: n.id, NodeName: n.name,
		RaftIndex: meta.Index, RaftTerm: meta.Term, RaftSnapshotVersion: int(meta.Version), Size: meta.Size,
		CreatedAt: time.Now().UTC(), RagnodeVersion: Version,
	}, rc, nil
}

// RestoreSnapshot implements transport.SnapshotBackend.
func (n *Node) RestoreSnapshot(ctx context.Context, body io.Reader, force, forwarded bool) (transport.RestoreAnswer, error) {
	if n.raft.State() != raft.Leader {
		if forwarded {
			return transport.RestoreAnswer{}, errs.New(errs.Unavailable, "the leader changed while the restore was forwarded: run it again")
		}
		return n.forwardRestore(ctx, body, force)
	}
	// A second restore at once would only replace the first.
	if !n.restoreMu.TryLock() {
		return transport.RestoreAnswer{}, errs.New(errs.Conflict, "a restore is already under way on this node")
	}
	defer n.restoreMu.Unlock()
	return n.restoreOnLeader(ctx, body, force)
}

// forwardRestore streams a client's restore to the leader over the peer
// plane, the way writes are forwarded, and names the leader when that
// fails.
func (n *Node) forwardRestore(ctx context.Context, body io.Reader, force bool) (transport.RestoreAnswer, error) {
	addr, id := n.raft.LeaderWithID()
	if addr == "" {
		return transport.RestoreAnswer{}, errs.New(errs.Unavailable, "no leader elected yet: run the restore again once 'ragnode status' shows one")
	}
	h := n.peers.addrOf(string(id))
	if h == "" {
		return transport.RestoreAnswer{}, errs.Errorf(errs.Unavailable, "the leader %s has no known API address yet: run the restore again, or against the leader", id)
	}
	name := n.memberName(string(id))
	a, err := n.peers.client(h).ForwardRestore(ctx, body, force)
	var se *transport.StatusError
	switch {
	case err == nil:
		return a, nil
	case errors.As(err, &se):
		// The leader's own words, without the forwarding hop's HTTP code
		// stacked on them.
		msg := fmt.Sprintf("leader %s (%s): %s", name, h, se.Msg)
		if k := errs.KindOf(se); k != nil {
			return transport.RestoreAnswer{}, errs.New(k, msg)
		}
		return transport.RestoreAnswer{}, errors.New(msg)
	}
	return transport.RestoreAnswer{}, errs.Errorf(errs.Unavailable, "forward the restore to the leader %s at %s: %v (run it against that address)", name, h, err)
}

// memberName is a node's name from gossip or the ledger, else its ID.
func (n *Node) memberName(id string) string {
	for _, m := range n.serf.Members() {
		if m.Tags[tagID] == id {
			return m.Name
		}
	}
	name := id
	n.fsm.View(func(s *fsm.State) {
		if nd := s.Nodes[id]; nd != nil && nd.Name != "" {
			name = nd.Name
		}
	})
	return name
}

// restoreSpool is where an uploaded snapshot waits while it is checked.
func (n *Node) restoreSpool() (string, error) {
	dir := filepath.Join(n.cfg.DataDir, "snapshot-restore")
	// Restores are serialised: whatever is here was left by a crash.
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	return dir, os.MkdirAll(dir, 0o700)
}

// spoolWriter tells a disk failure from a failure to read the upload.
type spoolWriter struct {
	f   *os.File
	err error
}

func (w *spoolWriter) Write(p []byte) (int, error) {
	k, err := w.f.Write(p)
	if err != nil {
		w.err = err
	}
	return k, err
}

// snapshotFacts is what a restore reads from a ledger.
type snapshotFacts struct {
	cluster    string
	files      int
	partitions int
	unfinished int
	tasks      int
}

func ledgerFacts(s *fsm.State) snapshotFacts {
	parts := map[string]bool{}
	for p := range s.Partitions {
		parts[p] = true
	}
	for _, f := range s.Files {
		parts[f.Partition] = true
	}
	fc := snapshotFacts{cluster: s.ClusterID(), files: len(s.Files), partitions: len(parts), tasks: len(s.Tasks)}
	for _, t := range s.Tasks {
		if !t.State.Terminal() {
			fc.unfinished++
		}
	}
	return fc
}

func (n *Node) restoreOnLeader(ctx context.Context, body io.Reader, force bool) (transport.RestoreAnswer, error) {
	var a transport.RestoreAnswer
	sr, err := transport.OpenSnapshot(body)
	if err != nil {
		return a, err
	}
	hdr := sr.Header
	if v := raft.SnapshotVersion(hdr.RaftSnapshotVersion); v < raft.SnapshotVersionMin || v > raft.SnapshotVersionMax {
		return a, errs.Errorf(errs.Invalid, "the snapshot's Raft snapshot version %d is not one this ragnode restores (%d to %d)",
			v, raft.SnapshotVersionMin, raft.SnapshotVersionMax)
	}
	dir, err := n.restoreSpool()
	if err != nil {
		return a, errs.Errorf(errs.NoSpace, "prepare %s: %w", dir, err)
	}
	defer os.RemoveAll(dir)
	f, err := os.CreateTemp(dir, "upload-*")
	if err != nil {
		return a, errs.Errorf(errs.NoSpace, "spool snapshot: %w", err)
	}
	defer f.Close()
	sw := &spoolWriter{f: f}
	if _, err := io.Copy(sw, sr); err != nil {
		if sw.err != nil {
			return a, errs.Errorf(errs.NoSpace, "spool snapshot in %s: %w", dir, sw.err)
		}
		return a, err
	}
	// Decode it as the FSM will: Raft would panic on a ledger that does
	// not restore, and every node with invariant checks on would stop on
	// one that breaks them.
	scratch := fsm.NewFSM()
	if err := scratch.Restore(io.NopCloser(io.NewSectionReader(f, 0, hdr.Size))); err != nil {
		return a, errs.Errorf(errs.Invalid, "the snapshot's ledger does not decode: %v", err)
	}
	var snap snapshotFacts
	var broken error
	scratch.View(func(s *fsm.State) {
		snap = ledgerFacts(s)
		broken = s.CheckInvariants()
	})
	if broken != nil {
		return a, errs.Errorf(errs.Invalid, "the snapshot's ledger breaks an invariant: %v", broken)
	}
	var cur snapshotFacts
	n.fsm.View(func(s *fsm.State) { cur = ledgerFacts(s) })
	if cur.cluster == "" {
		// A cluster too new to have recorded its identity records it
		// first, so that it keeps it (see the top of this file) and
		// nothing records another one after the restore.
		n.ensureClusterID(ctx)
		n.fsm.View(func(s *fsm.State) { cur = ledgerFacts(s) })
	}
	mine := cur.cluster
	if mine == "" {
		return a, errs.New(errs.Unavailable, "this cluster has not recorded its identity yet: run the restore again in a moment")
	}
	if snap.cluster != mine && (cur.files > 0 || cur.tasks > 0) && !force {
		return a, errs.Errorf(errs.Conflict, "the snapshot is of cluster %s and this is cluster %s, whose ledger holds %d files and %d tasks: "+
			"restoring replaces them; pass --force to do it, or restore into a fresh cluster", snap.cluster, mine, cur.files, cur.tasks)
	}
	ledger := io.Reader(io.NewSectionReader(f, 0, hdr.Size))
	size := hdr.Size
	if snap.cluster != mine {
		if ledger, size, err = reidentify(scratch, mine, dir); err != nil {
			return a, err
		}
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersion(hdr.RaftSnapshotVersion), Index: hdr.RaftIndex, Term: hdr.RaftTerm, Size: size}
	if err := n.raft.Restore(meta, ledger, restoreTimeout); err != nil {
		if errors.Is(err, raft.ErrNotLeader) || errors.Is(err, raft.ErrLeadershipLost) || errors.Is(err, raft.ErrEnqueueTimeout) {
			return a, errs.Errorf(errs.Unavailable, "restore: %v: run it again", err)
		}
		return a, fmt.Errorf("restore: %w", err)
	}
	n.log.Info("ledger restored from a snapshot", "snapshot_cluster", hdr.ClusterID, "snapshot_index", hdr.RaftIndex,
		"taken_on", hdr.NodeName, "files", snap.files)
	// A snapshot from before peer secrets would leave the peers without
	// a credential.
	n.ensurePeerSecret(ctx)
	a = transport.RestoreAnswer{
		Leader: n.name, Index: n.raft.AppliedIndex(), SnapshotCluster: snap.cluster, SnapshotIndex: hdr.RaftIndex,
		SnapshotNode: hdr.NodeName, Cluster: mine, Files: snap.files, Partitions: snap.partitions, Unfinished: snap.unfinished,
	}
	a.GoneNodes, a.Requeued = n.retireGoneNodes(ctx)
	a.FilesWithoutBlob, a.MissingBlobs = n.filesWithoutBlob()
	return a, nil
}

// reidentify writes the scratch ledger with this cluster's identity into
// a new spool file and returns it with its size. The scratch FSM is
// private to this restore, so setting its identity directly is safe; a
// ledger command could not do it, since CmdClusterID refuses to change an
// identity (what protects a live cluster from a stray proposal).
func reidentify(scratch *fsm.FSM, id, dir string) (io.Reader, int64, error) {
	scratch.View(func(s *fsm.State) {
		if s.Meta == nil {
			s.Meta = map[string]string{}
		}
		s.Meta[fsm.MetaClusterID] = id
	})
	snap, err := scratch.Snapshot()
	if err != nil {
		return nil, 0, fmt.Errorf("re-encode the ledger: %w", err)
	}
	defer snap.Release()
	out, err := os.CreateTemp(dir, "ledger-*")
	if err != nil {
		return nil, 0, errs.Errorf(errs.NoSpace, "spool snapshot: %w", err)
	}
	sink := &fileSink{f: out}
	if err := snap.Persist(sink); err != nil {
		out.Close()
		return nil, 0, errs.Errorf(errs.NoSpace, "spool snapshot: %w", err)
	}
	st, err := out.Stat()
	if err != nil {
		out.Close()
		return nil, 0, err
	}
	// The file is removed with the spool directory; an open handle keeps
	// reading it until Raft has copied it.
	return io.NewSectionReader(out, 0, st.Size()), st.Size(), nil
}

// fileSink is a raft.SnapshotSink over a spool file.
type fileSink struct{ f *os.File }

func (s *fileSink) Write(p []byte) (int, error) { return s.f.Write(p) }
func (s *fileSink) Close() error                { return nil }
func (s *fileSink) ID() string                  { return s.f.Name() }
func (s *fileSink) Cancel() error               { return nil }

// retireGoneNodes (leader, after a restore) records as departed the
// ledger's nodes that neither Raft nor gossip knows here: the nodes of
// the cluster the snapshot came from. Their tasks go back to the queue
// now rather than after a failure grace that nothing would start (no
// Serf event will ever come for them), and their IDs are never re-added
// to Raft. It returns their names and how many tasks they held.
func (n *Node) retireGoneNodes(ctx context.Context) ([]string, int) {
	known := map[string]bool{}
	if cf := n.raft.GetConfiguration(); cf.Error() == nil {
		for _, s := range cf.Configuration().Servers {
			known[string(s.ID)] = true
		}
	}
	for _, m := range n.serf.Members() {
		if id := m.Tags[tagID]; id != "" && !n.foreignMember(m) {
			known[id] = true
		}
	}
	now := time.Now().UnixNano()
	var names []string
	held := 0
	var cmds []fsm.Command
	n.fsm.View(func(s *fsm.State) {
		for id, nd := range s.Nodes {
			if known[id] || nd.Status == fsm.NodeLeft {
				continue
			}
			names = append(names, nd.Name)
			held += s.ActiveOn(id)
			cmds = append(cmds, fsm.Command{Type: fsm.CmdNodeStatus, Now: now, NodeID: id, Status: fsm.NodeLeft},
				fsm.Command{Type: fsm.CmdReleaseNode, Now: now, NodeID: id, Error: "node " + nd.Name + " is not a member of the cluster its ledger was restored into"})
		}
	})
	sort.Strings(names)
	if len(cmds) == 0 {
		return nil, 0
	}
	// Map order: sort for a stable entry (the ledger does not care).
	sort.SliceStable(cmds, func(i, j int) bool { return cmds[i].NodeID < cmds[j].NodeID })
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if _, err := n.prop.Propose(cctx, fsm.Command{Type: fsm.CmdBatch, Now: now, Batch: cmds}); err != nil {
		// The reconcile loop fails them later (reconcile.go), and the
		// grace then requeues their work.
		n.log.Warn("retire the restored ledger's absent nodes", "error", err)
	}
	return names, held
}

// filesWithoutBlob counts the files whose blob no alive member holds and
// names up to 100 of them.
func (n *Node) filesWithoutBlob() (int, []string) {
	count := 0
	var keys []string
	n.fsm.View(func(s *fsm.State) {
		for _, f := range s.Files {
			if f.Ref.SharedPath != "" {
				continue
			}
			if b := s.Blobs[f.Ref.Hash]; b != nil && len(aliveHolders(s, b.Holders)) > 0 {
				continue
			}
			count++
			keys = append(keys, f.Partition+"/"+f.FileID)
		}
	})
	sort.Strings(keys)
	if len(keys) > 100 {
		keys = keys[:100]
	}
	return count, keys
}
