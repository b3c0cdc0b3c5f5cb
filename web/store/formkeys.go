package store

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// FormKeyState is where a one-time form key stands.
type FormKeyState string

const (
	FormKeyInProgress FormKeyState = "in-progress" // claimed by a submission that is running
	FormKeyDone       FormKeyState = "done"        // the submission finished; resultRef is its activity
)

// ClaimFormKey claims a form's one-time key for its session. The key is recorded only now, with
// one insert that at most one of any number of concurrent submissions wins; a rendered form costs
// no write. A losing claim learns the key's state and, once done, the id of the activity its
// submission recorded; a key recorded for another session gives claimed=false with an empty state.
func (db *DB) ClaimFormKey(ctx context.Context, key, sessionID string, ttl time.Duration) (claimed bool, state FormKeyState, resultRef string, err error) {
	if key == "" || sessionID == "" {
		return false, "", "", nil
	}
	n, err := db.execCount(ctx, `INSERT INTO form_key_claims (key_hash, session_hash, expires_at) VALUES (?, ?, ?)
		ON CONFLICT (key_hash) DO NOTHING`,
		hashID(key), hashID(sessionID), ms(db.now().Add(ttl)))
	if err != nil {
		return false, "", "", fmt.Errorf("store: claim form key: %w", err)
	}
	if n == 1 {
		return true, FormKeyInProgress, "", nil
	}
	err = db.queryRow(ctx, `SELECT COALESCE(a.id, '') FROM form_key_claims k LEFT JOIN activity a ON a.form_key_hash = k.key_hash
		WHERE k.key_hash = ? AND k.session_hash = ?`,
		[]any{hashID(key), hashID(sessionID)}, &resultRef)
	if errors.Is(err, ErrNotFound) {
		return false, "", "", nil
	}
	if err != nil {
		return false, "", "", fmt.Errorf("store: read form key: %w", err)
	}
	if resultRef == "" {
		return false, FormKeyInProgress, "", nil
	}
	return false, FormKeyDone, resultRef, nil
}

// RecordSubmission records the activity a claimed form's submission produced. The activity row
// names the form key, which makes the key done: one write on the request's path after Graph
// answers. A form key completes at most one activity. Like RecordActivity, it may be retried.
func (db *DB) RecordSubmission(ctx context.Context, a *Activity, formKey string) error {
	args, err := db.activityRow(a)
	if err != nil {
		return err
	}
	_, err = db.exec(ctx, `INSERT INTO activity (`+activityColumns+`, form_key_hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		append(args, hashID(formKey))...)
	if err != nil {
		return fmt.Errorf("store: record submission: %w", err)
	}
	return nil
}

// ReleaseFormKey forgets a claimed key whose submission sent nothing, so the same form can be
// submitted again. A key whose submission was recorded stays done.
func (db *DB) ReleaseFormKey(ctx context.Context, key string) error {
	h := hashID(key)
	_, err := db.exec(ctx, `DELETE FROM form_key_claims WHERE key_hash = ? AND NOT EXISTS (SELECT 1 FROM activity WHERE form_key_hash = ?)`, h, h)
	return err
}
