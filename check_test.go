package main

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/jsonbatch"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/web/demo"
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

// serialsCSV is a device file of serials, each with a hash of its own.
func serialsCSV(serials []string) []byte {
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	for _, s := range serials {
		w.Write([]string{s, "", fakeHash(), "", ""})
	}
	w.Flush()
	return file.Bytes()
}

// checkEnded follows a job's page until the check of its serials has ended, and returns the page.
func checkEnded(t *testing.T, d *desk, b *http.Client, job string) *goquery.Document {
	t.Helper()
	for i := 0; ; i++ {
		_, doc := d.get(b, job)
		if doc.Find(`[data-testid="checking"]`).Length() == 0 {
			return doc
		}
		if i > 3000 {
			t.Fatalf("the check never ended: %.500s", text(doc))
		}
		time.Sleep(10 * time.Millisecond)
	}
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

	serials := []string{strings.ToLower(demo[0].SerialNumber), demo[5].SerialNumber, "SN-WAY-00001"}
	for i := len(serials); i < 500; i++ {
		serials = append(serials, fmt.Sprintf("SN-NEW-%04d", i))
	}
	job := draftOf(t, d, b, serialsCSV(serials))
	_, doc := d.get(b, job)
	before := len(d.emu.Received())
	resp, doc := d.post(b, job+"/check", formValues(t, doc, `form[action$="/check"]`))
	if resp.Request.URL.Path != job {
		t.Fatalf("check landed on %s: %s", resp.Request.URL, text(doc))
	}
	// The answer waits a moment for the check to end; on a busy machine it may show it under way.
	doc = checkEnded(t, d, b, job)
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
	serials := make([]string, 30)
	for i := range serials {
		serials[i] = fmt.Sprintf("SN-THR-%02d", i)
	}
	serials[25] = demo[2].SerialNumber // in the second batch, which the budget cuts short
	job := draftOf(t, d, b, serialsCSV(serials))
	_, doc := d.get(b, job)
	d.emu.SetFaults(emulator.Faults{ThrottleRequests: 22, ThrottleWindow: 2 * time.Second, PunishEarlyRetry: true})
	start := time.Now()
	d.post(b, job+"/check", formValues(t, doc, `form[action$="/check"]`))
	doc = checkEnded(t, d, b, job)
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

// longCheck is a draft of 1,100 serials, three steps of a check: a registered serial on the
// first line and another on the last, the rest unknown to the tenant.
func longCheck(t *testing.T, d *desk, b *http.Client) string {
	t.Helper()
	demo := emulator.DemoAutopilotDevices(time.Now())
	serials := make([]string, 1100)
	for i := range serials {
		serials[i] = fmt.Sprintf("SN-LONG-%04d", i)
	}
	serials[0], serials[len(serials)-1] = demo[0].SerialNumber, demo[5].SerialNumber
	return draftOf(t, d, b, serialsCSV(serials))
}

// slowLongCheck is a desk whose Graph takes a tenth of a second to answer, with longCheck's draft
// of 1,100 serials and its page.
func slowLongCheck(t *testing.T) (*desk, *http.Client, string, *goquery.Document) {
	t.Helper()
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	job := longCheck(t, d, b)
	_, doc := d.get(b, job)
	d.emu.SetFaults(emulator.Faults{LatencyMin: 100 * time.Millisecond, LatencyMax: 100 * time.Millisecond})
	return d, b, job, doc
}

// A check of 1,100 serials against a Graph that takes a tenth of a second an answer runs longer
// than a request should wait: the request that starts it answers within moments with the check's
// progress, the draft takes no change meanwhile (with a page that says why), and the page
// follows the check to its findings on the first and the last line.
func TestLongCheckGoesOnWithoutARequestWaiting(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	d, b, job, doc := slowLongCheck(t)
	submit, check := formValues(t, doc, `form[action$="/submit"]`), formValues(t, doc, `form[action$="/check"]`)
	before := len(d.emu.Received())
	start := time.Now()
	resp, doc := d.post(b, job+"/check", check)
	// It waits a moment (two seconds) for a short check to end, and no longer: the whole check takes 5.5 s.
	if took := time.Since(start); took > 4500*time.Millisecond || resp.Request.URL.Path != job {
		t.Fatalf("starting the check took %s and landed on %s", took, resp.Request.URL)
	}
	if got := strings.Join(strings.Fields(doc.Find(`[data-testid="preflight-summary"]`).Text()), " "); !strings.HasPrefix(got, "1,100 rows: 1,") {
		t.Errorf("while checking the summary reads %q", got)
	}
	progress := doc.Find(`[data-testid="checking"]`)
	if progress.Length() != 1 || !strings.Contains(progress.Find(`[data-testid="check-progress"]`).Text(), "of 1,100 serial numbers") ||
		progress.Find(`form[action$="/stop-check"]`).Length() != 1 || doc.Find("[data-refresh-seconds]").Length() != 1 {
		t.Fatalf("while checking the page shows: %.600s", text(doc))
	}
	if n := doc.Find(`form[action$="/submit"], form[action$="/fix"], form[action$="/check"], input[name="leaveOut"]`).Length(); n != 0 {
		t.Errorf("%d forms or ticks to change the draft while its serials are checked", n)
	}
	for _, action := range []string{"/submit", "/fix"} {
		resp, doc := d.post(b, job+action, submit)
		if resp.StatusCode != http.StatusConflict || !strings.Contains(text(doc), "still being checked") {
			t.Errorf("%s while checking: %d %.300s", action, resp.StatusCode, text(doc))
		}
	}
	doc = checkEnded(t, d, b, job)
	if batches, others := batchPosts(d.emu, before); batches != 55 || others != 0 {
		t.Errorf("1,100 serials took %d batches and %d other requests, want 55 and none", batches, others)
	}
	if got := doc.Find(`[data-testid="already-registered"]`).Length(); got != 2 {
		t.Errorf("%d rows found registered, want the first and the last: %.500s", got, text(doc))
	}
	form := formValues(t, doc, `form[action$="/submit"]`)
	if got := form["leaveOut"]; len(got) != 2 || got[0] != "2" || got[1] != "1101" {
		t.Errorf("left out: %v, want lines 2 and 1101", got)
	}
	if doc.Find(`form[action$="/check"]`).Length() != 0 || doc.Find(".alert-error").Length() != 0 {
		t.Errorf("after the check: %.500s", text(doc))
	}
	if got := strings.Join(strings.Fields(doc.Find(`[data-testid="check-ended"] p`).First().Text()), " "); !strings.HasPrefix(got, "The check looked up all 1,100 serial numbers in your tenant on ") ||
		!strings.HasSuffix(got, ": 2 are registered there or on their way in another import, and are ticked to be left out.") {
		t.Errorf("after the check the page says %q", got)
	}
	// The note links to the rows found, 1,100 lines apart.
	found := doc.Find(`[data-testid="found-lines"]`)
	if got := found.Text(); got != "On lines 2, 1101." || found.Find("a").Last().AttrOr("href", "") != "#leave-out-1101" || doc.Find("#leave-out-1101").Length() != 1 {
		t.Errorf("the found lines read %q, linking to %q", got, found.Find("a").Last().AttrOr("href", ""))
	}
}

// The owner stops a long check: what it found by then stays, ticked; the page says how far it
// got; no step is looked up after the one under way; and the check may be started again.
func TestStoppedCheckKeepsWhatItFound(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	d, b, job, doc := slowLongCheck(t)
	before := len(d.emu.Received())
	d.post(b, job+"/check", formValues(t, doc, `form[action$="/check"]`))
	for i := 0; ; i++ {
		_, doc = d.get(b, job)
		if p := doc.Find(`[data-testid="check-progress"]`).Text(); p != "" && !strings.HasPrefix(p, "0 of") {
			break
		} else if i > 1000 {
			t.Fatalf("the first step never showed: %q", p)
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, doc = d.post(b, job+"/stop-check", formValues(t, doc, `form[action$="/stop-check"]`))
	if doc.Find(`[data-testid="checking"]`).Length() != 0 {
		t.Fatalf("still checking after the stop: %.500s", text(doc))
	}
	stopped := doc.Find(`[data-testid="check-stopped"]`).Text()
	if m := regexp.MustCompile(`stopped after ((?:[1-9]|1,0)00) of 1,100 serial numbers`).FindStringSubmatch(stopped); m == nil {
		t.Errorf("the page says: %q", stopped)
	}
	if got := formValues(t, doc, `form[action$="/submit"]`)["leaveOut"]; len(got) != 1 || got[0] != "2" { // the last line was not looked up
		t.Errorf("left out after the stop: %v, want line 2, found by the first step", got)
	}
	if doc.Find(`form[action$="/check"]`).Length() != 1 {
		t.Error("the check is not offered again")
	}
	// The step under way ends; none follows it.
	time.Sleep(3 * time.Second)
	sent, _ := batchPosts(d.emu, before)
	time.Sleep(time.Second)
	if again, _ := batchPosts(d.emu, before); again != sent || sent >= 55 {
		t.Errorf("after the stop: %d batches, then %d; a whole check takes 55", sent, again)
	}
	if _, doc = d.get(b, job); doc.Find(`[data-testid="already-registered"]`).Length() != 1 {
		t.Errorf("the step under way at the stop wrote its findings: %.500s", text(doc))
	}
}

// A desk that dies just after storing a step of a check: restarted on the same data, a checker
// takes the check over once its lease runs out and goes on from the next step, asking Graph only
// for the serials not looked up yet, and the check ends with the findings of every step.
func TestCheckTakenOverGoesOnFromItsLastStep(t *testing.T) {
	hook, fired := stopOnce(importer.FaultCheckStepRecorded)
	cl := startClusterWith(t, clusterOptions{sqlite: true, app: appOptions{ImportFault: hook, ImportLease: 2 * time.Second}})
	d := cl.onDesks("A")
	b := d.signedInBrowser("admin", cl.browser)
	job := longCheck(t, d, b)
	_, doc := d.get(b, job)
	d.post(b, job+"/check", formValues(t, doc, `form[action$="/check"]`))
	waitFired(t, fired)
	seen := len(cl.emu.Received())
	if batches, _ := batchPosts(cl.emu, 0); batches != 5 {
		t.Fatalf("%d batches before the crash, want the first step's 5", batches)
	}
	cl.stop("A")
	cl.start("A2")
	cl.via("A2")
	doc = checkEnded(t, d, b, job)
	if batches, others := batchPosts(cl.emu, seen); batches != 50 || others != 0 {
		t.Errorf("after the restart: %d batches and %d other requests, want 50 for the 1,000 serials not looked up yet", batches, others)
	}
	if got := doc.Find(`[data-testid="already-registered"]`).Length(); got != 2 {
		t.Errorf("%d rows found registered, want the first (found before the crash) and the last: %.500s", got, text(doc))
	}
}

// Two desks on one PostgreSQL: 40 concurrent "Check serials" posts of one draft, split between
// the desks and five sessions, start one check; the checker taking it dies after its first step,
// and a checker takes it over through the lease. Every serial is asked for exactly once.
func TestCheckOnTwoDesksSharingPostgres(t *testing.T) {
	// Not beside other long tests: its two-second leases are the point, and a starved process
	// would lose them for reasons of its own.
	hook, fired := stopOnce(importer.FaultCheckStepRecorded)
	cl := startClusterWith(t, clusterOptions{app: appOptions{ImportFault: hook, ImportLease: 2 * time.Second},
		shape: func(o *demo.Options) {
			o.Emulator.Faults = emulator.Faults{LatencyMin: 20 * time.Millisecond, LatencyMax: 20 * time.Millisecond}
		}})
	d := cl.onDesks("A", "B")
	browsers := d.signedIn(5, "admin", cl.browser)
	job := longCheck(t, d, browsers[0])
	before := len(cl.emu.Received())
	statuses := postAtOnce(t, 40, []string{cl.replicas["A"].URL, cl.replicas["B"].URL}, cl.lb.URL, browsers, job+"/check", func(b *http.Client) url.Values {
		_, doc := d.get(b, job)
		return formValues(t, doc, `form[action$="/check"]`)
	})
	if statuses[http.StatusSeeOther] != 40 {
		t.Errorf("the posts were answered %v, want 40 redirects to the job's page", statuses)
	}
	doc := checkEnded(t, d, browsers[0], job)
	if !fired.Load() {
		t.Error("no checker was stopped: the takeover was not exercised")
	}
	if batches, others := batchPosts(cl.emu, before); batches != 55 || others != 0 {
		t.Errorf("1,100 serials took %d batches and %d other requests, want 55 and none", batches, others)
	}
	if got := doc.Find(`[data-testid="already-registered"]`).Length(); got != 2 || doc.Find(`[data-testid="check-ended"]`).Length() != 1 {
		t.Errorf("%d rows found registered, want 2: %.500s", got, text(doc))
	}
}

// A file whose every row has a problem has no serial to look up: a post to check it (the page
// offers none) starts nothing and asks Graph nothing.
func TestCheckOfAFileWithoutAValidRowStartsNothing(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	job := draftOf(t, d, b, serialsCSV([]string{"", ""})) // no serial number: both rows refused
	_, doc := d.get(b, job)
	if doc.Find(`form[action$="/check"]`).Length() != 0 {
		t.Fatal("the check is offered for a file without a valid row")
	}
	before := len(d.emu.Received())
	_, doc = d.post(b, job+"/check", url.Values{"_csrf": {doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")}})
	if doc.Find(`[data-testid="checking"], [data-testid="check-ended"]`).Length() != 0 || len(d.emu.Received()) != before {
		t.Errorf("a check of nothing: %d requests to Graph, the page says %.400s", len(d.emu.Received())-before, text(doc))
	}
}

// Intune's budget runs out for longer than one Graph call may wait (here a call has a second,
// and Graph asks for up to three): the check waits between steps as long as Graph asked, the page
// says so meanwhile, nothing is sent before Graph's Retry-After, and the check ends with every
// serial looked up.
func TestCheckWaitsOutGraphsThrottling(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_GRAPH_TIMEOUT": "1s"})
	b := d.browser()
	d.signIn(b, "admin", "/")
	job := longCheck(t, d, b)
	_, doc := d.get(b, job)
	d.emu.SetFaults(emulator.Faults{ThrottleRequests: 400, ThrottleWindow: 3 * time.Second, PunishEarlyRetry: true})
	d.post(b, job+"/check", formValues(t, doc, `form[action$="/check"]`))
	waited := false
	for i := 0; ; i++ {
		_, doc = d.get(b, job)
		if doc.Find(`[data-testid="checking"] [data-testid="waiting"]`).Length() == 1 {
			waited = true
		}
		if doc.Find(`[data-testid="checking"]`).Length() == 0 {
			break
		}
		if i > 3000 {
			t.Fatalf("the check never ended: %.500s", text(doc))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := d.emu.Stats(); !waited || st.Throttled == 0 || st.Punished != 0 {
		t.Errorf("the page said the check waited: %v; %d throttled, %d sent before their Retry-After", waited, st.Throttled, st.Punished)
	}
	if n := doc.Find(`[data-testid="already-registered"]`).Length(); n != 2 || doc.Find(".alert-error").Length() != 0 || doc.Find(`[data-testid="check-ended"]`).Length() != 1 {
		t.Errorf("%d rows found registered after the waits: %.500s", n, text(doc))
	}
}
