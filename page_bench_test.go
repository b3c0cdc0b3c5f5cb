package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// BenchmarkSignedInFormPage serves the signed-in create form through the desk's whole handler
// chain (request id, logging, metrics, security headers, session, CSRF, rendering), without the
// network: what the desk itself spends on a page, and what it allocates.
//
//	go test -run XXX -bench SignedInFormPage -benchmem .
func BenchmarkSignedInFormPage(b *testing.B) {
	d := startDeskWith(b, map[string]string{}, appOptions{})
	c := d.browser()
	resp := d.signIn(c, "admin", "/uploads/new")
	resp.Body.Close()
	u, _ := url.Parse(d.srv.URL)
	var cookies []string
	for _, ck := range c.Jar.Cookies(u) {
		cookies = append(cookies, ck.Name+"="+ck.Value)
	}
	req, _ := http.NewRequest(http.MethodGet, d.srv.URL+"/uploads/new", nil)
	req.RemoteAddr = "127.0.0.1:50000"
	cookie := strings.Join(cookies, "; ")
	w := &discardResponse{}
	b.ReportAllocs()
	for b.Loop() {
		r := req.Clone(req.Context())
		r.Header = http.Header{"Cookie": {cookie}, "User-Agent": {"bench"}}
		w.header, w.status, w.n = http.Header{}, 0, 0
		d.app.handler.ServeHTTP(w, r)
		if w.status != http.StatusOK || w.n < 1000 {
			b.Fatalf("answered %d with %d bytes", w.status, w.n)
		}
	}
}

// discardResponse counts what a handler writes.
type discardResponse struct {
	header http.Header
	status int
	n      int
}

func (w *discardResponse) Header() http.Header { return w.header }
func (w *discardResponse) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}
func (w *discardResponse) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	w.n += len(p)
	return len(p), nil
}
