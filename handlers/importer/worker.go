package importer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// Graph is the part of Microsoft Graph the worker calls.
type Graph interface {
	ImportDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, devices []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error)
	GetDeviceIdentity(ctx context.Context, ts oauth2.TokenSource, id string) (*graphclient.DeviceIdentity, *graphclient.Exchange, error)
	ListDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, filterSerial, nextLink string) ([]graphclient.DeviceIdentity, string, *graphclient.Exchange, error)
}

// Store is the part of the state database the worker uses.
type Store interface {
	ClaimImportJob(ctx context.Context, state, worker string, lease time.Duration) (*store.ImportJob, error)
	RenewImportLease(ctx context.Context, id, worker string, lease time.Duration) error
	ReleaseImportJob(ctx context.Context, id, worker string, payload []byte, next time.Time) error
	ImportRows(ctx context.Context, jobID string, f store.RowFilter) ([]store.ImportRow, error)
	ImportBatches(ctx context.Context, jobID string) ([]store.ImportBatch, error)
	ChangeImport(ctx context.Context, ch store.ImportChange) error
	WipeImportHashes(ctx context.Context, jobID, leaseOwner string, limit int) (int, error)
}

// Tokens lends the worker the delegated token of a job's owner (tid:oid), from one of their live
// sessions; refused, when set, is a token Graph answered 401 to, to be renewed.
type Tokens interface {
	OwnerToken(ctx context.Context, userKey, refused string) (oauth2.TokenSource, error)
}

// Batch states.
const (
	BatchQueued     = "queued"     // not sent yet
	BatchInFlight   = "in-flight"  // recorded before sending; the answer is not stored yet
	BatchSent       = "sent"       // Graph's answer is stored: every device's id is known
	BatchUnknown    = "unknown"    // the answer never arrived; its devices are being looked up
	BatchReconciled = "reconciled" // every device of a batch whose answer was lost has a verdict
	BatchRefused    = "refused"    // Graph refused it (nothing imported), or it was never sent
	BatchSplit      = "split"      // Graph refused it as too large; its rows went into smaller batches
)

// Fault points: a test stops the worker at one of them, as if its process died there.
const (
	FaultBatchRecorded  = "batch-recorded"  // the batch is recorded as in flight; nothing is sent yet
	FaultAnswerReceived = "answer-received" // Graph has answered; the answer is not stored yet
)

// ErrStopped, returned by a fault hook, stops the worker where it stands: nothing more is
// written, and its lease is left to run out as a crashed process's would.
var ErrStopped = errors.New("importer: worker stopped")

// errLeaseLost means another worker took the job over; this one writes nothing more to it.
var errLeaseLost = errors.New("importer: the job's lease was taken over")

// Options configure a Worker.
type Options struct {
	Store   Store
	Graph   Graph
	Tokens  Tokens
	Lookups []Lookup // where a device of a batch whose answer was lost is looked for, in order
	Logger  *slog.Logger
	Now     func() time.Time
	NewID   func() string // the worker's id in leases

	Lease time.Duration // how long a claimed job is this worker's (default 2 minutes)
	Tick  time.Duration // how often due jobs are looked for (default 1 s)
	// LookupDelays is when a batch whose answer was lost is looked up, counted from the loss;
	// a device still not found after the last look is reported "outcome unknown — check".
	LookupDelays []time.Duration
	// PausedRecheck is how often a job waiting for its owner to sign in is looked at (default 20 s).
	PausedRecheck time.Duration
	// FollowFor is how long a device Graph is still processing is followed, counted from when its
	// batch was sent (default 24 hours). Then it is looked for once more, among registered
	// devices too, and reported as found or "outcome unknown — check", so the job ends and its
	// hashes leave the database even when Intune never finishes a device.
	FollowFor time.Duration
	// Fault, when set, is called at each fault point; returning ErrStopped stops the worker there.
	Fault   func(point string) error
	Reached func(state string) // optional: counts jobs reaching a state
}

// Worker advances submitted import jobs. Every replica runs one, with as many Run loops as it
// wants jobs advanced at once; jobs are shared through leases.
type Worker struct {
	o       Options
	kick    chan struct{}
	stopped atomic.Bool
	due     atomic.Int64 // the soonest look a released job asked for (wall clock, Unix ns); 0: none
}

// New returns a worker; Run starts it.
func New(o Options) *Worker {
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
	if len(o.LookupDelays) == 0 {
		o.LookupDelays = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	}
	if o.PausedRecheck <= 0 {
		o.PausedRecheck = 20 * time.Second
	}
	if o.FollowFor <= 0 {
		o.FollowFor = 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Worker{o: o, kick: make(chan struct{}, 1)}
}

// Kick makes the worker look for due jobs now.
func (w *Worker) Kick() {
	select {
	case w.kick <- struct{}{}:
	default:
	}
}

// Run advances due jobs until ctx ends or a fault hook stops the worker. Each Run holds its
// leases under an id of its own, so two loops never both take one job for theirs.
func (w *Worker) Run(ctx context.Context) {
	id := w.o.NewID()
	t := time.NewTimer(w.o.Tick)
	defer t.Stop()
	for ctx.Err() == nil && !w.stopped.Load() {
		for w.once(ctx, id) {
		}
		// Look again after a tick, or sooner when a job asked for it: a job followed closely
		// is then looked at when it asked, not up to a tick later.
		wait := w.o.Tick
		if at := w.due.Swap(0); at != 0 {
			wait = min(wait, max(time.Until(time.Unix(0, at)), 0))
		}
		t.Reset(wait)
		select {
		case <-ctx.Done():
		case <-w.kick:
		case <-t.C:
		}
	}
}

// asked notes that a job wants to be looked at again at next (on the worker's clock).
func (w *Worker) asked(next time.Time) {
	at := time.Now().Add(next.Sub(w.o.Now())).UnixNano()
	for {
		cur := w.due.Load()
		if cur != 0 && cur <= at || w.due.CompareAndSwap(cur, at) {
			return
		}
	}
}

// once claims one due job for the loop id and advances it; false when none was due or the
// worker must stop.
func (w *Worker) once(ctx context.Context, id string) bool {
	if ctx.Err() != nil || w.stopped.Load() {
		return false
	}
	job, err := w.o.Store.ClaimImportJob(ctx, StateSending, id, w.o.Lease)
	if err != nil {
		w.o.Logger.Warn("import worker: claim a job", "error", err.Error())
		return false
	}
	if job == nil {
		return false
	}
	r := &run{w: w, id: id, job: job, next: w.o.Now().Add(time.Minute), renewed: time.Now()}
	err = r.advance(ctx)
	switch {
	case errors.Is(err, ErrStopped):
		w.stopped.Store(true)
		return false
	case errors.Is(err, errLeaseLost):
		return true
	case err != nil:
		w.o.Logger.Warn("import worker: job held up", "job", job.ID, "error", err.Error())
		r.p.Trouble = &explain.Failure{Cause: explain.Unreachable, At: r.now()}
		r.after(30 * time.Second)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.o.Store.ReleaseImportJob(rctx, job.ID, id, r.p.Encode(), r.next); err != nil && !errors.Is(err, store.ErrConflict) {
		w.o.Logger.Warn("import worker: release a job", "job", job.ID, "error", err.Error())
	} else if err == nil {
		w.asked(r.next)
	}
	return true
}

func (w *Worker) fault(point string) error {
	if w.o.Fault == nil {
		return nil
	}
	return w.o.Fault(point)
}

func (w *Worker) reached(state string) {
	if w.o.Reached != nil {
		w.o.Reached(state)
	}
}

// run is one worker's turn at one job, under its lease.
type run struct {
	w    *Worker
	id   string // the lease holder
	job  *store.ImportJob
	p    Payload
	next time.Time // when the job should next be looked at

	renewed time.Time // when the lease was last renewed (wall clock)
}

// hold renews the lease once a third of it has passed, so a long round of look-ups or reads
// keeps the job; errLeaseLost means another worker has it now.
func (r *run) hold(ctx context.Context) error {
	if time.Since(r.renewed) < r.w.o.Lease/3 {
		return nil
	}
	if err := r.w.o.Store.RenewImportLease(ctx, r.job.ID, r.id, r.w.o.Lease); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errLeaseLost
		}
		return err
	}
	r.renewed = time.Now()
	return nil
}

func (r *run) now() time.Time { return r.w.o.Now() }

// at asks for the job to be looked at again no later than t.
func (r *run) at(t time.Time) {
	if t.Before(r.next) {
		r.next = t
	}
}

func (r *run) after(d time.Duration) { r.at(r.now().Add(d)) }

func (r *run) advance(ctx context.Context) error {
	if Legacy(r.job.Payload) {
		// Its rows are still in its payload: move them first, or the job would look empty.
		if err := Upgrade(ctx, r.w.o.Store, r.job); err != nil {
			return err
		}
	}
	p, err := DecodePayload(r.job.Payload)
	if err != nil {
		return fmt.Errorf("decode job %s: %w", r.job.ID, err)
	}
	r.p = p
	r.p.Trouble = nil
	if _, err := r.token(ctx, ""); err != nil {
		if errors.Is(err, web.ErrSessionEnded) {
			r.p.Paused = true
			r.after(r.w.o.PausedRecheck)
			return nil
		}
		return err
	}
	r.p.Paused = false
	if r.p.Waiting != nil && !r.now().Before(r.p.Waiting.Until) {
		r.p.Waiting = nil
	}

	batches, err := r.w.o.Store.ImportBatches(ctx, r.job.ID)
	if err != nil {
		return err
	}
	// A batch in flight under this worker's lease was left by a worker that is gone: its
	// answer, if any, never reached the database.
	for _, b := range batches {
		if b.State == BatchInFlight {
			if err := r.lost(ctx, b); err != nil {
				return err
			}
		}
	}
	if batches, err = r.w.o.Store.ImportBatches(ctx, r.job.ID); err != nil {
		return err
	}
	for _, b := range batches {
		if b.State != BatchUnknown {
			continue
		}
		if r.now().Before(b.NotBefore) {
			r.at(b.NotBefore)
			continue
		}
		if err := r.reconcile(ctx, b); err != nil {
			return err
		}
	}
	// Batches go in order, each read afresh: a batch Graph refused as too large comes back as two.
	for sent := 0; sent <= len(batches)*2; sent++ {
		if batches, err = r.w.o.Store.ImportBatches(ctx, r.job.ID); err != nil {
			return err
		}
		i := slices.IndexFunc(batches, func(b store.ImportBatch) bool { return b.State == BatchQueued })
		if i < 0 {
			break
		}
		if b := batches[i]; r.now().Before(b.NotBefore) {
			r.at(b.NotBefore)
			break
		}
		stop, err := r.send(ctx, batches[i])
		if err != nil {
			return err
		}
		if stop {
			break
		}
	}
	if err := r.poll(ctx); err != nil {
		return err
	}
	return r.finishIfDone(ctx)
}

// token is the owner's token; refused is one Graph answered 401 to.
func (r *run) token(ctx context.Context, refused string) (oauth2.TokenSource, error) {
	return r.w.o.Tokens.OwnerToken(ctx, r.job.TenantID+":"+r.job.ObjectID, refused)
}

// call runs one Graph call with the owner's token. Graph refuses with 401 before running
// anything, so after one renewal the call is sent once more; both attempts stay in the exchange.
func call[T any](ctx context.Context, r *run, fn func(oauth2.TokenSource) (T, *graphclient.Exchange, error)) (T, *graphclient.Exchange, error) {
	var zero T
	ts, err := r.token(ctx, "")
	if err != nil {
		return zero, nil, err
	}
	v, ex, err := fn(ts)
	if ge, ok := graphclient.AsError(err); ok && ge.Kind == graphclient.KindUnauthorized {
		refused := ""
		if t, terr := ts.Token(); terr == nil {
			refused = t.AccessToken
		}
		if ts, err = r.token(ctx, refused); err != nil {
			return zero, ex, err
		}
		var again *graphclient.Exchange
		v, again, err = fn(ts)
		ex = merged(ex, again)
	}
	return v, ex, err
}

func merged(a, b *graphclient.Exchange) *graphclient.Exchange {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	}
	m := *b
	m.Attempts = append(append([]graphclient.Attempt{}, a.Attempts...), b.Attempts...)
	return &m
}

// keep stores a change that records what Graph answered. Once Graph has answered, the answer is
// never dropped: a failing write is retried, with the lease renewed meanwhile. Should the
// process die first, the batch stays in flight and the next worker finds its devices in Graph.
func (r *run) keep(ctx context.Context, ch store.ImportChange) error {
	ctx = context.WithoutCancel(ctx)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.w.o.Store.ChangeImport(ctx, ch)
		if err == nil || errors.Is(err, store.ErrConflict) || attempt == 8 {
			return err
		}
		r.w.o.Logger.Warn("import worker: store Graph's answer; trying again", "job", r.job.ID, "attempt", attempt, "error", err.Error())
		time.Sleep(delay)
		delay *= 2
		_ = r.w.o.Store.RenewImportLease(ctx, r.job.ID, r.id, r.w.o.Lease)
	}
}

// activity is the record of one batch in the team's history, in the job owner's name: the
// worker acts with their token.
func (r *run) activity(outcome, summary string, ex *graphclient.Exchange, err error) *store.Activity {
	support := graphclient.SupportFor(ex, err)
	a := &store.Activity{TenantID: r.job.TenantID, ObjectID: r.job.ObjectID, ActorName: r.job.ActorName, ActorUPN: r.job.ActorUPN,
		Action: "import", Target: r.job.ID, Outcome: outcome, Summary: summary,
		StatusCode: support.Status, RequestID: support.RequestID, ClientRequestID: support.ClientRequestID}
	d := ActivityDetail{Exchange: ex, Support: support}
	if err != nil {
		f := failureOf(err, r.now())
		d.Failure = &f
	}
	a.Detail = mustJSON(d)
	return a
}

// audit writes the structured audit line a SIEM reads for every recorded import.
func (r *run) audit(a *store.Activity) {
	r.w.o.Logger.Info("audit", "audit", true, "event", a.Action, "outcome", a.Outcome, "activity_id", a.ID,
		"tid", a.TenantID, "oid", a.ObjectID, "upn", a.ActorUPN, "target", a.Target, "status", a.StatusCode,
		"request_id", a.RequestID, "client_request_id", a.ClientRequestID, "summary", a.Summary)
}

// failureOf is the facts of a failed step, the owner's token that could not be renewed among them.
func failureOf(err error, at time.Time) explain.Failure {
	if errors.Is(err, web.ErrTokenUnavailable) {
		return explain.Failure{Cause: explain.OwnerTokenUnavailable, At: at}
	}
	return explain.Of(err, at)
}

func outcomes(rows []store.ImportRow, o func(store.ImportRow) store.Outcome) []store.RowOutcome {
	out := make([]store.RowOutcome, len(rows))
	for i, row := range rows {
		out[i] = store.RowOutcome{Line: row.Line, Outcome: o(row)}
	}
	return out
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func upper(s string) string { return strings.ToUpper(s) }
