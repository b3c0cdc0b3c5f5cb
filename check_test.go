package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/jsonbatch"
)

// batchPosts counts the JSON batches Graph received since the n-th request, and the other
// requests, apart from the import worker following an import's devices by id (it runs on its own
// clock, whatever the page does meanwhile).
func batchPosts(e *emulator.Emulator, from int) (batches, others int) {
	for _, r := range e.Received()[from:] {
		switch {
		case r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/$batch"):
			var b jsonbatch.Batch
			if json.Unmarshal(r.Body, &b) != nil || !slices.ContainsFunc(b.Requests, func(in jsonbatch.Request) bool { return !importedDeviceByID(in.Method, in.URL) }) {
				continue // the worker reading the devices it follows
			}
			batches++
		case importedDeviceByID(r.Method, r.Path):
		default:
			others++
		}
	}
	return batches, others
}

// importedDeviceByID reports whether a request reads one imported device by its id.
func importedDeviceByID(method, path string) bool {
	_, id, ok := strings.Cut(path, "/importedWindowsAutopilotDeviceIdentities/")
	return method == http.MethodGet && ok && id != "" && !strings.ContainsAny(id, "/?")
}

// "Check serials in the tenant" looks 500 serials up among registered devices in 25 requests in
// all, and in the desk's own imports still on their way without any; rows found are left out with
// what the tenant holds for them and a link to the device, or to the import bringing it in.
func TestCheckSerialsLooksAmongRegisteredDevicesAndImportsOnTheirWay(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Hour, Pending: time.Hour}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	demo := emulator.DemoAutopilotDevices(time.Now())

	// An import on its way: Graph holds it as pending for an hour.
	onTheWay, _ := deviceCSV("SN-WAY", 1)
	first := draftOf(t, d, b, onTheWay)
	d.post(b, first+"/submit", submitForm(t, d, b, first))
	for i := 0; ; i++ {
		_, doc := d.get(b, first)
		if doc.Find(`tr[data-verdict="sent"]`).Length() == 1 {
			break
		}
		if i > 500 {
			t.Fatalf("the first import was not sent: %s", text(doc))
		}
		time.Sleep(10 * time.Millisecond)
	}

	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	serials := []string{strings.ToLower(demo[0].SerialNumber), demo[5].SerialNumber, "SN-WAY-00001"}
	for i := len(serials); i < 500; i++ {
		serials = append(serials, fmt.Sprintf("SN-NEW-%04d", i))
	}
	for _, s := range serials {
		w.Write([]string{s, "", fakeHash(), "", ""})
	}
	w.Flush()
	job := draftOf(t, d, b, file.Bytes())
	_, doc := d.get(b, job)
	before := len(d.emu.Received())
	resp, doc := d.post(b, job+"/check", formValues(t, doc, `form[action$="/check"]`))
	if resp.Request.URL.Path != job {
		t.Fatalf("check landed on %s: %s", resp.Request.URL, text(doc))
	}
	if batches, others := batchPosts(d.emu, before); batches != 25 || others != 0 {
		t.Errorf("500 serials took %d batches and %d other requests, want 25 and none", batches, others)
	}
	registered := doc.Find(`[data-testid="already-registered"]`)
	if registered.Length() != 2 {
		t.Fatalf("%d rows found registered, want 2: %s", registered.Length(), text(doc))
	}
	if got := strings.Join(strings.Fields(registered.First().Text()), " "); !strings.Contains(got, "Already registered — group tag Sales, user AdeleV@contoso.example") {
		t.Errorf("the registered row says %q", got)
	}
	if href := registered.First().Find("a").AttrOr("href", ""); href != "/devices/"+demo[0].ID {
		t.Errorf("the registered row links to %q", href)
	}
	if got := registered.Eq(1).Text(); !strings.Contains(got, "group tag Executives, user LeeG@contoso.example") {
		t.Errorf("the second registered row: %s", got)
	}
	way := doc.Find(`[data-testid="being-imported"]`)
	if way.Length() != 1 || way.Find("a").AttrOr("href", "") != first {
		t.Errorf("the row on its way: %s", way.Text())
	}
	form := formValues(t, doc, `form[action$="/submit"]`)
	if got := form["leaveOut"]; len(got) != 3 || got[0] != "2" || got[1] != "3" || got[2] != "4" {
		t.Errorf("left out: %v, want lines 2, 3 and 4", got)
	}
	if doc.Find(`form[action$="/check"]`).Length() != 0 {
		t.Error("the check is still offered after it ran")
	}
	// Imported as ticked: the rows found are left out, with why.
	d.post(b, job+"/submit", form)
	for i := 0; ; i++ {
		_, doc = d.get(b, job)
		if doc.Find(`tr[data-verdict="left-out"]`).Length() == 3 {
			break
		}
		if i > 500 {
			t.Fatalf("the rows found were not left out: %.500s", text(doc))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := doc.Find(`tr[data-verdict="left-out"]`).First().Text(); !strings.Contains(got, "already registered in the tenant when the serials were checked (group tag Sales, user AdeleV@contoso.example)") {
		t.Errorf("the left-out row: %s", got)
	}
}

// Graph throttles the look-ups: the batches' inner 429s are sent again once their own
// Retry-After has passed, and the check still finds every registered serial.
func TestCheckSerialsHonoursGraphsRetryAfter(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	demo := emulator.DemoAutopilotDevices(time.Now())
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	for i := range 30 {
		serial := fmt.Sprintf("SN-THR-%02d", i)
		if i == 25 {
			serial = demo[2].SerialNumber // in the second batch, which the budget cuts short
		}
		w.Write([]string{serial, "", fakeHash(), "", ""})
	}
	w.Flush()
	job := draftOf(t, d, b, file.Bytes())
	_, doc := d.get(b, job)
	d.emu.SetFaults(emulator.Faults{ThrottleRequests: 22, ThrottleWindow: 2 * time.Second, PunishEarlyRetry: true})
	start := time.Now()
	_, doc = d.post(b, job+"/check", formValues(t, doc, `form[action$="/check"]`))
	if took := time.Since(start); took < time.Second {
		t.Errorf("the check took %s: it did not wait for Graph's Retry-After", took)
	}
	if st := d.emu.Stats(); st.Throttled == 0 || st.Punished != 0 {
		t.Errorf("%d throttled, %d sent before their Retry-After: want some and none", st.Throttled, st.Punished)
	}
	if n := doc.Find(`[data-testid="already-registered"]`).Length(); n != 1 || doc.Find(`[data-testid="failure"], .alert-error`).Length() != 0 {
		t.Errorf("%d rows found registered after the wait: %.500s", n, text(doc))
	}
}
