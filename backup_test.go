package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/views"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// `autopilotdesk backup FILE` copies the state database of a desk that runs, mid-import and
// holding its data folder's lock: a desk started on the copy finds every change committed before
// the backup began (the import's rows, and what Graph answered for the batches sent so far), none half-made,
// and looks up in Graph, rather than sends, the batches that were still queued.
// It never writes over a file, and a desk on PostgreSQL is sent to pg_dump.
func TestBackupOfARunningDeskMidImport(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	d.app.demo.Emulator.SetFaults(emulator.Faults{LatencyMin: 150 * time.Millisecond, LatencyMax: 150 * time.Millisecond, Methods: []string{http.MethodPost}})
	b := d.signedInBrowser("admin", d.browser)
	data, _ := deviceCSV("SN-BACKUP", 600)
	job := draftOf(t, d, b, data)
	id := strings.TrimPrefix(job, views.ImportJobURL(""))
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	counts := func(db *store.DB) importer.Counts {
		rows, err := db.ImportRows(context.Background(), id, store.RowFilter{})
		if err != nil {
			t.Fatalf("read the import's rows: %v", err)
		}
		return importer.Count(rows)
	}
	waitRows(t, d, id, "a batch sent", func(c importer.Counts) bool { return c.Sent > 0 })
	before := counts(d.app.db)

	file := filepath.Join(t.TempDir(), "desk-backup.db")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--data-dir", d.app.cfg.DataDir, file}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("backup of a running desk: %v\n%s", err, out.String())
	}
	after := counts(d.app.db)
	if before.Final() == before.Rows {
		t.Fatalf("the import finished before the backup: %+v", before)
	}
	if !strings.Contains(out.String(), "Wrote a consistent copy of ") || !strings.Contains(out.String(), file) || !strings.Contains(out.String(), "schema version") {
		t.Errorf("printed %q", out.String())
	}
	if fi, err := os.Stat(file); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("the copy: %v, mode %v; want readable by its owner only (it holds tokens)", err, fi.Mode())
	}

	restored := t.TempDir()
	copied, _ := os.ReadFile(file)
	os.WriteFile(filepath.Join(restored, "autopilotdesk.db"), copied, 0o600)
	db, err := store.Open(context.Background(), store.Options{DataDir: restored})
	if err != nil {
		t.Fatalf("open the copy: %v", err)
	}
	defer db.Close()
	got, r := counts(db), db.Restored()
	if got.Rows != 600 || got.Sent < before.Sent || got.Final() < before.Final() || got.Final() > after.Final() {
		t.Errorf("the copy's import: %+v; before the backup %+v, after %+v", got, before, after)
	}
	// What the copy had not sent yet, the desk it was taken from may have sent since: the
	// restored desk looks it up instead of sending it.
	if got.Queued != 0 || r.TakenAt.IsZero() || r.Devices == 0 || r.Devices > got.Unknown {
		t.Errorf("the copy's import: %+v, taken up as a backup with %+v; want every queued row looked up", got, r)
	}
	if j, err := db.GetImportJob(context.Background(), demoidp.DemoTenantID, id); err != nil || j.State == "draft" {
		t.Errorf("the copy's job: %+v, %v", j, err)
	}

	if err := run(context.Background(), []string{"backup", "--data-dir", d.app.cfg.DataDir, file}, func(string) string { return "" }, &out, &out); err == nil ||
		!strings.Contains(err.Error(), "already exists") {
		t.Errorf("a second backup to the same file: %v", err)
	}
	if again, _ := os.ReadFile(file); !bytes.Equal(again, copied) {
		t.Error("the existing file was changed")
	}
	err = run(context.Background(), []string{"backup", "x.db"}, func(k string) string {
		if k == "AUTOPILOTDESK_DATABASE_URL" {
			return "postgres://desk@127.0.0.1/desk"
		}
		return ""
	}, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "pg_dump") {
		t.Errorf("a desk on PostgreSQL: %v", err)
	}
	if err := run(context.Background(), []string{"backup", "--data-dir", t.TempDir(), filepath.Join(t.TempDir(), "b.db")}, func(string) string { return "" }, &out, &out); !errors.Is(err, store.ErrNoDatabase) {
		t.Errorf("a folder without a database: %v", err)
	}
}

// A desk restored from a backup taken while a bulk change ran sends none of the device changes
// the backup had queued or on their way: the desk it was taken from went on sending after the
// backup. It reads each such device in Graph instead: one that has the change is changed, one
// that does not is "outcome unknown — check" in words that say the backup had not sent it, and
// its start-up log counts them.
func TestRestoredBackupSendsNoBulkChangeItHadNotSent(t *testing.T) {
	t.Parallel()
	cl := startClusterWith(t, clusterOptions{sqlite: true, env: map[string]string{"AUTOPILOTDESK_GRAPH_WRITE_BUDGET": "2/2s"}})
	d := cl.onDesks("A")
	b := d.signedInBrowser("admin", cl.browser)
	ids := seedFleet(cl.emu, "SN-RESTORE", 6)
	job := d.bulkDraft(b, "group-tag", "Kiosk", ids...)
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	done := func() int {
		devices, err := cl.byName["A"].db.BulkDevices(context.Background(), job)
		if err != nil {
			t.Fatal(err)
		}
		return bulk.Count(devices).Done
	}
	waitUntil := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); done() < n; time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("the bulk change did not change %d devices", n)
			}
		}
	}
	waitUntil(1)
	doneBefore := done()
	file := filepath.Join(t.TempDir(), "desk-backup.db")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--data-dir", cl.env["AUTOPILOTDESK_DATA_DIR"], file}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("backup of a running desk: %v\n%s", err, out.String())
	}
	doneAfter := done()
	waitUntil(doneAfter + 2) // the desk goes on after the backup, one device every 2 seconds
	cl.stop("A")
	before := writesPerDevice(t, cl.emu)
	if len(before) == len(ids) {
		t.Fatalf("the bulk change finished before the desk stopped: %v", before)
	}

	cl.env["AUTOPILOTDESK_DATA_DIR"] = restoredFrom(t, file)
	cl.start("B")
	cl.via("B")
	r := cl.byName["B"].db.Restored()
	atBackup := len(ids) - r.BulkDevices // the devices changed before the backup
	if r.BulkChanges != 1 || atBackup < doneBefore || atBackup > doneAfter {
		t.Errorf("the restore is said to be %+v; want 1 bulk change with %d to %d devices not sent", r, len(ids)-doneAfter, len(ids)-doneBefore)
	}
	doc := waitBulk(t, d, b, job)

	after := writesPerDevice(t, cl.emu)
	if len(after) != len(before) {
		t.Errorf("the restored desk changed %d devices the backup had not sent", len(after)-len(before))
	}
	for id, n := range after {
		if n != 1 {
			t.Errorf("device %s written %d times", id, n)
		}
	}
	got := outcomes(doc)
	if got[bulk.DeviceDone] != len(before) || got[bulk.DeviceUnconfirmed] != len(ids)-len(before) {
		t.Errorf("outcomes %v; want %d changed and %d to check: %.900s", got, len(before), len(ids)-len(before), text(doc))
	}
	unsent := doc.Find(`tr[data-outcome="` + bulk.DeviceUnconfirmed + `"]`)
	if w := unsent.First().Text(); !strings.Contains(w, "restored from a backup taken before this change was sent") ||
		!strings.Contains(w, "prepare the change again") || !strings.Contains(w, "“Kiosk”") {
		t.Errorf("a device the backup had not sent reads %q", w)
	}
	changed := 0
	doc.Find(`tr[data-outcome="` + bulk.DeviceDone + `"]`).Each(func(_ int, s *goquery.Selection) {
		if strings.Contains(s.Text(), "after the desk was restored from a backup") {
			changed++
		}
	})
	if changed != len(before)-atBackup {
		t.Errorf("%d devices say they were found changed after the restore; want the %d sent after the backup", changed, len(before)-atBackup)
	}
	if doc.Find(`[data-testid="bulk-again"]`).Length() == 0 {
		t.Error("the devices the backup had not sent are not offered to be prepared again")
	}
	logs := cl.logs["B"].String()
	want := fmt.Sprintf(`"bulk_changes":1,"bulk_devices":%d`, r.BulkDevices)
	if !strings.Contains(logs, "state database restored from a backup") || !strings.Contains(logs, want) {
		t.Errorf("the restored desk's start-up log does not count %s: %.2000s", want, logs)
	}
}

// A bulk change still a draft in a backup may have been confirmed on the desk the backup was
// taken from, after the backup: the restored desk shows on it that it comes from a backup and the
// change may already have been made, offers no confirmation, and refuses one sent anyway, so
// nothing is sent twice and no later change is overwritten with the old one.
func TestRestoredBackupDoesNotConfirmABulkDraftItHeld(t *testing.T) {
	t.Parallel()
	cl := startClusterWith(t, clusterOptions{sqlite: true})
	d := cl.onDesks("A")
	b := d.signedInBrowser("admin", cl.browser)
	ids := seedFleet(cl.emu, "SN-DRAFT", 3)
	job := d.bulkDraft(b, "group-tag", "Kiosk", ids...)
	form := confirmForm(t, d, b, job)
	file := filepath.Join(t.TempDir(), "desk-backup.db")
	var out bytes.Buffer
	if err := run(context.Background(), []string{"backup", "--data-dir", cl.env["AUTOPILOTDESK_DATA_DIR"], file}, func(string) string { return "" }, &out, &out); err != nil {
		t.Fatalf("backup: %v\n%s", err, out.String())
	}
	// The first desk confirms the draft after the backup, and makes the change.
	d.post(b, "/devices/bulk/"+job+"/confirm", form)
	waitBulk(t, d, b, job)
	cl.stop("A")
	before := writesPerDevice(t, cl.emu)
	if len(before) != len(ids) {
		t.Fatalf("the first desk changed %d devices of %d", len(before), len(ids))
	}

	cl.env["AUTOPILOTDESK_DATA_DIR"] = restoredFrom(t, file)
	cl.start("B")
	cl.via("B")
	if r := cl.byName["B"].db.Restored(); r.BulkDrafts != 1 {
		t.Errorf("the restore is said to be %+v; want 1 bulk draft", r)
	}
	if logs := cl.logs["B"].String(); !strings.Contains(logs, `"bulk_drafts":1`) {
		t.Errorf("the restored desk's start-up log does not count the bulk draft: %.2000s", logs)
	}

	_, doc := d.get(b, "/devices/bulk/"+job)
	note := doc.Find(`[data-testid="bulk-restored"]`).Text()
	if !strings.Contains(note, "comes from a backup") || !strings.Contains(note, "may already have been made") ||
		!strings.Contains(note, "prepare the change again") {
		t.Errorf("the restored draft says %q: %.900s", note, text(doc))
	}
	if doc.Find(`form[action$="/confirm"]`).Length() > 0 {
		t.Error("the restored draft offers to be confirmed")
	}
	resp, doc := d.post(b, "/devices/bulk/"+job+"/confirm", form)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(text(doc), "This bulk change comes from a backup") ||
		!strings.Contains(text(doc), "Nothing was changed") {
		t.Errorf("a confirmation of the restored draft: %d %.600s", resp.StatusCode, text(doc))
	}
	if j, err := cl.byName["B"].db.GetBulkJob(context.Background(), demoidp.DemoTenantID, job); err != nil || j.State != "draft" {
		t.Errorf("the restored draft is now %+v (%v)", j, err)
	}
	time.Sleep(time.Second)
	if after := writesPerDevice(t, cl.emu); len(after) != len(before) || after[strings.ToLower(ids[0])] != 1 {
		t.Errorf("the restored desk sent the change again: %v", after)
	}
}

// restoredFrom is a new data folder holding the backup file as its state database, as an
// operator restores one.
func restoredFrom(t *testing.T, file string) string {
	t.Helper()
	dir := t.TempDir()
	copied, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "autopilotdesk.db"), copied, 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}
