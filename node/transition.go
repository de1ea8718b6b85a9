package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/transport"
)

// Turning TLS or gossip encryption on in a running cluster, by rolling
// restart (README "Security" has the steps). --transition names what is
// being turned on, and for how long plaintext peers are still let in:
//
//   - tls: this node has TLS; it still accepts plaintext peers and clients
//     on the Raft and HTTP ports (it tells them apart by the first byte),
//     reaches each peer over TLS first and in plaintext when that peer
//     does not speak TLS yet, and takes the peer secret as well as a node
//     certificate on the peer plane. One roll with it, one roll without.
//   - gossip-accept, gossip-prefer: this node has the gossip key (or join
//     secret). accept sends gossip in plaintext and takes both; prefer
//     sends it encrypted and takes both; Raft connections take the
//     keyring handshake or none. Three rolls: accept, prefer, neither —
//     memberlist's own procedure (GossipVerifyIncoming/Outgoing), because
//     a node that encrypts cannot reach one that has no key, and a node
//     that requires encryption cannot hear one that sends plaintext.
//
// Both may be given at once (--transition tls,gossip-accept). During the
// window anyone who reaches the ports can talk plaintext, so status warns
// for as long as the flag is on.

const (
	transitionTLS          = "tls"
	transitionGossipAccept = "gossip-accept"
	transitionGossipPrefer = "gossip-prefer"
)

type transitionPlan struct {
	tls    bool
	gossip string // "", accept, prefer
}

func (c *Config) transition() transitionPlan {
	var p transitionPlan
	for _, v := range strings.Split(c.Transition, ",") {
		switch strings.TrimSpace(v) {
		case transitionTLS:
			p.tls = true
		case transitionGossipAccept:
			p.gossip = "accept"
		case transitionGossipPrefer:
			p.gossip = "prefer"
		}
	}
	return p
}

func (c *Config) validateTransition() error {
	if c.Transition == "" {
		return nil
	}
	var seenGossip string
	for _, v := range strings.Split(c.Transition, ",") {
		switch v = strings.TrimSpace(v); v {
		case transitionTLS:
			if !c.tlsOn() {
				return fmt.Errorf("--transition tls needs TLS on this node (--ca-file, --cert-file, --key-file): it is the window in which TLS nodes still accept plaintext ones")
			}
		case transitionGossipAccept, transitionGossipPrefer:
			if seenGossip != "" && seenGossip != v {
				return fmt.Errorf("--transition: give one of gossip-accept and gossip-prefer")
			}
			seenGossip = v
			if c.membershipKey() == nil {
				return fmt.Errorf("--transition %s needs --gossip-key or --join-secret on this node", v)
			}
		default:
			return fmt.Errorf("--transition %q: want tls, gossip-accept or gossip-prefer (comma-separated)", v)
		}
	}
	return nil
}

// transitionWarning is status's line while the window is open.
func (c *Config) transitionWarning() string {
	if c.Transition == "" {
		return ""
	}
	return fmt.Sprintf("--transition %s: this node still accepts peers without that credential; restart it without the flag once every node has it", c.Transition)
}

// gossipVerify is memberlist's pair for this node's stage.
func (p transitionPlan) gossipVerify() (incoming, outgoing bool) {
	switch p.gossip {
	case "accept":
		return false, false
	case "prefer":
		return false, true
	}
	return true, true
}

// newTransitionStreamLayer is Raft's transport while plaintext peers are
// let in: a TLS transition, or a gossip one on a node without TLS (with
// TLS on and only gossip in transition, Raft stays TLS-only). An
// accepted connection is told by its first byte: a TLS record (TLS
// on here), the keyring handshake's magic (a keyring here), or anything
// else, a plain Raft peer, let in only where the plan says plaintext
// peers still exist. Dialing goes down the same ladder: TLS, then
// (when the peer does not speak TLS and the plan allows) the keyring
// handshake, then (when the peer does not speak that either and the plan
// allows) plain Raft.
func newTransitionStreamLayer(bind string, adv net.Addr, m *transport.TLSMaterial, kr *memberlist.Keyring, plan transitionPlan, log hclog.Logger) (*gatedStreamLayer, error) {
	// Plain Raft peers exist while gossip encryption is being turned on,
	// or while TLS is turned on in a cluster that had no keyring.
	rawOK := plan.gossip != "" || (plan.tls && kr == nil)
	var srv, cli *tls.Config
	if m != nil {
		srv, cli = m.PeerServerConfig(), m.PeerClientConfig()
	}
	admit := func(c net.Conn) (net.Conn, error) {
		b, pc, err := transport.Peek(c, raftAuthTimeout)
		if err != nil {
			return nil, fmt.Errorf("read first byte: %w", err)
		}
		switch {
		case transport.IsTLSStart(b):
			if srv == nil {
				return nil, errors.New("a TLS connection, and TLS is off on this node")
			}
			return tlsAdmit(pc, srv)
		case b == raftAuthMagic[0] && kr != nil:
			return pc, acceptHandshake(pc, kr)
		case !rawOK:
			return nil, fmt.Errorf("%w (no handshake: an unauthenticated Raft client)", errRaftAuth)
		}
		return pc, nil
	}
	dial := func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if cli != nil {
			c, plain, err := transport.DialTLSOrPlain(ctx, string(addr), cli, timeout)
			if err != nil {
				return nil, fmt.Errorf("raft TLS to %s: %w", addr, err)
			}
			if !plain {
				return c, nil
			}
			return dialPlainRaft(ctx, c, addr, kr, rawOK, timeout)
		}
		c, err := (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", string(addr))
		if err != nil {
			return nil, err
		}
		return dialPlainRaft(ctx, c, addr, kr, rawOK, timeout)
	}
	return newGatedStreamLayer(bind, adv, log, admit, dial)
}

// dialPlainRaft finishes a plaintext Raft connection: the keyring
// handshake where this node has a keyring, and plain Raft on a fresh
// connection where the peer does not speak the handshake and rawOK.
func dialPlainRaft(ctx context.Context, c net.Conn, addr raft.ServerAddress, kr *memberlist.Keyring, rawOK bool, timeout time.Duration) (net.Conn, error) {
	if kr == nil {
		return c, nil
	}
	err := dialHandshake(c, kr.GetPrimaryKey())
	if err == nil {
		return c, nil
	}
	_ = c.Close()
	if !rawOK || !errors.Is(err, errNoHandshake) {
		return nil, fmt.Errorf("raft handshake with %s: %w", addr, err)
	}
	return (&net.Dialer{Timeout: timeout}).DialContext(ctx, "tcp", string(addr))
}
