package store

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"autopilotdesk/devtools/testkit"

	"github.com/jackc/pgx/v5/pgconn"
)

// makeReadOnly stops this process from writing path (an immutable flag when running as root,
// whom permissions do not stop; the permissions otherwise) and returns the undo.
func makeReadOnly(t *testing.T, path string) (undo func()) {
	t.Helper()
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
			t.Skipf("cannot make %s immutable: %v %s", path, err, out)
		}
		return func() { exec.Command("chattr", "-i", path).Run() }
	}
	info, _ := os.Stat(path)
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	return func() { os.Chmod(path, info.Mode().Perm()) }
}

// The database and its -wal and -shm files are created readable and writable by the desk's
// user alone, and an existing file is made so.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "autopilotdesk.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil { // as an older release left it
		t.Fatal(err)
	}
	db := location{options: Options{DataDir: dir}}.open(t, testkit.NewClock())
	if err := db.RecordActivity(context.Background(), &Activity{TenantID: "t", Action: "sync"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"autopilotdesk.db", "autopilotdesk.db-wal", "autopilotdesk.db-shm", "autopilotdesk.lock"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s is %v, want -rw-------", name, perm)
		}
	}
}

// Check notices the SQLite file removed or replaced under the desk (for good), and the file made
// read-only (until it is writable again).
func TestCheckNoticesALostOrReadOnlySQLiteFile(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, path string) (undo func())
		want error
	}{
		{"removed", func(t *testing.T, path string) func() {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(p)
			}
			return nil
		}, ErrDatabaseLost},
		{"log removed", func(t *testing.T, path string) func() { os.Remove(path + "-wal"); return nil }, ErrDatabaseLost},
		{"replaced", func(t *testing.T, path string) func() {
			os.Rename(path, path+".old")
			os.WriteFile(path, nil, 0o600)
			return nil
		}, ErrDatabaseLost},
		{"read-only", func(t *testing.T, path string) func() { return makeReadOnly(t, path) }, ErrDatabaseReadOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := location{options: Options{DataDir: dir}}.open(t, testkit.NewClock())
			if err := db.Check(ctx); err != nil {
				t.Fatalf("a fresh database: %v", err)
			}
			path := filepath.Join(dir, "autopilotdesk.db")
			undo := tc.lose(t, path)
			err := db.Check(ctx)
			var ce *CheckError
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.Path == "" || ce.Recover == "" {
				t.Fatalf("Check = %v, want %v with a path and a way back", err, tc.want)
			}
			if undo != nil {
				undo()
				if err := db.Check(ctx); err != nil {
					t.Errorf("writable again: %v", err)
				}
			} else if err := db.Check(ctx); !errors.Is(err, ErrDatabaseLost) {
				t.Errorf("a lost file came back by itself: %v", err)
			}
		})
	}
}

// Check notices the disk holding the SQLite file running out of room (less than MinFreeSpace
// free), names the folder and how much is left, and passes again once there is room; a write
// either database refuses for want of room is ErrDiskFull, as the pages tell it apart.
func TestCheckNoticesAFullDisk(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	db := location{options: Options{DataDir: dir}}.open(t, testkit.NewClock())
	free := uint64(300 << 10)
	db.files.free = func(string) (uint64, error) { return free, nil }
	err := db.CheckFiles()
	var ce *CheckError
	if !errors.Is(err, ErrDiskFull) || !errors.As(err, &ce) || ce.Path == "" || !strings.Contains(ce.Cause, "has 0.3 MB free") || ce.Recover == "" {
		t.Fatalf("CheckFiles = %v, want ErrDiskFull with the folder, what is free and a way back", err)
	}
	if err := db.Check(ctx); !errors.Is(err, ErrDiskFull) {
		t.Errorf("Check = %v", err)
	}
	free = 5 << 20
	if err := db.Check(ctx); err != nil {
		t.Errorf("with room again: %v", err)
	}
	// PostgreSQL's disk_full: out of reach for now, and a full disk.
	full := classify(fmt.Errorf("insert: %w", &pgconn.PgError{Code: "53100", Message: "could not extend file"}))
	var unavailable interface{ Unavailable() bool }
	if !errors.Is(full, ErrDiskFull) || !errors.As(full, &unavailable) {
		t.Errorf("PostgreSQL's disk_full classified as %v", full)
	}
	if other := classify(&pgconn.PgError{Code: "53300"}); errors.Is(other, ErrDiskFull) {
		t.Error("too many connections counted as a full disk")
	}
}

// A PostgreSQL server that accepts no writes (a standby after a fail-over, or
// default_transaction_read_only set on the database or the desk's role) is a problem Check
// reports, as the read-only SQLite file is, and a refused write is the database being unavailable,
// not a failed query. The connections that met it are dropped, so the desk writes again as soon
// as the server accepts writes, rather than when its pooled connections reach their lifetime.
func TestCheckNoticesAPostgreSQLThatRefusesWrites(t *testing.T) {
	db := location{options: Options{DatabaseURL: testkit.PostgresSchema(t), MaxOpenConns: 1}}.open(t, testkit.NewClock())
	ctx := context.Background()
	readOnly := func() {
		t.Helper()
		conn, err := db.sql.Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, `SET SESSION default_transaction_read_only = on`); err != nil {
			t.Fatal(err)
		}
		conn.Close() // back to the pool, read-only, as after ALTER DATABASE … SET default_transaction_read_only
	}

	readOnly()
	err := db.RecordActivity(ctx, &Activity{TenantID: "t", Action: "sync"})
	if !IsUnavailable(err) || !errors.Is(err, ErrDatabaseReadOnly) {
		t.Fatalf("a write PostgreSQL refused: %v, want the database unavailable and read-only", err)
	}
	if err := db.RecordActivity(ctx, &Activity{TenantID: "t", Action: "sync"}); err != nil {
		t.Fatalf("the write after the server accepts writes again: %v", err)
	}

	readOnly()
	err = db.Check(ctx)
	var ce *CheckError
	if !errors.As(err, &ce) || !errors.Is(err, ErrDatabaseReadOnly) || !IsUnavailable(err) {
		t.Fatalf("Check on a read-only PostgreSQL: %v, want a read-only CheckError", err)
	}
	for _, want := range []string{"default_transaction_read_only", "primary"} {
		if !strings.Contains(ce.Cause+" "+ce.Recover, want) {
			t.Errorf("the check's words do not name %q: %s / %s", want, ce.Cause, ce.Recover)
		}
	}
	if err := db.Check(ctx); err != nil {
		t.Errorf("Check once the server accepts writes again: %v", err)
	}
}

// PostgreSQL with no connection slot free refuses the desk's new connections at once: the check
// says so and what to change, not that the server did not answer.
func TestCheckSaysPostgreSQLHasNoConnectionSlotFree(t *testing.T) {
	err := postgresFailure(fmt.Errorf("failed to connect to `user=desk database=desk`: server error: %w",
		&pgconn.PgError{Severity: "FATAL", Code: "53300", Message: "remaining connection slots are reserved for non-replication superuser connections"}))
	if !IsUnavailable(err) {
		t.Errorf("no connection slot free is not the database unavailable: %v", err)
	}
	if strings.Contains(err.Cause, "did not answer") || !strings.Contains(err.Cause, "connection slot") {
		t.Errorf("cause: %s", err.Cause)
	}
	for _, want := range []string{"AUTOPILOTDESK_DATABASE_MAX_CONNS", "max_connections"} {
		if !strings.Contains(err.Recover, want) {
			t.Errorf("what brings it back does not name %s: %s", want, err.Recover)
		}
	}
}
