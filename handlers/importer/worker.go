package importer

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// Graph is the part of Microsoft Graph the worker calls.
type Graph interface {
	ImportDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, devices []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error)
	ReadDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, ids []string) ([]graphclient.DeviceIdentityRead, []*graphclient.Exchange, error)
	ListDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, filterSerial, nextLink string) ([]graphclient.DeviceIdentity, string, *graphclient.Exchange, error)
	LookUpSerials(ctx context.Context, ts oauth2.TokenSource, serials []string, where graphclient.SerialSources) ([]graphclient.SerialLookup, []*graphclient.Exchange, error)
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

// Batch states.
const (
	BatchQueued     = "queued"     // not sent yet
	BatchInFlight   = "in-flight"  // recorded before sending; the answer is not stored yet
	BatchSent       = "sent"       // Graph's answer is stored: every device's id is known
	BatchUnknown    = "unknown"    // the answer never arrived; its devices are being looked up
	BatchReconciled = "reconciled" // every device of a batch whose answer was lost has a verdict
	BatchRefused    = "refused"    // Graph refused it (nothing imported), or it was never sent
	BatchSplit      = "split"      // Graph refused it as too large; its rows went into smaller batches
	BatchStopped    = "stopped"    // never sent: someone stopped the import while it was queued (see Stop)
)

// Fault points: a test stops the worker at one of them, as if its process died there.
const (
	FaultBatchRecorded  = "batch-recorded"  // the batch is recorded as in flight; nothing is sent yet
	FaultAnswerReceived = "answer-received" // Graph has answered; the answer is not stored yet
)

// ErrStopped, returned by a fault hook, stops the worker where it stands: nothing more is
// written, and its lease is left to run out as a crashed process's would.
var ErrStopped = jobs.ErrStopped

// Options configure a Worker: the settings every job worker shares (the owner's tokens, the
// lease, the tick, the fault hook), and the import's own.
type Options struct {
	jobs.Options
	Store Store
	Graph Graph

	// LookupDelays is when a batch whose answer was lost is looked up, counted from the loss;
	// a device still not found after the last look is reported "outcome unknown — check".
	LookupDelays []time.Duration
	// FollowFor is how long a device Graph is still processing is followed, counted from when its
	// batch was sent (default 24 hours). Then it is looked for once more, among registered
	// devices too, and reported as found or "outcome unknown — check", so the job ends and its
	// hashes leave the database even when Intune never finishes a device.
	FollowFor time.Duration
	Reached   func(state string) // optional: counts jobs reaching a state
	// Holds, optional, are the waits Graph asked of a tenant's writes (its Retry-After), kept for
	// every desk: no batch goes while one runs, and a 429 to a batch starts one at once.
	Holds jobs.WriteHolds
}

// Worker advances submitted import jobs. Every replica runs one, with as many Run loops as it
// wants jobs advanced at once; jobs are shared through leases.
type Worker struct {
	*jobs.Worker
	o Options
}

// New returns a worker; Run starts it.
func New(o Options) *Worker {
	o.Options = o.Options.WithDefaults()
	if len(o.LookupDelays) == 0 {
		o.LookupDelays = []time.Duration{5 * time.Second, 30 * time.Second, 2 * time.Minute, 5 * time.Minute}
	}
	if o.FollowFor <= 0 {
		o.FollowFor = 24 * time.Hour
	}
	w := &Worker{o: o}
	w.Worker = jobs.New(jobs.Kind{Name: "import worker", Action: "import", Claim: w.claim,
		Renew: o.Store.RenewImportLease, Release: o.Store.ReleaseImportJob}, o.Options)
	return w
}

// claim takes one due job for holder under a lease.
func (w *Worker) claim(ctx context.Context, holder string, lease time.Duration) (jobs.Job, error) {
	job, err := w.o.Store.ClaimImportJob(ctx, StateSending, holder, lease)
	if err != nil || job == nil {
		return nil, err
	}
	return &run{w: w, job: job}, nil
}

func (w *Worker) reached(state string) {
	if w.o.Reached != nil {
		w.o.Reached(state)
	}
}

// run is one worker's turn at one job, under its lease.
type run struct {
	*jobs.Turn
	w   *Worker
	job *store.ImportJob
	p   Payload
}

func (r *run) Owner() jobs.Owner { return ownerOf(r.job) }

// ownerOf is an import job and the person whose delegated token advances it.
func ownerOf(job *store.ImportJob) jobs.Owner {
	return jobs.Owner{JobID: job.ID, TenantID: job.TenantID, ObjectID: job.ObjectID, ActorName: job.ActorName, ActorUPN: job.ActorUPN}
}

func (r *run) HeldUp(f explain.Failure) { r.p.Trouble = &f }

func (r *run) Payload() []byte { return r.p.Encode() }

// Advance takes the job as far as it can go now.
func (r *run) Advance(ctx context.Context, t *jobs.Turn) error {
	r.Turn = t
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
	away, err := r.OwnerAway(ctx)
	if err != nil {
		return err
	}
	if r.p.Paused = away; away {
		// Nothing goes to Graph without its owner; an import whose every row is final already
		// (it was stopped) still ends, and its hashes go.
		return r.finishIfDone(ctx)
	}
	if r.p.Waiting != nil && !r.Now().Before(r.p.Waiting.Until) {
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
		if b.State != BatchUnknown || !r.Due(b.NotBefore) {
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
		if i < 0 || !r.Due(batches[i].NotBefore) {
			break
		}
		held, err := r.heldUntil(ctx)
		if err != nil {
			return err
		}
		if !r.Due(held) {
			break // Graph asked every desk's writes to the tenant to wait
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

// heldUntil is when the wait Graph asked of the tenant's writes ends, noted for the page while it
// runs; zero without one.
func (r *run) heldUntil(ctx context.Context) (time.Time, error) {
	if r.w.o.Holds == nil {
		return time.Time{}, nil
	}
	now := r.Now()
	until, err := r.w.o.Holds.HeldUntil(ctx, r.job.TenantID, now)
	if err != nil {
		return time.Time{}, err
	}
	if until.After(now) {
		r.p.Waiting = &Wait{Throttled: true, For: until.Sub(now), Until: until}
	}
	return until, nil
}

// keep stores a change that records what Graph answered, retried until it is stored (see
// jobs.Turn.Keep). Should the process die first, the batch stays in flight and the next worker
// finds its devices in Graph.
func (r *run) keep(ctx context.Context, ch store.ImportChange) error {
	return r.Keep(ctx, func(ctx context.Context) error { return r.w.o.Store.ChangeImport(ctx, ch) })
}

func outcomes(rows []store.ImportRow, o func(store.ImportRow) store.Outcome) []store.RowOutcome {
	out := make([]store.RowOutcome, len(rows))
	for i, row := range rows {
		out[i] = store.RowOutcome{Line: row.Line, Outcome: o(row)}
	}
	return out
}

func upper(s string) string { return strings.ToUpper(s) }
