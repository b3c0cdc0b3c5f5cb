package web

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"autopilotdesk/static"
	"autopilotdesk/views"
	"autopilotdesk/web/store"
)

// Options configure the shell.
type Options struct {
	Logger         *slog.Logger
	Assets         *static.Assets
	Sessions       SessionStore
	Refresher      Refresher
	Demo           bool
	DemoGraph      string       // demo mode: the host of the Graph called instead of the embedded emulator, if any
	PublicURL      *url.URL     // where browsers reach the desk; its origin is the only one accepted on POSTs
	TrustedProxies []*net.IPNet // peers whose X-Forwarded-For / X-Forwarded-Proto are believed
	// TrustedProxiesSetting names the setting of TrustedProxies, for the warning about a peer
	// outside it that sends those headers.
	TrustedProxiesSetting string
	FormLimit             int64 // request body limit for forms, bytes
	UploadLimit           int64 // body limit of the paths in UploadPaths (CSV uploads)
	UploadPaths           []string
	UploadTooLarge        *views.ErrorPage // the answer to an upload over UploadLimit; nil: the forms' answer
	Metrics               *Metrics         // nil: no metrics
	// State is the state database's health: while it has a problem every page answers 503,
	// and a request that finds the database out of reach asks it to check. Nil: not watched.
	State *Health
	// SignInOrigins may be the target of redirects that follow a form (sign-out goes to the
	// identity provider's end-session endpoint); CSP form-action covers those redirects.
	SignInOrigins []string
	Now           func() time.Time
	NewRequestID  func() string
}

// Shell is the desk's HTTP shell: the Echo instance with its middleware and the session plumbing
// handlers use.
type Shell struct {
	Echo        *echo.Echo
	log         *slog.Logger
	sessions    SessionStore
	refresher   Refresher
	signIn      SignInStarter
	signInLimit echo.MiddlewareFunc
	formPages   map[string]string // POST route -> the page its form is on
	state       *Health
	// crossOrigin refuses state-changing requests from other origins.
	crossOrigin *http.CrossOriginProtection
	publicURL   *url.URL
	now         func() time.Time
	locks       tokenLocks
	newReqID    func() string
	// formLimit, uploadLimit and uploadPaths bound request bodies; devices are the route
	// prefixes of requests from devices (see Devices), with their own limits and plain-text answers.
	formLimit, uploadLimit int64
	uploadPaths            []string
	uploadTooLarge         *views.ErrorPage
	formLimits             map[string]formLimit // POST route pattern -> its own limit (FormLimit)
	devices                []devicePrefix
	routeWordsOnce         sync.Once
	routeWordSet           map[string]bool
}

// New builds the Echo instance with the desk's middleware chain. Routes are added by the caller.
func New(o Options) *Shell {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.FormLimit == 0 {
		o.FormLimit = 64 << 10
	}
	if o.NewRequestID == nil {
		o.NewRequestID = rand.Text
	}
	s := &Shell{
		crossOrigin: http.NewCrossOriginProtection(),
		log:         o.Logger,
		sessions:    o.Sessions,
		refresher:   o.Refresher,
		publicURL:   o.PublicURL,
		now:         o.Now,
		newReqID:    o.NewRequestID,
		state:       o.State,
		formLimit:   o.FormLimit, uploadLimit: o.UploadLimit, uploadPaths: o.UploadPaths, uploadTooLarge: o.UploadTooLarge,
	}
	if o.PublicURL != nil {
		// Behind a proxy that rewrites Host, the Origin browsers send is the public URL's.
		if err := s.crossOrigin.AddTrustedOrigin(o.PublicURL.Scheme + "://" + o.PublicURL.Host); err != nil {
			s.log.Warn("the public URL cannot be trusted as an origin", "error", err.Error())
		}
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.IPExtractor = echo.ExtractIPFromXFFHeader(trustOnly(o.TrustedProxies)...)
	e.HTTPErrorHandler = s.handleError
	base := &pageBase{demo: o.Demo, demoGraph: o.DemoGraph, now: o.Now, assets: views.Assets{
		CSS: o.Assets.Path("app.css"), JS: o.Assets.Path("app.js"), Icon: o.Assets.Path("favicon.svg"),
	}}
	forwarding := &untrustedForwarding{log: o.Logger, setting: o.TrustedProxiesSetting, trusted: o.TrustedProxies, warned: map[string]bool{}}
	e.Use(
		s.requestID(o.TrustedProxies),
		forwarding.middleware,
		s.logRequests,
		observe(o.Metrics),
		middleware.RecoverWithConfig(middleware.RecoverConfig{DisableStackAll: true, DisablePrintStack: true,
			LogErrorFunc: func(c echo.Context, err error, stack []byte) error {
				s.log.Error("panic", "error", err.Error(), "stack", string(stack))
				return err
			}}),
		s.securityHeaders(o.TrustedProxies, o.SignInOrigins),
		func(next echo.HandlerFunc) echo.HandlerFunc {
			return func(c echo.Context) error { state(c).base = base; return next(c) }
		},
		s.limitBody,
		s.refuseWrongCase,
	)
	// Static files and the favicon need no session.
	GET(e, static.Prefix+"*", echo.WrapHandler(o.Assets))
	GET(e, "/favicon.ico", func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, o.Assets.Path("favicon.svg"))
	})
	s.Echo = e
	return s
}

// Pages returns the group for every page: refused while the state database has a problem,
// session loaded, CSRF checked.
func (s *Shell) Pages() *echo.Group {
	return s.Echo.Group("", s.refuseWithoutState, s.loadSession, s.checkCSRF)
}

// refuseWithoutState answers 503 while the state database is lost, read-only or unreachable:
// nothing a page does can be kept then.
func (s *Shell) refuseWithoutState(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if s.state != nil {
			if problem := s.state.Problem(); problem != nil {
				return stateUnavailable(problem)
			}
			if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
				if problem := s.state.beforeChange(); problem != nil {
					return stateUnavailable(problem)
				}
			}
		}
		return next(c)
	}
}

// requestID gives every request its id: the one a trusted proxy sent when it reads as an id,
// else a new one. Anyone else's is not believed: it would be logged and shown as the desk's own.
func (s *Shell) requestID(trusted []*net.IPNet) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			id := r.Header.Get(echo.HeaderXRequestID)
			if id == "" || !readsAsRequestID(id) || !fromPeerIn(r.RemoteAddr, trusted) {
				id = s.newReqID()
			}
			c.Response().Header().Set(echo.HeaderXRequestID, id)
			return next(c)
		}
	}
}

// readsAsRequestID reports whether a proxy's request id is one the desk may log and show: at
// most 128 letters, digits and . _ : - (a GUID, a ULID, a trace id).
func readsAsRequestID(id string) bool {
	if len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch ch := id[i]; {
		case 'a' <= ch && ch <= 'z', 'A' <= ch && ch <= 'Z', '0' <= ch && ch <= '9', ch == '.', ch == '_', ch == ':', ch == '-':
		default:
			return false
		}
	}
	return true
}

// fromPeerIn reports whether the connection's peer address is in one of the ranges.
func fromPeerIn(remoteAddr string, ranges []*net.IPNet) bool {
	if len(ranges) == 0 {
		return false
	}
	host, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		host = remoteAddr
	}
	ip := net.ParseIP(host)
	for _, r := range ranges {
		if ip != nil && r.Contains(ip) {
			return true
		}
	}
	return false
}

// MethodName is a request's method as logs and metrics name it: one of HTTP's own, or "other".
// A made-up method is any text a client chooses, at any length; as a metric label each would
// be a series kept for good.
func MethodName(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}

func observe(m *Metrics) echo.MiddlewareFunc {
	if m == nil {
		return func(next echo.HandlerFunc) echo.HandlerFunc { return next }
	}
	return m.observeHTTP
}

func trustOnly(proxies []*net.IPNet) []echo.TrustOption {
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range proxies {
		opts = append(opts, echo.TrustIPRange(p))
	}
	return opts
}

func (s *Shell) sameOrigin(c echo.Context, origin string) bool {
	if s.publicURL != nil && strings.EqualFold(origin, s.publicURL.Scheme+"://"+s.publicURL.Host) {
		return true
	}
	return strings.EqualFold(origin, c.Scheme()+"://"+c.Request().Host)
}

// securityHeaders sets the headers every response carries, with a fresh CSP nonce per request.
func (s *Shell) securityHeaders(trusted []*net.IPNet, signInOrigins []string) echo.MiddlewareFunc {
	scheme := echo.ExtractSchemeFromHeaders(trustOnly(trusted)...)
	formAction := strings.Join(append([]string{"'self'"}, signInOrigins...), " ")
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			nonce := rand.Text()
			state(c).nonce = nonce
			h := c.Response().Header()
			h["Content-Security-Policy"] = []string{"default-src 'self'; script-src 'nonce-" + nonce + "' 'strict-dynamic'; " +
				"style-src 'self' 'nonce-" + nonce + "'; img-src 'self' data:; object-src 'none'; base-uri 'none'; " +
				"frame-ancestors 'none'; form-action " + formAction}
			// The same values every time: shared, never changed in place (a later Set replaces them).
			h["X-Content-Type-Options"] = headerNosniff
			h["Referrer-Policy"] = headerReferrer
			h["Cross-Origin-Opener-Policy"] = headerSameOrigin
			h["X-Frame-Options"] = headerDeny
			if scheme(c.Request()) == "https" {
				h["Strict-Transport-Security"] = headerHSTS
			}
			return next(c)
		}
	}
}

// Header values every response carries, in canonical form.
var (
	headerNosniff    = []string{"nosniff"}
	headerReferrer   = []string{"strict-origin-when-cross-origin"}
	headerSameOrigin = []string{"same-origin"}
	headerDeny       = []string{"DENY"}
	headerHSTS       = []string{"max-age=31536000; includeSubDomains"}
	headerNoStore    = []string{"no-store"}
	htmlContentType  = []string{echo.MIMETextHTMLCharsetUTF8}
)

// limitBody refuses bodies larger than the limit with 413 (Content-Length checked up front, the
// rest while reading); upload paths, the routes of devices and forms declared with FormLimit get
// their own limits.
func (s *Shell) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		limit := s.formLimit
		tooLarge := errTooLarge
		if s.uploadLimit > 0 && slices.Contains(s.uploadPaths, r.URL.Path) {
			limit = s.uploadLimit
			if s.uploadTooLarge != nil {
				tooLarge = s.uploadTooLarge
			}
			if r.Method == http.MethodPost {
				// A large file on a slow link takes longer to arrive than a form; the answer's
				// time counts from when it has.
				rc := http.NewResponseController(c.Response())
				_ = rc.SetReadDeadline(time.Now().Add(ServerTimeouts.Upload))
				_ = rc.SetWriteDeadline(time.Now().Add(ServerTimeouts.Upload + ServerTimeouts.Write))
			}
		}
		if d := s.deviceRoute(r.URL.Path); d != nil {
			limit, tooLarge = d.bodyLimit, d.tooLarge
		}
		if f, ok := s.formLimits[c.Path()]; ok && r.Method == http.MethodPost {
			limit, tooLarge = f.limit, f.tooLarge
		}
		state(c).tooLarge = tooLarge
		if r.ContentLength > limit {
			return tooLarge
		}
		if r.Body != http.NoBody && r.Body != nil {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
		}
		return next(c)
	}
}

// formLimit is a form's own body limit and the answer to a larger one.
type formLimit struct {
	limit    int64
	tooLarge *views.ErrorPage
}

// FormLimit gives the form posted to route (a route pattern) a body limit of its own, sized from
// the most its page can offer, and the page that answers a larger body (nil: the forms' answer).
// Call it while adding routes.
func (s *Shell) FormLimit(route string, limit int64, tooLarge *views.ErrorPage) {
	if s.formLimits == nil {
		s.formLimits = map[string]formLimit{}
	}
	s.formLimits[route] = formLimit{limit: limit, tooLarge: cmp.Or(tooLarge, errTooLarge)}
}

var errTooLarge = &views.ErrorPage{
	Status:   http.StatusRequestEntityTooLarge,
	Title:    "That was too much to send",
	Message:  "What you sent is larger than the desk accepts, so nothing was sent to Microsoft Graph.",
	NextStep: "Go back, shorten the values (or split the file) and try again.",
}

func (s *Shell) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		r := c.Request()
		s.log.LogAttrs(r.Context(), slog.LevelInfo, "request",
			slog.String("request_id", c.Response().Header().Get(echo.HeaderXRequestID)),
			slog.String("method", MethodName(r.Method)),
			slog.String("route", c.Path()),
			slog.String("path", s.loggedPath(r.URL.Path)),
			slog.Int("status", c.Response().Status),
			slog.Float64("duration_ms", float64(time.Since(start).Microseconds())/1000),
			slog.String("ip", c.RealIP()),
		)
		return nil
	}
}

type stateUnavailableError struct{ err error }

func (e stateUnavailableError) Error() string { return "state database unavailable: " + e.err.Error() }
func (e stateUnavailableError) Unwrap() error { return e.err }

// Unavailable marks the error as the state database being out of reach, as the store marks its own.
func (stateUnavailableError) Unavailable() bool { return true }

func errStateUnavailable(err error) error { return stateUnavailableError{err} }

// handleError renders every error as a page written for an Intune administrator.
func (s *Shell) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	if errors.Is(err, ErrSessionEnded) {
		if err = s.sessionEnded(c); err == nil || c.Response().Committed {
			return
		}
	}
	pe := s.errorPageOf(err)
	if pe.Status >= 500 {
		s.logFailure(c, pe, err)
	}
	if pe.Status == http.StatusServiceUnavailable {
		c.Response().Header().Set("Retry-After", retryAfter(err))
	}
	if s.deviceAddress(c.Request().URL.Path) != nil {
		s.plainError(c, pe)
		return
	}
	page := PageFor(c, pe.Title, "")
	view := *pe
	view.RequestID = c.Response().Header().Get(echo.HeaderXRequestID)
	switch {
	case view.ActionURL != "" || pe.Status == http.StatusNotFound:
	case pe.Status == http.StatusServiceUnavailable:
		// The home page is as unavailable as this one: offer this page again, unless only a
		// restart helps.
		if m := c.Request().Method; (m == http.MethodGet || m == http.MethodHead) && !errors.Is(err, store.ErrDatabaseLost) {
			view.ActionURL, view.ActionText = c.Request().URL.RequestURI(), "Try again"
		}
	default:
		view.ActionURL, view.ActionText = "/", "Go to the home page"
	}
	if rerr := Render(c, pe.Status, views.ErrorPageView(page, view)); rerr != nil {
		s.log.Error("render error page", "error", rerr.Error())
		c.String(pe.Status, pe.Title)
	}
}

// logFailure logs a failed request. A state database out of reach is logged once by Health,
// which this asks to check; its requests are not logged one by one as errors.
func (s *Shell) logFailure(c echo.Context, pe *views.ErrorPage, err error) {
	level := slog.LevelError
	if pe.Status == http.StatusServiceUnavailable && s.state != nil {
		level = slog.LevelDebug // known, and logged once
		if s.state.Problem() == nil {
			s.state.Suspect()
			if !errors.Is(err, store.ErrNoConnectionSlot) { // the check logs the shortage once
				level = slog.LevelWarn
			}
		}
	}
	s.log.Log(c.Request().Context(), level, "request failed", "request_id", c.Response().Header().Get(echo.HeaderXRequestID),
		"path", s.loggedPath(c.Request().URL.Path), "error", err.Error())
}

func (s *Shell) errorPageOf(err error) *views.ErrorPage {
	var pe *views.ErrorPage
	if errors.As(err, &pe) {
		return pe
	}
	var maxErr *http.MaxBytesError
	if errors.As(err, &maxErr) {
		return errTooLarge
	}
	var lost *store.CheckError
	// A write the disk had no room for, or that PostgreSQL refused as it accepts none; a new
	// connection PostgreSQL refused for as long as the desk waited, every slot taken.
	if errors.As(err, &lost) || errors.Is(err, store.ErrDiskFull) || errors.Is(err, store.ErrDatabaseReadOnly) ||
		errors.Is(err, store.ErrNoConnectionSlot) {
		return stateUnavailable(err)
	}
	var unreachable interface{ Unavailable() bool }
	if errors.Is(err, context.DeadlineExceeded) || errors.As(err, &unreachable) && unreachable.Unavailable() {
		return &views.ErrorPage{Status: http.StatusServiceUnavailable, Title: "The desk is briefly unavailable",
			Message:  "The desk could not reach its state database, so your request was not processed.",
			NextStep: "Wait a few seconds and try again. If this keeps happening, tell whoever runs the desk."}
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		switch he.Code {
		case http.StatusNotFound:
			return &views.ErrorPage{Status: he.Code, Title: "Page not found",
				Message: "There is no page at this address.", ActionURL: "/", ActionText: "Go to the home page"}
		case http.StatusMethodNotAllowed:
			return &views.ErrorPage{Status: he.Code, Title: "Not available this way",
				Message: "This address does not accept that kind of request."}
		case http.StatusRequestEntityTooLarge:
			return errTooLarge
		}
		if he.Code < 500 {
			return &views.ErrorPage{Status: he.Code, Title: http.StatusText(he.Code), Message: "The request could not be processed."}
		}
	}
	return &views.ErrorPage{Status: http.StatusInternalServerError, Title: "Something went wrong on the desk",
		Message:  "The desk hit an unexpected error. Nothing more was sent to Microsoft Graph after it.",
		NextStep: "Try again. If it happens again, give the request id below to whoever runs the desk.", Internal: err}
}

// ServerTimeouts are the http.Server limits the desk runs with. Upload is how long a file on an
// upload path may take to arrive (a 48 MB device list over a slow link), instead of Read.
var ServerTimeouts = struct{ ReadHeader, Read, Write, Idle, Upload time.Duration }{
	5 * time.Second, 15 * time.Second, 30 * time.Second, 120 * time.Second, 10 * time.Minute}

// AwaitingUpstream lifts the answer's write deadline while a request waits for a service the
// desk calls, Microsoft Graph or the identity provider (each call has a timeout of its own, and
// some pages make several), and done sets it again, counted from the service's answer: a slow
// service never costs the person the page that explains it, and a client that reads slowly
// still gets only the usual time.
func AwaitingUpstream(c echo.Context) (done func()) {
	rc := http.NewResponseController(c.Response())
	if rc.SetWriteDeadline(time.Time{}) != nil {
		return func() {} // a writer without deadlines (tests)
	}
	return func() { _ = rc.SetWriteDeadline(time.Now().Add(ServerTimeouts.Write)) }
}

// Shutdown is how Serve ends once its context is done.
type Shutdown struct {
	Before func() // runs first: readiness turns false
	// Delay keeps serving every request this long after Before, so load balancers see the
	// readiness change and stop sending traffic before the listener closes.
	Delay time.Duration
	Drain time.Duration // then requests in flight get this long to finish
}

// Serve runs handler on ln until ctx ends, then shuts down gracefully as sd says. Requests still
// running when the drain time is up are closed, with a WARN line counting them: a stop that cut
// some requests off is still the stop that was asked for, so Serve returns nil.
func Serve(ctx context.Context, ln net.Listener, handler http.Handler, tlsConfig *tls.Config, sd Shutdown, log *slog.Logger) error {
	var running atomic.Int64
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			running.Add(1)
			defer running.Add(-1)
			handler.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: ServerTimeouts.ReadHeader,
		ReadTimeout:       ServerTimeouts.Read,
		WriteTimeout:      ServerTimeouts.Write,
		IdleTimeout:       ServerTimeouts.Idle,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConfig,
		ConnContext:       withHeldConn,
	}
	ln = heldListener{ln}
	errc := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			errc <- srv.ServeTLS(ln, "", "")
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	if sd.Before != nil {
		sd.Before()
	}
	if sd.Delay > 0 {
		log.Info("shutting down: readiness is off, still serving", "for", sd.Delay.String())
		select {
		case <-time.After(sd.Delay):
		case err := <-errc:
			return err
		}
	}
	shutdownCtx, cancel := context.WithTimeout(context.Background(), sd.Drain)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		if !errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("shutdown: %w", err)
		}
		n := running.Load()
		srv.Close()
		requests := fmt.Sprintf("%d requests that were", n)
		if n == 1 {
			requests = "1 request that was"
		}
		log.Warn(fmt.Sprintf("shutting down: closed %s still running after %s", requests, sd.Drain),
			"still_running", n, "waited", sd.Drain.String())
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Router is where routes are added: the Echo instance or one of its groups.
type Router interface {
	Match(methods []string, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) []*echo.Route
}

// GET adds a route answering GET and HEAD: whatever a page answers to GET, it answers to HEAD
// without the body.
func GET(r Router, path string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
	r.Match([]string{http.MethodGet, http.MethodHead}, path, h, m...)
}
