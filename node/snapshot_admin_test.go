package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

const snapToken = "snapshot-admin-token"

// snapCluster starts k nodes with an admin token and waits until every
// one is a registered member and the cluster has its identity.
func snapCluster(t *testing.T, prefix string, k int) (*cluster, []*Node) {
	t.Helper()
	c := newCluster(t)
	ns := c.startN(k, func(i int, cfg *Config) {
		cfg.Name = fmt.Sprintf("%s%d", prefix, i+1)
		cfg.Token = snapToken
	})
	waitFor(t, 30*time.Second, prefix+": every node a registered Raft member, and the identity", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		// Voters stay odd: the second node is a non-voter.
		v, nv := countVoters(l)
		reg := 0
		l.fsm.View(func(s *fsm.State) {
			for _, nd := range s.Nodes {
				if nd.Status == fsm.NodeAlive {
					reg++
				}
			}
		})
		return v+nv == k && reg == k && ledgerClusterID(l) != "" && l.peerSecret() != ""
	})
	return c, ns
}

func follower(c *cluster, ns []*Node) *Node {
	for _, n := range ns {
		if n.raft.State() != raft.Leader {
			return n
		}
	}
	return nil
}

// ledgerFiles copies the ledger's file records.
func ledgerFiles(n *Node) map[string]fsm.File {
	out := map[string]fsm.File{}
	n.fsm.View(func(s *fsm.State) {
		for k, f := range s.Files {
			out[k] = *f
		}
	})
	return out
}

// TestSnapshotRestoreRebuildsAFreshCluster is the disaster recovery an
// operator runs: cluster A indexes files and a follower saves its ledger;
// A is lost; a fresh cluster B restores the file through one of its
// followers. Every file of A is then in every B node's ledger with its
// metadata, B keeps its own identity, A's nodes are departed, the peers
// of B still authenticate one another (the peer secret changed with the
// ledger), and a file of A can be indexed again. Damaged and truncated
// files are refused with one line before anything changes.
func TestSnapshotRestoreRebuildsAFreshCluster(t *testing.T) {
	a, as := snapCluster(t, "a", 2)
	la := a.mustLeader(t)
	var ids []string
	for i := 0; i < 6; i++ {
		p := []string{"legal", "hr"}[i%2]
		req := submitReq(p, fmt.Sprintf("doc-%d.md", i))
		req.Metadata = map[string]any{"author": fmt.Sprintf("author-%d", i), "n": float64(i)}
		tv, err := clientOf(as[i%2]).Submit(ctxT(t, 30*time.Second), req, strings.NewReader(fmt.Sprintf("# Doc %d\n\nRaft keeps file %d in the ledger.\n", i, i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, tv.ID)
	}
	requireAllCompleted(t, waitTerminal(t, a, ids, 60*time.Second))
	idA := ledgerClusterID(la)
	secretA := la.peerSecret()

	// Saved from a follower, once it has applied every completion.
	fa := follower(a, as)
	waitFor(t, 10*time.Second, "the follower to apply the completions", func() bool { return fa.fsm.AppliedIndex() >= la.fsm.AppliedIndex() })
	var snap bytes.Buffer
	if err := clientOf(fa).SaveSnapshot(ctxT(t, 30*time.Second), &snap); err != nil {
		t.Fatal(err)
	}
	sr, err := transport.OpenSnapshot(bytes.NewReader(snap.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	if body, err := io.ReadAll(sr); err != nil || int64(len(body)) != sr.Header.Size {
		t.Fatalf("read the body: %d bytes, %v", len(body), err)
	}
	hdr := sr.Header
	if hdr.ClusterID != idA || hdr.NodeID != fa.ID() || hdr.RaftIndex == 0 || hdr.Size == 0 {
		t.Fatalf("header %+v, want cluster %s taken on %s", hdr, idA, fa.ID())
	}
	wantFiles := ledgerFiles(fa)
	if len(wantFiles) != 6 {
		t.Fatalf("A's follower holds %d files", len(wantFiles))
	}
	// A saving client without the admin token is refused.
	if err := transport.NewClient(fa.HTTPAddr(), "").SaveSnapshot(ctxT(t, 5*time.Second), &bytes.Buffer{}); !transport.IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("save without a token: %v", err)
	}

	for _, n := range as {
		n.Kill()
	}
	b, bs := snapCluster(t, "b", 2)
	lb := b.mustLeader(t)
	fb := follower(b, bs)
	idB := ledgerClusterID(lb)
	if idB == idA {
		t.Fatal("the two clusters share an identity")
	}

	// Damaged copies are refused, each with one line, and change nothing.
	flipped := bytes.Clone(snap.Bytes())
	flipped[len(flipped)/2] ^= 0x20
	truncated := snap.Bytes()[:snap.Len()-200]
	for _, tc := range []struct {
		name string
		file []byte
		via  *Node
		want string
	}{
		{"a flipped byte", flipped, lb, "SHA-256 does not match"},
		{"a truncated file", truncated, lb, "truncated snapshot"},
		{"a flipped byte, through a follower", flipped, fb, "leader " + lb.Name()},
		{"not a snapshot", []byte("hello"), lb, "not a ragnode snapshot"},
	} {
		_, err := clientOf(tc.via).RestoreSnapshot(ctxT(t, 30*time.Second), bytes.NewReader(tc.file), false)
		var se *transport.StatusError
		if !errors.As(err, &se) || se.Code != http.StatusBadRequest || !strings.Contains(se.Msg, tc.want) || strings.Contains(se.Msg, "\n") {
			t.Fatalf("restore of %s: %v, want a 400 saying %q", tc.name, err, tc.want)
		}
		t.Logf("%s: %s", tc.name, se.Msg)
	}
	if k := len(ledgerFiles(lb)); k != 0 {
		t.Fatalf("a refused restore left %d files in B", k)
	}

	// The restore, through B's follower.
	ans, err := clientOf(fb).RestoreSnapshot(ctxT(t, 2*time.Minute), bytes.NewReader(snap.Bytes()), false)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("answer: %+v", ans)
	if ans.Leader != lb.Name() || ans.Files != 6 || ans.Partitions != 2 || ans.SnapshotCluster != idA || ans.Cluster != idB ||
		ans.SnapshotIndex != hdr.RaftIndex || len(ans.GoneNodes) != 2 || ans.FilesWithoutBlob != 6 || len(ans.MissingBlobs) != 6 {
		t.Fatalf("restore answer %+v", ans)
	}

	for _, n := range bs {
		waitFor(t, 30*time.Second, n.Name()+" to hold every file of A", func() bool { return len(ledgerFiles(n)) == len(wantFiles) })
		got := ledgerFiles(n)
		for k, w := range wantFiles {
			g := got[k]
			if g.Partition != w.Partition || g.FileID != w.FileID || g.State != fsm.Completed || g.Chunks != w.Chunks ||
				g.Ref.Hash != w.Ref.Hash || !reflect.DeepEqual(g.Metadata, w.Metadata) {
				t.Fatalf("%s: file %s is %+v, want %+v", n.Name(), k, g, w)
			}
		}
		// B keeps its identity, in the ledger and in the data dir.
		if got := ledgerClusterID(n); got != idB {
			t.Fatalf("%s: the ledger names cluster %s after the restore, want %s", n.Name(), got, idB)
		}
		if got, _ := loadClusterID(n.cfg.DataDir); got != idB {
			t.Fatalf("%s: the data dir names cluster %s, want %s", n.Name(), got, idB)
		}
		// The peer secret is A's now, and the credential file follows it.
		waitFor(t, 10*time.Second, n.Name()+"'s node credential to follow the ledger", func() bool {
			c, _ := os.ReadFile(filepath.Join(n.cfg.DataDir, "node-credential"))
			return n.peerSecret() == secretA && strings.TrimSpace(string(c)) == secretA
		})
	}
	// A's nodes are departed; B's registered themselves again.
	waitFor(t, 15*time.Second, "A's nodes departed and B's alive in the restored ledger", func() bool {
		ok := true
		lb.fsm.View(func(s *fsm.State) {
			for _, n := range as {
				if nd := s.Nodes[n.ID()]; nd == nil || nd.Status != fsm.NodeLeft {
					ok = false
				}
			}
			for _, n := range bs {
				if nd := s.Nodes[n.ID()]; nd == nil || nd.Status != fsm.NodeAlive {
					ok = false
				}
			}
		})
		return ok
	})

	// The peer plane still works (a follower forwards the submission and
	// replicates the blob), and a file of A is indexed again from its
	// bytes.
	req := submitReq("legal", "doc-0.md")
	req.Metadata = map[string]any{"author": "author-0", "n": float64(0)}
	tv, err := clientOf(fb).Submit(ctxT(t, 30*time.Second), req, strings.NewReader("# Doc 0\n\nRaft keeps file 0 in the ledger.\n"))
	if err != nil {
		t.Fatal(err)
	}
	requireAllCompleted(t, waitTerminal(t, b, []string{tv.ID}, 60*time.Second))
	if k := aliveBlobHolders(lb, tv.Hash); k < 2 {
		t.Fatalf("the re-submitted file's blob has %d alive holders, want 2", k)
	}

	// A's ledger again over B's, which now holds files: another cluster's
	// snapshot needs --force.
	_, err = clientOf(lb).RestoreSnapshot(ctxT(t, 30*time.Second), bytes.NewReader(snap.Bytes()), false)
	if !transport.IsStatus(err, http.StatusConflict) || !strings.Contains(err.Error(), "--force") {
		t.Fatalf("restore over a non-empty ledger of another cluster: %v", err)
	}
	if _, err := clientOf(lb).RestoreSnapshot(ctxT(t, 2*time.Minute), bytes.NewReader(snap.Bytes()), true); err != nil {
		t.Fatalf("forced restore: %v", err)
	}
	var gotTask bool
	lb.fsm.View(func(s *fsm.State) { _, gotTask = s.Tasks[tv.ID] })
	if gotTask {
		t.Fatal("the forced restore kept a task the snapshot does not hold")
	}
}
