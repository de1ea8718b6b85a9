package node

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ragnode/ragnode/fsm"
	"github.com/ragnode/ragnode/node/catalog"
	"github.com/ragnode/ragnode/node/catalog/catalogtest"
)

func catalogCount(t *testing.T, dsn, q string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	var n int
	if err := c.QueryRow(ctx, q).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The leader is killed while its catalog sync of a large delete is inside
// its transaction (held there by a row lock the test takes); the new
// leader's sync applies the delete, exactly once, and stores its position.
func TestCatalogSurvivesLeaderKillDuringLargeDelete(t *testing.T) {
	dsn := catalogtest.Start(t)
	c := newCluster(t)
	checksum, _ := ParseRunner("checksum")
	ns := c.startN(3, func(_ int, cfg *Config) {
		cfg.Catalog, cfg.Runner = dsn, checksum
	})
	waitFor(t, 15*time.Second, "leader", func() bool { return c.leader() != nil && len(c.leader().peers.alive()) == 2 })
	// Blob copies between nodes need the node credential, which each node
	// learns from the ledger (under -race on two cores this can lag).
	waitFor(t, 15*time.Second, "every node knows the node credential", func() bool {
		for _, n := range ns {
			if n.peerSecret() == "" {
				return false
			}
		}
		return true
	})
	const files = 120
	for i := range files {
		if _, err := clientOf(ns[i%3]).Submit(ctxT(t, 10*time.Second), submitReq("big", fmt.Sprintf("f%03d.txt", i)), strings.NewReader(fmt.Sprint("body ", i))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := clientOf(ns[0]).Submit(ctxT(t, 10*time.Second), submitReq("keep", "k.txt"), strings.NewReader("kept")); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 60*time.Second, "catalog holds every file", func() bool {
		return catalogCount(t, dsn, `SELECT count(*) FROM files`) == files+1
	})
	waitFor(t, 30*time.Second, "a COMPLETED jobs row per task", func() bool {
		return catalogCount(t, dsn, `SELECT count(*) FROM jobs WHERE status = 'COMPLETED' AND completed_at IS NOT NULL`) == files+1
	})
	before := catalogCount(t, dsn, `SELECT applied_index FROM ragnode_catalog_position`)

	ctx := context.Background()
	lock, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close(ctx)
	ltx, err := lock.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ltx.Exec(ctx, `SELECT 1 FROM files WHERE file_id = 'f119.txt' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	old := c.leader()
	cc := compatClient{t: t, base: "http://" + old.HTTPAddr()}
	if code, body := cc.do("DELETE", "/partition/big", nil, ""); code != 204 && code != 200 && code != 202 {
		t.Fatalf("delete partition: %d %s", code, body)
	}
	waitFor(t, 30*time.Second, "the leader's sync to block inside its transaction", func() bool {
		return catalogCount(t, dsn, `SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'`) > 0
	})
	old.Kill()
	ltx.Rollback(ctx)
	waitFor(t, 30*time.Second, "a new leader", func() bool { l := c.leader(); return l != nil && l != old })
	waitFor(t, 60*time.Second, "the new leader to apply the delete", func() bool {
		return catalogCount(t, dsn, `SELECT count(*) FROM files`) == 1
	})
	if n := catalogCount(t, dsn, `SELECT count(*) FROM files WHERE file_id = 'k.txt' AND partition_name = 'keep'`); n != 1 {
		t.Fatalf("the kept file: %d rows", n)
	}
	if n := catalogCount(t, dsn, `SELECT count(*) FROM partitions WHERE partition = 'big'`); n != 0 {
		t.Fatal("the deleted partition is still in the catalog")
	}
	// The jobs rows are the new leader's tasks, each in its state.
	waitFor(t, 30*time.Second, "the jobs rows to match the new leader's tasks", func() bool {
		return jobsMatchLedger(t, dsn, c.leader())
	})
	after := catalogCount(t, dsn, `SELECT applied_index FROM ragnode_catalog_position`)
	if after <= before {
		t.Fatalf("position %d after the delete, %d before", after, before)
	}
	if idx := c.leader().fsm.AppliedIndex(); uint64(after) > idx {
		t.Fatalf("catalog position %d is ahead of the leader's ledger %d", after, idx)
	}
}

// jobsMatchLedger reports whether the catalog's jobs rows are exactly n's
// ledger tasks with their states in OpenRAG's words.
func jobsMatchLedger(t *testing.T, dsn string, n *Node) bool {
	t.Helper()
	want := map[string]string{}
	n.fsm.View(func(s *fsm.State) {
		v := catalog.Snapshot(s, catalog.Options{})
		for id, j := range v.Jobs {
			want[id] = j.Status
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT id, status FROM jobs`)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			t.Fatal(err)
		}
		got[id] = st
	}
	rows.Close()
	return len(want) > 0 && maps.Equal(got, want)
}
