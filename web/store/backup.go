package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// ErrNoDatabase means the folder given has no state database to back up.
var ErrNoDatabase = errors.New("no state database")

// BackupCopy is what Backup wrote.
type BackupCopy struct {
	From, To      string
	Bytes         int64
	SchemaVersion int
}

// Backup writes a consistent copy of the SQLite state database in dataDir to file, also while a
// desk runs on it and holds the folder's lock. SQLite's VACUUM INTO reads one snapshot of the
// database, what its -wal holds included, as any reader does, so the copy has every change
// committed before it started and none half-made; the desk goes on meanwhile. The copy is one
// file (no -wal), without the free pages that may still hold deleted content. file must not
// exist: a backup never writes over anything. It is created readable by its owner only, as the
// database holds the signed-in users' tokens.
func Backup(ctx context.Context, dataDir, file string) (BackupCopy, error) {
	src := filepath.Join(dataDir, "autopilotdesk.db")
	done := BackupCopy{From: src, To: file}
	if _, err := os.Stat(src); err != nil {
		return done, fmt.Errorf("%w at %s: %v", ErrNoDatabase, src, err)
	}
	out, err := os.OpenFile(file, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return done, fmt.Errorf("%s already exists: a backup never writes over a file, so give a new name", file)
	}
	if err != nil {
		return done, fmt.Errorf("create the backup: %w", err)
	}
	out.Close() // VACUUM INTO writes into an empty file
	written := false
	defer func() {
		if !written {
			os.Remove(file)
		}
	}()
	// mode=ro: the backup reads the database and writes nothing of it (a running desk's
	// checkpoints wait for it as for any reader).
	db, err := sql.Open("sqlite", "file:"+src+"?mode=ro&_pragma=busy_timeout(10000)")
	if err != nil {
		return done, fmt.Errorf("open %s: %w", src, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, file); err != nil {
		return done, fmt.Errorf("copy %s: %w", src, err)
	}
	if err := markBackup(ctx, file, time.Now()); err != nil {
		return done, fmt.Errorf("mark the copy as a backup: %w", err)
	}
	copied, err := sql.Open("sqlite", "file:"+file+"?mode=ro")
	if err != nil {
		return done, fmt.Errorf("open the copy: %w", err)
	}
	defer copied.Close()
	var check string
	if err := copied.QueryRowContext(ctx, `PRAGMA quick_check`).Scan(&check); err != nil || check != "ok" {
		return done, fmt.Errorf("the copy does not pass SQLite's check (%s): %v", check, err)
	}
	if err := copied.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&done.SchemaVersion); err != nil {
		return done, fmt.Errorf("read the copy's schema version: %w", err)
	}
	fi, err := os.Stat(file)
	if err != nil {
		return done, err
	}
	done.Bytes, written = fi.Size(), true
	return done, nil
}
