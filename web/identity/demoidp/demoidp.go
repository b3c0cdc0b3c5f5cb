// Package demoidp is the demo identity provider: a small, real OpenID Connect provider with fixed
// identities, used by demo mode and the tests. It issues Entra-shaped ID tokens (tid, oid) and opaque
// access tokens that the Graph emulator checks.
package demoidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// DemoTenantID is the demo organisation's tenant id.
const DemoTenantID = "5b7a1c2e-3f4d-4e6a-9b8c-0d1e2f3a4b5c"

// PersonalAccountsTenantID is the tenant Microsoft gives personal accounts.
const PersonalAccountsTenantID = "9188040d-6c67-4c5b-b112-36a304b66dad"

// Identity is one account the picker offers.
type Identity struct {
	Key, Name, UPN, TenantID, ObjectID string
	Scopes, Groups                     []string
	Description                        string
	// Error, when set, is answered on the redirect instead of a code (a sign-in error demo).
	Error, ErrorDescription string
}

// HelpDeskGroupID is the group every demo work account is a member of.
const HelpDeskGroupID = "3c1f7a92-6d4b-4e8a-b0c5-7f2e9d1a4b6c"

var identities = []Identity{
	{Key: "admin", Name: "Adele Vance", UPN: "AdeleV@contoso.example", TenantID: DemoTenantID, ObjectID: "a1f3c2d4-5b6e-4f70-8a91-b2c3d4e5f601",
		Scopes: []string{"DeviceManagementServiceConfig.ReadWrite.All"}, Groups: []string{HelpDeskGroupID},
		Description: "Intune administrator: may create and change Autopilot uploads."},
	{Key: "reader", Name: "Megan Bowen", UPN: "MeganB@contoso.example", TenantID: DemoTenantID, ObjectID: "b2e4d3c5-6a7f-4081-9ba2-c3d4e5f60712",
		Scopes: []string{"DeviceManagementServiceConfig.Read.All"}, Groups: []string{HelpDeskGroupID},
		Description: "Help-desk reader: read-only permission, so creating an upload fails with Graph's 403."},
	{Key: "personal", Name: "Sam Personal", UPN: "sam@outlook.example", TenantID: PersonalAccountsTenantID, ObjectID: "c3f5e4d6-7b80-4192-acb3-d4e5f6071823",
		Description: "Personal Microsoft account: refused, as the Intune APIs accept only work accounts."},
	{Key: "no-consent", Name: "Consent not granted", Description: "The tenant has not consented to the desk's permission (AADSTS65001).",
		Error: "invalid_client", ErrorDescription: "AADSTS65001: The user or administrator has not consented to use the application with ID 'autopilotdesk-demo' named 'Autopilot Desk'. Send an interactive authorization request for this user and resource."},
	{Key: "not-assigned", Name: "User not assigned", Description: "The account is not assigned to the desk's enterprise application (AADSTS50105).",
		Error: "access_denied", ErrorDescription: "AADSTS50105: Your administrator has configured the application Autopilot Desk to block users unless they are specifically granted ('assigned') access to the application."},
}

// Token errors.
var (
	ErrTokenExpired = errors.New("demoidp: access token expired")
	ErrTokenUnknown = errors.New("demoidp: access token unknown")
)

// Options configure the provider.
type Options struct {
	Issuer                 string // base URL, e.g. http://127.0.0.1:PORT
	ClientID, ClientSecret string
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	AccessTokenLifetime    time.Duration
	Now                    func() time.Time
}

// AccessTokenInfo is what an access token grants.
type AccessTokenInfo struct {
	TenantID, ObjectID, UPN string
	Scopes                  []string
	ExpiresAt               time.Time
}

type authCode struct {
	identity      Identity
	clientID      string
	redirectURI   string
	challenge     string
	nonce, scopes string
	expires       time.Time
}

type refreshGrant struct {
	identity Identity
	scopes   string
}

// Provider implements http.Handler.
type Provider struct {
	opts   Options
	base   string
	key    *rsa.PrivateKey
	signer jose.Signer
	keyID  string

	mu       sync.Mutex
	codes    map[string]authCode
	access   map[string]AccessTokenInfo
	refresh  map[string]refreshGrant
	requests int
}

// New creates a provider with a fresh signing key.
func New(o Options) (*Provider, error) {
	u, err := url.Parse(o.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("demoidp: issuer %q is not an absolute URL", o.Issuer)
	}
	if o.AccessTokenLifetime <= 0 {
		o.AccessTokenLifetime = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}
	p := &Provider{opts: o, base: strings.TrimSuffix(o.Issuer, "/"), key: key, keyID: randomString(8),
		codes: map[string]authCode{}, access: map[string]AccessTokenInfo{}, refresh: map[string]refreshGrant{}}
	p.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", p.keyID))
	if err != nil {
		return nil, err
	}
	return p, nil
}

// IssuerURL is the issuer of the demo tenant, shaped like Entra's.
func (p *Provider) IssuerURL() string { return p.base + "/" + DemoTenantID + "/v2.0" }

// Identities lists the picker's accounts.
func (p *Provider) Identities() []Identity { return slices.Clone(identities) }

func (p *Provider) path(s string) string { return "/" + DemoTenantID + s }

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	switch r.URL.Path {
	case p.path("/v2.0/.well-known/openid-configuration"):
		p.discovery(w)
	case p.path("/discovery/v2.0/keys"):
		p.jwks(w)
	case p.path("/oauth2/v2.0/authorize"):
		p.authorize(w, r)
	case p.path("/oauth2/v2.0/token"):
		p.token(w, r)
	case p.path("/oauth2/v2.0/logout"):
		p.logout(w, r)
	case "/demo-idp.css":
		w.Header().Set("Content-Type", "text/css; charset=utf-8")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write([]byte(pickerCSS))
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (p *Provider) discovery(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.IssuerURL(),
		"authorization_endpoint":                p.base + p.path("/oauth2/v2.0/authorize"),
		"token_endpoint":                        p.base + p.path("/oauth2/v2.0/token"),
		"jwks_uri":                              p.base + p.path("/discovery/v2.0/keys"),
		"end_session_endpoint":                  p.base + p.path("/oauth2/v2.0/logout"),
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "tid", "oid", "name", "preferred_username", "groups"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &p.key.PublicKey, KeyID: p.keyID, Algorithm: "RS256", Use: "sig"}}})
}

// authorize validates the request, then shows the picker or, with login_hint, answers at once.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if q.Get("client_id") != p.opts.ClientID {
		http.Error(w, "AADSTS700016: Application with identifier '"+q.Get("client_id")+"' was not found in the directory.", http.StatusBadRequest)
		return
	}
	redirect := q.Get("redirect_uri")
	if !slices.Contains(p.opts.RedirectURIs, redirect) {
		http.Error(w, "AADSTS50011: The redirect URI specified in the request does not match the redirect URIs configured for the application.", http.StatusBadRequest)
		return
	}
	fail := func(code, desc string) {
		u, _ := url.Parse(redirect)
		v := url.Values{"error": {code}, "error_description": {desc}, "state": {q.Get("state")}}
		u.RawQuery = v.Encode()
		http.Redirect(w, r, u.String(), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "AADSTS70005: response_type 'code' is required.")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "AADSTS9002325: Proof Key for Code Exchange (S256) is required.")
		return
	case !strings.Contains(" "+q.Get("scope")+" ", " openid "):
		fail("invalid_scope", "AADSTS900144: The request must contain the openid scope.")
		return
	}
	choice := q.Get("login_hint")
	if choice == "" {
		choice = q.Get("identity")
	}
	if choice == "" {
		p.picker(w, r)
		return
	}
	if choice == "cancel" {
		fail("access_denied", "AADSTS65004: User declined to consent to access the app.")
		return
	}
	var id *Identity
	for i := range identities {
		if identities[i].Key == choice {
			id = &identities[i]
		}
	}
	if id == nil {
		p.picker(w, r)
		return
	}
	if id.Error != "" {
		fail(id.Error, id.ErrorDescription)
		return
	}
	code := randomString(32)
	p.mu.Lock()
	p.codes[code] = authCode{identity: *id, clientID: q.Get("client_id"), redirectURI: redirect, challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), scopes: q.Get("scope"), expires: p.opts.Now().Add(60 * time.Second)}
	p.mu.Unlock()
	u, _ := url.Parse(redirect)
	u.RawQuery = url.Values{"code": {code}, "state": {q.Get("state")}}.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (p *Provider) clientAuthenticated(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == p.opts.ClientID && subtle.ConstantTimeCompare([]byte(secret), []byte(p.opts.ClientSecret)) == 1
}

func tokenError(w http.ResponseWriter, code, desc string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code, "error_description": desc})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		tokenError(w, "invalid_request", "AADSTS900561: The endpoint only accepts POST requests.")
		return
	}
	p.mu.Lock()
	p.requests++
	p.mu.Unlock()
	if !p.clientAuthenticated(r) {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided."})
		return
	}
	switch r.PostForm.Get("grant_type") {
	case "authorization_code":
		code := r.PostForm.Get("code")
		p.mu.Lock()
		c, ok := p.codes[code]
		delete(p.codes, code) // single use, whatever happens next
		p.mu.Unlock()
		switch {
		case !ok || p.opts.Now().After(c.expires):
			tokenError(w, "invalid_grant", "AADSTS70008: The provided authorization code or refresh token has expired or was already redeemed.")
			return
		case r.PostForm.Get("redirect_uri") != c.redirectURI:
			tokenError(w, "invalid_grant", "AADSTS50148: The redirect_uri does not match the one used in the authorization request.")
			return
		case !pkceMatches(r.PostForm.Get("code_verifier"), c.challenge):
			tokenError(w, "invalid_grant", "AADSTS50148: The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.")
			return
		}
		p.issue(w, c.identity, c.scopes, c.nonce)
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		p.mu.Lock()
		g, ok := p.refresh[rt]
		delete(p.refresh, rt) // rotation: a refresh token is good once
		p.mu.Unlock()
		if !ok {
			tokenError(w, "invalid_grant", "AADSTS700082: The refresh token has expired due to inactivity or was revoked.")
			return
		}
		p.issue(w, g.identity, g.scopes, "")
	default:
		tokenError(w, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.")
	}
}

func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

func (p *Provider) issue(w http.ResponseWriter, id Identity, scopes, nonce string) {
	now := p.opts.Now()
	claims := map[string]any{
		"iss": p.IssuerURL(), "aud": p.opts.ClientID, "sub": "sub-" + id.ObjectID,
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "nbf": now.Unix(),
		"tid": id.TenantID, "oid": id.ObjectID, "name": id.Name, "preferred_username": id.UPN, "ver": "2.0",
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if len(id.Groups) > 0 {
		claims["groups"] = id.Groups
	}
	idToken, err := jwt.Signed(p.signer).Claims(claims).Serialize()
	if err != nil {
		tokenError(w, "server_error", "could not sign the ID token")
		return
	}
	access, refresh := randomString(32), randomString(32)
	expires := now.Add(p.opts.AccessTokenLifetime)
	p.mu.Lock()
	p.access[access] = AccessTokenInfo{TenantID: id.TenantID, ObjectID: id.ObjectID, UPN: id.UPN, Scopes: id.Scopes, ExpiresAt: expires}
	if strings.Contains(" "+scopes+" ", " offline_access ") {
		p.refresh[refresh] = refreshGrant{identity: id, scopes: scopes}
	} else {
		refresh = ""
	}
	p.mu.Unlock()
	resp := map[string]any{"token_type": "Bearer", "access_token": access, "expires_in": int(p.opts.AccessTokenLifetime.Seconds()),
		"scope": strings.Join(id.Scopes, " "), "id_token": idToken}
	if refresh != "" {
		resp["refresh_token"] = refresh
	}
	writeJSON(w, http.StatusOK, resp)
}

func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	target := r.URL.Query().Get("post_logout_redirect_uri")
	if target != "" && slices.Contains(p.opts.PostLogoutRedirectURIs, target) {
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	pageTemplate.Execute(w, pageData{Title: "Signed out of the demo identity provider", Base: p.base, SignedOut: true})
}

// VerifyAccessToken resolves an access token the provider issued.
func (p *Provider) VerifyAccessToken(token string) (AccessTokenInfo, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	info, ok := p.access[token]
	if !ok {
		return AccessTokenInfo{}, ErrTokenUnknown
	}
	if !p.opts.Now().Before(info.ExpiresAt) {
		return AccessTokenInfo{}, ErrTokenExpired
	}
	return info, nil
}

// ExpireAccessTokens makes every issued access token expired (tests).
func (p *Provider) ExpireAccessTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, v := range p.access {
		v.ExpiresAt = time.Time{}
		p.access[k] = v
	}
}

// RevokeRefreshTokens makes the next refresh fail with invalid_grant (tests).
func (p *Provider) RevokeRefreshTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.refresh = map[string]refreshGrant{}
}

// TokenRequests counts calls to the token endpoint.
func (p *Provider) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// IssuedTokens lists every access and refresh token issued and still known (tests assert none leaks).
func (p *Provider) IssuedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for k := range p.access {
		out = append(out, k)
	}
	for k := range p.refresh {
		out = append(out, k)
	}
	return out
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

type pageData struct {
	Title      string
	Base       string
	Identities []Identity
	Query      url.Values
	SignedOut  bool
}

func (p *Provider) picker(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; form-action 'self' "+redirectOrigins(p.opts.RedirectURIs)+"; frame-ancestors 'none'; base-uri 'none'")
	q := r.URL.Query()
	q.Del("identity")
	pageTemplate.Execute(w, pageData{Title: "Demo sign-in", Base: p.base, Identities: identities, Query: q})
}

func redirectOrigins(uris []string) string {
	var out []string
	for _, s := range uris {
		if u, err := url.Parse(s); err == nil {
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	return strings.Join(out, " ")
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Demo identity provider</title><link rel="stylesheet" href="{{.Base}}/demo-idp.css"></head>
<body><main>
<p class="tag">Demo identity provider · not Microsoft</p>
<h1>{{.Title}}</h1>
{{if .SignedOut}}<p>You are signed out. Close this tab, or go back to the desk.</p>{{else}}
<p>Choose who to sign in as. Each account shows how the desk treats a real case.</p>
<ul class="ids">{{range .Identities}}<li><form method="get" action="">
{{range $k, $vs := $.Query}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<button type="submit" name="identity" value="{{.Key}}"><strong>{{.Name}}</strong>{{if .UPN}} <span>{{.UPN}}</span>{{end}}</button>
<p>{{.Description}}</p></form></li>{{end}}</ul>
<form method="get" action="">{{range $k, $vs := .Query}}{{range $vs}}<input type="hidden" name="{{$k}}" value="{{.}}">{{end}}{{end}}
<button type="submit" name="identity" value="cancel" class="cancel">Cancel sign-in</button></form>{{end}}
</main></body></html>`))

const pickerCSS = `body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f2f1;color:#1b1b1b}
main{max-width:34rem;margin:3rem auto;background:#fff;padding:2rem;border-radius:8px;box-shadow:0 2px 12px rgba(0,0,0,.08)}
h1{font-size:1.5rem;margin:.25rem 0 1rem}.tag{margin:0;color:#605e5c;font-size:.85rem}
ul.ids{list-style:none;padding:0;margin:0}ul.ids li{border-top:1px solid #e1dfdd;padding:.75rem 0}
button{font:inherit;cursor:pointer;background:#0f6cbd;color:#fff;border:0;border-radius:4px;padding:.5rem .9rem;text-align:left}
button span{display:block;font-size:.85rem;opacity:.9}ul.ids p{margin:.35rem 0 0;color:#484644;font-size:.9rem}
button.cancel{background:#fff;color:#0f6cbd;border:1px solid #8a8886;margin-top:1rem}
button:focus-visible{outline:3px solid #000;outline-offset:2px}
@media (prefers-color-scheme:dark){body{background:#1b1a19;color:#f3f2f1}main{background:#252423}ul.ids li{border-color:#3b3a39}ul.ids p,.tag{color:#c8c6c4}button.cancel{background:#252423;color:#6cb8f6}}`
