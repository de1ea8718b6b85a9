package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// Moving a running cluster to TLS by rolling restart (README "Security").
// While some nodes have TLS and others not yet, a node in transition
// serves both on each port — it tells them apart by the first byte a
// client sends, 0x16 being a TLS handshake record — and reaches a peer
// over TLS first, falling back to plaintext when the peer does not speak
// it. Once every node has TLS, a second rolling restart without the
// transition turns plaintext off. In between, anyone who can reach the
// ports can talk plaintext: the transition is a window, not a mode.

// tlsRecordHandshake is the first byte of every TLS ClientHello.
const tlsRecordHandshake = 0x16

// sniffTimeout bounds how long an accepted connection may stay silent
// before it is dropped; it runs off the accept path, so a silent client
// holds up only itself.
const sniffTimeout = 10 * time.Second

// PeekedConn is a connection whose first bytes were read to tell TLS
// from plaintext and are served again to the next reader.
type PeekedConn struct {
	net.Conn
	R *bufio.Reader
}

func (c *PeekedConn) Read(p []byte) (int, error) { return c.R.Read(p) }

// Peek reads the first byte of c (within the deadline) without consuming
// it: the returned connection reads it again.
func Peek(c net.Conn, timeout time.Duration) (byte, *PeekedConn, error) {
	pc := &PeekedConn{Conn: c, R: bufio.NewReaderSize(c, 512)}
	_ = c.SetReadDeadline(time.Now().Add(timeout))
	b, err := pc.R.Peek(1)
	_ = c.SetReadDeadline(time.Time{})
	if err != nil {
		return 0, nil, err
	}
	return b[0], pc, nil
}

// IsTLSStart reports whether a connection's first byte opens a TLS
// handshake.
func IsTLSStart(b byte) bool { return b == tlsRecordHandshake }

// GatedListener runs admit on every accepted connection, in its own
// goroutine (a stalled client holds up no one), before Accept hands it
// out; a refused connection is closed and reported to refused. The Raft
// stream layers and the transition listener are both built on it.
type GatedListener struct {
	ln      net.Listener
	admit   func(net.Conn) (net.Conn, error)
	refused func(remote string, err error)
	conns   chan net.Conn
	closed  chan struct{}
	once    sync.Once
}

// NewGatedListener starts accepting on ln; refused may be nil.
func NewGatedListener(ln net.Listener, admit func(net.Conn) (net.Conn, error), refused func(remote string, err error)) *GatedListener {
	l := &GatedListener{ln: ln, admit: admit, refused: refused, conns: make(chan net.Conn), closed: make(chan struct{})}
	go l.acceptLoop()
	return l
}

func (l *GatedListener) acceptLoop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			select {
			case <-l.closed:
				return
			default:
			}
			if errors.Is(err, net.ErrClosed) {
				l.Close()
				return
			}
			time.Sleep(10 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		go func() {
			ac, err := l.admit(c)
			if err != nil {
				if l.refused != nil {
					l.refused(c.RemoteAddr().String(), err)
				}
				_ = c.Close()
				return
			}
			select {
			case l.conns <- ac:
			case <-l.closed:
				_ = ac.Close()
			}
		}()
	}
}

// Accept implements net.Listener.
func (l *GatedListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

// Close implements net.Listener.
func (l *GatedListener) Close() error {
	var err error
	l.once.Do(func() {
		close(l.closed)
		err = l.ln.Close()
	})
	return err
}

// Addr implements net.Listener.
func (l *GatedListener) Addr() net.Addr { return l.ln.Addr() }

// NewTransitionListener wraps ln so it serves TLS (with cfg) and plaintext
// on the same port: *tls.Conn for connections that open with a TLS
// handshake (so net/http sets r.TLS and a node certificate counts), the
// plain connection for the others.
func NewTransitionListener(ln net.Listener, cfg *tls.Config) net.Listener {
	return NewGatedListener(ln, func(c net.Conn) (net.Conn, error) {
		b, pc, err := Peek(c, sniffTimeout)
		if err != nil {
			return nil, err
		}
		if IsTLSStart(b) {
			return tls.Server(pc, cfg), nil
		}
		return pc, nil
	}, nil)
}

// NotSpeakingTLS reports whether a failed TLS handshake means the other
// side does not speak TLS at all — it answered with something that is not
// a TLS record, or hung up on the ClientHello — rather than that it
// refused our certificate or presented a bad one. Only the first is a
// reason to fall back to plaintext.
func NotSpeakingTLS(err error) bool {
	var rh tls.RecordHeaderError
	if errors.As(err, &rh) {
		return true
	}
	var cv *tls.CertificateVerificationError
	var alert tls.AlertError
	if errors.As(err, &cv) || errors.As(err, &alert) {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// DialTLSOrPlain opens a TLS connection to addr, or, when the peer does not
// speak TLS, a plain one (a second TCP connection: the first was spent on
// the ClientHello). plain reports which it is.
func DialTLSOrPlain(ctx context.Context, addr string, cfg *tls.Config, timeout time.Duration) (c net.Conn, plain bool, err error) {
	d := &net.Dialer{Timeout: timeout}
	tc, err := (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", addr)
	if err == nil {
		return tc, false, nil
	}
	if !NotSpeakingTLS(err) {
		return nil, false, err
	}
	pc, perr := d.DialContext(ctx, "tcp", addr)
	if perr != nil {
		return nil, false, perr
	}
	return pc, true, nil
}

// NewPeerTransitionClient is a node's peer client during a move to TLS:
// HTTPS with its node certificate where the peer speaks TLS, plain HTTP
// where it does not yet; it carries the peer secret on both, because a
// peer without TLS knows a node only by that.
func NewPeerTransitionClient(addr string, m *TLSMaterial, secret func() string) *Client {
	c := NewClient(addr, "")
	c.Scheme = "https"
	tr := c.HTTP.Transport.(*http.Transport)
	cfg := m.PeerClientConfig()
	tr.DialTLSContext = func(ctx context.Context, network, a string) (net.Conn, error) {
		conn, _, err := DialTLSOrPlain(ctx, a, cfg, 10*time.Second)
		return conn, err
	}
	c.HTTP.Transport = nodeCredential{base: tr, secret: secret}
	return c
}
