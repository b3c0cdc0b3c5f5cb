// Package store is the desk's state database: sessions, sign-in flows, one-time form keys,
// rate-limit counters and the activity history. One schema on two engines: an embedded SQLite
// file by default, PostgreSQL when several replicas share state.
package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers "pgx"
	_ "modernc.org/sqlite"             // registers "sqlite"
)

// ErrNotFound means no such row (or it expired, or was used).
var ErrNotFound = errors.New("store: not found")

// Options configure Open.
type Options struct {
	DataDir          string
	DatabaseURL      string // postgres://... selects PostgreSQL
	Now              func() time.Time
	MaxOpenConns     int
	StatementTimeout time.Duration
}

// DB is the state database.
type DB struct {
	sql      *sql.DB
	driver   string
	now      func() time.Time
	stmtTime time.Duration
}

// Open connects, applies migrations and returns the database.
func Open(ctx context.Context, o Options) (*DB, error) {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 5 * time.Second
	}
	db := &DB{now: o.Now, stmtTime: o.StatementTimeout}
	var err error
	if strings.HasPrefix(o.DatabaseURL, "postgres://") || strings.HasPrefix(o.DatabaseURL, "postgresql://") {
		db.driver = "postgres"
		db.sql, err = sql.Open("pgx", o.DatabaseURL)
		if err != nil {
			return nil, err
		}
		conns := o.MaxOpenConns
		if conns <= 0 {
			conns = 16
		}
		db.sql.SetMaxOpenConns(conns)
		db.sql.SetMaxIdleConns(conns)
	} else {
		db.driver = "sqlite"
		dir := o.DataDir
		if dir == "" {
			dir = "data"
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("store: data directory: %w", err)
		}
		dsn := "file:" + filepath.Join(dir, "autopilotdesk.db") +
			"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		db.sql, err = sql.Open("sqlite", dsn)
		if err != nil {
			return nil, err
		}
		db.sql.SetMaxOpenConns(max(o.MaxOpenConns, 4))
		db.sql.SetMaxIdleConns(4)
	}
	db.sql.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.migrate(ctx); err != nil {
		db.sql.Close()
		return nil, err
	}
	return db, nil
}

// Close closes the database.
func (db *DB) Close() error { return db.sql.Close() }

// Driver is "sqlite" or "postgres".
func (db *DB) Driver() string { return db.driver }

// Ping checks the database answers.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, db.stmtTime)
	defer cancel()
	return db.sql.PingContext(ctx)
}

// q rewrites ? placeholders for PostgreSQL.
func (db *DB) q(query string) string {
	if db.driver != "postgres" {
		return query
	}
	var b strings.Builder
	n := 0
	for _, r := range query {
		if r == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx, cancel := context.WithTimeout(ctx, db.stmtTime)
	defer cancel()
	return db.sql.ExecContext(ctx, db.q(query), args...)
}

// queryRow runs a single-row query and scans it under the statement timeout.
func (db *DB) queryRow(ctx context.Context, query string, args []any, dest ...any) error {
	ctx, cancel := context.WithTimeout(ctx, db.stmtTime)
	defer cancel()
	err := db.sql.QueryRowContext(ctx, db.q(query), args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

func ms(t time.Time) int64 { return t.UTC().UnixMilli() }

func fromMS(v int64) time.Time { return time.UnixMilli(v).UTC() }

// hashID keeps only a hash of secret identifiers (session ids) in the database.
func hashID(id string) string {
	sum := sha256.Sum256([]byte(id))
	return hex.EncodeToString(sum[:])
}

// migrations are applied in order and recorded; never edit one that has shipped.
var migrations = []string{
	`CREATE TABLE sessions (
		id_hash TEXT PRIMARY KEY,
		user_key TEXT NOT NULL DEFAULT '',
		data {{blob}} NOT NULL,
		created_at BIGINT NOT NULL,
		last_seen_at BIGINT NOT NULL,
		expires_at BIGINT NOT NULL
	);
	CREATE INDEX sessions_user ON sessions (user_key);
	CREATE TABLE flows (
		id_hash TEXT PRIMARY KEY,
		state TEXT NOT NULL, nonce TEXT NOT NULL, verifier TEXT NOT NULL, return_to TEXT NOT NULL,
		data {{blob}},
		created_at BIGINT NOT NULL
	);
	CREATE TABLE form_keys (
		key_hash TEXT PRIMARY KEY,
		session_hash TEXT NOT NULL,
		state TEXT NOT NULL,
		result_ref TEXT NOT NULL DEFAULT '',
		expires_at BIGINT NOT NULL
	);
	CREATE TABLE rate_counters (
		bucket TEXT NOT NULL,
		window_start BIGINT NOT NULL,
		count INTEGER NOT NULL,
		PRIMARY KEY (bucket, window_start)
	);
	CREATE TABLE activity (
		id TEXT PRIMARY KEY,
		at BIGINT NOT NULL,
		tenant_id TEXT NOT NULL, object_id TEXT NOT NULL, actor_name TEXT NOT NULL, actor_upn TEXT NOT NULL,
		action TEXT NOT NULL, target TEXT NOT NULL, outcome TEXT NOT NULL, summary TEXT NOT NULL,
		status_code INTEGER NOT NULL, request_id TEXT NOT NULL, client_request_id TEXT NOT NULL,
		detail {{blob}}
	);
	CREATE INDEX activity_tenant_at ON activity (tenant_id, at DESC, id DESC);`,
}

func (db *DB) migrate(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	conn, err := db.sql.Conn(ctx)
	if err != nil {
		return fmt.Errorf("store: connect: %w", err)
	}
	defer conn.Close()
	if db.driver == "postgres" {
		// Several replicas may start at once: one migrates, the others wait.
		if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock(4242014)`); err != nil {
			return fmt.Errorf("store: migration lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock(4242014)`)
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return fmt.Errorf("store: migrations table: %w", err)
	}
	var current int
	if err := conn.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("store: read schema version: %w", err)
	}
	blob := "BLOB"
	if db.driver == "postgres" {
		blob = "BYTEA"
	}
	for i := current; i < len(migrations); i++ {
		tx, err := conn.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		for _, stmt := range strings.Split(strings.ReplaceAll(migrations[i], "{{blob}}", blob), ";") {
			if strings.TrimSpace(stmt) == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, stmt); err != nil {
				tx.Rollback()
				return fmt.Errorf("store: migration %d: %w", i+1, err)
			}
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`), i+1, ms(db.now())); err != nil {
			tx.Rollback()
			return fmt.Errorf("store: record migration %d: %w", i+1, err)
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// SchemaVersion is the number of migrations applied.
func (db *DB) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`, nil, &v)
	return v, err
}
