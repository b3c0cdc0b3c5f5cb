package web

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"log/slog"
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
