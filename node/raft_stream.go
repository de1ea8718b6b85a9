package node

import (
	"net"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// gatedStreamLayer is Raft's transport with a gate on every connection:
// admit runs on each accepted connection, in its own goroutine (a stalled
// dialer holds up no one), before Raft sees a byte, and a refusal is logged
// with the remote address; dial opens a connection that has passed the
// same gate from the other side. The credential schemes (security_raft.go,
// tls_raft.go) supply the two.
type gatedStreamLayer struct {
	ln     net.Listener
	adv    net.Addr
	log    hclog.Logger
	admit  func(net.Conn) (net.Conn, error)
	dial   func(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error)
	conns  chan net.Conn
	closed chan struct{}
	once   sync.Once
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
	s := &gatedStreamLayer{ln: ln, adv: adv, log: log, admit: admit, dial: dial,
		conns: make(chan net.Conn), closed: make(chan struct{})}
	go s.acceptLoop()
	return s, nil
}

func (s *gatedStreamLayer) acceptLoop() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			select {
			case <-s.closed:
				return
			default:
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		go func() {
			ac, err := s.admit(c)
			if err != nil {
				s.log.Warn("raft connection refused", "remote", c.RemoteAddr().String(), "error", err)
				_ = c.Close()
				return
			}
			select {
			case s.conns <- ac:
			case <-s.closed:
				_ = ac.Close()
			}
		}()
	}
}

// Accept implements net.Listener.
func (s *gatedStreamLayer) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case <-s.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (s *gatedStreamLayer) Close() error {
	var err error
	s.once.Do(func() {
		close(s.closed)
		err = s.ln.Close()
	})
	return err
}

// Addr implements net.Listener: the advertised address.
func (s *gatedStreamLayer) Addr() net.Addr { return s.adv }

// Dial implements raft.StreamLayer.
func (s *gatedStreamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	return s.dial(addr, timeout)
}
