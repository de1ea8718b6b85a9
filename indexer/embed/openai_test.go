package embed

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeServer speaks the embeddings API; vector i of a request encodes the
// text's number so tests can check placement.
type fakeServer struct {
	dim      int
	requests atomic.Int32
	inFlight atomic.Int32
	maxSeen  atomic.Int32
	// hook, if set, may answer the request itself (returns true).
	hook func(n int32, w http.ResponseWriter, r *http.Request) bool

	mu    sync.Mutex
	paths []string
	auth  []string
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n := f.requests.Add(1)
	cur := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for {
		m := f.maxSeen.Load()
		if cur <= m || f.maxSeen.CompareAndSwap(m, cur) {
			break
		}
	}
	f.mu.Lock()
	f.paths = append(f.paths, r.URL.Path)
	f.auth = append(f.auth, r.Header.Get("Authorization"))
	f.mu.Unlock()
	if f.hook != nil && f.hook(n, w, r) {
		return
	}
	var req struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
		http.Error(w, err.Error(), 400)
		return
	}
	time.Sleep(2 * time.Millisecond) // lets concurrent batches overlap
	type item struct {
		Object    string    `json:"object"`
		Index     int       `json:"index"`
		Embedding []float32 `json:"embedding"`
	}
	var data []item
	// Answer in reverse order: clients must place by "index".
	for i := len(req.Input) - 1; i >= 0; i-- {
		var num int
		fmt.Sscanf(req.Input[i], "text %d", &num)
		v := make([]float32, f.dim)
		v[0] = float32(num)
		data = append(data, item{"embedding", i, v})
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"object": "list", "data": data, "model": req.Model})
}

// hang blocks until the client abandons the request. The body must be read
// first: only then does net/http watch the connection and cancel r.Context.
func hang(r *http.Request) {
	io.Copy(io.Discard, r.Body)
	<-r.Context().Done()
}

func texts(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("text %d", i)
	}
	return out
}

func newTestClient(t *testing.T, f *fakeServer, cfg OpenAIConfig) *OpenAI {
	t.Helper()
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	if cfg.BaseURL == "" {
		cfg.BaseURL = srv.URL
	}
	cfg.Model = "m"
	o, err := NewOpenAI(cfg)
	if err != nil {
		t.Fatal(err)
	}
	o.minBackoff = time.Millisecond
	o.maxBackoff = 4 * time.Millisecond
	return o
}

func TestOpenAIBatchingAndOrder(t *testing.T) {
	f := &fakeServer{dim: 8}
	o := newTestClient(t, f, OpenAIConfig{Dim: 8, Batch: 10, Concurrency: 3, APIKey: "sekret"})
	vecs, err := o.Embed(context.Background(), texts(95))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.requests.Load(); got != 10 {
		t.Errorf("requests = %d, want 10", got)
	}
	if m := f.maxSeen.Load(); m > 3 {
		t.Errorf("%d requests in flight, limit 3", m)
	}
	for i, v := range vecs {
		if int(v[0]) != i {
			t.Fatalf("vector %d holds text %d", i, int(v[0]))
		}
	}
	if f.paths[0] != "/v1/embeddings" || f.auth[0] != "Bearer sekret" {
		t.Errorf("path %q auth %q", f.paths[0], f.auth[0])
	}
	if o.Name() != "openai:m" || o.Dim() != 8 {
		t.Errorf("name %q dim %d", o.Name(), o.Dim())
	}
}

func TestOpenAIBaseURLRule(t *testing.T) {
	for _, base := range []string{"/", "/v1", "/v1/"} {
		f := &fakeServer{dim: 2}
		srv := httptest.NewServer(f)
		o, err := NewOpenAI(OpenAIConfig{BaseURL: srv.URL + base, Model: "m"})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := o.Embed(context.Background(), texts(1)); err != nil {
			t.Fatal(err)
		}
		srv.Close()
		if f.paths[0] != "/v1/embeddings" {
			t.Errorf("base %q: path %q", base, f.paths[0])
		}
		if f.auth[0] != "" {
			t.Errorf("unexpected Authorization %q", f.auth[0])
		}
	}
}

func TestOpenAILearnsDim(t *testing.T) {
	f := &fakeServer{dim: 5}
	o := newTestClient(t, f, OpenAIConfig{Batch: 2})
	if _, err := o.Embed(context.Background(), texts(3)); err != nil {
		t.Fatal(err)
	}
	if o.Dim() != 5 {
		t.Fatalf("learned dim %d", o.Dim())
	}
	f.dim = 6
	_, err := o.Embed(context.Background(), texts(1))
	if err == nil || !strings.Contains(err.Error(), "embedder returned dimension 6, want 5") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenAIWrongDim(t *testing.T) {
	f := &fakeServer{dim: 3}
	o := newTestClient(t, f, OpenAIConfig{Dim: 4})
	_, err := o.Embed(context.Background(), texts(2))
	if err == nil || !strings.Contains(err.Error(), "embedder returned dimension 3, want 4") {
		t.Fatalf("err = %v", err)
	}
	if f.requests.Load() != 1 {
		t.Errorf("a wrong dimension must not be retried (%d requests)", f.requests.Load())
	}
}

func TestOpenAIRetry429(t *testing.T) {
	f := &fakeServer{dim: 2}
	f.hook = func(n int32, w http.ResponseWriter, r *http.Request) bool {
		if n <= 2 {
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusTooManyRequests)
			fmt.Fprint(w, `{"error":{"message":"slow down"}}`)
			return true
		}
		return false
	}
	o := newTestClient(t, f, OpenAIConfig{})
	// Retry-After: 0 must override the (here very long) computed backoff.
	o.minBackoff, o.maxBackoff = time.Hour, time.Hour
	start := time.Now()
	vecs, err := o.Embed(context.Background(), texts(3))
	if err != nil {
		t.Fatal(err)
	}
	if len(vecs) != 3 || f.requests.Load() != 3 {
		t.Errorf("vectors %d requests %d", len(vecs), f.requests.Load())
	}
	if time.Since(start) > 5*time.Second {
		t.Error("Retry-After: 0 not honoured")
	}
}

func TestOpenAI500ExhaustsRetries(t *testing.T) {
	f := &fakeServer{dim: 2}
	f.hook = func(n int32, w http.ResponseWriter, r *http.Request) bool {
		http.Error(w, "model crashed", http.StatusInternalServerError)
		return true
	}
	o := newTestClient(t, f, OpenAIConfig{MaxRetries: 3})
	_, err := o.Embed(context.Background(), texts(1))
	if err == nil || !strings.Contains(err.Error(), "giving up after 4 attempts") || !strings.Contains(err.Error(), "model crashed") {
		t.Fatalf("err = %v", err)
	}
	if f.requests.Load() != 4 {
		t.Errorf("requests = %d, want 4", f.requests.Load())
	}
}

func TestOpenAI400FailsAtOnce(t *testing.T) {
	f := &fakeServer{dim: 2}
	f.hook = func(n int32, w http.ResponseWriter, r *http.Request) bool {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprint(w, `{"error":{"message":"input too long","type":"invalid_request_error"}}`)
		return true
	}
	o := newTestClient(t, f, OpenAIConfig{})
	_, err := o.Embed(context.Background(), texts(1))
	if err == nil || !strings.Contains(err.Error(), "input too long") {
		t.Fatalf("err = %v", err)
	}
	if f.requests.Load() != 1 {
		t.Errorf("requests = %d, want 1", f.requests.Load())
	}
}

func TestOpenAITimeout(t *testing.T) {
	f := &fakeServer{dim: 2}
	f.hook = func(n int32, w http.ResponseWriter, r *http.Request) bool {
		if n == 1 {
			hang(r)
			return true
		}
		return false
	}
	o := newTestClient(t, f, OpenAIConfig{Timeout: 50 * time.Millisecond})
	if _, err := o.Embed(context.Background(), texts(2)); err != nil {
		t.Fatalf("a timeout then success should succeed: %v", err)
	}

	f2 := &fakeServer{dim: 2}
	f2.hook = func(n int32, w http.ResponseWriter, r *http.Request) bool {
		hang(r)
		return true
	}
	o2 := newTestClient(t, f2, OpenAIConfig{Timeout: 20 * time.Millisecond, MaxRetries: 1})
	_, err := o2.Embed(context.Background(), texts(1))
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenAIConnectionRefused(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	o, _ := NewOpenAI(OpenAIConfig{BaseURL: url, Model: "m", MaxRetries: 2})
	o.minBackoff = time.Millisecond
	_, err := o.Embed(context.Background(), texts(1))
	if err == nil || !strings.Contains(err.Error(), "giving up after 3 attempts") {
		t.Fatalf("err = %v", err)
	}
}

func TestOpenAIContextCancel(t *testing.T) {
	f := &fakeServer{dim: 2}
	f.hook = func(n int32, w http.ResponseWriter, r *http.Request) bool {
		hang(r)
		return true
	}
	o := newTestClient(t, f, OpenAIConfig{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	_, err := o.Embed(ctx, texts(100))
	if err != context.DeadlineExceeded && !strings.Contains(fmt.Sprint(err), "deadline exceeded") {
		t.Fatalf("err = %v", err)
	}
}
