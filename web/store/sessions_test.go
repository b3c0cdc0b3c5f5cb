package store

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/gob"
	"errors"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"

	"autopilotdesk/devtools/testkit"
)

const cookieName = "__Host-autopilotdesk"

// signedInUser stands for the types callers register for their session values.
type signedInUser struct{ TenantID, ObjectID, AccessToken string }

func init() { gob.Register(signedInUser{}) }

func encodeValues(t *testing.T, v map[any]any) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(v); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func cookieFor(id string) *http.Cookie { return &http.Cookie{Name: cookieName, Value: id} }

// newSession saves values in a new session through the gorilla API and returns the response's
// Set-Cookie header and the cookie the browser keeps.
func newSession(t *testing.T, st *SessionStore, values map[any]any) (string, *http.Cookie) {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	s, err := st.Get(r, cookieName)
	if err != nil || !s.IsNew {
		t.Fatalf("fresh request: err=%v new=%v", err, s.IsNew)
	}
	for k, v := range values {
		s.Values[k] = v
	}
	if err := s.Save(r, w); err != nil {
		t.Fatal(err)
	}
	headers := w.Result().Header.Values("Set-Cookie")
	cookies := w.Result().Cookies()
	if len(headers) != 1 || len(cookies) != 1 {
		t.Fatalf("Set-Cookie headers: %q", headers)
	}
	return headers[0], cookies[0]
}

// load reads the session a request with cookie (if any) carries, as a new request would.
func load(t *testing.T, st *SessionStore, ck *http.Cookie) *sessions.Session {
	t.Helper()
	_, s := request(t, st, http.MethodGet, "/", ck)
	return s
}

// request is a request to path with cookie (if any), and the session st loads for it.
func request(t *testing.T, st *SessionStore, method, path string, ck *http.Cookie) (*http.Request, *sessions.Session) {
	t.Helper()
	r := httptest.NewRequest(method, path, nil)
	if ck != nil {
		r.AddCookie(ck)
	}
	s, err := st.Get(r, cookieName)
	if err != nil {
		t.Fatalf("a cookie must never make loading fail: %v", err)
	}
	return r, s
}

// save saves s in the answer to r and returns that answer.
func save(t *testing.T, r *http.Request, s *sessions.Session) *http.Response {
	t.Helper()
	w := httptest.NewRecorder()
	if err := s.Save(r, w); err != nil {
		t.Fatal(err)
	}
	return w.Result()
}

func sessionRows(t *testing.T, db *DB, id string) int {
	return count(t, db, `SELECT COUNT(*) FROM sessions WHERE id_hash = ?`, hashID(id))
}

func TestSessionRoundTripCookieCarriesOnlyTheID(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{})
		user := signedInUser{TenantID: "tid", ObjectID: "oid", AccessToken: "eyJ-secret-access-token"}
		header, ck := newSession(t, st, map[any]any{"user": user})

		if want := cookieName + "=" + ck.Value + "; Path=/; HttpOnly; Secure; SameSite=Lax"; header != want {
			t.Errorf("Set-Cookie:\n got %s\nwant %s", header, want)
		}
		raw, err := base64.RawURLEncoding.DecodeString(ck.Value)
		if err != nil || len(ck.Value) != 43 || len(raw)*8 < 128 {
			t.Errorf("cookie value %q is not a 256-bit base64url id", ck.Value)
		}
		if strings.Contains(header, "secret") || strings.Contains(header, "oid") {
			t.Errorf("cookie carries session values: %s", header)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM sessions WHERE id_hash = ?`, ck.Value); n != 0 {
			t.Error("the raw session id is stored; only its hash may be")
		}
		_, other := newSession(t, st, nil)
		if other.Value == ck.Value {
			t.Error("two sessions got the same id")
		}

		s := load(t, st, ck)
		if s.IsNew || s.Values["user"] != user || s.ID != ck.Value {
			t.Errorf("round trip: new=%v id=%q values=%v", s.IsNew, s.ID, s.Values)
		}
	})
}

func TestSessionCookieSecureAttribute(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		for _, c := range []struct {
			name   string
			secure bool
			want   bool
		}{
			{"__Host-autopilotdesk", false, true}, // browsers drop a __Host- cookie without Secure
			{"__Secure-desk", false, true},
			{"desk", false, false},
			{"desk", true, true},
		} {
			st := db.SessionStore(SessionOptions{CookieName: c.name, Secure: c.secure})
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			w := httptest.NewRecorder()
			s, _ := st.Get(r, st.CookieName())
			if err := s.Save(r, w); err != nil {
				t.Fatal(err)
			}
			if got := w.Result().Cookies()[0]; got.Name != c.name || got.Secure != c.want {
				t.Errorf("%s (Secure option %v): cookie %q Secure=%v, want %v", c.name, c.secure, got.Name, got.Secure, c.want)
			}
		}
	})
}

func TestSessionStoreDefaults(t *testing.T) {
	st := (&DB{}).SessionStore(SessionOptions{})
	if st.CookieName() != cookieName || st.opts.IdleTimeout != 15*time.Minute || st.opts.AbsoluteLifetime != 8*time.Hour {
		t.Errorf("defaults: %+v", st.opts)
	}
}

func TestBadCookiesGiveANewSession(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{})
		_, good := newSession(t, st, map[any]any{"k": "v"})
		last := good.Value[len(good.Value)-1:]
		flipped := "A"
		if last == "A" {
			flipped = "B"
		}
		for name, value := range map[string]string{
			"browser-chosen id":         newSessionID(),
			"tampered":                  good.Value[:len(good.Value)-1] + flipped,
			"truncated":                 good.Value[:20],
			"extended":                  good.Value + "A",
			"oversized":                 strings.Repeat("x", 5000),
			"oversized, starting right": good.Value + strings.Repeat("A", 5000),
			"padded base64":             good.Value + "=",
			"not base64url":             strings.Repeat("+", 43),
			"foreign (securecookie)":    "MTY5OTk5OTk5OXxEdi1CQkFFQ180SUFBUkFCRUFBQV8tRF9nQUFBQT09fHq6Qb2f0Ngd4jXz6gA=",
			"empty":                     "",
		} {
			t.Run(name, func(t *testing.T) {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.Header.Set("Cookie", cookieName+"="+value)
				s, err := st.Get(r, cookieName)
				if err != nil || !s.IsNew || len(s.Values) != 0 || s.ID != "" {
					t.Fatalf("err=%v new=%v values=%v", err, s.IsNew, s.Values)
				}
				s.Values["k"] = "mine"
				w := httptest.NewRecorder()
				if err := s.Save(r, w); err != nil {
					t.Fatal(err)
				}
				issued := w.Result().Cookies()[0].Value
				if issued == value || !wellFormedID(issued) {
					t.Errorf("issued %q for a browser that brought %q", issued, value)
				}
				if value != "" && sessionRows(t, db, value) != 0 {
					t.Error("a row exists under the id the browser brought")
				}
			})
		}
		if s := load(t, st, good); s.IsNew || s.Values["k"] != "v" {
			t.Error("the genuine session was disturbed")
		}
	})
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{IdleTimeout: 15 * time.Minute, AbsoluteLifetime: time.Hour})
		_, ck := newSession(t, st, map[any]any{"k": "v"})
		clk.Advance(14 * time.Minute)
		if load(t, st, ck).IsNew {
			t.Fatal("ended before the idle timeout")
		}
		clk.Advance(15*time.Minute + time.Millisecond) // last seen 15 min ago when loaded above
		if !load(t, st, ck).IsNew {
			t.Error("idle session still valid")
		}
		if sessionRows(t, db, ck.Value) != 0 {
			t.Error("idle session's row was not deleted")
		}

		_, ck = newSession(t, st, map[any]any{"k": "v"})
		for minutes := 10; minutes <= 60; minutes += 10 { // in use every 10 minutes
			clk.Advance(10 * time.Minute)
			ended := load(t, st, ck).IsNew
			if minutes < 60 && ended {
				t.Fatalf("active session ended after %d min", minutes)
			}
			if minutes == 60 && !ended {
				t.Error("session outlived its absolute lifetime")
			}
		}
		if sessionRows(t, db, ck.Value) != 0 {
			t.Error("expired session's row was not deleted")
		}
	})
}

// Last seen is written when the stored value is a sixteenth of the idle timeout old (at most 5
// s), not on every request.
func TestLastSeenWrittenWhenItGetsStale(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{IdleTimeout: 8 * time.Second})
		_, ck := newSession(t, st, nil)
		lastSeen := func() time.Time {
			var v int64
			if err := db.queryRow(context.Background(), `SELECT last_seen_at FROM sessions WHERE id_hash = ?`, []any{hashID(ck.Value)}, &v); err != nil {
				t.Fatal(err)
			}
			return fromMS(v)
		}
		created := clk.Now()
		clk.Advance(400 * time.Millisecond)
		load(t, st, ck)
		if !lastSeen().Equal(created) {
			t.Errorf("written again within half a second: %s", lastSeen())
		}
		clk.Advance(100 * time.Millisecond)
		load(t, st, ck)
		if !lastSeen().Equal(clk.Now()) {
			t.Errorf("last seen %s, want %s", lastSeen(), clk.Now())
		}

		st = db.SessionStore(SessionOptions{}) // 15 minutes: written every 5 s at most
		_, ck = newSession(t, st, nil)
		written := clk.Now()
		clk.Advance(4 * time.Second)
		load(t, st, ck)
		if !lastSeen().Equal(written) {
			t.Errorf("written again within 5 s: %s", lastSeen())
		}
		clk.Advance(time.Second)
		load(t, st, ck)
		if !lastSeen().Equal(clk.Now()) {
			t.Errorf("last seen %s, want %s", lastSeen(), clk.Now())
		}
	})
}

func TestRegenerateIssuesANewID(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{})
		_, before := newSession(t, st, map[any]any{"pending": "form"})
		r, s := request(t, st, http.MethodGet, "/", before)
		if err := st.Regenerate(r, s); err != nil {
			t.Fatal(err)
		}
		st.SetUserKey(s, "tid:oid")
		after := save(t, r, s).Cookies()[0]
		if after.Value == before.Value {
			t.Fatal("the id survived Regenerate")
		}
		if !load(t, st, before).IsNew {
			t.Error("the old id still loads")
		}
		if s := load(t, st, after); s.IsNew || s.Values["pending"] != "form" {
			t.Errorf("the new session lost its values: %v", s.Values)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM sessions WHERE user_key = ?`, "tid:oid"); n != 1 {
			t.Errorf("%d rows carry the user key", n)
		}
	})
}

func TestDeleteThenReplayGivesANewSession(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{})
		_, ck := newSession(t, st, map[any]any{"k": "v"})
		r, s := request(t, st, http.MethodPost, "/auth/signout", ck)
		s.Options.MaxAge = -1
		if got := save(t, r, s).Header.Get("Set-Cookie"); !strings.HasPrefix(got, cookieName+"=;") || !strings.Contains(got, "Max-Age=0") {
			t.Errorf("cookie not expired: %s", got)
		}
		if s := load(t, st, ck); !s.IsNew || len(s.Values) != 0 {
			t.Error("the deleted session loads from a replayed cookie")
		}
	})
}

func TestSavingASessionThatEndedElsewhereFails(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{})
		_, ck := newSession(t, st, nil)
		s := load(t, st, ck)
		st.SetUserKey(s, "tid:oid")
		w := httptest.NewRecorder()
		if err := s.Save(httptest.NewRequest(http.MethodGet, "/", nil), w); err != nil {
			t.Fatal(err)
		}
		if err := db.DeleteSessionsOfUser(context.Background(), "tid:oid"); err != nil {
			t.Fatal(err)
		}
		s.Values["tokens"] = "renewed"
		err := s.Save(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder())
		if !errors.Is(err, ErrNotFound) {
			t.Errorf("save after sign-out elsewhere: %v", err)
		}
		if !load(t, st, ck).IsNew {
			t.Error("the session came back")
		}
	})
}

func TestDeleteSessionsOfUser(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{})
		signIn := func(userKey string) *http.Cookie {
			r, s := request(t, st, http.MethodGet, "/", nil)
			st.SetUserKey(s, userKey)
			return save(t, r, s).Cookies()[0]
		}
		a1, a2, b := signIn("t:a"), signIn("t:a"), signIn("t:b")
		if err := db.DeleteSessionsOfUser(context.Background(), "t:a"); err != nil {
			t.Fatal(err)
		}
		if !load(t, st, a1).IsNew || !load(t, st, a2).IsNew || load(t, st, b).IsNew {
			t.Error("deleted the wrong sessions")
		}
		if err := db.DeleteSessionsOfUser(context.Background(), ""); err == nil {
			t.Error("an empty user key would sign out every anonymous session")
		}
	})
}

func TestConcurrentRequestsShareOneSession(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		st := db.SessionStore(SessionOptions{})
		_, ck := newSession(t, st, map[any]any{"k": "v"})
		clk.Advance(2 * time.Minute) // every load below wants to refresh last seen
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				r := httptest.NewRequest(http.MethodGet, "/", nil)
				r.AddCookie(ck)
				s, err := st.Get(r, cookieName)
				if err != nil || s.IsNew {
					t.Errorf("err=%v new=%v", err, s.IsNew)
					return
				}
				if err := s.Save(r, httptest.NewRecorder()); err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
	})
}

func TestSweepAndCount(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		st := db.SessionStore(SessionOptions{})
		newSession(t, st, nil)
		newSession(t, st, nil)
		if err := db.PutFlow(ctx, FlowRecord{ID: "f", State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/"}); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := db.ClaimFormKey(ctx, "k", "sess", time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, _, err := db.Allow(ctx, "b", 1, time.Minute); err != nil {
			t.Fatal(err)
		}
		if n, err := db.SweepExpired(ctx, 15*time.Minute); err != nil || n != 0 {
			t.Errorf("swept %d, %v before anything expired", n, err)
		}
		clk.Advance(10 * time.Minute)
		_, fresh := newSession(t, st, nil)
		if n, _ := db.CountActiveSessions(ctx, 5*time.Minute); n != 1 {
			t.Errorf("active within 5 min = %d, want 1", n)
		}
		if n, _ := db.CountActiveSessions(ctx, 15*time.Minute); n != 3 {
			t.Errorf("active within 15 min = %d, want 3", n)
		}
		clk.Advance(6 * time.Minute)
		if n, err := db.SweepExpired(ctx, 15*time.Minute); err != nil || n != 2 {
			t.Errorf("swept %d, %v; want the 2 idle sessions", n, err)
		}
		if load(t, st, fresh).IsNew {
			t.Error("swept a live session")
		}
		for table, want := range map[string]int{"flows": 0, "form_key_claims": 0, "rate_counters": 0, "sessions": 1} {
			if n := count(t, db, `SELECT COUNT(*) FROM `+table); n != want {
				t.Errorf("%s: %d rows left, want %d", table, n, want)
			}
		}
	})
}

// UpdateLocked runs one update of a session at a time across every process sharing the
// database (two opened databases stand for two replicas on PostgreSQL), each reading what the
// previous one wrote; it reports missing and expired sessions, and deletes when asked.
func TestUpdateLockedSerialisesAcrossProcesses(t *testing.T) {
	eachEngine(t, func(t *testing.T, loc location) {
		ctx := context.Background()
		clk := testkit.NewClock()
		first := loc.open(t, clk)
		stores := []*SessionStore{first.SessionStore(SessionOptions{IdleTimeout: time.Hour})}
		if loc.options.DatabaseURL != "" {
			stores = append(stores, loc.open(t, clk).SessionStore(SessionOptions{IdleTimeout: time.Hour}))
		}
		_, ck := newSession(t, stores[0], map[any]any{"n": "0", userKeyName: "tid:oid"})
		key := SessionKey(ck.Value)

		var inside, overlaps atomic.Int32
		var wg sync.WaitGroup
		const updates = 12
		for i := range updates {
			st := stores[i%len(stores)]
			wg.Go(func() {
				found, err := st.UpdateLocked(ctx, key, func(values map[any]any) (SessionChange, error) {
					if inside.Add(1) > 1 {
						overlaps.Add(1)
					}
					defer inside.Add(-1)
					time.Sleep(10 * time.Millisecond) // a renewal's round trip to the identity provider
					n, _ := strconv.Atoi(values["n"].(string))
					values["n"] = strconv.Itoa(n + 1)
					return SaveSession, nil
				})
				if !found || err != nil {
					t.Errorf("update: found=%v err=%v", found, err)
				}
			})
		}
		wg.Wait()
		if overlaps.Load() != 0 {
			t.Errorf("%d updates ran while another held the lock", overlaps.Load())
		}
		if got := load(t, stores[len(stores)-1], ck).Values["n"]; got != strconv.Itoa(updates) {
			t.Errorf("n = %v after %d updates, want %d: an update read a stale value", got, updates, updates)
		}
		if keys, err := stores[0].LiveSessionsOfUser(ctx, "tid:oid"); err != nil || len(keys) != 1 || keys[0] != key {
			t.Errorf("live sessions of the user: %v %v", keys, err)
		}

		if found, err := stores[0].UpdateLocked(ctx, SessionKey(newSessionID()), func(map[any]any) (SessionChange, error) {
			t.Error("update ran for a session that does not exist")
			return KeepSession, nil
		}); found || err != nil {
			t.Errorf("unknown session: %v %v", found, err)
		}
		if found, err := stores[0].UpdateLocked(ctx, key, func(map[any]any) (SessionChange, error) { return DeleteSession, nil }); !found || err != nil {
			t.Fatalf("delete: %v %v", found, err)
		}
		if sessionRows(t, first, ck.Value) != 0 || !load(t, stores[0], ck).IsNew {
			t.Error("the deleted session is still there")
		}
		_, ck = newSession(t, stores[0], map[any]any{"n": "0"})
		clk.Advance(2 * time.Hour)
		if found, _ := stores[0].UpdateLocked(ctx, SessionKey(ck.Value), func(map[any]any) (SessionChange, error) { return SaveSession, nil }); found {
			t.Error("an idle session was updated")
		}
	})
}

// A change made through UpdateLocked is not a use of the session: its last-seen time stays, so
// work that renews a person's tokens outside any request never keeps an idle session alive.
func TestUpdateLockedIsNotAUse(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		st := db.SessionStore(SessionOptions{IdleTimeout: 15 * time.Minute})
		_, ck := newSession(t, st, map[any]any{"n": "0", userKeyName: "tid:oid"})
		key := SessionKey(ck.Value)
		clk.Advance(10 * time.Minute)
		if found, err := st.UpdateLocked(ctx, key, func(values map[any]any) (SessionChange, error) {
			values["n"] = "1"
			return SaveSession, nil
		}); !found || err != nil {
			t.Fatalf("update: %v %v", found, err)
		}
		clk.Advance(6 * time.Minute) // 16 minutes since the session was last used
		if keys, _ := st.LiveSessionsOfUser(ctx, "tid:oid"); len(keys) != 0 {
			t.Errorf("the session is still live 16 minutes after its last use: the update counted as use")
		}
	})
}
