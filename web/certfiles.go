package web

import (
	"crypto/tls"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"
)

// CertificateFiles serves the TLS certificate in a pair of PEM files and reads them again when
// they change, so a renewed certificate is served without a restart. The files are looked at
// (their modification time and size) at most once per CheckEvery, during a TLS handshake.
type CertificateFiles struct {
	certFile, keyFile string
	every             time.Duration
	log               *slog.Logger

	mu      sync.Mutex
	cert    *tls.Certificate
	stamp   [2]fileStamp // of the files the certificate was read from
	tried   [2]fileStamp // of the files last found unreadable, so a bad pair is reported once
	checked time.Time
}

// fileStamp tells one version of a file from another.
type fileStamp struct {
	mod  time.Time
	size int64
}

// LoadCertificateFiles reads the certificate and key, which must be valid now; they are read
// again when they change, at most once per every.
func LoadCertificateFiles(certFile, keyFile string, every time.Duration, log *slog.Logger) (*CertificateFiles, error) {
	f := &CertificateFiles{certFile: certFile, keyFile: keyFile, every: every, log: log}
	stamp := f.stamps()
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		if encryptedKey(keyFile) {
			return nil, fmt.Errorf("the private key in %s is encrypted with a passphrase, which the desk cannot ask for (%w): "+
				"give it the key unencrypted (openssl pkey -in %s -out key-plain.pem), in a file only the desk's user may read", keyFile, ErrEncryptedKey, keyFile)
		}
		if strings.Contains(err.Error(), "private key does not match public key") { // crypto/tls says it in words alone
			return nil, fmt.Errorf("the private key in %s is not the one of the certificate in %s (%w): give the key the certificate was "+
				"issued for (the two files of one pair, both renewed together)", keyFile, certFile, err)
		}
		return nil, err
	}
	f.cert, f.stamp, f.checked = &cert, stamp, time.Now()
	if problem := f.outOfDate(&cert, time.Now()); problem != "" {
		log.Warn(problem, f.dates(&cert)...)
	}
	return f, nil
}

// ErrEncryptedKey means the TLS private key is encrypted with a passphrase.
var ErrEncryptedKey = errors.New("encrypted keys are not supported")

// encryptedKey says whether the key file holds a private key encrypted with a passphrase: PKCS #8
// ("ENCRYPTED PRIVATE KEY"), or OpenSSL's older form with a Proc-Type header.
func encryptedKey(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	for {
		var block *pem.Block
		if block, data = pem.Decode(data); block == nil {
			return false
		}
		if block.Type == "ENCRYPTED PRIVATE KEY" || strings.Contains(block.Headers["Proc-Type"], "ENCRYPTED") {
			return true
		}
	}
}

// soonExpiring is how long before its end a certificate is warned about.
const soonExpiring = 14 * 24 * time.Hour

// outOfDate says what is wrong with the certificate's dates at now, "" when nothing is: browsers
// refuse a certificate out of its validity, and one about to be is worth renewing.
func (f *CertificateFiles) outOfDate(cert *tls.Certificate, now time.Time) string {
	leaf := cert.Leaf
	if leaf == nil {
		return ""
	}
	at := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	switch {
	case now.After(leaf.NotAfter):
		return "the TLS certificate in " + f.certFile + " expired on " + at(leaf.NotAfter) + ": browsers refuse the desk until it is renewed " +
			"(the desk serves a renewed certificate without a restart)"
	case now.Before(leaf.NotBefore):
		return "the TLS certificate in " + f.certFile + " is not valid before " + at(leaf.NotBefore) + ": browsers refuse the desk until then; " +
			"check the certificate, and this machine's clock"
	case leaf.NotAfter.Sub(now) < soonExpiring:
		left := fmt.Sprintf("%d days", int(leaf.NotAfter.Sub(now).Hours()/24))
		if hours := int(leaf.NotAfter.Sub(now).Hours()); hours < 48 {
			left = fmt.Sprintf("%d hours", hours)
		}
		return fmt.Sprintf("the TLS certificate in %s expires in %s, on %s: renew it before then (the desk serves a renewed certificate without a restart)",
			f.certFile, left, at(leaf.NotAfter))
	}
	return ""
}

// dates are the certificate's file and validity, as log attributes.
func (f *CertificateFiles) dates(cert *tls.Certificate) []any {
	attrs := []any{"cert_file", f.certFile}
	if cert.Leaf != nil {
		attrs = append(attrs, "not_before", cert.Leaf.NotBefore.UTC().Format(time.RFC3339), "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	return attrs
}

// GetCertificate is tls.Config's GetCertificate: the pair as it was last read whole.
func (f *CertificateFiles) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if time.Since(f.checked) < f.every {
		return f.cert, nil
	}
	f.checked = time.Now()
	stamp := f.stamps()
	if stamp == f.stamp || stamp == f.tried {
		return f.cert, nil
	}
	cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
	if err != nil {
		// Mid-renewal the certificate may be new and the key still old: keep serving the
		// pair last read whole, and try again when the files change again.
		f.tried = stamp
		f.log.Warn("the TLS certificate files changed but cannot be used; the previous certificate is still served",
			"cert_file", f.certFile, "key_file", f.keyFile, "error", err.Error())
		return f.cert, nil
	}
	f.cert, f.stamp = &cert, stamp
	if problem := f.outOfDate(&cert, time.Now()); problem != "" {
		f.log.Warn("TLS certificate read again and served, but "+problem, f.dates(&cert)...)
		return f.cert, nil
	}
	f.log.Info("TLS certificate read again: the renewed certificate is served", f.dates(&cert)...)
	return f.cert, nil
}

func (f *CertificateFiles) stamps() (s [2]fileStamp) {
	for i, path := range []string{f.certFile, f.keyFile} {
		if fi, err := os.Stat(path); err == nil {
			s[i] = fileStamp{fi.ModTime(), fi.Size()}
		}
	}
	return s
}
