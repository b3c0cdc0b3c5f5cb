package store

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"autopilotdesk/devtools/testkit"
)

// makeReadOnly stops this process from writing path (an immutable flag when running as root,
// whom permissions do not stop; the permissions otherwise) and returns the undo.
func makeReadOnly(t *testing.T, path string) (undo func()) {
	t.Helper()
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
			t.Skipf("cannot make %s immutable: %v %s", path, err, out)
		}
		return func() { exec.Command("chattr", "-i", path).Run() }
	}
	info, _ := os.Stat(path)
	if err := os.Chmod(path, 0o400); err != nil {
		t.Fatal(err)
	}
	return func() { os.Chmod(path, info.Mode().Perm()) }
}

// The database and its -wal and -shm files are created readable and writable by the desk's
// user alone, and an existing file is made so.
func TestSQLiteFilesAreOwnerOnly(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "autopilotdesk.db")
	if err := os.WriteFile(path, nil, 0o644); err != nil { // as an older release left it
		t.Fatal(err)
	}
	db := location{options: Options{DataDir: dir}}.open(t, testkit.NewClock())
	if err := db.RecordActivity(context.Background(), &Activity{TenantID: "t", Action: "sync"}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"autopilotdesk.db", "autopilotdesk.db-wal", "autopilotdesk.db-shm", "autopilotdesk.lock"} {
		info, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if perm := info.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s is %v, want -rw-------", name, perm)
		}
	}
}

// Check notices the SQLite file removed or replaced under the desk (for good), and the file made
// read-only (until it is writable again).
func TestCheckNoticesALostOrReadOnlySQLiteFile(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		lose func(t *testing.T, path string) (undo func())
		want error
	}{
		{"removed", func(t *testing.T, path string) func() {
			for _, p := range []string{path, path + "-wal", path + "-shm"} {
				os.Remove(p)
			}
			return nil
		}, ErrDatabaseLost},
		{"log removed", func(t *testing.T, path string) func() { os.Remove(path + "-wal"); return nil }, ErrDatabaseLost},
		{"replaced", func(t *testing.T, path string) func() {
			os.Rename(path, path+".old")
			os.WriteFile(path, nil, 0o600)
			return nil
		}, ErrDatabaseLost},
		{"read-only", func(t *testing.T, path string) func() { return makeReadOnly(t, path) }, ErrDatabaseReadOnly},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			db := location{options: Options{DataDir: dir}}.open(t, testkit.NewClock())
			if err := db.Check(ctx); err != nil {
				t.Fatalf("a fresh database: %v", err)
			}
			path := filepath.Join(dir, "autopilotdesk.db")
			undo := tc.lose(t, path)
			err := db.Check(ctx)
			var ce *CheckError
			if !errors.Is(err, tc.want) || !errors.As(err, &ce) || ce.Path == "" || ce.Recover == "" {
				t.Fatalf("Check = %v, want %v with a path and a way back", err, tc.want)
			}
			if undo != nil {
				undo()
				if err := db.Check(ctx); err != nil {
					t.Errorf("writable again: %v", err)
				}
			} else if err := db.Check(ctx); !errors.Is(err, ErrDatabaseLost) {
				t.Errorf("a lost file came back by itself: %v", err)
			}
		})
	}
}
