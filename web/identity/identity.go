// Package identity signs people in with OpenID Connect (Microsoft Entra ID or any compliant
// provider): authorization code with PKCE S256, state and nonce, ID-token checks, refresh.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// PersonalAccountsTenantID is the tenant Microsoft gives personal Microsoft accounts.
const PersonalAccountsTenantID = "9188040d-6c67-4c5b-b112-36a304b66dad"

// Cloud is one Microsoft cloud: where people sign in and where Graph is.
type Cloud struct{ Name, LoginHost, GraphRoot string }

var clouds = map[string]Cloud{
	"global":   {"global", "https://login.microsoftonline.com", "https://graph.microsoft.com"},
	"usgov":    {"usgov", "https://login.microsoftonline.us", "https://graph.microsoft.us"},
	"usgovdod": {"usgovdod", "https://login.microsoftonline.us", "https://dod-graph.microsoft.us"},
	"china":    {"china", "https://login.partner.microsoftonline.cn", "https://microsoftgraph.chinacloudapi.cn"},
}

// CloudByName returns a cloud by its configuration name.
func CloudByName(name string) (Cloud, error) {
	c, ok := clouds[strings.ToLower(strings.TrimSpace(name))]
	if !ok {
		return Cloud{}, fmt.Errorf("identity: unknown cloud %q", name)
	}
	return c, nil
}

// Issuer is the tenant's issuer in this cloud.
func (c Cloud) Issuer(tenantID string) string { return c.LoginHost + "/" + tenantID + "/v2.0" }

// DefaultScopes are what the desk asks for; the Graph host inside the scope must match the cloud.
func (c Cloud) DefaultScopes() []string {
	return []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess, c.GraphRoot + "/DeviceManagementServiceConfig.ReadWrite.All"}
}

// Config configures the relying party.
type Config struct {
	IssuerURL, ClientID, ClientSecret, RedirectURL string
	ClientCertificate                              *ClientCertificate
	Scopes                                         []string
	TenantID                                       string // when set, the ID token's tid must equal it
	HTTPClient                                     *http.Client
	Now                                            func() time.Time
}

// Provider is a discovered OpenID Connect provider.
type Provider struct {
	cfg        Config
	oauth      oauth2.Config
	verifier   *oidc.IDTokenVerifier
	endSession string
	client     *http.Client
}

// Sign-in failures the desk explains.
var (
	ErrStateMismatch   = errors.New("identity: the state does not match the sign-in this browser started")
	ErrNonceMismatch   = errors.New("identity: the ID token's nonce does not match")
	ErrPersonalAccount = errors.New("identity: personal Microsoft accounts are not supported")
	ErrWrongTenant     = errors.New("identity: the account belongs to another tenant")
	ErrRefreshRejected = errors.New("identity: the provider refused to renew the tokens")
)

// New discovers the provider at {issuer}/.well-known/openid-configuration.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if strings.Contains(cfg.IssuerURL, "/common/") || strings.Contains(cfg.IssuerURL, "/consumers/") {
		return nil, errors.New("identity: use the tenant id, not common or consumers, in the issuer")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	ctx = oidc.ClientContext(ctx, cfg.HTTPClient)
	p, err := oidc.NewProvider(ctx, cfg.IssuerURL)
	if err != nil {
		return nil, err
	}
	var extra struct {
		EndSession string `json:"end_session_endpoint"`
	}
	_ = p.Claims(&extra)
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}
	}
	ep := p.Endpoint()
	if cfg.ClientCertificate != nil {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &Provider{
		cfg:        cfg,
		oauth:      oauth2.Config{ClientID: cfg.ClientID, ClientSecret: cfg.ClientSecret, Endpoint: ep, RedirectURL: cfg.RedirectURL, Scopes: scopes},
		verifier:   p.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: cfg.Now}),
		endSession: extra.EndSession,
		client:     cfg.HTTPClient,
	}, nil
}

// Flow is one sign-in in progress: every value random, single-use.
type Flow struct {
	State, Nonce, Verifier, ReturnTo string
	CreatedAt                        time.Time
}

// NewFlow starts a sign-in that returns to returnTo.
func (p *Provider) NewFlow(returnTo string) Flow {
	return Flow{State: random(), Nonce: random(), Verifier: oauth2.GenerateVerifier(), ReturnTo: returnTo, CreatedAt: p.cfg.Now()}
}

func random() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// AuthCodeURL is where the browser goes to sign in.
func (p *Provider) AuthCodeURL(f Flow) string {
	return p.oauth.AuthCodeURL(f.State, oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier),
		oauth2.SetAuthURLParam("response_mode", "query"))
}

// User is who signed in, identified by tenant id + object id.
type User struct {
	TenantID, ObjectID, Name, UPN string
	Groups                        []string
}

// Result is a finished sign-in.
type Result struct {
	User    User
	Token   *oauth2.Token
	IDToken string
}

// CallbackError is an error the provider returned on the redirect.
type CallbackError struct{ Code, Description, AADSTS string }

func (e *CallbackError) Error() string {
	return "identity: sign-in error " + e.Code + ": " + e.Description
}

var aadstsRE = regexp.MustCompile(`AADSTS\d+`)

// Explain says what a callback error means and what to do, for an Intune administrator.
func (e *CallbackError) Explain() (title, what, next string) {
	switch e.AADSTS {
	case "AADSTS65001", "AADSTS65004":
		if e.AADSTS == "AADSTS65004" {
			return "You cancelled the sign-in", "The consent prompt was declined, so you are not signed in.", "Sign in again and accept the permissions when asked."
		}
		return "An administrator must consent to the desk first",
			"Your organisation has not granted the desk the permission DeviceManagementServiceConfig.ReadWrite.All, so Microsoft Entra refused the sign-in.",
			"Ask a Global Administrator, Privileged Role Administrator or Cloud Application Administrator to open the Microsoft Entra admin center › App registrations › Autopilot Desk › API permissions and select “Grant admin consent”. Then sign in again."
	case "AADSTS50105":
		return "Your account is not assigned to the desk",
			"The desk's enterprise application requires assignment, and your account (or a group you are in) is not assigned to it.",
			"Ask an administrator to add you under Microsoft Entra admin center › Enterprise applications › Autopilot Desk › Users and groups."
	case "AADSTS50020":
		return "This account is not in the desk's organisation",
			"You signed in with a personal or guest account from another organisation, which this desk does not accept.",
			"Sign in with your work account in this organisation."
	case "AADSTS700016", "AADSTS7000215", "AADSTS7000222", "AADSTS50011":
		return "The desk's app registration needs attention",
			"Microsoft Entra refused the desk's own registration (" + e.AADSTS + "): the client id, secret or redirect URI does not match.",
			"Tell whoever runs the desk: check AUTOPILOTDESK_CLIENT_ID, the client secret's expiry and that {public URL}/auth/callback is a registered redirect URI."
	}
	if e.Code == "access_denied" {
		return "Sign-in was cancelled", "The sign-in was cancelled or access was denied, so you are not signed in.", "Sign in again when you are ready."
	}
	msg := "The sign-in service refused the sign-in"
	if e.Description != "" {
		msg += ": " + firstLine(e.Description)
	}
	return "Sign-in did not succeed", msg, "Try again. If it keeps failing, give the error code to your administrator."
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// Finish checks the provider's answer against the flow and exchanges the code.
func (p *Provider) Finish(ctx context.Context, f Flow, callback url.Values) (*Result, error) {
	if code := callback.Get("error"); code != "" {
		desc := callback.Get("error_description")
		return nil, &CallbackError{Code: code, Description: desc, AADSTS: aadstsRE.FindString(desc)}
	}
	state := callback.Get("state")
	if state == "" || subtle.ConstantTimeCompare([]byte(state), []byte(f.State)) != 1 {
		return nil, ErrStateMismatch
	}
	code := callback.Get("code")
	if code == "" {
		return nil, errors.New("identity: the callback carries no authorization code")
	}
	ctx = oidc.ClientContext(ctx, p.client)
	opts := []oauth2.AuthCodeOption{oauth2.VerifierOption(f.Verifier)}
	opts = append(opts, p.clientAuth()...)
	tok, err := p.oauth.Exchange(ctx, code, opts...)
	if err != nil {
		return nil, fmt.Errorf("identity: code exchange: %w", err)
	}
	raw, ok := tok.Extra("id_token").(string)
	if !ok || raw == "" {
		return nil, errors.New("identity: the token response has no ID token")
	}
	idt, err := p.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("identity: ID token: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(f.Nonce)) != 1 {
		return nil, ErrNonceMismatch
	}
	var c struct {
		TID               string   `json:"tid"`
		OID               string   `json:"oid"`
		Name              string   `json:"name"`
		PreferredUsername string   `json:"preferred_username"`
		Email             string   `json:"email"`
		Groups            []string `json:"groups"`
	}
	if err := idt.Claims(&c); err != nil {
		return nil, fmt.Errorf("identity: ID token claims: %w", err)
	}
	if strings.EqualFold(c.TID, PersonalAccountsTenantID) {
		return nil, ErrPersonalAccount
	}
	if p.cfg.TenantID != "" && !strings.EqualFold(c.TID, p.cfg.TenantID) {
		return nil, ErrWrongTenant
	}
	oid := c.OID
	if oid == "" && p.cfg.TenantID == "" {
		oid = idt.Subject // a non-Entra provider: its subject is the stable id
	}
	if oid == "" {
		return nil, errors.New("identity: the ID token has no oid claim")
	}
	upn := c.PreferredUsername
	if upn == "" {
		upn = c.Email
	}
	return &Result{User: User{TenantID: c.TID, ObjectID: oid, Name: c.Name, UPN: upn, Groups: c.Groups}, Token: tok, IDToken: raw}, nil
}

// Refresh renews tokens; a refused refresh (invalid_grant) is ErrRefreshRejected.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	ctx = oidc.ClientContext(ctx, p.client)
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if len(p.oauth.Scopes) > 0 {
		v.Set("scope", strings.Join(p.oauth.Scopes, " "))
	}
	var tok *oauth2.Token
	var err error
	if p.cfg.ClientCertificate != nil {
		tok, err = p.refreshWithAssertion(ctx, v)
	} else {
		tok, err = p.oauth.TokenSource(ctx, &oauth2.Token{RefreshToken: refreshToken, Expiry: time.Unix(1, 0)}).Token()
	}
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && (re.ErrorCode == "invalid_grant" || re.Response != nil && re.Response.StatusCode == http.StatusBadRequest && re.ErrorCode == "") {
			return nil, fmt.Errorf("%w: %s", ErrRefreshRejected, re.ErrorCode)
		}
		return nil, fmt.Errorf("identity: refresh: %w", err)
	}
	return tok, nil
}

// EndSessionURL is the provider's sign-out address, when it has one.
func (p *Provider) EndSessionURL(postLogoutRedirectURI, idTokenHint string) (string, bool) {
	if p.endSession == "" {
		return "", false
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return "", false
	}
	q := u.Query()
	q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	q.Set("client_id", p.oauth.ClientID)
	if idTokenHint != "" {
		q.Set("id_token_hint", idTokenHint)
	}
	u.RawQuery = q.Encode()
	return u.String(), true
}
