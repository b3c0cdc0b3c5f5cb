package handlers

import (
	"net/http"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"autopilotdesk/web"
)

// The page the desk returns to after a sign-out tells the truth: opened again while the browser
// is still signed in (the Back button, a bookmark, a logout URL loaded where the cookie is not
// sent), it says the person is still signed in and offers to sign out, and it is never kept by
// the browser.
func TestSignedOutPageSaysWhenStillSignedIn(t *testing.T) {
	h := &Auth{}
	r := newRigWith(t, func(*echo.Group, func(string, string, echo.HandlerFunc)) {}, func(s *web.Shell) {
		web.GET(s.Pages(), "/auth/signed-out", h.SignedOut)
	})

	resp, doc := r.get("/auth/signed-out")
	if resp.StatusCode != http.StatusOK || doc.Find("h1").Text() != "You are signed out" || doc.Find(`[data-testid="signed-out"]`).Length() != 1 {
		t.Fatalf("signed out: %d %q", resp.StatusCode, doc.Find("main").Text())
	}
	if got := doc.Find("title").Text(); got != "Signed out · Autopilot Desk" {
		t.Errorf("signed out: the title is %q", got)
	}

	r.signIn("")
	resp, doc = r.get("/auth/signed-out")
	main := doc.Find("main").Text()
	if got := doc.Find("h1").Text(); got != "You are still signed in" || strings.Contains(main, "tokens were deleted") || strings.Contains(main, "has ended") {
		t.Errorf("still signed in, the page says %q: %s", got, main)
	}
	if !strings.Contains(main, rigUser.Name) || !strings.Contains(main, rigUser.UPN) {
		t.Errorf("still signed in, the page does not say as whom: %s", main)
	}
	form := doc.Find(`[data-testid="still-signed-in"] form[method="post"][action="/auth/signout"]`)
	if form.Length() != 1 || form.Find(`input[name="_csrf"]`).AttrOr("value", "") != r.csrf || form.Find(`button[type="submit"]`).Length() != 1 {
		t.Errorf("still signed in, the page offers no sign-out: %s", main)
	}
	if got := doc.Find("title").Text(); got != "Still signed in · Autopilot Desk" {
		t.Errorf("still signed in: the title is %q", got)
	}
	if got := resp.Header.Get("Cache-Control"); got != "no-store" {
		t.Errorf("the page may be kept by the browser: Cache-Control %q", got)
	}
}
