package main

import (
	"net/http"
	"net/url"
	"sort"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// deskRoute is how a test reaches one signed-in route.
type deskRoute struct {
	path     string     // the request path, parameters filled in
	formPage string     // POST: the page its form is on, where the person returns after signing in
	form     url.Values // POST: what the person typed (the CSRF token is added)
	kept     string     // POST: a field whose value the form page shows again after signing in
	graph    bool       // the route calls Graph, so a refused token renewal ends the session there
}

// Every page and form, driven with a session that ended (signed out or expired elsewhere, or the
// identity provider refusing to renew its tokens): never an error page, a sign-in, and back to
// where the person was with what they typed. Routes are read from the router, so a new route
// fails this test until it is listed here.
func TestEveryRouteAnswersAnEndedSessionWithSignIn(t *testing.T) {
	d, routes := everyRoute(t)

	endings := map[string]func(){
		"signed out elsewhere": func() { d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID) },
		"renewal refused":      func() { d.idp.ExpireAccessTokens(); d.idp.RevokeRefreshTokens() },
	}
	for key, rt := range routes {
		method, _, _ := strings.Cut(key, " ")
		for ending, end := range endings {
			t.Run(key+"/"+ending, func(t *testing.T) {
				b := d.browser()
				doc := parse(t, d.signIn(b, demoidp.AdminKey, "/uploads/new"))
				form := url.Values{"_csrf": {doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")}}
				for k, v := range rt.form {
					form[k] = v
				}
				if key == "POST /uploads" {
					form = formValues(t, doc, `form[action="/uploads"]`)
					form.Set("id", rt.form.Get("id"))
				}
				end()
				if ending == "renewal refused" && !rt.graph {
					return // the session is still good for what does not call Graph
				}

				req, _ := http.NewRequest(method, d.srv.URL+rt.path, strings.NewReader(form.Encode()))
				if method == http.MethodPost {
					req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					req.Header.Set("Origin", d.srv.URL)
					req.Header.Set("Referer", d.srv.URL+rt.formPage)
				}
				// Follow the desk's own answers; a sign-in page is as far as it goes by itself.
				formSignedIn := false // the form's own answer started a sign-in
				b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
					formSignedIn = formSignedIn || (len(via) == 1 && strings.HasSuffix(req.URL.Path, "/authorize"))
					testkit.PickIdentity(req, demoidp.AdminKey)
					if req.URL.Path == "/auth/signin" {
						return http.ErrUseLastResponse
					}
					return nil
				}
				var statuses []int
				b.Transport = recordStatuses(b.Transport, &statuses)
				resp, err := b.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				doc = parse(t, resp)
				for _, s := range statuses {
					if s >= 500 {
						t.Fatalf("an answer on the way was %d: %v\n%s", s, statuses, text(doc))
					}
				}
				want := rt.path
				if method == http.MethodPost {
					want = rt.formPage
				}
				if resp.Request.URL.Path == "/auth/signin" || resp.Header.Get("Location") != "" {
					// Stopped at the sign-in page, which returns to where the person was.
					if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != web.SignInURL(want) {
						t.Fatalf("answered %d, Location %q, want 303 to %s", resp.StatusCode, resp.Header.Get("Location"), web.SignInURL(want))
					}
					resp = d.signIn(b, demoidp.AdminKey, want)
					doc = parse(t, resp)
				} else if method != http.MethodPost {
					t.Fatalf("a page answered %d at %s without sending to sign in", resp.StatusCode, resp.Request.URL)
				}
				if resp.Request.URL.RequestURI() != want || resp.StatusCode >= 500 {
					t.Fatalf("after signing in: %d at %s, want %s: %s", resp.StatusCode, resp.Request.URL.RequestURI(), want, text(doc))
				}
				if rt.kept != "" {
					if got := formValues(t, doc, "form:has([name="+rt.kept+"])").Get(rt.kept); got != form.Get(rt.kept) {
						t.Errorf("%s after signing in = %q, want what was typed, %q", rt.kept, got, form.Get(rt.kept))
					}
					if notice := doc.Find(`main [data-testid="form-restored"]`); notice.Length() != 1 || !strings.Contains(notice.Text(), "Nothing was sent") {
						t.Errorf("the form came back without saying it was not sent: %s", text(doc))
					}
				}
				if method == http.MethodPost && len(rt.form) == 0 && formSignedIn {
					// A button: nothing to put back, but its page says, after the sign-in, that
					// it was not carried out.
					if notice := doc.Find(`main [data-testid="form-restored"]`); notice.AttrOr("data-why", "") != views.RestoredPressed || !strings.Contains(notice.Text(), "Nothing was sent") {
						t.Errorf("the page does not say the button pressed was not carried out: %s", text(doc))
					}
				}
			})
		}
	}

	// Without the browser saying where the form was, the route's own form page is used.
	upload := routes["GET /uploads/:id"].path
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, demoidp.AdminKey, upload)), `form[action$="/status"]`)
	form.Set("status", "error")
	endings["signed out elsewhere"]()
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}
	resp, doc := d.post(b, upload+"/status", form)
	if resp.Request.URL.Path != upload || doc.Find(`#new-status option[selected]`).AttrOr("value", "") != "error" {
		t.Errorf("without a Referer: landed on %s with %q chosen", resp.Request.URL, doc.Find(`#new-status option[selected]`).AttrOr("value", ""))
	}
	if doc.Find(`[data-testid="form-restored"]`).Length() != 1 {
		t.Errorf("without a Referer: the form came back without saying it was not sent: %s", text(doc))
	}
	// Said once: the page shown again is the page as it is.
	if _, doc := d.get(b, upload); doc.Find(`[data-testid="form-restored"]`).Length() != 0 {
		t.Error("the notice that a form was not sent stays after the form was put back")
	}
}

// Sync pressed on the devices list as the session ended, in a browser that sends no Referer: the
// person signs in again and is back on the list as it was (its pages and filters, which the form
// names), which says the sync was not asked; nothing reached Graph.
func TestSyncPressedAsTheSessionEndsReturnsToTheList(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{EmulatorPageSize: 5})
	b := d.browser()
	list := "/devices?pages=2&tag=Sales"
	form := testkit.FormValues(t, parse(t, d.signIn(b, demoidp.AdminKey, list)), `form[action="/devices/sync"]`)
	d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}
	resp, doc := d.post(b, "/devices/sync", form)
	if resp.Request.URL.RequestURI() != list {
		t.Errorf("after signing in: at %s, want %s", resp.Request.URL.RequestURI(), list)
	}
	notice := doc.Find(`main [data-testid="form-restored"]`)
	if notice.AttrOr("data-why", "") != views.RestoredPressed || !strings.Contains(notice.Text(), "Nothing was sent") {
		t.Errorf("the list does not say the sync was not asked: %s", text(doc))
	}
	if n := postsTo(d.emu, "/windowsAutopilotSettings/sync"); n != 0 {
		t.Errorf("%d syncs sent", n)
	}
	if _, doc := d.get(b, list); doc.Find(`[data-testid="form-restored"]`).Length() != 0 {
		t.Error("the notice stays after it was said")
	}
}

// everyRoute starts a desk with something behind every page and form (an upload, import jobs, an
// activity record, a waiting registration, a device and a bulk draft) and returns how to reach
// each route that needs a session. Routes are read from the router, so a new route fails the
// tests that use this until it is listed here.
func everyRoute(t *testing.T) (*desk, map[string]deskRoute) {
	t.Helper()
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off", "AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "off"},
		appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Hour, Pending: time.Hour}})
	setup := d.browser()
	parse(t, d.signIn(setup, demoidp.AdminKey, "/"))
	upload := d.createUpload(setup, "pending")
	draft := d.importDraft(setup, "SN-ENDED-1")
	polling := d.importDraft(setup, "SN-ENDED-2")
	_, doc := d.get(setup, views.ImportJobURL(polling))
	if resp, doc := d.post(setup, views.ImportJobURL(polling)+"/submit", formValues(t, doc, `form[action$="/submit"]`)); resp.StatusCode != http.StatusOK {
		t.Fatalf("submit: %s", text(doc))
	}
	_, doc = d.get(setup, "/activity")
	activity := strings.TrimPrefix(doc.Find(`[data-testid="activity"] tbody tr a`).First().AttrOr("href", ""), "/activity/")
	regCode, _ := createCode(t, d, setup, nil)
	sendDevice(t, d, regCode, "SN-ENDED-REG")
	waiting := registrations(t, d.app, store.SubmissionFilter{})[0]
	device := emulator.DemoAutopilotDevices(time.Now())[0].ID
	bulkDraft := d.bulkDraft(setup, "group-tag", "Kiosk", device)

	routes := map[string]deskRoute{
		"GET /":                              {path: "/", graph: true},
		"GET /uploads/new":                   {path: "/uploads/new"},
		"GET /uploads":                       {path: "/uploads?status=pending", graph: true},
		"GET /uploads/:id":                   {path: "/uploads/" + upload, graph: true},
		"GET /uploads/:id/delete":            {path: "/uploads/" + upload + "/delete"},
		"GET /devices/import":                {path: "/devices/import"},
		"GET /devices/import/:id":            {path: views.ImportJobURL(polling)}, // read from the state database only
		"GET /devices/import/:id/report.csv": {path: views.ImportJobURL(polling) + "/report.csv"},
		"GET /activity":                      {path: "/activity?mine=1"},
		"GET /activity/:id":                  {path: "/activity/" + activity},
		"POST /uploads": {path: "/uploads", formPage: "/uploads/new", graph: true, kept: "id",
			form: url.Values{"id": {"0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d"}}},
		"POST /uploads/:id/status": {path: "/uploads/" + upload + "/status", formPage: "/uploads/" + upload, graph: true, kept: "status",
			form: url.Values{"status": {"complete"}}},
		"POST /uploads/offered":    {path: "/uploads/offered", formPage: "/uploads/new", graph: true, form: url.Values{"back": {"/uploads"}}},
		"POST /activity/:id/check": {path: "/activity/" + activity + "/check", formPage: "/activity/" + activity},
		"POST /uploads/:id/delete": {path: "/uploads/" + upload + "/delete", formPage: "/uploads/" + upload + "/delete", graph: true},
		"POST /devices/import": {path: "/devices/import", formPage: "/devices/import", kept: "serialNumber",
			form: url.Values{"serialNumber": {"SN-TYPED"}, "groupTag": {"Typed-Tag"}}},
		"POST /devices/import/:id/check":      {path: views.ImportJobURL(draft) + "/check", formPage: views.ImportJobURL(draft), graph: true},
		"POST /devices/import/:id/fix":        {path: views.ImportJobURL(draft) + "/fix", formPage: views.ImportJobURL(draft)},
		"POST /devices/import/:id/stop-check": {path: views.ImportJobURL(draft) + "/stop-check", formPage: views.ImportJobURL(draft)},
		"POST /devices/import/:id/stop":       {path: views.ImportJobURL(polling) + "/stop", formPage: views.ImportJobURL(polling)},
		"POST /devices/import/:id/submit":     {path: views.ImportJobURL(draft) + "/submit", formPage: views.ImportJobURL(draft), graph: true, form: url.Values{"row": {"2"}}},
		"POST /devices/sync":                  {path: "/devices/sync", formPage: views.ImportJobURL(polling), graph: true},
		"POST /devices/import/:id/reconcile":  {path: views.ImportJobURL(polling) + "/reconcile", formPage: views.ImportJobURL(polling)},
		"GET /devices":                        {path: "/devices?nouser=1", graph: true},
		"GET /devices/export.csv":             {path: "/devices/export.csv", graph: true},
		"GET /devices/:id":                    {path: "/devices/" + device, graph: true},
		"GET /devices/:id/delete":             {path: "/devices/" + device + "/delete", graph: true},
		"GET /devices/bulk":                   {path: "/devices/bulk"},
		"GET /devices/bulk/:id":               {path: "/devices/bulk/" + bulkDraft},
		"POST /devices/:id/properties": {path: "/devices/" + device + "/properties", formPage: "/devices/" + device, graph: true, kept: "groupTag",
			form: url.Values{"groupTag": {"Typed-Tag"}}},
		"POST /devices/:id/user": {path: "/devices/" + device + "/user", formPage: "/devices/" + device, graph: true, kept: "userPrincipalName",
			form: url.Values{"userPrincipalName": {"typed@contoso.example"}}},
		"POST /devices/:id/unassign": {path: "/devices/" + device + "/unassign", formPage: "/devices/" + device, graph: true},
		"POST /devices/:id/delete":   {path: "/devices/" + device + "/delete", formPage: "/devices/" + device + "/delete", graph: true},
		"POST /devices/bulk": {path: "/devices/bulk", formPage: "/devices", graph: true, kept: "groupTag",
			form: url.Values{"action": {"group-tag"}, "groupTag": {"Typed-Bulk"}, "device": {device}}},
		"POST /devices/bulk/serials": {path: "/devices/bulk/serials", formPage: "/devices/bulk/serials", graph: true, kept: "serials",
			form: url.Values{"action": {"group-tag"}, "groupTag": {"Typed-Serials"}, "serials": {"SN-TYPED-1\nSN-TYPED-2"}}},
		"GET /devices/bulk/serials":        {path: "/devices/bulk/serials"},
		"HEAD /devices/bulk/serials":       {path: "/devices/bulk/serials"},
		"POST /devices/bulk/:id/confirm":   {path: "/devices/bulk/" + bulkDraft + "/confirm", formPage: "/devices/bulk/" + bulkDraft},
		"POST /devices/bulk/:id/reconcile": {path: "/devices/bulk/" + bulkDraft + "/reconcile", formPage: "/devices/bulk/" + bulkDraft},
		"POST /devices/bulk/:id/group-tag": {path: "/devices/bulk/" + bulkDraft + "/group-tag", formPage: "/devices/bulk/" + bulkDraft, kept: "groupTag",
			form: url.Values{"groupTag": {"Typed-Correction"}}},
		"HEAD /devices":                        {path: "/devices", graph: true},
		"HEAD /devices/export.csv":             {path: "/devices/export.csv", graph: true},
		"HEAD /devices/:id":                    {path: "/devices/" + device, graph: true},
		"HEAD /devices/:id/delete":             {path: "/devices/" + device + "/delete", graph: true},
		"HEAD /devices/bulk":                   {path: "/devices/bulk"},
		"HEAD /devices/bulk/:id":               {path: "/devices/bulk/" + bulkDraft},
		"HEAD /":                               {path: "/", graph: true},
		"HEAD /uploads/new":                    {path: "/uploads/new"},
		"HEAD /uploads":                        {path: "/uploads", graph: true},
		"HEAD /uploads/:id":                    {path: "/uploads/" + upload, graph: true},
		"HEAD /uploads/:id/delete":             {path: "/uploads/" + upload + "/delete"},
		"HEAD /devices/import":                 {path: "/devices/import"},
		"HEAD /devices/import/:id":             {path: views.ImportJobURL(polling)},
		"HEAD /devices/import/:id/report.csv":  {path: views.ImportJobURL(polling) + "/report.csv"},
		"HEAD /activity":                       {path: "/activity"},
		"HEAD /activity/:id":                   {path: "/activity/" + activity},
		"GET /registration":                    {path: "/registration", graph: true}, // looks the waiting serial up
		"GET /registration/codes/new":          {path: "/registration/codes/new"},
		"GET /registration/sample-device.csv":  {path: "/registration/sample-device.csv"},
		"HEAD /registration":                   {path: "/registration", graph: true},
		"HEAD /registration/codes/new":         {path: "/registration/codes/new"},
		"HEAD /registration/sample-device.csv": {path: "/registration/sample-device.csv"},
		"POST /registration/codes": {path: "/registration/codes", formPage: "/registration/codes/new", kept: "note",
			form: url.Values{"note": {"Typed before the sign-in"}, "hours": {"4"}, "uses": {"1"}}},
		"POST /registration/codes/:id/revoke": {path: "/registration/codes/" + waiting.CodeID + "/revoke", formPage: "/registration"},
		"POST /registration/decide": {path: "/registration/decide", formPage: "/registration", kept: "reason",
			form: url.Values{"code": {waiting.CodeID}, "submission": {waiting.ID}, "action": {"reject"}, "reason": {"Typed before the sign-in"}}},
	}

	// Every route that needs a session is in the table.
	var missing []string
	for _, r := range d.app.shell.Echo.Routes() {
		key := r.Method + " " + r.Path
		if _, ok := routes[key]; !ok && needsSession(r.Method, r.Path) {
			missing = append(missing, key)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("routes missing from everyRoute: %v", missing)
	}

	return d, routes
}

// needsSession says whether a route is a signed-in page or form.
func needsSession(method, path string) bool {
	switch {
	case method != http.MethodGet && method != http.MethodHead && method != http.MethodPost:
		return false // Echo's not-found routes
	case path == "/register", strings.HasPrefix(path, "/register/"): // from devices: no session at all
		return false
	case strings.HasPrefix(path, "/auth/"), strings.HasPrefix(path, "/static/"), path == "/*",
		path == "/favicon.ico", path == "/theme", path == "/healthz", path == "/readyz", path == "/metrics":
		return false
	}
	return true
}

// importDraft pre-flights a one-device CSV and returns the draft job's id.
func (d *desk) importDraft(c *http.Client, serial string) string {
	d.t.Helper()
	_, doc := d.get(c, "/devices/import")
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	data := "Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\n" + serial + ",," + fakeHash() + ",,\n"
	resp, _ := d.uploadCSV(c, csrf, []byte(data))
	if !strings.HasPrefix(resp.Request.URL.Path, views.ImportJobURL("")) {
		d.t.Fatalf("pre-flight landed on %s", resp.Request.URL)
	}
	return strings.TrimPrefix(resp.Request.URL.Path, views.ImportJobURL(""))
}

// recordStatuses notes the status of every answer a client receives.
func recordStatuses(next http.RoundTripper, into *[]int) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		resp, err := next.RoundTrip(req)
		if err == nil {
			*into = append(*into, resp.StatusCode)
		}
		return resp, err
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Values kept through a sign-in come back once, on their page, and not after ten minutes.
func TestKeptFormComesBackOnceAndNotLate(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT": "1h"}, appOptions{Now: clk.Now})
	typed := "0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d"
	keepThroughSignIn := func(b *http.Client) {
		form := formValues(t, parse(t, d.signIn(b, demoidp.AdminKey, "/uploads/new")), `form[action="/uploads"]`)
		form.Set("id", typed)
		d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)
		b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			testkit.PickIdentity(req, demoidp.AdminKey)
			if req.URL.Path == "/uploads/new" {
				return http.ErrUseLastResponse // signed in again; the form page not opened yet
			}
			return nil
		}
		resp, _ := d.post(b, "/uploads", form)
		b.CheckRedirect = nil
		if resp.Header.Get("Location") != "/uploads/new" {
			t.Fatalf("after the sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	idOnForm := func(b *http.Client) string {
		_, doc := d.get(b, "/uploads/new")
		return formValues(t, doc, `form[action="/uploads"]`).Get("id")
	}

	b := d.browser()
	keepThroughSignIn(b)
	if _, doc := d.get(b, "/activity"); doc.Find("main").Length() != 1 {
		t.Fatal("history page")
	}
	if got := idOnForm(b); got != typed {
		t.Errorf("the form page shows id %q, want what was typed", got)
	}
	if got := idOnForm(b); got != "" {
		t.Errorf("the kept values came back twice: %q", got)
	}

	late := d.browser()
	keepThroughSignIn(late)
	clk.Advance(11 * time.Minute)
	if got := idOnForm(late); got != "" {
		t.Errorf("values kept 11 minutes ago came back: %q", got)
	}
}

// bulkDraft chooses devices on the list for a bulk change and returns the draft's id.
func (d *desk) bulkDraft(c *http.Client, action, groupTag string, devices ...string) string {
	d.t.Helper()
	_, doc := d.get(c, "/devices")
	form := url.Values{"_csrf": {doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")}, "action": {action}, "groupTag": {groupTag}, "device": devices}
	resp, page := d.post(c, "/devices/bulk", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/devices/bulk/") {
		d.t.Fatalf("choosing devices landed on %s (%d): %s", resp.Request.URL, resp.StatusCode, text(page))
	}
	return strings.TrimPrefix(resp.Request.URL.Path, "/devices/bulk/")
}
