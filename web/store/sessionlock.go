package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"sync"
)

// SessionKey is the key a session's row is stored under: a hash of the session id, which only
// the browser holds. A request gets it from its cookie's id; work outside any request that
// borrows a person's session gets it from LiveSessionsOfUser.
func SessionKey(sessionID string) string { return hashID(sessionID) }

// SessionChange is what UpdateLocked does with a session once its update has looked at it.
type SessionChange int

const (
	KeepSession   SessionChange = iota // leave the row as it is
	SaveSession                        // write the values the update changed
	DeleteSession                      // the session is over: delete its row
)

// sessionLockSpace is the first key of the PostgreSQL advisory locks that serialise changes to
// one session ("Sess"); the second is a hash of the session's key.
const sessionLockSpace = 0x53657373

// UpdateLocked runs update on the session stored under key while holding that session's lock,
// which every process sharing the database respects: on PostgreSQL a transaction-scoped
// advisory lock, taken before the row is read and released when the change commits; on SQLite,
// whose file one process owns, a lock in that process. The lock is held only while update runs
// (a token renewal at the identity provider, say), so a second caller waits, then reads what the
// first one wrote.
//
// A change is not a use: the session's last-seen time stays as it was, so work that goes on for
// a person outside any request (renewing their token for an import) never keeps an idle session
// alive; requests count as use when they load the session.
//
// update gets the session's values as stored now, may change them in place, and says what to do.
// found is false when there is no such session, or it has passed its idle or absolute limit.
// ctx bounds the wait for the lock as well as update.
func (s *SessionStore) UpdateLocked(ctx context.Context, key string, update func(values map[any]any) (SessionChange, error)) (found bool, err error) {
	if s.db.driver == driverPostgres {
		return s.updateLockedPostgres(ctx, key, update)
	}
	defer s.db.sessionLocks.of(key)()
	row, ok, err := s.read(ctx, key)
	if err != nil || !ok {
		return false, err
	}
	now := s.db.now()
	if s.expired(now, fromMS(row.lastSeen), fromMS(row.expires)) {
		return false, nil
	}
	values := row.valuesCopy()
	change, err := update(values)
	if err != nil {
		return true, err
	}
	switch change {
	case SaveSession:
		return true, s.write(ctx, key, values, row)
	case DeleteSession:
		return true, s.db.deleteSession(ctx, key)
	}
	return true, nil
}

// write stores changed values of an existing session row (SQLite; the cache follows).
func (s *SessionStore) write(ctx context.Context, key string, values map[any]any, row sessionRow) error {
	userKey, _ := values[userKeyName].(string)
	delete(values, userKeyName)
	data, err := s.opts.Codec.Encode(values)
	if userKey != "" {
		values[userKeyName] = userKey
	}
	if err != nil {
		return fmt.Errorf("store: encode session: %w", err)
	}
	row.values = values // lastSeen as it was: see UpdateLocked
	return s.update(ctx, key, data, row)
}

func (s *SessionStore) updateLockedPostgres(ctx context.Context, key string, update func(values map[any]any) (SessionChange, error)) (found bool, err error) {
	tx, err := s.db.writer.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: lock session: %w", classify(err))
	}
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, sessionLockSpace, key); err != nil {
		return false, fmt.Errorf("store: lock session: %w", classify(err))
	}
	var data []byte
	var userKey string
	var lastSeen, expires int64
	err = tx.QueryRowContext(ctx, `SELECT data, user_key, last_seen_at, absolute_expires_at FROM sessions WHERE id_hash = $1`, key).
		Scan(&data, &userKey, &lastSeen, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: load session: %w", classify(err))
	}
	now := s.db.now()
	if s.expired(now, fromMS(lastSeen), fromMS(expires)) {
		return false, nil
	}
	values, err := s.opts.Codec.Decode(data)
	if err != nil {
		return false, nil // undecodable: as good as gone (New deletes it on its next read)
	}
	change, err := update(values)
	if err != nil {
		return true, err
	}
	switch change {
	case SaveSession:
		delete(values, userKeyName)
		if data, err = s.opts.Codec.Encode(values); err != nil {
			return true, fmt.Errorf("store: encode session: %w", err)
		}
		if _, err := tx.ExecContext(ctx, `UPDATE sessions SET data = $1 WHERE id_hash = $2`, data, key); err != nil {
			return true, fmt.Errorf("store: save session: %w", classify(err))
		}
	case DeleteSession:
		if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = $1`, key); err != nil {
			return true, fmt.Errorf("store: delete session: %w", classify(err))
		}
	default:
		return true, nil // the rollback releases the lock
	}
	if err := tx.Commit(); err != nil {
		return true, fmt.Errorf("store: commit session: %w", classify(err))
	}
	return true, nil
}

const liveSessionsOfUser = `SELECT id_hash FROM sessions WHERE user_key = ? AND last_seen_at >= ? AND absolute_expires_at > ? ORDER BY last_seen_at DESC`

// LiveSessionsOfUser lists the keys of a user's (tid:oid) sessions that are within their idle
// and absolute limits, most recently used first: what work outside any request can borrow to
// act with the person's own token.
func (s *SessionStore) LiveSessionsOfUser(ctx context.Context, userKey string) ([]string, error) {
	db := s.db
	now := db.now()
	idle := s.opts.IdleTimeout
	keys, err := queryList(ctx, db, liveSessionsOfUser,
		[]any{userKey, ms(now.Add(-idle)), ms(now)}, scanString)
	if err != nil {
		return nil, fmt.Errorf("store: live sessions: %w", err)
	}
	return keys, nil
}

// stripedLocks serialise work per key within this process; striped so the set stays bounded.
type stripedLocks [64]sync.Mutex

// of locks key's stripe and returns its unlock.
func (l *stripedLocks) of(key string) (unlock func()) {
	h := fnv.New32a()
	h.Write([]byte(key))
	m := &l[h.Sum32()%uint32(len(l))]
	m.Lock()
	return m.Unlock
}
