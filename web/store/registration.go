package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// RegistrationCode is a one-time code a technician uses at a device to hand its hardware hash
// to the desk. Only a hash of the code is kept; the code itself is shown once, when created.
type RegistrationCode struct {
	ID, TenantID                        string
	CreatorOID, CreatorUPN, CreatorName string
	Note, GroupTag, AssignedUser        string // what every device registered with it gets
	CreatedAt, ExpiresAt                time.Time
	Uses, Used                          int // devices it may take, and has taken
	RevokedAt                           time.Time
	RevokedBy                           string
}

// Usable reports whether the code still takes devices at now.
func (c RegistrationCode) Usable(now time.Time) bool {
	return c.RevokedAt.IsZero() && now.Before(c.ExpiresAt) && c.Used < c.Uses
}

// Submission states.
const (
	SubmissionWaiting  = "waiting"  // received, waiting for approval; its hashes are kept
	SubmissionApproved = "approved" // approved: its import job is on the way
	SubmissionFinished = "finished" // its import job finished; hashes overwritten
	SubmissionRejected = "rejected" // rejected with a reason; hashes overwritten
	SubmissionExpired  = "expired"  // its code expired before anyone approved it; hashes overwritten
)

// RegistrationSubmission is what one request from a device brought with a code: one or more
// devices from one CSV file.
type RegistrationSubmission struct {
	ID, CodeID, TenantID string
	ReceivedAt           time.Time
	ClientIP             string
	FileNotes            []string // what the pre-flight repaired in the file as a whole
	State                string
	// Who approved or rejected it, and when.
	DecidedAt                           time.Time
	DeciderOID, DeciderUPN, DeciderName string
	Reason                              string // why it was rejected
	Refused                             string // why an approval sent nothing (it waits again)
	JobID                               string // the import job an approval created
	SyncAt                              time.Time
	SyncNote                            string // what became of the Autopilot sync after its import
	Devices                             []RegistrationDevice
	Code                                RegistrationCode // the code it came with
}

// RegistrationDevice is one device row a submission brought.
type RegistrationDevice struct {
	Line                               int // its line in the device's file
	Serial, ProductKey, GroupTag, User string
	Manufacturer, Model                string
	Hash                               string // padded base64; empty once the submission is final
	HashShown                          string // the hash's ends, for display
	Notes                              []string
	JobLine                            int // its line in the import job an approval created
	SubmissionID                       string
	ReceivedAt                         time.Time
}

const registrationCodeColumns = `id, tenant_id, creator_oid, creator_upn, creator_name, note, group_tag, assigned_user,
	created_at, expires_at, uses, used, revoked_at, revoked_by`

// codeColumns are registrationCodeColumns of the code joined as c.
const codeColumns = `c.id, c.tenant_id, c.creator_oid, c.creator_upn, c.creator_name, c.note, c.group_tag, c.assigned_user,
	c.created_at, c.expires_at, c.uses, c.used, c.revoked_at, c.revoked_by`

func scanRegistrationCode(scan func(...any) error) (RegistrationCode, error) {
	var c RegistrationCode
	var created, expires, revoked int64
	err := scan(&c.ID, &c.TenantID, &c.CreatorOID, &c.CreatorUPN, &c.CreatorName, &c.Note, &c.GroupTag, &c.AssignedUser,
		&created, &expires, &c.Uses, &c.Used, &revoked, &c.RevokedBy)
	c.CreatedAt, c.ExpiresAt = fromMS(created), fromMS(expires)
	if revoked != 0 {
		c.RevokedAt = fromMS(revoked)
	}
	return c, err
}

// CreateRegistrationCode stores a new code by its hash, assigning its ID and CreatedAt when empty.
// formKeyHash, when set, is the one-time key of the form that created it: a second code from the
// same form is refused with ErrConflict. activity is recorded with it.
func (db *DB) CreateRegistrationCode(ctx context.Context, c *RegistrationCode, codeHash, formKeyHash string, activity *Activity) error {
	if c.TenantID == "" || codeHash == "" || c.Uses < 1 {
		return errors.New("store: create registration code: no tenant, hash or uses")
	}
	db.stamp(&c.ID, &c.CreatedAt)
	c.ExpiresAt = fromMS(ms(c.ExpiresAt))
	act, err := db.activityRow(activity)
	if err != nil {
		return err
	}
	err = db.tx(ctx, db.stmtTimeout, func(t *txn) error {
		if err := t.execGuarded(`INSERT INTO registration_codes (`+registrationCodeColumns+`, code_hash, form_key_hash)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, '', ?, ?) ON CONFLICT DO NOTHING`,
			c.ID, c.TenantID, c.CreatorOID, c.CreatorUPN, c.CreatorName, c.Note, c.GroupTag, c.AssignedUser,
			ms(c.CreatedAt), ms(c.ExpiresAt), c.Uses, codeHash, sql.NullString{String: formKeyHash, Valid: formKeyHash != ""}); err != nil {
			return err
		}
		_, err = t.exec(insertActivity, act...)
		return err
	})
	return changeErr("create registration code", err)
}

// RegistrationCodeByHash finds a code by the hash of its value, whatever its state.
func (db *DB) RegistrationCodeByHash(ctx context.Context, codeHash string) (*RegistrationCode, error) {
	codes, err := queryList(ctx, db, registrationCodeByHash, []any{codeHash}, scanRegistrationCode)
	if err != nil {
		return nil, fmt.Errorf("store: read registration code: %w", err)
	}
	return only(codes, nil)
}

const registrationCodeByHash = `SELECT ` + registrationCodeColumns + ` FROM registration_codes WHERE code_hash = ?`

// RegistrationCode finds a tenant's code by its id, whatever its state.
func (db *DB) RegistrationCode(ctx context.Context, tenantID, id string) (*RegistrationCode, error) {
	codes, err := queryList(ctx, db, registrationCodeOfTenant, []any{tenantID, id}, scanRegistrationCode)
	if err != nil {
		return nil, fmt.Errorf("store: read registration code: %w", err)
	}
	return only(codes, nil)
}

const registrationCodeOfTenant = `SELECT ` + registrationCodeColumns + ` FROM registration_codes WHERE tenant_id = ? AND id = ?`

// CodeList is a tenant's codes as the registration page lists them: every code that still takes
// devices, and the newest of those that take no more (used, expired or revoked).
type CodeList struct {
	Usable []RegistrationCode // newest first, all of them
	Ended  int                // how many codes take no more devices
	Newest []RegistrationCode // the newest of those (or a page of them), newest first
}

// Both lists read through registration_codes_tenant, in its order (migration 9); the tenant's
// codes are kept 30 days past their end, so the few weeks of codes it holds are the most read.
const (
	usableCodesOfTenant = `SELECT ` + registrationCodeColumns + ` FROM registration_codes
		WHERE tenant_id = ? AND revoked_at = 0 AND expires_at > ? AND used < uses ORDER BY created_at DESC, id DESC`
	endedCodesOfTenant = `SELECT ` + registrationCodeColumns + ` FROM registration_codes
		WHERE tenant_id = ? AND NOT (revoked_at = 0 AND expires_at > ? AND used < uses) ORDER BY created_at DESC, id DESC LIMIT ? OFFSET ?`
	countEndedCodesOfTenant = `SELECT COUNT(*) FROM registration_codes WHERE tenant_id = ? AND NOT (revoked_at = 0 AND expires_at > ? AND used < uses)`
)

// RegistrationCodes lists every code of a tenant that still takes devices, and the newest
// (at most newest) of those that take no more, with how many of those there are.
func (db *DB) RegistrationCodes(ctx context.Context, tenantID string, newest int) (CodeList, error) {
	return db.RegistrationCodesPage(ctx, tenantID, 0, newest)
}

// RegistrationCodesPage is RegistrationCodes with the codes that take no more devices read after
// the newest skip of them: a page of at most n, newest first.
func (db *DB) RegistrationCodesPage(ctx context.Context, tenantID string, skip, n int) (CodeList, error) {
	var list CodeList
	now := ms(db.now())
	err := db.queryRow(ctx, countEndedCodesOfTenant, []any{tenantID, now}, &list.Ended)
	if err == nil {
		list.Usable, err = queryList(ctx, db, usableCodesOfTenant, []any{tenantID, now}, scanRegistrationCode)
	}
	if err == nil {
		list.Newest, err = queryList(ctx, db, endedCodesOfTenant, []any{tenantID, now, n, max(skip, 0)}, scanRegistrationCode)
	}
	if err != nil {
		return CodeList{}, fmt.Errorf("store: list registration codes: %w", err)
	}
	if len(list.Newest) > 0 {
		list.Ended = max(list.Ended, max(skip, 0)+len(list.Newest)) // a code that ended between the two reads
	}
	return list, nil
}

// RevokeRegistrationCode stops a code of a tenant from taking more devices; a code already
// revoked or expired is ErrConflict. Devices it brought stay as they are.
func (db *DB) RevokeRegistrationCode(ctx context.Context, tenantID, id, by string, activity *Activity) error {
	act, err := db.activityRow(activity)
	if err != nil {
		return err
	}
	now := db.now()
	err = db.tx(ctx, db.stmtTimeout, func(t *txn) error {
		if err := t.execGuarded(`UPDATE registration_codes SET revoked_at = ?, revoked_by = ? WHERE tenant_id = ? AND id = ? AND revoked_at = 0 AND expires_at > ?`,
			ms(now), by, tenantID, id, ms(now)); err != nil {
			return err
		}
		_, err = t.exec(insertActivity, act...)
		return err
	})
	return changeErr("revoke registration code", err)
}

// AddRegistration keeps what a device sent with a code, taking one of the code's uses per device,
// in one transaction with its activity. When the code no longer has that many uses (spent,
// revoked or expired meanwhile) nothing is kept and it returns ErrConflict.
func (db *DB) AddRegistration(ctx context.Context, s *RegistrationSubmission, activity *Activity) error {
	if s.CodeID == "" || s.TenantID == "" || len(s.Devices) == 0 {
		return errors.New("store: add registration: no code, tenant or device")
	}
	db.stamp(&s.ID, &s.ReceivedAt)
	s.State = SubmissionWaiting
	if activity != nil && activity.Target == "" {
		activity.Target = s.ID
	}
	act, err := db.activityRow(activity)
	if err != nil {
		return err
	}
	err = db.tx(ctx, db.stmtTimeout, func(t *txn) error {
		if err := t.execGuarded(`UPDATE registration_codes SET used = used + ? WHERE id = ? AND tenant_id = ? AND revoked_at = 0 AND expires_at > ? AND used + ? <= uses`,
			len(s.Devices), s.CodeID, s.TenantID, ms(s.ReceivedAt), len(s.Devices)); err != nil {
			return err
		}
		if _, err := t.exec(`INSERT INTO registration_submissions (id, code_id, tenant_id, received_at, client_ip, file_notes, state,
			decided_at, decider_oid, decider_upn, decider_name, reason, refused, job_id, sync_at, sync_note)
			VALUES (?, ?, ?, ?, ?, ?, ?, 0, '', '', '', '', '', '', 0, '')`,
			s.ID, s.CodeID, s.TenantID, ms(s.ReceivedAt), s.ClientIP, joinLines(s.FileNotes), s.State); err != nil {
			return err
		}
		for _, d := range s.Devices {
			if _, err := t.exec(`INSERT INTO registration_devices (submission_id, line, serial, product_key, group_tag, assigned_user,
				manufacturer, model, hash, hash_shown, notes, job_line) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)`,
				s.ID, d.Line, d.Serial, d.ProductKey, d.GroupTag, d.User, d.Manufacturer, d.Model,
				sql.NullString{String: d.Hash, Valid: d.Hash != ""}, d.HashShown, joinLines(d.Notes)); err != nil {
				return err
			}
		}
		_, err = t.exec(insertActivity, act...)
		return err
	})
	return changeErr("add registration", err)
}

const submissionColumns = `s.id, s.code_id, s.tenant_id, s.received_at, s.client_ip, s.file_notes, s.state, s.decided_at, s.decider_oid,
	s.decider_upn, s.decider_name, s.reason, s.refused, s.job_id, s.sync_at, s.sync_note`

func scanSubmission(scan func(...any) error) (RegistrationSubmission, error) {
	var s RegistrationSubmission
	var received, decided, syncAt int64
	var notes string
	err := scan(&s.ID, &s.CodeID, &s.TenantID, &received, &s.ClientIP, &notes, &s.State, &decided, &s.DeciderOID,
		&s.DeciderUPN, &s.DeciderName, &s.Reason, &s.Refused, &s.JobID, &syncAt, &s.SyncNote)
	s.ReceivedAt, s.FileNotes = fromMS(received), splitLines(notes)
	if decided != 0 {
		s.DecidedAt = fromMS(decided)
	}
	if syncAt != 0 {
		s.SyncAt = fromMS(syncAt)
	}
	return s, err
}

// scanSubmissionWithCode scans a row of submissionColumns followed by codeColumns.
func scanSubmissionWithCode(scan func(...any) error) (RegistrationSubmission, error) {
	var code RegistrationCode
	s, err := scanSubmission(func(dest ...any) error {
		var err error
		code, err = scanRegistrationCode(func(codeDest ...any) error { return scan(append(dest, codeDest...)...) })
		return err
	})
	s.Code = code
	return s, err
}

// SubmissionFilter selects the submissions Registrations reads.
type SubmissionFilter struct {
	TenantID string   // required unless CodeID or JobID is set
	CodeID   string   // only this code's
	CodeIDs  []string // only these codes'
	JobID    string   // only those an approval sent with this import job
	IDs      []string // only these
	States   []string // only in these states (none: any)
	Since    time.Time
	Hashes   bool // read the devices' hashes too
	Limit    int  // default 200
	// NewestFirst reads the newest first (the limit keeps the newest), not the oldest.
	NewestFirst bool
}

// Registrations reads submissions with their devices and codes, oldest first unless the filter
// asks for the newest first.
func (db *DB) Registrations(ctx context.Context, f SubmissionFilter) ([]RegistrationSubmission, error) {
	query, args, err := submissionsQuery(f)
	if err != nil {
		return nil, err
	}
	subs, err := queryList(ctx, db, query, args, scanSubmissionWithCode)
	if err != nil {
		return nil, fmt.Errorf("store: read registrations: %w", err)
	}
	if len(subs) == 0 {
		return nil, nil
	}
	if err := db.readRegistrationDevices(ctx, subs, f.Hashes); err != nil {
		return nil, err
	}
	return subs, nil
}

// submissionsQuery is the query Registrations runs for f, and its arguments.
func submissionsQuery(f SubmissionFilter) (string, []any, error) {
	var where []string
	var args []any
	if f.TenantID != "" {
		where, args = append(where, "s.tenant_id = ?"), append(args, f.TenantID)
	}
	if f.CodeID != "" {
		where, args = append(where, "s.code_id = ?"), append(args, f.CodeID)
	}
	if f.JobID != "" {
		where, args = append(where, "s.job_id = ?"), append(args, f.JobID)
	}
	if len(where) == 0 {
		return "", nil, errors.New("store: read registrations: no tenant, code or job")
	}
	if len(f.IDs) > 0 {
		where = append(where, "s.id IN (?"+strings.Repeat(", ?", len(f.IDs)-1)+")")
		for _, id := range f.IDs {
			args = append(args, id)
		}
	}
	if len(f.CodeIDs) > 0 {
		where = append(where, "s.code_id IN (?"+strings.Repeat(", ?", len(f.CodeIDs)-1)+")")
		for _, id := range f.CodeIDs {
			args = append(args, id)
		}
	}
	if len(f.States) > 0 {
		where = append(where, "s.state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if !f.Since.IsZero() {
		where, args = append(where, "s.received_at >= ?"), append(args, ms(f.Since))
	}
	limit := f.Limit
	if limit <= 0 || limit > 200 {
		limit = 200
	}
	args = append(args, limit)
	order := "s.received_at, s.id"
	if f.NewestFirst {
		order = "s.received_at DESC, s.id DESC"
	}
	return `SELECT ` + submissionColumns + `, ` + codeColumns + ` FROM registration_submissions s
		JOIN registration_codes c ON c.id = s.code_id WHERE ` + strings.Join(where, " AND ") + ` ORDER BY ` + order + ` LIMIT ?`, args, nil
}

// readRegistrationDevices reads the devices of subs into them, in line order.
func (db *DB) readRegistrationDevices(ctx context.Context, subs []RegistrationSubmission, hashes bool) error {
	if len(subs) == 0 {
		return nil
	}
	byID := make(map[string]*RegistrationSubmission, len(subs))
	ids := make([]any, len(subs))
	for i := range subs {
		byID[subs[i].ID] = &subs[i]
		ids[i] = subs[i].ID
	}
	err := db.queryAll(ctx, registrationDevicesQuery(len(ids), hashes), ids, func(scan func(...any) error) error {
		var d RegistrationDevice
		var h sql.NullString
		var notes string
		err := scan(&d.SubmissionID, &d.Line, &d.Serial, &d.ProductKey, &d.GroupTag, &d.User, &d.Manufacturer, &d.Model, &h,
			&d.HashShown, &notes, &d.JobLine)
		d.Hash, d.Notes = h.String, splitLines(notes)
		if s := byID[d.SubmissionID]; s != nil {
			d.ReceivedAt = s.ReceivedAt
			s.Devices = append(s.Devices, d)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("store: read registration devices: %w", err)
	}
	return nil
}

// registrationDevicesQuery reads the devices of n submissions, with their hashes or not.
func registrationDevicesQuery(n int, hashes bool) string {
	hash := "NULL"
	if hashes {
		hash = "hash"
	}
	return `SELECT submission_id, line, serial, product_key, group_tag, assigned_user, manufacturer, model, ` + hash + `,
		hash_shown, notes, job_line FROM registration_devices WHERE submission_id IN (?` + strings.Repeat(", ?", n-1) + `) ORDER BY submission_id, line`
}

// CountWaitingDevices counts the devices of a tenant waiting for approval with a code that has
// not expired: the number the navigation shows.
func (db *DB) CountWaitingDevices(ctx context.Context, tenantID string) (int, error) {
	var n int
	err := db.queryRow(ctx, countWaitingDevices, []any{tenantID, ms(db.now())}, &n)
	if err != nil {
		return 0, fmt.Errorf("store: count waiting devices: %w", err)
	}
	return n, nil
}

const countWaitingDevices = `SELECT COUNT(*) FROM registration_devices d JOIN registration_submissions s ON s.id = d.submission_id
	JOIN registration_codes c ON c.id = s.code_id WHERE s.tenant_id = ? AND s.state = 'waiting' AND c.expires_at > ?`

// WaitingCode is a code with devices waiting for approval.
type WaitingCode struct {
	CodeID  string
	Devices int // how many wait
}

// WaitingByCode lists the codes of a tenant with devices waiting for approval (their code not
// expired), the code that expires first first, with how many devices each has waiting.
func (db *DB) WaitingByCode(ctx context.Context, tenantID string) ([]WaitingCode, error) {
	codes, err := queryList(ctx, db, waitingByCode, []any{tenantID, ms(db.now())}, func(scan func(...any) error) (WaitingCode, error) {
		var w WaitingCode
		err := scan(&w.CodeID, &w.Devices)
		return w, err
	})
	if err != nil {
		return nil, fmt.Errorf("store: count waiting devices by code: %w", err)
	}
	return codes, nil
}

const waitingByCode = `SELECT s.code_id, COUNT(*) FROM registration_devices d JOIN registration_submissions s ON s.id = d.submission_id
	JOIN registration_codes c ON c.id = s.code_id WHERE s.tenant_id = ? AND s.state = 'waiting' AND c.expires_at > ?
	GROUP BY c.expires_at, s.code_id ORDER BY c.expires_at, s.code_id`

// WaitingSerial is a device a tenant already has waiting for approval or on its way to Intune.
type WaitingSerial struct {
	Received time.Time // when it arrived
	CodeID   string    // the registration code it was sent with
}

// WaitingSerials returns which of serials (compared in upper case) a tenant already has waiting
// for approval or on their way to Intune, by serial in upper case.
func (db *DB) WaitingSerials(ctx context.Context, tenantID string, serials []string) (map[string]WaitingSerial, error) {
	found := map[string]WaitingSerial{}
	if len(serials) == 0 {
		return found, nil
	}
	args := []any{tenantID, ms(db.now())}
	for _, s := range serials {
		args = append(args, strings.ToUpper(s))
	}
	err := db.queryAll(ctx, waitingSerialsQuery(len(serials)), args, func(scan func(...any) error) error {
		var serial, code string
		var at int64
		err := scan(&serial, &at, &code)
		found[serial] = WaitingSerial{Received: fromMS(at), CodeID: code}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: read waiting serials: %w", err)
	}
	return found, nil
}

// waitingSerialsQuery finds n serials among a tenant's submissions waiting or approved. The states
// are named as a list, so that the tenant's index reads only those, not every submission the
// tenant kept.
func waitingSerialsQuery(n int) string {
	return `SELECT UPPER(d.serial), s.received_at, s.code_id FROM registration_devices d JOIN registration_submissions s ON s.id = d.submission_id
		JOIN registration_codes c ON c.id = s.code_id
		WHERE s.tenant_id = ? AND s.state IN ('approved', 'waiting') AND (s.state = 'approved' OR c.expires_at > ?)
		AND UPPER(d.serial) IN (?` + strings.Repeat(", ?", n-1) + `)`
}

// Decider is the person who approves or rejects.
type Decider struct{ OID, UPN, Name string }

// Approval approves waiting submissions of one tenant into one import job.
type Approval struct {
	TenantID      string
	SubmissionIDs []string
	By            Decider
	// NotCreatedBy, when set, refuses submissions whose code this person created (ErrSelfApproval).
	NotCreatedBy string
	Job          *ImportJob // the draft to create, owned by the approver; its rows come from the devices
	Activity     *Activity
}

// ErrSelfApproval means a submission's code was created by the person approving it, which the
// desk does not allow. Nothing was changed.
var ErrSelfApproval = errors.New("store: a code's creator may not approve its devices")

// ApproveRegistrations approves waiting submissions and creates the import job that carries
// their devices, all in one transaction: every submission must still be waiting with a code that
// has not expired, or nothing changes and it returns ErrConflict. Of concurrent approvals of a
// submission exactly one succeeds. The devices' hashes are copied into the job's rows, which
// the import overwrites when the job ends; the submissions keep theirs until they are final.
func (db *DB) ApproveRegistrations(ctx context.Context, a Approval) error {
	if a.TenantID == "" || len(a.SubmissionIDs) == 0 || a.Job == nil {
		return errors.New("store: approve registrations: no tenant, submission or job")
	}
	ids := slices.Compact(slices.Sorted(slices.Values(a.SubmissionIDs)))
	j := a.Job
	db.stamp(&j.ID, &j.CreatedAt)
	j.UpdatedAt = j.CreatedAt
	if a.Activity != nil && a.Activity.Target == "" {
		a.Activity.Target = j.ID
	}
	act, err := db.activityRow(a.Activity)
	if err != nil {
		return err
	}
	now := db.now()
	err = db.tx(ctx, db.txTimeout(), func(t *txn) error {
		in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
		subIDs := make([]any, len(ids))
		for i, id := range ids {
			subIDs[i] = id
		}
		args := append([]any{ms(now), a.By.OID, a.By.UPN, a.By.Name, j.ID, a.TenantID}, subIDs...)
		args = append(args, ms(now))
		if a.NotCreatedBy != "" {
			var own int
			if err := t.queryRow(`SELECT COUNT(*) FROM registration_submissions s JOIN registration_codes c ON c.id = s.code_id
				WHERE s.tenant_id = ? AND s.id IN `+in+` AND c.creator_oid = ?`, append(append([]any{a.TenantID}, subIDs...), a.NotCreatedBy), &own); err != nil {
				return err
			}
			if own > 0 {
				return ErrSelfApproval
			}
		}
		n, err := t.exec(approveSubmissions(len(ids)), args...)
		if err != nil {
			return err
		}
		if n != len(ids) {
			return ErrConflict
		}
		var rows []ImportRow
		type origin struct {
			submission string
			line       int
		}
		var from []origin
		if err := t.queryAll(`SELECT d.submission_id, d.line, d.serial, d.product_key, d.group_tag, d.assigned_user, d.hash, d.hash_shown, d.notes
			FROM registration_devices d JOIN registration_submissions s ON s.id = d.submission_id
			WHERE d.submission_id IN `+in+` ORDER BY s.received_at, s.id, d.line`, subIDs, func(scan func(...any) error) error {
			var r ImportRow
			var o origin
			var notes string
			var hash sql.NullString
			err := scan(&o.submission, &o.line, &r.Serial, &r.ProductKey, &r.GroupTag, &r.User, &hash, &r.HashShown, &notes)
			r.Line, r.Hash, r.Notes = len(rows)+1, hash.String, splitLines(notes)
			rows, from = append(rows, r), append(from, o)
			return err
		}); err != nil {
			return err
		}
		for i, o := range from {
			if _, err := t.exec(`UPDATE registration_devices SET job_line = ? WHERE submission_id = ? AND line = ?`, rows[i].Line, o.submission, o.line); err != nil {
				return err
			}
		}
		if err := t.insertImportJob(j); err != nil {
			return err
		}
		if err := t.insertRows(j.ID, slices.Values(rows)); err != nil {
			return err
		}
		_, err = t.exec(insertActivity, act...)
		return err
	})
	switch {
	case errors.Is(err, ErrConflict):
		return ErrConflict
	case errors.Is(err, ErrSelfApproval):
		return ErrSelfApproval
	case err != nil:
		return fmt.Errorf("store: approve registrations: %w", err)
	}
	return nil
}

// approveSubmissions approves n waiting submissions of a tenant whose code has not expired. (A
// code's creator is refused before it runs, in the same transaction: who created a code never
// changes.)
func approveSubmissions(n int) string {
	return `UPDATE registration_submissions SET state = 'approved', decided_at = ?, decider_oid = ?, decider_upn = ?, decider_name = ?,
		job_id = ?, refused = '' WHERE tenant_id = ? AND id IN (?` + strings.Repeat(", ?", n-1) + `) AND state = 'waiting'
		AND EXISTS (SELECT 1 FROM registration_codes c WHERE c.id = registration_submissions.code_id AND c.expires_at > ?)`
}

// RejectRegistrations rejects waiting submissions of a tenant with a reason and overwrites their
// hashes, in one transaction; a submission no longer waiting makes it ErrConflict, and nothing
// changes.
func (db *DB) RejectRegistrations(ctx context.Context, tenantID string, ids []string, by Decider, reason string, activity *Activity) error {
	if tenantID == "" || len(ids) == 0 {
		return errors.New("store: reject registrations: no tenant or submission")
	}
	ids = slices.Compact(slices.Sorted(slices.Values(ids)))
	act, err := db.activityRow(activity)
	if err != nil {
		return err
	}
	now := db.now()
	err = db.tx(ctx, db.stmtTimeout, func(t *txn) error {
		in := "(?" + strings.Repeat(", ?", len(ids)-1) + ")"
		args := []any{ms(now), by.OID, by.UPN, by.Name, reason, tenantID}
		for _, id := range ids {
			args = append(args, id)
		}
		n, err := t.exec(`UPDATE registration_submissions SET state = 'rejected', decided_at = ?, decider_oid = ?, decider_upn = ?, decider_name = ?,
			reason = ? WHERE tenant_id = ? AND id IN `+in+` AND state = 'waiting'`, args...)
		if err != nil {
			return err
		}
		if n != len(ids) {
			return ErrConflict
		}
		if err := t.wipeRegistrationHashes(args[6:]); err != nil {
			return err
		}
		_, err = t.exec(insertActivity, act...)
		return err
	})
	if err := changeErr("reject registrations", err); err != nil {
		return err
	}
	db.scrub(context.Background())
	return nil
}

func (t *txn) wipeRegistrationHashes(ids []any) error {
	_, err := t.exec(`UPDATE registration_devices SET hash = NULL WHERE hash IS NOT NULL AND submission_id IN (?`+strings.Repeat(", ?", len(ids)-1)+`)`, ids...)
	return err
}

// ExpireRegistrations marks the submissions still waiting when their code expired as expired,
// overwrites their hashes and records an activity for each (made by expired), each in one
// transaction. It returns how many it expired.
func (db *DB) ExpireRegistrations(ctx context.Context, expired func(RegistrationSubmission) *Activity) (int, error) {
	now := db.now()
	due, err := queryList(ctx, db, dueExpiries, []any{ms(now)}, scanSubmissionWithCode)
	if err == nil {
		err = db.readRegistrationDevices(ctx, due, false)
	}
	if err != nil {
		return 0, fmt.Errorf("store: expire registrations: %w", err)
	}
	n := 0
	for _, s := range due {
		act, err := db.activityRow(expired(s))
		if err != nil {
			return n, err
		}
		err = db.tx(ctx, db.stmtTimeout, func(t *txn) error {
			changed, err := t.exec(`UPDATE registration_submissions SET state = 'expired', decided_at = ? WHERE id = ? AND state = 'waiting'`, ms(now), s.ID)
			if err != nil || changed == 0 {
				return err
			}
			n++
			if err := t.wipeRegistrationHashes([]any{s.ID}); err != nil {
				return err
			}
			_, err = t.exec(insertActivity, act...)
			return err
		})
		if err != nil {
			return n, fmt.Errorf("store: expire registrations: %w", err)
		}
	}
	if n > 0 {
		db.scrub(context.Background())
	}
	return n, nil
}

const dueExpiries = `SELECT ` + submissionColumns + `, ` + codeColumns + ` FROM registration_submissions s JOIN registration_codes c ON c.id = s.code_id
	WHERE s.state = 'waiting' AND c.expires_at <= ? LIMIT 500`

// ApprovedJobs lists the import jobs approvals created whose submissions are not settled yet.
func (db *DB) ApprovedJobs(ctx context.Context) ([]string, error) {
	jobs, err := queryList(ctx, db, approvedJobs, nil, scanString)
	if err != nil {
		return nil, fmt.Errorf("store: read approved registrations: %w", err)
	}
	return jobs, nil
}

const approvedJobs = `SELECT DISTINCT job_id FROM registration_submissions WHERE state = 'approved' LIMIT 500`

// Settlement is what became of an approved submission once its import job finished.
type Settlement struct {
	SubmissionID, JobID string
	// Refused, when set, puts the submission back on the waiting list with this note: Graph
	// refused the approver's import before importing anything (their permissions).
	Refused  string
	SyncAt   time.Time // finished: when to ask Intune for the Autopilot sync (zero: no sync)
	Activity *Activity // recorded with it (optional)
}

// SettleRegistration ends an approved submission of jobID: finished, hashes overwritten; or,
// with Refused, back to waiting with its hashes kept. A submission no longer approved with that
// job is ErrConflict.
func (db *DB) SettleRegistration(ctx context.Context, s Settlement) error {
	var act []any
	if s.Activity != nil {
		var err error
		if act, err = db.activityRow(s.Activity); err != nil {
			return err
		}
	}
	err := db.tx(ctx, db.stmtTimeout, func(t *txn) error {
		var n int
		var err error
		if s.Refused != "" {
			n, err = t.exec(`UPDATE registration_submissions SET state = 'waiting', refused = ?, job_id = '', decided_at = 0, decider_oid = '',
				decider_upn = '', decider_name = '' WHERE id = ? AND state = 'approved' AND job_id = ?`, s.Refused, s.SubmissionID, s.JobID)
		} else {
			n, err = t.exec(`UPDATE registration_submissions SET state = 'finished', sync_at = ? WHERE id = ? AND state = 'approved' AND job_id = ?`,
				ms(s.SyncAt), s.SubmissionID, s.JobID)
		}
		if err != nil {
			return err
		}
		if n == 0 {
			return ErrConflict
		}
		if s.Refused != "" {
			if _, err := t.exec(`UPDATE registration_devices SET job_line = 0 WHERE submission_id = ?`, s.SubmissionID); err != nil {
				return err
			}
		} else if err := t.wipeRegistrationHashes([]any{s.SubmissionID}); err != nil {
			return err
		}
		if act != nil {
			_, err = t.exec(insertActivity, act...)
		}
		return err
	})
	if err := changeErr("settle registration", err); err != nil {
		return err
	}
	if s.Refused == "" {
		db.scrub(context.Background())
	}
	return nil
}

// DueSyncs lists the import jobs whose finished submissions wait for an Autopilot sync due by now.
func (db *DB) DueSyncs(ctx context.Context) ([]string, error) {
	jobs, err := queryList(ctx, db, dueSyncs, []any{ms(db.now())}, scanString)
	if err != nil {
		return nil, fmt.Errorf("store: read due syncs: %w", err)
	}
	return jobs, nil
}

// dueSyncs reads registration_submissions_sync (migration 9), which holds only submissions with a
// sync to make: the follower runs it every two seconds on every desk.
const dueSyncs = `SELECT DISTINCT job_id FROM registration_submissions WHERE state = 'finished' AND sync_at > 0 AND sync_at <= ? LIMIT 100`

// ClaimSync takes a job's due sync for this caller until lease ends: it returns false when another
// desk took it first or it is not due.
func (db *DB) ClaimSync(ctx context.Context, jobID string, lease time.Duration) (bool, error) {
	now := db.now()
	n, err := db.execCount(ctx, claimSync, ms(now.Add(lease)), jobID, ms(now))
	if err != nil {
		return false, fmt.Errorf("store: claim sync: %w", err)
	}
	return n > 0, nil
}

const claimSync = `UPDATE registration_submissions SET sync_at = ? WHERE job_id = ? AND state = 'finished' AND sync_at > 0 AND sync_at <= ?`

// SyncDone records what became of a job's sync; next, when not zero, asks for another attempt then.
func (db *DB) SyncDone(ctx context.Context, jobID, note string, next time.Time) error {
	if _, err := db.execCount(ctx, syncDone, ms(next), note, jobID); err != nil {
		return fmt.Errorf("store: record sync: %w", err)
	}
	return nil
}

const syncDone = `UPDATE registration_submissions SET sync_at = ?, sync_note = ? WHERE job_id = ? AND state = 'finished'`

// PurgeRegistrations deletes codes that expired before a time, with what their devices sent,
// once nothing of theirs is still waiting or on its way.
func (db *DB) PurgeRegistrations(ctx context.Context, before time.Time) (int, error) {
	ids, err := queryList(ctx, db, expiredCodes, []any{ms(before)}, scanString)
	if err != nil {
		return 0, fmt.Errorf("store: purge registrations: %w", err)
	}
	for i, id := range ids {
		err := db.tx(ctx, db.stmtTimeout, func(t *txn) error {
			if _, err := t.exec(`DELETE FROM registration_devices WHERE submission_id IN (SELECT id FROM registration_submissions WHERE code_id = ?)`, id); err != nil {
				return err
			}
			if _, err := t.exec(`DELETE FROM registration_submissions WHERE code_id = ?`, id); err != nil {
				return err
			}
			_, err := t.exec(`DELETE FROM registration_codes WHERE id = ?`, id)
			return err
		})
		if err != nil {
			return i, fmt.Errorf("store: purge registrations: %w", err)
		}
	}
	return len(ids), nil
}

// expiredCodes reads every code, which is allowed: codes are made by hand, a few a day, and kept
// 30 days past their end, and the sweep runs every five minutes.
const expiredCodes = `SELECT id FROM registration_codes c WHERE expires_at < ? AND NOT EXISTS
	(SELECT 1 FROM registration_submissions s WHERE s.code_id = c.id AND s.state IN ('waiting', 'approved')) LIMIT 500`

// queryAll runs a query inside the transaction and scans every row with scanRow, which must not
// run statements of its own (the rows hold the transaction's connection until they are read).
func (t *txn) queryAll(query string, args []any, scanRow func(scan func(...any) error) error) error {
	rows, err := t.tx.QueryContext(t.ctx, t.db.rebind(query), args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scanRow(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (t *txn) queryRow(query string, args []any, dest ...any) error {
	err := t.tx.QueryRowContext(t.ctx, t.db.rebind(query), args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
