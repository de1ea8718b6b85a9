package node

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/memberlist"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// Node credentials with TLS off.
//
// Two secrets, like Consul's gossip key and its agent tokens:
//   - the membership credential is the gossip keyring: --gossip-key, or a
//     key derived from --join-secret. Serf refuses a node that cannot
//     decrypt gossip, and Raft connections open with a challenge–response
//     over the same keyring (raftauth.go), so a node without it can
//     neither gossip nor take part in Raft, even when it knows the ports;
//   - the peer secret is the nodes' credential on the peer HTTP plane. The
//     first leader generates it and records it in the ledger, so a node
//     receives it through the authenticated Raft log once it has been
//     admitted, and it is independent of every client token and of gossip
//     key rotation. The API never prints it.
//
// A node bound to a non-loopback address with no membership credential
// refuses to start unless --insecure says so.

// joinSecretKey derives the gossip key a --join-secret stands for: the
// same secret gives the same AES-256 key on every node.
func joinSecretKey(secret string) []byte {
	h := sha256.Sum256([]byte("ragnode join secret v1\x00" + secret))
	return h[:]
}

// membershipKey is the key this node starts its keyring with, nil when it
// has no membership credential.
func (c *Config) membershipKey() []byte {
	if len(c.GossipKey) > 0 {
		return c.GossipKey
	}
	if c.JoinSecret != "" {
		return joinSecretKey(c.JoinSecret)
	}
	return nil
}

// validateSecurity refuses a credential-less node on a reachable address.
func (c *Config) validateSecurity() error {
	if len(c.GossipKey) > 0 && c.JoinSecret != "" {
		return fmt.Errorf("--gossip-key and --join-secret both set: give one (the join secret stands for a gossip key)")
	}
	if c.JoinSecret != "" && len(c.JoinSecret) < 16 {
		return fmt.Errorf("--join-secret must be at least 16 characters")
	}
	if c.tlsOn() && (c.CAFile == "" || c.CertFile == "" || c.KeyFile == "") {
		return fmt.Errorf("TLS needs --ca-file, --cert-file and --key-file together")
	}
	if c.VerifyIncomingClients && !c.tlsOn() {
		return fmt.Errorf("--verify-incoming-clients needs TLS (--ca-file, --cert-file, --key-file)")
	}
	if err := c.validateTransition(); err != nil {
		return err
	}
	ip := net.ParseIP(c.Bind)
	if ip != nil && !ip.IsLoopback() && c.membershipKey() == nil && !c.tlsOn() && !c.Insecure {
		return fmt.Errorf("--bind %s is reachable from other machines and the node has no cluster credential: set --gossip-key, --join-secret or TLS (--ca-file, --cert-file, --key-file), or pass --insecure to run without one", c.Bind)
	}
	return nil
}

// openWarning is the one line a node with an open client API prints at
// start and in status, or "" when there is nothing to warn about.
func (c *Config) openWarning() string {
	ip := net.ParseIP(c.Bind)
	if ip == nil || ip.IsLoopback() || c.Token != "" {
		return ""
	}
	return fmt.Sprintf("the client API on %s needs no token: anyone who reaches it can search, submit and delete (set --token)", c.Bind)
}

// newKeyring builds the gossip keyring shared by Serf and the Raft
// handshake, nil without a membership credential. A keyring file written
// by an earlier run (keyring rotations, security_keyring.go) wins over the flag,
// as in Consul, so a rotated key survives a restart.
func (n *Node) newKeyring() (*memberlist.Keyring, error) {
	keys, err := loadKeyringFile(n.keyringPath())
	if err != nil {
		return nil, err
	}
	if len(keys) == 0 {
		if k := n.cfg.membershipKey(); k != nil {
			keys = [][]byte{k}
		}
	}
	if len(keys) == 0 {
		return nil, nil
	}
	kr, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("gossip keyring: %w", err)
	}
	return kr, nil
}

func (n *Node) keyringPath() string { return filepath.Join(n.cfg.DataDir, "serf", "keyring") }

// peerSecret returns the ledger's peer secret ("" until replicated here).
// The secret is read from the ledger on every call, never cached: a
// restored ledger (snapshot_admin.go) brings its own, and every node
// switches to it as the restore reaches it.
func (n *Node) peerSecret() string {
	var s string
	n.fsm.View(func(st *fsm.State) { s = st.PeerSecret() })
	if s != "" && n.credWritten.Load() != s {
		n.syncNodeCredential()
	}
	return s
}

// syncNodeCredential rewrites the credential file when the ledger's
// secret differs from the one written last. The secret is read again
// under the lock, so of two callers with different secrets in hand the
// file ends with the ledger's current one.
func (n *Node) syncNodeCredential() {
	n.credMu.Lock()
	defer n.credMu.Unlock()
	var s string
	n.fsm.View(func(st *fsm.State) { s = st.PeerSecret() })
	if s == "" || n.credWritten.Load() == s {
		return
	}
	n.writeNodeCredential(s)
	n.credWritten.Store(s)
}

// writeNodeCredential keeps the node credential in the data dir (0600),
// beside the Raft log that holds it anyway, for operator tooling that
// must call a peer route (the fault-scenario checker). It is never served.
func (n *Node) writeNodeCredential(s string) {
	p := filepath.Join(n.cfg.DataDir, "node-credential")
	if err := os.WriteFile(p, []byte(s+"\n"), 0o600); err != nil {
		n.log.Warn("write node credential", "error", err)
	}
}

// newPeerSecret returns 32 random bytes, base64url.
func newPeerSecret() (string, error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// ensurePeerSecret (leader) records a peer secret if the ledger has none:
// a new cluster, or one made by a version without it.
func (n *Node) ensurePeerSecret(ctx context.Context) {
	if n.peerSecret() != "" {
		return
	}
	s, err := newPeerSecret()
	if err != nil {
		n.log.Error("generate peer secret", "error", err)
		return
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if _, err := n.prop.Propose(cctx, fsm.Command{Type: fsm.CmdPeerSecret, PeerSecret: s}); err != nil {
		n.log.Warn("record peer secret", "error", err)
	}
}

// authConfig is what the HTTP server checks requests with.
func (n *Node) authConfig() transport.Auth {
	return transport.Auth{
		Bootstrap:  n.cfg.Token,
		PeerSecret: n.peerSecret,
		Token: func(hash string) (fsm.Token, bool) {
			var t fsm.Token
			var ok bool
			n.fsm.View(func(s *fsm.State) { t, ok = s.TokenByHash(hash) })
			return t, ok
		},
		Log:     n.log.Named("auth"),
		Resolve: scopeResolver{view: n.fsm.View, chunk: n.Chunk},
		// In a move to TLS, peers without it yet prove themselves by the
		// peer secret.
		NodeCertOnly: n.tls != nil && !n.cfg.transition().tls,
		// OpenRAG's users, with --catalog (catalog_users.go).
		External: n.catalogExternal(),
	}
}

// securityWarnings is what status shows about this node's exposure.
func (n *Node) securityWarnings() []string {
	var out []string
	if w := n.cfg.openWarning(); w != "" {
		out = append(out, w)
	}
	if w := n.cfg.transitionWarning(); w != "" {
		out = append(out, w)
	}
	return out
}

// initSecurity loads the node's credentials before any listener opens.
func (n *Node) initSecurity() error {
	var err error
	if n.keyring, err = n.newKeyring(); err != nil {
		return err
	}
	return n.loadTLS()
}

// watchPeerSecret keeps the node credential file in step with the
// ledger: written as soon as the secret reaches this node, not only when
// a peer call first needs it, and rewritten when a restore changes it
// (operator tooling reads the file to call peer routes).
func (n *Node) watchPeerSecret() {
	defer n.wg.Done()
	ch := n.fsm.Subscribe()
	defer n.fsm.Unsubscribe(ch)
	for {
		n.peerSecret()
		select {
		case <-ch:
		case <-n.stopCh:
			return
		}
	}
}
