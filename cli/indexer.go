package cli

import (
	"fmt"
	"net"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/gpu"
	"github.com/ragnode/ragnode/indexer"
	"github.com/ragnode/ragnode/indexer/loader"
	"github.com/ragnode/ragnode/indexer/store/milvus"
	"github.com/ragnode/ragnode/node"
	"github.com/ragnode/ragnode/transport"
)

// indexerFlags are the pipeline's settings (chunker, embedder, store, files).
func indexerFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "embedder-url", Usage: "OpenAI-compatible embeddings API (vLLM, TEI, Ollama, Infinity); empty: built-in lexical embedder", EnvVars: envs("EMBEDDER_URL", "EMBEDDER_BASE_URL")},
		&cli.StringFlag{Name: "embedder-model", Usage: "model name sent to the embeddings API", EnvVars: envs("EMBEDDER_MODEL", "EMBEDDER_MODEL_NAME")},
		&cli.StringFlag{Name: "embedder-key", Usage: "API key for the embeddings API", EnvVars: envs("EMBEDDER_KEY", "EMBEDDER_API_KEY")},
		&cli.IntFlag{Name: "embedder-dim", Usage: "vector dimension (built-in default 384; required with --vdb milvus and an HTTP embedder)", EnvVars: envs("EMBEDDER_DIM")},
		&cli.IntFlag{Name: "embed-batch", Value: 32, Usage: "texts per embeddings request", EnvVars: envs("EMBED_BATCH")},
		&cli.IntFlag{Name: "embed-concurrency", Value: 4, Usage: "embeddings requests in flight per task", EnvVars: envs("EMBED_CONCURRENCY")},
		&cli.StringFlag{Name: "vdb", Value: "local", Usage: "vector store: local (bbolt in the data dir, search fans out) or milvus", EnvVars: envs("VDB")},
		&cli.StringFlag{Name: "vdb-addr", Usage: "Milvus HOST:PORT (default from VDB_HOST and VDB_PORT)", EnvVars: envs("VDB_ADDR")},
		&cli.StringFlag{Name: "collection", Value: "ragnode", Usage: "Milvus collection", EnvVars: envs("COLLECTION", "VDB_COLLECTION_NAME")},
		&cli.StringFlag{Name: "vdb-user", Usage: "Milvus user", EnvVars: envs("VDB_USER", "VDB_USERNAME")},
		&cli.StringFlag{Name: "vdb-password", Usage: "Milvus password", EnvVars: envs("VDB_PASSWORD")},
		&cli.IntFlag{Name: "chunk-size", Value: 512, Usage: "target chunk size in tokens (cl100k_base)", EnvVars: envs("CHUNK_SIZE")},
		&cli.IntFlag{Name: "chunk-overlap", Value: 100, Usage: "tokens repeated between consecutive chunks", EnvVars: envs("CHUNK_OVERLAP")},
		&cli.StringSliceFlag{Name: "converter", Usage: "EXT=COMMAND with {in}/{out}: external converter run under the task's GPU (repeatable)", EnvVars: envs("CONVERTER")},
		&cli.IntFlag{Name: "max-chunks", Value: indexer.DefaultMaxChunks, Usage: "fail a file that makes more chunks than this", EnvVars: envs("MAX_CHUNKS")},
		&cli.IntFlag{Name: "rrf-k", Value: 100, Usage: "reciprocal rank fusion constant of hybrid (dense + BM25) search", EnvVars: envs("RRF_K")},
		&cli.StringFlag{Name: "ocr", Value: "auto", Usage: "auto: read pages without text and image uploads with tesseract when it is on the PATH; off: never", EnvVars: envs("OCR")},
		&cli.StringFlag{Name: "pdf-interrupt", Value: "instruction", Usage: "how a running PDF is stopped: instruction (inside a page; about 2x slower) or page (between pages; a runaway page keeps its slot)", EnvVars: envs("PDF_INTERRUPT")},
		&cli.StringFlag{Name: "ocr-lang", Value: "eng", Usage: "tesseract languages, e.g. eng+fra", EnvVars: envs("OCR_LANG")},
		&cli.IntFlag{Name: "chunk-replicas", Value: 2, Usage: "nodes keeping each file's chunks with --vdb local", EnvVars: envs("CHUNK_REPLICAS")},
		&cli.IntFlag{Name: "replicas", Value: 2, Usage: "nodes keeping each uploaded file before the upload is acknowledged", EnvVars: envs("REPLICAS")},
		&cli.StringFlag{Name: "max-file-size", Value: "100MiB", Usage: "largest accepted upload", EnvVars: envs("MAX_FILE_SIZE")},
		&cli.StringFlag{Name: "vdb-schema", Value: "ragnode", Usage: "Milvus collection layout: ragnode, ragondin or openrag (RAGondin's/OpenRAG's exact collection; default collection vdb_test)", EnvVars: envs("VDB_SCHEMA")},
	}
}

func applyIndexerFlags(c *cli.Context, cfg *node.Config) error {
	ic := node.IndexerConfig{
		EmbedderURL:      c.String("embedder-url"),
		EmbedderModel:    c.String("embedder-model"),
		EmbedderKey:      c.String("embedder-key"),
		EmbedderDim:      c.Int("embedder-dim"),
		EmbedBatch:       c.Int("embed-batch"),
		EmbedConcurrency: c.Int("embed-concurrency"),
		VDB:              c.String("vdb"),
		VDBAddr:          c.String("vdb-addr"),
		Collection:       c.String("collection"),
		VDBUser:          c.String("vdb-user"),
		VDBPass:          c.String("vdb-password"),
		ChunkSize:        c.Int("chunk-size"),
		ChunkOverlap:     c.Int("chunk-overlap"),
		Converters:       c.StringSlice("converter"),
		ChunkReplicas:    c.Int("chunk-replicas"),
		OCR:              c.String("ocr"),
		OCRLang:          c.String("ocr-lang"),
		PDFInterrupt:     c.String("pdf-interrupt"),
		PDFPrestart:      true,
		RRFK:             c.Int("rrf-k"),
		MaxChunks:        c.Int("max-chunks"),
		VDBSchema:        c.String("vdb-schema"),
	}
	if err := milvus.Profile(ic.VDBSchema).Valid(); err != nil {
		return fmt.Errorf("--vdb-schema %q: want ragnode, ragondin or openrag", ic.VDBSchema)
	}
	if !c.IsSet("collection") {
		ic.Collection = milvus.Profile(ic.VDBSchema).DefaultCollection()
	}
	if _, err := loader.ParseOCRMode(ic.OCR); err != nil {
		return err
	}
	if _, err := loader.ParsePDFInterrupt(ic.PDFInterrupt); err != nil {
		return err
	}
	if ic.VDB != "local" && ic.VDB != "milvus" {
		return fmt.Errorf("--vdb %q: want local or milvus", ic.VDB)
	}
	if ic.VDB == "milvus" && ic.VDBAddr == "" {
		host, port := getenv("VDB_HOST"), getenv("VDB_PORT")
		if host == "" {
			return fmt.Errorf("--vdb milvus needs --vdb-addr (or VDB_HOST and VDB_PORT)")
		}
		if port == "" {
			port = "19530"
		}
		ic.VDBAddr = net.JoinHostPort(host, port)
	}
	if ic.ChunkSize <= 0 || ic.ChunkOverlap < 0 || ic.ChunkOverlap >= ic.ChunkSize {
		return fmt.Errorf("--chunk-size must be > 0 and --chunk-overlap between 0 and the chunk size")
	}
	cfg.Indexer = ic
	cfg.Replicas = c.Int("replicas")
	max, err := gpu.ParseSize(c.String("max-file-size"))
	if err != nil {
		return fmt.Errorf("--max-file-size: %w", err)
	}
	cfg.MaxFileSize = int64(max)
	return nil
}

func searchCommand() *cli.Command {
	return &cli.Command{
		Name:      "search",
		Usage:     "search indexed chunks: embeds the query with the cluster's embedder",
		ArgsUsage: "QUERY",
		Flags: clientFlags(
			&cli.StringSliceFlag{Name: "partition", Usage: "only these partitions (repeatable; default all)"},
			&cli.IntFlag{Name: "top-k", Value: 5, Usage: "number of hits"},
			&cli.StringFlag{Name: "mode", Usage: "hybrid (default: dense + BM25 fused by rank), dense or bm25"},
			&cli.StringSliceFlag{Name: "filter", Usage: "metadata key=value the hits must carry (repeatable)"},
		),
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return fmt.Errorf("search needs a query")
			}
			cl, err := newClient(c)
			if err != nil {
				return err
			}
			req := transport.SearchRequest{Text: strings.Join(c.Args().Slice(), " "), Partitions: c.StringSlice("partition"), TopK: c.Int("top-k"), Mode: c.String("mode")}
			for _, kv := range c.StringSlice("filter") {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					return fmt.Errorf("--filter %q: want key=value", kv)
				}
				if req.Filter == nil {
					req.Filter = map[string]string{}
				}
				req.Filter[k] = v
			}
			ctx, cancel := reqCtx(c)
			defer cancel()
			hits, err := cl.Search(ctx, req)
			if err != nil {
				return err
			}
			if hits == nil {
				hits = []transport.Hit{}
			}
			if jsonOut(c) {
				return printJSON(c.App.Writer, hits)
			}
			tw := tabwriter.NewWriter(c.App.Writer, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "SCORE\tPARTITION\tFILE\tPAGE\tTEXT")
			for _, h := range hits {
				fmt.Fprintf(tw, "%.3f\t%s\t%s\t%d\t%s\n", h.Score, h.Partition, h.FileID, h.Page, oneLine(h.Text))
			}
			return tw.Flush()
		},
	}
}
