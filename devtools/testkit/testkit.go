// Package testkit is what the tests of every package share: one fake clock, an environment made
// of a map, self-signed certificates, a PostgreSQL schema of a test's own, and the rule for tools a
// test needs (skip where they are missing, fail in CI). GUIDs are checked with guid.Valid, the
// desk's own matcher.
//
// It imports nothing of the desk, so any package's tests can use it.
package testkit

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"database/sql"
	"encoding/pem"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// Epoch is when a new Clock starts: a fixed, recognisable moment.
var Epoch = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

// Clock is a time source that stands still until the test moves it. Sleep advances it instead of
// waiting and records the wait. It is safe for concurrent use.
type Clock struct {
	mu    sync.Mutex
	now   time.Time
	waits []time.Duration
}

// NewClock returns a clock at Epoch.
func NewClock() *Clock { return NewClockAt(Epoch) }

// NewClockAt returns a clock at t.
func NewClockAt(t time.Time) *Clock { return &Clock{now: t} }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock by d (back, for a negative d).
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Sleep records a wait of d and advances the clock by it, at once.
func (c *Clock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.waits = append(c.waits, d)
	c.now = c.now.Add(d)
	return nil
}

// Waits are the waits Sleep recorded, in order.
func (c *Clock) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.waits...)
}

// Env is an environment made of vars, for code that reads its settings through a getenv function.
func Env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// NeedInCI reports whether what the test needs exists at path. Where it does not, the test fails
// in CI (CI=true) and may skip elsewhere.
func NeedInCI(t testing.TB, what, path string) bool {
	t.Helper()
	if _, err := os.Stat(path); err == nil {
		return true
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s not found at %s (CI=true: required)", what, path)
	}
	return false
}

// FreeAddr is a loopback host:port nothing listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// SelfSigned is a certificate for key, valid from an hour ago for a year, in PEM and DER. It
// names hosts (IP addresses or DNS names) when given, for a TLS server.
func SelfSigned(t testing.TB, key crypto.Signer, hosts ...string) (certPEM, der []byte) {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "Autopilot Desk"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().AddDate(1, 0, 0)}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), der
}

// RSAKey is a new 2048-bit RSA key, the size Entra takes for client certificates.
func RSAKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// ClientCertificate is a new RSA key and a self-signed certificate for it, in PEM and DER, as an
// app registration's client certificate.
func ClientCertificate(t testing.TB) (key *rsa.PrivateKey, certPEM, der []byte) {
	t.Helper()
	key = RSAKey(t)
	certPEM, der = SelfSigned(t, key)
	return key, certPEM, der
}

// PrivateKeyPEM is key in PKCS #8 PEM.
func PrivateKeyPEM(t testing.TB, key crypto.Signer) []byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})
}

// PostgresURLVariable names the PostgreSQL database the tests may use; .ci/postgres.sh provides one.
const PostgresURLVariable = "AUTOPILOTDESK_TEST_DATABASE_URL"

// PostgresSchema returns the test database's URL with a search path to a schema of the test's
// own, dropped when the test ends. Without the database the test skips, or fails in CI. The
// "pgx" database/sql driver must be registered (the state database's package does that).
func PostgresSchema(t testing.TB) string {
	t.Helper()
	base := os.Getenv(PostgresURLVariable)
	if base == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s is not set in CI (.ci/postgres.sh provides it)", PostgresURLVariable)
		}
		t.Skipf("PostgreSQL tests skipped: set %s", PostgresURLVariable)
	}
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	schema := "autopilotdesk_test_" + strings.ToLower(rand.Text())
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if _, err := admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`); err != nil {
			t.Errorf("drop test schema: %v", err)
		}
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String()
}

// FormValues reads the fields of the form doc's selector finds (hidden ones included), as a
// browser would submit them; the test fails when there is no such form.
func FormValues(t testing.TB, doc *goquery.Document, selector string) url.Values {
	t.Helper()
	form := doc.Find(selector)
	if form.Length() == 0 {
		t.Fatalf("no form %q on the page:\n%s", selector, Text(doc))
	}
	v := url.Values{}
	form.Find("input[name]").Each(func(_ int, s *goquery.Selection) {
		switch s.AttrOr("type", "") {
		case "checkbox", "radio": // sent only when ticked, each one
			if _, ticked := s.Attr("checked"); ticked {
				v.Add(s.AttrOr("name", ""), s.AttrOr("value", "on"))
			}
		default: // each one, as a browser sends fields of the same name
			v.Add(s.AttrOr("name", ""), s.AttrOr("value", ""))
		}
	})
	form.Find("textarea[name]").Each(func(_ int, s *goquery.Selection) {
		v.Set(s.AttrOr("name", ""), s.Text())
	})
	form.Find("select[name]").Each(func(_ int, s *goquery.Selection) {
		v.Set(s.AttrOr("name", ""), s.Find("option[selected]").AttrOr("value", ""))
	})
	return v
}

// Text is a page's main content as one line of words, for assertions and failure messages.
func Text(doc *goquery.Document) string {
	return strings.Join(strings.Fields(doc.Find("main").Text()), " ")
}

// Buffer is a bytes.Buffer that goroutines may write while a test reads it (a server's log).
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// PickIdentity answers the demo identity provider's account picker for a request on its way
// there, as a person clicking the account named key would: it adds the login hint the picker
// skips to. Call it from an http.Client's CheckRedirect.
func PickIdentity(req *http.Request, key string) {
	if strings.Contains(req.URL.Path, "/authorize") && req.URL.Query().Get("login_hint") == "" {
		q := req.URL.Query()
		q.Set("login_hint", key)
		req.URL.RawQuery = q.Encode()
	}
}
