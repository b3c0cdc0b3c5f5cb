package importer

import (
	"context"
	"errors"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// StateChecking is a draft whose serials the checker is looking up in the tenant: it takes no
// other change until the check ends (or its owner stops it), and then is a draft again.
const StateChecking = "checking"

// CheckStep is how many serials one step of a check looks up: 5 JSON batches of 20, a couple of
// seconds at Intune's pace. Each step's findings and progress are stored at once, so a check
// taken over from a worker that died goes on from its last step, and its page shows how far it
// has come.
const CheckStep = 5 * graphclient.BatchLimit

// FaultCheckStepRecorded is the fault point after a step of a check is stored, before the
// checker lets the job go: a test stops the checker there, as if its process died.
const FaultCheckStepRecorded = "check-step-recorded"

// RecentImport is how long after an import finished its devices count as on their way: Intune
// has registered them, but the list of registered devices may not show them yet.
const RecentImport = time.Hour

var (
	// errShuttingDown ends a step whose look-ups the desk's shutdown cut short: nothing of it is stored.
	errShuttingDown = errors.New("importer: the desk is shutting down")
	// errHeldUp ends a step Graph throttled, or could not answer for a moment: nothing of it is
	// stored, and it is taken again, whole, after the wait.
	errHeldUp = errors.New("importer: Graph held the step up")
)

// A step Graph throttled waits as long as Graph asked (throttleWait when it did not say); one
// Graph could not answer (5xx, no answer in time, the network) waits unavailableWait, doubled each
// time. Either is taken again up to maxHeldUp times in a row; then the serials without an answer
// count as not checked, like any other failure.
const (
	throttleWait    = 10 * time.Second
	unavailableWait = 5 * time.Second
	maxHeldUp       = 10
)

// Check is a draft's check of its serials in the tenant while it runs, kept in its payload.
type Check struct {
	Of      int       `json:"of"`             // serials to look up: the rows without a problem
	Done    int       `json:"done"`           // looked up so far, in file order
	Line    int       `json:"line,omitempty"` // the line of the last serial looked up
	Found   int       `json:"found,omitempty"`
	Started time.Time `json:"started"`
	// Unchecked counts the serials looked for that Graph gave no answer for, Failure the first
	// reason; the check goes on with the others.
	Unchecked int              `json:"unchecked,omitempty"`
	Failure   *explain.Failure `json:"failure,omitempty"`
	Ended     time.Time        `json:"ended,omitzero"`
	Stopped   bool             `json:"stopped,omitempty"` // by its owner, before it ended by itself
	// Wait is why and until when the step under way waits; HeldUp how many times in a row it has.
	Wait   *Wait `json:"wait,omitempty"`
	HeldUp int   `json:"heldUp,omitempty"`
}

// CheckStore is the part of the state database the checker uses.
type CheckStore interface {
	ClaimImportJob(ctx context.Context, state, worker string, lease time.Duration) (*store.ImportJob, error)
	RenewImportLease(ctx context.Context, id, worker string, lease time.Duration) error
	ReleaseImportJob(ctx context.Context, id, worker string, payload []byte, next time.Time) error
	ImportRows(ctx context.Context, jobID string, f store.RowFilter) ([]store.ImportRow, error)
	SerialsImporting(ctx context.Context, tenantID string, serials, verdicts []string, since time.Time) (map[string]string, error)
	RecordTenantCheck(ctx context.Context, ch store.TenantCheck) error
}

// CheckerOptions configure a Checker.
type CheckerOptions struct {
	jobs.Options
	Store CheckStore
	Graph interface {
		LookUpSerials(ctx context.Context, ts oauth2.TokenSource, serials []string, where graphclient.SerialSources) ([]graphclient.SerialLookup, []*graphclient.Exchange, error)
	}
}

// Checker looks the serials of drafts up in their tenant, among its registered Autopilot devices
// and the desk's own imports still on their way, one step a turn: a file of 10,000 rows takes
// minutes at Intune's pace, and no request waits for it. Every replica runs one; checks are
// shared through leases, and a check whose checker died is taken over when its lease runs out.
type Checker struct {
	*jobs.Worker
	o CheckerOptions
}

// NewChecker returns a checker; Run starts it.
func NewChecker(o CheckerOptions) *Checker {
	o.Options = o.Options.WithDefaults()
	c := &Checker{o: o}
	c.Worker = jobs.New(jobs.Kind{Name: "serial check", Action: "import", Claim: c.claim,
		Renew: o.Store.RenewImportLease, Release: o.Store.ReleaseImportJob}, o.Options)
	return c
}

func (c *Checker) claim(ctx context.Context, holder string, lease time.Duration) (jobs.Job, error) {
	job, err := c.o.Store.ClaimImportJob(ctx, StateChecking, holder, lease)
	if err != nil || job == nil {
		return nil, err
	}
	return &checkRun{c: c, job: job}, nil
}

// checkRun is one checker's turn at one check: a step of it.
type checkRun struct {
	*jobs.Turn
	c   *Checker
	job *store.ImportJob
	p   Payload
}

func (r *checkRun) Owner() jobs.Owner { return ownerOf(r.job) }

// HeldUp ends nothing: a turn that failed before Graph answered is taken again; the page goes on
// showing the check's progress meanwhile.
func (r *checkRun) HeldUp(explain.Failure) {}

func (r *checkRun) Payload() []byte { return r.p.Encode() }

// Advance looks up the check's next step of serials and stores what it found with the check's
// progress; the last step, or one Graph refuses altogether, ends the check.
func (r *checkRun) Advance(ctx context.Context, t *jobs.Turn) error {
	r.Turn = t
	p, err := DecodePayload(r.job.Payload)
	if err != nil {
		return err
	}
	r.p = p
	if r.p.Check == nil {
		r.p.Check = &Check{Started: r.Now()} // a check whose progress was not kept: from the top
	}
	away, err := r.OwnerAway(ctx)
	if err != nil {
		return err
	}
	if away {
		// The owner signed out: the check ends with what it found, and says why the rest is not known.
		return r.record(ctx, nil, &explain.Failure{Cause: explain.CheckSignedOut, At: r.Now()}, true)
	}
	c := r.p.Check
	step, err := r.c.o.Store.ImportRows(ctx, r.job.ID, store.RowFilter{Valid: true, AfterLine: c.Line, Limit: CheckStep})
	if err != nil {
		return err
	}
	found, failure, err := r.lookUpStep(ctx, step)
	switch {
	case errors.Is(err, errShuttingDown):
		r.At(r.Now()) // the step is taken again at once, here or on another replica
		return nil
	case errors.Is(err, errHeldUp):
		r.At(r.p.Check.Wait.Until) // the payload, released with the lease, says why the check waits
		return nil
	}
	if err != nil {
		return err
	}
	if len(step) > 0 {
		c.Done, c.Line = c.Done+len(step), step[len(step)-1].Line
	}
	if len(step) < CheckStep {
		c.Of = c.Done // the last rows: whatever the count at the start said
	}
	return r.record(ctx, found, failure, c.Done >= c.Of)
}

// lookUpStep looks a step's serials up. A failure that left every serial of the step without an
// answer ends the check: the serials after it are not asked for either.
func (r *checkRun) lookUpStep(ctx context.Context, step []store.ImportRow) (map[int]store.TenantMatch, *explain.Failure, error) {
	if len(step) == 0 {
		return nil, nil, nil
	}
	serials := make([]string, len(step))
	for i, row := range step {
		serials[i] = row.Serial
	}
	readCtx, cancel, err := r.ReadContext(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer cancel()
	results, _, lookErr := jobs.Call(readCtx, r.Turn, func(ts oauth2.TokenSource) ([]graphclient.SerialLookup, *graphclient.Exchange, error) {
		res, _, err := r.c.o.Graph.LookUpSerials(readCtx, ts, serials, graphclient.InRegistered)
		return res, nil, err
	})
	if ctx.Err() != nil {
		return nil, nil, errShuttingDown
	}
	c := r.p.Check
	if wait, ok := heldUp(results, lookErr, c.HeldUp); ok && c.HeldUp < maxHeldUp {
		c.HeldUp++
		wait.Until = r.Now().Add(wait.For)
		c.Wait = &wait
		return nil, nil, errHeldUp
	}
	c.HeldUp, c.Wait = 0, nil
	importing, err := r.c.o.Store.SerialsImporting(ctx, r.job.TenantID, serials, OnTheirWay, r.Now().Add(-RecentImport))
	if err != nil {
		return nil, nil, err
	}
	found := map[int]store.TenantMatch{}
	unchecked := 0
	for i, row := range step {
		var m store.TenantMatch
		if i < len(results) && len(results[i].Registered) > 0 {
			d := results[i].Registered[0]
			m = store.TenantMatch{RegisteredID: d.ID, RegisteredGroupTag: d.GroupTag, RegisteredUser: d.UserPrincipalName}
		} else if job := importing[strings.ToUpper(strings.TrimSpace(serials[i]))]; job != "" {
			m = store.TenantMatch{ImportingJob: job}
		} else if i >= len(results) || results[i].Err != nil {
			unchecked++
			if c.Failure == nil && i < len(results) {
				f := jobs.FailureOf(results[i].Err, r.Now())
				c.Failure = &f
			}
			continue // nothing is known: keep what an earlier check found
		}
		if m.Found() {
			c.Found++
		}
		found[row.Line] = m
	}
	c.Unchecked += unchecked
	if lookErr == nil {
		return found, nil, nil
	}
	f := jobs.FailureOf(lookErr, r.Now())
	if c.Failure == nil {
		c.Failure = &f
	}
	if unchecked == len(step) {
		return found, &f, nil // nothing of this step got an answer: the rest would not either
	}
	return found, nil, nil
}

// record stores the step's findings with the check's progress; finished, or a failure that ends
// the check, makes the job a draft again with the check's verdict.
func (r *checkRun) record(ctx context.Context, found map[int]store.TenantMatch, failure *explain.Failure, finished bool) error {
	c := r.p.Check
	if failure != nil {
		c.Unchecked += c.Of - c.Done // the serials never asked for
		if c.Failure == nil {
			c.Failure = failure
		}
		finished = true
	}
	if finished {
		c.Ended = r.Now()
		r.p.Check, r.p.LastCheck, r.p.Failure = nil, c, nil
		r.p.Checked = c.Unchecked == 0
		if failure != nil && failure.Cause == explain.CheckSignedOut {
			f := *failure // whatever else went wrong, signing in again comes first
			f.Unchecked, f.Of = c.Unchecked, c.Of
			r.p.Failure = &f
		} else if c.Unchecked > 0 {
			f := explain.Failure{Cause: explain.Unreachable, At: r.Now()}
			if c.Failure != nil {
				f = *c.Failure
			}
			if c.Unchecked < c.Of {
				f.Cause, f.Unchecked, f.Of = explain.SerialsUnchecked, c.Unchecked, c.Of
			}
			r.p.Failure = &f
		}
	}
	err := r.Keep(ctx, func(ctx context.Context) error {
		return r.c.o.Store.RecordTenantCheck(ctx, store.TenantCheck{JobID: r.job.ID, LeaseOwner: r.Holder(), Payload: r.p.Encode(), Found: found, Finished: finished})
	})
	if err != nil {
		return jobs.LeaseErr(err)
	}
	if err := r.Fault(FaultCheckStepRecorded); err != nil {
		return err
	}
	if !finished {
		r.At(r.Now()) // the next step at once, after any other check that is due
	}
	return nil
}

// heldUp reports whether Graph held a step up for a while rather than for good: it throttled a
// look-up (or the step's requests themselves), or could not answer one for a moment. The wait is
// the longest Retry-After Graph asked for (throttleWait when none was given); for a Graph that
// could not answer, unavailableWait doubled for each earlier time in a row (at most a minute).
func heldUp(results []graphclient.SerialLookup, lookErr error, before int) (Wait, bool) {
	var w Wait
	held := false
	note := func(err error) {
		ge, ok := graphclient.AsError(err)
		if !ok {
			return
		}
		switch ge.Kind {
		case graphclient.KindThrottled:
			held, w.Throttled, w.For = true, true, max(w.For, ge.RetryAfter)
		case graphclient.KindServer, graphclient.KindTimeout, graphclient.KindNetwork:
			held = true
		}
	}
	note(lookErr)
	for _, l := range results {
		note(l.Err)
	}
	switch {
	case w.Throttled && w.For <= 0:
		w.For = throttleWait
	case !w.Throttled:
		w.For = min(unavailableWait<<min(before, 4), time.Minute)
	}
	return w, held
}
