package main

import (
	"bytes"
	"encoding/csv"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"autopilotdesk/web/demo"
)

// The repeatable demo (--demo-time) shows the same pages on every run: its clock moves only with
// Graph, a minute before each change, and the ids Graph hands out and the desk's
// client-request-ids are numbered.
func TestRepeatableDemoShowsTheSamePagesEveryRun(t *testing.T) {
	var results []string
	for range 2 {
		d := startDesk(t, map[string]string{"AUTOPILOTDESK_DEMO_TIME": "2026-03-02T09:30:00Z"})
		b := d.browser()
		form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
		if got := form.Get("createdDateTimeUtc"); got != "2026-03-02T09:30:00.0000000Z" {
			t.Errorf("the form is prefilled with %s", got)
		}
		resp, doc := d.post(b, "/uploads", form)
		page := text(doc)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("create answered %d: %s", resp.StatusCode, page)
		}
		for _, want := range []string{"2 Mar 2026 09:31:00 UTC", "Mon, 02 Mar 2026 09:31:00 GMT",
			"5c0e0002-aa11-4b22-8c33-00d0c5000002", "c11e0001-7e57-4d00-9e00-000000000001"} {
			if !strings.Contains(page, want) {
				t.Errorf("the result page lacks %s: %s", want, page)
			}
		}
		if !strings.Contains(page, "Response 1ms") {
			t.Errorf("the exchange does not take the millisecond Graph took: %s", page)
		}
		// The same page but for the loopback port of the demo's Graph.
		results = append(results, strings.ReplaceAll(page, d.app.demo.URL, "http://demo"))

		// An import is final at the first look after it, and its worker does not wait for a clock that stands still.
		_, doc = d.get(b, "/devices/import")
		var file bytes.Buffer
		w := csv.NewWriter(&file)
		w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
		w.Write([]string{"SN-REPEAT-1", "", fakeHash(), "", ""})
		w.Flush()
		resp, _ = d.uploadCSV(b, doc.Find(`input[name="_csrf"]`).First().AttrOr("value", ""), file.Bytes())
		job := resp.Request.URL.Path
		_, doc = d.get(b, job)
		d.post(b, job+"/submit", formValues(t, doc, `form[action$="/submit"]`))
		doc = waitFinished(t, d, b, job) // the worker's clock too moves only with Graph
		if summary := doc.Find(`[data-testid="progress-summary"]`).Text(); !strings.Contains(summary, "1 imported") {
			t.Errorf("the import is not final: %s", summary)
		}
		_, doc = d.get(b, "/activity")
		if page := text(doc); !strings.Contains(page, "2 Mar 2026 09:32:00 UTC") {
			t.Errorf("the import is not recorded a minute after the create: %s", page)
		}
	}
	if results[0] != results[1] {
		t.Errorf("two runs showed different result pages:\n%s\n%s", results[0], results[1])
	}
}

func TestRepeatableTimePassesOnlyWithGraph(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	r := demo.NewRepeatable(start)
	var seen []time.Time
	h := r.Pace(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen = append(seen, r.Now()) }))
	if !r.Now().Equal(start) {
		t.Fatalf("starts at %v", r.Now())
	}
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodGet, http.MethodPatch, http.MethodHead, http.MethodDelete} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/v1.0/deviceManagement", nil))
	}
	ms, minute := time.Millisecond, time.Minute
	want := []time.Duration{ms, minute + 2*ms, minute + 3*ms, 2*minute + 4*ms, 2*minute + 5*ms, 3*minute + 6*ms}
	for i, w := range want {
		if got := seen[i].Sub(start); got != w {
			t.Errorf("request %d answered at start+%s, want start+%s", i+1, got, w)
		}
	}
	if !r.Now().Equal(start.Add(want[len(want)-1])) {
		t.Errorf("the clock moved without Graph: %v", r.Now())
	}
	if got := r.Ticks().Sub(start); got != 6*ms {
		t.Errorf("the requests took %s by Ticks, want 6 ms", got)
	}
}

// A JSON batch that only reads is a read: following an import reads in batches as often as real
// time allows, and must not move the demo's time. A batch with a change in it is a change.
func TestRepeatableBatchOfReadsIsARead(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	r := demo.NewRepeatable(start)
	var got []string
	h := r.Pace(http.HandlerFunc(func(_ http.ResponseWriter, req *http.Request) {
		body, _ := io.ReadAll(req.Body)
		got = append(got, string(body))
	}))
	reads := `{"requests":[{"id":"1","method":"GET","url":"/deviceManagement/windowsAutopilotDeviceIdentities/a"},{"id":"2","method":"get","url":"/x"}]}`
	change := `{"requests":[{"id":"1","method":"GET","url":"/a"},{"id":"2","method":"POST","url":"/deviceManagement/windowsAutopilotDeviceIdentities/a/updateDeviceProperties"}]}`
	for _, body := range []string{reads, reads, change, "not JSON"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/v1.0/$batch", strings.NewReader(body)))
	}
	if want := start.Add(2*time.Minute + 4*time.Millisecond); !r.Now().Equal(want) {
		t.Errorf("after two batches of reads, a batch with a change and one not read: %s, want %s", r.Now().Sub(start), want.Sub(start))
	}
	if len(got) != 4 || got[0] != reads || got[2] != change {
		t.Errorf("the emulator did not get the batches as sent: %q", got)
	}
}

func TestRepeatableIDsAreNumbered(t *testing.T) {
	r := demo.NewRepeatable(time.Now())
	for _, want := range []string{"5c0e0001-aa11-4b22-8c33-00d0c5000001", "5c0e0002-aa11-4b22-8c33-00d0c5000002"} {
		if got := r.NewID(); got != want {
			t.Errorf("NewID = %s, want %s", got, want)
		}
	}
	for _, want := range []string{"c11e0001-7e57-4d00-9e00-000000000001", "c11e0002-7e57-4d00-9e00-000000000002"} {
		if got := r.NewRequestID(); got != want {
			t.Errorf("NewRequestID = %s, want %s", got, want)
		}
	}
}
