package registration

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// Store is the part of the state database the follower reads and changes.
type Store interface {
	ExpireRegistrations(ctx context.Context, expired func(store.RegistrationSubmission) *store.Activity) (int, error)
	ApprovedJobs(ctx context.Context) ([]string, error)
	Registrations(ctx context.Context, f store.SubmissionFilter) ([]store.RegistrationSubmission, error)
	GetImportJob(ctx context.Context, tenantID, id string) (*store.ImportJob, error)
	ImportRows(ctx context.Context, jobID string, f store.RowFilter) ([]store.ImportRow, error)
	ImportBatches(ctx context.Context, jobID string) ([]store.ImportBatch, error)
	ChangeImport(ctx context.Context, ch store.ImportChange) error
	SettleRegistration(ctx context.Context, s store.Settlement) error
	DueSyncs(ctx context.Context) ([]string, error)
	ClaimSync(ctx context.Context, jobID string, lease time.Duration) (bool, error)
	SyncDone(ctx context.Context, jobID, note string, next time.Time) error
	RecordActivity(ctx context.Context, a *store.Activity) error
}

// Graph is the part of Microsoft Graph the follower calls.
type Graph interface {
	SyncAutopilot(ctx context.Context, ts oauth2.TokenSource) (*graphclient.Exchange, error)
}

// Kicker wakes the import worker.
type Kicker interface{ Kick() }

// Options configure a Follower.
type Options struct {
	Store  Store
	Graph  Graph
	Tokens jobs.Tokens // the approver's delegated token, for the sync
	Worker Kicker      // woken when an approved import is submitted here
	Logger *slog.Logger
	Now    func() time.Time
	Every  time.Duration // how often it looks (default 2 s)
	// State, when set, is the state database's health: while it has a problem the follower does
	// not look, and a failure to reach it is left to the desk's health check to log once.
	State jobs.StateWatch
	// Synced, when set, is told of each tenant whose Autopilot sync the follower asked.
	Synced func(tenantID string)
}

// Follower carries approved registrations to their end, on every replica (each change is
// conditional, so replicas never do a step twice): an approval whose import job is still a draft
// (its desk stopped between the two steps) is submitted; a finished job settles its submissions
// (hashes overwritten, then the Autopilot sync with the approver's token), or sends them back to
// the waiting list when Graph refused the approver's import before importing anything. It also
// expires what waited past its code's expiry.
type Follower struct {
	o    Options
	loop *jobs.Loop
}

// NewFollower returns a follower; Run starts it.
func NewFollower(o Options) *Follower {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Every <= 0 {
		o.Every = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &Follower{o: o, loop: jobs.NewLoop(o.Every)}
}

// Kick makes the follower look now.
func (f *Follower) Kick() { f.loop.Kick() }

// Run looks every Every (or when kicked) until ctx ends.
func (f *Follower) Run(ctx context.Context) {
	quiet := jobs.Options{Logger: f.o.Logger, State: f.o.State}
	f.loop.Run(ctx, func(ctx context.Context) bool {
		if quiet.Quiet() {
			return true
		}
		if err := f.Once(ctx); err != nil && ctx.Err() == nil {
			quiet.Failed("registration follower", err)
		}
		return true
	})
}

// syncLease is how long one desk has a sync to itself.
const syncLease = 2 * time.Minute

// giveUpSync is how long after an approval the sync is still tried.
const giveUpSync = time.Hour

// Once does one round: expire, follow the approved imports, ask for the syncs that are due.
func (f *Follower) Once(ctx context.Context) error {
	var errs []error
	if _, err := f.o.Store.ExpireRegistrations(ctx, f.expiredActivity); err != nil {
		errs = append(errs, err)
	}
	jobs, err := f.o.Store.ApprovedJobs(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range jobs {
		if err := f.follow(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("job %s: %w", id, err))
		}
	}
	due, err := f.o.Store.DueSyncs(ctx)
	if err != nil {
		errs = append(errs, err)
	}
	for _, id := range due {
		if err := f.sync(ctx, id); err != nil {
			errs = append(errs, fmt.Errorf("sync after job %s: %w", id, err))
		}
	}
	return errors.Join(errs...)
}

func (f *Follower) expiredActivity(s store.RegistrationSubmission) *store.Activity {
	return &store.Activity{TenantID: s.TenantID, ActorName: "Autopilot Desk", Action: "registration-expired", Target: s.ID, Outcome: "success",
		Summary: fmt.Sprintf("%s sent with registration code %s from %s expired: nobody approved %s before the code expired. %s overwritten.",
			serialsOf(s.Devices), CodeName(s.Code), s.ClientIP, pronoun(len(s.Devices)), hashWord(len(s.Devices)))}
}

// follow advances the submissions an approval sent with one import job.
func (f *Follower) follow(ctx context.Context, jobID string) error {
	subs, err := f.o.Store.Registrations(ctx, store.SubmissionFilter{JobID: jobID, States: []string{store.SubmissionApproved}})
	if err != nil || len(subs) == 0 {
		return err
	}
	job, err := f.o.Store.GetImportJob(ctx, subs[0].TenantID, jobID)
	if err != nil {
		return err
	}
	switch job.State {
	case importer.StateDraft:
		// The approval's desk stopped before submitting: submit it now, exactly once.
		return f.submit(ctx, job)
	case importer.StateFinished:
	default:
		return nil
	}
	rows, err := f.o.Store.ImportRows(ctx, jobID, store.RowFilter{})
	if err != nil {
		return err
	}
	batches, err := f.o.Store.ImportBatches(ctx, jobID)
	if err != nil {
		return err
	}
	byLine := make(map[int]store.ImportRow, len(rows))
	for _, r := range rows {
		byLine[r.Line] = r
	}
	refusal := approverRefusal(batches)
	for _, s := range subs {
		settle := store.Settlement{SubmissionID: s.ID, JobID: jobID}
		imported, refused := 0, 0
		for _, d := range s.Devices {
			switch byLine[d.JobLine].Verdict {
			case store.VerdictImported, store.VerdictPartial:
				imported++
			case store.VerdictRefused:
				refused++
			}
		}
		if refusal != nil && refused == len(s.Devices) {
			r := Refusal{By: s.DeciderName, At: s.DecidedAt, Failure: *refusal}
			settle.Refused = r.Encode()
			settle.Activity = &store.Activity{TenantID: s.TenantID, ObjectID: s.DeciderOID, ActorName: s.DeciderName, ActorUPN: s.DeciderUPN,
				Action: "registration-approved", Target: jobID, Outcome: "failure",
				Summary: fmt.Sprintf("Microsoft Graph refused %s's import of %s sent with registration code %s: %s; %s for someone allowed to import devices.",
					s.DeciderName, serialsOf(s.Devices), CodeName(s.Code), RefusedBecause(*refusal), waitWord(len(s.Devices))),
				Detail: jobs.Encode(jobs.ActivityDetail{Failure: refusal})}
		} else if imported > 0 {
			settle.SyncAt = f.o.Now()
		}
		if err := f.o.Store.SettleRegistration(ctx, settle); err != nil && !errors.Is(err, store.ErrConflict) {
			return err
		}
	}
	return nil
}

// approverRefusal is why Graph refused a whole import for its owner's sake (a 403: permission,
// Intune role, licence or Conditional Access), or nil when it did not.
func approverRefusal(batches []store.ImportBatch) *explain.Failure {
	for _, b := range batches {
		if b.State != importer.BatchRefused {
			continue
		}
		d := importer.DecodeBatchDetail(b.Detail)
		if d.Support.Status == http.StatusForbidden && d.Failure != nil {
			return d.Failure
		}
	}
	return nil
}

func (f *Follower) submit(ctx context.Context, job *store.ImportJob) error {
	rows, err := f.o.Store.ImportRows(ctx, job.ID, store.RowFilter{})
	if err != nil {
		return err
	}
	p, err := importer.DecodePayload(job.Payload)
	if err != nil {
		return err
	}
	_, err = importer.Submit(ctx, f.o.Store, job, p, importer.Choose(rows, nil))
	if errors.Is(err, store.ErrConflict) {
		return nil // submitted meanwhile
	}
	if err == nil && f.o.Worker != nil {
		f.o.Worker.Kick()
	}
	return err
}

// sync asks Intune for the Autopilot sync after an approved import, with the approver's token.
func (f *Follower) sync(ctx context.Context, jobID string) error {
	won, err := f.o.Store.ClaimSync(ctx, jobID, syncLease)
	if err != nil || !won {
		return err
	}
	subs, err := f.o.Store.Registrations(ctx, store.SubmissionFilter{JobID: jobID, States: []string{store.SubmissionFinished}})
	if err != nil || len(subs) == 0 {
		return err
	}
	s := subs[0]
	now := f.o.Now()
	late := now.Sub(s.DecidedAt) > giveUpSync
	ts, err := f.o.Tokens.OwnerToken(ctx, s.TenantID+":"+s.DeciderOID, "")
	if errors.Is(err, web.ErrSessionEnded) || errors.Is(err, web.ErrTokenUnavailable) {
		if late {
			return f.o.Store.SyncDone(ctx, jobID, SyncOutcome{State: SyncNoSession, At: now, By: s.DeciderName}.Encode(), time.Time{})
		}
		next := now.Add(time.Minute)
		return f.o.Store.SyncDone(ctx, jobID, SyncOutcome{State: SyncWaitingSignIn, At: now, Next: next, By: s.DeciderName}.Encode(), next)
	}
	if err != nil {
		return err
	}
	ex, err := f.o.Graph.SyncAutopilot(ctx, ts)
	if f.o.Synced != nil {
		f.o.Synced(s.TenantID)
	}
	support := graphclient.SupportFor(ex, err)
	a := &store.Activity{TenantID: s.TenantID, ObjectID: s.DeciderOID, ActorName: s.DeciderName, ActorUPN: s.DeciderUPN, Action: "sync", Target: jobID,
		Outcome: "success", Summary: "Asked Intune to sync Autopilot devices after importing devices registered from the device.",
		StatusCode: support.Status, RequestID: support.RequestID, ClientRequestID: support.ClientRequestID}
	d := jobs.ActivityDetail{Exchange: ex, Support: support}
	outcome, next := SyncOutcome{State: SyncRequested, At: now}, time.Time{}
	if err != nil {
		facts := explain.Of(err, now)
		d.Failure = &facts
		outcome = SyncOutcome{State: SyncFailed, At: now, Failure: &facts}
		a.Outcome, a.Summary = "failure", "The Autopilot sync after importing devices registered from the device did not run: "+explain.ForAction("sync", facts).Title+"."
		if ge, ok := graphclient.AsError(err); ok {
			switch {
			case ge.Kind == graphclient.KindOutcomeUnknown:
				a.Outcome, a.Summary = "outcome-unknown", "Asked Intune to sync Autopilot devices after importing devices registered from the device; no answer came back, so the sync may have run or not."
				outcome.State = SyncUnknown
			case ge.StatusCode == http.StatusConflict:
				a.Outcome, a.Summary = "success", "A sync was already running when devices registered from the device were imported; it picks them up."
				outcome.State = SyncRunning
			case (ge.StatusCode == http.StatusTooManyRequests || ge.Kind == graphclient.KindServer) && !late:
				wait := ge.RetryAfter
				if wait <= 0 {
					wait = time.Minute
				}
				next = now.Add(wait)
				outcome.State, outcome.Next = SyncAgain, next
			}
		}
	}
	a.Detail = jobs.Encode(d)
	if err := f.o.Store.RecordActivity(ctx, a); err != nil {
		f.o.Logger.Warn("record the sync after a registration", "error", err.Error())
	}
	return f.o.Store.SyncDone(ctx, jobID, outcome.Encode(), next)
}

// CodeName names a code in the history: its note, else its group tag, else when it was created.
func CodeName(c store.RegistrationCode) string {
	switch {
	case c.Note != "":
		return "“" + c.Note + "”"
	case c.GroupTag != "":
		return "for group tag “" + c.GroupTag + "”"
	}
	return "of " + c.CreatedAt.UTC().Format("2 Jan 2006 15:04:05") + " UTC"
}

func serialsOf(devices []store.RegistrationDevice) string {
	serials := make([]string, 0, len(devices))
	for i, d := range devices {
		if i == 5 {
			serials = append(serials, fmt.Sprintf("and %d more", len(devices)-5))
			break
		}
		serials = append(serials, d.Serial)
	}
	return explain.Count(len(devices), "device", "devices") + " (" + strings.Join(serials, ", ") + ")"
}

func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

func hashWord(n int) string {
	if n == 1 {
		return "Its hash was"
	}
	return "Their hashes were"
}

func waitWord(n int) string {
	if n == 1 {
		return "it waits again"
	}
	return "they wait again"
}
