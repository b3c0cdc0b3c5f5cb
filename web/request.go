// Package web is the desk's HTTP shell: the Echo instance and its middleware, sessions, CSRF,
// the central error handler, page rendering and the http.Server that serves it all.
package web

import (
	"bytes"
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/a-h/templ"
	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"

	"autopilotdesk/views"
)

// requestState is everything the middleware learns about a request that handlers and the
// error handler need later. One value per request, kept in the Echo context.
type requestState struct {
	base      *pageBase
	shell     *Shell
	nonce     string
	session   *sessions.Session
	user      *SessionUser
	csrf      string
	navCounts map[string]int
	// formRestored: this page puts back a form whose sending a sign-in interrupted
	// (TakePendingForm), or says it does not; nil otherwise.
	formRestored *views.RestoredForm
	// tooLarge answers a body over the route's limit (limitBody chooses it).
	tooLarge *views.ErrorPage
}

const stateKey = "autopilotdesk.request"

func state(c echo.Context) *requestState {
	if s, ok := c.Get(stateKey).(*requestState); ok {
		return s
	}
	s := &requestState{}
	c.Set(stateKey, s)
	return s
}

// CurrentUser is the signed-in user, or nil.
func CurrentUser(c echo.Context) *SessionUser { return state(c).user }

// SetNavCount shows n beside the navigation entry nav on this request's page (waiting work).
func SetNavCount(c echo.Context, nav string, n int) {
	st := state(c)
	if st.navCounts == nil {
		st.navCounts = map[string]int{}
	}
	st.navCounts[nav] = n
}

// CSRFToken is the session's CSRF token, or "" when nobody is signed in.
func CSRFToken(c echo.Context) string { return state(c).csrf }

// Session is the request's server-side session (never nil after the session middleware ran).
func Session(c echo.Context) *sessions.Session { return state(c).session }

// Render writes a templ component with the given status. It renders into a buffer first, so a
// failing component becomes a proper error page instead of half a page.
func Render(c echo.Context, status int, component templ.Component) error {
	buf := templ.GetBuffer()
	defer releaseBuffer(buf)
	// A cancelled request context makes templ stop; pages are rendered to completion regardless.
	if err := component.Render(context.WithoutCancel(c.Request().Context()), buf); err != nil {
		return err
	}
	h := c.Response().Header()
	h[echo.HeaderContentType] = htmlContentType
	h[echo.HeaderContentLength] = []string{strconv.Itoa(buf.Len())}
	if hc := heldConnOf(c.Request()); hc != nil {
		// Status, headers and page leave in one write (onewrite.go).
		hc.hold()
		defer hc.release()
	}
	c.Response().WriteHeader(status)
	if c.Request().Method != http.MethodHead {
		if _, err := c.Response().Write(buf.Bytes()); err != nil {
			return err
		}
	}
	if err := http.NewResponseController(c.Response().Writer).Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// maxPooledBuffer keeps the buffer of an unusually large page (a long list) from staying in
// templ's pool.
const maxPooledBuffer = 256 << 10

func releaseBuffer(buf *bytes.Buffer) {
	if buf.Cap() <= maxPooledBuffer {
		templ.ReleaseBuffer(buf)
	}
}

// pageBase is filled in by the shell; handlers complete it with PageFor.
type pageBase struct {
	assets views.Assets
	demo   bool
	// demoGraph is the host of the Graph a demo desk calls instead of the embedded emulator.
	demoGraph string
	now       func() time.Time
}

// clockOf is the shell's clock, as the request sees it.
func clockOf(c echo.Context) time.Time {
	if pb := state(c).base; pb != nil && pb.now != nil {
		return pb.now()
	}
	return time.Now()
}

// PageFor is the layout data of the current request.
func PageFor(c echo.Context, title, nav string) views.Page {
	st := state(c)
	var pb pageBase
	if st.base != nil {
		pb = *st.base
	}
	p := views.Page{
		Title:     title,
		Nonce:     st.nonce,
		CSRF:      st.csrf,
		Demo:      pb.demo,
		DemoGraph: pb.demoGraph,
		Assets:    pb.assets,
		Nav:       nav,
		Theme:     themeOf(c.Request()),
		Path:      pageAddress(c),
		Counts:    st.navCounts,
		// The layout says that the restored form was not sent.
		FormRestored: st.formRestored,
	}
	if u := st.user; u != nil {
		p.User = &views.User{Name: u.Name, UPN: u.UPN, Tenant: u.Tenant()}
		p.SignedInAgain = takeSignedInAgain(c)
	}
	return p
}

// pageAddress is where the page's own links and forms (the theme toggle, "Sign in again") return
// to: the page's address; for a form's answer, the page the form is on (the form's own address
// answers only a POST); for a sign-in's callback, whose address carries the sign-in's one-time
// code and cannot be opened twice, the sign-in page.
func pageAddress(c echo.Context) string {
	r := c.Request()
	switch {
	case r.URL.Path == "/auth/callback":
		return "/auth/signin"
	case r.Method != http.MethodGet && r.Method != http.MethodHead:
		if sh := state(c).shell; sh != nil {
			return sh.formPageOf(c)
		}
	}
	return r.URL.RequestURI()
}

// ThemeCookieName is the cookie that remembers a light or dark choice made with the theme toggle.
const ThemeCookieName = "autopilotdesk-theme"

func themeOf(r *http.Request) string {
	if ck, err := r.Cookie(ThemeCookieName); err == nil && (ck.Value == "light" || ck.Value == "dark") {
		return ck.Value
	}
	return ""
}
