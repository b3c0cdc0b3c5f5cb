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
	rows    string // the table of a job's rows, deleted with its draft
	waiting string // the table of a job's sends, whose lost answers a wake may ask to look up again
}

// claim leases the most overdue job of the table in state for worker, scanning it with scanJob;
// it returns nil when none is due. On PostgreSQL replicas skip each other's locked rows (FOR
// UPDATE SKIP LOCKED); on SQLite the single writer does the same.
func claim[T any](ctx context.Context, db *DB, jt jobTable, state, worker string, lease time.Duration, scanJob func(scan func(...any) error) (T, error)) (*T, error) {
	now := db.now()
	jobs, err := queryList(ctx, db, claimQuery(jt, db.driver), []any{worker, ms(now.Add(lease)), state, ms(now), ms(now)}, scanJob)
	if err != nil {
		return nil, fmt.Errorf("store: claim %s: %w", jt.what, err)
	}
	if len(jobs) == 0 {
		return nil, nil
	}
	return &jobs[0], nil
}

// claimQuery leases the most overdue job of the table in a state, found through its due index
// (state, next_poll_at).
func claimQuery(jt jobTable, driver string) string {
	lock := ""
	if driver == driverPostgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	return `UPDATE ` + jt.name + ` SET lease_owner = ?, lease_until = ? WHERE id = (SELECT id FROM ` + jt.name + `
		WHERE state = ? AND lease_until < ? AND (next_poll_at IS NULL OR next_poll_at <= ?) ORDER BY next_poll_at LIMIT 1` + lock + `)
		RETURNING ` + jt.columns
}

// releaseLeasesOfEarlierProcesses frees, at start, every lease held in a SQLite folder this
// process holds the lock of: no other process can be working on its jobs, so a lease held there
// is a process's that ended (a crash, a kill) and would otherwise stop its job until the lease
// ran out. What the job had sent is recorded before it was sent, and the next holder looks up
// what it does not know, as after any lease that ran out. PostgreSQL's replicas may be alive:
// their leases run out as they would.
func (db *DB) releaseLeasesOfEarlierProcesses(ctx context.Context) error {
	for _, jt := range []jobTable{importJobs, bulkJobs} {
		if _, err := db.exec(ctx, `UPDATE `+jt.name+` SET lease_owner = '', lease_until = 0 WHERE lease_until > 0`); err != nil {
			return fmt.Errorf("store: free the leases of an earlier process: %w", err)
		}
	}
	return nil
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

// wakeJob asks for a tenant's job in the table to be looked at now; with recheck, its sends whose
// answer was lost are looked up again at once.
func (db *DB) wakeJob(ctx context.Context, jt jobTable, tenantID, id string, recheck bool) error {
	return db.tx(ctx, db.stmtTimeout, func(t *txn) error {
		n, err := t.exec(wakeQuery(jt), ms(db.now()), tenantID, id)
		if err != nil || n == 0 || !recheck {
			return err
		}
		_, err = t.exec(recheckQuery(jt), id)
		return err
	})
}

func wakeQuery(jt jobTable) string {
	return `UPDATE ` + jt.name + ` SET next_poll_at = ? WHERE tenant_id = ? AND id = ? AND state = 'sending'`
}

func recheckQuery(jt jobTable) string {
	return `UPDATE ` + jt.waiting + ` SET not_before = 0 WHERE job_id = ? AND state = 'unknown'`
}

// draftsQuery finds the table's drafts last changed before a time, through its due index.
func draftsQuery(jt jobTable) string {
	return `SELECT id FROM ` + jt.name + ` WHERE state = 'draft' AND updated_at < ?`
}

// purgeDrafts deletes the table's drafts last changed before a time, with their rows, one
// transaction a draft, and says how many it deleted.
func (db *DB) purgeDrafts(ctx context.Context, jt jobTable, before time.Time) (int, error) {
	ids, err := queryList(ctx, db, draftsQuery(jt), []any{ms(before)}, scanString)
	if err != nil {
		return 0, fmt.Errorf("store: purge %s drafts: %w", jt.what, err)
	}
	purged := 0
	for _, id := range ids {
		err := db.tx(ctx, db.txTimeout(), func(t *txn) error {
			n, err := t.exec(`DELETE FROM `+jt.name+` WHERE id = ? AND state = 'draft' AND updated_at < ?`, id, ms(before))
			if err != nil || n == 0 {
				return err
			}
			purged++
			_, err = t.exec(`DELETE FROM `+jt.rows+` WHERE job_id = ?`, id)
			return err
		})
		if err != nil {
			return purged, fmt.Errorf("store: purge %s drafts: %w", jt.what, err)
		}
	}
	return purged, nil
}
