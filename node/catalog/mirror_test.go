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

// t0 is a ledger time (Unix nanoseconds).
const t0 = int64(1_700_000_000_000_000_000)

func file(part, id string, meta map[string]any) *fsm.File {
	return &fsm.File{Partition: part, FileID: id, LiveTask: "t-" + part + "-" + id, LiveChunks: 3, Updated: t0 + 5e9,
		Ref: fsm.FileRef{Name: id + ".pdf", Size: 1234, Hash: HashToken(part + "/" + id)}, Metadata: meta}
}

func files(fs ...*fsm.File) map[string]*fsm.File {
	out := map[string]*fsm.File{}
	for _, f := range fs {
		out[fsm.FileKey(f.Partition, f.FileID)] = f
	}
	return out
}

// stateOf is a ledger holding the files, each with the completed task
// that made it live.
func stateOf(fs ...*fsm.File) *fsm.State {
	s := fsm.New()
	for _, f := range fs {
		s.Files[fsm.FileKey(f.Partition, f.FileID)] = f
		if f.LiveTask != "" {
			s.Tasks[f.LiveTask] = &fsm.Task{ID: f.LiveTask, Partition: f.Partition, FileID: f.FileID, File: f.Ref,
				State: fsm.Completed, Submitted: t0, Started: t0 + 1e9, Finished: f.Updated, Chunks: f.LiveChunks}
		}
	}
	return s
}

func view(fs ...*fsm.File) View { return Snapshot(stateOf(fs...), Options{}) }

func open(t *testing.T, dsn string) *Mirror {
	t.Helper()
	m, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(ctx) })
	return c
}

func exec(t *testing.T, dsn, q string, args ...any) {
	t.Helper()
	if _, err := connect(t, dsn).Exec(ctx, q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func count(t *testing.T, dsn, q string, args ...any) int {
	t.Helper()
	var n int
	if err := connect(t, dsn).QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestSyncMirrorsTheLedger(t *testing.T) {
	dsn := catalogtest.Start(t)
	m := open(t, dsn)
	s := stateOf(
		file("p1", "a", map[string]any{"relationship_id": "thread-1", "lang": "fr"}),
		file("p1", "b", map[string]any{"parent_id": "a"}),
		file("p2", "c", nil),
	)
	s.Files[fsm.FileKey("p3", "queued")] = &fsm.File{Partition: "p3", FileID: "queued"} // no live task yet: not in the catalog
	want := Snapshot(s, Options{})
	p, err := m.Sync(ctx, 10, want)
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Upserts) != 3 || len(p.AddPartitions) != 2 || len(p.JobUpserts) != 3 {
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
	want2 := view(file("p1", "a", map[string]any{"lang": "en"}), file("p1", "b", map[string]any{"parent_id": "a"}))
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
	exec(t, dsn, `INSERT INTO partitions (partition, description) VALUES ('theirs', 'kept'), ('shared', 'theirs too');
		INSERT INTO files (file_id, partition_name, file_metadata) VALUES ('x', 'theirs', '{"filename": "x.txt"}'), ('y', 'shared', '{}');
		INSERT INTO jobs (id, partition, status) VALUES ('openrag-job', 'theirs', 'COMPLETED')`)
	sh := stateOf(file("shared", "z", nil))
	sh.Partitions = map[string]*fsm.Partition{"shared": {Name: "shared", Config: map[string]any{"description": "ragnode's"}}}
	if _, err := m.Sync(ctx, 5, Snapshot(sh, Options{Dimension: 8})); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM partitions WHERE partition = 'shared' AND description = 'theirs too' AND dimension = 1024`); n != 1 {
		t.Fatal("the settings of a partition OpenRAG created were overwritten")
	}
	if _, err := m.Sync(ctx, 6, Snapshot(fsm.New(), Options{})); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files`); n != 2 {
		t.Fatalf("OpenRAG's own rows were touched: %d left", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM partitions`); n != 2 {
		t.Fatalf("partitions: %d", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM jobs WHERE id = 'openrag-job'`); n != 1 {
		t.Fatal("OpenRAG's own jobs row went")
	}
}

// A sync that dies half-way (here: its context is cancelled during a
// large delete) rolls back whole: the catalog keeps the previous view and
// position, and the next sync applies the change exactly once.
func TestInterruptedSyncRollsBack(t *testing.T) {
	dsn := catalogtest.Start(t)
	m := open(t, dsn)
	var big []*fsm.File
	for i := range 3000 {
		big = append(big, file("p", fmt.Sprintf("f%04d", i), map[string]any{"n": i}))
	}
	if _, err := m.Sync(ctx, 100, view(big...)); err != nil {
		t.Fatal(err)
	}
	cctx, cancel := context.WithCancel(ctx)
	// Cancel once the delete statement is running (a lock held by another
	// session makes it wait inside the transaction).
	lock := connect(t, dsn)
	ltx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ltx.Exec(ctx, `SELECT 1 FROM files WHERE file_id = 'f2999' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := m.Sync(cctx, 200, view())
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
	if p, err := m2.Sync(ctx, 200, view()); err != nil || len(p.Deletes) != 3000 {
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
		sleepBriefly()
	}
	t.Fatal("the sync never blocked on the lock")
}
