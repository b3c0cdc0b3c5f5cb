package demoidp

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// oauthError is an answer of the token endpoint other than tokens.
type oauthError struct {
	status            int
	code, description string
}

func (e *oauthError) Error() string { return e.code + ": " + e.description }

func invalidClient(description string) *oauthError {
	return &oauthError{http.StatusUnauthorized, "invalid_client", description}
}

func invalidGrant(description string) *oauthError {
	return &oauthError{http.StatusBadRequest, "invalid_grant", description}
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.tokenRequests++
	p.mu.Unlock()
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	var tokens map[string]any
	err := r.ParseForm()
	if err != nil {
		err = &oauthError{http.StatusBadRequest, "invalid_request", "AADSTS900144: The request body is not a valid form."}
	} else if err = p.authenticateClient(r); err == nil {
		tokens, err = p.grant(r.PostForm)
	}
	var oe *oauthError
	switch {
	case errors.As(err, &oe):
		writeJSON(w, oe.status, map[string]string{"error": oe.code, "error_description": oe.description})
	case err != nil:
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error", "error_description": err.Error()})
	default:
		writeJSON(w, http.StatusOK, tokens)
	}
}

func (p *Provider) grant(form url.Values) (map[string]any, error) {
	switch form.Get("grant_type") {
	case "authorization_code":
		return p.redeemCode(form)
	case "refresh_token":
		return p.redeemRefreshToken(form)
	}
	return nil, &oauthError{http.StatusBadRequest, "unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type."}
}

// authenticateClient accepts exactly one of client_secret_basic, client_secret_post and
// private_key_jwt.
func (p *Provider) authenticateClient(r *http.Request) error {
	form := r.PostForm
	basicID, basicSecret, hasBasic := r.BasicAuth()
	hasPost, hasAssertion := form.Has("client_secret"), form.Has("client_assertion")
	if n := countTrue(hasBasic, hasPost, hasAssertion); n != 1 {
		if n == 0 {
			return invalidClient("AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		}
		return &oauthError{http.StatusBadRequest, "invalid_request", "AADSTS90014: Use exactly one client authentication method."}
	}
	if hasAssertion {
		return p.checkClientAssertion(form)
	}
	id, secret := form.Get("client_id"), form.Get("client_secret")
	if hasBasic {
		// RFC 6749 §2.3.1: both parts are form-encoded before Basic encoding.
		var err1, err2 error
		id, err1 = url.QueryUnescape(basicID)
		secret, err2 = url.QueryUnescape(basicSecret)
		if err1 != nil || err2 != nil || (form.Has("client_id") && form.Get("client_id") != id) {
			return invalidClient("AADSTS7000215: Invalid client credentials provided.")
		}
	}
	switch {
	case id != p.clientID:
		return invalidClient("AADSTS700016: Application with identifier '" + id + "' was not found in the directory.")
	case p.secret == "":
		return invalidClient("AADSTS7000218: This application authenticates with a certificate, not a client secret.")
	case subtle.ConstantTimeCompare([]byte(secret), []byte(p.secret)) != 1:
		return invalidClient("AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
	case p.secretExpired:
		return invalidClient("AADSTS7000222: The provided client secret keys for app '" + id + "' are expired.")
	}
	return nil
}

func countTrue(bs ...bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// checkClientAssertion verifies a private_key_jwt assertion against the registered certificate.
func (p *Provider) checkClientAssertion(form url.Values) error {
	if p.cert == nil {
		return invalidClient("AADSTS700027: No certificate is registered for this application.")
	}
	if form.Get("client_assertion_type") != clientAssertionType {
		return invalidClient("AADSTS700023: The client_assertion_type must be " + clientAssertionType + ".")
	}
	if form.Has("client_id") && form.Get("client_id") != p.clientID {
		return invalidClient("AADSTS700016: Application with identifier '" + form.Get("client_id") + "' was not found in the directory.")
	}
	tok, err := jwt.ParseSigned(form.Get("client_assertion"), []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256})
	if err != nil || len(tok.Headers) != 1 {
		return invalidClient("AADSTS700027: The client assertion is not a signed JWT.")
	}
	h := tok.Headers[0].ExtraHeaders
	if h["x5t"] != p.cert.x5t && h["x5t#S256"] != p.cert.x5tS256 {
		return invalidClient("AADSTS700027: The certificate with the assertion's thumbprint is not registered for this application.")
	}
	var claims jwt.Claims
	if err := tok.Claims(p.cert.publicKey, &claims); err != nil {
		return invalidClient("AADSTS700027: The client assertion's signature does not verify.")
	}
	now := p.now()
	expected := jwt.Expected{Issuer: p.clientID, Subject: p.clientID, AnyAudience: jwt.Audience{p.endpoint("token")}, Time: now}
	if claims.Expiry == nil || claims.ID == "" || claims.ValidateWithLeeway(expected, 0) != nil {
		return invalidClient("AADSTS700024: The client assertion is expired, not yet valid, or for another client or audience.")
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, seen := p.assertionIDs[claims.ID]; seen {
		return invalidClient("AADSTS700027: The client assertion was already used.")
	}
	p.assertionIDs[claims.ID] = claims.Expiry.Time()
	return nil
}

func (p *Provider) redeemCode(form url.Values) (map[string]any, error) {
	code := form.Get("code")
	p.mu.Lock()
	c, ok := p.codes[code]
	delete(p.codes, code) // single use, whatever happens next
	p.mu.Unlock()
	switch {
	case !ok:
		return nil, invalidGrant("AADSTS54005: The authorization code is unknown or was already redeemed.")
	case !p.now().Before(c.expires):
		return nil, invalidGrant("AADSTS70008: The provided authorization code has expired.")
	case form.Get("redirect_uri") != c.redirectURI:
		return nil, invalidGrant("AADSTS50148: The redirect_uri does not match the one used in the authorization request.")
	case !pkceMatches(form.Get("code_verifier"), c.challenge):
		return nil, invalidGrant("AADSTS501481: The code_verifier does not match the code_challenge supplied in the authorization request.")
	}
	return p.issue(c.identity, c.scope, c.nonce)
}

// redeemRefreshToken rotates: a refresh token is good once, the answer carries its successor.
func (p *Provider) redeemRefreshToken(form url.Values) (map[string]any, error) {
	token := form.Get("refresh_token")
	p.mu.Lock()
	g, ok := p.refresh[token]
	delete(p.refresh, token)
	p.mu.Unlock()
	if !ok {
		return nil, invalidGrant("AADSTS700082: The refresh token has expired, was revoked or was already used.")
	}
	return p.issue(g.identity, g.scope, "")
}

func pkceMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	return subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) == 1
}

// loginHint is an opaque, stable reference to the account, as Entra's login_hint claim is.
func (p *Provider) loginHint(id Identity) string {
	sum := sha256.Sum256([]byte("login_hint|" + id.TenantID + "|" + id.ObjectID))
	return base64.RawURLEncoding.EncodeToString(sum[:18])
}

// subject is pairwise, as Entra's: the same account has another sub in another application.
func (p *Provider) subject(id Identity) string {
	sum := sha256.Sum256([]byte(p.clientID + "|" + id.TenantID + "|" + id.ObjectID))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// issue answers a token request: a signed ID token, an opaque access token and, when offline_access
// was asked for, a refresh token.
func (p *Provider) issue(id Identity, scope, nonce string) (map[string]any, error) {
	now := p.now()
	claims := map[string]any{
		"iss": p.IssuerURL(), "aud": p.clientID, "sub": p.subject(id), "ver": "2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(idTokenLifetime).Unix(),
		"tid": id.TenantID, "oid": id.ObjectID, "name": id.Name, "preferred_username": id.UPN,
		// Entra's optional claim: an opaque reference to the account, for sign-out's logout_hint.
		"login_hint": p.loginHint(id),
	}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	if p.noTenantClaims {
		delete(claims, "tid")
		delete(claims, "oid")
	}
	switch {
	case id.GroupsOverage:
		// As Entra writes it past 200 groups: no groups claim, a pointer to where they are.
		claims["_claim_names"] = map[string]string{"groups": "src1"}
		claims["_claim_sources"] = map[string]any{"src1": map[string]string{
			"endpoint": "https://graph.microsoft.com/v1.0/users/" + id.ObjectID + "/getMemberObjects"}}
	case len(id.Groups) > 0:
		claims["groups"] = id.Groups
	}
	idToken, err := jwt.Signed(p.signer).Claims(claims).Serialize()
	if err != nil {
		return nil, err
	}
	access := p.randomString(32)
	expires := now.Add(p.accessLifetime)
	resp := map[string]any{"token_type": "Bearer", "access_token": access, "id_token": idToken,
		"expires_in": int(p.accessLifetime.Seconds()), "scope": strings.Join(id.Scopes, " ")}
	offline := slices.Contains(strings.Fields(scope), "offline_access")
	var refresh string
	if offline {
		refresh = p.randomString(32)
		resp["refresh_token"] = refresh
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.forgetStale(now)
	p.access[access] = accessGrant{identity: id, info: AccessTokenInfo{AppID: p.clientID, TenantID: id.TenantID, ObjectID: id.ObjectID,
		UPN: id.UPN, Scopes: slices.Clone(id.Scopes), Groups: slices.Clone(id.Groups), IntuneReadOnly: id.IntuneReadOnly, ExpiresAt: expires}}
	if offline {
		p.refresh[refresh] = refreshGrant{identity: id, scope: scope}
	}
	return resp, nil
}

// forgetStale drops what can no longer be used, so a long-running demo does not grow without end.
func (p *Provider) forgetStale(now time.Time) {
	maps.DeleteFunc(p.codes, func(_ string, c authCode) bool { return now.After(c.expires) })
	maps.DeleteFunc(p.access, func(_ string, g accessGrant) bool { return now.Sub(g.info.ExpiresAt) > forgetAfter })
	maps.DeleteFunc(p.assertionIDs, func(_ string, exp time.Time) bool { return now.After(exp) })
}
