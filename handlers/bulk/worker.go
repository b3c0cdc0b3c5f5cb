package bulk

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
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
	LaterBulkChanges(ctx context.Context, tenantID, jobID, deviceID, serial, action string, after time.Time) ([]store.BulkLater, error)
	ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, string, error)
}

// Fault points: a test stops the worker at one of them, as if its process died there.
const (
	FaultRecorded = "bulk-recorded" // a chunk of devices is recorded as in flight; nothing is sent yet
	FaultAnswered = "bulk-answered" // Graph has answered the chunk; the answer is not stored yet
)

// ErrStopped, returned by a fault hook, stops the worker where it stands, as a crash would: its
// lease is left to run out.
var ErrStopped = jobs.ErrStopped

// Options configure a Worker: the settings every job worker shares (the owner's tokens, the
// lease, the tick, the fault hook), and the bulk change's own.
type Options struct {
	jobs.Options
	Store  Store
	Graph  Graph
	Budget *Budget

	// LookupDelays is when a device whose answer was lost is read, counted from the loss; one
	// whose change still does not show after the last look is "outcome unknown — check".
	LookupDelays []time.Duration
}

// Worker advances confirmed bulk jobs. Every replica runs one; jobs are shared through leases.
type Worker struct {
	*jobs.Worker
	o Options
}

// New returns a worker; Run starts it.
func New(o Options) *Worker {
	o.Options = o.Options.WithDefaults()
	if len(o.LookupDelays) == 0 {
		o.LookupDelays = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute}
	}
	w := &Worker{o: o}
	w.Worker = jobs.New(jobs.Kind{Name: "bulk worker", Action: "bulk-change", Claim: w.claim,
		Renew: o.Store.RenewBulkLease, Release: o.Store.ReleaseBulkJob}, o.Options)
	return w
}

// InFlight is the longest a change this worker sent waits for Graph's answer: a call never
// outlives the lease it runs under.
func (w *Worker) InFlight() time.Duration { return w.o.Lease }

// claim takes one due job for holder under a lease.
func (w *Worker) claim(ctx context.Context, holder string, lease time.Duration) (jobs.Job, error) {
	job, err := w.o.Store.ClaimBulkJob(ctx, StateSending, holder, lease)
	if err != nil || job == nil {
		return nil, err
	}
	return &run{w: w, job: job, chunks: job.Chunks}, nil
}

// run is one worker's turn at one job, under its lease.
type run struct {
	*jobs.Turn
	w      *Worker
	job    *store.BulkJob
	p      Payload
	chunks int
}

func (r *run) Owner() jobs.Owner {
	return jobs.Owner{JobID: r.job.ID, TenantID: r.job.TenantID, ObjectID: r.job.ObjectID, ActorName: r.job.ActorName, ActorUPN: r.job.ActorUPN}
}

func (r *run) HeldUp(f explain.Failure) { r.p.Trouble = &f }

func (r *run) Payload() []byte { return r.p.Encode() }

// Advance takes the job as far as it can go now.
func (r *run) Advance(ctx context.Context, t *jobs.Turn) error {
	r.Turn = t
	p, err := DecodePayload(r.job.Payload)
	if err != nil {
		return fmt.Errorf("decode bulk job %s: %w", r.job.ID, err)
	}
	r.p = p
	r.p.Trouble = nil
	if r.p.Waiting != nil && !r.Now().Before(r.p.Waiting.Until) {
		r.p.Waiting = nil
	}
	away, err := r.OwnerAway(ctx)
	if err != nil {
		return err
	}
	if r.p.Paused = away; away {
		return nil
	}
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

// batch sends one JSON batch with the owner's token (renewed once after a 401, see jobs.Call).
// A Retry-After Graph gives any of its requests holds every desk's writes to the tenant from the
// moment it comes, while the batch waits it out.
func (r *run) batch(ctx context.Context, reqs []graphclient.BatchRequest) ([]graphclient.BatchResponse, *graphclient.Exchange, error) {
	ctx = graphclient.OnThrottled(ctx, func(wait time.Duration) {
		until := r.Now().Add(wait)
		if err := r.w.o.Budget.Hold(context.WithoutCancel(ctx), r.job.TenantID, until); err != nil {
			r.Warn("hold the tenant's writes", err)
		}
		// The page says the batch waits, and until when, rather than that it is being sent.
		r.p.Waiting = &Wait{Held: true, Throttled: true, Until: until}
		if err := r.w.o.Store.ChangeBulk(context.WithoutCancel(ctx), store.BulkChange{JobID: r.job.ID, LeaseOwner: r.Holder(), Payload: r.p.Encode()}); err != nil {
			r.Warn("say that the batch waits for Graph", err)
		}
	})
	return jobs.Call(ctx, r.Turn, func(ts oauth2.TokenSource) ([]graphclient.BatchResponse, *graphclient.Exchange, error) {
		answers, exs, err := r.w.o.Graph.Batch(ctx, ts, reqs)
		return answers, graphclient.Joined(exs...), err
	})
}

// keep stores a change that records what Graph answered, retried until it is stored (see
// jobs.Turn.Keep).
func (r *run) keep(ctx context.Context, ch store.BulkChange) error {
	return r.Keep(ctx, func(ctx context.Context) error { return r.w.o.Store.ChangeBulk(ctx, ch) })
}

// facts is a failure as a device keeps it.
func facts(err error, at time.Time) []byte { return jobs.Encode(jobs.FailureOf(err, at)) }

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
		a := r.Activity("outcome-unknown", fmt.Sprintf("%s (%s): the answer was lost when the desk stopped; the desk reads the devices instead of sending again.", r.batchWords(n), explain.Count(len(ds), "device", "devices")), nil, nil)
		a.Detail = jobs.Encode(jobs.ActivityDetail{Failure: &explain.Failure{Cause: explain.AnswerNotStored, Batch: n, At: r.Now()}})
		ch := store.BulkChange{JobID: r.job.ID, LeaseOwner: r.Holder(), Activity: a}
		for _, d := range ds {
			o := d.BulkOutcome
			o.State, o.NotBefore, o.Reason, o.Failure, o.ActivityID = DeviceUnknown, r.Now(), store.BulkReasonDeskStopped, nil, ""
			ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceInFlight}, FromChunk: n, BulkOutcome: o})
		}
		if err := r.keep(ctx, ch); err != nil {
			return jobs.LeaseErr(err)
		}
		r.Audit(a)
	}
	return nil
}

// maxInlineWait is the longest wait for the write budget a worker sits out holding its lease;
// a longer one releases the job until then.
func (r *run) maxInlineWait() time.Duration { return min(30*time.Second, r.w.o.Lease/4) }

// send sends the queued devices that are due, up to 20 at a time, as the write budget allows.
func (r *run) send(ctx context.Context) error {
	for ctx.Err() == nil {
		if err := r.Hold(ctx); err != nil {
			return err
		}
		due, err := r.due(ctx, DeviceQueued)
		if err != nil || len(due) == 0 {
			return err
		}
		slots, retryAt, err := r.w.o.Budget.TakeForBulk(ctx, r.job.TenantID, min(graphclient.BatchLimit, len(due)))
		if err != nil {
			return err
		}
		if slots.N == 0 {
			wait := retryAt.Sub(r.Now())
			r.p.Waiting = &Wait{Pacing: !slots.Held, Held: slots.Held, Until: retryAt}
			if wait > r.maxInlineWait() {
				r.At(retryAt)
				return nil
			}
			if wait > 2*time.Second {
				_ = r.w.o.Store.ChangeBulk(ctx, store.BulkChange{JobID: r.job.ID, LeaseOwner: r.Holder(), Payload: r.p.Encode()})
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(max(wait, 5*time.Millisecond)):
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

// due are the job's devices in state whose next step is due; the job is looked at again when
// the first of the others is.
func (r *run) due(ctx context.Context, state string) ([]store.BulkDevice, error) {
	devices, err := r.w.o.Store.BulkDevices(ctx, r.job.ID)
	if err != nil {
		return nil, err
	}
	var due []store.BulkDevice
	for _, d := range devices {
		if d.State == state && r.Due(d.NotBefore) {
			due = append(due, d)
		}
	}
	return due, nil
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
	callCtx, cancel, err := r.CallContext(ctx)
	if err != nil {
		return true, err
	}
	defer cancel()
	r.chunks++
	n := r.chunks
	sent := r.Now()
	ch := store.BulkChange{JobID: r.job.ID, LeaseOwner: r.Holder(), Chunks: n}
	inFlight := make([]store.BulkDevice, len(chunk))
	for i, d := range chunk {
		o := d.BulkOutcome
		o.State, o.Chunk, o.Attempts, o.SentAt, o.NotBefore = DeviceInFlight, n, d.Attempts+1, sent, time.Time{}
		ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceQueued}, BulkOutcome: o})
		inFlight[i] = d
		inFlight[i].BulkOutcome = o
	}
	if err := r.w.o.Store.ChangeBulk(ctx, ch); err != nil {
		if errors.Is(err, store.ErrConflict) && r.w.o.Store.ChangeBulk(ctx, store.BulkChange{JobID: r.job.ID, LeaseOwner: r.Holder()}) == nil {
			// Still this worker's: a bulk change confirmed since took some of these devices over
			// (they are no longer queued). The others are sent with the next chunk.
			r.chunks--
			return false, nil
		}
		return true, jobs.LeaseErr(err)
	}
	if err := r.Fault(FaultRecorded); err != nil {
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
	answers, ex, callErr := r.batch(callCtx, reqs)
	if err := r.w.o.Budget.Answered(context.WithoutCancel(ctx), slots, r.Now()); err != nil {
		r.Warn("count the write budget from Graph's answer", err)
	}
	if err := r.Fault(FaultAnswered); err != nil {
		return true, err
	}
	return r.settle(ctx, n, inFlight, answers, ex, callErr)
}

// settle stores what became of each device of a chunk recorded as in flight.
// It reports stop when devices had to wait (throttled, the owner signed out): nothing more is
// sent this round.
func (r *run) settle(ctx context.Context, n int, chunk []store.BulkDevice, answers []graphclient.BatchResponse, ex *graphclient.Exchange, callErr error) (stop bool, err error) {
	now := r.Now()
	outs := make([]store.BulkOutcome, len(chunk))
	var stopAll *explain.Failure
	for i, d := range chunk {
		var refused *explain.Failure
		outs[i], refused = r.outcome(ctx, now, d.BulkOutcome, answerOf(i, answers, callErr))
		if refused != nil {
			stopAll = refused
		}
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
		a = r.Activity(outcome, r.chunkSummary(n, len(chunk), counts), ex, firstErr(callErr, answers))
	}
	ch := store.BulkChange{JobID: r.job.ID, Activity: a}
	for i, d := range chunk {
		ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceInFlight}, FromChunk: n, BulkOutcome: outs[i]})
	}
	if err := r.keep(ctx, ch); err != nil {
		return true, jobs.LeaseErr(err) // on a conflict, another worker took the job over and reads these devices instead
	}
	if a != nil {
		r.Audit(a)
	}
	if stopAll != nil {
		return true, r.skipRest(ctx, *stopAll)
	}
	return counts[DeviceQueued] > 0, nil
}

// answerOf is what Graph answered for the i-th request of a batch: its own answer, or the
// batch's error when the batch as a whole failed without one.
func answerOf(i int, answers []graphclient.BatchResponse, callErr error) graphclient.BatchResponse {
	switch {
	case callErr != nil && (i >= len(answers) || answers[i].Status == 0):
		return graphclient.BatchResponse{Err: callErr} // the batch as a whole
	case i < len(answers):
		return answers[i]
	}
	return graphclient.BatchResponse{}
}

// outcome is what becomes of a device in flight once Graph answered; stopAll is set when the
// refusal holds for every device of the job.
func (r *run) outcome(ctx context.Context, now time.Time, o store.BulkOutcome, answer graphclient.BatchResponse) (_ store.BulkOutcome, stopAll *explain.Failure) {
	err, status := answer.Err, answer.Status
	if ge, ok := graphclient.AsError(err); ok && ge.StatusCode != 0 {
		status = ge.StatusCode
	}
	o.StatusCode = status
	o.Reason, o.Failure = "", nil
	ge, isGraph := graphclient.AsError(err)
	switch {
	case err == nil:
		o.State, o.DoneAt = DeviceDone, now
	case isGraph && (ge.Kind == graphclient.KindOutcomeUnknown || status/100 == 5 && status != http.StatusServiceUnavailable ||
		ge.Kind == graphclient.KindTimeout || ge.Kind == graphclient.KindBadResponse && status/100 == 2):
		// It may have run (a server error on a write may have been carried out, 507 included): the
		// device is read to find out, never sent again.
		o.State, o.NotBefore = DeviceUnknown, now.Add(r.w.o.LookupDelays[0])
		o.Reason, o.Failure = store.BulkReasonAnswerLost, facts(err, now)
		r.At(o.NotBefore)
	case !isGraph || ge.Kind == graphclient.KindUnauthorized:
		// Nothing reached Graph, or Graph refused the token before running anything.
		o.State, o.Attempts = DeviceQueued, max(o.Attempts-1, 0)
		if errors.Is(err, web.ErrSessionEnded) {
			r.p.Paused = true
			r.After(r.w.o.PausedRecheck)
		} else {
			o.NotBefore = now.Add(30 * time.Second)
			f := jobs.FailureOf(err, now)
			r.p.Trouble = &f
			r.At(o.NotBefore)
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
		r.At(o.NotBefore)
		if status == http.StatusTooManyRequests && ge.RetryAfter > 0 {
			if herr := r.w.o.Budget.Hold(context.WithoutCancel(ctx), r.job.TenantID, o.NotBefore); herr != nil {
				r.Warn("hold the tenant's writes", herr)
			}
		}
	case status == http.StatusNotFound && r.job.Action == ActionDelete:
		o.State, o.DoneAt = DeviceDone, now // the registration is gone, which is what was asked
	case status == http.StatusNotFound:
		o.State, o.DoneAt = DeviceNotFound, now
	default:
		f := jobs.FailureOf(err, now)
		o.State, o.DoneAt, o.Failure = DeviceRefused, now, jobs.Encode(f)
		if jobWide(ge.Kind) {
			stopAll = &f
		}
		r.WriteRefused(ctx, err, now)
	}
	return o, stopAll
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

// batchWords names batch n as a part of the whole change, so that its record does not read as a
// change of its own: "Batch 3 of the bulk change of 1,000 devices".
func (r *run) batchWords(n int) string {
	return fmt.Sprintf("Batch %d of the bulk change of %s", n, explain.Count(r.job.Devices, "device", "devices"))
}

func (r *run) chunkSummary(n, size int, counts map[string]int) string {
	s := fmt.Sprintf("%s to %s (%s): ", r.batchWords(n), explain.BulkAction(r.job.Action, r.job.GroupTag), explain.Count(size, "device", "devices"))
	var parts []string
	for _, x := range []struct {
		state, one, other string
	}{{DeviceDone, "accepted", "accepted"}, {DeviceRefused, "refused", "refused"}, {DeviceNotFound, "not found", "not found"},
		{DeviceUnknown, "answer lost", "answers lost"}, {DeviceQueued, "to be sent again", "to be sent again"}} {
		if counts[x.state] > 0 {
			parts = append(parts, explain.Count(counts[x.state], x.one, x.other))
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
	ch := store.BulkChange{JobID: r.job.ID, LeaseOwner: r.Holder(), Payload: r.p.Encode()}
	for _, d := range devices {
		if d.State == DeviceQueued {
			o := d.BulkOutcome
			o.State, o.Reason, o.DoneAt = DeviceSkipped, "", r.Now()
			ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceQueued}, BulkOutcome: o})
		}
	}
	if err := r.w.o.Store.ChangeBulk(ctx, ch); err != nil {
		return jobs.LeaseErr(err)
	}
	return nil
}

// reconcile reads the devices whose answer was lost and that are due a look, 20 to a batch: a
// device that shows the change is done; one that does not yet is read again later, and after the
// last look reported "outcome unknown — check". Nothing is ever sent again.
func (r *run) reconcile(ctx context.Context) error {
	due, err := r.due(ctx, DeviceUnknown)
	if err != nil {
		return err
	}
	for start := 0; start < len(due); start += graphclient.BatchLimit {
		if err := r.Hold(ctx); err != nil {
			return err
		}
		if r.heldByGraph(ctx) {
			return nil
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
				r.After(ge.RetryAfter)
				r.holdFor(ctx, ge)
				return nil
			}
			r.After(30 * time.Second)
			return nil
		}
		if stop, err := r.looked(ctx, chunk, answers, ex); stop || err != nil {
			return err
		}
	}
	return nil
}

// heldByGraph reports whether Graph asked every desk to wait (a Retry-After kept in the state
// database): the devices are then read once it has passed, as a read sent before it is punished
// with a longer wait for the whole tenant.
func (r *run) heldByGraph(ctx context.Context) bool {
	now := r.Now()
	until, err := r.w.o.Budget.HeldUntil(ctx, r.job.TenantID, now)
	if err != nil {
		r.Warn("read the tenant's hold", err)
		return false
	}
	if !now.Before(until) {
		return false
	}
	if r.p.Waiting == nil || r.p.Waiting.Until.Before(until) {
		r.p.Waiting = &Wait{Held: true, Until: until}
	}
	r.At(until)
	return true
}

// holdFor holds every desk's requests to the tenant until the Retry-After of Graph's 429 to a
// read has passed, as one to a write does.
func (r *run) holdFor(ctx context.Context, ge *graphclient.Error) {
	if ge.StatusCode != http.StatusTooManyRequests || ge.RetryAfter <= 0 {
		return
	}
	if err := r.w.o.Budget.Hold(context.WithoutCancel(ctx), r.job.TenantID, r.Now().Add(ge.RetryAfter)); err != nil {
		r.Warn("hold the tenant's writes", err)
	}
}

// looked stores what reading a chunk of devices whose answer was lost showed.
func (r *run) looked(ctx context.Context, chunk []store.BulkDevice, answers []graphclient.BatchResponse, ex *graphclient.Exchange) (stop bool, err error) {
	now := r.Now()
	ch := store.BulkChange{JobID: r.job.ID, LeaseOwner: r.Holder()}
	found, unconfirmed, replaced := 0, 0, 0
	restoredRead, restoredFound, restoredNot := 0, 0, 0
	for i, d := range chunk {
		o := d.BulkOutcome
		device, derr := graphclient.DecodeAutopilotDevice(answers[i])
		ge, _ := graphclient.AsError(derr)
		// A change the backup the desk was restored from had not sent is read once: what Graph
		// has now is its outcome, as this desk never sent it.
		restored := d.Reason == store.BulkReasonRestored
		if restored {
			restoredRead++
		}
		switch {
		case derr == nil && r.shows(device):
			o.State, o.DoneAt, o.Reconciled, o.Failure = DeviceDone, now, true, nil
			if !restored {
				o.Reason = ""
				found++
			} else {
				restoredFound++
			}
		case ge != nil && ge.StatusCode == http.StatusNotFound:
			o.Reconciled, o.DoneAt, o.Failure = true, now, nil
			switch {
			case r.job.Action == ActionDelete && restored:
				o.State = DeviceDone
				restoredFound++
			case r.job.Action == ActionDelete:
				o.State, o.Reason = DeviceDone, ""
				found++
			case restored:
				o.State = DeviceNotFound
				restoredNot++
			default:
				o.State, o.Reason = DeviceNotFound, store.BulkReasonGone
			}
		case derr != nil:
			// Could not read it now (throttled, unavailable): it is read again later.
			wait := 30 * time.Second
			if ge != nil && ge.RetryAfter > 0 {
				wait = ge.RetryAfter
				r.holdFor(ctx, ge)
			}
			o.NotBefore = now.Add(wait)
			r.At(o.NotBefore)
			stop = true
		case restored:
			o.State, o.DoneAt, o.Reconciled, o.Lookups = DeviceUnconfirmed, now, true, o.Lookups+1
			restoredNot++
		default:
			if later, err := r.replacedBy(ctx, d, device); err != nil {
				return true, err
			} else if later != nil {
				o.State, o.DoneAt, o.Reconciled, o.Reason, o.Failure = DeviceReplaced, now, true, "", jobs.Encode(*later)
				if later.JobID == "" {
					o.Reason = store.BulkReasonDevicePage
				}
				replaced++
				break
			}
			if counts, due := jobs.ScheduledLook(LostAt(o), now, r.w.o.LookupDelays, o.Lookups); !counts {
				// A look asked by hand before the schedule's next: the schedule goes on as it was.
				o.NotBefore = due
				r.At(o.NotBefore)
				break
			}
			o.Lookups++
			if o.Lookups >= len(r.w.o.LookupDelays) {
				o.State, o.DoneAt, o.Reconciled, o.Reason = DeviceUnconfirmed, now, true, store.BulkReasonLookedUp
				unconfirmed++
			} else {
				o.NotBefore = now.Add(r.w.o.LookupDelays[o.Lookups] - r.w.o.LookupDelays[o.Lookups-1])
				r.At(o.NotBefore)
			}
		}
		ch.Devices = append(ch.Devices, store.BulkDeviceChange{Position: d.Position, From: []string{DeviceUnknown}, BulkOutcome: o})
	}
	change := fmt.Sprintf("Bulk change of %s to %s: ", explain.Count(r.job.Devices, "device", "devices"), explain.BulkAction(r.job.Action, r.job.GroupTag))
	var summary string
	if found+unconfirmed+replaced > 0 {
		said := fmt.Sprintf("%d show the change, %d could not be confirmed", found, unconfirmed)
		if replaced > 0 {
			said = fmt.Sprintf("%d show the change, %d show a later change instead, %d could not be confirmed", found, replaced, unconfirmed)
		}
		summary = fmt.Sprintf("%sread %s whose answer was lost; %s. Nothing was sent again.", change, explain.Count(len(chunk)-restoredRead, "device", "devices"), said)
	}
	if restoredFound+restoredNot > 0 {
		said := fmt.Sprintf("the desk was restored from a backup that had not sent the change to %s, so they were read in Graph instead: %d show the change, %d do not. Nothing was sent.",
			explain.Count(restoredFound+restoredNot, "device", "devices"), restoredFound, restoredNot)
		if summary == "" {
			summary = change + said
		} else {
			summary += " " + explain.Sentence(said)
		}
	}
	if summary != "" {
		ch.Activity = r.Activity("success", summary, ex, nil)
	}
	err = r.keep(ctx, ch)
	if errors.Is(err, store.ErrConflict) {
		return true, jobs.ErrLeaseLost
	}
	if err == nil && ch.Activity != nil {
		r.Audit(ch.Activity)
	}
	return stop, err
}

// replacedBy is the later change of the device, sent after this one's answer was lost, whose
// value now stands, so this one's outcome no longer matters: a bulk change of another job or a
// change made on the device's own page, that Graph accepted or whose own answer was lost and that
// the device as read shows. The newest such; nil when there is none.
func (r *run) replacedBy(ctx context.Context, d store.BulkDevice, device *graphclient.AutopilotDevice) (*explain.LaterBulk, error) {
	later, err := r.w.o.Store.LaterBulkChanges(ctx, r.job.TenantID, r.job.ID, d.DeviceID, d.Serial, r.job.Action, d.SentAt)
	if err != nil {
		return nil, err
	}
	var found *explain.LaterBulk
	for _, l := range later {
		if l.State == DeviceDone || l.Action == ActionGroupTag && device.GroupTag == l.GroupTag {
			found = &explain.LaterBulk{JobID: l.JobID, Action: l.Action, GroupTag: l.GroupTag, By: l.ActorName, At: l.SentAt}
			break
		}
	}
	onPage, err := r.pageChange(ctx, d, device)
	if err != nil {
		return nil, err
	}
	if onPage != nil && (found == nil || onPage.At.After(found.At)) {
		return onPage, nil
	}
	return found, nil
}

// pageIntent is what a change made on a device's page asked, as its record keeps it (the
// "device" of the record's detail, written by the registered devices' handler).
type pageIntent struct {
	Device *struct {
		GroupTag *string `json:"groupTag"`
		User     *string `json:"user"`
	} `json:"device"`
}

// pageChange is the newest change made on the device's own page after this one was sent that
// changed what this job changes and whose value stands: one Graph accepted, or one whose answer
// was lost that the device as read shows. Nil when there is none.
func (r *run) pageChange(ctx context.Context, d store.BulkDevice, device *graphclient.AutopilotDevice) (*explain.LaterBulk, error) {
	if r.job.Action == ActionDelete || d.SentAt.IsZero() {
		return nil, nil
	}
	records, _, err := r.w.o.Store.ListActivity(ctx, store.ActivityFilter{TenantID: r.job.TenantID, Device: d.DeviceID, Limit: 50})
	if err != nil {
		return nil, err
	}
	for _, a := range records { // newest first
		if !a.At.After(d.SentAt) {
			break
		}
		if !strings.HasPrefix(a.Action, "device-") || a.Outcome != explain.OutcomeSuccess && a.Outcome != explain.OutcomeUnknown {
			continue
		}
		in, err := jobs.Decode[pageIntent](a.Detail)
		if err != nil || in.Device == nil {
			continue
		}
		var value *string
		var said string
		switch r.job.Action {
		case ActionGroupTag:
			if value = in.Device.GroupTag; value != nil {
				said = "group tag " + explain.QuotedOrNone(*value)
				if a.Outcome == explain.OutcomeUnknown && device.GroupTag != *value {
					continue
				}
			}
		case ActionUnassign:
			if value = in.Device.User; value != nil {
				said = "no assigned user"
				if *value != "" {
					said = "assigned user " + *value
				}
				if a.Outcome == explain.OutcomeUnknown && !strings.EqualFold(device.UserPrincipalName, *value) {
					continue
				}
			}
		}
		if value == nil {
			continue
		}
		return &explain.LaterBulk{Action: a.Action, By: a.ActorName, At: a.At, Said: said}, nil
	}
	return nil, nil
}

// LostAt is when a device's answer was lost (or, the desk having stopped before storing it, when
// it was sent): its looks are scheduled from then.
func LostAt(o store.BulkOutcome) time.Time {
	if f, err := jobs.Decode[explain.Failure](o.Failure); err == nil && !f.At.IsZero() {
		return f.At
	}
	return o.SentAt
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
	err = r.w.o.Store.ChangeBulk(ctx, store.BulkChange{JobID: r.job.ID, LeaseOwner: r.Holder(), FromState: StateSending, State: StateFinished, Payload: r.p.Encode()})
	if err != nil {
		return jobs.LeaseErr(err)
	}
	c := Count(devices)
	r.AuditFinished("bulk-complete", fmt.Sprintf("%d devices final: %d changed, %d refused, %d not found, %d unconfirmed, %d not sent, %d replaced by a later change",
		c.Devices, c.Done, c.Refused, c.NotFound, c.Unconfirmed, c.Skipped, c.Replaced))
	return nil
}
