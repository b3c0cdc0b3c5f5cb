package store

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// ErrInvalidCursor means a paging cursor that ListActivity did not hand out.
var ErrInvalidCursor = errors.New("store: invalid paging cursor")

// Activity is one recorded action of a person on the tenant.
type Activity struct {
	ID                                      string // GUID
	At                                      time.Time
	TenantID, ObjectID, ActorName, ActorUPN string
	Action                                  string // create-upload, update-upload, delete-upload, import, sync, device changes
	Target                                  string
	Serial                                  string // the device serial number a change touched, if any
	Outcome                                 string // success, failure, outcome-unknown, in-progress
	Summary                                 string
	StatusCode                              int
	RequestID, ClientRequestID              string
	Detail                                  []byte // opaque JSON owned by the caller
}

// newID returns a time-ordered (version 7, RFC 9562) GUID. New ids land at the end of the id
// index instead of on a random page of it, so recording a row reads and writes fewer pages as the
// history grows.
func newID() string { return uuid.Must(uuid.NewV7()).String() }

// RecordActivity stores an activity, assigning its ID and At when empty. At is kept to the
// millisecond, as stored. Recording an activity whose ID is already stored changes nothing, so a
// record whose first attempt timed out after its commit can be retried safely.
func (db *DB) RecordActivity(ctx context.Context, a *Activity) error {
	args, err := db.activityRow(a)
	if err != nil {
		return err
	}
	if _, err := db.exec(ctx, insertActivity, args...); err != nil {
		return fmt.Errorf("store: record activity: %w", err)
	}
	return nil
}

const insertActivity = `INSERT INTO activity (` + activityColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`

// activityRow checks a, assigns its ID and At when empty, and returns insertActivity's arguments.
func (db *DB) activityRow(a *Activity) ([]any, error) {
	if a.TenantID == "" {
		return nil, errors.New("store: record activity: empty tenant")
	}
	db.stamp(&a.ID, &a.At)
	a.Serial = strings.ToUpper(strings.TrimSpace(a.Serial)) // found again whatever its letter case
	return []any{a.ID, ms(a.At), a.TenantID, a.ObjectID, a.ActorName, a.ActorUPN, a.Action, a.Target, a.Outcome, a.Summary,
		a.StatusCode, a.RequestID, a.ClientRequestID, a.Detail, a.Serial}, nil
}

// UpdateActivity rewrites what an activity says (its outcome once known, say), only while its
// outcome is still fromOutcome: of two changes that read the same record, the later one gets
// ErrConflict instead of overwriting the first. Its ID, tenant and time stay as recorded.
func (db *DB) UpdateActivity(ctx context.Context, a *Activity, fromOutcome string) error {
	n, err := db.execCount(ctx, `UPDATE activity SET object_id = ?, actor_name = ?, actor_upn = ?, action = ?, target = ?, outcome = ?,
		summary = ?, status_code = ?, request_id = ?, client_request_id = ?, detail = ? WHERE tenant_id = ? AND id = ? AND outcome = ?`,
		a.ObjectID, a.ActorName, a.ActorUPN, a.Action, a.Target, a.Outcome, a.Summary, a.StatusCode, a.RequestID, a.ClientRequestID, a.Detail,
		a.TenantID, a.ID, fromOutcome)
	if err != nil {
		return fmt.Errorf("store: update activity: %w", err)
	}
	if n == 0 {
		if _, err := db.GetActivity(ctx, a.TenantID, a.ID); err != nil {
			return err
		}
		return ErrConflict
	}
	return nil
}

const activityColumns = `id, at, tenant_id, object_id, actor_name, actor_upn, action, target, outcome, summary, status_code, request_id, client_request_id, detail, serial`

func scanActivity(scan func(...any) error) (Activity, error) {
	var a Activity
	var at int64
	err := scan(&a.ID, &at, &a.TenantID, &a.ObjectID, &a.ActorName, &a.ActorUPN, &a.Action, &a.Target, &a.Outcome, &a.Summary,
		&a.StatusCode, &a.RequestID, &a.ClientRequestID, &a.Detail, &a.Serial)
	a.At = fromMS(at)
	return a, err
}

// GetActivity reads one activity of a tenant; another tenant's activity is ErrNotFound.
func (db *DB) GetActivity(ctx context.Context, tenantID, id string) (*Activity, error) {
	var a Activity
	err := db.queryAll(ctx, `SELECT `+activityColumns+` FROM activity WHERE tenant_id = ? AND id = ?`, []any{tenantID, id},
		func(scan func(...any) error) (err error) {
			a, err = scanActivity(scan)
			return err
		})
	if err != nil {
		return nil, fmt.Errorf("store: get activity: %w", err)
	}
	if a.ID == "" {
		return nil, ErrNotFound
	}
	return &a, nil
}

// uploadsCreated is the query of CreatedUploads, for n ids.
func uploadsCreated(n int) string {
	return `SELECT target FROM activity WHERE tenant_id = ? AND action = 'create-upload' AND outcome = 'success' AND target IN (?` +
		strings.Repeat(", ?", n-1) + `)`
}

// CreatedUploads says which of ids the tenant's history records as uploads created through the
// desk. A look for a create whose answer was lost leaves those out: they are not the one sent.
// It is read only after such a create, so it reads the tenant's history through the index of its
// pages rather than keep an index of its own that every create would write to.
func (db *DB) CreatedUploads(ctx context.Context, tenantID string, ids []string) (map[string]bool, error) {
	created := map[string]bool{}
	if len(ids) == 0 {
		return created, nil
	}
	args := []any{tenantID}
	for _, id := range ids {
		args = append(args, id)
	}
	found, err := queryList(ctx, db, uploadsCreated(len(ids)), args, scanString)
	if err != nil {
		return nil, fmt.Errorf("store: uploads created: %w", err)
	}
	for _, id := range found {
		created[id] = true
	}
	return created, nil
}

// ActivityFilter selects a tenant's activity. Empty fields other than TenantID match all;
// Before is a cursor that ListActivity returned; Limit defaults to 50 and is at most 200.
type ActivityFilter struct {
	TenantID                  string
	ObjectID, Action, Outcome string
	ActorUPN                  string // matched without regard to case
	// Person is the start of a name, of a word of a name, or of a UPN, without regard to case:
	// "adele", "vance" and "adelev@" all find Adele Vance.
	Person string
	Before string // a cursor: the entries older than it
	// After is a cursor: the entries newer than it (the page just before Before's), still newest
	// first; ListActivity's next is then the cursor of the entries newer still.
	After string
	Limit int
	// Device is a registered device's id: only the changes made to that device, which name its
	// serial number too (they are read through an index of activity naming a serial).
	Device string
	// Fold lists, of the records a job (an import or a bulk change) writes as it goes, one a
	// batch, only the newest that the filter finds: one row a job. FoldedJobs counts the others.
	// Records of a job share its person and action, so a filter on either folds them alike.
	Fold bool
	// Job is an import's or a bulk change's id: only the records it wrote as it went.
	Job string
}

// jobActions is the condition of the records a job writes as it goes (batches sent, answers
// looked up), in the words of activity_tenant_job's own condition (migration 12), so that both
// engines read them through it.
const jobActions = `action IN ('import', 'bulk-change')`

// JobRecords is how many records a job wrote as it went, by its id; FoldedJobs reads them.
type JobRecords map[string]int

// FoldedJobs counts the records each of jobs wrote as it went, for a page that folds them (see
// ActivityFilter.Fold).
func (db *DB) FoldedJobs(ctx context.Context, tenantID string, jobs []string) (JobRecords, error) {
	counts := JobRecords{}
	if len(jobs) == 0 {
		return counts, nil
	}
	args := []any{tenantID}
	for _, j := range jobs {
		args = append(args, j)
	}
	err := db.queryAll(ctx, foldedJobsQuery(len(jobs)), args, func(scan func(...any) error) error {
		var job string
		var n int
		err := scan(&job, &n)
		counts[job] = n
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: count a job's records: %w", err)
	}
	return counts, nil
}

// foldedJobsQuery is FoldedJobs' query, for n jobs.
func foldedJobsQuery(n int) string {
	return `SELECT target, COUNT(*) FROM activity WHERE tenant_id = ? AND ` + jobActions + ` AND target IN (?` + strings.Repeat(", ?", n-1) + `) GROUP BY target`
}

// ListActivity lists a tenant's activity newest first, with keyset paging: next is the cursor
// of the following page, empty on the last one.
func (db *DB) ListActivity(ctx context.Context, f ActivityFilter) (page []Activity, next string, err error) {
	query, args, err := activityQuery(&f)
	if err != nil {
		return nil, "", err
	}
	page, err = queryList(ctx, db, query, args, scanActivity)
	if err != nil {
		return nil, "", fmt.Errorf("store: list activity: %w", err)
	}
	if len(page) > f.Limit {
		page = page[:f.Limit]
		next = ActivityCursor(page[len(page)-1])
	}
	if f.After != "" {
		slices.Reverse(page) // read oldest first from the cursor; shown newest first
	}
	return page, next, nil
}

// ActivityCursor is the paging cursor at a: Before it lists what is older, After what is newer.
func ActivityCursor(a Activity) string {
	return strconv.FormatInt(ms(a.At), 10) + "_" + a.ID
}

// activityQuery is the query of a page of activity and its arguments, one row more than the
// page to tell whether another follows; it settles f's limit.
func activityQuery(f *ActivityFilter) (string, []any, error) {
	if f.TenantID == "" {
		return "", nil, errors.New("store: list activity: empty tenant")
	}
	if f.Limit <= 0 {
		f.Limit = 50
	}
	f.Limit = min(f.Limit, 200)
	where := []string{"tenant_id = ?"}
	args := []any{f.TenantID}
	for _, c := range []struct{ column, value string }{{"object_id", f.ObjectID}, {"action", f.Action}, {"outcome", f.Outcome}, {"target", f.Device}} {
		if c.value != "" {
			where = append(where, c.column+" = ?")
			args = append(args, c.value)
		}
	}
	if f.Outcome != "" && f.Outcome != "success" {
		// In the words of activity_tenant_trouble's own condition (migration 10).
		where = append(where, "outcome <> 'success'")
	}
	if f.Device != "" {
		// In the words of activity_tenant_target's own condition (migration 9), so that both
		// engines read a device's changes through it.
		where = append(where, "serial <> ''")
	}
	if f.Job != "" {
		where = append(where, "target = ?", jobActions)
		args = append(args, f.Job)
	} else if f.Fold {
		// A job's record with a newer one of the same job is folded under that one.
		where = append(where, `NOT (`+jobActions+` AND EXISTS (SELECT 1 FROM activity n WHERE n.tenant_id = activity.tenant_id
			AND n.target = activity.target AND n.`+jobActions+` AND (n.at > activity.at OR (n.at = activity.at AND n.id > activity.id))))`)
	}
	if f.ActorUPN != "" {
		where = append(where, "LOWER(actor_upn) = LOWER(?)")
		args = append(args, f.ActorUPN)
	}
	if p := strings.ToLower(strings.TrimSpace(f.Person)); p != "" {
		p = likeEscaper.Replace(p)
		where = append(where, `(LOWER(actor_upn) LIKE ? ESCAPE '\' OR LOWER(actor_name) LIKE ? ESCAPE '\' OR LOWER(actor_name) LIKE ? ESCAPE '\')`)
		args = append(args, p+"%", p+"%", "% "+p+"%")
	}
	order := "DESC"
	for _, c := range []struct{ cursor, op string }{{f.Before, "<"}, {f.After, ">"}} {
		if c.cursor == "" {
			continue
		}
		at, id, err := parseCursor(c.cursor)
		if err != nil {
			return "", nil, err
		}
		where = append(where, "(at "+c.op+" ? OR (at = ? AND id "+c.op+" ?))")
		args = append(args, at, at, id)
		if c.op == ">" {
			order = "ASC"
		}
	}
	args = append(args, f.Limit+1)
	return `SELECT ` + activityColumns + ` FROM activity WHERE ` + strings.Join(where, " AND ") + ` ORDER BY at ` + order + `, id ` + order + ` LIMIT ?`, args, nil
}

// likeEscaper makes a typed value match itself in a LIKE pattern.
var likeEscaper = strings.NewReplacer(`\`, `\\`, "%", `\%`, "_", `\_`)

func parseCursor(c string) (at int64, id string, err error) {
	atText, id, ok := strings.Cut(c, "_")
	at, perr := strconv.ParseInt(atText, 10, 64)
	if !ok || perr != nil || id == "" {
		return 0, "", ErrInvalidCursor
	}
	return at, id, nil
}

// PurgeActivity deletes activity older than a time (retention) and says how many. It purges
// tenant by tenant through the index the history pages read, so the activity table needs no
// index of its own for retention and each create writes one index page less. The tenants are
// found one at a time, each a seek in that index (nextActivityTenant), not by reading it whole.
func (db *DB) PurgeActivity(ctx context.Context, olderThan time.Time) (int, error) {
	total := 0
	tenant := ""
	for {
		err := db.queryRow(ctx, nextActivityTenant, []any{tenant}, &tenant)
		if errors.Is(err, ErrNotFound) {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("store: purge activity: %w", err)
		}
		n, err := db.execCount(ctx, purgeActivityOfTenant, tenant, ms(olderThan))
		total += n
		if err != nil {
			return total, fmt.Errorf("store: purge activity: %w", err)
		}
	}
}

// nextActivityTenant is the first tenant with activity after the one given ("" for the first).
const nextActivityTenant = `SELECT tenant_id FROM activity WHERE tenant_id > ? ORDER BY tenant_id LIMIT 1`

const purgeActivityOfTenant = `DELETE FROM activity WHERE tenant_id = ? AND at < ?`
