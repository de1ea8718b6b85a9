package cli

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/node"
)

// upstreamVars are the RAGondin/OpenRAG variables these tests set.
var upstreamVars = []string{
	"VDB_HOST", "VDB_PORT", "VDB_iPORT", "VDB_COLLECTION_NAME", "VDB_HYBRID_SEARCH", "VDB_ENABLE_INSERTION",
	"VDB_CONNECTOR_NAME", "VDB_TIMEOUT", "CHUNK_SIZE", "CHUNK_OVERLAP", "CHUNK_OVERLAP_RATE", "CHUNKER",
	"CONTEXTUAL_RETRIEVAL", "EMBEDDER_BASE_URL", "EMBEDDER_MODEL_NAME", "EMBEDDER_API_KEY", "EMBEDDER_BATCH_SIZE",
	"EMBEDDER_CONCURRENCY", "EMBEDDER_TIMEOUT", "MAX_MODEL_LEN", "IMAGE_CAPTIONING", "PDFLOADER", "AUDIOLOADER",
	"RAY_ADDRESS", "RAGNODE_VDB", "RAGNODE_VDB_SCHEMA", "RAGNODE_VDB_VECTOR_FIELD", "RAGNODE_EMBEDDER_DIM",
	"RAGNODE_COLLECTION", "RAGNODE_VDB_ADDR", "RAGNODE_CHUNK_SIZE", "RAGNODE_CHUNK_OVERLAP", "RAGNODE_ENV_FILE",
}

// clearEnv unsets every variable the tests read, restoring them after.
func clearEnv(t *testing.T) {
	t.Helper()
	for _, k := range upstreamVars {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

// indexerConfig runs the indexer flags over args and the environment as
// start does, returning the configuration and the warnings logged.
func indexerConfig(t *testing.T, args ...string) (node.IndexerConfig, string, error) {
	t.Helper()
	var cfg node.Config
	var logs bytes.Buffer
	app := &cli.App{Name: "ragnode", Writer: &logs, ErrWriter: &logs, Commands: []*cli.Command{{
		Name: "start", Flags: indexerFlags(),
		Action: func(c *cli.Context) error {
			cfg.Logger = hclog.New(&hclog.LoggerOptions{Output: &logs, Level: hclog.Warn})
			return applyIndexerFlags(c, &cfg)
		},
	}}}
	err := app.Run(append([]string{"ragnode", "start"}, args...))
	return cfg.Indexer, logs.String(), err
}

// TestEnvSelectsAndConfiguresMilvus: a RAGondin/OpenRAG .env's VDB_HOST,
// VDB_PORT (or upstream's VDB_iPORT) and VDB_COLLECTION_NAME select and
// configure Milvus, read through the real .env loading.
func TestEnvSelectsAndConfiguresMilvus(t *testing.T) {
	clearEnv(t)
	dir := t.TempDir()
	env := filepath.Join(dir, ".env")
	if err := os.WriteFile(env, []byte("VDB_HOST=milvus.internal\nVDB_PORT=19531\nVDB_COLLECTION_NAME=docs\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loadDotEnv([]string{"ragnode", "start", "--env-file", env})
	ic, logs, err := indexerConfig(t, "--vdb-schema", "openrag")
	if err != nil {
		t.Fatal(err)
	}
	if ic.VDB != "milvus" || ic.VDBAddr != "milvus.internal:19531" || ic.Collection != "docs" || ic.VDBSchema != "openrag" {
		t.Fatalf("config %+v", ic)
	}
	if strings.Contains(logs, "not honoured") {
		t.Errorf("warnings for honoured settings: %s", logs)
	}

	os.Unsetenv("VDB_PORT")
	t.Setenv("VDB_iPORT", "19532")
	os.Unsetenv("VDB_COLLECTION_NAME")
	if ic, _, err := indexerConfig(t, "--vdb-schema", "openrag"); err != nil || ic.VDBAddr != "milvus.internal:19532" || ic.Collection != "vdb_test" {
		t.Fatalf("VDB_iPORT: %+v %v", ic, err)
	}
	os.Unsetenv("VDB_iPORT")
	if ic, _, err := indexerConfig(t); err != nil || ic.VDBAddr != "milvus.internal:19530" || ic.VDB != "milvus" {
		t.Fatalf("default port: %+v %v", ic, err)
	}
	// --vdb local is obeyed, and the ignored VDB_HOST named.
	ic, logs, err = indexerConfig(t, "--vdb", "local")
	if err != nil || ic.VDB != "local" || !strings.Contains(logs, "variable=VDB_HOST") {
		t.Fatalf("--vdb local with VDB_HOST: %+v %v %s", ic, err, logs)
	}
	// Without VDB_HOST the local store stays the default.
	os.Unsetenv("VDB_HOST")
	if ic, _, err := indexerConfig(t); err != nil || ic.VDB != "local" {
		t.Fatalf("no VDB_HOST: %+v %v", ic, err)
	}
	if ic, _, err := indexerConfig(t, "--vdb-addr", "m:1"); err != nil || ic.VDB != "milvus" || ic.VDBAddr != "m:1" {
		t.Fatalf("--vdb-addr: %+v %v", ic, err)
	}
}

func TestEnvChunker(t *testing.T) {
	clearEnv(t)
	t.Setenv("CHUNK_SIZE", "800")
	t.Setenv("CHUNK_OVERLAP", "120")
	if ic, _, err := indexerConfig(t); err != nil || ic.ChunkSize != 800 || ic.ChunkOverlap != 120 {
		t.Fatalf("CHUNK_SIZE/CHUNK_OVERLAP: %+v %v", ic, err)
	}
	// OpenRAG's rate, when no overlap is given.
	os.Unsetenv("CHUNK_OVERLAP")
	t.Setenv("CHUNK_OVERLAP_RATE", "0.25")
	if ic, _, err := indexerConfig(t); err != nil || ic.ChunkOverlap != 200 {
		t.Fatalf("CHUNK_OVERLAP_RATE: %+v %v", ic, err)
	}
	if ic, _, err := indexerConfig(t, "--chunk-overlap", "10"); err != nil || ic.ChunkOverlap != 10 {
		t.Fatalf("--chunk-overlap over the rate: %+v %v", ic, err)
	}
	t.Setenv("CHUNK_OVERLAP_RATE", "1.5")
	if _, _, err := indexerConfig(t); err == nil || !strings.Contains(err.Error(), "CHUNK_OVERLAP_RATE") {
		t.Fatalf("rate 1.5: %v", err)
	}
}

func TestEnvEmbedder(t *testing.T) {
	clearEnv(t)
	for k, v := range map[string]string{
		"EMBEDDER_BASE_URL": "http://vllm:8000/v1", "EMBEDDER_MODEL_NAME": "BAAI/bge-m3", "EMBEDDER_API_KEY": "EMPTY",
		"EMBEDDER_BATCH_SIZE": "16", "EMBEDDER_CONCURRENCY": "8", "EMBEDDER_TIMEOUT": "2.5",
	} {
		t.Setenv(k, v)
	}
	ic, logs, err := indexerConfig(t)
	if err != nil {
		t.Fatal(err)
	}
	if ic.EmbedderURL != "http://vllm:8000/v1" || ic.EmbedderModel != "BAAI/bge-m3" || ic.EmbedderKey != "EMPTY" ||
		ic.EmbedBatch != 16 || ic.EmbedConcurrency != 8 || ic.EmbedderTimeout != 2500*time.Millisecond {
		t.Fatalf("embedder %+v", ic)
	}
	if strings.Contains(logs, "not honoured") {
		t.Errorf("warnings: %s", logs)
	}
	t.Setenv("EMBEDDER_TIMEOUT", "soon")
	if _, _, err := indexerConfig(t); err == nil || !strings.Contains(err.Error(), "embedder-timeout") {
		t.Fatalf("bad timeout: %v", err)
	}
	if ic, _, err := indexerConfig(t, "--embedder-timeout", "90s"); err != nil || ic.EmbedderTimeout != 90*time.Second {
		t.Fatalf("--embedder-timeout: %+v %v", ic, err)
	}
}

func TestEnvVectorField(t *testing.T) {
	clearEnv(t)
	t.Setenv("RAGNODE_VDB_VECTOR_FIELD", "vector_bge_m3")
	if ic, _, err := indexerConfig(t, "--vdb-schema", "openrag"); err != nil || ic.VDBVectorField != "vector_bge_m3" {
		t.Fatalf("%+v %v", ic, err)
	}
	if _, _, err := indexerConfig(t, "--vdb-schema", "ragondin"); err == nil || !strings.Contains(err.Error(), "vdb-vector-field") {
		t.Fatalf("a per-embedder field with ragondin: %v", err)
	}
}

// TestEnvUnhonouredNamed: each variable asking for what ragnode does not
// do is named in a warning; the same variables at values ragnode matches
// are not.
func TestEnvUnhonouredNamed(t *testing.T) {
	clearEnv(t)
	bad := map[string]string{
		"VDB_HYBRID_SEARCH": "false", "VDB_ENABLE_INSERTION": "False", "VDB_CONNECTOR_NAME": "qdrant", "VDB_TIMEOUT": "30",
		"MAX_MODEL_LEN": "8192", "EMBEDDER_MODEL_NAME": "BAAI/bge-m3", "CHUNKER": "semantic_splitter",
		"CONTEXTUAL_RETRIEVAL": "true", "IMAGE_CAPTIONING": "true", "PDFLOADER": "MarkerLoader", "AUDIOLOADER": "LocalWhisperLoader",
		"RAY_ADDRESS": "ray://head:10001",
	}
	for k, v := range bad {
		t.Setenv(k, v)
	}
	_, logs, err := indexerConfig(t)
	if err != nil {
		t.Fatal(err)
	}
	for k := range bad {
		if !strings.Contains(logs, "variable="+k+" ") {
			t.Errorf("%s=%s not named in the warnings:\n%s", k, bad[k], logs)
		}
	}
	clearEnv(t)
	for k, v := range map[string]string{
		"VDB_HYBRID_SEARCH": "true", "VDB_ENABLE_INSERTION": "true", "VDB_CONNECTOR_NAME": "milvus",
		"CHUNKER": "recursive_splitter", "CONTEXTUAL_RETRIEVAL": "false", "IMAGE_CAPTIONING": "false",
		"EMBEDDER_MODEL_NAME": "BAAI/bge-m3", "EMBEDDER_BASE_URL": "http://vllm:8000/v1",
	} {
		t.Setenv(k, v)
	}
	if _, logs, err := indexerConfig(t); err != nil || strings.Contains(logs, "not honoured") {
		t.Fatalf("warnings for settings ragnode matches: %v\n%s", err, logs)
	}
}
