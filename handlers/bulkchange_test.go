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
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// unreadableDevices is the fake Graph of the device pages, failing to read every chosen device
// but the last, as Graph does when it has trouble.
type unreadableDevices struct{ *fakeAutopilot }

func (f unreadableDevices) ReadAutopilotDevices(_ context.Context, _ oauth2.TokenSource, ids []string) ([]graphclient.AutopilotDeviceRead, []*graphclient.Exchange, error) {
	out := make([]graphclient.AutopilotDeviceRead, len(ids))
	for i, id := range ids {
		out[i].ID = id
		if i == len(ids)-1 {
			d := f.device
			out[i].Value = &d
			continue
		}
		out[i].Err = &graphclient.Error{StatusCode: http.StatusBadGateway, Kind: graphclient.KindServer, Code: "BadGateway", Message: "Bad gateway.",
			RequestID: "44444444-4444-4444-4444-444444444444", ClientRequestID: "55555555-5555-5555-5555-555555555555"}
	}
	return out, nil, nil
}

// heldFor is a tenant's hold, as the state database keeps Graph's Retry-After.
type heldFor struct{ until time.Time }

func (h heldFor) HeldUntil(context.Context, string, time.Time) (time.Time, error) {
	return h.until, nil
}
func (h heldFor) Hold(context.Context, string, time.Time) error { return nil }

// newBulkRig serves the list of devices and the preparation of a bulk change, whose reads of the
// devices fail (unreadableDevices), while holds says until when Graph asked every desk to wait.
func newBulkRig(t *testing.T, holds WriteHolds) *devicesRig {
	d := &devicesRig{graph: &fakeAutopilot{device: graphclient.AutopilotDevice{ID: deviceID, SerialNumber: "SN-1", GroupTag: "Sales", Model: "Surface"}},
		activity: &fakeActivity{}, budget: &fakeBudget{}}
	d.rig = newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		h := &Registered{Graph: d.graph, Tokens: &fakeTokens{}, Activity: d.activity, Recorded: d.activity, Keys: &fakeKeys{},
			History: fakeHistory{}, Budget: d.budget, Now: func() time.Time { return d.clock.Now() }, Logger: discardLogger}
		user.GET("/devices", h.List)
		b := &BulkChanges{Graph: unreadableDevices{d.graph}, Tokens: &fakeTokens{}, Keys: &fakeKeys{}, Budget: d.budget, Holds: holds,
			Now: func() time.Time { return d.clock.Now() }, Logger: discardLogger}
		form("/devices/bulk", "/devices", b.Create)
	}).signIn("")
	return d
}

// While Graph's Retry-After runs, the chosen devices are not read (a read then makes Intune ask
// for a longer pause): the page says until when, and the list keeps the ticks.
func TestBulkDevicesAreNotReadWhileGraphAsksToWait(t *testing.T) {
	now := testkit.NewClock().Now()
	d := newBulkRig(t, heldFor{until: now.Add(20 * time.Second)})
	resp, doc := d.post("/devices/bulk", url.Values{"action": {"unassign-user"}, "device": {deviceID}})
	page := testkit.Text(doc)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" || !strings.Contains(page, "asked the desk to wait") ||
		!strings.Contains(page, "Review the change again after "+now.Add(20*time.Second).UTC().Format("15:04:05")) || !strings.Contains(page, "still ticked") {
		t.Fatalf("%d %s", resp.StatusCode, page)
	}
	_, list := d.get("/devices")
	if _, ticked := list.Find(`input[name="device"][value="` + deviceID + `"]`).Attr("checked"); !ticked {
		t.Errorf("the device chosen is no longer ticked: %s", testkit.Text(list))
	}
}

// A bulk change of the most devices it takes, of which Graph could not read all: the page counts
// those it could not read, shows Graph's ids, and the list has every device still ticked, with
// the change chosen.
func TestBulkChoiceIsKeptWhenGraphCannotReadTheDevices(t *testing.T) {
	d := newBulkRig(t, nil)
	ids := make([]string, maxBulkDevices)
	for i := range ids {
		ids[i] = fmt.Sprintf("%08x-1b4d-4e5f-8a6b-7c8d9e0f1a2b", i)
	}
	ids[0] = deviceID
	ids[len(ids)-1], ids[0] = ids[0], ids[len(ids)-1] // the device the fake can read comes last
	resp, doc := d.post("/devices/bulk", url.Values{"action": {"group-tag"}, "groupTag": {"Kiosk"}, "device": ids})
	page := testkit.Text(doc)
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(page, "999 of the 1000 chosen devices could not be read") ||
		!strings.Contains(page, "still ticked") || !strings.Contains(doc.Find(`[data-testid="support"]`).Text(), "44444444-4444-4444-4444-444444444444") {
		t.Fatalf("%d %s", resp.StatusCode, page)
	}
	_, list := d.get("/devices")
	if _, ticked := list.Find(`input[name="device"][value="` + deviceID + `"]`).Attr("checked"); !ticked {
		t.Errorf("the device chosen is no longer ticked: %s", testkit.Text(list))
	}
	if got := list.Find(`#bulk-tag`).AttrOr("value", ""); got != "Kiosk" {
		t.Errorf("the group tag typed is now %q", got)
	}
	if _, again := d.get("/devices"); again.Find(`input[name="device"][checked]`).Length() != 0 {
		t.Error("the ticks are put back more than once")
	}
}

// A bulk change refused for what was typed goes back to the list with the devices ticked too, and
// the value typed.
func TestBulkChoiceIsKeptWhenTheChangeIsRefused(t *testing.T) {
	r := newDevicesRig(t, "")
	long := strings.Repeat("x", 201)
	resp, _ := r.post("/devices/bulk", url.Values{"action": {"group-tag"}, "groupTag": {long}, "device": {deviceID}})
	redirected(t, resp, "/devices")
	_, list := r.get("/devices")
	if _, ticked := list.Find(`input[name="device"][value="` + deviceID + `"]`).Attr("checked"); !ticked || list.Find(`#bulk-tag`).AttrOr("value", "") != long ||
		!strings.Contains(list.Find(`#bulk-groupTag-error`).Text(), "at most 200") {
		t.Errorf("the list after the refusal: %s", testkit.Text(list))
	}
}

// fakeBulkJobs is one bulk change in the state database.
type fakeBulkJobs struct {
	mu  sync.Mutex
	job store.BulkJob
}

func (f *fakeBulkJobs) GetBulkJob(context.Context, string, string) (*store.BulkJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.job
	return &j, nil
}

func (f *fakeBulkJobs) setState(state string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.job.State = state
}

func (f *fakeBulkJobs) CreateBulkJob(context.Context, *store.BulkJob, []store.BulkDevice) error {
	return nil
}
func (f *fakeBulkJobs) ListBulkJobs(context.Context, store.BulkJobFilter) ([]store.BulkJob, error) {
	return nil, nil
}
func (f *fakeBulkJobs) BulkDevices(context.Context, string) ([]store.BulkDevice, error) {
	return nil, nil
}
func (f *fakeBulkJobs) ChangeBulk(context.Context, store.BulkChange) error      { return store.ErrConflict }
func (f *fakeBulkJobs) WakeBulkJob(context.Context, string, string, bool) error { return nil }
func (f *fakeBulkJobs) BulkOverlaps(context.Context, string, string, string) ([]store.BulkOverlap, error) {
	return nil, nil
}

// A confirmation submitted twice at once (a double click, or a balancer that sent it to two
// desks): the second finds the form taken by the first, which is still committing, perhaps on
// another desk. It waits for the change to leave the draft before showing it, rather than show the
// draft with its Confirm button again, as if nothing had been confirmed.
func TestASecondConfirmShowsTheChangeTheFirstConfirmed(t *testing.T) {
	const id = "0199a000-0000-7000-8000-0000000000d1"
	jobs := &fakeBulkJobs{job: store.BulkJob{ID: id, TenantID: rigUser.TenantID, ObjectID: rigUser.ObjectID, ActorName: rigUser.Name,
		State: "draft", Action: "group-tag", GroupTag: "Wave", Devices: 1, Payload: []byte(`{}`)}}
	keys := &fakeKeys{}
	r := newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		b := &BulkChanges{Tokens: &fakeTokens{}, Jobs: jobs, Keys: keys, Budget: &fakeBudget{}, Now: time.Now, Logger: discardLogger}
		user.GET("/devices/bulk/:id", b.Show)
		form("/devices/bulk/:id/confirm", "/devices/bulk/:id", b.Confirm)
	}).signIn("")
	_, doc := r.get("/devices/bulk/" + id)
	confirm := testkit.FormValues(t, doc, `form[action$="/confirm"]`)
	keys.ClaimFormKey(context.Background(), confirm.Get("formKey"), "", time.Minute) // the first submit has it

	go func() { time.Sleep(300 * time.Millisecond); jobs.setState("sending") }() // and commits a moment later
	resp, _ := r.post("/devices/bulk/"+id+"/confirm", confirm)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/devices/bulk/"+id {
		t.Fatalf("the second confirm answered %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, doc := r.get(resp.Header.Get("Location")); doc.Find(`form[action$="/confirm"]`).Length() != 0 {
		t.Errorf("the second confirm shows the draft again: %s", testkit.Text(doc))
	}
}

// A finished group tag change whose devices ended differently is prepared again in two parts:
// those Graph refused for the group tag, with the group tag to correct, and the others (refused
// for another reason, not sent, to check) as they were, each part counted by what it holds.
func TestFinishedBulkChangeIsPreparedAgainInTwoParts(t *testing.T) {
	at := testkit.NewClock().Now()
	refused := func(kind graphclient.Kind, status int) []byte {
		return jobs.Encode(explain.Failure{Graph: &graphclient.Error{Kind: kind, StatusCode: status}, At: at})
	}
	device := func(id, state string, failure []byte) store.BulkDevice {
		return store.BulkDevice{DeviceID: id, BulkOutcome: store.BulkOutcome{State: state, Failure: failure}}
	}
	devices := []store.BulkDevice{
		device("a", bulk.DeviceRefused, refused(graphclient.KindValidation, 400)),
		device("b", bulk.DeviceRefused, refused(graphclient.KindValidation, 400)),
		device("c", bulk.DeviceRefused, refused(graphclient.KindConflict, 409)),
		device("d", bulk.DeviceUnconfirmed, nil),
		device("e", bulk.DeviceDone, nil),
	}
	job := &store.BulkJob{ID: "j", State: bulk.StateFinished, Action: bulk.ActionGroupTag, GroupTag: "Kiosk"}
	v := bulkView(job, bulk.Payload{}, devices, &fakeBudget{}, at)
	if strings.Join(v.Correct, " ") != "a b" || strings.Join(v.Again, " ") != "c d" || v.AgainCounts.Refused != 1 || v.AgainCounts.Unconfirmed != 1 {
		t.Errorf("to correct %v, as they were %v counted %+v", v.Correct, v.Again, v.AgainCounts)
	}
	job.Action, job.GroupTag = bulk.ActionUnassign, ""
	if v := bulkView(job, bulk.Payload{}, devices, &fakeBudget{}, at); len(v.Correct) != 0 || len(v.Again) != 4 {
		t.Errorf("an unassign: to correct %v, as they were %v", v.Correct, v.Again)
	}
}
