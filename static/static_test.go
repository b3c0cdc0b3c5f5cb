package static

import (
	"compress/gzip"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"testing"
)

func TestAssetsAreHashedImmutableAndCompressed(t *testing.T) {
	a, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	css := a.Path("app.css")
	if !regexp.MustCompile(`^/static/app\.[0-9a-f]{12}\.css$`).MatchString(css) {
		t.Fatalf("path %q is not content-hashed", css)
	}
	req := httptest.NewRequest(http.MethodGet, css, nil)
	req.Header.Set("Accept-Encoding", "br, gzip;q=0.8")
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	if rec.Code != 200 || rec.Header().Get("Cache-Control") != "public, max-age=31536000, immutable" || rec.Header().Get("Content-Encoding") != "gzip" {
		t.Fatalf("served %d %v", rec.Code, rec.Header())
	}
	zr, err := gzip.NewReader(rec.Body)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(zr)
	if raw, _ := a.Size("app.css"); len(body) != raw {
		t.Errorf("decompressed %d bytes, want %d", len(body), raw)
	}
	plain := httptest.NewRecorder()
	a.ServeHTTP(plain, httptest.NewRequest(http.MethodGet, css, nil))
	if plain.Header().Get("Content-Encoding") != "" || plain.Header().Get("Content-Type") != "text/css; charset=utf-8" {
		t.Errorf("without Accept-Encoding: %v", plain.Header())
	}
	for _, p := range []string{"/static/app.css", "/static/app.000000000000.css", "/static/../static.go"} {
		rec := httptest.NewRecorder()
		a.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, p, nil))
		if rec.Code != http.StatusNotFound {
			t.Errorf("%s: %d", p, rec.Code)
		}
	}
}
