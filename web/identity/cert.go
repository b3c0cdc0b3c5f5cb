package identity

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
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
	"golang.org/x/oauth2"
)

const clientAssertionType = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// ClientCertificate authenticates the desk with a signed client assertion (private_key_jwt)
// instead of a secret, for organisations that forbid client secrets.
type ClientCertificate struct {
	key        crypto.Signer
	thumbprint string // base64url SHA-1 of the certificate (x5t), what Entra matches
	thumbS256  string
}

// LoadClientCertificate reads a PEM certificate and its PEM private key (PKCS#8, PKCS#1 or EC).
func LoadClientCertificate(certPEM, keyPEM []byte) (*ClientCertificate, error) {
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, errors.New("identity: no PEM certificate found")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("identity: certificate: %w", err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil {
		return nil, errors.New("identity: no PEM private key found")
	}
	var key any
	if key, err = x509.ParsePKCS8PrivateKey(kb.Bytes); err != nil {
		if key, err = x509.ParsePKCS1PrivateKey(kb.Bytes); err != nil {
			if key, err = x509.ParseECPrivateKey(kb.Bytes); err != nil {
				return nil, errors.New("identity: the private key is not PKCS#8, PKCS#1 or EC")
			}
		}
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("identity: the private key cannot sign")
	}
	s1 := sha1.Sum(cert.Raw)
	s256 := sha256.Sum256(cert.Raw)
	return &ClientCertificate{key: signer, thumbprint: base64.RawURLEncoding.EncodeToString(s1[:]),
		thumbS256: base64.RawURLEncoding.EncodeToString(s256[:])}, nil
}

// assertion is a short-lived JWT signed with the certificate's key, audience the token endpoint.
func (c *ClientCertificate) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	alg := jose.RS256
	if _, ok := c.key.Public().(*ecdsa.PublicKey); ok {
		alg = jose.ES256
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: c.key},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader("x5t", c.thumbprint).WithHeader("x5t#S256", c.thumbS256))
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(jwt.Claims{
		Issuer: clientID, Subject: clientID, Audience: jwt.Audience{tokenURL}, ID: random(),
		IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(5 * time.Minute)),
	}).Serialize()
}

// clientAuth adds the client assertion to a code exchange when a certificate is configured.
func (p *Provider) clientAuth() []oauth2.AuthCodeOption {
	if p.cfg.ClientCertificate == nil {
		return nil
	}
	a, err := p.cfg.ClientCertificate.assertion(p.oauth.ClientID, p.oauth.Endpoint.TokenURL, p.cfg.Now())
	if err != nil {
		return nil
	}
	return []oauth2.AuthCodeOption{
		oauth2.SetAuthURLParam("client_assertion_type", clientAssertionType),
		oauth2.SetAuthURLParam("client_assertion", a),
	}
}

// refreshWithAssertion posts a refresh grant authenticated by a client assertion (x/oauth2's
// TokenSource cannot add one).
func (p *Provider) refreshWithAssertion(ctx context.Context, v url.Values) (*oauth2.Token, error) {
	a, err := p.cfg.ClientCertificate.assertion(p.oauth.ClientID, p.oauth.Endpoint.TokenURL, p.cfg.Now())
	if err != nil {
		return nil, err
	}
	v.Set("client_id", p.oauth.ClientID)
	v.Set("client_assertion_type", clientAssertionType)
	v.Set("client_assertion", a)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.oauth.Endpoint.TokenURL, strings.NewReader(v.Encode()))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := p.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var tr struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		TokenType    string `json:"token_type"`
		ExpiresIn    int    `json:"expires_in"`
		IDToken      string `json:"id_token"`
		Error        string `json:"error"`
	}
	_ = json.Unmarshal(body, &tr)
	if resp.StatusCode != http.StatusOK || tr.AccessToken == "" {
		return nil, &oauth2.RetrieveError{Response: resp, Body: body, ErrorCode: tr.Error}
	}
	tok := &oauth2.Token{AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken, TokenType: tr.TokenType,
		Expiry: p.cfg.Now().Add(time.Duration(tr.ExpiresIn) * time.Second)}
	return tok.WithExtra(map[string]any{"id_token": tr.IDToken}), nil
}
