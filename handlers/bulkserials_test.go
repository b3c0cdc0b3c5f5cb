package handlers

import (
	"bytes"
	"context"
	"fmt"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/web/store"
)

// serialRegistry is the fake Graph of the serial look-up: the registered devices by serial
// number, and every list of serial numbers it was asked for. fail, when set, answers every look-up.
type serialRegistry struct {
	mu     sync.Mutex
	byTag  map[string]graphclient.AutopilotDevice
	asked  [][]string
	failed error
}

func (f *serialRegistry) LookUpSerials(_ context.Context, _ oauth2.TokenSource, serials []string, where graphclient.SerialSources) ([]graphclient.SerialLookup, []*graphclient.Exchange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.asked = append(f.asked, serials)
	out := make([]graphclient.SerialLookup, len(serials))
	for i, s := range serials {
		out[i].Serial = s
		if f.failed != nil {
			out[i].Err = f.failed
			continue
		}
		if d, ok := f.byTag[strings.ToUpper(s)]; ok && where&graphclient.InRegistered != 0 {
			out[i].Registered = []graphclient.AutopilotDevice{d}
		}
	}
	return out, nil, f.failed
}

// draftJobs keeps the bulk changes a test creates.
type draftJobs struct {
	fakeBulkJobs
	devices []store.BulkDevice
	created int
}

func (f *draftJobs) CreateBulkJob(_ context.Context, j *store.BulkJob, devices []store.BulkDevice) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j.ID, j.Devices = "0199a000-0000-7000-8000-0000000000e1", len(devices)
	f.job, f.devices = *j, devices
	f.created++
	return nil
}

func (f *draftJobs) BulkDevices(context.Context, string) ([]store.BulkDevice, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.devices, nil
}

type serialsRig struct {
	*rig
	graph *serialRegistry
	jobs  *draftJobs
}

func newSerialsRig(t *testing.T, scope string) *serialsRig {
	s := &serialsRig{jobs: &draftJobs{}, graph: &serialRegistry{byTag: map[string]graphclient.AutopilotDevice{}}}
	for i, serial := range []string{"5CG3281JQZ", "7HX2LM3", "PF4BX7QK"} {
		s.graph.byTag[serial] = graphclient.AutopilotDevice{ID: "0199a000-0000-7000-8000-00000000000" + string(rune('1'+i)), SerialNumber: serial,
			Model: "Latitude 5440", GroupTag: "Sales", UserPrincipalName: "adele@contoso.example"}
	}
	s.rig = newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		b := &BulkChanges{Serials: s.graph, Tokens: &fakeTokens{}, Jobs: s.jobs, Keys: &fakeKeys{}, Budget: &fakeBudget{},
			Now: func() time.Time { return s.clock.Now() }, Logger: discardLogger}
		user.GET("/devices/bulk/serials", b.SerialsForm)
		form("/devices/bulk/serials", "/devices/bulk/serials", b.FromSerials)
		user.GET("/devices/bulk/:id", b.Show)
	}).signIn(scope)
	return s
}

// choose posts the serial numbers form: fields, and a file when name is not "".
func (s *serialsRig) choose(fields map[string]string, name, file string) (*http.Response, *goquery.Document) {
	s.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("_csrf", s.csrf)
	for k, v := range fields {
		w.WriteField(k, v)
	}
	if name != "" {
		fw, _ := w.CreateFormFile("file", name)
		fw.Write([]byte(file))
	}
	w.Close()
	resp, page := s.send(http.MethodPost, "/devices/bulk/serials", w.FormDataContentType(), body.Bytes())
	return resp, s.parse(page)
}

// Serial numbers typed and in the portal's CSV become a draft of the devices found, each looked
// up once; the draft names, by line, what was not registered, given twice, blank or not a
// serial number at all.
func TestBulkChangeChosenBySerialNumber(t *testing.T) {
	s := newSerialsRig(t, "")
	typed := "5CG3281JQZ\n\n7hx2lm3, NOPE-1\n5cg3281jqz\n1.23457E+11\n"
	csv := "Device Serial Number,Windows Product ID,Hardware Hash\r\nPF4BX7QK,,T0FBQUFB\r\n,,T0FBQUFB\r\nMISSING-2,,T0FBQUFB\r\n"
	resp, doc := s.choose(map[string]string{"serials": typed, "action": "group-tag", "groupTag": "Wave 2"}, "devices.csv", csv)
	loc := redirected(t, resp, "/devices/bulk/")
	if len(s.graph.asked) != 1 || strings.Join(s.graph.asked[0], " ") != "5CG3281JQZ 7hx2lm3 NOPE-1 PF4BX7QK MISSING-2" {
		t.Fatalf("looked up %q: %s", s.graph.asked, testkit.Text(doc))
	}
	if s.jobs.job.Action != bulk.ActionGroupTag || s.jobs.job.GroupTag != "Wave 2" || len(s.jobs.devices) != 3 || s.jobs.job.State != bulk.StateDraft {
		t.Fatalf("the draft: %+v with %d devices", s.jobs.job, len(s.jobs.devices))
	}
	_, doc = s.get(loc)
	found := doc.Find(`[data-testid="bulk-serials"]`)
	for _, want := range []string{
		"5 serial numbers were looked up in Autopilot; 2 are not registered there",
		"NOPE-1, MISSING-2",
		"Line 5: Serial number \"1.23457E+11\" looks like a number that Excel turned into scientific notation",
		"Line 3 of devices.csv: this row has no serial number.",
		"Line 4: 5cg3281jqz repeats line 1; it was looked up once.",
		"Blank, skipped: line 2.",
	} {
		if !strings.Contains(testkit.Text(doc), want) {
			t.Errorf("the draft does not say %q: %s", want, found.Text())
		}
	}
	if n := doc.Find(`[data-testid="bulk-devices"] tbody tr`).Length(); n != 3 || doc.Find(`form[action$="/confirm"]`).Length() != 1 {
		t.Errorf("the draft lists %d devices: %s", n, testkit.Text(doc))
	}
}

// Every refusal shows the form again with the serial numbers as typed, and sends nothing more.
func TestSerialNumbersTypedAreKeptOnEveryRefusal(t *testing.T) {
	many := strings.Builder{}
	for i := range maxBulkDevices + 1 {
		fmt.Fprintf(&many, "SN-%05d\n", i)
	}
	for name, c := range map[string]struct {
		fields   map[string]string
		fail     error
		status   int
		says     string
		lookedUp int
	}{
		"none given":      {fields: map[string]string{"serials": "  \n", "action": "group-tag"}, status: 422, says: "none was given"},
		"over the limit":  {fields: map[string]string{"serials": many.String(), "action": "unassign-user"}, status: 422, says: "A bulk change takes at most 1,000 devices, and these are 1,001 different serial numbers"},
		"no change":       {fields: map[string]string{"serials": "5CG3281JQZ", "action": "rename"}, status: 422, says: "Choose what to do with the devices found"},
		"tag too long":    {fields: map[string]string{"serials": "5CG3281JQZ", "action": "group-tag", "groupTag": strings.Repeat("x", 201)}, status: 422, says: "at most 200"},
		"none registered": {fields: map[string]string{"serials": "NOPE-1\nNOPE-2", "action": "group-tag"}, status: 422, says: "None of these serial numbers is registered in Autopilot", lookedUp: 1},
		"Graph in trouble": {fields: map[string]string{"serials": "5CG3281JQZ\nNOPE-1", "action": "delete"}, status: http.StatusBadGateway, lookedUp: 1,
			fail: &graphclient.Error{StatusCode: http.StatusBadGateway, Kind: graphclient.KindServer, Code: "BadGateway", Message: "Bad gateway.", RequestID: "44444444-4444-4444-4444-444444444444"},
			says: "The serial numbers could not be looked up"},
	} {
		t.Run(name, func(t *testing.T) {
			s := newSerialsRig(t, "")
			s.graph.failed = c.fail
			resp, doc := s.choose(c.fields, "", "")
			page := testkit.Text(doc)
			if resp.StatusCode != c.status || !strings.Contains(page, c.says) {
				t.Fatalf("%d %s", resp.StatusCode, page)
			}
			if got := doc.Find(`textarea[name="serials"]`).Text(); got != c.fields["serials"] && !(strings.TrimSpace(got) == "" && strings.TrimSpace(c.fields["serials"]) == "") {
				t.Errorf("the serial numbers typed came back as %.80q", got)
			}
			if got := doc.Find(`input[name="groupTag"]`).AttrOr("value", ""); got != c.fields["groupTag"] {
				t.Errorf("the group tag typed came back as %q", got)
			}
			if len(s.graph.asked) != c.lookedUp || s.jobs.created != 0 {
				t.Errorf("%d look-ups, %d drafts", len(s.graph.asked), s.jobs.created)
			}
			if c.fail != nil && !strings.Contains(page, "request-id: 44444444-4444-4444-4444-444444444444") {
				t.Errorf("Graph's ids are not shown: %s", page)
			}
		})
	}
}

// A file the desk cannot read is named, and the page asks for it again.
func TestSerialFileThatIsNotTextIsRefused(t *testing.T) {
	s := newSerialsRig(t, "")
	resp, doc := s.choose(map[string]string{"serials": "5CG3281JQZ", "action": "unassign-user"}, "fleet.xlsx", "PK\x03\x04workbook")
	page := testkit.Text(doc)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "fleet.xlsx: This is an Excel workbook") ||
		!strings.Contains(page, "Choose fleet.xlsx again") || doc.Find(`textarea[name="serials"]`).Text() != "5CG3281JQZ" || len(s.graph.asked) != 0 {
		t.Errorf("%d %s", resp.StatusCode, page)
	}
}

// Someone who may only read sees why, with no form, and a form posted anyway looks nothing up.
func TestSerialNumbersFormIsNotOfferedToReaders(t *testing.T) {
	s := newSerialsRig(t, readOnlyScope)
	if _, doc := s.get("/devices/bulk/serials"); doc.Find(`[data-testid="serials-form"]`).Length() != 0 || doc.Find(`[data-testid="read-only"]`).Length() != 1 {
		t.Errorf("a reader is offered the form: %s", testkit.Text(doc))
	}
	resp, _ := s.choose(map[string]string{"serials": "5CG3281JQZ", "action": "delete"}, "", "")
	if resp.StatusCode != http.StatusForbidden || len(s.graph.asked) != 0 {
		t.Errorf("a reader's form answered %d after %d look-ups", resp.StatusCode, len(s.graph.asked))
	}
}

// A device CSV pasted whole comes back without its hardware hashes, which are never shown: its
// serial numbers are kept, one a line.
func TestPastedHashesAreNotShownBack(t *testing.T) {
	s := newSerialsRig(t, "")
	hash := strings.Repeat("T0FBQUFB", 400)
	pasted := "Device Serial Number,Windows Product ID,Hardware Hash\nNOPE-1,," + hash + "\nNOPE-2,," + hash + "\n"
	resp, doc := s.choose(map[string]string{"serials": pasted, "action": "group-tag"}, "", "")
	page := doc.Text()
	if resp.StatusCode != http.StatusUnprocessableEntity || strings.Contains(page, hash[:200]) {
		t.Fatalf("%d, the hash shown: %v", resp.StatusCode, strings.Contains(page, hash[:200]))
	}
	if got := doc.Find(`textarea[name="serials"]`).Text(); got != "NOPE-1\nNOPE-2" || doc.Find(`[data-testid="hashes-left"]`).Length() != 1 {
		t.Errorf("the serial numbers came back as %q: %s", got, testkit.Text(doc))
	}
}
