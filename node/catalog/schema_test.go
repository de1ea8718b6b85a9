package catalog

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/ragnode/ragnode/node/catalog/catalogtest"
)

// openRAGTables is OpenRAG's newest definition of the tables ragnode
// creates (services/persistence/schema.py), as information_schema shows
// them: column, type, nullable. Written from upstream's Table()
// declarations, not from schema.go.
var openRAGTables = map[string][]string{
	"partitions": {
		"id integer NO", "partition character varying NO", "created_at timestamp without time zone NO",
		"description character varying NO", "embedder character varying NO", "indexation_preset character varying NO",
		"retrieval_preset character varying NO", "dimension integer NO", "collection_name character varying YES",
		"chat_history_depth integer NO", "chat_llm character varying YES", "generation_prompt_names jsonb NO",
		"updated_at timestamp with time zone NO",
	},
	"files": {
		"id integer NO", "file_id character varying NO", "independently_indexed boolean NO",
		"workspace_cleanup_claimed boolean NO", "workspace_cleanup_claimed_at timestamp with time zone YES",
		"workspace_cleanup_started boolean NO", "workspace_cleanup_failed boolean NO", "workspace_cleanup_state character varying NO",
		"partition_name character varying NO", "file_metadata json YES", "indexation_config jsonb YES", "created_by integer YES",
		"relationship_id character varying YES", "parent_id character varying YES", "content_sha256 character varying YES",
		"chunk_count integer YES", "indexed_at timestamp with time zone NO",
	},
	"users": {
		"id integer NO", "external_user_id character varying YES", "display_name character varying YES", "email character varying YES",
		"token character varying YES", "is_admin boolean NO", "created_at timestamp without time zone NO", "file_quota integer YES",
		"file_count integer NO", "managed_by_config boolean NO",
	},
	"partition_memberships": {
		"id integer NO", "partition_name character varying NO", "user_id integer NO", "role character varying NO",
		"added_at timestamp without time zone NO",
	},
	"jobs": {
		"id character varying NO", "partition character varying NO", "file_id character varying YES", "filename character varying YES",
		"user_id integer YES", "status character varying NO", "error character varying YES", "error_reason character varying YES",
		"degraded_stages ARRAY NO", "created_at timestamp with time zone NO", "updated_at timestamp with time zone NO",
		"started_at timestamp with time zone YES", "completed_at timestamp with time zone YES", "stage_timings jsonb YES",
	},
}

// The names OpenRAG's migrations look for before creating an index or a
// constraint (schema_helpers index_exists, fk_exists, ...): present, they
// are skipped; create_all's names for the rest.
var openRAGIndexes = []string{
	"ix_partitions_partition", "ix_partitions_created_at",
	"ix_files_file_id", "ix_files_partition_name", "ix_files_created_by", "ix_files_relationship_id", "ix_files_parent_id",
	"ix_partition_file", "ix_relationship_partition", "ix_parent_partition", "uix_files_partition_content_sha256", "uix_file_id_partition",
	"ix_users_external_user_id", "ix_users_email", "ix_users_token", "ix_users_lower_display_name_pattern",
	"ix_partition_memberships_partition_name", "ix_partition_memberships_user_id", "ix_user_partition", "uix_partition_user",
	"ix_jobs_status_created_at", "ix_jobs_user_status", "ix_jobs_settled_at", "ix_jobs_partition_file_id",
}

func columns(t *testing.T, dsn, table string) []string {
	t.Helper()
	rows, err := connect(t, dsn).Query(ctx, `SELECT column_name, data_type, is_nullable FROM information_schema.columns
		WHERE table_schema = 'public' AND table_name = $1`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var c, ty, null string
		if err := rows.Scan(&c, &ty, &null); err != nil {
			t.Fatal(err)
		}
		out = append(out, c+" "+ty+" "+null)
	}
	sort.Strings(out)
	return out
}

func indexes(t *testing.T, dsn string) map[string]bool {
	t.Helper()
	rows, err := connect(t, dsn).Query(ctx, `SELECT indexname FROM pg_indexes WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]bool{}
	for rows.Next() {
		var n string
		rows.Scan(&n)
		out[n] = true
	}
	return out
}

func checkNewestTables(t *testing.T, dsn string) {
	t.Helper()
	for table, want := range openRAGTables {
		w := append([]string(nil), want...)
		sort.Strings(w)
		if got := columns(t, dsn, table); strings.Join(got, "\n") != strings.Join(w, "\n") {
			t.Errorf("%s:\n got %s\nwant %s", table, strings.Join(got, ", "), strings.Join(w, ", "))
		}
	}
	ix := indexes(t, dsn)
	for _, n := range openRAGIndexes {
		if !ix[n] {
			t.Errorf("index %s missing", n)
		}
	}
}

// A fresh database ends with OpenRAG's newest tables, under the names its
// create_all gives them; opening again (another node, a restart) changes
// nothing; and OpenRAG's own inserts, which leave Python-side defaults to
// the server here, succeed.
func TestFreshCatalogHasOpenRAGsNewestTables(t *testing.T) {
	dsn := catalogtest.Start(t)
	open(t, dsn)
	checkNewestTables(t, dsn)
	before := fmt.Sprint(indexes(t, dsn))
	open(t, dsn)
	if after := fmt.Sprint(indexes(t, dsn)); after != before {
		t.Fatalf("a second opening changed the indexes:\n%s\n%s", before, after)
	}
	// OpenRAG's asyncpg repositories (create_partition, create_legacy_user,
	// add_file_to_partition, create_job) name only some columns.
	exec(t, dsn, `INSERT INTO partitions (partition, created_at) VALUES ('p', now());
		INSERT INTO users (display_name, token, is_admin) VALUES ('Admin', 'x', true);
		INSERT INTO partition_memberships (partition_name, user_id, role, added_at) VALUES ('p', 1, 'owner', now());
		INSERT INTO files (file_id, partition_name, file_metadata, indexation_config, created_by, relationship_id, parent_id,
			content_sha256, independently_indexed) VALUES ('f', 'p', '{}', NULL, 1, NULL, NULL, NULL, true);
		INSERT INTO jobs (id, status, partition, file_id, user_id) VALUES ('j', 'QUEUED', 'p', 'f', 1)`)
	if n := count(t, dsn, `SELECT count(*) FROM files WHERE workspace_cleanup_state = 'NONE' AND indexed_at IS NOT NULL`); n != 1 {
		t.Fatal("files defaults")
	}
}

// A catalog an older OpenRAG made (its first migrations: partitions and
// files, then users and memberships, with data) is brought up to the
// newest tables without losing a row; rows, ownership and constraints
// keep working.
func TestOpenUpgradesAnOlderOpenRAGCatalog(t *testing.T) {
	dsn := catalogtest.Start(t)
	exec(t, dsn, `
		CREATE TABLE partitions (id SERIAL PRIMARY KEY, partition VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL);
		CREATE INDEX ix_partitions_created_at ON partitions (created_at);
		CREATE UNIQUE INDEX ix_partitions_partition ON partitions (partition);
		CREATE TABLE files (id SERIAL PRIMARY KEY, file_id VARCHAR NOT NULL, partition_name VARCHAR NOT NULL REFERENCES partitions (partition),
			file_metadata JSON, CONSTRAINT uix_file_id_partition UNIQUE (file_id, partition_name));
		CREATE INDEX ix_files_file_id ON files (file_id);
		CREATE INDEX ix_files_partition_name ON files (partition_name);
		CREATE INDEX ix_partition_file ON files (partition_name, file_id);
		CREATE TABLE users (id SERIAL PRIMARY KEY, external_user_id VARCHAR, display_name VARCHAR, token VARCHAR,
			is_admin BOOLEAN NOT NULL, created_at TIMESTAMP NOT NULL);
		CREATE UNIQUE INDEX ix_users_token ON users (token);
		CREATE TABLE partition_memberships (id SERIAL PRIMARY KEY, partition_name VARCHAR NOT NULL REFERENCES partitions (partition) ON DELETE CASCADE,
			user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE, role VARCHAR NOT NULL, added_at TIMESTAMP NOT NULL,
			CONSTRAINT uix_partition_user UNIQUE (partition_name, user_id), CONSTRAINT ck_membership_role CHECK (role IN ('owner','editor','viewer')));
		INSERT INTO partitions (partition, created_at) VALUES ('old', now());
		INSERT INTO files (file_id, partition_name, file_metadata) VALUES ('kept', 'old', '{"filename": "kept.txt"}');
		INSERT INTO users (display_name, token, is_admin, created_at) VALUES ('Admin', 'x', true, now());
		INSERT INTO partition_memberships (partition_name, user_id, role, added_at) VALUES ('old', 1, 'owner', now())`)
	m := open(t, dsn)
	open(t, dsn) // idempotent
	checkNewestTables(t, dsn)
	if n := count(t, dsn, `SELECT count(*) FROM files WHERE file_id = 'kept' AND independently_indexed AND chunk_count IS NULL`); n != 1 {
		t.Fatal("the old file row")
	}
	if n := count(t, dsn, `SELECT count(*) FROM users WHERE id = 1 AND file_count = 0 AND file_quota IS NULL`); n != 1 {
		t.Fatal("the old user row")
	}
	if _, err := m.Sync(ctx, 3, view(file("old", "new", nil), file("fresh", "a", nil))); err != nil {
		t.Fatal(err)
	}
	if n := count(t, dsn, `SELECT count(*) FROM files`); n != 3 {
		t.Fatalf("files: %d", n)
	}
	if n := count(t, dsn, `SELECT count(*) FROM ragnode_catalog_partitions`); n != 1 {
		t.Fatal("ragnode took ownership of OpenRAG's partition")
	}
}
