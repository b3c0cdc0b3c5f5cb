package web

import (
	"crypto/tls"
	"log/slog"
	"os"
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
		return nil, err
	}
	f.cert, f.stamp, f.checked = &cert, stamp, time.Now()
	return f, nil
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
	attrs := []any{"cert_file", f.certFile}
	if cert.Leaf != nil {
		attrs = append(attrs, "not_after", cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	f.log.Info("TLS certificate read again: the renewed certificate is served", attrs...)
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
