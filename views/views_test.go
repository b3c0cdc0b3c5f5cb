package views

import (
	"bytes"
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/a-h/templ"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
)

func render(t *testing.T, c templ.Component) *goquery.Document {
	t.Helper()
	var buf bytes.Buffer
	if err := c.Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, err := goquery.NewDocumentFromReader(&buf)
	if err != nil {
		t.Fatal(err)
	}
	return doc
}

var testPage = Page{Title: "Create upload", Nonce: "n0nce", CSRF: "tok", User: &User{Name: "Adele Vance", UPN: "AdeleV@contoso.example"},
	Assets: Assets{CSS: "/static/app.1.css", JS: "/static/app.1.js", Icon: "/static/favicon.1.svg"}}

func TestUploadFormShowsFieldErrorsAndKeepsValues(t *testing.T) {
	form := UploadForm{
		CreatedDateTimeUtc: "yesterday", Status: "complete", ID: "<not a guid>", FormKey: "key1",
		Errors: map[string]string{"createdDateTimeUtc": "Enter a date and time with its UTC offset.", "id": "Enter the upload ID as a GUID."},
	}
	doc := render(t, UploadFormPage(testPage, form))
	if got := doc.Find("#createdDateTimeUtc").AttrOr("value", ""); got != "yesterday" {
		t.Errorf("date value = %q", got)
	}
	if got := doc.Find("#id").AttrOr("value", ""); got != "<not a guid>" {
		t.Errorf("id value = %q", got)
	}
	if got := doc.Find("#status option[selected]").AttrOr("value", ""); got != "complete" {
		t.Errorf("selected status = %q", got)
	}
	for _, f := range []string{"createdDateTimeUtc", "id"} {
		in := doc.Find("#" + f)
		if in.AttrOr("aria-invalid", "") != "true" || !strings.Contains(in.AttrOr("aria-describedby", ""), f+"-error") {
			t.Errorf("%s is not marked invalid and described by its error", f)
		}
		if doc.Find("#"+f+"-error").Text() == "" {
			t.Errorf("no message at %s", f)
		}
		if doc.Find(`label[for="`+f+`"]`).Length() != 1 {
			t.Errorf("%s has no label", f)
		}
	}
	if doc.Find("#status").AttrOr("aria-invalid", "") == "true" {
		t.Errorf("status marked invalid without an error")
	}
	if doc.Find(`[data-testid="form-errors"] a`).Length() != 2 {
		t.Errorf("error summary does not link each bad field")
	}
	if doc.Find(`input[name="_csrf"]`).AttrOr("value", "") != "tok" || doc.Find(`input[name="formKey"]`).AttrOr("value", "") != "key1" {
		t.Errorf("hidden CSRF token or form key missing")
	}
	if doc.Find("h1").Length() != 1 || doc.Find("main").Length() != 1 {
		t.Errorf("want one h1 and one main landmark")
	}
	if doc.Find("[style]").Length() != 0 {
		t.Errorf("inline style attributes break the CSP")
	}
	doc.Find("script").Each(func(_ int, s *goquery.Selection) {
		if s.AttrOr("nonce", "") != "n0nce" {
			t.Errorf("script without the CSP nonce")
		}
	})
}

func TestResultPageShowsUploadExchangeAndSupport(t *testing.T) {
	ex := &graphclient.Exchange{Attempts: []graphclient.Attempt{{
		Method: "POST", URL: "https://graph.microsoft.com/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads",
		RequestHeader: http.Header{"Authorization": {"Bearer <redacted>"}, "Content-Type": {"application/json"}},
		RequestBody:   []byte(`{"status": "pending"}`), Proto: "HTTP/1.1", StatusCode: 201, Status: "201 Created",
		ResponseHeader: http.Header{"Request-Id": {"req-1"}, "Client-Request-Id": {"crid-1"}, "Date": {"Sat, 28 Nov 2026 12:00:00 GMT"}},
		ResponseBody:   []byte(`{"id": "8d639524-9524-8d63-2495-638d2495638d"}`),
	}}}
	r := Result{ActivityID: "a1", At: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), ActorName: "Adele Vance", ActorUPN: "AdeleV@contoso.example",
		Outcome: "success", Summary: "Created upload 8d639524-9524-8d63-2495-638d2495638d with status pending.",
		Upload:   &graphclient.Upload{ID: "8d639524-9524-8d63-2495-638d2495638d", CreatedDateTimeUtc: "2016-12-31T23:59:45.8788427-08:00", Status: "pending"},
		Support:  graphclient.SupportDetails{Status: 201, RequestID: "req-1", ClientRequestID: "crid-1", Date: "Sat, 28 Nov 2026 12:00:00 GMT", Version: "v1.0"},
		Exchange: ex}
	doc := render(t, ResultPage(testPage, r))
	if got := doc.Find(`[data-testid="upload-id"]`).Text(); got != r.Upload.ID {
		t.Errorf("id = %q", got)
	}
	if got := doc.Find(`[data-testid="upload-created"]`).Text(); got != r.Upload.CreatedDateTimeUtc {
		t.Errorf("created = %q", got)
	}
	req := doc.Find(`[data-testid="request"]`).Text()
	if !strings.Contains(req, "POST https://graph.microsoft.com/v1.0/") || !strings.Contains(req, "Bearer <redacted>") {
		t.Errorf("request view: %s", req)
	}
	if !strings.Contains(doc.Find(`[data-testid="response"]`).Text(), "201 Created") {
		t.Errorf("response view lacks the status line")
	}
	support := doc.Find(`[data-testid="support"] pre`).Text()
	for _, want := range []string{"201", "req-1", "crid-1", "v1.0"} {
		if !strings.Contains(support, want) {
			t.Errorf("support lacks %q: %s", want, support)
		}
	}
	if doc.Find(`[data-testid="failure"]`).Length() != 0 {
		t.Errorf("a success shows a failure panel")
	}
	// The byline is set apart from the sentence before it, not run into its full stop.
	if lede := strings.Join(strings.Fields(doc.Find(".lede").Text()), " "); !strings.Contains(lede, "pending. · Adele Vance (AdeleV@contoso.example) · ") {
		t.Errorf("lede reads %q", lede)
	}
}

// "Sign in again" returns to the page the failure is on, whatever that page is.
func TestFailurePanelSignsInBackToItsPage(t *testing.T) {
	for action, want := range map[explain.Action]string{
		explain.ActionSignInAgain: `href="/auth/login?return_to=%2Fdevices%2F0f2d6e55%3Fpages%3D2"`,
		explain.ActionFreshSignIn: `href="/auth/login?fresh=1&amp;return_to=%2Fdevices%2F0f2d6e55%3Fpages%3D2"`,
	} {
		var buf bytes.Buffer
		f := &Failure{Explanation: explain.Explanation{Title: "Your sign-in has expired", Action: action}}
		if err := FailurePanel("/devices/0f2d6e55?pages=2", f).Render(context.Background(), &buf); err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(buf.String(), want) {
			t.Errorf("action %v: no %s in\n%s", action, want, buf.String())
		}
	}
}

func TestFailurePanelEscapesGraphText(t *testing.T) {
	f := &Failure{Explanation: explain.Explanation{Title: "<script>alert(1)</script>", What: `"><img src=x onerror=alert(1)>`},
		Support: graphclient.SupportDetails{Status: 400, Code: "<b>BadRequest</b>"}}
	var buf bytes.Buffer
	if err := FailurePanel("/", f).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	html := buf.String()
	if strings.Contains(html, "<script>alert") || strings.Contains(html, "<img src=x") || strings.Contains(html, "<b>BadRequest") {
		t.Errorf("Graph text reached the page unescaped:\n%s", html)
	}
}

// graphXSS are values a hostile or broken upstream could return inside Graph fields and messages.
var graphXSS = []string{
	`<script>alert(1)</script>`, `"><img src=x onerror=alert(1)>`, `'><svg onload=alert(1)>`, `javascript:alert(1)`,
	`</style><script>alert(1)</script>`, `</pre><script>alert(1)</script>`, `{{.}}`, "\u202e<script>x</script>",
	`<a href="javascript:alert(1)">x</a>`, `<iframe srcdoc="<script>alert(1)</script>">`,
}

func TestGraphValuesAreEscapedOnEveryPage(t *testing.T) {
	for _, x := range graphXSS {
		ex := &graphclient.Exchange{Attempts: []graphclient.Attempt{{Method: "POST", URL: "https://graph.microsoft.com/v1.0/x",
			RequestHeader: http.Header{"Authorization": {"Bearer <redacted>"}}, RequestBody: []byte(x), StatusCode: 400, Status: "400 " + x,
			ResponseHeader: http.Header{"Request-Id": {x}}, ResponseBody: []byte(x)}}}
		fail := &Failure{Explanation: explain.Explanation{Title: x, What: x, NextStep: x}, Support: graphclient.SupportDetails{Code: x, RequestID: x}, Exchange: ex}
		up := graphclient.Upload{ID: x, CreatedDateTimeUtc: x, Status: x}
		pages := map[string]templ.Component{
			"result":   ResultPage(testPage, Result{Summary: x, ActorName: x, ActorUPN: x, Upload: &up, Failure: fail, Exchange: ex}),
			"form":     UploadFormPage(testPage, UploadForm{CreatedDateTimeUtc: x, ID: x, Status: x, Failure: fail, Errors: map[string]string{"id": x}}),
			"home":     HomePage(testPage, Home{User: User{Name: x, UPN: x, Tenant: x}, Uploads: []graphclient.Upload{up}}),
			"list":     UploadListPage(testPage, UploadList{Status: x, Uploads: []graphclient.Upload{up}}),
			"detail":   UploadDetailPage(testPage, UploadDetail{Upload: &up, Exchange: ex, Devices: []ImportedDevice{{Serial: x, Status: x, ErrorName: x}}}),
			"activity": ActivityListPage(testPage, ActivityList{Person: x, Entries: []ActivityEntry{{ID: "1", Summary: x, ActorName: x, ActorUPN: x, Outcome: x}}}),
			"import":   ImportJobPage(testPage, ImportJob{ID: "j", State: "draft", FileNotes: []string{x}, Rows: []ImportRow{{Line: 2, Serial: x, Hash: x, GroupTag: x, User: x, Errors: []string{x}}}}),
			"progress": ImportJobPage(testPage, ImportJob{ID: "j", State: "sending", Owner: x, OwnerName: x, Trouble: x, Paused: true,
				Waiting: &ImportWait{Reason: x}, Rows: []ImportRow{{Line: 2, Serial: x, GroupTag: x, User: x, Verdict: x, Outcome: explain.State{Label: x, Graph: x}, Detail: x, ErrorLabel: x, RegistrationID: x}},
				Unknown: []UnknownBatch{{Batch: 1, Explanation: fail.Explanation, Support: fail.Support, ActivityID: "a"}},
				Refused: []RefusedBatch{{Batch: 2, Explanation: fail.Explanation, Support: fail.Support, ActivityID: "b"}}}),
			"finished": ImportJobPage(testPage, ImportJob{ID: "j", State: "finished", Rows: []ImportRow{{Line: 2, Serial: x, Verdict: "error", Outcome: explain.State{Label: x, Meaning: explain.Failed, Graph: x}, Detail: x}}}),
			"error":    ErrorPageView(testPage, ErrorPage{Status: 500, Title: x, Message: x, NextStep: x}),
		}
		for name, page := range pages {
			var buf bytes.Buffer
			if err := page.Render(context.Background(), &buf); err != nil {
				t.Fatal(err)
			}
			html := buf.String()
			if strings.ContainsAny(x, "<>\"'") && strings.Contains(html, x) {
				t.Errorf("%s page: %q appears unescaped", name, x)
			}
			if strings.Contains(strings.ToLower(html), `href="javascript:`) {
				t.Errorf("%s page: a javascript: link", name)
			}
		}
	}
}

// The progress page says when Graph asked to wait, whom the import waits for, and offers one
// main action when a batch's answer was lost — never the import button.
func TestImportProgressExplainsWaits(t *testing.T) {
	j := ImportJob{ID: "j", State: "sending", OwnerName: "Adele Vance", IsOwner: true, Paused: true, RefreshSeconds: 4,
		Waiting: &ImportWait{Reason: "Microsoft Graph is throttling this tenant", For: 8 * time.Second, Until: time.Date(2026, 3, 2, 9, 31, 8, 0, time.UTC)},
		Unknown: []UnknownBatch{{Batch: 2, Devices: 480, Support: graphclient.SupportDetails{Status: 504, RequestID: "r-1"}, ActivityID: "a-1"}},
		Rows:    []ImportRow{{Line: 2, Serial: "SN", Verdict: "queued", Outcome: explain.State{Label: "Queued", Meaning: explain.Moving}, Detail: "In batch 3, waiting to be sent."}}}
	var buf bytes.Buffer
	if err := ImportJobPage(testPage, j).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, _ := goquery.NewDocumentFromReader(&buf)
	if got := doc.Find(`[data-testid="waiting"]`).Text(); !strings.Contains(got, "Microsoft Graph asked the desk to wait 8 seconds") || !strings.Contains(got, "09:31:08 UTC") {
		t.Errorf("waiting: %q", got)
	}
	if got := doc.Find(`[data-testid="paused"]`).Text(); !strings.Contains(got, "continues by itself when Adele Vance signs in again") {
		t.Errorf("paused: %q", got)
	}
	unknown := doc.Find(`[data-testid="outcome-unknown"]`)
	if unknown.Find("button").Length() != 1 || unknown.Find("button").Text() != "Check what Graph has" ||
		!strings.Contains(unknown.Text(), "HTTP 504") || unknown.Find(`a[href="/activity/a-1"]`).Length() != 1 {
		t.Errorf("outcome unknown: %s", unknown.Text())
	}
	if doc.Find(`form[action$="/submit"]`).Length() != 0 || doc.Find(`meta[http-equiv="refresh"]`).Length() != 0 {
		t.Error("an import button, or a refresh the reader cannot stop")
	}
	if doc.Find(`[data-refresh-seconds="4"] a[href="/devices/import/j"]`).Length() != 1 {
		t.Error("no refresh the reader controls")
	}
	if got := doc.Find(`tr[data-verdict="queued"] .badge`).Text(); got != "Queued" {
		t.Errorf("a queued row reads %q", got)
	}
}

// An empty tenant's list leads to the import; a list narrowed to nothing says so and offers the
// way back.
func TestRegisteredListEmptyStates(t *testing.T) {
	doc := render(t, RegisteredListPage(testPage, RegisteredList{}))
	empty := doc.Find(`[data-testid="no-devices"]`)
	if empty.Length() != 1 || empty.Find(`a[href="/devices/import"]`).Text() != "Import devices" {
		t.Errorf("the empty tenant: %s", empty.Text())
	}
	if doc.Find(`#bulk-form, a[download]`).Length() != 0 {
		t.Error("an empty list offers a bulk change or an export")
	}
	doc = render(t, RegisteredListPage(testPage, RegisteredList{Serial: "ZZZ", Loaded: 0}))
	if doc.Find(`[data-testid="no-devices"]`).Length() != 0 || !strings.Contains(doc.Find(`[data-testid="no-match"]`).Text(), "contains “ZZZ”") {
		t.Errorf("a search without matches: %s", doc.Find("main").Text())
	}
}

// Graph's values on the device pages are escaped, and a read-only person gets no change control.
func TestRegisteredDevicePageEscapesAndHidesControls(t *testing.T) {
	d := &graphclient.AutopilotDevice{ID: "7f1b5c2e-3a4d-4e6f-8a9b-0c1d2e3f4a5b", SerialNumber: "<script>x</script>", Model: "<b>m</b>", EnrollmentState: "enrolled"}
	v := RegisteredDevice{ID: d.ID, Device: d, Properties: []Property{{Name: "model", Label: "Model", Value: d.Model}},
		Access: Access{ReadOnly: true, Reason: "Your sign-in grants only reading."}}
	var buf bytes.Buffer
	if err := RegisteredDevicePage(testPage, v).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(buf.String(), "<script>x") || strings.Contains(buf.String(), "<b>m</b>") {
		t.Error("Graph's values are not escaped")
	}
	doc, _ := goquery.NewDocumentFromReader(&buf)
	if doc.Find(`form[action^="/devices/"]`).Length() != 0 || doc.Find(`[data-testid="read-only"]`).Length() != 1 {
		t.Error("a read-only person is offered change controls")
	}
}

// The waiting list and the recent decisions keep words apart that a component and an element
// put side by side: the time a file came and where from, a badge and what it says.
func TestRegistrationCellsKeepTheirWordsApart(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 32, 0, 0, time.UTC)
	entry := RegistrationEntry{ID: "s1", Received: at, ClientIP: "192.0.2.7", State: "rejected", DecidedAt: at,
		Devices: []RegistrationDevice{{Serial: "5CG3021XYZ", Hash: "KcnD…ZWQ=", AlreadyRegistered: true, Registered: "registered in Intune"}}}
	doc := render(t, RegistrationPage(testPage, Registration{Now: at,
		Waiting: []RegistrationCard{{CodeID: "c1", CodeName: "Floor 3", Expires: at.Add(4 * time.Hour), Entries: []RegistrationEntry{entry}}},
		Recent:  []RegistrationEntry{entry}}))
	page := strings.Join(strings.Fields(doc.Find("main").Text()), " ")
	for _, want := range []string{"09:32:00 UTC 192.0.2.7", "Yes registered in Intune"} {
		if n := strings.Count(page, want); n == 0 {
			t.Errorf("%q not on the page:\n%s", want, page)
		}
	}
	if strings.Contains(page, "UTC192.0.2.7") || strings.Contains(page, "Yesregistered") {
		t.Errorf("words run together:\n%s", page)
	}
}

// After a check that found many rows, the note links to the first twenty and counts the rest.
func TestCheckNoteLinksToTheRowsFound(t *testing.T) {
	j := ImportJob{ID: "0199a000-0000-7000-8000-0000000000e5", State: "draft", IsOwner: true, Checked: true,
		LastCheck: &CheckProgress{Done: 30, Of: 30, Found: 25, Ended: time.Now()}}
	for i := range 30 {
		j.Rows = append(j.Rows, ImportRow{Line: i + 2, Serial: "SN", AlreadyImported: i < 25})
	}
	j.Valid = 30
	found := render(t, ImportJobPage(Page{Title: "Import devices"}, j)).Find(`[data-testid="found-lines"]`)
	if n := found.Find("a").Length(); n != 20 || !strings.HasPrefix(found.Text(), "On lines 2, 3, ") || !strings.HasSuffix(found.Text(), ", 21 and 5 more.") {
		t.Errorf("%d links: %q", n, found.Text())
	}
}

// A device page's subtitle keeps the model, the maker and the enrollment badge apart, and leaves
// out what Graph does not know rather than printing a separator with nothing beside it.
func TestDeviceSubtitleKeepsItsWordsApart(t *testing.T) {
	for _, c := range []struct{ model, maker, want string }{
		{"Latitude 5440", "Dell Inc.", "Latitude 5440 · Dell Inc. · Enrolled"},
		{"", "Dell Inc.", "Dell Inc. · Enrolled"},
		{"Latitude 5440", "", "Latitude 5440 · Enrolled"},
		{"", "", "Enrolled"},
	} {
		d := &graphclient.AutopilotDevice{ID: "d1", SerialNumber: "7HX2LM3", Model: c.model, Manufacturer: c.maker, EnrollmentState: graphclient.EnrollmentEnrolled}
		got := strings.Join(strings.Fields(render(t, RegisteredDevicePage(testPage, RegisteredDevice{ID: "d1", Device: d})).Find("p.lede").First().Text()), " ")
		if got != c.want {
			t.Errorf("model %q, maker %q: subtitle %q, want %q", c.model, c.maker, got, c.want)
		}
	}
}

// A finished registration's badge says what its import made of the devices: an import that
// Intune refused for every device is not "imported".
func TestDecidedRegistrationSaysWhatItsImportMade(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 32, 0, 0, time.UTC)
	for _, c := range []struct {
		imported, sent int
		want, tone     string
	}{{1, 1, "Imported", ToneOK}, {0, 1, "Not imported", ToneBad}, {1, 2, "Partly imported", ToneWarn}} {
		e := RegistrationEntry{ID: "s1", Received: at, State: "finished", DecidedBy: "Isaiah Langer", DecidedAt: at, JobID: "j1",
			Imported: c.imported, Sent: c.sent, Devices: []RegistrationDevice{{Serial: "OVR-1"}}}
		badge := render(t, RegistrationPage(testPage, Registration{Now: at, Recent: []RegistrationEntry{e}})).Find(`.badge`).FilterFunction(func(_ int, s *goquery.Selection) bool {
			return strings.Contains(strings.ToLower(s.Text()), "import")
		}).First()
		if badge.Text() != c.want || !badge.HasClass("badge-"+c.tone) {
			t.Errorf("%d of %d imported: badge %q (%s), want %q (%s)", c.imported, c.sent, badge.Text(), badge.AttrOr("class", ""), c.want, c.tone)
		}
	}
}

// Words that a screen reader or a reader runs together are kept apart: the navigation's count
// and what it counts, a badge and the words after it.
func TestRegistrationWordsStayApart(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 32, 0, 0, time.UTC)
	p := testPage
	p.Counts = map[string]int{"registration": 13}
	doc := render(t, RegistrationPage(p, Registration{Now: at,
		Codes: []RegistrationCode{{ID: "c1", Created: at, Expires: at, Uses: 1, State: "revoked", RevokedBy: "Isaiah Langer"},
			{ID: "c2", Created: at, Expires: at.Add(time.Hour), Uses: 1, State: "active"}}}))
	if got := doc.Find(`[data-testid="waiting-count"]`).Text(); got != "(13 waiting for approval)" {
		t.Errorf("the navigation's count reads %q", got)
	}
	if got := strings.Join(strings.Fields(doc.Find(`tr[data-code-state="revoked"]`).Text()), " "); !strings.Contains(got, "Revoked by Isaiah Langer") {
		t.Errorf("the revoked code reads %q", got)
	}
	if got := strings.Join(strings.Fields(doc.Find(`tr[data-code-state="active"]`).Text()), " "); !strings.Contains(got, "Active Revoke") {
		t.Errorf("the active code reads %q", got)
	}
	if got := strings.Join(strings.Fields(doc.Find("header").Text()), " "); !strings.Contains(got, "Signed in as Adele Vance") {
		t.Errorf("the header reads %q", got)
	}
}

// A field marked optional in its label does not say so again in its help.
func TestCodeFormSaysOptionalOnce(t *testing.T) {
	doc := render(t, NewRegistrationCodePage(testPage, NewRegistrationCode{Hours: "4", Uses: "1"}))
	doc.Find(".field").Each(func(_ int, f *goquery.Selection) {
		if strings.Contains(f.Find("label").Text(), "optional") && strings.HasPrefix(strings.ToLower(f.Find(".help").Text()), "optional") {
			t.Errorf("%q says it is optional twice: %q", f.Find("label").Text(), f.Find(".help").Text())
		}
	})
}

// Support details give every time in one form, with its zone: Graph's error date (innerError.date
// is UTC and writes none), an answer's Date header, and for a request that got no answer, when it
// was sent.
func TestSupportDetailsSayTheirTimesInOneForm(t *testing.T) {
	got := supportText(graphclient.SupportDetails{Status: 504, Date: "2026-11-30T12:06:51", ClientRequestID: "c1"})
	if !strings.Contains(got, "Date:               2026-11-30T12:06:51 UTC") {
		t.Errorf("an error's date without its zone:\n%s", got)
	}
	if got := supportText(graphclient.SupportDetails{Date: "Mon, 30 Nov 2026 12:06:51 GMT"}); !strings.Contains(got, "Date:               2026-11-30T12:06:51 UTC") {
		t.Errorf("a response's Date in another form:\n%s", got)
	}
	got = supportText(graphclient.SupportFor(&graphclient.Exchange{Attempts: []graphclient.Attempt{{Start: time.Date(2026, 11, 30, 12, 6, 51, 0, time.UTC),
		RequestHeader: http.Header{"Client-Request-Id": {"c2"}}, Err: "no answer"}}}, nil))
	if !strings.Contains(got, "Sent (no answer):   2026-11-30T12:06:51 UTC") || !strings.Contains(got, "c2") {
		t.Errorf("a request without an answer:\n%s", got)
	}
}

// A createdDateTimeUtc written with an offset other than UTC also says its moment in UTC, as the
// field's name promises; one written in UTC is shown once.
func TestCreatedDateSaysItsMomentInUTC(t *testing.T) {
	for v, want := range map[string]string{
		"2016-12-31T23:59:45.8788427-08:00": " (1 Jan 2017 07:59:45 UTC)",
		"2026-11-29T14:30:00Z":              "",
		"2026-11-29T14:30:00+00:00":         "",
		"not a time":                        "",
	} {
		if got := inUTC(v); got != want {
			t.Errorf("%s: %q, want %q", v, got, want)
		}
	}
}

// The devices list's summary counts in words that agree: no match is said plainly, and "of …
// loaded" only when filters kept fewer than Graph gave.
func TestDevicesListSummaryCounts(t *testing.T) {
	three := make([]RegisteredRow, 3)
	for _, c := range []struct {
		l    RegisteredList
		want string
	}{
		{RegisteredList{Serial: "ZZZ"}, "No registered device matches."},
		{RegisteredList{Serial: "5CG", Devices: three[:1], Loaded: 1}, "1 device matches."},
		{RegisteredList{Serial: "5CG", Devices: three, Loaded: 3}, "3 devices match."},
		{RegisteredList{Serial: "5CG", Devices: three[:1], Loaded: 3, Filtered: true}, "1 device matches of 3 devices loaded. The filters apply to the devices loaded."},
		{RegisteredList{Devices: three, Loaded: 3}, "3 registered devices loaded."},
	} {
		if got := listSummary(c.l); got != c.want {
			t.Errorf("got %q, want %q", got, c.want)
		}
	}
}

// A batch whose looks keep failing says so, and why; a look its owner asked for is acknowledged;
// the page says once that nothing is sent again.
func TestImportProgressSaysLooksAreFailing(t *testing.T) {
	j := ImportJob{ID: "j", State: "sending", OwnerName: "Adele Vance", IsOwner: true, RefreshSeconds: 15,
		Unknown: []UnknownBatch{{Batch: 1, Devices: 3, Lookups: 1, LookFailures: 4, Asked: true,
			LookFailure: explain.Explanation{Title: "Graph did not say whether it worked", What: "The request reached Microsoft Graph but no clear answer came back."},
			Explanation: explain.Explanation{What: "The request reached Microsoft Graph but no clear answer came back. The desk did not send it again."}}}}
	var buf bytes.Buffer
	if err := ImportJobPage(testPage, j).Render(context.Background(), &buf); err != nil {
		t.Fatal(err)
	}
	doc, _ := goquery.NewDocumentFromReader(&buf)
	section := doc.Find(`[data-testid="outcome-unknown"]`)
	if got := section.Find(`[data-testid="looks-failing"]`).Text(); !strings.Contains(got, "The last 4 looks could not be made (Graph did not say whether it worked), so the desk waits longer") {
		t.Errorf("failing looks: %q", got)
	}
	if section.Find(`[data-testid="look-asked"]`).Length() != 1 {
		t.Error("the look asked for is not acknowledged")
	}
	if n := strings.Count(section.Text(), "again"); strings.Contains(section.Text(), "They are not sent again") || n > 2 {
		t.Errorf("the section repeats itself: %s", section.Text())
	}
}

// How long something takes or how often a page updates is said in words, as every wait is
// ("1 minute 35 seconds", not "95 seconds").
func TestWaitsAreSaidInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "a few seconds", 40 * time.Second: "about 40 seconds", 95 * time.Second: "about 1 minute 35 seconds",
		9*time.Minute + 6*time.Second: "about 9 minutes", 150 * time.Minute: "about 2 hours 30 minutes"} {
		if got := estimateText(d); got != want {
			t.Errorf("a change taking %s: %q, want %q", d, got, want)
		}
	}
	for seconds, want := range map[int]string{2: "Update this page every 2 seconds", 90: "Update this page every 1 minute 30 seconds"} {
		if got := strings.Join(strings.Fields(render(t, refreshLine("/devices/import/j", seconds)).Find("label.auto-refresh").Text()), " "); got != want {
			t.Errorf("refreshing every %d seconds reads %q, want %q", seconds, got, want)
		}
	}
}

// A code's waiting devices say how they will be imported in plain words: a code without a group
// tag gives them none, not one called "(none)".
func TestWaitingDevicesSayTheirGroupTagPlainly(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 32, 0, 0, time.UTC)
	for _, c := range []struct{ tag, user, want string }{
		{"", "", "Each device will be imported with no group tag, as the code says."},
		{"Kiosk", "", "Each device will be imported with group tag “Kiosk”, as the code says."},
		{"", "AlexW@contoso.example", "Each device will be imported with no group tag and assigned to AlexW@contoso.example, as the code says."},
	} {
		entry := RegistrationEntry{ID: "s1", Received: at, ClientIP: "192.0.2.7", State: "waiting",
			Devices: []RegistrationDevice{{Serial: "5CG3021XYZ", Hash: "KcnD…ZWQ=", GroupTag: c.tag, User: c.user}}}
		doc := render(t, RegistrationPage(testPage, Registration{Now: at,
			Waiting: []RegistrationCard{{CodeID: "c1", CodeName: "Floor 3", Expires: at.Add(4 * time.Hour), Entries: []RegistrationEntry{entry}}}}))
		var said string
		doc.Find("main p.help").Each(func(_ int, s *goquery.Selection) {
			if text := strings.Join(strings.Fields(s.Text()), " "); strings.HasPrefix(text, "Each device") {
				said = text
			}
		})
		if said != c.want {
			t.Errorf("group tag %q, user %q: %q, want %q", c.tag, c.user, said, c.want)
		}
	}
}

// Every table of the import and registration lists has a name of its own, as a screen reader
// announces it on entering the table, and the lists of a page are told apart by it.
func TestImportAndRegistrationListsNameTheirTables(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 32, 0, 0, time.UTC)
	item := ImportListItem{ID: "0199a000-0000-7000-8000-0000000000e5", Created: at, Owner: "Adele Vance", Mine: true, Source: "devices.csv", State: "draft", Ready: 2}
	entry := RegistrationEntry{ID: "s1", Received: at, ClientIP: "192.0.2.7", State: "rejected", DecidedAt: at, CodeName: "Floor 3",
		Devices: []RegistrationDevice{{Serial: "5CG3021XYZ", Hash: "KcnD…ZWQ="}}}
	for name, doc := range map[string]*goquery.Document{
		"imports":      render(t, ImportStartPage(testPage, ImportStart{Open: []ImportListItem{item}, OpenCount: 1, Recent: []ImportListItem{item}, Total: 1})),
		"older":        render(t, ImportStartPage(testPage, ImportStart{Recent: []ImportListItem{item}, Total: 30, Older: true})),
		"registration": render(t, RegistrationPage(testPage, Registration{Now: at, Recent: []RegistrationEntry{entry}, Importing: []RegistrationEntry{entry}})),
	} {
		seen := map[string]bool{}
		doc.Find("main table").Each(func(i int, table *goquery.Selection) {
			caption := strings.TrimSpace(table.Find("caption").Text())
			if caption == "" || seen[caption] {
				t.Errorf("%s: table %d is named %q", name, i+1, caption)
			}
			seen[caption] = true
		})
		if len(seen) == 0 {
			t.Errorf("%s: no table", name)
		}
	}
}

// The demo's sign-in page says how to use the desk with one's own tenant; a tenant's does not.
func TestDemoSignInSaysHowToUseYourTenant(t *testing.T) {
	if got := render(t, SignInPage(testPage, SignIn{Demo: true})).Find(`[data-testid="leave-demo"]`).Text(); !strings.Contains(got, "Use it with your tenant") {
		t.Errorf("the demo's sign-in page does not lead to a tenant: %q", got)
	}
	if render(t, SignInPage(testPage, SignIn{})).Find(`[data-testid="leave-demo"]`).Length() != 0 {
		t.Error("a tenant's sign-in page speaks of the demo")
	}
}
