package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/views"
	"autopilotdesk/web/store"
)

// What "your session ended" means is decided here, once, for every page and form. A handler
// (or RequireUser, for a request without a session) only returns ErrSessionEnded, wrapped or not;
// the error handler then:
//
//   - for GET and HEAD, sends the browser to the sign-in page, which returns it to the same
//     address afterwards;
//   - for a form (POST), starts a sign-in at once that keeps the values typed (not files, not
//     security tokens, at most maxKeptForm bytes) and returns to the page the form was on,
//     where the page puts the values back (TakePendingForm). Nothing is sent to Microsoft Graph
//     again by itself: the person submits the restored form. Values too large to keep are not
//     kept, and the page says so when it is shown (formNotKept).
//
// No ended session is ever an error page.

// SignInStarter starts a sign-in flow that returns to returnTo and restores pending afterwards.
type SignInStarter interface {
	Begin(c echo.Context, returnTo string, pending []byte) error
}

// SetSignIn gives the shell the sign-in that ended sessions start, behind limit (the sign-in
// rate limit: each start records a flow). Without one, a form whose session ended is answered
// with a page that offers to sign in.
func (s *Shell) SetSignIn(b SignInStarter, limit echo.MiddlewareFunc) {
	s.signIn = b
	s.signInLimit = limit
}

// SignInURL is the sign-in page that returns to returnTo (a relative path) afterwards.
func SignInURL(returnTo string) string {
	returnTo = SafeReturnTo(returnTo)
	if returnTo == "/" {
		return "/auth/signin"
	}
	return "/auth/signin?return_to=" + url.QueryEscape(returnTo)
}

// FormPage declares that the form posted to route (a route pattern) is on page, a route pattern
// such as "/uploads/:id" filled from the request's own parameters. After a sign-in interrupted
// by an ended session the person returns there when the browser did not say where the form was.
// Call it while adding routes.
func (s *Shell) FormPage(route, page string) {
	if s.formPages == nil {
		s.formPages = map[string]string{}
	}
	s.formPages[route] = page
}

// sessionEnded answers a request whose session ended (or never was).
func (s *Shell) sessionEnded(c echo.Context) error {
	r := c.Request()
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, SignInURL(r.URL.RequestURI()))
	}
	returnTo := s.formPageOf(c)
	if s.signIn == nil {
		return &views.ErrorPage{Status: http.StatusUnauthorized, Title: "Your session has ended",
			Message:  "You were signed out (your session expired or you signed out in another tab), so nothing was sent to Microsoft Graph.",
			NextStep: "Sign in again, then repeat what you were doing.", ActionURL: SignInURL(returnTo), ActionText: "Sign in"}
	}
	begin := func(c echo.Context) error { return s.signIn.Begin(c, returnTo, pendingFormOf(r, returnTo)) }
	if s.signInLimit != nil {
		return s.signInLimit(begin)(c)
	}
	return begin(c)
}

// formPageOf is where the form of this request was: the page the browser says it came from when
// that is on this desk, else the page the route declares, else the home page.
func (s *Shell) formPageOf(c echo.Context) string {
	if ref, err := url.Parse(c.Request().Referer()); err == nil && ref.Path != "" && s.isOwnOrigin(c, ref) {
		if p := SafeReturnTo(ref.RequestURI()); p != "/" || ref.Path == "/" {
			return p
		}
	}
	if pattern, ok := s.formPages[c.Path()]; ok {
		page := pattern
		for i, name := range c.ParamNames() {
			page = strings.ReplaceAll(page, ":"+name, url.PathEscape(c.ParamValues()[i]))
		}
		return SafeReturnTo(page)
	}
	return "/"
}

func (s *Shell) isOwnOrigin(c echo.Context, u *url.URL) bool {
	if u.Scheme == "" || u.Host == "" {
		return false
	}
	return s.sameOrigin(c, u.Scheme+"://"+u.Host)
}

// pendingFormLifetime is how long after the sign-in the page may still put the values back.
const pendingFormLifetime = 10 * time.Minute

// pendingForm is a form kept through a sign-in, for the page at Path.
type pendingForm struct {
	Path   string     `json:"path"`
	Values url.Values `json:"values"`
	Until  int64      `json:"until,omitempty"` // Unix seconds; set when it enters the new session
	// SignedIn marks values kept through a sign-in (not a refusal's KeepForm): the page they
	// return to says that nothing was sent.
	SignedIn bool `json:"signedIn,omitempty"`
	// NotKept marks a form too large to keep through a sign-in (Values is empty): the page says
	// that nothing was sent and that what was chosen must be chosen again.
	NotKept bool `json:"notKept,omitempty"`
}

// pendingFormOf keeps what the person typed into the request's form (no files, no security
// tokens): nothing when there is nothing to keep, a mark that it was not kept when it is too large.
func pendingFormOf(r *http.Request, path string) []byte {
	if r.PostForm == nil {
		_ = r.ParseMultipartForm(32 << 20) // read already by the form check, except in tests of the shell alone
	}
	values := url.Values{}
	for k, vs := range r.PostForm {
		if k == "_csrf" || k == "formKey" {
			continue
		}
		values[k] = vs
	}
	if len(values) == 0 {
		return nil
	}
	b, err := json.Marshal(pendingForm{Path: pathOnly(path), Values: values})
	if err != nil || len(b) > maxKeptForm {
		b, _ = json.Marshal(pendingForm{Path: pathOnly(path), NotKept: true})
	}
	return b
}

func pathOnly(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

const valPendingForm = "pending-form"

// RestorePendingForm puts a form kept by a sign-in flow into the new session, for the page it
// belongs to. Call it once the session has started.
func RestorePendingForm(c echo.Context, data []byte) error {
	var p pendingForm
	if len(data) == 0 || json.Unmarshal(data, &p) != nil || p.Path == "" {
		return nil
	}
	p.Until, p.SignedIn = clockOf(c).Add(pendingFormLifetime).Unix(), true
	b, err := json.Marshal(p)
	if err != nil {
		return err
	}
	sess := Session(c)
	sess.Values[valPendingForm] = string(b)
	return sess.Save(c.Request(), c.Response())
}

// TakePendingForm returns, once, the values kept through a sign-in for the page of this request.
// Values kept for another page wait for it; values past their time are dropped.
func TakePendingForm(c echo.Context) (url.Values, bool) {
	sess := Session(c)
	if sess == nil {
		return nil, false
	}
	raw, ok := sess.Values[valPendingForm].(string)
	if !ok {
		return nil, false
	}
	var p pendingForm
	broken := json.Unmarshal([]byte(raw), &p) != nil
	expired := clockOf(c).Unix() > p.Until
	if !broken && !expired && p.Path != c.Request().URL.Path {
		return nil, false
	}
	delete(sess.Values, valPendingForm)
	// Under the session's lock, so tokens another request renewed meanwhile are not overwritten.
	if st := state(c); st.shell != nil && sess.ID != "" {
		_, _ = st.shell.sessions.UpdateLocked(c.Request().Context(), store.SessionKey(sess.ID), func(values map[any]any) (store.SessionChange, error) {
			delete(values, valPendingForm)
			return store.SaveSession, nil
		})
	}
	if broken || expired {
		return nil, false
	}
	if p.NotKept {
		state(c).formNotKept = true
		return nil, false
	}
	if p.SignedIn {
		state(c).formRestored = true
	}
	return p.Values, true
}

// sayFormNotKept takes, on the page it was for, the mark of a form too large to keep through a
// sign-in, so that the page says so: pages that put a form back take it themselves, others not.
func sayFormNotKept(c echo.Context) {
	sess := Session(c)
	if sess == nil || c.Request().Method != http.MethodGet {
		return
	}
	raw, ok := sess.Values[valPendingForm].(string)
	if !ok || !strings.Contains(raw, `"notKept":true`) {
		return
	}
	var p pendingForm
	if json.Unmarshal([]byte(raw), &p) == nil && p.NotKept && p.Path == c.Request().URL.Path {
		TakePendingForm(c)
	}
}

// maxKeptForm bounds the values kept for a form's page, through a sign-in or by KeepForm: they
// travel in the sign-in's flow record and the session's row. The most devices a bulk change
// takes, ticked, fit (maxBulkDevices in handlers).
const maxKeptForm = 64 << 10

// KeepForm keeps the values of a form that could not be carried out (refused, or Graph had
// trouble) for the page at path, where it was filled in, which puts them back (TakePendingForm)
// when it is next shown within a few minutes. It reports whether it kept them: values beyond
// maxKeptForm are not kept.
func KeepForm(c echo.Context, path string, values url.Values) (bool, error) {
	sess := Session(c)
	if sess == nil || sess.ID == "" {
		return false, nil
	}
	kept := url.Values{}
	for k, vs := range values {
		if k != "_csrf" && k != "formKey" {
			kept[k] = vs
		}
	}
	b, err := json.Marshal(pendingForm{Path: pathOnly(path), Values: kept, Until: clockOf(c).Add(pendingFormLifetime).Unix()})
	if err != nil || len(b) > maxKeptForm {
		return false, err
	}
	sess.Values[valPendingForm] = string(b)
	// Under the session's lock, so tokens another request renewed meanwhile are not overwritten.
	if st := state(c); st.shell != nil {
		_, err = st.shell.sessions.UpdateLocked(c.Request().Context(), store.SessionKey(sess.ID), func(values map[any]any) (store.SessionChange, error) {
			values[valPendingForm] = string(b)
			return store.SaveSession, nil
		})
	}
	return err == nil, err
}
