package store

import (
	"context"
	"database/sql/driver"
	"errors"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// A PostgreSQL server accepts no writes when it is a standby (the old primary after a
// fail-over, or the desk pointed at a replica) or when default_transaction_read_only is set on
// the database or the desk's role; every write then fails with SQLSTATE 25006. Its connections
// stay read-only even once the server takes writes again, and the pool would keep them until
// their lifetime ran out (30 minutes): so each connection opened before the desk last met a
// refused write is dropped rather than used again, and the next one is opened anew.

// readOnlySeen counts the refused writes and read-only checks this process met.
var readOnlySeen atomic.Uint64

// seenKey is where a connection keeps the count of refused writes when it was opened.
const seenKey = "autopilotdesk.readOnlySeen"

// readOnly says whether PostgreSQL refused err's statement because it accepts no writes.
func readOnly(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "25006"
}

// noteOpened records, on a new connection, how many refused writes came before it.
func noteOpened(_ context.Context, c *pgx.Conn) error {
	c.PgConn().CustomData()[seenKey] = readOnlySeen.Load()
	return nil
}

// dropIfStale drops a pooled connection opened before the latest refused write.
func dropIfStale(_ context.Context, c *pgx.Conn) error {
	if seen, _ := c.PgConn().CustomData()[seenKey].(uint64); seen < readOnlySeen.Load() {
		return driver.ErrBadConn
	}
	return nil
}

// noWrites is PostgreSQL accepting no writes when the desk starts: it waits for them, as for a
// server that does not answer yet, rather than fail its migrations.
type noWrites struct{}

func (noWrites) Error() string {
	return "PostgreSQL accepts no writes: the server is a standby, or default_transaction_read_only is on for the desk's database or role; " +
		"point AUTOPILOTDESK_DATABASE_URL at the primary server"
}

func (noWrites) Is(target error) bool { return target == ErrDatabaseReadOnly }

// acceptsWrites asks PostgreSQL whether it accepts writes; noWrites when it does not.
func (db *DB) acceptsWrites(ctx context.Context) error {
	var readOnly string
	if err := db.sql.QueryRowContext(ctx, `SHOW transaction_read_only`).Scan(&readOnly); err != nil {
		return err
	}
	if readOnly == "on" {
		readOnlySeen.Add(1) // the next look opens a new connection
		return noWrites{}
	}
	return nil
}
