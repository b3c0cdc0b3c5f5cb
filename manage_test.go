package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
)

// createUpload submits the create form and returns the new upload's id.
func (d *desk) createUpload(c *http.Client, status string) string {
	d.t.Helper()
	_, doc := d.get(c, "/uploads/new")
	form := formValues(d.t, doc, `form[action="/uploads"]`)
	form.Set("status", status)
	resp, doc := d.post(c, "/uploads", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		d.t.Fatalf("create failed: %s", text(doc))
	}
	return strings.TrimSpace(doc.Find(`[data-testid="upload-id"]`).Text())
}

func TestUploadsListFiltersAndPages(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"}, appOptions{EmulatorPageSize: 2})
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	_, doc := d.get(b, "/uploads")
	if doc.Find(`[data-testid="no-uploads"] a[href="/uploads/new"]`).Length() == 0 {
		t.Errorf("empty list does not explain and link to create: %s", text(doc))
	}
	var ids []string
	for _, s := range []string{"pending", "complete", "pending", "error", "pending"} {
		ids = append(ids, d.createUpload(b, s))
	}
	_, doc = d.get(b, "/uploads")
	rows := doc.Find(`[data-testid="uploads"] tbody tr`)
	if rows.Length() != 2 || !strings.Contains(rows.First().Text(), ids[4]) {
		t.Fatalf("first page: %d rows, newest first? %s", rows.Length(), rows.Text())
	}
	seen := map[string]bool{}
	next, _ := doc.Find(`a[rel="next"]`).Attr("href")
	doc.Find(`[data-testid="uploads"] code`).Each(func(_ int, s *goquery.Selection) { seen[s.Text()] = true })
	if doc.Find(`a[rel="first"]`).Length() != 0 {
		t.Error("the first page offers a way to the first page")
	}
	if title := doc.Find("title").Text(); strings.Contains(title, "later") {
		t.Errorf("the first page is titled %q", title)
	}
	for pages := 0; next != "" && pages < 5; pages++ {
		_, doc = d.get(b, next)
		doc.Find(`[data-testid="uploads"] code`).Each(func(_ int, s *goquery.Selection) { seen[s.Text()] = true })
		if first := doc.Find(`a[rel="first"]`).AttrOr("href", ""); first != "/uploads" {
			t.Errorf("a later page's way back to the first: %q", first)
		}
		// A screen reader landing on a later page hears that it is not the first.
		if title, caption := doc.Find("title").Text(), doc.Find(`[data-testid="uploads"] caption`).Text(); !strings.HasPrefix(title, "Uploads · a later page") || caption != "Uploads, a later page" {
			t.Errorf("a later page is titled %q, its table named %q", title, caption)
		}
		next, _ = doc.Find(`a[rel="next"]`).Attr("href")
	}
	if len(seen) != 5 {
		t.Errorf("paging showed %d of 5 uploads", len(seen))
	}
	_, doc = d.get(b, "/uploads?status=pending")
	doc.Find(`[data-testid="uploads"] tbody tr`).Each(func(_ int, s *goquery.Selection) {
		if badge := s.Find(".badge"); badge.Text() != "Pending" || badge.AttrOr("title", "") != "status: pending" {
			t.Errorf("filtered list shows %s", s.Text())
		}
	})
	// A paging link that points elsewhere is refused, not followed.
	_, doc = d.get(b, "/uploads?next="+url.QueryEscape("https://evil.example/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads?$skiptoken=2"))
	if doc.Find(`[data-testid="failure"]`).Length() == 0 {
		t.Errorf("foreign paging link accepted")
	}
	// A paging link that no longer works (a page kept from before) still leads back to the first.
	if first := doc.Find(`a[rel="first"]`).AttrOr("href", ""); first != "/uploads" || doc.Find(`a[rel="next"]`).Length() != 0 {
		t.Errorf("a failed later page's ways on: first %q, next %d", first, doc.Find(`a[rel="next"]`).Length())
	}
	_, doc = d.get(b, "/uploads?status=pending&next="+url.QueryEscape("https://evil.example/x"))
	if first := doc.Find(`a[rel="first"]`).AttrOr("href", ""); first != "/uploads?status=pending" {
		t.Errorf("a filtered later page's way back to the first: %q", first)
	}
}

func TestUploadDetailChangeStatusAndDelete(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	id := d.createUpload(b, "pending")
	_, doc := d.get(b, "/uploads/"+id)
	if strings.TrimSpace(doc.Find(`[data-testid="upload-status"]`).Text()) != "Pending" || doc.Find(`[data-testid="exchange"]`).Length() == 0 {
		t.Fatalf("detail page: %s", text(doc))
	}
	form := formValues(t, doc, `form[action="/uploads/`+id+`/status"]`)
	form.Set("status", "complete")
	resp, doc := d.post(b, "/uploads/"+id+"/status", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/activity/") || !strings.Contains(doc.Find(`[data-testid="request"]`).Text(), "PATCH ") {
		t.Fatalf("status change: %s", text(doc))
	}
	if strings.TrimSpace(doc.Find(`[data-testid="upload-status"]`).Text()) != "Complete" {
		t.Errorf("status not changed")
	}
	// Delete needs the confirmation page's POST.
	_, doc = d.get(b, "/uploads/"+id+"/delete")
	confirm := formValues(t, doc, `form[action="/uploads/`+id+`/delete"]`)
	noToken := url.Values{}
	if resp, _ := d.post(b, "/uploads/"+id+"/delete", noToken); resp.StatusCode != http.StatusForbidden {
		t.Errorf("delete without CSRF token: %d", resp.StatusCode)
	}
	resp, doc = d.post(b, "/uploads/"+id+"/delete", confirm)
	if !strings.Contains(doc.Find(`[data-testid="response"]`).Text(), "204 No Content") {
		t.Errorf("delete result: %s", text(doc))
	}
	resp, doc = d.get(b, "/uploads/"+id)
	if resp.StatusCode != http.StatusNotFound || doc.Find(`[data-testid="failure"]`).Length() == 0 {
		t.Errorf("deleted upload still shown: %d", resp.StatusCode)
	}
	for _, bad := range []string{"/uploads/not-a-guid", "/uploads/..%2F..%2Fme", "/uploads/8d639524-9524-8d63-2495-638d2495638d%2F..%2Fx"} {
		if resp, _ := d.get(b, bad); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", bad, resp.StatusCode)
		}
	}
}

func TestActivityHistory(t *testing.T) {
	d := startDesk(t, nil)
	admin, reader := d.browser(), d.browser()
	parse(t, d.signIn(admin, "admin", "/"))
	parse(t, d.signIn(reader, "reader", "/"))
	d.createUpload(admin, "pending")
	_, doc := d.get(reader, "/uploads/new")
	d.post(reader, "/uploads", formValues(t, doc, `form[action="/uploads"]`))

	_, doc = d.get(admin, "/activity")
	rows := doc.Find(`[data-testid="activity"] tbody tr`)
	if rows.Length() != 2 || !strings.Contains(rows.First().Text(), "MeganB") {
		t.Fatalf("team history: %s", rows.Text())
	}
	_, doc = d.get(admin, "/activity?mine=1")
	if n := doc.Find(`[data-testid="activity"] tbody tr`).Length(); n != 1 {
		t.Errorf("my activity shows %d entries", n)
	}
	_, doc = d.get(admin, "/activity?outcome=failure")
	if rows := doc.Find(`[data-testid="activity"] tbody tr`); rows.Length() != 1 || !strings.Contains(rows.Text(), "MeganB") {
		t.Errorf("failure filter: %s", rows.Text())
	}
	_, doc = d.get(admin, "/activity?person=meganb@contoso.example")
	if n := doc.Find(`[data-testid="activity"] tbody tr`).Length(); n != 1 {
		t.Errorf("person filter: %d", n)
	}
	link, _ := doc.Find(`[data-testid="activity"] tbody tr a`).Attr("href")
	resp, doc := d.get(admin, link)
	if resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="failure"]`).Length() == 0 {
		t.Errorf("entry link: %d", resp.StatusCode)
	}
	if resp, _ := d.get(admin, "/activity?before=garbage"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", resp.StatusCode)
	}
}

func TestEveryChangeIsAnAuditLine(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	id := d.createUpload(b, "pending")
	_, doc := d.get(b, "/uploads/"+id+"/delete")
	d.post(b, "/uploads/"+id+"/delete", formValues(t, doc, `form[action="/uploads/`+id+`/delete"]`))
	logs := d.log.String()
	for _, event := range []string{`"event":"create-upload"`, `"event":"delete-upload"`} {
		if !strings.Contains(logs, event) || !strings.Contains(logs, `"audit":true`) {
			t.Errorf("no audit line for %s", event)
		}
	}
}

// A status change or a delete whose answer was lost (Graph carried it out, then answered 504) is
// recorded as done once the desk has read the upload again: the status is the one asked for, or
// the upload is gone. It is never recorded as "not deleted".
func TestLostAnswersToUploadChangesAreLookedUp(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	id := d.createUpload(b, "pending")
	_, doc := d.get(b, "/uploads/"+id)
	form := formValues(t, doc, `form[action="/uploads/`+id+`/status"]`)
	form.Set("status", "complete")
	_, confirmPage := d.get(b, "/uploads/"+id+"/delete")
	confirm := formValues(t, confirmPage, `form[action="/uploads/`+id+`/delete"]`)

	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	_, doc = d.post(b, "/uploads/"+id+"/status", form)
	if h := doc.Find("h1").Text(); h == "Outcome unknown" || !strings.Contains(text(doc), "found when the desk looked") {
		t.Errorf("status change whose answer was lost: %s", text(doc))
	}
	_, doc = d.post(b, "/uploads/"+id+"/delete", confirm)
	if page := text(doc); strings.Contains(page, "not deleted") || !strings.Contains(page, "Deleted upload "+id) {
		t.Errorf("delete whose answer was lost: %s", page)
	}
	d.emu.SetFaults(emulator.Faults{})
	_, doc = d.get(b, "/activity?outcome=failure")
	if n := doc.Find(`[data-testid="activity-title"]`).Length(); n != 0 {
		t.Errorf("%d failures recorded for changes Graph carried out", n)
	}
}

// An upload's address in capitals or braces leads to the upload (Graph's ids are lower case); a
// delete's confirmation shows what would be deleted, and says so when it is gone already; an
// unknown status filter says which statuses there are instead of listing everything.
func TestUploadAddressesAndConfirmationSayWhatTheyShow(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	id := d.createUpload(b, "complete")
	resp, doc := d.get(b, "/uploads/"+strings.ToUpper(id))
	if resp.Request.URL.Path != "/uploads/"+id || doc.Find(`[data-testid="upload-id"]`).Text() != id {
		t.Errorf("an upper-case address landed on %s: %s", resp.Request.URL.Path, text(doc))
	}
	_, doc = d.get(b, "/uploads/"+id+"/delete")
	if what := doc.Find(`[data-testid="delete-what"]`).Text(); !strings.Contains(what, "Complete") {
		t.Errorf("the confirmation does not say what it deletes: %q", what)
	}
	d.post(b, "/uploads/"+id+"/delete", formValues(t, doc, `form[action="/uploads/`+id+`/delete"]`))
	if resp, doc := d.get(b, "/uploads/"+id+"/delete"); resp.StatusCode != http.StatusNotFound || !strings.Contains(text(doc), "deleted already") {
		t.Errorf("confirming the delete of a deleted upload: %d %s", resp.StatusCode, text(doc))
	}
	if resp, doc := d.get(b, "/uploads?status=finished"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(text(doc), "noUpload, pending, complete and error") {
		t.Errorf("an unknown status filter: %d %s", resp.StatusCode, text(doc))
	}
}

// Home lists the first uploads Graph gives, newest first by their date (Graph promises no order),
// and says that there may be more only when the list is full.
func TestHomeListsUploadsNewestFirst(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	createdOn := func(date string) {
		_, doc := d.get(b, "/uploads/new")
		form := formValues(t, doc, `form[action="/uploads"]`)
		form.Set("createdDateTimeUtc", date)
		d.post(b, "/uploads", form)
	}
	createdOn("2021-06-01")
	if _, doc := d.get(b, "/"); doc.Find(`[data-testid="home-uploads-more"]`).Length() != 0 {
		t.Error("one upload, and home says there may be more")
	}
	for _, y := range []string{"2027", "2020", "2029", "2024", "2022", "2028", "2023", "2025", "2026"} {
		createdOn(y + "-06-01")
	}
	_, doc := d.get(b, "/")
	var dates []string
	doc.Find(`[data-testid="recent-uploads"] tbody tr td:nth-child(2)`).Each(func(_ int, s *goquery.Selection) { dates = append(dates, s.Text()[:4]) })
	if strings.Join(dates, " ") != "2029 2028 2027 2026 2025 2024 2023 2022 2021 2020" || doc.Find(`[data-testid="home-uploads-more"]`).Length() != 1 {
		t.Errorf("home lists %v: %s", dates, doc.Find(`[data-testid="home-uploads-more"]`).Text())
	}
}
