package main

import (
	"context"
	"database/sql"
	"io"
	"log/slog"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"autopilotdesk/devtools/testkit"
)

// startOn starts the demo desk on the SQLite data folder dir, stops it, and returns what it
// logged and the error that kept it from starting.
func startOn(t *testing.T, dir string) (string, error) {
	t.Helper()
	cfg, err := loadConfig(nil, testkit.Env(map[string]string{"AUTOPILOTDESK_DATA_DIR": dir}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), appOptions{})
	if a != nil {
		a.Close()
	}
	return logs.String(), err
}

// The start-up log names the state database's schema version: created at the first start, up to
// date at the next. A database that a newer release has migrated is refused with the database,
// both versions and what the operator can do: start the newer release, or restore the backup
// taken before the upgrade.
func TestStartUpNamesTheSchemaVersion(t *testing.T) {
	dir := t.TempDir()
	logs, err := startOn(t, dir)
	if err != nil {
		t.Fatal(err)
	}
	if line := logLine(logs, `"msg":"state database created"`); !strings.Contains(line, `"schema_version":`) || !strings.Contains(line, `"took_ms":`) {
		t.Errorf("the first start does not say it created the schema, at which version:\n%s", logs)
	}
	if logs, _ = startOn(t, dir); !strings.Contains(logLine(logs, `"msg":"state database schema up to date"`), `"schema_version":`) {
		t.Errorf("a start on a current database does not name its version:\n%s", logs)
	}

	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "autopilotdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	var latest int
	if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES (?, 0)`, latest+1); err != nil {
		t.Fatal(err)
	}
	db.Close()
	_, err = startOn(t, dir)
	if err == nil {
		t.Fatal("started on a database a newer release migrated")
	}
	for _, want := range []string{filepath.Join(dir, "autopilotdesk.db"), "schema version " + strconv.Itoa(latest+1), "versions up to " + strconv.Itoa(latest),
		"newer release", "restore the backup taken before the upgrade"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the refusal lacks %q: %v", want, err)
		}
	}
	if strings.Contains(err.Error(), "store:") {
		t.Errorf("the refusal speaks of the desk's internals: %v", err)
	}
}

// A migration that fails leaves the schema as it was, and the desk says so: which database, from
// and to which version, the migration and its cause, that the earlier release still starts on it,
// and what to do. (Here the database says migrations 9 and later never ran, though their indexes
// are there, as a database changed outside the desk might.)
func TestFailedUpgradeSaysNothingChangedAndWhatToDo(t *testing.T) {
	dir := t.TempDir()
	if _, err := startOn(t, dir); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "autopilotdesk.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var latest int
	if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&latest); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`DELETE FROM schema_migrations WHERE version >= 9`); err != nil {
		t.Fatal(err)
	}
	_, err = startOn(t, dir)
	if err == nil {
		t.Fatal("started although a migration failed")
	}
	for _, want := range []string{"upgrading SQLite " + filepath.Join(dir, "autopilotdesk.db") + " from schema version 8 to " + strconv.Itoa(latest) + " failed at migration 9 (",
		"activity_tenant_target already exists", "nothing was changed: it is still at version 8", "restore the backup taken before the upgrade"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q: %v", want, err)
		}
	}
	var now int
	if err := db.QueryRow(`SELECT MAX(version) FROM schema_migrations`).Scan(&now); err != nil || now != 8 {
		t.Errorf("after the failed upgrade the schema is at version %d, %v; want 8", now, err)
	}
}
