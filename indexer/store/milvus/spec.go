package milvus

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/milvus-io/milvus/client/v2/entity"
)

// CollectionSpec is the collection a profile creates and verifies, in the
// terms Milvus's DescribeCollection and DescribeIndex report, so an
// operator can diff it against a live collection.
type CollectionSpec struct {
	Profile            Profile           `json:"profile"`
	Collection         string            `json:"collection"`
	SchemaVersion      string            `json:"schema_version,omitempty"`
	Description        string            `json:"description,omitempty"`
	AutoID             bool              `json:"auto_id"`
	EnableDynamicField bool              `json:"enable_dynamic_field"`
	ConsistencyLevel   string            `json:"consistency_level"`
	Fields             []FieldSpec       `json:"fields"`
	Functions          []FunctionSpec    `json:"functions"`
	Indexes            []IndexSpec       `json:"indexes"`
	Properties         map[string]string `json:"properties"`
	Search             SearchSpec        `json:"search"`
}

// FieldSpec is one field with its type parameters, typed (dim and
// max_length as numbers, analyzer_params as an object).
type FieldSpec struct {
	Name           string         `json:"name"`
	Type           string         `json:"type"`
	PrimaryKey     bool           `json:"primary_key,omitempty"`
	AutoID         bool           `json:"auto_id,omitempty"`
	PartitionKey   bool           `json:"partition_key,omitempty"`
	Nullable       bool           `json:"nullable,omitempty"`
	FunctionOutput bool           `json:"function_output,omitempty"`
	Params         map[string]any `json:"params,omitempty"`
}

// FunctionSpec is one schema function.
type FunctionSpec struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"`
	InputFields  []string `json:"input_field_names"`
	OutputFields []string `json:"output_field_names"`
}

// IndexSpec is one index: type, metric and the other build parameters.
type IndexSpec struct {
	Field      string         `json:"field_name"`
	Name       string         `json:"index_name,omitempty"`
	IndexType  string         `json:"index_type"`
	MetricType string         `json:"metric_type,omitempty"`
	Params     map[string]any `json:"params,omitempty"`
}

// SearchSpec is how the store searches the collection.
type SearchSpec struct {
	DenseField string         `json:"dense_field"`
	Dense      map[string]any `json:"dense"`
	BM25       map[string]any `json:"bm25,omitempty"`
	Ranker     map[string]any `json:"ranker,omitempty"`
}

// Spec describes the collection the profile creates for a collection name,
// a dimension and (openrag only) an embedder's dense field; rrfk is the
// hybrid fusion constant (0: store.DefaultRRFK).
func Spec(p Profile, coll string, dim int, vectorField string, rrfk int) (CollectionSpec, error) {
	if err := p.Valid(); err != nil {
		return CollectionSpec{}, err
	}
	if coll == "" {
		coll = p.DefaultCollection()
	}
	vfield, err := p.vectorField(vectorField)
	if err != nil {
		return CollectionSpec{}, err
	}
	if rrfk <= 0 {
		rrfk = 100
	}
	ps := p.schema(coll, dim, vfield)
	out := CollectionSpec{
		Profile: p, Collection: coll, SchemaVersion: p.SchemaVersion(), Description: ps.schema.Description,
		AutoID: ps.schema.AutoID, EnableDynamicField: ps.schema.EnableDynamicField,
		ConsistencyLevel: consistencyName(ps.consistency), Properties: map[string]string{},
		Fields: []FieldSpec{}, Functions: []FunctionSpec{}, Indexes: []IndexSpec{},
	}
	outputs := map[string]bool{}
	for _, fn := range ps.schema.Functions {
		out.Functions = append(out.Functions, FunctionSpec{Name: fn.Name, Type: fn.Type.String(), InputFields: fn.InputFieldNames, OutputFields: fn.OutputFieldNames})
		for _, o := range fn.OutputFieldNames {
			outputs[o] = true
		}
	}
	for _, f := range ps.schema.Fields {
		fs := FieldSpec{Name: f.Name, Type: typeName(f.DataType), PrimaryKey: f.PrimaryKey, AutoID: f.AutoID,
			PartitionKey: f.IsPartitionKey, Nullable: f.Nullable, FunctionOutput: outputs[f.Name]}
		if len(f.TypeParams) > 0 {
			fs.Params = map[string]any{}
			for k, v := range f.TypeParams {
				tv, err := typedParam(k, v)
				if err != nil {
					return CollectionSpec{}, fmt.Errorf("field %s: %w", f.Name, err)
				}
				fs.Params[k] = tv
			}
		}
		out.Fields = append(out.Fields, fs)
	}
	for _, ix := range ps.indexes {
		name := ix.name
		if name == "" {
			name = ix.field
		}
		is := IndexSpec{Field: ix.field, Name: name, IndexType: ix.indexType, MetricType: ix.metric}
		if len(ix.params) > 0 {
			is.Params = map[string]any{}
			for k, v := range ix.params {
				is.Params[k] = v
			}
		}
		out.Indexes = append(out.Indexes, is)
	}
	for k, v := range ps.properties {
		out.Properties[k] = v
	}
	if p.upstream() {
		out.Search = SearchSpec{
			DenseField: vfield,
			Dense:      map[string]any{"metric_type": "COSINE", "params": map[string]any{"ef": denseEF}},
			BM25:       map[string]any{"anns_field": fSparse, "metric_type": "BM25", "params": map[string]any{"drop_ratio_build": dropRatioBuild}},
			Ranker:     map[string]any{"type": "rrf", "k": rrfk},
		}
	} else {
		out.Search = SearchSpec{DenseField: fVector, Dense: map[string]any{"metric_type": "COSINE", "params": map[string]any{"ef": denseEF}}}
	}
	return out, nil
}

// vectorField resolves the dense field a profile writes: an embedder's own
// in the openrag profile (LegacyVectorField when none is configured, as
// upstream's resolve_vector_field(None)), LegacyVectorField elsewhere.
func (p Profile) vectorField(name string) (string, error) {
	if name == "" {
		return LegacyVectorField, nil
	}
	if p != ProfileOpenRAG {
		if name == LegacyVectorField {
			return name, nil
		}
		return "", fmt.Errorf("milvus: a dense field per embedder (%q) exists from OpenRAG schema version %s on; --vdb-schema %s has only %q", name, OpenRAGSchemaVersion, p, LegacyVectorField)
	}
	if name != LegacyVectorField && (!strings.HasPrefix(name, vectorFieldPrefix) || !identifier.MatchString(name) || len(name) > 255) {
		// What upstream's allocate_vector_field_name can produce; anything
		// else is not a model_endpoints.vector_field (a model name, say).
		return "", fmt.Errorf("milvus: vector field %q is not an OpenRAG dense field name: want %q or %q followed by letters, digits and underscores, at most 255 (model_endpoints.vector_field of the embedder)", name, LegacyVectorField, vectorFieldPrefix)
	}
	return name, nil
}

// typedParam turns a type parameter (a string on the wire) into the value
// pymilvus's add_field takes.
func typedParam(k, v string) (any, error) {
	switch k {
	case entity.TypeParamDim, entity.TypeParamMaxLength:
		return strconv.Atoi(v)
	case "enable_analyzer", "enable_match":
		return strconv.ParseBool(v)
	case "analyzer_params":
		var m any
		err := json.Unmarshal([]byte(v), &m)
		return m, err
	}
	return v, nil
}

func consistencyName(c entity.ConsistencyLevel) string {
	switch c {
	case entity.ClStrong:
		return "Strong"
	case entity.ClBounded:
		return "Bounded"
	case entity.ClSession:
		return "Session"
	case entity.ClEventually:
		return "Eventually"
	}
	return fmt.Sprint(int(c))
}
