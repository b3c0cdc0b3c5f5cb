package identity_test

import (
	"context"
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/web/identity"
	"autopilotdesk/web/identity/demoidp"
)

func TestAuthCodeURLAsksForCodeWithPKCEStateAndNonce(t *testing.T) {
	r := newRig(t)
	f := r.rp.NewFlow("/uploads/new")
	u, err := url.Parse(r.rp.AuthCodeURL(f))
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	want := map[string]string{"response_type": "code", "response_mode": "query", "code_challenge_method": "S256",
		"client_id": clientID, "redirect_uri": redirectURL, "state": f.State, "nonce": f.Nonce,
		"code_challenge": oauth2.S256ChallengeFromVerifier(f.Verifier)}
	for k, v := range want {
		if q.Get(k) != v {
			t.Errorf("%s = %q, want %q", k, q.Get(k), v)
		}
	}
	if scopes := strings.Fields(q.Get("scope")); !slices.Contains(scopes, "openid") || !slices.Contains(scopes, "offline_access") {
		t.Errorf("scope = %q", q.Get("scope"))
	}
	g := r.rp.NewFlow("/")
	for _, v := range []string{f.State, f.Nonce, f.Verifier} {
		if len(v) < 22 || v == g.State || v == g.Nonce || v == g.Verifier {
			t.Errorf("flow value %q is short or repeats", v)
		}
	}
	if f.ReturnTo != "/uploads/new" || !f.CreatedAt.Equal(r.rpClock.Now()) {
		t.Errorf("flow = %+v", f)
	}
}

// Past 200 groups Entra leaves the groups claim out and points to Graph instead.
func TestGroupsOverageIsRecognised(t *testing.T) {
	r := newRig(t)
	res := r.mustSignIn(demoidp.ManyGroupsKey)
	if !res.User.GroupsOverage || len(res.User.Groups) != 0 {
		t.Errorf("user = %+v, want the overage recognised", res.User)
	}
	if res, err := r.signIn(demoidp.AdminKey); err != nil || res.User.GroupsOverage {
		t.Errorf("an account with its groups listed: %+v %v", res, err)
	}
}

func TestSignInAsIntuneAdministrator(t *testing.T) {
	r := newRig(t)
	res := r.mustSignIn(demoidp.AdminKey)
	want := identity.User{TenantID: demoidp.DemoTenantID, ObjectID: demoidp.AdminObjectID, Name: "Adele Vance",
		UPN: "AdeleV@contoso.example", Groups: []string{demoidp.HelpDeskGroupID}}
	if res.User.TenantID != want.TenantID || res.User.ObjectID != want.ObjectID || res.User.Name != want.Name ||
		res.User.UPN != want.UPN || !slices.Equal(res.User.Groups, want.Groups) {
		t.Errorf("user = %+v, want %+v", res.User, want)
	}
	if res.IDToken == "" || res.Token.RefreshToken == "" {
		t.Error("the ID token or the refresh token is missing")
	}
	info, err := r.idp.VerifyAccessToken(res.Token.AccessToken)
	if err != nil || !slices.Equal(info.Scopes, []string{"DeviceManagementServiceConfig.ReadWrite.All", "User.Read"}) {
		t.Errorf("access token: %+v, %v", info, err)
	}
}

func TestFinishRefusesTamperedFlows(t *testing.T) {
	ctx := context.Background()
	// A callback finished after one thing changed: the answer lost its state, the flow outlived
	// its lifetime, or its verifier or nonce is another flow's.
	invalidGrant := func(err error) bool {
		var re *oauth2.RetrieveError
		return errors.As(err, &re) && re.ErrorCode == "invalid_grant"
	}
	for _, tc := range []struct {
		name   string
		change func(r *rig, f *identity.Flow, cb url.Values)
		want   func(error) bool
	}{
		{"missing state", func(_ *rig, _ *identity.Flow, cb url.Values) { cb.Del("state") },
			func(err error) bool { return errors.Is(err, identity.ErrStateMismatch) }},
		{"flow older than its lifetime", func(r *rig, _ *identity.Flow, _ url.Values) { r.rpClock.Advance(identity.FlowLifetime + time.Second) },
			func(err error) bool { return errors.Is(err, identity.ErrFlowExpired) }},
		{"verifier of another flow (PKCE)", func(r *rig, f *identity.Flow, _ url.Values) { f.Verifier = r.rp.NewFlow("/").Verifier }, invalidGrant},
		{"nonce of another flow", func(r *rig, f *identity.Flow, _ url.Values) { f.Nonce = r.rp.NewFlow("/").Nonce },
			func(err error) bool { return errors.Is(err, identity.ErrNonceMismatch) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t)
			f := r.rp.NewFlow("/")
			cb := r.authorize(f, demoidp.AdminKey)
			tc.change(r, &f, cb)
			if _, err := r.rp.Finish(ctx, f, cb); !tc.want(err) {
				t.Errorf("err = %v", err)
			}
		})
	}
	t.Run("state of another flow", func(t *testing.T) {
		r := newRig(t)
		mine, theirs := r.rp.NewFlow("/"), r.rp.NewFlow("/")
		if _, err := r.rp.Finish(ctx, mine, r.authorize(theirs, demoidp.AdminKey)); !errors.Is(err, identity.ErrStateMismatch) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		r := newRig(t)
		f := r.rp.NewFlow("/")
		cb := r.authorize(f, demoidp.AdminKey)
		if _, err := r.rp.Finish(ctx, f, cb); err != nil {
			t.Fatal(err)
		}
		before := r.idp.TokenRequests()
		if _, err := r.rp.Finish(ctx, f, cb); !invalidGrant(err) {
			t.Errorf("replay: %v", err)
		}
		if n := r.idp.TokenRequests() - before; n != 1 {
			t.Errorf("the replay reached the token endpoint %d times, want once", n)
		}
	})
	t.Run("expired ID token", func(t *testing.T) {
		r := newRig(t)
		r.rpClock.Advance(2 * time.Hour) // the desk's clock is past the token's one-hour life
		var expired *oidc.TokenExpiredError
		if _, err := r.signIn(demoidp.AdminKey); !errors.As(err, &expired) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("personal account", func(t *testing.T) {
		r := newRig(t)
		if _, err := r.signIn(demoidp.PersonalKey); !errors.Is(err, identity.ErrPersonalAccount) {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("account of another tenant", func(t *testing.T) {
		r := newRig(t, func(_ *rig, cfg *identity.Config, _ *demoidp.Options) {
			cfg.TenantID = "0d6c1f2a-1111-4222-8333-944455566677"
		})
		if _, err := r.signIn(demoidp.AdminKey); !errors.Is(err, identity.ErrWrongTenant) {
			t.Errorf("err = %v", err)
		}
	})
}

func TestFinishChecksEveryIDTokenClaim(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(map[string]any)
		check  func(error) bool
	}{
		{"untouched", func(map[string]any) {}, func(err error) bool { return err == nil }},
		{"wrong issuer", func(c map[string]any) {
			c["iss"] = "https://login.microsoftonline.com/" + demoidp.DemoTenantID + "/v2.0"
		},
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "issue") }},
		{"wrong audience", func(c map[string]any) { c["aud"] = "another-application" },
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "audience") }},
		{"expired", func(c map[string]any) { c["exp"] = testkit.NewClock().Now().Add(-time.Minute).Unix() },
			func(err error) bool { var e *oidc.TokenExpiredError; return errors.As(err, &e) }},
		{"no nonce", func(c map[string]any) { delete(c, "nonce") },
			func(err error) bool { return errors.Is(err, identity.ErrNonceMismatch) }},
		{"tid of another tenant", func(c map[string]any) { c["tid"] = "0d6c1f2a-1111-4222-8333-944455566677" },
			func(err error) bool { return errors.Is(err, identity.ErrWrongTenant) }},
		{"personal accounts tenant", func(c map[string]any) { c["tid"] = identity.PersonalAccountsTenantID },
			func(err error) bool { return errors.Is(err, identity.ErrPersonalAccount) }},
		{"no tid", func(c map[string]any) { delete(c, "tid") },
			func(err error) bool { return errors.Is(err, identity.ErrNoTenantClaim) }},
		{"no oid", func(c map[string]any) { delete(c, "oid") },
			func(err error) bool { return err != nil && strings.Contains(err.Error(), "oid") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, withTamperedIDToken(tc.mutate))
			if _, err := r.signIn(demoidp.AdminKey); !tc.check(err) {
				t.Errorf("err = %v", err)
			}
		})
	}
}

// A provider without tenants (no tid in its ID tokens, no tenant configured) is one organisation:
// its accounts are keyed by a UUID derived from the issuer and identified by their subject. With
// a tenant configured, the tid stays required.
func TestProviderWithoutTenantsIsKeyedByItsIssuer(t *testing.T) {
	generic := func(_ *rig, cfg *identity.Config, o *demoidp.Options) {
		cfg.TenantID = ""
		o.WithoutTenantClaims = true
	}
	r := newRig(t, generic)
	res := r.mustSignIn(demoidp.AdminKey)
	issuer, _ := url.Parse(r.idp.IssuerURL())
	wantID, wantName := identity.IssuerTenant(r.idp.IssuerURL())
	if res.User.TenantID != wantID || res.User.TenantName != issuer.Host || wantName != issuer.Host {
		t.Errorf("tenant %q %q, want %q %q", res.User.TenantID, res.User.TenantName, wantID, issuer.Host)
	}
	if _, err := uuid.Parse(res.User.TenantID); err != nil || res.User.TenantID == demoidp.DemoTenantID {
		t.Errorf("tenant key %q is not a GUID of its own: %v", res.User.TenantID, err)
	}
	again, err := r.signIn(demoidp.AdminKey)
	if err != nil || again.User.TenantID != res.User.TenantID || again.User.ObjectID != res.User.ObjectID || res.User.ObjectID == "" {
		t.Errorf("the same account signs in as %+v then %+v (%v)", res.User, again.User, err)
	}
	other, err := r.signIn(demoidp.ReaderKey)
	if err != nil || other.User.ObjectID == res.User.ObjectID {
		t.Errorf("two accounts share an id: %+v (%v)", other.User, err)
	}
	if a, _ := identity.IssuerTenant("https://idp.example/realms/a"); a == wantID {
		t.Error("two issuers share a tenant key")
	}

	r = newRig(t, func(_ *rig, _ *identity.Config, o *demoidp.Options) { o.WithoutTenantClaims = true })
	if _, err := r.signIn(demoidp.AdminKey); !errors.Is(err, identity.ErrNoTenantClaim) {
		t.Errorf("tenant configured, token without tid: %v", err)
	}
}

func TestFinishReturnsProviderErrors(t *testing.T) {
	r := newRig(t)
	for _, tc := range []struct{ key, code, aadsts string }{
		{"no-consent", "invalid_client", "AADSTS65001"},
		{"not-assigned", "access_denied", "AADSTS50105"},
		{"cancel", "access_denied", "AADSTS65004"},
	} {
		_, err := r.signIn(tc.key)
		var ce *identity.CallbackError
		if !errors.As(err, &ce) || ce.Code != tc.code || ce.AADSTS != tc.aadsts {
			t.Errorf("%s: err = %#v", tc.key, err)
			continue
		}
	}
}

func TestRefreshRotatesAndRejects(t *testing.T) {
	ctx := context.Background()
	r := newRig(t)
	res := r.mustSignIn(demoidp.AdminKey)
	renewed, err := r.rp.Refresh(ctx, res.Token.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if renewed.AccessToken == res.Token.AccessToken || renewed.RefreshToken == "" || renewed.RefreshToken == res.Token.RefreshToken {
		t.Error("the refresh did not rotate the tokens")
	}
	if want := r.rpClock.Now().Add(time.Hour); renewed.Expiry.Sub(want).Abs() > time.Minute {
		t.Errorf("expiry %s, want about %s", renewed.Expiry, want)
	}
	if _, err := r.idp.VerifyAccessToken(renewed.AccessToken); err != nil {
		t.Errorf("renewed access token: %v", err)
	}
	if _, err := r.rp.Refresh(ctx, res.Token.RefreshToken); !errors.Is(err, identity.ErrRefreshRejected) {
		t.Errorf("reused refresh token: %v", err)
	}
	r.idp.RevokeRefreshTokens()
	if _, err := r.rp.Refresh(ctx, renewed.RefreshToken); !errors.Is(err, identity.ErrRefreshRejected) {
		t.Errorf("revoked refresh token: %v", err)
	}
	r.srv.Close()
	_, err = r.rp.Refresh(ctx, "whatever")
	if err == nil || errors.Is(err, identity.ErrRefreshRejected) {
		t.Errorf("unreachable provider: %v, want an error other than ErrRefreshRejected", err)
	}
}

func TestEndSessionURLReturnsToTheDesk(t *testing.T) {
	r := newRig(t)
	res := r.mustSignIn(demoidp.AdminKey)
	hint := identity.LogoutHint(res.IDToken)
	if hint == "" || strings.Contains(res.IDToken, hint) && len(hint) > 40 {
		t.Errorf("logout hint %q", hint)
	}
	u, ok := r.rp.EndSessionURL(signedOutURL, hint)
	if !ok {
		t.Fatal("no end_session_endpoint")
	}
	parsed, _ := url.Parse(u)
	q := parsed.Query()
	if q.Get("post_logout_redirect_uri") != signedOutURL || q.Get("logout_hint") != hint || q.Get("client_id") != clientID ||
		q.Has("id_token_hint") || strings.Contains(u, res.IDToken) {
		t.Errorf("end session URL %s", u)
	}
	resp, err := noRedirects(r.srv.Client()).Get(u)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("Location") != signedOutURL {
		t.Errorf("sign-out went to %q", resp.Header.Get("Location"))
	}
}

func TestNewRefusesConfigurationsThatCannotBeChecked(t *testing.T) {
	const tid = "0d6c1f2a-1111-4222-8333-944455566677"
	base := identity.Config{ClientID: clientID, ClientSecret: clientSecret, RedirectURL: redirectURL}
	for _, tc := range []struct {
		name, issuer, tenant, want string
	}{
		{"common", "https://login.microsoftonline.com/common/v2.0", "", "common"},
		{"consumers", "https://login.microsoftonline.com/consumers/v2.0", tid, "consumers"},
		{"organizations", "https://login.microsoftonline.us/organizations/v2.0", tid, "organizations"},
		{"tenant common", "https://idp.example/realms/desk", "common", "common"},
		{"Entra without tenant", "https://login.microsoftonline.com/" + tid + "/v2.0", "", "tenant id"},
		{"other tenant in issuer", "https://login.microsoftonline.com/" + tid + "/v2.0", demoidp.DemoTenantID, "names tenant"},
		{"relative issuer", "/" + tid + "/v2.0", tid, "absolute"},
	} {
		cfg := base
		cfg.IssuerURL, cfg.TenantID = tc.issuer, tc.tenant
		// Every case fails before discovery, so no request leaves the test.
		_, err := identity.New(context.Background(), cfg)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err = %v, want it to mention %q", tc.name, err, tc.want)
		}
	}
}

func TestSignInWithClientCertificate(t *testing.T) {
	certPEM, keyPEM := newClientCertificate(t)
	cert, err := identity.LoadClientCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	r := newRig(t, withClientCertificate(certPEM, cert))
	res := r.mustSignIn(demoidp.AdminKey)
	// A renewal needs a fresh assertion: the provider refuses a jti it has seen.
	for range 2 {
		if res.Token, err = r.rp.Refresh(context.Background(), res.Token.RefreshToken); err != nil {
			t.Fatal(err)
		}
	}

	otherPEM, otherKey := newClientCertificate(t)
	other, err := identity.LoadClientCertificate(otherPEM, otherKey)
	if err != nil {
		t.Fatal(err)
	}
	r = newRig(t, withClientCertificate(certPEM, other))
	var re *oauth2.RetrieveError
	if _, err := r.signIn(demoidp.AdminKey); !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
		t.Errorf("unregistered certificate: %v", err)
	}
}

// The token endpoint's refusal of the desk's own credentials, when the code is redeemed, is the
// provider's refusal with its AADSTS code, as one on the redirect is: so the desk can say which
// setting to fix.
func TestRedeemRefusalCarriesTheProvidersCode(t *testing.T) {
	for _, tc := range []struct {
		name   string
		opt    rigOption
		aadsts string
	}{
		{"wrong secret", func(_ *rig, cfg *identity.Config, _ *demoidp.Options) { cfg.ClientSecret = "not-the-secret" }, "AADSTS7000215"},
		{"expired secret", func(_ *rig, _ *identity.Config, o *demoidp.Options) { o.SecretExpired = true }, "AADSTS7000222"},
	} {
		r := newRig(t, tc.opt)
		_, err := r.signIn(demoidp.AdminKey)
		var ce *identity.CallbackError
		var re *oauth2.RetrieveError
		if !errors.As(err, &ce) || !ce.Redeem || ce.Code != "invalid_client" || ce.AADSTS != tc.aadsts || !errors.As(err, &re) {
			t.Errorf("%s: %v (%+v)", tc.name, err, ce)
		}
	}
}
