package importer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// reconcile looks up the devices of a batch whose answer never arrived (see lookUp).
// A device found gets the id and state Graph holds; one still missing after the last look is
// reported "outcome unknown — check" with what to do. Nothing is ever sent again.
func (r *run) reconcile(ctx context.Context, b store.ImportBatch) error {
	rows, err := r.w.o.Store.ImportRows(ctx, r.job.ID, store.RowFilter{Batch: b.Batch, Hashes: true})
	if err != nil {
		return err
	}
	var open []store.ImportRow
	earlier := 0 // found by an earlier look
	for _, row := range rows {
		switch {
		case row.Verdict == store.VerdictUnknown || row.Verdict == store.VerdictSending:
			open = append(open, row)
		case row.Reconciled:
			earlier++
		}
	}
	looked, err := r.lookUp(ctx, open, nil)
	if err != nil {
		return err
	}
	stopped := looked.stopped
	var outs []store.RowOutcome
	for _, row := range open {
		if f, ok := looked.found[row.Line]; ok {
			o := outcomeFound(store.ImportRow{Outcome: store.Outcome{Batch: b.Batch}}, f)
			o.DeviceID, o.Reconciled = f.DeviceID, true
			outs = append(outs, store.RowOutcome{Line: row.Line, Outcome: o})
		}
	}
	found := len(looked.found)
	next := b
	next.Lookups = b.Lookups
	counts, due := jobs.ScheduledLook(lostAt(b), r.Now(), r.w.o.LookupDelays, b.Lookups)
	if stopped == nil && counts {
		next.Lookups++
	}
	left := len(open) - found
	detail := DecodeBatchDetail(b.Detail)
	if stopped != nil {
		f := jobs.FailureOf(stopped, r.Now())
		detail.FailedLooks, detail.LookFailure = detail.FailedLooks+1, &f
	} else {
		detail.FailedLooks, detail.LookFailure = 0, nil
	}
	next.Detail = detail.encode()
	switch {
	case left == 0:
		next.State = BatchReconciled
	case stopped == nil && next.Lookups >= len(r.w.o.LookupDelays):
		next.State = BatchReconciled
		for _, row := range looked.notFound {
			reason := store.ReasonLookedUp
			if row.Reason == store.ReasonRestored { // never sent by this desk: the words say so
				reason = row.Reason
			}
			outs = append(outs, store.RowOutcome{Line: row.Line, Outcome: store.Outcome{Batch: b.Batch, Verdict: store.VerdictNotFound, Reason: reason, Reconciled: true}})
		}
	default:
		wait := r.w.o.LookupDelays[min(next.Lookups, len(r.w.o.LookupDelays)-1)] - r.w.o.LookupDelays[max(next.Lookups-1, 0)]
		if stopped != nil { // the look could not be made: the next comes later each time it fails
			wait = max(wait, min(lookRetry<<min(detail.FailedLooks-1, 5), 5*time.Minute))
		}
		if stopped == nil && !counts {
			wait = due.Sub(r.Now()) // a look asked by hand: the schedule goes on as it was
		}
		if asked, ok := r.waitAsked(stopped); ok {
			wait = asked
		}
		next.NotBefore = r.Now().Add(max(wait, time.Second))
		r.At(next.NotBefore)
	}
	ch := store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), BatchFrom: []string{BatchUnknown}, Batch: &next, Rows: outs}
	if next.State == BatchReconciled {
		why := fmt.Sprintf("The answer to %s was lost", r.batchWords(b.Batch))
		if len(open) > 0 && open[0].Reason == store.ReasonRestored {
			why = fmt.Sprintf("The desk was restored from a backup in which %s was not sent yet", r.batchWords(b.Batch))
		}
		ch.Activity = r.Activity("success", fmt.Sprintf("%s, so its %s looked up in Microsoft Graph (%s): %d found, %d not found. Nothing was sent again.",
			why, explain.Count(earlier+len(open), "device was", "devices were"), lookedIn, earlier+found, left), nil, nil)
	}
	err = r.keep(ctx, ch)
	if errors.Is(err, store.ErrConflict) {
		return nil
	}
	if err == nil && ch.Activity != nil {
		r.Audit(ch.Activity)
	}
	return err
}

// lostAt is when a batch's answer was lost (when it was sent, if that is not kept): its looks
// are scheduled from then.
func lostAt(b store.ImportBatch) time.Time {
	if f := DecodeBatchDetail(b.Detail).Failure; f != nil && !f.At.IsZero() {
		return f.At
	}
	return b.SentAt
}

// lookRetry is the wait after a look that could not be made; it doubles with each that fails
// in a row, up to 5 minutes.
const lookRetry = 10 * time.Second

// waitAsked is the wait Graph asked for with err (its Retry-After), noted for the page.
func (r *run) waitAsked(err error) (time.Duration, bool) {
	ge, ok := graphclient.AsError(err)
	if !ok || ge.RetryAfter <= 0 {
		return 0, false
	}
	r.p.Waiting = &Wait{Throttled: true, For: ge.RetryAfter, Until: r.Now().Add(ge.RetryAfter)}
	return ge.RetryAfter, true
}

// pollBatch is how many devices are read by id (20 to a JSON batch, so at most 3 requests);
// above it the worker pages through the list of imported devices instead, which costs a request
// per page (Graph's page, 100 devices in the emulator).
const pollBatch = 50

// missesBeforeGone is how many polls may find a device's import record missing (Graph shows a
// new record a moment late) before the desk says it is gone.
const missesBeforeGone = 10

// Polling is paced by how long Intune has had the devices: it looks again after a twentieth of
// the time since the batch was sent, at least a second and at most two minutes apart, so a
// device is found final at most about 5% later than Intune finished it, and a batch that takes
// Intune ten minutes costs a few dozen looks, not one per device per round.
const (
	pollShare   = 20
	pollMinimum = time.Second
	pollMaximum = 2 * time.Minute
)

// poll follows the devices Graph has accepted and not finished. Intune works through an
// import in the order it arrived, so the device sent last is the last to finish: the worker
// looks at that one device (one request) until it is final, and only then reads every device
// still processing, in one pass over the list of imported devices (or one by one, when few
// are left). Rows still processing after that pass are followed the same way.
func (r *run) poll(ctx context.Context) error {
	if !r.Due(r.p.PollAt) {
		return nil
	}
	pending, overdue, sentAt, err := r.processing(ctx)
	if err != nil {
		return err
	}
	if len(overdue) > 0 {
		return r.stopFollowing(ctx, overdue)
	}
	if len(pending) == 0 {
		return nil
	}
	// The sentinel: the device of the latest batch, last in the file.
	last := pending[0]
	for _, row := range pending[1:] {
		if row.Batch > last.Batch || row.Batch == last.Batch && row.Line > last.Line {
			last = row
		}
	}
	if err := r.Hold(ctx); err != nil {
		return err
	}
	states, missing, err := r.read(ctx, []store.ImportRow{last})
	if errors.Is(err, jobs.ErrLeaseLost) {
		return err
	}
	if err == nil && (missing[last.DeviceID] || states[last.DeviceID].Final()) {
		// Intune is done with the batch sent last, or its record is gone: read them all.
		others := slices.DeleteFunc(slices.Clone(pending), func(row store.ImportRow) bool { return row.Line == last.Line })
		if len(others) > 0 {
			var s map[string]graphclient.DeviceImportState
			var m map[string]bool
			s, m, err = r.read(ctx, others)
			if errors.Is(err, jobs.ErrLeaseLost) {
				return err
			}
			maps.Copy(states, s)
			maps.Copy(missing, m)
		}
	}
	changed := r.outcomesRead(pending, states, missing)
	r.p.Polls++
	wait := min(max(r.Now().Sub(sentAt[last.Batch])/pollShare, pollMinimum), pollMaximum).Round(time.Millisecond)
	if asked, ok := r.waitAsked(err); ok {
		wait = asked
	} else if err != nil {
		wait = min(2*time.Second<<min(r.p.Polls/3, 4), 30*time.Second)
	}
	r.p.PollAt = r.Now().Add(wait)
	r.At(r.p.PollAt)
	if len(changed) > 0 {
		cerr := r.w.o.Store.ChangeImport(ctx, store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), Rows: changed})
		if cerr != nil {
			return jobs.LeaseErr(cerr)
		}
	}
	if errors.Is(err, web.ErrSessionEnded) {
		// Its owner signed out while it ran: it waits for them, as at the start of a turn.
		r.p.Paused = true
	} else if err != nil && r.p.Waiting == nil {
		f := jobs.FailureOf(err, r.Now())
		f.While = explain.Following
		r.p.Trouble = &f
	}
	return nil
}

// processing returns the rows Graph is still processing: those followed for less than
// FollowFor, and those overdue; with when each batch was sent.
func (r *run) processing(ctx context.Context) (pending, overdue []store.ImportRow, sentAt map[int]time.Time, err error) {
	rows, err := r.w.o.Store.ImportRows(ctx, r.job.ID, store.RowFilter{})
	if err != nil {
		return nil, nil, nil, err
	}
	batches, err := r.w.o.Store.ImportBatches(ctx, r.job.ID)
	if err != nil {
		return nil, nil, nil, err
	}
	sentAt = map[int]time.Time{}
	for _, b := range batches {
		// A job of the earlier format kept no time of sending: it was sent after it was created.
		sentAt[b.Batch] = cmp.Or(b.SentAt, r.job.CreatedAt)
	}
	for _, row := range rows {
		if row.Verdict != store.VerdictSent || row.DeviceID == "" {
			continue
		}
		if r.Now().Sub(sentAt[row.Batch]) >= r.w.o.FollowFor {
			overdue = append(overdue, row)
		} else {
			pending = append(pending, row)
		}
	}
	return pending, overdue, sentAt, nil
}

// outcomesRead are the changed outcomes of the rows read: the state Graph holds for each, or,
// for a record missing missesBeforeGone times running, "outcome unknown — check".
func (r *run) outcomesRead(pending []store.ImportRow, states map[string]graphclient.DeviceImportState, missing map[string]bool) []store.RowOutcome {
	var changed []store.RowOutcome
	for _, row := range pending {
		o := row.Outcome
		if s, ok := states[row.DeviceID]; ok {
			o.Verdict, o.Status = verdictOf(s), s.Status()
			o.RegistrationID, o.ErrorCode, o.ErrorName = s.DeviceRegistrationID, s.DeviceErrorCode, s.DeviceErrorName
			delete(r.p.Misses, row.Line)
		} else if missing[row.DeviceID] {
			if r.p.Misses == nil {
				r.p.Misses = map[int]int{}
			}
			r.p.Misses[row.Line]++
			if r.p.Misses[row.Line] >= missesBeforeGone {
				o.Verdict = store.VerdictNotFound
				o.Reason = store.ReasonVanished
				delete(r.p.Misses, row.Line)
			}
		}
		if o != row.Outcome {
			changed = append(changed, store.RowOutcome{Line: row.Line, Outcome: o})
		}
	}
	return changed
}

// stopFollowing settles devices Graph has been processing for longer than FollowFor: each is
// looked for once more, among imported devices and registered Autopilot devices, and gets the
// final state found there, or "outcome unknown — check" with how long it was followed.
func (r *run) stopFollowing(ctx context.Context, overdue []store.ImportRow) error {
	rows, err := r.w.o.Store.ImportRows(ctx, r.job.ID, store.RowFilter{Hashes: true}) // the lookups tell imports apart by hash
	if err != nil {
		return err
	}
	lines := make(map[int]bool, len(overdue))
	for _, row := range overdue {
		lines[row.Line] = true
	}
	rows = slices.DeleteFunc(rows, func(row store.ImportRow) bool { return !lines[row.Line] }) // the overdue rows, with their hashes
	looked, err := r.lookUp(ctx, rows, func(row store.ImportRow, f Finding) bool { return Final(outcomeFound(row, f).Verdict) })
	if err != nil {
		return err
	}
	var outs []store.RowOutcome
	for _, row := range rows {
		if f, ok := looked.found[row.Line]; ok {
			outs = append(outs, store.RowOutcome{Line: row.Line, Outcome: outcomeFound(row, f)})
		}
	}
	for _, row := range looked.notFound {
		o := row.Outcome
		o.Verdict, o.Reason = store.VerdictNotFound, store.ReasonStalled
		outs = append(outs, store.RowOutcome{Line: row.Line, Outcome: o})
	}
	if len(outs) > 0 {
		settled := len(outs)
		ch := store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), Rows: outs}
		ch.Activity = r.Activity("success", fmt.Sprintf("Stopped following %s that Intune had not finished importing %s after it was sent, and looked for %s once more in Microsoft Graph. Nothing was sent again.",
			explain.Count(settled, "device", "devices"), followedFor(r.w.o.FollowFor), map[bool]string{true: "it", false: "them"}[settled == 1]), nil, nil)
		if err := r.keep(ctx, ch); err != nil {
			return jobs.LeaseErr(err)
		}
		r.Audit(ch.Activity)
	}
	if looked.stopped != nil {
		wait := time.Minute
		if asked, ok := r.waitAsked(looked.stopped); ok {
			wait = asked
		}
		r.p.PollAt = r.Now().Add(wait)
		r.At(r.p.PollAt)
	}
	return nil
}

// outcomeFound is a row's outcome with what a lookup found: a registered device (no import
// record to follow) is final by nature.
func outcomeFound(row store.ImportRow, f Finding) store.Outcome {
	o := row.Outcome
	o.Verdict, o.Status = verdictOf(f.State), f.State.Status()
	o.RegistrationID, o.ErrorCode, o.ErrorName = f.State.DeviceRegistrationID, f.State.DeviceErrorCode, f.State.DeviceErrorName
	if f.DeviceID == "" && o.Verdict == store.VerdictSent {
		o.Verdict = store.VerdictImported
	}
	return o
}

// followedFor says a FollowFor in words: "24 hours".
func followedFor(d time.Duration) string {
	if d%time.Hour == 0 {
		return explain.Count(int(d/time.Hour), "hour", "hours")
	}
	return d.String()
}

// read returns the state of each device Graph still lists, and the ids it answered 404 for.
func (r *run) read(ctx context.Context, pending []store.ImportRow) (map[string]graphclient.DeviceImportState, map[string]bool, error) {
	states := map[string]graphclient.DeviceImportState{}
	missing := map[string]bool{}
	if len(pending) <= pollBatch {
		if err := r.Hold(ctx); err != nil {
			return states, missing, err
		}
		ids := make([]string, len(pending))
		for i, row := range pending {
			ids[i] = row.DeviceID
		}
		reads, _, err := jobs.Call(ctx, r.Turn, func(ts oauth2.TokenSource) ([]graphclient.DeviceIdentityRead, *graphclient.Exchange, error) {
			reads, _, err := r.w.o.Graph.ReadDeviceIdentities(ctx, ts, ids)
			return reads, nil, err
		})
		for _, d := range reads {
			ge, _ := graphclient.AsError(d.Err)
			switch {
			case d.Err == nil:
				states[d.ID] = d.Value.State
			case ge != nil && ge.StatusCode == http.StatusNotFound:
				missing[d.ID] = true
			case err == nil:
				err = d.Err // the first that is not a device gone
			}
		}
		return states, missing, err
	}
	wanted := make(map[string]bool, len(pending))
	for _, row := range pending {
		wanted[row.DeviceID] = true
	}
	next := ""
	for {
		type page struct {
			devices []graphclient.DeviceIdentity
			next    string
		}
		got, _, err := jobs.Call(ctx, r.Turn, func(ts oauth2.TokenSource) (page, *graphclient.Exchange, error) {
			devices, next, ex, err := r.w.o.Graph.ListDeviceIdentities(ctx, ts, "", next)
			return page{devices, next}, ex, err
		})
		if err != nil {
			return states, missing, err
		}
		for _, d := range got.devices {
			if wanted[d.ID] {
				states[d.ID] = d.State
			}
		}
		if got.next == "" {
			break
		}
		next = got.next
		if err := r.Hold(ctx); err != nil {
			return states, missing, err
		}
	}
	for id := range wanted {
		if _, ok := states[id]; !ok {
			missing[id] = true
		}
	}
	return states, missing, nil
}

// finishIfDone ends the job once every row has its final verdict: the hashes are overwritten.
func (r *run) finishIfDone(ctx context.Context) error {
	batches, err := r.w.o.Store.ImportBatches(ctx, r.job.ID)
	if err != nil {
		return err
	}
	for _, b := range batches {
		switch b.State {
		case BatchQueued, BatchInFlight, BatchUnknown:
			return nil
		}
	}
	rows, err := r.w.o.Store.ImportRows(ctx, r.job.ID, store.RowFilter{})
	if err != nil {
		return err
	}
	for _, row := range rows {
		if !Final(row.Verdict) && row.Verdict != "" {
			return nil
		}
	}
	// The hashes go in short steps first; the last step marks the job finished. Cut short, the
	// next worker repeats the steps: nothing is sent any more, so nothing needs a hash.
	for {
		if err := r.Hold(ctx); err != nil {
			return err
		}
		n, err := r.w.o.Store.WipeImportHashes(ctx, r.job.ID, r.Holder(), 500)
		if err != nil {
			return err
		}
		if n == 0 {
			break
		}
	}
	r.p.Waiting, r.p.Misses, r.p.Trouble = nil, nil, nil
	c := Count(rows)
	// The import's outcome, one record with the last step: its batches' records say what Graph
	// accepted, this one what became of the devices, so a failure in Intune shows in the history.
	outcome, summary := finishedOutcome(c, rows, r.p.FileName())
	finished := r.Activity(outcome, summary, nil, nil)
	finished.Action = ActionFinished
	err = r.w.o.Store.ChangeImport(ctx, store.ImportChange{JobID: r.job.ID, LeaseOwner: r.Holder(), FromState: StateSending, State: StateFinished,
		Payload: r.p.Encode(), WipeHashes: true, Activity: finished})
	if err != nil {
		return jobs.LeaseErr(err)
	}
	r.AuditFinished("import-complete", fmt.Sprintf("%d rows final: %d imported, %d partly, %d with errors, %d not imported, %d not found, %d left out, %d not sent (stopped)",
		c.Rows, c.Imported, c.Partial, c.Errors, c.Refused, c.NotFound, c.LeftOut, c.Stopped))
	r.w.reached(StateFinished)
	return nil
}

// ActionFinished is the action of the record an import leaves when every device has its final
// state: a failure when any device was not imported.
const ActionFinished = "import-finished"

// finishedOutcome is the outcome and summary of a finished import of the file named file ("" when
// the rows were not a file's): "Import of 4 devices from “batch-a.csv” finished: 3 imported, 1
// failed in Intune (806 ZtdDeviceAlreadyAssigned). …".
func finishedOutcome(c Counts, rows []store.ImportRow, file string) (outcome, summary string) {
	var parts, errs []string
	add := func(n int, words string) {
		if n > 0 {
			parts = append(parts, explain.Number(n)+" "+words)
		}
	}
	for _, row := range rows {
		if row.Verdict == store.VerdictError || row.Verdict == store.VerdictPartial {
			if l := explain.ErrorLabel(row.ErrorCode, row.ErrorName); l != "" && !slices.Contains(errs, l) && len(errs) < 3 {
				errs = append(errs, l)
			}
		}
	}
	add(c.Imported, "imported")
	add(c.Partial, "imported only partly")
	failed := "failed in Intune"
	if len(errs) > 0 {
		failed += " (" + strings.Join(errs, ", ") + ")"
	}
	add(c.Errors, failed)
	add(c.Refused, "refused by Microsoft Graph")
	add(c.NotFound, "not found in Microsoft Graph after their answer was lost")
	add(c.LeftOut, "left out (not sent)")
	outcome = "success"
	if c.Partial+c.Errors+c.Refused+c.NotFound > 0 {
		outcome = "failure"
	}
	stopped := ""
	if c.Stopped > 0 {
		// Nobody meant them to go any more: not a failure, but said.
		stopped = " " + explain.Count(c.Stopped, "device was", "devices were") + " not sent: the import was stopped."
		if len(parts) == 0 {
			parts = append(parts, "nothing sent before the stop")
		}
	}
	return outcome, fmt.Sprintf("Import of %s%s finished: %s.%s The outcome report lists each device.",
		explain.Count(c.Rows-c.LeftOut-c.Stopped, "device", "devices"), fromFile(file), strings.Join(parts, ", "), stopped)
}
