package node

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

const testJoinSecret = "correct horse battery staple"

// rawCall sends one request with an Authorization header (none if "").
func rawCall(t *testing.T, method, url, auth, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func peerSecretOf(n *Node) string { return n.peerSecret() }

// TestNodeWithoutCredentialCannotJoin is the first hole of issue 16 with
// TLS off: a process that reaches the Serf, Raft and HTTP ports but holds
// no join secret is refused by all three.
func TestNodeWithoutCredentialCannotJoin(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(2, func(_ int, cfg *Config) {
		cfg.JoinSecret = testJoinSecret
		cfg.Token = "s3cret"
	})
	waitFor(t, 15*time.Second, "the second node to register through the leader", func() bool {
		ok := false
		ns[0].fsm.View(func(s *fsm.State) { _, ok = s.Nodes[ns[1].ID()] })
		return ok
	})

	// Serf: no secret, or another one, and the join fails.
	for name, secret := range map[string]string{"nosecret": "", "othersecret": "another secret of the right length"} {
		cfg := baseConfig(t, name)
		cfg.JoinSecret = secret
		cfg.Join = []string{ns[0].SerfAddr()}
		cfg.JoinTimeout = time.Second
		if n, err := Start(cfg); err == nil {
			n.Kill()
			t.Fatalf("%s: a node without the join secret joined", name)
		}
	}
	for _, n := range ns {
		if got := len(n.serf.Members()); got != 2 {
			t.Fatalf("%s sees %d members, want 2", n.name, got)
		}
	}

	// Raft: a plain Raft client is cut off before it can ask for a vote,
	// and so is one proving another key.
	leader := c.mustLeader(t)
	plain, err := raft.NewTCPTransport("127.0.0.1:0", nil, 1, time.Second, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var resp raft.RequestVoteResponse
	err = plain.RequestVote("intruder", raft.ServerAddress(leader.raftAddr), &raft.RequestVoteRequest{
		RPCHeader: raft.RPCHeader{ID: []byte("intruder"), Addr: []byte("127.0.0.1:1")}, Term: 1 << 40}, &resp)
	if err == nil {
		t.Fatal("an unauthenticated Raft client got an answer to RequestVote")
	}
	for _, key := range [][]byte{joinSecretKey("another secret of the right length"), joinSecretKey(testJoinSecret)} {
		conn, err := net.DialTimeout("tcp", leader.raftAddr, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		herr := dialHandshake(conn, key)
		conn.Close()
		if good := bytes.Equal(key, joinSecretKey(testJoinSecret)); good != (herr == nil) {
			t.Fatalf("handshake with the right key=%v: %v", good, herr)
		}
	}
	if term := leader.raft.CurrentTerm(); term >= 1<<40 {
		t.Fatalf("the intruder's term reached the leader: %d", term)
	}

	// Peer HTTP: the node credential only.
	apply := "http://" + ns[1].HTTPAddr() + "/v1/internal/apply"
	body := `{"command":{"t":"register_node","node":{"id":"fake","name":"fake","cpu_slots":64}}}`
	for _, tc := range []struct {
		auth string
		want int
	}{
		{"", http.StatusUnauthorized},
		{"Bearer s3cret", http.StatusForbidden},
		{"bearer s3cret", http.StatusForbidden},
		{"Bearer wrong", http.StatusForbidden},
		{"Node " + strings.Repeat("x", 43), http.StatusUnauthorized},
	} {
		if code, b := rawCall(t, http.MethodPost, apply, tc.auth, body); code != tc.want {
			t.Fatalf("apply with %q: %d %s, want %d", tc.auth, code, b, tc.want)
		}
	}
	ns[0].fsm.View(func(s *fsm.State) {
		if s.Nodes["fake"] != nil {
			t.Fatal("a refused apply registered a node")
		}
	})
}

// TestClientTokenRefusedOnEveryPeerRoute: the second hole. The bootstrap
// token and role tokens of every role get 403 on each peer route, while the
// nodes' own calls (forwarded proposals, search fan-out) keep working.
func TestClientTokenRefusedOnEveryPeerRoute(t *testing.T) {
	c := newCluster(t)
	ns := c.startN(2, func(_ int, cfg *Config) { cfg.Token = "s3cret" })
	waitFor(t, 15*time.Second, "a peer secret and both nodes registered on both nodes", func() bool {
		k0, k1 := 0, 0
		ns[0].fsm.View(func(s *fsm.State) { k0 = len(s.Nodes) })
		ns[1].fsm.View(func(s *fsm.State) { k1 = len(s.Nodes) })
		return k0 == 2 && k1 == 2 && peerSecretOf(ns[0]) != "" && peerSecretOf(ns[0]) == peerSecretOf(ns[1])
	})
	admin, err := clientOf(ns[0]).CreateToken(ctxT(t, 10*time.Second), transport.TokenRequest{Role: fsm.RoleAdmin})
	if err != nil {
		t.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{"GET", "/v1/internal/raft-stats"}, {"POST", "/v1/internal/apply"}, {"POST", "/v1/internal/remove-server?id=x"},
		{"POST", "/v1/internal/replicate/abc"}, {"POST", "/v1/internal/search-local"}, {"POST", "/v1/internal/chunks"},
		{"POST", "/v1/internal/chunks/metadata"}, {"POST", "/v1/internal/chunks/delete"}, {"POST", "/v1/internal/chunks/repair"},
		{"GET", "/v1/internal/chunk-ids"}, {"GET", "/v1/internal/chunk-records"}, {"PUT", "/v1/blobs"},
		{"PUT", "/v1/blobs/abc"}, {"GET", "/v1/blobs/abc"},
	}
	for _, r := range routes {
		for _, auth := range []string{"Bearer s3cret", "Bearer " + admin.Secret} {
			if code, b := rawCall(t, r.method, "http://"+ns[1].HTTPAddr()+r.path, auth, "{}"); code != http.StatusForbidden {
				t.Fatalf("%s %s with a client token: %d %s, want 403", r.method, r.path, code, b)
			}
		}
	}
	// The node credential passes the check (the handler then answers).
	if code, b := rawCall(t, "GET", "http://"+ns[1].HTTPAddr()+"/v1/internal/raft-stats", "Node "+peerSecretOf(ns[1]), ""); code != http.StatusOK {
		t.Fatalf("raft-stats with the node credential: %d %s", code, b)
	}
	// A follower's write is forwarded to the leader with the credential.
	f := ns[0]
	if c.leader() == ns[0] {
		f = ns[1]
	}
	if err := clientOf(f).Drain(ctxT(t, 10*time.Second), drainReq(f.name)); err != nil {
		t.Fatalf("drain through a follower: %v", err)
	}
	// The secret is never printed by the client API.
	for _, p := range []string{"/v1/status", "/v1/members", "/v1/tasks", "/v1/tokens", "/v1/console/summary"} {
		if _, b := rawCall(t, "GET", "http://"+f.HTTPAddr()+p, "Bearer s3cret", ""); strings.Contains(b, peerSecretOf(f)) {
			t.Fatalf("%s prints the peer secret", p)
		}
	}
}

func TestNonLoopbackWithoutCredentialRefused(t *testing.T) {
	cfg := baseConfig(t, "exposed")
	cfg.Bind = "10.1.2.3"
	cfg.Defaults()
	err := cfg.Validate()
	if err == nil || !strings.Contains(err.Error(), "--insecure") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("non-loopback, no credential: %v", err)
	}
	for _, mod := range []func(*Config){
		func(c *Config) { c.Insecure = true },
		func(c *Config) { c.JoinSecret = testJoinSecret },
		func(c *Config) { c.GossipKey = bytes.Repeat([]byte{1}, 32) },
	} {
		ok := cfg
		mod(&ok)
		if err := ok.Validate(); err != nil {
			t.Fatalf("with a credential or --insecure: %v", err)
		}
	}
	both := cfg
	both.JoinSecret, both.GossipKey = testJoinSecret, bytes.Repeat([]byte{1}, 32)
	if err := both.Validate(); err == nil {
		t.Fatal("--join-secret and --gossip-key together accepted")
	}
	short := cfg
	short.JoinSecret = "short"
	if err := short.Validate(); err == nil {
		t.Fatal("a short join secret accepted")
	}
	if w := cfg.openWarning(); w == "" {
		t.Fatal("no warning for an open client API on a non-loopback address")
	}
	withTok := cfg
	withTok.Token = "x"
	if w := withTok.openWarning(); w != "" {
		t.Fatalf("warning with a token: %s", w)
	}
}

// syncBuffer is a log sink tests read while nodes write.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRoleTokens on a 3-node cluster: read cannot submit, index cannot
// drain, a partition-scoped token sees its partition only, refusals are
// logged with the route and the token's ID, and a revoked token gets 401
// on every node.
func TestRoleTokens(t *testing.T) {
	c := newCluster(t)
	logs := &syncBuffer{}
	ns := c.startN(3, func(i int, cfg *Config) {
		cfg.Token = "s3cret"
		if i == 0 {
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "n1", Level: hclog.Warn, Output: logs})
		}
	})
	waitFor(t, 20*time.Second, "three registered nodes", func() bool {
		k := 0
		ns[0].fsm.View(func(s *fsm.State) { k = len(s.Nodes) })
		return k == 3
	})
	ctx := ctxT(t, 60*time.Second)
	boot := clientOf(ns[0])
	mk := func(role, part string) transport.CreatedToken {
		tok, err := boot.CreateToken(ctx, transport.TokenRequest{Role: role, Partition: part})
		if err != nil {
			t.Fatal(err)
		}
		if tok.ID == "" || !strings.HasPrefix(tok.Secret, tokenSecretPrefix) {
			t.Fatalf("created token: %+v", tok)
		}
		return tok
	}
	read, index, scoped := mk(fsm.RoleRead, ""), mk(fsm.RoleIndex, ""), mk(fsm.RoleRead, "legal")
	if _, err := boot.CreateToken(ctx, transport.TokenRequest{Role: "root"}); !transport.IsStatus(err, http.StatusBadRequest) {
		t.Fatalf("unknown role: %v", err)
	}
	// The ledger holds hashes only.
	ns[2].fsm.View(func(s *fsm.State) {
		b, _ := s.Marshal()
		if bytes.Contains(b, []byte(read.Secret)) {
			t.Fatal("the ledger holds a token secret")
		}
	})
	as := func(n *Node, tok transport.CreatedToken) *transport.Client {
		return transport.NewClient(n.HTTPAddr(), tok.Secret)
	}
	// Each node learns the tokens as it applies them.
	waitFor(t, 10*time.Second, "tokens on every node", func() bool {
		for _, n := range ns {
			if _, err := as(n, scoped).Status(ctx); err != nil {
				return false
			}
		}
		return true
	})

	// read: status, tasks, search; not submit, not drain.
	if _, err := as(ns[1], read).Tasks(ctx, "", ""); err != nil {
		t.Fatalf("read token listing tasks: %v", err)
	}
	if _, err := as(ns[1], read).Search(ctx, transport.SearchRequest{Text: "x", TopK: 1}); err != nil {
		t.Fatalf("read token searching: %v", err)
	}
	if _, err := as(ns[1], read).Submit(ctx, submitReq("p", "a.txt"), strings.NewReader("hello")); !transport.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("read token submitting: %v, want 403", err)
	}
	// index: submit, but not drain or token management.
	if _, err := as(ns[2], index).Submit(ctx, submitReq("p", "b.txt"), strings.NewReader("hello world")); err != nil {
		t.Fatalf("index token submitting: %v", err)
	}
	if err := as(ns[2], index).Drain(ctx, drainReq(ns[2].name)); !transport.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("index token draining: %v, want 403", err)
	}
	if _, err := as(ns[2], index).ListTokens(ctx); !transport.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("index token listing tokens: %v, want 403", err)
	}
	// A partition-scoped token: its partition only.
	if _, err := as(ns[0], scoped).Tasks(ctx, "", "legal"); err != nil {
		t.Fatalf("scoped token on its partition: %v", err)
	}
	if _, err := as(ns[0], scoped).Search(ctx, transport.SearchRequest{Text: "x", TopK: 1, Partitions: []string{"legal"}}); err != nil {
		t.Fatalf("scoped token searching its partition: %v", err)
	}
	for what, err := range map[string]error{
		"tasks of another partition": func() error { _, err := as(ns[0], scoped).Tasks(ctx, "", "hr"); return err }(),
		"search of all partitions": func() error {
			_, err := as(ns[0], scoped).Search(ctx, transport.SearchRequest{Text: "x", TopK: 1})
			return err
		}(),
	} {
		if !transport.IsStatus(err, http.StatusForbidden) {
			t.Fatalf("scoped token, %s: %v, want 403", what, err)
		}
	}

	// A listing that names no partition is filtered to the token's.
	if ts, err := as(ns[0], scoped).Tasks(ctx, "", ""); err != nil || slices.ContainsFunc(ts, func(tv transport.TaskView) bool { return tv.Partition != "legal" }) {
		t.Fatalf("scoped token listing all tasks: %v %+v", err, ts)
	}

	// admin lists tokens without secrets or hashes.
	list, err := boot.ListTokens(ctx)
	if err != nil || len(list) != 3 {
		t.Fatalf("token list: %v %+v", err, list)
	}
	code, body := rawCall(t, "GET", "http://"+ns[1].HTTPAddr()+"/v1/tokens", "Bearer s3cret", "")
	if code != http.StatusOK || strings.Contains(body, read.Secret) || strings.Contains(body, transport.HashToken(read.Secret)) {
		t.Fatalf("token list body: %d %s", code, body)
	}

	// Refusals on n1 are logged with the route and the token's ID.
	if _, err := as(ns[0], read).Submit(ctx, submitReq("p", "c.txt"), strings.NewReader("x")); !transport.IsStatus(err, http.StatusForbidden) {
		t.Fatalf("read token submitting on n1: %v", err)
	}
	waitFor(t, 5*time.Second, "the refusal in n1's log", func() bool {
		l := logs.String()
		return strings.Contains(l, "route=/v1/files") && strings.Contains(l, "token="+read.ID)
	})
	if strings.Contains(logs.String(), read.Secret) || strings.Contains(logs.String(), "s3cret") {
		t.Fatal("a secret reached the log")
	}

	// Revoked on one node: 401 on every node once they apply it.
	start := time.Now()
	if err := clientOf(ns[1]).RevokeToken(ctx, index.ID); err != nil {
		t.Fatal(err)
	}
	for _, n := range ns {
		waitFor(t, 10*time.Second, "the revocation on "+n.name, func() bool {
			_, err := as(n, index).Status(ctx)
			return transport.IsStatus(err, http.StatusUnauthorized)
		})
	}
	t.Logf("revoked token refused on all 3 nodes %s after the revoke call", time.Since(start))
	if err := clientOf(ns[1]).RevokeToken(ctx, index.ID); !transport.IsStatus(err, http.StatusNotFound) {
		t.Fatalf("revoking twice: %v, want 404", err)
	}
}

// TestRaftHandshakeFollowsKeyring: a dialer proving a key installed but not
// primary on the acceptor is accepted, so a keyring rotation cuts no node
// off; one proving a removed key is not.
func TestRaftHandshakeFollowsKeyring(t *testing.T) {
	k1, k2 := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	kr, err := memberlist.NewKeyring([][]byte{k1, k2}, k1)
	if err != nil {
		t.Fatal(err)
	}
	l, err := newAuthStreamLayer("127.0.0.1:0", nil, kr, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	accepted := make(chan net.Conn, 4)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			accepted <- c
		}
	}()
	dial := func(key []byte) error {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return dialHandshake(c, key)
	}
	if err := dial(k2); err != nil {
		t.Fatalf("secondary key: %v", err)
	}
	<-accepted
	if err := kr.UseKey(k2); err != nil {
		t.Fatal(err)
	}
	if err := kr.RemoveKey(k1); err != nil {
		t.Fatal(err)
	}
	if err := dial(k1); err == nil {
		t.Fatal("a removed key was accepted")
	}
	// Through the layer's own Dial, with the primary key.
	dl, err := newAuthStreamLayer("127.0.0.1:0", nil, kr, hclog.NewNullLogger())
	if err != nil {
		t.Fatal(err)
	}
	defer dl.Close()
	conn, err := dl.Dial(raft.ServerAddress(l.Addr().String()), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the authenticated connection never reached Accept")
	}
}

// TestPprofNeedsAdmin: /debug/pprof is served only with --pprof, and then
// only to an admin token; without --token it stays closed.
func TestPprofNeedsAdmin(t *testing.T) {
	c := newCluster(t)
	open := c.start(func() Config { cfg := baseConfig(t, "open"); cfg.Pprof = true; return cfg }())
	if code, _ := rawCall(t, "GET", "http://"+open.HTTPAddr()+"/debug/pprof/", "", ""); code != http.StatusForbidden {
		t.Fatalf("pprof without --token: %d, want 403", code)
	}
	cfg := baseConfig(t, "closed")
	cfg.Pprof, cfg.Token = true, "s3cret"
	n := c.start(cfg)
	waitFor(t, 10*time.Second, "leader", func() bool { return n.raft.State() == raft.Leader })
	read, err := clientOf(n).CreateToken(ctxT(t, 10*time.Second), transport.TokenRequest{Role: fsm.RoleRead})
	if err != nil {
		t.Fatal(err)
	}
	for auth, want := range map[string]int{"": http.StatusUnauthorized, "Bearer " + read.Secret: http.StatusForbidden, "Bearer s3cret": http.StatusOK} {
		if code, _ := rawCall(t, "GET", "http://"+n.HTTPAddr()+"/debug/pprof/", auth, ""); code != want {
			t.Fatalf("pprof with %q: %d, want %d", auth, code, want)
		}
	}
}
