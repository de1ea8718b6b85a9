package node

import (
	"bytes"
	"encoding/json"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/fsm"
)

func TestValidCallbackURL(t *testing.T) {
	for _, c := range []struct {
		url     string
		private bool
		want    string
	}{
		{"https://hooks.example.com/ragnode?k=1", false, ""},
		{"http://93.184.216.34:8080/x", false, ""},
		{"ftp://hooks.example.com/", false, "callback_url is not a valid URL"},
		{"not a url", false, "callback_url is not a valid URL"},
		{"http://hooks.example.com:http/", false, "callback_url is not a valid URL"},
		{"http:///path", false, "callback_url is not a valid URL"},
		{"http://127.0.0.1:9/x", false, "callback_url must be a public http(s) URL"},
		{"http://localhost/x", false, "callback_url must be a public http(s) URL"},
		{"http://10.1.2.3/x", false, "callback_url must be a public http(s) URL"},
		{"http://[::1]/x", false, "callback_url must be a public http(s) URL"},
		{"http://169.254.169.254/latest/meta-data", false, "callback_url must be a public http(s) URL"},
		{"http://127.0.0.1:9/x", true, ""},
	} {
		err := validCallbackURL(c.url, c.private)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s (private %v): %v", c.url, c.private, err)
		case c.want != "" && (err == nil || err.Error() != c.want || !errorsIsInvalid(err)):
			t.Errorf("%s (private %v) = %v; want invalid %q", c.url, c.private, err, c.want)
		}
	}
	if got := redactURL("https://u:p@h.example/x?token=s#f"); got != "https://h.example/x" {
		t.Errorf("redactURL = %s", got)
	}
}

func errorsIsInvalid(err error) bool { return errs.KindOf(err) == errs.Invalid }

// hookReceiver is a callback receiver on loopback that records every POST.
type hookReceiver struct {
	mu    sync.Mutex
	calls []hookCall
	// answer picks the status of the i-th call (from 1); block, when set,
	// holds the first call until closed.
	answer func(i int) int
	block  chan struct{}
	got    chan struct{}
	srv    *httptest.Server
}

type hookCall struct {
	auth, key string
	body      map[string]any
}

func newHookReceiver(t *testing.T, answer func(int) int) *hookReceiver {
	h := &hookReceiver{answer: answer, got: make(chan struct{}, 16)}
	h.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		var body map[string]any
		json.Unmarshal(b, &body)
		h.mu.Lock()
		h.calls = append(h.calls, hookCall{auth: r.Header.Get("Authorization"), key: r.Header.Get("Idempotency-Key"), body: body})
		i, block := len(h.calls), h.block
		h.mu.Unlock()
		h.got <- struct{}{}
		if i == 1 && block != nil {
			<-block
		}
		w.WriteHeader(h.answer(i))
	}))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookReceiver) snapshot() []hookCall {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]hookCall(nil), h.calls...)
}

// uploadWithCallback sends an openrag upload with the callback fields
// before the file, as openrag's clients do.
func uploadWithCallback(cc compatClient, partition, fileID, content, cbURL, cbToken string) (int, string) {
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	mw.WriteField("metadata", `{"k":"v"}`)
	mw.WriteField("callback_url", cbURL)
	mw.WriteField("callback_token", cbToken)
	fw, _ := mw.CreateFormFile("file", fileID+".md")
	fw.Write([]byte(content))
	mw.Close()
	return cc.do("POST", "/indexer/partition/"+partition+"/file/"+fileID, &buf, mw.FormDataContentType())
}

func callbackOf(n *Node, taskID string) fsm.Callback {
	var cb fsm.Callback
	if n == nil { // no leader at this instant (an election under load)
		return cb
	}
	n.fsm.View(func(s *fsm.State) {
		if t := s.Tasks[taskID]; t != nil && t.Callback != nil {
			cb = *t.Callback
		}
	})
	return cb
}

// A task's callback is POSTed once it completes, with the bearer token,
// retried past a 503, and recorded as delivered in the ledger.
func TestCompatCallbackDelivered(t *testing.T) {
	h := newHookReceiver(t, func(i int) int {
		if i == 1 {
			return http.StatusServiceUnavailable
		}
		return http.StatusNoContent
	})
	c, ns := indexCluster(t, func(i int, cfg *Config) { cfg.CallbackAllowPrivate = true })
	cc := compatClient{t: t, base: "http://" + followerOf(t, c, ns).HTTPAddr()}
	if code, body := uploadWithCallback(cc, "docs", "bad", "# x", "ftp://nowhere/", ""); code != 400 || body != `{"detail":"callback_url is not a valid URL"}` {
		t.Fatalf("bad callback_url = %d %s", code, body)
	}
	code, body := uploadWithCallback(cc, "docs", "a", "# A\n\nalpha beta gamma", h.srv.URL+"/hook?s=1", "tok-1")
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("upload = %d %s", code, body)
	}
	id := m[2]
	waitFor(t, 30*time.Second, "callback delivered", func() bool {
		return callbackOf(c.leader(), id).State == fsm.CallbackDelivered
	})
	calls := h.snapshot()
	if len(calls) != 2 {
		t.Fatalf("receiver got %d calls, want a 503 then one delivery: %+v", len(calls), calls)
	}
	var chunks int
	ns[0].fsm.View(func(s *fsm.State) { chunks = s.Tasks[id].Chunks })
	want := map[string]any{"partition": "docs", "file_id": "a", "status": "indexed", "task_id": id,
		"task_state": "COMPLETED", "chunks": float64(chunks)}
	for _, call := range calls {
		if call.auth != "Bearer tok-1" || call.key != id || !jsonSame(call.body, want) || chunks == 0 {
			t.Fatalf("call %+v; want body %v with bearer and idempotency key", call, want)
		}
	}
	if cb := callbackOf(c.leader(), id); cb.Attempts != 2 || cb.Error != "" || cb.Claimer == "" {
		t.Fatalf("ledger record %+v", cb)
	}
}

func jsonSame(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}

// A leader that dies mid-delivery leaves a claim; the next leader closes
// it as failed and nobody POSTs again (at most once).
func TestCallbackNotResentAfterLeaderChange(t *testing.T) {
	h := newHookReceiver(t, func(int) int { return http.StatusOK })
	h.block = make(chan struct{})
	released := false
	release := func() {
		if !released {
			released = true
			close(h.block)
		}
	}
	t.Cleanup(release) // before the receiver closes (cleanups run in reverse)
	c, ns := indexCluster(t, func(i int, cfg *Config) { cfg.CallbackAllowPrivate = true })
	cc := compatClient{t: t, base: "http://" + followerOf(t, c, ns).HTTPAddr()}
	code, body := uploadWithCallback(cc, "docs", "a", "# A\n\nalpha", h.srv.URL, "tok")
	m := taskURL.FindStringSubmatch(body)
	if code != 201 || m == nil {
		t.Fatalf("upload = %d %s", code, body)
	}
	id := m[2]
	select {
	case <-h.got:
	case <-time.After(30 * time.Second):
		t.Fatal("no callback arrived")
	}
	old := c.mustLeader(t)
	if cb := callbackOf(old, id); cb.State != fsm.CallbackClaimed || cb.Claimer != old.id {
		t.Fatalf("while the POST is in flight the ledger says %+v", cb)
	}
	old.Kill()
	var next *Node
	waitFor(t, 30*time.Second, "a new leader closes the claim", func() bool {
		next = c.leader()
		return next != nil && next != old && callbackOf(next, id).State == fsm.CallbackFailed
	})
	cb := callbackOf(next, id)
	if !strings.Contains(cb.Error, "leader change") || cb.Claimer != old.id {
		t.Fatalf("closed claim %+v", cb)
	}
	release()
	// The ledger's record is final: no node can claim it again, so the
	// receiver's one call is all there will be.
	if n := len(h.snapshot()); n != 1 {
		t.Fatalf("receiver got %d calls", n)
	}
}
