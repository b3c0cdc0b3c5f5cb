package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// graphWrites counts the requests that would change something in Graph.
func graphWrites(e *emulator.Emulator) int {
	return countReceived(e, func(r emulator.ReceivedRequest) bool { return r.Method != http.MethodGet })
}

// csrfOn is the session's CSRF token as a page carries it (the sign-out form is on every page).
func csrfOn(doc *goquery.Document) string {
	return doc.Find(`form[action="/auth/signout"] input[name="_csrf"]`).AttrOr("value", "")
}

// Whoever may only read — the organisation granted the desk only the read permission, or Graph
// refused their first change with 403 — sees every page without the controls that change
// anything, each with the note that says why, and every change they post anyway is refused
// before Graph hears of it, keeping what was typed. Reading stays: filters, links, exports.
func TestReadOnlyPeopleSeeNoChangeControlsOnAnyPage(t *testing.T) {
	t.Parallel()
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	// What there is to see: an active code with a device waiting, an upload, a finished import.
	code, _ := createCode(t, d, admin, map[string]string{"uses": "5"})
	sendDevice(t, d, code, "RO-WAIT-1")
	_, doc := d.get(admin, "/uploads/new")
	resp, doc := d.post(admin, "/uploads", formValues(t, doc, `form[action="/uploads"]`))
	upload := strings.TrimSpace(doc.Find(`[data-testid="upload-id"]`).Text())
	if resp.StatusCode != http.StatusOK || upload == "" {
		t.Fatalf("the administrator's upload: %d %.400s", resp.StatusCode, text(doc))
	}
	data, _ := deviceCSV("RO-IMP", 1)
	finished := draftOf(t, d, admin, data)
	d.post(admin, finished+"/submit", submitForm(t, d, admin, finished))
	waitFinished(t, d, admin, finished)
	_, doc = d.get(admin, "/registration")
	revoke := doc.Find(`form[action$="/revoke"]`).AttrOr("action", "")
	if revoke == "" {
		t.Fatalf("the administrator is offered no revoke: %.600s", text(doc))
	}

	readGrant := d.browser()
	d.signIn(readGrant, demoidp.ReadGrantKey, "/")
	// The help-desk reader's first change goes to Graph, which refuses it with 403 (her Intune
	// role); from then on the desk knows.
	helpDesk := d.browser()
	d.signIn(helpDesk, demoidp.ReaderKey, "/")
	before := graphWrites(d.emu)
	_, doc = d.get(helpDesk, "/uploads/new")
	form := formValues(t, doc, `form[action="/uploads"]`)
	form.Set("id", "{0A1B2C3D-0000-4000-8000-00000000AB01}")
	resp, doc = d.post(helpDesk, "/uploads", form)
	if resp.StatusCode != http.StatusForbidden || graphWrites(d.emu) != before+1 || doc.Find(`[data-testid="failure"]`).Length() != 1 ||
		!strings.Contains(doc.Find(`[data-testid="read-only"]`).Text(), "Microsoft Graph refused your change") ||
		!strings.Contains(doc.Find(`[data-testid="typed"]`).Text(), "{0A1B2C3D-0000-4000-8000-00000000AB01}") {
		t.Errorf("the help-desk reader's first create: %d, %d writes: %.900s", resp.StatusCode, graphWrites(d.emu)-before, text(doc))
	}

	// Her refused create's record: for the administrator it offers Try again, for a reader not.
	refused, _, err := d.app.db.ListActivity(t.Context(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Action: "create-upload", Outcome: "failure", Limit: 5})
	if err != nil || len(refused) != 1 {
		t.Fatalf("the refused create's record: %+v %v", refused, err)
	}
	record := "/activity/" + refused[0].ID
	if _, doc := d.get(admin, record); doc.Find(`[data-testid="try-again"]`).Length() != 1 {
		t.Errorf("the administrator is not offered Try again: %.600s", text(doc))
	}

	for _, reader := range []struct {
		name    string
		browser *http.Client
		why     string
		heading string
	}{
		{"read permission only", readGrant, "DeviceManagementServiceConfig.Read.All without DeviceManagementServiceConfig.ReadWrite.All", "Your organisation's permission lets the desk read only."},
		{"refused by Graph", helpDesk, "Microsoft Graph refused your change", "Your role lets you read only."},
	} {
		t.Run(reader.name, func(t *testing.T) {
			b := reader.browser
			// page asserts that path shows the read-only note and none of the change controls.
			page := func(path, controls string) *goquery.Document {
				t.Helper()
				resp, doc := d.get(b, path)
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d %.400s", path, resp.StatusCode, text(doc))
				}
				if got := doc.Find(`[data-testid="read-only"]`).Text(); !strings.Contains(got, reader.heading) || !strings.Contains(got, reader.why) {
					t.Errorf("GET %s: the note says %q", path, got)
				}
				if n := doc.Find("main").Find(controls).Length(); n != 0 {
					t.Errorf("GET %s offers %d change controls (%s)", path, n, controls)
				}
				return doc
			}
			doc := page("/", `a[href="/uploads/new"]`)
			if doc.Find(`main a[href="/devices"]`).Length() == 0 {
				t.Error("home leads nowhere for a reader")
			}
			doc = page("/uploads", `a[href="/uploads/new"]`)
			if doc.Find(`form.filters select[name="status"]`).Length() != 1 {
				t.Error("the uploads filter is gone for a reader")
			}
			page("/uploads/new", `form[action="/uploads"], button[type="submit"]:not(form[action="/auth/signout"] button)`)
			doc = page("/uploads/"+upload, `form[action$="/status"], a[href$="/delete"]`)
			if doc.Find(`[data-testid="upload"]`).Length() != 1 {
				t.Error("a reader does not see the upload")
			}
			doc = page("/registration", `form[action$="/revoke"], form[action="/registration/decide"], input[name="submission"], button[value="approve"], button[value="reject"], a[href="/registration/codes/new"]`)
			if doc.Find(`[data-testid="waiting-card"] tr[data-serial="RO-WAIT-1"]`).Length() != 1 || doc.Find(`[data-code-state="active"]`).Length() != 1 {
				t.Errorf("a reader does not see the waiting device and the active code: %.900s", text(doc))
			}
			if strings.Contains(text(doc), "Revoking a code") || doc.Find(`[data-testid="waiting"] th`).FilterFunction(func(_ int, s *goquery.Selection) bool {
				return s.Text() == "Decide"
			}).Length() != 0 {
				t.Error("the registration page still speaks of revoking or deciding")
			}
			page(record, `[data-testid="try-again"], a[href^="/uploads/new"]`)
			page("/devices/import", `[data-testid="import-button"]`)
			doc = page(finished, `form[action="/devices/sync"]`)
			if doc.Find(`a[href$="/report.csv"]`).Length() != 1 {
				t.Error("a reader cannot download the outcome report")
			}
			// A check of a file sends nothing, so a reader may still run it; importing it is not offered.
			data, _ := deviceCSV("RO-"+strings.ReplaceAll(reader.name, " ", ""), 2)
			data = append(data, []byte("RO-BAD,,not-a-hash,,\n")...)
			draft := draftOf(t, d, b, data)
			doc = page(draft, `form[action$="/submit"], form[action$="/fix"], [data-testid="import-button"], input[name="leaveOut"]`)
			if doc.Find(`[data-testid="preflight-summary"]`).Length() != 1 {
				t.Error("a reader's check shows no pre-flight")
			}

			// Every change posted anyway: refused before Graph hears of it.
			writes, imports := graphWrites(d.emu), importCalls(d.emu)
			csrf := csrfOn(doc)
			for _, post := range []struct {
				path string
				form url.Values
			}{
				{"/uploads", url.Values{"createdDateTimeUtc": {"2026-03-02 10:00"}, "status": {"pending"}, "id": {"{0A1B2C3D-0000-4000-8000-00000000AB02}"}}},
				{"/uploads/" + upload + "/status", url.Values{"status": {"complete"}}},
				{"/uploads/" + upload + "/delete", url.Values{}},
				{revoke, url.Values{}},
				{"/registration/decide", url.Values{"code": {"x"}, "action": {"approve"}}},
				{"/registration/codes", url.Values{"groupTag": {"Sales"}, "hours": {"4"}, "uses": {"1"}}},
				{draft + "/submit", url.Values{}},
				{draft + "/fix", url.Values{"row-4-serial": {"RO-FIXED"}}},
				{"/devices/sync", url.Values{}},
			} {
				post.form.Set("_csrf", csrf)
				resp, doc := d.post(b, post.path, post.form)
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(text(doc), strings.TrimSuffix(reader.heading, ".")) ||
					!strings.Contains(text(doc), "Nothing was sent to Microsoft Graph") || !strings.Contains(text(doc), reader.why) {
					t.Errorf("POST %s: %d %.600s", post.path, resp.StatusCode, text(doc))
				}
				if post.path == "/uploads" && (doc.Find(`form[action="/uploads"]`).Length() != 0 ||
					!strings.Contains(doc.Find(`[data-testid="typed"]`).Text(), "{0A1B2C3D-0000-4000-8000-00000000AB02}")) {
					t.Errorf("the refused create lost what was typed or offers the form again: %.600s", text(doc))
				}
			}
			if resp, _ := d.get(b, "/uploads/"+upload+"/delete"); resp.StatusCode != http.StatusForbidden {
				t.Errorf("the delete confirmation answered a reader %d", resp.StatusCode)
			}
			if got := graphWrites(d.emu) - writes; got != 0 || importCalls(d.emu) != imports {
				t.Errorf("a reader's changes reached Graph: %d writes", got)
			}
			_, doc = d.get(b, draft)
			if doc.Find(`[data-testid="preflight-summary"]`).Length() != 1 || strings.Contains(text(doc), "RO-FIXED") {
				t.Errorf("a reader's refused import or fix changed the draft: %.600s", text(doc))
			}
		})
	}
	codes, err := d.app.db.RegistrationCodes(t.Context(), demoidp.DemoTenantID, 10)
	if err != nil || len(codes.Usable) != 1 || codes.Ended != 0 {
		t.Errorf("the readers' refused revocations changed the code: %+v %v", codes, err)
	}
	if subs := registrations(t, d.app, store.SubmissionFilter{}); len(subs) != 1 || subs[0].State != store.SubmissionWaiting {
		t.Errorf("the readers' refused approvals changed the waiting device: %+v", subs)
	}
}
