package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
)

// seedFleet registers n devices named prefix-001 and so on in the demo tenant, not enrolled, in
// the Sales group, and returns the ids the emulator gives them.
func seedFleet(e *emulator.Emulator, prefix string, n int) []string {
	devices := make([]emulator.AutopilotDevice, n)
	ids := make([]string, n)
	for i := range devices {
		devices[i] = emulator.AutopilotDevice{SerialNumber: fmt.Sprintf("%s-%03d", prefix, i+1), Manufacturer: "Dell Inc.", Model: "Latitude 5440",
			GroupTag: "Sales", UserPrincipalName: fmt.Sprintf("user%d@contoso.example", i+1), EnrollmentState: "notContacted"}
		ids[i] = emulator.AutopilotDeviceID(devices[i].SerialNumber)
	}
	e.SeedAutopilotDevices(demoidp.DemoTenantID, devices...)
	return ids
}

// writesPerDevice counts the changes Graph received for each registered device, alone or inside
// JSON batches.
func writesPerDevice(t *testing.T, e *emulator.Emulator) map[string]int {
	t.Helper()
	counts := map[string]int{}
	note := func(method, path string) {
		if method == http.MethodGet {
			return
		}
		_, rest, ok := strings.Cut(path, "/windowsAutopilotDeviceIdentities/")
		if !ok {
			return
		}
		id, _, _ := strings.Cut(rest, "/")
		counts[strings.ToLower(id)]++
	}
	for _, r := range e.Received() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/$batch") {
			var body struct {
				Requests []struct{ Method, URL string } `json:"requests"`
			}
			if err := json.Unmarshal(r.Body, &body); err != nil {
				t.Fatalf("a batch body does not decode: %v", err)
			}
			for _, q := range body.Requests {
				note(q.Method, q.URL)
			}
			continue
		}
		note(r.Method, r.Path)
	}
	return counts
}

// confirmForm is the confirmation form of a bulk draft as b's browser shows it.
func confirmForm(t *testing.T, d *desk, b *http.Client, job string) url.Values {
	t.Helper()
	_, doc := d.get(b, "/devices/bulk/"+job)
	return formValues(t, doc, `form[action$="/confirm"]`)
}

// waitBulk waits until a bulk job has finished, then returns its page.
func waitBulk(t *testing.T, d *desk, b *http.Client, job string) *goquery.Document {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	if raceEnabled {
		deadline = time.Now().Add(4 * time.Minute)
	}
	for {
		_, doc := d.get(b, "/devices/bulk/"+job)
		if strings.TrimSpace(doc.Find("h1").Text()) == "Bulk change finished" {
			return doc
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bulk change did not finish: %.800s", text(doc))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func outcomes(doc *goquery.Document) map[string]int {
	out := map[string]int{}
	doc.Find(`[data-testid="bulk-outcome"] tbody tr`).Each(func(_ int, s *goquery.Selection) { out[s.AttrOr("data-outcome", "")]++ })
	return out
}

// A bulk change from the list: the confirmation counts the devices and names the change; once
// confirmed every device is changed once, with a per-device outcome; a delete Graph refuses for
// an enrolled device is shown with Graph's message, and that device is not deleted.
func TestBulkChangeEndToEnd(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-BULK", 3)

	// Chosen on the list, as the browser posts the ticked boxes.
	_, doc := d.get(b, "/devices?tag=Sales")
	form := formValues(t, doc, `#bulk-form`)
	for _, id := range ids {
		if doc.Find(`input[name="device"][value="`+id+`"]`).Length() != 1 {
			t.Fatalf("device %s cannot be ticked on the list", id)
		}
	}
	form["device"] = ids
	form.Set("action", "group-tag")
	form.Set("groupTag", "Kiosk")
	before := len(d.emu.Received())
	resp, doc := d.post(b, "/devices/bulk", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/devices/bulk/") {
		t.Fatalf("choosing landed on %s: %s", resp.Request.URL, text(doc))
	}
	if n := len(writesPerDevice(t, d.emu)); n != 0 {
		t.Fatalf("%d devices changed before the confirmation", n)
	}
	if batches, _ := batchPosts(d.emu, before); batches != 1 {
		t.Errorf("3 devices read in %d batches", batches)
	}
	if got := strings.TrimSpace(doc.Find("h1").Text()); got != "Set the group tag of 3 devices to “Kiosk”?" {
		t.Errorf("the confirmation asks %q", got)
	}
	if got := doc.Find(`[data-testid="bulk-confirm"] button`).Text(); got != "Set group tag “Kiosk” on 3 devices" {
		t.Errorf("the confirm button says %q", got)
	}
	if n := doc.Find(`[data-testid="bulk-devices"] tbody tr`).Length(); n != 3 {
		t.Errorf("the confirmation lists %d devices", n)
	}
	job := strings.TrimPrefix(resp.Request.URL.Path, "/devices/bulk/")
	confirm := formValues(t, doc, `form[action$="/confirm"]`)
	d.post(b, "/devices/bulk/"+job+"/confirm", confirm)
	doc = waitBulk(t, d, b, job)
	if got := outcomes(doc); got[bulk.DeviceDone] != 3 {
		t.Errorf("outcomes %v: %s", got, text(doc))
	}
	if got := doc.Find(`[data-testid="bulk-summary"]`).Text(); !strings.Contains(got, "3 changed — 3 devices in all") {
		t.Errorf("summary: %s", got)
	}
	for id, n := range writesPerDevice(t, d.emu) {
		if n != 1 {
			t.Errorf("device %s changed %d times", id, n)
		}
	}
	if doc.Find(`[data-testid="bulk-outcome"] a[href^="/activity/"]`).Length() != 3 {
		t.Error("the outcomes do not link their record")
	}
	// The same confirmation again sends nothing.
	n := len(d.emu.Received())
	d.post(b, "/devices/bulk/"+job+"/confirm", confirm)
	if len(d.emu.Received()) != n {
		t.Error("a repeated confirmation reached Graph")
	}
	// The device's page lists the change in its history.
	_, page := d.get(b, "/devices/"+ids[0])
	if !strings.Contains(page.Find(`[data-testid="history"]`).Text(), "Bulk change: set the group tag to “Kiosk”") {
		t.Errorf("the device's history: %s", page.Find(`[data-testid="history"]`).Text())
	}

	// Delete an enrolled and a not-contacted device: Graph refuses the first, with its message.
	demoDevices := emulator.DemoAutopilotDevices(time.Now())
	enrolled, waiting := demoDevices[1], demoDevices[13]
	delJob := d.bulkDraft(b, "delete", "", enrolled.ID, waiting.ID)
	_, doc = d.get(b, "/devices/bulk/"+delJob)
	if !strings.Contains(doc.Find(`[data-testid="bulk-delete-warning"]`).Text(), "1 device is enrolled in Intune") {
		t.Errorf("the delete confirmation does not warn of the enrolled device: %s", text(doc))
	}
	d.post(b, "/devices/bulk/"+delJob+"/confirm", confirmForm(t, d, b, delJob))
	doc = waitBulk(t, d, b, delJob)
	refused := doc.Find(`tr[data-outcome="refused"]`)
	if refused.Length() != 1 || !strings.Contains(refused.Text(), "enrolled in Intune") || !strings.Contains(refused.Text(), "nothing was deleted") ||
		!strings.Contains(refused.Text(), "400") {
		t.Errorf("the refused delete: %s", refused.Text())
	}
	if got := outcomes(doc); got[bulk.DeviceDone] != 1 {
		t.Errorf("delete outcomes %v", got)
	}
	if _, still := d.get(b, "/devices/"+enrolled.ID); still.Find(`[data-testid="properties"]`).Length() != 1 {
		t.Error("the refused device's registration is gone")
	}
}

// Fifty concurrent confirmations of one bulk change from five sessions make one write per
// device, on one desk and on two desks sharing PostgreSQL.
func TestBulkConfirmedExactlyOnce(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	run := func(t *testing.T, d *desk, emu *emulator.Emulator, targets []string, cookieURL string, browsers []*http.Client) {
		ids := seedFleet(emu, "SN-ONCE", 45)
		job := d.bulkDraft(browsers[0], "group-tag", "Frontline", ids...)
		statuses := postAtOnce(t, 50, targets, cookieURL, browsers, "/devices/bulk/"+job+"/confirm", func(b *http.Client) url.Values { return confirmForm(t, d, b, job) })
		if statuses[http.StatusSeeOther] != 50 {
			t.Errorf("of 50 confirmations, answered by status: %v; want all with the job's page (303)", statuses)
		}
		doc := waitBulk(t, d, browsers[1], job)
		if got := outcomes(doc); got[bulk.DeviceDone] != 45 {
			t.Errorf("outcomes %v", got)
		}
		writes := writesPerDevice(t, emu)
		if len(writes) != 45 {
			t.Errorf("%d devices written, want 45", len(writes))
		}
		for id, n := range writes {
			if n != 1 {
				t.Errorf("device %s written %d times", id, n)
			}
		}
	}
	t.Run("one desk", func(t *testing.T) {
		d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"}, appOptions{})
		d.emu.SetFaults(emulator.Faults{LatencyMin: 20 * time.Millisecond, LatencyMax: 20 * time.Millisecond, Methods: []string{http.MethodPost}})
		run(t, d, d.emu, []string{d.srv.URL}, d.srv.URL, d.signedIn(5, "admin", d.browser))
	})
	t.Run("two desks on PostgreSQL", func(t *testing.T) {
		cl := startClusterWith(t, clusterOptions{env: map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"},
			shape: func(o *demo.Options) {
				o.Emulator.Faults = emulator.Faults{LatencyMin: 20 * time.Millisecond, LatencyMax: 20 * time.Millisecond, Methods: []string{http.MethodPost}}
			}})
		d := cl.onDesks("A", "B")
		run(t, d, cl.emu, []string{cl.replicas["A"].URL, cl.replicas["B"].URL}, cl.lb.URL, d.signedIn(5, "admin", cl.browser))
	})
}

// crashedBulk confirms a bulk change of n devices, stops the desk when its bulk worker reaches
// point (its lease is left to run out) and starts another on the same SQLite data.
func crashedBulk(t *testing.T, point string, lookups []time.Duration, n int) (*cluster, *desk, *http.Client, string, []string) {
	hook, fired := stopOnce(point)
	cl := startClusterWith(t, clusterOptions{sqlite: true, app: appOptions{BulkFault: func(p string) error {
		if err := hook(p); err != nil {
			return bulk.ErrStopped
		}
		return nil
	}, BulkLease: 2 * time.Second, BulkLookupDelays: lookups}})
	d := cl.onDesks("A")
	b := d.signedInBrowser("admin", cl.browser)
	ids := seedFleet(cl.emu, "SN-CRASH", n)
	job := d.bulkDraft(b, "unassign-user", "", ids...)
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	waitFired(t, fired)
	cl.stop("A")
	cl.start("A2")
	cl.via("A2")
	return cl, d, b, job, ids
}

// A desk killed after Graph answered a chunk and before the answer was stored: restarted on the
// same data, a new worker takes the job over through its lease, reads the devices instead of
// sending again, and every device is accounted for.
func TestBulkSurvivesACrashBeforeTheAnswerIsStored(t *testing.T) {
	cl, d, b, job, ids := crashedBulk(t, bulk.FaultAnswered, []time.Duration{0, time.Second}, 25)
	doc := waitBulk(t, d, b, job)
	writes := writesPerDevice(t, cl.emu)
	if len(writes) != 25 {
		t.Errorf("%d devices written, want 25", len(writes))
	}
	for id, n := range writes {
		if n != 1 {
			t.Errorf("device %s written %d times: a change was sent again", id, n)
		}
	}
	got := outcomes(doc)
	if got[bulk.DeviceDone] != 25 {
		t.Errorf("outcomes %v: %.600s", got, text(doc))
	}
	if !strings.Contains(doc.Find(`[data-testid="bulk-summary"]`).Text(), "20 devices were found changed by reading them in Graph after an answer was lost") {
		t.Errorf("the page does not say which devices were reconciled: %s", doc.Find(`[data-testid="bulk-summary"]`).Text())
	}
	_, page := d.get(b, "/devices/"+ids[0])
	if got := page.Find(`[data-property="userPrincipalName"]`).Text(); got != "—" {
		t.Errorf("the device still has user %q", got)
	}
}

// A desk killed after recording a chunk as in flight and before sending it: nothing is sent
// blindly; the devices are read, never show the change, and end "outcome unknown — check".
func TestBulkLostBeforeSendingIsNeverResentBlindly(t *testing.T) {
	cl, d, b, job, _ := crashedBulk(t, bulk.FaultRecorded, []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond}, 3)
	doc := waitBulk(t, d, b, job)
	if n := len(writesPerDevice(t, cl.emu)); n != 0 {
		t.Errorf("%d devices written: a change whose fate was unknown was sent", n)
	}
	unconfirmed := doc.Find(`tr[data-outcome="unconfirmed"]`)
	if unconfirmed.Length() != 3 || !strings.Contains(unconfirmed.First().Text(), "Nothing was sent again") {
		t.Errorf("the devices read %s", text(doc))
	}
}

// Answers lost on the way back (504 for every write): the changes are never sent again; reading
// the devices finds them made.
func TestBulkLostAnswersAreFoundByReading(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{BulkLookupDelays: []time.Duration{0, time.Second}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-LOST", 4)
	job := d.bulkDraft(b, "group-tag", "Kiosk", ids...)
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	doc := waitBulk(t, d, b, job)
	if got := outcomes(doc); got[bulk.DeviceDone] != 4 {
		t.Errorf("outcomes %v: %s", got, text(doc))
	}
	for id, n := range writesPerDevice(t, d.emu) {
		if n != 1 {
			t.Errorf("device %s written %d times", id, n)
		}
	}
	if !strings.Contains(doc.Find(`[data-testid="bulk-outcome"]`).Text(), "Found by reading the device after Graph's answer was lost") {
		t.Error("the outcomes do not say they were found by reading")
	}
}

// With Intune's write budget on, the changes are paced to it: no 429 at all when the desk knows
// the budget, and when Graph throttles anyway no request is sent before its Retry-After passed.
func TestBulkChangesKeepIntunesWriteBudget(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	for _, tc := range []struct {
		name       string
		deskBudget string
		throttled  bool // Graph's budget is smaller than the desk's
	}{{"paced", "10/1s", false}, {"throttled anyway", "100/1s", true}} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_GRAPH_WRITE_BUDGET": tc.deskBudget}, appOptions{})
			b := d.browser()
			d.signIn(b, "admin", "/")
			ids := seedFleet(d.emu, "SN-PACE", 35)
			job := d.bulkDraft(b, "group-tag", "Paced", ids...)
			d.emu.SetFaults(emulator.Faults{ThrottleWrites: 10, ThrottleWindow: time.Second, PunishEarlyRetry: true})
			start := time.Now()
			d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
			doc := waitBulk(t, d, b, job)
			took := time.Since(start)
			if got := outcomes(doc); got[bulk.DeviceDone] != 35 {
				t.Errorf("outcomes %v: %s", got, text(doc))
			}
			st := d.emu.Stats()
			if st.Punished != 0 {
				t.Errorf("%d requests were sent before Graph's Retry-After passed", st.Punished)
			}
			if !tc.throttled && st.Throttled != 0 {
				t.Errorf("%d requests throttled although the desk kept the budget", st.Throttled)
			}
			if tc.throttled && st.Throttled == 0 {
				t.Error("Graph throttled nothing: the test proves nothing")
			}
			if took < 3*time.Second {
				t.Errorf("35 changes at 10 a second took %s", took)
			}
			for id, n := range writesPerDevice(t, d.emu) {
				if n > 1 && !tc.throttled {
					t.Errorf("device %s written %d times", id, n)
				}
			}
		})
	}
}

// Read before anything else: the job belongs to whoever chose the devices; others may follow it.
func TestBulkChangeBelongsToWhoChoseTheDevices(t *testing.T) {
	d := startDesk(t, nil)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	ids := seedFleet(d.emu, "SN-OWN", 2)
	job := d.bulkDraft(admin, "unassign-user", "", ids...)
	other := d.browser()
	doc := parse(t, d.signIn(other, "many-groups", "/devices/bulk/"+job))
	if doc.Find(`form[action$="/confirm"]`).Length() != 0 || !strings.Contains(doc.Find(`[data-testid="owner"]`).Text(), "Only Adele Vance can confirm") {
		t.Errorf("someone else's draft: %s", text(doc))
	}
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	resp, page := d.post(other, "/devices/bulk/"+job+"/confirm", url.Values{"_csrf": {csrf}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(text(page), "belongs to Adele Vance") {
		t.Errorf("someone else's confirmation: %d %s", resp.StatusCode, text(page))
	}
	tagged := d.bulkDraft(admin, "group-tag", "Kiosk", ids...)
	resp, page = d.post(other, "/devices/bulk/"+tagged+"/group-tag", url.Values{"_csrf": {csrf}, "groupTag": {"Other"}})
	if j, _ := d.app.db.GetBulkJob(context.Background(), demoidp.DemoTenantID, tagged); resp.StatusCode != http.StatusForbidden || j.GroupTag != "Kiosk" {
		t.Errorf("someone else's correction of the group tag: %d, the tag now %q: %s", resp.StatusCode, j.GroupTag, text(page))
	}
	if n := len(writesPerDevice(t, d.emu)); n != 0 {
		t.Errorf("%d devices changed", n)
	}
	if j, _ := d.app.db.GetBulkJob(context.Background(), demoidp.DemoTenantID, job); j.State != bulk.StateDraft {
		t.Errorf("the job is %s", j.State)
	}
}

// Reads Graph fails while a bulk change is prepared (502, 504 on the first read of every
// device) are read again: the confirmation comes as if nothing failed. When Graph keeps failing,
// the page says so with Graph's ids for support, and the list shows the devices still ticked.
func TestBulkReviewReadsAgainWhatGraphFailed(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_GRAPH_TIMEOUT": "4s"}, appOptions{})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-REREAD", 17)
	_, doc := d.get(b, "/devices?tag=Sales")
	form := formValues(t, doc, `#bulk-form`)
	form["device"] = ids
	form.Set("action", "group-tag")
	form.Set("groupTag", "Kiosk")

	// Each read draws twice when it fails (whether, then which status): the first 17 fail, with
	// 502 and 504 in turn; every read after them is answered.
	var draws atomic.Int64
	d.emu.SetFaults(emulator.Faults{ErrorRate: 0.5, ErrorStatuses: []int{502, 504}, Methods: []string{http.MethodGet}, Rand: func() float64 {
		switch n := draws.Add(1); {
		case n > 34, n%4 == 0: // answered; or the 504 of a failing read
			return 0.99
		}
		return 0 // a failing read; or its 502
	}})
	resp, page := d.post(b, "/devices/bulk", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/devices/bulk/") {
		t.Fatalf("a read failing once made the preparation fail (%d): %s", resp.StatusCode, text(page))
	}
	if n := page.Find(`[data-testid="bulk-devices"] tbody tr`).Length(); n != 17 {
		t.Errorf("the confirmation lists %d devices", n)
	}

	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{502}, Methods: []string{http.MethodGet}})
	resp, page = d.post(b, "/devices/bulk", form)
	support := page.Find(`[data-testid="support"]`).Text()
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(text(page), "could not be read") || !strings.Contains(text(page), "still ticked") ||
		!strings.Contains(support, "502") || !strings.Contains(support, "request-id") {
		t.Errorf("Graph failing every read: %d %s", resp.StatusCode, text(page))
	}
	d.emu.SetFaults(emulator.Faults{})
	_, list := d.get(b, "/devices?tag=Sales")
	for _, id := range ids {
		if _, ticked := list.Find(`input[name="device"][value="` + id + `"]`).Attr("checked"); !ticked {
			t.Fatalf("device %s is no longer ticked on the list", id)
		}
	}
	if got := list.Find(`#bulk-tag`).AttrOr("value", ""); got != "Kiosk" {
		t.Errorf("the group tag typed is now %q", got)
	}
}

// waitingText polls a bulk change's page until it explains a wait, and returns the explanation.
func waitingText(t *testing.T, d *desk, b *http.Client, job string) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, doc := d.get(b, "/devices/bulk/"+job)
		if w := doc.Find(`[data-testid="waiting"]`); w.Length() > 0 {
			return w.Text()
		}
		if time.Now().After(deadline) {
			t.Fatalf("the bulk change never says it waits: %.800s", text(doc))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A wait Graph asked for (a Retry-After another desk was given, kept in the state database) is
// said to be Graph's, not the desk's own pacing to the write budget, which has every slot free.
func TestBulkWaitForGraphIsNotCalledPacing(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-WAIT", 3)
	job := d.bulkDraft(b, "group-tag", "Held", ids...)
	if err := d.app.db.HoldWrites(context.Background(), "graph-writes:"+demoidp.DemoTenantID, time.Now().Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	got := waitingText(t, d, b, job)
	if !strings.Contains(got, "Microsoft Graph asked every desk to wait") || strings.Contains(got, "Pacing") {
		t.Errorf("the wait for Graph's Retry-After says: %s", got)
	}
	if n := len(writesPerDevice(t, d.emu)); n != 0 {
		t.Errorf("%d devices changed during the hold", n)
	}
}

// Graph throttles a bulk change's writes and loses the answers of those it takes: the devices
// whose answer was lost are read only once Graph's Retry-After has passed, so no read is sent
// early (Graph punishes it with a longer wait), and all of them are found changed by reading.
func TestBulkLooksUpOnlyAfterGraphsRetryAfter(t *testing.T) {
	// A call lasts at most a second, so the throttled writes come back to the worker to wait for
	// Graph's Retry-After (3 s), which the devices whose answer was lost are due a look within.
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_GRAPH_TIMEOUT": "1s"}, appOptions{BulkLookupDelays: []time.Duration{0, time.Second}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-HOLD", 12)
	job := d.bulkDraft(b, "group-tag", "Held", ids...)
	d.emu.SetFaults(emulator.Faults{ThrottleWrites: 5, ThrottleWindow: 3 * time.Second, PunishEarlyRetry: true, LoseWriteAnswers: true})
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	doc := waitBulk(t, d, b, job)
	if got := outcomes(doc); got[bulk.DeviceDone] != 12 {
		t.Errorf("outcomes %v: %s", got, text(doc))
	}
	if st := d.emu.Stats(); st.Punished != 0 || st.Throttled == 0 {
		t.Errorf("%d requests sent before Graph's Retry-After passed (%d throttled)", st.Punished, st.Throttled)
	}
	if got := doc.Find(`[data-testid="bulk-summary"]`).Text(); !strings.Contains(got, "12 changed") || !strings.Contains(got, "12 devices were found changed by reading them") {
		t.Errorf("summary: %s", got)
	}
}

// While a bulk change waits out the Retry-After Graph gave some of its changes, every other write
// of the tenant's is held from the moment the 429 reached the desk: an upload created meanwhile
// is refused by the desk with the time to send again, and Graph punishes nothing.
func TestBulkWaitingOutThrottlingHoldsOtherWritesAtOnce(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-THROTTLED", 8)
	job := d.bulkDraft(b, "group-tag", "Held", ids...)
	_, doc := d.get(b, "/uploads/new")
	upload := formValues(t, doc, `form[action="/uploads"]`)
	d.emu.SetFaults(emulator.Faults{ThrottleWrites: 5, ThrottleWindow: 3 * time.Second, PunishEarlyRetry: true})
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	// Once the batch's answer has reached the desk (Graph's 429 is on its way back until then),
	// and while the batch waits the Retry-After out.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		held, err := d.app.db.WriteHold(context.Background(), "graph-writes:"+demoidp.DemoTenantID)
		if err != nil {
			t.Fatal(err)
		}
		if held.After(time.Now()) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the desk never held the tenant's writes (Graph throttled %d requests)", d.emu.Stats().Throttled)
		}
	}
	// The bulk change's page says so at once, with the time, while the batch waits inside.
	var waiting string
	for deadline := time.Now().Add(time.Second); waiting == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, page := d.get(b, "/devices/bulk/"+job)
		waiting = page.Find(`[data-testid="waiting"]`).Text()
	}
	if !strings.Contains(waiting, "Microsoft Graph asked every desk to wait") || !strings.Contains(waiting, "UTC") {
		t.Errorf("while its batch waits out Graph's Retry-After, the page says: %q", waiting)
	}
	resp, doc := d.post(b, "/uploads", upload)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(text(doc), "asked the desk to wait") {
		t.Errorf("an upload created during the wait: %d %.300s", resp.StatusCode, text(doc))
	}
	doc = waitBulk(t, d, b, job)
	if got := outcomes(doc); got[bulk.DeviceDone] != 8 {
		t.Errorf("outcomes %v", got)
	}
	if st := d.emu.Stats(); st.Punished != 0 {
		t.Errorf("%d requests sent before Graph's Retry-After passed", st.Punished)
	}
}

// "Check what Graph has" pressed again and again: each press reads the devices, but a look asked
// by hand before the schedule's next does not count toward it, so the presses never use the
// schedule up, and the changes Graph made (shown in reads only seconds later) are found made.
func TestBulkLooksByHandDoNotUseTheScheduleUp(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ConsistencyDelay: 2 * time.Second,
		BulkLookupDelays: []time.Duration{1500 * time.Millisecond, 3 * time.Second, 4 * time.Second, 5 * time.Second, 6 * time.Second}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-PRESS", 17)
	job := d.bulkDraft(b, "group-tag", "Made", ids...)
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	batches := func() int { return postsTo(d.emu, "/$batch") }
	var doc *goquery.Document
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, doc = d.get(b, "/devices/bulk/"+job)
		if outcomes(doc)[bulk.DeviceUnknown] == 17 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the answers were not lost: %.600s", text(doc))
		}
	}
	for range 5 {
		_, doc = d.get(b, "/devices/bulk/"+job)
		form := doc.Find(`form[action$="/reconcile"]`)
		if form.Length() == 0 {
			break // nothing left to look for
		}
		before := batches()
		d.post(b, "/devices/bulk/"+job+"/reconcile", formValues(t, doc, `form[action$="/reconcile"]`))
		for wait := time.Now().Add(2 * time.Second); batches() == before && time.Now().Before(wait); {
			time.Sleep(5 * time.Millisecond) // the press's look has gone to Graph
		}
	}
	doc = waitBulk(t, d, b, job)
	if got := outcomes(doc); got[bulk.DeviceDone] != 17 {
		t.Errorf("outcomes %v after looks asked by hand: %.900s", got, text(doc))
	}
	for id, n := range writesPerDevice(t, d.emu) {
		if n != 1 {
			t.Errorf("device %s written %d times", id, n)
		}
	}
}

// Two bulk changes of the same devices: the one confirmed later wins. Its review says a running
// bulk change has these devices; once it is confirmed, the earlier one leaves them to it instead
// of overwriting them when it reaches them, and says so; Graph ends with the later group tag.
func TestBulkChangeConfirmedLaterWins(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_GRAPH_WRITE_BUDGET": "20/1s"}, appOptions{})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-BOTH", 300)
	first := d.bulkDraft(b, "group-tag", "Old-A", ids...)
	d.post(b, "/devices/bulk/"+first+"/confirm", confirmForm(t, d, b, first))
	later := d.bulkDraft(b, "group-tag", "New-B", ids[280:]...)
	_, review := d.get(b, "/devices/bulk/"+later)
	if w := review.Find(`[data-testid="bulk-overlap"]`).Text(); !strings.Contains(w, "also in a bulk change still running") || !strings.Contains(w, "Old-A") {
		t.Errorf("the review does not say a running bulk change has these devices: %q", w)
	}
	d.post(b, "/devices/bulk/"+later+"/confirm", confirmForm(t, d, b, later))
	doc := waitBulk(t, d, b, later)
	if got := outcomes(doc); got[bulk.DeviceDone] != 20 {
		t.Errorf("the later change: %v", got)
	}
	doc = waitBulk(t, d, b, first)
	left := doc.Find(`tr[data-outcome="skipped"]`)
	if left.Length() == 0 || !strings.Contains(left.First().Text(), "a bulk change confirmed later changes this device too") {
		t.Errorf("the earlier change left no device to the later one: %v %.600s", outcomes(doc), text(doc))
	}
	if got := outcomes(doc); got[bulk.DeviceDone]+left.Length() != 300 {
		t.Errorf("the earlier change: %v", got)
	}
	if !strings.Contains(doc.Find(`[data-testid="bulk-summary"]`).Text(), "left to a later bulk change") {
		t.Errorf("summary: %s", doc.Find(`[data-testid="bulk-summary"]`).Text())
	}
	for _, id := range ids[280:] {
		_, page := d.get(b, "/devices/"+id)
		if got := strings.TrimSpace(page.Find(`[data-property="groupTag"]`).Text()); got != "New-B" {
			t.Errorf("device %s has group tag %q after both changes, want the later one's", id, got)
		}
	}
	for id, n := range writesPerDevice(t, d.emu) {
		if n > 2 {
			t.Errorf("device %s written %d times", id, n)
		}
	}
}

// confirmLosingAnswers confirms a bulk change while Graph loses every write's answer, waits until
// its n devices end "outcome unknown", and gives Graph its answers back.
func confirmLosingAnswers(t *testing.T, d *desk, b *http.Client, job string, n int) {
	t.Helper()
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		_, doc := d.get(b, "/devices/bulk/"+job)
		if outcomes(doc)[bulk.DeviceUnknown] == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the answers were not lost: %.600s", text(doc))
		}
	}
	d.emu.SetFaults(emulator.Faults{})
}

// A bulk change whose answer was lost, then a later bulk change of the same device made before
// the earlier one read it: the earlier one finds the later one's value, not its own, and says the
// later change replaced it, with no outcome left to check; nothing is sent again.
func TestBulkLostAnswerReplacedByALaterBulkChange(t *testing.T) {
	t.Parallel()
	d := startDeskWith(t, nil, appOptions{BulkLookupDelays: []time.Duration{6 * time.Second, 7 * time.Second}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-OVER", 2)
	first := d.bulkDraft(b, "group-tag", "Old-A", ids...)
	confirmLosingAnswers(t, d, b, first, 2)
	later := d.bulkDraft(b, "group-tag", "New-B", ids[0])
	d.post(b, "/devices/bulk/"+later+"/confirm", confirmForm(t, d, b, later))
	if got := outcomes(waitBulk(t, d, b, later)); got[bulk.DeviceDone] != 1 {
		t.Fatalf("the later change: %v", got)
	}
	doc := waitBulk(t, d, b, first)
	if got := outcomes(doc); got[bulk.DeviceReplaced] != 1 || got[bulk.DeviceDone] != 1 {
		t.Errorf("the earlier change: %v: %.900s", got, text(doc))
	}
	row := doc.Find(`tr[data-outcome="` + bulk.DeviceReplaced + `"]`)
	if w := row.Text(); !strings.Contains(w, "SN-OVER-001") || !strings.Contains(w, "“New-B”") || !strings.Contains(w, "later bulk change") {
		t.Errorf("the replaced device does not say what replaced it: %q", w)
	}
	if s := doc.Find(`[data-testid="bulk-summary"]`).Text(); strings.Contains(s, "to check") || !strings.Contains(s, "replaced by a later bulk change") {
		t.Errorf("summary: %s", s)
	}
	if doc.Find(`[data-testid="bulk-again"]`).Length() > 0 {
		t.Error("the earlier change offers to send its change again over the later one")
	}
	for id, n := range writesPerDevice(t, d.emu) {
		if n > 2 {
			t.Errorf("device %s written %d times", id, n)
		}
	}
}

// A device whose bulk change's answer was lost and whose group tag was then changed on its own
// page reads "replaced by a change on the device's page", naming who made it and when: that value
// stands, so there is nothing to check, and the change is not offered again.
func TestBulkLostAnswerReplacedByAChangeOnTheDevicesPage(t *testing.T) {
	t.Parallel()
	d := startDeskWith(t, nil, appOptions{BulkLookupDelays: []time.Duration{6 * time.Second, 7 * time.Second}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-PAGE", 2)
	job := d.bulkDraft(b, "group-tag", "Old-A", ids...)
	confirmLosingAnswers(t, d, b, job, 2)
	_, page := d.get(b, "/devices/"+ids[0])
	form := formValues(t, page, `form[action$="/properties"]`)
	form.Set("groupTag", "Page-C")
	if _, doc := d.post(b, "/devices/"+ids[0]+"/properties", form); doc.Find(`[data-testid="change-accepted"]`).Length() != 1 {
		t.Fatalf("the change on the device's page was not accepted: %.600s", text(doc))
	}
	doc := waitBulk(t, d, b, job)
	if got := outcomes(doc); got[bulk.DeviceReplaced] != 1 || got[bulk.DeviceDone] != 1 {
		t.Errorf("outcomes %v: %.900s", got, text(doc))
	}
	row := doc.Find(`tr[data-outcome="` + bulk.DeviceReplaced + `"]`)
	if w := row.Text(); !strings.Contains(w, "SN-PAGE-001") || !strings.Contains(w, "Replaced by a change on the device's page") ||
		!strings.Contains(w, "group tag “Page-C”") || !strings.Contains(w, "by Adele Vance on ") {
		t.Errorf("the replaced device does not say what replaced it: %q", w)
	}
	if s := doc.Find(`[data-testid="bulk-summary"]`).Text(); strings.Contains(s, "to check") || !strings.Contains(s, "replaced by a change on the device's page") {
		t.Errorf("summary: %s", s)
	}
	if doc.Find(`[data-testid="bulk-again"]`).Length() > 0 {
		t.Error("the bulk change offers to send its change again over the one made on the device's page")
	}
}

// A bulk change writes a record for each batch of 20 it sends (85 devices: 5 records); the team
// activity shows the job as one row, its newest record, with how many it wrote and a link to all
// of them, which lists each. Filtered by person the job is still one row; filtered by outcome
// every record that matches is a row of its own.
func TestActivityFoldsAJobsRecordsUnderItsNewest(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-FOLD", 85)
	job := d.bulkDraft(b, "group-tag", "Folded", ids...)
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	waitBulk(t, d, b, job)
	rowsOf := func(path string) (rows int, records string) {
		_, doc := d.get(b, path)
		sel := doc.Find(`[data-testid="activity"] tbody tr:has(a[href="/devices/bulk/` + job + `"])`)
		return sel.Length(), strings.Join(strings.Fields(sel.Find(`[data-testid="job-records"]`).Text()), " ")
	}
	for _, path := range []string{"/activity", "/activity?person=adele", "/activity?mine=1&action=bulk-change"} {
		if n, records := rowsOf(path); n != 1 || !strings.Contains(records, "The newest of the 5 records this bulk change wrote as it went") {
			t.Errorf("%s: %d rows of the bulk change (%q), want one saying it wrote 5", path, n, records)
		}
	}
	_, doc := d.get(b, "/activity")
	all := doc.Find(`[data-testid="job-records"] a`).AttrOr("href", "")
	if all != "/activity?job="+job {
		t.Fatalf("the link to every record of the job is %q", all)
	}
	if n, records := rowsOf(all); n != 5 || records != "" {
		t.Errorf("the job's records: %d rows (%q), want each of the 5", n, records)
	}
	if n, _ := rowsOf("/activity?outcome=success"); n != 5 {
		t.Errorf("filtered by outcome: %d rows of the bulk change, want each of the 5", n)
	}
	if resp, _ := d.get(b, "/activity?job=not-a-job"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a job that is no id: %d", resp.StatusCode)
	}
}

// A bulk change running leaves a share of every write window to changes made on a device's page:
// they are sent at once, not after the bulk change; and when even that share is taken, the time
// the refusal names is one when the change goes.
func TestBulkChangeLeavesSingleChangesTheirShare(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_GRAPH_WRITE_BUDGET": "20/5s"}, appOptions{})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-SHARE", 60)
	job := d.bulkDraft(b, "group-tag", "Bulk", ids...)
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	waitFor(t, "the bulk change's first batch", func() bool { return len(writesPerDevice(t, d.emu)) >= 18 })
	demo := emulator.DemoAutopilotDevices(time.Now())
	change := func(id, tag string) *goquery.Document {
		_, doc := d.get(b, "/devices/"+id)
		form := formValues(t, doc, `form[action$="/properties"]`)
		form.Set("groupTag", tag)
		_, doc = d.post(b, "/devices/"+id+"/properties", form)
		return doc
	}
	for _, dev := range demo[9:11] {
		if doc := change(dev.ID, "Single"); doc.Find(`[data-testid="change-accepted"]`).Length() != 1 {
			t.Fatalf("a single change while a bulk change runs was not sent: %.600s", text(doc))
		}
	}
	doc := change(demo[11].ID, "Single")
	if doc.Find(`[data-testid="change-accepted"]`).Length() == 1 {
		return // the window turned meanwhile
	}
	m := regexp.MustCompile(`Send it again after (\d\d:\d\d:\d\d) UTC`).FindStringSubmatch(text(doc))
	if m == nil {
		t.Fatalf("the refusal names no time: %.600s", text(doc))
	}
	now := time.Now().UTC()
	at, _ := time.Parse("15:04:05", m[1])
	at = time.Date(now.Year(), now.Month(), now.Day(), at.Hour(), at.Minute(), at.Second(), 0, time.UTC)
	if at.Before(now.Add(-time.Hour)) {
		at = at.Add(24 * time.Hour)
	}
	time.Sleep(time.Until(at))
	if doc := change(demo[11].ID, "Single"); doc.Find(`[data-testid="change-accepted"]`).Length() != 1 {
		t.Errorf("sent again after %s as the refusal said, refused again: %.600s", m[1], text(doc))
	}
}

// Graph's 403 for the person's Intune role, met by the bulk worker with her token, makes her
// read-only in the desk as a request's 403 does: her pages offer no more changes, and a second
// draft she confirms afterwards (from a page shown before) is refused before anything is sent.
func TestBulkWorkersRoleRefusalMakesItsOwnerReadOnly(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "reader", "/devices"))
	ids := seedFleet(d.emu, "SN-ROLE", 17)
	first := d.bulkDraft(b, "delete", "", ids[:10]...)
	second := d.bulkDraft(b, "delete", "", ids[10:]...)
	secondForm := confirmForm(t, d, b, second)
	d.post(b, "/devices/bulk/"+first+"/confirm", confirmForm(t, d, b, first))
	doc := waitBulk(t, d, b, first)
	if got := outcomes(doc); got[bulk.DeviceRefused]+got[bulk.DeviceSkipped] != 10 {
		t.Fatalf("the first bulk change: %v %.600s", got, text(doc))
	}
	if _, list := d.get(b, "/devices"); list.Find(`[data-testid="bulk-form"]`).Length() != 0 {
		t.Error("the devices list still offers a bulk change after Graph refused her role")
	}
	resp, page := d.post(b, "/devices/bulk/"+second+"/confirm", secondForm)
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the second draft's confirm answered %d: %.600s", resp.StatusCode, text(page))
	}
	time.Sleep(200 * time.Millisecond) // a worker kicked by a confirm wrongly accepted would be sending now
	writes := writesPerDevice(t, d.emu)
	for _, id := range ids[10:] {
		if writes[strings.ToLower(id)] != 0 {
			t.Errorf("device %s of the second draft was sent to Graph", id)
		}
	}
}

// The same for the import worker: Graph's 403 for the reader's role, met by her import in the
// background, leaves her pages without changes.
func TestImportWorkersRoleRefusalMakesItsOwnerReadOnly(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "reader", "/devices"))
	if _, list := d.get(b, "/devices"); list.Find(`[data-testid="bulk-form"]`).Length() != 1 {
		t.Fatal("before any refusal the list offers no bulk change: the test proves nothing")
	}
	data, _ := deviceCSV("SN-ROLEIMP", 2)
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	waitFinished(t, d, b, job)
	if _, list := d.get(b, "/devices"); list.Find(`[data-testid="bulk-form"]`).Length() != 0 {
		t.Error("the devices list still offers a bulk change after Graph refused her import for her role")
	}
}

// answered507 is a finished bulk change of three devices' group tag whose one write Graph
// answered 507, which does not say whether it was made: the desk, the owner's browser, the
// change's id and its finished page.
func answered507(t *testing.T, prefix string) (*desk, *http.Client, string, *goquery.Document) {
	t.Helper()
	d := startDeskWith(t, nil, appOptions{BulkLookupDelays: []time.Duration{0, 50 * time.Millisecond}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, prefix, 3)
	job := d.bulkDraft(b, "group-tag", "Kiosk", ids...)
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodPost}, ErrorStatuses: []int{507}})
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	waitFor(t, "the write's answer", func() bool { return len(writesPerDevice(t, d.emu)) == 3 })
	d.emu.SetFaults(emulator.Faults{})
	return d, b, job, waitBulk(t, d, b, job)
}

// A server error Graph answers a bulk write with (507 here) may have been carried out: the device
// is read to find out, never counted as refused nor sent again, and its row says what Graph
// answered rather than that no answer came.
func TestBulkServerErrorIsAnUnknownOutcome(t *testing.T) {
	d, _, _, doc := answered507(t, "SN-507")
	if got := outcomes(doc); got[bulk.DeviceUnconfirmed] != 3 {
		t.Errorf("outcomes %v: %.600s", got, text(doc))
	}
	row := doc.Find(`tr[data-outcome="unconfirmed"]`).First().Text()
	if !strings.Contains(row, "Microsoft Graph answered the change with 507") || strings.Contains(row, "never arrived") || strings.Contains(row, "Nothing was changed") {
		t.Errorf("the row says: %s", row)
	}
	for id, n := range writesPerDevice(t, d.emu) {
		if n != 1 {
			t.Errorf("device %s written %d times", id, n)
		}
	}
}

// A finished change's devices that did not end as changed can be prepared again in one step: they
// are read afresh into a new change to confirm (nothing is sent before), which then changes them
// once each. Someone with read permission only is not offered it.
func TestBulkChangePreparedAgainForTheDevicesItDidNotChange(t *testing.T) {
	d, b, job, doc := answered507(t, "SN-AGAIN")
	offer := doc.Find(`[data-testid="bulk-again"]`)
	if got := words(offer); !strings.Contains(got, "3 devices did not end as changed: 3 to check (outcome unknown).") || !strings.Contains(got, "nothing is sent until you confirm") {
		t.Fatalf("the finished change offers: %q", got)
	}

	reader := d.browser()
	if rdoc := parse(t, d.signIn(reader, "read-grant", "/devices/bulk/"+job)); rdoc.Find(`[data-testid="bulk-again"]`).Length() != 0 {
		t.Error("someone with read permission only is offered to prepare the change again")
	}

	writes := len(d.emu.Received())
	resp, again := d.post(b, "/devices/bulk", formValues(t, doc, `[data-testid="bulk-again"] form`))
	next := resp.Request.URL.Path
	if !strings.HasPrefix(next, "/devices/bulk/") || next == "/devices/bulk/"+job || again.Find(`[data-testid="bulk-confirm"]`).Length() != 1 {
		t.Fatalf("preparing again landed on %s: %.500s", resp.Request.URL, text(again))
	}
	if got := words(again.Find(`[data-testid="bulk-count"]`)); !strings.Contains(got, "3 devices") || !strings.Contains(got, "Kiosk") {
		t.Errorf("the new change says: %q", got)
	}
	for _, r := range d.emu.Received()[writes:] {
		if r.Method == http.MethodPost && !strings.HasSuffix(r.Path, "/$batch") {
			t.Errorf("preparing again sent %s %s", r.Method, r.Path)
		}
	}
	d.post(b, next+"/confirm", confirmForm(t, d, b, strings.TrimPrefix(next, "/devices/bulk/")))
	doc = waitBulk(t, d, b, strings.TrimPrefix(next, "/devices/bulk/"))
	if got := outcomes(doc); got[bulk.DeviceDone] != 3 || doc.Find(`[data-testid="bulk-again"]`).Length() != 0 {
		t.Errorf("the change prepared again: %v, offered again: %d", got, doc.Find(`[data-testid="bulk-again"]`).Length())
	}
}

// A refusal that stopped a bulk change for every device (403 for the person's Intune role) is
// explained once, above the devices, with the ids Microsoft support asks for; each device's row
// says briefly what happened to it and points to that explanation rather than repeating it.
func TestBulkRefusalForEveryDeviceIsExplainedOnce(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "reader", "/devices"))
	ids := seedFleet(d.emu, "SN-ONCE", 23)
	job := d.bulkDraft(b, "group-tag", "Kiosk", ids...)
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	doc := waitBulk(t, d, b, job)
	got := outcomes(doc)
	if got[bulk.DeviceRefused] == 0 || got[bulk.DeviceSkipped] == 0 || got[bulk.DeviceRefused]+got[bulk.DeviceSkipped] != len(ids) {
		t.Fatalf("outcomes %v: %.600s", got, text(doc))
	}
	alert := doc.Find(`[data-testid="bulk-refused"]`)
	next := "Ask an Intune administrator"
	if alert.Length() != 1 || alert.AttrOr("id", "") != "bulk-refused" || !strings.Contains(words(alert), next) {
		t.Fatalf("the refusal above the devices: %q", words(alert))
	}
	if !regexp.MustCompile(`request-id:\s+[0-9a-f-]{36}`).MatchString(alert.Find(`.support-details`).Text()) {
		t.Errorf("the refusal's support details: %q", alert.Find(`.support-details`).Text())
	}
	if n := strings.Count(text(doc), next); n != 1 {
		t.Errorf("what to do is said %d times on the page", n)
	}
	doc.Find(`[data-testid="bulk-outcome"] tbody tr`).Each(func(_ int, row *goquery.Selection) {
		detail := words(row.Find(".detail"))
		if !strings.Contains(detail, "Your Intune role does not allow this") || row.Find(`.detail a[href="#bulk-refused"]`).Length() != 1 {
			t.Errorf("the row of %s says %q", words(row.Find("code")), detail)
		}
		if row.AttrOr("data-outcome", "") == bulk.DeviceRefused && (row.Find(`a[href^="/activity/"]`).Length() != 1 || !strings.Contains(words(row), "403")) {
			t.Errorf("the refused row of %s has no record or status: %q", words(row.Find("code")), words(row))
		}
	})
}

// A group tag change Graph refused for its value (400) is not offered again as it was: the offer
// and each refused row say the group tag is to be corrected, and the change prepared again shows
// the refused group tag in its review, editable there (a wrong one refused with what was typed
// kept); a confirmation shown before the correction sends nothing; the corrected change is sent.
func TestBulkGroupTagRefusedIsPreparedAgainToCorrect(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-CORRECT", 3)
	job := d.bulkDraft(b, "group-tag", "Kiosk", ids...)
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodPost}, ErrorStatuses: []int{400}})
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	doc := waitBulk(t, d, b, job)
	d.emu.SetFaults(emulator.Faults{})
	if got := outcomes(doc); got[bulk.DeviceRefused] != 3 {
		t.Fatalf("outcomes %v: %.600s", got, text(doc))
	}
	offer := doc.Find(`[data-testid="bulk-again-correct"]`)
	if got := words(offer); !strings.Contains(got, "refused the group tag “Kiosk” for 3 devices") || !strings.Contains(got, "review shows the group tag for you to correct") {
		t.Fatalf("the finished change offers: %q", got)
	}
	if doc.Find(`[data-testid="bulk-again"]`).Length() != 0 {
		t.Errorf("the same change is offered again for devices Graph refused its group tag for: %q", words(doc.Find(`[data-testid="bulk-again"]`)))
	}
	doc.Find(`tr[data-outcome="refused"]`).Each(func(_ int, row *goquery.Selection) {
		if got := words(row); !strings.Contains(got, "correct the group tag in its review") || strings.Contains(got, "tick the devices again") {
			t.Errorf("a refused row says: %q", got)
		}
	})

	resp, review := d.post(b, "/devices/bulk", formValues(t, doc, `[data-testid="bulk-again-correct"] form`))
	next := resp.Request.URL.Path
	again := strings.TrimPrefix(next, "/devices/bulk/")
	if !strings.HasPrefix(next, "/devices/bulk/") || again == job || review.Find(`[data-testid="bulk-confirm"]`).Length() != 1 {
		t.Fatalf("preparing again landed on %s: %.500s", resp.Request.URL, text(review))
	}
	correction := review.Find(`[data-testid="bulk-correction"]`)
	if got := words(correction); !strings.Contains(got, "refused the group tag “Kiosk”") || !strings.Contains(got, "Injected failure") ||
		correction.Find(`input[name="groupTag"]`).AttrOr("value", "") != "Kiosk" {
		t.Fatalf("the review shows: %q", got)
	}
	stale := confirmForm(t, d, b, again)

	long := strings.Repeat("k", 201)
	tagForm := formValues(t, review, `[data-testid="bulk-group-tag"]`)
	tagForm.Set("groupTag", long)
	resp, page := d.post(b, next+"/group-tag", tagForm)
	if resp.StatusCode != http.StatusUnprocessableEntity || page.Find(`#bulk-correct-tag`).AttrOr("value", "") != long ||
		!strings.Contains(page.Find(`#bulk-correct-tag-error`).Text(), "at most 200") {
		t.Fatalf("a group tag too long: %d %.600s", resp.StatusCode, text(page))
	}
	tagForm.Set("groupTag", "Kiosk-EU")
	_, page = d.post(b, next+"/group-tag", tagForm)
	if got := strings.TrimSpace(page.Find("h1").Text()); got != "Set the group tag of 3 devices to “Kiosk-EU”?" {
		t.Fatalf("after the correction the review asks %q: %.600s", got, text(page))
	}

	writes := writesPerDevice(t, d.emu)
	if resp, page := d.post(b, next+"/confirm", stale); resp.StatusCode != http.StatusConflict || !strings.Contains(text(page), "nothing was sent") {
		t.Errorf("the confirmation shown before the correction: %d %.600s", resp.StatusCode, text(page))
	}
	d.post(b, next+"/confirm", confirmForm(t, d, b, again))
	doc = waitBulk(t, d, b, again)
	if got := outcomes(doc); got[bulk.DeviceDone] != 3 || !strings.Contains(words(doc.Find(`[data-testid="bulk-change"]`)), "“Kiosk-EU”") {
		t.Errorf("the corrected change: %v %.600s", got, text(doc))
	}
	for id, n := range writesPerDevice(t, d.emu) {
		if n != writes[id]+1 {
			t.Errorf("device %s written %d times by the corrected change", id, n-writes[id])
		}
	}
}

// Preparing a bulk change of 1,000 devices reads them from Graph in 50 JSON batches, a few on
// their way at once: against a Graph that takes 200 ms a batch, the draft is ready well before
// 50 batches one after another would be (10 s), whether the devices were ticked on the list or
// given by serial number, and no request goes before a Retry-After.
func TestBulkChangeOf1000DevicesIsPreparedWithBatchesInFlight(t *testing.T) {
	t.Parallel()
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-PACE", 1000)
	serials := make([]string, len(ids))
	for i := range serials {
		serials[i] = fmt.Sprintf("SN-PACE-%03d", i+1)
	}
	_, doc := d.get(b, "/devices")
	ticked := formValues(t, doc, `#bulk-form`)
	ticked["device"] = ids
	ticked.Set("action", "group-tag")
	ticked.Set("groupTag", "Kiosk")
	_, doc = d.get(b, "/devices/bulk/serials")
	typed := formValues(t, doc, `[data-testid="serials-form"]`)
	typed.Set("serials", strings.Join(serials, "\r\n"))
	typed.Set("action", "group-tag")
	typed.Set("groupTag", "Kiosk")

	const latency = 200 * time.Millisecond
	d.emu.SetFaults(emulator.Faults{LatencyMin: latency, LatencyMax: latency, PunishEarlyRetry: true})
	bound := 50 * latency * 6 / 10
	for _, way := range []struct {
		name, path string
		form       url.Values
	}{{"ticked on the list", "/devices/bulk", ticked}, {"given by serial number", "/devices/bulk/serials", typed}} {
		before := len(d.emu.Received())
		start := time.Now()
		resp, doc := d.post(b, way.path, way.form)
		took := time.Since(start)
		if !strings.HasPrefix(resp.Request.URL.Path, "/devices/bulk/") || resp.Request.URL.Path == "/devices/bulk/serials" {
			t.Fatalf("%s: choosing landed on %s (%d): %.600s", way.name, resp.Request.URL, resp.StatusCode, text(doc))
		}
		if got := strings.TrimSpace(doc.Find("h1").Text()); got != "Set the group tag of 1,000 devices to “Kiosk”?" {
			t.Errorf("%s: the confirmation asks %q", way.name, got)
		}
		if took >= bound {
			t.Errorf("%s: 1,000 devices took %s to prepare, want under %s (50 batches one after another: %s)", way.name, took.Round(time.Millisecond), bound, 50*latency)
		}
		if batches, others := batchPosts(d.emu, before); batches != 50 || others != 0 {
			t.Errorf("%s: %d batch POSTs and %d other requests, want 50 batches alone", way.name, batches, others)
		}
	}
	if st := d.emu.Stats(); st.Punished != 0 || st.Throttled != 0 {
		t.Errorf("%d requests sent before a Retry-After elapsed, %d throttled", st.Punished, st.Throttled)
	}
}
