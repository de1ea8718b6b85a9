package node

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	bolt "go.etcd.io/bbolt"

	"github.com/ragnode/ragnode/indexer/store"
)

// writeBolt creates a bbolt file of a few MiB in one transaction, so that
// its middle is the leaves of a live bucket rather than freed pages. It has
// a nested bucket and empty values too, as the chunk store does.
func writeBolt(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucket([]byte("logs"))
		if err != nil {
			return err
		}
		for i := range 6000 {
			if err := b.Put(fmt.Appendf(nil, "%08d", i), []byte(strings.Repeat("v", 500))); err != nil {
				return err
			}
		}
		nb, err := tx.CreateBucket([]byte("files"))
		if err != nil {
			return err
		}
		p, err := nb.CreateBucket([]byte("pPart"))
		if err != nil {
			return err
		}
		for i := range 100 {
			if err := p.Put(fmt.Appendf(nil, "k%03d", i), nil); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
}

// scribble overwrites n bytes in the middle of path with random bytes
// (from a fixed seed, so a failure can be replayed).
func scribble(t *testing.T, path string, n int) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	noise := make([]byte, n)
	r := rand.New(rand.NewPCG(21, 8))
	for i := range noise {
		noise[i] = byte(r.Uint32())
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(noise, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
}

// wantDamaged checks err is the typed error for path, with its remedy.
func wantDamaged(t *testing.T, err error, path, what, remedy string) {
	t.Helper()
	var d *DamagedStoreError
	if !errors.Is(err, ErrDamagedStore) || !errors.As(err, &d) {
		t.Fatalf("got %v, want a DamagedStoreError", err)
	}
	msg := err.Error()
	if d.Path != path || d.What != what || !strings.Contains(msg, path) || !strings.Contains(msg, remedy) || strings.Contains(msg, "\n") {
		t.Fatalf("message %q: want one line naming %s %s and %q", msg, what, path, remedy)
	}
	t.Logf("%s", msg)
}

func TestOpenBoltHealthy(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.db")
	writeBolt(t, path)
	db, err := openBolt(path, storeBlobs, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("a sound file: %v", err)
	}
	db.Close()
	// A new file, and one with nothing in it yet.
	db, err = openBolt(filepath.Join(t.TempDir(), "new.db"), storeBlobs, 0o600, nil)
	if err != nil {
		t.Fatalf("a new file: %v", err)
	}
	db.Close()
	if err := checkBoltFile(filepath.Join(t.TempDir(), "absent.db"), storeRaft, nil); err != nil {
		t.Fatalf("no file: %v", err)
	}
}

// TestOpenBoltDamaged: the case, 8 KiB of noise in the middle of the
// file, is an error naming the file, not a panic.
func TestOpenBoltDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "small.db")
	writeBolt(t, path)
	scribble(t, path, 8<<10)
	db, err := openBolt(path, storeBlobs, 0o600, &bolt.Options{Timeout: time.Second})
	if db != nil {
		t.Fatal("a damaged file was opened")
	}
	wantDamaged(t, err, path, storeBlobs, "move its data directory aside")
}

// TestOpenBoltDamagedMetaAndTruncated: the other shapes of damage, both
// meta pages gone (an error from bbolt) and a file cut short (pages past
// its end: a memory fault, unless caught).
func TestOpenBoltDamagedMetaAndTruncated(t *testing.T) {
	dir := t.TempDir()
	meta := filepath.Join(dir, "meta.db")
	writeBolt(t, meta)
	f, err := os.OpenFile(meta, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt(make([]byte, 2*os.Getpagesize()), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	_, err = openBolt(meta, storeBlobs, 0o600, &bolt.Options{Timeout: time.Second})
	wantDamaged(t, err, meta, storeBlobs, "--join")

	cut := filepath.Join(dir, "cut.db")
	writeBolt(t, cut)
	fi, _ := os.Stat(cut)
	if err := os.Truncate(cut, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	_, err = openBolt(cut, storeChunks, 0o600, &bolt.Options{Timeout: time.Second})
	wantDamaged(t, err, cut, storeChunks, "--join")
}

// TestOpenBoltFaultIsCaught: a branch page pointing far past the file makes
// bbolt read unmapped memory, a fault the runtime kills the process for
// unless the goroutine asked for a panic instead.
func TestOpenBoltFaultIsCaught(t *testing.T) {
	path := filepath.Join(t.TempDir(), "far.db")
	writeBolt(t, path)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// bbolt's page header: id (8 bytes), flags (2; 0x01 a branch), count
	// (2), overflow (4); then branch elements: pos (4), ksize (4), pgid (8).
	const branch = 0x01
	pageSize := os.Getpagesize() // bbolt's default
	bent := 0
	for id := 2; (id+1)*pageSize <= len(data); id++ {
		pg := data[id*pageSize:]
		if binary.LittleEndian.Uint64(pg) == uint64(id) && binary.LittleEndian.Uint16(pg[8:]) == branch {
			binary.LittleEndian.PutUint64(pg[16+8:], 1<<30) // 4 TiB into the mapping
			bent++
		}
	}
	if bent == 0 {
		t.Fatal("no branch page found: the file layout is not what this test expects")
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = openBolt(path, storeBlobs, 0o600, &bolt.Options{Timeout: time.Second})
	wantDamaged(t, err, path, storeBlobs, "--join")
}

// TestOpenBoltLockedIsNotDamage: a file another process holds is reported
// as bbolt reports it, not as damage.
func TestOpenBoltLockedIsNotDamage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "held.db")
	writeBolt(t, path)
	holder, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close()
	_, err = openBolt(path, storeBlobs, 0o600, &bolt.Options{Timeout: 100 * time.Millisecond})
	if err == nil || errors.Is(err, ErrDamagedStore) || !errors.Is(err, bolt.ErrTimeout) {
		t.Fatalf("locked file: %v", err)
	}
}

// TestOpenRaftLogDamaged: raft.db, opened by raft-boltdb, the way the node
// writes it.
func TestOpenRaftLogDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "raft.db")
	st, err := raftboltdb.New(raftboltdb.Options{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	logs := make([]*raft.Log, 3000)
	for i := range logs {
		logs[i] = &raft.Log{Index: uint64(i + 1), Term: 1, Type: raft.LogCommand, Data: []byte(strings.Repeat("d", 400))}
	}
	if err := st.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := st.SetUint64([]byte("CurrentTerm"), 1); err != nil {
		t.Fatal(err)
	}
	st.Close()

	opts := &bolt.Options{Timeout: time.Second}
	st, err = openRaftLog(path, opts)
	if err != nil {
		t.Fatalf("a sound raft log: %v", err)
	}
	if last, err := st.LastIndex(); err != nil || last != 3000 {
		t.Fatalf("last index %d, %v", last, err)
	}
	st.Close()

	scribble(t, path, 8<<10)
	_, err = openRaftLog(path, opts)
	wantDamaged(t, err, path, storeRaft, "restore this node from a peer")
	if !strings.Contains(err.Error(), filepath.Join(filepath.Dir(path), "snapshots")) {
		t.Fatalf("%v: the remedy does not name the snapshots", err)
	}
}

// TestOpenChunkStoreDamaged: chunks.db, opened by the local store.
func TestOpenChunkStoreDamaged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "chunks.db")
	writeChunkStore(t, path)
	st, err := openChunkStore(path)
	if err != nil {
		t.Fatalf("a sound chunk store: %v", err)
	}
	st.Close()

	scribble(t, path, 8<<10)
	_, err = openChunkStore(path)
	wantDamaged(t, err, path, storeChunks, "move its data directory aside")
}

// writeChunkStore fills a local chunk store at path with 3,000 records of
// 300 files, enough pages for damage to land on live ones.
func writeChunkStore(t *testing.T, path string) {
	t.Helper()
	st, err := store.OpenLocal(path)
	if err != nil {
		t.Fatal(err)
	}
	recs := make([]store.Record, 3000)
	for i := range recs {
		recs[i] = store.Record{ID: fmt.Sprintf("c%05d", i), Partition: "p", FileID: fmt.Sprintf("f%03d", i/10), Index: i % 10,
			Text: strings.Repeat("word ", 40), Vector: []float32{1, float32(i), 0, 0}}
	}
	if err := st.Upsert(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	st.Close()
}
