package handlers

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/web/store"
)

const deviceID = "9a3f6c2e-1b4d-4e5f-8a6b-7c8d9e0f1a2b"

// fakeAutopilot is the part of Graph the registered-device pages call: one device, and a list of
// the changes asked of it. fail, when set, answers the next change instead.
type fakeAutopilot struct {
	mu      sync.Mutex
	device  graphclient.AutopilotDevice
	fail    []error
	changes []string
	reads   int
	// profile answers GetProfileAssignment; profileErr, when set, instead.
	profile    graphclient.ProfileAssignment
	profileErr error
	// settings answers GetAutopilotSettings; settingsErr, when set, instead.
	settings    graphclient.AutopilotSettings
	settingsErr error
}

func (f *fakeAutopilot) changed() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.changes...)
}

func (f *fakeAutopilot) change(what string) (*graphclient.Exchange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = append(f.changes, what)
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return nil, err
	}
	return nil, nil
}

func (f *fakeAutopilot) ListAutopilotDevices(context.Context, oauth2.TokenSource, graphclient.AutopilotDeviceQuery) (*graphclient.AutopilotDevicePage, *graphclient.Exchange, error) {
	return &graphclient.AutopilotDevicePage{Devices: []graphclient.AutopilotDevice{f.device}}, nil, nil
}

func (f *fakeAutopilot) GetAutopilotDevice(_ context.Context, _ oauth2.TokenSource, id string) (*graphclient.AutopilotDevice, *graphclient.Exchange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reads++
	if id != f.device.ID {
		return nil, nil, graphRefusal(http.StatusNotFound, graphclient.KindNotFound)
	}
	d := f.device
	return &d, nil, nil
}

func (f *fakeAutopilot) GetProfileAssignment(_ context.Context, _ oauth2.TokenSource, id string) (*graphclient.ProfileAssignment, *graphclient.Exchange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.profileErr != nil {
		return nil, nil, f.profileErr
	}
	p := f.profile
	p.ID = id
	return &p, nil, nil
}

func (f *fakeAutopilot) GetAutopilotSettings(context.Context, oauth2.TokenSource) (*graphclient.AutopilotSettings, *graphclient.Exchange, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.settingsErr != nil {
		return nil, nil, f.settingsErr
	}
	s := f.settings
	return &s, nil, nil
}

func (f *fakeAutopilot) UpdateAutopilotDeviceProperties(_ context.Context, _ oauth2.TokenSource, id string, ch graphclient.AutopilotDeviceChange) (*graphclient.Exchange, error) {
	what := "properties " + id
	if ch.GroupTag != nil {
		what += " tag=" + *ch.GroupTag
	}
	if ch.DisplayName != nil {
		what += " name=" + *ch.DisplayName
	}
	return f.change(what)
}

func (f *fakeAutopilot) AssignUserToAutopilotDevice(_ context.Context, _ oauth2.TokenSource, id, upn, name string) (*graphclient.Exchange, error) {
	return f.change("assign " + id + " " + upn + " " + name)
}

func (f *fakeAutopilot) UnassignUserFromAutopilotDevice(_ context.Context, _ oauth2.TokenSource, id string) (*graphclient.Exchange, error) {
	return f.change("unassign " + id)
}

func (f *fakeAutopilot) DeleteAutopilotDevice(_ context.Context, _ oauth2.TokenSource, id string) (*graphclient.Exchange, error) {
	return f.change("delete " + id)
}

func (f *fakeAutopilot) ReadAutopilotDevices(_ context.Context, _ oauth2.TokenSource, ids []string) ([]graphclient.AutopilotDeviceRead, []*graphclient.Exchange, error) {
	var out []graphclient.AutopilotDeviceRead
	for _, id := range ids {
		r := graphclient.AutopilotDeviceRead{ID: id}
		if id == f.device.ID {
			d := f.device
			r.Value = &d
		} else {
			r.Err = graphRefusal(http.StatusNotFound, graphclient.KindNotFound)
		}
		out = append(out, r)
	}
	return out, nil, nil
}

// fakeHistory has no history of any device.
type fakeHistory struct{}

func (fakeHistory) HistoryOfSerial(context.Context, string, string, int) (*store.SerialHistory, error) {
	return &store.SerialHistory{}, nil
}

func (fakeHistory) ListActivity(context.Context, store.ActivityFilter) ([]store.Activity, string, error) {
	return nil, "", nil
}

func (fakeHistory) Registrations(context.Context, store.SubmissionFilter) ([]store.RegistrationSubmission, error) {
	return nil, nil
}

// fakeBudget is a write budget with free slots, or none until busyUntil; holds are kept.
type fakeBudget struct {
	mu        sync.Mutex
	busyUntil time.Time
	held      []time.Time
	answered  int // slots whose writes Graph answered
}

func (f *fakeBudget) Take(_ context.Context, _ string, want int) (bulk.Slots, time.Time, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.busyUntil.IsZero() {
		return bulk.Slots{}, f.busyUntil, nil
	}
	return bulk.Slots{N: want}, time.Time{}, nil
}

func (f *fakeBudget) Answered(context.Context, bulk.Slots, time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.answered++
	return nil
}

func (f *fakeBudget) Hold(_ context.Context, _ string, until time.Time) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.held = append(f.held, until)
	return nil
}

func (f *fakeBudget) Describe() string             { return "100 changes a minute" }
func (f *fakeBudget) Estimate(n int) time.Duration { return time.Duration(n) * time.Second }

type devicesRig struct {
	*rig
	graph    *fakeAutopilot
	activity *fakeActivity
	budget   *fakeBudget
}

func newDevicesRig(t *testing.T, scope string) *devicesRig {
	d := &devicesRig{graph: &fakeAutopilot{device: graphclient.AutopilotDevice{ID: deviceID, SerialNumber: "SN-1", GroupTag: "Sales", Model: "Surface"}},
		activity: &fakeActivity{}, budget: &fakeBudget{}}
	d.rig = newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		now := func() time.Time { return d.clock.Now() } // the rig's clock, once it has one
		h := &Registered{Graph: d.graph, Tokens: &fakeTokens{}, Activity: d.activity, Recorded: d.activity, Keys: &fakeKeys{},
			History: fakeHistory{}, Budget: d.budget, Now: now, Logger: discardLogger}
		user.GET("/devices", h.List)
		user.GET("/devices/:id", h.Show)
		form("/devices/:id/properties", "/devices/:id", h.Properties)
		form("/devices/:id/user", "/devices/:id", h.AssignUser)
		form("/devices/:id/unassign", "/devices/:id", h.UnassignUser)
		user.GET("/devices/:id/delete", h.ConfirmDelete)
		form("/devices/:id/delete", "/devices/:id/delete", h.Delete)
		b := &BulkChanges{Graph: d.graph, Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Budget: d.budget, Now: now, Logger: discardLogger}
		form("/devices/bulk", "/devices", b.Create)
	}).signIn(scope)
	return d
}

// The device's page says which deployment profile it has, whether the Windows Autopilot service
// has it yet, and what that means for setup, as Get-AutopilotDevice -Expand and the admin center
// do; a read-only person sees it too.
func TestDevicePageShowsProfileAssignment(t *testing.T) {
	kiosk := &graphclient.AutopilotDeploymentProfile{ID: "8b7c6d5e-4f3a-4b2c-9d1e-0f1a2b3c4d5e", DisplayName: "Kiosk self-deploying"}
	user := &graphclient.AutopilotDeploymentProfile{ID: "3f2a9c1e-7d4b-4c8e-9a6f-1b2c3d4e5f60", DisplayName: "User-driven"}
	for _, tc := range []struct {
		name, scope string
		profile     graphclient.ProfileAssignment
		status      string
		want        []string
		intended    string
	}{
		{"assigned", "", graphclient.ProfileAssignment{Status: graphclient.ProfileAssignedInSync, Profile: kiosk, IntendedProfile: kiosk,
			AssignedDateTime: "2026-01-15T08:00:00Z"}, "Assigned", []string{"Kiosk self-deploying", "15 Jan 2026 08:00:00 UTC", "next time it runs Windows setup"}, ""},
		{"not synced yet, read only", readOnlyScope, graphclient.ProfileAssignment{Status: graphclient.ProfileAssignedOutOfSync, Profile: kiosk, IntendedProfile: user,
			AssignedDateTime: "0001-01-01T00:00:00Z"}, "Assigned, not synced yet", []string{"Never", "not yet passed it to the Windows Autopilot service"}, "User-driven"},
		{"none", "", graphclient.ProfileAssignment{Status: graphclient.ProfileNotAssigned, DetailedStatus: "none"}, "Not assigned", []string{"—", "Add the device to a group"}, ""},
		{"failed", "", graphclient.ProfileAssignment{Status: graphclient.ProfileFailed, DetailedStatus: "hardwareRequirementsNotMet", IntendedProfile: kiosk},
			"Assignment failed", []string{"TPM 2.0"}, "Kiosk self-deploying"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newDevicesRig(t, tc.scope)
			r.graph.profile = tc.profile
			resp, doc := r.get("/devices/" + deviceID)
			sec := doc.Find(`[data-testid="profile"]`)
			if resp.StatusCode != http.StatusOK || sec.Length() != 1 {
				t.Fatalf("%d %s", resp.StatusCode, testkit.Text(doc))
			}
			if got := strings.TrimSpace(sec.Find(`[data-testid="profile-status"]`).Text()); !strings.Contains(got, tc.status) {
				t.Errorf("status %q, want %q", got, tc.status)
			}
			for _, w := range tc.want {
				if !strings.Contains(sec.Text(), w) {
					t.Errorf("%q not in %q", w, sec.Text())
				}
			}
			if got := strings.TrimSpace(sec.Find(`[data-testid="profile-intended"]`).Text()); got != tc.intended {
				t.Errorf("intended profile %q, want %q", got, tc.intended)
			}
		})
	}
}

// A profile assignment Graph would not give is explained in its own section, with a way to read
// it again; the device's properties and its change controls stay.
func TestDevicePageExplainsAProfileItCouldNotRead(t *testing.T) {
	r := newDevicesRig(t, "")
	r.graph.profileErr = graphRefusal(http.StatusServiceUnavailable, graphclient.KindServer)
	resp, doc := r.get("/devices/" + deviceID)
	failure := doc.Find(`[data-testid="profile-failure"]`)
	if resp.StatusCode != http.StatusOK || failure.Length() != 1 || doc.Find(`[data-testid="profile-status"]`).Length() != 0 ||
		doc.Find(`[data-testid="properties"]`).Length() != 1 || doc.Find(`form[action$="/properties"]`).Length() != 1 {
		t.Fatalf("%d %s", resp.StatusCode, testkit.Text(doc))
	}
	if href, _ := failure.Find(`[data-testid="profile-reload"]`).Attr("href"); href != "/devices/"+deviceID || !strings.Contains(failure.Text(), "could not read the device's profile assignment") {
		t.Errorf("reload %q; %s", href, failure.Text())
	}
}

// The list says when the devices last synced with the Windows Autopilot service and when a sync
// was last asked, as the admin center does above its devices, and offers a sync to those who may
// change devices; a sync status Graph would not give is explained, and the list stands.
func TestDeviceListShowsTheAutopilotSync(t *testing.T) {
	for _, tc := range []struct {
		name, scope       string
		settings          graphclient.AutopilotSettings
		status, last, ask string
	}{
		{"synced", "", graphclient.AutopilotSettings{SyncStatus: graphclient.SyncCompleted, LastSyncDateTime: "2026-03-02T06:30:00Z",
			LastManualSyncTriggerDateTime: "0001-01-01T00:00:00Z"}, "Synced", "2 Mar 2026 06:30:00 UTC", "Never"},
		{"syncing, read only", readOnlyScope, graphclient.AutopilotSettings{SyncStatus: graphclient.SyncInProgress, LastSyncDateTime: "2026-03-02T06:30:00Z",
			LastManualSyncTriggerDateTime: "2026-03-02T09:29:40.1234567Z"}, "Syncing", "2 Mar 2026 06:30:00 UTC", "2 Mar 2026 09:29:40 UTC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newDevicesRig(t, tc.scope)
			r.graph.settings = tc.settings
			resp, doc := r.get("/devices")
			sync := doc.Find(`[data-testid="sync"]`)
			if resp.StatusCode != http.StatusOK || sync.Length() != 1 || doc.Find(`[data-testid="devices"]`).Length() != 1 {
				t.Fatalf("%d %s", resp.StatusCode, testkit.Text(doc))
			}
			for sel, want := range map[string]string{"sync-status": tc.status, "sync-last": tc.last, "sync-request": tc.ask} {
				if got := strings.TrimSpace(sync.Find(`[data-testid="` + sel + `"]`).Text()); got != want {
					t.Errorf("%s reads %q, want %q", sel, got, want)
				}
			}
			offered := sync.Find(`form[action="/devices/sync"] [data-testid="sync-now"]`).Length() == 1
			if offered != (tc.scope == "") {
				t.Errorf("sync offered: %v", offered)
			}
		})
	}
	r := newDevicesRig(t, "")
	r.graph.settingsErr = graphRefusal(http.StatusServiceUnavailable, graphclient.KindServer)
	resp, doc := r.get("/devices")
	if resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="sync-failure"]`).Length() != 1 || doc.Find(`[data-testid="devices"]`).Length() != 1 ||
		doc.Find(`[data-testid="sync-status"]`).Length() != 0 {
		t.Errorf("a sync status Graph would not give: %d %s", resp.StatusCode, testkit.Text(doc))
	}
}

// A change is sent once with what was typed, recorded with the device's serial, and the
// browser goes back to the device's page with the change named; the same form again sends nothing.
func TestDeviceChangeSentOnceAndShownOnTheDevice(t *testing.T) {
	r := newDevicesRig(t, "")
	_, doc := r.get("/devices/" + deviceID)
	form := testkit.FormValues(t, doc, `form[action$="/properties"]`)
	form.Set("groupTag", " Finance ")
	resp, _ := r.post("/devices/"+deviceID+"/properties", form)
	loc := redirected(t, resp, "/devices/"+deviceID+"?change=")
	acts := r.activity.recorded()
	if len(acts) != 1 || loc != "/devices/"+deviceID+"?change="+acts[0].ID || acts[0].Serial != "SN-1" || acts[0].Target != deviceID ||
		!strings.Contains(acts[0].Summary, "“Sales” → “Finance”") {
		t.Fatalf("recorded %+v, redirected to %s", acts, loc)
	}
	if got := r.graph.changed(); len(got) != 1 || got[0] != "properties "+deviceID+" tag=Finance" || r.budget.answered != 1 {
		t.Errorf("Graph was asked %q; %d write slots answered", got, r.budget.answered)
	}
	if resp, doc := r.post("/devices/"+deviceID+"/properties", form); resp.StatusCode != http.StatusConflict || len(r.graph.changed()) != 1 {
		t.Errorf("the same form again: %d, %s", resp.StatusCode, testkit.Text(doc))
	}
}

// Refusals before sending: a bad id, a form key the desk did not sign, a form asking for what the
// device already has, a full write budget. Graph hears of none of them; the values typed stay.
func TestDeviceChangeRefusedBeforeSending(t *testing.T) {
	r := newDevicesRig(t, "")
	for _, bad := range []string{"/devices/not-a-guid/properties", "/devices/..%2Fme/delete"} {
		if resp, _ := r.post(bad, url.Values{"groupTag": {"X"}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", bad, resp.StatusCode)
		}
	}
	if resp, doc := r.post("/devices/"+deviceID+"/properties", url.Values{"groupTag": {"X"}, "formKey": {"made-up"}}); resp.StatusCode != http.StatusConflict ||
		!strings.Contains(testkit.Text(doc), "nothing was sent") {
		t.Errorf("made-up key: %d %s", resp.StatusCode, testkit.Text(doc))
	}
	_, doc := r.get("/devices/" + deviceID)
	same := testkit.FormValues(t, doc, `form[action$="/properties"]`)
	if resp, doc := r.post("/devices/"+deviceID+"/properties", same); resp.StatusCode != http.StatusOK ||
		doc.Find(`[data-testid="failure"]`).Length() == 0 {
		t.Errorf("nothing to change: %d %s", resp.StatusCode, testkit.Text(doc))
	}
	r.budget.busyUntil = r.clock.Now().Add(time.Minute)
	busy := testkit.FormValues(t, doc, `form[action$="/properties"]`)
	busy.Set("groupTag", "Typed")
	resp, doc := r.post("/devices/"+deviceID+"/properties", busy)
	if resp.StatusCode != http.StatusOK || !strings.Contains(doc.Find(`[data-testid="failure"]`).Text(), "100 changes a minute") ||
		testkit.FormValues(t, doc, `form[action$="/properties"]`).Get("groupTag") != "Typed" {
		t.Errorf("a full budget: %d %s", resp.StatusCode, testkit.Text(doc))
	}
	if got := r.graph.changed(); len(got) != 0 {
		t.Errorf("Graph was asked %q", got)
	}
	if len(r.activity.recorded()) != 0 {
		t.Errorf("refusals before sending were recorded: %+v", r.activity.recorded())
	}
}

// A value typed that cannot be sent comes back as a 422 with the field marked: aria-invalid, its
// error beside it and named by aria-describedby, an error summary in the form's card that takes
// the focus and links to the field, and everything typed kept. Graph hears of none of it.
func TestDeviceFieldErrorsAreTiedToTheirField(t *testing.T) {
	r := newDevicesRig(t, "")
	r.graph.device.DisplayName = "LEGACY-NAME-FROM-SCCM" // longer than Windows takes: kept unless typed
	for _, tc := range []struct {
		name, form, field string
		set               map[string]string
		want              string
	}{
		{"a user principal name with a space", "/user", "userPrincipalName", map[string]string{"userPrincipalName": "bad user", "addressableUserName": "Adele Vance"}, "looks like adele@contoso.com"},
		{"no user principal name", "/user", "userPrincipalName", map[string]string{"userPrincipalName": " ", "addressableUserName": "Adele Vance"}, "Type the user principal name"},
		{"a friendly name with a line break", "/user", "addressableUserName", map[string]string{"userPrincipalName": "adele@contoso.example", "addressableUserName": "Adele\nVance"}, "control character"},
		{"a device name of 16 characters", "/properties", "displayName", map[string]string{"displayName": "CONTOSO-LAPTOP-1", "groupTag": "Kiosk"}, "has 16 characters; Windows takes at most 15"},
		{"a device name with a space", "/properties", "displayName", map[string]string{"displayName": "KIOSK 1"}, "holds a space"},
		{"a device name of digits", "/properties", "displayName", map[string]string{"displayName": "12345"}, "digits only"},
		{"a group tag with a direction mark", "/properties", "groupTag", map[string]string{"groupTag": "rtl\u202egnp"}, "cannot be seen"},
	} {
		_, doc := r.get("/devices/" + deviceID)
		form := testkit.FormValues(t, doc, `form[action$="`+tc.form+`"]`)
		for k, v := range tc.set {
			form.Set(k, v)
		}
		resp, doc := r.post("/devices/"+deviceID+tc.form, form)
		if resp.StatusCode != http.StatusUnprocessableEntity {
			t.Errorf("%s: %d, want 422", tc.name, resp.StatusCode)
		}
		field := doc.Find("#" + tc.field)
		if field.AttrOr("aria-invalid", "") != "true" || !strings.Contains(field.AttrOr("aria-describedby", ""), tc.field+"-error") ||
			!strings.Contains(doc.Find("#"+tc.field+"-error").Text(), tc.want) {
			t.Errorf("%s: #%s is not tied to its error: %s", tc.name, tc.field, doc.Find(`form[action$="`+tc.form+`"]`).Text())
		}
		summary := doc.Find(`form[action$="` + tc.form + `"] [data-testid="form-errors"]`)
		if _, focus := summary.Attr("autofocus"); !focus || summary.AttrOr("tabindex", "") != "-1" || !strings.Contains(summary.Find(`a[href="#`+tc.field+`"]`).Text(), tc.want) {
			t.Errorf("%s: the form's error summary: %s", tc.name, summary.Text())
		}
		if n := doc.Find(`[data-testid="form-errors"], [data-testid="failure"]`).Length(); n != 1 {
			t.Errorf("%s: %d error boxes on the page, want the form's alone", tc.name, n)
		}
		kept := testkit.FormValues(t, doc, `form[action$="`+tc.form+`"]`)
		for k, v := range tc.set {
			if got := kept.Get(k); got != strings.TrimSpace(v) {
				t.Errorf("%s: %s is now %q, typed %q", tc.name, k, got, v)
			}
		}
		if tc.form == "/user" && testkit.FormValues(t, doc, `form[action$="/properties"]`).Get("displayName") != "LEGACY-NAME-FROM-SCCM" {
			t.Errorf("%s: the device name form lost the device's name", tc.name)
		}
	}
	if got := r.graph.changed(); len(got) != 0 {
		t.Errorf("Graph was asked %q", got)
	}
	// A name the device already has is not checked when only the group tag is typed.
	_, doc := r.get("/devices/" + deviceID)
	form := testkit.FormValues(t, doc, `form[action$="/properties"]`)
	form.Set("groupTag", "Kiosk")
	resp, _ := r.post("/devices/"+deviceID+"/properties", form)
	redirected(t, resp, "/devices/"+deviceID+"?change=")
	if got := r.graph.changed(); len(got) != 1 || got[0] != "properties "+deviceID+" tag=Kiosk" {
		t.Errorf("Graph was asked %q", got)
	}
}

// Graph's 429 with Retry-After holds the tenant's writes for every desk; its 403 for a missing
// role makes the rest of the session read-only.
func TestDeviceChangeRefusedByGraph(t *testing.T) {
	r := newDevicesRig(t, "")
	r.graph.device.UserPrincipalName = "adele@contoso.example"
	throttled := graphRefusal(http.StatusTooManyRequests, graphclient.KindThrottled)
	throttled.(*graphclient.Error).RetryAfter = 30 * time.Second
	r.graph.fail = []error{throttled, graphRefusal(http.StatusForbidden, graphclient.KindForbiddenRole)}
	for range 2 {
		_, doc := r.get("/devices/" + deviceID)
		form := testkit.FormValues(t, doc, `form[action$="/unassign"]`)
		// Refused, nothing changed: the page again, with Graph's reason.
		if resp, doc := r.post("/devices/"+deviceID+"/unassign", form); resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="failure"]`).Length() != 1 {
			t.Errorf("a refused change: %d %s", resp.StatusCode, testkit.Text(doc))
		}
	}
	if want := r.clock.Now().Add(30 * time.Second); len(r.budget.held) != 1 || !r.budget.held[0].Equal(want) {
		t.Errorf("held %v, want %v", r.budget.held, want)
	}
	_, doc := r.get("/devices/" + deviceID)
	if doc.Find(`form[action^="/devices/"]`).Length() != 0 || !strings.Contains(doc.Find(`[data-testid="read-only"]`).Text(), "Microsoft Graph refused your change") {
		t.Errorf("after Graph's 403 the page still offers changes: %s", testkit.Text(doc))
	}
	if resp, _ := r.post("/devices/"+deviceID+"/delete", url.Values{"formKey": {"x"}}); resp.StatusCode != http.StatusForbidden || len(r.graph.changed()) != 2 {
		t.Errorf("a change after Graph's 403: %d, Graph saw %q", resp.StatusCode, r.graph.changed())
	}
}

// Read-only people (by their token's scopes) see no change controls, and every change they post
// anyway is refused before Graph hears of it.
func TestReadOnlyPeopleSeeNoChangeControls(t *testing.T) {
	r := newDevicesRig(t, readOnlyScope)
	_, doc := r.get("/devices")
	if !strings.Contains(doc.Find(`[data-testid="read-only"]`).Text(), "DeviceManagementServiceConfig.Read.All") || doc.Find(`#bulk-form, input[name="device"]`).Length() != 0 {
		t.Errorf("the reader's list: %s", testkit.Text(doc))
	}
	if !strings.Contains(testkit.Text(doc), "SN-1") {
		t.Error("the reader does not see the devices")
	}
	_, doc = r.get("/devices/" + deviceID)
	if doc.Find(`form[action^="/devices/"]`).Length() != 0 || doc.Find(`[data-testid="read-only"]`).Length() != 1 || doc.Find(`[data-testid="properties"]`).Length() != 1 {
		t.Errorf("the reader's device page: %s", testkit.Text(doc))
	}
	for _, path := range []string{"/devices/" + deviceID + "/properties", "/devices/" + deviceID + "/user", "/devices/" + deviceID + "/unassign",
		"/devices/" + deviceID + "/delete", "/devices/bulk"} {
		resp, page := r.post(path, url.Values{"groupTag": {"X"}, "action": {"delete"}, "device": {deviceID}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(testkit.Text(page), "Your organisation's permission lets the desk read only") || !strings.Contains(testkit.Text(page), "Nothing was sent") {
			t.Errorf("the reader's POST %s: %d %s", path, resp.StatusCode, testkit.Text(page))
		}
	}
	if resp, _ := r.get("/devices/" + deviceID + "/delete"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("the reader's delete confirmation: %d", resp.StatusCode)
	}
	if got := r.graph.changed(); len(got) != 0 {
		t.Errorf("a reader's change reached Graph: %q", got)
	}
}

// A bulk change needs a listed action, a short one-line tag and at least one device (at most
// 1,000); anything else sends the browser back to the list, which says what is wrong beside the
// field it is about, with the change chosen and the tag typed kept. Nothing is read or changed.
func TestBulkChangeFormIsChecked(t *testing.T) {
	r := newDevicesRig(t, "")
	many := make([]string, maxBulkDevices+1)
	for i := range many {
		many[i] = fmt.Sprintf("%08x-1b4d-4e5f-8a6b-7c8d9e0f1a2b", i)
	}
	for _, tc := range []struct {
		name  string
		form  url.Values
		field string // the id of the control the problem is said beside
		want  string
	}{
		{"no action", url.Values{"device": {deviceID}}, "bulk-action", "Choose what to do"},
		{"unknown action", url.Values{"action": {"wipe"}, "device": {deviceID}}, "bulk-action", "Choose what to do"},
		{"long tag", url.Values{"action": {bulk.ActionGroupTag}, "groupTag": {strings.Repeat("x", 201)}, "device": {deviceID}}, "bulk-tag", "has 201 characters; it may have at most 200"},
		{"tag with a line break", url.Values{"action": {bulk.ActionGroupTag}, "groupTag": {"a\nb"}, "device": {deviceID}}, "bulk-tag", "a control character"},
		{"tag with a direction mark", url.Values{"action": {bulk.ActionGroupTag}, "groupTag": {"rtl\u202egnp.exe"}, "device": {deviceID}}, "bulk-tag", "cannot be seen (U+202E"},
		{"no device", url.Values{"action": {"delete"}, "device": {"not-a-guid"}}, "choose-" + deviceID, "Tick the devices to change first"},
		{"too many", url.Values{"action": {"delete"}, "device": many}, "choose-" + deviceID, "at most 1,000 devices; you ticked 1,001"},
	} {
		resp, _ := r.post("/devices/bulk", tc.form)
		redirected(t, resp, "/devices")
		_, doc := r.get("/devices")
		summary := doc.Find(`[data-testid="form-errors"]`)
		link := summary.Find(`a[href="#` + tc.field + `"]`)
		if _, focus := summary.Attr("autofocus"); !focus || !strings.Contains(link.Text(), tc.want) || !strings.Contains(summary.Text(), "Nothing was changed") {
			t.Errorf("%s: the list's summary: %s", tc.name, testkit.Text(doc))
			continue
		}
		control := doc.Find("#" + tc.field)
		errID := strings.Fields(control.AttrOr("aria-describedby", ""))
		if len(errID) == 0 || !strings.Contains(doc.Find("#"+errID[len(errID)-1]).Text(), tc.want) {
			t.Errorf("%s: #%s is described by %q, not by its problem", tc.name, tc.field, errID)
		}
		if tc.field != "choose-"+deviceID && control.AttrOr("aria-invalid", "") != "true" {
			t.Errorf("%s: #%s is not marked invalid", tc.name, tc.field)
		}
	}
	if r.graph.reads != 0 || len(r.graph.changed()) != 0 {
		t.Errorf("a refused bulk change reached Graph: %d reads, %q", r.graph.reads, r.graph.changed())
	}
}

// Review with no device ticked comes back to the list it was sent from (its filter kept), the
// problem said beside the devices' boxes, the change chosen and the tag typed still there; the
// list says it once.
func TestBulkReviewWithNothingTickedComesBackToTheList(t *testing.T) {
	r := newDevicesRig(t, "")
	_, doc := r.get("/devices?tag=Sales&nouser=1")
	form := testkit.FormValues(t, doc, `#bulk-form`)
	if form.Get("list") != "nouser=1&tag=Sales" {
		t.Fatalf("the bulk form says it was sent from %q", form.Get("list"))
	}
	form.Set("action", bulk.ActionGroupTag)
	form.Set("groupTag", "Kiosk-EMEA")
	resp, _ := r.post("/devices/bulk", form)
	loc := redirected(t, resp, "/devices")
	if loc != "/devices?nouser=1&tag=Sales" {
		t.Errorf("back to %s, want the filtered list", loc)
	}
	_, list := r.get(loc)
	if got := list.Find(`#bulk-device-error`).Text(); !strings.Contains(got, "Tick the devices to change first") {
		t.Errorf("beside the devices: %q", got)
	}
	if list.Find(`#bulk-action option[selected]`).AttrOr("value", "") != bulk.ActionGroupTag || list.Find(`#bulk-tag`).AttrOr("value", "") != "Kiosk-EMEA" {
		t.Errorf("the change chosen was lost: %s", testkit.Text(list))
	}
	if list.Find(`input[name="device"][aria-describedby="bulk-device-error"]`).Length() != 1 {
		t.Error("the devices' boxes are not described by the problem")
	}
	if _, again := r.get("/devices"); again.Find(`[data-testid="form-errors"]`).Length() != 0 {
		t.Error("the problem is said again on the next visit")
	}
	if r.graph.reads != 0 {
		t.Errorf("Graph read %d devices", r.graph.reads)
	}
}

// A crafted "list" field cannot send the browser anywhere but the list.
func TestBulkListURLKeepsOnlyTheListsParameters(t *testing.T) {
	for in, want := range map[string]string{
		"":                             "/devices",
		"tag=Sales&pages=3":            "/devices?pages=3&tag=Sales",
		"//evil.example/&x=1":          "/devices",
		"serial=5CG&redirect=//evil":   "/devices?serial=5CG",
		"state=enrolled&state=bogus":   "/devices?state=enrolled",
		"%zz":                          "/devices",
		"pages=999&notag=1&nouser=yes": "/devices?notag=1&pages=20",
	} {
		if got := bulkListURL(in); got != want {
			t.Errorf("bulkListURL(%q) = %q, want %q", in, got, want)
		}
	}
}

// A delete's line in the history names the model only when Graph knows one.
func TestDeletedSummaryLeavesOutAnUnknownModel(t *testing.T) {
	for d, want := range map[graphclient.AutopilotDevice]string{
		{SerialNumber: "7HX2LM3", Model: "Latitude 5440"}: "Deleted the Autopilot registration of device 7HX2LM3 (Latitude 5440).",
		{SerialNumber: "7HX2LM3"}:                         "Deleted the Autopilot registration of device 7HX2LM3.",
	} {
		if got := deletedSummary(&d); got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
}
