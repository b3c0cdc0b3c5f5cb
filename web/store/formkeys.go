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
	FormKeyIssued     FormKeyState = "issued"      // rendered in a form, not yet submitted
	FormKeyInProgress FormKeyState = "in-progress" // claimed by a submission that is running
	FormKeyDone       FormKeyState = "done"        // the submission finished; resultRef says where its result is
)

// IssueFormKey records a key that a rendered form carries, bound to the session it was shown in.
func (db *DB) IssueFormKey(ctx context.Context, key, sessionID string, ttl time.Duration) error {
	if key == "" || sessionID == "" {
		return errors.New("store: issue form key: empty key or session")
	}
	_, err := db.exec(ctx, `INSERT INTO form_keys (key_hash, session_hash, state, expires_at) VALUES (?, ?, ?, ?)`,
		hashID(key), hashID(sessionID), string(FormKeyIssued), ms(db.now().Add(ttl)))
	return err
}

// ClaimFormKey claims an issued, unexpired key for its session in one conditional update, so of
// any number of concurrent submissions exactly one wins. A losing claim learns the key's state
// and, once done, its result reference; an unknown key, or one of another session, gives
// claimed=false with an empty state.
func (db *DB) ClaimFormKey(ctx context.Context, key, sessionID string) (claimed bool, state FormKeyState, resultRef string, err error) {
	if key == "" || sessionID == "" {
		return false, "", "", nil
	}
	n, err := db.execCount(ctx, `UPDATE form_keys SET state = ? WHERE key_hash = ? AND session_hash = ? AND state = ? AND expires_at > ?`,
		string(FormKeyInProgress), hashID(key), hashID(sessionID), string(FormKeyIssued), ms(db.now()))
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
	if FormKeyState(s) == FormKeyIssued { // issued but past its time
		return false, "", "", nil
	}
	return false, FormKeyState(s), resultRef, nil
}

// CompleteFormKey records what a claimed key resulted in (e.g. the activity id to show again).
func (db *DB) CompleteFormKey(ctx context.Context, key, resultRef string) error {
	n, err := db.execCount(ctx, `UPDATE form_keys SET state = ?, result_ref = ? WHERE key_hash = ? AND state = ?`,
		string(FormKeyDone), resultRef, hashID(key), string(FormKeyInProgress))
	if err != nil {
		return fmt.Errorf("store: complete form key: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("store: complete form key: %w", ErrNotFound)
	}
	return nil
}

// ReleaseFormKey puts a claimed key back to issued, for a submission that sent nothing (the form
// is shown again with its errors). Releasing a key that is not in progress changes nothing.
func (db *DB) ReleaseFormKey(ctx context.Context, key string) error {
	_, err := db.exec(ctx, `UPDATE form_keys SET state = ? WHERE key_hash = ? AND state = ?`,
		string(FormKeyIssued), hashID(key), string(FormKeyInProgress))
	return err
}
