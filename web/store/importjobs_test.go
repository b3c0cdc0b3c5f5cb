package store

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

func testRows(n int) []ImportRow {
	rows := make([]ImportRow, n)
	for i := range rows {
		h := make([]byte, 3000)
		rand.Read(h)
		rows[i] = ImportRow{Line: i + 2, Serial: fmt.Sprintf("SN-%04d", i), GroupTag: "Sales", User: "adele@contoso.example", Hash: base64.StdEncoding.EncodeToString(h), HashShown: "abcd…wxyz",
			Notes: []string{"Padded the hash.", "Second note."}}
	}
	rows[0].Errors = []string{"Serial missing."}
	rows[0].AlreadyImported = true
	return rows
}

func TestImportJobsKeepRowsAndBatches(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		rows := testRows(250)
		job := &ImportJob{TenantID: "t1", ObjectID: "adele", ActorUPN: "adele@contoso.example", ActorName: "Adele Vance", State: "draft", Payload: []byte(`{"fileNotes":["x"]}`)}
		if err := db.CreateImportJob(ctx, job, slices.Values(rows)); err != nil {
			t.Fatal(err)
		}
		if !isTimeOrderedGUID(job.ID) || !job.CreatedAt.Equal(clk.Now()) {
			t.Errorf("created %+v", job)
		}
		got, err := db.GetImportJob(ctx, "t1", job.ID)
		if err != nil || fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *job) {
			t.Fatalf("read back %+v, %v\nwant %+v", got, err, job)
		}
		if _, err := db.GetImportJob(ctx, "t2", job.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("another tenant read it: %v", err)
		}
		back, err := db.ImportRows(ctx, job.ID, RowFilter{})
		if err != nil || len(back) != 250 {
			t.Fatalf("%d rows, %v", len(back), err)
		}
		if back[0].Hash != "" || back[0].HashLen != 4000 || back[0].Serial != "SN-0000" || back[0].Line != 2 || len(back[0].Errors) != 1 || !back[0].AlreadyImported ||
			len(back[1].Notes) != 2 || back[1].Errors != nil {
			t.Errorf("row read back as %+v", back[0])
		}
		// A step of a check: the rows without a problem after a line, a few at a time.
		lines := func(f RowFilter) []int {
			rows, err := db.ImportRows(ctx, job.ID, f)
			if err != nil {
				t.Fatal(err)
			}
			var out []int
			for _, r := range rows {
				out = append(out, r.Line)
			}
			return out
		}
		if got := lines(RowFilter{Valid: true, Limit: 3}); !slices.Equal(got, []int{3, 4, 5}) {
			t.Errorf("the first step reads lines %v, want 3, 4 and 5 (line 2 has a problem)", got)
		}
		if got := lines(RowFilter{Valid: true, AfterLine: 249, Limit: 3}); !slices.Equal(got, []int{250, 251}) {
			t.Errorf("the last step reads lines %v, want 250 and 251", got)
		}
		withHashes, _ := db.ImportRows(ctx, job.ID, RowFilter{Hashes: true})
		if withHashes[249].Hash != rows[249].Hash {
			t.Errorf("hash not kept")
		}

		// Only the owner changes a draft.
		if err := db.ReplaceDraftRows(ctx, "t1", job.ID, "megan", nil, slices.Values(rows[:1])); !errors.Is(err, ErrConflict) {
			t.Errorf("another person replaced the rows: %v", err)
		}
		// A check: only the owner starts or stops it; meanwhile only the checker holding its lease
		// records, and the draft takes no other change.
		if err := db.StartTenantCheck(ctx, "t1", job.ID, "megan", []byte(`{}`)); !errors.Is(err, ErrConflict) {
			t.Errorf("another person started a check: %v", err)
		}
		if err := db.StartTenantCheck(ctx, "t1", job.ID, "adele", []byte(`{"check":{"of":250}}`)); err != nil {
			t.Fatal(err)
		}
		if err := db.ReplaceDraftRows(ctx, "t1", job.ID, "adele", nil, slices.Values(rows[:1])); !errors.Is(err, ErrConflict) {
			t.Errorf("the rows changed while their serials were being checked: %v", err)
		}
		checking, err := db.ClaimImportJob(ctx, "checking", "checker", time.Minute)
		if err != nil || checking == nil || checking.ID != job.ID {
			t.Fatalf("the checker claimed %+v, %v", checking, err)
		}
		step := TenantCheck{JobID: job.ID, LeaseOwner: "checker", Payload: []byte(`{"check":{"of":250,"done":200}}`),
			Found: map[int]TenantMatch{3: {RegisteredID: "r", RegisteredGroupTag: "Sales"}}}
		if err := db.RecordTenantCheck(ctx, TenantCheck{JobID: job.ID, LeaseOwner: "another", Found: step.Found}); !errors.Is(err, ErrConflict) {
			t.Errorf("a checker without the lease recorded a step: %v", err)
		}
		if err := db.RecordTenantCheck(ctx, step); err != nil {
			t.Fatal(err)
		}
		if back, _ := db.ImportRows(ctx, job.ID, RowFilter{}); !back[1].AlreadyImported || back[1].RegisteredID != "r" || back[1].RegisteredGroupTag != "Sales" || back[2].AlreadyImported {
			t.Errorf("the check's findings were not kept: %+v", back[1])
		}
		// Line 2 has a problem (and is marked already imported): it counts, but not as ticked.
		if tally, err := db.TallyImportRows(ctx, job.ID); err != nil || tally != (RowTally{Rows: 250, Valid: 249, Ticked: 1}) {
			t.Errorf("tally %+v, %v", tally, err)
		}
		if err := db.StopTenantCheck(ctx, "t1", job.ID, "megan", nil); !errors.Is(err, ErrConflict) {
			t.Errorf("another person stopped the check: %v", err)
		}
		if err := db.StopTenantCheck(ctx, "t1", job.ID, "adele", []byte(`{"lastCheck":{"of":250,"done":200,"stopped":true}}`)); err != nil {
			t.Fatal(err)
		}
		step.Found = map[int]TenantMatch{4: {ImportingJob: "j"}}
		if err := db.RecordTenantCheck(ctx, step); !errors.Is(err, ErrConflict) {
			t.Errorf("the checker recorded a step of a check its owner stopped: %v", err)
		}
		if back, _ := db.ImportRows(ctx, job.ID, RowFilter{}); back[2].ImportingJob != "" || !back[1].AlreadyImported {
			t.Errorf("after the stop: %+v, %+v", back[1], back[2])
		}
		if got, _ := db.GetImportJob(ctx, "t1", job.ID); got.State != "draft" || string(got.Payload) != `{"lastCheck":{"of":250,"done":200,"stopped":true}}` || got.LeaseOwner != "" {
			t.Errorf("after the stop the job is %+v", got)
		}
		// A check to its end: the last step makes the job a draft again and lets its lease go.
		if err := db.StartTenantCheck(ctx, "t1", job.ID, "adele", []byte(`{"check":{"of":250}}`)); err != nil {
			t.Fatal(err)
		}
		if checking, err = db.ClaimImportJob(ctx, "checking", "checker", time.Minute); err != nil || checking == nil {
			t.Fatalf("the checker claimed %+v, %v", checking, err)
		}
		if err := db.RecordTenantCheck(ctx, TenantCheck{JobID: job.ID, LeaseOwner: "checker", Payload: []byte(`{"checked":true}`), Finished: true}); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.GetImportJob(ctx, "t1", job.ID); got.State != "draft" || got.LeaseOwner != "" || string(got.Payload) != `{"checked":true}` {
			t.Errorf("after the last step the job is %+v", got)
		}
		if err := db.ReleaseImportJob(ctx, job.ID, "checker", []byte(`{}`), time.Time{}); !errors.Is(err, ErrConflict) {
			t.Errorf("the checker released a check that had ended: %v", err)
		}
		if err := db.ReplaceDraftRows(ctx, "t1", job.ID, "adele", []byte(`{"checked":false}`), slices.Values(rows[:10])); err != nil {
			t.Fatal(err)
		}
		if back, _ := db.ImportRows(ctx, job.ID, RowFilter{}); len(back) != 10 {
			t.Errorf("%d rows after replacing", len(back))
		}

		// Submit: the draft becomes sending with its batches and row outcomes, at once.
		submit := ImportChange{JobID: job.ID, TenantID: "t1", OwnerID: "adele", FromState: "draft", State: "sending", Batches: 2,
			NewBatches: []ImportBatch{{Batch: 1, State: "queued"}, {Batch: 2, State: "queued"}},
			Rows: []RowOutcome{{Line: 2, Outcome: Outcome{Verdict: "left-out", Reason: "Serial missing."}}, {Line: 3, Outcome: Outcome{Batch: 1, Verdict: "queued"}},
				{Line: 4, Outcome: Outcome{Batch: 1, Verdict: "queued"}}, {Line: 5, Outcome: Outcome{Batch: 2, Verdict: "queued"}}}}
		if err := db.ChangeImport(ctx, submit); err != nil {
			t.Fatal(err)
		}
		if err := db.ChangeImport(ctx, submit); !errors.Is(err, ErrConflict) {
			t.Errorf("submitted twice: %v", err)
		}
		batches, _ := db.ImportBatches(ctx, job.ID)
		if len(batches) != 2 || batches[1].State != "queued" {
			t.Errorf("batches %+v", batches)
		}
		b1, _ := db.ImportRows(ctx, job.ID, RowFilter{Batch: 1})
		if len(b1) != 2 || b1[0].Verdict != "queued" || b1[0].Line != 3 {
			t.Errorf("batch 1 rows %+v", b1)
		}

		// A batch moves only from the states the change names; the activity is recorded with it.
		answer := ImportChange{JobID: job.ID, BatchFrom: []string{"in-flight", "unknown"},
			Batch:    &ImportBatch{Batch: 1, State: "sent", Attempts: 1, SentAt: clk.Now(), ActivityID: "a"},
			Rows:     []RowOutcome{{Line: 3, Outcome: Outcome{Batch: 1, Verdict: "sent", DeviceID: "d3", Status: "pending"}}},
			Activity: &Activity{TenantID: "t1", Action: "import", Outcome: "success"}}
		if err := db.ChangeImport(ctx, answer); !errors.Is(err, ErrConflict) {
			t.Errorf("answer stored for a batch never sent: %v", err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity`); n != 0 {
			t.Errorf("%d activities recorded by a refused change", n)
		}
		if err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, BatchFrom: []string{"queued"}, Batch: &ImportBatch{Batch: 1, State: "in-flight", Attempts: 1}}); err != nil {
			t.Fatal(err)
		}
		if err := db.ChangeImport(ctx, answer); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity`); n != 1 {
			t.Errorf("%d activities", n)
		}
		b1, _ = db.ImportRows(ctx, job.ID, RowFilter{Batch: 1})
		if b1[0].DeviceID != "d3" || b1[0].Status != "pending" || b1[1].Verdict != "queued" {
			t.Errorf("outcomes %+v", b1)
		}

		// Finished: every hash overwritten.
		if err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, FromState: "sending", State: "finished", WipeHashes: true}); err != nil {
			t.Fatal(err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM import_rows WHERE job_id = ? AND hash IS NOT NULL`, job.ID); n != 0 {
			t.Errorf("%d hashes left", n)
		}
	})
}

// A draft moves to sending in one conditional statement: of many concurrent submits exactly one
// wins, on SQLite and on PostgreSQL.
func TestSubmitIsOneConditionalChange(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		job := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "draft"}
		if err := db.CreateImportJob(ctx, job, slices.Values(testRows(3))); err != nil {
			t.Fatal(err)
		}
		var wins sync.WaitGroup
		var mu sync.Mutex
		won, lost := 0, 0
		start := make(chan struct{})
		for range 60 {
			wins.Add(1)
			go func() {
				defer wins.Done()
				<-start
				err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, TenantID: "t1", OwnerID: "adele", FromState: "draft", State: "sending", Batches: 1,
					NewBatches: []ImportBatch{{Batch: 1, State: "queued"}}})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					won++
				case errors.Is(err, ErrConflict):
					lost++
				default:
					t.Errorf("submit: %v", err)
				}
			}()
		}
		close(start)
		wins.Wait()
		if won != 1 || lost != 59 {
			t.Errorf("%d submits won, %d lost; want 1 and 59", won, lost)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM import_batches WHERE job_id = ?`, job.ID); n != 1 {
			t.Errorf("%d batches", n)
		}
	})
}

// A worker leases a due job; another cannot take it until the lease runs out, and then the first
// can no longer write as its holder.
func TestImportLeases(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		job := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "sending"}
		if err := db.CreateImportJob(ctx, job, nil); err != nil {
			t.Fatal(err)
		}
		if other, _ := db.ClaimImportJob(ctx, "draft", "w1", time.Minute); other != nil {
			t.Fatalf("claimed a job in another state")
		}
		// Many workers at once: one lease.
		var wg sync.WaitGroup
		var mu sync.Mutex
		var holders []string
		for i := range 20 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				j, err := db.ClaimImportJob(ctx, "sending", fmt.Sprintf("w%d", i), time.Minute)
				if err != nil {
					t.Error(err)
				}
				if j != nil {
					mu.Lock()
					holders = append(holders, j.LeaseOwner)
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(holders) != 1 {
			t.Fatalf("%d workers hold the lease", len(holders))
		}
		holder := holders[0]
		if err := db.RenewImportLease(ctx, job.ID, "intruder", time.Minute); !errors.Is(err, ErrConflict) {
			t.Errorf("a worker without the lease renewed it: %v", err)
		}
		if err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, LeaseOwner: "intruder", Payload: []byte(`{}`)}); !errors.Is(err, ErrConflict) {
			t.Errorf("a worker without the lease changed the job: %v", err)
		}
		clk.Advance(2 * time.Minute) // the holder died
		taken, err := db.ClaimImportJob(ctx, "sending", "w-next", time.Minute)
		if err != nil || taken == nil || taken.ID != job.ID {
			t.Fatalf("the job was not taken over: %v %v", taken, err)
		}
		if err := db.RenewImportLease(ctx, job.ID, holder, time.Minute); !errors.Is(err, ErrConflict) {
			t.Errorf("the dead worker renewed its lease: %v", err)
		}
		next := clk.Now().Add(30 * time.Second)
		if err := db.ReleaseImportJob(ctx, job.ID, "w-next", []byte(`{"polls":1}`), next); err != nil {
			t.Fatal(err)
		}
		if j, _ := db.ClaimImportJob(ctx, "sending", "w3", time.Minute); j != nil {
			t.Errorf("claimed before its next look was due")
		}
		if err := db.WakeImportJob(ctx, "t1", job.ID, true); err != nil {
			t.Fatal(err)
		}
		if j, _ := db.ClaimImportJob(ctx, "sending", "w3", time.Minute); j == nil || string(j.Payload) != `{"polls":1}` {
			t.Errorf("a woken job was not claimed: %+v", j)
		}
	})
}

// Hashes leave the database files once overwritten: SQLite's secure_delete zeroes them in the
// database file, and the write-ahead log is emptied.
func TestWipedHashesLeaveTheFiles(t *testing.T) {
	files := openFileRig(t)
	db, ctx := files.db, context.Background()
	rows := testRows(20)
	marker := []byte(rows[7].Hash[100:140])
	job := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "sending"}
	if err := db.CreateImportJob(ctx, job, slices.Values(rows)); err != nil {
		t.Fatal(err)
	}
	if where := files.holding(marker); len(where) == 0 {
		t.Fatal("the hash is in no file before the wipe: the test would prove nothing")
	}
	if err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, FromState: "sending", State: "finished", WipeHashes: true}); err != nil {
		t.Fatal(err)
	}
	files.checkpoint()
	if where := files.holding(marker); len(where) > 0 {
		t.Errorf("a wiped hash is still readable in %v", where)
	}
}

// Every guard of a job's change holds on its own: a change naming another tenant, owner, state or
// lease holder changes nothing and says ErrConflict, for import and bulk jobs alike. (The submit
// race above is also held by the batch's key; this checks the guards without it.)
func TestJobChangesKeepEachGuard(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		imp := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "draft"}
		if err := db.CreateImportJob(ctx, imp, slices.Values(testRows(1))); err != nil {
			t.Fatal(err)
		}
		blk := &BulkJob{TenantID: "t1", ObjectID: "adele", State: "draft", Action: "group-tag", GroupTag: "Sales"}
		if err := db.CreateBulkJob(ctx, blk, bulkDevices(1)); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ClaimImportJob(ctx, "draft", "worker-1", time.Minute); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ClaimBulkJob(ctx, "draft", "worker-1", time.Minute); err != nil {
			t.Fatal(err)
		}
		guards := []struct {
			name                                 string
			tenant, owner, from, lease, wantSeen string
		}{
			{"another tenant", "t2", "adele", "draft", "worker-1", "draft"},
			{"another owner", "t1", "isaiah", "draft", "worker-1", "draft"},
			{"another state", "t1", "adele", "sending", "worker-1", "draft"},
			{"another lease holder", "t1", "adele", "draft", "worker-2", "draft"},
			{"every guard met", "t1", "adele", "draft", "worker-1", "finished"},
		}
		for _, g := range guards {
			ierr := db.ChangeImport(ctx, ImportChange{JobID: imp.ID, TenantID: g.tenant, OwnerID: g.owner, FromState: g.from, LeaseOwner: g.lease, State: "finished"})
			berr := db.ChangeBulk(ctx, BulkChange{JobID: blk.ID, TenantID: g.tenant, OwnerID: g.owner, FromState: g.from, LeaseOwner: g.lease, State: "finished"})
			wantErr := g.wantSeen == "draft"
			for kind, err := range map[string]error{"import": ierr, "bulk": berr} {
				if wantErr && !errors.Is(err, ErrConflict) || !wantErr && err != nil {
					t.Errorf("%s, %s job: %v", g.name, kind, err)
				}
			}
			gotImp, _ := db.GetImportJob(ctx, "t1", imp.ID)
			gotBlk, _ := db.GetBulkJob(ctx, "t1", blk.ID)
			if gotImp.State != g.wantSeen || gotBlk.State != g.wantSeen {
				t.Errorf("%s: the jobs are %q and %q, want %q", g.name, gotImp.State, gotBlk.State, g.wantSeen)
			}
		}
	})
}

// A process that ended (a crash, a kill) leaves its leases behind. In a SQLite folder, whose lock
// the next process holds alone, they are freed at start, so its jobs go on at once; on
// PostgreSQL another replica may still hold them, so they run out as they would.
func TestLeasesOfAnEndedProcess(t *testing.T) {
	eachEngine(t, func(t *testing.T, loc location) {
		ctx := context.Background()
		clk := testkit.NewClock()
		o := loc.options
		o.Now = clk.Now
		first, err := Open(ctx, o)
		if err != nil {
			t.Fatal(err)
		}
		imp := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "sending"}
		blk := &BulkJob{TenantID: "t1", ObjectID: "adele", State: "sending", Action: "group-tag", GroupTag: "Kiosk"}
		if err := first.CreateImportJob(ctx, imp, nil); err != nil {
			t.Fatal(err)
		}
		if err := first.CreateBulkJob(ctx, blk, nil); err != nil {
			t.Fatal(err)
		}
		if j, err := first.ClaimImportJob(ctx, "sending", "ended", 2*time.Minute); err != nil || j == nil {
			t.Fatalf("claim: %v %v", j, err)
		}
		if j, err := first.ClaimBulkJob(ctx, "sending", "ended", 2*time.Minute); err != nil || j == nil {
			t.Fatalf("claim: %v %v", j, err)
		}
		first.Close() // the process ends without giving its leases up

		next := loc.open(t, clk)
		j, err := next.ClaimImportJob(ctx, "sending", "next", time.Minute)
		b, berr := next.ClaimBulkJob(ctx, "sending", "next", time.Minute)
		if err != nil || berr != nil {
			t.Fatal(err, berr)
		}
		freed := loc.options.DatabaseURL == ""
		if (j != nil) != freed || (b != nil) != freed {
			t.Errorf("at start, the ended process's leases taken over: import %v, bulk %v; want %v", j != nil, b != nil, freed)
		}
	})
}

// The rows of several jobs are counted in one query, by job and verdict (a draft's rows have
// none yet), with how many have no problem; a job without rows is missing from the answer.
func TestCountImportRowsOfSeveralJobs(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		draft := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "draft"}
		if err := db.CreateImportJob(ctx, draft, slices.Values(testRows(5))); err != nil {
			t.Fatal(err)
		}
		sent := testRows(3)
		sent[0].Errors = nil
		job := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "draft"}
		if err := db.CreateImportJob(ctx, job, slices.Values(sent)); err != nil {
			t.Fatal(err)
		}
		empty := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "draft"}
		if err := db.CreateImportJob(ctx, empty, nil); err != nil {
			t.Fatal(err)
		}
		counts, err := db.CountImportRows(ctx, []string{draft.ID, job.ID, empty.ID})
		if err != nil {
			t.Fatal(err)
		}
		if c := counts[draft.ID]; c.ByVerdict[""] != 5 || c.Valid != 4 || len(c.ByVerdict) != 1 {
			t.Errorf("the draft's rows: %+v", c)
		}
		if c := counts[job.ID]; c.ByVerdict[""] != 3 || c.Valid != 3 {
			t.Errorf("the other draft's rows: %+v", c)
		}
		if _, ok := counts[empty.ID]; ok || len(counts) != 2 {
			t.Errorf("a job without rows is counted: %+v", counts)
		}
	})
}

// Stops race workers recording batches in flight, on SQLite and on PostgreSQL: every batch ends
// in flight or stopped, never both, its rows say the same, and only the stop that stopped
// something leaves a record. Another tenant, or a job not sending, cannot be stopped.
func TestStopImportRacesBatchesGoingInFlight(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		rows := testRows(12)
		for i := range rows {
			rows[i].Errors = nil
		}
		job := &ImportJob{TenantID: "t1", ObjectID: "adele", ActorName: "Adele Vance", State: "draft"}
		if err := db.CreateImportJob(ctx, job, slices.Values(rows)); err != nil {
			t.Fatal(err)
		}
		var batches []ImportBatch
		var outs []RowOutcome
		for i, r := range rows {
			if i%2 == 0 {
				batches = append(batches, ImportBatch{Batch: i/2 + 1, State: "queued"})
			}
			outs = append(outs, RowOutcome{Line: r.Line, Outcome: Outcome{Batch: i/2 + 1, Verdict: VerdictQueued}})
		}
		record := func(n StoppedImport) *Activity {
			return &Activity{ObjectID: "megan", ActorName: "Megan Bowen", Action: "import-stopped", Target: job.ID, Outcome: "success",
				Summary: fmt.Sprintf("%d batches, %d rows", n.Batches, n.Rows)}
		}
		if _, err := db.StopImport(ctx, "t1", job.ID, nil, record); !errors.Is(err, ErrConflict) {
			t.Errorf("stopping a draft: %v", err)
		}
		if err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, FromState: "draft", State: "sending", Batches: len(batches), NewBatches: batches, Rows: outs}); err != nil {
			t.Fatal(err)
		}
		if _, err := db.StopImport(ctx, "t2", job.ID, nil, record); !errors.Is(err, ErrConflict) {
			t.Errorf("stopping another tenant's import: %v", err)
		}
		send := func(b int) error {
			lines := []RowOutcome{{Line: rows[2*(b-1)].Line}, {Line: rows[2*(b-1)+1].Line}}
			for i := range lines {
				lines[i].Outcome = Outcome{Batch: b, Verdict: VerdictSending}
			}
			inFlight := ImportBatch{Batch: b, State: "in-flight", Attempts: 1}
			return db.ChangeImport(ctx, ImportChange{JobID: job.ID, BatchFrom: []string{"queued"}, Batch: &inFlight, Rows: lines})
		}
		if err := send(1); err != nil { // on its way before any stop
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		var mu sync.Mutex
		stops := 0
		for _, b := range batches[1:] {
			wg.Go(func() {
				<-start
				if err := send(b.Batch); err != nil && !errors.Is(err, ErrConflict) {
					t.Errorf("batch %d in flight: %v", b.Batch, err)
				}
			})
		}
		for range 20 {
			wg.Go(func() {
				<-start
				n, err := db.StopImport(ctx, "t1", job.ID, []byte(`{"stopped":{}}`), record)
				if err != nil {
					t.Errorf("stop: %v", err)
				}
				if n.Batches > 0 {
					mu.Lock()
					stops++
					mu.Unlock()
				}
			})
		}
		close(start)
		wg.Wait()
		stored, err := db.ImportBatches(ctx, job.ID)
		if err != nil {
			t.Fatal(err)
		}
		got, err := db.ImportRows(ctx, job.ID, RowFilter{})
		if err != nil {
			t.Fatal(err)
		}
		stoppedBatches := 0
		if stored[0].State != "in-flight" {
			t.Errorf("the batch on its way before the stops is %s", stored[0].State)
		}
		for _, b := range stored {
			want := VerdictSending
			switch b.State {
			case "stopped":
				want = VerdictStopped
				stoppedBatches++
			case "in-flight":
			default:
				t.Errorf("batch %d is %s", b.Batch, b.State)
			}
			for _, r := range got {
				if r.Batch == b.Batch && r.Verdict != want {
					t.Errorf("batch %d is %s, its line %d %s", b.Batch, b.State, r.Line, r.Verdict)
				}
			}
		}
		records := count(t, db, `SELECT COUNT(*) FROM activity WHERE action = 'import-stopped' AND target = ?`, job.ID)
		if stoppedBatches > 0 && (stops != 1 || records != 1) || stoppedBatches == 0 && (stops != 0 || records != 0) {
			t.Errorf("%d batches stopped by %d stops, %d records", stoppedBatches, stops, records)
		}
		t.Logf("%d of %d batches stopped", stoppedBatches, len(stored))
	})
}

// A tenant's imports are paged newest first, with a cursor that walks every job exactly once
// (also jobs created in the same millisecond), and are counted; a person's open jobs are listed
// whatever others created after them; a cursor never handed out is refused.
func TestPageImportJobs(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		mine := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "draft"}
		done := &ImportJob{TenantID: "t1", ObjectID: "adele", State: "finished"}
		for _, j := range []*ImportJob{mine, done} {
			if err := db.CreateImportJob(ctx, j, nil); err != nil {
				t.Fatal(err)
			}
			clk.Advance(time.Second)
		}
		for i := range 25 {
			if i%5 == 0 {
				clk.Advance(time.Millisecond) // five at a time share a millisecond
			}
			if err := db.CreateImportJob(ctx, &ImportJob{TenantID: "t1", ObjectID: "isaiah", State: "draft"}, nil); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.CreateImportJob(ctx, &ImportJob{TenantID: "t2", ObjectID: "adele", State: "draft"}, nil); err != nil {
			t.Fatal(err)
		}
		seen := map[string]bool{}
		var order []ImportJob
		cursor := ""
		for pages := 0; ; pages++ {
			page, next, err := db.PageImportJobs(ctx, ImportJobFilter{TenantID: "t1", Before: cursor, Limit: 10})
			if err != nil || pages > 3 || len(page) > 10 {
				t.Fatalf("page %d: %d jobs, %v", pages, len(page), err)
			}
			for _, j := range page {
				if seen[j.ID] || j.TenantID != "t1" {
					t.Fatalf("job %s listed twice or of another tenant", j.ID)
				}
				seen[j.ID] = true
			}
			order = append(order, page...)
			if cursor = next; cursor == "" {
				break
			}
		}
		if len(order) != 27 || order[25].ID != done.ID || order[26].ID != mine.ID {
			t.Errorf("paged %d jobs, the oldest last: %+v", len(order), order[len(order)-2:])
		}
		if n, err := db.CountImportJobs(ctx, ImportJobFilter{TenantID: "t1"}); n != 27 || err != nil {
			t.Errorf("counted %d, %v", n, err)
		}
		open, _, err := db.PageImportJobs(ctx, ImportJobFilter{TenantID: "t1", OpenOf: "adele"})
		if err != nil || len(open) != 1 || open[0].ID != mine.ID {
			t.Errorf("Adele's open jobs: %+v, %v", open, err)
		}
		if n, err := db.CountImportJobs(ctx, ImportJobFilter{TenantID: "t1", OpenOf: "adele"}); n != 1 || err != nil {
			t.Errorf("Adele's open jobs counted %d, %v", n, err)
		}
		for _, bad := range []string{"x", "12_", "_abc", "abc_def"} {
			if _, _, err := db.PageImportJobs(ctx, ImportJobFilter{TenantID: "t1", Before: bad}); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}
	})
}
