// Package demoidp is the demo identity provider: a small but real OpenID Connect provider with fixed
// identities, shaped like Microsoft Entra ID (tenant issuer, tid and oid claims, AADSTS errors). Demo
// mode and the tests sign in through it; the Graph emulator checks its opaque access tokens.
package demoidp

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	mathrand "math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Access token failures.
var (
	ErrTokenExpired = errors.New("demoidp: access token expired")
	ErrTokenUnknown = errors.New("demoidp: access token unknown")
)

const (
	codeLifetime    = 60 * time.Second
	idTokenLifetime = time.Hour
	// forgetAfter is how long an expired access token is still recognised as expired (not unknown).
	forgetAfter = 24 * time.Hour
)

// Options configure the provider.
type Options struct {
	// Issuer is the origin both the browser and the desk reach, e.g. http://127.0.0.1:8081.
	Issuer                 string
	ClientID, ClientSecret string // an empty secret allows only private_key_jwt
	// SecretExpired makes the token endpoint refuse the right client secret as Entra refuses one
	// past its expiry date (AADSTS7000222).
	SecretExpired bool
	// RedirectURIs and PostLogoutRedirectURIs are the registered addresses; on loopback
	// (http://localhost, http://127.0.0.1, http://[::1]) any port matches, as with Entra.
	RedirectURIs           []string
	PostLogoutRedirectURIs []string
	// ClientCertPEM registers the client's certificate for private_key_jwt client authentication.
	ClientCertPEM       []byte
	AccessTokenLifetime time.Duration // default 1 h
	Now                 func() time.Time
	// Rand, when set, makes codes, tokens and the key id repeatable (screenshots). The signing key
	// stays random: Go's crypto ignores custom randomness.
	Rand io.Reader
	// WithoutTenantClaims makes the provider answer like a generic OpenID Connect provider
	// (Keycloak, Authentik, Okta...): its ID tokens and userinfo carry no tid and no oid, so the
	// subject alone identifies the account. Access tokens still name the tenant for the emulator.
	WithoutTenantClaims bool
}

// AccessTokenInfo is what an access token grants.
type AccessTokenInfo struct {
	AppID                   string // the client the token was issued to
	TenantID, ObjectID, UPN string
	Scopes                  []string
	Groups                  []string // the account's group memberships, which Graph knows
	IntuneReadOnly          bool     // the account's Intune role may not change Autopilot devices
	ExpiresAt               time.Time
}

type authCode struct {
	identity    Identity
	redirectURI string
	challenge   string
	nonce       string
	scope       string
	expires     time.Time
}

type accessGrant struct {
	info     AccessTokenInfo
	identity Identity
}

type refreshGrant struct {
	identity Identity
	scope    string
}

type clientCert struct {
	x5t, x5tS256 string
	publicKey    any
}

// Provider is the demo identity provider; it implements http.Handler.
type Provider struct {
	base                  string
	clientID, secret      string
	secretExpired         bool
	redirectURIs, logouts []string
	cert                  *clientCert
	accessLifetime        time.Duration
	now                   func() time.Time
	identities            []Identity
	noTenantClaims        bool
	key                   *rsa.PrivateKey
	keyID                 string
	signer                jose.Signer
	mux                   *http.ServeMux

	randMu sync.Mutex
	rand   func([]byte)

	mu            sync.Mutex
	codes         map[string]authCode
	access        map[string]accessGrant
	refresh       map[string]refreshGrant
	assertionIDs  map[string]time.Time // jti → expiry, so no client assertion is accepted twice
	tokenRequests int
}

// New creates a provider with a fresh RSA signing key.
func New(opts Options) (*Provider, error) {
	u, err := url.Parse(opts.Issuer)
	if err != nil || u.Scheme == "" || u.Host == "" || strings.Trim(u.Path, "/") != "" {
		return nil, fmt.Errorf("demoidp: the issuer %q must be an origin such as http://127.0.0.1:8081", opts.Issuer)
	}
	if opts.ClientID == "" {
		return nil, errors.New("demoidp: the client id is missing")
	}
	if opts.ClientSecret == "" && opts.ClientCertPEM == nil {
		return nil, errors.New("demoidp: register a client secret or a client certificate")
	}
	p := &Provider{
		base: u.Scheme + "://" + u.Host, clientID: opts.ClientID, secret: opts.ClientSecret, secretExpired: opts.SecretExpired,
		redirectURIs: slices.Clone(opts.RedirectURIs), logouts: slices.Clone(opts.PostLogoutRedirectURIs),
		accessLifetime: opts.AccessTokenLifetime, now: opts.Now, identities: demoIdentities(), noTenantClaims: opts.WithoutTenantClaims,
		codes: map[string]authCode{}, access: map[string]accessGrant{}, refresh: map[string]refreshGrant{},
		assertionIDs: map[string]time.Time{},
	}
	if p.accessLifetime <= 0 {
		p.accessLifetime = time.Hour
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.rand = func(b []byte) { rand.Read(b) }
	if opts.Rand != nil {
		var seed [32]byte
		if _, err := io.ReadFull(opts.Rand, seed[:]); err != nil {
			return nil, fmt.Errorf("demoidp: read the random seed: %w", err)
		}
		stream := mathrand.NewChaCha8(seed)
		p.rand = func(b []byte) { stream.Read(b) }
	}
	if opts.ClientCertPEM != nil {
		if p.cert, err = parseClientCert(opts.ClientCertPEM); err != nil {
			return nil, err
		}
	}
	if p.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
		return nil, err
	}
	p.keyID = p.randomString(8)
	p.signer, err = jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: p.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", p.keyID))
	if err != nil {
		return nil, err
	}
	p.mux = p.routes()
	return p, nil
}

func parseClientCert(data []byte) (*clientCert, error) {
	for {
		var b *pem.Block
		if b, data = pem.Decode(data); b == nil {
			return nil, errors.New("demoidp: no PEM certificate in the client certificate")
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("demoidp: client certificate: %w", err)
		}
		s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
		return &clientCert{x5t: base64.RawURLEncoding.EncodeToString(s1[:]),
			x5tS256: base64.RawURLEncoding.EncodeToString(s256[:]), publicKey: cert.PublicKey}, nil
	}
}

const stylesheetPath = "/demo-idp/picker.css"

func (p *Provider) routes() *http.ServeMux {
	t := "/" + DemoTenantID
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+t+"/v2.0/.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET "+t+"/discovery/v2.0/keys", p.keys)
	mux.HandleFunc("GET "+t+"/oauth2/v2.0/authorize", p.authorize)
	mux.HandleFunc("POST "+t+"/oauth2/v2.0/token", p.token)
	mux.HandleFunc("GET "+t+"/oauth2/v2.0/logout", p.logout)
	mux.HandleFunc("GET /oidc/userinfo", p.userinfo)
	mux.HandleFunc("GET "+stylesheetPath, serveStylesheet)
	// Browsers ask every origin for an icon; answering "nothing" keeps their consoles clean.
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	return mux
}

func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	p.mux.ServeHTTP(w, r)
}

// IssuerURL is the demo tenant's issuer, shaped like Entra's: {base}/{DemoTenantID}/v2.0.
func (p *Provider) IssuerURL() string { return p.base + "/" + DemoTenantID + "/v2.0" }

func (p *Provider) endpoint(name string) string {
	return p.base + "/" + DemoTenantID + "/oauth2/v2.0/" + name
}

// Identities lists the accounts the picker offers.
func (p *Provider) Identities() []Identity {
	out := make([]Identity, len(p.identities))
	for i, id := range p.identities {
		out[i] = cloneIdentity(id)
	}
	return out
}

func (p *Provider) identityByKey(key string) (Identity, bool) {
	i := slices.IndexFunc(p.identities, func(id Identity) bool { return id.Key == key })
	if i < 0 {
		return Identity{}, false
	}
	return cloneIdentity(p.identities[i]), true
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	var authMethods []string
	if p.secret != "" {
		authMethods = append(authMethods, "client_secret_basic", "client_secret_post")
	}
	if p.cert != nil {
		authMethods = append(authMethods, "private_key_jwt")
	}
	claims := []string{"sub", "iss", "aud", "exp", "iat", "nbf", "nonce", "tid", "oid", "name", "preferred_username", "groups", "login_hint"}
	if p.noTenantClaims {
		claims = slices.DeleteFunc(claims, func(c string) bool { return c == "tid" || c == "oid" })
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.IssuerURL(),
		"authorization_endpoint":                p.endpoint("authorize"),
		"token_endpoint":                        p.endpoint("token"),
		"end_session_endpoint":                  p.endpoint("logout"),
		"jwks_uri":                              p.base + "/" + DemoTenantID + "/discovery/v2.0/keys",
		"userinfo_endpoint":                     p.base + "/oidc/userinfo",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": authMethods,
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"claims_supported":                      claims,
	})
}

func (p *Provider) keys(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: &p.key.PublicKey, KeyID: p.keyID, Algorithm: string(jose.RS256), Use: "sig"},
	}})
}

// logout ends the demo session: back to the application when it registered the address.
func (p *Provider) logout(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	if target := q.Get("post_logout_redirect_uri"); target != "" && registered(p.logouts, target) {
		if state := q.Get("state"); state != "" {
			target = withQuery(target, url.Values{"state": {state}})
		}
		http.Redirect(w, r, target, http.StatusFound)
		return
	}
	p.renderPage(w, http.StatusOK, page{Title: "Signed out", Message: "You are signed out of the demo identity provider. You can close this tab."})
}

// userinfo answers who an access token belongs to, as the OpenID Connect userinfo endpoint does.
func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	p.mu.Lock()
	grant, known := p.access[token]
	p.mu.Unlock()
	if !ok || !known || !p.now().Before(grant.info.ExpiresAt) {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	id := grant.identity
	info := map[string]string{"sub": p.subject(id), "oid": id.ObjectID, "tid": id.TenantID, "name": id.Name, "preferred_username": id.UPN}
	if p.noTenantClaims {
		delete(info, "oid")
		delete(info, "tid")
	}
	writeJSON(w, http.StatusOK, info)
}

// VerifyAccessToken resolves an access token the provider issued.
func (p *Provider) VerifyAccessToken(token string) (AccessTokenInfo, error) {
	p.mu.Lock()
	grant, ok := p.access[token]
	p.mu.Unlock()
	if !ok {
		return AccessTokenInfo{}, ErrTokenUnknown
	}
	if !p.now().Before(grant.info.ExpiresAt) {
		return AccessTokenInfo{}, ErrTokenExpired
	}
	info := grant.info
	info.Scopes = slices.Clone(info.Scopes)
	return info, nil
}

// ExpireAccessTokens makes every access token issued so far expired (tests).
func (p *Provider) ExpireAccessTokens() {
	now := p.now()
	p.mu.Lock()
	defer p.mu.Unlock()
	for token, grant := range p.access {
		grant.info.ExpiresAt = now
		p.access[token] = grant
	}
}

// RevokeRefreshTokens makes the next refresh fail with invalid_grant (tests).
func (p *Provider) RevokeRefreshTokens() {
	p.mu.Lock()
	defer p.mu.Unlock()
	clear(p.refresh)
}

// TokenRequests counts the calls to the token endpoint.
func (p *Provider) TokenRequests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tokenRequests
}

// IssuedTokens lists the access and refresh tokens the provider still knows (tests assert none leaks).
func (p *Provider) IssuedTokens() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.access)+len(p.refresh))
	for token := range p.access {
		out = append(out, token)
	}
	for token := range p.refresh {
		out = append(out, token)
	}
	return out
}

// randomString is n random bytes, URL-safe.
func (p *Provider) randomString(n int) string {
	b := make([]byte, n)
	p.randMu.Lock()
	p.rand(b)
	p.randMu.Unlock()
	return base64.RawURLEncoding.EncodeToString(b)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

// withQuery adds values to an absolute URL's query, keeping what it already has.
func withQuery(raw string, v url.Values) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	q := u.Query()
	for k, vs := range v {
		q[k] = vs
	}
	u.RawQuery = q.Encode()
	return u.String()
}
