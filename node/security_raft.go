package node

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/memberlist"
	"github.com/hashicorp/raft"
)

const (
	raftAuthMagic   = "RGNA"
	raftAuthTimeout = 5 * time.Second
	nonceLen        = 32
)

// errRaftAuth is a handshake the other side failed.
var errRaftAuth = errors.New("raft peer does not hold the cluster's gossip key")

// errNoHandshake is a peer that hung up on the hello without a challenge:
// one that does not speak the handshake (plain Raft), not one that failed it.
var errNoHandshake = errors.New("raft peer does not speak the handshake")

// newAuthStreamLayer is Raft's transport with TLS off and a membership
// credential on: every connection opens with a mutual challenge–response
// over the gossip keyring before Raft sees a byte of it.
//
//	dialer → acceptor: "RGNA" | nonce_d (32)
//	acceptor → dialer: nonce_a (32)
//	dialer → acceptor: HMAC-SHA256(primary key, "dial" | nonce_d | nonce_a)
//	acceptor → dialer: HMAC-SHA256(that key, "accept" | nonce_d | nonce_a)
//
// The acceptor tries every installed key, so a keyring rotation (install
// everywhere, then use, then remove) never cuts a node off; the dialer
// checks the answer, so a node never streams the log to an impostor. Fresh
// nonces on both sides make a recorded handshake useless. What it does not
// give is confidentiality or integrity of the stream after the handshake:
// that is what TLS is for.
func newAuthStreamLayer(bind string, adv net.Addr, kr *memberlist.Keyring, log hclog.Logger) (*gatedStreamLayer, error) {
	admit := func(c net.Conn) (net.Conn, error) { return c, acceptHandshake(c, kr) }
	dial := func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
		c, err := net.DialTimeout("tcp", string(addr), timeout)
		if err != nil {
			return nil, err
		}
		if err := dialHandshake(c, kr.GetPrimaryKey()); err != nil {
			_ = c.Close()
			return nil, fmt.Errorf("raft handshake with %s: %w", addr, err)
		}
		return c, nil
	}
	return newGatedStreamLayer(bind, adv, log, admit, dial)
}

func handshakeMAC(key []byte, label string, nd, na []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(nd)
	m.Write(na)
	return m.Sum(nil)
}

func dialHandshake(c net.Conn, key []byte) error {
	_ = c.SetDeadline(time.Now().Add(raftAuthTimeout))
	nd := make([]byte, nonceLen)
	if _, err := rand.Read(nd); err != nil {
		return err
	}
	if _, err := c.Write(append([]byte(raftAuthMagic), nd...)); err != nil {
		return err
	}
	na := make([]byte, nonceLen)
	if _, err := io.ReadFull(c, na); err != nil {
		return fmt.Errorf("%w (%w: %v)", errRaftAuth, errNoHandshake, err)
	}
	if _, err := c.Write(handshakeMAC(key, "dial", nd, na)); err != nil {
		return err
	}
	got := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, got); err != nil {
		return fmt.Errorf("%w (it closed the handshake: %v)", errRaftAuth, err)
	}
	if !hmac.Equal(got, handshakeMAC(key, "accept", nd, na)) {
		return errRaftAuth
	}
	return c.SetDeadline(time.Time{})
}

func acceptHandshake(c net.Conn, kr *memberlist.Keyring) error {
	_ = c.SetDeadline(time.Now().Add(raftAuthTimeout))
	hello := make([]byte, len(raftAuthMagic)+nonceLen)
	if _, err := io.ReadFull(c, hello); err != nil {
		return fmt.Errorf("read hello: %w", err)
	}
	if string(hello[:len(raftAuthMagic)]) != raftAuthMagic {
		return fmt.Errorf("%w (no handshake: an unauthenticated Raft client)", errRaftAuth)
	}
	nd := hello[len(raftAuthMagic):]
	na := make([]byte, nonceLen)
	if _, err := rand.Read(na); err != nil {
		return err
	}
	if _, err := c.Write(na); err != nil {
		return err
	}
	mac := make([]byte, sha256.Size)
	if _, err := io.ReadFull(c, mac); err != nil {
		return fmt.Errorf("read proof: %w", err)
	}
	var key []byte
	for _, k := range kr.GetKeys() {
		if hmac.Equal(mac, handshakeMAC(k, "dial", nd, na)) {
			key = k
			break
		}
	}
	if key == nil {
		return errRaftAuth
	}
	if _, err := c.Write(handshakeMAC(key, "accept", nd, na)); err != nil {
		return err
	}
	return c.SetDeadline(time.Time{})
}

// newRaftTransport is Raft's transport: the plain TCP one without a
// membership credential (loopback or --insecure), else one whose every
// connection is authenticated by the gossip keyring. Every kind tracks its
// connections in n.raftConns, for shutdownRaft.
func (n *Node) newRaftTransport(bind string, adv net.Addr) (*raft.NetworkTransport, error) {
	logger := n.log.Named("raft-net")
	var layer *gatedStreamLayer
	var err error
	switch plan := n.cfg.transition(); {
	case plan.tls || (plan.gossip != "" && n.tls == nil):
		layer, err = newTransitionStreamLayer(bind, adv, n.tls, n.keyring, plan, logger)
	case n.tls != nil:
		layer, err = newTLSStreamLayer(bind, adv, n.tls, logger)
	case n.keyring == nil:
		layer, err = newPlainStreamLayer(bind, adv, logger)
	default:
		layer, err = newAuthStreamLayer(bind, adv, n.keyring, logger)
	}
	if err != nil {
		return nil, err
	}
	n.raftConns = &layer.conns
	return raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{Stream: layer, MaxPool: 8, Timeout: 10 * time.Second, Logger: logger}), nil
}
