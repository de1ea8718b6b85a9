package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fixture reads a collection OpenRAG creates, written by hand from its
// code (indexer/store/milvus/testdata/README.md says from which).
func fixture(t *testing.T, name string) any {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "indexer", "store", "milvus", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestVDBSchemaPrintsUpstreamCollection: `vdb schema -o json` prints the
// collection exactly as OpenRAG's own _create_schema/_create_index make
// it (upstream openrag/services/storage/milvus_store.py), from flags or
// from the variables a .env sets.
func TestVDBSchemaPrintsUpstreamCollection(t *testing.T) {
	clearEnv(t)
	out, errOut, code := run(t, "vdb", "schema", "--vdb-schema", "openrag", "--embedder-dim", "1024", "--vdb-vector-field", "vector_bge_m3", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	var got any
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, out)
	}
	if want := fixture(t, "openrag_schema3.json"); !reflect.DeepEqual(got, want) {
		t.Fatalf("vdb schema differs from upstream's schema 3:\n%s", out)
	}
	if !strings.Contains(out, `"<image_description>"`) {
		t.Error("stop words are escaped, not printed as they are")
	}

	t.Setenv("RAGNODE_VDB_SCHEMA", "openrag-v1")
	t.Setenv("RAGNODE_EMBEDDER_DIM", "1024")
	out, errOut, code = run(t, "vdb", "schema", "-o", "json")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	got = nil
	if err := json.Unmarshal([]byte(out), &got); err != nil {
		t.Fatal(err)
	}
	if want := fixture(t, "openrag_schema1.json"); !reflect.DeepEqual(got, want) {
		t.Fatalf("vdb schema differs from upstream's schema 1:\n%s", out)
	}
	t.Setenv("VDB_COLLECTION_NAME", "docs")
	out, _, _ = run(t, "vdb", "schema", "-o", "json")
	if !strings.Contains(out, `"collection": "docs"`) {
		t.Errorf("VDB_COLLECTION_NAME not applied:\n%s", out)
	}
	out, _, code = run(t, "vdb", "schema")
	if code != 0 || !strings.Contains(out, "created_at_idx") || !strings.Contains(out, "OpenRAG schema version 1") {
		t.Errorf("table output:\n%s", out)
	}
}

func TestVDBSchemaRefusals(t *testing.T) {
	clearEnv(t)
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--vdb-schema", "openrag", "--vdb-vector-field", "bge-m3"}, "not an OpenRAG dense field name"},
		{[]string{"--vdb-schema", "ragondin", "--vdb-vector-field", "vector_bge_m3"}, "schema version 3"},
		{[]string{"--vdb-schema", "openrag2"}, "want one of ragnode, openrag, openrag-v1, ragondin"},
		{[]string{"--embedder-url", "http://e:8000"}, "--embedder-dim is needed"},
		{[]string{"-o", "yaml"}, "want table or json"},
	} {
		_, errOut, code := run(t, append([]string{"vdb", "schema"}, c.args...)...)
		if code != 1 || strings.Count(strings.TrimSpace(errOut), "\n") != 0 || !strings.Contains(errOut, c.says) {
			t.Errorf("%v: exit %d, stderr %q, want one line saying %q", c.args, code, errOut, c.says)
		}
	}
}
