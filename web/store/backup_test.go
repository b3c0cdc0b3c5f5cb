package store

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

// A copy written by Backup, opened by a desk (a restore), takes every import batch it still has
// queued as one whose answer was lost: the desk the copy was taken from may have sent it since,
// so its devices are looked up in Graph, never sent. The desk it was taken from is not affected,
// and a second start on the restored copy changes nothing more.
func TestOpenOfABackupLooksUpWhatItHadNotSent(t *testing.T) {
	ctx := context.Background()
	clk := testkit.NewClock()
	dir := t.TempDir()
	db, err := Open(ctx, Options{DataDir: dir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	job := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "draft"}
	if err := db.CreateImportJob(ctx, job, slices.Values(testRows(4))); err != nil {
		t.Fatal(err)
	}
	if err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, TenantID: "t1", OwnerID: "adele", FromState: "draft", State: "sending", Batches: 2,
		NewBatches: []ImportBatch{{Batch: 1, State: "sent"}, {Batch: 2, State: "queued"}},
		Rows: []RowOutcome{{Line: 3, Outcome: Outcome{Batch: 1, Verdict: VerdictSent}}, {Line: 4, Outcome: Outcome{Batch: 2, Verdict: VerdictQueued}},
			{Line: 5, Outcome: Outcome{Batch: 2, Verdict: VerdictQueued}}}}); err != nil {
		t.Fatal(err)
	}
	restoredDir := t.TempDir()
	if _, err := Backup(ctx, dir, filepath.Join(restoredDir, "autopilotdesk.db")); err != nil {
		t.Fatal(err)
	}

	clk.Advance(time.Hour)
	restored, err := Open(ctx, Options{DataDir: restoredDir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if r := restored.Restored(); r.TakenAt.IsZero() || r.Batches != 1 || r.Devices != 2 {
		t.Errorf("the restore is said to be %+v; want a time, 1 batch and 2 devices", r)
	}
	batches, _ := restored.ImportBatches(ctx, job.ID)
	if len(batches) != 2 || batches[0].State != "sent" || batches[1].State != "unknown" || !batches[1].NotBefore.Equal(clk.Now()) || !batches[1].SentAt.Equal(clk.Now()) {
		t.Errorf("the restored batches: %+v; want the queued one looked up from now", batches)
	}
	rows, _ := restored.ImportRows(ctx, job.ID, RowFilter{})
	for _, r := range rows {
		want := map[int]string{2: "", 3: VerdictSent, 4: VerdictUnknown, 5: VerdictUnknown}[r.Line]
		if r.Verdict != want || (want == VerdictUnknown) != (r.Reason == ReasonRestored) {
			t.Errorf("line %d restored as %q (%q); want %q", r.Line, r.Verdict, r.Reason, want)
		}
	}
	restored.Close()
	again, err := Open(ctx, Options{DataDir: restoredDir, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	if r := again.Restored(); !r.TakenAt.IsZero() {
		t.Errorf("a second start on the restored copy takes it as a backup again: %+v", r)
	}
	if batches, _ := db.ImportBatches(ctx, job.ID); batches[1].State != "queued" {
		t.Errorf("the backup changed the running desk's batch: %+v", batches[1])
	}
}

// A restored backup sends none of the bulk device changes it had queued or on their way, in the
// bulk changes that were running: the desk the copy was taken from may have sent them since, so
// each device is read in Graph instead. Drafts, and devices with their outcome or already being
// read, are left as they were.
func TestRestoredBackupReadsTheBulkChangesItHadNotSent(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		running := &BulkJob{TenantID: "t1", ObjectID: "adele", ActorName: "Adele", State: "draft", Action: BulkGroupTag, GroupTag: "Kiosk"}
		draft := &BulkJob{TenantID: "t1", ObjectID: "megan", ActorName: "Megan", State: "draft", Action: BulkUnassign}
		for _, j := range []*BulkJob{running, draft} {
			if err := db.CreateBulkJob(ctx, j, bulkDevices(5)); err != nil {
				t.Fatal(err)
			}
		}
		sent := clk.Now()
		if err := db.ChangeBulk(ctx, BulkChange{JobID: running.ID, FromState: "draft", State: "sending", Devices: []BulkDeviceChange{
			{Position: 1, BulkOutcome: BulkOutcome{State: BulkDone, Chunk: 1, SentAt: sent, DoneAt: sent}},
			{Position: 2, BulkOutcome: BulkOutcome{State: BulkInFlight, Chunk: 2, Attempts: 1, SentAt: sent}},
			{Position: 5, BulkOutcome: BulkOutcome{State: BulkUnknown, Chunk: 1, SentAt: sent, Reason: BulkReasonAnswerLost, NotBefore: sent.Add(time.Minute), Failure: []byte(`{}`)}},
		}}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.exec(ctx, `INSERT INTO backup_taken (taken_at) VALUES (?)`, ms(clk.Now())); err != nil {
			t.Fatal(err)
		}
		clk.Advance(time.Hour)
		if err := db.takeUpBackup(ctx); err != nil {
			t.Fatal(err)
		}
		if r := db.Restored(); r.TakenAt.IsZero() || r.BulkChanges != 1 || r.BulkDevices != 3 || r.Batches != 0 {
			t.Errorf("the restore is said to be %+v; want 1 bulk change with 3 devices", r)
		}
		devices, err := db.BulkDevices(ctx, running.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range devices {
			want := map[int]string{1: BulkDone, 2: BulkUnknown, 3: BulkUnknown, 4: BulkUnknown, 5: BulkUnknown}[d.Position]
			restored := d.Position >= 2 && d.Position <= 4
			if d.State != want || restored != (d.Reason == BulkReasonRestored) || restored && (!d.NotBefore.Equal(clk.Now()) || d.Failure != nil) {
				t.Errorf("device %d restored as %+v; want %s", d.Position, d.BulkOutcome, want)
			}
		}
		if devices[1].Attempts != 1 || !devices[1].SentAt.Equal(sent) {
			t.Errorf("the device on its way lost when it was sent: %+v", devices[1].BulkOutcome)
		}
		drafted, _ := db.BulkDevices(ctx, draft.ID)
		for _, d := range drafted {
			if d.State != BulkQueued || d.Reason != "" {
				t.Errorf("a draft's device restored as %+v", d.BulkOutcome)
			}
		}
		if err := db.takeUpBackup(ctx); err != nil {
			t.Fatal(err)
		}
		if r := db.Restored(); r.BulkDevices != 3 {
			t.Errorf("taken up twice: %+v", r)
		}
	})
}
