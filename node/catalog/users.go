package catalog

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// OpenRAG's users, as every node reads them to authorize requests, and
// what a request records of who made it (see the package doc).
//
// OpenRAG stores a user's API token as the hex SHA-256 of the token
// (PartitionFileManager.hash_token, users.token); a bearer token is that
// user when its hash matches. An OpenRAG user with no token row (an OIDC
// session's) is not reachable this way.

// User is an OpenRAG user with its memberships.
type User struct {
	ID             int64
	DisplayName    *string
	ExternalUserID *string
	Email          *string
	IsAdmin        bool
	FileQuota      *int64 // nil: the deployment's default
	FileCount      int64
	// Memberships maps a partition to the user's role in it (owner,
	// editor, viewer); AddedAt says since when.
	Memberships map[string]string
	AddedAt     map[string]time.Time
}

// Users reads OpenRAG's users through a small connection pool. It is
// safe for concurrent use.
type Users struct {
	dsn  string
	idle chan *pgx.Conn
	slot chan struct{} // bounds the connections open at once
}

// maxUserConns bounds each node's connections for request-time lookups.
const maxUserConns = 8

// OpenUsers connects to dsn and brings the tables up to the schema (any
// node may be the first to reach a fresh database).
func OpenUsers(ctx context.Context, dsn string) (*Users, error) {
	u := &Users{dsn: dsn, idle: make(chan *pgx.Conn, maxUserConns), slot: make(chan struct{}, maxUserConns)}
	if err := u.with(ctx, func(c *pgx.Conn) error { return migrate(ctx, c) }); err != nil {
		u.Close()
		return nil, err
	}
	return u, nil
}

// with runs fn on a pooled connection; one that failed is not reused.
func (u *Users) with(ctx context.Context, fn func(*pgx.Conn) error) error {
	select {
	case u.slot <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-u.slot }()
	var c *pgx.Conn
	select {
	case c = <-u.idle:
	default:
		var err error
		if c, err = pgx.Connect(ctx, u.dsn); err != nil {
			return fmt.Errorf("catalog: connect: %w", err)
		}
	}
	err := fn(c)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		c.Close(context.Background())
		return err
	}
	u.idle <- c
	return err
}

// Close closes the idle connections (call it when no lookup runs).
func (u *Users) Close() {
	for {
		select {
		case c := <-u.idle:
			c.Close(context.Background())
		default:
			return
		}
	}
}

// HashToken is how OpenRAG stores a user token.
func HashToken(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// ByToken is the user whose token is secret; ok false when there is none.
func (u *Users) ByToken(ctx context.Context, secret string) (User, bool, error) {
	return u.find(ctx, `token = $1`, HashToken(secret))
}

// ByID is the user with that ID.
func (u *Users) ByID(ctx context.Context, id int64) (User, bool, error) {
	return u.find(ctx, `id = $1`, id)
}

func (u *Users) find(ctx context.Context, where string, arg any) (User, bool, error) {
	var us User
	found := false
	err := u.with(ctx, func(c *pgx.Conn) error {
		err := c.QueryRow(ctx, `SELECT id, display_name, external_user_id, email, is_admin, file_quota, file_count
			FROM users WHERE `+where, arg).Scan(&us.ID, &us.DisplayName, &us.ExternalUserID, &us.Email, &us.IsAdmin, &us.FileQuota, &us.FileCount)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("catalog: read user: %w", err)
		}
		found = true
		rows, err := c.Query(ctx, `SELECT partition_name, role, added_at FROM partition_memberships WHERE user_id = $1`, us.ID)
		if err != nil {
			return fmt.Errorf("catalog: read memberships: %w", err)
		}
		defer rows.Close()
		us.Memberships, us.AddedAt = map[string]string{}, map[string]time.Time{}
		for rows.Next() {
			var p, role string
			var at time.Time
			if err := rows.Scan(&p, &role, &at); err != nil {
				return fmt.Errorf("catalog: read memberships: %w", err)
			}
			us.Memberships[p], us.AddedAt[p] = role, at
		}
		return rows.Err()
	})
	if err != nil || !found {
		return User{}, false, err
	}
	return us, true, nil
}

// Pending counts the user's tasks that have not ended (OpenRAG's
// pending_files: they count against the quota before they are files).
func (u *Users) Pending(ctx context.Context, userID int64) (int64, error) {
	var n int64
	err := u.with(ctx, func(c *pgx.Conn) error {
		return c.QueryRow(ctx, `SELECT count(*) FROM jobs WHERE user_id = $1 AND status IN ('QUEUED', 'SERIALIZING')`, userID).Scan(&n)
	})
	if err != nil {
		return 0, fmt.Errorf("catalog: count pending tasks: %w", err)
	}
	return n, nil
}

// ErrQuota is a refused upload; its message is OpenRAG's.
type ErrQuota struct{ Indexed, Pending, Limit int64 }

func (e ErrQuota) Error() string {
	return fmt.Sprintf("File quota exceeded. You have %d indexed files and %d pending tasks. Limit: %d", e.Indexed, e.Pending, e.Limit)
}

// EffectiveQuota is OpenRAG's rule: admins and a negative default have no
// limit; a user without a quota of its own has the default; a negative
// quota is no limit. -1 stands for none.
func EffectiveQuota(us User, defaultQuota int64) int64 {
	if us.IsAdmin || defaultQuota < 0 {
		return -1
	}
	q := defaultQuota
	if us.FileQuota != nil {
		q = *us.FileQuota
	}
	if q < 0 {
		return -1
	}
	return q
}

// CheckQuota refuses (ErrQuota) one more file for a user at its quota.
func (u *Users) CheckQuota(ctx context.Context, us User, defaultQuota int64) error {
	limit := EffectiveQuota(us, defaultQuota)
	if limit < 0 {
		return nil
	}
	pending, err := u.Pending(ctx, us.ID)
	if err != nil {
		return err
	}
	if us.FileCount+pending >= limit {
		return ErrQuota{Indexed: us.FileCount, Pending: pending, Limit: limit}
	}
	return nil
}

// RecordUpload says that user made task, whose jobs row it writes now
// (QUEUED) unless the leader's sync wrote it first, in which case only
// user_id is set: the sync never writes that column.
func (u *Users) RecordUpload(ctx context.Context, userID int64, taskID, partition, fileID, filename string) error {
	err := u.exec(ctx, `INSERT INTO jobs (id, partition, file_id, filename, user_id, status, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, 'QUEUED', now(), now())
		ON CONFLICT (id) DO UPDATE SET user_id = EXCLUDED.user_id`, taskID, partition, fileID, filename, userID)
	if err != nil {
		return fmt.Errorf("catalog: record the upload's user: %w", err)
	}
	return nil
}

// RecordCreator says that user created partition; the first creator
// recorded stays (until the partition goes).
func (u *Users) RecordCreator(ctx context.Context, userID int64, partition string) error {
	err := u.exec(ctx, `INSERT INTO ragnode_catalog_creators (partition, user_id) VALUES ($1, $2) ON CONFLICT (partition) DO NOTHING`,
		partition, userID)
	if err != nil {
		return fmt.Errorf("catalog: record the partition's creator: %w", err)
	}
	return nil
}

func (u *Users) exec(ctx context.Context, q string, args ...any) error {
	return u.with(ctx, func(c *pgx.Conn) error {
		_, err := c.Exec(ctx, q, args...)
		return err
	})
}
