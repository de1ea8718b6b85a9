package transport

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ragnode/ragnode/fsm"
)

// spoolBackend takes an upload the way the node's blob store does: into a
// temporary file in dir, removed when the body fails.
type spoolBackend struct {
	Backend // nil: only Submit is served here
	dir     string
	// pause, when set, is how long Submit waits between its first read and
	// the rest, and after the body is in: a slow disk or a busy Raft.
	pause   atomic.Int64 // a time.Duration
	started chan string  // FileID, once the first bytes are spooled

	mu     sync.Mutex
	stored map[string]int64
	failed []error
}

func newSpoolBackend(t *testing.T) *spoolBackend {
	return &spoolBackend{dir: t.TempDir(), started: make(chan string, 16), stored: map[string]int64{}}
}

func (b *spoolBackend) Submit(ctx context.Context, req SubmitRequest, body io.Reader) (TaskView, error) {
	f, err := os.CreateTemp(b.dir, "upload-*")
	if err != nil {
		return TaskView{}, err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.CopyN(f, body, 1)
	if err == nil {
		b.started <- req.FileID
		time.Sleep(time.Duration(b.pause.Load()))
		var m int64
		m, err = io.Copy(f, body)
		n += m
	}
	if pause := time.Duration(b.pause.Load()); err == nil && pause > 0 {
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil && !errors.Is(err, io.EOF) {
		b.failed = append(b.failed, err)
		return TaskView{}, fmt.Errorf("receive file: %w", err)
	}
	b.stored[req.FileID] = n
	return TaskView{ID: req.FileID, Size: n}, nil
}

func (b *spoolBackend) result() (map[string]int64, []error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[string]int64{}
	for k, v := range b.stored {
		out[k] = v
	}
	return out, append([]error(nil), b.failed...)
}

// waitStarted waits for the backend to have an upload's first bytes.
func (b *spoolBackend) waitStarted(t *testing.T) string {
	t.Helper()
	select {
	case id := <-b.started:
		return id
	case <-time.After(10 * time.Second):
		t.Fatal("the upload never reached the backend")
		return ""
	}
}

// spoolCompat serves the compat upload route from a spoolBackend, and the
// rest of the compat API from the in-memory fake.
type spoolCompat struct {
	*fakeCompat
	sb *spoolBackend
}

func (c spoolCompat) Submit(ctx context.Context, req SubmitRequest, body io.Reader) (TaskView, error) {
	return c.sb.Submit(ctx, req, body)
}

// rawRequest opens a connection and sends the request head and the first
// part of a body; the test decides what the client does next.
func rawRequest(t *testing.T, addr, method, target, headers string, body string) (net.Conn, *bufio.Reader) {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	head := fmt.Sprintf("%s %s HTTP/1.1\r\nHost: test\r\n%s\r\n", method, target, headers)
	if _, err := io.WriteString(conn, head+body); err != nil {
		t.Fatal(err)
	}
	return conn, bufio.NewReader(conn)
}

func readResponse(t *testing.T, conn net.Conn, br *bufio.Reader, within time.Duration) (*http.Response, string) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(within))
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response within %s: %v", within, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func entries(t *testing.T, dir, prefix string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, e.Name())
		}
	}
	return out
}

// waitEmpty waits for the handler's deferred cleanup, which runs after the
// response went out.
func waitEmpty(t *testing.T, dir, prefix string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for len(entries(t, dir, prefix)) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("spooled upload left behind in %s: %v", dir, entries(t, dir, prefix))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUploadStalledIsCut: a client that sends part of a body and then
// nothing is cut after the idle timeout, and nothing of its upload is kept.
func TestUploadStalledIsCut(t *testing.T) {
	const idle = 300 * time.Millisecond
	b := newSpoolBackend(t)
	s := NewServer(b, "")
	s.SetUploadLimits(idle, 0)
	ts := httptest.NewServer(s)
	defer ts.Close()

	start := time.Now()
	conn, br := rawRequest(t, ts.Listener.Addr().String(), "POST", "/v1/files?partition=p&file_id=stalled&filename=a.txt",
		"Content-Length: 100000\r\n", strings.Repeat("x", 1000))
	if id := b.waitStarted(t); id != "stalled" {
		t.Fatalf("started %q", id)
	}
	resp, body := readResponse(t, conn, br, 10*time.Second)
	took := time.Since(start)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "no data received for 300ms") {
		t.Fatalf("got %d %s, want 400 naming the idle timeout", resp.StatusCode, body)
	}
	if took < idle || took > 5*time.Second {
		t.Fatalf("cut after %s, want about %s", took, idle)
	}
	stored, failed := b.result()
	if len(stored) != 0 || len(failed) != 1 || !errors.Is(failed[0], ErrUploadStalled) {
		t.Fatalf("stored %v, failures %v: want one failure from the idle limit", stored, failed)
	}
	waitEmpty(t, b.dir, "upload-")
	// The connection is not kept for another request.
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the stalled connection stayed open")
	}
}

// TestCompatUploadStalledRemovesSpool: the compat route spools the file part
// to a temporary file when it comes before the metadata; a stall there
// removes the spool too.
func TestCompatUploadStalledRemovesSpool(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	b := newSpoolBackend(t)
	s := NewServer(stubBackend{}, "")
	s.MountCompat(spoolCompat{fakeCompat: newFakeCompat(), sb: b})
	// Longer than the other tests: the spool must be seen before the cut.
	s.SetUploadLimits(time.Second, 0)
	ts := httptest.NewServer(s)
	defer ts.Close()

	const boundary = "b0undary"
	part := "--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n" +
		"Content-Type: text/plain\r\n\r\n" + strings.Repeat("y", 5000)
	conn, br := rawRequest(t, ts.Listener.Addr().String(), "POST", "/indexer/partition/p/file/f1",
		"Content-Type: multipart/form-data; boundary="+boundary+"\r\nContent-Length: 1000000\r\n", part)
	deadline := time.Now().Add(5 * time.Second)
	for len(entries(t, tmp, "ragnode-upload-")) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the file part was never spooled")
		}
		time.Sleep(5 * time.Millisecond)
	}
	resp, body := readResponse(t, conn, br, 10*time.Second)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "upload stalled") {
		t.Fatalf("got %d %s, want 400 upload stalled", resp.StatusCode, body)
	}
	waitEmpty(t, tmp, "ragnode-upload-")
	if stored, _ := b.result(); len(stored) != 0 {
		t.Fatalf("stored %v", stored)
	}
}

// TestUploadSlowButSteadyIsNotCut: the limit is on silence, not on length:
// a body trickling in for several idle periods, and a backend slow between
// its reads and after the body is in, both complete.
func TestUploadSlowButSteadyIsNotCut(t *testing.T) {
	// 5 times the gap between pieces: a loaded CI machine delays a write
	// by a good part of that.
	const idle = 500 * time.Millisecond
	b := newSpoolBackend(t)
	s := NewServer(b, "")
	s.SetUploadLimits(idle, 0)
	ts := httptest.NewServer(s)
	defer ts.Close()

	const pieces, size = 16, 100
	conn, br := rawRequest(t, ts.Listener.Addr().String(), "POST", "/v1/files?partition=p&file_id=slow&filename=a.txt",
		fmt.Sprintf("Content-Length: %d\r\n", pieces*size), strings.Repeat("s", size))
	for i := 1; i < pieces; i++ {
		time.Sleep(100 * time.Millisecond)
		if _, err := io.WriteString(conn, strings.Repeat("s", size)); err != nil {
			t.Fatalf("piece %d: %v", i, err)
		}
	}
	resp, body := readResponse(t, conn, br, 10*time.Second)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("slow upload: %d %s", resp.StatusCode, body)
	}

	// Our side slow: two idle periods between reads, and again once the
	// body is complete (the client sits silent on the connection then).
	b.pause.Store(int64(2 * idle))
	conn, br = rawRequest(t, ts.Listener.Addr().String(), "POST", "/v1/files?partition=p&file_id=busy&filename=a.txt",
		"Content-Length: 5000\r\n", strings.Repeat("z", 5000))
	resp, body = readResponse(t, conn, br, 10*time.Second)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("upload to a slow backend: %d %s", resp.StatusCode, body)
	}
	if stored, failed := b.result(); stored["slow"] != pieces*size || stored["busy"] != 5000 || len(failed) != 0 {
		t.Fatalf("stored %v, failures %v", stored, failed)
	}
}

// TestUploadsPerTokenCap: past --max-uploads-per-token a token gets 429 with
// Retry-After; another token is unaffected, and the token is admitted again
// once one of its uploads has finished.
func TestUploadsPerTokenCap(t *testing.T) {
	b := newSpoolBackend(t)
	s := NewServer(b, "")
	tokens := map[string]fsm.Token{
		HashToken("alpha-secret"): {ID: "alpha", Role: fsm.RoleIndex},
		HashToken("beta-secret"):  {ID: "beta", Role: fsm.RoleIndex},
	}
	s.SetAuth(Auth{Bootstrap: "boot", PeerSecret: func() string { return "" },
		Token: func(h string) (fsm.Token, bool) { tok, ok := tokens[h]; return tok, ok }})
	s.SetUploadLimits(5*time.Second, 2)
	ts := httptest.NewServer(s)
	defer ts.Close()
	addr := ts.Listener.Addr().String()

	// Two uploads of alpha's in flight, each with half its body sent.
	type held struct {
		conn net.Conn
		br   *bufio.Reader
	}
	var hold []held
	for i := range 2 {
		conn, br := rawRequest(t, addr, "POST", fmt.Sprintf("/v1/files?partition=p&file_id=held%d&filename=a.txt", i),
			"Authorization: Bearer alpha-secret\r\nContent-Length: 200\r\n", strings.Repeat("h", 100))
		b.waitStarted(t)
		hold = append(hold, held{conn, br})
	}
	post := func(secret, id string) (*http.Response, string) {
		req, _ := http.NewRequest("POST", ts.URL+"/v1/files?partition=p&filename=a.txt&file_id="+id, strings.NewReader("body"))
		req.Header.Set("Authorization", "Bearer "+secret)
		resp, err := ts.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp, string(body)
	}
	resp, body := post("alpha-secret", "third")
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(body, "--max-uploads-per-token") || !strings.Contains(body, "token alpha") {
		t.Fatalf("third upload of a token: %d (Retry-After %q) %s, want 429 with Retry-After naming the flag",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if resp, body := post("beta-secret", "other"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("another token: %d %s", resp.StatusCode, body)
	}
	b.waitStarted(t)

	// One of alpha's finishes: alpha may upload again.
	if _, err := io.WriteString(hold[0].conn, strings.Repeat("h", 100)); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, hold[0].conn, hold[0].br, 10*time.Second); resp.StatusCode != http.StatusCreated {
		t.Fatalf("held upload: %d %s", resp.StatusCode, body)
	}
	if resp, body := post("alpha-secret", "fourth"); resp.StatusCode != http.StatusCreated {
		t.Fatalf("after one finished: %d %s", resp.StatusCode, body)
	}
	b.waitStarted(t)
	if _, err := io.WriteString(hold[1].conn, strings.Repeat("h", 100)); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, hold[1].conn, hold[1].br, 10*time.Second); resp.StatusCode != http.StatusCreated {
		t.Fatalf("second held upload: %d %s", resp.StatusCode, body)
	}
	s.uploads.mu.Lock()
	left := len(s.uploads.active)
	s.uploads.mu.Unlock()
	if left != 0 {
		t.Fatalf("%d keys still counted after every upload ended", left)
	}
}

// TestUploadsPerAddressCapOnOpenCluster: with no token to count by, the
// remote address is counted; the compat route answers FastAPI's body.
func TestUploadsPerAddressCapOnOpenCluster(t *testing.T) {
	b := newSpoolBackend(t)
	s := NewServer(stubBackend{}, "")
	s.MountCompat(spoolCompat{fakeCompat: newFakeCompat(), sb: b})
	s.SetUploadLimits(5*time.Second, 1)
	ts := httptest.NewServer(s)
	defer ts.Close()

	const boundary = "b0undary"
	form := func(data string) string {
		return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"metadata\"\r\n\r\n{}\r\n" +
			"--" + boundary + "\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n\r\n" + data
	}
	tail := "\r\n--" + boundary + "--\r\n"
	first := form("held data")
	conn, br := rawRequest(t, ts.Listener.Addr().String(), "POST", "/indexer/partition/p/file/held",
		fmt.Sprintf("Content-Type: multipart/form-data; boundary=%s\r\nContent-Length: %d\r\n", boundary, len(first)+len(tail)), first)
	b.waitStarted(t)

	resp, err := ts.Client().Post(ts.URL+"/indexer/partition/p/file/second", "multipart/form-data; boundary="+boundary,
		strings.NewReader(form("second")+tail))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" ||
		!strings.Contains(string(body), `"detail":"too many uploads in flight for client 127.0.0.1`) {
		t.Fatalf("second upload from one address: %d %s", resp.StatusCode, body)
	}
	if _, err := io.WriteString(conn, tail); err != nil {
		t.Fatal(err)
	}
	if resp, body := readResponse(t, conn, br, 10*time.Second); resp.StatusCode != http.StatusCreated {
		t.Fatalf("held upload: %d %s", resp.StatusCode, body)
	}
}
