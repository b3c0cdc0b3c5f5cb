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
