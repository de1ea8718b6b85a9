package transport

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/ragnode/ragnode/errs"
)

func sampleSnapshot(t *testing.T, body string) []byte {
	t.Helper()
	var buf bytes.Buffer
	hdr := SnapshotHeader{ClusterID: "c1", NodeID: "n1", NodeName: "node1", RaftIndex: 42, RaftTerm: 3,
		RaftSnapshotVersion: 1, Size: int64(len(body)), CreatedAt: time.Unix(1700000000, 0).UTC(), RagnodeVersion: "test"}
	if err := WriteSnapshot(&buf, hdr, strings.NewReader(body)); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// readSnapshot reads a file to its end, as a restore does.
func readSnapshot(b []byte) (SnapshotHeader, []byte, error) {
	sr, err := OpenSnapshot(bytes.NewReader(b))
	if err != nil {
		return SnapshotHeader{}, nil, err
	}
	body, err := io.ReadAll(sr)
	return sr.Header, body, err
}

func TestSnapshotRoundTrip(t *testing.T) {
	body := strings.Repeat(`{"ledger":true}`, 5000)
	hdr, got, err := readSnapshot(sampleSnapshot(t, body))
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != body || hdr.Format != SnapshotFormat || hdr.Version != SnapshotFormatVersion || hdr.RaftIndex != 42 || hdr.ClusterID != "c1" {
		t.Fatalf("round trip: header %+v, body of %d bytes", hdr, len(got))
	}
	if _, _, err := readSnapshot(sampleSnapshot(t, "")); err != nil {
		t.Fatalf("an empty ledger body: %v", err)
	}
}

// Every way a file can be damaged is refused with one line saying which,
// as an invalid request, and never as a complete read.
func TestSnapshotDamageIsRefused(t *testing.T) {
	good := sampleSnapshot(t, strings.Repeat("x", 1000))
	hdrEnd := bytes.IndexByte(good[len(snapshotMagic):], '\n') + len(snapshotMagic)
	flip := func(i int) []byte { b := bytes.Clone(good); b[i] ^= 1; return b }
	newer := bytes.Replace(good, []byte(`"version":1`), []byte(`"version":2`), 1)
	newerField := bytes.Replace(good, []byte(`{"format"`), []byte(`{"shards":4,"format"`), 1)
	newerField = bytes.Replace(newerField, []byte(`"version":1`), []byte(`"version":2`), 1)
	for _, tc := range []struct {
		name string
		file []byte
		want string
	}{
		{"empty", nil, "not a ragnode snapshot: it is empty"},
		{"another file", []byte("%PDF-1.7 and a lot more bytes than the magic"), "not a ragnode snapshot"},
		{"a flipped header byte", flip(hdrEnd - 5), "damaged snapshot"},
		{"a flipped body byte", flip(hdrEnd + 500), "SHA-256 does not match"},
		{"a flipped checksum digit", flip(len(good) - 10), "SHA-256 does not match"},
		{"cut in the header", good[:hdrEnd-3], "truncated snapshot: it ends inside its header"},
		{"cut in the body", good[:hdrEnd+300], "truncated snapshot: 701 of its 1000 ledger bytes are missing"},
		{"cut in the checksum", good[:len(good)-20], "truncated snapshot: the checksum at its end is missing"},
		{"no checksum", good[:len(good)-snapshotTrailerLen], "truncated snapshot: the checksum at its end is missing"},
		{"bytes after the checksum", append(bytes.Clone(good), "junk"...), "4 unexpected bytes after its checksum"},
		{"a newer version", newer, "snapshot format version 2 is newer than this ragnode reads (1)"},
		{"a newer version's field", newerField, "snapshot format version 2 is newer"},
	} {
		_, _, err := readSnapshot(tc.file)
		var se *SnapshotError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v, want a SnapshotError saying %q", tc.name, err, tc.want)
			continue
		}
		if !errors.Is(err, errs.Invalid) || StatusOf(err) != 400 {
			t.Errorf("%s: not an invalid request: %v", tc.name, err)
		}
	}
}

// A body shorter than the header says is an error for the writer, and
// what it wrote is refused by a reader.
func TestSnapshotWriterRefusesAShortBody(t *testing.T) {
	var buf bytes.Buffer
	err := WriteSnapshot(&buf, SnapshotHeader{Size: 100}, strings.NewReader("short"))
	if err == nil {
		t.Fatal("a short body was written as a whole snapshot")
	}
	if _, _, err := readSnapshot(buf.Bytes()); err == nil || !strings.Contains(err.Error(), "truncated") {
		t.Fatalf("reading what a failed write left: %v", err)
	}
}
