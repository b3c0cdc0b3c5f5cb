package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

func newCode(t *testing.T, db *DB, hash string, uses int, expires time.Time) *RegistrationCode {
	t.Helper()
	c := &RegistrationCode{TenantID: "t1", CreatorOID: "adele", CreatorName: "Adele", Note: "floor 3", GroupTag: "Floor3", ExpiresAt: expires, Uses: uses}
	if err := db.CreateRegistrationCode(context.Background(), c, hash, "", &Activity{TenantID: "t1", Action: "registration-code-created"}); err != nil {
		t.Fatal(err)
	}
	return c
}

func submission(code *RegistrationCode, serials ...string) *RegistrationSubmission {
	s := &RegistrationSubmission{CodeID: code.ID, TenantID: code.TenantID, ClientIP: "203.0.113.7"}
	for i, serial := range serials {
		s.Devices = append(s.Devices, RegistrationDevice{Line: i + 2, Serial: serial, Hash: testRows(1)[0].Hash, HashShown: "AAAA…ZZZZ", GroupTag: code.GroupTag})
	}
	return s
}

func received(a string) *Activity { return &Activity{TenantID: "t1", Action: a} }

// A code is found by its hash alone; it takes devices while it has uses, is not revoked and has
// not expired, each check part of the one statement that takes the uses; one form makes one code.
func TestRegistrationCodesTakeDevicesWhileUsable(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		c := &RegistrationCode{TenantID: "t1", CreatorOID: "adele", ExpiresAt: clk.Now().Add(time.Hour), Uses: 3}
		if err := db.CreateRegistrationCode(ctx, c, "hash-1", "form-1", received("created")); err != nil {
			t.Fatal(err)
		}
		again := &RegistrationCode{TenantID: "t1", CreatorOID: "adele", ExpiresAt: clk.Now().Add(time.Hour), Uses: 3}
		if err := db.CreateRegistrationCode(ctx, again, "hash-2", "form-1", received("created")); !errors.Is(err, ErrConflict) {
			t.Errorf("a second code from one form: %v", err)
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity`); n != 1 {
			t.Errorf("%d activities for one code", n)
		}
		got, err := db.RegistrationCodeByHash(ctx, "hash-1")
		if err != nil || got.ID != c.ID || !got.Usable(clk.Now()) {
			t.Fatalf("by hash: %+v %v", got, err)
		}
		if _, err := db.RegistrationCodeByHash(ctx, "hash-2"); !errors.Is(err, ErrNotFound) {
			t.Errorf("an unknown hash: %v", err)
		}
		if err := db.AddRegistration(ctx, submission(c, "A", "B"), received("received")); err != nil {
			t.Fatal(err)
		}
		if err := db.AddRegistration(ctx, submission(c, "C", "D"), received("received")); !errors.Is(err, ErrConflict) {
			t.Errorf("two devices with one use left: %v", err)
		}
		if n, _ := db.CountWaitingDevices(ctx, "t1"); n != 2 {
			t.Errorf("%d waiting devices, want 2", n)
		}
		waiting, _ := db.WaitingSerials(ctx, "t1", []string{"a", "C"})
		if w, ok := waiting["A"]; !ok || len(waiting) != 1 || w.CodeID != c.ID {
			t.Errorf("waiting serials %v", waiting)
		}
		if err := db.RevokeRegistrationCode(ctx, "t2", c.ID, "Bob", received("revoked")); !errors.Is(err, ErrConflict) {
			t.Errorf("revoked from another tenant: %v", err)
		}
		if err := db.RevokeRegistrationCode(ctx, "t1", c.ID, "Adele", received("revoked")); err != nil {
			t.Fatal(err)
		}
		if err := db.AddRegistration(ctx, submission(c, "E"), received("received")); !errors.Is(err, ErrConflict) {
			t.Errorf("a revoked code took a device: %v", err)
		}
		late := newCode(t, db, "hash-3", 5, clk.Now().Add(time.Minute))
		clk.Advance(time.Minute)
		if err := db.AddRegistration(ctx, submission(late, "F"), received("received")); !errors.Is(err, ErrConflict) {
			t.Errorf("an expired code took a device: %v", err)
		}
		if n, _ := db.CountWaitingDevices(ctx, "t1"); n != 2 {
			t.Errorf("%d waiting devices after the refusals", n)
		}
	})
}

// Of twenty approvals of one submission at once, exactly one succeeds and creates the one import
// job, holding the devices' hashes with their job lines; the others change nothing. A code's
// creator is refused when the approval says so.
func TestApproveRegistrationsOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		c := newCode(t, db, "hash-1", 5, clk.Now().Add(time.Hour))
		s := submission(c, "A", "B")
		if err := db.AddRegistration(ctx, s, received("received")); err != nil {
			t.Fatal(err)
		}
		approve := func(by string, notCreatedBy string) (*ImportJob, error) {
			job := &ImportJob{TenantID: "t1", ObjectID: by, State: "draft"}
			return job, db.ApproveRegistrations(ctx, Approval{TenantID: "t1", SubmissionIDs: []string{s.ID}, By: Decider{OID: by},
				NotCreatedBy: notCreatedBy, Job: job, Activity: received("approved")})
		}
		if _, err := approve("adele", "adele"); !errors.Is(err, ErrSelfApproval) {
			t.Errorf("the creator's approval: %v", err)
		}
		// A submission whose code has expired is not approved, even by someone else.
		short := newCode(t, db, "hash-short", 5, clk.Now().Add(time.Minute))
		late := submission(short, "C")
		if err := db.AddRegistration(ctx, late, received("received")); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute)
		err := db.ApproveRegistrations(ctx, Approval{TenantID: "t1", SubmissionIDs: []string{late.ID}, By: Decider{OID: "bob"},
			Job: &ImportJob{TenantID: "t1", ObjectID: "bob", State: "draft"}, Activity: received("approved")})
		if !errors.Is(err, ErrConflict) || count(t, db, `SELECT COUNT(*) FROM import_jobs`) != 0 {
			t.Errorf("approval of an expired code's submission: %v, %d import jobs", err, count(t, db, `SELECT COUNT(*) FROM import_jobs`))
		}
		var wg sync.WaitGroup
		var mu sync.Mutex
		var won []*ImportJob
		for i := range 20 {
			wg.Go(func() {
				job, err := approve(fmt.Sprintf("approver-%d", i%4), "")
				switch {
				case err == nil:
					mu.Lock()
					won = append(won, job)
					mu.Unlock()
				case !errors.Is(err, ErrConflict):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if len(won) != 1 {
			t.Fatalf("%d approvals succeeded", len(won))
		}
		if n := count(t, db, `SELECT COUNT(*) FROM import_jobs`); n != 1 {
			t.Errorf("%d import jobs", n)
		}
		rows, _ := db.ImportRows(ctx, won[0].ID, RowFilter{Hashes: true})
		if len(rows) != 2 || rows[0].Hash != s.Devices[0].Hash || rows[1].Serial != "B" || rows[1].Line != 2 || rows[0].GroupTag != "Floor3" {
			t.Errorf("job rows %+v", rows)
		}
		subs, _ := db.Registrations(ctx, SubmissionFilter{JobID: won[0].ID, Hashes: true})
		if len(subs) != 1 || subs[0].State != SubmissionApproved || subs[0].Devices[1].JobLine != 2 || subs[0].Devices[0].Hash == "" {
			t.Errorf("approved submission %+v", subs)
		}
		// Graph refused the approver's import: back to waiting, hashes kept.
		if err := db.SettleRegistration(ctx, Settlement{SubmissionID: s.ID, JobID: won[0].ID, Refused: "refused"}); err != nil {
			t.Fatal(err)
		}
		subs, _ = db.Registrations(ctx, SubmissionFilter{TenantID: "t1", Hashes: true})
		if subs[0].State != SubmissionWaiting || subs[0].JobID != "" || subs[0].Devices[0].Hash == "" || subs[0].Refused != "refused" {
			t.Errorf("after a refusal %+v", subs[0])
		}
		job, err := approve("approver-9", "")
		if err != nil {
			t.Fatal(err)
		}
		if err := db.SettleRegistration(ctx, Settlement{SubmissionID: s.ID, JobID: job.ID, SyncAt: clk.Now()}); err != nil {
			t.Fatal(err)
		}
		if err := db.SettleRegistration(ctx, Settlement{SubmissionID: s.ID, JobID: job.ID}); !errors.Is(err, ErrConflict) {
			t.Errorf("settled twice: %v", err)
		}
		subs, _ = db.Registrations(ctx, SubmissionFilter{TenantID: "t1", Hashes: true})
		if subs[0].State != SubmissionFinished || subs[0].Devices[0].Hash != "" {
			t.Errorf("finished %+v", subs[0])
		}
		due, _ := db.DueSyncs(ctx)
		if len(due) != 1 {
			t.Fatalf("due syncs %v", due)
		}
		first, _ := db.ClaimSync(ctx, job.ID, time.Minute)
		second, _ := db.ClaimSync(ctx, job.ID, time.Minute)
		if !first || second {
			t.Errorf("claims %v %v", first, second)
		}
	})
}

// Rejected and expired submissions lose their hashes, also from SQLite's files.
func TestRegistrationHashesLeaveTheFiles(t *testing.T) {
	files := openFileRig(t)
	db, clk, ctx := files.db, files.clk, context.Background()
	c := newCode(t, db, "hash-1", 5, clk.Now().Add(time.Hour))
	rejected, expired, imported := submission(c, "R"), submission(c, "E"), submission(c, "I")
	rejected.Devices[0].Hash, expired.Devices[0].Hash, imported.Devices[0].Hash = testRows(2)[0].Hash, testRows(3)[2].Hash, testRows(4)[3].Hash
	for _, s := range []*RegistrationSubmission{rejected, expired, imported} {
		if err := db.AddRegistration(ctx, s, received("received")); err != nil {
			t.Fatal(err)
		}
	}
	markers := [][]byte{[]byte(rejected.Devices[0].Hash[100:140]), []byte(expired.Devices[0].Hash[100:140]), []byte(imported.Devices[0].Hash[100:140])}
	for _, m := range markers {
		if len(files.holding(m)) == 0 {
			t.Fatal("a hash is in no file before it is overwritten: the test would prove nothing")
		}
	}
	if err := db.RejectRegistrations(ctx, "t1", []string{rejected.ID}, Decider{OID: "bob"}, "not ours", received("rejected")); err != nil {
		t.Fatal(err)
	}
	if err := db.RejectRegistrations(ctx, "t1", []string{rejected.ID}, Decider{OID: "bob"}, "again", received("rejected")); !errors.Is(err, ErrConflict) {
		t.Errorf("rejected twice: %v", err)
	}
	// Imported: the job's rows lose the hash when the import finishes, the submission when it settles.
	job := &ImportJob{TenantID: "t1", ObjectID: "bob", State: "draft"}
	if err := db.ApproveRegistrations(ctx, Approval{TenantID: "t1", SubmissionIDs: []string{imported.ID}, By: Decider{OID: "bob"}, Job: job,
		Activity: received("approved")}); err != nil {
		t.Fatal(err)
	}
	if err := db.ChangeImport(ctx, ImportChange{JobID: job.ID, FromState: "draft", State: "finished", WipeHashes: true}); err != nil {
		t.Fatal(err)
	}
	if err := db.SettleRegistration(ctx, Settlement{SubmissionID: imported.ID, JobID: job.ID}); err != nil {
		t.Fatal(err)
	}
	clk.Advance(time.Hour)
	n, err := db.ExpireRegistrations(ctx, func(RegistrationSubmission) *Activity { return received("expired") })
	if err != nil || n != 1 {
		t.Fatalf("expired %d: %v", n, err)
	}
	files.checkpoint()
	for i, m := range markers {
		if where := files.holding(m); len(where) > 0 {
			t.Errorf("hash %d is still readable in %v", i, where)
		}
	}
	subs, _ := db.Registrations(ctx, SubmissionFilter{TenantID: "t1"})
	if subs[0].State != SubmissionRejected || subs[0].Reason != "not ours" || subs[1].State != SubmissionExpired || subs[2].State != SubmissionFinished {
		t.Errorf("states %s %s %s", subs[0].State, subs[1].State, subs[2].State)
	}
	// Thirty days on, an expired code goes with what its devices sent.
	clk.Advance(31 * 24 * time.Hour)
	if n, err := db.PurgeRegistrations(ctx, clk.Now().Add(-30*24*time.Hour)); err != nil || n != 1 {
		t.Errorf("purged %d: %v", n, err)
	}
	if n := count(t, db, `SELECT COUNT(*) FROM registration_devices`); n != 0 {
		t.Errorf("%d devices left after the purge", n)
	}
}

// Exceeded reads a window as Allow counts it, without counting.
func TestExceededDoesNotCount(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		for i := range 3 {
			if over, _, err := db.Exceeded(ctx, "b", 2, time.Minute); err != nil || over {
				t.Fatalf("before event %d: over %v, %v", i+1, over, err)
			}
			db.Allow(ctx, "b", 2, time.Minute)
		}
		over, retry, err := db.Exceeded(ctx, "b", 2, time.Minute)
		if err != nil || !over || retry <= 0 || retry > time.Minute {
			t.Errorf("after 3 events: over %v, retry %v, %v", over, retry, err)
		}
		if over, _, _ := db.Exceeded(ctx, "b", 3, time.Minute); over {
			t.Error("3 events exceed a limit of 3")
		}
		clk.Advance(time.Minute)
		if over, _, _ := db.Exceeded(ctx, "b", 2, time.Minute); over {
			t.Error("a new window is over")
		}
	})
}

// The page lists every code that still takes devices however many codes came after it, and the
// newest of the others with how many there are; a code is found by its id within its tenant
// alone, whatever its state.
func TestRegistrationCodesListEveryUsableCode(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		old := newCode(t, db, "old", 50, clk.Now().Add(7*24*time.Hour))
		var ended []*RegistrationCode
		for i := range 12 {
			clk.Advance(time.Second)
			c := newCode(t, db, fmt.Sprint("later-", i), 1, clk.Now().Add(time.Hour))
			switch i % 3 {
			case 0: // used
				if err := db.AddRegistration(ctx, submission(c, fmt.Sprint("SN-", i)), received("registration-received")); err != nil {
					t.Fatal(err)
				}
				ended = append(ended, c)
			case 1: // revoked
				if err := db.RevokeRegistrationCode(ctx, "t1", c.ID, "Adele", received("revoked")); err != nil {
					t.Fatal(err)
				}
				ended = append(ended, c)
			}
		}
		expiring := newCode(t, db, "expiring", 2, clk.Now().Add(time.Minute))
		clk.Advance(2 * time.Minute)
		ended = append(ended, expiring)
		list, err := db.RegistrationCodes(ctx, "t1", 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.Usable) != 5 || list.Usable[4].ID != old.ID || list.Ended != 9 || len(list.Newest) != 3 {
			t.Fatalf("%d usable (the last %s), %d ended, %d of them listed; want 5 (the last the oldest), 9 and 3",
				len(list.Usable), list.Usable[len(list.Usable)-1].Note, list.Ended, len(list.Newest))
		}
		for i, want := range []*RegistrationCode{ended[8], ended[7], ended[6]} {
			if list.Newest[i].ID != want.ID {
				t.Errorf("ended code %d is %s, want %s", i, list.Newest[i].ID, want.ID)
			}
		}
		for _, c := range list.Usable {
			if !c.Usable(clk.Now()) {
				t.Errorf("listed as usable: %+v", c)
			}
		}
		if c, err := db.RegistrationCode(ctx, "t1", old.ID); err != nil || c.ID != old.ID || c.Uses != 50 {
			t.Errorf("the old code by its id: %+v %v", c, err)
		}
		if _, err := db.RegistrationCode(ctx, "t2", old.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("another tenant's code by its id: %v", err)
		}
		if c, err := db.RegistrationCode(ctx, "t1", expiring.ID); err != nil || c.Usable(clk.Now()) {
			t.Errorf("an expired code by its id: %+v %v", c, err)
		}
	})
}

// The codes with devices waiting are counted by code, the one expiring first first, so the page
// can show them a few codes at a time and still reach every one.
func TestWaitingByCodeCountsEveryWaitingDevice(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		late := newCode(t, db, "late", 5, clk.Now().Add(3*time.Hour))
		soon := newCode(t, db, "soon", 5, clk.Now().Add(time.Hour))
		gone := newCode(t, db, "gone", 5, clk.Now().Add(time.Minute))
		for _, s := range []*RegistrationSubmission{submission(late, "L1", "L2"), submission(late, "L3"), submission(soon, "S1"), submission(gone, "G1")} {
			if err := db.AddRegistration(ctx, s, received("registration-received")); err != nil {
				t.Fatal(err)
			}
		}
		other := newCode(t, db, "other", 5, clk.Now().Add(time.Hour))
		if _, err := db.exec(ctx, `UPDATE registration_codes SET tenant_id = 't2' WHERE id = ?`, other.ID); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Minute)
		got, err := db.WaitingByCode(ctx, "t1")
		if err != nil {
			t.Fatal(err)
		}
		want := []WaitingCode{{CodeID: soon.ID, Devices: 1}, {CodeID: late.ID, Devices: 3}}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("waiting by code: %+v, want %+v", got, want)
		}
		subs, err := db.Registrations(ctx, SubmissionFilter{TenantID: "t1", CodeIDs: []string{late.ID, gone.ID}, States: []string{SubmissionWaiting}})
		if err != nil || len(subs) != 3 {
			t.Errorf("the waiting registrations of two codes: %d, %v", len(subs), err)
		}
	})
}
