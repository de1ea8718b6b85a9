package milvus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/milvus-io/milvus-proto/go-api/v2/schemapb"
	"github.com/milvus-io/milvus/client/v2/column"
	"github.com/milvus-io/milvus/client/v2/entity"
	"github.com/milvus-io/milvus/client/v2/milvusclient"

	"github.com/ragnode/ragnode/indexer/chunk"
	"github.com/ragnode/ragnode/indexer/store"
)

// reservedKeys are the dynamic keys ragnode itself writes on upstream rows;
// user metadata under these names is refused rather than silently lost.
var reservedKeys = map[string]bool{kChunkID: true, kChunkIndex: true, kHeadings: true, kPage: true, kTask: true, kSeq: true, kAttempt: true, kWrite: true, kCreatedAtRaw: true}

// rowKeys are the keys upstream's _chunk_to_entity derives from the chunk
// itself; as there, they win over upload metadata of the same name, and
// reads return them as row state, not as metadata.
var rowKeys = map[string]bool{kSectionID: true, kPrevSection: true, kNextSection: true, kChunkType: true, kTokenCount: true, kHeader: true, kIndexedAt: true}

// fenceTag is what every upstream row of one write carries. indexedAt is
// kept with it so a metadata rewrite does not re-date the rows.
type fenceTag struct {
	task      string
	seq       uint64
	attempt   int
	write     string
	indexedAt string
}

// sectionRoom keeps a file's section IDs (base + chunk index) inside
// 2**53: a dynamic field's numbers come back as float64 (Go's JSON, and
// upstream's own partial upsert, which its migration 3 folds for that
// reason), so larger IDs would round and neighbour links break.
const (
	sectionLimit = 1 << 53
	sectionRoom  = 1 << 32
)

// sectionBase is where a file's section IDs start. Upstream draws it at
// random per write; a hash of the file keeps a metadata rewrite's IDs the
// same and makes two files of a partition collide with odds of about
// chunks/2**53.
func sectionBase(partition, fileID string) int64 {
	h := fnv.New64a()
	h.Write([]byte(partition))
	h.Write([]byte{0})
	h.Write([]byte(fileID))
	return int64(h.Sum64() % (sectionLimit - sectionRoom))
}

// isoMicros is Python's datetime.isoformat() for an aware UTC time, the
// form upstream writes indexed_at in.
const isoMicros = "2006-01-02T15:04:05.000000+00:00"

var (
	tokOnce sync.Once
	tok     chunk.Tokenizer
)

// tokenCount counts as ragnode's chunker does (cl100k_base), for
// upstream's token_count; the ranks load once per process.
func tokenCount(text string) int {
	tokOnce.Do(func() {
		t, err := chunk.NewTokenizer()
		if err != nil {
			return
		}
		tok = t
	})
	if tok == nil {
		return (len(text) + 3) / 4
	}
	return tok.Count(text)
}

// lastIndexes is each file's highest chunk index among rows: its last
// chunk, which links to no next section.
func lastIndexes(rows []*store.Record) map[[2]string]int {
	last := map[[2]string]int{}
	for _, r := range rows {
		k := [2]string{r.Partition, r.FileID}
		if v, ok := last[k]; !ok || r.Index > v {
			last[k] = r.Index
		}
	}
	return last
}

// columns builds the write columns for rows in the store's profile.
// tags, when not nil, keeps each row's own task, seq, attempt and
// indexed_at (a metadata rewrite); the write ID is always tag's. last is
// lastIndexes of the whole write (nil: of rows).
func (s *Store) columns(rows []*store.Record, tag fenceTag, tags []fenceTag, last map[[2]string]int) ([]column.Column, error) {
	n := len(rows)
	parts, files, texts := make([]string, n), make([]string, n), make([]string, n)
	vecs := make([][]float32, n)
	for i, r := range rows {
		parts[i], files[i], texts[i], vecs[i] = r.Partition, r.FileID, r.Text, r.Vector
	}
	if s.prof.upstream() {
		if last == nil {
			last = lastIndexes(rows)
		}
		if tag.indexedAt == "" {
			tag.indexedAt = time.Now().UTC().Format(isoMicros)
		}
		metas := make([][]byte, n)
		created := make([]string, n)
		createdOK := make([]bool, n)
		for i, r := range rows {
			m := make(map[string]any, len(r.Metadata)+16)
			for k, v := range r.Metadata {
				if reservedKeys[k] {
					return nil, fmt.Errorf("milvus: record %s: metadata key %q is reserved by ragnode", r.ID, k)
				}
				if rowKeys[k] || k == fPK || k == fText || k == fPartition || k == fFileID || k == fSparse ||
					k == fVector || strings.HasPrefix(k, vectorFieldPrefix) {
					// Fields of the collection (other embedders' dense fields
					// included) cannot be dynamic keys: Milvus refuses the row.
					continue
				}
				if k == fCreatedAt && s.prof.openrag() {
					// The typed TIMESTAMPTZ column, as upstream's entity
					// carries the upload's created_at into it; a value that
					// is no time leaves it null rather than failing the write.
					if t, ok := parseCreatedAt(v); ok {
						created[i], createdOK[i] = t, true
					}
					m[kCreatedAtRaw] = v
					continue
				}
				m[k] = v
			}
			h := r.Headings
			if h == nil {
				h = []string{}
			}
			m[kChunkID], m[kChunkIndex], m[kHeadings] = r.ID, r.Index, h
			tg := tag
			if tags != nil {
				tg = tags[i]
				tg.write = tag.write
				if tg.indexedAt == "" {
					tg.indexedAt = tag.indexedAt
				}
			}
			m[kTask], m[kSeq], m[kAttempt], m[kWrite] = tg.task, tg.seq, tg.attempt, tg.write
			// Upstream's row keys (MilvusVectorStore._chunk_to_entity): the
			// neighbour links are null at the file's ends; header is the
			// innermost heading and is left out, like context, when there
			// is none. page stays ragnode's (0 for a document without
			// pages), as earlier ragnode rows have it.
			base := sectionBase(r.Partition, r.FileID)
			m[kSectionID], m[kPrevSection], m[kNextSection] = base+int64(r.Index), nil, nil
			if r.Index > 0 {
				m[kPrevSection] = base + int64(r.Index) - 1
			}
			if r.Index < last[[2]string{r.Partition, r.FileID}] {
				m[kNextSection] = base + int64(r.Index) + 1
			}
			m[kPage] = r.Page
			m[kChunkType] = "text"
			m[kTokenCount] = tokenCount(r.Text)
			if len(r.Headings) > 0 {
				m[kHeader] = r.Headings[len(r.Headings)-1]
			}
			m[kIndexedAt] = tg.indexedAt
			b, err := json.Marshal(m)
			if err != nil {
				return nil, fmt.Errorf("milvus: record %s metadata: %w", r.ID, err)
			}
			metas[i] = b
		}
		cols := []column.Column{
			column.NewColumnVarChar(fText, texts),
			column.NewColumnVarChar(fPartition, parts),
			column.NewColumnVarChar(fFileID, files),
			column.NewColumnFloatVector(s.vfield, s.dim, vecs),
			column.NewColumnJSONBytes(fMeta, metas).WithIsDynamic(true),
		}
		if s.prof.openrag() {
			cols = append(cols, newTimestamptzColumn(fCreatedAt, created, createdOK))
		}
		return cols, nil
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
		f = append(f, s.vfield)
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
		c, ok := rs.GetColumn(s.vfield).(*column.ColumnFloatVector)
		if !ok {
			return nil, fmt.Errorf("result has no %s vector column", s.vfield)
		}
		if c.Len() != n {
			// The client drops a nullable vector column's validity, so a
			// row without a vector in this field (another embedder's)
			// shortens it instead of reading as null.
			return nil, fmt.Errorf("%d of %d rows have a vector in %s: the others were written by another embedder", c.Len(), n, s.vfield)
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

// fromMeta splits an upstream row's dynamic keys into ragnode's fields,
// the row state a rewrite keeps, and the user metadata.
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
		case kIndexedAt:
			r.tag.indexedAt, _ = v.(string)
		case kCreatedAtRaw:
			r.Metadata[fCreatedAt] = v
		default:
			if !rowKeys[k] {
				r.Metadata[k] = v
			}
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

// timestamptzColumn is a TIMESTAMPTZ write column in the form Milvus's
// proxy takes: ISO 8601 strings, which it converts to UTC microseconds
// (pymilvus sends them so too). client/v2 v2.6.2 cannot write one: its
// ColumnTimestamptz carries int64s under type 15 (the protocol's is 26)
// and panics building its field data. The embedded VarChar column answers
// the rest of column.Column (length, nullability) for the client.
type timestamptzColumn struct {
	*column.ColumnVarChar
	values []string // one per row, "" where valid is false
	valid  []bool
}

func newTimestamptzColumn(name string, values []string, valid []bool) *timestamptzColumn {
	return &timestamptzColumn{ColumnVarChar: column.NewColumnVarChar(name, values), values: values, valid: valid}
}

func (c *timestamptzColumn) Type() entity.FieldType { return timestamptzPB }

// FieldData sends the present values compacted with a validity mask, the
// nullable layout Milvus's insert validation expects.
func (c *timestamptzColumn) FieldData() *schemapb.FieldData {
	data := []string{}
	for i, v := range c.values {
		if c.valid[i] {
			data = append(data, v)
		}
	}
	return &schemapb.FieldData{
		Type: schemapb.DataType_Timestamptz, FieldName: c.Name(), ValidData: append([]bool(nil), c.valid...),
		Field: &schemapb.FieldData_Scalars{Scalars: &schemapb.ScalarField{
			Data: &schemapb.ScalarField_StringData{StringData: &schemapb.StringArray{Data: data}}}},
	}
}

// naiveLayouts are the zone-less forms Milvus parses in the collection's
// timezone (UTC unless set), plus a bare date, which Milvus refuses and
// ragnode reads as midnight UTC rather than fail the file's write.
var naiveLayouts = []string{"2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02"}

// parseCreatedAt turns an upload's created_at into the RFC 3339 string the
// TIMESTAMPTZ column is written with. Milvus refuses a whole insert over
// one bad value (offsets outside -12:00..+14:00 included), so anything it
// would refuse is reported as no time.
func parseCreatedAt(v any) (string, bool) {
	s, ok := v.(string)
	if !ok || s == "" {
		return "", false
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err == nil {
		if _, off := t.Zone(); off < -12*3600 || off > 14*3600 {
			return "", false
		}
		return t.Format(time.RFC3339Nano), true
	}
	for _, l := range naiveLayouts {
		if t, err := time.ParseInLocation(l, s, time.UTC); err == nil {
			return t.Format(time.RFC3339Nano), true
		}
	}
	return "", false
}
