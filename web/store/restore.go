package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RestoredBackup is what Open found in a copy written by Backup, opened by a desk for the first
// time: when the copy was taken, how many batches of running imports, with how many devices, had
// not been sent by then, and how many bulk changes still running had how many device changes
// not sent or on their way, and how many bulk changes were drafts, which are not confirmed on the
// restored desk (BulkJob.RestoredFrom).
type RestoredBackup struct {
	TakenAt                  time.Time
	Batches, Devices         int
	BulkChanges, BulkDevices int
	BulkDrafts               int
}

// Restored says what Open found of a backup; TakenAt is zero for a database that is not one.
func (db *DB) Restored() RestoredBackup { return db.restored }

// markBackup records in the copy at path, written by Backup, when it was taken. Only the copy
// holds the mark: the desk it was taken from goes on without it.
func markBackup(ctx context.Context, path string, at time.Time) error {
	copied, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		return err
	}
	defer copied.Close()
	if _, err := copied.ExecContext(ctx, migrations[backupTakenMigration][0]); err != nil {
		return err
	}
	_, err = copied.ExecContext(ctx, `INSERT INTO backup_taken (taken_at) VALUES (?)`, ms(at))
	return err
}

// backupTakenMigration is the migration that creates backup_taken; Backup creates the table in a
// copy of an older schema the same way.
const backupTakenMigration = 13

// takeUpBackup readies a copy written by Backup the first time a desk opens it. The desk the copy
// was taken from may have sent, after the copy was taken, the import batches the copy still has
// queued and the bulk device changes it has queued or on their way: each is taken as one whose
// answer was lost, so its devices are read in Graph and never sent again. Bulk changes it holds as
// drafts may have been confirmed there since: each records when the backup was taken, so it is not
// confirmed here. The mark is removed in the same transaction, so this happens once.
func (db *DB) takeUpBackup(ctx context.Context) error {
	return db.tx(ctx, db.txTimeout(), func(t *txn) error {
		var taken sql.NullInt64
		if err := t.queryRow(`SELECT MAX(taken_at) FROM backup_taken`, nil, &taken); err != nil || !taken.Valid {
			return err
		}
		now := ms(db.now())
		devices, err := t.exec(`UPDATE import_rows SET verdict = ?, reason = ? WHERE verdict = ? AND EXISTS (
			SELECT 1 FROM import_batches b WHERE b.job_id = import_rows.job_id AND b.batch = import_rows.batch AND b.state = 'queued')`,
			VerdictUnknown, ReasonRestored, VerdictQueued)
		if err != nil {
			return fmt.Errorf("store: look up the devices a restored backup had not sent: %w", err)
		}
		batches, err := t.exec(`UPDATE import_batches SET state = 'unknown', not_before = ?, sent_at = ? WHERE state = 'queued'`, now, now)
		if err != nil {
			return fmt.Errorf("store: look up the batches a restored backup had not sent: %w", err)
		}
		const bulkUnsent = `WHERE state IN (?, ?) AND job_id IN (SELECT id FROM bulk_jobs WHERE state = 'sending')`
		var bulkChanges int
		if err := t.queryRow(`SELECT COUNT(DISTINCT job_id) FROM bulk_devices `+bulkUnsent, []any{BulkQueued, BulkInFlight}, &bulkChanges); err != nil {
			return fmt.Errorf("store: count the bulk changes a restored backup had not sent: %w", err)
		}
		bulkDevices, err := t.exec(`UPDATE bulk_devices SET state = ?, reason = ?, failure = NULL, not_before = ?, lookups = 0 `+bulkUnsent,
			BulkUnknown, BulkReasonRestored, now, BulkQueued, BulkInFlight)
		if err != nil {
			return fmt.Errorf("store: look up the bulk device changes a restored backup had not sent: %w", err)
		}
		bulkDrafts, err := t.exec(`UPDATE bulk_jobs SET restored_from = ? WHERE state = 'draft'`, taken.Int64)
		if err != nil {
			return fmt.Errorf("store: mark the bulk changes a restored backup held as drafts: %w", err)
		}
		if _, err := t.exec(`DELETE FROM backup_taken`); err != nil {
			return fmt.Errorf("store: take up a restored backup: %w", err)
		}
		db.restored = RestoredBackup{TakenAt: fromMS(taken.Int64), Batches: batches, Devices: devices, BulkChanges: bulkChanges, BulkDevices: bulkDevices, BulkDrafts: bulkDrafts}
		return nil
	})
}
