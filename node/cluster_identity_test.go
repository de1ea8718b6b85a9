package node

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

func ledgerClusterID(n *Node) string {
	var id string
	n.fsm.View(func(s *fsm.State) { id = s.ClusterID() })
	return id
}

// TestDataDirOfAnotherClusterRefusedOnJoin: a node whose data dir holds
// another cluster's state, started with --join to this cluster, refuses to
// start with both identities in the message; the cluster never adds it to
// Raft; both ledgers stay apart. A node with an empty data dir still joins.
func TestDataDirOfAnotherClusterRefusedOnJoin(t *testing.T) {
	a := newCluster(t)
	as := a.startN(2, nil)
	b := newCluster(t)
	bn := b.start(baseConfig(t, "b1"))
	waitFor(t, 15*time.Second, "both clusters to record their identity", func() bool {
		return ledgerClusterID(as[0]) != "" && ledgerClusterID(bn) != "" &&
			as[1].clusterID.Load().(string) != "" && bn.clusterID.Load().(string) != ""
	})
	idA, idB := ledgerClusterID(as[0]), ledgerClusterID(bn)
	if idA == idB {
		t.Fatalf("two clusters share the identity %s", idA)
	}
	if got := as[1].clusterID.Load().(string); got != idA {
		t.Fatalf("a joined node adopted %q, want %q", got, idA)
	}

	cfg := b.cfgs["b1"]
	bn.Kill()
	cfg.Join = []string{as[0].SerfAddr()}
	cfg.JoinTimeout = 5 * time.Second
	_, err := Start(cfg)
	if !errors.Is(err, ErrOtherCluster) || !strings.Contains(err.Error(), idA) || !strings.Contains(err.Error(), idB) {
		t.Fatalf("start with another cluster's data dir: %v", err)
	}
	// An empty data dir joins as before.
	fresh := baseConfig(t, "a3")
	fresh.Join = []string{as[0].SerfAddr()}
	n3 := a.start(fresh)
	waitFor(t, 15*time.Second, "the fresh node to adopt the identity", func() bool { return n3.clusterID.Load().(string) == idA })
	// The leader's reconcile added the node that joined after the refused
	// one: it has seen the refused node's membership too, and left it out.
	waitFor(t, 15*time.Second, "the fresh node in cluster A's Raft configuration", func() bool {
		_, ok := suffrage(as[0])[n3.ID()]
		return ok
	})
	for _, n := range as {
		if _, ok := suffrage(n)[bn.ID()]; ok {
			t.Fatalf("cluster A added the foreign node to Raft: %v", suffrage(n))
		}
		if got := ledgerClusterID(n); got != idA {
			t.Fatalf("cluster A's identity changed to %s", got)
		}
	}
}
