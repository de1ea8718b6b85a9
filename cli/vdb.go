package cli

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/urfave/cli/v2"

	"github.com/ragnode/ragnode/indexer/store/milvus"
)

// vdbCommand groups what concerns the Milvus collection itself.
func vdbCommand() *cli.Command {
	return &cli.Command{
		Name:  "vdb",
		Usage: "the Milvus collection ragnode writes",
		Subcommands: []*cli.Command{{
			Name:  "schema",
			Usage: "print the collection a node creates and verifies with these settings (fields, analyzer, functions, indexes, properties, search parameters); -o json to diff against a live one",
			// The same flags and variables as start, so a .env prints what
			// a node started with it would create.
			Flags: []cli.Flag{
				&cli.StringFlag{Name: "vdb-schema", Value: "ragnode", Usage: "collection layout: " + profileNames(), EnvVars: envs("VDB_SCHEMA")},
				&cli.StringFlag{Name: "collection", Usage: "collection name (default: the profile's)", EnvVars: envs("COLLECTION", "VDB_COLLECTION_NAME")},
				&cli.IntFlag{Name: "embedder-dim", Usage: "vector dimension (default 384, the built-in embedder's; required with --embedder-url)", EnvVars: envs("EMBEDDER_DIM")},
				&cli.StringFlag{Name: "embedder-url", Hidden: true, EnvVars: envs("EMBEDDER_URL", "EMBEDDER_BASE_URL")},
				&cli.StringFlag{Name: "vdb-vector-field", Usage: "with --vdb-schema openrag: the embedder's dense field (OpenRAG's model_endpoints.vector_field; empty: vector)", EnvVars: envs("VDB_VECTOR_FIELD")},
				&cli.IntFlag{Name: "rrf-k", Value: 100, Usage: "reciprocal rank fusion constant of hybrid search", EnvVars: envs("RRF_K")},
				&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "table", Usage: "table or json"},
			},
			Action: vdbSchema,
		}},
	}
}

func vdbSchema(c *cli.Context) error {
	if o := c.String("output"); o != "table" && o != "json" {
		return fmt.Errorf("-o %q: want table or json", o)
	}
	prof := milvus.Profile(c.String("vdb-schema"))
	if err := prof.Valid(); err != nil {
		return fmt.Errorf("--vdb-schema %q: want one of %s", prof, profileNames())
	}
	dim := c.Int("embedder-dim")
	switch {
	case dim < 0:
		return fmt.Errorf("--embedder-dim must be positive, got %d", dim)
	case dim == 0 && c.String("embedder-url") != "":
		return fmt.Errorf("--embedder-dim is needed: the collection's dense field is sized by the embedder at --embedder-url")
	case dim == 0:
		dim = 384
	}
	spec, err := milvus.Spec(prof, c.String("collection"), dim, c.String("vdb-vector-field"), c.Int("rrf-k"))
	if err != nil {
		return err
	}
	if jsonOut(c) {
		// Analyzer stop words hold < and >: printed as they are, so the
		// output diffs cleanly against other tools' JSON.
		enc := json.NewEncoder(c.App.Writer)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "  ")
		return enc.Encode(spec)
	}
	w := c.App.Writer
	fmt.Fprintf(w, "collection %s, profile %s", spec.Collection, spec.Profile)
	if spec.SchemaVersion != "" {
		fmt.Fprintf(w, ", OpenRAG schema version %s", spec.SchemaVersion)
	}
	fmt.Fprintf(w, "; auto ID %v, dynamic field %v, consistency %s\n\n", spec.AutoID, spec.EnableDynamicField, spec.ConsistencyLevel)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FIELD\tTYPE\tATTRIBUTES\tPARAMS")
	for _, f := range spec.Fields {
		var attrs []string
		for _, a := range []struct {
			on   bool
			name string
		}{{f.PrimaryKey, "primary key"}, {f.AutoID, "auto ID"}, {f.PartitionKey, "partition key"}, {f.Nullable, "nullable"}, {f.FunctionOutput, "function output"}} {
			if a.on {
				attrs = append(attrs, a.name)
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", f.Name, f.Type, strings.Join(attrs, ", "), compactJSON(f.Params))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "INDEX\tFIELD\tTYPE\tMETRIC\tPARAMS")
	for _, ix := range spec.Indexes {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", ix.Name, ix.Field, ix.IndexType, ix.MetricType, compactJSON(ix.Params))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, fn := range spec.Functions {
		fmt.Fprintf(w, "\nfunction %s: %s(%s) -> %s\n", fn.Name, fn.Type, strings.Join(fn.InputFields, ", "), strings.Join(fn.OutputFields, ", "))
	}
	keys := make([]string, 0, len(spec.Properties))
	for k := range spec.Properties {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		fmt.Fprintf(w, "property %s = %s\n", k, spec.Properties[k])
	}
	fmt.Fprintf(w, "search: dense on %s %s", spec.Search.DenseField, compactJSON(spec.Search.Dense))
	if spec.Search.BM25 != nil {
		fmt.Fprintf(w, ", bm25 %s, ranker %s", compactJSON(spec.Search.BM25), compactJSON(spec.Search.Ranker))
	}
	fmt.Fprintln(w)
	return nil
}

func compactJSON(v map[string]any) string {
	if len(v) == 0 {
		return ""
	}
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
	return strings.TrimSpace(b.String())
}
