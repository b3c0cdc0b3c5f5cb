package web

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
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
//     again by itself: the person submits the restored form. A form with nothing to fill in (a
//     button) leaves only the mark that it was pressed, and its page says it was not carried out.
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
// that is on this desk, else the page the form names in its return_to field (a page whose
// address carries a search or filters says so there), else the page the route declares, else the
// home page.
func (s *Shell) formPageOf(c echo.Context) string {
	if ref, err := url.Parse(c.Request().Referer()); err == nil && ref.Path != "" && s.isOwnOrigin(c, ref) {
		if p := SafeReturnTo(ref.RequestURI()); p != "/" || ref.Path == "/" {
			return p
		}
	}
	if named := c.Request().PostForm.Get(fieldReturnTo); named != "" {
		if p := SafeReturnTo(named); p != "/" {
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

// fromOwnPage reports whether the browser says the request comes from one of the desk's pages:
// its Origin, or without one its Referer, is the desk's.
func (s *Shell) fromOwnPage(c echo.Context) bool {
	r := c.Request()
	if origin := r.Header.Get("Origin"); origin != "" {
		return s.sameOrigin(c, origin)
	}
	ref, err := url.Parse(r.Referer())
	return err == nil && s.isOwnOrigin(c, ref)
}

// staleForm answers a form sent from one of the desk's pages with the security token of an
// earlier session: a tab opened before the person signed in again elsewhere. Nothing is sent.
// The person's own form goes back to its page with what was typed, to check and send again;
// another account's form is refused without its values.
func (s *Shell) staleForm(c echo.Context, token string) error {
	r := c.Request()
	user := CurrentUser(c)
	page := s.formPageOf(c)
	if !strings.Contains(token, ".") {
		// Not a token the desk hands out: nothing says whose form it was.
		return csrfRefused("the form's security token is missing or belongs to another session")
	}
	if !csrfOwnedBy(token, user.Key()) {
		return &views.ErrorPage{Status: http.StatusForbidden, Title: "This form belonged to another sign-in",
			Message: "The desk refused the form: it was filled in while another account was signed in to the desk in this browser. " +
				"Nothing was sent to Microsoft Graph, and what was typed in it was not kept.",
			NextStep: "You are signed in as " + user.Name + " (" + user.UPN + "). Open the page again and fill it in, if you need it; " +
				"to act as the other account, sign out first and sign in as that account.",
			ActionURL: page, ActionText: "Open the page again"}
	}
	if page == "/" {
		// Where the form was is unknown: there is no page to put the values back on.
		return csrfRefused("the form's security token is missing or belongs to another session")
	}
	kept, err := keepForm(c, pendingForm{Path: pathOnly(page), Values: formValuesKept(r.PostForm), Stale: true, File: fileChosen(r)})
	if err != nil {
		return err
	}
	if !kept {
		return csrfRefused("the page was opened before you signed in again, and what was typed in it is too much to keep")
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusSeeOther, page)
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
	// Stale marks values of a page opened before the person signed in again (another tab):
	// the page says that nothing was sent, and why.
	Stale bool `json:"stale,omitempty"`
	// Owner is the security token the form carried, which names whose form it was (csrfOwnedBy):
	// checked against whoever signs in, then dropped.
	Owner string `json:"owner,omitempty"`
	// Foreign marks a form that was another account's: its values were dropped, and its page
	// says so.
	Foreign bool `json:"foreign,omitempty"`
	// File: a file was chosen in the form, and files are not kept.
	File bool `json:"file,omitempty"`
	// TooLarge marks a form too large to keep through a sign-in (Values is empty): the page says
	// that nothing was sent and that what was chosen must be chosen again.
	TooLarge bool `json:"tooLarge,omitempty"`
	// Pressed marks a form with nothing to fill in, a button (Values is empty): the page says that
	// what it asked was not carried out.
	Pressed bool `json:"pressed,omitempty"`
}

// pendingFormOf keeps what the person typed into the request's form (no files, no security
// tokens), or of a form with nothing to fill in the mark that it was pressed; of a form too large
// to keep, only the mark that it was (the values travel in the flow record and the new session's
// row).
func pendingFormOf(r *http.Request, path string) []byte {
	if r.PostForm == nil {
		_ = r.ParseMultipartForm(32 << 20) // read already by the form check, except in tests of the shell alone
	}
	values, file := formValuesKept(r.PostForm), fileChosen(r)
	if len(values) == 0 && !file {
		b, _ := json.Marshal(pendingForm{Path: pathOnly(path), Owner: sentToken(r), Pressed: true})
		return b
	}
	b, err := json.Marshal(pendingForm{Path: pathOnly(path), Values: values, Owner: sentToken(r), File: file})
	if err != nil || len(b) > maxKeptForm {
		b, _ = json.Marshal(pendingForm{Path: pathOnly(path), Owner: sentToken(r), TooLarge: true})
	}
	return b
}

// fieldReturnTo is the field in which a form names the page it is on (formPageOf).
const fieldReturnTo = "return_to"

// formValuesKept are a form's values without its security tokens and the page it names.
func formValuesKept(form url.Values) url.Values {
	values := url.Values{}
	for k, vs := range form {
		if k != "_csrf" && k != "formKey" && k != fieldReturnTo {
			values[k] = vs
		}
	}
	return values
}

// sentToken is the CSRF token the request carries (its header, else the form's field); a value
// longer than any the desk hands out is none.
func sentToken(r *http.Request) string {
	got := r.Header.Get("X-CSRF-Token")
	if got == "" {
		got = r.PostFormValue("_csrf")
	}
	if len(got) > 128 {
		return ""
	}
	return got
}

// fileChosen reports whether the request's form carries a chosen file.
func fileChosen(r *http.Request) bool {
	if r.MultipartForm == nil {
		return false
	}
	for _, files := range r.MultipartForm.File {
		for _, f := range files {
			if f.Filename != "" || f.Size > 0 {
				return true
			}
		}
	}
	return false
}

func pathOnly(p string) string {
	p, _, _ = strings.Cut(p, "?")
	return p
}

const valPendingForm = "pending-form"

// RestorePendingForm puts a form kept by a sign-in flow into the new session, for the page it
// belongs to. Call it once the session has started. A form another account filled in is not
// put back: its page says only that it belonged to another sign-in.
func RestorePendingForm(c echo.Context, data []byte) error {
	var p pendingForm
	if len(data) == 0 || json.Unmarshal(data, &p) != nil || p.Path == "" {
		return nil
	}
	if u := CurrentUser(c); u == nil || !csrfOwnedBy(p.Owner, u.Key()) {
		p.Values, p.File, p.Foreign = nil, false, true
	}
	p.Owner = ""
	p.Until, p.SignedIn = clockOf(c).Add(pendingFormLifetime).Unix(), true
	sess := Session(c)
	kept, ok := withPendingForm(sess.Values[valPendingForm], p, clockOf(c).Unix())
	if !ok {
		return nil
	}
	sess.Values[valPendingForm] = kept
	return sess.Save(c.Request(), c.Response())
}

// maxPendingForms is how many pages' forms a session keeps at once: one browser's tabs whose
// forms each started a sign-in, or were refused, while none of their pages was shown again.
const maxPendingForms = 4

// pendingFormsOf reads the forms a session keeps (one, as older sessions kept it, or several).
func pendingFormsOf(raw any) []pendingForm {
	s, _ := raw.(string)
	if s == "" {
		return nil
	}
	var list []pendingForm
	if strings.HasPrefix(s, "[") {
		_ = json.Unmarshal([]byte(s), &list)
		return list
	}
	var one pendingForm
	if json.Unmarshal([]byte(s), &one) == nil {
		list = append(list, one)
	}
	return list
}

// withPendingForm is the session's kept forms with p in place of any earlier one for its page,
// without those past their time, the newest maxPendingForms within maxKeptForm bytes; ok is
// false when p alone does not fit.
func withPendingForm(raw any, p pendingForm, now int64) (string, bool) {
	list := []pendingForm{p}
	for _, f := range slices.Backward(pendingFormsOf(raw)) {
		if f.Path != p.Path && f.Until >= now && len(list) < maxPendingForms {
			list = append(list, f)
		}
	}
	for len(list) > 0 {
		b, err := json.Marshal(list)
		if err == nil && len(b) <= maxKeptForm {
			slices.Reverse(list)
			b, _ = json.Marshal(list)
			return string(b), true
		}
		list = list[:len(list)-1]
	}
	return "", false
}

// withoutPendingForm is the session's kept forms without the one for path and those past their time.
func withoutPendingForm(raw any, path string, now int64) string {
	var list []pendingForm
	for _, f := range pendingFormsOf(raw) {
		if f.Path != path && f.Until >= now {
			list = append(list, f)
		}
	}
	if len(list) == 0 {
		return ""
	}
	b, _ := json.Marshal(list)
	return string(b)
}

// setPendingForms sets the session's kept forms, or removes them when there are none.
func setPendingForms(values map[any]any, kept string) {
	if kept == "" {
		delete(values, valPendingForm)
	} else {
		values[valPendingForm] = kept
	}
}

// TakePendingForm returns, once, the values kept through a sign-in for the page of this request.
// Values kept for another page wait for it; values past their time are dropped.
func TakePendingForm(c echo.Context) (url.Values, bool) {
	sess := Session(c)
	if sess == nil {
		return nil, false
	}
	now, path := clockOf(c).Unix(), c.Request().URL.Path
	var p pendingForm
	found := false
	for _, f := range pendingFormsOf(sess.Values[valPendingForm]) {
		if f.Path == path && f.Until >= now {
			p, found = f, true
		}
	}
	if !found {
		return nil, false
	}
	setPendingForms(sess.Values, withoutPendingForm(sess.Values[valPendingForm], path, now))
	// Under the session's lock, so tokens another request renewed meanwhile are not overwritten.
	if st := state(c); st.shell != nil && sess.ID != "" {
		_, _ = st.shell.sessions.UpdateLocked(c.Request().Context(), store.SessionKey(sess.ID), func(values map[any]any) (store.SessionChange, error) {
			setPendingForms(values, withoutPendingForm(values[valPendingForm], path, now))
			return store.SaveSession, nil
		})
	}
	restored := &views.RestoredForm{Why: views.RestoredSignedIn}
	switch {
	case p.Foreign:
		restored.Why = views.RestoredForeign
	case p.TooLarge:
		restored.Why = views.RestoredTooLarge
	case p.Pressed:
		restored.Why = views.RestoredPressed
	case p.Stale:
		restored.Why = views.RestoredStale
	case !p.SignedIn:
		restored = nil // a refusal's values: its page has said why already
	}
	if restored != nil && p.File {
		restored.NotKept = append(restored.NotKept, views.NotKept{What: "the file you had chosen, which the desk does not keep", Again: "choose the file again"})
	}
	state(c).formRestored = restored
	if p.Foreign || p.TooLarge || p.Pressed {
		return nil, false
	}
	return p.Values, true
}

// sayFormNotKept takes, on the page it was for, the mark of a form too large to keep through a
// sign-in, or of a button pressed as the session ended, so that the page says so: pages that put
// a form back take it themselves, others not.
func sayFormNotKept(c echo.Context) {
	sess := Session(c)
	if sess == nil || c.Request().Method != http.MethodGet {
		return
	}
	now, path := clockOf(c).Unix(), c.Request().URL.Path
	for _, f := range pendingFormsOf(sess.Values[valPendingForm]) {
		if (f.TooLarge || f.Pressed) && f.Path == path && f.Until >= now {
			TakePendingForm(c)
			return
		}
	}
}

// NotPutBack says, in the notice above a form put back after a sign-in, that the page did not
// put back what (a field the desk never shows, such as a hardware hash), and how to give it
// again. It does nothing on a page that put no form back.
func NotPutBack(c echo.Context, what, again string) {
	if r := state(c).formRestored; r != nil && r.Why != views.RestoredForeign {
		r.NotKept = append(r.NotKept, views.NotKept{What: what, Again: again})
	}
}

// maxKeptForm bounds the values KeepForm keeps in the session: a thousand ticked devices fit.
const maxKeptForm = 64 << 10

// KeepForm keeps the values of a form that could not be carried out (refused, or Graph had
// trouble) for the page at path, where it was filled in, which puts them back (TakePendingForm)
// when it is next shown within a few minutes. It reports whether it kept them: values beyond
// maxKeptForm are not kept.
func KeepForm(c echo.Context, path string, values url.Values) (bool, error) {
	return keepForm(c, pendingForm{Path: pathOnly(path), Values: formValuesKept(values)})
}

func keepForm(c echo.Context, p pendingForm) (bool, error) {
	sess := Session(c)
	if sess == nil || sess.ID == "" {
		return false, nil
	}
	now := clockOf(c).Unix()
	p.Until = clockOf(c).Add(pendingFormLifetime).Unix()
	kept, ok := withPendingForm(sess.Values[valPendingForm], p, now)
	if !ok {
		return false, nil
	}
	sess.Values[valPendingForm] = kept
	// Under the session's lock, so tokens another request renewed meanwhile are not overwritten.
	var err error
	if st := state(c); st.shell != nil {
		_, err = st.shell.sessions.UpdateLocked(c.Request().Context(), store.SessionKey(sess.ID), func(values map[any]any) (store.SessionChange, error) {
			if kept, ok = withPendingForm(values[valPendingForm], p, now); ok {
				values[valPendingForm] = kept
			}
			return store.SaveSession, nil
		})
	}
	return ok && err == nil, err
}
