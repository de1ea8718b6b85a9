// Package milvus implements store.Store on a Milvus 2.4+ collection.
//
// Guarantees beyond store.Store's: every user-supplied string that reaches
// a Milvus filter expression (partition, file ID, metadata key and value) is
// written as an escaped double-quoted literal, so no input can change the
// meaning of a delete or a search; Open refuses a collection whose vector
// dimension or fields differ from what ragnode needs instead of writing
// into it; UpdateMetadata re-writes stored vectors, it never re-embeds.
//
// Consistency: ChunkIDs and UpdateMetadata read with Strong consistency
// (they drive reconciliation and must see every acknowledged write); Search
// uses the collection's Bounded consistency, so a chunk may take a moment to
// become searchable after Upsert.
package milvus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/milvus-io/milvus-sdk-go/v2/client"
	"github.com/milvus-io/milvus-sdk-go/v2/entity"

	"github.com/ragnode/ragnode/indexer/store"
)

// Config locates and describes the collection.
type Config struct {
	Address    string // host:port, or http(s)://host:port
	Collection string // default "ragnode"
	// Dim is the embedding dimension. It is required to create the
	// collection; for an existing collection 0 means "use its dimension".
	Dim                int
	Username, Password string
	Token              string // API key (Zilliz Cloud), sent instead of user/password
	// Timeout bounds connecting (default 10s): the SDK's dial otherwise
	// blocks until the context ends when the server is unreachable.
	Timeout time.Duration
}

// Field names and limits of the collection schema.
const (
	fID        = "id"
	fPartition = "partition"
	fFileID    = "file_id"
	fIdx       = "idx"
	fPage      = "page"
	fText      = "text"
	fHeadings  = "headings"
	fMetadata  = "metadata"
	fVector    = "vector"

	maxIDLen   = 64
	maxTextLen = 65535
	maxNameLen = 1024

	writeBatch = 500 // rows per Upsert request, to stay far below gRPC limits
)

// Query page sizes: Milvus caps offset+limit at 16384, and rows with
// vectors are large. Variables so tests can exercise paging.
var (
	idPage  = 10000
	rowPage = 1000
)

// outputFields are returned by Search and the row queries (vector added
// where needed).
var outputFields = []string{fID, fPartition, fFileID, fIdx, fPage, fText, fHeadings, fMetadata}

// wantFields are the fields and types ragnode relies on in an existing
// collection.
var wantFields = map[string]entity.FieldType{
	fID: entity.FieldTypeVarChar, fPartition: entity.FieldTypeVarChar, fFileID: entity.FieldTypeVarChar,
	fIdx: entity.FieldTypeInt64, fPage: entity.FieldTypeInt64, fText: entity.FieldTypeVarChar,
	fHeadings: entity.FieldTypeJSON, fMetadata: entity.FieldTypeJSON, fVector: entity.FieldTypeFloatVector,
}

// Store is a store.Store backed by one Milvus collection.
type Store struct {
	c    client.Client
	coll string
	dim  int
}

var _ store.Store = (*Store)(nil)

// Open connects, creates the collection (schema, HNSW/COSINE index) if it
// does not exist, checks it if it does, and loads it.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Address == "" {
		return nil, errors.New("milvus: address is required")
	}
	if cfg.Collection == "" {
		cfg.Collection = "ragnode"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.Dim < 0 {
		return nil, fmt.Errorf("milvus: negative dimension %d", cfg.Dim)
	}
	dctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	c, err := client.NewClient(dctx, client.Config{
		Address: cfg.Address, Username: cfg.Username, Password: cfg.Password, APIKey: cfg.Token,
	})
	cancel()
	if err != nil {
		return nil, fmt.Errorf("milvus: connect to %s: %w", cfg.Address, err)
	}
	s := &Store{c: c, coll: cfg.Collection, dim: cfg.Dim}
	if err := s.prepare(ctx); err != nil {
		c.Close()
		return nil, err
	}
	return s, nil
}

func (s *Store) prepare(ctx context.Context) error {
	exists, err := s.c.HasCollection(ctx, s.coll)
	if err != nil {
		return fmt.Errorf("milvus: has collection %s: %w", s.coll, err)
	}
	if !exists {
		if s.dim == 0 {
			return fmt.Errorf("milvus: collection %s does not exist and no dimension is configured to create it", s.coll)
		}
		if err := s.c.CreateCollection(ctx, s.schema(), 0, client.WithConsistencyLevel(entity.ClBounded)); err != nil {
			// Another node may have created it meanwhile; then check theirs.
			if again, herr := s.c.HasCollection(ctx, s.coll); herr != nil || !again {
				return fmt.Errorf("milvus: create collection %s: %w", s.coll, err)
			}
		}
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	idx, err := s.c.DescribeIndex(ctx, s.coll, fVector)
	if err != nil || len(idx) == 0 {
		// Milvus reports a missing index as an error; create it either way
		// and let that call say what is really wrong.
		hnsw, err := entity.NewIndexHNSW(entity.COSINE, 16, 200)
		if err != nil {
			return err
		}
		if err := s.c.CreateIndex(ctx, s.coll, fVector, hnsw, false); err != nil {
			return fmt.Errorf("milvus: create index on %s.%s: %w", s.coll, fVector, err)
		}
	}
	state, err := s.c.GetLoadState(ctx, s.coll, nil)
	if err != nil {
		return fmt.Errorf("milvus: load state of %s: %w", s.coll, err)
	}
	if state != entity.LoadStateLoaded {
		if err := s.c.LoadCollection(ctx, s.coll, false); err != nil {
			return fmt.Errorf("milvus: load collection %s: %w", s.coll, err)
		}
	}
	return nil
}

func (s *Store) schema() *entity.Schema {
	varchar := func(name string, n int64) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(entity.FieldTypeVarChar).WithMaxLength(n)
	}
	typed := func(name string, t entity.FieldType) *entity.Field {
		return entity.NewField().WithName(name).WithDataType(t)
	}
	return entity.NewSchema().WithName(s.coll).WithDescription("ragnode document chunks").
		WithField(varchar(fID, maxIDLen).WithIsPrimaryKey(true)).
		WithField(varchar(fPartition, maxNameLen).WithIsPartitionKey(true)).
		WithField(varchar(fFileID, maxNameLen)).
		WithField(typed(fIdx, entity.FieldTypeInt64)).
		WithField(typed(fPage, entity.FieldTypeInt64)).
		WithField(varchar(fText, maxTextLen)).
		WithField(typed(fHeadings, entity.FieldTypeJSON)).
		WithField(typed(fMetadata, entity.FieldTypeJSON)).
		WithField(typed(fVector, entity.FieldTypeFloatVector).WithDim(int64(s.dim)))
}

// check verifies an existing collection against the schema ragnode writes.
func (s *Store) check(ctx context.Context) error {
	coll, err := s.c.DescribeCollection(ctx, s.coll)
	if err != nil {
		return fmt.Errorf("milvus: describe collection %s: %w", s.coll, err)
	}
	have := make(map[string]*entity.Field)
	for _, f := range coll.Schema.Fields {
		have[f.Name] = f
	}
	names := make([]string, 0, len(wantFields))
	for n := range wantFields {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		f, ok := have[n]
		if !ok {
			return fmt.Errorf("milvus collection %s has no field %q: it was not created by ragnode", s.coll, n)
		}
		if f.DataType != wantFields[n] {
			return fmt.Errorf("milvus collection %s field %q is %s, ragnode needs %s", s.coll, n, f.DataType.Name(), wantFields[n].Name())
		}
	}
	if !have[fID].PrimaryKey {
		return fmt.Errorf("milvus collection %s: field %q is not the primary key", s.coll, fID)
	}
	dim, err := strconv.Atoi(have[fVector].TypeParams[entity.TypeParamDim])
	if err != nil {
		return fmt.Errorf("milvus collection %s: unreadable vector dimension %q", s.coll, have[fVector].TypeParams[entity.TypeParamDim])
	}
	if s.dim == 0 {
		s.dim = dim
	}
	if dim != s.dim {
		return fmt.Errorf("milvus collection %s has dimension %d, ragnode is configured for %d", s.coll, dim, s.dim)
	}
	return nil
}

// Dim is the collection's vector dimension.
func (s *Store) Dim() int { return s.dim }

// Close closes the connection.
func (s *Store) Close() error { return s.c.Close() }

// Upsert writes recs in batches. Within one call the last record of an ID
// wins. A failure part-way may leave earlier batches written; upserting the
// same records again is the remedy, since writes are idempotent.
func (s *Store) Upsert(ctx context.Context, recs []store.Record) error {
	last := make(map[string]int, len(recs))
	for i := range recs {
		if err := s.validate(&recs[i]); err != nil {
			return err
		}
		last[recs[i].ID] = i
	}
	rows := make([]*store.Record, 0, len(last))
	for i := range recs {
		if last[recs[i].ID] == i {
			rows = append(rows, &recs[i])
		}
	}
	for start := 0; start < len(rows); start += writeBatch {
		if err := s.write(ctx, rows[start:min(start+writeBatch, len(rows))]); err != nil {
			return err
		}
	}
	return nil
}

func (s *Store) validate(r *store.Record) error {
	switch {
	case r.ID == "" || len(r.ID) > maxIDLen:
		return fmt.Errorf("milvus: record ID %q must be 1-%d bytes", r.ID, maxIDLen)
	case r.Partition == "" || len(r.Partition) > maxNameLen:
		return fmt.Errorf("milvus: record %s: partition must be 1-%d bytes", r.ID, maxNameLen)
	case r.FileID == "" || len(r.FileID) > maxNameLen:
		return fmt.Errorf("milvus: record %s: file ID must be 1-%d bytes", r.ID, maxNameLen)
	case len(r.Text) > maxTextLen:
		return fmt.Errorf("milvus: record %s: text is %d bytes, the collection holds at most %d", r.ID, len(r.Text), maxTextLen)
	case len(r.Vector) != s.dim:
		return fmt.Errorf("milvus: record %s has dimension %d, collection %s has dimension %d", r.ID, len(r.Vector), s.coll, s.dim)
	}
	return nil
}

func (s *Store) write(ctx context.Context, rows []*store.Record) error {
	n := len(rows)
	var (
		ids, parts, files, texts = make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		idxs, pages              = make([]int64, n), make([]int64, n)
		heads, metas             = make([][]byte, n), make([][]byte, n)
		vecs                     = make([][]float32, n)
	)
	for i, r := range rows {
		ids[i], parts[i], files[i], texts[i] = r.ID, r.Partition, r.FileID, r.Text
		idxs[i], pages[i] = int64(r.Index), int64(r.Page)
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
			return fmt.Errorf("milvus: record %s headings: %w", r.ID, err)
		}
		if metas[i], err = json.Marshal(m); err != nil {
			return fmt.Errorf("milvus: record %s metadata: %w", r.ID, err)
		}
		vecs[i] = r.Vector
	}
	// The partition name stays empty: with a partition key Milvus routes
	// rows itself and rejects an explicit partition.
	_, err := s.c.Upsert(ctx, s.coll, "",
		entity.NewColumnVarChar(fID, ids),
		entity.NewColumnVarChar(fPartition, parts),
		entity.NewColumnVarChar(fFileID, files),
		entity.NewColumnInt64(fIdx, idxs),
		entity.NewColumnInt64(fPage, pages),
		entity.NewColumnVarChar(fText, texts),
		entity.NewColumnJSONBytes(fHeadings, heads),
		entity.NewColumnJSONBytes(fMetadata, metas),
		entity.NewColumnFloatVector(fVector, s.dim, vecs),
	)
	if err != nil {
		return fmt.Errorf("milvus: upsert into %s: %w", s.coll, err)
	}
	return nil
}

// DeleteFile removes every chunk of the file.
func (s *Store) DeleteFile(ctx context.Context, partition, fileID string) error {
	if partition == "" || fileID == "" {
		return errors.New("milvus: delete needs a partition and a file ID")
	}
	return s.delete(ctx, fileExpr(partition, fileID))
}

// DeleteFileFrom removes the file's chunks with Index >= fromIndex.
func (s *Store) DeleteFileFrom(ctx context.Context, partition, fileID string, fromIndex int) error {
	if partition == "" || fileID == "" {
		return errors.New("milvus: delete needs a partition and a file ID")
	}
	return s.delete(ctx, and(fileExpr(partition, fileID), fmt.Sprintf("%s >= %d", fIdx, fromIndex)))
}

// DeletePartition removes every chunk of the partition.
func (s *Store) DeletePartition(ctx context.Context, partition string) error {
	if partition == "" {
		return errors.New("milvus: delete needs a partition")
	}
	return s.delete(ctx, eq(fPartition, partition))
}

func (s *Store) delete(ctx context.Context, expr string) error {
	if err := s.c.Delete(ctx, s.coll, "", expr); err != nil {
		return fmt.Errorf("milvus: delete from %s where %s: %w", s.coll, expr, err)
	}
	return nil
}

// UpdateMetadata reads the file's rows with their vectors and upserts them
// with merged metadata; a nil value removes the key.
func (s *Store) UpdateMetadata(ctx context.Context, partition, fileID string, meta map[string]any) error {
	var recs []store.Record
	err := s.scan(ctx, fileExpr(partition, fileID), rowPage, true, func(r store.Record) {
		m := make(map[string]any, len(r.Metadata)+len(meta))
		for k, v := range r.Metadata {
			m[k] = v
		}
		for k, v := range meta {
			if v == nil {
				delete(m, k)
			} else {
				m[k] = v
			}
		}
		r.Metadata = m
		recs = append(recs, r)
	})
	if err != nil {
		return err
	}
	return s.Upsert(ctx, recs)
}

// ChunkIDs lists chunk IDs, sorted; empty partition or fileID match all.
func (s *Store) ChunkIDs(ctx context.Context, partition, fileID string) ([]string, error) {
	var conds []string
	if partition != "" {
		conds = append(conds, eq(fPartition, partition))
	}
	if fileID != "" {
		conds = append(conds, eq(fFileID, fileID))
	}
	ids := []string{}
	err := s.scan(ctx, and(conds...), idPage, false, func(r store.Record) { ids = append(ids, r.ID) })
	if err != nil {
		return nil, err
	}
	sort.Strings(ids)
	return ids, nil
}

// scan pages through the rows matching expr in primary-key order (each page
// asks for ids above the last one seen, as the SDK's own query iterator
// does). full fetches every field, vector included; otherwise only IDs.
func (s *Store) scan(ctx context.Context, expr string, page int, full bool, fn func(store.Record)) error {
	fields := []string{fID}
	if full {
		fields = append(append([]string{}, outputFields...), fVector)
	}
	lastID := ""
	for {
		e := expr
		if lastID != "" {
			e = and(expr, fID+" > "+quote(lastID))
		}
		rs, err := s.c.Query(ctx, s.coll, nil, e, fields,
			client.WithLimit(int64(page)), client.WithSearchQueryConsistencyLevel(entity.ClStrong))
		if err != nil {
			return fmt.Errorf("milvus: query %s where %s: %w", s.coll, e, err)
		}
		recs, err := decodeRows(rs, full)
		if err != nil {
			return fmt.Errorf("milvus: query %s: %w", s.coll, err)
		}
		for _, r := range recs {
			fn(r)
			if r.ID > lastID {
				lastID = r.ID
			}
		}
		if len(recs) < page {
			return nil
		}
	}
}

// Search returns the TopK nearest chunks by cosine similarity. Hits carry
// no vector. It is dense only: q.Text, q.Mode, q.RRFK and q.Depth are
// ignored until the collection gets a BM25 function field.
func (s *Store) Search(ctx context.Context, q store.Query) ([]store.Hit, error) {
	if len(q.Vector) != s.dim {
		return nil, fmt.Errorf("milvus: query has dimension %d, collection %s has dimension %d", len(q.Vector), s.coll, s.dim)
	}
	k := q.TopK
	if k <= 0 {
		k = store.DefaultTopK
	}
	sp, err := entity.NewIndexHNSWSearchParam(max(64, k))
	if err != nil {
		return nil, err
	}
	expr := searchExpr(q.Partitions, q.Filter)
	if q.Expr != "" {
		// The user's expression, as written (node parsed it first, so its
		// parentheses balance): Milvus evaluates its own language.
		expr = and(expr, q.Expr)
	}
	res, err := s.c.Search(ctx, s.coll, nil, expr, outputFields,
		[]entity.Vector{entity.FloatVector(q.Vector)}, fVector, entity.COSINE, k, sp)
	if err != nil {
		return nil, fmt.Errorf("milvus: search %s where %s: %w", s.coll, expr, err)
	}
	hits := []store.Hit{}
	if len(res) == 0 {
		return hits, nil
	}
	if res[0].Err != nil {
		return nil, fmt.Errorf("milvus: search %s: %w", s.coll, res[0].Err)
	}
	recs, err := decodeRows(res[0].Fields, false)
	if err != nil {
		return nil, fmt.Errorf("milvus: search %s: %w", s.coll, err)
	}
	if len(recs) != len(res[0].Scores) {
		return nil, fmt.Errorf("milvus: search %s: %d rows for %d scores", s.coll, len(recs), len(res[0].Scores))
	}
	for i, r := range recs {
		hits = append(hits, store.Hit{Record: r, Score: res[0].Scores[i]})
	}
	// Milvus already ranks; the stable sort only makes ties deterministic.
	sort.SliceStable(hits, func(a, b int) bool {
		if hits[a].Score != hits[b].Score {
			return hits[a].Score > hits[b].Score
		}
		return hits[a].ID < hits[b].ID
	})
	return hits, nil
}

// decodeRows turns result columns into records.
func decodeRows(rs client.ResultSet, withVector bool) ([]store.Record, error) {
	idCol := rs.GetColumn(fID)
	if idCol == nil {
		if len(rs) == 0 {
			return nil, nil // no rows: Milvus may send no columns at all
		}
		return nil, errors.New("result has no id column")
	}
	n := idCol.Len()
	recs := make([]store.Record, n)
	str := func(name string, set func(*store.Record, string)) error {
		c := rs.GetColumn(name)
		if c == nil {
			return fmt.Errorf("result has no %s column", name)
		}
		for i := range recs {
			v, err := c.GetAsString(i)
			if err != nil {
				return fmt.Errorf("column %s: %w", name, err)
			}
			set(&recs[i], v)
		}
		return nil
	}
	if err := str(fID, func(r *store.Record, v string) { r.ID = v }); err != nil {
		return nil, err
	}
	if rs.GetColumn(fPartition) == nil {
		return recs, nil // an ID-only query
	}
	if err := str(fPartition, func(r *store.Record, v string) { r.Partition = v }); err != nil {
		return nil, err
	}
	if err := str(fFileID, func(r *store.Record, v string) { r.FileID = v }); err != nil {
		return nil, err
	}
	if err := str(fText, func(r *store.Record, v string) { r.Text = v }); err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name string
		set  func(*store.Record, int64)
	}{{fIdx, func(r *store.Record, v int64) { r.Index = int(v) }}, {fPage, func(r *store.Record, v int64) { r.Page = int(v) }}} {
		c := rs.GetColumn(f.name)
		if c == nil {
			return nil, fmt.Errorf("result has no %s column", f.name)
		}
		for i := range recs {
			v, err := c.GetAsInt64(i)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", f.name, err)
			}
			f.set(&recs[i], v)
		}
	}
	for _, f := range []struct {
		name string
		dst  func(*store.Record) any
	}{{fHeadings, func(r *store.Record) any { return &r.Headings }}, {fMetadata, func(r *store.Record) any { return &r.Metadata }}} {
		c, ok := rs.GetColumn(f.name).(*entity.ColumnJSONBytes)
		if !ok {
			return nil, fmt.Errorf("result has no JSON %s column", f.name)
		}
		for i := range recs {
			b, err := c.ValueByIdx(i)
			if err != nil {
				return nil, fmt.Errorf("column %s: %w", f.name, err)
			}
			if len(b) > 0 {
				if err := json.Unmarshal(b, f.dst(&recs[i])); err != nil {
					return nil, fmt.Errorf("column %s of %s: %w", f.name, recs[i].ID, err)
				}
			}
		}
	}
	if withVector {
		c, ok := rs.GetColumn(fVector).(*entity.ColumnFloatVector)
		if !ok || len(c.Data()) != n {
			return nil, errors.New("result has no usable vector column")
		}
		for i, v := range c.Data() {
			recs[i].Vector = v
		}
	}
	return recs, nil
}

// Expression building. Every string goes through quote; numbers are
// formatted by the program; field names are constants.

// quote writes s as a Milvus string literal: double-quoted, with backslash
// and double quote escaped, and control characters written as escapes
// because Milvus unquotes literals like Go and rejects raw newlines.
func quote(s string) string {
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '\\':
			b.WriteString(`\\`)
		case '"':
			b.WriteString(`\"`)
		case '\n':
			b.WriteString(`\n`)
		case '\r':
			b.WriteString(`\r`)
		case '\t':
			b.WriteString(`\t`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04x`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

func eq(field, value string) string { return field + " == " + quote(value) }

func fileExpr(partition, fileID string) string {
	return and(eq(fPartition, partition), eq(fFileID, fileID))
}

// and joins non-empty conditions, each parenthesised so any operator inside
// stays inside.
func and(conds ...string) string {
	var parts []string
	for _, c := range conds {
		if c != "" {
			parts = append(parts, c)
		}
	}
	if len(parts) == 1 {
		return parts[0]
	}
	for i, c := range parts {
		parts[i] = "(" + c + ")"
	}
	return strings.Join(parts, " and ")
}

func searchExpr(partitions []string, filter map[string]string) string {
	var conds []string
	if len(partitions) > 0 {
		qs := make([]string, len(partitions))
		for i, p := range partitions {
			qs[i] = quote(p)
		}
		conds = append(conds, fPartition+" in ["+strings.Join(qs, ", ")+"]")
	}
	keys := make([]string, 0, len(filter))
	for k := range filter {
		keys = append(keys, k)
	}
	sort.Strings(keys) // deterministic expressions are easier to debug
	for _, k := range keys {
		conds = append(conds, fMetadata+"["+quote(k)+"] == "+quote(filter[k]))
	}
	return and(conds...)
}
