package milvus

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"

	"github.com/ragnode/ragnode/indexer/store/milvustest"
)

// normalJSON round-trips v through JSON so numbers, maps and slices
// compare by value whatever Go types built them.
func normalJSON(t *testing.T, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestSpecMatchesUpstreamFixtures: the collection each OpenRAG profile
// describes is, field for field, parameter for parameter, the one the
// fixtures in testdata (written by hand from upstream's
// openrag/services/storage/milvus_store.py _create_schema/_create_index
// and its migrations; see testdata/README.md) say OpenRAG creates.
func TestSpecMatchesUpstreamFixtures(t *testing.T) {
	cases := []struct {
		file   string
		prof   Profile
		vfield string
	}{
		{"openrag_schema3.json", ProfileOpenRAG, "vector_bge_m3"},
		{"openrag_schema1.json", ProfileOpenRAGv1, ""},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", c.file))
			if err != nil {
				t.Fatal(err)
			}
			var want any
			if err := json.Unmarshal(raw, &want); err != nil {
				t.Fatal(err)
			}
			sp, err := Spec(c.prof, "", 1024, c.vfield, 0)
			if err != nil {
				t.Fatal(err)
			}
			if got := normalJSON(t, sp); !reflect.DeepEqual(got, want) {
				gb, _ := json.MarshalIndent(got, "", "  ")
				t.Fatalf("spec differs from %s:\n%s", c.file, gb)
			}
		})
	}
}

// standInSpec describes a collection as the stand-in holds it, in Spec's
// terms: what a live Milvus's DescribeCollection and DescribeIndex say.
func standInSpec(t *testing.T, srv *milvustest.Server, coll string) (fields []FieldSpec, indexes map[string]IndexSpec, version string) {
	t.Helper()
	sch := srv.Schema(coll)
	outputs := map[string]bool{}
	for _, fn := range sch.Functions {
		for _, o := range fn.OutputFieldNames {
			outputs[o] = true
		}
	}
	indexes = map[string]IndexSpec{}
	for _, f := range sch.Fields {
		if f.IsDynamic {
			continue // Milvus's own $meta
		}
		fs := FieldSpec{Name: f.Name, Type: f.DataType.String(), PrimaryKey: f.IsPrimaryKey, AutoID: f.AutoID,
			PartitionKey: f.IsPartitionKey, Nullable: f.Nullable, FunctionOutput: outputs[f.Name]}
		for _, kv := range f.TypeParams {
			if fs.Params == nil {
				fs.Params = map[string]any{}
			}
			v, err := typedParam(kv.Key, kv.Value)
			if err != nil {
				t.Fatal(err)
			}
			fs.Params[kv.Key] = v
		}
		fields = append(fields, fs)
		if ix := srv.Index(coll, f.Name); ix != nil {
			is := IndexSpec{Field: f.Name, Name: srv.IndexName(coll, f.Name), IndexType: ix["index_type"], MetricType: ix["metric_type"]}
			for k, v := range ix {
				if k == "index_type" || k == "metric_type" {
					continue
				}
				if is.Params == nil {
					is.Params = map[string]any{}
				}
				if n, err := strconv.ParseFloat(v, 64); err == nil {
					is.Params[k] = n
				} else {
					is.Params[k] = v
				}
			}
			indexes[f.Name] = is
		}
	}
	return fields, indexes, srv.Property(coll, SchemaVersionProperty)
}

// TestSpecIsWhatOpenCreates: what `vdb schema` prints is what Open
// creates, checked on the collection as the server holds it.
func TestSpecIsWhatOpenCreates(t *testing.T) {
	for _, p := range []Profile{ProfileOpenRAG, ProfileOpenRAGv1, ProfileRagondin} {
		t.Run(string(p), func(t *testing.T) {
			addr, srv := milvustest.Start(t)
			vfield := ""
			if p == ProfileOpenRAG {
				vfield = "vector_e5_large"
			}
			s, err := Open(ctx, Config{Address: addr, Dim: dim, Schema: p, VectorField: vfield})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			sp, err := Spec(p, "", dim, vfield, 0)
			if err != nil {
				t.Fatal(err)
			}
			fields, indexes, version := standInSpec(t, srv, sp.Collection)
			if got, want := normalJSON(t, fields), normalJSON(t, sp.Fields); !reflect.DeepEqual(got, want) {
				t.Errorf("fields created:\n%v\nspec:\n%v", got, want)
			}
			if len(indexes) != len(sp.Indexes) {
				t.Errorf("%d indexes created, spec has %d", len(indexes), len(sp.Indexes))
			}
			for _, want := range sp.Indexes {
				if got := indexes[want.Field]; !reflect.DeepEqual(normalJSON(t, got), normalJSON(t, want)) {
					t.Errorf("index on %s: created %+v, spec %+v", want.Field, got, want)
				}
			}
			if version != sp.Properties[SchemaVersionProperty] {
				t.Errorf("schema version %q, spec %q", version, sp.Properties[SchemaVersionProperty])
			}
			sch := srv.Schema(sp.Collection)
			if sch.AutoID != sp.AutoID || sch.EnableDynamicField != sp.EnableDynamicField || len(sch.Functions) != len(sp.Functions) ||
				sch.Functions[0].Type != schemapb.FunctionType_BM25 {
				t.Errorf("collection %+v, spec %+v", sch, sp)
			}
		})
	}
}

func TestSpecRefusesWhatOpenRAGCannotName(t *testing.T) {
	for _, c := range []struct {
		prof   Profile
		vfield string
	}{
		{ProfileOpenRAG, "bge-m3"},          // a model name, not a field
		{ProfileOpenRAG, "vector_a b"},      // not an identifier
		{ProfileOpenRAGv1, "vector_bge_m3"}, // per-embedder fields are schema 3
		{ProfileRagondin, "vector_bge_m3"},
		{"openrag-v2", ""},
	} {
		if _, err := Spec(c.prof, "", 8, c.vfield, 0); err == nil {
			t.Errorf("%s %q accepted", c.prof, c.vfield)
		}
		if _, err := Open(ctx, Config{Address: "127.0.0.1:1", Dim: 8, Schema: c.prof, VectorField: c.vfield}); err == nil {
			t.Errorf("Open %s %q accepted", c.prof, c.vfield)
		}
	}
}
