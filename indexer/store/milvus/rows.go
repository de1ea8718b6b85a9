package milvus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"

	"github.com/ragnode/ragnode/indexer/store"
)

// reservedKeys are the dynamic keys ragnode itself writes on upstream rows;
// user metadata under these names is refused rather than silently lost.
var reservedKeys = map[string]bool{kChunkID: true, kChunkIndex: true, kHeadings: true, kPage: true, kTask: true, kSeq: true, kAttempt: true, kWrite: true}

// fenceTag is what every upstream row of one write carries.
type fenceTag struct {
	task    string
	seq     uint64
	attempt int
	write   string
}

// columns builds the write columns for rows in the store's profile.
// tags, when not nil, keeps each row's own task, seq and attempt (a
// metadata rewrite); the write ID is always tag's.
func (s *Store) columns(rows []*store.Record, tag fenceTag, tags []fenceTag) ([]column.Column, error) {
	n := len(rows)
	parts, files, texts := make([]string, n), make([]string, n), make([]string, n)
	vecs := make([][]float32, n)
	for i, r := range rows {
		parts[i], files[i], texts[i], vecs[i] = r.Partition, r.FileID, r.Text, r.Vector
	}
	if s.prof.upstream() {
		metas := make([][]byte, n)
		for i, r := range rows {
			m := make(map[string]any, len(r.Metadata)+8)
			for k, v := range r.Metadata {
				if reservedKeys[k] || k == fPK || k == fText || k == fPartition || k == fFileID || k == fVector || k == fSparse || (k == fCreatedAt && s.prof == ProfileOpenRAG) {
					// created_at is a typed TIMESTAMPTZ in OpenRAG: left null
					// rather than written as a clashing dynamic key.
					if reservedKeys[k] {
						return nil, fmt.Errorf("milvus: record %s: metadata key %q is reserved by ragnode", r.ID, k)
					}
					continue
				}
				m[k] = v
			}
			h := r.Headings
			if h == nil {
				h = []string{}
			}
			m[kChunkID], m[kChunkIndex], m[kPage], m[kHeadings] = r.ID, r.Index, r.Page, h
			tg := tag
			if tags != nil {
				tg = tags[i]
				tg.write = tag.write
			}
			m[kTask], m[kSeq], m[kAttempt], m[kWrite] = tg.task, tg.seq, tg.attempt, tg.write
			b, err := json.Marshal(m)
			if err != nil {
				return nil, fmt.Errorf("milvus: record %s metadata: %w", r.ID, err)
			}
			metas[i] = b
		}
		return []column.Column{
			column.NewColumnVarChar(fText, texts),
			column.NewColumnVarChar(fPartition, parts),
			column.NewColumnVarChar(fFileID, files),
			column.NewColumnFloatVector(fVector, s.dim, vecs),
			column.NewColumnJSONBytes(fMeta, metas).WithIsDynamic(true),
		}, nil
	}
	ids := make([]string, n)
	idxs, pages := make([]int64, n), make([]int64, n)
	heads, metas := make([][]byte, n), make([][]byte, n)
	for i, r := range rows {
		ids[i], idxs[i], pages[i] = r.ID, int64(r.Index), int64(r.Page)
		h := r.Headings
		if h == nil {
			h = []string{}
		}
		m := r.Metadata
		if m == nil {
			m = map[string]any{}
		}
		var err error
		if heads[i], err = json.Marshal(h); err != nil {
			return nil, fmt.Errorf("milvus: record %s headings: %w", r.ID, err)
		}
		if metas[i], err = json.Marshal(m); err != nil {
			return nil, fmt.Errorf("milvus: record %s metadata: %w", r.ID, err)
		}
	}
	return []column.Column{
		column.NewColumnVarChar(fID, ids),
		column.NewColumnVarChar(fPartition, parts),
		column.NewColumnVarChar(fFileID, files),
		column.NewColumnInt64(fIdx, idxs),
		column.NewColumnInt64(fPage, pages),
		column.NewColumnVarChar(fText, texts),
		column.NewColumnJSONBytes(fHeadings, heads),
		column.NewColumnJSONBytes(fMetadata, metas),
		column.NewColumnFloatVector(fVector, s.dim, vecs),
	}, nil
}

// outputFields are what reads ask for (the vector added where needed).
func (s *Store) outputFields(withVector bool) []string {
	var f []string
	if s.prof.upstream() {
		f = []string{fPK, fText, fPartition, fFileID, fMeta}
	} else {
		f = []string{fID, fPartition, fFileID, fIdx, fPage, fText, fHeadings, fMetadata}
	}
	if withVector {
		f = append(f, fVector)
	}
	return f
}

// row is one decoded row: the record plus, upstream, its primary key and
// fence tag.
type row struct {
	store.Record
	pk  int64
	tag fenceTag
}

// decode turns result columns into rows. idOnly results carry just the
// chunk ID (and, upstream, the primary key and tag).
func (s *Store) decode(rs milvusclient.ResultSet, withVector bool) ([]row, error) {
	n := rs.ResultCount
	if n == 0 {
		if len(rs.Fields) == 0 {
			return nil, nil // no rows: Milvus may send no columns at all
		}
		n = rs.Fields[0].Len()
	}
	out := make([]row, n)
	get := func(name string) (column.Column, error) {
		c := rs.GetColumn(name)
		if c == nil {
			return nil, fmt.Errorf("result has no %s column", name)
		}
		return c, nil
	}
	strs := func(name string, set func(*row, string)) error {
		c, err := get(name)
		if err != nil {
			return err
		}
		for i := range out {
			v, err := c.GetAsString(i)
			if err != nil {
				return fmt.Errorf("column %s: %w", name, err)
			}
			set(&out[i], v)
		}
		return nil
	}
	if s.prof.upstream() {
		pk, err := get(fPK)
		if err != nil {
			return nil, err
		}
		meta, ok := rs.GetColumn(fMeta).(*column.ColumnJSONBytes)
		if !ok {
			return nil, errors.New("result has no dynamic field column")
		}
		for i := range out {
			if out[i].pk, err = pk.GetAsInt64(i); err != nil {
				return nil, fmt.Errorf("column %s: %w", fPK, err)
			}
			raw, err := meta.Value(i)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", fMeta, err)
			}
			if err := out[i].fromMeta(raw); err != nil {
				return nil, fmt.Errorf("row %d: %w", out[i].pk, err)
			}
		}
		if rs.GetColumn(fText) != nil {
			for _, f := range []struct {
				name string
				set  func(*row, string)
			}{{fText, func(r *row, v string) { r.Text = v }}, {fPartition, func(r *row, v string) { r.Partition = v }}, {fFileID, func(r *row, v string) { r.FileID = v }}} {
				if err := strs(f.name, f.set); err != nil {
					return nil, err
				}
			}
		}
	} else {
		if err := strs(fID, func(r *row, v string) { r.ID = v }); err != nil {
			return nil, err
		}
		if rs.GetColumn(fPartition) == nil {
			return out, nil // an ID-only query
		}
		for _, f := range []struct {
			name string
			set  func(*row, string)
		}{{fText, func(r *row, v string) { r.Text = v }}, {fPartition, func(r *row, v string) { r.Partition = v }}, {fFileID, func(r *row, v string) { r.FileID = v }}} {
			if err := strs(f.name, f.set); err != nil {
				return nil, err
			}
		}
		for _, f := range []struct {
			name string
			set  func(*row, int64)
		}{{fIdx, func(r *row, v int64) { r.Index = int(v) }}, {fPage, func(r *row, v int64) { r.Page = int(v) }}} {
			c, err := get(f.name)
			if err != nil {
				return nil, err
			}
			for i := range out {
				v, err := c.GetAsInt64(i)
				if err != nil {
					return nil, fmt.Errorf("column %s: %w", f.name, err)
				}
				f.set(&out[i], v)
			}
		}
		for _, f := range []struct {
			name string
			dst  func(*row) any
		}{{fHeadings, func(r *row) any { return &r.Headings }}, {fMetadata, func(r *row) any { return &r.Metadata }}} {
			c, ok := rs.GetColumn(f.name).(*column.ColumnJSONBytes)
			if !ok {
				return nil, fmt.Errorf("result has no JSON %s column", f.name)
			}
			for i := range out {
				b, err := c.Value(i)
				if err != nil {
					return nil, fmt.Errorf("column %s: %w", f.name, err)
				}
				if len(b) > 0 {
					if err := json.Unmarshal(b, f.dst(&out[i])); err != nil {
						return nil, fmt.Errorf("column %s of %s: %w", f.name, out[i].ID, err)
					}
				}
			}
		}
	}
	if withVector {
		c, ok := rs.GetColumn(fVector).(*column.ColumnFloatVector)
		if !ok || c.Len() != n {
			return nil, errors.New("result has no usable vector column")
		}
		for i := range out {
			v, err := c.Value(i)
			if err != nil {
				return nil, err
			}
			out[i].Vector = v
		}
	}
	return out, nil
}

// fromMeta splits an upstream row's dynamic keys into ragnode's fields and
// the user metadata.
func (r *row) fromMeta(raw []byte) error {
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			return err
		}
	}
	r.Metadata = map[string]any{}
	for k, v := range m {
		switch k {
		case kChunkID:
			r.ID, _ = v.(string)
		case kChunkIndex:
			r.Index = asInt(v)
		case kPage:
			r.Page = asInt(v)
		case kHeadings:
			if hs, ok := v.([]any); ok {
				for _, h := range hs {
					if s, ok := h.(string); ok {
						r.Headings = append(r.Headings, s)
					}
				}
			}
		case kTask:
			r.tag.task, _ = v.(string)
		case kAttempt:
			r.tag.attempt = asInt(v)
		case kSeq:
			if f, ok := v.(float64); ok && f > 0 {
				r.tag.seq = uint64(f)
			}
		case kWrite:
			r.tag.write, _ = v.(string)
		default:
			r.Metadata[k] = v
		}
	}
	return nil
}

func asInt(v any) int {
	switch x := v.(type) {
	case float64:
		return int(x)
	case string:
		n, _ := strconv.Atoi(x)
		return n
	}
	return 0
}

// scan pages through the rows matching expr in primary-key order (each page
// asks for keys above the last one seen, as the client's own query
// iterator does). full fetches every field, vector included.
func (s *Store) scan(ctx context.Context, expr string, page int, full bool, fn func(row)) error {
	var fields []string
	switch {
	case full:
		fields = s.outputFields(true)
	case s.prof.upstream():
		fields = []string{fPK, fMeta}
	default:
		fields = []string{fID}
	}
	var lastStr string
	var lastInt int64
	first := true
	for {
		e := expr
		if !first {
			if s.prof.upstream() {
				e = and(expr, fmt.Sprintf("%s > %d", fPK, lastInt))
			} else {
				e = and(expr, fID+" > "+quote(lastStr))
			}
		}
		opt := milvusclient.NewQueryOption(s.coll).WithFilter(e).WithOutputFields(fields...).
			WithLimit(page).WithConsistencyLevel(entity.ClStrong)
		rs, err := s.c.Query(ctx, opt)
		if err != nil {
			return fmt.Errorf("milvus: query %s where %s: %w", s.coll, e, err)
		}
		rows, err := s.decode(rs, full)
		if err != nil {
			return fmt.Errorf("milvus: query %s: %w", s.coll, err)
		}
		for _, r := range rows {
			fn(r)
			if r.pk > lastInt {
				lastInt = r.pk
			}
			if r.ID > lastStr {
				lastStr = r.ID
			}
		}
		first = false
		if len(rows) < page {
			return nil
		}
	}
}
