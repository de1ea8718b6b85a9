package transport

import "github.com/ragnode/ragnode/indexer/store"

// Peer messages about chunks. These types, not the store's, cross the wire,
// so the store may rename its fields freely. The JSON names are the ones
// nodes already exchanged before these types existed (store's untagged Go
// field names), frozen here so a node of this version and one of the
// previous version understand each other in the middle of a rolling
// upgrade; wire_test.go decodes a frozen sample of each and fails the build
// on an incompatible rename.

// WireRecord is one chunk.
type WireRecord struct {
	ID        string         `json:"ID"`
	Partition string         `json:"Partition"`
	FileID    string         `json:"FileID"`
	Index     int            `json:"Index"`
	Text      string         `json:"Text"`
	Page      int            `json:"Page"`
	Headings  []string       `json:"Headings"`
	Vector    []float32      `json:"Vector"`
	Metadata  map[string]any `json:"Metadata"`
}

// WireQuery is a search of one node's local store.
type WireQuery struct {
	Vector     []float32         `json:"Vector"`
	Partitions []string          `json:"Partitions"`
	Filter     map[string]string `json:"Filter"`
	TopK       int               `json:"TopK"`
	// Added for hybrid search; omitted when empty, so a query without
	// text is byte for byte what the previous version sent, and a node of
	// the previous version answers a hybrid query with dense hits.
	Text  string `json:"Text,omitempty"`
	Mode  string `json:"Mode,omitempty"`
	RRFK  int    `json:"RRFK,omitempty"`
	Depth int    `json:"Depth,omitempty"`
	// Expr is a filter expression (store.Query.Expr); a node of an
	// earlier version ignores it and the asking node filters the hits.
	Expr string `json:"Expr,omitempty"`
}

// WireHit is one result of a WireQuery.
type WireHit struct {
	WireRecord
	Score float32 `json:"Score"`
}

// RecordsToWire converts store records for sending.
func RecordsToWire(rs []store.Record) []WireRecord {
	out := make([]WireRecord, len(rs))
	for i, r := range rs {
		out[i] = recordToWire(r)
	}
	return out
}

// RecordsFromWire converts received records.
func RecordsFromWire(ws []WireRecord) []store.Record {
	out := make([]store.Record, len(ws))
	for i, w := range ws {
		out[i] = recordFromWire(w)
	}
	return out
}

func recordToWire(r store.Record) WireRecord {
	return WireRecord{ID: r.ID, Partition: r.Partition, FileID: r.FileID, Index: r.Index, Text: r.Text,
		Page: r.Page, Headings: r.Headings, Vector: r.Vector, Metadata: r.Metadata}
}

func recordFromWire(w WireRecord) store.Record {
	return store.Record{ID: w.ID, Partition: w.Partition, FileID: w.FileID, Index: w.Index, Text: w.Text,
		Page: w.Page, Headings: w.Headings, Vector: w.Vector, Metadata: w.Metadata}
}

// QueryToWire converts a store query for sending.
func QueryToWire(q store.Query) WireQuery {
	return WireQuery{Vector: q.Vector, Partitions: q.Partitions, Filter: q.Filter, TopK: q.TopK,
		Text: q.Text, Mode: string(q.Mode), RRFK: q.RRFK, Depth: q.Depth, Expr: q.Expr}
}

// QueryFromWire converts a received query.
func QueryFromWire(w WireQuery) store.Query {
	return store.Query{Vector: w.Vector, Partitions: w.Partitions, Filter: w.Filter, TopK: w.TopK,
		Text: w.Text, Mode: store.Mode(w.Mode), RRFK: w.RRFK, Depth: w.Depth, Expr: w.Expr}
}

// HitsToWire converts store hits for sending.
func HitsToWire(hs []store.Hit) []WireHit {
	out := make([]WireHit, len(hs))
	for i, h := range hs {
		out[i] = WireHit{WireRecord: recordToWire(h.Record), Score: h.Score}
	}
	return out
}

// HitsFromWire converts received hits.
func HitsFromWire(ws []WireHit) []store.Hit {
	out := make([]store.Hit, len(ws))
	for i, w := range ws {
		out[i] = store.Hit{Record: recordFromWire(w.WireRecord), Score: w.Score}
	}
	return out
}

// ChunkWrite carries a file's records to a replica's local store.
type ChunkWrite struct {
	Partition string       `json:"partition"`
	FileID    string       `json:"file_id"`
	Records   []WireRecord `json:"records"`
}

// ChunkMetadata merges metadata into a file's chunks on one node.
type ChunkMetadata struct {
	Partition string         `json:"partition"`
	FileID    string         `json:"file_id"`
	Metadata  map[string]any `json:"metadata"`
}

// ChunkRepair asks a holder to copy a file's live chunks until Want nodes
// hold them.
type ChunkRepair struct {
	Partition string `json:"partition"`
	FileID    string `json:"file_id"`
	TaskID    string `json:"task_id"`
	Want      int    `json:"want"`
}

// ChunkDelete removes a file's (or, with no FileID, a partition's) chunks.
type ChunkDelete struct {
	Partition string `json:"partition"`
	FileID    string `json:"file_id,omitempty"`
}
