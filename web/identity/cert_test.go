package identity

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

func TestClientCertificateAssertion(t *testing.T) {
	key, _ := rsa.GenerateKey(rand.Reader, 2048)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "Autopilot Desk"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	cc, err := LoadClientCertificate(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
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
	if claims.ID == "" || claims.Expiry.Time().Sub(now) > 10*time.Minute {
		t.Errorf("jti %q, expiry %s", claims.ID, claims.Expiry.Time())
	}
	sum := sha1.Sum(der)
	if x5t := tok.Headers[0].ExtraHeaders["x5t"]; x5t != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Errorf("x5t = %v", x5t)
	}
	if _, err := LoadClientCertificate(keyPEM, certPEM); err == nil {
		t.Error("swapped PEM files accepted")
	}
}
