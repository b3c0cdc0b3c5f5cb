package demoidp

import (
	"crypto/sha1"
	"encoding/base64"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"autopilotdesk/devtools/testkit"
)

func TestPrivateKeyJWTClientAuthentication(t *testing.T) {
	key, certPEM, der := testkit.ClientCertificate(t)
	clock := testkit.NewClock()
	p, err := New(Options{Issuer: testBase, ClientID: testClient, RedirectURIs: []string{testRedirect}, Now: clock.Now,
		ClientCertPEM: certPEM})
	if err != nil {
		t.Fatal(err)
	}
	thumb := sha1.Sum(der)
	sign := func(jti, audience string) string {
		signer, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: key},
			(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5t", base64.RawURLEncoding.EncodeToString(thumb[:])))
		now := clock.Now()
		raw, _ := jwt.Signed(signer).Claims(jwt.Claims{Issuer: testClient, Subject: testClient, Audience: jwt.Audience{audience},
			ID: jti, IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute))}).Serialize()
		return raw
	}
	redeemWith := func(assertion string) int {
		form := url.Values{"grant_type": {"authorization_code"}, "code": {codeFor(t, p, AdminKey)}, "redirect_uri": {testRedirect},
			"code_verifier": {verifier}, "client_id": {testClient}, "client_assertion_type": {clientAssertionType}, "client_assertion": {assertion}}
		status, _ := postTokenForm(p, form)
		return status
	}
	token := p.endpoint("token")
	if status := redeemWith(sign("jti-1", token)); status != http.StatusOK {
		t.Fatalf("valid assertion: %d", status)
	}
	if status := redeemWith(sign("jti-1", token)); status != http.StatusUnauthorized {
		t.Errorf("replayed assertion: %d", status)
	}
	if status := redeemWith(sign("jti-2", testBase+"/other/token")); status != http.StatusUnauthorized {
		t.Errorf("assertion for another audience: %d", status)
	}
	clock.Advance(-time.Hour) // the assertion below is not valid yet when it arrives
	assertion := sign("jti-3", token)
	clock.Advance(2 * time.Hour)
	if status := redeemWith(assertion); status != http.StatusUnauthorized {
		t.Errorf("expired assertion: %d", status)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {codeFor(t, p, AdminKey)}, "redirect_uri": {testRedirect}, "code_verifier": {verifier}}
	if status, _ := postToken(p, form, true); status != http.StatusUnauthorized {
		t.Errorf("a secret when only a certificate is registered: %d", status)
	}
}
