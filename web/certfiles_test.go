package web

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

// A renewed certificate is served without a restart; a pair caught half-written keeps the
// previous certificate served, with one warning, until the files are whole again.
func TestRenewedCertificateIsServedWithoutARestart(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	at := time.Now().Add(-time.Hour)
	write := func(path string, data []byte) {
		t.Helper()
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		at = at.Add(time.Minute) // a later modification time whatever the file system's granularity
		if err := os.Chtimes(path, at, at); err != nil {
			t.Fatal(err)
		}
	}
	newPair := func() (certPEM, keyPEM, der []byte) {
		key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		certPEM, der = testkit.SelfSigned(t, key, "127.0.0.1")
		return certPEM, testkit.PrivateKeyPEM(t, key), der
	}
	certA, keyA, derA := newPair()
	write(certFile, certA)
	write(keyFile, keyA)
	var logs bytes.Buffer
	files, err := LoadCertificateFiles(certFile, keyFile, 0, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	served := func() []byte {
		t.Helper()
		c, err := files.GetCertificate(nil)
		if err != nil {
			t.Fatal(err)
		}
		return c.Certificate[0]
	}
	if !bytes.Equal(served(), derA) {
		t.Fatal("the first certificate is not served")
	}
	certB, keyB, derB := newPair()
	write(certFile, certB) // the key is still A's: half-written
	for range 3 {
		if !bytes.Equal(served(), derA) {
			t.Error("a half-written pair replaced the certificate")
		}
	}
	if n := strings.Count(logs.String(), `"level":"WARN"`); n != 1 {
		t.Errorf("%d warnings for one half-written pair:\n%s", n, logs.String())
	}
	write(keyFile, keyB)
	if !bytes.Equal(served(), derB) || !strings.Contains(logs.String(), "the renewed certificate is served") {
		t.Errorf("the renewed certificate is not served:\n%s", logs.String())
	}

	// Looked at no more often than asked.
	slow, err := LoadCertificateFiles(certFile, keyFile, time.Hour, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	write(certFile, certA)
	write(keyFile, keyA)
	if c, _ := slow.GetCertificate(nil); !bytes.Equal(c.Certificate[0], derB) {
		t.Error("the files were read again before their time")
	}
}

// certificateFor is a self-signed certificate valid from notBefore to notAfter, with its key.
func certificateFor(t *testing.T, notBefore, notAfter time.Time) (certPEM, keyPEM []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "desk.example.com"}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), testkit.PrivateKeyPEM(t, key)
}

// A certificate browsers would refuse (expired, not yet valid) or soon will (within 14 days) is
// served, but said in a warning at start and when it is read again; one valid for long is not.
func TestCertificateOutOfDateIsWarnedAbout(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name                string
		notBefore, notAfter time.Time
		says                string
	}{
		{"expired", now.AddDate(-6, 0, 0), time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC), "expired on 2021-01-01T00:00:00Z"},
		{"not yet valid", now.Add(48 * time.Hour), now.AddDate(1, 0, 0), "is not valid before"},
		{"expires soon", now.Add(-time.Hour), now.Add(5*24*time.Hour + time.Hour), "expires in 5 days"},
		{"valid", now.Add(-time.Hour), now.AddDate(0, 3, 0), ""},
	} {
		dir := t.TempDir()
		certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
		good, goodKey := certificateFor(t, now.Add(-time.Hour), now.AddDate(1, 0, 0))
		os.WriteFile(certFile, good, 0o600)
		os.WriteFile(keyFile, goodKey, 0o600)
		var logs bytes.Buffer
		files, err := LoadCertificateFiles(certFile, keyFile, 0, slog.New(slog.NewJSONHandler(&logs, nil)))
		if err != nil || strings.Contains(logs.String(), "WARN") {
			t.Fatalf("%s: a good certificate: %v\n%s", tc.name, err, logs.String())
		}
		cert, key := certificateFor(t, tc.notBefore, tc.notAfter)
		later := now.Add(time.Minute)
		for path, data := range map[string][]byte{certFile: cert, keyFile: key} {
			os.WriteFile(path, data, 0o600)
			os.Chtimes(path, later, later)
		}
		files.GetCertificate(nil)
		reloaded := logs.String()
		logs.Reset()
		if _, err := LoadCertificateFiles(certFile, keyFile, 0, slog.New(slog.NewJSONHandler(&logs, nil))); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		started := logs.String()
		for when, out := range map[string]string{"on reload": reloaded, "at start": started} {
			warned := strings.Contains(out, `"level":"WARN"`) && strings.Contains(out, certFile)
			if tc.says == "" && warned || tc.says != "" && (!warned || !strings.Contains(out, tc.says)) {
				t.Errorf("%s %s:\n%s", tc.name, when, out)
			}
		}
		if tc.says != "" && strings.Contains(reloaded, `"level":"INFO"`) {
			t.Errorf("%s: the reload is also said as good news:\n%s", tc.name, reloaded)
		}
	}
}

// A key of another pair is refused naming both files and what to give instead.
func TestKeyOfAnotherCertificateIsNamed(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert, _ := certificateFor(t, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	_, otherKey := certificateFor(t, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	os.WriteFile(certFile, cert, 0o600)
	os.WriteFile(keyFile, otherKey, 0o600)
	_, err := LoadCertificateFiles(certFile, keyFile, 0, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), "the private key in "+keyFile+" is not the one of the certificate in "+certFile) ||
		!strings.Contains(err.Error(), "the two files of one pair") {
		t.Errorf("a key of another certificate: %v", err)
	}
}

// A private key encrypted with a passphrase is refused naming the key file and saying why, not
// reported as a certificate that does not parse.
func TestEncryptedPrivateKeyIsNamed(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert, _ := certificateFor(t, time.Now().Add(-time.Hour), time.Now().AddDate(1, 0, 0))
	os.WriteFile(certFile, cert, 0o600)
	for _, block := range []*pem.Block{
		{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte("not really a key, as openssl genpkey -aes256 writes")},
		{Type: "EC PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00112233445566778899AABBCCDDEEFF"}, Bytes: []byte("x")},
	} {
		os.WriteFile(keyFile, pem.EncodeToMemory(block), 0o600)
		_, err := LoadCertificateFiles(certFile, keyFile, 0, slog.New(slog.DiscardHandler))
		if !errors.Is(err, ErrEncryptedKey) || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "encrypted") ||
			!strings.Contains(err.Error(), "openssl pkey") {
			t.Errorf("%s: %v", block.Type, err)
		}
	}
}
