package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"

	"github.com/PuerkitoBio/goquery"
)

// postCount counts the creates Graph received.
func postCount(d *desk) int { return postsTo(d.emu, "") }

// A create whose answer was lost offers "Check again" (never "Create another upload") with the
// uploads list and its record; checking again finds the upload Graph made, sends nothing again,
// and the record says so from then on.
func TestUnknownCreateOffersCheckAgain(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	record, doc := unknownCreate(t, d, b)
	if !strings.HasPrefix(record, "/activity/") || doc.Find("h1").Text() != "Outcome unknown" {
		t.Fatalf("%s: %s", record, text(doc))
	}
	actions := doc.Find(`[data-testid="result-actions"]`)
	if actions.Find(".btn").First().Text() != "Check again" || strings.Contains(doc.Find("main").Text(), "Create another upload") {
		t.Errorf("the main action is not Check again: %s", actions.Text())
	}
	if actions.Find(`a[href="/uploads"]`).Length() != 1 || actions.Find(`a[href="`+record+`"]`).Length() != 1 {
		t.Errorf("no links to the uploads list and the record: %s", actions.Text())
	}

	d.emu.SetFaults(emulator.Faults{})
	// The access token has expired meanwhile: Graph refuses the look with 401, the token is
	// renewed once and the look sent again, as for every other call.
	d.app.demo.IdP.ExpireAccessTokens()
	resp, doc := d.post(b, record+"/check", formValues(t, doc, `form[action="`+record+`/check"]`))
	if resp.Request.URL.Path != record || doc.Find("h1").Text() != "Upload created" {
		t.Fatalf("after checking again: %s %s", resp.Request.URL.Path, text(doc))
	}
	id := doc.Find(`[data-testid="upload-id"]`).Text()
	if doc.Find(`[data-testid="result-actions"] a.btn[href="/uploads/`+id+`"]`).Length() != 1 || doc.Find(`[data-testid="checked-at"]`).Length() != 1 {
		t.Errorf("the record does not lead to the upload it found: %s", doc.Find(`[data-testid="result-actions"]`).Text())
	}
	if n := postCount(d); n != 1 {
		t.Errorf("Graph received %d creates; checking again must send none", n)
	}
	// The history names it now.
	_, doc = d.get(b, "/activity")
	if got := doc.Find(`[data-testid="activity-title"]`).First().Text(); got != "Created upload "+id[:8]+"…" {
		t.Errorf("history row: %q", got)
	}
}

// A create that Graph did not make, found when checking again, offers "Try again": the form with
// what was sent and a fresh one-time key.
func TestUnknownCreateNotMadeOffersTryAgain(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, nil, appOptions{Now: clk.Now})
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	form.Set("id", "3f2b9c1e-8d7a-4c6b-9e5f-1a2b3c4d5e6f")
	form.Set("status", "complete")
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{500}})
	resp, doc := d.post(b, "/uploads", form)
	record := resp.Request.URL.Path
	if doc.Find("h1").Text() != "Outcome unknown" {
		t.Fatalf("%s: %s", record, text(doc))
	}
	d.emu.SetFaults(emulator.Faults{})
	// Graph may not find an upload for a moment after creating it: a look this soon proves nothing.
	_, doc = d.post(b, record+"/check", formValues(t, doc, `form[action="`+record+`/check"]`))
	if doc.Find("h1").Text() != "Outcome unknown" || doc.Find(`[data-testid="not-listed-yet"]`).Length() != 1 {
		t.Fatalf("a look at once settled the record: %s", text(doc))
	}
	clk.Advance(3 * time.Minute)
	_, doc = d.post(b, record+"/check", formValues(t, doc, `form[action="`+record+`/check"]`))
	again := doc.Find(`[data-testid="result-actions"] a.btn`).First()
	if again.Text() != "Try again" || doc.Find("h1").Text() != "The upload was not created" {
		t.Fatalf("not offered to try again: %s", text(doc))
	}
	_, doc = d.get(b, again.AttrOr("href", ""))
	shown := formValues(t, doc, `form[action="/uploads"]`)
	for _, k := range []string{"createdDateTimeUtc", "status", "id"} {
		if shown.Get(k) != form.Get(k) {
			t.Errorf("%s shown again as %q, sent %q", k, shown.Get(k), form.Get(k))
		}
	}
	if shown.Get("formKey") == "" || shown.Get("formKey") == form.Get("formKey") {
		t.Error("the form is not shown with a fresh one-time key")
	}
	// Another tenant's record, or something that is not an id, prefills nothing.
	_, doc = d.get(b, "/uploads/new?again=not-an-id")
	if formValues(t, doc, `form[action="/uploads"]`).Get("id") != "" {
		t.Error("prefilled from nothing")
	}
}

// A create whose answer was lost, sent with the date and status of an upload created earlier
// through the desk, is not taken for that upload: Graph refused it at the gateway (504, not
// carried out), and the desk says it cannot tell yet, then, once Graph has had time to list a
// new upload, that it was not created. The history never claims two creates for one upload.
func TestLostCreateIsNotTakenForAnEarlierUpload(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, nil, appOptions{Now: clk.Now})
	b := d.browser()
	sameAs := func() url.Values {
		_, doc := d.get(b, "/uploads/new")
		form := formValues(t, doc, `form[action="/uploads"]`)
		form.Set("createdDateTimeUtc", "2026-11-29T00:00:00Z")
		form.Set("status", "pending")
		return form
	}
	parse(t, d.signIn(b, "admin", "/"))
	_, doc := d.post(b, "/uploads", sameAs())
	earlier := doc.Find(`[data-testid="upload-id"]`).Text()
	if doc.Find("h1").Text() != "Upload created" || earlier == "" {
		t.Fatalf("the first create: %s", text(doc))
	}

	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodPost}, ErrorStatuses: []int{504}})
	resp, doc := d.post(b, "/uploads", sameAs())
	record := resp.Request.URL.Path
	page := text(doc)
	if doc.Find("h1").Text() != "Outcome unknown" || doc.Find(`[data-testid="not-listed-yet"]`).Length() != 1 ||
		strings.Contains(page, "it was created") || !strings.Contains(page, "created earlier through the desk; it is not this one") {
		t.Fatalf("the lost create was taken for the earlier upload %s: %s", earlier, page)
	}
	d.emu.SetFaults(emulator.Faults{})
	clk.Advance(3 * time.Minute)
	_, doc = d.post(b, record+"/check", formValues(t, doc, `form[action="`+record+`/check"]`))
	if doc.Find("h1").Text() != "The upload was not created" {
		t.Fatalf("after Graph had time to list it: %s", text(doc))
	}
	_, doc = d.get(b, "/activity?outcome=success")
	if n := doc.Find(`[data-testid="activity-title"]`).Length(); n != 1 {
		t.Errorf("the history claims %d successful creates for one upload", n)
	}
}

// A create whose answer was lost, carried out beside an earlier upload with the same date and
// status, is found at once: the one match the desk has no record of creating is it.
func TestLostCreateBesideAnEarlierUploadIsFound(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	_, doc := d.post(b, "/uploads", form)
	earlier := doc.Find(`[data-testid="upload-id"]`).Text()

	_, doc = d.get(b, "/uploads/new")
	again := formValues(t, doc, `form[action="/uploads"]`)
	again.Set("createdDateTimeUtc", form.Get("createdDateTimeUtc"))
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	_, doc = d.post(b, "/uploads", again)
	found := doc.Find(`[data-testid="upload-id"]`).Text()
	if doc.Find("h1").Text() != "Upload created" || found == "" || found == earlier {
		t.Fatalf("found %q beside the earlier %q: %s", found, earlier, text(doc))
	}
	if n := postCount(d); n != 2 {
		t.Errorf("Graph received %d creates, want 2", n)
	}
}

// A passing failure (Graph's server error, not a lost answer) keeps what was typed and offers
// "Try again", which sends the form below with a fresh one-time key; list pages offer a reload;
// a failure that tells to give support the details shows them.
func TestPassingFailuresOfferTryAgainAndReload(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	form.Set("status", "error")
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodPost}, ErrorStatuses: []int{507}})
	resp, doc := d.post(b, "/uploads", form)
	try := doc.Find(`[data-testid="failure"] button[data-testid="try-again"]`)
	if resp.StatusCode != http.StatusBadGateway || try.Length() != 1 || try.AttrOr("form", "") != "upload-form" || doc.Find(`form#upload-form[action="/uploads"]`).Length() != 1 {
		t.Fatalf("no Try again for the form: %d %s", resp.StatusCode, text(doc))
	}
	shown := formValues(t, doc, `form#upload-form`)
	if shown.Get("status") != "error" || shown.Get("formKey") == form.Get("formKey") {
		t.Errorf("the form is not shown again as typed with a fresh key: %v", shown)
	}
	support := doc.Find(`[data-testid="support"] pre`).Text()
	if !strings.Contains(doc.Find(`[data-testid="failure"]`).Text(), "details below") ||
		!strings.Contains(support, "request-id") || !strings.Contains(support, "client-request-id") || !strings.Contains(support, "Date") {
		t.Errorf("the support details are not below: %q", support)
	}
	d.emu.SetFaults(emulator.Faults{})
	resp, _ = d.post(b, "/uploads", shown)
	if !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		t.Errorf("trying again did not create: %s", resp.Request.URL)
	}

	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{500}})
	for _, path := range []string{"/uploads?status=pending", "/devices?q=ABC"} {
		_, doc := d.get(b, path)
		reload := doc.Find(`[data-testid="failure"] a[data-testid="reload"]`)
		u, _ := url.Parse(reload.AttrOr("href", ""))
		if reload.Length() != 1 || u.String() != path {
			t.Errorf("%s: no reload of the same page: %q %s", path, reload.AttrOr("href", ""), text(doc))
		}
	}
}

// Many "Check again" at once (a double click, two colleagues) settle the record once: each is
// sent back to it, none is told its result was not saved, and the record says what was found.
func TestConcurrentChecksSettleTheRecordOnce(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	record, doc := unknownCreate(t, d, b)
	check := formValues(t, doc, `form[action="`+record+`/check"]`)
	d.emu.SetFaults(emulator.Faults{})
	statuses := storm(t, 20, func(int) (int, error) { return postDirect(d.srv.URL, b, d.srv.URL, record+"/check", check) })
	if statuses[http.StatusSeeOther] != 20 {
		t.Errorf("answers %v, want 20 redirects to the record", statuses)
	}
	_, doc = d.get(b, record)
	if doc.Find("h1").Text() != "Upload created" || doc.Find(`[data-testid="not-saved"]`).Length() != 0 {
		t.Errorf("the record: %s", text(doc))
	}
	if n := postCount(d); n != 1 {
		t.Errorf("Graph received %d creates; checking again must send none", n)
	}
}

// unknownCreate signs b in as an administrator and creates an upload whose answer is lost, the
// look that follows failing too; it returns the record's path and the page it shows. The
// emulator's faults stay set.
func unknownCreate(t *testing.T, d *desk, b *http.Client) (string, *goquery.Document) {
	t.Helper()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true, ErrorRate: 1, Methods: []string{http.MethodGet}, ErrorStatuses: []int{500}})
	resp, doc := d.post(b, "/uploads", form)
	return resp.Request.URL.Path, doc
}

// After Graph throttles a create with a Retry-After, nothing more of the tenant's is written
// before it passes: a create sent again at once (Try again, a second tab) and a status change are
// refused by the desk with the time to wait, their values kept, and Graph never sees a request
// sent too early.
func TestUploadWritesWaitOutGraphsRetryAfter(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	id := d.createUpload(b, "pending")
	_, doc := d.get(b, "/uploads/"+id)
	status := formValues(t, doc, `form[action="/uploads/`+id+`/status"]`)
	status.Set("status", "complete")
	d.emu.SetFaults(emulator.Faults{ThrottleWrites: 1, ThrottleWindow: time.Minute, PunishEarlyRetry: true})
	_, doc = d.get(b, "/uploads/new")
	form := formValues(t, doc, `form[action="/uploads"]`)
	form.Set("status", "complete")
	d.post(b, "/uploads", form) // the one write of the window
	_, doc = d.get(b, "/uploads/new")
	form = formValues(t, doc, `form[action="/uploads"]`)
	form.Set("status", "error")
	resp, doc := d.post(b, "/uploads", form)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(text(doc), "throttling") {
		t.Fatalf("the throttled create: %d %s", resp.StatusCode, text(doc))
	}
	again := formValues(t, doc, `form#upload-form`)
	resp, doc = d.post(b, "/uploads", again)
	if resp.StatusCode != http.StatusTooManyRequests || doc.Find("h2:contains('Microsoft Graph asked the desk to wait')").Length() != 1 ||
		resp.Header.Get("Retry-After") == "" || formValues(t, doc, `form#upload-form`).Get("status") != "error" {
		t.Errorf("trying again at once: %d %s", resp.StatusCode, text(doc))
	}
	if resp, _ := d.post(b, "/uploads/"+id+"/status", status); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("a status change during the wait: %d", resp.StatusCode)
	}
	if st := d.emu.Stats(); st.Throttled != 1 || st.Punished != 0 {
		t.Errorf("Graph throttled %d requests and punished %d: want one and none", st.Throttled, st.Punished)
	}
}
