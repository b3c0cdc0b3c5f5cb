package store

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/gob"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/sessions"
)

// SessionOptions configure the session store.
type SessionOptions struct {
	CookieName       string
	Secure           bool
	IdleTimeout      time.Duration
	AbsoluteLifetime time.Duration
}

// SessionStore is a gorilla/sessions store whose cookie carries only a random id; the values,
// the user and the timestamps live in the sessions table.
type SessionStore struct {
	db   *DB
	opts SessionOptions
}

const (
	idBytes     = 32
	idLength    = 43 // base64url of 32 bytes, no padding
	userKeyName = "_store_user_key"
	touchEvery  = time.Minute
)

// SessionStore returns the gorilla/sessions store over this database.
func (db *DB) SessionStore(o SessionOptions) *SessionStore {
	if o.CookieName == "" {
		o.CookieName = "__Host-autopilotdesk"
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 15 * time.Minute
	}
	if o.AbsoluteLifetime <= 0 {
		o.AbsoluteLifetime = 8 * time.Hour
	}
	return &SessionStore{db: db, opts: o}
}

func (s *SessionStore) options() *sessions.Options {
	return &sessions.Options{Path: "/", Secure: s.opts.Secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// Get returns the request's session, cached for the request.
func (s *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session the cookie names, or returns a new empty one. Malformed, unknown and
// expired ids give a new session, never an error.
func (s *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.Options = s.options()
	sess.IsNew = true
	ck, err := r.Cookie(name)
	if err != nil || !wellFormedID(ck.Value) {
		return sess, nil
	}
	var data []byte
	var lastSeen, expires int64
	err = s.db.queryRow(r.Context(), `SELECT data, last_seen_at, expires_at FROM sessions WHERE id_hash = ?`,
		[]any{hashID(ck.Value)}, &data, &lastSeen, &expires)
	if errors.Is(err, ErrNotFound) {
		return sess, nil
	}
	if err != nil {
		return sess, fmt.Errorf("store: load session: %w", err)
	}
	now := s.db.now()
	if now.Sub(fromMS(lastSeen)) > s.opts.IdleTimeout || !now.Before(fromMS(expires)) {
		_, err := s.db.exec(r.Context(), `DELETE FROM sessions WHERE id_hash = ?`, hashID(ck.Value))
		return sess, err
	}
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&sess.Values); err != nil {
		return sess, nil // written by an incompatible version: start afresh
	}
	sess.ID, sess.IsNew = ck.Value, false
	if now.Sub(fromMS(lastSeen)) >= touchEvery {
		if _, err := s.db.exec(r.Context(), `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, ms(now), hashID(sess.ID)); err != nil {
			return sess, fmt.Errorf("store: touch session: %w", err)
		}
	}
	return sess, nil
}

func wellFormedID(v string) bool {
	if len(v) != idLength {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(v)
	return err == nil && len(b) == idBytes
}

// Save writes the session row and the cookie. MaxAge < 0 deletes the session.
func (s *SessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if _, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hashID(sess.ID)); err != nil {
				return fmt.Errorf("store: delete session: %w", err)
			}
		}
		ck := sessions.NewCookie(sess.Name(), "", s.options())
		ck.MaxAge, ck.Expires = -1, time.Unix(1, 0)
		http.SetCookie(w, ck)
		sess.ID = ""
		return nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(sess.Values); err != nil {
		return fmt.Errorf("store: encode session: %w", err)
	}
	userKey, _ := sess.Values[userKeyName].(string)
	now := s.db.now()
	if sess.ID == "" {
		id, err := newID()
		if err != nil {
			return err
		}
		if _, err := s.db.exec(ctx, `INSERT INTO sessions (id_hash, user_key, data, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			hashID(id), userKey, buf.Bytes(), ms(now), ms(now), ms(now.Add(s.opts.AbsoluteLifetime))); err != nil {
			return fmt.Errorf("store: create session: %w", err)
		}
		sess.ID, sess.IsNew = id, false
	} else {
		res, err := s.db.exec(ctx, `UPDATE sessions SET data = ?, user_key = ?, last_seen_at = ? WHERE id_hash = ?`, buf.Bytes(), userKey, ms(now), hashID(sess.ID))
		if err != nil {
			return fmt.Errorf("store: save session: %w", err)
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("store: save session: %w", ErrNotFound)
		}
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, s.options()))
	return nil
}

// Regenerate drops the session's row; the next Save issues a brand-new id.
func (s *SessionStore) Regenerate(r *http.Request, sess *sessions.Session) error {
	if sess.ID != "" {
		if _, err := s.db.exec(r.Context(), `DELETE FROM sessions WHERE id_hash = ?`, hashID(sess.ID)); err != nil {
			return fmt.Errorf("store: regenerate session: %w", err)
		}
	}
	sess.ID, sess.IsNew = "", true
	return nil
}

// SetUserKey records whose session this is (tid:oid).
func (s *SessionStore) SetUserKey(sess *sessions.Session, key string) { sess.Values[userKeyName] = key }

func newID() (string, error) {
	b := make([]byte, idBytes)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// SweepExpired deletes idle and expired sessions, used flows, stale form keys and old counters.
func (db *DB) SweepExpired(ctx context.Context, idle time.Duration) (int, error) {
	now := db.now()
	res, err := db.exec(ctx, `DELETE FROM sessions WHERE last_seen_at < ? OR expires_at <= ?`, ms(now.Add(-idle)), ms(now))
	if err != nil {
		return 0, err
	}
	n, _ := res.RowsAffected()
	for _, q := range []struct {
		sql string
		arg int64
	}{
		{`DELETE FROM flows WHERE created_at < ?`, ms(now.Add(-time.Hour))},
		{`DELETE FROM form_keys WHERE expires_at < ?`, ms(now)},
		{`DELETE FROM rate_counters WHERE window_start < ?`, ms(now.Add(-24 * time.Hour))},
	} {
		if _, err := db.exec(ctx, q.sql, q.arg); err != nil {
			return int(n), err
		}
	}
	return int(n), nil
}

// CountActiveSessions counts sessions used within idle.
func (db *DB) CountActiveSessions(ctx context.Context, idle time.Duration) (int, error) {
	var n int
	now := db.now()
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE last_seen_at >= ? AND expires_at > ?`, []any{ms(now.Add(-idle)), ms(now)}, &n)
	return n, err
}

// DeleteSessionsOfUser signs a user out everywhere.
func (db *DB) DeleteSessionsOfUser(ctx context.Context, userKey string) error {
	_, err := db.exec(ctx, `DELETE FROM sessions WHERE user_key = ?`, userKey)
	return err
}
