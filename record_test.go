package main

import (
	"database/sql"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient/guid"
)

// refuseActivity makes the SQLite state database refuse every new activity row (a trigger that
// aborts the insert, as a constraint would) until the returned function is called.
func refuseActivity(t *testing.T, d *desk) (allow func()) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(d.app.cfg.DataDir, "autopilotdesk.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TRIGGER refuse_activity BEFORE INSERT ON activity BEGIN SELECT RAISE(ABORT, 'activity refused'); END`); err != nil {
		t.Fatal(err)
	}
	return func() {
		if _, err := db.Exec(`DROP TRIGGER refuse_activity`); err != nil {
			t.Fatal(err)
		}
	}
}

func countCreates(d *desk) int { return countPosts(d.emu) }

// Once Graph has answered 201, the person sees the upload, the exchange and the support details
// even when the activity cannot be recorded; the record is kept and retried, and nothing is sent
// to Graph again.
func TestGraphsAnswerIsShownWhenTheActivityCannotBeRecorded(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{RecordRetry: 20 * time.Millisecond})
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	allow := refuseActivity(t, d)

	resp, doc := d.post(b, "/uploads", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200: %s", resp.StatusCode, text(doc))
	}
	id := strings.TrimSpace(doc.Find(`[data-testid="upload-id"]`).Text())
	if !guid.Valid(id) || !strings.Contains(doc.Find("h1").Text(), "Upload created") {
		t.Errorf("the created upload is not shown: %s", text(doc))
	}
	if !strings.Contains(doc.Find(`[data-testid="response"]`).Text(), "201 Created") ||
		!strings.Contains(doc.Find(`[data-testid="request"]`).Text(), "Bearer <redacted>") {
		t.Errorf("the exchange is not shown: %s", text(doc))
	}
	if support := doc.Find(`[data-testid="support"] pre`).Text(); !strings.Contains(support, "request-id") || !strings.Contains(support, "201") {
		t.Errorf("support details: %q", support)
	}
	notice := doc.Find(`[data-testid="not-saved"]`).Text()
	if !strings.Contains(notice, "not saved to the team history") {
		t.Errorf("no notice that the record is not saved: %q", notice)
	}
	if n := countCreates(d); n != 1 {
		t.Errorf("Graph received %d creates, want 1", n)
	}

	// The same form again sends nothing.
	resp, doc = d.post(b, "/uploads", form)
	if resp.StatusCode >= 500 || countCreates(d) != 1 {
		t.Errorf("second submit: %d, %d creates: %s", resp.StatusCode, countCreates(d), text(doc))
	}
	// A status change and a sync (which redirects to its result page) are shown the same way.
	_, doc = d.get(b, "/uploads/"+id)
	status := formValues(t, doc, `form[action="/uploads/`+id+`/status"]`)
	status.Set("status", "complete")
	resp, doc = d.post(b, "/uploads/"+id+"/status", status)
	if resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="not-saved"]`).Length() != 1 ||
		!strings.Contains(doc.Find(`[data-testid="request"]`).Text(), "PATCH ") {
		t.Errorf("status change: %d %s", resp.StatusCode, text(doc))
	}
	resp, doc = d.post(b, "/devices/sync", url.Values{"_csrf": {form.Get("_csrf")}})
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/activity/") ||
		doc.Find(`[data-testid="not-saved"]`).Length() != 1 || !strings.Contains(doc.Find("h1").Text(), "Sync requested") {
		t.Errorf("sync: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}

	// The database takes records again: the kept ones land in the history, once each.
	allow()
	var entries int
	for i := 0; i < 200; i++ {
		_, doc = d.get(b, "/activity")
		if entries = doc.Find(`[data-testid="activity"] tbody tr`).Length(); entries >= 3 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if entries != 3 || !strings.Contains(doc.Find(`[data-testid="activity"] tbody tr`).Last().Text(), id) {
		t.Fatalf("history after the database recovered: %d entries: %s", entries, text(doc))
	}
	link := doc.Find(`[data-testid="activity"] tbody tr`).Last().Find("a").AttrOr("href", "")
	resp, doc = d.get(b, link)
	if resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="not-saved"]`).Length() != 0 ||
		!strings.Contains(doc.Find(`[data-testid="response"]`).Text(), "201 Created") {
		t.Errorf("recorded result: %d %s", resp.StatusCode, text(doc))
	}
	if n := countCreates(d); n != 1 {
		t.Errorf("Graph received %d creates in all, want 1", n)
	}
}
