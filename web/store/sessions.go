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
	// Codec stores the session values; default GobCodec.
	Codec SessionCodec
}

// SessionCodec turns a session's values into the bytes of its row and back. The store keeps its
// own bookkeeping out of the values it hands to the codec.
type SessionCodec interface {
	Encode(values map[any]any) ([]byte, error)
	Decode(data []byte) (map[any]any, error)
}

// GobCodec stores any values registered with encoding/gob. It compiles the types again for
// every decoder; a codec that knows the values' shape is much faster.
type GobCodec struct{}

// Encode implements SessionCodec.
func (GobCodec) Encode(values map[any]any) ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(values)
	return buf.Bytes(), err
}

// Decode implements SessionCodec.
func (GobCodec) Decode(data []byte) (map[any]any, error) {
	values := map[any]any{}
	err := gob.NewDecoder(bytes.NewReader(data)).Decode(&values)
	return values, err
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
	// maxTouchAfter bounds how stale a session's stored last-seen time may get, so a session
	// ends at most this much before its idle timeout, whatever the timeout.
	maxTouchAfter = 5 * time.Second
)

// touchAfter is how old the stored last-seen time may get before a request writes it again: a
// sixteenth of the idle timeout, at most maxTouchAfter. A session then ends between its idle
// timeout and that much earlier after its last request, without a write on every request.
func (s *SessionStore) touchAfter() time.Duration {
	return min(s.opts.IdleTimeout/16, maxTouchAfter)
}

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
	if o.Codec == nil {
		o.Codec = GobCodec{}
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
	row, ok := s.db.sessionCache.get(idHash)
	if !ok {
		if row, ok, err = s.read(ctx, idHash); err != nil || !ok {
			return sess, err
		}
	}
	now := s.db.now()
	if s.expired(now, fromMS(row.lastSeen), fromMS(row.expires)) {
		return sess, s.db.deleteSession(ctx, idHash)
	}
	sess.ID, sess.IsNew, sess.Values = ck.Value, false, row.valuesCopy()
	if now.Sub(fromMS(row.lastSeen)) >= s.touchAfter() {
		if err := s.touch(ctx, idHash, ms(now)); err != nil {
			return sess, err
		}
	}
	return sess, nil
}

// read loads a session row and fills the cache with it. A row written with values this build
// cannot decode is deleted: the session starts afresh.
func (s *SessionStore) read(ctx context.Context, idHash string) (sessionRow, bool, error) {
	c := s.db.sessionCache
	defer c.lock(idHash)()
	if row, ok := c.get(idHash); ok {
		return row, true, nil // filled while this request waited for the lock
	}
	gen := c.generation()
	var data []byte
	var row sessionRow
	err := s.db.queryRow(ctx, `SELECT data, user_key, last_seen_at, absolute_expires_at FROM sessions WHERE id_hash = ?`,
		[]any{idHash}, &data, &row.userKey, &row.lastSeen, &row.expires)
	if errors.Is(err, ErrNotFound) {
		return row, false, nil
	}
	if err != nil {
		return row, false, fmt.Errorf("store: load session: %w", err)
	}
	values, err := s.opts.Codec.Decode(data)
	if err != nil {
		if _, err := s.db.exec(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
			return row, false, fmt.Errorf("store: delete undecodable session: %w", err)
		}
		return row, false, nil
	}
	if row.userKey != "" {
		values[userKeyName] = row.userKey
	}
	row.values = values
	c.put(idHash, row, gen)
	return row, true, nil
}

// touch records that the session was used (at most once per touchAfter).
func (s *SessionStore) touch(ctx context.Context, idHash string, now int64) error {
	c := s.db.sessionCache
	defer c.lock(idHash)()
	if _, err := s.db.exec(ctx, `UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?`, now, idHash); err != nil {
		return fmt.Errorf("store: touch session: %w", err)
	}
	c.touched(idHash, now)
	return nil
}

// deleteSession deletes one session row and its cached copy, and scrubs what it held (its
// tokens) from the disk.
func (db *DB) deleteSession(ctx context.Context, idHash string) error {
	unlock := db.sessionCache.lock(idHash)
	db.sessionCache.remove(idHash)
	n, err := db.execCount(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash)
	unlock()
	if err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	if n > 0 {
		db.scrub(ctx)
	}
	return nil
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
			if err := s.db.deleteSession(ctx, hashID(sess.ID)); err != nil {
				return err
			}
		}
		opts.MaxAge = -1
		http.SetCookie(w, sessions.NewCookie(sess.Name(), "", opts))
		sess.ID = ""
		return nil
	}
	userKey, _ := sess.Values[userKeyName].(string)
	delete(sess.Values, userKeyName)
	data, err := s.opts.Codec.Encode(sess.Values)
	if userKey != "" {
		sess.Values[userKeyName] = userKey
	}
	if err != nil {
		return fmt.Errorf("store: encode session: %w", err)
	}
	now := s.db.now()
	row := sessionRow{userKey: userKey, lastSeen: ms(now), values: sess.Values}
	if sess.ID == "" {
		id := newSessionID()
		row.expires = ms(now.Add(s.opts.AbsoluteLifetime))
		if err := s.insert(ctx, hashID(id), data, row); err != nil {
			return err
		}
		sess.ID, sess.IsNew = id, false
	} else if err := s.update(ctx, hashID(sess.ID), data, row); err != nil {
		return err
	}
	http.SetCookie(w, sessions.NewCookie(sess.Name(), sess.ID, opts))
	return nil
}

// insert writes a new session row and caches it.
func (s *SessionStore) insert(ctx context.Context, idHash string, data []byte, row sessionRow) error {
	c := s.db.sessionCache
	defer c.lock(idHash)()
	gen := c.generation()
	if _, err := s.db.exec(ctx, `INSERT INTO sessions (id_hash, user_key, data, created_at, last_seen_at, absolute_expires_at) VALUES (?, ?, ?, ?, ?, ?)`,
		idHash, row.userKey, data, row.lastSeen, row.lastSeen, row.expires); err != nil {
		return fmt.Errorf("store: create session: %w", err)
	}
	c.put(idHash, row.withValuesCopy(), gen)
	return nil
}

// update writes the values of a session that exists and has not passed its lifetime, and
// caches them; a session that ended meanwhile gives ErrNotFound.
func (s *SessionStore) update(ctx context.Context, idHash string, data []byte, row sessionRow) error {
	c := s.db.sessionCache
	defer c.lock(idHash)()
	gen := c.generation()
	err := s.db.queryRow(ctx, `UPDATE sessions SET data = ?, user_key = ?, last_seen_at = ? WHERE id_hash = ? AND absolute_expires_at > ? RETURNING absolute_expires_at`,
		[]any{data, row.userKey, row.lastSeen, idHash, row.lastSeen}, &row.expires)
	if err != nil {
		c.remove(idHash)
		return fmt.Errorf("store: save session: %w", err)
	}
	c.put(idHash, row.withValuesCopy(), gen)
	return nil
}

// Regenerate deletes the session's row; the next Save issues a brand-new id with the values
// the session holds then. Call it at sign-in.
func (s *SessionStore) Regenerate(r *http.Request, sess *sessions.Session) error {
	if sess.ID != "" {
		if err := s.db.deleteSession(r.Context(), hashID(sess.ID)); err != nil {
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
	idleBefore := ms(now.Add(-idle))
	n, err := db.execCount(ctx, sweepSessions, idleBefore, ms(now))
	if err != nil {
		return 0, fmt.Errorf("store: sweep sessions: %w", err)
	}
	db.sessionCache.removeWhere(func(row sessionRow) bool { return row.lastSeen < idleBefore || row.expires <= ms(now) })
	if n > 0 {
		db.scrub(ctx)
	}
	db.counters.sweep(ms(now))
	for _, q := range []struct {
		sql    string
		before time.Time
	}{
		{sweepFlows, now.Add(-maxFlowAge)},
		{sweepFormKeyClaims, now},
		{sweepRateCounters, now},
	} {
		if _, err := db.exec(ctx, q.sql, ms(q.before)); err != nil {
			return n, fmt.Errorf("store: sweep: %w", err)
		}
	}
	return n, nil
}

// sweepSessions reads the idle sessions and those past their lifetime through an index each
// (migration 9), not every session's row with its tokens.
const sweepSessions = `DELETE FROM sessions WHERE last_seen_at < ? OR absolute_expires_at <= ?`

const (
	sweepFlows = `DELETE FROM flows WHERE created_at < ?`
	// sweepFormKeyClaims reads every claim, which is allowed: the table holds the claims of the
	// last two hours, clustered on the key (migration 3), and an index of their ends would add a
	// write to every create.
	sweepFormKeyClaims = `DELETE FROM form_key_claims WHERE expires_at < ?`
	sweepRateCounters  = `DELETE FROM rate_counters WHERE window_end <= ?`
)

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
	db.sessionCache.removeWhere(func(row sessionRow) bool { return row.userKey == userKey })
	if err == nil {
		db.scrub(ctx)
	}
	return err
}
