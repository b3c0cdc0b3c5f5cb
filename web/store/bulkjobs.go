package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// BulkJob is one change applied to many registered Autopilot devices: a group tag set, a user
// unassigned or registrations deleted. Its devices are kept beside it (BulkDevice), each recorded
// before it is sent, so a job page is read from the database on any replica and a worker that
// takes the job over knows what may have reached Graph.
type BulkJob struct {
	ID                           string // GUID, assigned when empty
	TenantID, ObjectID, ActorUPN string // the owner: the person who chose the devices
	ActorName                    string
	CreatedAt, UpdatedAt         time.Time
	State                        string // draft, sending, finished
	Action                       string // what is done to every device
	GroupTag                     string // the group tag to set, for that action
	Devices, Chunks              int    // how many devices; how many chunks were sent so far
	Payload                      []byte // opaque JSON owned by the caller
	NextPollAt                   time.Time
	LeaseOwner                   string
	LeaseUntil                   time.Time
	RestoredFrom                 time.Time // when the backup the desk was restored from was taken, for a draft it held; else zero
}

// BulkDevice is one device of a bulk job: what it was when chosen, and what became of it.
type BulkDevice struct {
	Position                                                           int // order on the job's page
	DeviceID, Serial, Manufacturer, Model, GroupTag, UserPrincipalName string
	EnrollmentState                                                    string
	BulkOutcome
}

// BulkOutcome is where one device of a bulk job stands: facts only, put into words when a page
// is rendered.
type BulkOutcome struct {
	State                     string // one of the Bulk device states
	Chunk, Attempts           int    // the chunk it was last sent in; how often it was sent
	NotBefore, SentAt, DoneAt time.Time
	Lookups, StatusCode       int
	Reason                    string // one of the BulkReason constants, when the state alone does not say
	Failure                   []byte // what Graph answered, when it refused or its answer was lost (opaque JSON owned by the caller)
	ActivityID                string
	Reconciled                bool // its outcome was found by reading the device after an answer was lost
}

// Bulk actions: what a bulk job does to each of its devices.
const (
	BulkGroupTag = "group-tag"     // set the group tag (updateDeviceProperties)
	BulkUnassign = "unassign-user" // unassign the user (unassignUserFromDevice)
	BulkDelete   = "delete"        // delete the registration
)

// Bulk device states. The first three are on the way; the others are final.
const (
	BulkQueued      = "queued"      // waiting for its turn in Intune's write budget
	BulkInFlight    = "in-flight"   // recorded before it was sent; the answer is not stored yet
	BulkUnknown     = "unknown"     // the answer never arrived; the device is read to find out
	BulkDone        = "done"        // Graph accepted the change (or, reading, the device shows it)
	BulkRefused     = "refused"     // Graph refused it (its Failure says how); nothing changed
	BulkNotFound    = "not-found"   // Graph has no such registration any more
	BulkUnconfirmed = "unconfirmed" // the answer was lost and the change never showed: check it
	BulkSkipped     = "skipped"     // not sent: Graph refused an earlier change for a reason that holds for all
	BulkReplaced    = "replaced"    // the answer was lost, and a later change of the device was made since (its Failure says which)
)

// Why a bulk device got its state, when the state alone does not say.
const (
	BulkReasonAnswerLost  = "answer-lost"  // unknown: Graph's answer never arrived (its Failure says how)
	BulkReasonDeskStopped = "desk-stopped" // unknown: the desk stopped before Graph's answer was stored
	BulkReasonLookedUp    = "looked-up"    // unconfirmed: read Lookups times without the change showing
	BulkReasonGone        = "gone"         // not found: after a lost answer, Graph no longer has the registration
	BulkReasonSuperseded  = "superseded"   // skipped: a bulk change confirmed later makes the same change to it (its Failure says which)
	BulkReasonRestored    = "restored"     // unknown, then done, not found or unconfirmed: the backup the desk was restored from had it queued or on its way
	BulkReasonDevicePage  = "device-page"  // replaced: by a change made on the device's own page, not by a bulk change
)

// BulkDeviceChange is the new outcome of one device, applied only while its guards hold.
type BulkDeviceChange struct {
	Position  int
	From      []string // the states it may be in; empty: any
	FromChunk int      // when set, it must have been sent last in this chunk
	BulkOutcome
}

// BulkChange is one all-or-nothing change to a bulk job and its devices. Every guard that is set
// must hold, for the job and for each device, or nothing changes and ChangeBulk returns
// ErrConflict.
type BulkChange struct {
	JobID string

	// Guards.
	TenantID, OwnerID string
	FromState         string
	LeaseOwner        string

	// Changes.
	State    string
	Payload  []byte
	Chunks   int     // the job's new chunk count, when set
	GroupTag *string // the group tag a draft sets, when its owner corrects it
	Devices  []BulkDeviceChange
	Activity *Activity // recorded with the change

	// Supersede, with a job's confirmation, leaves its devices to it in the tenant's other jobs
	// still sending the same action: see BulkSupersede.
	Supersede *BulkSupersede
}

// BulkSupersede is what a confirmed bulk change does to the tenant's earlier ones that change the
// same property of some of its devices, in the transaction that confirms it, so the newest intent
// wins: their devices still queued are skipped (reason BulkReasonSuperseded, Note as their Failure)
// and never sent; its own devices that one of them has in flight wait until Wait has passed, so
// the earlier change, already on its way, is answered before the later one is sent. A device the
// earlier job records as in flight first is not skipped (the guards of both changes are on the same
// rows, so one of the two transactions sees the other's).
type BulkSupersede struct {
	TenantID, Action string
	Note             []byte
	At               time.Time
	Wait             time.Duration
}

// BulkOverlap is a bulk change still sending that has some of another job's devices not yet sent
// or on their way, for the same action.
type BulkOverlap struct {
	JobID, GroupTag, ActorName, ActorUPN string
	Devices                              int
}

const bulkJobColumns = `id, tenant_id, object_id, actor_upn, actor_name, created_at, updated_at, state, action, group_tag, devices, chunks, payload, next_poll_at, lease_owner, lease_until, restored_from`

var bulkJobs = jobTable{name: "bulk_jobs", columns: bulkJobColumns, what: "bulk job", rows: "bulk_devices", waiting: "bulk_devices"}

// CreateBulkJob stores a new job and its devices at once, assigning its ID and CreatedAt when
// empty; the devices' positions are their order.
func (db *DB) CreateBulkJob(ctx context.Context, j *BulkJob, devices []BulkDevice) error {
	if j.TenantID == "" || j.State == "" || j.Action == "" {
		return errors.New("store: create bulk job: empty tenant, state or action")
	}
	db.stamp(&j.ID, &j.CreatedAt)
	j.UpdatedAt, j.Devices = j.CreatedAt, len(devices)
	err := db.tx(ctx, db.txTimeout(), func(t *txn) error {
		if _, err := t.exec(`INSERT INTO bulk_jobs (`+bulkJobColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ID, j.TenantID, j.ObjectID, j.ActorUPN, j.ActorName, ms(j.CreatedAt), ms(j.UpdatedAt), j.State, j.Action, j.GroupTag,
			j.Devices, j.Chunks, j.Payload, nullableMS(j.NextPollAt), j.LeaseOwner, ms(j.LeaseUntil), nullableMS(j.RestoredFrom).Int64); err != nil {
			return err
		}
		const perInsert = 100
		for start := 0; start < len(devices); start += perInsert {
			chunk := devices[start:min(start+perInsert, len(devices))]
			var q strings.Builder
			q.WriteString(`INSERT INTO bulk_devices (job_id, position, device_id, serial, manufacturer, model, group_tag, user_upn, enrollment_state, state) VALUES `)
			args := make([]any, 0, len(chunk)*10)
			for i, d := range chunk {
				if i > 0 {
					q.WriteString(", ")
				}
				q.WriteString("(?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")
				args = append(args, j.ID, start+i+1, d.DeviceID, d.Serial, d.Manufacturer, d.Model, d.GroupTag, d.UserPrincipalName, d.EnrollmentState, d.State)
			}
			if _, err := t.exec(q.String(), args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: create bulk job: %w", err)
	}
	return nil
}

func scanBulkJob(scan func(...any) error) (BulkJob, error) {
	var j BulkJob
	var created, updated, leaseUntil, restoredFrom int64
	var nextPoll sql.NullInt64
	err := scan(&j.ID, &j.TenantID, &j.ObjectID, &j.ActorUPN, &j.ActorName, &created, &updated, &j.State, &j.Action, &j.GroupTag,
		&j.Devices, &j.Chunks, &j.Payload, &nextPoll, &j.LeaseOwner, &leaseUntil, &restoredFrom)
	j.CreatedAt, j.UpdatedAt, j.NextPollAt = fromMS(created), fromMS(updated), fromNullableMS(nextPoll)
	if leaseUntil != 0 {
		j.LeaseUntil = fromMS(leaseUntil)
	}
	if restoredFrom != 0 {
		j.RestoredFrom = fromMS(restoredFrom)
	}
	return j, err
}

// GetBulkJob reads one job of a tenant; another tenant's job is ErrNotFound.
func (db *DB) GetBulkJob(ctx context.Context, tenantID, id string) (*BulkJob, error) {
	return only(db.bulkJobsWhere(ctx, jobOfTenant, tenantID, id))
}

// BulkJobFilter selects a tenant's submitted bulk jobs, newest first: every one still sending,
// or a page of the finished ones.
type BulkJobFilter struct {
	TenantID string
	Running  bool   // the jobs still sending, all of them; else the finished ones
	Before   string // finished jobs: a cursor (BulkJobCursor), the jobs older than it
	Limit    int    // finished jobs: default 20, at most 200
}

// BulkJobCursor is the paging cursor at j: the finished jobs older than it follow.
func BulkJobCursor(j BulkJob) string { return strconv.FormatInt(ms(j.CreatedAt), 10) + "_" + j.ID }

// ListBulkJobs lists a tenant's submitted jobs as f selects them, newest first; an unreadable
// cursor is ErrInvalidCursor.
func (db *DB) ListBulkJobs(ctx context.Context, f BulkJobFilter) ([]BulkJob, error) {
	if f.Running {
		return db.bulkJobsWhere(ctx, bulkJobsRunning, f.TenantID)
	}
	if f.Limit <= 0 {
		f.Limit = 20
	}
	if f.Before == "" {
		return db.bulkJobsWhere(ctx, bulkJobsFinished, f.TenantID, min(f.Limit, 200))
	}
	at, id, err := parseCursor(f.Before)
	if err != nil {
		return nil, err
	}
	return db.bulkJobsWhere(ctx, bulkJobsFinishedBefore, f.TenantID, at, at, id, min(f.Limit, 200))
}

const (
	bulkJobsRunning        = `WHERE tenant_id = ? AND state = 'sending' ORDER BY created_at DESC, id DESC`
	bulkJobsFinished       = `WHERE tenant_id = ? AND state = 'finished' ORDER BY created_at DESC, id DESC LIMIT ?`
	bulkJobsFinishedBefore = `WHERE tenant_id = ? AND state = 'finished' AND (created_at < ? OR (created_at = ? AND id < ?))
		ORDER BY created_at DESC, id DESC LIMIT ?`
)

func (db *DB) bulkJobsWhere(ctx context.Context, where string, args ...any) ([]BulkJob, error) {
	jobs, err := queryList(ctx, db, `SELECT `+bulkJobColumns+` FROM bulk_jobs `+where, args, scanBulkJob)
	if err != nil {
		return nil, fmt.Errorf("store: read bulk jobs: %w", err)
	}
	return jobs, nil
}

const bulkDeviceColumns = `position, device_id, serial, manufacturer, model, group_tag, user_upn, enrollment_state,
	state, chunk, attempts, not_before, sent_at, done_at, lookups, status_code, reason, failure, activity_id, reconciled`

const bulkDevicesOfJob = `SELECT ` + bulkDeviceColumns + ` FROM bulk_devices WHERE job_id = ? ORDER BY position`

// BulkDevices reads a job's devices in order.
func (db *DB) BulkDevices(ctx context.Context, jobID string) ([]BulkDevice, error) {
	var out []BulkDevice
	err := db.queryAll(ctx, bulkDevicesOfJob, []any{jobID},
		func(scan func(...any) error) error {
			var d BulkDevice
			var notBefore, sentAt, doneAt int64
			var reconciled int
			err := scan(&d.Position, &d.DeviceID, &d.Serial, &d.Manufacturer, &d.Model, &d.GroupTag, &d.UserPrincipalName, &d.EnrollmentState,
				&d.State, &d.Chunk, &d.Attempts, &notBefore, &sentAt, &doneAt, &d.Lookups, &d.StatusCode, &d.Reason, &d.Failure, &d.ActivityID, &reconciled)
			d.NotBefore, d.SentAt, d.DoneAt, d.Reconciled = optionalMS(notBefore), optionalMS(sentAt), optionalMS(doneAt), reconciled != 0
			out = append(out, d)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: read bulk devices: %w", err)
	}
	return out, nil
}

// optionalMS reads a time stored as 0 for "none".
func optionalMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return fromMS(v)
}

// ChangeBulk applies ch in one transaction.
func (db *DB) ChangeBulk(ctx context.Context, ch BulkChange) error {
	if ch.JobID == "" {
		return errors.New("store: change bulk job: no job")
	}
	var activity []any
	if ch.Activity != nil {
		var err error
		if activity, err = db.activityRow(ch.Activity); err != nil {
			return err
		}
	}
	err := db.tx(ctx, db.txTimeout(), func(t *txn) error {
		if err := t.updateJob(jobUpdate{table: "bulk_jobs", id: ch.JobID, now: ms(db.now()), state: ch.State, payload: ch.Payload,
			count: "chunks", n: ch.Chunks, tenantID: ch.TenantID, ownerID: ch.OwnerID, fromState: ch.FromState, leaseOwner: ch.LeaseOwner}); err != nil {
			return err
		}
		if ch.GroupTag != nil {
			if _, err := t.exec(`UPDATE bulk_jobs SET group_tag = ? WHERE id = ?`, *ch.GroupTag, ch.JobID); err != nil {
				return err
			}
		}
		for _, d := range ch.Devices {
			activityID := d.ActivityID
			if activityID == "" && ch.Activity != nil {
				activityID = ch.Activity.ID
			}
			q := `UPDATE bulk_devices SET state = ?, chunk = ?, attempts = ?, not_before = ?, sent_at = ?, done_at = ?, lookups = ?,
				status_code = ?, reason = ?, failure = ?, activity_id = ?, reconciled = ? WHERE job_id = ? AND position = ?`
			args := []any{d.State, d.Chunk, d.Attempts, zeroMS(d.NotBefore), zeroMS(d.SentAt), zeroMS(d.DoneAt), d.Lookups,
				d.StatusCode, d.Reason, d.Failure, activityID, boolInt(d.Reconciled), ch.JobID, d.Position}
			if len(d.From) > 0 {
				q += ` AND state IN (?` + strings.Repeat(", ?", len(d.From)-1) + `)`
				for _, s := range d.From {
					args = append(args, s)
				}
			}
			if d.FromChunk > 0 {
				q += ` AND chunk = ?`
				args = append(args, d.FromChunk)
			}
			if err := t.execGuarded(q, args...); err != nil {
				return err
			}
		}
		if ch.Supersede != nil {
			if err := t.supersede(ch.JobID, *ch.Supersede); err != nil {
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
	return changeErr("change bulk job", err)
}

// supersede applies s for the job being confirmed (see BulkSupersede).
func (t *txn) supersede(jobID string, s BulkSupersede) error {
	if _, err := t.exec(`UPDATE bulk_devices SET state = ?, reason = ?, failure = ?, done_at = ?, not_before = 0
		WHERE job_id IN (SELECT id FROM bulk_jobs WHERE tenant_id = ? AND action = ? AND state = 'sending' AND id <> ?)
		AND device_id IN (SELECT device_id FROM bulk_devices WHERE job_id = ?) AND state = ?`,
		BulkSkipped, BulkReasonSuperseded, s.Note, ms(s.At), s.TenantID, s.Action, jobID, jobID, BulkQueued); err != nil {
		return err
	}
	_, err := t.exec(`UPDATE bulk_devices SET not_before = ? WHERE job_id = ? AND state = ? AND device_id IN (SELECT device_id FROM bulk_devices
		WHERE job_id IN (SELECT id FROM bulk_jobs WHERE tenant_id = ? AND action = ? AND state = 'sending' AND id <> ?) AND state = ?)`,
		ms(s.At.Add(s.Wait)), jobID, BulkQueued, s.TenantID, s.Action, jobID, BulkInFlight)
	return err
}

// BulkLater is a later bulk change of one device: the job, what it asked, and when it was sent.
type BulkLater struct {
	JobID, Action, GroupTag, ActorName string
	State                              string // the later change's device state: done, unknown or unconfirmed
	SentAt                             time.Time
}

// LaterBulkChanges lists the tenant's other bulk jobs of action that sent a change to the device
// (its id and serial) after after, and whose change Graph accepted or may have made: newest
// first. It finds the device's rows through the index of its serial.
func (db *DB) LaterBulkChanges(ctx context.Context, tenantID, jobID, deviceID, serial, action string, after time.Time) ([]BulkLater, error) {
	out, err := queryList(ctx, db, `SELECT j.id, j.action, j.group_tag, j.actor_name, d.state, d.sent_at FROM bulk_devices d JOIN bulk_jobs j ON j.id = d.job_id
		WHERE UPPER(d.serial) = ? AND d.device_id = ? AND j.tenant_id = ? AND j.action = ? AND j.id <> ? AND d.sent_at > ? AND d.state IN (?, ?, ?)
		ORDER BY d.sent_at DESC LIMIT 20`,
		[]any{strings.ToUpper(strings.TrimSpace(serial)), deviceID, tenantID, action, jobID, ms(after), BulkDone, BulkUnknown, BulkUnconfirmed},
		func(scan func(...any) error) (BulkLater, error) {
			var l BulkLater
			var sent int64
			err := scan(&l.JobID, &l.Action, &l.GroupTag, &l.ActorName, &l.State, &sent)
			l.SentAt = fromMS(sent)
			return l, err
		})
	if err != nil {
		return nil, fmt.Errorf("store: later bulk changes: %w", err)
	}
	return out, nil
}

// BulkOverlaps lists the tenant's other bulk changes still sending the same action that have some
// of a job's devices not yet sent or on their way: confirming the job leaves those devices to it.
func (db *DB) BulkOverlaps(ctx context.Context, tenantID, jobID, action string) ([]BulkOverlap, error) {
	out, err := queryList(ctx, db, `SELECT j.id, j.group_tag, j.actor_name, j.actor_upn, COUNT(*) FROM bulk_jobs j JOIN bulk_devices o ON o.job_id = j.id
		WHERE j.tenant_id = ? AND j.action = ? AND j.state = 'sending' AND j.id <> ? AND o.state IN (?, ?)
		AND o.device_id IN (SELECT device_id FROM bulk_devices WHERE job_id = ?)
		GROUP BY j.id, j.group_tag, j.actor_name, j.actor_upn, j.created_at ORDER BY j.created_at`,
		[]any{tenantID, action, jobID, BulkQueued, BulkInFlight, jobID},
		func(scan func(...any) error) (BulkOverlap, error) {
			var o BulkOverlap
			err := scan(&o.JobID, &o.GroupTag, &o.ActorName, &o.ActorUPN, &o.Devices)
			return o, err
		})
	if err != nil {
		return nil, fmt.Errorf("store: bulk overlaps: %w", err)
	}
	return out, nil
}

// zeroMS stores "no time" as 0.
func zeroMS(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return ms(t)
}

// ClaimBulkJob leases the most overdue bulk job in state for a worker; nil when none is due.
func (db *DB) ClaimBulkJob(ctx context.Context, state, worker string, lease time.Duration) (*BulkJob, error) {
	return claim(ctx, db, bulkJobs, state, worker, lease, scanBulkJob)
}

// RenewBulkLease extends a worker's lease; ErrConflict means another worker has taken the job.
func (db *DB) RenewBulkLease(ctx context.Context, id, worker string, lease time.Duration) error {
	return db.renewLease(ctx, bulkJobs, id, worker, lease)
}

// ReleaseBulkJob gives up a worker's lease, saying when the job should next be looked at.
func (db *DB) ReleaseBulkJob(ctx context.Context, id, worker string, payload []byte, next time.Time) error {
	return db.releaseLease(ctx, bulkJobs, id, worker, payload, next)
}

// WakeBulkJob asks for a tenant's job to be looked at now; with recheck, its devices whose
// answer was lost are looked up again at once.
func (db *DB) WakeBulkJob(ctx context.Context, tenantID, id string, recheck bool) error {
	return db.wakeJob(ctx, bulkJobs, tenantID, id, recheck)
}

// PurgeBulkDrafts deletes drafts last changed before a time, with their devices: a choice that
// was never confirmed is not kept for ever.
func (db *DB) PurgeBulkDrafts(ctx context.Context, before time.Time) (int, error) {
	return db.purgeDrafts(ctx, bulkJobs, before)
}
