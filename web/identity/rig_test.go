package identity_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/web/identity"
	"autopilotdesk/web/identity/demoidp"
)

const (
	clientID     = "autopilotdesk-test"
	clientSecret = "s3cret~with.odd_chars-"
	redirectURL  = "https://desk.example/auth/callback"
	signedOutURL = "https://desk.example/auth/signed-out"
)

// rig is a relying party signed in through the demo identity provider over loopback HTTP.
type rig struct {
	t        *testing.T
	idp      *demoidp.Provider
	srv      *httptest.Server
	rp       *identity.Provider
	idpClock *testkit.Clock
	rpClock  *testkit.Clock
	tamper   *tamperer // nil unless the rig re-signs ID tokens
}

type rigOption func(*rig, *identity.Config, *demoidp.Options)

func newRig(t *testing.T, opts ...rigOption) *rig {
	t.Helper()
	r := &rig{t: t, idpClock: testkit.NewClock(), rpClock: testkit.NewClock()}
	var handler http.Handler
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) { handler.ServeHTTP(w, req) }))
	t.Cleanup(r.srv.Close)
	idpOpts := demoidp.Options{Issuer: r.srv.URL, ClientID: clientID, ClientSecret: clientSecret,
		RedirectURIs: []string{redirectURL}, PostLogoutRedirectURIs: []string{signedOutURL}, Now: r.idpClock.Now}
	cfg := identity.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL,
		Scopes:   []string{"openid", "profile", "offline_access", "https://graph.microsoft.com/DeviceManagementServiceConfig.ReadWrite.All"},
		TenantID: demoidp.DemoTenantID, HTTPClient: r.srv.Client(), Now: r.rpClock.Now}
	for _, o := range opts {
		o(r, &cfg, &idpOpts)
	}
	var err error
	if r.idp, err = demoidp.New(idpOpts); err != nil {
		t.Fatal(err)
	}
	handler = r.idp
	if r.tamper != nil {
		r.tamper.next = r.idp
		handler = r.tamper
	}
	if cfg.IssuerURL == "" {
		cfg.IssuerURL = r.idp.IssuerURL()
	}
	if r.rp, err = identity.New(context.Background(), cfg); err != nil {
		t.Fatal(err)
	}
	return r
}

// authorize sends the browser to the provider as identity key and returns the query the provider
// sends back to the redirect URI.
func (r *rig) authorize(f identity.Flow, key string) url.Values {
	r.t.Helper()
	u, err := url.Parse(r.rp.AuthCodeURL(f))
	if err != nil {
		r.t.Fatal(err)
	}
	q := u.Query()
	q.Set("login_hint", key)
	u.RawQuery = q.Encode()
	return r.follow(u.String())
}

// follow GETs target without following the redirect and returns the redirect's query, which must
// point at the desk.
func (r *rig) follow(target string) url.Values {
	r.t.Helper()
	resp, err := noRedirects(r.srv.Client()).Get(target)
	if err != nil {
		r.t.Fatal(err)
	}
	resp.Body.Close()
	loc, err := url.Parse(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusFound || err != nil || !strings.HasPrefix(loc.String(), redirectURL) {
		r.t.Fatalf("GET %s: %d, Location %q", target, resp.StatusCode, resp.Header.Get("Location"))
	}
	return loc.Query()
}

func noRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// signIn runs a whole sign-in as identity key.
func (r *rig) signIn(key string) (*identity.Result, error) {
	r.t.Helper()
	f := r.rp.NewFlow("/uploads/new")
	return r.rp.Finish(context.Background(), f, r.authorize(f, key))
}

// tamperer stands between the relying party and the provider: it publishes its own signing key and
// re-signs every ID token after mutate has changed its claims, so a test changes exactly one claim
// and everything else stays valid.
type tamperer struct {
	next   http.Handler
	key    *rsa.PrivateKey
	mutate func(claims map[string]any)
}

var (
	tamperKeyOnce sync.Once
	tamperKey     *rsa.PrivateKey
)

// mustSignIn signs in as key; the test ends if that fails.
func (r *rig) mustSignIn(key string) *identity.Result {
	r.t.Helper()
	res, err := r.signIn(key)
	if err != nil {
		r.t.Fatal(err)
	}
	return res
}

// withTamperedIDToken puts a tamperer between the relying party and the provider.
func withTamperedIDToken(mutate func(claims map[string]any)) rigOption {
	return func(r *rig, _ *identity.Config, _ *demoidp.Options) {
		tamperKeyOnce.Do(func() {
			var err error
			if tamperKey, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
				panic(err)
			}
		})
		r.tamper = &tamperer{key: tamperKey, mutate: mutate}
	}
}

const tamperKeysPath = "/tamper/keys"

func (tp *tamperer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path == tamperKeysPath {
		writeJSON(w, jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &tp.key.PublicKey, KeyID: "tamper", Algorithm: "RS256", Use: "sig"}}})
		return
	}
	rec := httptest.NewRecorder()
	tp.next.ServeHTTP(rec, req)
	var body map[string]any
	if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &body) != nil {
		copyResponse(w, rec)
		return
	}
	switch {
	case strings.HasSuffix(req.URL.Path, "/.well-known/openid-configuration"):
		body["jwks_uri"] = "http://" + req.Host + tamperKeysPath
	case body["id_token"] != nil:
		body["id_token"] = tp.resign(body["id_token"].(string))
	}
	writeJSON(w, body)
}

func (tp *tamperer) resign(raw string) string {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		panic(err)
	}
	claims := map[string]any{}
	if err := tok.UnsafeClaimsWithoutVerification(&claims); err != nil {
		panic(err)
	}
	tp.mutate(claims)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: tp.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", "tamper"))
	if err != nil {
		panic(err)
	}
	out, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		panic(err)
	}
	return out
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func copyResponse(w http.ResponseWriter, rec *httptest.ResponseRecorder) {
	for k, vs := range rec.Header() {
		w.Header()[k] = vs
	}
	w.WriteHeader(rec.Code)
	io.Copy(w, rec.Body)
}

// newClientCertificate makes a self-signed certificate and its key, in PEM.
func newClientCertificate(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, certPEM, _ := testkit.ClientCertificate(t)
	return certPEM, testkit.PrivateKeyPEM(t, key)
}

// withClientCertificate registers registeredPEM with the provider (and no secret) and has the desk
// authenticate with cert.
func withClientCertificate(registeredPEM []byte, cert *identity.ClientCertificate) rigOption {
	return func(_ *rig, cfg *identity.Config, opts *demoidp.Options) {
		opts.ClientSecret, opts.ClientCertPEM = "", registeredPEM
		cfg.ClientSecret, cfg.ClientCertificate = "", cert
	}
}
