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
	"strings"
	"time"

	"github.com/gorilla/sessions"
)

// SessionOptions configure the session store.
type SessionOptions struct {
	CookieName string // default "__Host-autopilotdesk"
	// Secure marks the cookie Secure. A __Host- or __Secure- cookie name is always Secure,
	// since browsers drop such cookies otherwise (and treat http://localhost as secure).
	Secure           bool
	IdleTimeout      time.Duration // default 15 minutes
	AbsoluteLifetime time.Duration // default 8 hours
}

// SessionStore is a gorilla/sessions store whose cookie carries only a random id; the values,
// the user and the timestamps live in the sessions table, keyed by a hash of the id.
type SessionStore struct {
	db   *DB
	opts SessionOptions
}

var _ sessions.Store = (*SessionStore)(nil)

const (
	idBytes     = 32
	idLength    = 43 // base64url of 32 bytes, unpadded
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

// CookieName is the name the store was configured with, for Get.
func (s *SessionStore) CookieName() string { return s.opts.CookieName }

// cookieOptions leave out MaxAge and Domain on purpose: a browser-session cookie pinned to this
// host; the server enforces the lifetimes.
func (s *SessionStore) cookieOptions(name string) *sessions.Options {
	secure := s.opts.Secure || strings.HasPrefix(name, "__Host-") || strings.HasPrefix(name, "__Secure-")
	return &sessions.Options{Path: "/", Secure: secure, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// SessionID is the session's id, for binding CSRF tokens and form keys to it; empty until a new
// session is first saved.
func SessionID(sess *sessions.Session) string { return sess.ID }

// Get returns the request's session, loaded once per request.
func (s *SessionStore) Get(r *http.Request, name string) (*sessions.Session, error) {
	return sessions.GetRegistry(r).Get(s, name)
}

// New loads the session the cookie names, or returns a new empty one. A malformed, oversized,
// unknown or expired id gives a new session, never an error; only a database failure does.
func (s *SessionStore) New(r *http.Request, name string) (*sessions.Session, error) {
	sess := sessions.NewSession(s, name)
	sess.Options = s.cookieOptions(name)
	sess.IsNew = true
	ck, err := r.Cookie(name)
	if err != nil || !wellFormedID(ck.Value) {
		return sess, nil
	}
	ctx := r.Context()
	idHash := hashID(ck.Value)
	var data []byte
	var lastSeen, expires int64
	err = s.db.queryRow(ctx, `SELECT data, last_seen_at, absolute_expires_at FROM sessions WHERE id_hash = ?`,
		[]any{idHash}, &data, &lastSeen, &expires)
	if errors.Is(err, ErrNotFound) {
		return sess, nil
	}
	if err != nil {
		return sess, fmt.Errorf("store: load session: %w", err)
	}
	now := s.db.now()
	values := map[any]any{}
	decodeErr := gob.NewDecoder(bytes.NewReader(data)).Decode(&values)
	if s.expired(now, fromMS(lastSeen), fromMS(expires)) || decodeErr != nil {
		// Expired, or written with types this build no longer knows: start afresh.
		if _, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
			return sess, fmt.Errorf("store: delete ended session: %w", err)
		}
		return sess, nil
	}
	sess.ID, sess.IsNew, sess.Values = ck.Value, false, values
	if now.Sub(fromMS(lastSeen)) >= touchEvery {
		if _, err := s.db.exec(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, ms(now), idHash); err != nil {
			return sess, fmt.Errorf("store: touch session: %w", err)
		}
	}
	return sess, nil
}

func (s *SessionStore) expired(now, lastSeen, absoluteExpiry time.Time) bool {
	return now.Sub(lastSeen) > s.opts.IdleTimeout || !now.Before(absoluteExpiry)
}

func wellFormedID(v string) bool {
	if len(v) != idLength {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(v)
	return err == nil && len(b) == idBytes
}

// Save writes the session row and sets the cookie. A session without an id gets a fresh one, so
// an id the browser brought is never adopted. Options.MaxAge < 0 deletes the session and expires
// the cookie. Saving a session that ended meanwhile (signed out elsewhere, expired) fails with
// ErrNotFound rather than bringing it back.
func (s *SessionStore) Save(r *http.Request, w http.ResponseWriter, sess *sessions.Session) error {
	ctx := r.Context()
	opts := s.cookieOptions(sess.Name())
	if sess.Options != nil && sess.Options.MaxAge < 0 {
		if sess.ID != "" {
			if _, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, hashID(sess.ID)); err != nil {
				return fmt.Errorf("store: delete session: %w", err)
			}
		}
		opts.MaxAge = -1
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", opts))
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
		id := newSessionID()
		if _, err := s.db.exec(ctx, `INSERT INTO sessions (id_hash, user_key, data, created_at, last_seen_at, absolute_expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
			hashID(id), userKey, buf.Bytes(), ms(now), ms(now), ms(now.Add(s.opts.AbsoluteLifetime))); err != nil {
			return fmt.Errorf("store: create session: %w", err)
		}
		sess.ID, sess.IsNew = id, false
	} else {
		n, err := s.db.execCount(ctx, `UPDATE sessions SET data = ?, user_key = ?, last_seen_at = ? WHERE id_hash = ? AND absolute_expires_at > ?`,
			buf.Bytes(), userKey, ms(now), hashID(sess.ID), ms(now))
		if err != nil {
			return fmt.Errorf("store: save session: %w", err)
		}
		if n == 0 {
			return fmt.Errorf("store: save session: %w", ErrNotFound)
		}
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, opts))
	return nil
}

// Regenerate deletes the session's row; the next Save issues a brand-new id with the values
// the session holds then. Call it at sign-in.
func (s *SessionStore) Regenerate(r *http.Request, sess *sessions.Session) error {
	if sess.ID != "" {
		if _, err := s.db.exec(r.Context(), `DELETE FROM sessions WHERE id_hash = ?`, hashID(sess.ID)); err != nil {
			return fmt.Errorf("store: regenerate session: %w", err)
		}
	}
	sess.ID, sess.IsNew = "", true
	return nil
}

// SetUserKey records whose session this is (tid:oid), written with the next Save.
func (s *SessionStore) SetUserKey(sess *sessions.Session, key string) { sess.Values[userKeyName] = key }

func newSessionID() string {
	b := make([]byte, idBytes)
	rand.Read(b) // never fails: crypto/rand crashes the program rather than return weak bytes
	return base64.RawURLEncoding.EncodeToString(b)
}

// SweepExpired deletes idle and expired sessions, stale sign-in flows, expired form keys and
// finished rate-limit windows. It returns the number of sessions deleted.
func (db *DB) SweepExpired(ctx context.Context, idle time.Duration) (int, error) {
	now := db.now()
	n, err := db.execCount(ctx, `DELETE FROM sessions WHERE last_seen_at < ? OR absolute_expires_at <= ?`, ms(now.Add(-idle)), ms(now))
	if err != nil {
		return 0, fmt.Errorf("store: sweep sessions: %w", err)
	}
	for _, q := range []struct {
		sql    string
		before time.Time
	}{
		{`DELETE FROM flows WHERE created_at < ?`, now.Add(-maxFlowAge)},
		{`DELETE FROM form_keys WHERE expires_at < ?`, now},
		{`DELETE FROM rate_counters WHERE window_end <= ?`, now},
	} {
		if _, err := db.exec(ctx, q.sql, ms(q.before)); err != nil {
			return n, fmt.Errorf("store: sweep: %w", err)
		}
	}
	return n, nil
}

// CountActiveSessions counts sessions used within idle and not past their lifetime.
func (db *DB) CountActiveSessions(ctx context.Context, idle time.Duration) (int, error) {
	var n int
	now := db.now()
	err := db.queryRow(ctx, `SELECT COUNT(*) FROM sessions WHERE last_seen_at >= ? AND absolute_expires_at > ?`,
		[]any{ms(now.Add(-idle)), ms(now)}, &n)
	return n, err
}

// DeleteSessionsOfUser signs a user (tid:oid) out everywhere.
func (db *DB) DeleteSessionsOfUser(ctx context.Context, userKey string) error {
	if userKey == "" {
		return errors.New("store: delete sessions: empty user key")
	}
	_, err := db.exec(ctx, `DELETE FROM sessions WHERE user_key = ?`, userKey)
	return err
}
