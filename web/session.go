package web

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash/fnv"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/sessions"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"
)

// SessionUser is the signed-in person, identified by tenant id + object id (never UPN or sub).
type SessionUser struct {
	TenantID string
	ObjectID string
	Name     string
	UPN      string
	Groups   []string
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
}

func (t SessionTokens) oauth2() *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken, RefreshToken: t.RefreshToken, TokenType: t.TokenType, Expiry: t.Expiry}
}

const (
	valUser   = "user"
	valTokens = "tokens"
	valCSRF   = "csrf"
)

// SessionStore is the gorilla/sessions store the shell needs: one that keeps the session
// server-side, can issue a fresh id at sign-in and records whose session it is.
type SessionStore interface {
	sessions.Store
	Regenerate(r *http.Request, s *sessions.Session) error
	SetUserKey(s *sessions.Session, key string)
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
	for k := range sess.Values {
		delete(sess.Values, k)
	}
	csrf := rand.Text()
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

// SessionIDToken is the raw ID token of the session (for the provider's sign-out hint).
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
		sess, err := s.sessions.Get(c.Request(), SessionCookieName)
		if err != nil {
			return fmt.Errorf("load session: %w", errStateUnavailable(err))
		}
		st := state(c)
		st.session = sess
		if u, ok := sess.Values[valUser].(SessionUser); ok {
			st.user = &u
			st.csrf, _ = sess.Values[valCSRF].(string)
		}
		return next(c)
	}
}

// RequireUser sends anonymous requests to sign in and back to where they were going.
func RequireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if CurrentUser(c) != nil {
			c.Response().Header().Set("Cache-Control", "no-store")
			return next(c)
		}
		r := c.Request()
		if r.Method == http.MethodGet || r.Method == http.MethodHead {
			return c.Redirect(http.StatusSeeOther, "/auth/signin?return_to="+urlQueryEscape(r.URL.RequestURI()))
		}
		return &PageError{
			Status:     http.StatusUnauthorized,
			Title:      "Your session has ended",
			Message:    "You were signed out (your session expired or you signed out in another tab), so nothing was sent to Microsoft Graph.",
			NextStep:   "Sign in again, then repeat what you were doing.",
			ActionURL:  "/auth/signin",
			ActionText: "Sign in",
		}
	}
}

// checkCSRF refuses state-changing requests that do not carry the session's token, and any
// request a browser marks as cross-site.
func (s *Shell) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site == "cross-site" || site == "same-site" {
			return csrfRefused("the request came from another site")
		}
		if origin := r.Header.Get("Origin"); origin != "" && !s.sameOrigin(c, origin) {
			return csrfRefused("the request came from another site")
		}
		want := CSRFToken(c)
		if want == "" {
			// No signed-in session: RequireUser answers with the sign-in path; there is no token to check.
			return next(c)
		}
		got := r.Header.Get("X-CSRF-Token")
		if got == "" {
			got = r.PostFormValue("_csrf")
		}
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
			return csrfRefused("the form's security token is missing or belongs to another session")
		}
		return next(c)
	}
}

func csrfRefused(why string) error {
	return &PageError{
		Status:     http.StatusForbidden,
		Title:      "This request was refused",
		Message:    "The desk refused the request because " + why + ". Nothing was sent to Microsoft Graph.",
		NextStep:   "Reload the page you came from and submit it again. If you opened the desk in several tabs, use the most recent one.",
		ActionURL:  "/",
		ActionText: "Go to the home page",
	}
}

// tokenLocks serialise token renewal per session; striped so the set stays bounded.
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

// renewBefore is how long before expiry an access token is renewed.
const renewBefore = 2 * time.Minute

// TokenSource returns the signed-in user's access token, renewed first when it is about to expire.
func (s *Shell) TokenSource(c echo.Context) (oauth2.TokenSource, error) {
	return s.token(c, false)
}

// RenewToken renews the access token even if it looks valid (after Graph answered 401).
func (s *Shell) RenewToken(c echo.Context) (oauth2.TokenSource, error) {
	return s.token(c, true)
}

func (s *Shell) token(c echo.Context, force bool) (oauth2.TokenSource, error) {
	st := state(c)
	if st.user == nil || st.session == nil {
		return nil, ErrSessionEnded
	}
	tok, _ := st.session.Values[valTokens].(SessionTokens)
	now := s.now()
	if !force && tok.AccessToken != "" && now.Add(renewBefore).Before(tok.Expiry) {
		return oauth2.StaticTokenSource(tok.oauth2()), nil
	}
	lock := s.locks.of(st.session.ID)
	lock.Lock()
	defer lock.Unlock()

	// Another request may have renewed while we waited: read the row again.
	fresh, err := s.sessions.New(c.Request(), SessionCookieName)
	if err != nil {
		return nil, fmt.Errorf("reload session: %w", errStateUnavailable(err))
	}
	if fresh.IsNew {
		return nil, ErrSessionEnded
	}
	latest, _ := fresh.Values[valTokens].(SessionTokens)
	if latest.AccessToken != tok.AccessToken && now.Add(renewBefore).Before(latest.Expiry) {
		st.session.Values[valTokens] = latest
		return oauth2.StaticTokenSource(latest.oauth2()), nil
	}
	if latest.RefreshToken == "" {
		_ = s.EndSession(c)
		return nil, ErrSessionEnded
	}
	renewed, err := s.refresher.Refresh(c.Request().Context(), latest.RefreshToken)
	if err != nil {
		if s.refresher.IsRefreshRejected(err) {
			s.log.Info("token renewal refused; session ended", "user", st.user.Key())
			_ = s.EndSession(c)
			return nil, ErrSessionEnded
		}
		s.log.Warn("token renewal failed", "user", st.user.Key(), "error", err.Error())
		if !force && now.Before(latest.Expiry) {
			return oauth2.StaticTokenSource(latest.oauth2()), nil
		}
		return nil, ErrTokenUnavailable
	}
	next := SessionTokens{
		AccessToken:  renewed.AccessToken,
		RefreshToken: renewed.RefreshToken,
		TokenType:    renewed.TokenType,
		Expiry:       renewed.Expiry,
		IDToken:      latest.IDToken,
	}
	if next.RefreshToken == "" {
		next.RefreshToken = latest.RefreshToken
	}
	if id, ok := renewed.Extra("id_token").(string); ok && id != "" {
		next.IDToken = id
	}
	st.session.Values[valTokens] = next
	if err := st.session.Save(c.Request(), c.Response()); err != nil {
		return nil, fmt.Errorf("save renewed tokens: %w", errStateUnavailable(err))
	}
	return oauth2.StaticTokenSource(next.oauth2()), nil
}
