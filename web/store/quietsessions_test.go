package store

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// Background work borrows a person's live sessions without keeping them alive: reading and
// writing them quietly never moves their last-seen time, and an idle or expired session is not
// offered, read or written.
func TestQuietSessions(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		ctx := context.Background()
		st := db.SessionStore(SessionOptions{CookieName: cookieName, IdleTimeout: 15 * time.Minute, AbsoluteLifetime: time.Hour})
		save := func(key string) *http.Cookie {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			s, _ := st.Get(r, cookieName)
			s.Values["who"] = key
			st.SetUserKey(s, key)
			w := httptest.NewRecorder()
			if err := s.Save(r, w); err != nil {
				t.Fatal(err)
			}
			return w.Result().Cookies()[0]
		}
		older := save("t:adele")
		clk.advance(time.Minute)
		newer := save("t:adele")
		save("t:megan")
		ids, err := st.LiveSessionsOf(ctx, "t:adele")
		if err != nil || len(ids) != 2 || ids[0] != hashID(newer.Value) || ids[1] != hashID(older.Value) {
			t.Fatalf("live sessions %v, %v", ids, err)
		}
		lastSeen := func(c *http.Cookie) int64 {
			return int64(count(t, db, `SELECT last_seen_at FROM sessions WHERE id_hash = ?`, hashID(c.Value)))
		}
		before := lastSeen(older)
		clk.advance(10 * time.Minute)
		values, ok, err := st.LoadQuietly(ctx, ids[1])
		if err != nil || !ok || values["who"] != "t:adele" || values[userKeyName] != "t:adele" {
			t.Fatalf("load %v %v %v", values, ok, err)
		}
		values["who"] = "changed"
		if err := st.SaveQuietly(ctx, ids[1], values); err != nil {
			t.Fatal(err)
		}
		if lastSeen(older) != before {
			t.Errorf("a quiet save moved the last-seen time")
		}
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(older)
		if s, _ := st.New(r, cookieName); s.IsNew || s.Values["who"] != "changed" {
			t.Errorf("the request did not see the quietly saved values: %v", s.Values)
		}
		// The request above used the older session; the newer one has been idle 16 minutes.
		clk.advance(6 * time.Minute)
		if ids, _ := st.LiveSessionsOf(ctx, "t:adele"); len(ids) != 1 || ids[0] != hashID(older.Value) {
			t.Errorf("an idle session was offered: %v", ids)
		}
		if _, ok, _ := st.LoadQuietly(ctx, hashID(newer.Value)); ok {
			t.Errorf("an idle session was read")
		}
		if err := st.SaveQuietly(ctx, hashID(newer.Value), values); !errors.Is(err, ErrNotFound) {
			t.Errorf("an idle session was written: %v", err)
		}
		clk.advance(time.Hour) // past the lifetime
		if ids, _ := st.LiveSessionsOf(ctx, "t:adele"); len(ids) != 0 {
			t.Errorf("an expired session was offered: %v", ids)
		}
		if err := st.EndQuietly(ctx, hashID(older.Value)); err != nil {
			t.Fatal(err)
		}
	})
}
