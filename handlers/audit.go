package handlers

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"

	"autopilotdesk/web/store"
)

// ActivityStore is where activity is kept for good: the state database.
type ActivityStore interface {
	RecordActivity(ctx context.Context, a *store.Activity) error
	RecordSubmission(ctx context.Context, a *store.Activity, formKey string) error
	GetActivity(ctx context.Context, tenantID, id string) (*store.Activity, error)
	CreatedUploads(ctx context.Context, tenantID string, ids []string) (map[string]bool, error)
}

// ActivityRecorder records what people did, and writes each event as a structured audit line at
// once, so a SIEM sees every create, change, delete, import and sync without reading the database.
//
// Once Graph has answered, its answer stands whatever the database says: an activity the database
// cannot take (unreachable, a constraint, a lost file) is kept in memory, with the form key it
// completes, and tried again in the background by Run until it lands. Nothing is sent to Graph
// again. Records still kept when the desk stops are logged as errors, whole but for the exchange.
type ActivityRecorder struct {
	store ActivityStore
	log   *slog.Logger
	now   func() time.Time
	// Refuse, when set, says why the database must not be written now even if it would accept
	// the write (its file was removed: what is written there is lost); nil means go ahead.
	Refuse func() error

	retry time.Duration // first wait before a retry; doubles to maxRetryWait while failing
	wake  chan struct{}

	mu   sync.Mutex
	kept []keptActivity // oldest first
}

type keptActivity struct {
	activity store.Activity
	formKey  string
	since    time.Time
}

const (
	// maxKept bounds the activity kept in memory; beyond it the oldest is logged and dropped.
	maxKept      = 1000
	maxRetryWait = time.Minute
)

// NewActivityRecorder records into db; retry is the first wait before a kept record is tried
// again (default one second).
func NewActivityRecorder(db ActivityStore, log *slog.Logger, now func() time.Time, retry time.Duration) *ActivityRecorder {
	if retry <= 0 {
		retry = time.Second
	}
	if now == nil {
		now = time.Now
	}
	return &ActivityRecorder{store: db, log: log, now: now, retry: retry, wake: make(chan struct{}, 1)}
}

// Record records a (and marks formKey done when it is not empty) and reports whether the database
// has it. When it does not, a is kept and retried: the caller shows the outcome itself, with
// a notice that it is not in the history yet. The request's cancellation does not stop the write.
func (r *ActivityRecorder) Record(ctx context.Context, a *store.Activity, formKey string) (saved bool) {
	ctx = context.WithoutCancel(ctx)
	err := r.refused()
	if err == nil {
		err = r.write(ctx, a, formKey)
	}
	if err != nil && a.TenantID != "" {
		if a.ID == "" { // refused before the database saw it
			a.ID = uuid.Must(uuid.NewV7()).String()
		}
		if a.At.IsZero() {
			a.At = r.now().UTC().Truncate(time.Millisecond)
		}
		r.keep(*a, formKey, err)
	}
	r.audit(ctx, a)
	if err != nil && a.TenantID == "" {
		// A record of no tenant: no retry can help.
		r.log.Error("activity not recorded", "error", err.Error(), "event", a.Action, "outcome", a.Outcome)
	}
	return err == nil
}

// RecordActivity is Record without a form key, for callers that need no notice: a kept record
// shows on this desk's result page until it lands. It never fails.
func (r *ActivityRecorder) RecordActivity(ctx context.Context, a *store.Activity) error {
	r.Record(ctx, a, "")
	return nil
}

// GetActivity reads an activity from the database.
func (r *ActivityRecorder) GetActivity(ctx context.Context, tenantID, id string) (*store.Activity, error) {
	return r.store.GetActivity(ctx, tenantID, id)
}

// Kept returns an activity of tenantID waiting to be recorded, if this desk holds it.
func (r *ActivityRecorder) Kept(tenantID, id string) (*store.Activity, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.kept {
		if k.activity.ID == id && k.activity.TenantID == tenantID {
			a := k.activity
			return &a, true
		}
	}
	return nil, false
}

// CreatedUploads says which of ids the tenant's history records as uploads created here, the
// records this desk still holds for the database included.
func (r *ActivityRecorder) CreatedUploads(ctx context.Context, tenantID string, ids []string) (map[string]bool, error) {
	created, err := r.store.CreatedUploads(ctx, tenantID, ids)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.kept {
		if a := k.activity; a.TenantID == tenantID && a.Action == "create-upload" && a.Outcome == outcomeSuccess && slices.Contains(ids, a.Target) {
			created[a.Target] = true
		}
	}
	return created, nil
}

// Waiting is how many activities wait to be recorded.
func (r *ActivityRecorder) Waiting() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.kept)
}

func (r *ActivityRecorder) refused() error {
	if r.Refuse == nil {
		return nil
	}
	return r.Refuse()
}

func (r *ActivityRecorder) write(ctx context.Context, a *store.Activity, formKey string) error {
	if formKey != "" {
		return r.store.RecordSubmission(ctx, a, formKey)
	}
	return r.store.RecordActivity(ctx, a)
}

func (r *ActivityRecorder) keep(a store.Activity, formKey string, cause error) {
	r.mu.Lock()
	if len(r.kept) >= maxKept {
		dropped := r.kept[0]
		r.kept = r.kept[1:]
		r.log.Error("activity dropped: too many records wait for the state database", "activity_id", dropped.activity.ID,
			"event", dropped.activity.Action, "outcome", dropped.activity.Outcome, "tid", dropped.activity.TenantID, "oid", dropped.activity.ObjectID)
	}
	r.kept = append(r.kept, keptActivity{activity: a, formKey: formKey, since: time.Now()})
	n := len(r.kept)
	r.mu.Unlock()
	r.log.Warn("activity kept in memory: the state database did not take it; it is retried", "activity_id", a.ID,
		"event", a.Action, "waiting", n, "error", cause.Error())
	select {
	case r.wake <- struct{}{}:
	default:
	}
}

// Run retries kept records until ctx ends: soon after one is kept, then less often while the
// database keeps refusing. When ctx ends it tries once more, and logs what it could not record.
func (r *ActivityRecorder) Run(ctx context.Context) {
	wait := r.retry
	timer := time.NewTimer(wait)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			flush, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			r.retryKept(flush)
			cancel()
			r.abandon()
			return
		case <-r.wake:
		case <-timer.C:
		}
		if r.retryKept(ctx) {
			wait = r.retry
		} else {
			wait = min(wait*2, maxRetryWait)
		}
		timer.Reset(wait)
	}
}

// retryKept writes kept records oldest first and stops at the first the database refuses. It
// reports whether nothing is left waiting.
func (r *ActivityRecorder) retryKept(ctx context.Context) bool {
	for {
		r.mu.Lock()
		if len(r.kept) == 0 {
			r.mu.Unlock()
			return true
		}
		k := r.kept[0]
		r.mu.Unlock()
		err := r.refused()
		if err == nil {
			a := k.activity
			err = r.write(ctx, &a, k.formKey)
		}
		if err != nil {
			if !errors.Is(err, context.Canceled) {
				r.log.Debug("activity still not recorded", "activity_id", k.activity.ID, "error", err.Error())
			}
			return false
		}
		r.mu.Lock()
		if len(r.kept) > 0 && r.kept[0].activity.ID == k.activity.ID {
			r.kept = r.kept[1:]
		}
		r.mu.Unlock()
		r.log.Info("activity recorded after a wait", "activity_id", k.activity.ID, "event", k.activity.Action,
			"waited_ms", time.Since(k.since).Milliseconds())
	}
}

// abandon logs every record still kept, so it is not lost without a trace.
func (r *ActivityRecorder) abandon() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, k := range r.kept {
		a := k.activity
		r.log.Error("activity not recorded: the desk stopped before the state database took it", "activity_id", a.ID,
			"at", a.At, "event", a.Action, "outcome", a.Outcome, "tid", a.TenantID, "oid", a.ObjectID, "upn", a.ActorUPN,
			"target", a.Target, "status", a.StatusCode, "request_id", a.RequestID, "client_request_id", a.ClientRequestID, "summary", a.Summary)
	}
	r.kept = nil
}

func (r *ActivityRecorder) audit(ctx context.Context, a *store.Activity) {
	r.log.LogAttrs(ctx, slog.LevelInfo, "audit",
		slog.Bool("audit", true), slog.String("event", a.Action), slog.String("outcome", a.Outcome),
		slog.String("activity_id", a.ID), slog.String("tid", a.TenantID), slog.String("oid", a.ObjectID),
		slog.String("upn", a.ActorUPN), slog.String("target", a.Target), slog.Int("status", a.StatusCode),
		slog.String("request_id", a.RequestID), slog.String("client_request_id", a.ClientRequestID),
		slog.String("summary", a.Summary))
}
