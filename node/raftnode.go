package node

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"time"

	"github.com/hashicorp/raft"
	"github.com/hashicorp/serf/serf"
	bolt "go.etcd.io/bbolt"
)

func sortServers(s []raft.Server) {
	sort.Slice(s, func(i, j int) bool { return s[i].ID < s[j].ID })
}

func (n *Node) startRaft() (bool, error) {
	dir := filepath.Join(n.cfg.DataDir, "raft")
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return false, fmt.Errorf("create raft dir: %w", err)
	}
	store, err := openRaftLog(filepath.Join(dir, "raft.db"), &bolt.Options{Timeout: 2 * time.Second})
	if errors.Is(err, ErrDamagedStore) {
		return false, err // names the file and what to do; the hint below would mislead
	}
	if err != nil {
		return false, fmt.Errorf("open raft log %s (is another ragnode using this data dir?): %w", dir, err)
	}
	n.logStore = store
	snaps, err := raft.NewFileSnapshotStoreWithLogger(dir, 2, n.log.Named("snapshot"))
	if err != nil {
		return false, fmt.Errorf("snapshot store: %w", err)
	}
	n.snaps = snaps
	bind := net.JoinHostPort(n.cfg.Bind, strconv.Itoa(n.cfg.RaftPort))
	var adv net.Addr
	if n.cfg.RaftPort != 0 {
		adv, err = net.ResolveTCPAddr("tcp", net.JoinHostPort(n.cfg.advertiseIP(), strconv.Itoa(n.cfg.RaftPort)))
		if err != nil {
			return false, err
		}
	}
	trans, err := n.newRaftTransport(bind, adv)
	if err != nil {
		return false, fmt.Errorf("listen raft %s: %w", bind, err)
	}
	n.trans = trans
	n.raftAddr = string(trans.LocalAddr())

	rc := raft.DefaultConfig()
	rc.LocalID = raft.ServerID(n.id)
	rc.Logger = n.log.Named("raft")
	rc.HeartbeatTimeout, rc.ElectionTimeout, rc.LeaderLeaseTimeout, rc.CommitTimeout = n.cfg.raftTimeouts()
	rc.SnapshotThreshold = 16384
	rc.TrailingLogs = 20480
	rc.MaxAppendEntries = 256
	// Buffered: an unbuffered notify channel has deadlocked Nomad.
	n.leaderNotify = make(chan bool, 16)
	rc.NotifyCh = n.leaderNotify
	hasState, err := raft.HasExistingState(store, store, snaps)
	if err != nil {
		return false, fmt.Errorf("inspect raft state: %w", err)
	}
	n.stable = &closableStable{StableStore: store}
	r, err := raft.NewRaft(rc, n.fsm, diskWatchedLog{LogStore: store, fault: n.noteDiskFault, failing: n.blobs.writable}, n.stable, snaps, trans)
	if err != nil {
		return false, fmt.Errorf("start raft: %w", err)
	}
	n.raft = r
	return hasState, nil
}

func (n *Node) bootstrap(servers []raft.Server) error {
	err := n.raft.BootstrapCluster(raft.Configuration{Servers: servers}).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap: %w", err)
	}
	n.log.Info("bootstrapped cluster", "servers", len(servers))
	n.setStateTag()
	return nil
}

// maybeBootstrapExpect bootstraps once when BootstrapExpect nodes that have
// no Raft state see each other. Every one of them computes the same server
// list (sorted by ID) and bootstraps with it, which raft treats as one
// cluster; if any peer already holds state, nobody bootstraps and the leader
// of that cluster adds us instead.
func (n *Node) maybeBootstrapExpect() {
	if n.cfg.BootstrapExpect <= 1 {
		return
	}
	hasState, err := raft.HasExistingState(n.logStore, n.logStore, n.snaps)
	if err == nil && hasState {
		return
	}
	if n.raft.Leader() != "" {
		return
	}
	var servers []raft.Server
	for _, m := range n.serf.Members() {
		if m.Status != serf.StatusAlive || m.Tags[tagID] == "" {
			continue
		}
		if m.Tags[tagState] == "1" {
			return
		}
		if m.Tags[tagExpect] != strconv.Itoa(n.cfg.BootstrapExpect) {
			n.log.Warn("peer has a different --bootstrap-expect", "peer", m.Name, "expect", m.Tags[tagExpect])
			return
		}
		servers = append(servers, raft.Server{ID: raft.ServerID(m.Tags[tagID]), Address: raft.ServerAddress(m.Tags[tagRaft])})
	}
	if len(servers) < n.cfg.BootstrapExpect {
		return
	}
	sortServers(servers)
	if err := n.bootstrap(servers); err != nil {
		n.log.Error("bootstrap-expect", "error", err)
	}
}

// replayed reports whether this node's FSM has applied everything the
// leader says is committed. Until then the state is an intermediate one of
// the replay after a restart: an assignment there may have completed, or
// its partition been deleted, further down the log, and acting on it would
// run the task a second time. Raft's own applied index is not enough: it
// moves when an entry is handed to the FSM, before the FSM has applied it,
// so the test is on the FSM's index of the last command at or below the
// commit index. Once true it stays true (a snapshot installed later is a
// consistent state, not a replay).
func (n *Node) replayed() bool {
	if n.caughtUp.Load() {
		return true
	}
	commit := n.raft.CommitIndex()
	if n.raft.Leader() == "" || commit == 0 {
		return false
	}
	if n.fsm.AppliedIndex() >= n.lastCommandAtOrBelow(commit) {
		n.caughtUp.Store(true)
		n.log.Debug("log replayed; work may start", "commit", commit)
		return true
	}
	return false
}

// lastCommandAtOrBelow finds the index of the last ledger command in the
// local log at or below idx (configuration and no-op entries never reach
// the FSM). Entries already compacted into a snapshot are applied by the
// restore, so 0 is returned for them.
func (n *Node) lastCommandAtOrBelow(idx uint64) uint64 {
	first, err := n.logStore.FirstIndex()
	if err != nil {
		return idx
	}
	var l raft.Log
	for i := idx; i >= first && i > 0; i-- {
		if err := n.logStore.GetLog(i, &l); err != nil {
			return 0
		}
		if l.Type == raft.LogCommand {
			return i
		}
	}
	return 0
}
