package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/views"
	"autopilotdesk/web/identity/demoidp"
)

func fakeHash() string {
	b := make([]byte, 4000)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// uploadCSV posts a CSV file the way the browser's file input does.
func (d *desk) uploadCSV(c *http.Client, csrf string, data []byte) (*http.Response, string) {
	d.t.Helper()
	return d.uploadNamed(c, csrf, "devices.csv", data)
}

// uploadNamed uploads data as a file the browser names name.
func (d *desk) uploadNamed(c *http.Client, csrf, name string, data []byte) (*http.Response, string) {
	d.t.Helper()
	resp := d.postMultipart(c, "/devices/import", func(w *multipart.Writer) {
		w.WriteField("_csrf", csrf)
		fw, _ := w.CreateFormFile("file", name)
		fw.Write(data)
	})
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// postMultipart posts the multipart form fill writes to path, from the desk's own origin.
func (d *desk) postMultipart(c *http.Client, path string, fill func(*multipart.Writer)) *http.Response {
	d.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	fill(w)
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+path, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", d.srv.URL)
	resp, err := c.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	return resp
}

func TestDeviceImportEndToEnd(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}, SyncDuration: time.Nanosecond})
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")

	shared := fakeHash()
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	w.Write([]string{"SN-OK-1", "", fakeHash(), "Sales", "AdeleV@contoso.example"})
	w.Write([]string{"SN-OK-2", "", strings.TrimRight(fakeHash(), "="), "", ""}) // unpadded: repaired
	w.Write([]string{"", "", fakeHash(), "", ""})                                // missing serial
	w.Write([]string{"SN-BAD-HASH", "", "not base64!!", "", ""})                 // not base64
	w.Write([]string{"SN-OK-1", "", fakeHash(), "", ""})                         // duplicate serial
	w.Write([]string{"CZC808OTHER", "", shared, "", ""})                         // another tenant's
	w.Write([]string{"SN-USER", "", fakeHash(), "", "not a upn"})                // bad UPN
	w.Flush()

	resp, html := d.uploadCSV(b, csrf, file.Bytes())
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, views.ImportJobURL("")) {
		t.Fatalf("pre-flight: %d %s", resp.StatusCode, resp.Request.URL)
	}
	jobURL := resp.Request.URL.Path
	if strings.Contains(html, shared) || strings.Contains(html, shared[:200]) {
		t.Errorf("a whole hardware hash reached the page")
	}
	_, doc = d.get(b, jobURL)
	verdicts := map[string]string{}
	doc.Find(`[data-testid="preflight"] tbody tr`).Each(func(i int, s *goquery.Selection) {
		verdicts[strings.TrimSpace(s.Find("td").Eq(2).Text())+fmt.Sprint(i)] = s.AttrOr("data-verdict", "")
	})
	errorsCount := doc.Find(`[data-testid="preflight"] tr[data-verdict="error"]`).Length()
	if errorsCount != 4 {
		t.Errorf("%d rows refused, want 4 (missing serial, bad hash, duplicate serial, bad UPN): %v", errorsCount, verdicts)
	}
	if doc.Find(`[data-testid="preflight"] tr[data-verdict="fixed"]`).Length() != 1 {
		t.Errorf("the unpadded hash was not repaired with a note")
	}
	before := len(d.received())
	if len(d.received()) != before {
		t.Fatal("the pre-flight sent something to Graph")
	}

	// Import every valid row.
	form := formValues(t, doc, `form[action$="/submit"]`)
	if form.Has("leaveOut") {
		t.Errorf("rows are left out before anyone asked: %v", form["leaveOut"])
	}
	resp, doc = d.post(b, jobURL+"/submit", form)
	if resp.Request.URL.Path != jobURL || doc.Find(`[data-testid="outcome"] tbody tr`).Length() != 7 {
		t.Fatalf("after submit: %s", text(doc))
	}
	doc = waitFinished(t, d, b, jobURL)
	if n := importCalls(d.app.demo.Emulator); n != 1 {
		t.Errorf("%d import calls, want 1", n)
	}
	if got := strings.TrimSpace(doc.Find("h1").Text()); got != "Import finished" {
		t.Errorf("heading %q", got)
	}
	summary := doc.Find(`[data-testid="progress-summary"]`).Text()
	if !strings.Contains(summary, "2 imported, 1 with an error and 4 left out at the check — 7 rows in the file") {
		t.Fatalf("summary: %s", summary)
	}
	if !strings.Contains(doc.Find(`[data-testid="outcome"]`).Text(), "808") {
		t.Errorf("808 not explained: %s", doc.Find(`[data-testid="outcome"]`).Text())
	}
	// The report lists every row of the file, never a hash.
	resp, err := b.Get(d.srv.URL + jobURL + "/report.csv")
	if err != nil {
		t.Fatal(err)
	}
	report, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(report, []byte("\xef\xbb\xbf")))).ReadAll()
	if err != nil || len(rows) != 8 || rows[0][0] != "Line" || rows[1][0] != "2" || rows[7][0] != "8" {
		t.Fatalf("report: %v %q", err, report)
	}
	if rows[1][1] != "SN-OK-1" || rows[1][2] != "Sales" || rows[1][3] != "AdeleV@contoso.example" || rows[1][4] != "Imported" || rows[1][10] == "" {
		t.Errorf("report row of line 2: %q", rows[1])
	}
	if rows[4][4] != "Left out" || !strings.Contains(rows[4][7], "base64") {
		t.Errorf("report row of a refused line: %q", rows[4])
	}
	if strings.Contains(string(report), shared[:40]) {
		t.Errorf("the report carries a hash")
	}
	// A second submit of the same job sends nothing more.
	n := len(d.received())
	d.post(b, jobURL+"/submit", form)
	for _, r := range d.received()[n:] {
		if r.Method == http.MethodPost {
			t.Errorf("a repeated submit reached Graph: %s", r.Path)
		}
	}
	// Sync, then again within 10 minutes: refused with a countdown.
	_, doc = d.get(b, jobURL)
	syncForm := formValues(t, doc, `form[action="/devices/sync"]`)
	_, doc = d.post(b, "/devices/sync", syncForm)
	if !strings.Contains(text(doc), "204 No Content") || !strings.Contains(text(doc), "/beta/deviceManagement/windowsAutopilotSettings/sync") {
		t.Errorf("sync: %s", text(doc))
	}
	_, doc = d.post(b, "/devices/sync", syncForm)
	if !strings.Contains(text(doc), "one sync every 10 minutes") || !strings.Contains(text(doc), "Try again after") {
		t.Errorf("second sync: %s", text(doc))
	}
	if !strings.Contains(d.log.String(), `"audit":true`) || strings.Contains(d.log.String(), shared[:40]) {
		t.Errorf("audit line missing, or a hash logged")
	}
}

// waitFinished waits until a job's import has finished (read from the state database when the
// desk is at hand, else from its page), then returns its page.
func waitFinished(t *testing.T, d *desk, b *http.Client, jobURL string) *goquery.Document {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	if raceEnabled {
		deadline = time.Now().Add(8 * time.Minute) // the race detector slows SQLite most, and long tests run two at a time
	}
	for {
		if d.app != nil {
			job, err := d.app.db.GetImportJob(context.Background(), demoidp.DemoTenantID, strings.TrimPrefix(jobURL, views.ImportJobURL("")))
			if err == nil && job.State == "finished" {
				_, doc := d.get(b, jobURL)
				return doc
			}
		} else {
			_, doc := d.get(b, jobURL)
			if strings.TrimSpace(doc.Find("h1").Text()) == "Import finished" {
				return doc
			}
		}
		if time.Now().After(deadline) {
			_, doc := d.get(b, jobURL)
			t.Fatalf("the import did not finish: %.600s", text(doc))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// importCalls is how many import actions the emulator received (not refused as too large): its
// count, which outlasts the bounded log of received requests a busy takeover can overrun.
func importCalls(e *emulator.Emulator) int { return e.Stats().ImportCalls }

func TestPreflightRowsCanBeFixed(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	data := "Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\n" +
		",," + fakeHash() + ",,\n" + "SN-2,," + fakeHash() + ",,not a upn\n"
	resp, _ := d.uploadCSV(b, csrf, []byte(data))
	job := resp.Request.URL.Path
	_, doc = d.get(b, job)
	if n := doc.Find(`tr[data-verdict="error"]`).Length(); n != 2 {
		t.Fatalf("%d rows refused, want 2", n)
	}
	fix := formValues(t, doc, `form[action$="/fix"]`)
	fix.Set("row-2-serial", "SN-1")
	fix.Set("row-3-user", "MeganB@contoso.example")
	_, doc = d.post(b, job+"/fix", fix)
	if n := doc.Find(`tr[data-verdict="error"]`).Length(); n != 0 {
		t.Errorf("%d rows still refused after the fixes: %s", n, doc.Find(`[data-testid="preflight"]`).Text())
	}
	if got := doc.Find(`[data-testid="preflight"] tbody tr`).First().Find("td").Eq(1).Text(); got != "2" {
		t.Errorf("line numbers not kept: %q", got)
	}
}
