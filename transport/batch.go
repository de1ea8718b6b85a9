package transport

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Bulk submission: many small files in one request (a tar stream), stored
// with one filesystem sync, replicated in one request per replica and
// recorded with one ledger command. This is what makes a folder of 20,000
// small files cost seconds rather than minutes.

// paxFileName carries a file's original name in its tar entry (the entry
// name is the file ID).
const paxFileName = "RAGNODE.filename"

// BatchFile is one file of a bulk submission.
type BatchFile struct {
	FileID   string
	FileName string
	Size     int64
	Open     func() (io.ReadCloser, error)
}

// BatchResult is the outcome for one file of a bulk submission.
type BatchResult struct {
	FileID string    `json:"file_id"`
	Task   *TaskView `json:"task,omitempty"`
	Error  string    `json:"error,omitempty"`
	Code   int       `json:"code,omitempty"`
	// Err is the failure behind Error; the server sets Code from it.
	Err error `json:"-"`
}

// BatchEntry is one file as the server reads it from the stream.
type BatchEntry struct {
	FileID   string
	FileName string
	Size     int64
	Body     io.Reader
}

// ReadBatch walks a bulk stream, calling fn for each file in order.
func ReadBatch(r io.Reader, fn func(BatchEntry) error) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return invalidf("read bulk upload: %v", err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		name := h.PAXRecords[paxFileName]
		if name == "" {
			name = h.Name
		}
		if err := fn(BatchEntry{FileID: h.Name, FileName: name, Size: h.Size, Body: tr}); err != nil {
			return err
		}
	}
}

// WriteBatch streams files as a bulk upload.
func WriteBatch(w io.Writer, files []BatchFile) error {
	// Tar writes 512-byte blocks; buffering turns them into few large writes.
	bw := bufio.NewWriterSize(w, 256<<10)
	tw := tar.NewWriter(bw)
	for _, f := range files {
		rc, err := f.Open()
		if err != nil {
			return fmt.Errorf("open %s: %w", f.FileID, err)
		}
		h := &tar.Header{Name: f.FileID, Mode: 0o644, Size: f.Size, Typeflag: tar.TypeReg, Format: tar.FormatPAX,
			ModTime: time.Unix(0, 0), PAXRecords: map[string]string{paxFileName: f.FileName}}
		if err := tw.WriteHeader(h); err != nil {
			rc.Close()
			// Wrapped: archive/tar's header errors are slices, which
			// net/http compares with == when the body fails, and panics.
			return fmt.Errorf("file %q: %w", f.FileID, err)
		}
		n, err := io.Copy(tw, rc)
		rc.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", f.FileID, err)
		}
		if n != f.Size {
			return fmt.Errorf("%s changed size while uploading (%d, then %d bytes)", f.FileID, f.Size, n)
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// SubmitBatch uploads many files in one request.
func (c *Client) SubmitBatch(ctx context.Context, partition string, meta map[string]any, files []BatchFile) ([]BatchResult, error) {
	q := url.Values{"partition": {partition}}
	if len(meta) > 0 {
		b, _ := json.Marshal(meta)
		q.Set("metadata", string(b))
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(WriteBatch(pw, files)) }()
	var out []BatchResult
	err := c.Do(ctx, http.MethodPost, "/v1/files/batch", q, pr, &out)
	pr.Close()
	return out, err
}

// PutBlobs pushes many blob replicas in one request (entries named by hash).
func (c *Client) PutBlobs(ctx context.Context, body io.Reader) error {
	return c.Do(ctx, http.MethodPut, "/v1/blobs", nil, body, nil)
}
