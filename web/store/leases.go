package store

import (
	"context"
	"fmt"
	"time"
)

// jobTable is a table of jobs that workers advance under leases: a job in a state is due once
// its next_poll_at has come and its lease_until has passed. Import jobs and bulk changes share
// these mechanics.
type jobTable struct {
	name    string // the table
	columns string // what a claim returns
	what    string // for error messages: "import job"
}

// claim leases the most overdue job of the table in state for worker, scanning it with scan; it
// reports whether one was due. On PostgreSQL replicas skip each other's locked rows (FOR UPDATE
// SKIP LOCKED); on SQLite the single writer does the same.
func (db *DB) claim(ctx context.Context, jt jobTable, state, worker string, lease time.Duration, scan func(scan func(...any) error) error) (bool, error) {
	now := db.now()
	lock := ""
	if db.driver == driverPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	claimed := false
	err := db.queryAll(ctx, `UPDATE `+jt.name+` SET lease_owner = ?, lease_until = ? WHERE id = (SELECT id FROM `+jt.name+`
		WHERE state = ? AND lease_until < ? AND (next_poll_at IS NULL OR next_poll_at <= ?) ORDER BY next_poll_at LIMIT 1`+lock+`)
		RETURNING `+jt.columns, []any{worker, ms(now.Add(lease)), state, ms(now), ms(now)}, func(s func(...any) error) error {
		claimed = true
		return scan(s)
	})
	if err != nil {
		return false, fmt.Errorf("store: claim %s: %w", jt.what, err)
	}
	return claimed, nil
}

// renewLease extends a worker's lease; ErrConflict means another worker has taken the job.
func (db *DB) renewLease(ctx context.Context, jt jobTable, id, worker string, lease time.Duration) error {
	n, err := db.execCount(ctx, `UPDATE `+jt.name+` SET lease_until = ? WHERE id = ? AND lease_owner = ?`, ms(db.now().Add(lease)), id, worker)
	if err != nil {
		return fmt.Errorf("store: renew %s lease: %w", jt.what, err)
	}
	if n == 0 {
		return ErrConflict
	}
	return nil
}

// releaseLease gives up a worker's lease, saying when the job should next be looked at.
func (db *DB) releaseLease(ctx context.Context, jt jobTable, id, worker string, payload []byte, next time.Time) error {
	n, err := db.execCount(ctx, `UPDATE `+jt.name+` SET lease_owner = '', lease_until = 0, payload = ?, next_poll_at = ?, updated_at = ? WHERE id = ? AND lease_owner = ?`,
		payload, nullableMS(next), ms(db.now()), id, worker)
	if err != nil {
		return fmt.Errorf("store: release %s: %w", jt.what, err)
	}
	if n == 0 {
		return ErrConflict
	}
	return nil
}
