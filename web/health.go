package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/views"
	"autopilotdesk/web/store"
)

// StateChecker is the state database as readiness sees it.
type StateChecker interface {
	// Check says, within a bound, whether the database can serve (store.DB.Check).
	Check(ctx context.Context) error
	// CheckFiles is the part of Check cheap enough for every state change (store.DB.CheckFiles).
	CheckFiles() error
	// SlotRefusals counts the new connections given up on for want of a free PostgreSQL
	// connection slot, with the latest and when (store.DB.SlotRefusals).
	SlotRefusals() (count uint64, latest error, at time.Time)
}

// Health answers /healthz (the process is alive) and /readyz (it can serve: the state database
// passes a real check and the desk is not shutting down), and keeps the state database's last
// known problem for the pages, which answer 503 while there is one. Both endpoints are cheap,
// unauthenticated and reveal nothing.
//
// A change of the database's state is logged once: one ERROR line naming the cause and what
// brings it back when it is lost, one INFO line when it serves again; never a line per request.
// A shortage of PostgreSQL connection slots is logged the same way, but refuses no page: the
// requests the desk's open connections serve go on, and those that need a new connection wait
// for a slot.
type Health struct {
	db       StateChecker
	log      *slog.Logger
	draining atomic.Bool
	suspect  chan struct{}

	started atomic.Uint64 // checks begun, numbering them

	mu       sync.Mutex
	problem  error  // the latest check's failure; nil while the database serves
	recorded uint64 // the number of the check that set problem
	refusals uint64 // connections refused for want of a slot, as last counted
	shortage error  // the connection slot shortage logged, nil when none is
}

// slotShortageQuiet is how long no new connection may be refused for want of a slot before a
// shortage of connection slots is over.
const slotShortageQuiet = 10 * time.Second

// NewHealth returns readiness over db.
func NewHealth(db StateChecker, log *slog.Logger) *Health {
	h := &Health{db: db, log: log, suspect: make(chan struct{}, 1)}
	h.refusals, _, _ = db.SlotRefusals() // while it started: the start waited them out
	return h
}

// Drain turns readiness false, so load balancers stop sending new requests before shutdown.
func (h *Health) Drain() { h.draining.Store(true) }

// Problem is the state database's last known problem, nil while it serves.
func (h *Health) Problem() error {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.problem
}

// Suspect asks for a check soon: a request found the state database out of reach.
func (h *Health) Suspect() {
	select {
	case h.suspect <- struct{}{}:
	default:
	}
}

// Run checks the state database every interval, and when a request suspects it, until ctx ends;
// so a lost database is noticed without a request, and one that comes back is served again.
func (h *Health) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		h.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-h.suspect:
		}
	}
}

// check runs one check and logs a change of state.
func (h *Health) check(ctx context.Context) error {
	n := h.started.Add(1)
	err := h.db.Check(ctx)
	if ctx.Err() != nil {
		return err // shutting down: not the database's fault
	}
	if errors.Is(err, store.ErrNoConnectionSlot) {
		err = nil // the server answers: what the open connections serve goes on
	}
	h.record(n, err)
	h.noteShortage()
	return err
}

// noteShortage logs a shortage of connection slots: one ERROR line at the first connection given
// up on for want of a slot, one INFO line once none was for slotShortageQuiet.
func (h *Health) noteShortage() {
	h.mu.Lock()
	n, latest, at := h.db.SlotRefusals()
	refused := n > h.refusals
	h.refusals = n
	began, ended := false, false
	switch {
	case refused && h.shortage == nil:
		h.shortage, began = latest, true
	case !refused && h.shortage != nil && time.Since(at) >= slotShortageQuiet:
		h.shortage, ended = nil, true
	}
	h.mu.Unlock()
	switch {
	case began:
		attrs := []any{"error", latest.Error()}
		var ce *store.CheckError
		if errors.As(latest, &ce) {
			attrs = append(attrs, "recover", ce.Recover)
		}
		h.log.Error("state database had no free connection slot: requests that need a new connection wait for one, "+
			"and answer 503 when none frees in time", attrs...)
	case ended:
		h.log.Info("state database connection slots: no connection refused for " + slotShortageQuiet.String())
	}
}

// beforeChange checks, cheaply, what a state change would be written to: between two checks
// the SQLite file may have gone, and what is written then is lost.
func (h *Health) beforeChange() error {
	n := h.started.Add(1)
	err := h.db.CheckFiles()
	if err != nil {
		h.record(n, err)
	}
	return err
}

// record keeps the outcome of check number n and logs a change of state. Checks run at once (the
// periodic one, readiness probes, requests about to write) and may end out of order: the outcome
// of a check begun before the latest recorded one is stale and is dropped, so a check that began
// while the file was still writable never turns a known problem back into "serving".
func (h *Health) record(n uint64, err error) {
	h.mu.Lock()
	if n < h.recorded {
		h.mu.Unlock()
		return
	}
	before := h.problem
	h.problem, h.recorded = err, n
	h.mu.Unlock()
	switch {
	case err != nil && (before == nil || problemKind(before) != problemKind(err)):
		attrs := []any{"error", err.Error()}
		var ce *store.CheckError
		if errors.As(err, &ce) {
			attrs = append(attrs, "path", ce.Path, "recover", ce.Recover)
		}
		h.log.Error("state database unavailable: the desk answers 503 until it serves again", attrs...)
	case err == nil && before != nil:
		h.log.Info("state database available again: the desk serves again")
	}
}

// problemKind tells problems apart for logging: a new kind is worth a line, the same one again
// is not.
func problemKind(err error) string {
	switch {
	case errors.Is(err, store.ErrDatabaseLost):
		return "lost"
	case errors.Is(err, store.ErrDatabaseReadOnly):
		return "read-only"
	case errors.Is(err, store.ErrDiskFull):
		return "full"
	case errors.Is(err, store.ErrNoConnectionSlot):
		return "no slot"
	}
	return "unreachable"
}

func (h *Health) live(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.String(http.StatusOK, "ok\n")
}

func (h *Health) ready(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if h.draining.Load() {
		return c.String(http.StatusServiceUnavailable, "shutting down\n")
	}
	if err := h.check(c.Request().Context()); err != nil {
		c.Response().Header().Set("Retry-After", "5")
		return c.String(http.StatusServiceUnavailable, "state database unavailable\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// Routes adds /healthz and /readyz, outside sessions and CSRF.
func (h *Health) Routes(e *echo.Echo) {
	GET(e, "/healthz", h.live)
	GET(e, "/readyz", h.ready)
}

// stateUnavailable is the page every request gets while the state database has a problem.
func stateUnavailable(problem error) *views.ErrorPage {
	pe := &views.ErrorPage{Status: http.StatusServiceUnavailable, Internal: problem}
	switch problemKind(problem) {
	case "lost":
		pe.Title = "The desk has stopped serving"
		pe.Message = "The desk's state database was removed or replaced while the desk was running, so the desk stopped " +
			"serving rather than record your work where it would be lost. Nothing was sent to Microsoft Graph."
		pe.NextStep = "Tell whoever runs the desk: it needs to be restarted, and its log says how to bring the database back."
	case "full":
		pe.Title = "The desk cannot save anything right now"
		pe.Message = "The disk that holds the desk's state database is full, so the desk is not accepting requests. Nothing was sent to Microsoft Graph."
		pe.NextStep = "Tell whoever runs the desk: it serves again by itself once there is room on that disk (its log names the folder)."
	case "read-only":
		pe.Title = "The desk cannot save anything right now"
		pe.Message = "The desk may not write its state database at the moment, so it is not accepting requests. Nothing was sent to Microsoft Graph."
		pe.NextStep = "Try again in a minute. If it keeps happening, tell whoever runs the desk: its log says why."
	case "no slot":
		pe.Title = "The desk's database is busy"
		pe.Message = "The desk's database server had no free connection slot for your request, so it was not processed " +
			"and nothing was sent to Microsoft Graph."
		pe.NextStep = "Wait a few seconds and try again. If this keeps happening, tell whoever runs the desk: " +
			"every connection slot of its database server was taken."
	default:
		pe.Title = "The desk is briefly unavailable"
		pe.Message = "The desk cannot reach its state database, so your request was not processed and nothing was sent to Microsoft Graph."
		pe.NextStep = "Wait a few seconds and try again. The desk serves again by itself as soon as its database answers."
	}
	return pe
}

// retryAfter is the Retry-After of a 503: a lost database needs a person, the others seconds.
func retryAfter(err error) string {
	if errors.Is(err, store.ErrDatabaseLost) {
		return "300"
	}
	return "5"
}
