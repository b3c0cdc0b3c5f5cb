package views

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
)

// The bulk outcome's summary counts devices found by reading as one or as several.
func TestBulkSummarySaysFoundByReadingInNumber(t *testing.T) {
	for _, tc := range []struct {
		counts BulkCounts
		want   string
	}{
		{BulkCounts{Devices: 3, Final: 3, Done: 3, Reconciled: 1}, "3 changed — 3 devices in all. 1 device was found changed by reading it in Graph after an answer was lost."},
		{BulkCounts{Devices: 17, Final: 17, Done: 14, Unconfirmed: 3, Reconciled: 3}, "14 changed and 3 to check (outcome unknown) — 17 devices in all. 3 devices were found changed by reading them in Graph after an answer was lost."},
		{BulkCounts{Devices: 17, Final: 17, Done: 14, Unconfirmed: 3}, "14 changed and 3 to check (outcome unknown) — 17 devices in all."},
	} {
		if got := bulkSummary(tc.counts, true); got != tc.want {
			t.Errorf("summary of %+v:\n got %s\nwant %s", tc.counts, got, tc.want)
		}
	}
}

// A summary of a bulk change in progress breaks down, after its colon, only the devices it says
// have a final outcome; the others follow after a semicolon, each number with its own verb.
func TestBulkSummaryBreakdownAddsUpToWhatItCounts(t *testing.T) {
	for _, tc := range []struct {
		counts BulkCounts
		want   string
	}{
		{BulkCounts{Devices: 3, Sending: 3}, "0 of 3 devices have a final outcome; 3 are being sent."},
		{BulkCounts{Devices: 1, Queued: 1}, "0 of 1 device has a final outcome; 1 is queued."},
		{BulkCounts{Devices: 5, Final: 2, Done: 1, Refused: 1, Sending: 2, Queued: 1},
			"2 of 5 devices have a final outcome: 1 changed and 1 refused by Graph; 2 are being sent and 1 is queued."},
		{BulkCounts{Devices: 4, Final: 3, Done: 2, NotFound: 1, Unknown: 1},
			"3 of 4 devices have a final outcome: 2 changed and 1 not found; 1 is being read in Graph to find out whether it changed."},
		{BulkCounts{Devices: 2, Final: 2, Done: 2}, "2 of 2 devices have a final outcome: 2 changed."},
		{BulkCounts{Devices: 4, Final: 4, Done: 1, Replaced: 3, ReplacedOnPage: 2},
			"4 of 4 devices have a final outcome: 1 changed, 1 replaced by a later bulk change and 2 replaced by changes on their devices' pages."},
	} {
		if got := bulkSummary(tc.counts, false); got != tc.want {
			t.Errorf("summary of %+v:\n got %s\nwant %s", tc.counts, got, tc.want)
		}
	}
}

// "Intune shows accepted changes" is said only of a bulk change Graph accepted some of.
func TestBulkOutcomeSpeaksOfAcceptedChangesOnlyWhenSomeWere(t *testing.T) {
	job := BulkJob{ID: "j1", State: "finished", Action: "group-tag", GroupTag: "Kiosk", What: "set the group tag to “Kiosk”", Owner: "Adele Vance",
		Devices: []BulkRow{{DeviceID: "d1", Serial: "SN-1", Key: "refused", Outcome: explain.State{Label: "Refused by Graph", Meaning: explain.Failed}}}, Counts: BulkCounts{Devices: 1, Final: 1, Refused: 1}}
	doc := render(t, BulkJobPage(testPage, job))
	if got := doc.Find(`[data-testid="bulk-change"]`).Text(); strings.Contains(got, "accepted changes") || !strings.Contains(got, "set the group tag") {
		t.Errorf("every change refused: %s", got)
	}
	job.Counts = BulkCounts{Devices: 1, Final: 1, Done: 1}
	doc = render(t, BulkJobPage(testPage, job))
	if got := doc.Find(`[data-testid="bulk-change"]`).Text(); !strings.Contains(got, "Intune shows accepted changes") {
		t.Errorf("a change accepted: %s", got)
	}
}

// Devices being read after a restore are not said to be changes whose answer Graph lost: the
// backup the desk was restored from had not sent them.
func TestBulkBeingReadAfterARestoreSaysTheBackupHadNotSentThem(t *testing.T) {
	job := BulkJob{ID: "j1", State: "sending", Action: "group-tag", GroupTag: "Kiosk", What: "set the group tag to “Kiosk”", Owner: "Adele Vance",
		Counts: BulkCounts{Devices: 3, Final: 1, Done: 1, Unknown: 2, Restored: 2}}
	got := render(t, BulkJobPage(testPage, job)).Find(`[data-testid="bulk-unknown"]`).Text()
	if !strings.Contains(got, "restored from a backup that had not sent 2 changes") || strings.Contains(got, "did not say") || strings.Contains(got, "sent again") {
		t.Errorf("changes the restored backup had not sent: %s", got)
	}
	job.Counts.Restored = 1
	got = render(t, BulkJobPage(testPage, job)).Find(`[data-testid="bulk-unknown"]`).Text()
	if !strings.Contains(got, "Microsoft Graph did not say whether 2 changes were made") {
		t.Errorf("changes whose answer was lost, one of them restored: %s", got)
	}
}

// No crumb trail ends in a bare "›": the last crumb names the page.
func TestCrumbTrailsEndWithThePage(t *testing.T) {
	created := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	bulk := BulkJob{ID: "j1", State: "draft", Action: "group-tag", GroupTag: "Kiosk", What: "set the group tag to “Kiosk”", Owner: "Adele Vance", Created: created}
	for name, doc := range map[string]*goquery.Document{
		"bulk draft":    render(t, BulkJobPage(testPage, bulk)),
		"delete":        render(t, DeleteDevicePage(testPage, DeleteDevice{Device: RegisteredRow{ID: "d1", Serial: "SN-1"}})),
		"import":        render(t, ImportJobPage(testPage, ImportJob{ID: "i1", State: "draft", Created: created})),
		"bulk finished": render(t, BulkJobPage(testPage, BulkJob{ID: "j1", State: "finished", Action: "unassign-user", What: "unassign the user"})),
		"device":        render(t, RegisteredDevicePage(testPage, RegisteredDevice{ID: "d1", Serial: "SN-1"})),
	} {
		crumbs := doc.Find(".crumbs")
		if crumbs.Length() == 0 {
			t.Errorf("%s: no crumb trail", name)
			continue
		}
		text := strings.TrimSpace(crumbs.Text())
		if strings.HasSuffix(text, "›") || crumbs.Find(`[aria-current="page"]`).Length() != 1 {
			t.Errorf("%s: the crumb trail is %q", name, text)
		}
	}
	if got := render(t, BulkJobPage(testPage, bulk)).Find(`.crumbs [aria-current="page"]`).Text(); got != "Set the group tag to “Kiosk”" {
		t.Errorf("the bulk change's crumb: %q", got)
	}
}

// A model that already starts with its manufacturer is not preceded by it again.
func TestDeleteConfirmationNamesTheMakerOnce(t *testing.T) {
	for _, tc := range []struct{ maker, model, want string }{
		{"HP", "HP EliteBook 840 14 inch G10 Notebook PC", "HP EliteBook 840 14 inch G10 Notebook PC"},
		{"Dell Inc.", "Latitude 5440", "Dell Inc. Latitude 5440"},
		{"", "Surface Laptop 5", "Surface Laptop 5"},
		{"Microsoft Corporation", "", "Microsoft Corporation"},
		{"hp", "HP ProBook", "HP ProBook"},
	} {
		doc := render(t, DeleteDevicePage(testPage, DeleteDevice{Device: RegisteredRow{ID: "d1", Serial: "SN-1", Manufacturer: tc.maker, Model: tc.model,
			State: graphclient.EnrollmentEnrolled}}))
		if got := strings.TrimSpace(doc.Find(`[data-testid="delete-model"]`).Text()); got != tc.want {
			t.Errorf("%q %q shown as %q", tc.maker, tc.model, got)
		}
		if w := doc.Find(`[data-testid="delete-warning"]`).Text(); !strings.Contains(w, "("+tc.want+")") {
			t.Errorf("the warning names %q %q as: %s", tc.maker, tc.model, w)
		}
	}
}

// The bulk confirmation says its group tags and users are as Graph listed them, not "now".
func TestBulkConfirmationSaysWhenItsValuesWereRead(t *testing.T) {
	job := BulkJob{ID: "j1", State: "draft", Action: "group-tag", GroupTag: "Kiosk", What: "set the group tag to “Kiosk”", Owner: "Adele Vance",
		Created: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC), Devices: []BulkRow{{DeviceID: "d1", Serial: "SN-1", GroupTag: "Sales"}}}
	doc := render(t, BulkJobPage(testPage, job))
	if strings.Contains(doc.Find(`[data-testid="bulk-devices"] thead`).Text(), "now") ||
		!strings.Contains(doc.Find(`[data-testid="bulk-as-listed"]`).Text(), "as Microsoft Graph listed them") {
		t.Errorf("the confirmation: %s", doc.Find("main").Text())
	}
}

// Each bulk change's confirmation says what confirming does, counting the devices.
func TestBulkConfirmationSaysWhatEachChangeDoes(t *testing.T) {
	two := []BulkRow{{DeviceID: "d1", Serial: "SN-1"}, {DeviceID: "d2", Serial: "SN-2"}}
	for _, tc := range []struct {
		action, tag string
		devices     []BulkRow
		want        string
	}{
		{"delete", "", two, "2 device registrations will be deleted."},
		{"delete", "", two[:1], "1 device registration will be deleted."},
		{"unassign-user", "", two, "The user will be unassigned from 2 devices."},
		{"group-tag", "Kiosk", two, "The group tag of 2 devices will be set to “Kiosk”."},
		{"group-tag", "", two[:1], "The group tag of 1 device will be cleared."},
	} {
		job := BulkJob{ID: "j1", State: "draft", Action: tc.action, GroupTag: tc.tag, Owner: "Adele Vance", Devices: tc.devices}
		got := strings.Join(strings.Fields(render(t, BulkJobPage(testPage, job)).Find(`[data-testid="bulk-count"] strong`).Text()), " ")
		if got != tc.want {
			t.Errorf("%s %q: the confirmation says %q, want %q", tc.action, tc.tag, got, tc.want)
		}
	}
}

// The links beside each device of a finished bulk change, and beside each registration being
// imported, say whose record or import they open, for a screen reader's list of links.
func TestRepeatedLinksNameTheirDevice(t *testing.T) {
	job := BulkJob{ID: "j1", State: "finished", Action: "group-tag", GroupTag: "Kiosk", What: "set the group tag to “Kiosk”", Owner: "Adele Vance",
		Devices: []BulkRow{{DeviceID: "d1", Serial: "SN-1", Key: "refused", ActivityID: "a1"}, {DeviceID: "d2", Serial: "SN-2", Key: "refused", ActivityID: "a2"}},
		Counts:  BulkCounts{Devices: 2, Final: 2, Refused: 2}}
	var names []string
	render(t, BulkJobPage(testPage, job)).Find(`[data-testid="bulk-outcome"] a[href^="/activity/"]`).Each(func(_ int, a *goquery.Selection) {
		names = append(names, strings.Join(strings.Fields(a.Text()), " "))
	})
	if got := strings.Join(names, " | "); got != "Record of SN-1 | Record of SN-2" {
		t.Errorf("the records' links read %q", got)
	}

	at := time.Date(2026, 3, 2, 9, 32, 0, 0, time.UTC)
	names = nil
	var entries []RegistrationEntry
	for i, serials := range [][]string{{"5CG3021XYZ"}, {"PF4BX7QK", "PF4BX7QL", "PF4BX7QM"}} {
		e := RegistrationEntry{ID: "s" + string(rune('1'+i)), Received: at, State: "approved", JobID: "j" + string(rune('1'+i)), CodeName: "Floor 3"}
		for _, s := range serials {
			e.Devices = append(e.Devices, RegistrationDevice{Serial: s})
		}
		entries = append(entries, e)
	}
	render(t, RegistrationPage(testPage, Registration{Now: at, Importing: entries})).Find(`[data-testid="importing"] a[href^="/devices/import/"]`).Each(func(_ int, a *goquery.Selection) {
		names = append(names, strings.Join(strings.Fields(a.Text()), " "))
	})
	if got := strings.Join(names, " | "); got != "The import of 5CG3021XYZ | The import of PF4BX7QK and 2 more devices" {
		t.Errorf("the imports' links read %q", got)
	}
}
