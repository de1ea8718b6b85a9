package node

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/transport"
)

// Completion callbacks: the leader POSTs a task's final state to the
// callback_url its upload named (openrag's upload form field), with
// "Authorization: Bearer <callback_token>".
//
// Who sends, and how often: the leader, never a worker, because the
// ledger already tells it when a task is final and only one node leads at
// a time. Before the first POST it commits a claim naming itself
// (fsm/callback.go); it then tries up to callbackAttempts times with
// doubling backoff while the receiver is unreachable or answers 5xx or
// 429, and commits the outcome. A leader that inherits a claim without
// an outcome (its predecessor died or lost its term mid-delivery) closes
// it as failed and does not send: the predecessor may already have, so
// delivery is at most once per task across leader changes. The price is
// that such a callback can be lost; receivers that must not miss one
// should still poll GET /indexer/task/{id}. Within one leader's retries,
// a POST whose answer was lost (timeout after the receiver read it) is
// sent again, so every POST carries the same Idempotency-Key (the task
// ID) for receivers to drop a repeat.

const (
	callbackAttempts    = 5
	callbackFirstWait   = 500 * time.Millisecond
	callbackCallTimeout = 10 * time.Second
	callbackConcurrency = 8
)

// validCallbackURL is openrag's _validate_callback_url: an absolute
// http(s) URL, public unless the node allows private addresses.
func validCallbackURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return errs.New(errs.Invalid, "callback_url is not a valid URL")
	}
	if p := u.Port(); p != "" {
		if _, err := netip.ParseAddrPort("0.0.0.0:" + p); err != nil {
			return errs.New(errs.Invalid, "callback_url is not a valid URL")
		}
	}
	if allowPrivate {
		return nil
	}
	notPublic := errs.New(errs.Invalid, "callback_url must be a public http(s) URL")
	// "localhost." is localhost: a trailing dot only makes a name absolute.
	host := strings.TrimSuffix(strings.ToLower(u.Hostname()), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return notPublic
	}
	if a, err := netip.ParseAddr(host); err == nil {
		if !publicAddr(a) {
			return notPublic
		}
	} else if legacyIPv4(host) {
		return notPublic
	}
	return nil
}

// legacyIPv4 reports a host whose last label is a number: no DNS name
// ends so (top-level domains are not numeric), but inet_aton, which a
// system resolver may use, reads 127.1, 2130706433 and 0x7f.1 as IPv4
// addresses. Which address such a host is depends on the resolver, so it
// is refused whatever it spells; the dialer would refuse a private one
// anyway, but only at delivery, long after the upload was accepted.
func legacyIPv4(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if hex, ok := strings.CutPrefix(last, "0x"); ok {
		return strings.Trim(hex, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

// errPrivateCallback is a connection refused by the dialer's check.
var errPrivateCallback = errors.New("callback address is not public")

// callbackHTTP is the client callbacks go through. Unless private
// addresses are allowed, the dialer checks the address it actually
// connects to, so a name that resolves to a private address (or is
// re-pointed there after the upload was checked) is refused too.
func callbackHTTP(allowPrivate bool) *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !allowPrivate {
		d.Control = func(network, address string, _ syscall.RawConn) error {
			ap, err := netip.ParseAddrPort(address)
			if err != nil || !publicAddr(ap.Addr()) {
				return fmt.Errorf("%w: %s", errPrivateCallback, address)
			}
			return nil
		}
	}
	tr := &http.Transport{DialContext: d.DialContext, Proxy: nil, MaxIdleConns: 8, IdleConnTimeout: 30 * time.Second}
	return &http.Client{Transport: tr, Timeout: callbackCallTimeout,
		// A redirect could lead anywhere; the receiver is the URL given.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// callbackLoop is the leader duty that delivers completion callbacks.
func (n *Node) callbackLoop(ctx context.Context) {
	n.closeInheritedClaims(ctx)
	client := callbackHTTP(n.cfg.CallbackAllowPrivate)
	defer client.CloseIdleConnections()
	var (
		mu       sync.Mutex
		inFlight = map[string]bool{}
		wg       sync.WaitGroup
		sem      = make(chan struct{}, callbackConcurrency)
	)
	defer wg.Wait()
	n.watchLedger(ctx.Done(), 5*n.tick(), func() {
		var due []fsm.Task
		n.fsm.View(func(s *fsm.State) {
			for _, t := range s.CallbacksDue() {
				due = append(due, *t)
			}
		})
		for _, t := range due {
			mu.Lock()
			busy := inFlight[t.ID]
			inFlight[t.ID] = true
			mu.Unlock()
			if busy {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(inFlight, t.ID)
					mu.Unlock()
				}()
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-sem }()
				n.deliverCallback(ctx, client, t)
			}()
		}
	})
}

// closeInheritedClaims closes, as failed, the claims this leader did not
// make in this term: whoever made them may have sent them.
func (n *Node) closeInheritedClaims(ctx context.Context) {
	var claimed []string
	n.fsm.View(func(s *fsm.State) {
		for id, t := range s.Tasks {
			if t.Callback != nil && t.Callback.State == fsm.CallbackClaimed {
				claimed = append(claimed, id)
			}
		}
	})
	for _, id := range claimed {
		res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdCallback, TaskID: id, Status: fsm.CallbackFailed,
			NodeID: n.id, Now: time.Now().UnixNano(),
			Error: "delivery interrupted by a leader change; not sent again (at most once)"})
		if err == nil {
			err = res.Error()
		}
		if err != nil {
			n.log.Warn("callback: close inherited claim", "task", id, "error", err)
		}
	}
}

// deliverCallback claims one task's callback, POSTs it and records the
// outcome.
func (n *Node) deliverCallback(ctx context.Context, client *http.Client, t fsm.Task) {
	res, err := n.prop.Propose(ctx, fsm.Command{Type: fsm.CmdCallback, TaskID: t.ID, Status: fsm.CallbackClaimed,
		NodeID: n.id, Now: time.Now().UnixNano()})
	if err == nil {
		err = res.Error()
	}
	if err != nil {
		// Claimed already (by an earlier pass or leader), or this node is
		// no longer the leader: either way it must not send.
		n.log.Debug("callback: not claimed", "task", t.ID, "error", err)
		return
	}
	body, _ := json.Marshal(transport.NewCallbackBody(t.ID, t.Partition, t.FileID, string(t.State), t.Chunks, t.Error))
	attempts, sendErr := n.postCallback(ctx, client, t, body)
	out := fsm.Command{Type: fsm.CmdCallback, TaskID: t.ID, Status: fsm.CallbackDelivered, NodeID: n.id,
		Chunks: attempts, Now: time.Now().UnixNano()}
	if sendErr != nil {
		out.Status, out.Error = fsm.CallbackFailed, sendErr.Error()
		n.log.Warn("callback not delivered", "task", t.ID, "url", redactURL(t.Callback.URL), "attempts", attempts, "error", sendErr)
	}
	// The outcome is written even when ctx (the leader term) ended: the
	// claim is this node's, and recording what happened is what stops the
	// next leader from calling it an interruption. A short, fresh context.
	octx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	if res, err := n.prop.Propose(octx, out); err != nil || res.Rejected() {
		n.log.Warn("callback: record outcome", "task", t.ID, "error", err, "rejection", res.Err)
	}
}

// postCallback POSTs body with retries and returns the POSTs made.
func (n *Node) postCallback(ctx context.Context, client *http.Client, t fsm.Task, body []byte) (int, error) {
	wait := callbackFirstWait
	var last error
	for i := 1; i <= callbackAttempts; i++ {
		retry, err := sendCallback(ctx, client, t, body)
		if err == nil {
			return i, nil
		}
		last = err
		if !retry || i == callbackAttempts || !pause(ctx.Done(), wait) {
			return i, last
		}
		wait *= 2
	}
	return callbackAttempts, last
}

// sendCallback makes one POST; retry says whether another could succeed.
func sendCallback(ctx context.Context, client *http.Client, t fsm.Task, body []byte) (retry bool, err error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.Callback.URL, bytes.NewReader(body))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", t.ID)
	req.Header.Set("User-Agent", "ragnode/"+Version)
	if t.Callback.Token != "" {
		req.Header.Set("Authorization", "Bearer "+t.Callback.Token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return !errors.Is(err, errPrivateCallback), fmt.Errorf("POST %s: %w", redactURL(t.Callback.URL), err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	switch {
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		return false, nil
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusRequestTimeout:
		return true, fmt.Errorf("POST %s: HTTP %d", redactURL(t.Callback.URL), resp.StatusCode)
	default:
		return false, fmt.Errorf("POST %s: HTTP %d", redactURL(t.Callback.URL), resp.StatusCode)
	}
}

// redactURL drops the query and user info, which may carry secrets, from
// a URL written to logs and the ledger.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<invalid url>"
	}
	u.User, u.RawQuery, u.Fragment = nil, "", ""
	return u.String()
}
