package cli

import (
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

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
		&cli.IntFlag{Name: "embedder-dim", Usage: "vector dimension (required with --vdb milvus and an HTTP embedder)", EnvVars: envs("EMBEDDER_DIM")},
		&cli.IntFlag{Name: "embed-batch", Value: 32, Usage: "texts per embeddings request", EnvVars: envs("EMBED_BATCH", "EMBEDDER_BATCH_SIZE")},
		&cli.IntFlag{Name: "embed-concurrency", Value: 4, Usage: "embeddings requests in flight per task", EnvVars: envs("EMBED_CONCURRENCY", "EMBEDDER_CONCURRENCY")},
		&cli.StringFlag{Name: "embedder-timeout", Value: "60s", Usage: "bound on each embeddings request (a duration, or seconds as OpenRAG's EMBEDDER_TIMEOUT gives them)", EnvVars: envs("EMBEDDER_TIMEOUT", "EMBEDDER_TIMEOUT")},
		&cli.StringFlag{Name: "vdb", Value: "local", Usage: "vector store: local (bbolt in the data dir, search fans out) or milvus (the default when --vdb-addr or VDB_HOST is set)", EnvVars: envs("VDB")},
		&cli.StringFlag{Name: "vdb-addr", Usage: "Milvus HOST:PORT (default from VDB_HOST and VDB_PORT)", EnvVars: envs("VDB_ADDR")},
		&cli.StringFlag{Name: "collection", Value: "ragnode", Usage: "Milvus collection", EnvVars: envs("COLLECTION", "VDB_COLLECTION_NAME")},
		&cli.StringFlag{Name: "vdb-user", Usage: "Milvus user", EnvVars: envs("VDB_USER", "VDB_USERNAME")},
		&cli.StringFlag{Name: "vdb-password", Usage: "Milvus password", EnvVars: envs("VDB_PASSWORD")},
		&cli.IntFlag{Name: "chunk-size", Value: 512, Usage: "target chunk size in tokens (cl100k_base)", EnvVars: envs("CHUNK_SIZE", "CHUNK_SIZE")},
		&cli.IntFlag{Name: "chunk-overlap", Value: 100, Usage: "tokens repeated between consecutive chunks (default from OpenRAG's CHUNK_OVERLAP_RATE when set)", EnvVars: envs("CHUNK_OVERLAP", "CHUNK_OVERLAP")},
		&cli.StringSliceFlag{Name: "converter", Usage: "EXT=COMMAND with {in}/{out}: external converter run under the task's GPU (repeatable)", EnvVars: envs("CONVERTER")},
		&cli.IntFlag{Name: "max-chunks", Value: indexer.DefaultMaxChunks, Usage: "fail a file that makes more chunks than this", EnvVars: envs("MAX_CHUNKS")},
		&cli.IntFlag{Name: "rrf-k", Value: 100, Usage: "reciprocal rank fusion constant of hybrid (dense + BM25) search", EnvVars: envs("RRF_K")},
		&cli.StringFlag{Name: "ocr", Value: "auto", Usage: "auto: read pages without text and image uploads with tesseract when it is on the PATH; off: never", EnvVars: envs("OCR")},
		&cli.StringFlag{Name: "pdf-interrupt", Value: "auto", Usage: "how a running PDF is stopped: auto (page in a parser child, which is killed to end a runaway page; instruction with --parser-inprocess), instruction (inside a page; about 2x slower) or page (between pages)", EnvVars: envs("PDF_INTERRUPT")},
		&cli.StringFlag{Name: "ocr-lang", Value: "eng", Usage: "tesseract languages, e.g. eng+fra", EnvVars: envs("OCR_LANG")},
		&cli.IntFlag{Name: "chunk-replicas", Value: 2, Usage: "nodes keeping each file's chunks with --vdb local", EnvVars: envs("CHUNK_REPLICAS")},
		&cli.IntFlag{Name: "replicas", Value: 2, Usage: "nodes keeping each uploaded file before the upload is acknowledged", EnvVars: envs("REPLICAS")},
		&cli.StringFlag{Name: "max-file-size", Value: "100MiB", Usage: "largest accepted upload", EnvVars: envs("MAX_FILE_SIZE")},
		&cli.StringFlag{Name: "vdb-schema", Value: "ragnode", Usage: "Milvus collection layout: ragnode, openrag (OpenRAG's newest, schema version 3), openrag-v1 or ragondin (their older layouts); the upstream ones default to collection vdb_test", EnvVars: envs("VDB_SCHEMA")},
		&cli.StringFlag{Name: "vdb-vector-field", Usage: "with --vdb-schema openrag: the embedder's dense field, OpenRAG's model_endpoints.vector_field for it (empty: vector, as for an embedder whose vector_field is NULL)", EnvVars: envs("VDB_VECTOR_FIELD")},
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
		VDBVectorField:   c.String("vdb-vector-field"),
	}
	prof := milvus.Profile(ic.VDBSchema)
	if err := prof.Valid(); err != nil {
		return fmt.Errorf("--vdb-schema %q: want one of %s", ic.VDBSchema, profileNames())
	}
	if _, err := milvus.Spec(prof, "", 1, ic.VDBVectorField, 0); err != nil {
		return fmt.Errorf("--vdb-vector-field: %w", err)
	}
	if !c.IsSet("collection") {
		ic.Collection = prof.DefaultCollection()
	}
	d, err := parseSeconds(c.String("embedder-timeout"))
	if err != nil {
		return fmt.Errorf("--embedder-timeout: %w", err)
	}
	ic.EmbedderTimeout = d
	if _, err := loader.ParseOCRMode(ic.OCR); err != nil {
		return err
	}
	// auto (the default) is resolved by the node, which knows whether
	// parsing runs in a child (node.pdfInterruptMode); the loader takes
	// only the two modes it resolves to.
	if m := strings.ToLower(strings.TrimSpace(ic.PDFInterrupt)); m != "auto" {
		if _, err := loader.ParsePDFInterrupt(m); err != nil {
			return fmt.Errorf("--pdf-interrupt %q: want auto, instruction or page", ic.PDFInterrupt)
		}
	}
	// RAGondin's and OpenRAG's .env name their Milvus with VDB_HOST (and
	// VDB_PORT, or upstream's historical VDB_iPORT): with one of those, or
	// --vdb-addr, Milvus is the store unless --vdb says otherwise.
	host := getenv("VDB_HOST")
	if !c.IsSet("vdb") && (host != "" || ic.VDBAddr != "") {
		ic.VDB = "milvus"
	}
	if ic.VDB != "local" && ic.VDB != "milvus" {
		return fmt.Errorf("--vdb %q: want local or milvus", ic.VDB)
	}
	if ic.VDB == "milvus" && ic.VDBAddr == "" {
		if host == "" {
			return fmt.Errorf("--vdb milvus needs --vdb-addr (or VDB_HOST and VDB_PORT)")
		}
		port := getenv("VDB_PORT")
		if port == "" {
			port = getenv("VDB_iPORT")
		}
		if port == "" {
			port = "19530"
		}
		ic.VDBAddr = net.JoinHostPort(host, port)
	}
	if !c.IsSet("chunk-overlap") {
		if r := getenv("CHUNK_OVERLAP_RATE"); r != "" {
			rate, err := strconv.ParseFloat(r, 64)
			if err != nil || rate < 0 || rate >= 1 {
				return fmt.Errorf("CHUNK_OVERLAP_RATE %q: want a fraction of the chunk size in [0, 1) (or set --chunk-overlap)", r)
			}
			ic.ChunkOverlap = int(float64(ic.ChunkSize) * rate)
		}
	}
	if ic.ChunkSize <= 0 || ic.ChunkOverlap < 0 || ic.ChunkOverlap >= ic.ChunkSize {
		return fmt.Errorf("--chunk-size must be > 0 and --chunk-overlap between 0 and the chunk size")
	}
	cfg.Indexer = ic
	if cfg.Logger != nil {
		for _, w := range unhonouredEnv(c, ic) {
			cfg.Logger.Warn("RAGondin/OpenRAG setting not honoured", "variable", w[0], "why", w[1])
		}
	}
	cfg.Replicas = c.Int("replicas")
	max, err := parseSizeFlag("max-file-size", c.String("max-file-size"))
	if err != nil {
		return err
	}
	cfg.MaxFileSize = int64(max)
	return nil
}

func profileNames() string {
	names := make([]string, len(milvus.Profiles))
	for i, p := range milvus.Profiles {
		names[i] = string(p)
	}
	return strings.Join(names, ", ")
}

// parseSeconds reads a duration, or a number of seconds as OpenRAG's
// *_TIMEOUT variables hold them.
func parseSeconds(v string) (time.Duration, error) {
	if f, err := strconv.ParseFloat(v, 64); err == nil {
		if f <= 0 {
			return 0, fmt.Errorf("%q: want a positive duration", v)
		}
		return time.Duration(f * float64(time.Second)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%q: want a positive duration (30s) or seconds (30)", v)
	}
	return d, nil
}

// unhonouredEnv names the RAGondin/OpenRAG variables set in the
// environment that ask for something ragnode does not do, each with why,
// so a .env brought as it is says where the indexing will differ.
func unhonouredEnv(c *cli.Context, ic node.IndexerConfig) [][2]string {
	var out [][2]string
	is := func(name string, values ...string) bool {
		v, ok := os.LookupEnv(name)
		if !ok {
			return false
		}
		if len(values) == 0 {
			return true
		}
		for _, w := range values {
			if strings.EqualFold(strings.TrimSpace(v), w) {
				return true
			}
		}
		return false
	}
	add := func(name, why string) { out = append(out, [2]string{name, why}) }
	if is("VDB_HYBRID_SEARCH", "false", "0", "no") {
		add("VDB_HYBRID_SEARCH", "ragnode's upstream profiles always create the BM25 field and search hybrid")
	}
	if is("VDB_ENABLE_INSERTION", "false", "0", "no") {
		add("VDB_ENABLE_INSERTION", "ragnode always writes the chunks it indexes")
	}
	if v, ok := os.LookupEnv("VDB_CONNECTOR_NAME"); ok && !strings.EqualFold(v, "milvus") {
		add("VDB_CONNECTOR_NAME", "ragnode speaks only to Milvus")
	}
	if is("VDB_TIMEOUT") {
		add("VDB_TIMEOUT", "ragnode bounds the connection to Milvus (10s), not each request")
	}
	if getenv("VDB_HOST") != "" && c.IsSet("vdb") && ic.VDB == "local" {
		add("VDB_HOST", "--vdb local keeps chunks in the nodes' own stores")
	}
	if is("MAX_MODEL_LEN") {
		add("MAX_MODEL_LEN", "ragnode sends whole chunks (at most --chunk-size tokens) to the embedder, untruncated")
	}
	if getenv("EMBEDDER_MODEL_NAME") != "" && ic.EmbedderURL == "" {
		add("EMBEDDER_MODEL_NAME", "no EMBEDDER_BASE_URL: ragnode embeds with its built-in lexical embedder, not this model")
	}
	if v, ok := os.LookupEnv("CHUNKER"); ok && v != "recursive_splitter" {
		add("CHUNKER", "ragnode has one chunker, a recursive token splitter (cl100k_base)")
	}
	if is("CONTEXTUAL_RETRIEVAL", "true", "1", "yes") {
		add("CONTEXTUAL_RETRIEVAL", "ragnode adds no LLM-written context to chunks")
	}
	if is("IMAGE_CAPTIONING", "true", "1", "yes") {
		add("IMAGE_CAPTIONING", "ragnode does not caption images (OCR with --ocr auto)")
	}
	for _, v := range []string{"PDFLOADER", "AUDIOLOADER"} {
		if is(v) {
			add(v, "ragnode parses with its own loaders; run another with --converter EXT=COMMAND")
		}
	}
	if is("RAY_ADDRESS") {
		add("RAY_ADDRESS", "ragnode has no Ray head: nodes join each other with --join")
	}
	return out
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
			if k := c.Int("top-k"); k < 1 || k > transport.MaxTopK {
				return fmt.Errorf("--top-k %d: want 1 to %d", k, transport.MaxTopK)
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
