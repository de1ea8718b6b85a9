// Package store defines ragnode's vector store contract and a local,
// embedded implementation of it.
//
// Guarantees every Store gives:
//   - Upsert is idempotent by Record.ID: writing a record again replaces it,
//     never duplicates it.
//   - Deletes (by file, by file from a chunk index on, by partition) remove
//     exactly the matching chunks and nothing else, whatever characters the
//     partition or file ID contain.
//   - UpdateMetadata merges keys into every chunk of a file and keeps the
//     stored vectors: nothing is re-embedded.
//   - Search ranks best first (by cosine similarity in dense mode; see
//     Query.Mode for BM25 and hybrid) and only returns chunks that match
//     every partition and metadata condition of the query, in every mode.
//   - ChunkIDs is sorted, so callers can diff it against what they expect.
//
// Local (OpenLocal) keeps everything in one bbolt file plus an in-memory
// copy of the vectors and a per-partition BM25 index of the texts, both
// rebuilt from the file at open and kept in step with every write, and
// searches exactly in all three modes; package store/milvus implements the
// same interface on a Milvus collection (all three modes in Milvus itself
// with the ragondin and openrag schema profiles; dense only with the ragnode
// profile, which has no BM25 field).
package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
)

// Record is one chunk of a document.
type Record struct {
	ID        string
	Partition string
	FileID    string
	Index     int // position of the chunk within its file
	Text      string
	Page      int
	Headings  []string
	Vector    []float32
	// Metadata holds user metadata plus "filename". Values round-trip
	// through JSON, so numbers come back as float64.
	Metadata map[string]any
}

// Hit is a search result. Its Vector may be nil.
type Hit struct {
	Record
	// Score depends on the mode: cosine similarity in [-1, 1] (dense), the
	// BM25 score >= 0 (bm25), or the reciprocal-rank-fusion sum in
	// (0, 2/(RRFK+1)] (hybrid). Only scores of one mode compare.
	Score float32
}

// Mode selects how Search ranks chunks.
type Mode string

const (
	// ModeAuto (the zero value) is hybrid when the query has both Text and
	// Vector, bm25 when it has only Text, dense otherwise: a caller that
	// sends no Text gets exactly the dense search it got before.
	ModeAuto Mode = ""
	// ModeDense ranks by cosine similarity to Vector.
	ModeDense Mode = "dense"
	// ModeBM25 ranks by BM25 (k1 1.2, b 0.75) of Text.
	ModeBM25 Mode = "bm25"
	// ModeHybrid fuses the dense and BM25 rankings by reciprocal rank
	// fusion: score = sum over both lists of 1/(RRFK + rank), rank from 1.
	ModeHybrid Mode = "hybrid"
)

// DefaultRRFK is the RRF constant used when Query.RRFK <= 0 (RAGondin's).
const DefaultRRFK = 100

// MinCandidateDepth is the least number of candidates each ranking
// contributes to hybrid fusion when Query.Depth <= 0.
const MinCandidateDepth = 50

// Query selects the TopK best chunks for Vector and/or Text.
type Query struct {
	// Vector is the embedded query, needed by dense and hybrid modes.
	Vector []float32
	// Text is the raw query text, needed by bm25 and hybrid modes.
	Text string `json:",omitempty"`
	// Mode is the ranking; ModeAuto when empty.
	Mode Mode `json:",omitempty"`
	// RRFK is the hybrid fusion constant (DefaultRRFK when <= 0).
	RRFK int `json:",omitempty"`
	// Depth is how many candidates each ranking contributes to hybrid
	// fusion (max(4*TopK, MinCandidateDepth) when <= 0).
	// Partitions restricts the search; empty means all partitions.
	Partitions []string
	// Filter keeps chunks whose metadata value under each key is a string
	// exactly equal to the given value.
	Filter map[string]string
	Depth  int `json:",omitempty"`
	// Expr is a Milvus boolean expression over metadata (package filter),
	// passed to Milvus as written; Where is what a node compiled it to for
	// the local store: whether a file's chunks may match. Where stays in
	// this process; Expr travels to peers, which compile their own.
	Expr  string                              `json:",omitempty"`
	Where func(partition, fileID string) bool `json:"-"`
	// TopK is the number of hits wanted (10 when <= 0).
	TopK int
}

// QueryError reports a query that cannot be run as asked, e.g. a bm25
// query without text; callers should answer it as a bad request.
type QueryError struct {
	Mode   Mode
	Reason string
}

func (e *QueryError) Error() string {
	return fmt.Sprintf("store: %s query: %s", e.Mode, e.Reason)
}

// Resolve returns the mode the query runs in (ModeAuto resolved) or a
// *QueryError when the query lacks what that mode needs.
func (q *Query) Resolve() (Mode, error) {
	m := q.Mode
	if m == ModeAuto {
		switch {
		case q.Text != "" && len(q.Vector) > 0:
			m = ModeHybrid
		case q.Text != "":
			m = ModeBM25
		default:
			m = ModeDense
		}
	}
	switch m {
	case ModeDense:
		if len(q.Vector) == 0 {
			return m, &QueryError{m, "needs a vector"}
		}
	case ModeBM25:
		if q.Text == "" {
			return m, &QueryError{m, "needs text"}
		}
	case ModeHybrid:
		if q.Text == "" || len(q.Vector) == 0 {
			return m, &QueryError{m, "needs both text and a vector"}
		}
	default:
		return m, &QueryError{m, "unknown mode (want dense, bm25 or hybrid)"}
	}
	return m, nil
}

// DefaultTopK is used when Query.TopK <= 0.
const DefaultTopK = 10

// Store is a vector store of chunks. Implementations are safe for
// concurrent use.
type Store interface {
	// Upsert writes records; a record whose ID exists replaces it.
	Upsert(ctx context.Context, recs []Record) error
	// DeleteFile removes every chunk of the file.
	DeleteFile(ctx context.Context, partition, fileID string) error
	// DeleteFileFrom removes the file's chunks with Index >= fromIndex, for
	// a re-index that produced fewer chunks.
	DeleteFileFrom(ctx context.Context, partition, fileID string, fromIndex int) error
	// DeletePartition removes every chunk of the partition.
	DeletePartition(ctx context.Context, partition string) error
	// UpdateMetadata merges meta into the metadata of every chunk of the
	// file without touching vectors; a nil value removes the key.
	UpdateMetadata(ctx context.Context, partition, fileID string, meta map[string]any) error
	// Search returns the best hits for q, best first (see Query.Mode).
	Search(ctx context.Context, q Query) ([]Hit, error)
	// ChunkIDs lists chunk IDs, sorted. An empty partition means all
	// partitions; an empty fileID means all files.
	ChunkIDs(ctx context.Context, partition, fileID string) ([]string, error)
	Close() error
}

// ChunkID derives a stable chunk ID: the hex SHA-256 of the three values,
// each length-prefixed so ("a","bc") and ("ab","c") differ, truncated to 32
// hex characters (128 bits).
func ChunkID(partition, fileID string, index int) string {
	h := sha256.New()
	var n [8]byte
	for _, s := range [...]string{partition, fileID} {
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	binary.BigEndian.PutUint64(n[:], uint64(int64(index)))
	h.Write(n[:])
	return hex.EncodeToString(h.Sum(nil))[:32]
}
