package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// smallHashCSV is a portal CSV of n devices named prefix-00001 and so on, with the shortest
// hashes the desk takes (quicker to check than real-sized ones), each row's user set to user.
func smallHashCSV(prefix string, n int, user string) []byte {
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	hash := make([]byte, 1000)
	for i := range n {
		rand.Read(hash)
		w.Write([]string{fmt.Sprintf("%s-%05d", prefix, i+1), "", base64.StdEncoding.EncodeToString(hash), "Sales", user})
	}
	w.Flush()
	return file.Bytes()
}

// formSize is the size of form as a browser sends it.
func formSize(form url.Values) int { return len(form.Encode()) }

// A file at the row limit, every row ticked "Leave out" by "Tick all": the desk reads the whole
// form (more values than net/url takes at once) and answers with its own words; with a few rows
// unticked those are imported.
func TestImportFormOfEveryRowAtTheRowLimit(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	const rows = 10000
	job := draftOf(t, d, b, smallHashCSV("SN-TICK", rows, ""))
	form := submitForm(t, d, b, job)
	for line := 2; line <= rows+1; line++ {
		form.Add("leaveOut", strconv.Itoa(line))
	}
	t.Logf("every row ticked: %d bytes", formSize(form))
	resp, doc := d.post(b, job+"/submit", form)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(text(doc), "No valid row was chosen") {
		t.Fatalf("every row ticked: %d %.400s", resp.StatusCode, text(doc))
	}
	if got := doc.Find(`input[name="leaveOut"][checked]`).Length(); got != rows {
		t.Errorf("the page came back with %d rows ticked, want %d", got, rows)
	}
	form["leaveOut"] = form["leaveOut"][10:]
	resp, doc = d.post(b, job+"/submit", form)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != job {
		t.Fatalf("ten rows unticked: %d at %s: %.400s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	doc = waitFinished(t, d, b, job)
	if s := doc.Find(`[data-testid="progress-summary"]`).Text(); !strings.Contains(s, "10 imported") {
		t.Errorf("summary: %s", s)
	}
}

// The fix form of a file whose every row has a problem, as the page offers it, is read whole.
func TestFixFormOfManyRowsIsRead(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	const rows = 2500 // five fields a row: more values than net/url takes at once
	job := draftOf(t, d, b, smallHashCSV("SN-FIX", rows, "not a user"))
	_, doc := d.get(b, job)
	form := formValues(t, doc, `form[action$="/fix"]`)
	fixed := 0
	for k := range form {
		if strings.HasSuffix(k, "-user") {
			form.Set(k, "kim@contoso.example")
			fixed++
		}
	}
	if fixed != rows {
		t.Fatalf("the fix form offers %d rows, want %d", fixed, rows)
	}
	t.Logf("fix form: %d bytes", formSize(form))
	resp, doc := d.post(b, job+"/fix", form)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != job {
		t.Fatalf("fix: %d at %s: %.400s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	if doc.Find(`form[action$="/fix"]`).Length() != 0 {
		t.Errorf("rows still to fix after the corrections: %.400s", text(doc))
	}
	if got := doc.Find(`[data-testid="import-button"]`).Text(); !strings.Contains(got, "2,500") {
		t.Errorf("import button: %q", got)
	}

	// Without a session, a form of that route is read only as far as a sign-in keeps forms: a
	// signed-out client cannot make the desk hold megabytes.
	big := url.Values{"note": {strings.Repeat("x", 1<<20)}}
	resp, err := d.srv.Client().Post(d.srv.URL+job+"/fix", "application/x-www-form-urlencoded", strings.NewReader(big.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("a signed-out megabyte to the fix form answered %d", resp.StatusCode)
	}
}

// The longest list, every device ticked with "Select all on this page": the list says that a
// bulk change takes fewer, and sending them is answered with that, not with a refusal of size.
func TestBulkOfTheLongestListSaysHowManyItTakes(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-MANY", 2000)
	_, doc := d.get(b, "/devices?pages=20")
	if got := doc.Find(`#bulk-form input[name="device"]`).Length(); got != 2000 {
		t.Fatalf("the list shows %d devices", got)
	}
	if note := doc.Find(`[data-testid="bulk-limit"]`).Text(); !strings.Contains(note, "at most 1,000 devices") {
		t.Errorf("the list does not say how many devices a bulk change takes: %q", note)
	}
	for n, words := range map[int]string{1500: "1,500", 2000: "2,000"} {
		form := formValues(t, doc, `#bulk-form`)
		form["device"] = ids[:n]
		resp, page := d.post(b, "/devices/bulk", form)
		want := "A bulk change takes at most 1,000 devices; you ticked " + words + "."
		if resp.StatusCode == http.StatusRequestEntityTooLarge || !strings.Contains(text(page), want) {
			t.Errorf("%d ticked (%d bytes): %d %s %.400s", n, formSize(form), resp.StatusCode, resp.Request.URL, page.Find(`[data-testid="form-errors"]`).Text())
		}
	}
	// Far more than any list shows is refused for its size, in words that fit the bulk form.
	form := formValues(t, doc, `#bulk-form`)
	for i := range 3000 {
		form.Add("device", fmt.Sprintf("00000000-0000-4000-8000-%012d", i))
	}
	resp, page := d.post(b, "/devices/bulk", form)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text(page), "tick at most 1,000 devices") || strings.Contains(text(page), "split the file") {
		t.Errorf("3,000 ticked: %d %.400s", resp.StatusCode, text(page))
	}
}

// afterSessionEnded posts form to path from page once b's session has ended, signs in again and
// returns the page the sign-in returns to.
func afterSessionEnded(t *testing.T, d *desk, b *http.Client, page, path string, form url.Values) *goquery.Document {
	t.Helper()
	d.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}
	defer func() { b.CheckRedirect = nil }()
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", d.srv.URL)
	req.Header.Set("Referer", d.srv.URL+page)
	resp, err := b.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Request.URL.RequestURI() != page {
		t.Fatalf("after the sign-in: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	return parse(t, resp)
}

// A bulk change of the most devices it takes, sent once the session had ended, is kept through
// the sign-in: the list says nothing was sent and the devices are ticked again. One too large to
// keep is not silently lost: the list says it was not sent and must be chosen again.
func TestBulkChoiceKeptThroughASignIn(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-KEEP", 2000)
	_, doc := d.get(b, "/devices?pages=20")
	form := formValues(t, doc, `#bulk-form`)
	form.Set("action", "unassign-user")
	form["device"] = ids[:1000]
	t.Logf("1,000 devices ticked: %d bytes", formSize(form))
	doc = afterSessionEnded(t, d, b, "/devices?pages=20", "/devices/bulk", form)
	if doc.Find(`[data-testid="form-restored"]`).Length() != 1 {
		t.Errorf("no word that nothing was sent: %.300s", text(doc))
	}
	if got := doc.Find(`#bulk-form input[name="device"][checked]`).Length(); got != 1000 {
		t.Errorf("%d devices ticked again, want 1000", got)
	}

	form = formValues(t, doc, `#bulk-form`)
	form["device"] = ids
	doc = afterSessionEnded(t, d, b, "/devices?pages=20", "/devices/bulk", form)
	if got := doc.Find(`[data-testid="form-restored"][data-why="too-large"]`).Text(); !strings.Contains(got, "Nothing was sent") || !strings.Contains(got, "too much to keep") {
		t.Errorf("a choice too large to keep is lost without a word: %.300s", text(doc))
	}
	if got := doc.Find(`#bulk-form input[name="device"][checked]`).Length(); got != 0 {
		t.Errorf("%d devices ticked", got)
	}
}

// Unassigning the user of devices some of which have none: those are left out of the change, the
// review says how many, and Graph receives a write only for the devices that have a user.
func TestBulkUnassignLeavesOutDevicesWithoutAUser(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	devices := make([]emulator.AutopilotDevice, 5)
	ids := make([]string, 5)
	for i := range devices {
		devices[i] = emulator.AutopilotDevice{SerialNumber: fmt.Sprintf("SN-NOUSER-%d", i+1), Manufacturer: "Dell Inc.", Model: "Latitude 5440", EnrollmentState: "notContacted"}
		if i < 3 {
			devices[i].UserPrincipalName = fmt.Sprintf("user%d@contoso.example", i+1)
		}
		ids[i] = emulator.AutopilotDeviceID(devices[i].SerialNumber)
	}
	d.emu.SeedAutopilotDevices(demoidp.DemoTenantID, devices...)
	job := d.bulkDraft(b, "unassign-user", "", ids...)
	_, doc := d.get(b, "/devices/bulk/"+job)
	if got := doc.Find(`[data-testid="bulk-count"]`).Text(); !strings.Contains(got, "The user will be unassigned from 3 devices.") {
		t.Errorf("the review counts: %q", got)
	}
	if got := doc.Find(`[data-testid="bulk-no-user"]`).Text(); !strings.Contains(got, "2 of the 5 devices you ticked have no user assigned") ||
		!strings.Contains(got, "SN-NOUSER-4") || !strings.Contains(got, "SN-NOUSER-5") {
		t.Errorf("the review does not say which devices are left out: %q", got)
	}
	if n := doc.Find(`[data-testid="bulk-devices"] tbody tr`).Length(); n != 3 {
		t.Errorf("the review lists %d devices to change", n)
	}
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	doc = waitBulk(t, d, b, job)
	writes := writesPerDevice(t, d.emu)
	for i, id := range ids {
		if want := map[bool]int{true: 1, false: 0}[i < 3]; writes[strings.ToLower(id)] != want {
			t.Errorf("device %s (user %q) got %d writes", devices[i].SerialNumber, devices[i].UserPrincipalName, writes[strings.ToLower(id)])
		}
	}
	if !strings.Contains(doc.Find(`[data-testid="bulk-no-user"]`).Text(), "2 of the 5 devices") {
		t.Errorf("the finished change does not say which devices were left out: %.300s", text(doc))
	}
	_, page := d.get(b, "/devices/"+ids[4])
	if strings.Contains(page.Find(`[data-testid="history"]`).Text(), "nassign") {
		t.Errorf("a device without a user has an unassignment in its history: %s", page.Find(`[data-testid="history"]`).Text())
	}

	// Only devices without a user: nothing to prepare.
	_, list := d.get(b, "/devices")
	form := formValues(t, list, `#bulk-form`)
	form.Set("action", "unassign-user")
	form["device"] = ids[3:]
	_, page = d.post(b, "/devices/bulk", form)
	if !strings.Contains(text(page), "None of the ticked devices has a user assigned") {
		t.Errorf("only devices without a user: %.400s", text(page))
	}
}

// A change still running is always on the Bulk changes list, however many finished after it;
// the finished ones are listed 50 at a time, newest first, with a way to the older ones. Counts
// of devices read with thousands separators.
func TestBulkChangesListKeepsRunningChangesAndPagesTheRest(t *testing.T) {
	clk := testkit.NewClockAt(time.Now().Add(-time.Hour))
	d := startDeskWith(t, nil, appOptions{Now: clk.Now})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ctx := t.Context()
	many := make([]store.BulkDevice, 1000)
	for i := range many {
		many[i] = store.BulkDevice{DeviceID: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), Serial: fmt.Sprintf("SN-%04d", i), BulkOutcome: store.BulkOutcome{State: bulk.DeviceQueued}}
	}
	// Its owner is not signed in, so it waits for them and stays running.
	running := &store.BulkJob{TenantID: demoidp.DemoTenantID, ObjectID: "5b7f2c1e-0000-4000-8000-000000000001", ActorName: "Lee Gu", State: bulk.StateSending, Action: bulk.ActionUnassign}
	if err := d.app.db.CreateBulkJob(ctx, running, many); err != nil {
		t.Fatal(err)
	}
	finished := map[string]bool{}
	for i := range 60 {
		clk.Advance(time.Second)
		j := &store.BulkJob{TenantID: demoidp.DemoTenantID, ObjectID: demoidp.AdminObjectID, ActorName: "Adele Vance", State: bulk.StateFinished,
			Action: bulk.ActionGroupTag, GroupTag: fmt.Sprintf("Tag %d", i)}
		if err := d.app.db.CreateBulkJob(ctx, j, many[:1]); err != nil {
			t.Fatal(err)
		}
		finished[j.ID] = true
	}
	ids := func(doc *goquery.Document, table string) []string {
		var out []string
		doc.Find(`[data-testid="` + table + `"] tbody tr a`).Each(func(_ int, s *goquery.Selection) {
			out = append(out, strings.TrimPrefix(s.AttrOr("href", ""), "/devices/bulk/"))
		})
		return out
	}
	_, doc := d.get(b, "/devices/bulk")
	if got := ids(doc, "bulk-running"); len(got) != 1 || got[0] != running.ID {
		t.Fatalf("running changes listed: %v", got)
	}
	if got := strings.TrimSpace(doc.Find(`[data-testid="bulk-running"] tbody td`).Eq(3).Text()); got != "1,000" {
		t.Errorf("devices of the running change: %q", got)
	}
	seen := map[string]bool{}
	first := ids(doc, "bulk-jobs")
	if len(first) != 50 {
		t.Errorf("first page lists %d finished changes", len(first))
	}
	more := doc.Find(`[data-testid="bulk-more"] a`).AttrOr("href", "")
	if more == "" {
		t.Fatalf("no way to the older changes: %.300s", text(doc))
	}
	_, doc = d.get(b, more)
	rest := ids(doc, "bulk-jobs")
	for _, id := range append(first, rest...) {
		if seen[id] || !finished[id] {
			t.Errorf("change %s listed twice or not finished", id)
		}
		seen[id] = true
	}
	if len(seen) != 60 || doc.Find(`[data-testid="bulk-more"]`).Length() != 0 {
		t.Errorf("%d finished changes listed over two pages, want 60", len(seen))
	}
	if got := ids(doc, "bulk-running"); len(got) != 1 {
		t.Errorf("the running change is not on the page of older ones: %v", got)
	}
	if resp, _ := d.get(b, "/devices/bulk?before=nonsense"); resp.StatusCode != http.StatusOK || resp.Request.URL.RawQuery != "" {
		t.Errorf("a broken cursor: %d at %s", resp.StatusCode, resp.Request.URL)
	}
}

// The records of a bulk change's and an import's batches read as parts of the whole change, not
// as changes of their own: "Bulk change of 45 devices: batch 2", "Import of 1,200 devices: batch 2 of 3".
func TestBatchRecordsNameTheirWholeChange(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ids := seedFleet(d.emu, "SN-PARTS", 45)
	job := d.bulkDraft(b, "group-tag", "Kiosk", ids...)
	d.post(b, "/devices/bulk/"+job+"/confirm", confirmForm(t, d, b, job))
	waitBulk(t, d, b, job)
	imp := draftOf(t, d, b, smallHashCSV("SN-PARTS-NEW", 1200, ""))
	d.post(b, imp+"/submit", submitForm(t, d, b, imp))
	waitFinished(t, d, b, imp)

	titles := map[string]int{}
	for _, id := range []string{job, path.Base(imp)} { // a job's records, all of them
		_, doc := d.get(b, "/activity?job="+id)
		doc.Find(`[data-testid="activity-title"]`).Each(func(_ int, s *goquery.Selection) {
			titles[strings.Join(strings.Fields(s.Text()), " ")]++
		})
	}
	for _, want := range []string{"Bulk change of 45 devices: batch 1", "Bulk change of 45 devices: batch 3",
		"Import of 1,200 devices: batch 1 of 3", "Import of 1,200 devices: batch 3 of 3"} {
		if titles[want] != 1 {
			t.Errorf("no record titled %q: %v", want, titles)
		}
	}
	for title := range titles {
		if !strings.Contains(title, "batch") {
			t.Errorf("a batch's record reads as a change of its own: %q", title)
		}
	}
}

// A pre-flight's import form or fix form sent once the session had ended comes back after the
// sign-in: the "Leave out" ticks, or the corrections typed; nothing was sent.
func TestPreflightFormsKeptThroughASignIn(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	data := smallHashCSV("SN-BACK", 4, "")
	data = append(data, []byte("SN-BACK-BAD,,"+base64.StdEncoding.EncodeToString(make([]byte, 1000))+",Sales,not a user\n")...)
	job := draftOf(t, d, b, data)
	form := submitForm(t, d, b, job)
	form["leaveOut"] = []string{"2", "4"}
	doc := afterSessionEnded(t, d, b, job, job+"/submit", form)
	if doc.Find(`[data-testid="form-restored"]`).Length() != 1 {
		t.Errorf("no word that nothing was sent: %.300s", text(doc))
	}
	var ticked []string
	doc.Find(`input[name="leaveOut"][checked]`).Each(func(_ int, s *goquery.Selection) { ticked = append(ticked, s.AttrOr("value", "")) })
	if strings.Join(ticked, ",") != "2,4" {
		t.Errorf("ticked after the sign-in: %v", ticked)
	}

	fix := formValues(t, doc, `form[action$="/fix"]`)
	fix.Set("row-6-user", "kim@contoso.example")
	doc = afterSessionEnded(t, d, b, job, job+"/fix", fix)
	if got := doc.Find(`input[name="row-6-user"]`).AttrOr("value", ""); got != "kim@contoso.example" {
		t.Errorf("the correction typed is not back: %q", got)
	}
}
