package identity

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"autopilotdesk/devtools/testkit"
)

func TestClientCertificateAssertion(t *testing.T) {
	key, certPEM, der := testkit.ClientCertificate(t)
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cc, err := LoadClientCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	now := testkit.Epoch
	const tokenURL = "https://login.microsoftonline.com/tid/oauth2/v2.0/token"
	raw, err := cc.assertion("client-1", tokenURL, now)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		t.Fatal(err)
	}
	var claims jwt.Claims
	if err := tok.Claims(&key.PublicKey, &claims); err != nil {
		t.Fatalf("signature: %v", err)
	}
	if err := claims.ValidateWithLeeway(jwt.Expected{Issuer: "client-1", Subject: "client-1", AnyAudience: jwt.Audience{tokenURL}, Time: now}, 0); err != nil {
		t.Errorf("claims: %v", err)
	}
	if life := claims.Expiry.Time().Sub(now); claims.ID == "" || life < 5*time.Minute || life > 10*time.Minute {
		t.Errorf("jti %q, lifetime %s", claims.ID, life)
	}
	s1, s256 := sha1.Sum(der), sha256.Sum256(der)
	h := tok.Headers[0].ExtraHeaders
	if h["x5t"] != base64.RawURLEncoding.EncodeToString(s1[:]) || h["x5t#S256"] != base64.RawURLEncoding.EncodeToString(s256[:]) {
		t.Errorf("thumbprints x5t=%v x5t#S256=%v", h["x5t"], h["x5t#S256"])
	}
	again, _ := cc.assertion("client-1", tokenURL, now)
	if again == raw {
		t.Error("two assertions are identical; each needs its own jti")
	}
}

func TestLoadClientCertificate(t *testing.T) {
	rsaKey := testkit.RSAKey(t)
	rsaCert, _ := testkit.SelfSigned(t, rsaKey)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(rsaKey)
	rsaPKCS8 := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	ecKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecCert, _ := testkit.SelfSigned(t, ecKey)
	sec1, _ := x509.MarshalECPrivateKey(ecKey)
	ecPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})
	combined := append(append([]byte{}, rsaPKCS8...), rsaCert...)

	for _, tc := range []struct {
		name            string
		certPEM, keyPEM []byte
		ok              bool
	}{
		{"RSA PKCS#8", rsaCert, rsaPKCS8, true},
		{"EC P-256", ecCert, ecPEM, true},
		{"one combined file", combined, combined, true},
		{"swapped files", rsaPKCS8, rsaCert, false},
		{"key of another certificate", ecCert, rsaPKCS8, false},
		{"not PEM", []byte("hello"), []byte("world"), false},
	} {
		_, err := LoadClientCertificate(tc.certPEM, tc.keyPEM)
		if (err == nil) != tc.ok {
			t.Errorf("%s: err = %v", tc.name, err)
		}
	}
}
