package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strconv"
	"strings"
	"time"

	"autopilotdesk/graphclient/devicecsv"
)

// ErrConflict means a guarded change no longer applies: the job, its owner, its state, its
// batch or its lease is not what the change required. Nothing was changed.
var ErrConflict = errors.New("store: the change no longer applies")

// ImportJob is a device import from CSV. Its rows and batches are kept beside it (ImportRow,
// ImportBatch), so a job page or report is read from the database on any replica.
type ImportJob struct {
	ID                           string // GUID, assigned when empty
	TenantID, ObjectID, ActorUPN string // the owner: the person who uploaded the file
	ActorName                    string
	CreatedAt, UpdatedAt         time.Time
	State                        string // draft, sending, finished
	Batches                      int
	Payload                      []byte    // opaque JSON owned by the caller; never a hash
	NextPollAt                   time.Time // when a worker should next look at the job
	LeaseOwner                   string    // the worker advancing it, until LeaseUntil
	LeaseUntil                   time.Time
}

// ImportRow is one device row of a job's file: what the pre-flight found, and once submitted
// what became of it. Hash is the hardware hash as the file has it (padded base64; kept as text so
// a row is stored as read, without decoding it); it is overwritten when the job ends.
type ImportRow struct {
	Line                               int
	Serial, ProductKey, GroupTag, User string
	Hash                               string // only when asked for, and empty once the job is final
	HashLen                            int    // the hash's length in characters, always read
	HashShown                          string // the hash's ends, for display
	Notes, Errors                      []string
	AlreadyImported                    bool // the tenant already holds the serial, as TenantMatch says
	TenantMatch                             // what the tenant held for the serial when it was checked
	Outcome                                 // what became of it once submitted
}

// TenantMatch is what a check of a draft found in the tenant for a row's serial: a registered
// Autopilot device, or an import of the desk's still on its way.
type TenantMatch struct {
	RegisteredID, RegisteredGroupTag, RegisteredUser string
	ImportingJob                                     string // an import job of the desk that is importing the serial
}

// Found reports whether the check found the serial in the tenant.
func (m TenantMatch) Found() bool { return m.RegisteredID != "" || m.ImportingJob != "" }

// Outcome is what became of a submitted row: facts only, put into words when a page or report
// is rendered.
type Outcome struct {
	Batch                            int
	Verdict                          string // one of the Verdict constants
	Reason                           string // one of the Reason constants (rows stored earlier hold a sentence)
	DeviceID, Status, RegistrationID string
	ErrorCode                        int
	ErrorName                        string
	Reconciled                       bool
}

// Row verdicts. The first ones are on the way; the others are final.
const (
	VerdictQueued   = "queued"   // waiting for its batch to be sent
	VerdictSending  = "sending"  // its batch is recorded as in flight
	VerdictUnknown  = "unknown"  // its batch's answer never arrived; not yet found in Graph
	VerdictSent     = "sent"     // Graph has it and is processing the import
	VerdictLeftOut  = "left-out" // not sent: refused by the pre-flight, not ticked, or already in the tenant
	VerdictImported = "imported" // complete
	VerdictPartial  = "partial"  // Intune imported it only partly
	VerdictError    = "error"    // Intune reported an error for the device
	VerdictRefused  = "refused"  // Graph refused its whole batch, or the batch was never sent
	VerdictStopped  = "stopped"  // not sent: someone stopped the import before its batch went
	VerdictNotFound = "not-found"
)

// Why a row got its verdict, when the verdict alone does not say.
const (
	ReasonCheck           = "check"            // left out: the pre-flight refused it (its Errors say why)
	ReasonAlreadyImported = "already-imported" // left out: found in the tenant when the serials were checked (its TenantMatch says where)
	ReasonLeftOutByOwner  = "left-out"         // left out: the owner ticked it
	ReasonBatchRefused    = "batch-refused"    // refused: Graph refused its batch (the batch's detail says how)
	ReasonNotSent         = "not-sent"         // refused: an earlier batch's refusal holds for every batch, so its own was not sent
	ReasonLookedUp        = "looked-up"        // not found: looked up after a lost answer, as many times as its batch's Lookups
	ReasonVanished        = "vanished"         // not found: Graph stopped listing its import record before Intune finished
	ReasonStalled         = "stalled"          // not found: Intune had not finished it when the desk stopped following it
	ReasonRestored        = "restored"         // unknown, then not found: its batch was not sent yet in the backup the desk was restored from
)

// RowOutcome is the new outcome of one row.
type RowOutcome struct {
	Line int
	Outcome
}

// ImportBatch is one import call of a job: queued, recorded as in flight before it is sent, then
// answered, unknown (the answer never arrived), reconciled or refused.
type ImportBatch struct {
	Batch      int
	State      string
	Attempts   int
	NotBefore  time.Time // not sent, or not looked up again, before this
	SentAt     time.Time
	ActivityID string
	Detail     []byte // opaque JSON owned by the caller
	Lookups    int
}

const importJobColumns = `id, tenant_id, object_id, actor_upn, actor_name, created_at, updated_at, state, batches, payload, next_poll_at, lease_owner, lease_until`

// tx runs fn in one transaction on the writer: all of it happens, or none.
func (db *DB) tx(ctx context.Context, timeout time.Duration, fn func(t *txn) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	release, err := db.acquire(ctx, db.writer)
	if err != nil {
		return classify(err)
	}
	defer release()
	if db.closed.Load() {
		return errClosed
	}
	sqlTx, err := db.writer.BeginTx(ctx, nil)
	if err != nil {
		return classify(err)
	}
	if err := fn(&txn{tx: sqlTx, db: db, ctx: ctx}); err != nil {
		sqlTx.Rollback()
		return classify(err)
	}
	return classify(sqlTx.Commit())
}

type txn struct {
	tx  *sql.Tx
	db  *DB
	ctx context.Context
}

func (t *txn) exec(query string, args ...any) (int, error) {
	res, err := t.tx.ExecContext(t.ctx, t.db.rebind(query), args...)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	return int(n), err
}

// txTimeout bounds a transaction that writes a whole file's rows.
func (db *DB) txTimeout() time.Duration { return 6 * db.stmtTimeout }

const rowInsertColumns = `job_id, line, serial, product_key, group_tag, assigned_user, hash, hash_shown, notes, errors, already_imported`

// insertRows writes rows in statements of a hundred rows, taking them from the sequence as it
// goes: a caller can decode each row's hash just before it is written.
func (t *txn) insertRows(jobID string, rows iter.Seq[ImportRow]) error {
	const rowsPerInsert = 100
	chunk := make([]ImportRow, 0, rowsPerInsert)
	flush := func() error {
		if len(chunk) == 0 {
			return nil
		}
		var q strings.Builder
		q.WriteString(`INSERT INTO import_rows (` + rowInsertColumns + `) VALUES `)
		args := make([]any, 0, len(chunk)*11)
		for i, r := range chunk {
			if i > 0 {
				q.WriteString(", ")
			}
			q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
			args = append(args, jobID, r.Line, r.Serial, r.ProductKey, r.GroupTag, r.User, sql.NullString{String: r.Hash, Valid: r.Hash != ""}, r.HashShown,
				joinLines(r.Notes), joinLines(r.Errors), boolInt(r.AlreadyImported))
		}
		chunk = chunk[:0]
		if _, err := t.exec(q.String(), args...); err != nil {
			return fmt.Errorf("store: write import rows: %w", err)
		}
		return nil
	}
	for r := range rows {
		if chunk = append(chunk, r); len(chunk) == rowsPerInsert {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Notes and errors are plain sentences without line breaks: one per line.
func joinLines(s []string) string { return strings.Join(s, "\n") }

func splitLines(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// CreateImportJob stores a new job and its rows at once, assigning its ID and CreatedAt when empty.
func (db *DB) CreateImportJob(ctx context.Context, j *ImportJob, rows iter.Seq[ImportRow]) error {
	if j.TenantID == "" || j.State == "" {
		return errors.New("store: create import job: empty tenant or state")
	}
	db.stamp(&j.ID, &j.CreatedAt)
	j.UpdatedAt = j.CreatedAt
	err := db.tx(ctx, db.txTimeout(), func(t *txn) error {
		if err := t.insertImportJob(j); err != nil {
			return err
		}
		if rows == nil {
			return nil
		}
		return t.insertRows(j.ID, rows)
	})
	if err != nil {
		return fmt.Errorf("store: create import job: %w", err)
	}
	return nil
}

func (t *txn) insertImportJob(j *ImportJob) error {
	if j.TenantID == "" || j.State == "" {
		return errors.New("store: create import job: empty tenant or state")
	}
	_, err := t.exec(`INSERT INTO import_jobs (`+importJobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ID, j.TenantID, j.ObjectID, j.ActorUPN, j.ActorName, ms(j.CreatedAt), ms(j.UpdatedAt), j.State, j.Batches, j.Payload,
		nullableMS(j.NextPollAt), j.LeaseOwner, ms(j.LeaseUntil))
	return err
}

// ReplaceDraftRows replaces every row of a draft, and its payload, for its owner only; anyone
// else, or a job no longer a draft, gets ErrConflict.
func (db *DB) ReplaceDraftRows(ctx context.Context, tenantID, id, ownerID string, payload []byte, rows iter.Seq[ImportRow]) error {
	return db.tx(ctx, db.txTimeout(), func(t *txn) error {
		if err := t.ownDraft(db, tenantID, id, ownerID, payload); err != nil {
			return err
		}
		if _, err := t.exec(`DELETE FROM import_rows WHERE job_id = ?`, id); err != nil {
			return err
		}
		return t.insertRows(id, rows)
	})
}

// ownDraft writes a draft's payload if the job is still a draft of this owner; else ErrConflict.
func (t *txn) ownDraft(db *DB, tenantID, id, ownerID string, payload []byte) error {
	n, err := t.exec(`UPDATE import_jobs SET payload = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND object_id = ? AND state = 'draft'`,
		payload, ms(db.now()), tenantID, id, ownerID)
	if err == nil && n == 0 {
		err = ErrConflict
	}
	return err
}

// StartTenantCheck hands a draft of its owner to the serial check, which looks its serials up in
// the tenant: the draft becomes "checking", due at once, and takes no other change until the
// check ends. Anyone else, or a job no longer a draft, gets ErrConflict.
func (db *DB) StartTenantCheck(ctx context.Context, tenantID, id, ownerID string, payload []byte) error {
	return db.switchCheck(ctx, "draft", "checking", tenantID, id, ownerID, payload)
}

// StopTenantCheck ends its owner's check before the checker has: the draft takes changes again,
// with what the check found so far. A checker still at it loses its lease and writes nothing
// more. ErrConflict when the job is not being checked.
func (db *DB) StopTenantCheck(ctx context.Context, tenantID, id, ownerID string, payload []byte) error {
	return db.switchCheck(ctx, "checking", "draft", tenantID, id, ownerID, payload)
}

func (db *DB) switchCheck(ctx context.Context, from, to, tenantID, id, ownerID string, payload []byte) error {
	return db.tx(ctx, db.stmtTimeout, func(t *txn) error {
		return t.execGuarded(`UPDATE import_jobs SET state = ?, payload = ?, updated_at = ?, next_poll_at = NULL, lease_owner = '', lease_until = 0
			WHERE tenant_id = ? AND id = ? AND object_id = ? AND state = ?`, to, payload, ms(db.now()), tenantID, id, ownerID, from)
	})
}

// TenantCheck is one step of a serial check, as the checker holding the job's lease records it.
type TenantCheck struct {
	JobID, LeaseOwner string
	Payload           []byte
	// Found is what the step found for its rows, by line: a zero match clears an earlier finding.
	// Rows it does not name keep theirs.
	Found map[int]TenantMatch
	// Finished ends the check: the job is a draft again, taking changes, and its lease ends.
	Finished bool
}

// RecordTenantCheck stores one step of a check with its findings, all at once. ErrConflict means
// the check is no longer the lease owner's: its owner stopped it, or another checker took it over.
func (db *DB) RecordTenantCheck(ctx context.Context, ch TenantCheck) error {
	set := "payload = ?, updated_at = ?"
	if ch.Finished {
		set += ", state = 'draft', next_poll_at = NULL, lease_owner = '', lease_until = 0"
	}
	return db.tx(ctx, db.txTimeout(), func(t *txn) error {
		if err := t.execGuarded(`UPDATE import_jobs SET `+set+` WHERE id = ? AND state = 'checking' AND lease_owner = ?`,
			ch.Payload, ms(db.now()), ch.JobID, ch.LeaseOwner); err != nil {
			return err
		}
		for line, m := range ch.Found {
			if _, err := t.exec(`UPDATE import_rows SET already_imported = ?, registered_id = ?, registered_group_tag = ?, registered_user = ?, importing_job = ?
				WHERE job_id = ? AND line = ?`, boolInt(m.Found()), m.RegisteredID, m.RegisteredGroupTag, m.RegisteredUser, m.ImportingJob, ch.JobID, line); err != nil {
				return err
			}
		}
		return nil
	})
}

// ImportChange is one all-or-nothing change to an import job, its batches and its rows. Every
// guard that is set must hold, or nothing changes and ChangeImport returns ErrConflict.
type ImportChange struct {
	JobID string

	// Guards.
	TenantID, OwnerID string   // the job's tenant and owner
	FromState         string   // the job's state
	LeaseOwner        string   // the worker that must hold the job's lease
	BatchFrom         []string // with Batch: the states it may be in

	// Changes.
	State      string        // the job's new state
	Payload    []byte        // the job's new payload
	Batches    int           // the job's new number of batches
	NewRows    []ImportRow   // rows to add, outcomes included
	NewBatches []ImportBatch // batches to add
	Batch      *ImportBatch  // a batch's new state, detail, times and counts
	Rows       []RowOutcome  // rows' new outcomes
	WipeHashes bool          // overwrite every hash of the job (its rows are final)
	Activity   *Activity     // recorded with the change
}

// ChangeImport applies ch in one transaction.
func (db *DB) ChangeImport(ctx context.Context, ch ImportChange) error {
	if ch.JobID == "" {
		return errors.New("store: change import: no job")
	}
	var activity []any
	if ch.Activity != nil {
		var err error
		if activity, err = db.activityRow(ch.Activity); err != nil {
			return err
		}
		if ch.Batch != nil && ch.Batch.ActivityID == "" {
			ch.Batch.ActivityID = ch.Activity.ID
		}
	}
	err := db.tx(ctx, db.txTimeout(), func(t *txn) error {
		if err := t.updateJob(jobUpdate{table: "import_jobs", id: ch.JobID, now: ms(db.now()), state: ch.State, payload: ch.Payload,
			count: "batches", n: ch.Batches, tenantID: ch.TenantID, ownerID: ch.OwnerID, fromState: ch.FromState, leaseOwner: ch.LeaseOwner}); err != nil {
			return err
		}
		if err := t.updateImportBatch(ch); err != nil {
			return err
		}
		if err := t.insertRows(ch.JobID, slices.Values(ch.NewRows)); err != nil {
			return err
		}
		for _, r := range ch.NewRows {
			if r.Outcome != (Outcome{}) {
				if err := t.writeOutcomes(ch.JobID, []RowOutcome{{Line: r.Line, Outcome: r.Outcome}}); err != nil {
					return err
				}
			}
		}
		for _, b := range ch.NewBatches {
			if _, err := t.exec(`INSERT INTO import_batches (job_id, batch, state, attempts, not_before, sent_at, activity_id, detail, lookups) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				ch.JobID, b.Batch, b.State, b.Attempts, ms(b.NotBefore), ms(b.SentAt), b.ActivityID, b.Detail, b.Lookups); err != nil {
				return err
			}
		}
		if err := t.writeOutcomes(ch.JobID, ch.Rows); err != nil {
			return err
		}
		if ch.WipeHashes {
			if _, err := t.exec(`UPDATE import_rows SET hash = NULL, `+shortenTooLong+` WHERE job_id = ? AND (hash IS NOT NULL OR `+anyTooLong+`)`, ch.JobID); err != nil {
				return err
			}
		}
		if activity != nil {
			if _, err := t.exec(insertActivity, activity...); err != nil {
				return err
			}
		}
		return nil
	})
	if err := changeErr("change import job", err); err != nil {
		return err
	}
	if ch.WipeHashes {
		db.scrub(context.Background())
	}
	return nil
}

// jobUpdate is one change of a job's row (import_jobs or bulk_jobs): updated_at, and the state,
// payload and count (of batches or chunks) when given, only where the guards hold.
type jobUpdate struct {
	table, id  string
	now        int64
	state      string
	payload    []byte
	count      string // the count's column
	n          int
	tenantID   string
	ownerID    string
	fromState  string
	leaseOwner string
}

// updateJob applies u (ErrConflict when a guard does not hold).
func (t *txn) updateJob(u jobUpdate) error {
	set := []string{"updated_at = ?"}
	args := []any{u.now}
	if u.state != "" {
		set, args = append(set, "state = ?"), append(args, u.state)
	}
	if u.payload != nil {
		set, args = append(set, "payload = ?"), append(args, u.payload)
	}
	if u.n > 0 {
		set, args = append(set, u.count+" = ?"), append(args, u.n)
	}
	where := []string{"id = ?"}
	args = append(args, u.id)
	for _, g := range []struct{ column, value string }{
		{"tenant_id", u.tenantID}, {"object_id", u.ownerID}, {"state", u.fromState}, {"lease_owner", u.leaseOwner},
	} {
		if g.value != "" {
			where, args = append(where, g.column+" = ?"), append(args, g.value)
		}
	}
	return t.execGuarded(`UPDATE `+u.table+` SET `+strings.Join(set, ", ")+` WHERE `+strings.Join(where, " AND "), args...)
}

// updateImportBatch changes ch's batch, only from the states ch.BatchFrom names (ErrConflict otherwise).
func (t *txn) updateImportBatch(ch ImportChange) error {
	b := ch.Batch
	if b == nil {
		return nil
	}
	q := `UPDATE import_batches SET state = ?, attempts = ?, not_before = ?, sent_at = ?, activity_id = ?, detail = ?, lookups = ? WHERE job_id = ? AND batch = ?`
	args := []any{b.State, b.Attempts, ms(b.NotBefore), ms(b.SentAt), b.ActivityID, b.Detail, b.Lookups, ch.JobID, b.Batch}
	if len(ch.BatchFrom) > 0 {
		q += ` AND state IN (?` + strings.Repeat(", ?", len(ch.BatchFrom)-1) + `)`
		for _, s := range ch.BatchFrom {
			args = append(args, s)
		}
	}
	if err := t.execGuarded(q, args...); err != nil {
		return err
	}
	return nil
}

// writeOutcomes writes rows' outcomes in few statements: rows that share an outcome (a whole
// batch queued at submit, say) share one; the rest go 200 to a statement (see
// writeDistinctOutcomes), so a batch's answer (500 different device ids) is three statements.
func (t *txn) writeOutcomes(jobID string, rows []RowOutcome) error {
	groups := map[Outcome][]any{}
	var order []Outcome
	for _, r := range rows {
		if _, seen := groups[r.Outcome]; !seen {
			order = append(order, r.Outcome)
		}
		groups[r.Outcome] = append(groups[r.Outcome], r.Line)
	}
	var single []RowOutcome
	const linesPerStatement = 500
	for _, o := range order {
		lines := groups[o]
		if len(lines) == 1 {
			single = append(single, RowOutcome{Line: lines[0].(int), Outcome: o})
			continue
		}
		for start := 0; start < len(lines); start += linesPerStatement {
			chunk := lines[start:min(start+linesPerStatement, len(lines))]
			args := append([]any{o.Batch, o.Verdict, o.Reason, o.DeviceID, o.Status, o.RegistrationID, o.ErrorCode, o.ErrorName, boolInt(o.Reconciled), jobID}, chunk...)
			if _, err := t.exec(`UPDATE import_rows SET batch = ?, verdict = ?, reason = ?, device_id = ?, status = ?, registration_id = ?,
				error_code = ?, error_name = ?, reconciled = ? WHERE job_id = ? AND line IN (?`+strings.Repeat(", ?", len(chunk)-1)+`)`, args...); err != nil {
				return fmt.Errorf("store: write import outcomes: %w", err)
			}
		}
	}
	return t.writeDistinctOutcomes(jobID, single)
}

// writeDistinctOutcomes writes rows whose outcomes all differ, 200 to a statement: an UPDATE
// joined to a VALUES list (both engines name its columns column1, column2...; the first row's
// casts give the list its types on PostgreSQL).
func (t *txn) writeDistinctOutcomes(jobID string, rows []RowOutcome) error {
	const rowsPerStatement = 200
	const first = "(CAST(? AS INTEGER), CAST(? AS INTEGER), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS INTEGER), CAST(? AS TEXT), CAST(? AS INTEGER))"
	const next = ", (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
	for start := 0; start < len(rows); start += rowsPerStatement {
		chunk := rows[start:min(start+rowsPerStatement, len(rows))]
		args := make([]any, 0, len(chunk)*10+1)
		for _, r := range chunk {
			o := r.Outcome
			args = append(args, r.Line, o.Batch, o.Verdict, o.Reason, o.DeviceID, o.Status, o.RegistrationID, o.ErrorCode, o.ErrorName, boolInt(o.Reconciled))
		}
		args = append(args, jobID)
		if _, err := t.exec(`UPDATE import_rows SET batch = v.column2, verdict = v.column3, reason = v.column4, device_id = v.column5,
			status = v.column6, registration_id = v.column7, error_code = v.column8, error_name = v.column9, reconciled = v.column10
			FROM (VALUES `+first+strings.Repeat(next, len(chunk)-1)+`) AS v
			WHERE import_rows.job_id = ? AND import_rows.line = v.column1`, args...); err != nil {
			return fmt.Errorf("store: write import outcomes: %w", err)
		}
	}
	return nil
}

func scanImportJob(scan func(...any) error) (ImportJob, error) {
	var j ImportJob
	var created, updated, leaseUntil int64
	var nextPoll sql.NullInt64
	err := scan(&j.ID, &j.TenantID, &j.ObjectID, &j.ActorUPN, &j.ActorName, &created, &updated, &j.State, &j.Batches, &j.Payload, &nextPoll,
		&j.LeaseOwner, &leaseUntil)
	j.CreatedAt, j.UpdatedAt, j.NextPollAt = fromMS(created), fromMS(updated), fromNullableMS(nextPoll)
	if leaseUntil != 0 {
		j.LeaseUntil = fromMS(leaseUntil)
	}
	return j, err
}

// GetImportJob reads one job of a tenant; another tenant's job is ErrNotFound.
func (db *DB) GetImportJob(ctx context.Context, tenantID, id string) (*ImportJob, error) {
	return only(db.importJobs(ctx, jobOfTenant, tenantID, id))
}

// ListImportJobs lists a tenant's jobs newest first; limit defaults to 50 and is at most 200.
func (db *DB) ListImportJobs(ctx context.Context, tenantID string, limit int) ([]ImportJob, error) {
	if limit <= 0 {
		limit = 50
	}
	return db.importJobs(ctx, importJobsOfTenant, tenantID, min(limit, 200))
}

// ImportJobFilter selects a tenant's import jobs, newest first.
type ImportJobFilter struct {
	TenantID string
	// OpenOf is a person's object id: only their jobs not yet finished (drafts, checks running,
	// imports under way).
	OpenOf string
	Before string // a cursor PageImportJobs returned: the jobs older than it
	Limit  int    // defaults to 50, at most 200
}

// where is the condition and arguments f selects, without paging.
func (f ImportJobFilter) where() (string, []any) {
	if f.OpenOf != "" {
		return `tenant_id = ? AND object_id = ? AND state <> 'finished'`, []any{f.TenantID, f.OpenOf}
	}
	return `tenant_id = ?`, []any{f.TenantID}
}

// PageImportJobs lists a page of the jobs f selects, newest first, with keyset paging: next is
// the cursor of the following page, empty on the last one. A cursor it did not hand out is
// ErrInvalidCursor.
func (db *DB) PageImportJobs(ctx context.Context, f ImportJobFilter) (page []ImportJob, next string, err error) {
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 200)
	where, args := f.where()
	if f.Before != "" {
		at, id, err := parseCursor(f.Before)
		if err != nil {
			return nil, "", err
		}
		where += ` AND (created_at < ? OR (created_at = ? AND id < ?))`
		args = append(args, at, at, id)
	}
	page, err = db.importJobs(ctx, `WHERE `+where+` ORDER BY created_at DESC, id DESC LIMIT ?`, append(args, f.Limit+1)...)
	if err != nil {
		return nil, "", err
	}
	if len(page) > f.Limit {
		page = page[:f.Limit]
		next = ImportJobCursor(page[len(page)-1])
	}
	return page, next, nil
}

// ImportJobCursor is the paging cursor at j: PageImportJobs lists what is older than it.
func ImportJobCursor(j ImportJob) string {
	return strconv.FormatInt(ms(j.CreatedAt), 10) + "_" + j.ID
}

// CountImportJobs counts the jobs f selects (its cursor and limit aside).
func (db *DB) CountImportJobs(ctx context.Context, f ImportJobFilter) (int, error) {
	where, args := f.where()
	var n int
	if err := db.queryRow(ctx, `SELECT COUNT(*) FROM import_jobs WHERE `+where, args, &n); err != nil {
		return 0, fmt.Errorf("store: count import jobs: %w", err)
	}
	return n, nil
}

// jobOfTenant reads one job of a tenant by its key (import or bulk job).
const jobOfTenant = `WHERE tenant_id = ? AND id = ?`

const importJobsOfTenant = `WHERE tenant_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`

func (db *DB) importJobs(ctx context.Context, where string, args ...any) ([]ImportJob, error) {
	jobs, err := queryList(ctx, db, `SELECT `+importJobColumns+` FROM import_jobs `+where, args, scanImportJob)
	if err != nil {
		return nil, fmt.Errorf("store: read import jobs: %w", err)
	}
	return jobs, nil
}

// RowFilter selects the rows ImportRows reads.
type RowFilter struct {
	Batch  int  // only this batch's rows; 0: all
	Hashes bool // read the hashes too (the worker, to send a batch)
	// Valid reads only the rows without a problem, from the line after AfterLine, at most Limit
	// of them (0: all): a step of a check.
	Valid     bool
	AfterLine int
	Limit     int
}

// ImportRows reads a job's rows in file order.
func (db *DB) ImportRows(ctx context.Context, jobID string, f RowFilter) ([]ImportRow, error) {
	q, args := importRowsQuery(jobID, f)
	var rows []ImportRow
	err := db.queryAll(ctx, q, args, func(scan func(...any) error) error {
		var r ImportRow
		var hash sql.NullString
		var notes, errs string
		var already, reconciled int
		err := scan(&r.Line, &r.Serial, &r.ProductKey, &r.GroupTag, &r.User, &hash, &r.HashLen, &r.HashShown, &notes, &errs, &already,
			&r.RegisteredID, &r.RegisteredGroupTag, &r.RegisteredUser, &r.ImportingJob,
			&r.Batch, &r.Verdict, &r.Reason, &r.DeviceID, &r.Status, &r.RegistrationID, &r.ErrorCode, &r.ErrorName, &reconciled)
		r.Hash, r.Notes, r.Errors, r.AlreadyImported, r.Reconciled = hash.String, splitLines(notes), splitLines(errs), already != 0, reconciled != 0
		rows = append(rows, r)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read import rows: %w", err)
	}
	return rows, nil
}

// RowTally counts a job's rows: all of them, those without a problem, and of those the ones
// ticked to be left out (found in the tenant by a check).
type RowTally struct{ Rows, Valid, Ticked int }

// JobRowCounts are an import job's rows counted without reading them: by verdict ("" for a
// draft's), and how many have no problem.
type JobRowCounts struct {
	ByVerdict map[string]int
	Valid     int
}

// importRowCounts counts the rows of n jobs by job and verdict through the rows' key.
func importRowCounts(n int) string {
	return `SELECT job_id, verdict, COUNT(*), COALESCE(SUM(CASE WHEN errors = '' THEN 1 ELSE 0 END), 0) FROM import_rows
		WHERE job_id IN (?` + strings.Repeat(", ?", n-1) + `) GROUP BY job_id, verdict`
}

// CountImportRows counts the rows of each of the jobs in one query: the list of a tenant's
// imports shows where each stands. A job without rows is missing from the answer.
func (db *DB) CountImportRows(ctx context.Context, jobIDs []string) (map[string]JobRowCounts, error) {
	counts := map[string]JobRowCounts{}
	if len(jobIDs) == 0 {
		return counts, nil
	}
	args := make([]any, len(jobIDs))
	for i, id := range jobIDs {
		args[i] = id
	}
	err := db.queryAll(ctx, importRowCounts(len(jobIDs)), args, func(scan func(...any) error) error {
		var job, verdict string
		var n, valid int
		if err := scan(&job, &verdict, &n, &valid); err != nil {
			return err
		}
		c := counts[job]
		if c.ByVerdict == nil {
			c.ByVerdict = map[string]int{}
		}
		c.ByVerdict[verdict] += n
		c.Valid += valid
		counts[job] = c
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: count import rows: %w", err)
	}
	return counts, nil
}

// TallyImportRows counts a job's rows without reading them: a check's page, refreshed every
// couple of seconds while 10,000 rows wait, shows only their counts.
func (db *DB) TallyImportRows(ctx context.Context, jobID string) (RowTally, error) {
	var t RowTally
	err := db.queryAll(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN errors = '' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN errors = '' AND already_imported <> 0 THEN 1 ELSE 0 END), 0) FROM import_rows WHERE job_id = ?`,
		[]any{jobID}, func(scan func(...any) error) error { return scan(&t.Rows, &t.Valid, &t.Ticked) })
	if err != nil {
		return t, fmt.Errorf("store: count import rows: %w", err)
	}
	return t, nil
}

// importRowsQuery reads a job's rows as f selects them, in file order.
func importRowsQuery(jobID string, f RowFilter) (string, []any) {
	hash := "NULL"
	if f.Hashes {
		hash = "hash"
	}
	q := `SELECT line, serial, product_key, group_tag, assigned_user, ` + hash + `, COALESCE(LENGTH(hash), 0), hash_shown, notes, errors, already_imported,
		registered_id, registered_group_tag, registered_user, importing_job,
		batch, verdict, reason, device_id, status, registration_id, error_code, error_name, reconciled FROM import_rows WHERE job_id = ?`
	args := []any{jobID}
	if f.Batch > 0 {
		q += ` AND batch = ?`
		args = append(args, f.Batch)
	}
	if f.Valid {
		q += ` AND errors = ''`
	}
	if f.AfterLine > 0 {
		q += ` AND line > ?`
		args = append(args, f.AfterLine)
	}
	q += ` ORDER BY line`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	return q, args
}

const importBatchesOfJob = `SELECT batch, state, attempts, not_before, sent_at, activity_id, detail, lookups FROM import_batches WHERE job_id = ? ORDER BY batch`

// ImportBatches reads a job's batches in order.
func (db *DB) ImportBatches(ctx context.Context, jobID string) ([]ImportBatch, error) {
	var batches []ImportBatch
	err := db.queryAll(ctx, importBatchesOfJob, []any{jobID}, func(scan func(...any) error) error {
		var b ImportBatch
		var notBefore, sentAt int64
		err := scan(&b.Batch, &b.State, &b.Attempts, &notBefore, &sentAt, &b.ActivityID, &b.Detail, &b.Lookups)
		if notBefore != 0 {
			b.NotBefore = fromMS(notBefore)
		}
		if sentAt != 0 {
			b.SentAt = fromMS(sentAt)
		}
		batches = append(batches, b)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read import batches: %w", err)
	}
	return batches, nil
}

var importJobs = jobTable{name: "import_jobs", columns: importJobColumns, what: "import job", rows: "import_rows", waiting: "import_batches"}

// ClaimImportJob leases the most overdue job in state for a worker: one whose next look is due
// and whose lease is free or has run out. It returns nil when no job is due.
func (db *DB) ClaimImportJob(ctx context.Context, state, worker string, lease time.Duration) (*ImportJob, error) {
	return claim(ctx, db, importJobs, state, worker, lease, scanImportJob)
}

// RenewImportLease extends a worker's lease; ErrConflict means another worker has taken the job.
func (db *DB) RenewImportLease(ctx context.Context, id, worker string, lease time.Duration) error {
	return db.renewLease(ctx, importJobs, id, worker, lease)
}

// ReleaseImportJob gives up a worker's lease, saying when the job should next be looked at.
func (db *DB) ReleaseImportJob(ctx context.Context, id, worker string, payload []byte, next time.Time) error {
	return db.releaseLease(ctx, importJobs, id, worker, payload, next)
}

// WakeImportJob asks for a job of a tenant to be looked at now; with recheck, the batches whose
// answer never arrived are looked up again at once.
func (db *DB) WakeImportJob(ctx context.Context, tenantID, id string, recheck bool) error {
	return db.wakeJob(ctx, importJobs, tenantID, id, recheck)
}

// WipeImportHashes overwrites up to limit of a job's remaining hashes, for the worker holding
// its lease, and says how many it overwrote: a job of 10,000 rows is wiped in steps, each a short
// transaction, before it is marked finished.
func (db *DB) WipeImportHashes(ctx context.Context, jobID, leaseOwner string, limit int) (int, error) {
	n, err := db.execCount(ctx, wipeImportHashes, jobID, jobID, limit, jobID, leaseOwner)
	if err != nil {
		return n, fmt.Errorf("store: wipe import hashes: %w", err)
	}
	return n, nil
}

var wipeImportHashes = `UPDATE import_rows SET hash = NULL, ` + shortenTooLong + ` WHERE job_id = ? AND line IN
	(SELECT line FROM import_rows WHERE job_id = ? AND (hash IS NOT NULL OR ` + anyTooLong + `) LIMIT ?)
	AND EXISTS (SELECT 1 FROM import_jobs WHERE id = ? AND lease_owner = ?)`

// A value too long for its column (a hardware hash in the wrong column, say) goes with the
// hashes: only its ends are kept, as devicecsv.Truncate shows them.
var (
	shortenTooLong = shortened("serial", devicecsv.MaxSerialLength) + ", " + shortened("product_key", devicecsv.MaxProductKeyLength) + ", " +
		shortened("group_tag", devicecsv.MaxGroupTagLength) + ", " + shortened("assigned_user", devicecsv.MaxUserLength)
	anyTooLong = fmt.Sprintf("LENGTH(serial) > %d OR LENGTH(product_key) > %d OR LENGTH(group_tag) > %d OR LENGTH(assigned_user) > %d",
		devicecsv.MaxSerialLength, devicecsv.MaxProductKeyLength, devicecsv.MaxGroupTagLength, devicecsv.MaxUserLength)
)

func shortened(col string, limit int) string {
	return fmt.Sprintf("%[1]s = CASE WHEN LENGTH(%[1]s) > %[2]d THEN SUBSTR(%[1]s, 1, 4) || '…' || SUBSTR(%[1]s, LENGTH(%[1]s) - 3, 4) ELSE %[1]s END", col, limit)
}

// PurgeImportDrafts deletes drafts last changed before a time, with their rows: a file that was
// checked but never imported does not keep its hashes for ever.
func (db *DB) PurgeImportDrafts(ctx context.Context, before time.Time) (int, error) {
	purged, err := db.purgeDrafts(ctx, importJobs, before)
	if err == nil && purged > 0 {
		db.scrub(context.Background())
	}
	return purged, err
}

// StoppedImport is what StopImport stopped.
type StoppedImport struct{ Batches, Rows int }

// StopImport keeps every batch of a sending job that is still queued from being sent, for anyone
// in the job's tenant: each such batch becomes "stopped" with detail (opaque, owned by the
// caller), its rows get VerdictStopped, and the job is woken so a worker can finish it; the
// activity record made from the counts goes in the same transaction. A batch in flight is left
// alone: the worker records a batch in flight only while it is queued, and so does this, so a batch
// is either sent or stopped, never both. Nothing left to stop is (StoppedImport{}, nil), with no
// record; a job that is not sending is ErrConflict.
func (db *DB) StopImport(ctx context.Context, tenantID, jobID string, detail []byte, record func(StoppedImport) *Activity) (StoppedImport, error) {
	var got StoppedImport
	err := db.tx(ctx, db.txTimeout(), func(t *txn) error {
		got = StoppedImport{}
		// The job's row first, as the worker's changes take it: two desks on one database wait
		// for each other in one order.
		if err := t.execGuarded(`UPDATE import_jobs SET next_poll_at = ?, updated_at = ? WHERE tenant_id = ? AND id = ? AND state = 'sending'`,
			ms(db.now()), ms(db.now()), tenantID, jobID); err != nil {
			return err
		}
		n, err := t.exec(stopQueuedBatches, detail, jobID)
		if err != nil || n == 0 {
			return err
		}
		got.Batches = n
		if got.Rows, err = t.exec(stopQueuedRows, VerdictStopped, jobID, VerdictQueued, jobID); err != nil {
			return err
		}
		a := record(got)
		a.TenantID = tenantID
		args, err := db.activityRow(a)
		if err != nil {
			return err
		}
		_, err = t.exec(insertActivity, args...)
		return err
	})
	if err := changeErr("stop import job", err); err != nil {
		return StoppedImport{}, err
	}
	return got, nil
}

const (
	stopQueuedBatches = `UPDATE import_batches SET state = 'stopped', detail = ? WHERE job_id = ? AND state = 'queued'`
	stopQueuedRows    = `UPDATE import_rows SET verdict = ? WHERE job_id = ? AND verdict = ?
		AND batch IN (SELECT batch FROM import_batches WHERE job_id = ? AND state = 'stopped')`
)
