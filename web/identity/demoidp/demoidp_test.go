package demoidp

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/devtools/testkit"
)

const (
	testClient   = "desk"
	testSecret   = "secret"
	testRedirect = "https://desk.example/auth/callback"
	testLogout   = "https://desk.example/auth/signed-out"
	testBase     = "http://idp.example"
	verifier     = "0123456789abcdefghijklmnopqrstuvwxyz-._~ABCDEFG"
)

func newTestProvider(t *testing.T) (*Provider, *testkit.Clock) {
	t.Helper()
	clock := testkit.NewClock()
	p, err := New(Options{Issuer: testBase, ClientID: testClient, ClientSecret: testSecret,
		RedirectURIs: []string{testRedirect}, PostLogoutRedirectURIs: []string{testLogout}, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	return p, clock
}

func challenge(v string) string {
	sum := sha256.Sum256([]byte(v))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

func authorizeQuery() url.Values {
	return url.Values{"client_id": {testClient}, "redirect_uri": {testRedirect}, "response_type": {"code"},
		"response_mode": {"query"}, "scope": {"openid profile offline_access"}, "state": {"st"}, "nonce": {"no"},
		"code_challenge": {challenge(verifier)}, "code_challenge_method": {"S256"}}
}

func serve(p *Provider, req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	p.ServeHTTP(rec, req)
	return rec
}

func authorize(p *Provider, q url.Values) *httptest.ResponseRecorder {
	return serve(p, httptest.NewRequest(http.MethodGet, testBase+"/"+DemoTenantID+"/oauth2/v2.0/authorize?"+q.Encode(), nil))
}

// answer is where the provider sent the browser back to the desk, with its query.
func answer(t *testing.T, rec *httptest.ResponseRecorder) url.Values {
	t.Helper()
	loc, err := url.Parse(rec.Header().Get("Location"))
	if rec.Code != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), testRedirect+"?") {
		t.Fatalf("authorize: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	return loc.Query()
}

func codeFor(t *testing.T, p *Provider, key string) string {
	t.Helper()
	q := authorizeQuery()
	q.Set("login_hint", key)
	return answer(t, authorize(p, q)).Get("code")
}

func postToken(p *Provider, form url.Values, basic bool) (int, map[string]any) {
	if !basic {
		form.Set("client_id", testClient)
		form.Set("client_secret", testSecret)
	}
	return postTokenRequest(p, form, basic)
}

// postTokenForm posts form as it is, with no client authentication added.
func postTokenForm(p *Provider, form url.Values) (int, map[string]any) {
	return postTokenRequest(p, form, false)
}

func postTokenRequest(p *Provider, form url.Values, basic bool) (int, map[string]any) {
	req := httptest.NewRequest(http.MethodPost, testBase+"/"+DemoTenantID+"/oauth2/v2.0/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basic {
		req.SetBasicAuth(testClient, testSecret)
	}
	rec := serve(p, req)
	var body map[string]any
	json.Unmarshal(rec.Body.Bytes(), &body)
	return rec.Code, body
}

func redeem(p *Provider, code, v string) (int, map[string]any) {
	return postToken(p, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {testRedirect}, "code_verifier": {v}}, true)
}

func TestDiscoveryIsShapedLikeEntra(t *testing.T) {
	p, _ := newTestProvider(t)
	rec := serve(p, httptest.NewRequest(http.MethodGet, testBase+"/"+DemoTenantID+"/v2.0/.well-known/openid-configuration", nil))
	var doc map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if p.IssuerURL() != testBase+"/"+DemoTenantID+"/v2.0" || doc["issuer"] != p.IssuerURL() {
		t.Errorf("issuer %v, IssuerURL %s", doc["issuer"], p.IssuerURL())
	}
	for k, want := range map[string]string{
		"token_endpoint":       testBase + "/" + DemoTenantID + "/oauth2/v2.0/token",
		"end_session_endpoint": testBase + "/" + DemoTenantID + "/oauth2/v2.0/logout",
		"jwks_uri":             testBase + "/" + DemoTenantID + "/discovery/v2.0/keys",
	} {
		if doc[k] != want {
			t.Errorf("%s = %v", k, doc[k])
		}
	}
	keys := serve(p, httptest.NewRequest(http.MethodGet, doc["jwks_uri"].(string), nil))
	if !strings.Contains(keys.Body.String(), `"kty":"RSA"`) {
		t.Errorf("keys: %s", keys.Body)
	}
}

func TestAuthorizeValidatesTheRequest(t *testing.T) {
	p, _ := newTestProvider(t)
	for _, tc := range []struct {
		name   string
		change func(url.Values)
		error  string // "" means the provider must not redirect at all
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "evil") }, ""},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "https://evil.example/cb") }, ""},
		{"redirect with extra path", func(q url.Values) { q.Set("redirect_uri", testRedirect+"/x") }, ""},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "token") }, "unsupported_response_type"},
		{"form_post", func(q url.Values) { q.Set("response_mode", "form_post") }, "invalid_request"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge"); q.Del("code_challenge_method") }, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, "invalid_request"},
		{"no nonce", func(q url.Values) { q.Del("nonce") }, "invalid_request"},
		{"no state", func(q url.Values) { q.Del("state") }, "invalid_request"},
		{"no openid", func(q url.Values) { q.Set("scope", "profile") }, "invalid_scope"},
	} {
		q := authorizeQuery()
		q.Set("login_hint", AdminKey)
		tc.change(q)
		rec := authorize(p, q)
		if tc.error == "" {
			if rec.Code != http.StatusBadRequest || rec.Header().Get("Location") != "" {
				t.Errorf("%s: %d, Location %q", tc.name, rec.Code, rec.Header().Get("Location"))
			}
			continue
		}
		if got := answer(t, rec); got.Get("error") != tc.error || got.Get("code") != "" {
			t.Errorf("%s: answer %v", tc.name, got)
		}
	}
}

func TestPickerOffersEveryIdentityAccessibly(t *testing.T) {
	p, _ := newTestProvider(t)
	rec := authorize(p, authorizeQuery())
	if rec.Code != http.StatusOK || !strings.Contains(rec.Header().Get("Content-Security-Policy"), "form-action 'self' https://desk.example") {
		t.Fatalf("picker: %d, CSP %q", rec.Code, rec.Header().Get("Content-Security-Policy"))
	}
	doc, err := goquery.NewDocumentFromReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	if h := doc.Find("h1").Text(); h != "Demo sign-in" {
		t.Errorf("heading %q", h)
	}
	for _, id := range p.Identities() {
		b := doc.Find(`button[name="login_hint"][value="` + id.Key + `"]`)
		about := doc.Find("#" + b.AttrOr("aria-describedby", "none")).Text()
		if !strings.Contains(b.Text(), id.Name) || !strings.Contains(b.Text(), id.UPN) || about != id.Description {
			t.Errorf("%s: button %q, description %q", id.Key, b.Text(), about)
		}
	}
	for _, key := range []string{"no-consent", "not-assigned"} {
		if doc.Find(`button[value="`+key+`"]`).Length() != 1 {
			t.Errorf("no %s button", key)
		}
	}
	hidden := url.Values{}
	doc.Find(`form input[type="hidden"]`).Each(func(_ int, s *goquery.Selection) { hidden.Add(s.AttrOr("name", ""), s.AttrOr("value", "")) })
	if hidden.Encode() != authorizeQuery().Encode() {
		t.Errorf("the form does not carry the request on: %v", hidden)
	}
	cancel, _ := url.Parse(doc.Find("a.cancel").AttrOr("href", ""))
	if got := answer(t, authorize(p, cancel.Query())); got.Get("error") != "access_denied" || got.Get("state") != "st" {
		t.Errorf("cancel answered %v", got)
	}
	if doc.Find("[style], script, style").Length() != 0 {
		t.Error("inline style or script on the picker")
	}
	css := serve(p, httptest.NewRequest(http.MethodGet, testBase+doc.Find(`link[rel="stylesheet"]`).AttrOr("href", ""), nil))
	if css.Code != http.StatusOK || !strings.HasPrefix(css.Header().Get("Content-Type"), "text/css") || css.Body.Len() == 0 {
		t.Errorf("stylesheet: %d %q", css.Code, css.Header().Get("Content-Type"))
	}
}

func TestSignInProblemsAnswerLikeEntra(t *testing.T) {
	p, _ := newTestProvider(t)
	for key, want := range map[string]string{"no-consent": "AADSTS65001", "not-assigned": "AADSTS50105", "cancel": "AADSTS65004"} {
		q := authorizeQuery()
		q.Set("login_hint", key)
		if got := answer(t, authorize(p, q)); !strings.HasPrefix(got.Get("error_description"), want+":") || got.Get("state") != "st" {
			t.Errorf("%s: %v", key, got)
		}
	}
}

func TestCodesAreSingleUseShortLivedAndBoundToPKCE(t *testing.T) {
	p, clock := newTestProvider(t)
	if status, body := redeem(p, codeFor(t, p, AdminKey), "another-verifier-0123456789abcdefghijklmnopqrstu"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("wrong verifier: %d %v", status, body)
	}
	code := codeFor(t, p, AdminKey)
	if status, body := redeem(p, code, verifier); status != http.StatusOK || body["access_token"] == nil || body["refresh_token"] == nil {
		t.Fatalf("redeem: %d %v", status, body)
	}
	if status, body := redeem(p, code, verifier); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("replayed code: %d %v", status, body)
	}
	code = codeFor(t, p, AdminKey)
	clock.Advance(61 * time.Second)
	if status, body := redeem(p, code, verifier); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("expired code: %d %v", status, body)
	}
	if n := p.TokenRequests(); n != 4 {
		t.Errorf("TokenRequests = %d, want 4", n)
	}
}

func TestClientAuthentication(t *testing.T) {
	p, _ := newTestProvider(t)
	form := func() url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {codeFor(t, p, ReaderKey)}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
	}
	if status, body := postToken(p, form(), false); status != http.StatusOK {
		t.Errorf("client_secret_post: %d %v", status, body)
	}
	f := form()
	f.Set("client_secret", "wrong")
	f.Set("client_id", testClient)
	if status, body := postToken(p, f, true); status != http.StatusBadRequest || body["error"] != "invalid_request" {
		t.Errorf("two methods at once: %d %v", status, body)
	}
	f = form()
	f.Set("client_id", testClient)
	f.Set("client_secret", "wrong")
	req := httptest.NewRequest(http.MethodPost, p.endpoint("token"), strings.NewReader(f.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if rec := serve(p, req); rec.Code != http.StatusUnauthorized || !strings.Contains(rec.Body.String(), "invalid_client") {
		t.Errorf("wrong secret: %d %s", rec.Code, rec.Body)
	}
}

func TestRefreshTokensRotate(t *testing.T) {
	p, _ := newTestProvider(t)
	_, first := redeem(p, codeFor(t, p, AdminKey), verifier)
	refresh := func(token any) (int, map[string]any) {
		return postToken(p, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token.(string)}}, true)
	}
	status, second := refresh(first["refresh_token"])
	if status != http.StatusOK || second["refresh_token"] == first["refresh_token"] || second["access_token"] == first["access_token"] {
		t.Fatalf("refresh: %d %v", status, second)
	}
	if status, body := refresh(first["refresh_token"]); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("reused refresh token: %d %v", status, body)
	}
	p.RevokeRefreshTokens()
	if status, body := refresh(second["refresh_token"]); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("revoked refresh token: %d %v", status, body)
	}
}

func TestAccessTokens(t *testing.T) {
	p, clock := newTestProvider(t)
	_, body := redeem(p, codeFor(t, p, ReaderKey), verifier)
	token := body["access_token"].(string)
	info, err := p.VerifyAccessToken(token)
	want := AccessTokenInfo{TenantID: DemoTenantID, ObjectID: ReaderObjectID, UPN: "MeganB@contoso.example",
		Scopes: []string{"DeviceManagementServiceConfig.ReadWrite.All", "User.Read"}, Groups: []string{HelpDeskGroupID},
		IntuneReadOnly: true, ExpiresAt: clock.Now().Add(time.Hour)}
	if err != nil || info.TenantID != want.TenantID || info.ObjectID != want.ObjectID || info.UPN != want.UPN || info.IntuneReadOnly != want.IntuneReadOnly ||
		!slices.Equal(info.Scopes, want.Scopes) || !slices.Equal(info.Groups, want.Groups) || !info.ExpiresAt.Equal(want.ExpiresAt) {
		t.Errorf("info %+v, %v", info, err)
	}
	if _, err := p.VerifyAccessToken("made-up"); !errors.Is(err, ErrTokenUnknown) {
		t.Errorf("unknown token: %v", err)
	}
	p.ExpireAccessTokens()
	if _, err := p.VerifyAccessToken(token); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("after ExpireAccessTokens: %v", err)
	}
	_, body = redeem(p, codeFor(t, p, AdminKey), verifier)
	clock.Advance(time.Hour)
	if _, err := p.VerifyAccessToken(body["access_token"].(string)); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("after its lifetime: %v", err)
	}
}

func TestLogout(t *testing.T) {
	p, _ := newTestProvider(t)
	logout := func(target string) *httptest.ResponseRecorder {
		return serve(p, httptest.NewRequest(http.MethodGet, p.endpoint("logout")+"?"+url.Values{"post_logout_redirect_uri": {target}}.Encode(), nil))
	}
	if rec := logout(testLogout); rec.Code != http.StatusFound || rec.Header().Get("Location") != testLogout {
		t.Errorf("registered: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := logout("https://evil.example/"); rec.Code != http.StatusOK || rec.Header().Get("Location") != "" || !strings.Contains(rec.Body.String(), "signed out") {
		t.Errorf("unregistered: %d %q", rec.Code, rec.Header().Get("Location"))
	}
}

func TestRandMakesCodesRepeatable(t *testing.T) {
	codes := make([]string, 2)
	for i := range codes {
		p, err := New(Options{Issuer: testBase, ClientID: testClient, ClientSecret: testSecret, RedirectURIs: []string{testRedirect},
			Rand: bytes.NewReader(make([]byte, 32))})
		if err != nil {
			t.Fatal(err)
		}
		codes[i] = codeFor(t, p, AdminKey)
	}
	if codes[0] != codes[1] {
		t.Errorf("codes differ with the same Rand: %q, %q", codes[0], codes[1])
	}
}

// An account in more groups than a token lists gets Entra's overage claims instead of groups.
func TestGroupsOverageClaims(t *testing.T) {
	p, _ := newTestProvider(t)
	_, body := redeem(p, codeFor(t, p, ManyGroupsKey), verifier)
	claims := idTokenClaims(t, body["id_token"].(string))
	names, _ := claims["_claim_names"].(map[string]any)
	if _, listed := claims["groups"]; listed || names["groups"] != "src1" || claims["_claim_sources"] == nil {
		t.Errorf("overage claims: %v", claims)
	}
	info, err := p.VerifyAccessToken(body["access_token"].(string))
	if err != nil || !slices.Equal(info.Groups, []string{HelpDeskGroupID}) {
		t.Errorf("the access token's account: %+v %v", info, err)
	}
}

// idTokenClaims reads an ID token's payload (the signature is checked by the desk's own tests).
func idTokenClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %d parts", len(parts))
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}
