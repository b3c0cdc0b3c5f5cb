package handlers

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/identity"
	"autopilotdesk/web/store"
)

// Provider is the identity provider as sign-in uses it.
type Provider interface {
	NewFlow(returnTo string) identity.Flow
	AuthCodeURL(f identity.Flow) string
	Finish(ctx context.Context, f identity.Flow, callback url.Values) (*identity.Result, error)
	EndSessionURL(postLogoutRedirectURI, logoutHint string) (string, bool)
}

// FlowStore keeps sign-in flows between the redirect to the provider and the callback.
type FlowStore interface {
	PutFlow(ctx context.Context, f store.FlowRecord) error
	TakeFlow(ctx context.Context, id, state string, maxAge time.Duration) (store.FlowRecord, error)
	FlowPending(ctx context.Context, state string) (bool, error)
}

// SessionControl starts and ends server-side sessions.
type SessionControl interface {
	StartSession(c echo.Context, user web.SessionUser, tokens web.SessionTokens) error
	EndSession(c echo.Context) error
}

// GroupChecker asks Microsoft Graph which of some groups the signed-in user belongs to.
type GroupChecker interface {
	CheckMemberGroups(ctx context.Context, ts oauth2.TokenSource, groupIDs []string) ([]string, *graphclient.Exchange, error)
}

// Auth runs sign-in and sign-out.
type Auth struct {
	Provider      Provider
	Flows         FlowStore
	Sessions      SessionControl
	PublicURL     string   // e.g. https://desk.contoso.com (no trailing slash)
	AllowedGroups []string // when set, only members may use the desk
	Groups        GroupChecker
	Demo          bool
	Settings      SettingNames // as the words for whoever runs the desk name them
	Logger        *slog.Logger
	Observe       func(success bool, reason string) // optional: sign-in metrics
	// SendToPublicURL sends a sign-in started at another address to PublicURL first; off when
	// the public URL is only a guess (demo mode listening on every address).
	SendToPublicURL bool

	origins originGuard
}

// SettingNames are the names, as the desk's configuration spells them, of the settings that a
// failed sign-in may ask whoever runs the desk to check.
type SettingNames struct{ TenantID, ClientID, ClientSecret, ClientCertificate, PublicURL string }

func (h *Auth) observe(success bool, reason string) {
	if h.Observe != nil {
		h.Observe(success, reason)
	}
}

const (
	flowCookie = "__Host-autopilotdesk-flow"
	flowMaxAge = 10 * time.Minute
)

// SignInPage explains how sign-in works and offers the button.
func (h *Auth) SignInPage(c echo.Context) error {
	returnTo := web.SafeReturnTo(c.QueryParam("return_to"))
	if web.CurrentUser(c) != nil {
		return c.Redirect(http.StatusSeeOther, returnTo)
	}
	if there := h.elsewhere(c); there != "" {
		return c.Redirect(http.StatusSeeOther, there)
	}
	return web.Render(c, http.StatusOK, views.SignInPage(web.PageFor(c, "Sign in", ""), views.SignIn{ReturnTo: returnTo, Demo: h.Demo}))
}

// Login starts the authorization-code flow.
// fresh=1 asks for a new authentication (Conditional Access wanting stronger or newer sign-in).
func (h *Auth) Login(c echo.Context) error {
	if there := h.elsewhere(c); there != "" {
		c.Response().Header().Set("Cache-Control", "no-store")
		return c.Redirect(http.StatusSeeOther, there)
	}
	prompt := ""
	switch {
	case c.QueryParam("fresh") == "1":
		prompt = promptFresh
	case c.QueryParam("account") == "select":
		prompt = promptSelectAccount
	}
	return h.begin(c, web.SafeReturnTo(c.QueryParam("return_to")), nil, prompt)
}

// How a sign-in started from a page asks the provider to proceed (identity.Flow).
const (
	promptFresh         = "fresh"          // authenticate again (prompt=login)
	promptSelectAccount = "select-account" // let the person choose another account (prompt=select_account)
)

// loginURL starts a sign-in that returns to returnTo, asking the provider as prompt says.
func loginURL(returnTo, prompt string) string {
	q := url.Values{}
	if r := web.SafeReturnTo(returnTo); r != "/" {
		q.Set("return_to", r)
	}
	switch prompt {
	case promptFresh:
		q.Set("fresh", "1")
	case promptSelectAccount:
		q.Set("account", "select")
	}
	if len(q) == 0 {
		return "/auth/login"
	}
	return "/auth/login?" + q.Encode()
}

// Begin records a single-use flow bound to this browser and redirects to the provider.
func (h *Auth) Begin(c echo.Context, returnTo string, pending []byte) error {
	return h.begin(c, returnTo, pending, "")
}

func (h *Auth) begin(c echo.Context, returnTo string, pending []byte, prompt string) error {
	flow := h.Provider.NewFlow(web.SafeReturnTo(returnTo))
	flow.Fresh, flow.SelectAccount = prompt == promptFresh, prompt == promptSelectAccount
	id := rand.Text()
	rec := store.FlowRecord{ID: id, State: flow.State, Nonce: flow.Nonce, Verifier: flow.Verifier,
		ReturnTo: flow.ReturnTo, CreatedAt: flow.CreatedAt, Data: pending}
	if err := h.Flows.PutFlow(c.Request().Context(), rec); err != nil {
		return fmt.Errorf("store sign-in flow: %w", err)
	}
	setFlowCookie(c, append(flowIDs(c), id))
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, h.Provider.AuthCodeURL(flow))
}

// Callback finishes sign-in: the flow is taken (single use), the provider's answer checked, and a
// fresh session started.
func (h *Auth) Callback(c echo.Context) error {
	defer web.AwaitingUpstream(c)() // the code's redemption, and Graph when the groups are too many
	c.Response().Header().Set("Cache-Control", "no-store")
	state := c.QueryParam("state")
	ids := flowIDs(c)
	if len(ids) == 0 {
		if returnTo, ok := web.SignedInBy(c, state); ok {
			web.SayAlreadySignedIn(c)
			return c.Redirect(http.StatusSeeOther, returnTo) // this answer signed the browser in already
		}
		if state != "" {
			if pending, err := h.Flows.FlowPending(c.Request().Context(), state); err == nil && pending {
				return h.startedElsewhere()
			}
		}
		return restartSignIn(c, "This sign-in did not start in this browser, or it was already completed.", "/")
	}
	rec, found, other, err := h.takeFlow(c, ids, state)
	if err != nil {
		return err
	}
	if !found {
		if returnTo, ok := web.SignedInBy(c, state); ok {
			web.SayAlreadySignedIn(c)
			return c.Redirect(http.StatusSeeOther, returnTo)
		}
		if other {
			// A forged answer, or an address someone else made: the sign-ins this browser is in
			// the middle of keep their cookie and can still finish.
			return restartSignIn(c, "This answer belongs to none of the sign-ins this browser is in the middle of (a link from elsewhere, or an old one).", "/")
		}
		return restartSignIn(c, "This sign-in link has expired or was already used.", "/")
	}
	flow := identity.Flow{State: rec.State, Nonce: rec.Nonce, Verifier: rec.Verifier, ReturnTo: rec.ReturnTo, CreatedAt: rec.CreatedAt}
	res, err := h.Provider.Finish(c.Request().Context(), flow, c.QueryParams())
	if err != nil {
		h.observe(false, failureReason(err))
		return h.signInFailed(err, rec.ReturnTo)
	}
	groups := res.User.Groups
	if len(h.AllowedGroups) > 0 && res.User.GroupsOverage {
		// Too many groups for the ID token to list: Graph says which allowed ones apply.
		groups, err = h.allowedGroupsOf(c, res)
		if err != nil {
			return err
		}
	}
	if len(h.AllowedGroups) > 0 && !memberOfAny(groups, h.AllowedGroups) {
		h.Logger.Info("sign-in refused: not in an allowed group", "tid", res.User.TenantID, "oid", res.User.ObjectID)
		h.observe(false, "not-in-allowed-group")
		return &views.ErrorPage{Status: http.StatusForbidden, Title: "You are not allowed to use this desk",
			Message:   "You signed in successfully, but this desk is limited to members of specific groups and your account is not in one of them.",
			NextStep:  "Ask whoever runs the desk to add you to one of its allowed groups, then sign in again, or sign in with another account that is in one.",
			ActionURL: loginURL(rec.ReturnTo, promptSelectAccount), ActionText: "Sign in with another account"}
	}
	user := web.SessionUser{TenantID: res.User.TenantID, TenantName: res.User.TenantName, ObjectID: res.User.ObjectID, Name: res.User.Name, UPN: res.User.UPN, Groups: groups}
	tok := web.SessionTokens{AccessToken: res.Token.AccessToken, RefreshToken: res.Token.RefreshToken,
		TokenType: res.Token.TokenType, Expiry: res.Token.Expiry, IDToken: res.IDToken}
	if scope, ok := res.Token.Extra("scope").(string); ok {
		tok.Scope = scope
	}
	if err := h.Sessions.StartSession(c, user, tok); err != nil {
		return fmt.Errorf("start session: %w", err)
	}
	if err := web.RestorePendingForm(c, rec.Data); err != nil {
		h.Logger.Warn("keep the form typed before sign-in", "error", err.Error())
	}
	if err := web.RememberSignIn(c, state, web.SafeReturnTo(rec.ReturnTo)); err != nil {
		h.Logger.Warn("remember the finished sign-in", "error", err.Error())
	}
	h.Logger.Info("signed in", "tid", user.TenantID, "oid", user.ObjectID)
	h.observe(true, "")
	return c.Redirect(http.StatusSeeOther, web.SafeReturnTo(rec.ReturnTo))
}

// maxFlowsPerBrowser bounds the sign-ins one browser may be in the middle of at once (tabs
// whose forms each started one); the oldest is forgotten first.
const maxFlowsPerBrowser = 4

// flowIDs are the ids of the sign-ins this browser is in the middle of, oldest first, as its
// cookie names them; anything else in the cookie is ignored.
func flowIDs(c echo.Context) []string {
	ck, err := c.Cookie(flowCookie)
	if err != nil || len(ck.Value) > 4*maxFlowsPerBrowser*27 {
		return nil
	}
	var ids []string
	for _, id := range strings.Split(ck.Value, ".") {
		if len(id) == 26 && strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567") == "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids[max(0, len(ids)-maxFlowsPerBrowser):]
}

// setFlowCookie names the sign-ins this browser is in the middle of (the newest
// maxFlowsPerBrowser), or deletes the cookie when there are none.
func setFlowCookie(c echo.Context, ids []string) {
	ck := &http.Cookie{Name: flowCookie, Path: "/", MaxAge: int(flowMaxAge / time.Second), Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode}
	if len(ids) == 0 {
		ck.MaxAge = -1
	} else {
		ck.Value = strings.Join(ids[max(0, len(ids)-maxFlowsPerBrowser):], ".")
	}
	c.SetCookie(ck)
}

// takeFlow takes the flow among ids whose state the answer carries. Flows already finished or
// expired leave the cookie; the others stay in it, to finish with their own answers. other
// reports that a flow of this browser waits for another answer.
func (h *Auth) takeFlow(c echo.Context, ids []string, state string) (rec store.FlowRecord, found, other bool, err error) {
	var left []string
	for i := len(ids) - 1; i >= 0; i-- {
		if found {
			left = append(left, ids[i])
			continue
		}
		r, err := h.Flows.TakeFlow(c.Request().Context(), ids[i], state, flowMaxAge)
		switch {
		case err == nil:
			rec, found = r, true
		case errors.Is(err, store.ErrOtherFlow):
			other = true
			left = append(left, ids[i])
		case !errors.Is(err, store.ErrNotFound):
			return rec, false, false, fmt.Errorf("take sign-in flow: %w", err)
		}
	}
	slices.Reverse(left)
	if len(left) != len(ids) {
		setFlowCookie(c, left)
	}
	return rec, found, other, nil
}

// allowedGroupsOf asks Graph which allowed groups a user in too many groups to list belongs to.
// When Graph cannot answer, the sign-in stops with what Graph said and what to do about it.
func (h *Auth) allowedGroupsOf(c echo.Context, res *identity.Result) ([]string, error) {
	groups, ex, err := h.Groups.CheckMemberGroups(c.Request().Context(), oauth2.StaticTokenSource(res.Token), h.AllowedGroups)
	if err == nil {
		return groups, nil
	}
	h.Logger.Warn("sign-in: group membership check failed", "tid", res.User.TenantID, "oid", res.User.ObjectID, "error", err.Error())
	h.observe(false, "group-check-failed")
	e := explain.Err(err)
	next := "Try signing in again in a minute. If it keeps failing, give whoever runs the desk the details below."
	if ge, ok := graphclient.AsError(err); ok && ge.StatusCode == http.StatusForbidden {
		next = "The desk needs the delegated Microsoft Graph permission User.Read to check group membership: " +
			"ask whoever runs the desk to grant it (and admin consent, if your organisation requires it), then sign in again."
	}
	return nil, &views.ErrorPage{Status: http.StatusBadGateway, Title: "Your group membership could not be checked",
		Message: "You are in more groups than a sign-in token can list, so the desk asked Microsoft Graph whether you are in one of its allowed groups, " +
			"and Graph did not answer: " + e.Title + ".",
		NextStep: next, Internal: err, Support: graphclient.SupportFor(ex, err)}
}

func memberOfAny(have, allowed []string) bool {
	for _, g := range have {
		// An object id is a GUID, the same id in any case; another provider's names are compared as written.
		if slices.ContainsFunc(allowed, func(a string) bool { return a == g || guid.Valid(a) && strings.EqualFold(a, g) }) {
			return true
		}
	}
	return false
}

// failureReason is a short, bounded label for metrics.
func failureReason(err error) string {
	var ce *identity.CallbackError
	switch {
	case errors.As(err, &ce):
		if ce.AADSTS != "" {
			return ce.AADSTS
		}
		return "provider-error"
	case errors.Is(err, identity.ErrPersonalAccount):
		return "personal-account"
	case errors.Is(err, identity.ErrWrongTenant):
		return "wrong-tenant"
	case errors.Is(err, identity.ErrNoTenantClaim):
		return "no-tenant-claim"
	case errors.Is(err, identity.ErrStateMismatch):
		return "state-mismatch"
	case errors.Is(err, identity.ErrNonceMismatch):
		return "nonce-mismatch"
	case errors.Is(err, identity.ErrFlowExpired):
		return "flow-expired"
	}
	return "verification-failed"
}

func restartSignIn(c echo.Context, why, returnTo string) error {
	if c != nil {
		if u := web.CurrentUser(c); u != nil {
			// Another answer signed this browser in: that sign-in still holds.
			return &views.ErrorPage{Status: http.StatusBadRequest, Title: "You are already signed in",
				Message:  why + " For your safety the desk does not use it. You are still signed in as " + u.Name + " (" + u.UPN + "), and nothing changed.",
				NextStep: "Carry on with the desk. To sign in with another account, sign out first.", ActionURL: "/", ActionText: "Go to the desk"}
		}
	}
	return &views.ErrorPage{Status: http.StatusBadRequest, Title: "Sign-in could not be completed",
		Message:  why + " For your safety the desk does not reuse sign-in answers.",
		NextStep: "Start the sign-in again from this browser.", ActionURL: loginURL(returnTo, ""), ActionText: "Sign in again"}
}

// signInFailed turns every way sign-in can fail into a page that says why and what to do. A
// refusal the desk's own configuration causes is one ERROR line naming the setting to fix; every
// other failure is one INFO line.
func (h *Auth) signInFailed(err error, returnTo string) error {
	var ce *identity.CallbackError
	var skew *identity.ClockSkewError
	if errors.As(err, &ce) {
		if fix := h.settingToFix(ce); fix != "" {
			h.Logger.Error("sign-in refused because of the desk's own configuration: "+fix, "reason", err.Error())
		} else {
			h.Logger.Info("sign-in failed", "reason", err.Error())
		}
	} else if !errors.As(err, &skew) {
		h.Logger.Info("sign-in failed", "reason", err.Error())
	}
	switch {
	case errors.As(err, &ce):
		title, what, next := h.explainRefusal(ce)
		status, prompt := http.StatusForbidden, ""
		switch {
		case passingRefusal(ce):
			status = http.StatusServiceUnavailable
		case ce.Code == "interaction_required" || ce.AADSTS == "AADSTS50076" || ce.AADSTS == "AADSTS50079":
			prompt = promptFresh
		case ce.AADSTS == "AADSTS90072" || ce.AADSTS == "AADSTS50020" || ce.AADSTS == "AADSTS50058":
			prompt = promptSelectAccount
		}
		return &views.ErrorPage{Status: status, Title: title, Message: what + entraIDs(ce), NextStep: next,
			ActionURL: loginURL(returnTo, prompt), ActionText: "Try signing in again"}
	case errors.Is(err, identity.ErrPersonalAccount):
		return &views.ErrorPage{Status: http.StatusForbidden, Title: "Personal Microsoft accounts can't use the desk",
			Message:   "You signed in with a personal Microsoft account (such as outlook.com or hotmail.com). Microsoft Graph's Intune APIs accept only work or school accounts, so the desk cannot act for this account.",
			NextStep:  "Sign in again with your work account (the one you use for the Intune admin center).",
			ActionURL: loginURL(returnTo, promptSelectAccount), ActionText: "Sign in with a work account"}
	case errors.Is(err, identity.ErrWrongTenant):
		return &views.ErrorPage{Status: http.StatusForbidden, Title: "This account belongs to another organisation",
			Message:   "The account you signed in with is not from the Microsoft Entra tenant this desk serves.",
			NextStep:  "Sign in with an account of this organisation. Guests and other tenants' accounts are not accepted.",
			ActionURL: loginURL(returnTo, promptSelectAccount), ActionText: "Sign in with another account"}
	case errors.Is(err, identity.ErrNoTenantClaim):
		return &views.ErrorPage{Status: http.StatusForbidden, Title: "The sign-in service did not say which organisation you belong to",
			Message: "The desk is set up for one Microsoft Entra tenant, so it accepts only sign-ins that name that tenant (the tid claim). " +
				"The sign-in service answered without it, so you are not signed in.",
			NextStep: "Tell whoever runs the desk: with Microsoft Entra ID this points to a misconfigured issuer; with another OpenID Connect " +
				"provider, leave " + h.Settings.TenantID + " empty and the desk keys the organisation by the provider's issuer."}
	case errors.As(err, &skew):
		h.Logger.Error("this server's clock is off, so sign-in is refused: set its time (NTP)", "apart", skew.Apart().String(),
			"issued", skew.Issued.UTC().Format(time.RFC3339), "now", skew.Now.UTC().Format(time.RFC3339))
		return &views.ErrorPage{Status: http.StatusServiceUnavailable, Title: "The desk's clock is off, so sign-in was refused",
			Message: "The sign-in service issued its answer at " + views.When(skew.Issued) + ", and this server's clock says " + views.When(skew.Now) +
				": " + apartText(skew.Apart()) + " apart. The desk takes an answer only within the minutes it is valid, so you are not signed in.",
			NextStep: "Tell whoever runs the desk to set this server's time (with NTP, or the host's time sync for a container), then sign in again."}
	case errors.Is(err, identity.ErrStateMismatch):
		return restartSignIn(nil, "The answer from the sign-in page does not belong to the sign-in this browser started.", returnTo)
	case errors.Is(err, identity.ErrFlowExpired):
		return restartSignIn(nil, "The sign-in took longer than 10 minutes.", returnTo)
	}
	return &views.ErrorPage{Status: http.StatusBadRequest, Title: "Sign-in could not be verified",
		Message:   "The desk could not verify the answer from the sign-in service, so you are not signed in.",
		NextStep:  "Start the sign-in again. If it keeps failing, tell whoever runs the desk (the server log has the reason).",
		ActionURL: loginURL(returnTo, ""), ActionText: "Sign in again", Internal: err}
}

// SignOut deletes the server-side session, then lets the provider end its own session. A
// session that already ended has nothing left to end here.
func (h *Auth) SignOut(c echo.Context) error {
	if web.CurrentUser(c) == nil {
		return c.Redirect(http.StatusSeeOther, "/auth/signed-out")
	}
	hint := identity.LogoutHint(web.SessionIDToken(c))
	if err := h.Sessions.EndSession(c); err != nil {
		return fmt.Errorf("end session: %w", err)
	}
	if u, ok := h.Provider.EndSessionURL(h.PublicURL+"/auth/signed-out", hint); ok {
		return c.Redirect(http.StatusSeeOther, u)
	}
	return c.Redirect(http.StatusSeeOther, "/auth/signed-out")
}

// SignedOut confirms the sign-out, or says that this browser is still signed in when it is (the
// page opened again from the history or a bookmark). Never kept by the browser: Back must ask again.
func (h *Auth) SignedOut(c echo.Context) error {
	c.Response().Header().Set("Cache-Control", "no-store")
	title := "Signed out"
	if web.CurrentUser(c) != nil {
		title = "Still signed in"
	}
	return web.Render(c, http.StatusOK, views.SignedOutPage(web.PageFor(c, title, "")))
}

// explainRefusal says, for an Intune administrator, why the provider refused the sign-in and
// what to do next.
func (h *Auth) explainRefusal(e *identity.CallbackError) (title, what, next string) {
	switch e.AADSTS {
	case "AADSTS65001":
		return "An administrator must consent to the desk first",
			"Your organisation has not granted the desk the Microsoft Graph permission DeviceManagementServiceConfig.ReadWrite.All, so Microsoft Entra refused the sign-in.",
			"Ask a Global Administrator, Privileged Role Administrator or Cloud Application Administrator to open the Microsoft Entra admin center › App registrations › Autopilot Desk › API permissions and select “Grant admin consent”. Then sign in again."
	case "AADSTS50105":
		return "Your account is not assigned to the desk",
			"The desk's enterprise application only admits assigned users, and neither your account nor a group you are in is assigned to it.",
			"Ask an administrator to add you under Microsoft Entra admin center › Enterprise applications › Autopilot Desk › Users and groups. Then sign in again."
	case "AADSTS50020":
		return "This account is not in the desk's organisation",
			"You signed in with a personal Microsoft account or a guest account from another organisation, which this desk does not accept.",
			"Sign in with your work account in this organisation."
	case "AADSTS700016":
		return "The desk's app registration was not found",
			"Microsoft Entra does not know the desk's client id in this tenant (AADSTS700016).",
			"Tell whoever runs the desk: check that " + h.Settings.ClientID + " and " + h.Settings.TenantID + " match the app registration."
	case "AADSTS90002":
		return "The desk's tenant was not found",
			"Microsoft Entra does not know the tenant the desk signs in to (AADSTS90002).",
			"Tell whoever runs the desk: check that " + h.Settings.TenantID + " is your tenant id (a GUID, under Microsoft Entra admin center › Overview)."
	case "AADSTS7000215", "AADSTS7000222", "AADSTS7000218":
		return "The desk's client secret is wrong or expired",
			"Microsoft Entra refused the desk's own credentials (" + e.AADSTS + "), so nobody can sign in until they are corrected.",
			"Tell whoever runs the desk: create a new client secret under App registrations › Autopilot Desk › Certificates & secrets and update " + h.Settings.ClientSecret + "."
	case "AADSTS700023", "AADSTS700024", "AADSTS700027":
		return "The desk's client certificate was refused",
			"Microsoft Entra refused the certificate the desk proves itself with (" + e.AADSTS + "), so nobody can sign in until it is corrected.",
			"Tell whoever runs the desk: upload the certificate in " + h.Settings.ClientCertificate + " under App registrations › Autopilot Desk › Certificates & secrets, " +
				"and check that this server's clock is right."
	case "AADSTS50011":
		return "The desk's sign-in address is not registered",
			"The redirect URI the desk sent is not one of the app registration's redirect URIs (AADSTS50011).",
			"Tell whoever runs the desk: add " + h.PublicURL + "/auth/callback under App registrations › Autopilot Desk › Authentication › Web redirect URIs, " +
				"or correct " + h.Settings.PublicURL + " if people reach the desk at another address."
	case "AADSTS65004":
		return "Sign-in was cancelled", "The permission request was declined, so you are not signed in.",
			"Sign in again and accept the permissions when asked."
	case "AADSTS53000", "AADSTS53001", "AADSTS53003":
		return conditionalAccess(e.AADSTS)
	case "AADSTS50076", "AADSTS50079":
		what = "Your organisation asks for multi-factor authentication for this sign-in (" + e.AADSTS + "), and it was not completed, so you are not signed in."
		next = "Sign in again and complete the extra check when Microsoft asks (the Authenticator app, a code or a security key)."
		if e.AADSTS == "AADSTS50079" {
			what = "Your organisation asks you to set up multi-factor authentication before you sign in (AADSTS50079), and it was not set up, so you are not signed in."
			next = "Sign in again and set up the method Microsoft offers (such as the Authenticator app). If you cannot, ask an administrator to help you register one."
		}
		return "Multi-factor authentication is needed", what, next
	case "AADSTS50058":
		return "Microsoft did not know who was signing in",
			"Microsoft Entra found no account signed in to Microsoft in this browser, or that sign-in had ended (AADSTS50058), so you are not signed in.",
			"Sign in again and choose your work account."
	case "AADSTS90072":
		return "Your account is not a member or guest of this organisation",
			"You signed in with an account of another organisation that is not a guest in the desk's organisation (AADSTS90072): it was not invited, or the invitation was not accepted.",
			"Sign in with an account of this organisation, or ask an administrator here to invite your account as a guest (with an Intune role); accept the invitation, then sign in again."
	}
	if passingRefusal(e) {
		what = "Microsoft's sign-in service had a passing problem and did not complete the sign-in"
		if code := refusalCode(e); code != "" {
			what += " (" + code + ")"
		}
		return "Microsoft's sign-in service is briefly unavailable", what + ". You are not signed in, and nothing was sent to Microsoft Graph.",
			"Try again shortly: this usually passes within minutes. If it lasts, the service health page of the Microsoft 365 admin center says whether sign-in is affected."
	}
	if e.Code == "interaction_required" {
		return "Microsoft asks you to sign in again", "Microsoft Entra needs you to take part in the sign-in (to confirm who you are, or to accept a policy), so you are not signed in.",
			"Sign in again and complete what Microsoft asks."
	}
	if e.Redeem && (e.Code == "invalid_client" || e.Code == "unauthorized_client") {
		return "The sign-in service refused the desk's own credentials",
			"The sign-in service refused the desk's client id or secret (" + shownErrorCode(e.Code) + "), so nobody can sign in until they are corrected.",
			"Tell whoever runs the desk: check " + h.Settings.ClientID + " and " + h.Settings.ClientSecret + " against the desk's registration with the sign-in service."
	}
	if e.Code == "access_denied" && e.AADSTS == "" {
		return "Sign-in was cancelled", "The sign-in was cancelled or access was denied, so you are not signed in.",
			"Sign in again when you are ready."
	}
	what = "The sign-in service refused the sign-in"
	if code := refusalCode(e); code != "" {
		what += " with error " + code
	}
	return "Sign-in did not succeed", what + ".",
		"Try again. If it keeps failing, give this error code and the time to your administrator."
}

// conditionalAccess explains a sign-in a Conditional Access policy refused.
func conditionalAccess(code string) (title, what, next string) {
	const ask = "Ask an administrator which Conditional Access policy applied and why: the Microsoft Entra admin center's Sign-in logs find this sign-in by the correlation ID above."
	switch code {
	case "AADSTS53000":
		return "Your device does not meet your organisation's access policy",
			"A Conditional Access policy of your organisation lets only compliant devices (managed by Intune and meeting its compliance policies) sign in to the desk, and this device is not one (AADSTS53000), so you are not signed in.",
			"Sign in from a compliant device of your organisation, or make this one compliant (Company Portal › Check status). " + ask
	case "AADSTS53001":
		return "Your device does not meet your organisation's access policy",
			"A Conditional Access policy of your organisation lets only devices joined to its domain (Microsoft Entra hybrid joined) sign in to the desk, and this device is not one (AADSTS53001), so you are not signed in.",
			"Sign in from a domain-joined device of your organisation. " + ask
	}
	return "Your organisation's access policy stopped this sign-in",
		"A Conditional Access policy of your organisation stopped the sign-in (" + code + "). Such policies look at where you sign in from (location or network), the device and its compliance, or the sign-in's risk; you are not signed in.",
		ask + " Sign in again once the policy allows it, for example from your organisation's network or a compliant device."
}

// passingRefusal reports whether the provider's refusal passes by itself: it was briefly
// unavailable, not refusing the person.
func passingRefusal(e *identity.CallbackError) bool {
	return e.Code == "temporarily_unavailable" || e.AADSTS == "AADSTS90033"
}

// refusalCode is the code a page names for a refusal: Entra's AADSTS code, else the OAuth code.
func refusalCode(e *identity.CallbackError) string {
	if e.AADSTS != "" {
		return e.AADSTS
	}
	return shownErrorCode(e.Code)
}

// entraIDs says, after a refusal's explanation, what identifies it for an administrator or
// Microsoft support: its code and Microsoft Entra's correlation and trace ids, when given.
func entraIDs(e *identity.CallbackError) string {
	var parts []string
	if code := refusalCode(e); code != "" {
		parts = append(parts, "error "+code)
	}
	if e.CorrelationID != "" {
		parts = append(parts, "correlation ID "+e.CorrelationID)
	}
	if e.TraceID != "" {
		parts = append(parts, "trace ID "+e.TraceID)
	}
	if e.Timestamp != "" {
		parts = append(parts, "at "+e.Timestamp)
	}
	if len(parts) == 0 {
		return ""
	}
	return " For your administrator or Microsoft support: " + strings.Join(parts, ", ") + "."
}

// settingToFix names, for a refusal the desk's own configuration causes, the settings whoever
// runs the desk must correct; "" for a refusal that is the account's or the person's.
func (h *Auth) settingToFix(e *identity.CallbackError) string {
	secret := h.Settings.ClientSecret + " (or the file " + h.Settings.ClientSecret + "_FILE names)"
	switch e.AADSTS {
	case "AADSTS7000215":
		return "the client secret is wrong: set the secret's value (not its id) in " + secret
	case "AADSTS7000222":
		return "the client secret has expired: create a new one in the app registration and set it in " + secret
	case "AADSTS7000218":
		return "no client secret was accepted: set " + secret
	case "AADSTS700023", "AADSTS700024", "AADSTS700027":
		return "the client certificate was refused: upload the certificate in " + h.Settings.ClientCertificate + " to the app registration, and check this server's clock"
	case "AADSTS700016":
		return "the app registration was not found: check " + h.Settings.ClientID + " and " + h.Settings.TenantID
	case "AADSTS90002":
		return "the tenant was not found: check " + h.Settings.TenantID
	case "AADSTS50011":
		return "the redirect URI " + h.PublicURL + "/auth/callback is not registered: add it to the app registration, or correct " + h.Settings.PublicURL
	}
	if e.Redeem && (e.Code == "invalid_client" || e.Code == "unauthorized_client") {
		return "the provider refused the desk's client credentials: check " + h.Settings.ClientID + " and " + secret
	}
	return ""
}

// shownErrorCode is an OAuth error code as a page may show it, or "". Codes are short words such as
// invalid_request (RFC 6749 §4.1.2.1); anything else in that parameter is text whoever sent the
// browser to the callback chose, and is not put before the person as the provider's words.
func shownErrorCode(code string) string {
	ok := code != "" && len(code) <= 64
	for i := 0; ok && i < len(code); i++ {
		ch := code[i]
		ok = 'a' <= ch && ch <= 'z' || 'A' <= ch && ch <= 'Z' || '0' <= ch && ch <= '9' || ch == '_' || ch == '-' || ch == '.'
	}
	if !ok {
		return ""
	}
	return code
}

// apartText says how far two clocks are apart in words: "45 seconds", "10 minutes",
// "2 hours and 5 minutes".
func apartText(d time.Duration) string {
	switch {
	case d < time.Minute:
		return explain.Count(int(d/time.Second), "second", "seconds")
	case d < time.Hour:
		return explain.Count(int(d/time.Minute), "minute", "minutes")
	}
	words := explain.Count(int(d/time.Hour), "hour", "hours")
	if m := int(d % time.Hour / time.Minute); m > 0 {
		words += " and " + explain.Count(m, "minute", "minutes")
	}
	return words
}
