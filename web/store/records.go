package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// FlowRecord is a sign-in in progress, bound to the browser that started it.
type FlowRecord struct {
	ID, State, Nonce, Verifier, ReturnTo string
	CreatedAt                            time.Time
	Data                                 []byte // a form to restore after sign-in
}

// PutFlow stores a flow.
func (db *DB) PutFlow(ctx context.Context, f FlowRecord) error {
	if f.CreatedAt.IsZero() {
		f.CreatedAt = db.now()
	}
	_, err := db.exec(ctx, `INSERT INTO flows (id_hash, state, nonce, verifier, return_to, data, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		hashID(f.ID), f.State, f.Nonce, f.Verifier, f.ReturnTo, f.Data, ms(f.CreatedAt))
	return err
}

// TakeFlow removes and returns a flow younger than maxAge; a used or expired flow is ErrNotFound.
func (db *DB) TakeFlow(ctx context.Context, id string, maxAge time.Duration) (FlowRecord, error) {
	f := FlowRecord{ID: id}
	var created int64
	err := db.queryRow(ctx, `DELETE FROM flows WHERE id_hash = ? RETURNING state, nonce, verifier, return_to, data, created_at`,
		[]any{hashID(id)}, &f.State, &f.Nonce, &f.Verifier, &f.ReturnTo, &f.Data, &created)
	if err != nil {
		return FlowRecord{}, err
	}
	f.CreatedAt = fromMS(created)
	if db.now().Sub(f.CreatedAt) > maxAge {
		return FlowRecord{}, ErrNotFound
	}
	return f, nil
}

// FormKeyState is where a one-time form key stands.
type FormKeyState string

const (
	FormKeyIssued     FormKeyState = "issued"
	FormKeyInProgress FormKeyState = "in-progress"
	FormKeyDone       FormKeyState = "done"
)

// IssueFormKey records a key a rendered form carries.
func (db *DB) IssueFormKey(ctx context.Context, key, sessionID string, ttl time.Duration) error {
	_, err := db.exec(ctx, `INSERT INTO form_keys (key_hash, session_hash, state, expires_at) VALUES (?, ?, ?, ?)`,
		hashID(key), hashID(sessionID), string(FormKeyIssued), ms(db.now().Add(ttl)))
	return err
}

// ClaimFormKey claims an issued key for its session; exactly one claim wins. A losing claim
// learns the key's state and, when done, what it resulted in.
func (db *DB) ClaimFormKey(ctx context.Context, key, sessionID string) (bool, FormKeyState, string, error) {
	if key == "" {
		return false, "", "", nil
	}
	res, err := db.exec(ctx, `UPDATE form_keys SET state = ? WHERE key_hash = ? AND session_hash = ? AND state = ? AND expires_at > ?`,
		string(FormKeyInProgress), hashID(key), hashID(sessionID), string(FormKeyIssued), ms(db.now()))
	if err != nil {
		return false, "", "", err
	}
	if n, _ := res.RowsAffected(); n == 1 {
		return true, FormKeyInProgress, "", nil
	}
	var state, ref string
	err = db.queryRow(ctx, `SELECT state, result_ref FROM form_keys WHERE key_hash = ? AND session_hash = ?`,
		[]any{hashID(key), hashID(sessionID)}, &state, &ref)
	if errors.Is(err, ErrNotFound) {
		return false, "", "", nil
	}
	return false, FormKeyState(state), ref, err
}

// CompleteFormKey records what a claimed key resulted in.
func (db *DB) CompleteFormKey(ctx context.Context, key, resultRef string) error {
	_, err := db.exec(ctx, `UPDATE form_keys SET state = ?, result_ref = ? WHERE key_hash = ?`, string(FormKeyDone), resultRef, hashID(key))
	return err
}

// ReleaseFormKey makes a claimed key usable again (nothing was sent).
func (db *DB) ReleaseFormKey(ctx context.Context, key string) error {
	_, err := db.exec(ctx, `UPDATE form_keys SET state = ? WHERE key_hash = ? AND state = ?`, string(FormKeyIssued), hashID(key), string(FormKeyInProgress))
	return err
}

// Allow counts one event in bucket's fixed window; it refuses once limit is reached.
func (db *DB) Allow(ctx context.Context, bucket string, limit int, window time.Duration) (bool, time.Duration, error) {
	now := db.now()
	start := now.Truncate(window)
	var count int
	err := db.queryRow(ctx, `INSERT INTO rate_counters (bucket, window_start, count) VALUES (?, ?, 1)
		ON CONFLICT (bucket, window_start) DO UPDATE SET count = rate_counters.count + 1 RETURNING count`,
		[]any{bucket, ms(start)}, &count)
	if err != nil {
		return false, 0, err
	}
	if count > limit {
		return false, start.Add(window).Sub(now), nil
	}
	return true, 0, nil
}

// Activity is one recorded action.
type Activity struct {
	ID                                      string
	At                                      time.Time
	TenantID, ObjectID, ActorName, ActorUPN string
	Action, Target, Outcome, Summary        string
	StatusCode                              int
	RequestID, ClientRequestID              string
	Detail                                  []byte
}

func newGUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// RecordActivity stores an activity, assigning its id and time when empty.
func (db *DB) RecordActivity(ctx context.Context, a *Activity) error {
	if a.ID == "" {
		a.ID = newGUID()
	}
	if a.At.IsZero() {
		a.At = db.now()
	}
	_, err := db.exec(ctx, `INSERT INTO activity (id, at, tenant_id, object_id, actor_name, actor_upn, action, target, outcome, summary, status_code, request_id, client_request_id, detail)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		a.ID, ms(a.At), a.TenantID, a.ObjectID, a.ActorName, a.ActorUPN, a.Action, a.Target, a.Outcome, a.Summary, a.StatusCode, a.RequestID, a.ClientRequestID, a.Detail)
	return err
}

const activityColumns = `id, at, tenant_id, object_id, actor_name, actor_upn, action, target, outcome, summary, status_code, request_id, client_request_id, detail`

func scanActivity(scan func(...any) error) (Activity, error) {
	var a Activity
	var at int64
	err := scan(&a.ID, &at, &a.TenantID, &a.ObjectID, &a.ActorName, &a.ActorUPN, &a.Action, &a.Target, &a.Outcome, &a.Summary, &a.StatusCode, &a.RequestID, &a.ClientRequestID, &a.Detail)
	a.At = fromMS(at)
	return a, err
}

// GetActivity reads one activity of a tenant.
func (db *DB) GetActivity(ctx context.Context, tenantID, id string) (*Activity, error) {
	ctx, cancel := context.WithTimeout(ctx, db.stmtTime)
	defer cancel()
	row := db.sql.QueryRowContext(ctx, db.q(`SELECT `+activityColumns+` FROM activity WHERE tenant_id = ? AND id = ?`), tenantID, id)
	a, err := scanActivity(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &a, nil
}

// ActivityFilter selects a tenant's activity; Before is the cursor ListActivity returned.
type ActivityFilter struct {
	TenantID, ObjectID, Action, Outcome string
	ActorUPN                            string // matched without regard to case
	Before                              string
	Limit                               int
}

// ListActivity lists a tenant's activity newest first, with keyset paging.
func (db *DB) ListActivity(ctx context.Context, f ActivityFilter) ([]Activity, string, error) {
	if f.Limit <= 0 || f.Limit > 200 {
		f.Limit = 50
	}
	where := []string{"tenant_id = ?"}
	args := []any{f.TenantID}
	for _, c := range []struct{ col, val string }{{"object_id", f.ObjectID}, {"action", f.Action}, {"outcome", f.Outcome}} {
		if c.val != "" {
			where = append(where, c.col+" = ?")
			args = append(args, c.val)
		}
	}
	if f.ActorUPN != "" {
		where = append(where, "LOWER(actor_upn) = LOWER(?)")
		args = append(args, f.ActorUPN)
	}
	if f.Before != "" {
		atStr, id, ok := strings.Cut(f.Before, "_")
		at, err := strconv.ParseInt(atStr, 10, 64)
		if !ok || err != nil {
			return nil, "", fmt.Errorf("store: bad cursor")
		}
		where = append(where, "(at < ? OR (at = ? AND id < ?))")
		args = append(args, at, at, id)
	}
	args = append(args, f.Limit+1)
	ctx, cancel := context.WithTimeout(ctx, db.stmtTime)
	defer cancel()
	rows, err := db.sql.QueryContext(ctx, db.q(`SELECT `+activityColumns+` FROM activity WHERE `+strings.Join(where, " AND ")+` ORDER BY at DESC, id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, "", err
	}
	defer rows.Close()
	var out []Activity
	for rows.Next() {
		a, err := scanActivity(rows.Scan)
		if err != nil {
			return nil, "", err
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		return nil, "", err
	}
	next := ""
	if len(out) > f.Limit {
		out = out[:f.Limit]
		last := out[len(out)-1]
		next = strconv.FormatInt(ms(last.At), 10) + "_" + last.ID
	}
	return out, next, nil
}

// PurgeActivity deletes activity older than a time (retention).
func (db *DB) PurgeActivity(ctx context.Context, olderThan time.Time) (int, error) {
	res, err := db.exec(ctx, `DELETE FROM activity WHERE at < ?`, ms(olderThan))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	return int(n), nil
}
