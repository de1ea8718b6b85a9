package node

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/fsm"
)

// TestLeaveIsFinal: a node that left and is started again on its data dir
// refuses to start, in one line that says how to rejoin as new; with the
// marker removed by hand it starts, but the cluster never takes it back
// into Raft and the ledger keeps it left. An empty data dir joins as new.
func TestLeaveIsFinal(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(3, nil)
	waitFor(t, 20*time.Second, "three voters", func() bool {
		l := c.leader()
		return l != nil && func() bool { v, _ := countVoters(l); return v == 3 }()
	})
	leaving := ns[1]
	if leaving.raft.State() == raft.Leader {
		leaving = ns[2]
	}
	id := leaving.ID()
	if err := clientOf(leaving).Leave(ctxT(t, 60*time.Second)); err != nil {
		t.Fatalf("leave: %v", err)
	}
	select {
	case <-leaving.Done():
	case <-time.After(15 * time.Second):
		t.Fatal("node did not stop after leave")
	}
	c.mu.Lock()
	cfg := c.cfgs[leaving.name]
	c.mu.Unlock()

	_, err := Start(cfg)
	if !errors.Is(err, ErrLeft) {
		t.Fatalf("start on the data dir of a node that left: %v", err)
	}
	msg := err.Error()
	if strings.Contains(msg, "\n") || !strings.Contains(msg, "remove the data dir "+cfg.DataDir) || !strings.Contains(msg, "--join") {
		t.Fatalf("refusal is not one line saying how to rejoin: %q", msg)
	}

	// The marker lost: the node starts, and the cluster refuses it.
	if err := os.Remove(filepath.Join(cfg.DataDir, leftFile)); err != nil {
		t.Fatal(err)
	}
	back, err := Start(cfg)
	if err != nil {
		t.Fatalf("start without the marker: %v", err)
	}
	t.Cleanup(back.Kill)
	waitFor(t, 15*time.Second, "the returning node in gossip", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		for _, m := range l.serf.Members() {
			if m.Tags[tagID] == id && serfStatus(m.Status) == "alive" {
				return true
			}
		}
		return false
	})
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		l := c.leader()
		if l == nil {
			continue
		}
		if _, in := suffrage(l)[id]; in {
			t.Fatalf("the cluster took a node that left back into Raft: %v", suffrage(l))
		}
		var st string
		l.fsm.View(func(s *fsm.State) {
			if nd := s.Nodes[id]; nd != nil {
				st = nd.Status
			}
		})
		if st != fsm.NodeLeft {
			t.Fatalf("ledger status of the node that left: %q", st)
		}
	}
	back.Kill()

	// As a new member: an empty data dir (same name and addresses, as on
	// the same host), a new ID.
	fresh := cfg
	fresh.DataDir = t.TempDir()
	n := c.start(fresh)
	if n.ID() == id {
		t.Fatal("an empty data dir kept the old ID")
	}
	waitFor(t, 20*time.Second, "the new member in Raft", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		_, in := suffrage(l)[n.ID()]
		return in
	})
}
