package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/sessions"
)

// clock is an injected, settable time.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

var schemaSeq atomic.Int64

// eachDB runs a contract test on SQLite always, and on PostgreSQL when
// AUTOPILOTDESK_TEST_DATABASE_URL is set (each test in a schema of its own).
func eachDB(t *testing.T, test func(t *testing.T, db *DB, clk *clock)) {
	t.Run("sqlite", func(t *testing.T) {
		clk := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
		db, err := Open(context.Background(), Options{DataDir: t.TempDir(), Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		test(t, db, clk)
	})
	url := os.Getenv("AUTOPILOTDESK_TEST_DATABASE_URL")
	t.Run("postgres", func(t *testing.T) {
		if url == "" {
			if os.Getenv("CI") == "true" {
				t.Fatal("AUTOPILOTDESK_TEST_DATABASE_URL is not set in CI")
			}
			t.Skip("AUTOPILOTDESK_TEST_DATABASE_URL not set")
		}
		admin, err := sql.Open("pgx", url)
		if err != nil {
			t.Fatal(err)
		}
		schema := fmt.Sprintf("t_%d_%d", os.Getpid(), schemaSeq.Add(1))
		if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); admin.Close() })
		sep := "?"
		if strings.Contains(url, "?") {
			sep = "&"
		}
		clk := &clock{t: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
		db, err := Open(context.Background(), Options{DatabaseURL: url + sep + "search_path=" + schema, Now: clk.now})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		test(t, db, clk)
	})
}

func TestMigrationsRecordedAndIdempotent(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		v, err := db.SchemaVersion(context.Background())
		if err != nil || v != len(migrations) {
			t.Fatalf("schema version %d, %v; want %d", v, err, len(migrations))
		}
		if err := db.migrate(context.Background()); err != nil {
			t.Fatalf("second migrate: %v", err)
		}
		if v, _ := db.SchemaVersion(context.Background()); v != len(migrations) {
			t.Errorf("version after re-run = %d", v)
		}
	})
}

const cookieName = "__Host-autopilotdesk"

// roundTrip saves values in a new session and returns the cookie the browser got.
func newSession(t *testing.T, st *SessionStore, values map[any]any) *http.Cookie {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	w := httptest.NewRecorder()
	s, err := st.Get(r, cookieName)
	if err != nil || !s.IsNew {
		t.Fatalf("fresh request: %v new=%v", err, s.IsNew)
	}
	for k, v := range values {
		s.Values[k] = v
	}
	if err := s.Save(r, w); err != nil {
		t.Fatal(err)
	}
	cks := w.Result().Cookies()
	if len(cks) != 1 {
		t.Fatalf("cookies set: %d", len(cks))
	}
	return cks[0]
}

func load(t *testing.T, st *SessionStore, ck *http.Cookie) *sessions.Session {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if ck != nil {
		r.AddCookie(ck)
	}
	s, err := st.New(r, cookieName)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSessionCookieCarriesOnlyARandomID(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		st := db.SessionStore(SessionOptions{Secure: true})
		ck := newSession(t, st, map[any]any{"user": "tid:oid", "token": "secret-access-token"})
		if ck.Name != cookieName || !ck.Secure || !ck.HttpOnly || ck.Path != "/" || ck.SameSite != http.SameSiteLaxMode || ck.Domain != "" {
			t.Errorf("cookie attributes: %+v", ck)
		}
		if !wellFormedID(ck.Value) || strings.Contains(ck.Value, "secret") {
			t.Errorf("cookie value %q is not a bare 256-bit id", ck.Value)
		}
		s := load(t, st, ck)
		if s.IsNew || s.Values["token"] != "secret-access-token" {
			t.Errorf("round trip lost values: %v", s.Values)
		}
		var stored int
		db.queryRow(context.Background(), `SELECT COUNT(*) FROM sessions WHERE id_hash = ?`, []any{ck.Value}, &stored)
		if stored != 0 {
			t.Errorf("the raw session id is stored; only its hash should be")
		}
	})
}

func TestBadCookiesAreNoSession(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		st := db.SessionStore(SessionOptions{Secure: true})
		good := newSession(t, st, map[any]any{"k": "v"})
		for name, v := range map[string]string{
			"browser-chosen id": strings.Repeat("A", idLength),
			"truncated":         good.Value[:20],
			"tampered":          good.Value[:idLength-1] + flip(good.Value[idLength-1]),
			"oversized":         strings.Repeat("x", 5000),
			"foreign":           "MTY5OTk5OTk5OXxEdi1CQkFFQ180SUFBUkFCRUFBQV8tRF9nQUFBQT09fA==",
			"empty":             "",
		} {
			t.Run(name, func(t *testing.T) {
				s := load(t, st, &http.Cookie{Name: cookieName, Value: v})
				if !s.IsNew || len(s.Values) != 0 {
					t.Errorf("got a session from a %s cookie", name)
				}
				// Saving it issues a new id, never the one the browser brought.
				w := httptest.NewRecorder()
				if err := st.Save(httptest.NewRequest(http.MethodGet, "/", nil), w, s); err != nil {
					t.Fatal(err)
				}
				if got := w.Result().Cookies()[0].Value; got == v {
					t.Errorf("adopted the browser's id")
				}
			})
		}
	})
}

func flip(b byte) string {
	if b == 'A' {
		return "B"
	}
	return "A"
}

func TestIdleAndAbsoluteExpiry(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		st := db.SessionStore(SessionOptions{Secure: true, IdleTimeout: 15 * time.Minute, AbsoluteLifetime: time.Hour})
		ck := newSession(t, st, map[any]any{"k": "v"})
		clk.advance(14 * time.Minute)
		if load(t, st, ck).IsNew {
			t.Fatal("expired before the idle timeout")
		}
		clk.advance(16 * time.Minute) // touched 16 min ago
		if !load(t, st, ck).IsNew {
			t.Error("idle session still valid")
		}

		ck = newSession(t, st, map[any]any{"k": "v"})
		for i := 0; i < 6; i++ { // active every 10 minutes for an hour
			clk.advance(10 * time.Minute)
			s := load(t, st, ck)
			if i < 5 && s.IsNew {
				t.Fatalf("active session ended after %d min", (i+1)*10)
			}
			if i == 5 && !s.IsNew {
				t.Error("session outlived its absolute lifetime")
			}
		}
	})
}

func TestRegenerateAndDelete(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		st := db.SessionStore(SessionOptions{Secure: true})
		ck := newSession(t, st, map[any]any{"k": "v"})
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.AddCookie(ck)
		s, _ := st.New(r, cookieName)
		if err := st.Regenerate(r, s); err != nil {
			t.Fatal(err)
		}
		w := httptest.NewRecorder()
		if err := s.Save(r, w); err != nil {
			t.Fatal(err)
		}
		fresh := w.Result().Cookies()[0]
		if fresh.Value == ck.Value || !load(t, st, ck).IsNew || load(t, st, fresh).IsNew {
			t.Errorf("regenerate did not replace the id")
		}
		// Delete, then replay the cookie.
		s = load(t, st, fresh)
		s.Options.MaxAge = -1
		w = httptest.NewRecorder()
		if err := s.Save(r, w); err != nil {
			t.Fatal(err)
		}
		if c := w.Result().Cookies()[0]; c.MaxAge >= 0 {
			t.Errorf("cookie not expired: %+v", c)
		}
		if !load(t, st, fresh).IsNew {
			t.Error("deleted session still loads")
		}
	})
}

func TestSweepAndCount(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		st := db.SessionStore(SessionOptions{Secure: true})
		newSession(t, st, nil)
		newSession(t, st, nil)
		if n, _ := db.CountActiveSessions(context.Background(), 15*time.Minute); n != 2 {
			t.Errorf("active = %d", n)
		}
		clk.advance(20 * time.Minute)
		if n, err := db.SweepExpired(context.Background(), 15*time.Minute); err != nil || n != 2 {
			t.Errorf("swept %d, %v", n, err)
		}
	})
}

func TestFlowsAreSingleUseAndExpire(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		ctx := context.Background()
		f := FlowRecord{ID: "flow-1", State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/uploads/new", Data: []byte(`{"x":1}`)}
		if err := db.PutFlow(ctx, f); err != nil {
			t.Fatal(err)
		}
		got, err := db.TakeFlow(ctx, "flow-1", 10*time.Minute)
		if err != nil || got.State != "s" || got.ReturnTo != "/uploads/new" || string(got.Data) != `{"x":1}` {
			t.Fatalf("take: %+v %v", got, err)
		}
		if _, err := db.TakeFlow(ctx, "flow-1", 10*time.Minute); err != ErrNotFound {
			t.Errorf("second take: %v", err)
		}
		db.PutFlow(ctx, FlowRecord{ID: "flow-2", State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/"})
		clk.advance(11 * time.Minute)
		if _, err := db.TakeFlow(ctx, "flow-2", 10*time.Minute); err != ErrNotFound {
			t.Errorf("expired flow taken: %v", err)
		}
	})
}

func TestFormKeyClaimedExactlyOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		ctx := context.Background()
		if err := db.IssueFormKey(ctx, "key", "session-a", time.Hour); err != nil {
			t.Fatal(err)
		}
		if ok, _, _, _ := db.ClaimFormKey(ctx, "key", "session-b"); ok {
			t.Fatal("another session claimed the key")
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, _, _, err := db.ClaimFormKey(ctx, "key", "session-a")
				if err != nil {
					t.Error(err)
				}
				if ok {
					wins.Add(1)
				}
			}()
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d claims won, want 1", wins.Load())
		}
		if ok, state, _, _ := db.ClaimFormKey(ctx, "key", "session-a"); ok || state != FormKeyInProgress {
			t.Errorf("repeat while in progress: %v %q", ok, state)
		}
		db.CompleteFormKey(ctx, "key", "activity-1")
		if ok, state, ref, _ := db.ClaimFormKey(ctx, "key", "session-a"); ok || state != FormKeyDone || ref != "activity-1" {
			t.Errorf("repeat when done: %v %q %q", ok, state, ref)
		}
		db.IssueFormKey(ctx, "k2", "session-a", time.Hour)
		db.ClaimFormKey(ctx, "k2", "session-a")
		db.ReleaseFormKey(ctx, "k2")
		if ok, _, _, _ := db.ClaimFormKey(ctx, "k2", "session-a"); !ok {
			t.Errorf("released key cannot be claimed")
		}
		db.IssueFormKey(ctx, "k3", "session-a", time.Minute)
		clk.advance(2 * time.Minute)
		if ok, _, _, _ := db.ClaimFormKey(ctx, "k3", "session-a"); ok {
			t.Errorf("expired key claimed")
		}
	})
}

func TestRateLimitCounts(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		ctx := context.Background()
		clk.advance(10 * time.Second) // 12:00:10 inside a one-minute window
		for i := 0; i < 3; i++ {
			if ok, _, err := db.Allow(ctx, "create:ip:1.2.3.4", 3, time.Minute); !ok || err != nil {
				t.Fatalf("call %d refused: %v", i+1, err)
			}
		}
		ok, retry, _ := db.Allow(ctx, "create:ip:1.2.3.4", 3, time.Minute)
		if ok || retry != 50*time.Second {
			t.Errorf("fourth call: ok=%v retry=%s", ok, retry)
		}
		if ok, _, _ := db.Allow(ctx, "create:ip:5.6.7.8", 3, time.Minute); !ok {
			t.Errorf("another bucket refused")
		}
		clk.advance(time.Minute)
		if ok, _, _ := db.Allow(ctx, "create:ip:1.2.3.4", 3, time.Minute); !ok {
			t.Errorf("new window refused")
		}
	})
}

func TestActivityRecordListPurge(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *clock) {
		ctx := context.Background()
		for i := 0; i < 5; i++ {
			clk.advance(time.Second)
			a := &Activity{TenantID: "t1", ObjectID: fmt.Sprintf("o%d", i%2), ActorName: "A", ActorUPN: "a@x", Action: "create-upload",
				Outcome: []string{"success", "failure"}[i%2], Summary: fmt.Sprint(i), StatusCode: 201, Detail: []byte(`{}`)}
			if err := db.RecordActivity(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		db.RecordActivity(ctx, &Activity{TenantID: "t2", Action: "create-upload", Outcome: "success"})
		page, next, err := db.ListActivity(ctx, ActivityFilter{TenantID: "t1", Limit: 2})
		if err != nil || len(page) != 2 || page[0].Summary != "4" || next == "" {
			t.Fatalf("first page: %v %q %v", page, next, err)
		}
		page2, _, _ := db.ListActivity(ctx, ActivityFilter{TenantID: "t1", Limit: 2, Before: next})
		if len(page2) != 2 || page2[0].Summary != "2" {
			t.Errorf("second page: %+v", page2)
		}
		failures, _, _ := db.ListActivity(ctx, ActivityFilter{TenantID: "t1", Outcome: "failure"})
		if len(failures) != 2 {
			t.Errorf("failures: %d", len(failures))
		}
		got, err := db.GetActivity(ctx, "t1", page[0].ID)
		if err != nil || got.Summary != "4" || string(got.Detail) != `{}` || !got.At.Equal(page[0].At) {
			t.Errorf("get: %+v %v", got, err)
		}
		if _, err := db.GetActivity(ctx, "t2", page[0].ID); err != ErrNotFound {
			t.Errorf("another tenant read it: %v", err)
		}
		n, _ := db.PurgeActivity(ctx, clk.now().Add(-2*time.Second))
		if n != 2 { // the activities at 12:00:01 and 12:00:02
			t.Errorf("purged %d", n)
		}
	})
}
