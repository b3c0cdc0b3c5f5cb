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
	FormKeyDone       FormKeyState = "done"        // the submission finished; resultRef says where its result is
)

// ClaimFormKey claims a form's one-time key for its session. The key is recorded only now, with
// one insert that at most one of any number of concurrent submissions wins; a rendered form costs
// no write. A losing claim learns the key's state and, once done, its result reference; a key
// recorded for another session gives claimed=false with an empty state.
func (db *DB) ClaimFormKey(ctx context.Context, key, sessionID string, ttl time.Duration) (claimed bool, state FormKeyState, resultRef string, err error) {
	if key == "" || sessionID == "" {
		return false, "", "", nil
	}
	n, err := db.execCount(ctx, `INSERT INTO form_keys (key_hash, session_hash, state, expires_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (key_hash) DO NOTHING`,
		hashID(key), hashID(sessionID), string(FormKeyInProgress), ms(db.now().Add(ttl)))
	if err != nil {
		return false, "", "", fmt.Errorf("store: claim form key: %w", err)
	}
	if n == 1 {
		return true, FormKeyInProgress, "", nil
	}
	var s string
	err = db.queryRow(ctx, `SELECT state, result_ref FROM form_keys WHERE key_hash = ? AND session_hash = ?`,
		[]any{hashID(key), hashID(sessionID)}, &s, &resultRef)
	if errors.Is(err, ErrNotFound) {
		return false, "", "", nil
	}
	if err != nil {
		return false, "", "", fmt.Errorf("store: read form key: %w", err)
	}
	return false, FormKeyState(s), resultRef, nil
}

// RecordSubmission records the activity a claimed form's submission produced and marks the key
// done with the activity's id, in one transaction: one commit on the request's path, not two.
// A key no longer in progress (swept after its lifetime) stays as it is; the activity is
// recorded all the same, since what it describes happened.
func (db *DB) RecordSubmission(ctx context.Context, a *Activity, formKey string) error {
	args, err := db.activityRow(a)
	if err != nil {
		return err
	}
	err = db.inTx(ctx, func(exec txExec) error {
		if _, err := exec(insertActivity, args...); err != nil {
			return err
		}
		_, err := exec(`UPDATE form_keys SET state = ?, result_ref = ? WHERE key_hash = ? AND state = ?`,
			string(FormKeyDone), a.ID, hashID(formKey), string(FormKeyInProgress))
		return err
	})
	if err != nil {
		return fmt.Errorf("store: record submission: %w", err)
	}
	return nil
}

// ReleaseFormKey forgets a claimed key whose submission sent nothing, so the same form can be
// submitted again. Releasing a key that is not in progress changes nothing.
func (db *DB) ReleaseFormKey(ctx context.Context, key string) error {
	_, err := db.exec(ctx, `DELETE FROM form_keys WHERE key_hash = ? AND state = ?`, hashID(key), string(FormKeyInProgress))
	return err
}
