package catalog

// The catalog's DDL, derived from OpenRAG's newest table definitions
// (services/persistence/schema.py, the metadata its Alembic migrations
// are checked against) for the tables ragnode writes or reads:
// partitions, files, users, partition_memberships and jobs.
//
// Two kinds of database meet it:
//   - one OpenRAG already created (any version since the catalog has
//     existed): tables exist, so CREATE TABLE does nothing, and each
//     column or index a newer OpenRAG has is added when missing, under
//     the name OpenRAG's migrations give it, so that they later find it
//     and skip it (every one of them checks for the column, index or
//     table first);
//   - a fresh one: the tables are created as OpenRAG's own start-up
//     create_all() creates them before its migrations run (PostgreSQL's
//     default constraint names, SQLAlchemy's ix_<table>_<column> index
//     names), which is the state those migrations are written to accept.
//     Tables ragnode never touches (workspaces, model endpoints, presets,
//     prompts, OIDC sessions, ...) are left to OpenRAG's migrations.
//
// Columns whose default OpenRAG sets in Python (SQLAlchemy default=) get
// the same value as a server default, so OpenRAG's raw-SQL inserts into a
// table ragnode created never miss a NOT NULL value.
//
// Every statement is idempotent; the whole script runs in one transaction
// under an advisory lock, so nodes opening the catalog at once do not race
// on CREATE ... IF NOT EXISTS.
const schema = `
SELECT pg_advisory_xact_lock(7461726167); -- 'ragnode catalog'

CREATE TABLE IF NOT EXISTS partitions (
	id SERIAL PRIMARY KEY,
	partition VARCHAR NOT NULL,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL DEFAULT now(),
	description VARCHAR NOT NULL DEFAULT '',
	embedder VARCHAR NOT NULL DEFAULT 'default',
	indexation_preset VARCHAR NOT NULL DEFAULT 'default',
	retrieval_preset VARCHAR NOT NULL DEFAULT 'default',
	dimension INTEGER NOT NULL DEFAULT 1024,
	collection_name VARCHAR,
	chat_history_depth INTEGER NOT NULL DEFAULT 0,
	chat_llm VARCHAR,
	generation_prompt_names JSONB NOT NULL DEFAULT '{}'::jsonb,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now()
);
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS description VARCHAR NOT NULL DEFAULT '';
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS embedder VARCHAR NOT NULL DEFAULT 'default';
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS indexation_preset VARCHAR NOT NULL DEFAULT 'default';
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS retrieval_preset VARCHAR NOT NULL DEFAULT 'default';
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS dimension INTEGER NOT NULL DEFAULT 1024;
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS collection_name VARCHAR;
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS chat_history_depth INTEGER NOT NULL DEFAULT 0;
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS chat_llm VARCHAR;
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS generation_prompt_names JSONB NOT NULL DEFAULT '{}'::jsonb;
ALTER TABLE partitions ADD COLUMN IF NOT EXISTS updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now();
-- partition is unique through this index (unique=True, index=True), which
-- the foreign keys below reference.
CREATE UNIQUE INDEX IF NOT EXISTS ix_partitions_partition ON partitions (partition);
CREATE INDEX IF NOT EXISTS ix_partitions_created_at ON partitions (created_at);

CREATE TABLE IF NOT EXISTS users (
	id SERIAL PRIMARY KEY,
	external_user_id VARCHAR,
	display_name VARCHAR,
	email VARCHAR,
	token VARCHAR,
	is_admin BOOLEAN NOT NULL DEFAULT false,
	created_at TIMESTAMP WITHOUT TIME ZONE NOT NULL DEFAULT now(),
	file_quota INTEGER,
	file_count INTEGER NOT NULL DEFAULT 0,
	managed_by_config BOOLEAN NOT NULL DEFAULT false
);
ALTER TABLE users ADD COLUMN IF NOT EXISTS email VARCHAR;
ALTER TABLE users ADD COLUMN IF NOT EXISTS file_quota INTEGER;
ALTER TABLE users ADD COLUMN IF NOT EXISTS file_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN IF NOT EXISTS managed_by_config BOOLEAN NOT NULL DEFAULT false;
CREATE UNIQUE INDEX IF NOT EXISTS ix_users_external_user_id ON users (external_user_id);
CREATE UNIQUE INDEX IF NOT EXISTS ix_users_email ON users (email);
CREATE UNIQUE INDEX IF NOT EXISTS ix_users_token ON users (token);
CREATE INDEX IF NOT EXISTS ix_users_lower_display_name_pattern ON users (lower(display_name) text_pattern_ops);

CREATE TABLE IF NOT EXISTS files (
	id SERIAL PRIMARY KEY,
	file_id VARCHAR NOT NULL,
	independently_indexed BOOLEAN NOT NULL DEFAULT true,
	workspace_cleanup_claimed BOOLEAN NOT NULL DEFAULT false,
	workspace_cleanup_claimed_at TIMESTAMP WITH TIME ZONE,
	workspace_cleanup_started BOOLEAN NOT NULL DEFAULT false,
	workspace_cleanup_failed BOOLEAN NOT NULL DEFAULT false,
	workspace_cleanup_state VARCHAR NOT NULL DEFAULT 'NONE',
	partition_name VARCHAR NOT NULL REFERENCES partitions (partition),
	file_metadata JSON,
	indexation_config JSONB,
	created_by INTEGER REFERENCES users (id) ON DELETE SET NULL,
	relationship_id VARCHAR,
	parent_id VARCHAR,
	content_sha256 VARCHAR(64),
	chunk_count INTEGER,
	indexed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	CONSTRAINT uix_file_id_partition UNIQUE (file_id, partition_name),
	CONSTRAINT ck_files_chunk_count_non_negative CHECK (chunk_count >= 0)
);
ALTER TABLE files ADD COLUMN IF NOT EXISTS independently_indexed BOOLEAN NOT NULL DEFAULT true;
ALTER TABLE files ADD COLUMN IF NOT EXISTS workspace_cleanup_claimed BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE files ADD COLUMN IF NOT EXISTS workspace_cleanup_claimed_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE files ADD COLUMN IF NOT EXISTS workspace_cleanup_started BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE files ADD COLUMN IF NOT EXISTS workspace_cleanup_failed BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE files ADD COLUMN IF NOT EXISTS workspace_cleanup_state VARCHAR NOT NULL DEFAULT 'NONE';
ALTER TABLE files ADD COLUMN IF NOT EXISTS indexation_config JSONB;
ALTER TABLE files ADD COLUMN IF NOT EXISTS created_by INTEGER;
ALTER TABLE files ADD COLUMN IF NOT EXISTS relationship_id VARCHAR;
ALTER TABLE files ADD COLUMN IF NOT EXISTS parent_id VARCHAR;
ALTER TABLE files ADD COLUMN IF NOT EXISTS content_sha256 VARCHAR(64);
ALTER TABLE files ADD COLUMN IF NOT EXISTS chunk_count INTEGER;
ALTER TABLE files ADD COLUMN IF NOT EXISTS indexed_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now();
CREATE INDEX IF NOT EXISTS ix_files_file_id ON files (file_id);
CREATE INDEX IF NOT EXISTS ix_files_partition_name ON files (partition_name);
CREATE INDEX IF NOT EXISTS ix_files_created_by ON files (created_by);
CREATE INDEX IF NOT EXISTS ix_files_relationship_id ON files (relationship_id);
CREATE INDEX IF NOT EXISTS ix_files_parent_id ON files (parent_id);
CREATE INDEX IF NOT EXISTS ix_partition_file ON files (partition_name, file_id);
CREATE INDEX IF NOT EXISTS ix_relationship_partition ON files (relationship_id, partition_name);
CREATE INDEX IF NOT EXISTS ix_parent_partition ON files (parent_id, partition_name);
-- Duplicate detection: one file per content in a partition.
CREATE UNIQUE INDEX IF NOT EXISTS uix_files_partition_content_sha256 ON files (partition_name, content_sha256)
	WHERE content_sha256 IS NOT NULL;

CREATE TABLE IF NOT EXISTS partition_memberships (
	id SERIAL PRIMARY KEY,
	partition_name VARCHAR NOT NULL REFERENCES partitions (partition) ON DELETE CASCADE,
	user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
	role VARCHAR NOT NULL,
	added_at TIMESTAMP WITHOUT TIME ZONE NOT NULL DEFAULT now(),
	CONSTRAINT uix_partition_user UNIQUE (partition_name, user_id),
	CONSTRAINT ck_membership_role CHECK (role IN ('owner','editor','viewer'))
);
CREATE INDEX IF NOT EXISTS ix_partition_memberships_partition_name ON partition_memberships (partition_name);
CREATE INDEX IF NOT EXISTS ix_partition_memberships_user_id ON partition_memberships (user_id);
CREATE INDEX IF NOT EXISTS ix_user_partition ON partition_memberships (user_id, partition_name);

-- One row per indexing task. No foreign key to partitions: a job is a
-- record that outlives its partition (OpenRAG's own reasoning).
CREATE TABLE IF NOT EXISTS jobs (
	id VARCHAR PRIMARY KEY,
	partition VARCHAR NOT NULL,
	file_id VARCHAR,
	filename VARCHAR,
	user_id INTEGER REFERENCES users (id) ON DELETE SET NULL,
	status VARCHAR NOT NULL,
	error VARCHAR,
	error_reason VARCHAR,
	degraded_stages VARCHAR[] NOT NULL DEFAULT ARRAY[]::text[],
	created_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL DEFAULT now(),
	started_at TIMESTAMP WITH TIME ZONE,
	completed_at TIMESTAMP WITH TIME ZONE,
	stage_timings JSONB,
	CONSTRAINT ck_jobs_status CHECK (status IN ('QUEUED','SERIALIZING','COMPLETED','FAILED','CANCELLED'))
);
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS filename VARCHAR;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS error_reason VARCHAR;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS degraded_stages VARCHAR[] NOT NULL DEFAULT ARRAY[]::text[];
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS started_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS completed_at TIMESTAMP WITH TIME ZONE;
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS stage_timings JSONB;
CREATE INDEX IF NOT EXISTS ix_jobs_status_created_at ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS ix_jobs_user_status ON jobs (user_id, status);
CREATE INDEX IF NOT EXISTS ix_jobs_settled_at ON jobs ((COALESCE(completed_at, created_at)));
CREATE INDEX IF NOT EXISTS ix_jobs_partition_file_id ON jobs (partition, file_id);

-- ragnode's own bookkeeping: the Raft index the catalog reflects, the
-- partitions rows and jobs rows ragnode created (only those it may change
-- or delete), and who created each partition ragnode created (its owner
-- membership).
CREATE TABLE IF NOT EXISTS ragnode_catalog_position (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	applied_index BIGINT NOT NULL
);
INSERT INTO ragnode_catalog_position (id, applied_index) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS ragnode_catalog_partitions (
	partition VARCHAR PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS ragnode_catalog_jobs (
	id VARCHAR PRIMARY KEY
);
CREATE TABLE IF NOT EXISTS ragnode_catalog_creators (
	partition VARCHAR PRIMARY KEY,
	user_id INTEGER NOT NULL
);
`
