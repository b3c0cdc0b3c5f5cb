// Package jobs is the loop every background job worker of the desk runs. A job is claimed under a
// lease in the state database, advanced one turn with its owner's delegated token, and released
// with when it wants to be looked at next; every replica runs a worker, and a crashed worker's job
// is taken over when its lease runs out. The kinds of job (imports, bulk changes) supply the lease
// calls of their tables and what a turn does.
package jobs

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"autopilotdesk/handlers/explain"
	"autopilotdesk/web/store"
)

var (
	// ErrStopped, returned by a fault hook, stops the worker where it stands, as a crash would:
	// nothing more is written, and its lease is left to run out.
	ErrStopped = errors.New("jobs: worker stopped")
	// ErrLeaseLost means another worker took the job over; this one writes nothing more to it.
	ErrLeaseLost = errors.New("jobs: the job's lease was taken over")
)

// Tokens lends a worker the delegated token of a job's owner (tid:oid), from one of their live
// sessions; refused, when set, is a token Graph answered 401 to, to be renewed.
type Tokens interface {
	OwnerToken(ctx context.Context, userKey, refused string) (oauth2.TokenSource, error)
}

// Options are the settings every job worker shares.
type Options struct {
	Tokens Tokens
	Logger *slog.Logger
	Now    func() time.Time
	NewID  func() string // a Run loop's id in leases

	Lease time.Duration // how long a claimed job is one loop's (default 2 minutes)
	Tick  time.Duration // how often due jobs are looked for (default 1 s)
	// PausedRecheck is how often a job waiting for its owner to sign in is looked at (default 20 s).
	PausedRecheck time.Duration
	// Fault, when set, is called at each fault point; returning ErrStopped stops the worker there.
	Fault func(point string) error
	// State, when set, is the state database's health as the desk knows it (web.Health).
	State StateWatch
}

// StateWatch is the state database's health, which the desk checks and logs once per outage.
// While it has a problem a worker looks for no job; a worker that cannot reach the database asks
// for a check instead of logging each failure itself, and resumes once the database serves.
type StateWatch interface {
	Problem() error // nil while the state database serves
	Suspect()       // asks for a check soon
}

// Quiet says whether the worker should leave the state database alone: it has a known problem.
func (o Options) Quiet() bool { return o.State != nil && o.State.Problem() != nil }

// Outage reports whether err is the state database out of reach, or came while the desk knows
// it is: the desk's health check logs that once for the whole outage.
func (o Options) Outage(err error) bool {
	return err != nil && (store.IsUnavailable(err) || o.Quiet())
}

// Failed logs a background failure: as a warning, unless the state database could not be
// reached, which the desk's health check notices and logs once for the whole outage.
func (o Options) Failed(msg string, err error, attrs ...any) {
	if o.Outage(err) {
		if o.State != nil {
			o.State.Suspect()
		}
		o.Logger.Debug(msg, append(attrs, "error", err.Error())...)
		return
	}
	o.Logger.Warn(msg, append(attrs, "error", err.Error())...)
}

// WithDefaults is o with every setting left unset at its default.
func (o Options) WithDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = uuid.NewString
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Tick <= 0 {
		o.Tick = time.Second
	}
	if o.PausedRecheck <= 0 {
		o.PausedRecheck = 20 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Kind is one kind of job: how the state database leases it, and what the worker is called.
type Kind struct {
	Name   string // in log lines: "import worker"
	Action string // the action of the activities its turns record: "import"
	// Claim takes one due job for holder under a lease; nil when none is due.
	Claim   func(ctx context.Context, holder string, lease time.Duration) (Job, error)
	Renew   func(ctx context.Context, jobID, holder string, lease time.Duration) error
	Release func(ctx context.Context, jobID, holder string, payload []byte, next time.Time) error
}

// Job is a claimed job, as its kind advances it.
type Job interface {
	Owner() Owner
	// Advance takes the job as far as it can go now, under the turn's lease.
	Advance(ctx context.Context, t *Turn) error
	// HeldUp notes, for the job's page, the problem that ended its turn early.
	HeldUp(f explain.Failure)
	// Payload is what the job keeps between turns; it is released with it.
	Payload() []byte
}

// Owner is a job and the person whose delegated token advances it.
type Owner struct {
	JobID                                   string
	TenantID, ObjectID, ActorName, ActorUPN string
}

// Worker advances the due jobs of one kind. Every replica runs one, with as many Run loops as it
// wants jobs advanced at once; jobs are shared through leases.
type Worker struct {
	kind    Kind
	o       Options
	loop    *Loop
	stopped atomic.Bool

	keepDelay time.Duration // the first wait before a failed write of Graph's answer is tried again
}

// New returns a worker for jobs of kind; Run starts it.
func New(kind Kind, o Options) *Worker {
	o = o.WithDefaults()
	return &Worker{kind: kind, o: o, loop: NewLoop(o.Tick), keepDelay: 250 * time.Millisecond}
}

// Kick makes the worker look for due jobs now.
func (w *Worker) Kick() { w.loop.Kick() }

// Run advances due jobs until ctx ends or a fault hook stops the worker. Each Run holds its
// leases under an id of its own, so two loops never both take one job for theirs.
func (w *Worker) Run(ctx context.Context) {
	holder := w.o.NewID()
	w.loop.Run(ctx, func(ctx context.Context) bool {
		for w.Once(ctx, holder) {
		}
		return !w.stopped.Load()
	})
}

// heldUpWait is how soon a job whose turn a passing problem ended is looked at again.
const heldUpWait = 30 * time.Second

// OutageWait is how soon a job whose turn the state database's outage ended is looked at again:
// no worker claims anything while the desk knows of the outage, so this is as soon as it is over.
const OutageWait = 2 * time.Second

// Once claims one due job for the loop holder and advances it one turn; false when none was due
// or the worker must stop.
func (w *Worker) Once(ctx context.Context, holder string) bool {
	if ctx.Err() != nil || w.stopped.Load() || w.o.Quiet() {
		return false
	}
	job, err := w.kind.Claim(ctx, holder, w.o.Lease)
	if err != nil {
		w.o.Failed(w.kind.Name+": claim a job", err)
		return false
	}
	if job == nil {
		return false
	}
	t := &Turn{w: w, owner: job.Owner(), holder: holder, next: w.o.Now().Add(time.Minute), renewed: time.Now()}
	err = job.Advance(ctx, t)
	switch {
	case errors.Is(err, ErrStopped):
		w.stopped.Store(true)
		return false
	case errors.Is(err, ErrLeaseLost):
		return true
	case err != nil && ctx.Err() != nil:
		// The desk is stopping (every rolling deploy does): the turn was cut short, not held up.
		// The job is due again at once, on another replica or after the restart.
		w.o.Logger.Debug(w.kind.Name+": turn cut short by the shutdown", "job", t.owner.JobID, "error", err.Error())
		t.At(t.Now())
	case w.o.Outage(err):
		// The state database went away under the turn: nothing to tell on the job's page, which
		// answers 503 meanwhile; the job goes on once the database is back.
		w.o.Failed(w.kind.Name+": turn cut short by the state database's outage", err, "job", t.owner.JobID)
		t.After(OutageWait)
	case err != nil:
		w.o.Failed(w.kind.Name+": job held up", err, "job", t.owner.JobID)
		job.HeldUp(explain.Failure{Cause: explain.Unreachable, At: t.Now()})
		t.After(heldUpWait)
	}
	payload := job.Payload()
	release := func(ctx context.Context) error {
		rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		return w.kind.Release(rctx, t.owner.JobID, holder, payload, t.next)
	}
	err = release(context.WithoutCancel(ctx))
	if w.o.Outage(err) {
		// Unreleased, the job would stay this loop's until its lease ran out (minutes): the
		// release is tried again, as a write of Graph's answer is, while a short outage lasts.
		err = t.Keep(ctx, release)
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		w.o.Failed(w.kind.Name+": release a job", err, "job", t.owner.JobID)
	} else if err == nil {
		// The loop wakes when the job asked, on the wall clock, not up to a tick later.
		w.loop.soonest(time.Now().Add(t.next.Sub(w.o.Now())))
	}
	return true
}
