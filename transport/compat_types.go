package transport

import (
	"context"
	"encoding/json"
	"errors"
	"io"
)

// FileView is one indexed file as the ledger knows it.
type FileView struct {
	Partition string         `json:"partition"`
	FileID    string         `json:"file_id"`
	FileName  string         `json:"filename"`
	TaskID    string         `json:"task_id"`
	State     string         `json:"state"`
	Metadata  map[string]any `json:"metadata"`
	Chunks    int            `json:"chunks"`
	Size      int64          `json:"size"`
	Updated   int64          `json:"updated"`
	// Created is when the file's current version was submitted.
	Created int64 `json:"created,omitempty"`
}

// PartitionView is one partition and its files.
type PartitionView struct {
	Name    string     `json:"partition"`
	Created int64      `json:"created"`
	Files   []FileView `json:"files"`
	// Config is what PATCH /partition/{p} stored (nil when never set).
	Config map[string]any `json:"config,omitempty"`
}

// SearchRequest asks for the chunks closest to a text. In JSON the text
// may also be given as "query", the name RAGondin's and most search APIs
// use (UnmarshalJSON).
type SearchRequest struct {
	Text       string            `json:"text"`
	Partitions []string          `json:"partitions,omitempty"` // empty = all
	TopK       int               `json:"top_k"`
	Filter     map[string]string `json:"filter,omitempty"` // metadata key == value
	// Mode is dense, bm25 or hybrid (dense + BM25 fused by reciprocal rank,
	// the default). Scores are cosine in dense mode, BM25 in bm25, the RRF
	// sum in hybrid: compare them only within one mode.
	Mode string `json:"mode,omitempty"`
	// Expr is a Milvus boolean expression over metadata (openrag's
	// filter): errs.Invalid when it does not parse.
	Expr string `json:"expr,omitempty"`
}

// UnmarshalJSON takes "query" for "text": a caller coming from RAGondin
// (GET /search?text=) or any other search API sends one or the other, and
// an empty search from a misnamed field helps no one. Both, differing, is
// refused rather than one silently winning.
func (r *SearchRequest) UnmarshalJSON(b []byte) error {
	type plain SearchRequest
	var v struct {
		plain
		Query *string `json:"query"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = SearchRequest(v.plain)
	if v.Query != nil {
		if r.Text != "" && r.Text != *v.Query {
			return errors.New(`"text" and "query" are the same field: give one`)
		}
		r.Text = *v.Query
	}
	return nil
}

// Hit is one search result.
type Hit struct {
	Score     float32        `json:"score"`
	ChunkID   string         `json:"chunk_id"`
	Partition string         `json:"partition"`
	FileID    string         `json:"file_id"`
	FileName  string         `json:"filename"`
	Page      int            `json:"page"`
	Index     int            `json:"chunk_index"`
	Headings  []string       `json:"headings,omitempty"`
	Text      string         `json:"text"`
	Metadata  map[string]any `json:"metadata,omitempty"`
	// FileSize and Created (submission time) are the file version's.
	FileSize int64 `json:"file_size,omitempty"`
	Created  int64 `json:"created,omitempty"`
}

// QueueInfo summarises capacity and work.
type QueueInfo struct {
	TotalSlots int            `json:"total_slots"`
	FreeSlots  int            `json:"free_slots"`
	BusySlots  int            `json:"busy_slots"`
	PoolSize   int            `json:"pool_size"`
	Tasks      map[string]int `json:"tasks"`
	// MaxPerNode is the most slots one node offers: RAGondin's
	// max_per_actor, a node standing for an actor.
	MaxPerNode int `json:"max_per_node"`
}

// CompatBackend is what the RAGondin-compatible API needs from a node.
// Errors carry their kind (errs.NotFound, errs.Conflict, errs.Unsupported,
// fsm rejections); StatusOf turns it into 404, 409, 415, ...
type CompatBackend interface {
	// Submit stores the file and records its task. Mode create answers 409
	// when the file exists, replace answers 404 when it does not; an
	// unsupported type answers 415.
	Submit(ctx context.Context, req SubmitRequest, body io.Reader) (TaskView, error)
	Task(ctx context.Context, id string) (TaskView, error)
	File(ctx context.Context, partition, fileID string) (FileView, error)
	// UpdateFileMetadata merges meta into the file; a "partition" key moves
	// the file there (openrag), errs.Conflict when the target exists.
	UpdateFileMetadata(ctx context.Context, partition, fileID string, meta map[string]any) error
	DeleteFile(ctx context.Context, partition, fileID string) error
	Partitions(ctx context.Context) ([]PartitionView, error)
	DeletePartition(ctx context.Context, partition string) error
	Search(ctx context.Context, req SearchRequest) ([]Hit, error)
	QueueInfo(ctx context.Context) (QueueInfo, error)
	// Tasks lists tasks, oldest first; empty state or partition match all.
	Tasks(ctx context.Context, state, partition string) ([]TaskView, error)
	// Cancel stops a task: fsm.ErrUnknownTask when there is none,
	// fsm.ErrConflict when it is already final.
	Cancel(ctx context.Context, id string) error
	// CompatInfo is static: version and the upload types accepted.
	CompatInfo() CompatInfo
	// Chunk returns one chunk of a file's live version by chunk ID
	// (errs.NotFound otherwise).
	Chunk(ctx context.Context, id string) (ChunkView, error)
	// FileChunks returns the live chunks of a file, by index; vectors only
	// when asked. errs.NotFound when the file is not in the ledger.
	FileChunks(ctx context.Context, partition, fileID string, vectors bool) ([]ChunkView, error)
	// CreatePartition records an empty partition: errs.Conflict when it
	// exists (by record or by files), errs.Invalid for a bad name.
	CreatePartition(ctx context.Context, partition string) error
	// UpdatePartition merges cfg into the partition's stored configuration
	// (a nil value deletes the key): errs.NotFound when it does not exist.
	UpdatePartition(ctx context.Context, partition string, cfg map[string]any) error
	// CopyFile copies an indexed file to (partition, fileID) without
	// embedding again, meta merged over the source's: errs.NotFound when
	// the source is missing, errs.Conflict when the target exists.
	CopyFile(ctx context.Context, srcPartition, srcFileID, partition, fileID string, meta map[string]any) error
}

// CompatInfo is what /version and /indexer/supported/types report.
type CompatInfo struct {
	Version    string   `json:"version"`
	Extensions []string `json:"extensions"` // lower case, no dot
	MimeTypes  []string `json:"mimetypes"`
	// Dimension is the embedder's vector size (GET /partition/{p}/config).
	Dimension int `json:"dimension,omitempty"`
}

// ChunkView is one stored chunk of a file's live version, with the file's
// current ledger metadata (user keys plus filename, partition, file_id).
type ChunkView struct {
	ID        string         `json:"id"`
	Partition string         `json:"partition"`
	FileID    string         `json:"file_id"`
	FileName  string         `json:"filename"`
	Index     int            `json:"chunk_index"`
	Page      int            `json:"page"`
	Headings  []string       `json:"headings,omitempty"`
	Text      string         `json:"text"`
	Vector    []float32      `json:"vector,omitempty"`
	Metadata  map[string]any `json:"metadata"`
	FileSize  int64          `json:"file_size"`
	Created   int64          `json:"created"` // the live version's submission, ledger units
}
