package web

import (
	"context"
	"crypto/subtle"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics are the desk's Prometheus metrics, on a registry of their own.
type Metrics struct {
	Registry *prometheus.Registry

	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	graphCalls    *prometheus.CounterVec
	graphDuration *prometheus.HistogramVec
	graphRetries  *prometheus.CounterVec
	graphThrottle *prometheus.CounterVec
	graphUnknown  *prometheus.CounterVec
	signIns       *prometheus.CounterVec
	importJobs    *prometheus.CounterVec
	stateSchema   prometheus.Gauge
}

// NewMetrics registers every metric; activeSessions is read at scrape time.
func NewMetrics(activeSessions func(ctx context.Context) (int, error)) *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autopilotdesk_http_requests_total",
			Help: "HTTP requests served, by route, method and status."}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autopilotdesk_http_request_duration_seconds",
			Help: "Time to serve HTTP requests, by route and method.", Buckets: prometheus.DefBuckets}, []string{"route", "method"}),
		graphCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autopilotdesk_graph_requests_total",
			Help: "Microsoft Graph attempts, by operation and HTTP status (0: no answer)."}, []string{"operation", "status"}),
		graphDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "autopilotdesk_graph_request_duration_seconds",
			Help: "Latency of Microsoft Graph attempts, by operation.", Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}}, []string{"operation"}),
		graphRetries: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autopilotdesk_graph_retries_total",
			Help: "Microsoft Graph attempts that were retries, by operation."}, []string{"operation"}),
		graphThrottle: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autopilotdesk_graph_throttled_total",
			Help: "Microsoft Graph answers of 429 Too Many Requests, by operation."}, []string{"operation"}),
		graphUnknown: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autopilotdesk_graph_outcome_unknown_total",
			Help: "Writes whose outcome Graph left unknown, by operation."}, []string{"operation"}),
		signIns: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autopilotdesk_sign_ins_total",
			Help: "Sign-in attempts by result (success or failure) and reason."}, []string{"result", "reason"}),
		importJobs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "autopilotdesk_import_jobs_total",
			Help: "Device import jobs reaching a state (draft, polling, done)."}, []string{"state"}),
	}
	reg.MustRegister(m.httpRequests, m.httpDuration, m.graphCalls, m.graphDuration, m.graphRetries, m.graphThrottle, m.graphUnknown, m.signIns, m.importJobs,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "autopilotdesk_active_sessions",
		Help: "Sessions used within the idle timeout."}, func() float64 {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		n, err := activeSessions(ctx)
		if err != nil {
			return -1
		}
		return float64(n)
	}))
	m.stateSchema = prometheus.NewGauge(prometheus.GaugeOpts{Name: "autopilotdesk_state_schema_version",
		Help: "The state database's schema version, as this process left it at start."})
	reg.MustRegister(m.stateSchema)
	version, goVersion := BuildVersion()
	info := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "autopilotdesk_build_info", Help: "Build information; always 1."}, []string{"version", "goversion"})
	info.WithLabelValues(version, goVersion).Set(1)
	reg.MustRegister(info)
	return m
}

// StateSchema records the state database's schema version.
func (m *Metrics) StateSchema(version int) { m.stateSchema.Set(float64(version)) }

// observeHTTP is middleware counting requests by route (the route pattern, never the raw path).
func (m *Metrics) observeHTTP(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		route := c.Path()
		if route == "" {
			route = "unmatched"
		}
		method := MethodName(c.Request().Method)
		m.httpRequests.WithLabelValues(route, method, strconv.Itoa(c.Response().Status)).Inc()
		m.httpDuration.WithLabelValues(route, method).Observe(time.Since(start).Seconds())
		return nil
	}
}

// GraphCall records one Graph attempt.
func (m *Metrics) GraphCall(operation string, status int, d time.Duration, attempt int, outcomeUnknown bool) {
	m.graphCalls.WithLabelValues(operation, strconv.Itoa(status)).Inc()
	m.graphDuration.WithLabelValues(operation).Observe(d.Seconds())
	if attempt > 1 {
		m.graphRetries.WithLabelValues(operation).Inc()
	}
	if status == http.StatusTooManyRequests {
		m.graphThrottle.WithLabelValues(operation).Inc()
	}
	if outcomeUnknown {
		m.graphUnknown.WithLabelValues(operation).Inc()
	}
}

// SignIn records a sign-in result.
func (m *Metrics) SignIn(success bool, reason string) {
	result := "success"
	if !success {
		result = "failure"
	}
	m.signIns.WithLabelValues(result, reason).Inc()
}

// ImportJob records an import job reaching a state.
func (m *Metrics) ImportJob(state string) { m.importJobs.WithLabelValues(state).Inc() }

// Handler serves the metrics; with a token, only to requests bearing it.
func (m *Metrics) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	if token == "" {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, got, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		// The scheme's name is not case-sensitive (RFC 9110 §11.1); the token is.
		if !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare([]byte(got), []byte(token)) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "metrics need the bearer token", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// BuildVersion is the desk's version as its build recorded it ("devel" when it recorded none),
// and the Go version it was built with: what autopilotdesk_build_info reports.
func BuildVersion() (version, goVersion string) {
	version = "devel"
	if bi, ok := debug.ReadBuildInfo(); ok {
		goVersion = bi.GoVersion
		if bi.Main.Version != "" {
			version = bi.Main.Version
		}
	}
	return version, goVersion
}
