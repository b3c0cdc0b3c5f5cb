package main

import (
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/web/identity/demoidp"
)

// postFrom sends form as a browser sends it from page: same origin, the page as its Referer,
// following redirects without picking anyone at the sign-in page.
func (d *desk) postFrom(c *http.Client, page, path string, form url.Values) (*http.Response, string) {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", d.srv.URL)
	req.Header.Set("Referer", d.srv.URL+page)
	resp, err := c.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	doc := parse(d.t, resp)
	html, _ := doc.Html()
	resp.Header.Set("X-Test-Text", text(doc))
	return resp, html
}

// A tab's form opened before the person signed in again in another tab carries the old
// session's security token: sent, it is not refused with what was typed lost, but comes back
// on its page, unsent, to check and send again. Typed into another account's tab, it is
// neither sent nor shown to whoever is signed in now.
func TestStaleTabFormComesBackAfterSigningInAgainElsewhere(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, demoidp.AdminKey, "/registration/codes/new")), `form[action="/registration/codes"]`)
	form.Set("groupTag", "TYPED-IN-TAB1")
	form.Set("note", "long note typed")
	d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID) // idle timeout
	parse(t, d.signIn(b, demoidp.AdminKey, "/devices"))                                        // the second tab

	resp, html := d.postFrom(b, "/registration/codes/new", "/registration/codes", form)
	page := resp.Header.Get("X-Test-Text")
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/registration/codes/new" {
		t.Fatalf("the stale tab's form: %d at %s: %s", resp.StatusCode, resp.Request.URL, page)
	}
	if !strings.Contains(html, `value="TYPED-IN-TAB1"`) || !strings.Contains(html, "long note typed") {
		t.Errorf("what was typed is not back on the form: %s", page)
	}
	if !strings.Contains(page, "Nothing was sent") || !strings.Contains(page, "signed in again") {
		t.Errorf("the page does not say the form was not sent: %s", page)
	}
	if codes, _ := d.app.db.RegistrationCodes(t.Context(), demoidp.DemoTenantID, 100); len(codes.Usable)+codes.Ended != 0 {
		t.Errorf("%d codes created by a stale form", len(codes.Usable)+codes.Ended)
	}

	// Another account signed in in this browser since: the values are not handed over.
	d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)
	parse(t, d.signIn(b, demoidp.ReaderKey, "/"))
	resp, html = d.postFrom(b, "/registration/codes/new", "/registration/codes", form)
	page = resp.Header.Get("X-Test-Text")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "another sign-in") || !strings.Contains(page, "Nothing was sent") {
		t.Errorf("another account's stale form: %d %s", resp.StatusCode, page)
	}
	if strings.Contains(html, "TYPED-IN-TAB1") {
		t.Error("another account's typed values were shown")
	}
	if _, doc := d.get(b, "/registration/codes/new"); strings.Contains(text(doc), "TYPED-IN-TAB1") ||
		formValues(t, doc, `form[action="/registration/codes"]`).Get("groupTag") != "" {
		t.Error("another account's typed values came back on the form page")
	}

	// Without the browser saying the form is the desk's own, it stays a plain refusal.
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/registration/codes", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if resp, err := b.Do(req); err != nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("a stale token without Origin or Referer: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
}

// A form kept through a sign-in comes back only to the account that typed it: another account
// picked at the sign-in page is told it belonged to another sign-in, and sees none of it.
func TestFormKeptThroughSignInIsNotHandedToAnotherAccount(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, demoidp.AdminKey, "/uploads/new")), `form[action="/uploads"]`)
	typed := "0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d"
	form.Set("id", typed)
	d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.ReaderKey)
		return nil
	}
	resp, html := d.postFrom(b, "/uploads/new", "/uploads", form)
	page := resp.Header.Get("X-Test-Text")
	if resp.Request.URL.Path != "/uploads/new" || !strings.Contains(html, "Megan Bowen") {
		t.Fatalf("landed on %s: %s", resp.Request.URL, page)
	}
	if strings.Contains(html, typed) {
		t.Errorf("another account's typed values were put back: %s", page)
	}
	if !strings.Contains(page, "Nothing was sent") || !strings.Contains(page, "another sign-in") || strings.Contains(page, "put back what you had filled in") {
		t.Errorf("the page does not say whose form it was: %s", page)
	}
}

// A form put back after a sign-in names what it did not put back: the hardware hash of one
// device (never shown on a page) and a chosen file (never kept).
func TestRestoredImportFormNamesWhatWasNotKept(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, demoidp.AdminKey, "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}
	end := func() { d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID) }

	end()
	hash := strings.Repeat("QUJD", 400)
	resp, html := d.postFrom(b, "/devices/import", "/devices/import", url.Values{"_csrf": {csrf},
		"serialNumber": {"SER-SINGLE-1"}, "hardwareHash": {hash}, "groupTag": {"TAGX"}})
	page := resp.Header.Get("X-Test-Text")
	if resp.Request.URL.Path != "/devices/import" || !strings.Contains(html, `value="SER-SINGLE-1"`) {
		t.Fatalf("one device: landed on %s: %s", resp.Request.URL, page)
	}
	if strings.Contains(html, hash[:64]) || !strings.Contains(page, "paste the hardware hash again") {
		t.Errorf("one device: the notice does not name the hash it did not put back: %s", page)
	}

	doc = parse(t, d.signIn(b, demoidp.AdminKey, "/devices/import"))
	csrf = doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	end()
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}
	resp = d.postMultipart(b, "/devices/import", func(w *multipart.Writer) {
		w.WriteField("_csrf", csrf)
		w.WriteField("csv", "")
		f, _ := w.CreateFormFile("file", "devices.csv")
		f.Write([]byte("Device Serial Number,Windows Product ID,Hardware Hash\nSERFILE1,," + hash + "\n"))
	})
	doc = parse(t, resp)
	if page := text(doc); resp.Request.URL.Path != "/devices/import" || !strings.Contains(page, "choose the file again") {
		t.Errorf("a file: landed on %s: %s", resp.Request.URL, page)
	}
}

// Two tabs whose forms both found the session ended start two sign-ins in one browser: each
// finishes, in either order, and puts back its own form.
func TestTwoTabsSigningInAtOnceBothFinish(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "off"})
	b := d.browser()
	upload := formValues(t, parse(t, d.signIn(b, demoidp.AdminKey, "/uploads/new")), `form[action="/uploads"]`)
	upload.Set("id", "33333333-2222-3333-4444-555555555555")
	_, doc := d.get(b, "/registration/codes/new")
	code := formValues(t, doc, `form[action="/registration/codes"]`)
	code.Set("groupTag", "TAB2TAG")
	d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)

	// Each tab's form starts a sign-in; the provider answers each, and the answers come back later.
	answer := func(page, path string, form url.Values) string {
		var callback string
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			testkit.PickIdentity(req, demoidp.AdminKey)
			if req.URL.Path == "/auth/callback" {
				callback = strings.TrimPrefix(req.URL.String(), d.srv.URL)
				return http.ErrUseLastResponse
			}
			return nil
		}
		defer func() { b.CheckRedirect = nil }()
		d.postFrom(b, page, path, form)
		if callback == "" {
			t.Fatalf("%s: no sign-in started", path)
		}
		return callback
	}
	first := answer("/uploads/new", "/uploads", upload)
	second := answer("/registration/codes/new", "/registration/codes", code)

	// Both answers arrive before either tab shows its page again.
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for cb, want := range map[string]string{first: "/uploads/new", second: "/registration/codes/new"} {
		resp, err := b.Get(d.srv.URL + cb)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("the sign-in for %s: %d to %q", want, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	b.CheckRedirect = nil
	resp, doc := d.get(b, "/uploads/new")
	if formValues(t, doc, `form[action="/uploads"]`).Get("id") != upload.Get("id") {
		t.Errorf("the first tab's form did not come back: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	resp, doc = d.get(b, "/registration/codes/new")
	if formValues(t, doc, `form[action="/registration/codes"]`).Get("groupTag") != "TAB2TAG" {
		t.Errorf("the second tab's form did not come back: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	// The cookie names a few sign-ins at most: the newest of six still finishes.
	many := d.browser()
	var last string
	for range 6 {
		last = d.callbackURL(many, demoidp.AdminKey)
	}
	u, _ := url.Parse(d.srv.URL)
	for _, ck := range many.Jar.Cookies(u) {
		if ck.Name == "__Host-autopilotdesk-flow" && strings.Count(ck.Value, ".") != 3 {
			t.Errorf("the flow cookie names %d sign-ins: %q", strings.Count(ck.Value, ".")+1, ck.Value)
		}
	}
	if resp, doc := d.get(many, strings.TrimPrefix(last, d.srv.URL)); resp.Request.URL.Path != "/" {
		t.Errorf("the newest of six sign-ins: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	// The first answer again, now that it signed the browser in: on to where it went.
	if resp, doc := d.get(b, first); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/uploads/new" {
		t.Errorf("the first answer again: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
}

// startSignIn begins a sign-in that returns to returnTo and gives the state the provider must
// answer with, without going to the provider.
func (d *desk) startSignIn(c *http.Client, returnTo string) string {
	d.t.Helper()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	defer func() { c.CheckRedirect = nil }()
	resp, err := c.Get(d.srv.URL + "/auth/login?return_to=" + url.QueryEscape(returnTo))
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	u, err := url.Parse(resp.Header.Get("Location"))
	if err != nil || u.Query().Get("state") == "" {
		d.t.Fatalf("no sign-in started: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	return u.Query().Get("state")
}

// Microsoft Entra's refusals reach the person as what they are — a Conditional Access policy,
// multi-factor authentication, a passing outage — with the ids support asks for (on the page
// and in the log), and a button that signs in again to the same page.
func TestEntraRefusalsAreExplainedWithTheirIDs(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "off"})
	const ids = "\r\nTrace ID: 0b5e2c4d-1111-4a2b-9c3d-7e8f9a0b1c2d\r\nCorrelation ID: 5d1e7c2a-2222-4b3c-8d4e-9f0a1b2c3d4e\r\nTimestamp: 2026-11-30 19:55:02Z"
	for _, tc := range []struct {
		code, description string
		status            int
		want, notWant     []string
		button            string // the action's query, as it must be
	}{
		{"access_denied", "AADSTS53003: Access has been blocked by Conditional Access policies." + ids, http.StatusForbidden,
			[]string{"Conditional Access", "AADSTS53003", "correlation ID 5d1e7c2a-2222-4b3c-8d4e-9f0a1b2c3d4e", "trace ID 0b5e2c4d-1111-4a2b-9c3d-7e8f9a0b1c2d"},
			[]string{"cancelled"}, "return_to=%2Fdevices"},
		{"interaction_required", "AADSTS50076: Due to a configuration change made by your administrator, you must use multi-factor authentication." + ids, http.StatusForbidden,
			[]string{"multi-factor authentication", "AADSTS50076"}, nil, "fresh=1&return_to=%2Fdevices"},
		{"temporarily_unavailable", "AADSTS90033: A transient error has occurred. Please try again." + ids, http.StatusServiceUnavailable,
			[]string{"Try again shortly", "AADSTS90033", "correlation ID"}, []string{"refused"}, "return_to=%2Fdevices"},
		{"invalid_request", "AADSTS90072: User account from identity provider does not exist in tenant." + ids, http.StatusForbidden,
			[]string{"guest", "AADSTS90072"}, nil, "account=select&return_to=%2Fdevices"},
		{"access_denied", "AADSTS53003: x\r\nTrace ID: <script>alert(1)</script>\r\nCorrelation ID: " + strings.Repeat("f", 4000), http.StatusForbidden,
			[]string{"AADSTS53003"}, []string{"<script>", "fffffffff", "trace ID", "correlation ID f"}, "return_to=%2Fdevices"},
	} {
		b := d.browser()
		state := d.startSignIn(b, "/devices")
		resp, html := d.get(b, "/auth/callback?"+url.Values{"error": {tc.code}, "error_description": {tc.description}, "state": {state}}.Encode())
		page := text(html)
		if resp.StatusCode != tc.status {
			t.Errorf("%s: %d, want %d: %s", tc.description[:12], resp.StatusCode, tc.status, page)
		}
		for _, w := range tc.want {
			if !strings.Contains(page, w) {
				t.Errorf("%s: the page lacks %q: %s", tc.description[:12], w, page)
			}
		}
		raw, _ := html.Html()
		for _, w := range tc.notWant {
			if strings.Contains(page, w) || strings.Contains(raw, w) {
				t.Errorf("%s: the page says %q: %s", tc.description[:12], w, page)
			}
		}
		if got := html.Find(`main a.btn`).AttrOr("href", ""); got != "/auth/login?"+tc.button {
			t.Errorf("%s: the button goes to %q, want /auth/login?%s", tc.description[:12], got, tc.button)
		}
	}
	if logs := d.log.String(); !strings.Contains(logs, "correlation id 5d1e7c2a-2222-4b3c-8d4e-9f0a1b2c3d4e") || !strings.Contains(logs, "trace id 0b5e2c4d-1111-4a2b-9c3d-7e8f9a0b1c2d") {
		t.Errorf("the log lacks Entra's ids: %s", logs)
	}
}

// The way out of a refusal keeps the page the person was going to, and one that asks for
// another account lets them choose it rather than signing the same one in again.
func TestSignInAgainKeepsThePageAndAsksForAnotherAccount(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_ALLOWED_GROUPS": "00000000-0000-0000-0000-00000000beef"})
	resp := d.signIn(d.browser(), demoidp.AdminKey, "/devices")
	doc := parse(t, resp)
	if href := doc.Find(`main a.btn`).AttrOr("href", ""); resp.StatusCode != http.StatusForbidden || href != "/auth/login?account=select&return_to=%2Fdevices" {
		t.Errorf("not in an allowed group: %d, button to %q", resp.StatusCode, href)
	}
	resp = d.signIn(d.browser(), demoidp.PersonalKey, "/devices")
	doc = parse(t, resp)
	if href := doc.Find(`main a.btn`).AttrOr("href", ""); href != "/auth/login?account=select&return_to=%2Fdevices" {
		t.Errorf("a personal account: button to %q", href)
	}
	c := d.browser()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r, err := c.Get(d.srv.URL + "/auth/login?account=select&return_to=%2Fdevices")
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	if u, _ := url.Parse(r.Header.Get("Location")); u.Query().Get("prompt") != "select_account" {
		t.Errorf("account=select asks the provider %q", r.Header.Get("Location"))
	}
}
