package store

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

// openSQLite opens a fresh SQLite database with its session cache of the given size.
func openSQLite(t *testing.T, cacheSize int) *DB {
	t.Helper()
	db, err := Open(context.Background(), Options{DataDir: t.TempDir(), Now: testkit.NewClock().Now, SessionCacheSize: cacheSize})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestCachedSessionIsServedWithoutReadingTheRow(t *testing.T) {
	db := openSQLite(t, 0)
	st := db.SessionStore(SessionOptions{})
	_, ck := newSession(t, st, map[any]any{"csrf": "first"})
	// Written behind the store's back (which the data folder's lock rules out in use): a load
	// that still sees "first" came from memory.
	if _, err := db.sql.Exec(`UPDATE sessions SET data = ? WHERE id_hash = ?`, encodeValues(t, map[any]any{"csrf": "behind"}), hashID(ck.Value)); err != nil {
		t.Fatal(err)
	}
	if got := load(t, st, ck).Values["csrf"]; got != "first" {
		t.Errorf("loaded %v, want the cached value", got)
	}
	if n := cached(db); n != 1 {
		t.Errorf("%d cached sessions, want 1", n)
	}
}

func TestCachedSessionValuesAreCopies(t *testing.T) {
	db := openSQLite(t, 0)
	st := db.SessionStore(SessionOptions{})
	_, ck := newSession(t, st, map[any]any{"csrf": "kept"})
	s := load(t, st, ck)
	s.Values["csrf"] = "changed but never saved"
	s.Values["extra"] = "x"
	again := load(t, st, ck)
	if again.Values["csrf"] != "kept" || again.Values["extra"] != nil {
		t.Errorf("an unsaved change leaked into the cache: %v", again.Values)
	}
	again.Values["csrf"] = "saved"
	if err := again.Save(httptest.NewRequest(http.MethodGet, "/", nil), httptest.NewRecorder()); err != nil {
		t.Fatal(err)
	}
	again.Values["csrf"] = "changed after saving"
	if got := load(t, st, ck).Values["csrf"]; got != "saved" {
		t.Errorf("loaded %v after a save, want the saved value", got)
	}
}

func TestSessionCacheIsBounded(t *testing.T) {
	db := openSQLite(t, 2)
	st := db.SessionStore(SessionOptions{})
	var cookies []*http.Cookie
	for _, v := range []string{"a", "b", "c", "d"} {
		_, ck := newSession(t, st, map[any]any{"csrf": v})
		cookies = append(cookies, ck)
	}
	if n := cached(db); n > 2 {
		t.Errorf("%d cached sessions, bound 2", n)
	}
	for i, v := range []string{"a", "b", "c", "d"} {
		if s := load(t, st, cookies[i]); s.IsNew || s.Values["csrf"] != v {
			t.Errorf("session %s: new=%v values=%v", v, s.IsNew, s.Values)
		}
	}
}

func TestSessionCacheOff(t *testing.T) {
	db := openSQLite(t, -1)
	st := db.SessionStore(SessionOptions{})
	_, ck := newSession(t, st, map[any]any{"csrf": "v"})
	if db.sessionCache != nil || load(t, st, ck).Values["csrf"] != "v" {
		t.Error("a negative size must turn the cache off and still serve sessions")
	}
}

// A copy read from the database before a bulk delete must never be cached after it.
func TestCacheRefusesCopiesReadBeforeABulkDelete(t *testing.T) {
	c := newSessionCache(8)
	gen := c.generation()
	c.removeWhere(func(sessionRow) bool { return true })
	c.put("h", sessionRow{userKey: "t:o"}, gen)
	if _, ok := c.get("h"); ok {
		t.Error("cached a copy read before the delete")
	}
	c.put("h", sessionRow{userKey: "t:o"}, c.generation())
	if _, ok := c.get("h"); !ok {
		t.Error("a fresh copy was not cached")
	}
}

func TestUnreachableDatabaseIsMarkedUnavailable(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		_, _, err := db.ListActivity(ctx, ActivityFilter{TenantID: "t", Limit: 10})
		var u interface{ Unavailable() bool }
		if errors.As(err, &u) {
			t.Fatalf("a working database is marked unavailable: %v", err)
		}
		if _, err := db.TakeFlow(ctx, "no-such-flow", "s", time.Minute); !errors.Is(err, ErrNotFound) || errors.As(err, &u) {
			t.Errorf("not found: %v", err)
		}
		db.Close()
		_, _, err = db.ListActivity(ctx, ActivityFilter{TenantID: "t", Limit: 10})
		if !errors.As(err, &u) || !u.Unavailable() {
			t.Errorf("closed database: %v is not marked unavailable", err)
		}
	})
}

// Commits never copy the write-ahead log into the database file themselves; the background
// checkpoints do, so the file grows only through them.
func TestBackgroundCheckpointsCopyTheLog(t *testing.T) {
	dir := t.TempDir()
	open := func(every time.Duration) *DB {
		db, err := Open(context.Background(), Options{DataDir: dir, checkpointEvery: every})
		if err != nil {
			t.Fatal(err)
		}
		return db
	}
	size := func() int64 {
		fi, err := os.Stat(filepath.Join(dir, "autopilotdesk.db"))
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	// 6 MB in 150 commits: past SQLite's own checkpoint threshold (1,000 pages of 4 KB), which
	// a commit would otherwise cross and pay for.
	write := func(db *DB) {
		for i := range 150 {
			a := &Activity{TenantID: "t", Action: "create-upload", Outcome: "success", Detail: []byte(strings.Repeat("x", 40000)), Summary: fmt.Sprint(i)}
			if err := db.RecordActivity(context.Background(), a); err != nil {
				t.Fatal(err)
			}
		}
	}

	db := open(time.Hour)
	before := size()
	write(db)
	if after := size(); after != before {
		t.Errorf("a commit wrote the database file (%d -> %d bytes): it checkpointed on a request's time", before, after)
	}
	db.Close()

	db = open(10 * time.Millisecond)
	defer db.Close()
	before = size()
	write(db)
	deadline := time.Now().Add(5 * time.Second)
	for size() < before+150*40000 {
		if time.Now().After(deadline) {
			t.Fatalf("no background checkpoint: database file %d bytes, log not copied", size())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Statements on SQLite run with a context that cannot be cancelled; the wait for a connection
// is still bounded by the statement timeout, and says the database is unavailable.
func TestWaitForAConnectionIsBounded(t *testing.T) {
	db, err := Open(context.Background(), Options{DataDir: t.TempDir(), StatementTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.writerSlots <- struct{}{} // a write that does not end
	start := time.Now()
	err = db.RecordActivity(context.Background(), &Activity{TenantID: "t", Action: "create-upload"})
	var u interface{ Unavailable() bool }
	if !errors.As(err, &u) || time.Since(start) > 2*time.Second {
		t.Errorf("after %s: %v, want the database marked unavailable at the timeout", time.Since(start), err)
	}
	if _, err := db.SweepExpired(context.Background(), time.Hour); err == nil {
		t.Error("a write went through while the writer was taken")
	}
	<-db.writerSlots
	if err := db.RecordActivity(context.Background(), &Activity{TenantID: "t", Action: "create-upload"}); err != nil {
		t.Errorf("after the writer was released: %v", err)
	}
	// Reads do not wait for the writer.
	db.writerSlots <- struct{}{}
	if _, _, err := db.ListActivity(context.Background(), ActivityFilter{TenantID: "t"}); err != nil {
		t.Errorf("a read waited for the writer: %v", err)
	}
	<-db.writerSlots
}

// On SQLite rate-limit counts live in memory: an event writes nothing, and the sweep forgets
// windows that ended.
func TestSQLiteRateCountsStayInMemory(t *testing.T) {
	clk := testkit.NewClock()
	db, err := Open(context.Background(), Options{DataDir: t.TempDir(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	for range 2 {
		if ok, _, err := db.Allow(ctx, "create:user:t:o", 5, time.Minute); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if n := count(t, db, `SELECT COUNT(*) FROM rate_counters`); n != 0 {
		t.Errorf("%d counter rows written", n)
	}
	if n := len(db.counters.counts); n != 1 {
		t.Errorf("%d windows counted, want 1", n)
	}
	clk.Advance(time.Minute)
	if _, err := db.SweepExpired(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := len(db.counters.counts); n != 0 {
		t.Errorf("%d windows left after they ended", n)
	}
}

func TestOwnsTheDataFolder(t *testing.T) {
	if db := openSQLite(t, 0); !db.OwnsDataDir() {
		t.Error("a SQLite database on a local folder does not hold its lock")
	}
}

// cached is how many decoded sessions db keeps in memory.
func cached(db *DB) int {
	c := db.sessionCache
	if c == nil {
		return 0
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	return len(c.rows)
}
