package node

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/ragnode/ragnode/transport"
)

// tlsStreamLayer is Raft's transport with TLS on: mutual TLS where both
// sides must present a node certificate of the cluster CA (see
// transport.TLSMaterial). The handshake runs before Raft sees the
// connection, each in its own goroutine, so a stalled dialer holds up no
// one and every refusal is logged with the remote address.
type tlsStreamLayer struct {
	ln     net.Listener
	adv    net.Addr
	m      *transport.TLSMaterial
	log    hclog.Logger
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
}

func newTLSStreamLayer(bind string, adv net.Addr, m *transport.TLSMaterial, log hclog.Logger) (*tlsStreamLayer, error) {
	ln, err := net.Listen("tcp", bind)
	if err != nil {
		return nil, err
	}
	if adv == nil {
		adv = ln.Addr()
	}
	s := &tlsStreamLayer{ln: ln, adv: adv, m: m, log: log, conns: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

func (s *tlsStreamLayer) acceptLoop() {
	cfg := s.m.PeerServerConfig()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			time.Sleep(10 * time.Millisecond)
			continue
		}
		go func() {
			tc := tls.Server(c, cfg)
			_ = tc.SetDeadline(time.Now().Add(raftAuthTimeout))
			if err := tc.Handshake(); err != nil {
				s.log.Warn("raft connection refused", "remote", c.RemoteAddr().String(), "error", err)
				_ = c.Close()
				return
			}
			_ = tc.SetDeadline(time.Time{})
			select {
			case s.conns <- tc:
			case <-s.closed:
				_ = tc.Close()
			}
		}()
	}
}

// Accept implements net.Listener.
func (s *tlsStreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (s *tlsStreamLayer) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.ln.Close()
	})
	return err
}

// Addr implements net.Listener: the advertised address.
func (s *tlsStreamLayer) Addr() net.Addr { return s.adv }

// Dial implements raft.StreamLayer.
func (s *tlsStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	d := &net.Dialer{Timeout: timeout}
	c, err := tls.DialWithDialer(d, "tcp", string(addr), s.m.PeerClientConfig())
	if err != nil {
		return nil, fmt.Errorf("raft TLS to %s: %w", addr, err)
	}
	return c, nil
}
