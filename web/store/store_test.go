package store

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

// location is one fresh, empty state database: a temporary directory for SQLite, a schema of
// its own for PostgreSQL.
type location struct {
	options Options        // what Open needs to reach it
	raw     func() *sql.DB // a plain connection to it, for arranging and inspecting rows
}

func (l location) open(t *testing.T, clk *testkit.Clock) *DB {
	t.Helper()
	o := l.options
	o.Now = clk.Now
	db, err := Open(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// eachEngine runs a contract test on SQLite always, and on PostgreSQL when
// AUTOPILOTDESK_TEST_DATABASE_URL is set (in CI it must be).
func eachEngine(t *testing.T, test func(t *testing.T, loc location)) {
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		test(t, location{
			options: Options{DataDir: dir},
			raw: func() *sql.DB {
				raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "autopilotdesk.db")+"?_pragma=busy_timeout(5000)")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { raw.Close() })
				return raw
			},
		})
	})
	t.Run("postgres", func(t *testing.T) {
		withSchema := testkit.PostgresSchema(t)
		test(t, location{
			options: Options{DatabaseURL: withSchema},
			raw: func() *sql.DB {
				raw, err := sql.Open("pgx", withSchema)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { raw.Close() })
				return raw
			},
		})
	})
}

// eachDB runs a contract test against a freshly opened database on each engine.
func eachDB(t *testing.T, test func(t *testing.T, db *DB, clk *testkit.Clock)) {
	eachEngine(t, func(t *testing.T, loc location) {
		clk := testkit.NewClock()
		test(t, loc.open(t, clk), clk)
	})
}

// fileRig is a SQLite state database in a folder of its own, for tests of what its files
// still hold; the checkpoints the background loop makes are left to the test.
type fileRig struct {
	db  *DB
	clk *testkit.Clock
	dir string
}

func openFileRig(t *testing.T) *fileRig {
	t.Helper()
	f := &fileRig{clk: testkit.NewClock(), dir: t.TempDir()}
	db, err := Open(context.Background(), Options{DataDir: f.dir, Now: f.clk.Now, checkpointEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for db.LogTruncatePending() { // the one at start
		db.scrub(context.Background())
	}
	f.db = db
	return f
}

// holding names the database files in which marker can still be read.
func (f *fileRig) holding(marker []byte) []string {
	var where []string
	files, _ := filepath.Glob(filepath.Join(f.dir, "autopilotdesk.db*"))
	for _, file := range files {
		b, _ := os.ReadFile(file)
		if bytes.Contains(b, marker) {
			where = append(where, filepath.Base(file))
		}
	}
	return where
}

// checkpoint does what a tick of the background loop would: a checkpoint, then scrubbing until
// the write-ahead log is emptied.
func (f *fileRig) checkpoint() {
	f.db.checkpoint()
	for i := 0; f.db.LogTruncatePending() && i < 50; i++ {
		time.Sleep(20 * time.Millisecond)
		f.db.scrub(context.Background())
	}
}

// count counts rows for a test's assertions.
func count(t *testing.T, db *DB, query string, args ...any) int {
	t.Helper()
	var n int
	if err := db.queryRow(context.Background(), query, args, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestMigrationsRecordedAndIdempotent(t *testing.T) {
	eachEngine(t, func(t *testing.T, loc location) {
		ctx := context.Background()
		latest := len(migrations) - 1
		if loc.options.DatabaseURL == "" {
			// One process per SQLite folder: a second Open is refused while the first is open.
			first := loc.open(t, testkit.NewClock())
			if db, err := Open(ctx, loc.options); !errors.Is(err, ErrDataDirInUse) {
				if err == nil {
					db.Close()
				}
				t.Fatalf("second Open of one SQLite folder: %v, want ErrDataDirInUse", err)
			} else if !strings.Contains(err.Error(), loc.options.DataDir) {
				t.Errorf("the refusal does not name the folder: %v", err) // the desk adds what to do (TestSecondDeskOnOneDataFolderIsAClearError)
			}
			first.Close()
		} else {
			// Replicas starting at once: every Open succeeds and each migration is applied once.
			var wg sync.WaitGroup
			errs := make(chan error, 4)
			for range 4 {
				wg.Go(func() {
					db, err := Open(ctx, loc.options)
					if err == nil {
						db.Close()
					}
					errs <- err
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				if err != nil {
					t.Fatalf("concurrent open: %v", err)
				}
			}
		}
		db := loc.open(t, testkit.NewClock())
		if v, err := db.schemaVersion(ctx); err != nil || v != latest {
			t.Fatalf("schema version %d, %v; want %d", v, err, latest)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM schema_migrations`); n != latest {
			t.Errorf("%d migrations recorded, want %d", n, latest)
		}
		if err := db.migrate(ctx); err != nil {
			t.Fatalf("migrate again: %v", err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM schema_migrations`); n != latest {
			t.Errorf("after migrating again %d migrations recorded, want %d", n, latest)
		}
	})
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	eachEngine(t, func(t *testing.T, loc location) {
		db := loc.open(t, testkit.NewClock())
		if _, err := db.exec(context.Background(), `INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, len(migrations)); err != nil {
			t.Fatal(err)
		}
		db.Close()
		if db2, err := Open(context.Background(), loc.options); err == nil {
			db2.Close()
			t.Fatal("opened a schema newer than this build")
		} else if tooNew := (*SchemaTooNewError)(nil); !errors.As(err, &tooNew) || tooNew.Found != len(migrations) || tooNew.Known != len(migrations)-1 {
			t.Errorf("error does not say which versions: %v", err)
		}
	})
}

// A database created by the first release (migration 1 only) is upgraded in place and keeps
// its signed-in sessions.
func TestUpgradeFromFirstRelease(t *testing.T) {
	eachEngine(t, func(t *testing.T, loc location) {
		raw := loc.raw()
		blob := "BLOB"
		if loc.options.DatabaseURL != "" {
			blob = "BYTEA"
		}
		stmts := append([]string{`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`}, migrations[1]...)
		for _, s := range stmts {
			if _, err := raw.Exec(strings.ReplaceAll(s, "{{blob}}", blob)); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := raw.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0)`); err != nil {
			t.Fatal(err)
		}
		clk := testkit.NewClock()
		dialect := &DB{driver: driverSQLite}
		if loc.options.DatabaseURL != "" {
			dialect.driver = driverPostgres
		}
		// A session row as the first release wrote it.
		id := newSessionID()
		data := encodeValues(t, map[any]any{"k": "kept"})
		now := ms(clk.Now())
		if _, err := raw.Exec(dialect.rebind(`INSERT INTO sessions (id_hash, user_key, data, created_at, last_seen_at, expires_at) VALUES (?, ?, ?, ?, ?, ?)`),
			hashID(id), "tid:oid", data, now, now, now+int64(time.Hour/time.Millisecond)); err != nil {
			t.Fatal(err)
		}
		db := loc.open(t, clk)
		if v, _ := db.schemaVersion(context.Background()); v != len(migrations)-1 {
			t.Fatalf("upgraded to version %d", v)
		}
		if got := db.Schema(); got.From != 1 || got.To != len(migrations)-1 {
			t.Errorf("the upgrade is said to be from %d to %d; want from 1 to %d", got.From, got.To, len(migrations)-1)
		}
		s := load(t, db.SessionStore(SessionOptions{}), cookieFor(id))
		if s.IsNew || s.Values["k"] != "kept" {
			t.Errorf("session lost in the upgrade: new=%v values=%v", s.IsNew, s.Values)
		}
	})
}

// Form keys claimed and completed under schema 2 keep their meaning under schema 3, where the
// activity row says which key it completed.
func TestUpgradeKeepsFormKeys(t *testing.T) {
	eachEngine(t, func(t *testing.T, loc location) {
		raw := loc.raw()
		dialect := &DB{driver: driverSQLite}
		blob := "BLOB"
		if loc.options.DatabaseURL != "" {
			dialect.driver, blob = driverPostgres, "BYTEA"
		}
		stmts := []string{`CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied_at BIGINT NOT NULL)`}
		stmts = append(append(stmts, migrations[1]...), migrations[2]...)
		stmts = append(stmts, `INSERT INTO schema_migrations (version, applied_at) VALUES (1, 0), (2, 0)`)
		for _, s := range stmts {
			if _, err := raw.Exec(strings.ReplaceAll(s, "{{blob}}", blob)); err != nil {
				t.Fatal(err)
			}
		}
		clk := testkit.NewClock()
		expires := ms(clk.Now().Add(time.Hour))
		for _, q := range []struct {
			sql  string
			args []any
		}{
			{`INSERT INTO activity (id, at, tenant_id, object_id, actor_name, actor_upn, action, target, outcome, summary, status_code, request_id, client_request_id, detail)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				[]any{"act-1", ms(clk.Now()), "t", "o", "Megan", "megan@contoso.example", "create-upload", "", "success", "", 201, "", "", nil}},
			{`INSERT INTO form_keys (key_hash, session_hash, state, result_ref, expires_at) VALUES (?, ?, ?, ?, ?)`,
				[]any{hashID("done-key"), hashID("s"), "done", "act-1", expires}},
			{`INSERT INTO form_keys (key_hash, session_hash, state, result_ref, expires_at) VALUES (?, ?, ?, ?, ?)`,
				[]any{hashID("running-key"), hashID("s"), "in-progress", "", expires}},
		} {
			if _, err := raw.Exec(dialect.rebind(q.sql), q.args...); err != nil {
				t.Fatal(err)
			}
		}
		db := loc.open(t, clk)
		ctx := context.Background()
		if ok, state, ref, err := db.ClaimFormKey(ctx, "done-key", "s", time.Hour); ok || state != FormKeyDone || ref != "act-1" || err != nil {
			t.Errorf("a completed key after the upgrade: %v %q %q %v", ok, state, ref, err)
		}
		if ok, state, _, err := db.ClaimFormKey(ctx, "running-key", "s", time.Hour); ok || state != FormKeyInProgress || err != nil {
			t.Errorf("a running key after the upgrade: %v %q %v", ok, state, err)
		}
		if ok, _, _, err := db.ClaimFormKey(ctx, "new-key", "s", time.Hour); !ok || err != nil {
			t.Errorf("a new key after the upgrade: %v %v", ok, err)
		}
	})
}

// A state database file that is not one (overwritten, or damaged) is named, with what to do.
func TestOpenNamesAFileThatIsNotADatabase(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "autopilotdesk.db")
	if err := os.WriteFile(file, []byte(strings.Repeat("not a database, a note someone saved here\n", 200)), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Options{DataDir: dir})
	if err == nil || !strings.Contains(err.Error(), file+" is not a SQLite database") || !strings.Contains(err.Error(), "backup") {
		t.Fatalf("want the file named, got %v", err)
	}
}

func TestOpenGivesUpOnAnUnreachableServer(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing listens there now
	start := time.Now()
	_, err = Open(context.Background(), Options{
		DatabaseURL: "postgres://desk@" + addr + "/desk?sslmode=disable&connect_timeout=1",
		StartupWait: 300 * time.Millisecond,
	})
	if err == nil || !strings.Contains(err.Error(), "did not answer within") {
		t.Fatalf("want a clear give-up error, got %v", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("gave up after %s, want about the 300ms startup wait", elapsed)
	}
}

// A desk stopped while it waits for PostgreSQL says so, instead of claiming the whole wait ran out.
func TestOpenStoppedWhileWaitingSaysSo(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = Open(ctx, Options{DatabaseURL: "postgres://desk@" + addr + "/desk?sslmode=disable&connect_timeout=1", StartupWait: time.Minute})
	if err == nil || !strings.Contains(err.Error(), "stopped while waiting for PostgreSQL") || strings.Contains(err.Error(), "within 1m") {
		t.Fatalf("want the stop said, got %v", err)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("stopped after %s, want about 300ms", elapsed)
	}
}

func TestRebind(t *testing.T) {
	pg := &DB{driver: driverPostgres}
	if got := pg.rebind(`SELECT a FROM t WHERE b = ? AND c IN (?, ?)`); got != `SELECT a FROM t WHERE b = $1 AND c IN ($2, $3)` {
		t.Errorf("postgres: %s", got)
	}
	lite := &DB{driver: driverSQLite}
	if got := lite.rebind(`b = ?`); got != `b = ?` {
		t.Errorf("sqlite: %s", got)
	}
}

func (db *DB) schemaVersion(ctx context.Context) (int, error) {
	var v int
	err := db.queryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`, nil, &v)
	return v, err
}

// A desk that starts while PostgreSQL accepts no writes (a fail-over under way, a standby named
// by mistake) waits for writes as for a server that does not answer yet, then gives up naming the
// cause and what to correct, rather than failing at once on its first migration.
func TestOpenWaitsForAPostgreSQLThatAcceptsNoWrites(t *testing.T) {
	var waited error
	start := time.Now()
	_, err := Open(context.Background(), Options{
		DatabaseURL: testkit.PostgresSchema(t) + "&default_transaction_read_only=on",
		StartupWait: 500 * time.Millisecond,
		Waiting:     func(_ time.Duration, err error) { waited = err },
	})
	if err == nil || !errors.Is(err, ErrDatabaseReadOnly) || !strings.Contains(err.Error(), "accepted no writes for 500ms") ||
		!strings.Contains(err.Error(), "AUTOPILOTDESK_DATABASE_URL") {
		t.Fatalf("want a clear give-up error, got %v", err)
	}
	if waited == nil || time.Since(start) < 500*time.Millisecond {
		t.Errorf("gave up after %s without waiting (said %v)", time.Since(start), waited)
	}
}
