package node

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
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
	adv   net.Addr
	dial  func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error)
	conns connTracker
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

// errNotAdvertisable is raft's own check on its TCP transport, kept for
// the plain layer that replaces it.
var errNotAdvertisable = errors.New("local bind address is not advertisable")

// newPlainStreamLayer is Raft's plain TCP transport (no credential:
// loopback or --insecure), built on the same layer as the others so that
// its connections can be closed at shutdown too.
func newPlainStreamLayer(bind string, adv net.Addr, log hclog.Logger) (*gatedStreamLayer, error) {
	admit := func(c net.Conn) (net.Conn, error) { return c, nil }
	dial := func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
		return net.DialTimeout("tcp", string(addr), timeout)
	}
	l, err := newGatedStreamLayer(bind, adv, log, admit, dial)
	if err != nil {
		return nil, err
	}
	if a, ok := l.adv.(*net.TCPAddr); !ok || a.IP == nil || a.IP.IsUnspecified() {
		_ = l.Close()
		return nil, errNotAdvertisable
	}
	return l, nil
}

// Addr implements net.Listener: the advertised address.
func (s *gatedStreamLayer) Addr() net.Addr { return s.adv }

// Accept implements net.Listener; the connection is tracked.
func (s *gatedStreamLayer) Accept() (net.Conn, error) {
	c, err := s.GatedListener.Accept()
	if err != nil {
		return nil, err
	}
	return s.conns.track(c)
}

// Dial implements raft.StreamLayer; the connection is tracked.
func (s *gatedStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	c, err := s.dial(addr, timeout)
	if err != nil {
		return nil, err
	}
	return s.conns.track(c)
}

// connTracker holds every live Raft connection of a node, accepted and
// dialed, so that a shutdown Raft is stuck in can cut them.
// raft.NetworkTransport.Close closes only the listener: an RPC blocked
// writing to a peer that stopped reading keeps its goroutine, and with it
// Raft's shutdown, until the RPC's deadline (10 s, and far longer for a
// snapshot, scaled by its size), and a snapshot being read from a peer has
// no deadline at all.
type connTracker struct {
	mu     sync.Mutex
	conns  map[*trackedConn]struct{}
	closed bool
}

// errRaftClosed refuses connections once the tracker has cut them all.
var errRaftClosed = errors.New("raft transport closed")

func (t *connTracker) track(c net.Conn) (net.Conn, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		_ = c.Close()
		return nil, errRaftClosed
	}
	if t.conns == nil {
		t.conns = map[*trackedConn]struct{}{}
	}
	tc := &trackedConn{Conn: c, t: t}
	t.conns[tc] = struct{}{}
	return tc, nil
}

// closeAll closes every live connection and refuses new ones; it returns
// how many it closed.
func (t *connTracker) closeAll() int {
	t.mu.Lock()
	t.closed = true
	conns := t.conns
	t.conns = nil
	t.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
	return len(conns)
}

func (t *connTracker) live() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.conns)
}

type trackedConn struct {
	net.Conn
	t    *connTracker
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() {
		c.t.mu.Lock()
		delete(c.t.conns, c)
		c.t.mu.Unlock()
	})
	return c.Conn.Close()
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
