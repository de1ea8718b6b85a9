package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrStale is returned by Sync for a view older than the one the catalog
// already reflects (a deposed leader's late sync).
var ErrStale = errors.New("catalog: view is older than the catalog's applied position")

// Mirror is a connection to the catalog database. It is not safe for
// concurrent use: one leader loop owns it.
type Mirror struct {
	conn *pgx.Conn
}

// Open connects to dsn (postgres://...) and brings the tables up to the
// schema ragnode writes (schema.go).
func Open(ctx context.Context, dsn string) (*Mirror, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, fmt.Errorf("catalog: connect: %w", err)
	}
	if err := migrate(ctx, conn); err != nil {
		conn.Close(context.Background())
		return nil, err
	}
	return &Mirror{conn: conn}, nil
}

// migrate runs the schema in one transaction (its advisory lock makes
// concurrent openings wait for each other).
func migrate(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("catalog: begin schema: %w", err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, schema); err != nil {
		return fmt.Errorf("catalog: create tables: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("catalog: create tables: %w", err)
	}
	return nil
}

// Close closes the connection.
func (m *Mirror) Close() error { return m.conn.Close(context.Background()) }

// Applied is the Raft index the catalog reflects.
func (m *Mirror) Applied(ctx context.Context) (uint64, error) {
	var idx int64
	err := m.conn.QueryRow(ctx, `SELECT applied_index FROM ragnode_catalog_position WHERE id = 1`).Scan(&idx)
	return uint64(idx), err
}

// Sync makes the catalog reflect want, the ledger's view at Raft index
// index, in one transaction that also stores index. The position row is
// locked first, so two syncs (an old and a new leader) serialize, and the
// older view is refused with ErrStale. It returns the plan applied.
func (m *Mirror) Sync(ctx context.Context, index uint64, want View) (Plan, error) {
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
	have, err := readHave(ctx, tx)
	if err != nil {
		return Plan{}, err
	}
	want, err = completeView(ctx, tx, want)
	if err != nil {
		return Plan{}, err
	}
	p := Diff(have, want)
	if err := apply(ctx, tx, p); err != nil {
		return Plan{}, err
	}
	if err := ownCreated(ctx, tx); err != nil {
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

// completeView fills in what the request side recorded (each file's
// uploader, from its live task's jobs row) and gives up content hashes
// that rows OpenRAG wrote already hold in the same partition.
func completeView(ctx context.Context, tx pgx.Tx, v View) (View, error) {
	files := make(map[Key]Row, len(v.Files))
	var tasks []string
	for k, r := range v.Files {
		files[k] = r
		if r.Task != "" {
			tasks = append(tasks, r.Task)
		}
	}
	owners := map[string]int64{}
	if len(tasks) > 0 {
		rows, err := tx.Query(ctx, `SELECT id, user_id FROM jobs WHERE user_id IS NOT NULL AND id = ANY($1::varchar[])`, tasks)
		if err != nil {
			return v, fmt.Errorf("catalog: read uploaders: %w", err)
		}
		for rows.Next() {
			var id string
			var uid int64
			if err := rows.Scan(&id, &uid); err != nil {
				rows.Close()
				return v, fmt.Errorf("catalog: read uploaders: %w", err)
			}
			owners[id] = uid
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return v, fmt.Errorf("catalog: read uploaders: %w", err)
		}
	}
	for k, r := range files {
		if uid, ok := owners[r.Task]; ok {
			r.CreatedBy = &uid
			files[k] = r
		}
	}
	rows, err := tx.Query(ctx, `SELECT partition_name, content_sha256 FROM files
		WHERE content_sha256 IS NOT NULL AND (file_metadata::jsonb ->> $1) IS DISTINCT FROM $2`, OwnerKey, OwnerValue)
	if err != nil {
		return v, fmt.Errorf("catalog: read content hashes: %w", err)
	}
	taken := map[Key]bool{}
	for rows.Next() {
		var k Key
		if err := rows.Scan(&k.Partition, &k.FileID); err != nil {
			rows.Close()
			return v, fmt.Errorf("catalog: read content hashes: %w", err)
		}
		taken[k] = true
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return v, fmt.Errorf("catalog: read content hashes: %w", err)
	}
	dedupeContent(files, taken)
	v.Files = files
	return v, nil
}

func readHave(ctx context.Context, tx pgx.Tx) (Have, error) {
	h := Have{Files: map[Key]Row{}, Partitions: map[string]PartitionRow{}, Existing: map[string]bool{}, Jobs: map[string]Job{}}
	rows, err := tx.Query(ctx, `SELECT partition_name, file_id, file_metadata, relationship_id, parent_id, content_sha256,
			COALESCE(chunk_count, 0), indexed_at, indexation_config, created_by
		FROM files WHERE file_metadata::jsonb ->> $1 = $2`, OwnerKey, OwnerValue)
	if err != nil {
		return h, fmt.Errorf("catalog: read files: %w", err)
	}
	for rows.Next() {
		var r Row
		var meta, cfg []byte
		if err := rows.Scan(&r.Partition, &r.FileID, &meta, &r.RelationshipID, &r.ParentID, &r.ContentSHA256,
			&r.ChunkCount, &r.IndexedAt, &cfg, &r.CreatedBy); err != nil {
			rows.Close()
			return h, fmt.Errorf("catalog: read files: %w", err)
		}
		r.IndexedAt = r.IndexedAt.UTC()
		if err := unmarshalObject(meta, &r.Metadata); err != nil {
			rows.Close()
			return h, fmt.Errorf("catalog: file %s/%s metadata: %w", r.Partition, r.FileID, err)
		}
		if err := unmarshalObject(cfg, &r.IndexationConfig); err != nil {
			rows.Close()
			return h, fmt.Errorf("catalog: file %s/%s indexation_config: %w", r.Partition, r.FileID, err)
		}
		h.Files[Key{r.Partition, r.FileID}] = r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return h, fmt.Errorf("catalog: read files: %w", err)
	}

	names, err := readStrings(ctx, tx, `SELECT partition FROM partitions`)
	if err != nil {
		return h, err
	}
	for _, n := range names {
		h.Existing[n] = true
	}
	rows, err = tx.Query(ctx, `SELECT p.partition, p.description, p.embedder, p.indexation_preset, p.retrieval_preset,
			p.dimension, p.collection_name, p.chat_history_depth, p.chat_llm
		FROM partitions p JOIN ragnode_catalog_partitions o ON o.partition = p.partition`)
	if err != nil {
		return h, fmt.Errorf("catalog: read partitions: %w", err)
	}
	for rows.Next() {
		var p PartitionRow
		if err := rows.Scan(&p.Name, &p.Description, &p.Embedder, &p.IndexationPreset, &p.RetrievalPreset,
			&p.Dimension, &p.CollectionName, &p.ChatHistoryDepth, &p.ChatLLM); err != nil {
			rows.Close()
			return h, fmt.Errorf("catalog: read partitions: %w", err)
		}
		h.Partitions[p.Name] = p
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return h, fmt.Errorf("catalog: read partitions: %w", err)
	}

	rows, err = tx.Query(ctx, `SELECT j.id, j.partition, COALESCE(j.file_id, ''), COALESCE(j.filename, ''), j.status, j.error,
			j.created_at, j.started_at, j.completed_at
		FROM jobs j JOIN ragnode_catalog_jobs o ON o.id = j.id`)
	if err != nil {
		return h, fmt.Errorf("catalog: read jobs: %w", err)
	}
	for rows.Next() {
		var j Job
		if err := rows.Scan(&j.ID, &j.Partition, &j.FileID, &j.Filename, &j.Status, &j.Error, &j.Created, &j.Started, &j.Completed); err != nil {
			rows.Close()
			return h, fmt.Errorf("catalog: read jobs: %w", err)
		}
		j.Created = j.Created.UTC()
		for _, t := range []*time.Time{j.Started, j.Completed} {
			if t != nil {
				*t = t.UTC()
			}
		}
		h.Jobs[j.ID] = j
	}
	rows.Close()
	return h, rows.Err()
}

// unmarshalObject decodes a JSON object column; NULL leaves out nil.
func unmarshalObject(b []byte, out *map[string]any) error {
	if len(b) == 0 || string(b) == "null" {
		return nil
	}
	return json.Unmarshal(b, out)
}

func readStrings(ctx context.Context, tx pgx.Tx, q string) ([]string, error) {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("catalog: %s: %w", q, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func jsonArg(m map[string]any) (any, error) {
	if m == nil {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	return string(b), nil
}

func apply(ctx context.Context, tx pgx.Tx, p Plan) error {
	for _, pr := range p.AddPartitions {
		// Owned only when this insert made it: a row OpenRAG wrote in the
		// meantime stays OpenRAG's.
		tag, err := tx.Exec(ctx, `WITH made AS (
				INSERT INTO partitions (partition, created_at, description, embedder, indexation_preset, retrieval_preset,
					dimension, collection_name, chat_history_depth, chat_llm, updated_at)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, now())
				ON CONFLICT (partition) DO NOTHING RETURNING partition)
			INSERT INTO ragnode_catalog_partitions (partition) SELECT partition FROM made ON CONFLICT DO NOTHING`,
			pr.Name, pr.Created, pr.Description, pr.Embedder, pr.IndexationPreset, pr.RetrievalPreset,
			pr.Dimension, pr.CollectionName, pr.ChatHistoryDepth, pr.ChatLLM)
		if err != nil {
			return fmt.Errorf("catalog: add partition %s: %w", pr.Name, err)
		}
		_ = tag
	}
	for _, pr := range p.UpdatePartitions {
		if _, err := tx.Exec(ctx, `UPDATE partitions SET description = $2, embedder = $3, indexation_preset = $4,
				retrieval_preset = $5, dimension = $6, collection_name = $7, chat_history_depth = $8, chat_llm = $9, updated_at = now()
			WHERE partition = $1`,
			pr.Name, pr.Description, pr.Embedder, pr.IndexationPreset, pr.RetrievalPreset,
			pr.Dimension, pr.CollectionName, pr.ChatHistoryDepth, pr.ChatLLM); err != nil {
			return fmt.Errorf("catalog: update partition %s: %w", pr.Name, err)
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
	if len(p.Upserts) > 0 {
		// A content hash may move between the rows of one plan; clearing
		// them first keeps the unique index from seeing it twice mid-plan.
		parts, ids := make([]string, len(p.Upserts)), make([]string, len(p.Upserts))
		for i, r := range p.Upserts {
			parts[i], ids[i] = r.Partition, r.FileID
		}
		if _, err := tx.Exec(ctx, `UPDATE files f SET content_sha256 = NULL FROM unnest($1::varchar[], $2::varchar[]) AS u(p, fid)
			WHERE f.partition_name = u.p AND f.file_id = u.fid AND f.content_sha256 IS NOT NULL`, parts, ids); err != nil {
			return fmt.Errorf("catalog: clear content hashes: %w", err)
		}
		b := &pgx.Batch{}
		for _, r := range p.Upserts {
			meta, err := json.Marshal(r.Metadata)
			if err != nil {
				return fmt.Errorf("catalog: file %s/%s metadata: %w", r.Partition, r.FileID, err)
			}
			cfg, err := jsonArg(r.IndexationConfig)
			if err != nil {
				return fmt.Errorf("catalog: file %s/%s indexation_config: %w", r.Partition, r.FileID, err)
			}
			b.Queue(`INSERT INTO files (file_id, partition_name, file_metadata, relationship_id, parent_id, content_sha256,
					chunk_count, indexed_at, indexation_config, created_by, independently_indexed)
				VALUES ($1, $2, $3::json, $4, $5, $6, $7, $8, $9::jsonb, $10, true)
				ON CONFLICT (file_id, partition_name) DO UPDATE SET file_metadata = EXCLUDED.file_metadata,
					relationship_id = EXCLUDED.relationship_id, parent_id = EXCLUDED.parent_id,
					content_sha256 = EXCLUDED.content_sha256, chunk_count = EXCLUDED.chunk_count,
					indexed_at = EXCLUDED.indexed_at, indexation_config = EXCLUDED.indexation_config,
					created_by = EXCLUDED.created_by`,
				r.FileID, r.Partition, string(meta), r.RelationshipID, r.ParentID, r.ContentSHA256,
				r.ChunkCount, r.IndexedAt, cfg, r.CreatedBy)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("catalog: upsert files: %w", err)
		}
	}
	for uid, n := range p.FileCounts {
		if _, err := tx.Exec(ctx, `UPDATE users SET file_count = GREATEST(file_count + $2, 0) WHERE id = $1`, uid, n); err != nil {
			return fmt.Errorf("catalog: file count of user %d: %w", uid, err)
		}
	}
	if len(p.JobUpserts) > 0 {
		b := &pgx.Batch{}
		for _, j := range p.JobUpserts {
			// user_id is the request's (users.go): never written here.
			b.Queue(`WITH j AS (
					INSERT INTO jobs (id, partition, file_id, filename, status, error, created_at, started_at, completed_at, updated_at)
					VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, now())
					ON CONFLICT (id) DO UPDATE SET partition = EXCLUDED.partition, file_id = EXCLUDED.file_id,
						filename = EXCLUDED.filename, status = EXCLUDED.status, error = EXCLUDED.error,
						created_at = EXCLUDED.created_at, started_at = EXCLUDED.started_at,
						completed_at = EXCLUDED.completed_at, updated_at = now()
					RETURNING id)
				INSERT INTO ragnode_catalog_jobs (id) SELECT id FROM j ON CONFLICT DO NOTHING`,
				j.ID, j.Partition, j.FileID, j.Filename, j.Status, j.Error, j.Created, j.Started, j.Completed)
		}
		if err := tx.SendBatch(ctx, b).Close(); err != nil {
			return fmt.Errorf("catalog: upsert jobs: %w", err)
		}
	}
	if len(p.JobDeletes) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM jobs WHERE id = ANY($1::varchar[])`, p.JobDeletes); err != nil {
			return fmt.Errorf("catalog: delete jobs: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM ragnode_catalog_jobs WHERE id = ANY($1::varchar[])`, p.JobDeletes); err != nil {
			return fmt.Errorf("catalog: disown jobs: %w", err)
		}
	}
	if len(p.DropPartitions) > 0 {
		// Files OpenRAG itself keeps in a partition ragnode created hold it.
		if _, err := tx.Exec(ctx, `DELETE FROM partitions WHERE partition = ANY($1::varchar[])
			AND NOT EXISTS (SELECT 1 FROM files WHERE files.partition_name = partitions.partition)`, p.DropPartitions); err != nil {
			return fmt.Errorf("catalog: drop partitions: %w", err)
		}
		for _, q := range []string{
			`DELETE FROM ragnode_catalog_partitions WHERE partition = ANY($1::varchar[])`,
			// A partition made again later has a new creator.
			`DELETE FROM ragnode_catalog_creators WHERE partition = ANY($1::varchar[])`,
		} {
			if _, err := tx.Exec(ctx, q, p.DropPartitions); err != nil {
				return fmt.Errorf("catalog: disown partitions: %w", err)
			}
		}
	}
	return nil
}

// ownCreated gives each partition ragnode created an owner membership for
// the user who created it, as OpenRAG does for its own, once: a partition
// that already has an owner (OpenRAG's members are managed in OpenRAG) is
// left alone.
func ownCreated(ctx context.Context, tx pgx.Tx) error {
	if _, err := tx.Exec(ctx, `INSERT INTO partition_memberships (partition_name, user_id, role, added_at)
		SELECT c.partition, c.user_id, 'owner', now()
		FROM ragnode_catalog_creators c
		JOIN ragnode_catalog_partitions o ON o.partition = c.partition
		JOIN partitions p ON p.partition = c.partition
		JOIN users u ON u.id = c.user_id
		WHERE NOT EXISTS (SELECT 1 FROM partition_memberships m WHERE m.partition_name = c.partition AND m.role = 'owner')
		ON CONFLICT (partition_name, user_id) DO NOTHING`); err != nil {
		return fmt.Errorf("catalog: owner memberships: %w", err)
	}
	return nil
}
