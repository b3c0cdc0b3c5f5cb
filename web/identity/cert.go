package identity

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

const (
	clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	assertionLifetime   = 5 * time.Minute
)

// ClientCertificate authenticates the desk with a signed client assertion (private_key_jwt)
// instead of a secret, for organisations that forbid client secrets.
type ClientCertificate struct {
	key          crypto.Signer
	alg          jose.SignatureAlgorithm
	x5t, x5tS256 string // certificate thumbprints; Entra finds the registered certificate by x5t
}

// LoadClientCertificate reads a PEM certificate and its PEM private key (PKCS#8, PKCS#1 or SEC 1).
// Both may come from one combined file.
func LoadClientCertificate(certPEM, keyPEM []byte) (*ClientCertificate, error) {
	certDER := pemBlock(certPEM, func(t string) bool { return t == "CERTIFICATE" })
	if certDER == nil {
		return nil, errors.New("identity: no PEM certificate found")
	}
	cert, err := x509.ParseCertificate(certDER)
	if err != nil {
		return nil, fmt.Errorf("identity: certificate: %w", err)
	}
	keyDER := pemBlock(keyPEM, func(t string) bool { return strings.HasSuffix(t, "PRIVATE KEY") })
	if keyDER == nil {
		return nil, errors.New("identity: no PEM private key found")
	}
	key, err := parsePrivateKey(keyDER)
	if err != nil {
		return nil, err
	}
	c := &ClientCertificate{key: key}
	switch k := key.(type) {
	case *rsa.PrivateKey:
		c.alg = jose.RS256
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("identity: only P-256 elliptic-curve keys are supported")
		}
		c.alg = jose.ES256
	default:
		return nil, fmt.Errorf("identity: unsupported private key type %T", key)
	}
	pub, ok := key.Public().(interface{ Equal(crypto.PublicKey) bool })
	if !ok || !pub.Equal(cert.PublicKey) {
		return nil, errors.New("identity: the private key does not belong to the certificate")
	}
	s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw)
	c.x5t = base64.RawURLEncoding.EncodeToString(s1[:])
	c.x5tS256 = base64.RawURLEncoding.EncodeToString(s256[:])
	return c, nil
}

func pemBlock(data []byte, want func(blockType string) bool) []byte {
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			return nil
		}
		if want(b.Type) {
			return b.Bytes
		}
	}
}

func parsePrivateKey(der []byte) (crypto.Signer, error) {
	var key any
	var err error
	if key, err = x509.ParsePKCS8PrivateKey(der); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(der); err != nil {
			if key, err = x509.ParseECPrivateKey(der); err != nil {
				return nil, errors.New("identity: the private key is not PKCS#8, PKCS#1 or SEC 1")
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, fmt.Errorf("identity: unsupported private key type %T", key)
	}
	return signer, nil
}

// assertion is a short-lived JWT signed with the certificate's key whose audience is the token endpoint.
func (c *ClientCertificate) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: c.alg, Key: c.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5t", c.x5t).WithHeader("x5t#S256", c.x5tS256))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{tokenURL}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now),
		Expiry: jwt.NewNumericDate(now.Add(assertionLifetime)),
	}).Serialize()
}

// httpClient is base with a transport that signs a fresh assertion into every token request:
// x/oauth2 has no hook for client assertions, and each assertion must carry its own jti.
func (c *ClientCertificate) httpClient(base *http.Client, clientID, tokenURL string, now func() time.Time) *http.Client {
	next := base.Transport
	if next == nil {
		next = http.DefaultTransport
	}
	client := *base
	client.Transport = &assertingTransport{next: next, cert: c, clientID: clientID, tokenURL: tokenURL, now: now}
	return &client
}

type assertingTransport struct {
	next               http.RoundTripper
	cert               *ClientCertificate
	clientID, tokenURL string
	now                func() time.Time
}

func (t *assertingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Body == nil {
		return nil, errors.New("identity: token request without a body")
	}
	body, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("identity: token request body: %w", err)
	}
	a, err := t.cert.assertion(t.clientID, t.tokenURL, t.now())
	if err != nil {
		return nil, fmt.Errorf("identity: sign the client assertion: %w", err)
	}
	form.Set("client_id", t.clientID)
	form.Set("client_assertion_type", clientAssertionType)
	form.Set("client_assertion", a)
	encoded := []byte(form.Encode())
	signed := req.Clone(req.Context())
	signed.Body = io.NopCloser(bytes.NewReader(encoded))
	signed.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(encoded)), nil }
	signed.ContentLength = int64(len(encoded))
	return t.next.RoundTrip(signed)
}
