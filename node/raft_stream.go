package node

import (
	"crypto/tls"
	"net"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/transport"
)

// gatedStreamLayer is Raft's transport with a gate on every connection:
// admit runs on each accepted connection before Raft sees a byte
// (transport.GatedListener), and a refusal is logged with the remote
// address; dial opens a connection that has passed the same gate from the
// other side. The credential schemes (security_raft.go, tls_raft.go,
// transition.go) supply the two.
type gatedStreamLayer struct {
	*transport.GatedListener
	adv  net.Addr
	dial func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error)
}

func newGatedStreamLayer(bind string, adv net.Addr, log hclog.Logger,
	admit func(net.Conn) (net.Conn, error), dial func(raft.ServerAddress, time.Duration) (net.Conn, error)) (*gatedStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if adv == nil {
		adv = ln.Addr()
	}
	gl := transport.NewGatedListener(ln, admit, func(remote string, err error) {
		log.Warn("raft connection refused", "remote", remote, "error", err)
	})
	return &gatedStreamLayer{GatedListener: gl, adv: adv, dial: dial}, nil
}

// Addr implements net.Listener: the advertised address.
func (s *gatedStreamLayer) Addr() net.Addr { return s.adv }

// Dial implements raft.StreamLayer.
func (s *gatedStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(addr, timeout)
}

// tlsAdmit finishes a server-side TLS handshake within raftAuthTimeout.
func tlsAdmit(c net.Conn, cfg *tls.Config) (net.Conn, error) {
	tc := tls.Server(c, cfg)
	_ = tc.SetDeadline(time.Now().Add(raftAuthTimeout))
	if err := tc.Handshake(); err != nil {
		return nil, err
	}
	_ = tc.SetDeadline(time.Time{})
	return tc, nil
}
