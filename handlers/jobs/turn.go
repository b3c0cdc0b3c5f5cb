package jobs

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// Turn is one worker's turn at one job, under its lease: it holds the lease, keeps when the job
// wants to be looked at next, and lends the owner's token.
type Turn struct {
	w       *Worker
	owner   Owner
	holder  string
	next    time.Time // when the job should next be looked at
	renewed time.Time // when the lease was last renewed (wall clock)
}

// WriteHolds are the waits Graph asked of a tenant's writes (its Retry-After), kept for every
// desk (bulk.Budget): no worker's write goes while one runs.
type WriteHolds interface {
	HeldUntil(ctx context.Context, tenantID string, now time.Time) (time.Time, error)
	Hold(ctx context.Context, tenantID string, until time.Time) error
}

// Holder is the lease holder: the Run loop's id.
func (t *Turn) Holder() string { return t.holder }

// Now is the worker's clock.
func (t *Turn) Now() time.Time { return t.w.o.Now() }

// At asks for the job to be looked at again no later than at.
func (t *Turn) At(at time.Time) {
	if at.Before(t.next) {
		t.next = at
	}
}

// After asks for the job to be looked at again no later than d from now.
func (t *Turn) After(d time.Duration) { t.At(t.Now().Add(d)) }

// Due reports whether a step not to be taken before notBefore is due; when it is not, the job is
// looked at again then.
func (t *Turn) Due(notBefore time.Time) bool {
	if t.Now().Before(notBefore) {
		t.At(notBefore)
		return false
	}
	return true
}

// Fault calls the fault hook at a fault point; ErrStopped means stop there, as if the process died.
func (t *Turn) Fault(point string) error {
	if t.w.o.Fault == nil {
		return nil
	}
	return t.w.o.Fault(point)
}

// Hold renews the lease once a third of it has passed, so a long round of look-ups or reads keeps
// the job; ErrLeaseLost means another worker has it now.
func (t *Turn) Hold(ctx context.Context) error {
	if time.Since(t.renewed) < t.w.o.Lease/3 {
		return nil
	}
	return t.renew(ctx)
}

func (t *Turn) renew(ctx context.Context) error {
	if err := t.w.kind.Renew(ctx, t.owner.JobID, t.holder, t.w.o.Lease); err != nil {
		return LeaseErr(err)
	}
	t.renewed = time.Now()
	return nil
}

// LeaseErr is the error of a change made under the lease: store.ErrConflict, the change no longer
// applies because another worker took the job over, is ErrLeaseLost.
func LeaseErr(err error) error {
	if errors.Is(err, store.ErrConflict) {
		return ErrLeaseLost
	}
	return err
}

// leaseMargin is kept between the end of a Graph call and the end of the lease it runs under,
// so a call never outlives the lease (and the worker's claim on its answer).
func leaseMargin(lease time.Duration) time.Duration { return min(20*time.Second, lease/4) }

// CallContext renews the lease now and returns the context of a Graph call whose answer is to be
// stored under it. A shutdown does not cut the call short (its answer is worth waiting for), but
// the call ends a margin before the lease does.
func (t *Turn) CallContext(ctx context.Context) (context.Context, context.CancelFunc, error) {
	return t.withinLease(ctx, context.WithoutCancel(ctx))
}

// ReadContext renews the lease now and returns the context of Graph reads whose answers are to be
// stored under it: the reads end a margin before the lease does, so their answers are still the
// worker's to store, and when the worker stops (a read is simply made again).
func (t *Turn) ReadContext(ctx context.Context) (context.Context, context.CancelFunc, error) {
	return t.withinLease(ctx, ctx)
}

// withinLease renews the lease under ctx and returns parent bounded to end a margin before it.
func (t *Turn) withinLease(ctx, parent context.Context) (context.Context, context.CancelFunc, error) {
	if err := t.renew(ctx); err != nil {
		return nil, nil, err
	}
	bounded, cancel := context.WithDeadline(parent, t.renewed.Add(t.w.o.Lease-leaseMargin(t.w.o.Lease)))
	return bounded, cancel, nil
}

// keepAttempts is how many times a write of Graph's answer is tried.
const keepAttempts = 8

// Keep stores a change that records what Graph answered. Once Graph has answered, the answer is
// never dropped for a passing database failure: the write is retried, with the lease renewed
// meanwhile. Should the process die first, what was in flight stays so, and the next worker finds
// out from Graph. store.ErrConflict is returned at once: the change no longer applies.
func (t *Turn) Keep(ctx context.Context, write func(context.Context) error) error {
	ctx = context.WithoutCancel(ctx)
	delay := t.w.keepDelay
	for attempt := 1; ; attempt++ {
		err := write(ctx)
		if err == nil || errors.Is(err, store.ErrConflict) || attempt == keepAttempts {
			return err
		}
		if t.w.o.State != nil {
			t.w.o.State.Suspect() // the health check logs an outage once; the write waits it out quietly
		}
		level := slog.LevelWarn
		if t.w.o.Outage(err) {
			level = slog.LevelDebug
		}
		t.w.o.Logger.Log(ctx, level, t.w.kind.Name+": store a change; trying again", "job", t.owner.JobID, "attempt", attempt, "error", err.Error())
		time.Sleep(delay)
		delay *= 2
		_ = t.w.kind.Renew(ctx, t.owner.JobID, t.holder, t.w.o.Lease)
	}
}

// token is the owner's token; refused is one Graph answered 401 to.
func (t *Turn) token(ctx context.Context, refused string) (oauth2.TokenSource, error) {
	return t.w.o.Tokens.OwnerToken(ctx, t.owner.TenantID+":"+t.owner.ObjectID, refused)
}

// OwnerAway reports whether the job's owner has no live session to lend their token: the job
// then waits for their sign-in, and is looked at again after PausedRecheck.
func (t *Turn) OwnerAway(ctx context.Context) (bool, error) {
	_, err := t.token(ctx, "")
	if errors.Is(err, web.ErrSessionEnded) {
		t.After(t.w.o.PausedRecheck)
		return true, nil
	}
	return false, err
}

// Call runs one Graph call with the owner's token, renewed once should Graph answer 401.
func Call[T any](ctx context.Context, t *Turn, fn func(oauth2.TokenSource) (T, *graphclient.Exchange, error)) (T, *graphclient.Exchange, error) {
	ts, err := t.token(ctx, "")
	if err != nil {
		var zero T
		return zero, nil, err
	}
	return graphclient.WithRenewal(ts, func(refused oauth2.TokenSource) (oauth2.TokenSource, error) {
		var token string
		if tok, err := refused.Token(); err == nil {
			token = tok.AccessToken
		}
		return t.token(ctx, token)
	}, fn)
}

// ActivityDetail is the detail of an activity a worker records, in the shape the activity page
// reads (the same as every other action's; the failure's key is "explanation", as the page reads it).
type ActivityDetail struct {
	Exchange *graphclient.Exchange      `json:"exchange,omitempty"`
	Failure  *explain.Failure           `json:"explanation,omitempty"`
	Support  graphclient.SupportDetails `json:"support"`
}

// Activity is the record of one step in the team's history, in the job owner's name: the worker
// acts with their token.
func (t *Turn) Activity(outcome, summary string, ex *graphclient.Exchange, err error) *store.Activity {
	support := graphclient.SupportFor(ex, err)
	o := t.owner
	a := &store.Activity{TenantID: o.TenantID, ObjectID: o.ObjectID, ActorName: o.ActorName, ActorUPN: o.ActorUPN,
		Action: t.w.kind.Action, Target: o.JobID, Outcome: outcome, Summary: summary,
		StatusCode: support.Status, RequestID: support.RequestID, ClientRequestID: support.ClientRequestID}
	d := ActivityDetail{Exchange: ex, Support: support}
	if err != nil {
		f := FailureOf(err, t.Now())
		d.Failure = &f
	}
	a.Detail = Encode(d)
	return a
}

// Audit writes the structured audit line a SIEM reads for every activity a worker records.
func (t *Turn) Audit(a *store.Activity) {
	t.w.o.Logger.Info("audit", "audit", true, "event", a.Action, "outcome", a.Outcome, "activity_id", a.ID,
		"tid", a.TenantID, "oid", a.ObjectID, "upn", a.ActorUPN, "target", a.Target, "status", a.StatusCode,
		"request_id", a.RequestID, "client_request_id", a.ClientRequestID, "summary", a.Summary)
}

// AuditFinished writes the audit line of a job that has ended: event names it, detail counts
// its outcomes.
func (t *Turn) AuditFinished(event, detail string) {
	o := t.owner
	t.w.o.Logger.Info("audit", "audit", true, "event", event, "tid", o.TenantID, "oid", o.ObjectID, "upn", o.ActorUPN,
		"target", o.JobID, "detail", detail)
}

// Warn logs a passing problem of the turn's job.
func (t *Turn) Warn(msg string, err error) {
	t.w.o.Logger.Warn(t.w.kind.Name+": "+msg, "job", t.owner.JobID, "error", err.Error())
}

// FailureOf is the facts of a failed step, the owner's session or token that could not lend a
// token among them.
func FailureOf(err error, at time.Time) explain.Failure {
	switch {
	case errors.Is(err, web.ErrTokenUnavailable):
		return explain.Failure{Cause: explain.OwnerTokenUnavailable, At: at}
	case errors.Is(err, web.ErrSessionEnded):
		return explain.Failure{Cause: explain.SessionEnded, At: at}
	}
	return explain.Of(err, at)
}

// WriteRefusals is what a Tokens may also do: remember, in every live session of a person
// (tid:oid), that Graph refused a change of theirs for their role or the desk's permission, so
// their pages offer no more changes (web.OwnerTokens does).
type WriteRefusals interface {
	RememberWriteRefused(ctx context.Context, userKey string, at time.Time, graphSaid string) error
}

// WriteRefused makes the job's owner read-only in the desk, as a request's 403 does, when err is
// Graph's 403 for their Intune role or the desk's permission: their later changes would be refused
// alike, so their pages no longer offer them and a draft of theirs is not confirmed.
func (t *Turn) WriteRefused(ctx context.Context, err error, at time.Time) {
	ge, ok := graphclient.AsError(err)
	if !ok || ge.Kind != graphclient.KindForbiddenRole && ge.Kind != graphclient.KindForbiddenPermission {
		return
	}
	r, ok := t.w.o.Tokens.(WriteRefusals)
	if !ok {
		return
	}
	if err := r.RememberWriteRefused(context.WithoutCancel(ctx), t.owner.TenantID+":"+t.owner.ObjectID, at, ge.Message); err != nil {
		t.Warn("remember that Graph refused the owner's changes", err)
	}
}
