package web

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/views"
	"autopilotdesk/web/store"
)

// SessionUser is the signed-in person, identified by tenant id + object id (never UPN or sub).
type SessionUser struct {
	TenantID string
	// TenantName is set when the sign-in service has no tenants: TenantID is then derived from
	// its issuer, and TenantName is the issuer's host.
	TenantName string `json:",omitempty"`
	ObjectID   string
	Name       string
	UPN        string
	Groups     []string
}

// Tenant is how the user's tenant is shown.
func (u SessionUser) Tenant() string {
	if u.TenantName != "" {
		return u.TenantName
	}
	return u.TenantID
}

// Key identifies the user across sessions.
func (u SessionUser) Key() string { return u.TenantID + ":" + u.ObjectID }

// SessionTokens are the user's tokens, kept only in the server-side session row.
// oauth2.Token is not stored directly: its extra fields (the ID token among them) are unexported.
type SessionTokens struct {
	AccessToken  string
	RefreshToken string
	IDToken      string
	TokenType    string
	Expiry       time.Time
	// Scope is what the identity provider said the access token grants (its token answer's
	// scope), empty when it did not say.
	Scope string `json:",omitempty"`
}

func (t SessionTokens) oauth2() *oauth2.Token {
	tok := &oauth2.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry}
	if t.Scope != "" {
		// What the token answer granted: Graph's client tells its refusals apart by it.
		tok = tok.WithExtra(map[string]any{"scope": t.Scope})
	}
	return tok
}

const (
	valUser   = "user"
	valTokens = "tokens"
	valCSRF   = "csrf"
)

// SessionStore is the gorilla/sessions store the shell needs: one that keeps the session
// server-side, can issue a fresh id at sign-in, records whose session it is, and changes a
// session under a lock every desk sharing it respects.
type SessionStore interface {
	sessions.Store
	Regenerate(r *http.Request, s *sessions.Session) error
	SetUserKey(s *sessions.Session, key string)
	UpdateLocked(ctx context.Context, key string, update func(values map[any]any) (store.SessionChange, error)) (found bool, err error)
}

// SessionCookieName is the session cookie; the __Host- prefix pins it to this host, path / and HTTPS.
const SessionCookieName = "__Host-autopilotdesk"

// ErrSessionEnded means the identity provider refused to renew the tokens: the user must sign in again.
var ErrSessionEnded = errors.New("web: the sign-in session ended")

// ErrTokenUnavailable means the tokens could not be renewed for a passing reason (network); the session stays.
var ErrTokenUnavailable = errors.New("web: the access token could not be renewed right now")

// StartSession replaces whatever session the browser had with a fresh one for user.
// The id the browser brought is never reused.
func (s *Shell) StartSession(c echo.Context, user SessionUser, tokens SessionTokens) error {
	st := state(c)
	sess := st.session
	if err := s.sessions.Regenerate(c.Request(), sess); err != nil {
		return err
	}
	// Signed in again as the same person (another tab's sign-in): what an earlier sign-in of this
	// browser kept for its page stays, and so does which answers signed it in.
	carried := map[any]any{}
	if st.user != nil && st.user.Key() == user.Key() {
		for _, k := range []string{valPendingForm, valSignedInBy} {
			if v, ok := sess.Values[k]; ok {
				carried[k] = v
			}
		}
	}
	for k := range sess.Values {
		delete(sess.Values, k)
	}
	for k, v := range carried {
		sess.Values[k] = v
	}
	csrf := newCSRFToken(user.Key())
	sess.Values[valUser] = user
	sess.Values[valTokens] = tokens
	sess.Values[valCSRF] = csrf
	s.sessions.SetUserKey(sess, user.Key())
	if err := sess.Save(c.Request(), c.Response()); err != nil {
		return err
	}
	st.user, st.csrf = &user, csrf
	return nil
}

const valSignedInBy = "signed-in-by"

// RememberSignIn records in the session that the answer with state signed it in, to go on to
// returnTo: the same answer again (the callback's address reloaded or opened from the history)
// then continues there (SignedInBy) instead of failing. Only a hash of state is kept.
func RememberSignIn(c echo.Context, state, returnTo string) error {
	sess := Session(c)
	if sess == nil || state == "" {
		return nil
	}
	marks := []string{signInMark(state) + " " + returnTo}
	if before, ok := sess.Values[valSignedInBy].(string); ok {
		marks = append(strings.Split(before, "\n"), marks...)
	}
	sess.Values[valSignedInBy] = strings.Join(marks[max(0, len(marks)-maxSignInMarks):], "\n")
	return sess.Save(c.Request(), c.Response())
}

// maxSignInMarks is how many of the answers that signed a browser in it remembers: one for each
// sign-in it may be in the middle of at once.
const maxSignInMarks = 4

// SignedInBy reports whether the session was signed in by the answer with state, and where that
// sign-in went on to.
func SignedInBy(c echo.Context, state string) (returnTo string, ok bool) {
	sess := Session(c)
	if CurrentUser(c) == nil || sess == nil || state == "" {
		return "", false
	}
	marks, _ := sess.Values[valSignedInBy].(string)
	want := signInMark(state)
	for _, mark := range strings.Split(marks, "\n") {
		if hash, returnTo, found := strings.Cut(mark, " "); found && subtle.ConstantTimeCompare([]byte(hash), []byte(want)) == 1 {
			return SafeReturnTo(returnTo), true
		}
	}
	return "", false
}

// signedInAgainCookie marks, for the next page only, that the browser opened again a sign-in
// answer that had signed it in already (Back into the callback, or its address opened twice).
const signedInAgainCookie = "__Host-autopilotdesk-signed-in-again"

// SayAlreadySignedIn makes the next page this browser is shown say that it is signed in already
// and that the answer it opened again did nothing.
func SayAlreadySignedIn(c echo.Context) {
	c.SetCookie(&http.Cookie{Name: signedInAgainCookie, Value: "1", Path: "/", MaxAge: 60, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// takeSignedInAgain reports, once, whether the page of this request is the one SayAlreadySignedIn
// asked to speak.
func takeSignedInAgain(c echo.Context) bool {
	if _, err := c.Cookie(signedInAgainCookie); err != nil {
		return false
	}
	c.SetCookie(&http.Cookie{Name: signedInAgainCookie, Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return CurrentUser(c) != nil
}

func signInMark(state string) string {
	sum := sha256.Sum256([]byte("autopilotdesk sign-in answer\x00" + state))
	return hex.EncodeToString(sum[:16])
}

// EndSession deletes the server-side session and expires the cookie.
func (s *Shell) EndSession(c echo.Context) error {
	st := state(c)
	sess := st.session
	if sess == nil {
		return nil
	}
	sess.Options.MaxAge = -1
	st.user, st.csrf = nil, ""
	return sess.Save(c.Request(), c.Response())
}

// SessionIDToken is the raw ID token of the session, kept server-side (its login_hint claim
// names the account at sign-out).
func SessionIDToken(c echo.Context) string {
	if sess := Session(c); sess != nil {
		if t, ok := sess.Values[valTokens].(SessionTokens); ok {
			return t.IDToken
		}
	}
	return ""
}

// loadSession reads the server-side session; bad, unknown or expired cookies yield an empty one.
func (s *Shell) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		// Loaded once, here, for the whole request: straight from the store, without the
		// per-request registry gorilla/sessions keeps (a copy of the request for each).
		sess, err := s.sessions.New(c.Request(), SessionCookieName)
		if err != nil {
			return fmt.Errorf("load session: %w", errStateUnavailable(err))
		}
		st := state(c)
		st.shell, st.session = s, sess
		if u, ok := sess.Values[valUser].(SessionUser); ok {
			st.user = &u
			st.csrf, _ = sess.Values[valCSRF].(string)
		}
		return next(c)
	}
}

// RequireUser answers requests without a signed-in session with ErrSessionEnded, which the
// error handler turns into a sign-in that returns the person where they were (sessionend.go).
func RequireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header()["Cache-Control"] = headerNoStore
		if CurrentUser(c) == nil {
			return ErrSessionEnded
		}
		sayFormNotKept(c)
		return next(c)
	}
}

// checkCSRF refuses state-changing requests that come from another origin (net/http's
// CrossOriginProtection: Sec-Fetch-Site, else Origin against Host, the public URL trusted) or
// that do not carry the session's token. The form is read first, so a malformed one is
// answered with what is wrong rather than as a missing token.
func (s *Shell) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if err := s.crossOrigin.Check(r); err != nil {
			return csrfRefused("the request came from another site")
		}
		if _, large := s.formLimits[c.Path()]; large && CSRFToken(c) == "" && r.Body != nil && r.Body != http.NoBody {
			// A form with a large limit of its own is for a signed-in person's page: without a
			// session it is read only as far as a form is kept through a sign-in, so nobody
			// signed out makes the desk hold megabytes.
			r.Body = http.MaxBytesReader(c.Response(), r.Body, maxKeptForm+s.formLimit)
		}
		if err := readForm(r, state(c).tooLarge); err != nil {
			return err
		}
		want := CSRFToken(c)
		if want == "" {
			// No signed-in session: RequireUser answers with the sign-in path; there is no token to check.
			return next(c)
		}
		got := sentToken(r)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			if r.Header.Get("X-CSRF-Token") == "" && got != "" && s.fromOwnPage(c) {
				return s.staleForm(c, got)
			}
			return csrfRefused("the form's security token is missing or belongs to another session")
		}
		return next(c)
	}
}

func csrfRefused(why string) error {
	return &views.ErrorPage{
		Status:     http.StatusForbidden,
		Title:      "This request was refused",
		Message:    "The desk refused the request because " + why + ". Nothing was sent to Microsoft Graph.",
		NextStep:   "Reload the page you came from and submit it again. If you opened the desk in several tabs, use the most recent one.",
		ActionURL:  "/",
		ActionText: "Go to the home page",
	}
}

// tokenLocks serialise token renewal per session within this process, so at most one request
// per session and desk waits for the database's lock; striped so the set stays bounded.
type tokenLocks [64]sync.Mutex

func (l *tokenLocks) of(sessionKey string) *sync.Mutex {
	h := fnv.New32a()
	h.Write([]byte(sessionKey))
	return &l[h.Sum32()%uint32(len(l))]
}

// Refresher renews tokens at the identity provider.
type Refresher interface {
	Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error)
	IsRefreshRejected(err error) bool
}

const (
	// renewBefore is how long before expiry an access token is renewed.
	renewBefore = 2 * time.Minute
	// renewalTimeout bounds a renewal, the wait for another desk's renewal included.
	renewalTimeout = 30 * time.Second
)

// usable reports whether the access token can be sent as it is.
func (t SessionTokens) usable(now time.Time) bool {
	return t.AccessToken != "" && now.Add(renewBefore).Before(t.Expiry)
}

// TokenSource returns the signed-in user's access token, renewed first when it is about to expire.
func (s *Shell) TokenSource(c echo.Context) (oauth2.TokenSource, error) {
	return s.requestToken(c, false)
}

// RenewToken renews the access token even if it looks valid (after Graph answered 401).
func (s *Shell) RenewToken(c echo.Context) (oauth2.TokenSource, error) {
	return s.requestToken(c, true)
}

// requestToken is TokenFor for the request's own session: the token the session was loaded with
// while it is good, else a renewal, which the rest of the request then uses.
func (s *Shell) requestToken(c echo.Context, force bool) (oauth2.TokenSource, error) {
	st := state(c)
	if st.user == nil || st.session == nil || st.session.ID == "" {
		return nil, ErrSessionEnded
	}
	tok, _ := st.session.Values[valTokens].(SessionTokens)
	if !force && tok.usable(s.now()) {
		return oauth2.StaticTokenSource(tok.oauth2()), nil
	}
	next, err := s.renew(c.Request().Context(), store.SessionKey(st.session.ID), tok.AccessToken, force)
	if errors.Is(err, ErrSessionEnded) {
		_ = s.EndSession(c) // the row is gone already; this expires the cookie
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	st.session.Values[valTokens] = next // a later save in this request keeps the renewed tokens
	return oauth2.StaticTokenSource(next.oauth2()), nil
}

// TokenFor returns a valid access token of the session stored under sessionKey
// (store.SessionKey of its id), renewed at the identity provider when it expires within two
// minutes. refused, when not empty, is an access token Microsoft Graph answered 401 to: unless
// the session already holds another one, it is renewed however valid it looks.
//
// Renewal happens here and nowhere else, and it is serialised across every desk that shares the
// state database: the session's lock (store.SessionStore.UpdateLocked, on PostgreSQL an advisory
// lock held only for the renewal) is taken before the tokens are read, and the renewed ones are
// written before it is released. A refresh token is therefore redeemed once even when requests
// of one session reach several replicas at the same moment, as providers that rotate refresh
// tokens demand (they refuse a second redemption, which would sign the person out); a caller
// that waited finds the renewed token and uses it.
//
// TokenFor needs no request: work outside any request (an import worker acting for a job's
// owner) calls it with its own context and the key of one of the person's live sessions
// (store.SessionStore.LiveSessionsOfUser). When the provider refuses to renew, the session is
// deleted and ErrSessionEnded returned; when it cannot be reached, ErrTokenUnavailable (or the
// current token, while it is still valid and nothing was refused).
func (s *Shell) TokenFor(ctx context.Context, sessionKey, refused string) (oauth2.TokenSource, error) {
	tok, err := s.renew(ctx, sessionKey, refused, refused != "")
	if err != nil {
		return nil, err
	}
	return oauth2.StaticTokenSource(tok.oauth2()), nil
}

// errRenewalRefused ends a session from inside its lock.
var errRenewalRefused = errors.New("web: the identity provider refused to renew the tokens")

// renew returns the session's current tokens, renewing them under the session's lock unless
// another request or desk already did: seen is the access token the caller had; force renews
// it even when it looks valid.
func (s *Shell) renew(ctx context.Context, sessionKey, seen string, force bool) (SessionTokens, error) {
	lock := s.locks.of(sessionKey)
	lock.Lock()
	defer lock.Unlock()
	ctx, cancel := context.WithTimeout(ctx, renewalTimeout)
	defer cancel()
	var result SessionTokens
	var user string
	found, err := s.sessions.UpdateLocked(ctx, sessionKey, func(values map[any]any) (store.SessionChange, error) {
		latest, _ := values[valTokens].(SessionTokens)
		if u, ok := values[valUser].(SessionUser); ok {
			user = u.Key()
		}
		now := s.now()
		if latest.usable(now) && (latest.AccessToken != seen || !force) {
			result = latest // renewed meanwhile, or still good
			return store.KeepSession, nil
		}
		if latest.RefreshToken == "" {
			return store.DeleteSession, nil
		}
		renewed, err := s.refresher.Refresh(ctx, latest.RefreshToken)
		if err != nil {
			if s.refresher.IsRefreshRejected(err) {
				s.log.Info("token renewal refused; session ended", "user", user)
				return store.DeleteSession, nil
			}
			s.log.Warn("token renewal failed", "user", user, "error", err.Error())
			if !force && now.Before(latest.Expiry) {
				result = latest
				return store.KeepSession, nil
			}
			return store.KeepSession, ErrTokenUnavailable
		}
		next := SessionTokens{AccessToken: renewed.AccessToken, RefreshToken: renewed.RefreshToken,
			TokenType: renewed.TokenType, Expiry: renewed.Expiry, IDToken: latest.IDToken}
		if next.RefreshToken == "" {
			next.RefreshToken = latest.RefreshToken
		}
		if id, ok := renewed.Extra("id_token").(string); ok && id != "" {
			next.IDToken = id
		}
		next.Scope = latest.Scope
		if scope, ok := renewed.Extra("scope").(string); ok && scope != "" {
			next.Scope = scope
		}
		values[valTokens] = next
		result = next
		return store.SaveSession, nil
	})
	switch {
	case errors.Is(err, ErrTokenUnavailable):
		return SessionTokens{}, err
	case err != nil:
		return SessionTokens{}, fmt.Errorf("renew tokens: %w", errStateUnavailable(err))
	case !found || result.AccessToken == "":
		return SessionTokens{}, ErrSessionEnded
	}
	return result, nil
}
