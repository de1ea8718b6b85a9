package catalog

import (
	"errors"
	"testing"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/node/catalog/catalogtest"
)

func openUsers(t *testing.T, dsn string) *Users {
	t.Helper()
	u, err := OpenUsers(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(u.Close)
	return u
}

// OpenRAG keeps a token's SHA-256; a bearer token is the user whose
// stored hash it hashes to, and the stored hash itself is no token.
func TestUsersByTokenAndQuota(t *testing.T) {
	dsn := catalogtest.Start(t)
	u := openUsers(t, dsn)
	exec(t, dsn, `INSERT INTO users (id, display_name, token, is_admin, file_quota, file_count) VALUES
			(1, 'Admin', $1, true, NULL, 0), (2, 'Ann', $2, false, 3, 1), (3, 'Bob', $3, false, NULL, 5)`,
		HashToken("or-admin"), HashToken("or-ann"), HashToken("or-bob"))
	exec(t, dsn, `INSERT INTO partitions (partition) VALUES ('a'), ('b');
		INSERT INTO partition_memberships (partition_name, user_id, role) VALUES ('a', 2, 'viewer'), ('b', 2, 'owner');
		INSERT INTO jobs (id, partition, user_id, status) VALUES ('j1', 'a', 2, 'QUEUED'), ('j2', 'a', 2, 'SERIALIZING'), ('j3', 'a', 2, 'COMPLETED')`)
	ann, ok, err := u.ByToken(ctx, "or-ann")
	if err != nil || !ok || ann.ID != 2 || ann.IsAdmin || ann.Memberships["a"] != "viewer" || ann.Memberships["b"] != "owner" || len(ann.Memberships) != 2 {
		t.Fatalf("ann: %+v %v %v", ann, ok, err)
	}
	if _, ok, err := u.ByToken(ctx, HashToken("or-ann")); ok || err != nil {
		t.Fatalf("the stored hash authenticated: %v %v", ok, err)
	}
	if _, ok, _ := u.ByToken(ctx, "or-nobody"); ok {
		t.Fatal("an unknown token is a user")
	}
	if n, err := u.Pending(ctx, 2); err != nil || n != 2 {
		t.Fatalf("pending %d %v", n, err)
	}
	// 1 indexed + 2 pending reaches Ann's own quota of 3: OpenRAG's
	// message. (As in OpenRAG, a negative default turns every quota off.)
	var q ErrQuota
	if err := u.CheckQuota(ctx, ann, -1); err != nil {
		t.Fatalf("quotas off: %v", err)
	}
	if err := u.CheckQuota(ctx, ann, 10); !errors.As(err, &q) ||
		err.Error() != "File quota exceeded. You have 1 indexed files and 2 pending tasks. Limit: 3" {
		t.Fatalf("ann's quota: %v", err)
	}
	bob, _, _ := u.ByToken(ctx, "or-bob")
	if err := u.CheckQuota(ctx, bob, -1); err != nil {
		t.Fatalf("no default quota: %v", err)
	}
	if err := u.CheckQuota(ctx, bob, 5); !errors.As(err, &q) || q.Limit != 5 {
		t.Fatalf("the default quota: %v", err)
	}
	admin, _, _ := u.ByToken(ctx, "or-admin")
	if err := u.CheckQuota(ctx, admin, 0); err != nil || EffectiveQuota(admin, 0) != -1 {
		t.Fatalf("an admin has no quota: %v", err)
	}
}

// What requests record (the uploader of a task, a partition's creator)
// becomes, at the next sync, the file's created_by, the uploader's
// file_count, and the creator's owner membership; file_count follows the
// file away; the jobs rows follow the tasks and keep their user.
func TestUploadsAreAttributedAndJobsFollowTasks(t *testing.T) {
	dsn := catalogtest.Start(t)
	m := open(t, dsn)
	u := openUsers(t, dsn)
	exec(t, dsn, `INSERT INTO users (id, display_name, token, is_admin) VALUES (1, 'Admin', 'x', true), (7, 'Ann', 'y', false)`)

	// Ann uploads a.txt into a new partition; the task is queued.
	s := fsm.New()
	task := &fsm.Task{ID: "t1", Partition: "docs", FileID: "a", File: fsm.FileRef{Name: "a.txt", Hash: HashToken("a")}, State: fsm.Queued, Submitted: t0}
	s.Tasks["t1"] = task
	s.Files[fsm.FileKey("docs", "a")] = &fsm.File{Partition: "docs", FileID: "a", TaskID: "t1", Ref: task.File, State: fsm.Queued}
	if err := u.RecordCreator(ctx, 7, "docs"); err != nil {
		t.Fatal(err)
	}
	if err := u.RecordUpload(ctx, 7, "t1", "docs", "a", "a.txt"); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Sync(ctx, 1, Snapshot(s, Options{})); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM jobs WHERE id = 't1' AND status = 'QUEUED' AND user_id = 7 AND filename = 'a.txt'`); n != 1 {
		t.Fatal("the queued job")
	}
	// It runs, then completes: the file is live.
	task.State, task.Started = fsm.Running, t0+1e9
	if _, err := m.Sync(ctx, 2, Snapshot(s, Options{})); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM jobs WHERE id = 't1' AND status = 'SERIALIZING' AND started_at IS NOT NULL AND user_id = 7`); n != 1 {
		t.Fatal("the running job")
	}
	task.State, task.Finished, task.Chunks = fsm.Completed, t0+2e9, 2
	f := s.Files[fsm.FileKey("docs", "a")]
	f.State, f.LiveTask, f.LiveChunks, f.Updated = fsm.Completed, "t1", 2, t0+2e9
	p, err := m.Sync(ctx, 3, Snapshot(s, Options{Dimension: 384}))
	if err != nil {
		t.Fatal(err)
	}
	if p.FileCounts[7] != 1 {
		t.Fatalf("plan counts %v", p.FileCounts)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files WHERE file_id = 'a' AND created_by = 7 AND chunk_count = 2 AND content_sha256 = $1
		AND indexed_at = to_timestamp(1700000002)`, HashToken("a")); n != 1 {
		t.Fatal("the file row's columns")
	}
	if n := count(t, dsn, `SELECT count(*) FROM users WHERE id = 7 AND file_count = 1`); n != 1 {
		t.Fatal("ann's file_count")
	}
	if n := count(t, dsn, `SELECT count(*) FROM jobs WHERE id = 't1' AND status = 'COMPLETED' AND completed_at IS NOT NULL AND user_id = 7`); n != 1 {
		t.Fatal("the completed job")
	}
	if n := count(t, dsn, `SELECT count(*) FROM partition_memberships WHERE partition_name = 'docs' AND user_id = 7 AND role = 'owner'`); n != 1 {
		t.Fatal("the creator's owner membership")
	}
	if n := count(t, dsn, `SELECT count(*) FROM partitions WHERE partition = 'docs' AND dimension = 384`); n != 1 {
		t.Fatal("the partition's dimension")
	}
	// Syncing again counts nothing twice.
	if p, err := m.Sync(ctx, 4, Snapshot(s, Options{Dimension: 384})); err != nil || !p.Empty() {
		t.Fatalf("repeat: %+v %v", p, err)
	}
	// The file is deleted and the ledger drops the task: the count, the
	// row and the job go; the partition (and so its membership) with them.
	delete(s.Files, fsm.FileKey("docs", "a"))
	delete(s.Tasks, "t1")
	if _, err := m.Sync(ctx, 5, Snapshot(s, Options{Dimension: 384})); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT file_count FROM users WHERE id = 7`); n != 0 {
		t.Fatalf("file_count %d after the delete", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM jobs`) + count(t, dsn, `SELECT count(*) FROM partition_memberships`) +
		count(t, dsn, `SELECT count(*) FROM ragnode_catalog_creators`); n != 0 {
		t.Fatalf("%d rows left", n)
	}
}
