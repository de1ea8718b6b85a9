package transport

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer/store"
)

// Client talks to one node's API. It is safe for concurrent use.
type Client struct {
	Addr  string // host:port
	Token string
	HTTP  *http.Client
	// Scheme is "https" for a TLS client (tls_client.go); "" is http.
	Scheme string
}

// NewClient returns a client for addr with a pooled HTTP client.
func NewClient(addr, token string) *Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	return &Client{Addr: addr, Token: token, HTTP: &http.Client{Transport: tr}}
}

func (c *Client) url(path string, q url.Values) string {
	scheme := c.Scheme
	if scheme == "" {
		scheme = "http"
	}
	u := scheme + "://" + c.Addr + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// Do sends a request and decodes a JSON answer into out (if not nil).
func (c *Client) Do(ctx context.Context, method, path string, q url.Values, body io.Reader, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.url(path, q), body)
	if err != nil {
		return err
	}
	if c.Token != "" {
		req.Header.Set("Authorization", "Bearer "+c.Token)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") {
			return fmt.Errorf("cannot reach ragnode at %s: %w", c.Addr, unwrapURL(err))
		}
		return fmt.Errorf("%s %s: %w", method, c.Addr, unwrapURL(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
		var eb ErrorBody
		msg := strings.TrimSpace(string(b))
		if json.Unmarshal(b, &eb) == nil && eb.Error != "" {
			msg = eb.Error
		}
		se := &StatusError{Code: resp.StatusCode, Msg: msg}
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s >= 0 {
			se.RetryAfter = time.Duration(s) * time.Second
		}
		return se
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer from %s: %w", c.Addr, err)
	}
	return nil
}

func unwrapURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}

// Status fetches the cluster status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.Do(ctx, http.MethodGet, "/v1/status", nil, nil, &s)
}

// Members lists the cluster members.
func (c *Client) Members(ctx context.Context) ([]Member, error) {
	var m []Member
	return m, c.Do(ctx, http.MethodGet, "/v1/members", nil, nil, &m)
}

// Leave makes the node depart for good.
func (c *Client) Leave(ctx context.Context) error {
	return c.Do(ctx, http.MethodPost, "/v1/leave", nil, nil, nil)
}

// RaftStats fetches a server's log position.
func (c *Client) RaftStats(ctx context.Context) (RaftStats, error) {
	var s RaftStats
	return s, c.Do(ctx, http.MethodGet, "/v1/internal/raft-stats", nil, nil, &s)
}

// Apply sends a command to the node, which applies it if leader or forwards.
func (c *Client) Apply(ctx context.Context, cmd fsm.Command) (fsm.Result, error) {
	var r fsm.Result
	return r, c.Do(ctx, http.MethodPost, "/v1/internal/apply", nil, jsonBody(ApplyRequest{Command: cmd}), &r)
}

// RemoveServer asks the leader to drop a server from Raft.
func (c *Client) RemoveServer(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodPost, "/v1/internal/remove-server", url.Values{"id": {id}}, nil, nil)
}

// Submit streams one file and returns the created task.
func (c *Client) Submit(ctx context.Context, req SubmitRequest, body io.Reader) (TaskView, error) {
	q := url.Values{}
	q.Set("partition", req.Partition)
	q.Set("file_id", req.FileID)
	q.Set("filename", req.FileName)
	if req.Mode != "" {
		q.Set("mode", req.Mode)
	}
	if req.SharedPath != "" {
		q.Set("shared_path", req.SharedPath)
	}
	if len(req.Metadata) > 0 {
		b, _ := json.Marshal(req.Metadata)
		q.Set("metadata", string(b))
	}
	if body == nil {
		body = http.NoBody
	}
	var tv TaskView
	return tv, c.Do(ctx, http.MethodPost, "/v1/files", q, body, &tv)
}

// Tasks lists tasks, optionally filtered.
func (c *Client) Tasks(ctx context.Context, state, partition string) ([]TaskView, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if partition != "" {
		q.Set("partition", partition)
	}
	var ts []TaskView
	return ts, c.Do(ctx, http.MethodGet, "/v1/tasks", q, nil, &ts)
}

// Task fetches one task.
func (c *Client) Task(ctx context.Context, id string) (TaskView, error) {
	var t TaskView
	return t, c.Do(ctx, http.MethodGet, "/v1/tasks/"+url.PathEscape(id), nil, nil, &t)
}

// Cancel cancels a task.
func (c *Client) Cancel(ctx context.Context, id string) error {
	return c.Do(ctx, http.MethodPost, "/v1/tasks/"+url.PathEscape(id)+"/cancel", nil, nil, nil)
}

// Drain starts or cancels a drain.
func (c *Client) Drain(ctx context.Context, req DrainRequest) error {
	return c.Do(ctx, http.MethodPost, "/v1/drain", nil, jsonBody(req), nil)
}

// GetBlob streams a blob into w.
func (c *Client) GetBlob(ctx context.Context, hash string, w io.Writer) error {
	return c.Do(ctx, http.MethodGet, "/v1/blobs/"+hash, nil, nil, w)
}

// PutBlob pushes a blob replica.
func (c *Client) PutBlob(ctx context.Context, hash string, body io.Reader) error {
	return c.Do(ctx, http.MethodPut, "/v1/blobs/"+hash, nil, body, nil)
}

// Search runs a cluster-wide search.
func (c *Client) Search(ctx context.Context, req SearchRequest) ([]Hit, error) {
	var hs []Hit
	return hs, c.Do(ctx, http.MethodPost, "/v1/search", nil, jsonBody(req), &hs)
}

// LocalSearch searches one node's own store.
func (c *Client) LocalSearch(ctx context.Context, q store.Query) ([]store.Hit, error) {
	var hs []WireHit
	if err := c.Do(ctx, http.MethodPost, "/v1/internal/search-local", nil, jsonBody(QueryToWire(q)), &hs); err != nil {
		return nil, err
	}
	return HitsFromWire(hs), nil
}

// ChunkMetadata merges metadata into a file's chunks in one node's store.
func (c *Client) ChunkMetadata(ctx context.Context, m ChunkMetadata) error {
	return c.Do(ctx, http.MethodPost, "/v1/internal/chunks/metadata", nil, jsonBody(m), nil)
}

// ChunkDelete drops a file's chunks (or a partition's, without FileID)
// from one node's store.
func (c *Client) ChunkDelete(ctx context.Context, d ChunkDelete) error {
	return c.Do(ctx, http.MethodPost, "/v1/internal/chunks/delete", nil, jsonBody(d), nil)
}

// LocalStatus is the answering node's own view of the cluster, not
// forwarded to the leader.
func (c *Client) LocalStatus(ctx context.Context) (Status, error) {
	var st Status
	return st, c.Do(ctx, http.MethodGet, "/v1/status", url.Values{"local": {"1"}}, nil, &st)
}

// PutChunks writes a file's records to a replica.
func (c *Client) PutChunks(ctx context.Context, w ChunkWrite) error {
	return c.Do(ctx, http.MethodPost, "/v1/internal/chunks", nil, jsonBody(w), nil)
}

// ChunkIDs lists the chunk IDs in one node's own store.
func (c *Client) ChunkIDs(ctx context.Context, partition, fileID string) ([]string, error) {
	q := url.Values{}
	if partition != "" {
		q.Set("partition", partition)
	}
	if fileID != "" {
		q.Set("file_id", fileID)
	}
	var ids []string
	return ids, c.Do(ctx, http.MethodGet, "/v1/internal/chunk-ids", q, nil, &ids)
}

// ChunkRecords reads one node's own store: the chunk with that ID (none or
// one record) when id is set, else a file's chunks by index.
func (c *Client) ChunkRecords(ctx context.Context, id, partition, fileID string) ([]store.Record, error) {
	q := url.Values{}
	if id != "" {
		q.Set("id", id)
	} else {
		q.Set("partition", partition)
		q.Set("file_id", fileID)
	}
	var ws []WireRecord
	if err := c.Do(ctx, http.MethodGet, "/v1/internal/chunk-records", q, nil, &ws); err != nil {
		return nil, err
	}
	return RecordsFromWire(ws), nil
}

// RepairChunks asks a holder to restore a file's chunk copies.
func (c *Client) RepairChunks(ctx context.Context, r ChunkRepair) error {
	return c.Do(ctx, http.MethodPost, "/v1/internal/chunks/repair", nil, jsonBody(r), nil)
}

// ReplicateBlob asks a holder to push a blob until want nodes hold it.
func (c *Client) ReplicateBlob(ctx context.Context, hash string, want int) error {
	return c.Do(ctx, http.MethodPost, "/v1/internal/replicate/"+hash, url.Values{"want": {fmt.Sprint(want)}}, nil, nil)
}
