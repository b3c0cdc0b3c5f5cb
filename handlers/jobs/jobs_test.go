package jobs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// leases is a kind's table of jobs in memory: a job can be claimed once its next look is due on
// the worker's clock, and only by one holder until it is released.
type leases struct {
	mu       sync.Mutex
	now      func() time.Time
	jobs     []*fakeJob
	claims   chan struct{} // a value for every claim asked for
	renewErr error
	renews   int
	released []released
}

type released struct {
	id, holder string
	payload    string
	next       time.Time
}

func newLeases(now func() time.Time, jobs ...*fakeJob) *leases {
	return &leases{now: now, jobs: jobs, claims: make(chan struct{}, 100)}
}

func (l *leases) kind() Kind {
	return Kind{Name: "test worker", Action: "test", Claim: l.claim, Renew: l.renew, Release: l.release}
}

func (l *leases) claim(_ context.Context, holder string, _ time.Duration) (Job, error) {
	select {
	case l.claims <- struct{}{}:
	default:
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, j := range l.jobs {
		if j.holder == "" && !l.now().Before(j.next) {
			j.holder = holder
			return j, nil
		}
	}
	return nil, nil
}

func (l *leases) renew(_ context.Context, _, _ string, _ time.Duration) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.renews++
	return l.renewErr
}

func (l *leases) release(_ context.Context, id, holder string, payload []byte, next time.Time) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.released = append(l.released, released{id, holder, string(payload), next})
	for _, j := range l.jobs {
		if j.id == id {
			j.holder, j.next = "", next
		}
	}
	return nil
}

func (l *leases) add(j *fakeJob) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jobs = append(l.jobs, j)
}

func (l *leases) releases() []released {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]released(nil), l.released...)
}

// fakeJob runs step at each turn and counts its turns.
type fakeJob struct {
	id       string
	step     func(ctx context.Context, t *Turn) error
	holder   string
	next     time.Time
	turns    chan *Turn
	heldUp   *explain.Failure
	advances int
}

func newJob(id string, step func(context.Context, *Turn) error) *fakeJob {
	return &fakeJob{id: id, step: step, turns: make(chan *Turn, 100)}
}

func (j *fakeJob) Owner() Owner {
	return Owner{JobID: j.id, TenantID: "t", ObjectID: "o", ActorName: "Adele Vance", ActorUPN: "adele@contoso.example"}
}

func (j *fakeJob) Advance(ctx context.Context, t *Turn) error {
	j.advances++
	j.turns <- t
	if j.step == nil {
		return nil
	}
	return j.step(ctx, t)
}

func (j *fakeJob) HeldUp(f explain.Failure) { j.heldUp = &f }

func (j *fakeJob) Payload() []byte { return fmt.Appendf(nil, "advanced %d", j.advances) }

// A turn claims a due job under the loop's id, advances it and releases it with its payload and
// the look it asked for; then nothing is due.
func TestOnceClaimsAdvancesAndReleases(t *testing.T) {
	clk := testkit.NewClock()
	job := newJob("j1", func(_ context.Context, t *Turn) error {
		t.After(5 * time.Second)
		t.After(time.Hour) // a later look does not put off the sooner one
		return nil
	})
	l := newLeases(clk.Now, job)
	w := New(l.kind(), Options{Now: clk.Now})
	if !w.Once(context.Background(), "loop-1") {
		t.Fatal("Once found nothing to do")
	}
	if turn := <-job.turns; turn.Holder() != "loop-1" {
		t.Errorf("holder %q", turn.Holder())
	}
	want := []released{{"j1", "loop-1", "advanced 1", clk.Now().Add(5 * time.Second)}}
	if got := l.releases(); len(got) != 1 || got[0] != want[0] {
		t.Errorf("released %+v, want %+v", got, want)
	}
	if w.Once(context.Background(), "loop-1") {
		t.Error("a job was claimed before its next look was due")
	}
	clk.Advance(5 * time.Second)
	if !w.Once(context.Background(), "loop-1") || job.advances != 2 {
		t.Errorf("the job was not advanced again when due (%d turns)", job.advances)
	}
}

// Without a look asked for, a job is looked at again within a minute.
func TestTurnWithoutAskingIsLookedAtInAMinute(t *testing.T) {
	clk := testkit.NewClock()
	l := newLeases(clk.Now, newJob("j1", nil))
	w := New(l.kind(), Options{Now: clk.Now})
	w.Once(context.Background(), "loop-1")
	if got := l.releases(); len(got) != 1 || !got[0].next.Equal(clk.Now().Add(time.Minute)) {
		t.Errorf("released %+v", got)
	}
}

// A fault hook returning ErrStopped stops the worker where it stands, as a crash would: the job is
// not released (its lease runs out) and nothing more is claimed.
func TestErrStoppedStopsTheWorker(t *testing.T) {
	clk := testkit.NewClock()
	job := newJob("j1", func(_ context.Context, t *Turn) error {
		return fmt.Errorf("at the fault point: %w", t.Fault("recorded"))
	})
	l := newLeases(clk.Now, job, newJob("j2", nil))
	var points []string
	w := New(l.kind(), Options{Now: clk.Now, Fault: func(point string) error {
		points = append(points, point)
		return ErrStopped
	}})
	if w.Once(context.Background(), "loop-1") {
		t.Error("Once went on after the worker stopped")
	}
	if len(points) != 1 || points[0] != "recorded" {
		t.Errorf("fault points %v", points)
	}
	if got := l.releases(); len(got) != 0 {
		t.Errorf("a stopped worker released %+v", got)
	}
	claims := len(l.claims)
	if w.Once(context.Background(), "loop-1") || len(l.claims) != claims {
		t.Error("a stopped worker claimed another job")
	}
	done := make(chan struct{})
	go func() { w.Run(context.Background()); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run of a stopped worker did not return")
	}
}

// A fault hook that lets the worker go on changes nothing.
func TestFaultHookThatLetsGoOn(t *testing.T) {
	clk := testkit.NewClock()
	job := newJob("j1", func(_ context.Context, t *Turn) error { return t.Fault("recorded") })
	l := newLeases(clk.Now, job)
	w := New(l.kind(), Options{Now: clk.Now, Fault: func(string) error { return nil }})
	if !w.Once(context.Background(), "loop-1") || len(l.releases()) != 1 {
		t.Errorf("released %+v", l.releases())
	}
}

// When another worker took the job over, this one writes nothing more to it: no release, and the
// loop goes on to the next job.
func TestLeaseLostReleasesNothing(t *testing.T) {
	clk := testkit.NewClock()
	job := newJob("j1", func(_ context.Context, t *Turn) error {
		t.renewed = time.Now().Add(-time.Minute) // a third of the lease has passed
		return t.Hold(context.Background())
	})
	l := newLeases(clk.Now, job)
	l.renewErr = fmt.Errorf("renew: %w", store.ErrConflict)
	w := New(l.kind(), Options{Now: clk.Now, Lease: time.Minute})
	if !w.Once(context.Background(), "loop-1") {
		t.Error("Once stopped after a lost lease")
	}
	if l.renews != 1 || len(l.releases()) != 0 {
		t.Errorf("%d renewals, released %+v", l.renews, l.releases())
	}
}

// A turn ended by a passing problem (the database, a bug) is noted on the job for its page and
// the job is looked at again in 30 seconds, not a minute.
func TestHeldUpJobIsLookedAtAgainSoon(t *testing.T) {
	clk := testkit.NewClock()
	job := newJob("j1", func(context.Context, *Turn) error { return errors.New("database unreachable") })
	l := newLeases(clk.Now, job)
	w := New(l.kind(), Options{Now: clk.Now})
	if !w.Once(context.Background(), "loop-1") {
		t.Fatal("Once stopped after a held-up turn")
	}
	if job.heldUp == nil || job.heldUp.Cause != explain.Unreachable || !job.heldUp.At.Equal(clk.Now()) {
		t.Errorf("held up %+v", job.heldUp)
	}
	if got := l.releases(); len(got) != 1 || !got[0].next.Equal(clk.Now().Add(30*time.Second)) {
		t.Errorf("released %+v", got)
	}
}

// The lease is renewed once a third of it has passed, not at every step.
func TestHoldRenewsAfterAThirdOfTheLease(t *testing.T) {
	l := newLeases(time.Now)
	w := New(l.kind(), Options{Lease: 90 * time.Millisecond})
	turn := &Turn{w: w, owner: Owner{JobID: "j1"}, holder: "loop-1", renewed: time.Now()}
	if err := turn.Hold(context.Background()); err != nil || l.renews != 0 {
		t.Fatalf("fresh lease: %v, %d renewals", err, l.renews)
	}
	time.Sleep(40 * time.Millisecond)
	if err := turn.Hold(context.Background()); err != nil || l.renews != 1 {
		t.Fatalf("after a third: %v, %d renewals", err, l.renews)
	}
	if err := turn.Hold(context.Background()); err != nil || l.renews != 1 {
		t.Errorf("just renewed: %v, %d renewals", err, l.renews)
	}
}

// A call's context outlives a shutdown but ends a margin before the lease it renewed.
func TestCallContextEndsBeforeTheLease(t *testing.T) {
	l := newLeases(time.Now)
	w := New(l.kind(), Options{Lease: time.Minute})
	turn := &Turn{w: w, owner: Owner{JobID: "j1"}, holder: "loop-1"}
	ctx, stop := context.WithCancel(context.Background())
	callCtx, cancel, err := turn.CallContext(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	stop()
	deadline, _ := callCtx.Deadline()
	if callCtx.Err() != nil || l.renews != 1 || deadline.Sub(turn.renewed) != 45*time.Second {
		t.Errorf("err %v, %d renewals, deadline %s after the renewal", callCtx.Err(), l.renews, deadline.Sub(turn.renewed))
	}
	l.renewErr = store.ErrConflict
	if _, _, err := turn.CallContext(context.Background()); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("renewal refused: %v", err)
	}
}

// A step due later asks for the job to be looked at then.
func TestDueAsksForTheNextLook(t *testing.T) {
	clk := testkit.NewClock()
	w := New(newLeases(clk.Now).kind(), Options{Now: clk.Now})
	turn := &Turn{w: w, next: clk.Now().Add(time.Minute)}
	if !turn.Due(clk.Now()) || !turn.Due(clk.Now().Add(-time.Second)) {
		t.Error("a step due now is not due")
	}
	if turn.Due(clk.Now().Add(10*time.Second)) || !turn.next.Equal(clk.Now().Add(10*time.Second)) {
		t.Errorf("a step due in 10 s: next look %s", turn.next.Sub(clk.Now()))
	}
}

// Graph's answer is never dropped for a passing database failure: the write is tried again, the
// lease renewed meanwhile; it gives up after eight attempts, and a conflict is returned at once.
func TestKeepRetriesThenGivesUp(t *testing.T) {
	l := newLeases(time.Now)
	w := New(l.kind(), Options{})
	w.keepDelay = time.Millisecond
	turn := &Turn{w: w, owner: Owner{JobID: "j1"}, holder: "loop-1"}
	down := errors.New("database is locked")

	writes := 0
	err := turn.Keep(context.Background(), func(context.Context) error {
		if writes++; writes < 4 {
			return down
		}
		return nil
	})
	if err != nil || writes != 4 || l.renews != 3 {
		t.Errorf("a passing failure: %v after %d writes, %d renewals", err, writes, l.renews)
	}

	writes = 0
	err = turn.Keep(context.Background(), func(context.Context) error {
		if writes++; writes > 8 {
			t.Fatalf("a write was tried %d times", writes)
		}
		return down
	})
	if !errors.Is(err, down) || writes != 8 {
		t.Errorf("a lasting failure: %v after %d writes", err, writes)
	}

	writes = 0
	if err := turn.Keep(context.Background(), func(context.Context) error { writes++; return store.ErrConflict }); !errors.Is(err, store.ErrConflict) || writes != 1 {
		t.Errorf("a conflict: %v after %d writes", err, writes)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := turn.Keep(ctx, func(ctx context.Context) error { return ctx.Err() }); err != nil {
		t.Errorf("a shutdown cut the write short: %v", err)
	}
}

// owner lends a token while signed in, and counts renewals of a refused one.
type owner struct {
	signedIn bool
	refused  []string
}

func (o *owner) OwnerToken(_ context.Context, userKey, refused string) (oauth2.TokenSource, error) {
	if !o.signedIn {
		return nil, web.ErrSessionEnded
	}
	if userKey != "t:o" {
		return nil, fmt.Errorf("token of %s", userKey)
	}
	if refused != "" {
		o.refused = append(o.refused, refused)
		return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "renewed"}), nil
	}
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "first"}), nil
}

// Graph refuses a token with 401 before running anything: the call gets one renewal and is sent
// once more, with both attempts in its exchange; a second 401 is returned, not looped on.
func TestCallRenewsTheOwnersTokenOnceAfter401(t *testing.T) {
	tokens := &owner{signedIn: true}
	w := New(newLeases(time.Now).kind(), Options{Tokens: tokens})
	turn := &Turn{w: w, owner: Owner{JobID: "j1", TenantID: "t", ObjectID: "o"}}
	unauthorized := &graphclient.Error{Kind: graphclient.KindUnauthorized, StatusCode: 401}
	var sent []string
	call := func(always401 bool) (string, *graphclient.Exchange, error) {
		return Call(context.Background(), turn, func(ts oauth2.TokenSource) (string, *graphclient.Exchange, error) {
			tok, _ := ts.Token()
			sent = append(sent, tok.AccessToken)
			ex := &graphclient.Exchange{Attempts: []graphclient.Attempt{{URL: tok.AccessToken}}, Outcome: tok.AccessToken}
			if always401 || tok.AccessToken == "first" {
				return "", ex, unauthorized
			}
			return "done", ex, nil
		})
	}
	v, ex, err := call(false)
	if v != "done" || err != nil || len(tokens.refused) != 1 || tokens.refused[0] != "first" {
		t.Fatalf("%q, %v; refused %v", v, err, tokens.refused)
	}
	if len(ex.Attempts) != 2 || ex.Attempts[0].URL != "first" || ex.Attempts[1].URL != "renewed" || ex.Outcome != "renewed" {
		t.Errorf("exchange %+v", ex)
	}
	sent = nil
	if _, _, err := call(true); !errors.Is(err, unauthorized) || len(sent) != 2 {
		t.Errorf("a second 401: %v after %d calls", err, len(sent))
	}
}

// A job whose owner has no live session waits for their sign-in, looked at again after
// PausedRecheck; a call made then sends nothing.
func TestOwnerAway(t *testing.T) {
	clk := testkit.NewClock()
	tokens := &owner{}
	w := New(newLeases(clk.Now).kind(), Options{Now: clk.Now, Tokens: tokens, PausedRecheck: 50 * time.Second})
	turn := &Turn{w: w, owner: Owner{JobID: "j1", TenantID: "t", ObjectID: "o"}, next: clk.Now().Add(time.Minute)}
	if away, err := turn.OwnerAway(context.Background()); !away || err != nil || !turn.next.Equal(clk.Now().Add(50*time.Second)) {
		t.Errorf("signed out: away %v, %v, next look in %s", away, err, turn.next.Sub(clk.Now()))
	}
	called := false
	if _, _, err := Call(context.Background(), turn, func(oauth2.TokenSource) (int, *graphclient.Exchange, error) {
		called = true
		return 0, nil, nil
	}); !errors.Is(err, web.ErrSessionEnded) || called {
		t.Errorf("a call without the owner: %v, sent %v", err, called)
	}
	tokens.signedIn = true
	if away, err := turn.OwnerAway(context.Background()); away || err != nil {
		t.Errorf("signed in: away %v, %v", away, err)
	}
}

// An activity is recorded in the owner's name, with the facts of its failure.
func TestActivityIsTheOwners(t *testing.T) {
	clk := testkit.NewClock()
	w := New(newLeases(clk.Now).kind(), Options{Now: clk.Now})
	turn := &Turn{w: w, owner: (&fakeJob{id: "j1"}).Owner()}
	a := turn.Activity("failure", "Batch 1: refused.", nil, web.ErrTokenUnavailable)
	if a.Action != "test" || a.Target != "j1" || a.TenantID != "t" || a.ObjectID != "o" || a.ActorName != "Adele Vance" || a.ActorUPN != "adele@contoso.example" {
		t.Errorf("activity %+v", a)
	}
	d, err := Decode[ActivityDetail](a.Detail)
	if err != nil || d.Failure == nil || d.Failure.Cause != explain.OwnerTokenUnavailable {
		t.Errorf("detail %s: %v", a.Detail, err)
	}
	if f := FailureOf(fmt.Errorf("lend: %w", web.ErrSessionEnded), clk.Now()); f.Cause != explain.SessionEnded {
		t.Errorf("an ended session: %+v", f)
	}
}

// Kick runs a round at once, not a tick later.
func TestKickRunsARoundNow(t *testing.T) {
	l := newLeases(time.Now)
	w := New(l.kind(), Options{Tick: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	waitFor(t, l.claims, "the first round")
	job := newJob("j1", nil)
	l.add(job)
	w.Kick()
	waitFor(t, job.turns, "a turn after the kick")
}

// A job that asks to be looked at sooner than a tick wakes the loop then.
func TestDueJobWakesTheLoopBeforeTheTick(t *testing.T) {
	job := newJob("j1", func(_ context.Context, t *Turn) error {
		t.After(30 * time.Millisecond)
		return nil
	})
	l := newLeases(time.Now, job)
	w := New(l.kind(), Options{Tick: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.Run(ctx)
	waitFor(t, job.turns, "the first turn")
	waitFor(t, job.turns, "the turn the job asked for")
}

// A loop's rounds end with its context.
func TestLoopEndsWithItsContext(t *testing.T) {
	loop := NewLoop(time.Millisecond)
	ctx, cancel := context.WithCancel(context.Background())
	rounds := make(chan struct{}, 100)
	done := make(chan struct{})
	go func() {
		loop.Run(ctx, func(context.Context) bool {
			rounds <- struct{}{}
			return true
		})
		close(done)
	}()
	waitFor(t, rounds, "a round")
	waitFor(t, rounds, "a round a tick later")
	cancel()
	waitFor(t, done, "the end of the loop")
}

func waitFor[T any](t *testing.T, c <-chan T, what string) {
	t.Helper()
	select {
	case <-c:
	case <-time.After(5 * time.Second):
		t.Fatalf("no %s within 5 s", what)
	}
}

// A turn the desk's shutdown cuts short (a read under the cancelled context fails) is not a
// problem: nothing is logged above debug, nothing is noted on the job's page, and the job is due
// again at once rather than in heldUpWait.
func TestShutdownCutsATurnShortQuietly(t *testing.T) {
	clk := testkit.NewClock()
	ctx, stop := context.WithCancel(context.Background())
	job := newJob("j1", func(ctx context.Context, t *Turn) error {
		t.After(time.Hour)
		stop() // SIGTERM while the turn reads the database
		return fmt.Errorf("store: read import batches: %w", ctx.Err())
	})
	l := newLeases(clk.Now, job)
	var logs testkit.Buffer
	w := New(l.kind(), Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	w.Once(ctx, "loop-1")
	if job.heldUp != nil {
		t.Errorf("the job's page is told %+v", job.heldUp)
	}
	if got := l.releases(); len(got) != 1 || !got[0].next.Equal(clk.Now()) {
		t.Errorf("released %+v, want due now", got)
	}
	if logs.String() != "" {
		t.Errorf("logged:\n%s", logs.String())
	}
}

// unreachableErr is the state database out of reach, as the store marks it.
type unreachableErr struct{}

func (unreachableErr) Error() string     { return "state database unavailable: connection refused" }
func (unreachableErr) Unavailable() bool { return true }

// A turn the state database's outage ends is not noted on the job's page, and is looked at again
// within seconds; its release, refused while the outage lasts, is tried again rather than left
// for the lease to run out (minutes), all without a warning.
func TestOutageEndsATurnQuietlyAndItsReleaseLands(t *testing.T) {
	clk := testkit.NewClock()
	job := newJob("j1", func(context.Context, *Turn) error { return fmt.Errorf("store: read import rows: %w", unreachableErr{}) })
	l := newLeases(clk.Now, job)
	kind := l.kind()
	refusals := 0
	release := kind.Release
	kind.Release = func(ctx context.Context, id, holder string, payload []byte, next time.Time) error {
		if refusals < 3 {
			refusals++
			return unreachableErr{}
		}
		return release(ctx, id, holder, payload, next)
	}
	var logs testkit.Buffer
	w := New(kind, Options{Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelInfo}))})
	w.keepDelay = time.Millisecond
	w.Once(context.Background(), "loop-1")
	if job.heldUp != nil {
		t.Errorf("the job's page is told %+v", job.heldUp)
	}
	if got := l.releases(); refusals != 3 || len(got) != 1 || !got[0].next.Equal(clk.Now().Add(OutageWait)) {
		t.Errorf("after %d refusals released %+v, want once, due in %s", refusals, got, OutageWait)
	}
	if logs.String() != "" {
		t.Errorf("logged:\n%s", logs.String())
	}
}
