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
//   - Search ranks by cosine similarity, best first, and only returns chunks
//     that match every partition and metadata condition of the query.
//   - ChunkIDs is sorted, so callers can diff it against what they expect.
//
// Local (OpenLocal) keeps everything in one bbolt file plus an in-memory
// copy of the vectors and searches exactly; package store/milvus implements
// the same interface on a Milvus collection.
package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
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
	Score float32 // cosine similarity, in [-1, 1]
}

// Query selects the TopK chunks closest to Vector.
type Query struct {
	Vector []float32
	// Partitions restricts the search; empty means all partitions.
	Partitions []string
	// Filter keeps chunks whose metadata value under each key is a string
	// exactly equal to the given value.
	Filter map[string]string
	// TopK is the number of hits wanted (10 when <= 0).
	TopK int
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
	// Search returns the best hits by cosine similarity, best first.
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
