package node

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/chunk"
	"github.com/ragnode/ragnode/indexer/contain"
	"github.com/ragnode/ragnode/indexer/convert"
	"github.com/ragnode/ragnode/indexer/embed"
	"github.com/ragnode/ragnode/indexer/loader"
	"github.com/ragnode/ragnode/indexer/store/milvus"
)

// IndexerConfig selects the embedder, the vector store and chunking.
type IndexerConfig struct {
	// Embedder: empty URL = built-in lexical embedder.
	EmbedderURL      string
	EmbedderModel    string
	EmbedderKey      string
	EmbedderDim      int
	EmbedBatch       int
	EmbedConcurrency int
	// Vector store: "local" (bbolt per node) or "milvus".
	VDB          string
	VDBAddr      string
	Collection   string
	VDBUser      string
	VDBPass      string
	VDBToken     string
	ChunkSize    int
	ChunkOverlap int
	Converters   []string
	// ChunkReplicas is how many nodes keep each file's chunks in the local
	// store (this node included), so search survives a node's loss.
	ChunkReplicas int
	// OCR is auto (tesseract for pages without text and for images, when
	// it is on the PATH) or off; OCRLang is tesseract's -l.
	OCR     string
	OCRLang string
	// PDFPrestart compiles the PDF engine in the background at start-up,
	// so the first PDF task does not wait for it (the CLI sets it; tests
	// that never read a PDF leave it off).
	PDFPrestart bool
	// PDFInterrupt is auto (default), instruction or page: see
	// loader.PDFInterrupt and pdfInterruptMode.
	PDFInterrupt string
	// MaxChunks caps the chunks one file may make (0: the pipeline's default).
	MaxChunks int
	// RRFK is the reciprocal-rank-fusion constant of hybrid search (0:
	// RAGondin's 100).
	RRFK int
	// VDBSchema is the Milvus schema profile: ragnode (default), ragondin,
	// openrag-v1 or openrag (see indexer/store/milvus.Profile).
	VDBSchema string
	// VDBVectorField is the embedder's dense field in the openrag profile
	// (OpenRAG's model_endpoints.vector_field; empty: "vector").
	VDBVectorField string
	// EmbedderTimeout bounds each embeddings request (0: the client's 60s).
	EmbedderTimeout time.Duration
	// Parsing runs in child processes (indexer/contain) unless
	// ParserInProcess. ParserMemory (bytes) and ParserCPU (per document)
	// are the child's limits, ParserMaxDocs the documents a child reads
	// before it is replaced: 0 takes the default, a negative value means
	// none. ParserCgroup lets the pool use a delegated cgroup v2 subtree
	// (the CLI sets it; tests, many nodes to a process, leave it off).
	ParserInProcess bool
	ParserMemory    int64
	ParserCPU       time.Duration
	ParserMaxDocs   int
	ParserCgroup    bool
}

func (c *IndexerConfig) defaults() {
	if c.VDB == "" {
		c.VDB = "local"
	}
	if c.ChunkReplicas == 0 {
		c.ChunkReplicas = 2
	}
	if c.Collection == "" {
		c.Collection = milvus.Profile(c.VDBSchema).DefaultCollection()
	}
}

func (n *Node) startIndexer() error {
	ic := &n.cfg.Indexer
	ic.defaults()
	var emb embed.Embedder
	if ic.EmbedderURL != "" {
		o, err := embed.NewOpenAI(embed.OpenAIConfig{BaseURL: ic.EmbedderURL, Model: ic.EmbedderModel, APIKey: ic.EmbedderKey,
			Dim: ic.EmbedderDim, Batch: ic.EmbedBatch, Concurrency: ic.EmbedConcurrency, Timeout: ic.EmbedderTimeout})
		if err != nil {
			return fmt.Errorf("embedder: %w", err)
		}
		emb = o
	} else {
		dim := ic.EmbedderDim
		if dim == 0 {
			dim = 384
		}
		emb = embed.NewLexical(dim)
	}
	emb = n.metrics.instrumentEmbedder(emb) // metrics_instrument.go
	n.emb = emb
	switch ic.VDB {
	case "local":
		// Its index loads once the node is in its cluster (indexload.go).
		st, err := openChunkStoreDeferred(filepath.Join(n.cfg.DataDir, "chunks.db"))
		if err != nil {
			return fmt.Errorf("open local vector store: %w", err)
		}
		n.store = st
		n.chunks = replicatedChunks{n: n, local: st}
	case "milvus":
		if emb.Dim() == 0 {
			return errors.New("--vdb milvus with an HTTP embedder needs --embedder-dim (the collection's vector size)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		st, err := milvus.Open(ctx, milvus.Config{Address: ic.VDBAddr, Collection: ic.Collection, Dim: emb.Dim(),
			Username: ic.VDBUser, Password: ic.VDBPass, Token: ic.VDBToken, Schema: milvus.Profile(ic.VDBSchema), VectorField: ic.VDBVectorField, RRFK: ic.RRFK})
		if err != nil {
			return fmt.Errorf("milvus at %s: %w", ic.VDBAddr, err)
		}
		n.store = st
		n.chunks = sharedChunks{st: st, log: n.log}
	default:
		return fmt.Errorf("--vdb %q: want local or milvus", ic.VDB)
	}
	convs := convert.Set{}
	for _, spec := range ic.Converters {
		if err := convs.Add(spec); err != nil {
			return err
		}
	}
	tmp := filepath.Join(n.cfg.DataDir, "tmp")
	if err := os.MkdirAll(tmp, 0o750); err != nil {
		return err
	}
	ocr, err := loader.ParseOCRMode(ic.OCR)
	if err != nil {
		return err
	}
	mode, err := pdfInterruptMode(ic)
	if err != nil {
		return err
	}
	pdfInterrupt, err := loader.ParsePDFInterrupt(mode)
	if err != nil {
		return err
	}
	// One PDF engine per process, sized to this node's slots; its compiled
	// module is cached in the data dir so a restart starts in under a second.
	// A --runner other than the pipeline (sleep, checksum) never opens a
	// PDF: compiling the engine anyway would cost seconds of CPU per node
	// at start-up (five nodes on two cores: most of a benchmark's CPU).
	prestart := ic.PDFPrestart && n.cfg.Runner == nil
	lo := loader.Options{PDFSlots: max(n.slotCapacity(), 1), PDFTimeout: n.cfg.TaskTimeout, OCR: ocr, OCRLang: ic.OCRLang,
		Prestart: prestart, PDFInterrupt: pdfInterrupt}
	if prestart {
		// The engine is per process: only a process that is this one node
		// (the CLI) caches it in the node's data dir. Tests run many nodes
		// in one process, whose data dirs come and go.
		lo.CompileCacheDir = filepath.Join(n.cfg.DataDir, "cache", "wazero")
	}
	n.chunks = n.metrics.instrumentChunks(n.chunks) // metrics_instrument.go
	pc := indexer.Config{Chunk: chunk.Options{Size: ic.ChunkSize, Overlap: ic.ChunkOverlap}, Converters: convs, TmpDir: tmp, Loader: lo, MaxChunks: ic.MaxChunks}
	if !ic.ParserInProcess {
		pool, err := n.parserPool(lo)
		if err != nil {
			return err
		}
		pc.Parser = pool
	}
	p, err := indexer.New(pc, emb, n.chunks)
	if err != nil {
		if pc.Parser != nil {
			_ = pc.Parser.Close()
		}
		return err
	}
	n.pipe = p
	return nil
}

// parserPool builds the pool of parser children (indexer/contain); they
// start on the first document, so a node that never parses has none.
func (n *Node) parserPool(lo loader.Options) (*contain.Pool, error) {
	ic := &n.cfg.Indexer
	cfg := contain.Config{Memory: contain.DefaultMemory, CPU: contain.DefaultCPU, MaxDocs: contain.DefaultMaxDocs,
		MaxIdle: max(n.slotCapacity(), 1), Loader: lo, Logger: n.log.Named("parser"), Cgroup: ic.ParserCgroup}
	switch {
	case ic.ParserMemory < 0:
		cfg.Memory = 0
	case ic.ParserMemory > 0:
		cfg.Memory = uint64(ic.ParserMemory)
	}
	switch {
	case ic.ParserCPU < 0:
		cfg.CPU = 0
	case ic.ParserCPU > 0:
		cfg.CPU = ic.ParserCPU
	}
	switch {
	case ic.ParserMaxDocs < 0:
		cfg.MaxDocs = 0
	case ic.ParserMaxDocs > 0:
		cfg.MaxDocs = ic.ParserMaxDocs
	}
	// Each child is a process of its own: it starts its engine itself
	// (from the compile cache), and never more than one document at once.
	cfg.Loader.Prestart = false
	pool, err := contain.NewPool(cfg)
	if err != nil {
		return nil, err
	}
	if lo.Prestart {
		pool.Warm()
	}
	n.log.Info("parsing in child processes", "memory", contain.FormatBytes(cfg.Memory), "cpu", cfg.CPU, "max_docs", cfg.MaxDocs,
		"memory_limit_by", pool.Mechanism())
	return pool, nil
}

// pipelineRunner runs the indexing pipeline as a task body.
type pipelineRunner struct{ n *Node }

func (r pipelineRunner) Run(ctx context.Context, job Job) (Outcome, error) {
	job.Progress(fsm.StageLoading)
	data, err := job.Open(ctx)
	if err != nil {
		return Outcome{}, err
	}
	t := job.Task
	src := t.File.SharedPath
	if src == "" {
		src = t.File.Name
	}
	res, err := r.n.pipe.Run(ctx, indexer.Input{TaskID: t.ID, Partition: t.Partition, FileID: t.FileID, FileName: t.File.Name,
		Data: data, Metadata: t.Metadata, GPU: job.GPU,
		Fence:  indexer.Fence{Task: t.ID, Seq: t.Seq, Attempt: t.Attempt},
		Source: src, Submitted: t.Submitted}, job.Progress)
	if err != nil {
		var lost *contain.LostError
		switch {
		case indexer.IsPermanent(err):
			return Outcome{}, Permanent(err)
		case errors.As(err, &lost):
			// The parser died under the document: the ledger counts it
			// towards its poison quarantine, like a lost node.
			return Outcome{}, RunnerLost(err)
		}
		return Outcome{}, err
	}
	return Outcome{Chunks: res.Chunks, ChunkHolders: res.Holders}, nil
}

func (pipelineRunner) Close() error { return nil }

// pdfInterruptMode resolves --pdf-interrupt auto: in a parser child a
// runaway page is ended by killing the child, so the engine can leave out
// wazero's per-instruction checks (about 2x faster, BENCHMARKS.md 8); in
// process nothing but those checks can stop one.
func pdfInterruptMode(ic *IndexerConfig) (string, error) {
	switch m := strings.ToLower(strings.TrimSpace(ic.PDFInterrupt)); m {
	case "", "auto":
		if ic.ParserInProcess {
			return string(loader.PDFInterruptInstruction), nil
		}
		return string(loader.PDFInterruptPage), nil
	case string(loader.PDFInterruptInstruction), string(loader.PDFInterruptPage):
		return m, nil
	}
	return "", fmt.Errorf("--pdf-interrupt %q: want auto, instruction or page", ic.PDFInterrupt)
}
