package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

func serialsOn(doc *goquery.Document) []string {
	var out []string
	doc.Find(`[data-testid="devices"] tbody tr td a code`).Each(func(_ int, s *goquery.Selection) { out = append(out, s.Text()) })
	return out
}

// The list of registered devices: every column, enrollment states in plain words, paging through
// Graph's nextLink, a serial search in Graph with the exact match first and marked, and filters
// on the desk's side over the pages loaded.
func TestRegisteredDevicesList(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{EmulatorPageSize: 5})
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices"))
	if got := serialsOn(doc); len(got) != 5 {
		t.Fatalf("the first page shows %d devices, want Graph's page of 5", len(got))
	}
	head := strings.Join(strings.Fields(doc.Find(`[data-testid="devices"] thead`).Text()), " ")
	for _, col := range []string{"Serial number", "Manufacturer", "Model", "Group tag", "Assigned user", "Device name", "Enrollment state", "Last contacted"} {
		if !strings.Contains(head, col) {
			t.Errorf("no %s column: %s", col, head)
		}
	}
	first := doc.Find(`[data-testid="devices"] tbody tr`).First()
	if got := first.Find(".badge").Text(); got != "Enrolled" {
		t.Errorf("the first device's state reads %q", got)
	}
	if got := first.Find("time").Text(); got != "2 hours ago" {
		t.Errorf("last contacted reads %q", got)
	}
	more := doc.Find(`[data-testid="more"]`).AttrOr("href", "")
	if more != "/devices?pages=2" {
		t.Fatalf("the next page link is %q", more)
	}
	_, doc = d.get(b, "/devices?pages=4")
	if got := serialsOn(doc); len(got) != 17 || doc.Find(`[data-testid="more"]`).Length() != 0 {
		t.Errorf("four pages show %d devices", len(got))
	}
	if got := doc.Find(`[data-testid="list-summary"]`).Text(); got != "17 registered devices loaded (4 pages)." {
		t.Errorf("summary %q", got)
	}
	// Filters over the pages loaded.
	for query, want := range map[string]int{"pages=4&tag=sales": 5, "pages=4&nouser=1": 11, "pages=4&state=enrolled": 9, "pages=4&notag=1": 4,
		"pages=4&tag=Sales&nouser=1": 2, "tag=Sales": 2} {
		_, doc = d.get(b, "/devices?"+query)
		if got := serialsOn(doc); len(got) != want {
			t.Errorf("%s: %d devices %v, want %d", query, len(got), got, want)
		}
	}
	// A search runs in Graph, contains(serialNumber,…), and puts the exact match first.
	before := len(d.emu.Received())
	_, doc = d.get(b, "/devices?serial=5cg3281jr0")
	got := serialsOn(doc)
	if len(got) != 1 || got[0] != "5CG3281JR0" || doc.Find(`tr.exact [data-testid="exact"]`).Length() != 1 {
		t.Errorf("exact search: %v", got)
	}
	var query string
	for _, r := range d.emu.Received()[before:] {
		if strings.HasSuffix(r.Path, "/windowsAutopilotDeviceIdentities") {
			query = r.RawQuery
		}
	}
	if q, _ := url.QueryUnescape(query); q != "$filter=contains(serialNumber,'5cg3281jr0')" {
		t.Errorf("Graph was asked %q", q)
	}
	d.emu.SeedAutopilotDevices(demoidp.DemoTenantID, emulator.AutopilotDevice{SerialNumber: "X5CG3281JR0", Model: "Latitude 5440"})
	_, doc = d.get(b, "/devices?serial=5CG3281JR0")
	if got := serialsOn(doc); len(got) != 2 || got[0] != "5CG3281JR0" {
		t.Errorf("the exact match is not first: %v", got)
	}
	_, doc = d.get(b, "/devices?serial=NOPE")
	if doc.Find(`[data-testid="no-match"]`).Length() != 1 || !strings.Contains(text(doc), "import the device") {
		t.Errorf("no match: %s", text(doc))
	}
	resp, doc := d.get(b, "/devices?serial="+url.QueryEscape(strings.Repeat("A", 200)))
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(text(doc), "up to 128 characters") {
		t.Errorf("a 200-character search answered %d: %s", resp.StatusCode, text(doc))
	}
}

// The export is the list as filtered, in the Intune admin center's column names, every cell
// formula-safe.
func TestRegisteredDevicesExport(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	d.emu.SeedAutopilotDevices(demoidp.DemoTenantID, emulator.AutopilotDevice{SerialNumber: "=HYPERLINK(\"http://evil.example\")", GroupTag: "Sales",
		Model: "+cmd|' /C calc'!A0", UserPrincipalName: "@SUM(1+9)", DisplayName: "-2+3"})
	_, doc := d.get(b, "/devices?tag=Sales")
	href := doc.Find(`a[download][href^="/devices/export.csv"]`).AttrOr("href", "")
	if href != "/devices/export.csv?tag=Sales" {
		t.Fatalf("export link %q", href)
	}
	resp, err := b.Get(d.srv.URL + href)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.Header.Get("Content-Type") != "text/csv; charset=utf-8" || !strings.Contains(resp.Header.Get("Content-Disposition"), "attachment") {
		t.Errorf("export headers: %v", resp.Header)
	}
	if !bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		t.Errorf("the export does not start with the byte order mark that tells a spreadsheet it is UTF-8")
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0][:9], ","); got != "Serial number,Manufacturer,Model,Group tag,Purchase order,User,Device name,Enrollment state,Last contacted" {
		t.Errorf("header %q", got)
	}
	if len(rows) != 7 {
		t.Errorf("%d rows for the Sales devices, want 6 and the header", len(rows))
	}
	for _, row := range rows[1:] {
		if row[3] != "Sales" {
			t.Errorf("a row outside the filter: %q", row)
		}
		for i, cell := range row {
			if c := strings.TrimLeft(cell, " "); c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("column %q holds a cell a spreadsheet would run: %q", rows[0][i], cell)
			}
		}
	}
	if !strings.Contains(string(body), "'=HYPERLINK") || !strings.Contains(string(body), "'+cmd") || !strings.Contains(string(body), "'@SUM") {
		t.Error("hostile values were dropped instead of neutralised")
	}
	if !strings.Contains(string(body), "Enrolled") || !strings.Contains(string(body), "Not contacted") {
		t.Error("enrollment states are not in plain words")
	}
}

// A device's page: every v1.0 property, the support details of the read, and its history in
// the desk — an import that carried its serial among it.
func TestRegisteredDevicePage(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-PAGE", 1)
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	waitFinished(t, d, b, job)
	var doc *goquery.Document
	var href string
	for i := 0; href == ""; i++ { // the import registers it
		_, doc = d.get(b, "/devices?serial=SN-PAGE-00001")
		href = doc.Find(`[data-testid="devices"] a[href^="/devices/"]`).AttrOr("href", "")
		if i > 200 {
			t.Fatalf("the imported device is not listed: %s", text(doc))
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, doc = d.get(b, href)
	for _, prop := range []string{"id", "groupTag", "purchaseOrderIdentifier", "serialNumber", "productKey", "manufacturer", "model", "enrollmentState",
		"lastContactedDateTime", "addressableUserName", "userPrincipalName", "resourceName", "skuNumber", "systemFamily", "azureActiveDirectoryDeviceId",
		"managedDeviceId", "displayName"} {
		if doc.Find(`[data-property="`+prop+`"]`).Length() != 1 {
			t.Errorf("the page lacks %s", prop)
		}
	}
	if got := doc.Find(`[data-property="groupTag"]`).Text(); got != "Sales" {
		t.Errorf("group tag %q", got)
	}
	support := doc.Find(`[data-testid="read-support"] pre`).Text()
	if !strings.Contains(support, "request-id") || !strings.Contains(support, "200") {
		t.Errorf("support details of the read: %q", support)
	}
	if !strings.Contains(doc.Find(`[data-testid="exchange"]`).Text(), "GET ") {
		t.Error("no exchange of the read")
	}
	history := doc.Find(`[data-testid="history"]`)
	if !strings.Contains(history.Text(), "Import from a CSV file, line 2: imported") || history.Find(`a[href="`+job+`"]`).Length() != 1 {
		t.Errorf("history: %s", history.Text())
	}
	resp, doc := d.get(b, "/devices/7f1b5c2e-3a4d-4e6f-8a9b-0c1d2e3f4a5b")
	if resp.StatusCode != http.StatusNotFound || doc.Find(`[data-testid="missing"]`).Length() != 1 {
		t.Errorf("an unknown device: %d %s", resp.StatusCode, text(doc))
	}
}

// A device's page says its deployment profile as the whole desk reads it from Graph beta, with
// the profiles expanded, for someone whose sign-in grants only the read permission too; the
// exchange the page shows stays the v1.0 read, as the beta answer carries a Surface Hub's
// account password among the device's properties.
func TestDevicePageReadsTheProfileFromBeta(t *testing.T) {
	d := startDesk(t, nil)
	var pending emulator.AutopilotDevice
	for _, dev := range emulator.DemoAutopilotDevices(time.Now()) {
		if dev.ProfileStatus == "pending" {
			pending = dev
		}
	}
	reader := d.browser()
	d.signIn(reader, demoidp.ReadGrantKey, "/")
	_, doc := d.get(reader, "/devices/"+pending.ID)
	profile := doc.Find(`[data-testid="profile"]`)
	if got := strings.TrimSpace(profile.Find(`[data-testid="profile-status"]`).Text()); got != "Assigning" ||
		strings.TrimSpace(profile.Find(`[data-testid="profile-intended"]`).Text()) != pending.IntendedProfile.DisplayName {
		t.Fatalf("profile %q: %s", got, text(doc))
	}
	beta := countReceived(d.emu, func(r emulator.ReceivedRequest) bool {
		return r.Method == http.MethodGet && r.Path == "/beta/deviceManagement/windowsAutopilotDeviceIdentities/"+pending.ID &&
			r.RawQuery == "%24expand=deploymentProfile,intendedDeploymentProfile"
	})
	if ex := doc.Find(`[data-testid="exchange"]`).Text(); beta != 1 || strings.Contains(ex, "/beta/") || strings.Contains(text(doc), "deviceAccountPassword") {
		t.Errorf("%d beta reads; the exchange shown: %s", beta, ex)
	}
}

// Above the devices, the tenant's sync with the Windows Autopilot service as the whole desk reads
// it from Graph beta: someone with the read permission alone sees the times and no Sync; a sync
// asked from the list is recorded and the list then shows it running.
func TestDeviceListShowsAndAsksTheAutopilotSync(t *testing.T) {
	d := startDesk(t, nil)
	reader := d.browser()
	doc := parse(t, d.signIn(reader, demoidp.ReadGrantKey, "/devices"))
	sync := doc.Find(`[data-testid="sync"]`)
	if strings.TrimSpace(sync.Find(`[data-testid="sync-status"]`).Text()) != "Synced" || strings.TrimSpace(sync.Find(`[data-testid="sync-request"]`).Text()) != "Never" ||
		sync.Find(`form[action="/devices/sync"]`).Length() != 0 {
		t.Fatalf("the reader's sync: %s", text(doc))
	}
	admin := d.browser()
	doc = parse(t, d.signIn(admin, "admin", "/devices"))
	form := testkit.FormValues(t, doc, `form[action="/devices/sync"]`)
	resp, _ := d.post(admin, "/devices/sync", form)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/activity/") || postsTo(d.emu, "/windowsAutopilotSettings/sync") != 1 {
		t.Fatalf("sync: %d %s", resp.StatusCode, resp.Request.URL)
	}
	_, doc = d.get(admin, "/devices")
	sync = doc.Find(`[data-testid="sync"]`)
	if strings.TrimSpace(sync.Find(`[data-testid="sync-status"]`).Text()) != "Syncing" || strings.TrimSpace(sync.Find(`[data-testid="sync-request"]`).Text()) == "Never" {
		t.Errorf("after the sync: %s", sync.Text())
	}
	// The reader's look, the admin's from the figures read for it, the admin's after the sync.
	if reads := syncReads(d.emu); reads != 2 {
		t.Errorf("%d reads of the sync, want 2", reads)
	}
}

// syncReads counts the reads of the tenant's Autopilot sync Graph received.
func syncReads(e *emulator.Emulator) int {
	return countReceived(e, func(r emulator.ReceivedRequest) bool {
		return r.Method == http.MethodGet && r.Path == "/beta/deviceManagement/windowsAutopilotSettings"
	})
}

// Paging through the list and looking at it again read the sync once a minute for the whole
// tenant, not once a page: the pages after the first say when it was read. A sync asked from the
// desk is read at once afterwards.
func TestDeviceListReadsTheAutopilotSyncOnceAMinute(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{EmulatorPageSize: 5})
	admin := d.browser()
	doc := parse(t, d.signIn(admin, "admin", "/devices"))
	if doc.Find(`[data-testid="sync-read-at"]`).Length() != 0 {
		t.Errorf("figures just read say when they were read: %s", doc.Find(`[data-testid="sync"]`).Text())
	}
	for pages := 2; pages <= 4; pages++ {
		_, doc = d.get(admin, "/devices?pages="+strconv.Itoa(pages))
	}
	reader := d.browser()
	d.signIn(reader, demoidp.ReadGrantKey, "/devices")
	if reads := syncReads(d.emu); reads != 1 {
		t.Fatalf("%d reads of the sync for five looks at the list within a minute, want 1", reads)
	}
	sync := doc.Find(`[data-testid="sync"]`)
	if strings.TrimSpace(sync.Find(`[data-testid="sync-status"]`).Text()) != "Synced" || sync.Find(`[data-testid="sync-read-at"] time`).Length() != 1 {
		t.Errorf("the fourth page's sync: %s", sync.Text())
	}
	form := testkit.FormValues(t, doc, `form[action="/devices/sync"]`)
	if resp, _ := d.post(admin, "/devices/sync", form); !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		t.Fatalf("sync landed on %s", resp.Request.URL)
	}
	_, doc = d.get(reader, "/devices")
	sync = doc.Find(`[data-testid="sync"]`)
	if syncReads(d.emu) != 2 || strings.TrimSpace(sync.Find(`[data-testid="sync-request"]`).Text()) == "Never" || sync.Find(`[data-testid="sync-read-at"]`).Length() != 0 {
		t.Errorf("after the sync, %d reads; the strip: %s", syncReads(d.emu), sync.Text())
	}
}

// devicePosts counts the writes Graph received for a device outside batches.
func devicePosts(e *emulator.Emulator, id string) int {
	return countReceived(e, func(r emulator.ReceivedRequest) bool {
		return r.Method != http.MethodGet && strings.Contains(r.Path, "/windowsAutopilotDeviceIdentities/"+id)
	})
}

// Changes of one device: each a POST with a one-time key (a second submit sends nothing),
// recorded, shown with its exchange; accepted but not visible yet is said so; Graph's refusal is
// explained with its message and nothing changes.
func TestRegisteredDeviceChanges(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ConsistencyDelay: time.Hour})
	b := d.browser()
	d.signIn(b, "admin", "/")
	demo := emulator.DemoAutopilotDevices(time.Now())
	dev := demo[9] // not contacted, no user
	_, doc := d.get(b, "/devices/"+dev.ID)
	form := formValues(t, doc, `form[action$="/properties"]`)
	if form.Get("formKey") == "" || form.Get("groupTag") != "Sales" {
		t.Fatalf("the properties form: %v", form)
	}
	form.Set("groupTag", "Kiosk")
	form.Set("displayName", "KIOSK-01")
	resp, doc := d.post(b, "/devices/"+dev.ID+"/properties", form)
	if !strings.HasPrefix(resp.Request.URL.RequestURI(), "/devices/"+dev.ID+"?change=") {
		t.Fatalf("the change landed on %s: %s", resp.Request.URL, text(doc))
	}
	accepted := doc.Find(`[data-testid="change-accepted"]`)
	if !strings.Contains(accepted.Text(), "Changed group tag “Sales” → “Kiosk” and device name (none) → “KIOSK-01”") ||
		accepted.Find(`[data-testid="not-visible-yet"]`).Length() != 1 {
		t.Errorf("the result: %s", accepted.Text())
	}
	if got := doc.Find(`[data-property="groupTag"]`).Text(); got != "Sales" {
		t.Errorf("Graph shows %q at once although its registration is eventually consistent", got)
	}
	exchange := doc.Find(`[data-testid="exchange"]`).Text()
	for _, want := range []string{"POST ", "/updateDeviceProperties", "204 No Content", `"groupTag": "Kiosk"`} {
		if !strings.Contains(exchange, want) {
			t.Errorf("the exchange lacks %q", want)
		}
	}
	if n := devicePosts(d.emu, dev.ID); n != 1 {
		t.Errorf("%d writes", n)
	}
	// The same form again: the first result, nothing sent.
	resp, _ = d.post(b, "/devices/"+dev.ID+"/properties", form)
	if !strings.Contains(resp.Request.URL.RawQuery, "change=") || devicePosts(d.emu, dev.ID) != 1 {
		t.Errorf("a second submit: %s, %d writes", resp.Request.URL, devicePosts(d.emu, dev.ID))
	}
	// Recorded with the serial, so the history finds it; the page keeps saying it is on its way.
	if acts, _, _ := d.app.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Action: "device-properties"}); len(acts) != 1 || acts[0].Serial != dev.SerialNumber {
		t.Errorf("activity: %+v", acts)
	}
	_, doc = d.get(b, "/devices/"+dev.ID)
	pending := doc.Find(`[data-testid="pending"]`).Text()
	if !strings.Contains(pending, "Group tag “Kiosk”") || !strings.Contains(pending, "Device name “KIOSK-01”") {
		t.Errorf("pending: %q", pending)
	}
	if !strings.Contains(doc.Find(`[data-testid="history"]`).Text(), "Changed group tag") {
		t.Error("the change is not in the device's history")
	}

	// Assign and unassign a user.
	assign := formValues(t, doc, `form[action$="/user"]`)
	assign.Set("userPrincipalName", "MeganB@contoso.example")
	assign.Set("addressableUserName", "Megan Bowen")
	_, doc = d.post(b, "/devices/"+dev.ID+"/user", assign)
	if !strings.Contains(doc.Find(`[data-testid="change-accepted"]`).Text(), "Assigned MeganB@contoso.example") {
		t.Errorf("assign: %s", text(doc))
	}
	assign = formValues(t, doc, `form[action$="/user"]`)
	assign.Set("userPrincipalName", "not a upn")
	before := devicePosts(d.emu, dev.ID)
	resp, doc = d.post(b, "/devices/"+dev.ID+"/user", assign)
	if resp.StatusCode != http.StatusUnprocessableEntity || devicePosts(d.emu, dev.ID) != before ||
		!strings.Contains(doc.Find(`#userPrincipalName-error`).Text(), "principal name") ||
		formValues(t, doc, `form[action$="/user"]`).Get("userPrincipalName") != "not a upn" {
		t.Errorf("a bad user name: %d, %s", resp.StatusCode, text(doc))
	}

	// A name the admin center refuses is said beside its field; nothing is sent.
	bad := formValues(t, doc, `form[action$="/properties"]`)
	bad.Set("displayName", "THIS-NAME-IS-FAR-TOO-LONG")
	resp, doc = d.post(b, "/devices/"+dev.ID+"/properties", bad)
	if resp.StatusCode != http.StatusUnprocessableEntity || devicePosts(d.emu, dev.ID) != before ||
		!strings.Contains(doc.Find(`#displayName-error`).Text(), "Windows takes at most 15") {
		t.Errorf("a refused name: %d, %s", resp.StatusCode, text(doc))
	}

	// A change Graph refuses: its message, explained; nothing changed.
	bad = formValues(t, doc, `form[action$="/properties"]`)
	bad.Set("displayName", "KIOSK-02")
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{http.StatusBadRequest}, Methods: []string{http.MethodPost}})
	_, doc = d.post(b, "/devices/"+dev.ID+"/properties", bad)
	d.emu.SetFaults(emulator.Faults{})
	if failure := doc.Find(`[data-testid="failure"]`).Text(); !strings.Contains(failure, "Graph refused the values sent") {
		t.Errorf("a refused change: %s", failure)
	}

	// Delete: a confirmation that names serial, model and user; an enrolled device is refused.
	enrolled := demo[0]
	_, doc = d.get(b, "/devices/"+enrolled.ID+"/delete")
	if doc.Find(`[data-testid="delete-serial"]`).Text() != enrolled.SerialNumber || !strings.Contains(doc.Find(`[data-testid="delete-model"]`).Text(), enrolled.Model) ||
		doc.Find(`[data-testid="delete-user"]`).Text() != enrolled.UserPrincipalName {
		t.Errorf("the confirmation: %s", text(doc))
	}
	resp, doc = d.post(b, "/devices/"+enrolled.ID+"/delete", formValues(t, doc, `form[action$="/delete"]`))
	failure := doc.Find(`[data-testid="failure"]`).Text()
	if !strings.Contains(failure, "Graph refused to delete this registration") || !strings.Contains(failure, "nothing was deleted") ||
		!strings.Contains(failure, "is enrolled in Intune") {
		t.Errorf("a refused delete (%s): %s", resp.Request.URL, failure)
	}
	if doc.Find(`[data-testid="properties"]`).Length() != 1 {
		t.Error("the refused device's page lost its properties")
	}
	waiting := demo[12]
	_, doc = d.get(b, "/devices/"+waiting.ID+"/delete")
	_, doc = d.post(b, "/devices/"+waiting.ID+"/delete", formValues(t, doc, `form[action$="/delete"]`))
	if !strings.Contains(doc.Find(`[data-testid="change-accepted"]`).Text(), "Deleted the Autopilot registration") ||
		doc.Find(`[data-testid="not-visible-yet"]`).Length() != 1 {
		t.Errorf("a delete, not visible yet: %s", text(doc))
	}
}

// The demo's reader signs in read-only (what read-only people see and may do is tested in
// handlers); an administrator whose change Graph refuses with 403 becomes read-only until a new
// sign-in.
func TestReadOnlyByScopesAndByGraphsRefusal(t *testing.T) {
	d := startDesk(t, nil)
	dev := emulator.DemoAutopilotDevices(time.Now())[9]
	reader := d.browser()
	doc := parse(t, d.signIn(reader, demoidp.ReadGrantKey, "/devices"))
	if !strings.Contains(doc.Find(`[data-testid="read-only"]`).Text(), "DeviceManagementServiceConfig.Read.All") || doc.Find(`#bulk-form, input[name="device"]`).Length() != 0 {
		t.Errorf("the reader's list: %s", text(doc))
	}
	if len(serialsOn(doc)) != 17 {
		t.Error("the reader does not see the devices")
	}

	// An administrator whose changes Graph refuses with 403 (no Intune role): the first change
	// is sent and explained, then the pages offer no more.
	d.emu.SetFaults(emulator.Faults{Forbid403Nested: true})
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	_, doc = d.get(admin, "/devices/"+dev.ID)
	form := formValues(t, doc, `form[action$="/properties"]`)
	form.Set("groupTag", "Refused")
	_, doc = d.post(admin, "/devices/"+dev.ID+"/properties", form)
	if !strings.Contains(doc.Find(`[data-testid="failure"]`).Text(), "403") && doc.Find(`[data-testid="failure"]`).Length() == 0 {
		t.Errorf("the 403: %s", text(doc))
	}
	if got := doc.Find(`[data-testid="read-only"]`).Text(); !strings.Contains(got, "Microsoft Graph refused your change") {
		t.Errorf("the page after the 403: %q", got)
	}
	if doc.Find(`form[action$="/properties"]`).Length() != 0 {
		t.Error("change controls are still offered after Graph's 403")
	}
	_, doc = d.get(admin, "/devices")
	if doc.Find(`#bulk-form`).Length() != 0 || doc.Find(`[data-testid="read-only"]`).Length() != 1 {
		t.Error("the list still offers bulk changes after Graph's 403")
	}
	// Signing in again forgets it (the person's role may have changed).
	d.emu.SetFaults(emulator.Faults{})
	fresh := d.browser()
	doc = parse(t, d.signIn(fresh, "admin", "/devices/"+dev.ID))
	if doc.Find(`form[action$="/properties"]`).Length() != 1 {
		t.Error("a new sign-in still hides the change controls")
	}
}

// lostAndCleared imports two devices as the admin with Graph's answer lost, then clears the
// tenant's imported device identities, so that only registered devices can tell what became of
// them: the admin's browser, the import's page and its id.
func lostAndCleared(t *testing.T, d *desk, prefix string) (*http.Client, string, string) {
	t.Helper()
	ts := d.adminToken()
	b := d.browser()
	d.signIn(b, "admin", "/")
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	data, _ := deviceCSV(prefix, 2)
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	ctx := context.Background()
	id := strings.TrimPrefix(job, "/devices/import/")
	waitRows(t, d, id, "the batch's answer to be lost", func(c importer.Counts) bool { return c.Unknown == 2 })
	d.emu.SetFaults(emulator.Faults{})
	time.Sleep(20 * time.Millisecond) // an import Intune finishes at once registers its devices
	staged, _, _, err := d.app.graph.ListDeviceIdentities(ctx, ts, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range staged {
		if _, err := d.app.graph.DeleteDeviceIdentity(ctx, ts, s.ID); err != nil {
			t.Fatal(err)
		}
	}
	return b, job, id
}

// A batch whose answer was lost, when the imported identities were cleared meanwhile, is found
// among registered Autopilot devices.
func TestLostImportFoundAmongRegisteredDevices(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond},
		ImportLookupDelays: []time.Duration{time.Hour, 2 * time.Hour}})
	b, job, _ := lostAndCleared(t, d, "SN-GONE")
	_, doc := d.get(b, job)
	d.post(b, job+"/reconcile", formValues(t, doc, `form[action$="/reconcile"]`))
	doc = waitFinished(t, d, b, job)
	if got := doc.Find(`tr[data-verdict="imported"]`).Length(); got != 2 {
		t.Errorf("%d of 2 found among registered devices: %s", got, text(doc))
	}
	if n := importCalls(d.emu); n != 1 {
		t.Errorf("%d import calls", n)
	}
}

// A save sends only the fields typed otherwise than the form showed them: renaming a device from
// a page that shows a group tag changed since (by someone else, or by this person a moment ago,
// not visible yet) never puts the old tag back. After a change, the form shows the values the
// device will have.
func TestASaveSendsOnlyWhatWasTyped(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ConsistencyDelay: time.Hour})
	adele, other := d.browser(), d.browser()
	d.signIn(adele, "admin", "/")
	d.signIn(other, "admin", "/")
	demo := emulator.DemoAutopilotDevices(time.Now())
	dev := demo[9] // group tag Sales
	_, stale := d.get(adele, "/devices/"+dev.ID)

	_, doc := d.get(other, "/devices/"+dev.ID)
	form := formValues(t, doc, `form[action$="/properties"]`)
	form.Set("groupTag", "Kiosk")
	_, doc = d.post(other, "/devices/"+dev.ID+"/properties", form)
	again := formValues(t, doc, `form[action$="/properties"]`)
	if again.Get("groupTag") != "Kiosk" {
		t.Errorf("after the change, the form shows group tag %q, not the one the device will have", again.Get("groupTag"))
	}
	again.Set("displayName", "KIOSK-9")
	_, doc = d.post(other, "/devices/"+dev.ID+"/properties", again)
	if said := doc.Find(`[data-testid="change-accepted"]`).Text(); !strings.Contains(said, "device name") || strings.Contains(said, "group tag") {
		t.Errorf("renaming after a tag change: %s", said)
	}

	rename := formValues(t, stale, `form[action$="/properties"]`)
	rename.Set("displayName", "LOBBY-9")
	_, doc = d.post(adele, "/devices/"+dev.ID+"/properties", rename)
	if said := doc.Find(`[data-testid="change-accepted"]`).Text(); !strings.Contains(said, "“LOBBY-9”") || strings.Contains(said, "Sales") {
		t.Errorf("renaming from a page opened before the tag changed: %s", said)
	}
	sentBack := countReceived(d.emu, func(r emulator.ReceivedRequest) bool {
		return strings.Contains(r.Path, dev.ID+"/updateDeviceProperties") && strings.Contains(string(r.Body), "Sales")
	})
	if sentBack != 0 {
		t.Errorf("the old group tag was sent back %d times", sentBack)
	}
}

// A change Graph refuses keeps what was typed, with Graph's reason beside it; a change whose
// answer was lost names what it asked for, and once a read of the device shows it, the record
// says it was done (found by reading the device), as a bulk change's would.
func TestDeviceChangesKeepWhatWasTypedAndSettleLostAnswers(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, nil, appOptions{Now: clk.Now, ConsistencyDelay: time.Minute})
	b := d.browser()
	d.signIn(b, "admin", "/")
	dev := emulator.DemoAutopilotDevices(time.Now())[9]
	_, doc := d.get(b, "/devices/"+dev.ID)
	form := formValues(t, doc, `form[action$="/properties"]`)
	form.Set("groupTag", "Lobby")
	form.Set("displayName", "LOBBY-FRONT")
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{http.StatusBadRequest}, Methods: []string{http.MethodPost}})
	_, doc = d.post(b, "/devices/"+dev.ID+"/properties", form)
	d.emu.SetFaults(emulator.Faults{})
	kept := formValues(t, doc, `form[action$="/properties"]`)
	if doc.Find(`[data-testid="failure"]`).Length() != 1 || kept.Get("displayName") != "LOBBY-FRONT" || kept.Get("groupTag") != "Lobby" {
		t.Errorf("a refused change kept %v: %s", kept, text(doc))
	}

	kept.Set("displayName", "LOBBY-1")
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	resp, _ := d.post(b, "/devices/"+dev.ID+"/properties", kept)
	d.emu.SetFaults(emulator.Faults{})
	record := resp.Request.URL.Query().Get("change")
	a, err := d.app.db.GetActivity(context.Background(), demoidp.DemoTenantID, record)
	if err != nil || a.Outcome != "outcome-unknown" || !strings.Contains(a.Summary, "group tag “Lobby”, device name “LOBBY-1”") {
		t.Fatalf("the lost answer's record: %+v %v", a, err)
	}
	if _, doc = d.get(b, resp.Request.URL.RequestURI()); doc.Find(`[data-testid="answer-lost"]`).Length() != 0 {
		t.Errorf("the change's own result and the list of lost answers both say it: %s", text(doc))
	}
	_, doc = d.get(b, "/devices/"+dev.ID) // the device does not show the change yet
	if a, _ = d.app.db.GetActivity(context.Background(), demoidp.DemoTenantID, record); a.Outcome != "outcome-unknown" {
		t.Errorf("settled before the device showed the change: %q", a.Summary)
	}
	if lost := doc.Find(`[data-testid="answer-lost"]`).Text(); !strings.Contains(lost, "Group tag “Lobby”") || !strings.Contains(lost, "Device name “LOBBY-1”") {
		t.Errorf("the device's page does not say a change whose answer was lost is awaited: %q", lost)
	}
	if doc.Find(`[data-testid="pending"]`).Length() != 0 {
		t.Errorf("a change whose answer was lost is said to be accepted")
	}
	clk.Advance(2 * time.Minute)
	d.get(b, "/devices/"+dev.ID) // the device shows the change now
	if a, _ = d.app.db.GetActivity(context.Background(), demoidp.DemoTenantID, record); a.Outcome != "success" || !strings.Contains(a.Summary, "found by reading the device") {
		t.Errorf("after a read that shows the change: %s %q", a.Outcome, a.Summary)
	}
}

// While a change of one device waits out Graph's Retry-After within its own request, every other
// write of the tenant's is held from the moment the 429 came: an upload created meanwhile is
// refused by the desk with the time to send again, and Graph punishes nothing.
func TestAChangeWaitingOutThrottlingHoldsOtherWritesAtOnce(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	demo := emulator.DemoAutopilotDevices(time.Now())
	_, doc := d.get(b, "/uploads/new")
	upload := formValues(t, doc, `form[action="/uploads"]`)
	forms := make([]url.Values, 2)
	for i, dev := range demo[9:11] {
		_, doc := d.get(b, "/devices/"+dev.ID)
		forms[i] = formValues(t, doc, `form[action$="/properties"]`)
		forms[i].Set("groupTag", "Held-"+strconv.Itoa(i))
	}
	d.emu.SetFaults(emulator.Faults{ThrottleWrites: 1, ThrottleWindow: 3 * time.Second, PunishEarlyRetry: true})
	d.post(b, "/devices/"+demo[9].ID+"/properties", forms[0]) // the window's one write
	done := make(chan string)
	go func() {
		resp, doc := d.post(b, "/devices/"+demo[10].ID+"/properties", forms[1]) // 429, waited out
		done <- resp.Request.URL.RequestURI() + " " + doc.Find(`[data-testid="change-accepted"]`).Text()
	}()
	for deadline := time.Now().Add(10 * time.Second); d.emu.Stats().Throttled == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("Graph never throttled the second change")
		}
	}
	resp, doc := d.post(b, "/uploads", upload)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(text(doc), "asked the desk to wait") {
		t.Errorf("an upload created during the wait: %d %.300s", resp.StatusCode, text(doc))
	}
	if got := <-done; !strings.Contains(got, "Held-1") {
		t.Errorf("the change that waited: %s", got)
	}
	if st := d.emu.Stats(); st.Punished != 0 {
		t.Errorf("Graph punished %d requests sent before their Retry-After", st.Punished)
	}
}

// A change's result says the device shows it only when the device was read and shows it: a read
// that failed says it could not tell, and a later change of the same value is said to have
// replaced it.
func TestAChangesResultSaysWhatTheReadShows(t *testing.T) {
	d := startDesk(t, nil)
	one, two := d.browser(), d.browser()
	d.signIn(one, "admin", "/")
	d.signIn(two, "admin", "/")
	dev := emulator.DemoAutopilotDevices(time.Now())[9]
	change := func(b *http.Client, tag string) string {
		_, doc := d.get(b, "/devices/"+dev.ID)
		form := formValues(t, doc, `form[action$="/properties"]`)
		form.Set("groupTag", tag)
		resp, _ := d.post(b, "/devices/"+dev.ID+"/properties", form)
		return resp.Request.URL.RequestURI()
	}
	first := change(one, "DC1")
	change(two, "TAB2")
	if _, doc := d.get(one, first); doc.Find(`[data-testid="superseded"]`).Length() != 1 {
		t.Errorf("the first change's result after a later one: %s", doc.Find(`[data-testid="change-accepted"]`).Text())
	}
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodGet}, ErrorStatuses: []int{502}})
	if _, doc := d.get(one, first); doc.Find(`[data-testid="not-read"]`).Length() != 1 {
		t.Errorf("the result when the device cannot be read: %s", doc.Find(`[data-testid="change-accepted"]`).Text())
	}
}

// A delete whose answer was lost says once what it asked, and the device's page lists it as
// awaited until a read shows the registration gone.
func TestALostDeleteIsAwaitedOnTheDevicesPage(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, nil, appOptions{Now: clk.Now, ConsistencyDelay: time.Minute})
	b := d.browser()
	d.signIn(b, "admin", "/")
	waiting := emulator.DemoAutopilotDevices(time.Now())[12]
	_, doc := d.get(b, "/devices/"+waiting.ID+"/delete")
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	resp, _ := d.post(b, "/devices/"+waiting.ID+"/delete", formValues(t, doc, `form[action$="/delete"]`))
	d.emu.SetFaults(emulator.Faults{})
	a, err := d.app.db.GetActivity(context.Background(), demoidp.DemoTenantID, resp.Request.URL.Query().Get("change"))
	if err != nil || a.Outcome != "outcome-unknown" || strings.Contains(a.Summary, "(the registration deleted)") || !strings.Contains(a.Summary, waiting.SerialNumber) {
		t.Errorf("the lost delete's record: %s %q %v", a.Outcome, a.Summary, err)
	}
	_, doc = d.get(b, "/devices/"+waiting.ID)
	if lost := doc.Find(`[data-testid="answer-lost"]`).Text(); !strings.Contains(lost, "Delete the Autopilot registration") {
		t.Errorf("the device's page does not await the lost delete: %s", text(doc))
	}
}

// "Check what Graph has" pressed again and again on an import whose answer was lost: each press
// looks the devices up, but a look asked by hand before the schedule's next does not count, so
// the devices are not given up as "not found" before the schedule's minutes have passed.
func TestImportLooksByHandDoNotUseTheScheduleUp(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Hour, Pending: time.Hour},
		ImportLookupDelays: []time.Duration{time.Hour, 2 * time.Hour}})
	b, job, id := lostAndCleared(t, d, "SN-PRESSED")
	ctx := context.Background()
	received := func() int {
		return len(d.emu.Received())
	}
	for range 4 {
		_, doc := d.get(b, job)
		if doc.Find(`form[action$="/reconcile"]`).Length() == 0 {
			break // nothing left to look for
		}
		before := received()
		d.post(b, job+"/reconcile", formValues(t, doc, `form[action$="/reconcile"]`))
		waitFor(t, "the press's look", func() bool {
			batches, _ := d.app.db.ImportBatches(ctx, id)
			return received() > before && len(batches) == 1 && (batches[0].State != importer.BatchUnknown || batches[0].NotBefore.After(time.Now()))
		})
	}
	rows, _ := d.app.db.ImportRows(ctx, id, store.RowFilter{})
	if c := importer.Count(rows); c.Unknown != 2 {
		t.Errorf("after 4 looks asked by hand within the first hour: %+v", c)
	}
	batches, _ := d.app.db.ImportBatches(ctx, id)
	if batches[0].Lookups != 0 {
		t.Errorf("looks asked by hand counted toward the schedule: %d", batches[0].Lookups)
	}
}
