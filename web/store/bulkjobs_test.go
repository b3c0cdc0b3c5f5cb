package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

// bulkDevices are the n devices of a bulk job, each waiting its turn.
func bulkDevices(n int) []BulkDevice {
	var out []BulkDevice
	for i := range n {
		out = append(out, BulkDevice{DeviceID: fmt.Sprintf("dev-%03d", i), Serial: fmt.Sprintf("sn-%03d", i), Model: "Latitude 5440", GroupTag: "Sales",
			BulkOutcome: BulkOutcome{State: "queued"}})
	}
	return out
}

// A bulk job keeps its devices in order; a draft becomes sending once however many confirms
// race; a device's outcome changes only while its guards hold, and the change and its activity
// land together.
func TestBulkJobsChangeOnlyWhileTheirGuardsHold(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		job := &BulkJob{TenantID: "t1", ObjectID: "adele", ActorName: "Adele", State: "draft", Action: "group-tag", GroupTag: "Kiosk"}
		if err := db.CreateBulkJob(ctx, job, bulkDevices(250)); err != nil {
			t.Fatal(err)
		}
		back, err := db.BulkDevices(ctx, job.ID)
		if err != nil || len(back) != 250 || back[0].Position != 1 || back[249].Serial != "sn-249" || back[7].State != "queued" {
			t.Fatalf("devices read back: %d %v", len(back), err)
		}
		if _, err := db.GetBulkJob(ctx, "t2", job.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("another tenant read the job: %v", err)
		}
		if got, _ := db.GetBulkJob(ctx, "t1", job.ID); got == nil || got.Devices != 250 || got.GroupTag != "Kiosk" {
			t.Errorf("job read back: %+v", got)
		}
		for _, running := range []bool{true, false} {
			if jobs, _ := db.ListBulkJobs(ctx, BulkJobFilter{TenantID: "t1", Running: running, Limit: 10}); len(jobs) != 0 {
				t.Errorf("a draft is listed among confirmed changes")
			}
		}

		// Its owner corrects the group tag of the draft; nobody else can.
		corrected := "Kiosk-2"
		if err := db.ChangeBulk(ctx, BulkChange{JobID: job.ID, TenantID: "t1", OwnerID: "megan", FromState: "draft", GroupTag: &corrected}); !errors.Is(err, ErrConflict) {
			t.Errorf("another person corrected the group tag: %v", err)
		}
		if err := db.ChangeBulk(ctx, BulkChange{JobID: job.ID, TenantID: "t1", OwnerID: "adele", FromState: "draft", GroupTag: &corrected}); err != nil {
			t.Fatal(err)
		}
		if got, _ := db.GetBulkJob(ctx, "t1", job.ID); got == nil || got.GroupTag != corrected {
			t.Errorf("the corrected job: %+v", got)
		}

		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 30 {
			wg.Go(func() {
				err := db.ChangeBulk(ctx, BulkChange{JobID: job.ID, TenantID: "t1", OwnerID: "adele", FromState: "draft", State: "sending"})
				switch {
				case err == nil:
					wins.Add(1)
				case !errors.Is(err, ErrConflict):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d confirms won", wins.Load())
		}
		if err := db.ChangeBulk(ctx, BulkChange{JobID: job.ID, OwnerID: "megan", Payload: []byte(`{}`)}); !errors.Is(err, ErrConflict) {
			t.Errorf("another person changed the job: %v", err)
		}

		// Recorded in flight in chunk 1, then answered: an answer for another chunk changes nothing.
		sent := clk.Now()
		inFlight := []BulkDeviceChange{{Position: 1, From: []string{"queued"}, BulkOutcome: BulkOutcome{State: "in-flight", Chunk: 1, Attempts: 1, SentAt: sent}},
			{Position: 2, From: []string{"queued"}, BulkOutcome: BulkOutcome{State: "in-flight", Chunk: 1, Attempts: 1, SentAt: sent}}}
		if err := db.ChangeBulk(ctx, BulkChange{JobID: job.ID, Chunks: 1, Devices: inFlight}); err != nil {
			t.Fatal(err)
		}
		if err := db.ChangeBulk(ctx, BulkChange{JobID: job.ID, Devices: inFlight}); !errors.Is(err, ErrConflict) {
			t.Errorf("devices in flight were recorded in flight again: %v", err)
		}
		wrong := BulkChange{JobID: job.ID, Devices: []BulkDeviceChange{{Position: 1, From: []string{"in-flight"}, FromChunk: 2, BulkOutcome: BulkOutcome{State: "done"}}}}
		if err := db.ChangeBulk(ctx, wrong); !errors.Is(err, ErrConflict) {
			t.Errorf("an answer of another chunk was stored: %v", err)
		}
		act := &Activity{TenantID: "t1", ObjectID: "adele", Action: "bulk-change", Target: job.ID, Outcome: "success", Summary: "Chunk 1"}
		answer := BulkChange{JobID: job.ID, Activity: act, Devices: []BulkDeviceChange{
			{Position: 1, From: []string{"in-flight"}, FromChunk: 1, BulkOutcome: BulkOutcome{State: "done", Chunk: 1, Attempts: 1, SentAt: sent, DoneAt: sent, StatusCode: 204}},
			{Position: 2, From: []string{"in-flight"}, FromChunk: 1, BulkOutcome: BulkOutcome{State: "refused", Chunk: 1, Attempts: 1, SentAt: sent, StatusCode: 400, Reason: "Graph said no."}},
			{Position: 3, From: []string{"in-flight"}, FromChunk: 1, BulkOutcome: BulkOutcome{State: "done"}}, // never sent: the whole change fails
		}}
		if err := db.ChangeBulk(ctx, answer); !errors.Is(err, ErrConflict) {
			t.Errorf("a change with one guard failing was applied: %v", err)
		}
		if _, err := db.GetActivity(ctx, "t1", act.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("the activity of a refused change was recorded: %v", err)
		}
		answer.Devices = answer.Devices[:2]
		if err := db.ChangeBulk(ctx, answer); err != nil {
			t.Fatal(err)
		}
		back, _ = db.BulkDevices(ctx, job.ID)
		if back[0].State != "done" || back[0].ActivityID != act.ID || back[1].Reason != "Graph said no." || back[1].StatusCode != 400 || !back[0].SentAt.Equal(sent) || back[2].State != "queued" {
			t.Errorf("outcomes read back: %+v %+v %+v", back[0], back[1], back[2])
		}
		if jobs, _ := db.ListBulkJobs(ctx, BulkJobFilter{TenantID: "t1", Running: true}); len(jobs) != 1 || jobs[0].Chunks != 1 {
			t.Errorf("confirmed jobs: %+v", jobs)
		}

		// Leases as the import's.
		claimed, err := db.ClaimBulkJob(ctx, "sending", "w1", time.Minute)
		if err != nil || claimed == nil || claimed.ID != job.ID {
			t.Fatalf("claim: %v %v", claimed, err)
		}
		if again, _ := db.ClaimBulkJob(ctx, "sending", "w2", time.Minute); again != nil {
			t.Error("a leased job was claimed again")
		}
		if err := db.ChangeBulk(ctx, BulkChange{JobID: job.ID, LeaseOwner: "w2", Payload: []byte(`{}`)}); !errors.Is(err, ErrConflict) {
			t.Errorf("a worker without the lease changed the job: %v", err)
		}
		clk.Advance(2 * time.Minute)
		if again, _ := db.ClaimBulkJob(ctx, "sending", "w2", time.Minute); again == nil {
			t.Error("a dead worker's job was not taken over")
		}
		if err := db.RenewBulkLease(ctx, job.ID, "w1", time.Minute); !errors.Is(err, ErrConflict) {
			t.Errorf("the dead worker renewed its lease: %v", err)
		}
		if err := db.ReleaseBulkJob(ctx, job.ID, "w2", []byte(`{"x":1}`), clk.Now().Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if err := db.WakeBulkJob(ctx, "t1", job.ID, true); err != nil {
			t.Fatal(err)
		}
		if j, _ := db.ClaimBulkJob(ctx, "sending", "w3", time.Minute); j == nil || string(j.Payload) != `{"x":1}` {
			t.Errorf("a woken job was not claimed: %+v", j)
		}
	})
}

// At most limit write slots are taken in any span of the window, by any number of takers at
// once; a hold stops every taker until it ends.
func TestWriteSlotsKeepTheBudget(t *testing.T) {
	eachEngine(t, func(t *testing.T, loc location) {
		clk := testkit.NewClock()
		a, b := loc.open(t, clk), (*DB)(nil) // on PostgreSQL, two desks on one database; one process owns a SQLite folder
		if loc.options.DatabaseURL != "" {
			b = loc.open(t, clk)
		}
		ctx := context.Background()
		var taken atomic.Int32
		var wg sync.WaitGroup
		for i := range 40 {
			db := a
			if b != nil && i%2 == 1 {
				db = b
			}
			wg.Go(func() {
				n, _, _, _, err := db.TakeWriteSlots(ctx, "t1", 7, 100, 20*time.Second)
				if err != nil {
					t.Error(err)
				}
				taken.Add(int32(n))
			})
		}
		wg.Wait()
		if taken.Load() != 100 {
			t.Errorf("%d slots taken of a budget of 100", taken.Load())
		}
		n, _, retry, _, err := a.TakeWriteSlots(ctx, "t1", 1, 100, 20*time.Second)
		if n != 0 || err != nil || !retry.Equal(clk.Now().Add(20*time.Second)) {
			t.Errorf("a full budget: %d %v %v", n, retry, err)
		}
		if n, _, _, _, _ := a.TakeWriteSlots(ctx, "t2", 5, 100, 20*time.Second); n != 5 {
			t.Errorf("another tenant's budget is shared: %d", n)
		}
		clk.Advance(20*time.Second + time.Millisecond)
		if n, _, _, _, _ := a.TakeWriteSlots(ctx, "t1", 30, 100, 20*time.Second); n != 30 {
			t.Errorf("after the window: %d slots", n)
		}
		until := clk.Now().Add(7 * time.Second)
		if err := a.HoldWrites(ctx, "t1", until); err != nil {
			t.Fatal(err)
		}
		if err := a.HoldWrites(ctx, "t1", clk.Now().Add(time.Second)); err != nil { // an earlier end does not shorten it
			t.Fatal(err)
		}
		if n, _, retry, held, _ := a.TakeWriteSlots(ctx, "t1", 1, 100, 20*time.Second); n != 0 || !retry.Equal(until) || !held {
			t.Errorf("during a hold: %d %v, held %v", n, retry, held)
		}
		if held, err := a.WriteHold(ctx, "t1"); err != nil || !held.Equal(until) {
			t.Errorf("the hold read back: %v %v", held, err)
		}
		if held, err := a.WriteHold(ctx, "t2"); err != nil || !held.IsZero() {
			t.Errorf("a tenant never held: %v %v", held, err)
		}
		clk.Advance(7 * time.Second)
		if n, _, _, _, _ := a.TakeWriteSlots(ctx, "t1", 1, 100, 20*time.Second); n != 1 {
			t.Errorf("after the hold: %d", n)
		}
	})
}

// Slots whose writes Graph answered are counted from the answer: a write that was slow to reach
// Graph is still in Graph's window when the slot's own window has passed.
func TestWriteSlotsCountFromGraphsAnswer(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		n, stamp, _, _, err := db.TakeWriteSlots(ctx, "t1", 10, 10, 20*time.Second)
		if n != 10 || err != nil {
			t.Fatalf("took %d: %v", n, err)
		}
		clk.Advance(5 * time.Second) // the writes took 5 s to be answered
		answered := clk.Now()
		other, otherStamp, _, _, _ := db.TakeWriteSlots(ctx, "t2", 3, 10, 20*time.Second) // another bucket, also stamped now
		if err := db.WriteSlotsAnswered(ctx, "t1", stamp, n, answered); err != nil {
			t.Fatal(err)
		}
		if err := db.WriteSlotsAnswered(ctx, "t1", stamp, n, answered.Add(-time.Hour)); err != nil { // never earlier
			t.Fatal(err)
		}
		clk.Advance(16 * time.Second) // 21 s after the slots were taken, 16 s after the answer
		if n, _, retry, held, _ := db.TakeWriteSlots(ctx, "t1", 1, 10, 20*time.Second); n != 0 || !retry.Equal(answered.Add(20*time.Second)) || held {
			t.Errorf("21 s after taking, 16 s after the answer: took %d, retry at %v (want %v), held %v", n, retry, answered.Add(20*time.Second), held)
		}
		if n, _, _, _, _ := db.TakeWriteSlots(ctx, "t2", 10, 10, 20*time.Second); n != 10-other {
			t.Errorf("another bucket: took %d (its slots at %v)", n, otherStamp)
		}
		clk.Advance(4*time.Second + time.Millisecond)
		if n, _, _, _, _ := db.TakeWriteSlots(ctx, "t1", 10, 10, 20*time.Second); n != 10 {
			t.Errorf("20 s after the answer: took %d", n)
		}
	})
}

// A serial's history gathers the activity that names it, the imports that carried it and the
// bulk changes that chose it, whatever the letter case; drafts and other tenants stay out.
func TestHistoryOfASerial(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		if err := db.RecordActivity(ctx, &Activity{TenantID: "t1", ObjectID: "o", Action: "device-group-tag", Serial: " 5cg123abc ", Outcome: "success", Summary: "Set"}); err != nil {
			t.Fatal(err)
		}
		if err := db.RecordActivity(ctx, &Activity{TenantID: "t2", ObjectID: "o", Action: "device-group-tag", Serial: "5CG123ABC", Outcome: "success"}); err != nil {
			t.Fatal(err)
		}
		for _, state := range []string{"draft", "checking", "sending"} { // only the one sent is history
			rows := testRows(2)
			rows[1].Serial = "5cg123ABC"
			job := &ImportJob{TenantID: "t1", ObjectID: "o", State: state}
			if err := db.CreateImportJob(ctx, job, func(yield func(ImportRow) bool) {
				for _, r := range rows {
					if !yield(r) {
						return
					}
				}
			}); err != nil {
				t.Fatal(err)
			}
			if state == "sending" {
				if err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, Rows: []RowOutcome{{Line: 3, Outcome: Outcome{Batch: 1, Verdict: "sent"}}}}); err != nil {
					t.Fatal(err)
				}
				found, err := db.SerialsImporting(ctx, "t1", []string{"5CG123abc", "nope"}, []string{"queued", "sending", "unknown", "sent"}, clk.Now())
				if err != nil || len(found) != 1 || found["5CG123ABC"] != job.ID {
					t.Errorf("serials being imported: %v %v", found, err)
				}
				if found, _ := db.SerialsImporting(ctx, "t2", []string{"5CG123ABC"}, []string{"sent"}, clk.Now()); len(found) != 0 {
					t.Errorf("another tenant's import was found: %v", found)
				}
			}
		}
		devices := bulkDevices(2)
		devices[0].Serial = "5CG123ABC"
		bulk := &BulkJob{TenantID: "t1", ObjectID: "o", State: "sending", Action: "unassign-user"}
		if err := db.CreateBulkJob(ctx, bulk, devices); err != nil {
			t.Fatal(err)
		}
		h, err := db.HistoryOfSerial(ctx, "t1", "5cg123abc", 0)
		if err != nil {
			t.Fatal(err)
		}
		if len(h.Activity) != 1 || h.Activity[0].Serial != "5CG123ABC" || len(h.Imports) != 1 || h.Imports[0].Verdict != "sent" || h.Imports[0].Line != 3 ||
			len(h.Bulk) != 1 || h.Bulk[0].Action != "unassign-user" || h.Bulk[0].DeviceID != "dev-000" {
			t.Errorf("history: %+v", h)
		}
	})
}

// The indexes that find a device's activity hold only activity naming a serial, and the index of
// what went wrong only failures and unknown outcomes: a successful create writes no entry to
// them on the request's path. (TestQueriesReadThroughIndexes
// checks that the device page's queries still read through them.)
func TestSuccessfulCreatesWriteNoEntryToPartialIndexes(t *testing.T) {
	db := openFileRig(t).db
	ctx := context.Background()
	for _, serial := range []string{"", "5CG123ABC", ""} {
		if err := db.RecordActivity(ctx, &Activity{TenantID: "t1", ObjectID: "o", Action: "create-upload", Target: "8d639524", Serial: serial, Outcome: "success"}); err != nil {
			t.Fatal(err)
		}
	}
	// dbstat reads the b-trees themselves; each index here fits in its one (leaf) page.
	entries := func(index string) int {
		return count(t, db, `SELECT COALESCE(SUM(ncell), 0) FROM dbstat WHERE name = ?`, index)
	}
	if n := entries("activity_tenant_at"); n != 3 {
		t.Fatalf("%d entries in activity_tenant_at, want every activity's 3", n)
	}
	for _, index := range []string{"activity_tenant_serial", "activity_tenant_target"} {
		if n := entries(index); n != 1 {
			t.Errorf("%d entries in %s, want only the activity naming a serial", n, index)
		}
	}
	if n := entries("activity_tenant_trouble"); n != 0 {
		t.Errorf("%d entries in activity_tenant_trouble, want none for successes", n)
	}
	if err := db.RecordActivity(ctx, &Activity{TenantID: "t1", ObjectID: "o", Action: "create-upload", Outcome: "failure"}); err != nil {
		t.Fatal(err)
	}
	if n := entries("activity_tenant_trouble"); n != 1 {
		t.Errorf("%d entries in activity_tenant_trouble, want the failure's", n)
	}
}

// A bulk change confirmed while an earlier one of the same devices records them as in flight, on
// SQLite and on PostgreSQL: each device is either left to the later change (never sent by the
// earlier one) or on its way in the earlier one, and then the later one waits for its answer —
// never both, never neither.
func TestLaterBulkChangeTakesOverQueuedDevicesAtomically(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		for round := range 5 {
			tenant := fmt.Sprintf("t%d", round) // a tenant's earlier rounds would be running changes too
			earlier := &BulkJob{TenantID: tenant, ObjectID: "adele", State: "sending", Action: "group-tag", GroupTag: "Old"}
			later := &BulkJob{TenantID: tenant, ObjectID: "adele", State: "draft", Action: "group-tag", GroupTag: "New"}
			other := &BulkJob{TenantID: tenant, ObjectID: "adele", State: "sending", Action: "unassign-user"}
			for _, j := range []*BulkJob{earlier, later, other} {
				if err := db.CreateBulkJob(ctx, j, bulkDevices(40)); err != nil {
					t.Fatal(err)
				}
			}
			var wg sync.WaitGroup
			sent := make([]bool, 41)
			for pos := 1; pos <= 40; pos++ {
				wg.Go(func() {
					err := db.ChangeBulk(ctx, BulkChange{JobID: earlier.ID, Devices: []BulkDeviceChange{{Position: pos, From: []string{BulkQueued}, BulkOutcome: BulkOutcome{State: BulkInFlight, Chunk: 1}}}})
					switch {
					case err == nil:
						sent[pos] = true
					case !errors.Is(err, ErrConflict):
						t.Error(err)
					}
				})
			}
			wg.Go(func() {
				if err := db.ChangeBulk(ctx, BulkChange{JobID: later.ID, FromState: "draft", State: "sending",
					Supersede: &BulkSupersede{TenantID: tenant, Action: "group-tag", Note: []byte(`{"laterJob":"x"}`), At: clk.Now(), Wait: time.Minute}}); err != nil {
					t.Error(err)
				}
			})
			wg.Wait()
			was, _ := db.BulkDevices(ctx, earlier.ID)
			now, _ := db.BulkDevices(ctx, later.ID)
			left := 0
			for i, d := range was {
				switch {
				case sent[d.Position] && (d.State != BulkInFlight || now[i].NotBefore.IsZero()):
					t.Errorf("round %d: device %d sent by the earlier change (%s) but the later one does not wait (%v)", round, d.Position, d.State, now[i].NotBefore)
				case !sent[d.Position] && (d.State != BulkSkipped || d.Reason != BulkReasonSuperseded || string(d.Failure) != `{"laterJob":"x"}` || !now[i].NotBefore.IsZero()):
					t.Errorf("round %d: device %d neither sent nor left to the later change: %+v, later waits until %v", round, d.Position, d.BulkOutcome, now[i].NotBefore)
				case !sent[d.Position]:
					left++
				}
			}
			if ds, _ := db.BulkDevices(ctx, other.ID); ds[0].State != BulkQueued {
				t.Errorf("a change of another property was touched: %s", ds[0].State)
			}
			t.Logf("round %d: %d of 40 left to the later change", round, left)
		}
	})
}

// With the slots taken, the time to ask again is when one frees below the caller's own limit: a
// change of one device (the whole budget) is told the oldest slots' time, a bulk change (a lower
// limit) the time enough of them free for it.
func TestWriteSlotsSayWhenOneFreesBelowTheLimit(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		w := 20 * time.Second
		t0 := clk.Now()
		if n, _, _, _, err := db.TakeWriteSlots(ctx, "t1", 2, 20, w); n != 2 || err != nil {
			t.Fatal(n, err)
		}
		clk.Advance(time.Second)
		if n, _, _, _, err := db.TakeWriteSlots(ctx, "t1", 18, 18, w); n != 16 || err != nil {
			t.Fatal(n, err) // a bulk change's share: 18 of 20
		}
		if n, _, _, _, err := db.TakeWriteSlots(ctx, "t1", 5, 20, w); n != 2 || err != nil {
			t.Fatal(n, err) // the rest, for single changes
		}
		if n, _, retryAt, _, _ := db.TakeWriteSlots(ctx, "t1", 1, 20, w); n != 0 || !retryAt.Equal(t0.Add(w)) {
			t.Errorf("a single change: %d taken, ask again at %v, want %v", n, retryAt, t0.Add(w))
		}
		if n, _, retryAt, _, _ := db.TakeWriteSlots(ctx, "t1", 1, 18, w); n != 0 || !retryAt.Equal(t0.Add(time.Second+w)) {
			t.Errorf("a bulk change: %d taken, ask again at %v, want %v", n, retryAt, t0.Add(time.Second+w))
		}
	})
}
