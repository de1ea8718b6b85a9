package embed

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// OpenAIConfig configures an OpenAI-compatible embeddings client.
type OpenAIConfig struct {
	// BaseURL is the API root. The rule: if it does not end with "/v1"
	// (after trimming trailing slashes), "/v1" is appended; requests go to
	// BaseURL + "/embeddings". So "http://h:8080", "http://h:8080/" and
	// "http://h:8080/v1" all mean http://h:8080/v1/embeddings.
	BaseURL string
	Model   string
	// APIKey, when set, is sent as "Authorization: Bearer <APIKey>".
	APIKey string
	// Dim is the expected vector length. 0 means learn it from the first
	// response and then hold every later response to it.
	Dim int
	// Batch is the number of texts per request (default 32).
	Batch int
	// Concurrency is the number of requests in flight at once (default 4).
	Concurrency int
	// MaxRetries is how often a failed request is retried (default 5;
	// negative means never).
	MaxRetries int
	// Timeout bounds each HTTP request, not the whole Embed call
	// (default 60s).
	Timeout time.Duration
	// HTTPClient defaults to a client with no overall timeout (Timeout
	// applies per request instead).
	HTTPClient *http.Client
}

// OpenAI embeds texts with an OpenAI-compatible /v1/embeddings server.
//
// Requests that fail with 429, any 5xx, a timeout or a connection error are
// retried with exponential backoff and jitter, honouring Retry-After; other
// 4xx responses fail at once with the server's message. It is safe for
// concurrent use.
type OpenAI struct {
	cfg      OpenAIConfig
	endpoint string
	client   *http.Client

	// minBackoff is the first retry delay; it doubles per attempt up to
	// maxBackoff. Fields rather than constants so tests can run fast.
	minBackoff time.Duration
	maxBackoff time.Duration

	mu  sync.Mutex
	dim int
}

// NewOpenAI validates cfg, fills in defaults and returns a client. It makes
// no network call.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	if cfg.BaseURL == "" {
		return nil, errors.New("embed: OpenAI base URL is required")
	}
	if cfg.Model == "" {
		return nil, errors.New("embed: OpenAI model is required")
	}
	if cfg.Dim < 0 {
		return nil, fmt.Errorf("embed: negative dimension %d", cfg.Dim)
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 32
	}
	if cfg.Concurrency <= 0 {
		cfg.Concurrency = 4
	}
	if cfg.MaxRetries == 0 {
		cfg.MaxRetries = 5
	} else if cfg.MaxRetries < 0 {
		cfg.MaxRetries = 0
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{}
	}
	base := strings.TrimRight(cfg.BaseURL, "/")
	if !strings.HasSuffix(base, "/v1") {
		base += "/v1"
	}
	return &OpenAI{
		cfg:        cfg,
		endpoint:   base + "/embeddings",
		client:     client,
		minBackoff: 500 * time.Millisecond,
		maxBackoff: 30 * time.Second,
		dim:        cfg.Dim,
	}, nil
}

// Name returns "openai:<model>".
func (o *OpenAI) Name() string { return "openai:" + o.cfg.Model }

// Dim returns the configured or learned dimension (0 if not yet known).
func (o *OpenAI) Dim() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.dim
}

// Embed sends texts in batches of cfg.Batch, at most cfg.Concurrency at a
// time. On the first batch that fails for good, the others are cancelled and
// that error is returned.
func (o *OpenAI) Embed(ctx context.Context, texts []string) ([][]float32, error) {
	out := make([][]float32, len(texts))
	if len(texts) == 0 {
		return out, nil
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
		sem      = make(chan struct{}, o.cfg.Concurrency)
	)
	for start := 0; start < len(texts); start += o.cfg.Batch {
		end := min(start+o.cfg.Batch, len(texts))
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func(start, end int) {
			defer wg.Done()
			defer func() { <-sem }()
			vecs, err := o.embedBatch(ctx, texts[start:end])
			if err != nil {
				errOnce.Do(func() {
					firstErr = fmt.Errorf("embed: texts %d-%d: %w", start, end-1, err)
					cancel()
				})
				return
			}
			copy(out[start:end], vecs)
		}(start, end)
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// retryable marks failures worth another attempt; after is the server's
// Retry-After, if it sent one.
type retryable struct {
	err   error
	after time.Duration
	has   bool
}

func (r *retryable) Error() string { return r.err.Error() }
func (r *retryable) Unwrap() error { return r.err }

func (o *OpenAI) embedBatch(ctx context.Context, texts []string) ([][]float32, error) {
	body, err := json.Marshal(struct {
		Model string   `json:"model"`
		Input []string `json:"input"`
	}{o.cfg.Model, texts})
	if err != nil {
		return nil, err
	}
	backoff := o.minBackoff
	for attempt := 0; ; attempt++ {
		vecs, err := o.post(ctx, body, len(texts))
		if err == nil {
			return vecs, nil
		}
		var r *retryable
		if !errors.As(err, &r) {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if attempt >= o.cfg.MaxRetries {
			return nil, fmt.Errorf("giving up after %d attempts: %w", attempt+1, r.err)
		}
		wait := backoff/2 + rand.N(backoff/2+1) // jitter spreads out synchronized clients
		if r.has {
			wait = r.after
		}
		backoff = min(backoff*2, o.maxBackoff)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		case <-t.C:
		}
	}
}

func (o *OpenAI) post(ctx context.Context, body []byte, n int) ([][]float32, error) {
	rctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, o.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	if o.cfg.APIKey != "" {
		req.Header.Set("Authorization", "Bearer "+o.cfg.APIKey)
	}
	resp, err := o.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		var ne net.Error
		if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
			return nil, &retryable{err: fmt.Errorf("POST %s: timed out after %v", o.endpoint, o.cfg.Timeout)}
		}
		// Anything else from the transport (refused, reset, EOF) is a
		// connection problem that may pass.
		return nil, &retryable{err: fmt.Errorf("POST %s: %w", o.endpoint, err)}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, &retryable{err: fmt.Errorf("POST %s: reading response: %w", o.endpoint, err)}
	}
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("POST %s: %s: %s", o.endpoint, resp.Status, errorMessage(data))
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
			after, has := retryAfter(resp.Header.Get("Retry-After"))
			return nil, &retryable{err: err, after: after, has: has}
		}
		return nil, err
	}
	return o.decode(data, n)
}

func (o *OpenAI) decode(data []byte, n int) ([][]float32, error) {
	var r struct {
		Data []struct {
			Index     *int      `json:"index"`
			Embedding []float32 `json:"embedding"`
		} `json:"data"`
	}
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("decoding embeddings response: %w", err)
	}
	if len(r.Data) != n {
		return nil, fmt.Errorf("embedder returned %d vectors for %d texts", len(r.Data), n)
	}
	out := make([][]float32, n)
	for i, d := range r.Data {
		idx := i // a server that omits "index" is trusted to keep order
		if d.Index != nil {
			idx = *d.Index
		}
		if idx < 0 || idx >= n {
			return nil, fmt.Errorf("embedder returned index %d for a batch of %d", idx, n)
		}
		if out[idx] != nil {
			return nil, fmt.Errorf("embedder returned index %d twice", idx)
		}
		if err := o.checkDim(len(d.Embedding)); err != nil {
			return nil, err
		}
		out[idx] = d.Embedding
	}
	return out, nil
}

func (o *OpenAI) checkDim(got int) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.dim == 0 && got > 0 {
		o.dim = got
	}
	if got != o.dim {
		return fmt.Errorf("embedder returned dimension %d, want %d", got, o.dim)
	}
	return nil
}

// errorMessage pulls the human-readable message out of the error shapes the
// common servers use, falling back to the raw (truncated) body.
func errorMessage(body []byte) string {
	var e struct {
		Error   json.RawMessage `json:"error"`
		Message string          `json:"message"`
		Detail  json.RawMessage `json:"detail"`
	}
	if json.Unmarshal(body, &e) == nil {
		var obj struct {
			Message string `json:"message"`
		}
		var s string
		switch {
		case json.Unmarshal(e.Error, &obj) == nil && obj.Message != "":
			return obj.Message
		case json.Unmarshal(e.Error, &s) == nil && s != "":
			return s
		case e.Message != "":
			return e.Message
		case json.Unmarshal(e.Detail, &s) == nil && s != "":
			return s
		case len(e.Detail) > 0:
			return string(e.Detail)
		}
	}
	msg := strings.TrimSpace(string(body))
	if len(msg) > 512 {
		msg = msg[:512] + "..."
	}
	if msg == "" {
		msg = "(empty body)"
	}
	return msg
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}
