package transport

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/errs"
	"github.com/ragnode/ragnode/indexer/store"
)

// Frozen samples of every peer message, as a node of the previous version
// sends them. If a rename makes one of these decode differently, a rolling
// upgrade would break: change the wire types only with a compatible decoder.
const (
	frozenChunkWrite = `{"partition":"p","file_id":"f.txt","records":[{"ID":"c1","Partition":"p","FileID":"f.txt","Index":2,"Text":"hello","Page":3,"Headings":["H1","H2"],"Vector":[0.5,-0.25],"Metadata":{"_task":"t1","k":"v"}}]}`
	frozenQuery      = `{"Vector":[1,0],"Partitions":["p","q"],"Filter":{"k":"v"},"TopK":7}`
	frozenHits       = `[{"ID":"c1","Partition":"p","FileID":"f.txt","Index":2,"Text":"hello","Page":3,"Headings":["H1"],"Vector":null,"Metadata":{"k":"v"},"Score":0.75}]`
	frozenRepair     = `{"partition":"p","file_id":"f.txt","task_id":"t1","want":2}`
	frozenChunkMeta  = `{"partition":"p","file_id":"f.txt","metadata":{"k":"v"}}`
	frozenChunkDel   = `{"partition":"p","file_id":"f.txt"}`
)

func TestFrozenPeerMessagesDecode(t *testing.T) {
	var cw ChunkWrite
	mustDecode(t, frozenChunkWrite, &cw)
	want := store.Record{ID: "c1", Partition: "p", FileID: "f.txt", Index: 2, Text: "hello", Page: 3,
		Headings: []string{"H1", "H2"}, Vector: []float32{0.5, -0.25}, Metadata: map[string]any{"_task": "t1", "k": "v"}}
	if got := RecordsFromWire(cw.Records); cw.Partition != "p" || cw.FileID != "f.txt" || len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("chunk write decoded as %+v", cw)
	}

	var q WireQuery
	mustDecode(t, frozenQuery, &q)
	wq := store.Query{Vector: []float32{1, 0}, Partitions: []string{"p", "q"}, Filter: map[string]string{"k": "v"}, TopK: 7}
	if got := QueryFromWire(q); !reflect.DeepEqual(got, wq) {
		t.Fatalf("query decoded as %+v", got)
	}

	var hs []WireHit
	mustDecode(t, frozenHits, &hs)
	h := HitsFromWire(hs)
	if len(h) != 1 || h[0].ID != "c1" || h[0].Score != 0.75 || h[0].Index != 2 || h[0].Headings[0] != "H1" || h[0].Metadata["k"] != "v" {
		t.Fatalf("hits decoded as %+v", h)
	}

	var cr ChunkRepair
	mustDecode(t, frozenRepair, &cr)
	if cr != (ChunkRepair{Partition: "p", FileID: "f.txt", TaskID: "t1", Want: 2}) {
		t.Fatalf("repair decoded as %+v", cr)
	}
	var cm ChunkMetadata
	mustDecode(t, frozenChunkMeta, &cm)
	if cm.Partition != "p" || cm.FileID != "f.txt" || cm.Metadata["k"] != "v" {
		t.Fatalf("metadata decoded as %+v", cm)
	}
	var cd ChunkDelete
	mustDecode(t, frozenChunkDel, &cd)
	if cd != (ChunkDelete{Partition: "p", FileID: "f.txt"}) {
		t.Fatalf("delete decoded as %+v", cd)
	}
}

// TestWireRoundTripMatchesFrozenNames encodes what this version sends and
// checks it decodes with the frozen names too (the other direction of a
// mixed-version cluster).
func TestWireRoundTripMatchesFrozenNames(t *testing.T) {
	rec := store.Record{ID: "c1", Partition: "p", FileID: "f.txt", Index: 2, Text: "hello", Page: 3,
		Headings: []string{"H1", "H2"}, Vector: []float32{0.5, -0.25}, Metadata: map[string]any{"_task": "t1", "k": "v"}}
	b, err := json.Marshal(ChunkWrite{Partition: "p", FileID: "f.txt", Records: RecordsToWire([]store.Record{rec})})
	if err != nil {
		t.Fatal(err)
	}
	var a, z any
	mustDecode(t, string(b), &a)
	mustDecode(t, frozenChunkWrite, &z)
	if !reflect.DeepEqual(a, z) {
		t.Fatalf("this version sends\n%s\nthe previous one sent\n%s", b, frozenChunkWrite)
	}
}

func mustDecode(t *testing.T, s string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
}

func TestBearerSchemeIsCaseInsensitive(t *testing.T) {
	for _, h := range []string{"Bearer s3cret", "bearer s3cret", "BEARER s3cret"} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		if !CheckToken(r, "s3cret") {
			t.Errorf("%q refused", h)
		}
	}
	for _, h := range []string{"", "Bearer", "Bearer ", "Basic s3cret", "Bearer s3cret2", "Bearers3cret"} {
		r, _ := http.NewRequest("GET", "/", nil)
		r.Header.Set("Authorization", h)
		if CheckToken(r, "s3cret") {
			t.Errorf("%q accepted", h)
		}
	}
}

// TestStatusTableRoundTrips: every kind maps to a status that maps back to
// the same kind, so a failure forwarded through a peer keeps its meaning,
// and every ledger rejection has a status other than 500.
func TestStatusTableRoundTrips(t *testing.T) {
	for _, k := range errs.All {
		code := StatusOf(errs.New(k, "x"))
		if code == http.StatusInternalServerError {
			t.Errorf("kind %v has no status", k)
		}
		if back := kindOfStatus(code); back != k {
			t.Errorf("kind %v -> %d -> %v", k, code, back)
		}
		if !errors.Is(&StatusError{Code: code}, k) {
			t.Errorf("a peer's %d does not read as %v", code, k)
		}
	}
	for _, r := range rejectionKind {
		if code := StatusOf(fmt.Errorf("wrapped: %w", r.err)); code == http.StatusInternalServerError {
			t.Errorf("rejection %v has no status", r.err)
		}
	}
	if StatusOf(errors.New("plain")) != http.StatusInternalServerError || StatusOf(nil) != http.StatusOK {
		t.Fatal("plain errors must be 500, nil 200")
	}
}
