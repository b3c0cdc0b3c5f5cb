package store

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// unavailableError marks a failure to reach the database, as opposed to a wrong query: the
// database is closed or unreachable, a statement ran past its timeout, SQLite stayed locked
// past its busy timeout or may not write its file. The request can be tried again later. Callers see it through
// errors.As with interface{ Unavailable() bool }, so they need not import this package.
type unavailableError struct{ err error }

func (e unavailableError) Error() string { return "state database unavailable: " + e.err.Error() }
func (e unavailableError) Unwrap() error { return e.err }

// Unavailable reports that the database could not be reached.
func (unavailableError) Unavailable() bool { return true }

// IsUnavailable says whether err is a failure to reach the database (it may be tried again later),
// as opposed to a wrong query or a refused change.
func IsUnavailable(err error) bool {
	var u interface{ Unavailable() bool }
	return errors.As(err, &u) && u.Unavailable()
}

// Is makes errors.Is(err, ErrDiskFull) hold for a write the disk had no room for,
// errors.Is(err, ErrDatabaseReadOnly) for a write PostgreSQL refused because it accepts none, and
// errors.Is(err, ErrNoConnectionSlot) for a connection it refused as every slot was taken.
func (e unavailableError) Is(target error) bool {
	return target == ErrDiskFull && diskFull(e.err) || target == ErrDatabaseReadOnly && readOnly(e.err) ||
		target == ErrNoConnectionSlot && noSlot(e.err)
}

// diskFull says whether the database refused a write for want of room: SQLite's SQLITE_FULL,
// PostgreSQL's disk_full.
func diskFull(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code()&0xff == sqlite3.SQLITE_FULL
	}
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "53100"
}

// classify marks err as unavailableError when it says the database could not be reached.
func classify(err error) error {
	if err == nil || errors.Is(err, ErrNotFound) || !unreachable(err) {
		return err
	}
	var already unavailableError
	if errors.As(err, &already) {
		return err
	}
	if readOnly(err) {
		readOnlySeen.Add(1) // the connections open now are read-only: they are not used again
	}
	return unavailableError{err}
}

// damaged says whether SQLite found its file is not a database, or a damaged one.
func damaged(err error) bool {
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return true
		}
	}
	return false
}

func unreachable(err error) bool {
	// A connection cut mid-statement (the server stopped, the network dropped it) reads as an
	// unexpected end of stream.
	if errors.Is(err, errClosed) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, driver.ErrBadConn) ||
		errors.Is(err, sql.ErrConnDone) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return true
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_FULL, sqlite3.SQLITE_CANTOPEN,
			sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM:
			return true
		}
		return false
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; 57P0x: the server is shutting down or starting;
		// 53300: too many connections; 53100: its disk is full; 25006: it accepts no writes.
		return strings.HasPrefix(pgErr.Code, "08") || strings.HasPrefix(pgErr.Code, "57P0") || pgErr.Code == "53300" || pgErr.Code == "53100" ||
			readOnly(pgErr)
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) || connClosed(err)
}

// connClosed says whether pgx refused a statement because the server had closed its connection
// (the server stopped, the network cut it) before the statement was sent.
func connClosed(err error) bool {
	return pgconn.SafeToRetry(err) && strings.HasSuffix(err.Error(), "conn closed")
}
