// Package identity signs people in with OpenID Connect, against Microsoft Entra ID or any compliant
// provider: authorization code with PKCE S256, state and nonce, exact ID-token checks, tenant
// checks and token renewal.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"golang.org/x/oauth2"
)

// FlowLifetime is how long a sign-in may take from the redirect to the provider until the callback.
const FlowLifetime = 10 * time.Minute

// Ways a sign-in or a renewal is refused; each gets its own explanation.
var (
	ErrStateMismatch   = errors.New("identity: the answer does not belong to the sign-in this browser started (state mismatch)")
	ErrFlowExpired     = errors.New("identity: the sign-in took too long and has expired")
	ErrNonceMismatch   = errors.New("identity: the ID token was issued for another sign-in (nonce mismatch)")
	ErrPersonalAccount = errors.New("identity: personal Microsoft accounts are not supported")
	ErrWrongTenant     = errors.New("identity: the account belongs to another tenant")
	ErrRefreshRejected = errors.New("identity: the provider refused to renew the tokens")
	// ErrNoTenantClaim: a tenant is configured (always so for Microsoft Entra) but the ID token
	// does not say which tenant the account belongs to.
	ErrNoTenantClaim = errors.New("identity: the ID token has no tid claim, so its tenant cannot be checked")
)

// multiTenantAliases name Entra endpoints that accept accounts of any tenant; their ID tokens carry
// each account's own issuer, which cannot be checked against one configured issuer.
var multiTenantAliases = []string{"common", "consumers", "organizations"}

// Config configures the relying party.
type Config struct {
	IssuerURL, ClientID, ClientSecret, RedirectURL string
	// ClientCertificate, when set, authenticates with a signed assertion (private_key_jwt)
	// instead of ClientSecret.
	ClientCertificate *ClientCertificate
	Scopes            []string // default: openid profile offline_access
	// TenantID, when set, is the only tenant whose accounts may sign in: ID tokens must carry it
	// as their tid claim. Entra issuers require it. Without it, the provider is taken as one
	// without tenants: accounts are keyed by the issuer (see IssuerTenant).
	TenantID   string
	HTTPClient *http.Client // discovery, signing keys and token calls; default: 30 s timeout
	Now        func() time.Time
}

// Provider is a discovered OpenID Connect provider, ready to sign people in.
type Provider struct {
	oauth       oauth2.Config
	verifier    *oidc.IDTokenVerifier
	endSession  string
	issuer      string
	tenantID    string
	client      *http.Client // discovery and signing keys
	tokenClient *http.Client // token calls; adds the client assertion when a certificate is used
	now         func() time.Time
}

// New checks cfg and discovers the provider at {IssuerURL}/.well-known/openid-configuration.
func New(ctx context.Context, cfg Config) (*Provider, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	discovered, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.IssuerURL)
	if err != nil {
		if unreachable(err) {
			return nil, fmt.Errorf("identity: discovery: %w: %w", ErrUnreachable, err)
		}
		return nil, fmt.Errorf("identity: discovery: %w", err)
	}
	var meta struct {
		EndSession  string   `json:"end_session_endpoint"`
		AuthMethods []string `json:"token_endpoint_auth_methods_supported"`
	}
	if err := discovered.Claims(&meta); err != nil {
		return nil, fmt.Errorf("identity: discovery document: %w", err)
	}
	scopes := cfg.Scopes
	if len(scopes) == 0 {
		scopes = []string{oidc.ScopeOpenID, "profile", oidc.ScopeOfflineAccess}
	}
	endpoint := discovered.Endpoint()
	tokenClient := client
	secret := cfg.ClientSecret
	switch {
	case cfg.ClientCertificate != nil:
		secret = ""
		endpoint.AuthStyle = oauth2.AuthStyleInParams
		tokenClient = cfg.ClientCertificate.httpClient(client, cfg.ClientID, endpoint.TokenURL, now)
	// Set explicitly: x/oauth2's auto-detection re-sends every failed token request a second way.
	case len(meta.AuthMethods) == 0 || slices.Contains(meta.AuthMethods, "client_secret_basic"):
		endpoint.AuthStyle = oauth2.AuthStyleInHeader
	default:
		endpoint.AuthStyle = oauth2.AuthStyleInParams
	}
	return &Provider{
		oauth: oauth2.Config{ClientID: cfg.ClientID, ClientSecret: secret, Endpoint: endpoint,
			RedirectURL: cfg.RedirectURL, Scopes: slices.Clone(scopes)},
		verifier:    discovered.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: now}),
		endSession:  meta.EndSession,
		issuer:      cfg.IssuerURL,
		tenantID:    cfg.TenantID,
		client:      client,
		tokenClient: tokenClient,
		now:         now,
	}, nil
}

// ErrUnreachable means discovery did not reach the provider: no DNS answer, no connection, a
// timeout, or an answer of 429 or 5xx (from the provider, or a proxy on the way). It may answer
// later, as when a container starts before DNS or its proxy is ready.
var ErrUnreachable = errors.New("the identity provider could not be reached")

func unreachable(err error) bool {
	var ue *url.Error
	if errors.As(err, &ue) {
		return true
	}
	// go-oidc answers another status than 200 with an error that starts with it: "503 Service Unavailable: …".
	status, _, _ := strings.Cut(err.Error(), " ")
	return len(status) == 3 && (status[0] == '5' && status[1] >= '0' && status[1] <= '9' && status[2] >= '0' && status[2] <= '9' || status == "429")
}

func (cfg Config) validate() error {
	var problems []error
	issuer, err := url.Parse(cfg.IssuerURL)
	if err != nil || issuer.Scheme == "" || issuer.Host == "" {
		problems = append(problems, fmt.Errorf("identity: the issuer %q is not an absolute URL", cfg.IssuerURL))
	}
	if cfg.ClientID == "" {
		problems = append(problems, errors.New("identity: the client id is missing"))
	}
	if cfg.RedirectURL == "" {
		problems = append(problems, errors.New("identity: the redirect URL is missing"))
	}
	if slices.Contains(multiTenantAliases, strings.ToLower(cfg.TenantID)) {
		problems = append(problems, fmt.Errorf("identity: the tenant %q accepts any organisation's accounts; use your tenant id (a GUID)", cfg.TenantID))
	}
	if err == nil && len(CloudsOfLoginHost(issuer.Hostname())) > 0 {
		tenant, _, _ := strings.Cut(strings.TrimPrefix(issuer.Path, "/"), "/")
		switch {
		case slices.Contains(multiTenantAliases, strings.ToLower(tenant)):
			problems = append(problems, fmt.Errorf("identity: the issuer %q accepts any organisation's accounts; use your tenant id (a GUID) in place of %q", cfg.IssuerURL, tenant))
		case cfg.TenantID == "":
			problems = append(problems, errors.New("identity: Microsoft Entra sign-in needs the tenant id"))
		case !strings.EqualFold(tenant, cfg.TenantID):
			problems = append(problems, fmt.Errorf("identity: the issuer names tenant %q but the tenant id is %q", tenant, cfg.TenantID))
		}
	}
	return errors.Join(problems...)
}

// Flow is one sign-in in progress. State, nonce and verifier are random and used once.
type Flow struct {
	State, Nonce, Verifier, ReturnTo string
	CreatedAt                        time.Time
	// Fresh asks the provider to authenticate again (prompt=login), as Conditional Access
	// wants after an insufficient_claims answer. It only shapes the authorization URL.
	Fresh bool
	// SelectAccount asks the provider to let the person choose an account
	// (prompt=select_account), rather than signing the same one in again by itself.
	SelectAccount bool
}

// NewFlow starts a sign-in that comes back to returnTo.
func (p *Provider) NewFlow(returnTo string) Flow {
	return Flow{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(),
		ReturnTo: returnTo, CreatedAt: p.now()}
}

// AuthCodeURL is where the browser goes to sign in.
func (p *Provider) AuthCodeURL(f Flow) string {
	// response_mode=query: form_post would make the callback a cross-site POST that SameSite
	// cookies and CSRF checks rightly refuse.
	opts := []oauth2.AuthCodeOption{oidc.Nonce(f.Nonce), oauth2.S256ChallengeOption(f.Verifier),
		oauth2.SetAuthURLParam("response_mode", "query")}
	switch {
	case f.Fresh:
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "login"))
	case f.SelectAccount:
		opts = append(opts, oauth2.SetAuthURLParam("prompt", "select_account"))
	}
	return p.oauth.AuthCodeURL(f.State, opts...)
}

// User is who signed in; TenantID + ObjectID identify them (sub is per app, the UPN can change).
type User struct {
	TenantID, ObjectID, Name, UPN string
	// TenantName is how the tenant is shown: empty for an Entra tenant (its id is shown), the
	// issuer's host for a provider without tenants.
	TenantName string
	Groups     []string
	// GroupsOverage: the account is in more groups than the ID token can list (Entra's limit is
	// 200), so Groups is empty and membership must be asked of Microsoft Graph.
	GroupsOverage bool
}

// Result is a finished sign-in.
type Result struct {
	User    User
	Token   *oauth2.Token
	IDToken string // raw; kept server-side only (its login_hint claim becomes the sign-out's logout_hint)
}

// Finish checks the provider's answer against the flow, redeems the code and checks the ID token.
func (p *Provider) Finish(ctx context.Context, f Flow, callback url.Values) (*Result, error) {
	if code := callback.Get("error"); code != "" {
		return nil, newCallbackError(code, callback.Get("error_description"))
	}
	if f.State == "" || !equalSecret(callback.Get("state"), f.State) {
		return nil, ErrStateMismatch
	}
	if p.now().After(f.CreatedAt.Add(FlowLifetime)) {
		return nil, ErrFlowExpired
	}
	code := callback.Get("code")
	if code == "" {
		return nil, errors.New("identity: the answer from the provider carries no authorization code")
	}
	tok, err := p.oauth.Exchange(p.tokenContext(ctx), code, oauth2.VerifierOption(f.Verifier))
	var refused *oauth2.RetrieveError
	if errors.As(err, &refused) && refused.ErrorCode != "" {
		ce := newCallbackError(refused.ErrorCode, refused.ErrorDescription)
		ce.Redeem, ce.cause = true, err
		ce.readTokenErrorIDs(refused.Body)
		return nil, ce
	}
	if err != nil {
		return nil, fmt.Errorf("identity: redeem the authorization code: %w", err)
	}
	p.stampExpiry(tok)
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, errors.New("identity: the token response has no ID token")
	}
	idToken, err := p.verifier.Verify(oidc.ClientContext(ctx, p.client), raw)
	if err != nil {
		if skew := clockSkew(raw, p.now(), err); skew != nil {
			return nil, skew
		}
		return nil, fmt.Errorf("identity: ID token: %w", err)
	}
	if f.Nonce == "" || !equalSecret(idToken.Nonce, f.Nonce) {
		return nil, ErrNonceMismatch
	}
	user, err := p.userOf(idToken)
	if err != nil {
		return nil, err
	}
	return &Result{User: user, Token: tok, IDToken: raw}, nil
}

func (p *Provider) userOf(idToken *oidc.IDToken) (User, error) {
	var c struct {
		TenantID          string   `json:"tid"`
		ObjectID          string   `json:"oid"`
		Name              string   `json:"name"`
		PreferredUsername string   `json:"preferred_username"`
		Email             string   `json:"email"`
		Groups            []string `json:"groups"`
		ClaimNames        struct {
			Groups string `json:"groups"`
		} `json:"_claim_names"`
		HasGroups bool `json:"hasgroups"` // the implicit flow's form of the overage
	}
	if err := idToken.Claims(&c); err != nil {
		return User{}, fmt.Errorf("identity: ID token claims: %w", err)
	}
	var tenantName string
	switch {
	case strings.EqualFold(c.TenantID, PersonalAccountsTenantID):
		return User{}, ErrPersonalAccount
	case p.tenantID != "" && c.TenantID == "":
		return User{}, ErrNoTenantClaim
	case p.tenantID != "" && !strings.EqualFold(c.TenantID, p.tenantID):
		return User{}, ErrWrongTenant
	case c.TenantID == "":
		// A provider without tenants: the issuer is the organisation, and its subject is the
		// stable id of the account.
		c.TenantID, tenantName = IssuerTenant(p.issuer)
		if c.ObjectID == "" {
			c.ObjectID = idToken.Subject
		}
	}
	if c.ObjectID == "" {
		return User{}, errors.New("identity: the ID token has no oid claim")
	}
	upn := c.PreferredUsername
	if upn == "" {
		upn = c.Email
	}
	return User{TenantID: c.TenantID, TenantName: tenantName, ObjectID: c.ObjectID, Name: c.Name, UPN: upn, Groups: c.Groups,
		GroupsOverage: len(c.Groups) == 0 && (c.ClaimNames.Groups != "" || c.HasGroups)}, nil
}

// IssuerTenant is the tenant of a provider without tenants (its ID tokens carry no tid): a
// name-based UUID of the issuer URL, so it is stable and GUID-shaped wherever tenant ids are
// kept or checked, and the issuer's host to show people.
func IssuerTenant(issuer string) (id, name string) {
	id = uuid.NewSHA1(uuid.NameSpaceURL, []byte(issuer)).String()
	name = issuer
	if u, err := url.Parse(issuer); err == nil && u.Host != "" {
		name = u.Host
	}
	return id, name
}

// refusedGrantCodes are token-endpoint errors after which only a new sign-in helps.
var refusedGrantCodes = []string{"invalid_grant", "interaction_required", "login_required", "consent_required"}

// Refresh renews the tokens. When the provider refuses the refresh token the error wraps
// ErrRefreshRejected; network and server failures do not, so the session can survive them.
func (p *Provider) Refresh(ctx context.Context, refreshToken string) (*oauth2.Token, error) {
	if refreshToken == "" {
		return nil, fmt.Errorf("%w: there is no refresh token", ErrRefreshRejected)
	}
	tok, err := p.oauth.TokenSource(p.tokenContext(ctx), &oauth2.Token{RefreshToken: refreshToken}).Token()
	if err != nil {
		var re *oauth2.RetrieveError
		if errors.As(err, &re) && slices.Contains(refusedGrantCodes, re.ErrorCode) {
			return nil, fmt.Errorf("%w: %s %s", ErrRefreshRejected, re.ErrorCode, aadstsCode.FindString(re.ErrorDescription))
		}
		return nil, fmt.Errorf("identity: renew the tokens: %w", err)
	}
	p.stampExpiry(tok)
	return tok, nil
}

// EndSessionURL is the provider's sign-out address with the way back, when it has one. It names
// the application (client_id) and, when known, the account (logout_hint: the ID token's
// login_hint claim, which Microsoft Entra emits as an optional claim); never the ID token
// itself, so no token travels in a URL.
func (p *Provider) EndSessionURL(postLogoutRedirectURI, logoutHint string) (string, bool) {
	if p.endSession == "" {
		return "", false
	}
	u, err := url.Parse(p.endSession)
	if err != nil {
		return "", false
	}
	q := u.Query()
	q.Set("client_id", p.oauth.ClientID)
	if postLogoutRedirectURI != "" {
		q.Set("post_logout_redirect_uri", postLogoutRedirectURI)
	}
	if logoutHint != "" {
		q.Set("logout_hint", logoutHint)
	}
	u.RawQuery = q.Encode()
	return u.String(), true
}

// LogoutHint is the login_hint claim of an ID token the desk verified at sign-in (and kept
// server-side): what identifies the account to sign out without the token itself. Empty when
// the token has none.
func LogoutHint(rawIDToken string) string {
	parts := strings.Split(rawIDToken, ".")
	if len(parts) != 3 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return ""
	}
	var c struct {
		LoginHint string `json:"login_hint"`
	}
	if json.Unmarshal(payload, &c) != nil {
		return ""
	}
	return c.LoginHint
}

// stampExpiry dates the token by the injected clock; x/oauth2 uses the wall clock.
func (p *Provider) stampExpiry(tok *oauth2.Token) {
	var seconds int64
	switch v := tok.Extra("expires_in").(type) {
	case float64:
		seconds = int64(v)
	case string: // some providers send a JSON string
		seconds, _ = strconv.ParseInt(v, 10, 64)
	}
	if seconds > 0 {
		tok.Expiry = p.now().Add(time.Duration(seconds) * time.Second)
	}
}

func (p *Provider) tokenContext(ctx context.Context) context.Context {
	return context.WithValue(ctx, oauth2.HTTPClient, p.tokenClient)
}

func equalSecret(got, want string) bool {
	return subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}
