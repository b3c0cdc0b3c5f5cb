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
	if codes, _ := d.app.db.RegistrationCodes(t.Context(), demoidp.DemoTenantID); len(codes) != 0 {
		t.Errorf("%d codes created by a stale form", len(codes))
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

	resp, doc := d.get(b, first)
	if resp.Request.URL.Path != "/uploads/new" || formValues(t, doc, `form[action="/uploads"]`).Get("id") != upload.Get("id") {
		t.Errorf("the first tab's sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	resp, doc = d.get(b, second)
	if resp.Request.URL.Path != "/registration/codes/new" || formValues(t, doc, `form[action="/registration/codes"]`).Get("groupTag") != "TAB2TAG" {
		t.Errorf("the second tab's sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
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
