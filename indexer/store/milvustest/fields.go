package milvustest

import (
	"context"
	"encoding/json"
	"strconv"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// AddCollectionField adds a field to a live collection
// (https://milvus.io/docs/add-fields-to-an-existing-collection.md): it must
// be nullable, since the rows already there have no value for it, and they
// read as null. Milvus 3.0 adds vector fields too, nullable ones
// (https://milvus.io/api-reference/go/v3.0.x/Collection/AddCollectionField.md:
// "Vector fields must be nullable"), up to MaxVectorFields. On a loaded collection the field stays unloaded, and
// unsearchable, until a refresh or a reload (see LoadCollection).
func (s *Server) AddCollectionField(ctx context.Context, req *milvuspb.AddCollectionFieldRequest) (*commonpb.Status, error) {
	var f schemapb.FieldSchema
	if err := proto.Unmarshal(req.Schema, &f); err != nil {
		return failf("bad field schema: %v", err), nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return st, nil
	}
	switch {
	case c.fields[f.Name] != nil:
		return failf("field %s already exists", f.Name), nil
	case !f.Nullable:
		return failf("added field must be nullable, please check it, field name = %s", f.Name), nil
	case f.IsPrimaryKey || f.IsPartitionKey:
		return failf("not support to add pk or partition key field, field name = %s", f.Name), nil
	case isVector(f.DataType) && vectorFields(c.schema.Fields) >= MaxVectorFields:
		return failf("maximum vector field's number should be limited to %d", MaxVectorFields), nil
	}
	if f.DataType == schemapb.DataType_FloatVector {
		if d, err := strconv.Atoi(typeParam(&f, "dim")); err != nil || d <= 0 {
			return failf("field %s: bad dim", f.Name), nil
		}
	}
	f.FieldID = int64(100 + len(c.schema.Fields))
	for _, g := range c.schema.Fields {
		if g.FieldID >= f.FieldID {
			f.FieldID = g.FieldID + 1
		}
	}
	c.schema.Fields = append(c.schema.Fields, &f)
	c.fields[f.Name] = &f
	for _, r := range c.rows {
		r[f.Name] = nil
	}
	if c.loaded {
		c.unloaded[f.Name] = true
	}
	return ok(), nil
}

// ReleaseCollection unloads a collection; reads fail until it is loaded
// again (https://milvus.io/docs/load-and-release.md).
func (s *Server) ReleaseCollection(ctx context.Context, req *milvuspb.ReleaseCollectionRequest) (*commonpb.Status, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, st := s.coll(req.CollectionName)
	if st != nil {
		return st, nil
	}
	c.loaded = false
	return ok(), nil
}

// SearchCall is one search request as received: the field searched, its
// metric, limit and "params" object; for a hybrid search's sub-requests,
// the ranker's strategy and params too.
type SearchCall struct {
	Hybrid     bool
	AnnsField  string
	Metric     string
	TopK       int
	Params     map[string]any
	Ranker     string
	RankParams map[string]any
}

func searchCall(sp []*commonpb.KeyValuePair) SearchCall {
	c := SearchCall{AnnsField: kv(sp, "anns_field"), Metric: kv(sp, "metric_type")}
	c.TopK, _ = strconv.Atoi(kv(sp, "topk"))
	_ = json.Unmarshal([]byte(kv(sp, "params")), &c.Params)
	return c
}

// Searches returns every search served (each hybrid sub-request as one
// call), in order.
func (s *Server) Searches() []SearchCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SearchCall(nil), s.searches...)
}
