package milvustest

import (
	"context"
	"encoding/binary"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/golang/protobuf/proto"
	"github.com/milvus-io/milvus-proto/go-api/v2/commonpb"
	"github.com/milvus-io/milvus-proto/go-api/v2/milvuspb"
	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

var bg = context.Background()

func newServer() *Server { return &Server{colls: map[string]*collection{}, nextID: 1000} }

func kvp(k, v string) *commonpb.KeyValuePair { return &commonpb.KeyValuePair{Key: k, Value: v} }

func vecField(name string, nullable bool) *schemapb.FieldSchema {
	return &schemapb.FieldSchema{Name: name, DataType: schemapb.DataType_FloatVector, Nullable: nullable, TypeParams: []*commonpb.KeyValuePair{kvp("dim", "2")}}
}

// createColl makes a collection with an INT64 key, a nullable dense field
// a, a TIMESTAMPTZ ts, and indexes its vectors.
func createColl(t *testing.T, s *Server, extra ...*schemapb.FieldSchema) {
	t.Helper()
	sch := &schemapb.CollectionSchema{Name: "c", Fields: append([]*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		vecField("a", true),
		{Name: "ts", DataType: schemapb.DataType_Timestamptz, Nullable: true},
	}, extra...)}
	b, _ := proto.Marshal(sch)
	if st, _ := s.CreateCollection(bg, &milvuspb.CreateCollectionRequest{CollectionName: "c", Schema: b}); st.ErrorCode != commonpb.ErrorCode_Success {
		t.Fatal(st.Reason)
	}
	for _, f := range sch.Fields {
		if f.DataType == schemapb.DataType_FloatVector {
			s.SetIndex("c", f.Name, f.Name, map[string]string{"index_type": "HNSW", "metric_type": "COSINE"})
		}
	}
}

func floats(vs ...float32) []float32 { return vs }

func vectorData(name string, dim int, valid []bool, vecs ...[]float32) *schemapb.FieldData {
	var d []float32
	for _, v := range vecs {
		d = append(d, v...)
	}
	return &schemapb.FieldData{Type: schemapb.DataType_FloatVector, FieldName: name, ValidData: valid,
		Field: &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: d}}}}}
}

func ids(v ...int64) *schemapb.FieldData {
	return &schemapb.FieldData{Type: schemapb.DataType_Int64, FieldName: "id",
		Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: v}}}}}
}

func strs(name string, typ schemapb.DataType, valid []bool, v ...string) *schemapb.FieldData {
	return &schemapb.FieldData{Type: typ, FieldName: name, ValidData: valid,
		Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: v}}}}}
}

func insert(t *testing.T, s *Server, n uint32, fds ...*schemapb.FieldData) *commonpb.Status {
	t.Helper()
	res, _ := s.Insert(bg, &milvuspb.InsertRequest{CollectionName: "c", NumRows: n, FieldsData: fds})
	return res.Status
}

func search(s *Server, field string, q []float32) (*milvuspb.SearchResults, error) {
	raw := make([]byte, 4*len(q))
	for i, f := range q {
		binary.LittleEndian.PutUint32(raw[4*i:], math.Float32bits(f))
	}
	phg, _ := proto.Marshal(&commonpb.PlaceholderGroup{Placeholders: []*commonpb.PlaceholderValue{{Tag: "$0", Type: commonpb.PlaceholderType_FloatVector, Values: [][]byte{raw}}}})
	return s.Search(bg, &milvuspb.SearchRequest{CollectionName: "c", SearchInput: &milvuspb.SearchRequest_PlaceholderGroup{PlaceholderGroup: phg},
		SearchParams: []*commonpb.KeyValuePair{kvp("anns_field", field), kvp("topk", "10"), kvp("metric_type", "COSINE"), kvp("params", `{"ef": 64}`)}})
}

func TestNullableVectorsAreSkippedBySearch(t *testing.T) {
	s := newServer()
	createColl(t, s)
	if st, _ := s.LoadCollection(bg, &milvuspb.LoadCollectionRequest{CollectionName: "c"}); st.ErrorCode != commonpb.ErrorCode_Success {
		t.Fatal(st.Reason)
	}
	// Row 1 has a vector, row 2 none (compacted data, ValidData marks it);
	// row 3 omits the field altogether, which reads as null too.
	if st := insert(t, s, 2, ids(1, 2), vectorData("a", 2, []bool{true, false}, floats(1, 0))); st.ErrorCode != commonpb.ErrorCode_Success {
		t.Fatal(st.Reason)
	}
	if st := insert(t, s, 1, ids(3)); st.ErrorCode != commonpb.ErrorCode_Success {
		t.Fatal(st.Reason)
	}
	res, err := search(s, "a", floats(1, 0))
	if err != nil || res.Status.ErrorCode != commonpb.ErrorCode_Success {
		t.Fatal(err, res.Status)
	}
	if got := res.Results.Ids.GetIntId().GetData(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("hits %v, want only the row with a vector", got)
	}
	// A non-nullable vector field takes no validity mask.
	s2 := newServer()
	sch := &schemapb.CollectionSchema{Name: "c", Fields: []*schemapb.FieldSchema{{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true}, vecField("v", false)}}
	b, _ := proto.Marshal(sch)
	s2.CreateCollection(bg, &milvuspb.CreateCollectionRequest{CollectionName: "c", Schema: b})
	if st := insert(t, s2, 2, ids(1, 2), vectorData("v", 2, []bool{true, false}, floats(1, 0))); st.ErrorCode == commonpb.ErrorCode_Success || !strings.Contains(st.Reason, "not nullable") {
		t.Fatalf("null in a non-nullable vector: %v", st)
	}
}

func TestAddedFieldIsSearchableOnlyAfterReload(t *testing.T) {
	s := newServer()
	createColl(t, s)
	s.LoadCollection(bg, &milvuspb.LoadCollectionRequest{CollectionName: "c"})
	add := func(f *schemapb.FieldSchema) *commonpb.Status {
		b, _ := proto.Marshal(f)
		st, _ := s.AddCollectionField(bg, &milvuspb.AddCollectionFieldRequest{CollectionName: "c", Schema: b})
		return st
	}
	if st := add(vecField("b", false)); st.ErrorCode == commonpb.ErrorCode_Success || !strings.Contains(st.Reason, "nullable") {
		t.Fatalf("non-nullable added field: %v", st)
	}
	if st := add(vecField("a", true)); st.ErrorCode == commonpb.ErrorCode_Success {
		t.Fatal("a field added twice")
	}
	if st := add(vecField("b", true)); st.ErrorCode != commonpb.ErrorCode_Success {
		t.Fatal(st.Reason)
	}
	s.SetIndex("c", "b", "b", map[string]string{"index_type": "HNSW", "metric_type": "COSINE"})
	if res, _ := search(s, "b", floats(0, 1)); res.Status.ErrorCode == commonpb.ErrorCode_Success {
		t.Fatal("search on a field added to a loaded collection before any reload")
	}
	// A plain load of a loaded collection, and a refresh of an empty one,
	// leave it unloaded.
	s.LoadCollection(bg, &milvuspb.LoadCollectionRequest{CollectionName: "c"})
	s.LoadCollection(bg, &milvuspb.LoadCollectionRequest{CollectionName: "c", Refresh: true})
	if res, _ := search(s, "b", floats(0, 1)); res.Status.ErrorCode == commonpb.ErrorCode_Success {
		t.Fatal("searchable after a load or a refresh of an empty collection")
	}
	insert(t, s, 1, ids(1), vectorData("a", 2, nil, floats(1, 0)))
	s.LoadCollection(bg, &milvuspb.LoadCollectionRequest{CollectionName: "c", Refresh: true})
	res, _ := search(s, "b", floats(0, 1))
	if res.Status.ErrorCode != commonpb.ErrorCode_Success || len(res.Results.Ids.GetIntId().GetData()) != 0 {
		t.Fatalf("after a refresh: %v (the row predating b has no vector in it)", res)
	}
	// Released and loaded: every field loaded.
	s2 := newServer()
	createColl(t, s2)
	s2.LoadCollection(bg, &milvuspb.LoadCollectionRequest{CollectionName: "c"})
	b, _ := proto.Marshal(vecField("b", true))
	s2.AddCollectionField(bg, &milvuspb.AddCollectionFieldRequest{CollectionName: "c", Schema: b})
	s2.SetIndex("c", "b", "b", map[string]string{"index_type": "HNSW", "metric_type": "COSINE"})
	s2.ReleaseCollection(bg, &milvuspb.ReleaseCollectionRequest{CollectionName: "c"})
	s2.LoadCollection(bg, &milvuspb.LoadCollectionRequest{CollectionName: "c"})
	if res, _ := search(s2, "b", floats(0, 1)); res.Status.ErrorCode != commonpb.ErrorCode_Success {
		t.Fatalf("after release and load: %v", res.Status)
	}
}

func TestVectorFieldCap(t *testing.T) {
	s := newServer()
	var extra []*schemapb.FieldSchema
	for i := 0; i < MaxVectorFields-1; i++ {
		extra = append(extra, vecField(string(rune('b'+i)), true))
	}
	createColl(t, s, extra...)
	b, _ := proto.Marshal(vecField("z", true))
	if st, _ := s.AddCollectionField(bg, &milvuspb.AddCollectionFieldRequest{CollectionName: "c", Schema: b}); st.ErrorCode == commonpb.ErrorCode_Success {
		t.Fatal("an eleventh vector field")
	}
	sch := &schemapb.CollectionSchema{Name: "d", Fields: []*schemapb.FieldSchema{
		{Name: "id", DataType: schemapb.DataType_Int64, IsPrimaryKey: true},
		{Name: "p", DataType: schemapb.DataType_VarChar, IsPartitionKey: true, Nullable: true, TypeParams: []*commonpb.KeyValuePair{kvp("max_length", "8")}},
		vecField("v", false),
	}}
	raw, _ := proto.Marshal(sch)
	if st, _ := s.CreateCollection(bg, &milvuspb.CreateCollectionRequest{CollectionName: "d", Schema: raw}); st.ErrorCode == commonpb.ErrorCode_Success {
		t.Fatal("a nullable partition key")
	}
}

func TestTimestamptzTakesISOStrings(t *testing.T) {
	s := newServer()
	createColl(t, s)
	ok := insert(t, s, 3, ids(1, 2, 3), vectorData("a", 2, nil, floats(1, 0), floats(0, 1), floats(1, 1)),
		strs("ts", schemapb.DataType_Timestamptz, []bool{true, true, false}, "2025-05-01T23:59:59+08:00", "2025-05-01 12:00:00"))
	if ok.ErrorCode != commonpb.ErrorCode_Success {
		t.Fatal(ok.Reason)
	}
	want := map[int64]any{
		1: time.Date(2025, 5, 1, 15, 59, 59, 0, time.UTC).UnixMicro(),
		2: time.Date(2025, 5, 1, 12, 0, 0, 0, time.UTC).UnixMicro(), // naive: the collection's timezone, UTC
		3: nil,
	}
	for _, r := range s.Rows("c") {
		if r["ts"] != want[r["id"].(int64)] {
			t.Errorf("row %v: ts %v, want %v", r["id"], r["ts"], want[r["id"].(int64)])
		}
	}
	micros := &schemapb.FieldData{Type: schemapb.DataType_Timestamptz, FieldName: "ts",
		Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_TimestamptzData{TimestamptzData: &schemapb.TimestamptzArray{Data: []int64{1}}}}}}
	for _, bad := range []*schemapb.FieldData{micros, strs("ts", schemapb.DataType_Timestamptz, nil, "2025-05-01T00:00:00+15:00"), strs("ts", schemapb.DataType_Timestamptz, nil, "May 1st")} {
		if st := insert(t, s, 1, ids(9), vectorData("a", 2, nil, floats(1, 0)), bad); st.ErrorCode == commonpb.ErrorCode_Success {
			t.Errorf("inserted %v", bad)
		}
	}
	if len(s.Rows("c")) != 3 {
		t.Error("a refused insert stored rows")
	}
}
