// Package indexer runs the pipeline one task needs: detect and load the file
// (or hand it to an external converter), chunk it, embed the chunks, and
// write them to a vector store.
//
// Guarantee: chunk IDs are a function of (partition, file ID, chunk index)
// and every write is an upsert followed by a trim of indexes beyond the new
// count, so running a task twice, or re-indexing a file, leaves exactly one
// copy of each chunk. A file the loaders cannot read fails with an error
// marked permanent (retrying cannot fix it); the pipeline never panics the
// node.
package indexer

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/ragnode/ragnode/indexer/chunk"
	"github.com/ragnode/ragnode/indexer/contain"
	"github.com/ragnode/ragnode/indexer/convert"
	"github.com/ragnode/ragnode/indexer/embed"
	"github.com/ragnode/ragnode/indexer/loader"
	"github.com/ragnode/ragnode/indexer/store"
)

// Stages reported while a task runs, in order.
const (
	StageLoading   = "loading"
	StageChunking  = "chunking"
	StageEmbedding = "embedding"
	StageInserting = "inserting"
)

// MetaTask is the chunk metadata key naming the task that wrote the chunk,
// so readers can tell the live version of a file from a stale copy.
const MetaTask = "_task"

// Sink receives a file's records: it must upsert them and then drop the
// file's chunks with Index >= len(recs). It returns the nodes now holding the
// chunks (nil when the store is shared).
type Sink interface {
	WriteFile(ctx context.Context, w Write) ([]string, error)
}

// Fence names the task attempt a write is made for. A store whose rows
// are replaced per file (Milvus with auto IDs) keeps the rows of the
// newest attempt and refuses an older one's; the zero Fence is the
// oldest of all.
type Fence struct {
	Task    string
	Seq     uint64
	Attempt int
}

// Write is one file's chunks as the pipeline hands them to its Sink, with
// the attempt they belong to and the file facts RAGondin's rows carry.
type Write struct {
	Partition, FileID string
	Records           []store.Record
	Fence             Fence
	// Source is the file's name (or shared path), Size its length in
	// bytes, Submitted its task's submission (Unix nanoseconds; 0 unknown).
	Source    string
	Size      int64
	Submitted int64
}

// StoreSink writes to one store.
type StoreSink struct{ Store store.Store }

// WriteFile implements Sink.
func (s StoreSink) WriteFile(ctx context.Context, w Write) ([]string, error) {
	if err := s.Store.Upsert(ctx, w.Records); err != nil {
		return nil, err
	}
	return nil, s.Store.DeleteFileFrom(ctx, w.Partition, w.FileID, len(w.Records))
}

// Config tunes the pipeline.
type Config struct {
	Chunk      chunk.Options
	Converters convert.Set
	TmpDir     string
	// Loader sets the process-wide loader options (PDF engine size, OCR);
	// New applies them. The zero value keeps the defaults.
	Loader loader.Options
	// MaxChunks caps the chunks one file may make (0: DefaultMaxChunks).
	MaxChunks int
	// Parser runs the load stage (loaders, OCR, converters) away from
	// this process: a *contain.Pool. nil loads in this process.
	Parser Parser
}

// Parser runs the load stage of one file; contain.Pool is the one that
// matters (a child process under limits).
type Parser interface {
	Parse(ctx context.Context, req contain.Request) (loader.Document, error)
	Close() error
}

// Pipeline is safe for concurrent use by many tasks.
type Pipeline struct {
	cfg      Config
	tok      chunk.Tokenizer
	embedder embed.Embedder
	sink     Sink
}

// New builds a pipeline.
func New(cfg Config, emb embed.Embedder, sink Sink) (*Pipeline, error) {
	tok, err := chunk.NewTokenizer()
	if err != nil {
		return nil, fmt.Errorf("tokenizer: %w", err)
	}
	if cfg.Parser == nil {
		// The children configure their own loaders; in this process the
		// PDF engine would only cost memory nobody uses.
		loader.Configure(cfg.Loader)
	}
	return &Pipeline{cfg: cfg, tok: tok, embedder: emb, sink: sink}, nil
}

// Parser returns the parser the load stage runs in (nil: this process).
func (p *Pipeline) Parser() Parser { return p.cfg.Parser }

// Close ends the parser children, if any.
func (p *Pipeline) Close() error {
	if p.cfg.Parser != nil {
		return p.cfg.Parser.Close()
	}
	return nil
}

// Input is one task's file.
type Input struct {
	TaskID    string
	Partition string
	FileID    string
	FileName  string
	Data      []byte
	Metadata  map[string]any
	GPU       int // allocated card, -1 for none
	// Fence is the attempt the run writes for (Sink); Source and Submitted
	// are file facts its rows carry (Write).
	Fence     Fence
	Source    string
	Submitted int64
}

// Result is what the pipeline produced.
type Result struct {
	Chunks  int
	Holders []string // nodes holding the chunks, when the sink says
}

// ErrTooManyChunks fails a file whose text makes more chunks than allowed.
var ErrTooManyChunks = errors.New("too many chunks")

// DefaultMaxChunks is the per-file chunk cap when Config.MaxChunks is 0:
// about 25 MB of text at the default chunk size.
const DefaultMaxChunks = 50000

func (c Config) maxChunks() int {
	if c.MaxChunks > 0 {
		return c.MaxChunks
	}
	return DefaultMaxChunks
}

// PermanentError marks failures that retrying cannot fix.
type PermanentError struct{ Err error }

func (e *PermanentError) Error() string { return e.Err.Error() }
func (e *PermanentError) Unwrap() error { return e.Err }

// IsPermanent reports whether err is a PermanentError.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// CheckSupported tells, at submit time, whether a file can be indexed.
func (p *Pipeline) CheckSupported(name string, head []byte) error {
	if _, ok := p.cfg.Converters.For(strings.TrimPrefix(filepath.Ext(name), ".")); ok {
		return nil
	}
	_, err := loader.Detect(name, head)
	return err
}

// Run indexes one file. progress is called at each stage change.
func (p *Pipeline) Run(ctx context.Context, in Input, progress func(stage string)) (Result, error) {
	if progress == nil {
		progress = func(string) {}
	}
	progress(StageLoading)
	doc, err := p.load(ctx, in)
	if err != nil {
		return Result{}, err
	}
	progress(StageChunking)
	chunks, err := chunk.Split(ctx, doc, p.cfg.Chunk, p.tok)
	if err != nil {
		return Result{}, err
	}
	if max := p.cfg.maxChunks(); len(chunks) > max {
		// A small file that inflates to a huge text (a DOCX of 200 MB of
		// XML) would otherwise embed and store it all.
		return Result{}, &PermanentError{Err: fmt.Errorf("%w: %d chunks, the limit per file is %d (--max-chunks)", ErrTooManyChunks, len(chunks), max)}
	}
	progress(StageEmbedding)
	texts := make([]string, len(chunks))
	for i, c := range chunks {
		texts[i] = c.Text
	}
	var vecs [][]float32
	if len(texts) > 0 {
		vecs, err = p.embedder.Embed(ctx, texts)
		if err != nil {
			return Result{}, fmt.Errorf("embed: %w", err)
		}
		if len(vecs) != len(texts) {
			return Result{}, fmt.Errorf("embed: got %d vectors for %d chunks", len(vecs), len(texts))
		}
	}
	progress(StageInserting)
	recs := make([]store.Record, len(chunks))
	for i, c := range chunks {
		meta := make(map[string]any, len(in.Metadata)+2)
		for k, v := range in.Metadata {
			meta[k] = v
		}
		meta["filename"] = in.FileName
		meta[MetaTask] = in.TaskID
		recs[i] = store.Record{ID: store.ChunkID(in.Partition, in.FileID, c.Index), Partition: in.Partition, FileID: in.FileID, Index: c.Index, Text: c.Text,
			Page: c.Page, Headings: c.Headings, Vector: vecs[i], Metadata: meta}
	}
	holders, err := p.sink.WriteFile(ctx, Write{Partition: in.Partition, FileID: in.FileID, Records: recs,
		Fence: in.Fence, Source: in.Source, Size: int64(len(in.Data)), Submitted: in.Submitted})
	if err != nil {
		return Result{}, fmt.Errorf("write chunks: %w", err)
	}
	return Result{Chunks: len(recs), Holders: holders}, nil
}

func (p *Pipeline) load(ctx context.Context, in Input) (loader.Document, error) {
	req := contain.Request{FileName: in.FileName, Data: in.Data, GPU: in.GPU, TmpDir: p.cfg.TmpDir}
	if c, ok := p.cfg.Converters.For(strings.TrimPrefix(filepath.Ext(in.FileName), ".")); ok {
		req.Converter = &c
	}
	var doc loader.Document
	var err error
	if p.cfg.Parser != nil {
		doc, err = p.cfg.Parser.Parse(ctx, req)
	} else {
		doc, err = contain.Load(ctx, req)
	}
	if err != nil {
		if contain.IsPermanent(err) && ctx.Err() == nil {
			return loader.Document{}, &PermanentError{err}
		}
		return loader.Document{}, err
	}
	return doc, nil
}
