package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/web/identity/demoidp"
)

// desk is the whole desk started in-process in demo mode, served over loopback TLS
// (its session cookie is Secure), with the emulator and demo identity provider beside it.
type desk struct {
	t   testing.TB
	app *app
	srv *httptest.Server
	log *testkit.Buffer
	idp *demoidp.Provider  // the demo mode's, or the one startDeskWithProvider runs
	emu *emulator.Emulator // likewise
}

func startDesk(t *testing.T, env map[string]string) *desk {
	t.Helper()
	return startDeskWith(t, env, appOptions{})
}

func startDeskWith(t testing.TB, env map[string]string, opts appOptions) *desk {
	t.Helper()
	return startDeskFor(t, func(string) map[string]string { return env }, opts)
}

// startDeskFor starts a desk whose environment may depend on its public URL (an identity
// provider outside the desk must know the redirect URI before the desk starts).
func startDeskFor(t testing.TB, envFor func(publicURL string) map[string]string, opts appOptions) *desk {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	public := "https://" + srv.Listener.Addr().String()
	base := map[string]string{
		"AUTOPILOTDESK_DATA_DIR":   t.TempDir(),
		"AUTOPILOTDESK_PUBLIC_URL": public,
	}
	for k, v := range envFor(public) {
		base[k] = v
	}
	cfg, err := loadConfig(nil, testkit.Env(base), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = a.handler
	srv.StartTLS()
	t.Cleanup(func() { srv.Close(); a.Close() })
	d := &desk{t: t, app: a, srv: srv, log: logs}
	if a.demo != nil {
		d.idp, d.emu = a.demo.IdP, a.demo.Emulator
	}
	return d
}

// browser is a client with its own cookie jar, like one browser profile.
func (d *desk) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: d.srv.Client().Transport, Jar: jar}
}

// signIn walks the real sign-in flow: desk -> demo identity provider (identity picked by login
// hint) -> callback -> back to returnTo.
func (d *desk) signIn(c *http.Client, identityKey, returnTo string) *http.Response {
	d.t.Helper()
	login := d.srv.URL + "/auth/login?return_to=" + url.QueryEscape(returnTo)
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, identityKey)
		return nil
	}
	defer func() { c.CheckRedirect = nil }()
	resp, err := c.Get(login)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp
}

// signedIn is n browsers made by newBrowser (d.browser, or a cluster's), each signed in as identityKey.
func (d *desk) signedIn(n int, identityKey string, newBrowser func() *http.Client) []*http.Client {
	d.t.Helper()
	browsers := make([]*http.Client, n)
	for i := range browsers {
		browsers[i] = d.signedInBrowser(identityKey, newBrowser)
	}
	return browsers
}

// signedInBrowser is a browser made by newBrowser, signed in as identityKey.
func (d *desk) signedInBrowser(identityKey string, newBrowser func() *http.Client) *http.Client {
	d.t.Helper()
	b := newBrowser()
	parse(d.t, d.signIn(b, identityKey, "/"))
	return b
}

func (d *desk) get(c *http.Client, path string) (*http.Response, *goquery.Document) {
	d.t.Helper()
	resp, err := c.Get(d.srv.URL + path)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp, parse(d.t, resp)
}

func (d *desk) post(c *http.Client, path string, form url.Values) (*http.Response, *goquery.Document) {
	d.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", d.srv.URL)
	resp, err := c.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp, parse(d.t, resp)
}

func parse(t testing.TB, resp *http.Response) *goquery.Document {
	t.Helper()
	defer resp.Body.Close()
	doc, err := goquery.NewDocumentFromReader(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

// formValues reads a rendered form's fields, as a browser would submit them.
var formValues = testkit.FormValues

// text is a page's main content as one line of words.
var text = testkit.Text

func TestCreateUploadEndToEnd(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()

	// Anonymous: sent to sign in, then back to the form.
	resp, doc := d.get(b, "/uploads/new")
	if resp.Request.URL.Path != "/auth/signin" || resp.Request.URL.Query().Get("return_to") != "/uploads/new" {
		t.Fatalf("anonymous request landed on %s", resp.Request.URL)
	}
	resp = d.signIn(b, "admin", "/uploads/new")
	if resp.Request.URL.Path != "/uploads/new" {
		t.Fatalf("after sign-in landed on %s", resp.Request.URL)
	}
	doc = parse(t, resp)
	if got := doc.Find(".who strong").Text(); got == "" {
		t.Errorf("the page does not show who is signed in")
	}
	if doc.Find(`form[action="/auth/signout"] button`).Length() != 1 {
		t.Errorf("no sign-out button")
	}
	form := formValues(t, doc, `form[action="/uploads"]`)
	if form.Get("_csrf") == "" || form.Get("formKey") == "" {
		t.Fatalf("form lacks CSRF token or form key: %v", form)
	}
	if !validDateTimeOffsetForTest(form.Get("createdDateTimeUtc")) || form.Get("status") != "pending" {
		t.Errorf("form not prefilled: %v", form)
	}
	form.Set("createdDateTimeUtc", "2016-12-31T23:59:45.8788427-08:00")

	resp, doc = d.post(b, "/uploads", form)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		t.Fatalf("create answered %d at %s:\n%s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	id := strings.TrimSpace(doc.Find(`[data-testid="upload-id"]`).Text())
	if !guid.Valid(id) {
		t.Errorf("upload id %q is not a GUID", id)
	}
	if got := doc.Find(`[data-testid="upload-created"]`).Text(); got != "2016-12-31T23:59:45.8788427-08:00" {
		t.Errorf("createdDateTimeUtc shown as %q", got)
	}
	if got, title := strings.TrimSpace(doc.Find(`[data-testid="upload-status"]`).Text()), doc.Find(`[data-testid="upload-status"] .badge`).AttrOr("title", ""); got != "Pending" || title != "status: pending" {
		t.Errorf("status shown as %q (%q)", got, title)
	}
	request := doc.Find(`[data-testid="request"]`).Text()
	response := doc.Find(`[data-testid="response"]`).Text()
	for _, want := range []string{"POST " + d.app.demo.URL + "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads",
		"Authorization: Bearer <redacted>", "client-request-id: ", `"@odata.type": "#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload"`} {
		if !strings.Contains(request, want) {
			t.Errorf("request view lacks %q:\n%s", want, request)
		}
	}
	for _, want := range []string{"201 Created", "request-id: ", "client-request-id: ", "Date: ", `"id": "` + id + `"`} {
		if !strings.Contains(response, want) {
			t.Errorf("response view lacks %q:\n%s", want, response)
		}
	}
	support := doc.Find(`[data-testid="support"] pre`).Text()
	if !strings.Contains(support, "request-id") || !strings.Contains(support, "201") {
		t.Errorf("support details incomplete:\n%s", support)
	}

	// What Graph (the emulator) received.
	var create *receivedRequest
	for _, r := range d.received() {
		if r.Method == http.MethodPost {
			create = &r
		}
	}
	if create == nil {
		t.Fatal("the emulator received no POST")
	}
	if !strings.HasPrefix(create.Header.Get("Authorization"), "Bearer ") || strings.Contains(create.Header.Get("Authorization"), "redacted") {
		t.Errorf("Authorization sent = %q", create.Header.Get("Authorization"))
	}
	if create.Header.Get("Accept") != "application/json" || !strings.HasPrefix(create.Header.Get("Content-Type"), "application/json") {
		t.Errorf("Accept/Content-Type = %q / %q", create.Header.Get("Accept"), create.Header.Get("Content-Type"))
	}
	if !guid.Valid(create.Header.Get("client-request-id")) {
		t.Errorf("client-request-id = %q", create.Header.Get("client-request-id"))
	}
	var body map[string]any
	if err := json.Unmarshal(create.Body, &body); err != nil {
		t.Fatalf("body %q: %v", create.Body, err)
	}
	want := map[string]any{"@odata.type": "#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload",
		"createdDateTimeUtc": "2016-12-31T23:59:45.8788427-08:00", "status": "pending"}
	if len(body) != len(want) {
		t.Errorf("body = %v, want exactly %v", body, want)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("body[%q] = %v, want %v", k, body[k], v)
		}
	}

	// The home page lists it.
	_, doc = d.get(b, "/")
	if !strings.Contains(doc.Find(`[data-testid="recent-uploads"]`).Text(), id) {
		t.Errorf("home page does not list the new upload:\n%s", text(doc))
	}
	if doc.Find(`[data-testid="upn"]`).Text() == "" || doc.Find(`[data-testid="tenant"]`).Text() == "" {
		t.Errorf("home page does not show UPN and tenant")
	}

	// The same form again (double click, refresh): nothing more reaches Graph, the first result shows.
	before := len(d.received())
	resp, _ = d.post(b, "/uploads", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/activity/") || len(d.received()) != before {
		t.Errorf("second submit of the same form: landed on %s, Graph got %d more requests", resp.Request.URL, len(d.received())-before)
	}
}

func validDateTimeOffsetForTest(s string) bool {
	return regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{7}(Z|[+-]\d{2}:\d{2})$`).MatchString(s)
}

type receivedRequest struct {
	Method string
	Path   string
	Header http.Header
	Body   []byte
}

func (d *desk) received() []receivedRequest {
	var out []receivedRequest
	for _, r := range d.emu.Received() {
		out = append(out, receivedRequest{Method: r.Method, Path: r.Path, Header: r.Header, Body: r.Body})
	}
	return out
}

// countReceived counts the requests Graph (the emulator) received that match.
func countReceived(e *emulator.Emulator, match func(r emulator.ReceivedRequest) bool) int {
	n := 0
	for _, r := range e.Received() {
		if match(r) {
			n++
		}
	}
	return n
}

// postsTo counts the POSTs Graph received whose path ends in suffix ("" for every POST).
func postsTo(e *emulator.Emulator, suffix string) int {
	return countReceived(e, func(r emulator.ReceivedRequest) bool {
		return r.Method == http.MethodPost && strings.HasSuffix(r.Path, suffix)
	})
}

func TestCSRFRefusals(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/uploads/new"))
	form := formValues(t, doc, `form[action="/uploads"]`)

	other := d.browser()
	otherDoc := parse(t, d.signIn(other, "reader", "/uploads/new"))
	otherToken := formValues(t, otherDoc, `form[action="/uploads"]`).Get("_csrf")

	for name, mutate := range map[string]func(url.Values){
		"missing token":                  func(v url.Values) { v.Del("_csrf") },
		"wrong token":                    func(v url.Values) { v.Set("_csrf", "forged") },
		"another person's session token": func(v url.Values) { v.Set("_csrf", otherToken) },
	} {
		t.Run(name, func(t *testing.T) {
			f := url.Values{}
			for k, v := range form {
				f[k] = v
			}
			mutate(f)
			resp, doc := d.post(b, "/uploads", f)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(text(doc), "refused") {
				t.Errorf("status %d: %s", resp.StatusCode, text(doc))
			}
		})
	}
	for name, header := range map[string][2]string{
		"cross-site fetch": {"Sec-Fetch-Site", "cross-site"},
		"same-site fetch":  {"Sec-Fetch-Site", "same-site"},
		"foreign origin":   {"Origin", "https://evil.example"},
		"another port":     {"Origin", "https://127.0.0.1:1"},
	} {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/uploads", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set(header[0], header[1])
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden {
				t.Errorf("status %d, want 403", resp.StatusCode)
			}
		})
	}
	// The same person's token of another session (a tab opened before signing in again) is
	// not carried out either: what was typed goes back to the form, unsent.
	same := d.browser()
	sameToken := formValues(t, parse(t, d.signIn(same, "admin", "/uploads/new")), `form[action="/uploads"]`).Get("_csrf")
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("_csrf", sameToken)
	f.Set("id", "0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d")
	if resp, html := d.postFrom(b, "/uploads/new", "/uploads", f); resp.Request.URL.Path != "/uploads/new" || !strings.Contains(html, f.Get("id")) ||
		!strings.Contains(resp.Header.Get("X-Test-Text"), "Nothing was sent") {
		t.Errorf("the same person's other session's token: %d at %s: %s", resp.StatusCode, resp.Request.URL, resp.Header.Get("X-Test-Text"))
	}
	if posts := postsTo(d.emu, ""); posts != 0 {
		t.Errorf("Graph received %d creates from refused forms", posts)
	}
	// Sign-out is state-changing too.
	resp, _ := d.post(b, "/auth/signout", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-out without token: %d", resp.StatusCode)
	}
}

func TestReaderGetsGraphsForbiddenExplainedOnTheForm(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "reader", "/uploads/new"))
	form := formValues(t, doc, `form[action="/uploads"]`)
	resp, doc := d.post(b, "/uploads", form)
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("status %d, want 403:\n%s", resp.StatusCode, text(doc))
	}
	failure := doc.Find(`[data-testid="failure"]`).Text()
	if !strings.Contains(failure, "DeviceManagementServiceConfig.ReadWrite.All") && !strings.Contains(strings.ToLower(failure), "permission") {
		t.Errorf("403 not explained: %s", failure)
	}
	support := doc.Find(`[data-testid="support"] pre`).Text()
	for _, want := range []string{"403", "request-id", "client-request-id", "Activity ID"} {
		if !strings.Contains(support, want) {
			t.Errorf("support details lack %q:\n%s", want, support)
		}
	}
	// From now on she may only read: what she typed stays on the page, the form does not.
	if !strings.Contains(doc.Find(`[data-testid="typed"]`).Text(), form.Get("createdDateTimeUtc")) || doc.Find(`form[action="/uploads"]`).Length() != 0 {
		t.Errorf("values not kept, or the form offered again, after Graph's refusal: %s", text(doc))
	}
}

func TestExpiredTokenIsRenewedOnce(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/uploads/new"))
	form := formValues(t, doc, `form[action="/uploads"]`)
	d.app.demo.IdP.ExpireAccessTokens()
	resp, doc := d.post(b, "/uploads", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		t.Fatalf("after renewal landed on %s (%d): %s", resp.Request.URL, resp.StatusCode, text(doc))
	}
	if n := len(doc.Find(`[data-testid="request"]`).Nodes); n != 2 {
		t.Errorf("result shows %d attempts, want the 401 and the retry", n)
	}
}

func TestEndedSessionSendsToSignInAndKeepsTheForm(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/uploads/new"))
	form := formValues(t, doc, `form[action="/uploads"]`)
	form.Set("id", "0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d")
	d.app.demo.IdP.ExpireAccessTokens()
	d.app.demo.IdP.RevokeRefreshTokens()

	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, "admin")
		return nil
	}
	resp, doc := d.post(b, "/uploads", form)
	if resp.Request.URL.Path != "/uploads/new" {
		t.Fatalf("landed on %s: %s", resp.Request.URL, text(doc))
	}
	kept := formValues(t, doc, `form[action="/uploads"]`)
	if kept.Get("id") != form.Get("id") || kept.Get("createdDateTimeUtc") != form.Get("createdDateTimeUtc") {
		t.Errorf("typed values not restored after sign-in: %v", kept)
	}
}

func TestSignOutEndsTheServerSession(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/"))
	csrf := doc.Find(`form[action="/auth/signout"] input[name="_csrf"]`).AttrOr("value", "")
	u, _ := url.Parse(d.srv.URL)
	old := b.Jar.Cookies(u)
	var via []string
	b.CheckRedirect = func(req *http.Request, _ []*http.Request) error { via = append(via, req.URL.String()); return nil }
	resp, doc := d.post(b, "/auth/signout", url.Values{"_csrf": {csrf}})
	if !strings.Contains(text(doc), "signed out") {
		t.Fatalf("after sign-out (%d at %s): %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	// The provider's sign-out is told the application and the account, never given the ID token.
	if len(via) < 2 || !strings.Contains(via[0], "/logout?") || !strings.Contains(via[0], "logout_hint=") ||
		strings.Contains(via[0], "id_token_hint") || strings.Contains(via[0], "eyJ") {
		t.Errorf("sign-out went through %v", via)
	}
	// Replaying the old cookie finds no session.
	replay := d.browser()
	replay.Jar.SetCookies(u, old)
	resp, _ = d.get(replay, "/")
	if resp.Request.URL.Path != "/auth/signin" {
		t.Errorf("old cookie still signed in: landed on %s", resp.Request.URL)
	}
}

func TestPersonalAccountIsRefused(t *testing.T) {
	d := startDesk(t, nil)
	resp := d.signIn(d.browser(), "personal", "/")
	doc := parse(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(text(doc), "Personal Microsoft accounts") {
		t.Errorf("personal account: %d %s", resp.StatusCode, text(doc))
	}
}

func TestPagesCarrySecurityHeadersAndNoTokens(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	resp := d.signIn(b, "admin", "/uploads/new")
	resp.Body.Close()
	for _, path := range []string{"/", "/uploads/new", "/auth/signin", "/nope"} {
		resp, err := b.Get(d.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		csp := resp.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "'nonce-") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "frame-ancestors 'none'") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if resp.Header.Get("X-Content-Type-Options") != "nosniff" || resp.Header.Get("X-Frame-Options") != "DENY" {
			t.Errorf("%s: missing nosniff/DENY", path)
		}
		for _, tok := range d.app.demo.IdP.IssuedTokens() {
			if strings.Contains(string(body), tok) {
				t.Errorf("%s: a token appears in the page", path)
			}
		}
	}
	for _, tok := range d.app.demo.IdP.IssuedTokens() {
		if strings.Contains(d.log.String(), tok) {
			t.Errorf("a token appears in the log")
		}
	}
}

// The desk's own limit on creates keeps what was typed: its page leads back to the form, which
// shows the values again, and nothing of the refused request reaches Graph.
func TestCreateLimitKeepsTheForm(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "1/1h"})
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/uploads/new"))
	first := formValues(t, doc, `form[action="/uploads"]`)
	d.post(b, "/uploads", first)

	_, doc = d.get(b, "/uploads/new")
	form := formValues(t, doc, `form[action="/uploads"]`)
	form.Set("id", "0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d")
	form.Set("createdDateTimeUtc", "2026-03-04T05:06:07Z")
	before := len(d.received())
	resp, doc := d.post(b, "/uploads", form)
	back := doc.Find(`a[href="/uploads/new"]`)
	if resp.StatusCode != http.StatusTooManyRequests || back.Length() == 0 || !strings.Contains(text(doc), "keeps what you typed") {
		t.Fatalf("second create: %d, no way back to the form that keeps it: %s", resp.StatusCode, text(doc))
	}
	if len(d.received()) != before {
		t.Errorf("a limited create reached Graph")
	}
	_, doc = d.get(b, "/uploads/new")
	kept := formValues(t, doc, `form[action="/uploads"]`)
	if kept.Get("id") != form.Get("id") || kept.Get("createdDateTimeUtc") != form.Get("createdDateTimeUtc") {
		t.Errorf("typed values not kept through the limit: %v", kept)
	}
}

// The links a page carries back to itself — "Sign in again" after Graph refused the token, the
// theme toggle — return to that page; for a form's answer, to the page of the form.
func TestPagesReturnToThemselves(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_EMULATOR_ERROR_RATE": "1", "AUTOPILOTDESK_EMULATOR_ERROR_STATUSES": "401",
		"AUTOPILOTDESK_EMULATOR_ERROR_METHODS": "GET"})
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices?serial=5CG"))
	if href := doc.Find(`[data-testid="failure"] a[href^="/auth/login"]`).AttrOr("href", ""); href != "/auth/login?return_to="+url.QueryEscape("/devices?serial=5CG") {
		t.Errorf("Sign in again on the devices page leads to %q: %s", href, text(doc))
	}
	_, doc = d.get(b, "/uploads/new")
	form := formValues(t, doc, `form[action="/uploads"]`)
	form.Set("id", "not-a-guid")
	_, doc = d.post(b, "/uploads", form)
	if ret := doc.Find(`input[name="return_to"]`).AttrOr("value", ""); ret != "/uploads/new" {
		t.Errorf("the theme toggle on a form's answer returns to %q, want the form's page", ret)
	}
}

// A passing failure to read an upload or a device offers to read it again.
func TestDetailPagesOfferReloadAfterAPassingFailure(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_EMULATOR_ERROR_RATE": "1", "AUTOPILOTDESK_EMULATOR_ERROR_STATUSES": "503",
		"AUTOPILOTDESK_EMULATOR_ERROR_METHODS": "GET"})
	b := d.browser()
	d.signIn(b, "admin", "/activity")
	for _, path := range []string{"/uploads/0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d", "/devices/0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d"} {
		_, doc := d.get(b, path)
		if href := doc.Find(`[data-testid="failure"] a[data-testid="reload"]`).AttrOr("href", ""); href != path {
			t.Errorf("%s: Reload leads to %q: %s", path, href, text(doc))
		}
	}
}
