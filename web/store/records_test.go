package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/guid"
)

func TestFlowsAreSingleUseAndExpire(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		put := func(id string) {
			t.Helper()
			f := FlowRecord{ID: id, State: "state-" + id, Nonce: "n", Verifier: "v", ReturnTo: "/uploads/new", Data: []byte(`{"status":"pending"}`)}
			if err := db.PutFlow(ctx, f); err != nil {
				t.Fatal(err)
			}
		}
		put("flow-1")
		clk.Advance(time.Minute)
		got, err := db.TakeFlow(ctx, "flow-1", "state-flow-1", 10*time.Minute)
		if err != nil || got.State != "state-flow-1" || got.Nonce != "n" || got.Verifier != "v" || got.ReturnTo != "/uploads/new" ||
			string(got.Data) != `{"status":"pending"}` || !got.CreatedAt.Equal(clk.Now().Add(-time.Minute)) {
			t.Fatalf("take: %+v %v", got, err)
		}
		if _, err := db.TakeFlow(ctx, "flow-1", "state-flow-1", 10*time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("replayed: %v", err)
		}
		if _, err := db.TakeFlow(ctx, "never-started", "state-never-started", 10*time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("unknown: %v", err)
		}

		// Another sign-in's answer leaves the flow for its own.
		put("flow-2")
		for _, state := range []string{"", "state-flow-1", "state-flow-2 "} {
			if _, err := db.TakeFlow(ctx, "flow-2", state, 10*time.Minute); !errors.Is(err, ErrOtherFlow) {
				t.Errorf("state %q: %v, want ErrOtherFlow", state, err)
			}
		}
		clk.Advance(5*time.Minute + time.Millisecond)
		if _, err := db.TakeFlow(ctx, "flow-2", "state-flow-2", 5*time.Minute); !errors.Is(err, ErrNotFound) {
			t.Errorf("expired flow taken: %v", err)
		}
		put("flow-3")
		clk.Advance(10*time.Minute + time.Millisecond)
		if _, err := db.TakeFlow(ctx, "flow-3", "state-flow-3", time.Hour); !errors.Is(err, ErrNotFound) {
			t.Errorf("a flow lived past 10 minutes: %v", err)
		}
	})
}

func TestFlowTakenOnceUnderConcurrency(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		if err := db.PutFlow(ctx, FlowRecord{ID: "flow", State: "s", Nonce: "n", Verifier: "v", ReturnTo: "/"}); err != nil {
			t.Fatal(err)
		}
		var taken atomic.Int32
		var wg sync.WaitGroup
		for range 10 {
			wg.Go(func() {
				_, err := db.TakeFlow(ctx, "flow", "s", 10*time.Minute)
				switch {
				case err == nil:
					taken.Add(1)
				case !errors.Is(err, ErrNotFound):
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if taken.Load() != 1 {
			t.Errorf("taken %d times", taken.Load())
		}
	})
}

func TestFormKeyClaimedExactlyOnce(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		if ok, _, _, err := db.ClaimFormKey(ctx, "other", "session-b", time.Hour); !ok || err != nil {
			t.Fatalf("first claim of a fresh key: %v %v", ok, err)
		}
		if ok, state, _, err := db.ClaimFormKey(ctx, "other", "session-a", time.Hour); ok || state != "" || err != nil {
			t.Fatalf("a key of another session: %v %q %v", ok, state, err)
		}
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				ok, state, _, err := db.ClaimFormKey(ctx, "key", "session-a", time.Hour)
				if err != nil {
					t.Error(err)
				}
				if state != FormKeyInProgress {
					t.Errorf("state seen by a claim: %q", state)
				}
				if ok {
					wins.Add(1)
				}
			})
		}
		wg.Wait()
		if wins.Load() != 1 {
			t.Fatalf("%d of 20 concurrent claims won, want 1", wins.Load())
		}
		act := &Activity{TenantID: "t", Action: "create-upload", Outcome: "success"}
		if err := db.RecordSubmission(ctx, act, "key"); err != nil {
			t.Fatal(err)
		}
		if ok, state, ref, _ := db.ClaimFormKey(ctx, "key", "session-a", time.Hour); ok || state != FormKeyDone || ref != act.ID {
			t.Errorf("claim when done: %v %q %q, want the activity %s", ok, state, ref, act.ID)
		}
		if got, err := db.GetActivity(ctx, "t", act.ID); err != nil || got.Action != "create-upload" {
			t.Errorf("the submission's activity: %+v %v", got, err)
		}
		// A form key completes one activity: a second submission record for it is refused and
		// leaves nothing behind.
		again := &Activity{TenantID: "t", Action: "create-upload", Outcome: "success"}
		if err := db.RecordSubmission(ctx, again, "key"); err == nil {
			t.Error("a form key completed a second activity")
		}
		if _, err := db.GetActivity(ctx, "t", again.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("the refused record left an activity: %v", err)
		}
		if _, state, ref, _ := db.ClaimFormKey(ctx, "key", "session-a", time.Hour); state != FormKeyDone || ref != act.ID {
			t.Errorf("after a refused record: %q %q", state, ref)
		}
	})
}

func TestFormKeyReleaseAndExpiry(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		if ok, _, _, _ := db.ClaimFormKey(ctx, "k", "s", time.Hour); !ok {
			t.Fatal("first claim lost")
		}
		if err := db.ReleaseFormKey(ctx, "k"); err != nil {
			t.Fatal(err)
		}
		if ok, _, _, _ := db.ClaimFormKey(ctx, "k", "s", time.Hour); !ok {
			t.Error("a released key cannot be claimed again")
		}
		db.RecordSubmission(ctx, &Activity{TenantID: "t"}, "k")
		db.ReleaseFormKey(ctx, "k")
		if _, state, _, _ := db.ClaimFormKey(ctx, "k", "s", time.Hour); state != FormKeyDone {
			t.Errorf("release reopened a finished key: %q", state)
		}
		// Claimed keys are swept once expired; the desk refuses old forms before claiming.
		db.ClaimFormKey(ctx, "old", "s", time.Minute)
		clk.Advance(2 * time.Minute)
		if _, err := db.SweepExpired(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		var n int
		db.queryRow(ctx, `SELECT COUNT(*) FROM form_key_claims WHERE key_hash = ?`, []any{hashID("old")}, &n)
		if n != 0 {
			t.Errorf("an expired key was not swept")
		}
		if ok, _, _, err := db.ClaimFormKey(ctx, "", "", time.Hour); ok || err != nil {
			t.Errorf("empty key: %v %v", ok, err)
		}
		if ok, _, _, _ := db.ClaimFormKey(ctx, "k2", "", time.Minute); ok {
			t.Error("claimed a key bound to no session")
		}
	})
}

func TestRateLimitCountsPerBucketAndWindow(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		clk.Advance(10 * time.Second) // 12:00:10, inside the 12:00 minute
		for i := range 3 {
			if ok, retry, err := db.Allow(ctx, "create:ip:192.0.2.1", 3, time.Minute); !ok || retry != 0 || err != nil {
				t.Fatalf("call %d refused: %v %v", i+1, retry, err)
			}
		}
		clk.Advance(5 * time.Second)
		ok, retry, err := db.Allow(ctx, "create:ip:192.0.2.1", 3, time.Minute)
		if ok || retry != 45*time.Second || err != nil {
			t.Errorf("fourth call: ok=%v retryAfter=%s err=%v", ok, retry, err)
		}
		if ok, _, _ := db.Allow(ctx, "create:ip:192.0.2.2", 3, time.Minute); !ok {
			t.Error("another bucket was refused")
		}
		if ok, _, _ := db.Allow(ctx, "create:ip:192.0.2.1", 3, time.Hour); !ok {
			t.Error("a window of another length shares the count")
		}
		clk.Advance(45 * time.Second) // 12:01:00
		if ok, _, _ := db.Allow(ctx, "create:ip:192.0.2.1", 3, time.Minute); !ok {
			t.Error("refused in a new window")
		}
		if _, _, err := db.Allow(ctx, "b", 1, 0); err == nil {
			t.Error("accepted a zero window")
		}
	})
}

func TestRateLimitSharedUnderConcurrency(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		var allowed atomic.Int32
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				ok, _, err := db.Allow(context.Background(), "signin:user:t:o", 5, time.Minute)
				if err != nil {
					t.Error(err)
				}
				if ok {
					allowed.Add(1)
				}
			})
		}
		wg.Wait()
		if allowed.Load() != 5 {
			t.Errorf("%d of 20 allowed, want 5", allowed.Load())
		}
	})
}

func TestActivityRecordGetUpdate(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		clk.Advance(1500 * time.Microsecond)
		a := &Activity{TenantID: "t1", ObjectID: "o1", ActorName: "Adele Vance", ActorUPN: "adele@contoso.example", Action: "create-upload",
			Target: "uploads", Outcome: "in-progress", Summary: "Creating an upload"}
		if err := db.RecordActivity(ctx, a); err != nil {
			t.Fatal(err)
		}
		if !isTimeOrderedGUID(a.ID) || !a.At.Equal(clk.Now().Truncate(time.Millisecond)) || a.At.Location() != time.UTC {
			t.Errorf("assigned id %q at %s", a.ID, a.At)
		}
		a.Outcome, a.StatusCode, a.RequestID, a.ClientRequestID = "success", 201, "req-1", "client-1"
		a.Target, a.Summary, a.Detail = "8d639524-9524-8d63-2495-638d2495638d", "Created an upload", []byte(`{"status":201}`)
		if err := db.UpdateActivity(ctx, a, "in-progress"); err != nil {
			t.Fatal(err)
		}
		// A second change that read the record before the first landed overwrites nothing.
		late := *a
		late.Outcome, late.Summary = "failure", "Not created"
		if err := db.UpdateActivity(ctx, &late, "in-progress"); !errors.Is(err, ErrConflict) {
			t.Errorf("a change from an outcome the record no longer has: %v", err)
		}
		got, err := db.GetActivity(ctx, "t1", a.ID)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprintf("%+v", *got) != fmt.Sprintf("%+v", *a) {
			t.Errorf("read back\n %+v\nwant\n %+v", *got, *a)
		}
		if _, err := db.GetActivity(ctx, "t2", a.ID); !errors.Is(err, ErrNotFound) {
			t.Errorf("another tenant read it: %v", err)
		}
		other := *a
		other.TenantID, other.Outcome = "t2", "failure"
		if err := db.UpdateActivity(ctx, &other, "success"); !errors.Is(err, ErrNotFound) {
			t.Errorf("another tenant updated it: %v", err)
		}
		if err := db.RecordActivity(ctx, &Activity{Action: "sync"}); err == nil {
			t.Error("recorded an activity of no tenant")
		}
	})
}

// The uploads a tenant's history records as created are those of its successful creates: not
// a create that failed or whose outcome is unknown, not another tenant's, not another action's.
func TestCreatedUploadsAreTheTenantsSuccessfulCreates(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		for _, a := range []Activity{
			{TenantID: "t1", Action: "create-upload", Outcome: "success", Target: "u-a"},
			{TenantID: "t1", Action: "create-upload", Outcome: "success", Target: "u-a"},
			{TenantID: "t1", Action: "create-upload", Outcome: "outcome-unknown", Target: "u-b"},
			{TenantID: "t1", Action: "create-upload", Outcome: "failure", Target: "u-c"},
			{TenantID: "t1", Action: "update-upload", Outcome: "success", Target: "u-d"},
			{TenantID: "t2", Action: "create-upload", Outcome: "success", Target: "u-e"},
		} {
			if err := db.RecordActivity(ctx, &a); err != nil {
				t.Fatal(err)
			}
		}
		got, err := db.CreatedUploads(ctx, "t1", []string{"u-a", "u-b", "u-c", "u-d", "u-e", "u-f"})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || !got["u-a"] {
			t.Errorf("created: %v, want only u-a", got)
		}
		if got, err := db.CreatedUploads(ctx, "t1", nil); err != nil || len(got) != 0 {
			t.Errorf("no ids: %v %v", got, err)
		}
	})
}

// A record retried after its first attempt committed (the answer was lost) lands once, without
// an error, with or without the form key it completes.
func TestActivityRecordIsSafeToRetry(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		a := &Activity{TenantID: "t1", ObjectID: "o1", Action: "sync", Outcome: "success"}
		for range 2 {
			if err := db.RecordActivity(ctx, a); err != nil {
				t.Fatal(err)
			}
		}
		if ok, _, _, err := db.ClaimFormKey(ctx, "key", "session", time.Hour); !ok || err != nil {
			t.Fatal(ok, err)
		}
		b := &Activity{TenantID: "t1", ObjectID: "o1", Action: "create-upload", Outcome: "success"}
		for range 2 {
			if err := db.RecordSubmission(ctx, b, "key"); err != nil {
				t.Fatal(err)
			}
		}
		if n := count(t, db, `SELECT COUNT(*) FROM activity`); n != 2 {
			t.Errorf("%d rows, want 2", n)
		}
		if _, state, ref, err := db.ClaimFormKey(ctx, "key", "session", time.Hour); state != FormKeyDone || ref != b.ID || err != nil {
			t.Errorf("form key %s %q %v", state, ref, err)
		}
	})
}

// isTimeOrderedGUID reports whether s is a lowercase version 7 GUID.
func isTimeOrderedGUID(s string) bool {
	return guid.Valid(s) && s == strings.ToLower(s) && uuid.MustParse(s).Version() == 7
}

// Activity ids are version 7 GUIDs: they begin with their creation time in milliseconds, so
// they sort by creation and append to the id index, even when drawn in the same millisecond.
func TestIDsAreTimeOrdered(t *testing.T) {
	before := time.Now().UnixMilli()
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = newID()
	}
	for i, id := range ids {
		if !isTimeOrderedGUID(id) || i > 0 && id <= ids[i-1] {
			t.Fatalf("id %d: %s after %s", i, id, ids[max(i-1, 0)])
		}
	}
	if ms, err := strconv.ParseInt(strings.ReplaceAll(ids[0][:13], "-", ""), 16, 64); err != nil || ms < before || ms > time.Now().UnixMilli() {
		t.Errorf("time prefix of %s is not the time it was drawn", ids[0])
	}
}

func TestActivityListFiltersPagesAndPurges(t *testing.T) {
	eachDB(t, func(t *testing.T, db *DB, clk *testkit.Clock) {
		ctx := context.Background()
		// 7 entries in tenant t1, the last three at the same instant to exercise the id tie-break.
		var want []string
		for i := range 7 {
			if i < 5 {
				clk.Advance(time.Second)
			}
			a := &Activity{TenantID: "t1", ObjectID: []string{"adele", "bob"}[i%2], Action: "create-upload",
				Outcome: []string{"success", "failure"}[i%2], Summary: fmt.Sprint(i)}
			if err := db.RecordActivity(ctx, a); err != nil {
				t.Fatal(err)
			}
			want = append(want, a.ID)
		}
		if err := db.RecordActivity(ctx, &Activity{TenantID: "t2", ObjectID: "adele", Action: "create-upload", Outcome: "success"}); err != nil {
			t.Fatal(err)
		}

		var seen []Activity
		cursor, pages := "", 0
		for {
			page, next, err := db.ListActivity(ctx, ActivityFilter{TenantID: "t1", Limit: 3, Before: cursor})
			if err != nil {
				t.Fatal(err)
			}
			seen, cursor, pages = append(seen, page...), next, pages+1
			if next == "" {
				break
			}
		}
		if pages != 3 || len(seen) != 7 {
			t.Fatalf("%d entries in %d pages, want 7 in 3", len(seen), pages)
		}
		// Back from the last page, newer entries come in the same pages, newest first.
		var back []Activity
		cursor = ActivityCursor(seen[len(seen)-1])
		for {
			page, next, err := db.ListActivity(ctx, ActivityFilter{TenantID: "t1", Limit: 3, After: cursor})
			if err != nil {
				t.Fatal(err)
			}
			back = append(page, back...)
			if next == "" {
				break
			}
			cursor = ActivityCursor(page[0])
		}
		if len(back) != 6 || back[0].ID != seen[0].ID || back[5].ID != seen[5].ID {
			t.Errorf("newer entries: %d, want the 6 before the oldest in order", len(back))
		}
		ids := map[string]bool{}
		for i, a := range seen {
			if a.TenantID != "t1" {
				t.Errorf("listed tenant %s's activity", a.TenantID)
			}
			if i > 0 && (a.At.After(seen[i-1].At) || a.At.Equal(seen[i-1].At) && a.ID > seen[i-1].ID) {
				t.Errorf("not newest first at %d", i)
			}
			ids[a.ID] = true
		}
		for _, id := range want {
			if !ids[id] {
				t.Errorf("paging skipped %s", id)
			}
		}

		for _, name := range []struct{ name, upn string }{{"Adele Vance", "AdeleV@contoso.example"}, {"Bob_100%", "bob@contoso.example"}} {
			if err := db.RecordActivity(ctx, &Activity{TenantID: "t3", ActorName: name.name, ActorUPN: name.upn, Action: "sync", Outcome: "success"}); err != nil {
				t.Fatal(err)
			}
		}
		for person, want := range map[string]int{"adele": 1, "VANCE": 1, "adelev@": 1, "AdeleV@contoso.example": 1, "contoso": 0, "dele": 0,
			"bob_": 1, "bob%": 0, "_": 0, "%": 0, " ": 2} {
			if got, _, err := db.ListActivity(ctx, ActivityFilter{TenantID: "t3", Person: person}); err != nil || len(got) != want {
				t.Errorf("person %q: %d entries, %v; want %d", person, len(got), err, want)
			}
		}
		for _, c := range []struct {
			f    ActivityFilter
			want int
		}{
			{ActivityFilter{TenantID: "t1", Outcome: "failure"}, 3},
			{ActivityFilter{TenantID: "t1", ObjectID: "adele"}, 4},
			{ActivityFilter{TenantID: "t1", ObjectID: "adele", Outcome: "failure"}, 0},
			{ActivityFilter{TenantID: "t1", Action: "sync"}, 0},
			{ActivityFilter{TenantID: "t2"}, 1},
		} {
			if got, _, err := db.ListActivity(ctx, c.f); err != nil || len(got) != c.want {
				t.Errorf("%+v: %d entries, %v; want %d", c.f, len(got), err, c.want)
			}
		}
		if _, _, err := db.ListActivity(ctx, ActivityFilter{}); err == nil {
			t.Error("listed without a tenant")
		}
		for _, bad := range []string{"x", "12_", "_id", "abc_def"} {
			if _, _, err := db.ListActivity(ctx, ActivityFilter{TenantID: "t1", Before: bad}); !errors.Is(err, ErrInvalidCursor) {
				t.Errorf("cursor %q: %v", bad, err)
			}
		}

		// Entries at 12:00:01 and 12:00:02 are older than 12:00:03.
		n, err := db.PurgeActivity(ctx, time.Date(2026, 11, 28, 12, 0, 3, 0, time.UTC))
		if err != nil || n != 2 {
			t.Errorf("purged %d, %v; want 2", n, err)
		}
		if left, _, _ := db.ListActivity(ctx, ActivityFilter{TenantID: "t1"}); len(left) != 5 {
			t.Errorf("%d left after purge", len(left))
		}
	})
}
