package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// An import can be stopped while batches wait to be sent, by anyone who may import (its owner may
// be away while the wrong file goes): the batches not sent are never sent, the devices already
// sent are followed to the end, the import finishes with every row's outcome, and the history
// says who stopped it. Twenty stops at once leave one record; a person with read permission only
// is offered no stop and is refused one.
func TestStopSendingAnImport(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"},
		appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}, ImportPausedRecheck: 50 * time.Millisecond})
	// Slow enough that the owner signs out before the first batch's answer is back: the batches
	// after it wait for her, queued.
	d.app.demo.Emulator.SetFaults(emulator.Faults{LatencyMin: 300 * time.Millisecond, LatencyMax: 300 * time.Millisecond, Methods: []string{http.MethodPost}})
	adele := d.browser()
	d.signIn(adele, "admin", "/")
	data, _ := deviceCSV("SN-STOP", 1200)
	job := draftOf(t, d, adele, data)
	id := strings.TrimPrefix(job, "/devices/import/")
	_, doc := d.post(adele, job+"/submit", submitForm(t, d, adele, job))
	d.post(adele, "/auth/signout", formValues(t, doc, `form[action="/auth/signout"]`))
	isaiah := d.browser()
	doc = parse(t, d.signIn(isaiah, "many-groups", job))
	for i := 0; doc.Find(`[data-testid="paused"]`).Length() == 0; i++ {
		if i > 400 {
			t.Fatalf("the import did not wait for its owner: %.600s", text(doc))
		}
		time.Sleep(20 * time.Millisecond)
		_, doc = d.get(isaiah, job)
	}
	offer := doc.Find(`[data-testid="stop-import"]`)
	if offer.Length() != 1 || !strings.Contains(words(offer), "not sent yet") || !strings.Contains(words(offer), "Adele Vance started this import") {
		t.Fatalf("a second administrator is not offered to stop the import: %.800s", text(doc))
	}
	stop := formValues(t, doc, `form[action$="/stop"]`)

	pradeep := d.browser()
	rdoc := parse(t, d.signIn(pradeep, "read-grant", job))
	if rdoc.Find(`[data-testid="stop-import"], form[action$="/stop"]`).Length() != 0 {
		t.Errorf("a person with read permission only is offered to stop the import")
	}
	refused := url.Values{"_csrf": {rdoc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")}}
	if resp, page := d.post(pradeep, job+"/stop", refused); resp.StatusCode != http.StatusForbidden || !strings.Contains(text(page), "read") {
		t.Errorf("a read-only stop answered %d: %.300s", resp.StatusCode, text(page))
	}
	if c := counts(t, d, id); c.Stopped != 0 {
		t.Fatalf("a read-only stop stopped %d rows", c.Stopped)
	}

	before := counts(t, d, id)
	browsers := d.signedIn(4, "many-groups", d.browser)
	statuses := postAtOnce(t, 20, []string{d.srv.URL}, d.srv.URL, browsers, job+"/stop", func(b *http.Client) url.Values {
		_, doc := d.get(b, job)
		return formValues(t, doc, `form[action$="/stop"]`)
	})
	if statuses[http.StatusSeeOther] != 20 {
		t.Errorf("of 20 stops at once, answered by status: %v", statuses)
	}
	after := counts(t, d, id)
	if after.Stopped != before.Queued || after.Queued != 0 || after.Stopped == 0 {
		t.Fatalf("before the stops %+v, after %+v: every queued row, and only those, should be stopped", before, after)
	}
	if resp, _ := d.post(isaiah, job+"/stop", stop); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != job {
		t.Errorf("stopping again answered %d at %s", resp.StatusCode, resp.Request.URL)
	}
	_, doc = d.get(isaiah, job)
	note := words(doc.Find(`[data-testid="stopped"]`))
	if !strings.Contains(note, "Isaiah Langer stopped this import") || !strings.Contains(note, "were not sent, and will not be") {
		t.Errorf("the stopped note reads %q", note)
	}
	if doc.Find(`[data-testid="stop-import"]`).Length() != 0 {
		t.Errorf("a stopped import still offers to stop")
	}

	d.signIn(adele, "admin", "/") // the devices already sent are followed with her account
	doc = waitFinished(t, d, isaiah, job)
	if got := words(doc.Find(`[data-testid="progress-summary"]`)); !strings.Contains(got, "not sent (import stopped)") {
		t.Errorf("the finished summary reads %q", got)
	}
	batches, err := d.app.db.ImportBatches(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	sentBatches := 0
	for _, b := range batches {
		if b.State != importer.BatchStopped && b.State != importer.BatchSplit {
			sentBatches++
		}
	}
	wantSent := "Sent to Microsoft Graph in " + explain.Count(sentBatches, "batch", "batches") + " of at most 500 devices."
	if sentBatches == 0 {
		wantSent = "Nothing was sent to Microsoft Graph."
	}
	if got := words(doc.Find(`[data-testid="batches"]`)); got != wantSent {
		t.Errorf("the finished import says %q, want %q", got, wantSent)
	}
	sent := devicesBySerial(t, d.app.demo.Emulator, "", nil)
	stopped := 0
	for _, row := range report(t, d, isaiah, job)[1:] {
		serial, outcome, detail := row[1], row[4], row[7]
		switch {
		case sent[serial] > 1:
			t.Errorf("%s sent %d times", serial, sent[serial])
		case outcome == "Not sent":
			stopped++
			if sent[serial] != 0 || !strings.Contains(detail, "Isaiah Langer stopped the import on ") {
				t.Errorf("%s: %s, %q, sent %d times", serial, outcome, detail, sent[serial])
			}
		case outcome != "Imported" || sent[serial] != 1:
			t.Errorf("%s: %s, sent %d times", serial, outcome, sent[serial])
		}
	}
	if stopped != after.Stopped || stopped+len(sent) != 1200 {
		t.Errorf("%d stopped and %d sent of 1,200 (%d stopped at the stop)", stopped, len(sent), after.Stopped)
	}
	records, _, err := d.app.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Action: importer.ActionStopped, Limit: 10})
	if err != nil || len(records) != 1 || records[0].ActorName != "Isaiah Langer" {
		t.Fatalf("stop records %+v, %v", records, err)
	}
	_, doc = d.get(adele, "/activity/"+records[0].ID)
	if got := text(doc); !strings.Contains(got, "Import stopped") || !strings.Contains(got, "Stopped the import of Adele Vance's file “devices.csv”: ") {
		t.Errorf("the stop's record reads %.600s", got)
	}
	_, doc = d.get(adele, "/activity?action="+importer.ActionStopped)
	if got := text(doc); !strings.Contains(got, "Stopped the import of “devices.csv”: "+explain.Count(after.Stopped, "device", "devices")+" not sent") {
		t.Errorf("the history lists the stop as %.600s", got)
	}
}

// words is the text of a part of a page, its white space as one space each.
func words(s *goquery.Selection) string { return strings.Join(strings.Fields(s.Text()), " ") }

// counts tallies an import's rows from the state database.
func counts(t *testing.T, d *desk, id string) importer.Counts {
	t.Helper()
	rows, err := d.app.db.ImportRows(context.Background(), id, store.RowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	return importer.Count(rows)
}
