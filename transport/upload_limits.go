package transport

// Upload limits (issue 21). The server has a header timeout but no
// whole-request ReadTimeout, because a large upload on a slow link is
// legitimate; without more, a client sending a byte every few seconds holds a
// socket and a temporary file for as long as it likes, and a thousand of
// them exhaust the node's descriptors. Two bounds close that:
//
//   - idle: a body read that waits longer than this for the client is cut;
//     the handler sees an error and its deferred cleanup removes whatever it
//     spooled. Only the time spent waiting on the client counts, so a slow
//     disk or a busy Raft on our side never cuts an upload;
//   - concurrency: a token (the remote IP on an open cluster) has at most
//     so many uploads in flight; past that it gets 429 with Retry-After.

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/ragnode/ragnode/errs"
)

// uploadLimits is the Server's state for the upload routes; the zero value
// imposes no limit.
type uploadLimits struct {
	mu       sync.Mutex
	idle     time.Duration // 0: no idle limit
	perToken int           // 0: no cap
	active   map[string]int
}

// SetUploadLimits bounds the upload routes (POST /v1/files, POST
// /v1/files/batch and the compat file upload): a body that makes no progress
// for idle is cut, and a token, or a remote IP when the request carries
// none, may have at most perToken uploads in flight. 0 turns either off.
func (s *Server) SetUploadLimits(idle time.Duration, perToken int) {
	u := &s.uploads
	u.mu.Lock()
	defer u.mu.Unlock()
	u.idle, u.perToken = max(idle, 0), max(perToken, 0)
}

// beginUpload admits r as an upload and puts its body under the idle limit.
// An error (errs.Busy: the writers turn it into 429 with Retry-After) means
// the caller is at its cap and must answer with it; otherwise release must
// be called when the handler is done.
func (s *Server) beginUpload(w http.ResponseWriter, r *http.Request) (release func(), err error) {
	u := &s.uploads
	key, who := uploadKey(r)
	u.mu.Lock()
	idle, limit := u.idle, u.perToken
	counted := limit > 0 && key != ""
	if counted {
		if u.active[key] >= limit {
			u.mu.Unlock()
			return nil, errs.Errorf(errs.Busy, "too many uploads in flight for %s: at most %d at a time (--max-uploads-per-token); retry when one has finished", who, limit)
		}
		if u.active == nil {
			u.active = make(map[string]int)
		}
		u.active[key]++
	}
	u.mu.Unlock()
	if idle > 0 && r.Body != nil && r.Body != http.NoBody {
		r.Body = &idleBody{ReadCloser: r.Body, ctl: http.NewResponseController(w), idle: idle}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			if !counted {
				return
			}
			u.mu.Lock()
			defer u.mu.Unlock()
			if u.active[key]--; u.active[key] <= 0 {
				delete(u.active, key)
			}
		})
	}, nil
}

// uploadKey is what the concurrency cap counts by: the token, else the
// remote IP. Peers (the node credential) are not counted: they relay work
// already admitted where it entered the cluster, and a cap there would
// throttle the whole cluster's forwarding as if it were one client.
func uploadKey(r *http.Request) (key, who string) {
	if c, ok := CallerOf(r.Context()); ok {
		if c.Node {
			return "", ""
		}
		if c.TokenID != "" {
			return "token:" + c.TokenID, "token " + c.TokenID
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return "ip:" + host, "client " + host
}

// idleBody cuts a body whose client stops sending. The deadline is armed
// before each read rather than extended after it, so that time the handler
// spends between reads (writing to disk, waiting on Raft) never counts.
type idleBody struct {
	io.ReadCloser
	ctl  *http.ResponseController
	idle time.Duration
	// off: the connection has no read deadlines (a test recorder); the
	// body is then read without the limit rather than refused.
	off bool
}

// ErrUploadStalled is the cause of a body cut by the idle limit.
var ErrUploadStalled = errors.New("upload stalled")

func (b *idleBody) Read(p []byte) (int, error) {
	if !b.off {
		if err := b.ctl.SetReadDeadline(time.Now().Add(b.idle)); err != nil {
			b.off = true
		}
	}
	n, err := b.ReadCloser.Read(p)
	switch {
	case err == nil:
	case errors.Is(err, io.EOF):
		// Once the body is in, net/http reads the connection in the
		// background to notice a client going away, and a read error there
		// cancels the request's context: a deadline left armed would cancel
		// a handler that is still working on a complete upload.
		if !b.off {
			_ = b.ctl.SetReadDeadline(time.Time{})
		}
	case !b.off && isTimeout(err):
		err = errs.Wrap(errs.Invalid, fmt.Errorf("%w: no data received for %s (--upload-idle-timeout); the request was cut (%w)", ErrUploadStalled, b.idle, err))
	}
	return n, err
}

func isTimeout(err error) bool {
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
