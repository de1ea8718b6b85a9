package catalog

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/node/catalog/catalogtest"
)

var ctx = context.Background()

func file(part, id string, meta map[string]any) *fsm.File {
	return &fsm.File{Partition: part, FileID: id, LiveTask: "t-" + id, Ref: fsm.FileRef{Name: id + ".pdf", Size: 1234}, Metadata: meta}
}

func files(fs ...*fsm.File) map[string]*fsm.File {
	out := map[string]*fsm.File{}
	for _, f := range fs {
		out[fsm.FileKey(f.Partition, f.FileID)] = f
	}
	return out
}

func open(t *testing.T, dsn string) *Mirror {
	t.Helper()
	m, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func count(t *testing.T, dsn, q string, args ...any) int {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestSyncMirrorsTheLedger(t *testing.T) {
	dsn := catalogtest.Start(t)
	m := open(t, dsn)
	want := Want(files(
		file("p1", "a", map[string]any{"relationship_id": "thread-1", "lang": "fr"}),
		file("p1", "b", map[string]any{"parent_id": "a"}),
		file("p2", "c", nil),
		&fsm.File{Partition: "p3", FileID: "queued"}, // no live task yet: not in the catalog
	))
	p, err := m.Sync(ctx, 10, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Upserts) != 3 || len(p.AddPartitions) != 2 {
		t.Fatalf("plan %+v", p)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files WHERE partition_name = 'p1' AND relationship_id = 'thread-1' AND file_metadata->>'lang' = 'fr' AND file_metadata->>'filename' = 'a.pdf'`); n != 1 {
		t.Fatalf("file a row: %d", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files WHERE file_id = 'b' AND parent_id = 'a'`); n != 1 {
		t.Fatalf("file b row: %d", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM partitions`); n != 2 {
		t.Fatalf("partitions: %d", n)
	}
	// The same view again changes nothing; the position is stored.
	if p, err := m.Sync(ctx, 10, want); err != nil || !p.Empty() {
		t.Fatalf("repeat: %+v, %v", p, err)
	}
	if idx, err := m.Applied(ctx); err != nil || idx != 10 {
		t.Fatalf("applied %d, %v", idx, err)
	}
	// A later view: p2 emptied, a's metadata changed.
	want2 := Want(files(file("p1", "a", map[string]any{"lang": "en"}), file("p1", "b", map[string]any{"parent_id": "a"})))
	if _, err := m.Sync(ctx, 20, want2); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files`); n != 2 {
		t.Fatalf("files after delete: %d", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM partitions WHERE partition = 'p2'`); n != 0 {
		t.Fatal("the emptied partition stayed")
	}
	if n := count(t, dsn, `SELECT count(*) FROM files WHERE file_id = 'a' AND relationship_id IS NULL AND file_metadata->>'lang' = 'en'`); n != 1 {
		t.Fatal("file a was not updated")
	}
	// A deposed leader's older view is refused and changes nothing.
	if _, err := m.Sync(ctx, 15, want); !errors.Is(err, ErrStale) {
		t.Fatalf("stale sync: %v", err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files`); n != 2 {
		t.Fatalf("files after a stale sync: %d", n)
	}
}

func TestRowsOpenRAGWroteAreLeftAlone(t *testing.T) {
	dsn := catalogtest.Start(t)
	m := open(t, dsn)
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, `INSERT INTO partitions (partition) VALUES ('theirs'), ('shared');
		INSERT INTO files (file_id, partition_name, file_metadata) VALUES ('x', 'theirs', '{"filename": "x.txt"}'), ('y', 'shared', '{}')`); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(ctx, 5, Want(files(file("shared", "z", nil)))); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(ctx, 6, Want(nil)); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files`); n != 2 {
		t.Fatalf("OpenRAG's own rows were touched: %d left", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM partitions`); n != 2 {
		t.Fatalf("partitions: %d", n)
	}
}

// A sync that dies half-way (here: its context is cancelled during a
// large delete) rolls back whole: the catalog keeps the previous view and
// position, and the next sync applies the change exactly once.
func TestInterruptedSyncRollsBack(t *testing.T) {
	dsn := catalogtest.Start(t)
	m := open(t, dsn)
	big := map[string]*fsm.File{}
	for i := range 3000 {
		f := file("p", fmt.Sprintf("f%04d", i), map[string]any{"n": i})
		big[fsm.FileKey(f.Partition, f.FileID)] = f
	}
	if _, err := m.Sync(ctx, 100, Want(big)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	// Cancel once the delete statement is running (a lock held by another
	// session makes it wait inside the transaction).
	lock, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	ltx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ltx.Exec(ctx, `SELECT 1 FROM files WHERE file_id = 'f2999' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.Sync(cctx, 200, Want(nil))
		done <- err
	}()
	waitBlocked(t, dsn)
	cancel()
	if err := <-done; err == nil {
		t.Fatal("the interrupted sync reported success")
	}
	ltx.Rollback(ctx)
	if n := count(t, dsn, `SELECT count(*) FROM files`); n != 3000 {
		t.Fatalf("a half-applied delete is visible: %d rows", n)
	}
	m2 := open(t, dsn)
	if idx, _ := m2.Applied(ctx); idx != 100 {
		t.Fatalf("position %d after the rollback", idx)
	}
	if p, err := m2.Sync(ctx, 200, Want(nil)); err != nil || len(p.Deletes) != 3000 {
		t.Fatalf("retry: %d deletes, %v", len(p.Deletes), err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files`); n != 0 {
		t.Fatalf("%d rows after the retry", n)
	}
}

// waitBlocked waits until some session waits on a lock.
func waitBlocked(t *testing.T, dsn string) {
	t.Helper()
	for range 600 {
		if count(t, dsn, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'`) > 0 {
			return
		}
		select {
		case <-ctx.Done():
		default:
		}
		sleepBriefly()
	}
	t.Fatal("the sync never blocked on the lock")
}
