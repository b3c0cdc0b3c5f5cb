package bulk

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// Graph is the part of Microsoft Graph the worker calls: every change and every look goes in
// JSON batches of at most 20.
type Graph interface {
	Batch(ctx context.Context, ts oauth2.TokenSource, reqs []graphclient.BatchRequest) ([]graphclient.BatchResponse, []*graphclient.Exchange, error)
}

// Store is the part of the state database the worker uses.
type Store interface {
	ClaimBulkJob(ctx context.Context, state, worker string, lease time.Duration) (*store.BulkJob, error)
	RenewBulkLease(ctx context.Context, id, worker string, lease time.Duration) error
	ReleaseBulkJob(ctx context.Context, id, worker string, payload []byte, next time.Time) error
	BulkDevices(ctx context.Context, jobID string) ([]store.BulkDevice, error)
	ChangeBulk(ctx context.Context, ch store.BulkChange) error
}

// Tokens lends the worker the delegated token of a job's owner (tid:oid) from one of their live
// sessions; refused, when set, is a token Graph answered 401 to.
type Tokens interface {
	OwnerToken(ctx context.Context, userKey, refused string) (oauth2.TokenSource, error)
}

// Fault points: a test stops the worker at one of them, as if its process died there.
const (
	FaultRecorded = "bulk-recorded" // a chunk of devices is recorded as in flight; nothing is sent yet
	FaultAnswered = "bulk-answered" // Graph has answered the chunk; the answer is not stored yet
)

// ErrStopped, returned by a fault hook, stops the worker where it stands, as a crash would: its
// lease is left to run out.
var ErrStopped = errors.New("bulk: worker stopped")

var errLeaseLost = errors.New("bulk: the job's lease was taken over")

// Options configure a Worker.
type Options struct {
	Store  Store
	Graph  Graph
	Tokens Tokens
	Budget *Budget
	Logger *slog.Logger
	Now    func() time.Time
	NewID  func() string

	Lease time.Duration // default 2 minutes
	Tick  time.Duration // how often due jobs are looked for (default 1 s)
	// LookupDelays is when a device whose answer was lost is read, counted from the loss; one
	// whose change still does not show after the last look is "outcome unknown — check".
	LookupDelays  []time.Duration
	PausedRecheck time.Duration // how often a job waiting for its owner's sign-in is looked at (default 20 s)
	// Fault, when set, is called at each fault point; returning ErrStopped stops the worker there.
	Fault func(point string) error
}

// Worker advances confirmed bulk jobs. Every replica runs one; jobs are shared through leases.
type Worker struct {
	o       Options
	kick    chan struct{}
	stopped atomic.Bool
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
		o.LookupDelays = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}
	}
	if o.PausedRecheck <= 0 {
		o.PausedRecheck = 20 * time.Second
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

// Run advances due jobs until ctx ends or a fault hook stops the worker; each Run holds its
// leases under an id of its own.
func (w *Worker) Run(ctx context.Context) {
	id := w.o.NewID()
	t := time.NewTicker(w.o.Tick)
	defer t.Stop()
	for ctx.Err() == nil && !w.stopped.Load() {
		for w.once(ctx, id) {
		}
		select {
		case <-ctx.Done():
		case <-w.kick:
		case <-t.C:
		}
	}
}

// once claims one due job for the loop id and advances it; false when none was due.
func (w *Worker) once(ctx context.Context, id string) bool {
	if ctx.Err() != nil || w.stopped.Load() {
		return false
	}
	job, err := w.o.Store.ClaimBulkJob(ctx, StateSending, id, w.o.Lease)
	if err != nil {
		w.o.Logger.Warn("bulk worker: claim a job", "error", err.Error())
		return false
	}
	if job == nil {
		return false
	}
	r := &run{w: w, id: id, job: job, next: w.o.Now().Add(time.Minute), renewed: time.Now(), chunks: job.Chunks}
	err = r.advance(ctx)
	switch {
	case errors.Is(err, ErrStopped):
		w.stopped.Store(true)
		return false
	case errors.Is(err, errLeaseLost):
		return true
	case err != nil:
		w.o.Logger.Warn("bulk worker: job held up", "job", job.ID, "error", err.Error())
		r.p.Trouble = &explain.Failure{Cause: explain.Unreachable, At: w.o.Now()}
		r.after(30 * time.Second)
	}
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := w.o.Store.ReleaseBulkJob(rctx, job.ID, id, r.p.Encode(), r.next); err != nil && !errors.Is(err, store.ErrConflict) {
		w.o.Logger.Warn("bulk worker: release a job", "job", job.ID, "error", err.Error())
	}
	return true
}

func (w *Worker) fault(point string) error {
	if w.o.Fault == nil {
		return nil
	}
	return w.o.Fault(point)
}

// run is one worker's turn at one job, under its lease.
type run struct {
	w       *Worker
	id      string
	job     *store.BulkJob
	p       Payload
	next    time.Time
	renewed time.Time
	chunks  int
}

func (r *run) now() time.Time { return r.w.o.Now() }

func (r *run) at(t time.Time) {
	if t.Before(r.next) {
		r.next = t
	}
}

func (r *run) after(d time.Duration) { r.at(r.now().Add(d)) }

// hold renews the lease once a third of it has passed.
func (r *run) hold(ctx context.Context) error {
	if time.Since(r.renewed) < r.w.o.Lease/3 {
		return nil
	}
	if err := r.w.o.Store.RenewBulkLease(ctx, r.job.ID, r.id, r.w.o.Lease); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errLeaseLost
		}
		return err
	}
	r.renewed = time.Now()
	return nil
}

func (r *run) advance(ctx context.Context) error {
	p, err := DecodePayload(r.job.Payload)
	if err != nil {
		return fmt.Errorf("decode bulk job %s: %w", r.job.ID, err)
	}
	r.p = p
	r.p.Trouble = nil
	if r.p.Waiting != nil && !r.now().Before(r.p.Waiting.Until) {
		r.p.Waiting = nil
	}
	if _, err := r.token(ctx, ""); err != nil {
		if errors.Is(err, web.ErrSessionEnded) {
			r.p.Paused = true
			r.after(r.w.o.PausedRecheck)
			return nil
		}
		return err
	}
	r.p.Paused = false
	devices, err := r.w.o.Store.BulkDevices(ctx, r.job.ID)
	if err != nil {
		return err
	}
	// Devices in flight under this worker's new lease were left by a worker that is gone: their
	// answer, if any, never reached the database.
	if err := r.lost(ctx, devices); err != nil {
		return err
	}
	if err := r.reconcile(ctx); err != nil {
		return err
	}
	if err := r.send(ctx); err != nil {
		return err
	}
	return r.finishIfDone(ctx)
}

// token is the owner's token; refused is one Graph answered 401 to.
func (r *run) token(ctx context.Context, refused string) (oauth2.TokenSource, error) {
	return r.w.o.Tokens.OwnerToken(ctx, r.job.TenantID+":"+r.job.ObjectID, refused)
}

// batch sends one JSON batch with the owner's token. Graph refuses a token with 401 before
// running anything, so after one renewal the batch is sent once more.
func (r *run) batch(ctx context.Context, reqs []graphclient.BatchRequest) ([]graphclient.BatchResponse, *graphclient.Exchange, error) {
	ts, err := r.token(ctx, "")
	if err != nil {
		return nil, nil, err
	}
	answers, exs, err := r.w.o.Graph.Batch(ctx, ts, reqs)
	if ge, ok := graphclient.AsError(err); ok && ge.Kind == graphclient.KindUnauthorized {
		refused := ""
		if t, terr := ts.Token(); terr == nil {
			refused = t.AccessToken
		}
		if ts, err = r.token(ctx, refused); err != nil {
			return nil, joined(exs), err
		}
		var again []*graphclient.Exchange
		answers, again, err = r.w.o.Graph.Batch(ctx, ts, reqs)
		exs = append(exs, again...)
	}
	return answers, joined(exs), err
}

// joined puts the attempts of several exchanges into one, in order.
func joined(exs []*graphclient.Exchange) *graphclient.Exchange {
	var out *graphclient.Exchange
	for _, ex := range exs {
		if ex == nil {
			continue
		}
		if out == nil {
			c := *ex
			out = &c
			continue
		}
		out.Attempts = append(slices.Clone(out.Attempts), ex.Attempts...)
		out.Outcome = ex.Outcome
	}
	return out
}

// keep stores a change that records what Graph answered. Once Graph has answered, the answer is
// never dropped for a passing database failure: it is retried, with the lease renewed meanwhile.
func (r *run) keep(ctx context.Context, ch store.BulkChange) error {
	ctx = context.WithoutCancel(ctx)
	delay := 250 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := r.w.o.Store.ChangeBulk(ctx, ch)
		if err == nil || errors.Is(err, store.ErrConflict) || attempt == 8 {
			return err
		}
		r.w.o.Logger.Warn("bulk worker: store Graph's answer; trying again", "job", r.job.ID, "attempt", attempt, "error", err.Error())
		time.Sleep(delay)
		delay *= 2
		_ = r.w.o.Store.RenewBulkLease(ctx, r.job.ID, r.id, r.w.o.Lease)
	}
}

// activity is the record of one chunk in the team's history, in the job owner's name.
func (r *run) activity(outcome, summary string, ex *graphclient.Exchange, err error) *store.Activity {
	support := graphclient.SupportFor(ex, err)
	a := &store.Activity{TenantID: r.job.TenantID, ObjectID: r.job.ObjectID, ActorName: r.job.ActorName, ActorUPN: r.job.ActorUPN,
		Action: "bulk-change", Target: r.job.ID, Outcome: outcome, Summary: summary,
		StatusCode: support.Status, RequestID: support.RequestID, ClientRequestID: support.ClientRequestID}
	d := activityDetail{Exchange: ex, Support: support}
	if err != nil {
		f := failureOf(err, r.now())
		d.Failure = &f
	}
	a.Detail = mustJSON(d)
	return a
}

// activityDetail is the shape the activity page reads (the same as every other action's; the
// failure's key is "explanation", as the activity page reads it).
type activityDetail struct {
	Exchange *graphclient.Exchange      `json:"exchange,omitempty"`
	Failure  *explain.Failure           `json:"explanation,omitempty"`
	Support  graphclient.SupportDetails `json:"support"`
}

// failureOf is the facts of a failed step, the owner's token that could not be renewed among them.
func failureOf(err error, at time.Time) explain.Failure {
	switch {
	case errors.Is(err, web.ErrTokenUnavailable):
		return explain.Failure{Cause: explain.OwnerTokenUnavailable, At: at}
	case errors.Is(err, web.ErrSessionEnded):
		return explain.Failure{Cause: explain.SessionEnded, At: at}
	}
	return explain.Of(err, at)
}

// facts is a failure as a device keeps it.
func facts(err error, at time.Time) []byte { return mustJSON(failureOf(err, at)) }

func (r *run) audit(a *store.Activity) {
	r.w.o.Logger.Info("audit", "audit", true, "event", a.Action, "outcome", a.Outcome, "activity_id", a.ID,
		"tid", a.TenantID, "oid", a.ObjectID, "upn", a.ActorUPN, "target", a.Target, "status", a.StatusCode,
		"request_id", a.RequestID, "client_request_id", a.ClientRequestID, "summary", a.Summary)
}

// lost turns the devices found in flight into devices whose answer was lost, one chunk at a time.
func (r *run) lost(ctx context.Context, devices []store.BulkDevice) error {
	byChunk := map[int][]store.BulkDevice{}
	var chunks []int
	for _, d := range devices {
		if d.State == DeviceInFlight {
			if byChunk[d.Chunk] == nil {
				chunks = append(chunks, d.Chunk)
			}
			byChunk[d.Chunk] = append(byChunk[d.Chunk], d)
		}
	}
	for _, n := range chunks {
		ds := byChunk[n]
		a := r.activity("outcome-unknown", fmt.Sprintf("Bulk change, batch %d (%s): the answer was lost when the desk stopped; the desk reads the devices instead of sending again.", n, plural(len(ds), "device", "devices")), nil, nil)
		a.Detail = mustJSON(activityDetail{Failure: &explain.Failure{Cause: explain.AnswerNotStored, Batch: n, At: r.now()}})
		ch := store.BulkChange{JobID: r.job.ID, LeaseOwner: r.id, Activity: a}
		for _, d := range ds {
			o := d.BulkOutcome
			o.State, o.NotBefore, o.Reason, o.Failure, o.ActivityID = DeviceUnknown, r.now(), store.BulkReasonDeskStopped, nil, ""
			ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceInFlight}, FromChunk: n, BulkOutcome: o})
		}
		err := r.keep(ctx, ch)
		if errors.Is(err, store.ErrConflict) {
			return errLeaseLost
		}
		if err != nil {
			return err
		}
		r.audit(a)
	}
	return nil
}

// maxInlineWait is the longest wait for the write budget a worker sits out holding its lease;
// a longer one releases the job until then.
func (r *run) maxInlineWait() time.Duration { return min(30*time.Second, r.w.o.Lease/4) }

// leaseMargin is kept between the end of a Graph call and the end of its lease.
func leaseMargin(lease time.Duration) time.Duration { return min(20*time.Second, lease/4) }

// send sends the queued devices that are due, up to 20 at a time, as the write budget allows.
func (r *run) send(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := r.hold(ctx); err != nil {
			return err
		}
		devices, err := r.w.o.Store.BulkDevices(ctx, r.job.ID)
		if err != nil {
			return err
		}
		var due []store.BulkDevice
		for _, d := range devices {
			if d.State != DeviceQueued {
				continue
			}
			if r.now().Before(d.NotBefore) {
				r.at(d.NotBefore)
				continue
			}
			due = append(due, d)
		}
		if len(due) == 0 {
			return nil
		}
		slots, retryAt, err := r.w.o.Budget.Take(ctx, r.job.TenantID, min(graphclient.BatchLimit, len(due)))
		if err != nil {
			return err
		}
		if slots.N == 0 {
			wait := retryAt.Sub(r.now())
			r.p.Waiting = &Wait{Pacing: true, Until: retryAt}
			if wait > r.maxInlineWait() {
				r.at(retryAt)
				return nil
			}
			if wait > 2*time.Second {
				_ = r.w.o.Store.ChangeBulk(ctx, store.BulkChange{JobID: r.job.ID, LeaseOwner: r.id, Payload: r.p.Encode()})
			}
			if err := sleep(ctx, max(wait, 5*time.Millisecond)); err != nil {
				return nil
			}
			continue
		}
		r.p.Waiting = nil
		if stop, err := r.sendChunk(ctx, due[:slots.N], slots); stop || err != nil {
			return err
		}
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// request is the batch request that makes the job's change to one device.
func (r *run) request(reqID, deviceID string) (graphclient.BatchRequest, error) {
	switch r.job.Action {
	case ActionUnassign:
		return graphclient.UnassignAutopilotUserRequest(reqID, deviceID)
	case ActionDelete:
		return graphclient.DeleteAutopilotDeviceRequest(reqID, deviceID)
	}
	tag := r.job.GroupTag
	return graphclient.UpdateAutopilotDeviceRequest(reqID, deviceID, graphclient.AutopilotDeviceChange{GroupTag: &tag})
}

// sendChunk records a chunk of devices as in flight, sends their changes in one batch and
// stores Graph's answer for each.
func (r *run) sendChunk(ctx context.Context, chunk []store.BulkDevice, slots Slots) (stop bool, err error) {
	if err := r.w.o.Store.RenewBulkLease(ctx, r.job.ID, r.id, r.w.o.Lease); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return true, errLeaseLost
		}
		return true, err
	}
	r.renewed = time.Now()
	deadline := r.renewed.Add(r.w.o.Lease - leaseMargin(r.w.o.Lease))
	r.chunks++
	n := r.chunks
	sent := r.now()
	ch := store.BulkChange{JobID: r.job.ID, LeaseOwner: r.id, Chunks: n}
	inFlight := make([]store.BulkDevice, len(chunk))
	for i, d := range chunk {
		o := d.BulkOutcome
		o.State, o.Chunk, o.Attempts, o.SentAt, o.NotBefore = DeviceInFlight, n, d.Attempts+1, sent, time.Time{}
		ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceQueued}, BulkOutcome: o})
		inFlight[i] = d
		inFlight[i].BulkOutcome = o
	}
	if err := r.w.o.Store.ChangeBulk(ctx, ch); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return true, errLeaseLost
		}
		return true, err
	}
	if err := r.w.fault(FaultRecorded); err != nil {
		return true, err
	}
	reqs := make([]graphclient.BatchRequest, len(inFlight))
	for i, d := range inFlight {
		req, err := r.request(strconv.Itoa(i+1), d.DeviceID)
		if err != nil {
			// An id that is not a GUID never leaves the desk; the job was made from Graph's own ids.
			return r.settle(ctx, n, inFlight, nil, nil, err)
		}
		reqs[i] = req
	}
	// A shutdown does not cut a call short: its answer is worth waiting for, within the lease.
	callCtx, cancel := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	answers, ex, callErr := r.batch(callCtx, reqs)
	cancel()
	if err := r.w.o.Budget.Answered(context.WithoutCancel(ctx), slots, r.now()); err != nil {
		r.w.o.Logger.Warn("count the write budget from Graph's answer", "job", r.job.ID, "error", err.Error())
	}
	if err := r.w.fault(FaultAnswered); err != nil {
		return true, err
	}
	return r.settle(ctx, n, inFlight, answers, ex, callErr)
}

// settle stores what became of each device of a chunk recorded as in flight.
// It reports stop when devices had to wait (throttled, the owner signed out): nothing more is
// sent this round.
func (r *run) settle(ctx context.Context, n int, chunk []store.BulkDevice, answers []graphclient.BatchResponse, ex *graphclient.Exchange, callErr error) (stop bool, err error) {
	now := r.now()
	outs := make([]store.BulkOutcome, len(chunk))
	var stopAll *explain.Failure
	for i, d := range chunk {
		o := d.BulkOutcome
		var err error
		status := 0
		switch {
		case callErr != nil && (i >= len(answers) || answers[i].Status == 0):
			err = callErr // the batch as a whole
		case i < len(answers):
			err, status = answers[i].Err, answers[i].Status
		}
		if ge, ok := graphclient.AsError(err); ok && ge.StatusCode != 0 {
			status = ge.StatusCode
		}
		o.StatusCode = status
		o.Reason, o.Failure = "", nil
		ge, isGraph := graphclient.AsError(err)
		switch {
		case err == nil:
			o.State, o.DoneAt = DeviceDone, now
		case isGraph && (ge.Kind == graphclient.KindOutcomeUnknown || status == 500 || status == 502 || status == 504 ||
			ge.Kind == graphclient.KindTimeout || ge.Kind == graphclient.KindBadResponse && status/100 == 2):
			// It may have run: the device is read to find out, never sent again.
			o.State, o.NotBefore = DeviceUnknown, now.Add(r.w.o.LookupDelays[0])
			o.Reason, o.Failure = store.BulkReasonAnswerLost, facts(err, now)
			r.at(o.NotBefore)
		case !isGraph || ge.Kind == graphclient.KindUnauthorized:
			// Nothing reached Graph, or Graph refused the token before running anything.
			o.State, o.Attempts = DeviceQueued, max(o.Attempts-1, 0)
			if errors.Is(err, web.ErrSessionEnded) {
				r.p.Paused = true
				r.after(r.w.o.PausedRecheck)
			} else {
				o.NotBefore = now.Add(30 * time.Second)
				f := failureOf(err, now)
				r.p.Trouble = &f
				r.at(o.NotBefore)
			}
		case status == http.StatusTooManyRequests || status == http.StatusServiceUnavailable || ge.Kind == graphclient.KindNetwork:
			// Graph did not run it: it goes again once Graph's wait has passed, and no desk writes
			// to the tenant before then.
			wait := ge.RetryAfter
			if wait <= 0 {
				wait = min(10*time.Second<<min(max(o.Attempts-1, 0), 5), 5*time.Minute)
			}
			o.State, o.NotBefore, o.Attempts = DeviceQueued, now.Add(wait), max(o.Attempts-1, 0)
			r.p.Waiting = &Wait{Throttled: status == http.StatusTooManyRequests, Until: o.NotBefore}
			r.at(o.NotBefore)
			if status == http.StatusTooManyRequests && ge.RetryAfter > 0 {
				if herr := r.w.o.Budget.Hold(context.WithoutCancel(ctx), r.job.TenantID, o.NotBefore); herr != nil {
					r.w.o.Logger.Warn("bulk worker: hold the tenant's writes", "job", r.job.ID, "error", herr.Error())
				}
			}
		case status == http.StatusNotFound && r.job.Action == ActionDelete:
			o.State, o.DoneAt = DeviceDone, now // the registration is gone, which is what was asked
		case status == http.StatusNotFound:
			o.State, o.DoneAt = DeviceNotFound, now
		default:
			f := failureOf(err, now)
			o.State, o.DoneAt, o.Failure = DeviceRefused, now, mustJSON(f)
			if jobWide(ge.Kind) {
				stopAll = &f
			}
		}
		outs[i] = o
	}
	counts := map[string]int{}
	for _, o := range outs {
		counts[o.State]++
	}
	outcome := "success"
	switch {
	case counts[DeviceRefused] > 0 || counts[DeviceNotFound] > 0:
		outcome = "failure"
	case counts[DeviceUnknown] > 0:
		outcome = "outcome-unknown"
	}
	var a *store.Activity
	if counts[DeviceQueued] < len(outs) { // Graph answered something worth recording
		a = r.activity(outcome, r.chunkSummary(n, len(chunk), counts), ex, firstErr(callErr, answers))
	}
	ch := store.BulkChange{JobID: r.job.ID, Activity: a}
	for i, d := range chunk {
		ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceInFlight}, FromChunk: n, BulkOutcome: outs[i]})
	}
	err = r.keep(ctx, ch)
	if errors.Is(err, store.ErrConflict) {
		return true, errLeaseLost // another worker took the job over and reads these devices instead
	}
	if err != nil {
		return true, err
	}
	if a != nil {
		r.audit(a)
	}
	if stopAll != nil {
		return true, r.skipRest(ctx, *stopAll)
	}
	return counts[DeviceQueued] > 0, nil
}

func firstErr(callErr error, answers []graphclient.BatchResponse) error {
	if callErr != nil {
		return callErr
	}
	for _, a := range answers {
		if a.Err != nil {
			return a.Err
		}
	}
	return nil
}

func (r *run) chunkSummary(n, size int, counts map[string]int) string {
	s := fmt.Sprintf("Bulk change to %s, batch %d (%s): ", explain.BulkAction(r.job.Action, r.job.GroupTag), n, plural(size, "device", "devices"))
	var parts []string
	for _, x := range []struct {
		state, words string
	}{{DeviceDone, "accepted"}, {DeviceRefused, "refused"}, {DeviceNotFound, "not found"}, {DeviceUnknown, "answer lost"}, {DeviceQueued, "to be sent again"}} {
		if counts[x.state] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[x.state], x.words))
		}
	}
	for i, p := range parts {
		if i > 0 {
			s += ", "
		}
		s += p
	}
	return s + "."
}

// jobWide: Graph refuses every change of the job alike, so none is sent after the first.
func jobWide(k graphclient.Kind) bool {
	switch k {
	case graphclient.KindForbiddenPermission, graphclient.KindForbiddenRole, graphclient.KindForbiddenLicense,
		graphclient.KindConditionalAccess, graphclient.KindNoMethodMatch, graphclient.KindSegmentNotFound:
		return true
	}
	return false
}

// skipRest marks every device still queued as not sent, after a refusal that holds for all.
func (r *run) skipRest(ctx context.Context, f explain.Failure) error {
	r.p.Refusal = &f
	devices, err := r.w.o.Store.BulkDevices(ctx, r.job.ID)
	if err != nil {
		return err
	}
	ch := store.BulkChange{JobID: r.job.ID, LeaseOwner: r.id, Payload: r.p.Encode()}
	for _, d := range devices {
		if d.State == DeviceQueued {
			o := d.BulkOutcome
			o.State, o.Reason, o.DoneAt = DeviceSkipped, "", r.now()
			ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceQueued}, BulkOutcome: o})
		}
	}
	if err := r.w.o.Store.ChangeBulk(ctx, ch); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return errLeaseLost
		}
		return err
	}
	return nil
}

// reconcile reads the devices whose answer was lost and that are due a look, 20 to a batch: a
// device that shows the change is done; one that does not yet is read again later, and after the
// last look reported "outcome unknown — check". Nothing is ever sent again.
func (r *run) reconcile(ctx context.Context) error {
	devices, err := r.w.o.Store.BulkDevices(ctx, r.job.ID)
	if err != nil {
		return err
	}
	var due []store.BulkDevice
	for _, d := range devices {
		if d.State != DeviceUnknown {
			continue
		}
		if r.now().Before(d.NotBefore) {
			r.at(d.NotBefore)
			continue
		}
		due = append(due, d)
	}
	for start := 0; start < len(due); start += graphclient.BatchLimit {
		if err := r.hold(ctx); err != nil {
			return err
		}
		chunk := due[start:min(start+graphclient.BatchLimit, len(due))]
		reqs := make([]graphclient.BatchRequest, len(chunk))
		for i, d := range chunk {
			if reqs[i], err = graphclient.GetAutopilotDeviceRequest(strconv.Itoa(i+1), d.DeviceID); err != nil {
				return err
			}
		}
		answers, ex, err := r.batch(ctx, reqs)
		if err != nil && answers == nil {
			if ge, ok := graphclient.AsError(err); ok && ge.RetryAfter > 0 {
				r.after(ge.RetryAfter)
				return nil
			}
			r.after(30 * time.Second)
			return nil
		}
		if stop, err := r.looked(ctx, chunk, answers, ex); stop || err != nil {
			return err
		}
	}
	return nil
}

// looked stores what reading a chunk of devices whose answer was lost showed.
func (r *run) looked(ctx context.Context, chunk []store.BulkDevice, answers []graphclient.BatchResponse, ex *graphclient.Exchange) (stop bool, err error) {
	now := r.now()
	ch := store.BulkChange{JobID: r.job.ID, LeaseOwner: r.id}
	found, unconfirmed := 0, 0
	for i, d := range chunk {
		o := d.BulkOutcome
		device, derr := graphclient.DecodeAutopilotDevice(answers[i])
		ge, _ := graphclient.AsError(derr)
		switch {
		case derr == nil && r.shows(device):
			o.State, o.DoneAt, o.Reconciled, o.Reason, o.Failure = DeviceDone, now, true, "", nil
			found++
		case ge != nil && ge.StatusCode == http.StatusNotFound:
			o.Reconciled, o.DoneAt, o.Failure = true, now, nil
			if r.job.Action == ActionDelete {
				o.State, o.Reason = DeviceDone, ""
				found++
			} else {
				o.State, o.Reason = DeviceNotFound, store.BulkReasonGone
			}
		case derr != nil:
			// Could not read it now (throttled, unavailable): it is read again later.
			wait := 30 * time.Second
			if ge != nil && ge.RetryAfter > 0 {
				wait = ge.RetryAfter
			}
			o.NotBefore = now.Add(wait)
			r.at(o.NotBefore)
			stop = true
		default:
			o.Lookups++
			if o.Lookups >= len(r.w.o.LookupDelays) {
				o.State, o.DoneAt, o.Reconciled, o.Reason = DeviceUnconfirmed, now, true, store.BulkReasonLookedUp
				unconfirmed++
			} else {
				o.NotBefore = now.Add(r.w.o.LookupDelays[o.Lookups] - r.w.o.LookupDelays[o.Lookups-1])
				r.at(o.NotBefore)
			}
		}
		ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceUnknown}, BulkOutcome: o})
	}
	if found+unconfirmed > 0 {
		ch.Activity = r.activity("success", fmt.Sprintf("Bulk change to %s: read %s whose answer was lost; %d show the change, %d could not be confirmed. Nothing was sent again.",
			explain.BulkAction(r.job.Action, r.job.GroupTag), plural(len(chunk), "device", "devices"), found, unconfirmed), ex, nil)
	}
	err = r.keep(ctx, ch)
	if errors.Is(err, store.ErrConflict) {
		return true, errLeaseLost
	}
	if err == nil && ch.Activity != nil {
		r.audit(ch.Activity)
	}
	return stop, err
}

// shows reports whether a device read in Graph shows the job's change.
func (r *run) shows(d *graphclient.AutopilotDevice) bool {
	switch r.job.Action {
	case ActionUnassign:
		return d.UserPrincipalName == ""
	case ActionDelete:
		return false // a device read is still registered
	}
	return d.GroupTag == r.job.GroupTag
}

// finishIfDone ends the job once every device has its final outcome.
func (r *run) finishIfDone(ctx context.Context) error {
	devices, err := r.w.o.Store.BulkDevices(ctx, r.job.ID)
	if err != nil {
		return err
	}
	for _, d := range devices {
		if !Final(d.State) {
			return nil
		}
	}
	r.p.Waiting, r.p.Trouble = nil, nil
	err = r.w.o.Store.ChangeBulk(ctx, store.BulkChange{JobID: r.job.ID, LeaseOwner: r.id, FromState: StateSending, State: StateFinished, Payload: r.p.Encode()})
	if errors.Is(err, store.ErrConflict) {
		return errLeaseLost
	}
	if err != nil {
		return err
	}
	c := Count(devices)
	r.w.o.Logger.Info("audit", "audit", true, "event", "bulk-complete", "tid", r.job.TenantID, "oid", r.job.ObjectID, "upn", r.job.ActorUPN,
		"target", r.job.ID, "detail", fmt.Sprintf("%d devices final: %d changed, %d refused, %d not found, %d unconfirmed, %d not sent",
			c.Devices, c.Done, c.Refused, c.NotFound, c.Unconfirmed, c.Skipped))
	return nil
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // plain data only
	}
	return b
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
