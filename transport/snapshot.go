package transport

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/ragnode/ragnode/errs"
)

// A ledger snapshot file (`ragnode snapshot save`, GET /v1/snapshot):
//
//	RAGNODE-SNAPSHOT\n
//	{header: SnapshotHeader as JSON}\n
//	<Size bytes: the ledger as the node's Raft snapshot store holds it>
//	\nsha256:<64 hex digits>\n
//
// The checksum covers everything before it. The header is read before
// the body so that a restore can refuse a file it cannot use (a newer
// format, a wrong size) without reading the rest, and the checksum is at
// the end so that a node can stream a snapshot it has not finished
// reading; a reader refuses a short or altered file at its end, before
// anything was restored (SnapshotReader).

// SnapshotFormat is the header's format name; SnapshotFormatVersion the
// newest version this build writes and reads.
const (
	SnapshotFormat        = "ragnode-snapshot"
	SnapshotFormatVersion = 1
	snapshotMagic         = "RAGNODE-SNAPSHOT\n"
	snapshotTrailerPrefix = "\nsha256:"
	snapshotTrailerLen    = len(snapshotTrailerPrefix) + 2*sha256.Size + 1
	maxSnapshotHeader     = 64 << 10
)

// SnapshotHeader describes a saved ledger: where it came from and what
// Raft needs to restore it.
type SnapshotHeader struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
	// ClusterID is the identity of the cluster the ledger belongs to.
	ClusterID string `json:"cluster_id"`
	// NodeID and NodeName: the node that took it (any node can).
	NodeID   string `json:"node_id"`
	NodeName string `json:"node_name"`
	// RaftIndex and RaftTerm: the ledger is exactly the log up to there.
	RaftIndex uint64 `json:"raft_index"`
	RaftTerm  uint64 `json:"raft_term"`
	// RaftSnapshotVersion is hashicorp/raft's snapshot version.
	RaftSnapshotVersion int `json:"raft_snapshot_version"`
	// Size is the length of the ledger body in bytes.
	Size           int64     `json:"size"`
	CreatedAt      time.Time `json:"created_at"`
	RagnodeVersion string    `json:"ragnode_version"`
}

// SnapshotError is a snapshot file refused as unusable: not a snapshot,
// damaged, truncated or of a newer format. It is the caller's to fix
// (errs.Invalid), and its message is one line saying which.
type SnapshotError struct{ Msg string }

func (e *SnapshotError) Error() string { return e.Msg }

// Is makes a refused file an invalid request wherever it is reported.
func (e *SnapshotError) Is(target error) bool { return target == errs.Invalid }

func badSnapshot(format string, args ...any) error {
	return &SnapshotError{Msg: fmt.Sprintf(format, args...)}
}

// WriteSnapshot writes hdr, then hdr.Size bytes of body, then the
// checksum. A body shorter than hdr.Size is an error, and what was
// written so far then lacks its checksum, so no reader accepts it.
func WriteSnapshot(w io.Writer, hdr SnapshotHeader, body io.Reader) error {
	hdr.Format, hdr.Version = SnapshotFormat, SnapshotFormatVersion
	line, err := json.Marshal(hdr)
	if err != nil {
		return err
	}
	h := sha256.New()
	mw := io.MultiWriter(w, h)
	if _, err := io.WriteString(mw, snapshotMagic); err != nil {
		return err
	}
	if _, err := mw.Write(append(line, '\n')); err != nil {
		return err
	}
	if n, err := io.CopyN(mw, body, hdr.Size); err != nil {
		return fmt.Errorf("write snapshot: %d of %d ledger bytes: %w", n, hdr.Size, err)
	}
	_, err = io.WriteString(w, snapshotTrailerPrefix+hex.EncodeToString(h.Sum(nil))+"\n")
	return err
}

// SnapshotReader reads a snapshot's ledger body after its header. The
// read that reaches the end of the body checks the checksum and what
// follows it: it returns io.EOF only for an intact file, and a
// *SnapshotError otherwise, so a consumer that reads to the end has
// verified the file.
type SnapshotReader struct {
	Header SnapshotHeader
	r      *bufio.Reader
	h      hash.Hash
	left   int64
	err    error
}

// OpenSnapshot reads and checks a snapshot's header.
func OpenSnapshot(r io.Reader) (*SnapshotReader, error) {
	br := bufio.NewReaderSize(r, maxSnapshotHeader)
	magic := make([]byte, len(snapshotMagic))
	if n, err := io.ReadFull(br, magic); err != nil || string(magic) != snapshotMagic {
		if n == 0 && (err == io.EOF || err == io.ErrUnexpectedEOF) {
			return nil, badSnapshot("not a ragnode snapshot: it is empty")
		}
		if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
			return nil, fmt.Errorf("read snapshot: %w", err)
		}
		return nil, badSnapshot("not a ragnode snapshot: it does not start with %q", snapshotMagic[:len(snapshotMagic)-1])
	}
	line, err := br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, badSnapshot("damaged snapshot: its header is not one line of at most %d bytes", maxSnapshotHeader)
	case err == io.EOF:
		return nil, badSnapshot("truncated snapshot: it ends inside its header")
	case err != nil:
		return nil, fmt.Errorf("read snapshot: %w", err)
	}
	var hdr SnapshotHeader
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&hdr); err != nil {
		// An unknown field is what a newer writer adds: say so rather
		// than call the file damaged.
		var probe struct {
			Format  string `json:"format"`
			Version int    `json:"version"`
		}
		if json.Unmarshal(line, &probe) == nil && probe.Format == SnapshotFormat && probe.Version > SnapshotFormatVersion {
			return nil, newerSnapshot(probe.Version)
		}
		return nil, badSnapshot("damaged snapshot: its header does not decode (%v)", err)
	}
	switch {
	case hdr.Format != SnapshotFormat:
		return nil, badSnapshot("not a ragnode snapshot: its header names the format %q", hdr.Format)
	case hdr.Version > SnapshotFormatVersion:
		return nil, newerSnapshot(hdr.Version)
	case hdr.Version < 1 || hdr.Size < 0:
		return nil, badSnapshot("damaged snapshot: its header has version %d and size %d", hdr.Version, hdr.Size)
	}
	h := sha256.New()
	h.Write(magic)
	h.Write(line)
	return &SnapshotReader{Header: hdr, r: br, h: h, left: hdr.Size}, nil
}

func newerSnapshot(v int) error {
	return badSnapshot("snapshot format version %d is newer than this ragnode reads (%d): restore it with a newer ragnode", v, SnapshotFormatVersion)
}

// Read reads the ledger body; see SnapshotReader.
func (s *SnapshotReader) Read(p []byte) (int, error) {
	if s.err != nil {
		return 0, s.err
	}
	if s.left == 0 {
		s.err = s.finish()
		if s.err == nil {
			s.err = io.EOF
		}
		return 0, s.err
	}
	if int64(len(p)) > s.left {
		p = p[:s.left]
	}
	n, err := s.r.Read(p)
	s.h.Write(p[:n])
	s.left -= int64(n)
	switch {
	case err == io.EOF && s.left > 0:
		s.err = badSnapshot("truncated snapshot: %d of its %d ledger bytes are missing", s.left, s.Header.Size)
		return n, s.err
	case err != nil && err != io.EOF:
		s.err = fmt.Errorf("read snapshot: %w", err)
		return n, s.err
	}
	return n, nil
}

// finish checks the trailer and that nothing follows it.
func (s *SnapshotReader) finish() error {
	tr := make([]byte, snapshotTrailerLen)
	if _, err := io.ReadFull(s.r, tr); err != nil {
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			return badSnapshot("truncated snapshot: the checksum at its end is missing")
		}
		return fmt.Errorf("read snapshot: %w", err)
	}
	want := hex.EncodeToString(s.h.Sum(nil))
	if string(tr[:len(snapshotTrailerPrefix)]) != snapshotTrailerPrefix || tr[len(tr)-1] != '\n' {
		return badSnapshot("damaged snapshot: no checksum where its header says the ledger ends")
	}
	if got := string(tr[len(snapshotTrailerPrefix) : len(tr)-1]); got != want {
		return badSnapshot("damaged snapshot: its SHA-256 does not match its content (the file changed after it was saved)")
	}
	if n, _ := io.Copy(io.Discard, io.LimitReader(s.r, 1<<20)); n > 0 {
		return badSnapshot("damaged snapshot: %d unexpected bytes after its checksum", n)
	}
	return nil
}

// RestoreAnswer is what a restore did.
type RestoreAnswer struct {
	// Leader is the node that restored (the others received the ledger
	// from it).
	Leader string `json:"leader"`
	// Index is the Raft index the restored ledger took in this cluster.
	Index uint64 `json:"index"`
	// SnapshotCluster, SnapshotIndex and SnapshotNode: where and when the
	// snapshot was taken. Cluster is this cluster's identity, which the
	// restored ledger carries from now on.
	SnapshotCluster string `json:"snapshot_cluster"`
	SnapshotIndex   uint64 `json:"snapshot_index"`
	SnapshotNode    string `json:"snapshot_node"`
	Cluster         string `json:"cluster"`
	Files           int    `json:"files"`
	Partitions      int    `json:"partitions"`
	// Unfinished tasks (queued, prefetched, assigned, running) in the
	// restored ledger.
	Unfinished int `json:"unfinished"`
	// GoneNodes are the snapshot's nodes that are not members here,
	// recorded as departed; Requeued the tasks they held.
	GoneNodes []string `json:"gone_nodes,omitempty"`
	Requeued  int      `json:"requeued"`
	// FilesWithoutBlob counts the files whose bytes are on no member (the
	// blobs stayed on the nodes that held them); MissingBlobs names up to
	// 100 of them as partition/file_id.
	FilesWithoutBlob int      `json:"files_without_blob"`
	MissingBlobs     []string `json:"missing_blobs,omitempty"`
}

// SnapshotBackend takes and restores ledger snapshots.
type SnapshotBackend interface {
	// SaveSnapshot takes a snapshot of this node's ledger and opens it:
	// the header (Size set) and a reader of exactly Size bytes.
	SaveSnapshot(ctx context.Context) (SnapshotHeader, io.ReadCloser, error)
	// RestoreSnapshot restores a snapshot file read from body on the
	// leader; a follower forwards it there unless forwarded is set (the
	// request came from another node, and a second hop would only say the
	// leader moved).
	RestoreSnapshot(ctx context.Context, body io.Reader, force, forwarded bool) (RestoreAnswer, error)
}

// MountSnapshot serves /v1/snapshot (admin) and the forwarded restore
// (peer).
func (s *Server) MountSnapshot(b SnapshotBackend) {
	s.handleFunc("GET /v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		hdr, body, err := b.SaveSnapshot(r.Context())
		if err != nil {
			WriteError(w, err)
			return
		}
		defer body.Close()
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="ragnode-%d.snap"`, hdr.RaftIndex))
		w.Header().Set("X-Ragnode-Snapshot-Index", strconv.FormatUint(hdr.RaftIndex, 10))
		if err := WriteSnapshot(w, hdr, body); err != nil {
			// The status is sent: cut the connection so the client sees
			// a broken transfer, which the missing checksum confirms.
			panic(http.ErrAbortHandler)
		}
	})
	restore := func(forwarded bool) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			force, _ := strconv.ParseBool(r.URL.Query().Get("force"))
			a, err := b.RestoreSnapshot(r.Context(), r.Body, force, forwarded)
			reply(w, a, err)
		}
	}
	s.handleFunc("PUT /v1/snapshot", restore(false))
	s.handleFunc("PUT /v1/internal/snapshot", restore(true))
}

// SaveSnapshot streams a snapshot of the node's ledger into w, as the
// node sent it: OpenSnapshot checks it.
func (c *Client) SaveSnapshot(ctx context.Context, w io.Writer) error {
	return c.Do(ctx, http.MethodGet, "/v1/snapshot", nil, nil, w)
}

// RestoreSnapshot sends a snapshot file to restore on the cluster.
func (c *Client) RestoreSnapshot(ctx context.Context, body io.Reader, force bool) (RestoreAnswer, error) {
	return c.restoreSnapshot(ctx, "/v1/snapshot", body, force)
}

// ForwardRestore hands a client's restore to the leader (peer plane).
func (c *Client) ForwardRestore(ctx context.Context, body io.Reader, force bool) (RestoreAnswer, error) {
	return c.restoreSnapshot(ctx, "/v1/internal/snapshot", body, force)
}

func (c *Client) restoreSnapshot(ctx context.Context, path string, body io.Reader, force bool) (RestoreAnswer, error) {
	var q url.Values
	if force {
		q = url.Values{"force": {"true"}}
	}
	var a RestoreAnswer
	return a, c.Do(ctx, http.MethodPut, path, q, body, &a)
}
