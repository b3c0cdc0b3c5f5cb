// Package static embeds the desk's stylesheets, scripts and icons and serves them under
// content-hashed URLs, so a deploy never serves a stale file and browsers may cache forever.
package static

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
)

//go:embed files
var embedded embed.FS

// Prefix is the URL path under which assets are served.
const Prefix = "/static/"

type asset struct {
	name        string // logical name, e.g. "app.css"
	hashedPath  string // URL path, e.g. "/static/app.3f2a9c01.css"
	contentType string
	body        []byte
	gzipped     []byte // nil when compression does not pay
}

// Assets is the set of embedded files, indexed by logical name and by hashed URL path.
type Assets struct {
	byName map[string]*asset
	byPath map[string]*asset
}

// Load reads and fingerprints every embedded file.
func Load() (*Assets, error) {
	a := &Assets{byName: map[string]*asset{}, byPath: map[string]*asset{}}
	err := fs.WalkDir(embedded, "files", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := embedded.ReadFile(p)
		if err != nil {
			return err
		}
		name := strings.TrimPrefix(p, "files/")
		sum := sha256.Sum256(body)
		ext := path.Ext(name)
		hashed := Prefix + strings.TrimSuffix(name, ext) + "." + hex.EncodeToString(sum[:6]) + ext
		ct := mime.TypeByExtension(ext)
		if ct == "" {
			ct = "application/octet-stream"
		}
		as := &asset{name: name, hashedPath: hashed, contentType: ct, body: body, gzipped: compress(body)}
		a.byName[name] = as
		a.byPath[hashed] = as
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("static: %w", err)
	}
	return a, nil
}

// compress returns the gzip form of body, or nil when it would not be meaningfully smaller.
func compress(body []byte) []byte {
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	zw.Write(body)
	zw.Close()
	if buf.Len() >= len(body)*9/10 {
		return nil
	}
	return buf.Bytes()
}

// Path returns the content-hashed URL of a logical asset name; it panics on an unknown name,
// which only a programming error can cause (templates reference fixed names).
func (a *Assets) Path(name string) string {
	as, ok := a.byName[name]
	if !ok {
		panic("static: unknown asset " + name)
	}
	return as.hashedPath
}

// Size reports the uncompressed and gzip-compressed byte counts of a logical asset.
func (a *Assets) Size(name string) (raw, gz int) {
	as := a.byName[name]
	if as == nil {
		return 0, 0
	}
	gz = len(as.gzipped)
	if as.gzipped == nil {
		gz = len(as.body)
	}
	return len(as.body), gz
}

// ServeHTTP serves an asset by its hashed path, immutable, gzip-compressed when accepted.
func (a *Assets) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	as, ok := a.byPath[r.URL.Path]
	if !ok {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	h.Set("Content-Type", as.contentType)
	h.Set("Cache-Control", "public, max-age=31536000, immutable")
	h.Set("Vary", "Accept-Encoding")
	body := as.body
	if as.gzipped != nil && acceptsGzip(r) {
		h.Set("Content-Encoding", "gzip")
		body = as.gzipped
	}
	h.Set("Content-Length", fmt.Sprint(len(body)))
	if r.Method == http.MethodHead {
		return
	}
	w.Write(body)
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		enc, q, _ := strings.Cut(strings.TrimSpace(part), ";")
		if strings.EqualFold(strings.TrimSpace(enc), "gzip") && strings.TrimSpace(q) != "q=0" {
			return true
		}
	}
	return false
}
