package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

// ErrDatabaseLost means the SQLite file the desk opened is no longer the file at its path: it (or
// its write-ahead log) was removed or replaced while the desk ran. What the desk writes from then
// on goes to a file nobody will open again, so it must stop serving; only a restart helps.
var ErrDatabaseLost = errors.New("store: the state database file was removed or replaced while the desk was running")

// ErrDatabaseReadOnly means the desk may no longer write the SQLite file, its write-ahead log or
// their folder. It serves again once they are writable.
var ErrDatabaseReadOnly = errors.New("store: the state database file cannot be written")

// ErrDiskFull means the volume holding the state database has (almost) no room left: a write
// the disk could not take, or less than MinFreeSpace free. The desk serves again once there is
// room.
var ErrDiskFull = errors.New("store: the disk holding the state database is full")

// MinFreeSpace is the room the desk keeps free on the SQLite database's volume: below it, it
// stops writing rather than fail part-way through a change.
const MinFreeSpace = 4 << 20

// CheckError says what Check found wrong, and what brings the database back.
type CheckError struct {
	Err     error  // ErrDatabaseLost, ErrDatabaseReadOnly, or why the database did not answer
	Path    string // the SQLite file concerned; empty for PostgreSQL
	Cause   string // what was found, in words
	Recover string // what brings it back, in words for whoever runs the desk
}

func (e *CheckError) Error() string { return e.Cause }
func (e *CheckError) Unwrap() error { return e.Err }

// Unavailable marks the failure as the state database being out of reach.
func (*CheckError) Unavailable() bool { return true }

// checkTimeout bounds one check: a readiness probe must answer even when PostgreSQL does not.
const checkTimeout = 2 * time.Second

// Check tells whether the state database can serve, for real: on SQLite, that the file this
// process opened (and its write-ahead log) is still the one at its path and may be written,
// and that it answers a query; on PostgreSQL, that the server answers a ping within two
// seconds and accepts writes. A failure is a *CheckError.
func (db *DB) Check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	if db.driver == driverSQLite {
		if err := db.files.check(); err != nil {
			return err
		}
	}
	if err := db.sql.PingContext(ctx); err != nil {
		if db.driver == driverPostgres {
			return postgresFailure(err)
		}
		return &CheckError{Err: classify(err), Cause: "the state database did not answer: " + err.Error(),
			Recover: "the desk serves again by itself as soon as the database answers"}
	}
	if db.driver == driverPostgres {
		return db.checkWritable(ctx)
	}
	return nil
}

// checkWritable asks PostgreSQL whether it accepts writes: a standby, or a database or role with
// default_transaction_read_only set, answers every page's writes with an error.
func (db *DB) checkWritable(ctx context.Context) error {
	err := db.acceptsWrites(ctx)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrDatabaseReadOnly) {
		return postgresFailure(err)
	}
	return &CheckError{Err: ErrDatabaseReadOnly,
		Cause: "PostgreSQL accepts no writes: the server is a standby, or default_transaction_read_only is on for the desk's database or role",
		Recover: "the desk serves again by itself within seconds of PostgreSQL accepting writes; point AUTOPILOTDESK_DATABASE_URL at the primary server, " +
			"or turn default_transaction_read_only off (ALTER DATABASE … RESET default_transaction_read_only)"}
}

// postgresFailure says why PostgreSQL did not serve a check, and what brings it back.
func postgresFailure(err error) *CheckError {
	if noSlot(err) {
		return &CheckError{Err: classify(err),
			Cause: "PostgreSQL refused the desk a connection: every connection slot it has (max_connections) is taken: " + err.Error(),
			Recover: "the desk serves again by itself once PostgreSQL has a free connection slot; " +
				"each replica opens up to AUTOPILOTDESK_DATABASE_MAX_CONNS connections, so keep their sum, with every other client's, below max_connections"}
	}
	return &CheckError{Err: classify(err), Cause: "PostgreSQL did not answer within " + checkTimeout.String() + ": " + err.Error(),
		Recover: "the desk serves again by itself as soon as PostgreSQL answers; check that the server runs and can be reached from here"}
}

// CheckFiles is the part of Check cheap enough to run before every state change: on SQLite,
// that the files opened are still at their path and writable (a few system calls, no query);
// on PostgreSQL nothing.
func (db *DB) CheckFiles() error {
	if db.driver != driverSQLite {
		return nil
	}
	return db.files.check()
}

// sqliteFiles is what the desk opened on SQLite, to notice when it is no longer at its path.
type sqliteFiles struct {
	dir, db string
	free    func(dir string) (uint64, error) // bytes the process may write on dir's volume

	mu     sync.Mutex
	opened map[string]fs.FileInfo // path -> the file as opened (the log once it exists)
}

// openedFiles records the database file as this process opened it; free tells the room left on
// its disk (the system's answer when nil).
func openedFiles(dir string, free func(string) (uint64, error)) (*sqliteFiles, error) {
	if free == nil {
		free = freeSpace
	}
	f := &sqliteFiles{dir: dir, db: filepath.Join(dir, "autopilotdesk.db"), free: free, opened: map[string]fs.FileInfo{}}
	if abs, err := filepath.Abs(f.db); err == nil {
		f.db = abs
		f.dir = filepath.Dir(abs)
	}
	info, err := os.Stat(f.db)
	if err != nil {
		return nil, fmt.Errorf("store: state database file: %w", err)
	}
	f.opened[f.db] = info
	f.noteLog()
	return f, nil
}

// noteLog records the write-ahead log the first time it is seen: SQLite creates it with the
// first connection and keeps it until the last one closes.
func (f *sqliteFiles) noteLog() {
	log := f.db + "-wal"
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.opened[log]; ok {
		return
	}
	if info, err := os.Stat(log); err == nil {
		f.opened[log] = info
	}
}

func (f *sqliteFiles) check() error {
	if f == nil {
		return nil
	}
	f.noteLog()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, path := range []string{f.db, f.db + "-wal"} {
		opened, ok := f.opened[path]
		if !ok {
			continue
		}
		now, err := os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) || err == nil && !os.SameFile(opened, now) {
			what := "was removed"
			if err == nil {
				what = "was replaced by another file"
			}
			return &CheckError{Err: ErrDatabaseLost, Path: path,
				Cause: fmt.Sprintf("the state database file %s %s while the desk was running; what the desk writes now would be lost", path, what),
				Recover: "the desk refuses every page until it is restarted: put back the database file (and its -wal file) from a backup, " +
					"or leave the folder without them to start with an empty database (everyone signs in again), then restart the desk"}
		}
		if err != nil {
			return &CheckError{Err: err, Path: path, Cause: fmt.Sprintf("the state database file %s cannot be examined: %v", path, err),
				Recover: "the desk serves again by itself once the file can be read"}
		}
	}
	for _, path := range []string{f.db, f.db + "-wal", f.dir} {
		if _, ok := f.opened[path]; !ok && path != f.dir {
			continue
		}
		if err := writable(path); err != nil {
			return &CheckError{Err: ErrDatabaseReadOnly, Path: path,
				Cause:   fmt.Sprintf("the desk may no longer write %s: %v", path, err),
				Recover: "the desk serves again by itself once the file and its folder are writable by the desk's user again (check permissions, chattr flags and read-only mounts)"}
		}
	}
	if free, err := f.free(f.dir); err == nil && free < MinFreeSpace {
		return &CheckError{Err: ErrDiskFull, Path: f.dir,
			Cause:   fmt.Sprintf("the disk holding %s has %s free; the desk stops writing below %s", f.dir, Megabytes(free), Megabytes(MinFreeSpace)),
			Recover: "the desk serves again by itself once there is room on that disk"}
	}
	return nil
}

// Megabytes is n bytes in words: "0.3 MB".
func Megabytes(n uint64) string { return strconv.FormatFloat(float64(n)/(1<<20), 'f', 1, 64) + " MB" }
