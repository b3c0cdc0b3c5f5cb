package store

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrDataDirInUse means another process holds the SQLite data folder.
var ErrDataDirInUse = errors.New("store: another process is using this data folder")

// lockDataDir takes the data folder's lock file for as long as the process keeps the returned
// file open, so that one process alone writes the SQLite database: the session cache relies on
// it, and two desks on one SQLite file would each see the other's changes late. ok is false
// where the platform has no such lock; the session cache stays off then.
func lockDataDir(dir string) (f *os.File, ok bool, err error) {
	path := filepath.Join(dir, "autopilotdesk.lock")
	f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("store: data folder lock: %w", err)
	}
	ok, err = tryLockFile(f)
	if err != nil {
		f.Close()
		if errors.Is(err, errLocked) {
			if abs, aerr := filepath.Abs(dir); aerr == nil {
				dir = abs
			}
			return nil, false, fmt.Errorf("%w (%s)", ErrDataDirInUse, dir)
		}
		return nil, false, fmt.Errorf("store: data folder lock %s: %w", path, err)
	}
	return f, ok, nil
}

var errLocked = errors.New("locked")

// OwnsDataDir reports whether this process holds the SQLite data folder's lock, which the
// in-memory session cache and rate-limit counts rely on.
func (db *DB) OwnsDataDir() bool { return db.ownsDir }
