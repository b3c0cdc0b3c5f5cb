package importer

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// send sends one queued batch: recorded as in flight first, then the import action, then the
// answer stored. stop means no further batch should go now (Graph asked to wait, the owner must
// sign in again, or Graph refused the whole import).
func (r *run) send(ctx context.Context, b store.ImportBatch) (stop bool, err error) {
	rows, err := r.w.o.Store.ImportRows(ctx, r.job.ID, store.RowFilter{Batch: b.Batch, Hashes: true})
	if err != nil {
		return true, err
	}
	if len(rows) == 0 {
		return false, nil
	}
	callCtx, cancel, err := r.CallContext(ctx)
	if err != nil {
		return true, err
	}
	defer cancel()
	inFlight := b
	inFlight.State, inFlight.Attempts, inFlight.SentAt = BatchInFlight, b.Attempts+1, r.Now()
	err = r.w.o.Store.ChangeImport(ctx, store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), BatchFrom: []string{BatchQueued}, Batch: &inFlight,
		Rows: outcomes(rows, func(store.ImportRow) store.Outcome {
			return store.Outcome{Batch: b.Batch, Verdict: store.VerdictSending}
		})})
	if errors.Is(err, store.ErrConflict) && r.stopped(ctx, b.Batch) {
		return true, nil // stopped while queued: it goes nowhere, and neither do the others
	}
	if err != nil {
		return true, jobs.LeaseErr(err)
	}
	if err := r.Fault(FaultBatchRecorded); err != nil {
		return true, err
	}

	devices := make([]graphclient.DeviceIdentity, len(rows))
	for i, row := range rows {
		hash, _ := devicecsv.DecodeHash(row.Hash) // checked when the file was read
		devices[i] = graphclient.DeviceIdentity{SerialNumber: row.Serial, ProductKey: row.ProductKey, HardwareIdentifier: hash,
			GroupTag: row.GroupTag, AssignedUserPrincipalName: row.User}
	}
	callCtx = graphclient.OnThrottled(callCtx, func(wait time.Duration) { r.throttled(ctx, wait) })
	created, ex, callErr := jobs.Call(callCtx, r.Turn, func(ts oauth2.TokenSource) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error) {
		return r.w.o.Graph.ImportDeviceIdentities(callCtx, ts, devices)
	})
	if err := r.Fault(FaultAnswerReceived); err != nil {
		return true, err
	}
	return r.settle(ctx, inFlight, rows, created, ex, callErr)
}

// throttled is told when Graph answers the batch 429 and the Graph client waits its Retry-After
// out within the call: the tenant's other writes are held, and the page says the import waits
// for Graph, and until when, rather than that the batch is being sent.
func (r *run) throttled(ctx context.Context, wait time.Duration) {
	ctx = context.WithoutCancel(ctx)
	until := r.Now().Add(wait)
	if r.w.o.Holds != nil {
		// Every desk's writes to the tenant wait too, from the moment the 429 came.
		if err := r.w.o.Holds.Hold(ctx, r.job.TenantID, until); err != nil {
			r.Warn("hold the tenant's writes", err)
		}
	}
	r.p.Waiting = &Wait{Throttled: true, For: wait, Until: until}
	err := r.w.o.Store.ChangeImport(ctx, store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), Payload: r.p.Encode()})
	if err != nil {
		r.Warn("say that the batch waits for Graph", err)
	}
}

// stopped reports whether batch was stopped (Stop), which is why recording it in flight found it
// no longer queued; false means the lease was lost, or the batch cannot be read now.
func (r *run) stopped(ctx context.Context, batch int) bool {
	batches, err := r.w.o.Store.ImportBatches(ctx, r.job.ID)
	if err != nil {
		return false
	}
	i := slices.IndexFunc(batches, func(b store.ImportBatch) bool { return b.Batch == batch })
	return i >= 0 && batches[i].State == BatchStopped
}

// settle stores what became of a batch that was recorded as in flight.
func (r *run) settle(ctx context.Context, b store.ImportBatch, rows []store.ImportRow, created []graphclient.DeviceIdentity, ex *graphclient.Exchange, err error) (bool, error) {
	ge, isGraph := graphclient.AsError(err)
	switch {
	case err == nil:
		return false, r.answered(ctx, b, rows, created, ex)
	case isGraph && (ge.Kind == graphclient.KindOutcomeUnknown || ge.Kind == graphclient.KindBadResponse && ge.StatusCode/100 == 2):
		// It may have run (a 502, 504 or timeout), or it ran and its answer cannot be read.
		return false, r.unknown(ctx, b, rows, ex, err, false)
	case !isGraph && r.w.o.Outage(err):
		// The owner's token could not be read for the state database's outage: nothing reached
		// Graph, and the batch goes as soon as the database is back.
		return true, r.requeue(ctx, b, rows, jobs.OutageWait, nil)
	case !isGraph || ge.Kind == graphclient.KindUnauthorized:
		// Nothing reached Graph, or Graph refused the token before running anything.
		if errors.Is(err, web.ErrSessionEnded) || isGraph {
			r.p.Paused = true
			return true, r.requeue(ctx, b, rows, 0, nil)
		}
		f := jobs.FailureOf(err, r.Now())
		f.While = explain.Sending
		r.p.Trouble = &f
		return true, r.requeue(ctx, b, rows, 30*time.Second, nil)
	case ge.Kind == graphclient.KindThrottled || ge.StatusCode == http.StatusServiceUnavailable || ge.StatusCode == http.StatusInsufficientStorage ||
		ge.Kind == graphclient.KindNetwork:
		// Graph did not run it (throttled, unavailable, or never reached): it may go again.
		wait := ge.RetryAfter
		if wait <= 0 {
			wait = min(10*time.Second<<min(b.Attempts-1, 5), 5*time.Minute)
		}
		return true, r.requeue(ctx, b, rows, wait, &Wait{Throttled: ge.Kind == graphclient.KindThrottled, For: wait, Until: r.Now().Add(wait)})
	case ge.Kind == graphclient.KindTooLarge || ge.Kind == graphclient.KindInvalidInput && len(rows) > 1:
		return false, r.split(ctx, b, rows, ex, err)
	case jobWide(ge.Kind):
		return true, r.refuse(ctx, b, rows, ex, err, true)
	default:
		return false, r.refuse(ctx, b, rows, ex, err, false)
	}
}

// jobWide: Graph refuses every batch of this import alike, so none is sent after the first.
func jobWide(k graphclient.Kind) bool {
	switch k {
	case graphclient.KindForbiddenPermission, graphclient.KindForbiddenRole, graphclient.KindForbiddenLicense,
		graphclient.KindConditionalAccess, graphclient.KindSegmentNotFound, graphclient.KindNoMethodMatch, graphclient.KindNotFound:
		return true
	}
	return false
}

// answered stores Graph's answer: each row gets the id Graph gave its device.
func (r *run) answered(ctx context.Context, b store.ImportBatch, rows []store.ImportRow, created []graphclient.DeviceIdentity, ex *graphclient.Exchange) error {
	bySerial := make(map[string]graphclient.DeviceIdentity, len(created))
	for _, d := range created {
		if d.ID != "" {
			bySerial[upper(d.SerialNumber)] = d
		}
	}
	missing := 0
	outs := outcomes(rows, func(row store.ImportRow) store.Outcome {
		d, ok := bySerial[upper(row.Serial)]
		if !ok {
			missing++
			return store.Outcome{Batch: b.Batch, Verdict: store.VerdictUnknown}
		}
		return store.Outcome{Batch: b.Batch, Verdict: verdictOf(d.State), DeviceID: d.ID, Status: d.State.Status(),
			RegistrationID: d.State.DeviceRegistrationID, ErrorCode: d.State.DeviceErrorCode, ErrorName: d.State.DeviceErrorName}
	})
	done := b
	done.State = BatchSent
	done.Detail = BatchDetail{Support: graphclient.SupportFor(ex, nil)}.encode()
	if missing > 0 {
		// Graph's answer left some devices out: they are looked up like a lost answer's.
		done.State, done.NotBefore = BatchUnknown, r.Now().Add(r.w.o.LookupDelays[0])
		r.At(done.NotBefore)
	}
	a := r.Activity("success", fmt.Sprintf("Sent %s: Microsoft Graph accepted %s.", r.batchWords(b.Batch), explain.Count(len(rows)-missing, "device", "devices")), ex, nil)
	err := r.keep(ctx, store.ImportChange{JobID: r.job.ID, BatchFrom: []string{BatchInFlight, BatchUnknown}, Batch: &done, Rows: outs, Activity: a})
	if err == nil {
		r.Audit(a)
	}
	if errors.Is(err, store.ErrConflict) {
		return nil // another worker settled it meanwhile, from Graph's own records
	}
	return err
}

// unknown records a batch whose answer never arrived: its devices are looked up in Graph, never
// sent again. notStored: the desk stopped before storing the answer (err is nil then).
func (r *run) unknown(ctx context.Context, b store.ImportBatch, rows []store.ImportRow, ex *graphclient.Exchange, err error, notStored bool) error {
	f := jobs.FailureOf(err, r.Now())
	if notStored {
		f = explain.Failure{Cause: explain.AnswerNotStored, Batch: b.Batch, At: r.Now()}
	}
	lost := b
	lost.State, lost.NotBefore = BatchUnknown, r.Now().Add(r.w.o.LookupDelays[0])
	if notStored {
		lost.NotBefore = r.Now()
	}
	r.At(lost.NotBefore)
	a := r.Activity("outcome-unknown", fmt.Sprintf("%s (%s): Microsoft Graph's answer never arrived; the desk looks the devices up instead of sending them again.", explain.Sentence(r.batchWords(b.Batch)), explain.Count(len(rows), "device", "devices")), ex, err)
	if notStored {
		a.Detail = jobs.Encode(jobs.ActivityDetail{Failure: &f})
	}
	lost.Detail = BatchDetail{Failure: &f, Support: graphclient.SupportFor(ex, err)}.encode()
	ch := store.ImportChange{JobID: r.job.ID, BatchFrom: []string{BatchInFlight}, Batch: &lost, Activity: a,
		Rows: outcomes(rows, func(store.ImportRow) store.Outcome {
			return store.Outcome{Batch: b.Batch, Verdict: store.VerdictUnknown}
		})}
	if notStored {
		ch.LeaseOwner = r.Holder()
	}
	err = r.keep(ctx, ch)
	if err == nil {
		r.Audit(a)
	}
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	return err
}

// lost handles a batch found in flight under this worker's new lease: the worker that sent it
// is gone, and with it Graph's answer.
func (r *run) lost(ctx context.Context, b store.ImportBatch) error {
	rows, err := r.w.o.Store.ImportRows(ctx, r.job.ID, store.RowFilter{Batch: b.Batch})
	if err != nil {
		return err
	}
	return r.unknown(ctx, b, rows, nil, nil, true)
}

// requeue puts a batch that Graph did not run back in the queue.
func (r *run) requeue(ctx context.Context, b store.ImportBatch, rows []store.ImportRow, wait time.Duration, w *Wait) error {
	again := b
	again.State, again.NotBefore = BatchQueued, r.Now().Add(wait)
	again.Detail = BatchDetail{Wait: w}.encode()
	if w != nil {
		r.p.Waiting = w
	}
	r.At(again.NotBefore)
	err := r.keep(ctx, store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), BatchFrom: []string{BatchInFlight}, Batch: &again,
		Rows: outcomes(rows, func(store.ImportRow) store.Outcome {
			return store.Outcome{Batch: b.Batch, Verdict: store.VerdictQueued}
		})})
	return jobs.LeaseErr(err)
}

// split puts the rows of a batch Graph refused as too large into two batches of half the size.
func (r *run) split(ctx context.Context, b store.ImportBatch, rows []store.ImportRow, ex *graphclient.Exchange, err error) error {
	if len(rows) < 2 {
		return r.refuse(ctx, b, rows, ex, err, false)
	}
	batches, berr := r.w.o.Store.ImportBatches(ctx, r.job.ID)
	if berr != nil {
		return berr
	}
	last := 0
	for _, x := range batches {
		last = max(last, x.Batch)
	}
	half := len(rows) / 2
	first, second := last+1, last+2
	f := jobs.FailureOf(err, r.Now())
	done := b
	done.State = BatchSplit
	done.Detail = BatchDetail{Failure: &f, Support: graphclient.SupportFor(ex, err)}.encode()
	var outs []store.RowOutcome
	for i, row := range rows {
		n := first
		if i >= half {
			n = second
		}
		outs = append(outs, store.RowOutcome{Line: row.Line, Outcome: store.Outcome{Batch: n, Verdict: store.VerdictQueued}})
	}
	serr := r.keep(ctx, store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), BatchFrom: []string{BatchInFlight}, Batch: &done, Batches: second,
		NewBatches: []store.ImportBatch{{Batch: first, State: BatchQueued}, {Batch: second, State: BatchQueued}}, Rows: outs})
	return jobs.LeaseErr(serr)
}

// refuse records a batch Graph refused before importing anything; when the refusal holds for
// the whole import, the batches still queued are not sent either.
func (r *run) refuse(ctx context.Context, b store.ImportBatch, rows []store.ImportRow, ex *graphclient.Exchange, err error, wholeJob bool) error {
	f := jobs.FailureOf(err, r.Now())
	r.WriteRefused(ctx, err, f.At)
	done := b
	done.State = BatchRefused
	done.Detail = BatchDetail{Failure: &f, Support: graphclient.SupportFor(ex, err)}.encode()
	a := r.Activity("failure", fmt.Sprintf("%s (%s): %s", explain.Sentence(r.batchWords(b.Batch)), explain.Count(len(rows), "device", "devices"), explain.Title(f)), ex, err)
	ch := store.ImportChange{JobID: r.job.ID, BatchFrom: []string{BatchInFlight}, Batch: &done, Activity: a,
		Rows: outcomes(rows, func(store.ImportRow) store.Outcome {
			return store.Outcome{Batch: b.Batch, Verdict: store.VerdictRefused, Reason: store.ReasonBatchRefused}
		})}
	if err := r.keep(ctx, ch); err != nil {
		if errors.Is(err, store.ErrConflict) {
			return nil
		}
		return err
	}
	r.Audit(a)
	if !wholeJob {
		return nil
	}
	batches, berr := r.w.o.Store.ImportBatches(ctx, r.job.ID)
	if berr != nil {
		return berr
	}
	for _, x := range batches {
		if x.State != BatchQueued {
			continue
		}
		queued, qerr := r.w.o.Store.ImportRows(ctx, r.job.ID, store.RowFilter{Batch: x.Batch})
		if qerr != nil {
			return qerr
		}
		skipped := x
		skipped.State, skipped.Detail = BatchRefused, BatchDetail{Failure: &f}.encode()
		cerr := r.w.o.Store.ChangeImport(ctx, store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), BatchFrom: []string{BatchQueued}, Batch: &skipped,
			Rows: outcomes(queued, func(store.ImportRow) store.Outcome {
				return store.Outcome{Batch: x.Batch, Verdict: store.VerdictRefused, Reason: store.ReasonNotSent}
			})})
		if cerr != nil {
			return jobs.LeaseErr(cerr)
		}
	}
	return nil
}

// batchWords names batch n as a part of the whole import, so that its record does not read as
// an import of its own: "batch 3 of 10 of the import of 5,000 devices".
func (r *run) batchWords(n int) string {
	s := fmt.Sprintf("batch %d", n)
	if r.job.Batches >= n {
		s += fmt.Sprintf(" of %d", r.job.Batches)
	}
	if r.p.Sent > 0 {
		s += " of the import of " + explain.Count(r.p.Sent, "device", "devices")
	}
	return s
}
