package web

import (
	"context"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Pinger is the state database as readiness sees it.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Health answers /healthz (the process is alive) and /readyz (it can serve: the state database
// answers and it is not shutting down). Both are cheap, unauthenticated and reveal nothing.
type Health struct {
	db       Pinger
	draining atomic.Bool
}

// NewHealth returns readiness over db.
func NewHealth(db Pinger) *Health { return &Health{db: db} }

// Drain turns readiness false, so load balancers stop sending new requests before shutdown.
func (h *Health) Drain() { h.draining.Store(true) }

func (h *Health) live(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.String(http.StatusOK, "ok\n")
}

func (h *Health) ready(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	if h.draining.Load() {
		return c.String(http.StatusServiceUnavailable, "shutting down\n")
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := h.db.Ping(ctx); err != nil {
		return c.String(http.StatusServiceUnavailable, "state database unreachable\n")
	}
	return c.String(http.StatusOK, "ready\n")
}

// Routes adds /healthz and /readyz, outside sessions and CSRF.
func (h *Health) Routes(e *echo.Echo) {
	GET(e, "/healthz", h.live)
	GET(e, "/readyz", h.ready)
}
