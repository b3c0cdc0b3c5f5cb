package web

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/labstack/echo/v4"

	"autopilotdesk/views"
)

// BenchmarkRender renders the create form through Render, as a page is served: into a pooled
// buffer first, then status, length and bytes, from as many goroutines as there are cores.
func BenchmarkRender(b *testing.B) {
	e := echo.New()
	page := views.Page{Title: "Create upload", Nonce: "bench-nonce", CSRF: "bench-csrf-token-0123456789abcdefghijklmnopq",
		User: &views.User{Name: "Adele Vance", UPN: "AdeleV@contoso.example", Tenant: "00000000-0000-0000-0000-000000000001"},
		Demo: true, Assets: views.Assets{CSS: "/static/app.css", JS: "/static/app.js", Icon: "/static/favicon.svg"}, Nav: "create", Path: "/uploads/new"}
	form := views.UploadForm{CreatedDateTimeUtc: "2026-11-28T12:00:00Z", Status: "pending", FormKey: "bench-form-key-0123456789abcdefghijklmnopqr"}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest(http.MethodGet, "/uploads/new", nil)
		for pb.Next() {
			rec := httptest.NewRecorder()
			if err := Render(e.NewContext(req, rec), http.StatusOK, views.UploadFormPage(page, form)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
