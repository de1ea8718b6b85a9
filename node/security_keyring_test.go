package node

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// TestKeyringRotation on a 3-node cluster: install a new gossip key, use
// it, remove the old one, through the API (admin only); no node is cut off
// at any step, Raft keeps committing, a node with only the old key can no
// longer join, one with only the new key can, and a restarted node comes
// back with the rotated keyring from its data dir.
func TestKeyringRotation(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	b1, b2 := base64.StdEncoding.EncodeToString(k1), base64.StdEncoding.EncodeToString(k2)
	c := newCluster(t)
	ns := c.startN(3, func(_ int, cfg *Config) { cfg.GossipKey = k1; cfg.Token = "s3cret" })
	waitFor(t, 20*time.Second, "three registered nodes", func() bool {
		k := 0
		ns[0].fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 3
	})
	ctx := ctxT(t, 90*time.Second)
	cl := clientOf(ns[1])
	allAlive := func() {
		t.Helper()
		for _, n := range ns {
			waitFor(t, 10*time.Second, "all members alive on "+n.name, func() bool {
				alive := 0
				for _, m := range n.serf.Members() {
					if m.Status.String() == "alive" {
						alive++
					}
				}
				return alive == 3
			})
		}
	}
	committed := func(what string) {
		t.Helper()
		tok, err := cl.CreateToken(ctx, transport.TokenRequest{Role: fsm.RoleRead})
		if err != nil {
			t.Fatalf("write after %s: %v", what, err)
		}
		for _, n := range ns {
			waitFor(t, 10*time.Second, what+": the write on "+n.name, func() bool {
				ok := false
				n.fsm.View(func(s *fsm.State) { ok = s.Tokens[tok.ID] != nil })
				return ok
			})
		}
	}
	// Read and index tokens cannot touch the keyring.
	idx, err := cl.CreateToken(ctx, transport.TokenRequest{Role: fsm.RoleIndex})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := transport.NewClient(ns[1].HTTPAddr(), idx.Secret).Keyring(ctx, transport.KeyringInstall, b2); !transport.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("index token installing a key: %v, want 403", err)
	}
	if _, err := cl.Keyring(ctx, transport.KeyringInstall, "bm90IGEga2V5"); !transport.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("a short key: %v, want 400", err)
	}

	a, err := cl.Keyring(ctx, transport.KeyringInstall, b2)
	if err != nil || a.Responses != 3 {
		t.Fatalf("install: %v %+v", err, a)
	}
	allAlive()
	a, err = cl.Keyring(ctx, transport.KeyringUse, b2)
	if err != nil {
		t.Fatalf("use: %v %+v", err, a)
	}
	allAlive()
	committed("use")
	a, err = cl.Keyring(ctx, transport.KeyringRemove, b1)
	if err != nil {
		t.Fatalf("remove: %v %+v", err, a)
	}
	a, err = cl.Keyring(ctx, transport.KeyringList, "")
	if err != nil || len(a.Keys) != 1 || a.Keys[b2] != 3 || a.Primary[b2] != 3 {
		t.Fatalf("list after rotation: %v %+v", err, a)
	}
	// The primary key cannot be removed.
	if _, err := cl.Keyring(ctx, transport.KeyringRemove, b2); !transport.IsStatus(err, http.StatusConflict) {
		t.Fatalf("removing the primary key: %v, want 409", err)
	}
	allAlive()
	committed("remove")

	old := baseConfig(t, "oldkey")
	old.GossipKey, old.Join, old.JoinTimeout = k1, []string{ns[0].SerfAddr()}, time.Second
	if n, err := Start(old); err == nil {
		n.Kill()
		t.Fatal("a node with only the removed key joined")
	}
	fresh := baseConfig(t, "newkey")
	fresh.GossipKey, fresh.Token, fresh.Join = k2, "s3cret", []string{ns[0].SerfAddr()}
	nk := c.start(fresh)
	waitFor(t, 20*time.Second, "the node with the new key registered", func() bool {
		ok := false
		ns[0].fsm.View(func(s *fsm.State) { _, ok = s.Nodes[nk.ID()] })
		return ok
	})

	// A restart still started with --gossip-key k1 uses the rotated keyring.
	ns[2].Stop()
	ns[2] = c.restart(ns[2].name)
	if got := ns[2].keyring.GetPrimaryKey(); !bytes.Equal(got, k2) || len(ns[2].keyring.GetKeys()) != 1 {
		t.Fatal("the restarted node did not load the rotated keyring")
	}
	committed("restart")
}
