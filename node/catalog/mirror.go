package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// schema creates OpenRAG's partitions and files tables when the database
// does not have them yet (OpenRAG's alembic migrations make the same
// columns, names and constraints; created_by is kept without its foreign
// key to users, which ragnode does not manage), and ragnode's own two
// tables: the applied position, and the partitions ragnode created.
const schema = `
CREATE TABLE IF NOT EXISTS partitions (
	id SERIAL PRIMARY KEY,
	partition VARCHAR NOT NULL UNIQUE,
	created_at TIMESTAMP NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ix_partitions_created_at ON partitions (created_at);
CREATE TABLE IF NOT EXISTS files (
	id SERIAL PRIMARY KEY,
	file_id VARCHAR NOT NULL,
	partition_name VARCHAR NOT NULL REFERENCES partitions (partition),
	file_metadata JSON,
	created_by INTEGER,
	relationship_id VARCHAR,
	parent_id VARCHAR,
	CONSTRAINT uix_file_id_partition UNIQUE (file_id, partition_name)
);
CREATE INDEX IF NOT EXISTS ix_files_file_id ON files (file_id);
CREATE INDEX IF NOT EXISTS ix_files_partition_name ON files (partition_name);
CREATE INDEX IF NOT EXISTS ix_partition_file ON files (partition_name, file_id);
CREATE INDEX IF NOT EXISTS ix_relationship_partition ON files (relationship_id, partition_name);
CREATE INDEX IF NOT EXISTS ix_parent_partition ON files (parent_id, partition_name);
CREATE TABLE IF NOT EXISTS ragnode_catalog_position (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	applied_index BIGINT NOT NULL
);
INSERT INTO ragnode_catalog_position (id, applied_index) VALUES (1, 0) ON CONFLICT (id) DO NOTHING;
CREATE TABLE IF NOT EXISTS ragnode_catalog_partitions (
	partition VARCHAR PRIMARY KEY
);
`

// ErrStale is returned by Sync for a view older than the one the catalog
// already reflects (a deposed leader's late sync).
var ErrStale = errors.New("catalog: view is older than the catalog's applied position")

// Mirror is a connection to the catalog database. It is not safe for
// concurrent use: one leader loop owns it.
type Mirror struct {
	conn *pgx.Conn
}

// Open connects to dsn (postgres://...) and creates the tables that are
// missing.
func Open(ctx context.Context, dsn string) (*Mirror, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("catalog: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, schema); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("catalog: create tables: %w", err)
	}
	return &Mirror{conn: conn}, nil
}

// Close closes the connection.
func (m *Mirror) Close() error { return m.conn.Close(context.Background()) }

// Applied is the Raft index the catalog reflects.
func (m *Mirror) Applied(ctx context.Context) (uint64, error) {
	var idx int64
	err := m.conn.QueryRow(ctx, `SELECT applied_index FROM ragnode_catalog_position WHERE id = 1`).Scan(&idx)
	return uint64(idx), err
}

// Sync makes the catalog reflect want, the ledger's rows at Raft index
// index, in one transaction that also stores index. The position row is
// locked first, so two syncs (an old and a new leader) serialize, and the
// older view is refused with ErrStale. It returns the plan applied.
func (m *Mirror) Sync(ctx context.Context, index uint64, want map[Key]Row) (Plan, error) {
	tx, err := m.conn.Begin(ctx)
	if err != nil {
		return Plan{}, fmt.Errorf("catalog: begin: %w", err)
	}
	defer tx.Rollback(context.Background()) // no-op after Commit
	var applied int64
	if err := tx.QueryRow(ctx, `SELECT applied_index FROM ragnode_catalog_position WHERE id = 1 FOR UPDATE`).Scan(&applied); err != nil {
		return Plan{}, fmt.Errorf("catalog: read position: %w", err)
	}
	if index < uint64(applied) {
		return Plan{}, fmt.Errorf("%w (view at %d, catalog at %d)", ErrStale, index, applied)
	}
	have, err := readRows(ctx, tx)
	if err != nil {
		return Plan{}, err
	}
	owned, err := readStrings(ctx, tx, `SELECT partition FROM ragnode_catalog_partitions`)
	if err != nil {
		return Plan{}, err
	}
	p := Diff(have, owned, want)
	if err := apply(ctx, tx, p); err != nil {
		return Plan{}, err
	}
	if _, err := tx.Exec(ctx, `UPDATE ragnode_catalog_position SET applied_index = $1 WHERE id = 1`, int64(index)); err != nil {
		return Plan{}, fmt.Errorf("catalog: store position: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return Plan{}, fmt.Errorf("catalog: commit: %w", err)
	}
	return p, nil
}

func readRows(ctx context.Context, tx pgx.Tx) (map[Key]Row, error) {
	rows, err := tx.Query(ctx, `SELECT partition_name, file_id, file_metadata, relationship_id, parent_id FROM files
		WHERE file_metadata::jsonb ->> $1 = $2`, OwnerKey, OwnerValue)
	if err != nil {
		return nil, fmt.Errorf("catalog: read files: %w", err)
	}
	defer rows.Close()
	out := map[Key]Row{}
	for rows.Next() {
		var r Row
		var raw []byte
		if err := rows.Scan(&r.Partition, &r.FileID, &raw, &r.RelationshipID, &r.ParentID); err != nil {
			return nil, fmt.Errorf("catalog: read files: %w", err)
		}
		if len(raw) > 0 {
			if err := json.Unmarshal(raw, &r.Metadata); err != nil {
				return nil, fmt.Errorf("catalog: file %s/%s metadata: %w", r.Partition, r.FileID, err)
			}
		}
		out[Key{r.Partition, r.FileID}] = r
	}
	return out, rows.Err()
}

func readStrings(ctx context.Context, tx pgx.Tx, q string) ([]string, error) {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("catalog: %s: %w", q, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func apply(ctx context.Context, tx pgx.Tx, p Plan) error {
	if len(p.AddPartitions) > 0 {
		if _, err := tx.Exec(ctx, `INSERT INTO partitions (partition, created_at) SELECT unnest($1::varchar[]), now() ON CONFLICT (partition) DO NOTHING`, p.AddPartitions); err != nil {
			return fmt.Errorf("catalog: add partitions: %w", err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO ragnode_catalog_partitions (partition) SELECT unnest($1::varchar[]) ON CONFLICT DO NOTHING`, p.AddPartitions); err != nil {
			return fmt.Errorf("catalog: own partitions: %w", err)
		}
	}
	if len(p.Deletes) > 0 {
		parts, ids := make([]string, len(p.Deletes)), make([]string, len(p.Deletes))
		for i, k := range p.Deletes {
			parts[i], ids[i] = k.Partition, k.FileID
		}
		if _, err := tx.Exec(ctx, `DELETE FROM files f USING unnest($1::varchar[], $2::varchar[]) AS d(p, fid)
			WHERE f.partition_name = d.p AND f.file_id = d.fid`, parts, ids); err != nil {
			return fmt.Errorf("catalog: delete files: %w", err)
		}
	}
	for _, r := range p.Upserts {
		meta, err := json.Marshal(r.Metadata)
		if err != nil {
			return fmt.Errorf("catalog: file %s/%s metadata: %w", r.Partition, r.FileID, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO files (file_id, partition_name, file_metadata, relationship_id, parent_id)
			VALUES ($1, $2, $3::json, $4, $5)
			ON CONFLICT (file_id, partition_name) DO UPDATE SET file_metadata = EXCLUDED.file_metadata,
				relationship_id = EXCLUDED.relationship_id, parent_id = EXCLUDED.parent_id`,
			r.FileID, r.Partition, string(meta), r.RelationshipID, r.ParentID); err != nil {
			return fmt.Errorf("catalog: upsert file %s/%s: %w", r.Partition, r.FileID, err)
		}
	}
	if len(p.DropPartitions) > 0 {
		// Files OpenRAG itself keeps in a partition ragnode created hold it.
		if _, err := tx.Exec(ctx, `DELETE FROM partitions WHERE partition = ANY($1::varchar[])
			AND NOT EXISTS (SELECT 1 FROM files WHERE files.partition_name = partitions.partition)`, p.DropPartitions); err != nil {
			return fmt.Errorf("catalog: drop partitions: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ragnode_catalog_partitions WHERE partition = ANY($1::varchar[])`, p.DropPartitions); err != nil {
			return fmt.Errorf("catalog: disown partitions: %w", err)
		}
	}
	return nil
}
