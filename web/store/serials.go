package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// SerialImport is a row of a submitted import job that carried a serial number.
type SerialImport struct {
	JobID, ActorName, ActorUPN string
	JobState                   string
	At                         time.Time // when the job was last changed
	Line                       int
	Outcome
}

// SerialBulk is a device of a confirmed bulk job, found by its serial number.
type SerialBulk struct {
	JobID, ActorName, ActorUPN string
	Action, GroupTag           string
	JobState                   string
	At                         time.Time // when the job was created
	BulkDevice
}

// SerialHistory is what the desk did to a serial number: the activity that names it, the
// submitted imports that carried it and the bulk changes that chose it, newest first.
type SerialHistory struct {
	Activity []Activity
	Imports  []SerialImport
	Bulk     []SerialBulk
}

// activityOfSerial reads a serial's activity. Its index holds only activity that names a serial
// (see migration 8), and the query says so in the index's own words, so that both engines use it.
const activityOfSerial = `SELECT ` + activityColumns + ` FROM activity WHERE tenant_id = ? AND serial = ? AND serial <> ''
	ORDER BY at DESC, id DESC LIMIT ?`

// importsOfSerial and bulkOfSerial find a serial's rows through the index of its upper case and
// sort only those.
const importsOfSerial = `SELECT j.id, j.actor_name, j.actor_upn, j.state, j.updated_at, r.line, r.batch, r.verdict, r.reason, r.device_id, r.status,
	r.registration_id, r.error_code, r.error_name, r.reconciled
	FROM import_rows r JOIN import_jobs j ON j.id = r.job_id
	WHERE UPPER(r.serial) = ? AND j.tenant_id = ? AND j.state NOT IN ('draft', 'checking') ORDER BY j.updated_at DESC, r.line LIMIT ?`

const bulkOfSerial = `SELECT j.id, j.actor_name, j.actor_upn, j.action, j.group_tag, j.state, j.created_at,
	d.position, d.device_id, d.serial, d.state, d.done_at, d.lookups, d.status_code, d.reason, d.failure, d.activity_id, d.reconciled
	FROM bulk_devices d JOIN bulk_jobs j ON j.id = d.job_id
	WHERE UPPER(d.serial) = ? AND j.tenant_id = ? AND j.state <> 'draft' ORDER BY j.created_at DESC LIMIT ?`

// HistoryOfSerial reads a tenant's history of one serial number, letter case aside, at most
// limit entries of each kind (default 50, at most 200).
func (db *DB) HistoryOfSerial(ctx context.Context, tenantID, serial string, limit int) (*SerialHistory, error) {
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 200)
	serial = strings.ToUpper(strings.TrimSpace(serial))
	h := &SerialHistory{}
	if serial == "" {
		return h, nil
	}
	var err error
	h.Activity, err = queryList(ctx, db, activityOfSerial, []any{tenantID, serial, limit}, scanActivity)
	if err != nil {
		return nil, fmt.Errorf("store: history of a serial: %w", err)
	}
	err = db.queryAll(ctx, importsOfSerial, []any{serial, tenantID, limit}, func(scan func(...any) error) error {
		var s SerialImport
		var at int64
		var reconciled int
		err := scan(&s.JobID, &s.ActorName, &s.ActorUPN, &s.JobState, &at, &s.Line, &s.Batch, &s.Verdict, &s.Reason, &s.DeviceID, &s.Status,
			&s.RegistrationID, &s.ErrorCode, &s.ErrorName, &reconciled)
		s.At, s.Reconciled = fromMS(at), reconciled != 0
		h.Imports = append(h.Imports, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: history of a serial: %w", err)
	}
	err = db.queryAll(ctx, bulkOfSerial, []any{serial, tenantID, limit}, func(scan func(...any) error) error {
		var s SerialBulk
		var at, doneAt int64
		var reconciled int
		err := scan(&s.JobID, &s.ActorName, &s.ActorUPN, &s.Action, &s.GroupTag, &s.JobState, &at,
			&s.Position, &s.DeviceID, &s.Serial, &s.State, &doneAt, &s.Lookups, &s.StatusCode, &s.Reason, &s.Failure, &s.ActivityID, &reconciled)
		s.At, s.DoneAt, s.Reconciled = fromMS(at), optionalMS(doneAt), reconciled != 0
		h.Bulk = append(h.Bulk, s)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: history of a serial: %w", err)
	}
	return h, nil
}

// SerialsImporting finds, among serials, those a submitted import job of the tenant carries
// with one of verdicts, in jobs still sending or changed since since (an import finished a
// moment ago is registered but may not show among registered devices yet). It maps each such
// serial, upper-cased, to its job.
func (db *DB) SerialsImporting(ctx context.Context, tenantID string, serials, verdicts []string, since time.Time) (map[string]string, error) {
	found := map[string]string{}
	if len(serials) == 0 || len(verdicts) == 0 {
		return found, nil
	}
	const perQuery = 400
	for start := 0; start < len(serials); start += perQuery {
		chunk := serials[start:min(start+perQuery, len(serials))]
		args := []any{tenantID, ms(since)}
		for _, v := range verdicts {
			args = append(args, v)
		}
		for _, s := range chunk {
			args = append(args, strings.ToUpper(strings.TrimSpace(s)))
		}
		err := db.queryAll(ctx, serialsImportingQuery(len(verdicts), len(chunk)), args,
			func(scan func(...any) error) error {
				var serial, job string
				err := scan(&serial, &job)
				found[serial] = job
				return err
			})
		if err != nil {
			return nil, fmt.Errorf("store: serials being imported: %w", err)
		}
	}
	return found, nil
}

// serialsImportingQuery finds n serials among the rows of a tenant's jobs that carry one of
// verdicts. It starts from the serials, through the index of their upper case: CROSS JOIN keeps
// SQLite from starting at the tenant's jobs instead, every job the tenant ever imported
// (PostgreSQL takes it as the inner join it is).
func serialsImportingQuery(verdicts, n int) string {
	return `SELECT UPPER(r.serial), j.id FROM import_rows r CROSS JOIN import_jobs j
		WHERE j.id = r.job_id AND j.tenant_id = ? AND (j.state = 'sending' OR j.state = 'finished' AND j.updated_at >= ?)
		AND r.verdict IN (?` + strings.Repeat(", ?", verdicts-1) + `)
		AND UPPER(r.serial) IN (?` + strings.Repeat(", ?", n-1) + `) ORDER BY j.created_at`
}
