package graphclient_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/emulator"
)

const tenant = "5b7a1c2e-3f4d-4e6a-9b8c-0d1e2f3a4b5c"

// sharedClock is one time for the client's waits and the emulator's throttling windows.
type sharedClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *sharedClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *sharedClock) Sleep(_ context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return nil
}

func emulated(t *testing.T, faults emulator.Faults, mod ...func(*graphclient.Config)) (*graphclient.Client, *emulator.Emulator, *sharedClock) {
	t.Helper()
	clock := &sharedClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)}
	emu := emulator.New(emulator.Options{Now: clock.Now, Faults: faults, PageSize: 5, Verify: func(string) (emulator.Principal, error) {
		return emulator.Principal{AppID: "desk", TenantID: tenant, UPN: "AdeleV@contoso.example", Scopes: []string{"DeviceManagementServiceConfig.ReadWrite.All"}}, nil
	}})
	srv := httptest.NewServer(emu)
	t.Cleanup(srv.Close)
	cfg := graphclient.Config{Root: srv.URL, Now: clock.Now, Sleep: clock.Sleep, Timeout: time.Minute}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := graphclient.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, emu, clock
}

var token = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "emulated"})

// The batched look-up against the emulator: Graph's own throttling answers some inner requests
// 429 with their own Retry-After, and only those are sent again once it has passed. The batches
// after the first go out together, so each call's deadline has room for the three windows the
// 90 requests need.
func TestLookUpSerialsAgainstTheEmulatorUnderThrottling(t *testing.T) {
	c, emu, clock := emulated(t, emulator.Faults{ThrottleRequests: 30, ThrottleWindow: 20 * time.Second},
		func(cfg *graphclient.Config) { cfg.Timeout = 2 * time.Minute })
	emu.SeedAutopilotDevices(tenant)
	demo := emulator.DemoAutopilotDevices(clock.Now())
	serials := make([]string, 45)
	for i := range serials {
		serials[i] = fmt.Sprintf("UNKNOWN-%02d", i)
	}
	serials[3], serials[40] = demo[0].SerialNumber, demo[5].SerialNumber
	start := clock.Now()
	got, exs, err := c.LookUpSerials(context.Background(), token, serials, graphclient.InRegistered|graphclient.InImported)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.Err != nil {
			t.Fatalf("%s: %v", r.Serial, r.Err)
		}
		if want := i == 3 || i == 40; r.Found() != want || want && r.Registered[0].SerialNumber != serials[i] {
			t.Errorf("%s: %+v", r.Serial, r)
		}
	}
	// 90 inner requests, 30 a window: three windows, so at least two waits of about 20 s.
	if waited := clock.Now().Sub(start); waited < 40*time.Second || len(exs) <= 5 {
		t.Errorf("waited %v over %d batches", waited, len(exs))
	}
	if got[3].Registered[0].Manufacturer != demo[0].Manufacturer || got[3].Registered[0].EnrollmentState != graphclient.EnrollmentState(demo[0].EnrollmentState) {
		t.Errorf("found %+v", got[3].Registered[0])
	}
}

// Every typed call against the emulator, with its eventual consistency.
func TestAutopilotCallsAgainstTheEmulator(t *testing.T) {
	c, emu, clock := emulated(t, emulator.Faults{})
	emu.SeedAutopilotDevices(tenant)
	ctx := context.Background()
	page, _, err := c.ListAutopilotDevices(ctx, token, graphclient.AutopilotDeviceQuery{})
	if err != nil || len(page.Devices) != 5 || page.NextLink == "" {
		t.Fatalf("first page %+v %v", page, err)
	}
	all := page.Devices
	for page.NextLink != "" {
		if page, _, err = c.ListAutopilotDevices(ctx, token, graphclient.AutopilotDeviceQuery{NextLink: page.NextLink}); err != nil {
			t.Fatal(err)
		}
		all = append(all, page.Devices...)
	}
	if len(all) != len(emulator.DemoAutopilotDevices(clock.Now())) {
		t.Errorf("%d devices listed", len(all))
	}
	var target graphclient.AutopilotDevice
	for _, d := range all {
		if !d.EnrollmentState.Known() {
			t.Errorf("%s: state %q", d.SerialNumber, d.EnrollmentState)
		}
		if d.EnrollmentState == graphclient.EnrollmentNotContacted && target.ID == "" {
			target = d
		}
	}
	found, _, err := c.LookUpSerials(ctx, token, []string{target.SerialNumber}, graphclient.InRegistered)
	if err != nil || len(found) != 1 || len(found[0].Registered) != 1 || found[0].Registered[0].ID != target.ID {
		t.Errorf("found %+v %v", found, err)
	}
	tag := "Lobby"
	if _, err := c.UpdateAutopilotDeviceProperties(ctx, token, target.ID, graphclient.AutopilotDeviceChange{GroupTag: &tag}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignUserToAutopilotDevice(ctx, token, target.ID, "MeganB@contoso.example", "Megan Bowen"); err != nil {
		t.Fatal(err)
	}
	d, _, err := c.GetAutopilotDevice(ctx, token, target.ID)
	if err != nil || d.GroupTag != "Lobby" || d.UserPrincipalName != "MeganB@contoso.example" {
		t.Errorf("after the changes: %+v %v", d, err)
	}
	if _, err := c.UnassignUserFromAutopilotDevice(ctx, token, target.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAutopilotDevice(ctx, token, target.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = c.GetAutopilotDevice(ctx, token, target.ID)
	if ge, ok := graphclient.AsError(err); !ok || ge.Kind != graphclient.KindNotFound {
		t.Errorf("after delete: %v", err)
	}
	// An enrolled device's registration is refused with Graph's message, and explained.
	for _, d := range all {
		if d.EnrollmentState == graphclient.EnrollmentEnrolled && d.ManagedDeviceID != "" {
			_, err := c.DeleteAutopilotDevice(ctx, token, d.ID)
			ge, ok := graphclient.AsError(err)
			if !ok || ge.StatusCode != 400 || ge.Kind != graphclient.KindValidation || ge.ActivityID == "" {
				t.Errorf("delete of an enrolled device: %#v", err)
			}
			break
		}
	}
}

// The batch requests of device changes do what their standalone calls do, against the emulator;
// ReadAutopilotDevices reads 25 devices in two batches and says which one Graph has no more.
func TestAutopilotDeviceBatchRequestsAgainstTheEmulator(t *testing.T) {
	c, emu, clock := emulated(t, emulator.Faults{})
	emu.SeedAutopilotDevices(tenant)
	demo := emulator.DemoAutopilotDevices(clock.Now())
	tag := "Kiosk"
	var reqs []graphclient.BatchRequest
	for i, build := range []func(id string) (graphclient.BatchRequest, error){
		func(id string) (graphclient.BatchRequest, error) {
			return graphclient.UpdateAutopilotDeviceRequest("1", id, graphclient.AutopilotDeviceChange{GroupTag: &tag})
		},
		func(id string) (graphclient.BatchRequest, error) {
			return graphclient.UnassignAutopilotUserRequest("2", id)
		},
		func(id string) (graphclient.BatchRequest, error) {
			return graphclient.DeleteAutopilotDeviceRequest("3", id)
		},
	} {
		r, err := build(demo[[]int{0, 10, 11}[i]].ID)
		if err != nil {
			t.Fatal(err)
		}
		reqs = append(reqs, r)
	}
	if _, err := graphclient.UpdateAutopilotDeviceRequest("x", "not-a-guid", graphclient.AutopilotDeviceChange{GroupTag: &tag}); err == nil {
		t.Error("a bad id made a request")
	}
	answers, _, err := c.Batch(context.Background(), token, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range answers {
		if a.Err != nil || a.Status != 204 {
			t.Errorf("%s answered %d %v", a.ID, a.Status, a.Err)
		}
	}
	ids := []string{demo[11].ID}
	for i := range 24 {
		ids = append(ids, demo[i%len(demo)].ID)
	}
	got, exs, err := c.ReadAutopilotDevices(context.Background(), token, ids)
	if err != nil || len(exs) != 2 {
		t.Fatalf("%d batches: %v", len(exs), err)
	}
	if ge, ok := graphclient.AsError(got[0].Err); !ok || ge.Kind != graphclient.KindNotFound {
		t.Errorf("the deleted device: %+v", got[0])
	}
	if got[1].Value == nil || got[1].Value.GroupTag != "Kiosk" || got[11].Value.UserPrincipalName != "" || got[24].Value == nil {
		t.Errorf("read back: %+v / %+v", got[1].Value, got[11].Value)
	}
}

// A device's deployment profile assignment is read from Graph beta with the profiles expanded,
// whatever version the client is configured with; a successful answer's exchange, which carries
// every beta property of the device, is not handed on.
func TestProfileAssignmentReadFromBeta(t *testing.T) {
	ctx := context.Background()
	c, emu, clock := emulated(t, emulator.Faults{})
	emu.SeedAutopilotDevices(tenant)
	byStatus := map[string]emulator.AutopilotDevice{}
	for _, d := range emulator.DemoAutopilotDevices(clock.Now()) {
		byStatus[d.ProfileStatus] = d
	}
	kiosk := byStatus["assignedInSync"]
	p, ex, err := c.GetProfileAssignment(ctx, token, kiosk.ID)
	if err != nil || ex != nil || p.Status != graphclient.ProfileAssignedInSync || p.Profile == nil || p.Profile.DisplayName != kiosk.Profile.DisplayName {
		t.Fatalf("assigned: %+v %v %v", p, ex, err)
	}
	if at, ok := p.AssignedAt(); !ok || !at.Equal(kiosk.ProfileAssigned) {
		t.Errorf("assigned at %v %v", at, ok)
	}
	failed := byStatus["failed"]
	if p, _, err := c.GetProfileAssignment(ctx, token, failed.ID); err != nil || p.Status != graphclient.ProfileFailed ||
		p.DetailedStatus != "hardwareRequirementsNotMet" || p.Profile != nil || p.IntendedProfile == nil {
		t.Errorf("failed: %+v %v", p, err)
	}
	got := emu.Received()
	last := got[len(got)-1]
	if last.Method != "GET" || last.Path != "/beta/deviceManagement/windowsAutopilotDeviceIdentities/"+failed.ID ||
		last.RawQuery != "%24expand=deploymentProfile,intendedDeploymentProfile" {
		t.Errorf("sent %s %s?%s", last.Method, last.Path, last.RawQuery)
	}
	_, ex, err = c.GetProfileAssignment(ctx, token, "00000000-0000-4000-8000-000000000abc")
	if ge, ok := graphclient.AsError(err); !ok || ge.Kind != graphclient.KindNotFound || ex == nil {
		t.Errorf("unknown device: %v %v", err, ex)
	}
	n := len(emu.Received())
	if _, _, err := c.GetProfileAssignment(ctx, token, "../me"); err == nil || len(emu.Received()) != n {
		t.Errorf("a bad id: %v, %d requests sent", err, len(emu.Received())-n)
	}
}

// The tenant's sync with the Windows Autopilot service is read from Graph beta (only beta has
// windowsAutopilotSettings), whatever version the client is configured with.
func TestAutopilotSettingsReadFromBeta(t *testing.T) {
	ctx := context.Background()
	c, emu, clock := emulated(t, emulator.Faults{})
	s, _, err := c.GetAutopilotSettings(ctx, token)
	if _, synced := s.LastSync(); err != nil || s.SyncStatus != graphclient.SyncUnknown || synced {
		t.Fatalf("never synced: %+v %v", s, err)
	}
	if _, err := c.SyncAutopilot(ctx, token); err != nil {
		t.Fatal(err)
	}
	s, _, err = c.GetAutopilotSettings(ctx, token)
	if asked, ok := s.LastRequest(); err != nil || s.SyncStatus != graphclient.SyncInProgress || !ok || !asked.Equal(clock.Now()) {
		t.Errorf("syncing: %+v %v", s, err)
	}
	got := emu.Received()
	if last := got[len(got)-1]; last.Method != "GET" || last.Path != "/beta/deviceManagement/windowsAutopilotSettings" || last.RawQuery != "" {
		t.Errorf("sent %s %s?%s", last.Method, last.Path, last.RawQuery)
	}
}
