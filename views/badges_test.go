package views

import (
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
)

// Every badge of every page speaks in the desk's words, capitalised alike: no Graph value and no
// lower-case state on a page. A badge of a Graph enum keeps Graph's value as its title, for
// support; its colour follows what the state means.
func TestBadgesSpeakInOneVoice(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 32, 0, 0, time.UTC)
	var uploads []graphclient.Upload
	for _, s := range graphclient.UploadStatuses {
		uploads = append(uploads, graphclient.Upload{ID: "u-" + s, Status: s})
	}
	var imported []ImportedDevice
	for _, s := range graphclient.DeviceImportStatuses {
		imported = append(imported, ImportedDevice{Serial: "SN-" + s, Status: s})
	}
	var registered []RegisteredRow
	for _, s := range graphclient.EnrollmentStates {
		registered = append(registered, RegisteredRow{ID: "d-" + string(s), Serial: "SN-" + string(s), State: s})
	}
	var entries []ActivityEntry
	for _, o := range explain.Outcomes {
		entries = append(entries, ActivityEntry{ID: o, Action: "create-upload", Outcome: o, At: at})
	}
	var codes []RegistrationCode
	for _, s := range []string{"active", "expired", "revoked", "used"} {
		codes = append(codes, RegistrationCode{ID: s, Created: at, Expires: at, State: s})
	}
	var decided []RegistrationEntry
	for _, s := range []string{"approved", "finished", "rejected", "expired"} {
		decided = append(decided, RegistrationEntry{ID: s, Received: at, State: s, DecidedAt: at, Sent: 2, Imported: 1})
	}
	var recent []ImportListItem
	for _, s := range []string{"draft", "checking", "sending", "finished"} {
		recent = append(recent, ImportListItem{ID: s, Created: at, State: s, Counts: ImportCounts{Rows: 2, Imported: 2}})
	}
	preflight := []ImportRow{{Line: 2}, {Line: 3, Notes: []string{"Padded."}}, {Line: 4, Errors: []string{"No serial."}}, {Line: 5, RegisteredID: "r"},
		{Line: 6, ImportingJob: "j"}, {Line: 7, AlreadyImported: true}, {Line: 8, LeftOutByOwner: true, Errors: []string{"No serial."}}}
	device := &graphclient.AutopilotDevice{ID: "d1", SerialNumber: "SN-1", EnrollmentState: graphclient.EnrollmentNotContacted}
	pages := map[string]*goquery.Document{
		"uploads":      render(t, UploadListPage(testPage, UploadList{Uploads: uploads})),
		"upload":       render(t, UploadDetailPage(testPage, UploadDetail{Upload: &uploads[1], Devices: imported})),
		"devices":      render(t, RegisteredListPage(testPage, RegisteredList{Devices: registered, Loaded: len(registered)})),
		"device":       render(t, RegisteredDevicePage(testPage, RegisteredDevice{ID: "d1", Device: device, History: []HistoryEntry{{At: at, Outcome: explain.Outcome("success")}}})),
		"activity":     render(t, ActivityListPage(testPage, ActivityList{Entries: entries})),
		"registration": render(t, RegistrationPage(testPage, Registration{Now: at, Codes: codes, Recent: decided})),
		"imports":      render(t, ImportStartPage(testPage, ImportStart{Recent: recent})),
		"check":        render(t, ImportJobPage(testPage, ImportJob{ID: "j", State: "draft", IsOwner: true, Rows: preflight})),
		"bulk changes": render(t, BulkListPage(testPage, BulkList{Running: []BulkSummary{{ID: "b1", State: "sending", Created: at}}, Finished: []BulkSummary{{ID: "b2", State: "finished", Created: at}}})),
	}
	raw := map[string]bool{}
	for _, s := range graphclient.UploadStatuses {
		raw[s] = true
	}
	for _, s := range graphclient.DeviceImportStatuses {
		raw[s] = true
	}
	for _, s := range graphclient.EnrollmentStates {
		raw[string(s)] = true
	}
	for _, o := range explain.Outcomes {
		raw[o] = true
	}
	titled := 0
	for name, doc := range pages {
		badges := doc.Find(".badge")
		if badges.Length() == 0 {
			t.Errorf("%s: no badge", name)
		}
		badges.Each(func(_ int, b *goquery.Selection) {
			label := b.Text()
			first, _ := utf8.DecodeRuneInString(label)
			if !unicode.IsUpper(first) || raw[label] || strings.HasPrefix(label, "Other (") {
				t.Errorf("%s: a badge reads %q", name, label)
			}
			if title, ok := b.Attr("title"); ok {
				titled++
				property, value, _ := strings.Cut(title, ": ")
				if !raw[value] || property == "" {
					t.Errorf("%s: the badge %q keeps %q as Graph's value", name, label, title)
				}
			}
		})
	}
	// The uploads, the upload and its devices, the registered devices and the device's subtitle.
	if want := len(graphclient.UploadStatuses) + 1 + len(graphclient.DeviceImportStatuses) + len(graphclient.EnrollmentStates) + 1; titled != want {
		t.Errorf("%d badges keep Graph's value, want %d", titled, want)
	}
	// Colour follows meaning across pages: the same words, the same tone.
	tones := map[string]string{}
	for name, doc := range pages {
		doc.Find(".badge").Each(func(_ int, b *goquery.Selection) {
			class := b.AttrOr("class", "")
			if before, ok := tones[b.Text()]; ok && before != class {
				t.Errorf("%s: %q is %q here and %q elsewhere", name, b.Text(), class, before)
			}
			tones[b.Text()] = class
		})
	}
	for label, class := range map[string]string{"Complete": "badge-ok", "Failed": "badge-bad", "Importing": "badge-info", "Partly imported": "badge-warn",
		"Enrolled": "badge-ok", "Not contacted": "badge-muted", "Succeeded": "badge-ok", "Outcome unknown": "badge-warn", "Needs fixing": "badge-bad"} {
		if !strings.Contains(tones[label], class) {
			t.Errorf("%q is %q, want %s", label, tones[label], class)
		}
	}
}
