package milvustest

import (
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
)

// decodeColumn turns a column of n rows into values. A nullable column
// comes compacted (values only for valid rows) with ValidData marking
// which rows have one; a missing row's value is nil.
func decodeColumn(fd *schemapb.FieldData, f *schemapb.FieldSchema, n int) ([]any, error) {
	var out []any
	sc := fd.GetScalars()
	switch f.DataType {
	case schemapb.DataType_VarChar, schemapb.DataType_String:
		maxLen, _ := strconv.Atoi(typeParam(f, "max_length"))
		for _, v := range sc.GetStringData().GetData() {
			if maxLen > 0 && len(v) > maxLen {
				return nil, fmt.Errorf("length %d exceeds max length %d", len(v), maxLen)
			}
			out = append(out, v)
		}
	case schemapb.DataType_Int64:
		for _, v := range sc.GetLongData().GetData() {
			out = append(out, v)
		}
	case schemapb.DataType_Timestamptz:
		// Milvus's proxy takes TIMESTAMPTZ values as ISO 8601 strings and
		// stores UTC microseconds (https://milvus.io/docs/timestamptz-field.md:
		// "Accepted input format: ISO 8601 strings with a time-zone
		// offset"; naive ones are read in the collection's timezone, UTC
		// by default); any other form fails the insert.
		if sc.GetStringData() == nil {
			return nil, fmt.Errorf("timestamptz field data must be a string array")
		}
		for _, v := range sc.GetStringData().GetData() {
			t, err := parseTimestamptz(v)
			if err != nil {
				return nil, err
			}
			out = append(out, t.UnixMicro())
		}
	case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
		for _, v := range sc.GetIntData().GetData() {
			out = append(out, int64(v))
		}
	case schemapb.DataType_Bool:
		for _, v := range sc.GetBoolData().GetData() {
			out = append(out, v)
		}
	case schemapb.DataType_Float:
		for _, v := range sc.GetFloatData().GetData() {
			out = append(out, float64(v))
		}
	case schemapb.DataType_Double:
		for _, v := range sc.GetDoubleData().GetData() {
			out = append(out, v)
		}
	case schemapb.DataType_JSON:
		for _, v := range sc.GetJsonData().GetData() {
			if !json.Valid(v) {
				return nil, fmt.Errorf("invalid JSON %q", v)
			}
			out = append(out, append([]byte(nil), v...))
		}
	case schemapb.DataType_FloatVector:
		dim, _ := strconv.Atoi(typeParam(f, "dim"))
		vf := fd.GetVectors()
		if int(vf.GetDim()) != dim {
			return nil, fmt.Errorf("vector dimension %d, field has %d", vf.GetDim(), dim)
		}
		data := vf.GetFloatVector().GetData()
		if dim == 0 || len(data)%dim != 0 {
			return nil, fmt.Errorf("vector data of %d floats is not a multiple of %d", len(data), dim)
		}
		for i := 0; i < len(data); i += dim {
			out = append(out, append([]float32(nil), data[i:i+dim]...))
		}
	default:
		return nil, fmt.Errorf("type %s not supported by milvustest", f.DataType)
	}
	if valid := fd.GetValidData(); len(valid) > 0 {
		if !f.Nullable {
			return nil, fmt.Errorf("field %s is not nullable", f.Name)
		}
		full := make([]any, 0, len(valid))
		j := 0
		for _, ok := range valid {
			if !ok {
				full = append(full, nil)
				continue
			}
			if j >= len(out) {
				return nil, fmt.Errorf("valid data marks more rows than the column has")
			}
			full = append(full, out[j])
			j++
		}
		out = full
	}
	return out, nil
}

// parseTimestamptz reads a TIMESTAMPTZ input as Milvus does: RFC 3339
// with an offset between -12:00 and +14:00, or a naive time in UTC.
func parseTimestamptz(v string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		if _, off := t.Zone(); off < -12*3600 || off > 14*3600 {
			return time.Time{}, fmt.Errorf("UTC offset of %q is out of the valid range", v)
		}
		return t, nil
	}
	for _, l := range []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999"} {
		if t, err := time.ParseInLocation(l, v, time.UTC); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("got invalid timestamptz string '%s'", v)
}

// encode writes rows as result columns. A dynamic key named in names is
// returned inside $meta, with only the keys asked for, as Milvus does
// (https://milvus.io/docs/enable-dynamic-field.md).
func (c *collection) encode(names []string, rows []Row) []*schemapb.FieldData {
	var out []*schemapb.FieldData
	var dynKeys []string
	wantMeta := false
	for _, n := range names {
		f := c.fields[n]
		if f == nil {
			dynKeys = append(dynKeys, n)
			continue
		}
		if f.IsDynamic {
			wantMeta = true
			continue
		}
		fd := &schemapb.FieldData{Type: f.DataType, FieldName: f.Name, FieldId: f.FieldID}
		var present []Row
		if f.Nullable {
			for _, r := range rows {
				fd.ValidData = append(fd.ValidData, r[n] != nil)
				if r[n] != nil {
					present = append(present, r)
				}
			}
		} else {
			present = rows
		}
		scalars := func(sf *schemapb.ScalarField) {
			fd.Field = &schemapb.FieldData_Scalars{Scalars: sf}
		}
		switch f.DataType {
		case schemapb.DataType_VarChar, schemapb.DataType_String:
			d := []string{}
			for _, r := range present {
				d = append(d, r[n].(string))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: d}}})
		case schemapb.DataType_Int64:
			d := []int64{}
			for _, r := range present {
				d = append(d, r[n].(int64))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_LongData{LongData: &schemapb.LongArray{Data: d}}})
		case schemapb.DataType_Timestamptz:
			d := []int64{}
			for _, r := range present {
				d = append(d, r[n].(int64))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_TimestamptzData{TimestamptzData: &schemapb.TimestamptzArray{Data: d}}})
		case schemapb.DataType_Int8, schemapb.DataType_Int16, schemapb.DataType_Int32:
			d := []int32{}
			for _, r := range present {
				d = append(d, int32(r[n].(int64)))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_IntData{IntData: &schemapb.IntArray{Data: d}}})
		case schemapb.DataType_Bool:
			d := []bool{}
			for _, r := range present {
				d = append(d, r[n].(bool))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_BoolData{BoolData: &schemapb.BoolArray{Data: d}}})
		case schemapb.DataType_Float:
			d := []float32{}
			for _, r := range present {
				d = append(d, float32(r[n].(float64)))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_FloatData{FloatData: &schemapb.FloatArray{Data: d}}})
		case schemapb.DataType_Double:
			d := []float64{}
			for _, r := range present {
				d = append(d, r[n].(float64))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_DoubleData{DoubleData: &schemapb.DoubleArray{Data: d}}})
		case schemapb.DataType_JSON:
			d := [][]byte{}
			for _, r := range present {
				d = append(d, r[n].([]byte))
			}
			scalars(&schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: d}}})
		case schemapb.DataType_FloatVector:
			// A nullable vector comes back like a nullable scalar: the
			// present vectors only, with ValidData marking the rows.
			dim, _ := strconv.Atoi(typeParam(f, "dim"))
			d := []float32{}
			for _, r := range present {
				d = append(d, r[n].([]float32)...)
			}
			fd.Field = &schemapb.FieldData_Vectors{Vectors: &schemapb.VectorField{
				Dim: int64(dim), Data: &schemapb.VectorField_FloatVector{FloatVector: &schemapb.FloatArray{Data: d}},
			}}
		}
		out = append(out, fd)
	}
	if mf := c.fields[metaField]; mf != nil && (wantMeta || len(dynKeys) > 0) {
		d := [][]byte{}
		for _, r := range rows {
			raw, _ := r[metaField].([]byte)
			if wantMeta {
				d = append(d, raw)
				continue
			}
			var m map[string]any
			_ = json.Unmarshal(raw, &m)
			sub := map[string]any{}
			for _, k := range dynKeys {
				if v, ok := m[k]; ok {
					sub[k] = v
				}
			}
			b, _ := json.Marshal(sub)
			d = append(d, b)
		}
		out = append(out, &schemapb.FieldData{Type: schemapb.DataType_JSON, FieldName: metaField, FieldId: mf.FieldID, IsDynamic: true,
			Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{Data: &schemapb.ScalarField_JsonData{JsonData: &schemapb.JSONArray{Data: d}}}}})
	}
	return out
}
