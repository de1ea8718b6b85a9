package node

import (
	"crypto/tls"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

type testPKI struct {
	ca, dir string
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	dir := t.TempDir()
	if err := transport.CreateCA(dir, 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	return testPKI{ca: filepath.Join(dir, "ca.pem"), dir: dir}
}

func (p testPKI) issue(t *testing.T, name string, client bool) (cert, key string) {
	t.Helper()
	spec := transport.CertSpec{Name: name, IPs: []net.IP{net.ParseIP("127.0.0.1")}, Client: client, Validity: time.Hour}
	if err := transport.CreateCert(p.dir, p.dir, spec); err != nil {
		t.Fatal(err)
	}
	return filepath.Join(p.dir, name+".pem"), filepath.Join(p.dir, name+"-key.pem")
}

func (p testPKI) nodeConfig(t *testing.T, name string) Config {
	cfg := baseConfig(t, name)
	cfg.CAFile = p.ca
	cfg.CertFile, cfg.KeyFile = p.issue(t, name, false)
	cfg.Token = "s3cret"
	return cfg
}

func tlsClientOf(t *testing.T, n *Node, token, ca, cert, key string) *transport.Client {
	t.Helper()
	cfg, err := transport.ClientTLS(ca, cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return transport.NewTLSClient(n.HTTPAddr(), token, cfg)
}

// TestTLSCluster: three nodes over mutual TLS. A node certified by another
// CA cannot join Raft nor call a peer route, a client certificate of the
// cluster CA cannot pose as a node, a client token on /v1/internal/apply
// gets 403, and a certificate rotation (the reload SIGHUP calls) keeps the
// cluster up.
func TestTLSCluster(t *testing.T) {
	pki := newTestPKI(t)
	c := newCluster(t)
	var ns []*Node
	for i, name := range []string{"n1", "n2", "n3"} {
		cfg := pki.nodeConfig(t, name)
		if i > 0 {
			cfg.Join = []string{ns[0].SerfAddr()}
		}
		ns = append(ns, c.start(cfg))
	}
	ctx := ctxT(t, 90*time.Second)
	waitFor(t, 30*time.Second, "three voters registered over TLS", func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		v, _ := countVoters(l)
		k := 0
		l.fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return v == 3 && k == 3
	})
	admin := func(n *Node) *transport.Client { return tlsClientOf(t, n, "s3cret", pki.ca, "", "") }
	if _, err := admin(ns[2]).Status(ctx); err != nil {
		t.Fatalf("status over HTTPS: %v", err)
	}
	// Plain HTTP to a TLS node does not work.
	if _, err := clientOf(ns[0]).Status(ctx); err == nil {
		t.Fatal("plain HTTP answered on a TLS node")
	}

	// A client token on the peer plane: 403, over TLS too.
	_, err := admin(ns[1]).Apply(ctx, fsm.Command{Type: fsm.CmdRegisterNode, Node: &fsm.Node{ID: "fake", Name: "fake", CPUSlots: 64}})
	if !transport.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("client token on /v1/internal/apply: %v, want 403", err)
	}

	// A client certificate of the cluster CA cannot pose as a node: not on
	// the peer plane, not on Raft.
	ccert, ckey := pki.issue(t, "alice", true)
	asClient := tlsClientOf(t, ns[1], "", pki.ca, ccert, ckey)
	if _, err := asClient.RaftStats(ctx); !transport.IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("client certificate on a peer route: %v, want 401", err)
	}
	if _, err := asClient.Status(ctx); !transport.IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("client certificate without a token on the client API: %v, want 401", err)
	}
	clientPair, err := tls.LoadX509KeyPair(ccert, ckey)
	if err != nil {
		t.Fatal(err)
	}
	leader := c.mustLeader(t)
	raftDial := func(cfg *tls.Config) error {
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", leader.raftAddr, cfg)
		if err != nil {
			return err
		}
		defer conn.Close()
		// TLS 1.3 reports a refused client certificate on the first read.
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		return err
	}
	clientCfg, _ := transport.ClientTLS(pki.ca, "", "")
	clientCfg.Certificates = []tls.Certificate{clientPair}
	clientCfg.ServerName = transport.NodeRoleName
	if err := raftDial(clientCfg); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("a client certificate opened a Raft connection: %v", err)
	}

	// A node whose certificate another CA signed.
	other := newTestPKI(t)
	rogueCfg := other.nodeConfig(t, "rogue")
	rogueCfg.Join = []string{ns[0].SerfAddr()}
	rogueCfg.JoinTimeout = 5 * time.Second
	// Its certificate, even with the cluster's CA file to check the
	// servers with, opens neither Raft nor the peer plane.
	m, err := transport.LoadTLS(transport.TLSFiles{CA: pki.ca, Cert: rogueCfg.CertFile, Key: rogueCfg.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	if err := raftDial(m.PeerClientConfig()); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("a node certified by another CA opened a Raft connection: %v", err)
	}
	if _, err := transport.NewPeerTLSClient(ns[1].HTTPAddr(), m).RaftStats(ctx); err == nil {
		t.Fatal("a node certified by another CA called a peer route")
	}
	// Started and joined to gossip, it never receives the ledger.
	rogue, err := Start(rogueCfg)
	if err != nil {
		t.Logf("rogue node did not start: %v", err)
	} else {
		t.Cleanup(rogue.Kill)
		// A write the cluster commits never reaches the rogue's ledger.
		tok, err := admin(ns[0]).CreateToken(ctx, transport.TokenRequest{Role: fsm.RoleRead})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range ns {
			waitFor(t, 10*time.Second, "the token on "+n.name, func() bool {
				ok := false
				n.fsm.View(func(s *fsm.State) { ok = s.Tokens[tok.ID] != nil })
				return ok
			})
		}
		rogue.fsm.View(func(s *fsm.State) {
			if s.Tokens[tok.ID] != nil || s.PeerSecret() != "" || len(s.Nodes) != 0 {
				t.Fatal("the rogue node received the cluster's ledger")
			}
		})
		notInRaft(t, c, rogue)
	}
	// A process with no certificate at all (no gossip key either, so Serf
	// lets it in) is not added to Raft.
	bareCfg := baseConfig(t, "bare")
	bareCfg.Join = []string{ns[0].SerfAddr()}
	bareCfg.JoinTimeout = 5 * time.Second
	if bare, err := Start(bareCfg); err != nil {
		t.Logf("certless node did not start: %v", err)
	} else {
		t.Cleanup(bare.Kill)
		notInRaft(t, c, bare)
	}

	// Rotation: new certificates in place, reloaded; new connections use
	// them and the cluster keeps committing writes.
	before := map[string]string{}
	for _, n := range ns {
		before[n.name] = n.tls.Leaf().SerialNumber.String()
		pki.issue(t, n.name, false) // overwrites the node's files
		if err := n.ReloadTLS(); err != nil {
			t.Fatalf("reload %s: %v", n.name, err)
		}
		if n.tls.Leaf().SerialNumber.String() == before[n.name] {
			t.Fatalf("%s still serves its old certificate", n.name)
		}
	}
	for _, n := range ns {
		conn, err := tls.Dial("tcp", n.HTTPAddr(), clientCfg)
		if err != nil {
			t.Fatal(err)
		}
		got := conn.ConnectionState().PeerCertificates[0].SerialNumber.String()
		conn.Close()
		if got != n.tls.Leaf().SerialNumber.String() {
			t.Fatalf("%s answers new connections with certificate %s, want the reloaded one", n.name, got)
		}
	}
	// Force fresh Raft connections: the leader steps down, and the new
	// one must reach the others with the rotated certificates.
	old := c.mustLeader(t)
	if err := old.raft.LeadershipTransfer().Error(); err != nil {
		t.Fatalf("leadership transfer: %v", err)
	}
	waitFor(t, 30*time.Second, "a new leader after rotation", func() bool {
		l := c.leader()
		return l != nil && l != old
	})
	tok, err := admin(ns[2]).CreateToken(ctx, transport.TokenRequest{Role: fsm.RoleIndex})
	if err != nil {
		t.Fatalf("write after rotation: %v", err)
	}
	for _, n := range ns {
		waitFor(t, 10*time.Second, "the post-rotation write on "+n.name, func() bool {
			ok := false
			n.fsm.View(func(s *fsm.State) { ok = s.Tokens[tok.ID] != nil })
			return ok
		})
	}
}

func TestTLSFlagsChecked(t *testing.T) {
	cfg := baseConfig(t, "x")
	cfg.CAFile = "/nonexistent/ca.pem"
	cfg.Defaults()
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "together") {
		t.Fatalf("partial TLS flags: %v", err)
	}
	pki := newTestPKI(t)
	ok := pki.nodeConfig(t, "n")
	ok.CertFile, ok.KeyFile = pki.issue(t, "cli", true)
	if _, err := Start(ok); err == nil || !strings.Contains(err.Error(), "not a node certificate") {
		t.Fatalf("a client certificate as --cert-file: %v", err)
	}
	v := baseConfig(t, "y")
	v.VerifyIncomingClients = true
	v.Defaults()
	if err := v.Validate(); err == nil {
		t.Fatal("--verify-incoming-clients without TLS accepted")
	}
}

// TestVerifyIncomingClients: the client API then requires a client
// certificate of the cluster CA (and still a token).
func TestVerifyIncomingClients(t *testing.T) {
	pki := newTestPKI(t)
	c := newCluster(t)
	cfg := pki.nodeConfig(t, "n1")
	cfg.VerifyIncomingClients = true
	n := c.start(cfg)
	waitFor(t, 10*time.Second, "leader", func() bool { return c.leader() != nil })
	ctx := ctxT(t, 30*time.Second)
	if _, err := tlsClientOf(t, n, "s3cret", pki.ca, "", "").Status(ctx); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	other := newTestPKI(t)
	ocert, okey := other.issue(t, "mallory", true)
	if _, err := tlsClientOf(t, n, "s3cret", pki.ca, ocert, okey).Status(ctx); err == nil {
		t.Fatal("a client certificate of another CA was accepted")
	}
	ccert, ckey := pki.issue(t, "alice", true)
	if _, err := tlsClientOf(t, n, "s3cret", pki.ca, ccert, ckey).Status(ctx); err != nil {
		t.Fatalf("client certificate and token: %v", err)
	}
	if _, err := tlsClientOf(t, n, "", pki.ca, ccert, ckey).Status(ctx); !transport.IsStatus(err, http.StatusUnauthorized) {
		t.Fatalf("client certificate without a token: %v, want 401", err)
	}
}

// notInRaft: once the leader's Serf lists the outsider, a few reconcile
// rounds pass and the leader's Raft configuration still lacks it.
func notInRaft(t *testing.T, c *cluster, outsider *Node) {
	t.Helper()
	waitFor(t, 15*time.Second, "the leader's Serf listing "+outsider.name, func() bool {
		l := c.leader()
		if l == nil {
			return false
		}
		for _, m := range l.serf.Members() {
			if m.Name == outsider.name {
				return true
			}
		}
		return false
	})
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		l := c.leader()
		if l == nil {
			continue
		}
		if _, in := suffrage(l)[outsider.ID()]; in {
			t.Fatalf("%s, without a node certificate of the cluster CA, was added to Raft", outsider.name)
		}
	}
}
