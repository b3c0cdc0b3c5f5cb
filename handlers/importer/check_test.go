package importer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// checkRig is a draft of n rows whose check has been started, with a checker over a real store.
type checkRig struct {
	t       *testing.T
	db      *store.DB
	graph   *fakeGraph
	tokens  *fakeTokens
	checker *Checker
	job     *store.ImportJob
	fault   func(point string) error // the checker's fault hook, when set
	now     time.Time                // the clock of the store and the checker
}

func newCheckRig(t *testing.T, n int) *checkRig {
	t.Helper()
	r := &checkRig{t: t, graph: &fakeGraph{registered: map[string]bool{}}, tokens: &fakeTokens{signedIn: true}, now: time.Now()}
	clock := func() time.Time { return r.now }
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), Now: clock})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	r.db = db
	fault := func(point string) error {
		if r.fault == nil {
			return nil
		}
		return r.fault(point)
	}
	r.checker = NewChecker(CheckerOptions{Options: jobs.Options{Tokens: r.tokens, Lease: time.Minute, Fault: fault, Now: clock}, Store: db, Graph: r.graph})
	rows := make([]store.ImportRow, n)
	for i := range rows {
		rows[i] = store.ImportRow{Line: i + 2, Serial: fmt.Sprintf("SN-%04d", i), Hash: "AAAA", HashShown: "x"}
	}
	r.job = &store.ImportJob{TenantID: "t", ObjectID: "o", ActorName: "Adele Vance", State: StateDraft}
	ctx := context.Background()
	if err := db.CreateImportJob(ctx, r.job, slices.Values(rows)); err != nil {
		t.Fatal(err)
	}
	start := Payload{Check: &Check{Of: n, Started: time.Now()}}
	if err := db.StartTenantCheck(ctx, "t", r.job.ID, "o", start.Encode()); err != nil {
		t.Fatal(err)
	}
	return r
}

// run lets the checker take every step that is due: the whole check, unless something ends it.
func (r *checkRig) run() {
	for r.checker.Once(context.Background(), "checker") {
	}
}

// ended is the job once its check has ended, with its payload.
func (r *checkRig) ended() Payload {
	r.t.Helper()
	j, err := r.db.GetImportJob(context.Background(), "t", r.job.ID)
	if err != nil {
		r.t.Fatal(err)
	}
	if j.State != StateDraft || j.LeaseOwner != "" {
		r.t.Fatalf("the check has not ended: state %s, lease %q", j.State, j.LeaseOwner)
	}
	p, _ := DecodePayload(j.Payload)
	if p.Check != nil {
		r.t.Errorf("the ended check still shows its progress: %+v", p.Check)
	}
	return p
}

func (r *checkRig) registeredRows() []int {
	rows, err := r.db.ImportRows(context.Background(), r.job.ID, store.RowFilter{})
	if err != nil {
		r.t.Fatal(err)
	}
	var lines []int
	for _, row := range rows {
		if row.RegisteredID != "" {
			lines = append(lines, row.Line)
		}
	}
	return lines
}

// Step by step to the end: 1,100 serials in eleven steps of 100, each asked for once, and the
// check says what it found.
func TestCheckLooksEverySerialUpOnceStepByStep(t *testing.T) {
	r := newCheckRig(t, 1100)
	r.graph.registered["SN-0000"], r.graph.registered["SN-1099"] = true, true
	r.run()
	p := r.ended()
	if !p.Checked || p.Failure != nil || p.LastCheck == nil || p.LastCheck.Found != 2 || p.LastCheck.Done != 1100 || p.LastCheck.Ended.IsZero() {
		t.Errorf("checked %v, failure %+v, last check %+v", p.Checked, p.Failure, p.LastCheck)
	}
	var asked []int
	for _, l := range r.graph.lookups {
		asked = append(asked, len(l.serials))
	}
	if !slices.Equal(asked, slices.Repeat([]int{100}, 11)) {
		t.Errorf("serials asked for, a step at a time: %v", asked)
	}
	if got := r.registeredRows(); !slices.Equal(got, []int{2, 1101}) {
		t.Errorf("registered rows %v, want lines 2 and 1101", got)
	}
}

// The owner signed out while the check went on: it ends at the next step, asking Graph nothing
// more, and says how far it had come.
func TestCheckEndsWhenItsOwnerHasSignedOut(t *testing.T) {
	r := newCheckRig(t, 1100)
	r.fault = func(point string) error {
		if point == FaultCheckStepRecorded && len(r.graph.lookups) == 3 {
			r.tokens.mu.Lock()
			r.tokens.signedIn = false
			r.tokens.mu.Unlock()
		}
		return nil
	}
	r.run()
	p := r.ended()
	if f := p.Failure; f == nil || f.Cause != explain.CheckSignedOut || f.Unchecked != 800 || f.Of != 1100 || p.Checked || len(r.graph.lookups) != 3 {
		t.Fatalf("failure %+v, checked %v, %d lookups", p.Failure, p.Checked, len(r.graph.lookups))
	}
	if e := explain.Explain(*p.Failure); e.Title != "The check stopped when your sign-in ended" || !strings.Contains(e.What, "ended after 300 of 1,100 serial numbers") {
		t.Errorf("the page says %+v", e)
	}
}

// Graph refuses a whole step: the check ends there, the steps after it are not asked for, what
// the earlier steps found stays, and the page can say how many serials are unknown and why.
func TestCheckEndsAtAStepGraphRefusesWhole(t *testing.T) {
	r := newCheckRig(t, 1100)
	r.graph.registered["SN-0000"] = true
	forbidden := &graphclient.Error{Kind: graphclient.KindForbiddenPermission, StatusCode: http.StatusForbidden} // the role was taken away meanwhile
	r.graph.lookupFails = func(n int) error {
		if n == 2 {
			return forbidden
		}
		return nil
	}
	r.run()
	p := r.ended()
	if len(r.graph.lookups) != 2 {
		t.Errorf("%d steps asked for, want the two up to the refusal", len(r.graph.lookups))
	}
	if f := p.Failure; f == nil || f.Cause != explain.SerialsUnchecked || f.Unchecked != 1000 || f.Of != 1100 || f.Graph == nil || f.Graph.StatusCode != 403 || p.Checked {
		t.Errorf("failure %+v, checked %v", f, p.Checked)
	}
	if got := r.registeredRows(); !slices.Equal(got, []int{2}) {
		t.Errorf("registered rows %v, want line 2 from the first step", got)
	}
}

// Graph refuses the first step whole: nothing was checked, and the failure is Graph's own.
func TestCheckRefusedFromTheStartIsGraphsFailure(t *testing.T) {
	r := newCheckRig(t, 30)
	r.graph.lookupFails = func(int) error {
		return &graphclient.Error{Kind: graphclient.KindForbiddenPermission, StatusCode: http.StatusForbidden}
	}
	r.run()
	p := r.ended()
	if f := p.Failure; f == nil || f.Cause != "" || f.Graph == nil || f.Graph.StatusCode != 403 || p.Checked {
		t.Errorf("failure %+v, checked %v", f, p.Checked)
	}
}

// One serial Graph cannot search for does not hold the others up: every step is taken, and the
// check says one serial of all is unknown.
func TestCheckGoesOnPastASerialGraphCannotSearch(t *testing.T) {
	r := newCheckRig(t, 600)
	r.graph.serialErrs = map[string]error{"SN-0007": &graphclient.Error{Kind: graphclient.KindInvalidInput, StatusCode: http.StatusBadRequest}}
	r.graph.registered["SN-0599"] = true
	r.run()
	p := r.ended()
	if f := p.Failure; f == nil || f.Cause != explain.SerialsUnchecked || f.Unchecked != 1 || f.Of != 600 || p.Checked {
		t.Errorf("failure %+v, checked %v", f, p.Checked)
	}
	if got := r.registeredRows(); !slices.Equal(got, []int{601}) {
		t.Errorf("registered rows %v", got)
	}
}

// Stopped by its owner between two steps: the checker writes nothing more.
func TestStoppedCheckTakesNoFurtherStep(t *testing.T) {
	r := newCheckRig(t, 1100)
	r.fault = func(point string) error {
		if point == FaultCheckStepRecorded && len(r.graph.lookups) == 1 {
			stopped := Payload{LastCheck: &Check{Of: 1100, Done: 100, Stopped: true}}
			if err := r.db.StopTenantCheck(context.Background(), "t", r.job.ID, "o", stopped.Encode()); err != nil {
				t.Fatal(err)
			}
		}
		return nil
	}
	r.run()
	p := r.ended()
	if len(r.graph.lookups) != 1 || p.LastCheck == nil || !p.LastCheck.Stopped || p.LastCheck.Done != 100 {
		t.Errorf("%d steps asked for after the stop; payload %+v", len(r.graph.lookups), p)
	}
	if err := r.db.RecordTenantCheck(context.Background(), store.TenantCheck{JobID: r.job.ID, LeaseOwner: "checker"}); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a step could still be recorded: %v", err)
	}
}

// Graph throttles a step: nothing of it is stored, the page can say until when the check waits,
// and the step is taken again, whole, once Graph's Retry-After has passed, not before; the check
// then ends with every serial checked.
func TestThrottledStepWaitsAndIsTakenAgain(t *testing.T) {
	r := newCheckRig(t, 1100)
	r.graph.registered["SN-0150"] = true
	throttled := &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: http.StatusTooManyRequests, RetryAfter: 7 * time.Second}
	r.graph.lookupFails = func(n int) error {
		if n == 2 {
			return throttled
		}
		return nil
	}
	r.run()
	j, _ := r.db.GetImportJob(context.Background(), "t", r.job.ID)
	p, _ := DecodePayload(j.Payload)
	if j.State != StateChecking || p.Check == nil || p.Check.Done != 100 || p.Check.Wait == nil || !p.Check.Wait.Until.Equal(r.now.Add(7*time.Second)) {
		t.Fatalf("after the throttled step: state %s, check %+v", j.State, p.Check)
	}
	if got := r.registeredRows(); len(got) != 0 {
		t.Errorf("the throttled step stored findings: %v", got)
	}
	r.now = r.now.Add(6 * time.Second)
	r.run()
	if len(r.graph.lookups) != 2 {
		t.Fatalf("%d look-ups before Graph's Retry-After passed, want 2", len(r.graph.lookups))
	}
	r.now = r.now.Add(time.Second)
	r.run()
	p = r.ended()
	if len(r.graph.lookups) != 12 || !p.Checked || p.Failure != nil || p.LastCheck.Wait != nil {
		t.Errorf("%d look-ups (want 11 steps and the throttled one); checked %v, failure %+v, last %+v", len(r.graph.lookups), p.Checked, p.Failure, p.LastCheck)
	}
	if got := r.registeredRows(); !slices.Equal(got, []int{152}) {
		t.Errorf("registered rows %v, want line 152 from the step taken again", got)
	}
}

// A Graph that throttles a step for good: after maxHeldUp waits the check ends, saying why.
func TestCheckThrottledForGoodEnds(t *testing.T) {
	r := newCheckRig(t, 30)
	r.graph.lookupFails = func(int) error {
		return &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: http.StatusTooManyRequests}
	}
	for range maxHeldUp {
		r.run()
		r.now = r.now.Add(throttleWait)
	}
	r.run()
	p := r.ended()
	if f := p.Failure; len(r.graph.lookups) != maxHeldUp+1 || f == nil || f.Graph == nil || f.Graph.StatusCode != 429 || p.Checked {
		t.Errorf("%d look-ups; failure %+v, checked %v", len(r.graph.lookups), f, p.Checked)
	}
}

// Graph cannot answer a step for a moment (a 503 its retries did not get past): the step is taken
// again after a wait that grows each time, and the check ends with every serial checked.
func TestStepGraphCouldNotAnswerIsTakenAgain(t *testing.T) {
	r := newCheckRig(t, 300)
	r.graph.registered["SN-0250"] = true
	r.graph.lookupFails = func(n int) error {
		if n == 3 || n == 4 {
			return &graphclient.Error{Kind: graphclient.KindServer, StatusCode: http.StatusServiceUnavailable}
		}
		return nil
	}
	var waits []time.Duration
	for range 3 {
		r.run()
		j, _ := r.db.GetImportJob(context.Background(), "t", r.job.ID)
		p, _ := DecodePayload(j.Payload)
		if p.Check == nil || p.Check.Wait == nil || p.Check.Wait.Throttled {
			break
		}
		waits = append(waits, p.Check.Wait.For)
		r.now = p.Check.Wait.Until
	}
	p := r.ended()
	if !slices.Equal(waits, []time.Duration{unavailableWait, 2 * unavailableWait}) {
		t.Errorf("waits %v, want %v then twice that", waits, unavailableWait)
	}
	if len(r.graph.lookups) != 5 || !p.Checked || p.Failure != nil {
		t.Errorf("%d look-ups (want 3 steps and 2 taken again); checked %v, failure %+v", len(r.graph.lookups), p.Checked, p.Failure)
	}
	if got := r.registeredRows(); !slices.Equal(got, []int{252}) {
		t.Errorf("registered rows %v", got)
	}
}
