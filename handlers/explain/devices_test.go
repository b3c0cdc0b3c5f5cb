package explain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web/store"
)

// Every outcome of a bulk change's device has a label and words; a refusal is Graph's message with
// what it means, kept as facts; a refused delete says nothing was deleted.
func TestBulkDevicesAreExplained(t *testing.T) {
	enrolled := &graphclient.Error{Kind: graphclient.KindValidation, StatusCode: 400, Message: "The device is enrolled in Intune."}
	refused, _ := json.Marshal(explain.Failure{Graph: enrolled, At: at})
	lost, _ := json.Marshal(explain.Failure{Graph: &graphclient.Error{Kind: graphclient.KindTimeout, StatusCode: 504}, At: at})
	if strings.Contains(string(refused), "nothing was deleted") {
		t.Errorf("the stored facts hold words: %s", refused)
	}
	stopped := &explain.Failure{Graph: &graphclient.Error{Kind: graphclient.KindForbiddenRole, StatusCode: 403, Message: "Not allowed."}}
	onPage, _ := json.Marshal(explain.LaterBulk{Action: "device-unassign-user", By: "Megan Bowen", At: at, Said: "no assigned user"})
	for _, tc := range []struct {
		action string
		d      store.BulkDevice
		label  string
		word   string
	}{
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkQueued}}, "Queued", "write budget"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkInFlight}}, "Sending", "On its way"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkUnknown, Reason: store.BulkReasonAnswerLost, Failure: lost}}, "Outcome unknown", "did not answer in time"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkUnknown, Reason: store.BulkReasonDeskStopped}}, "Outcome unknown", "the desk stopped"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkDone}}, "Group tag set", "“Kiosk”"},
		{store.BulkUnassign, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkDone, Reconciled: true}}, "User unassigned", "Found by reading the device"},
		{store.BulkDelete, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkRefused, Failure: refused}}, "Refused by Graph", "nothing was deleted"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkRefused, Failure: refused}}, "Refused by Graph", "Nothing was changed"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkNotFound, Reason: store.BulkReasonGone}}, "Not found", "answer to the change was lost"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkUnconfirmed, Lookups: 5}}, "Outcome unknown — check", "5 times"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkSkipped}}, "Not sent", "Intune role"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkUnknown, Reason: store.BulkReasonRestored}}, "Outcome unknown", "restored from a backup taken before this change was sent"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkDone, Reason: store.BulkReasonRestored, Reconciled: true}}, "Group tag set", "after the desk was restored from a backup"},
		{store.BulkUnassign, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkUnconfirmed, Reason: store.BulkReasonRestored, Lookups: 1, DoneAt: at}}, "Outcome unknown — check", "it still had an assigned user"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkUnconfirmed, Reason: store.BulkReasonRestored, Lookups: 1, DoneAt: at}}, "Outcome unknown — check", "prepare the change again"},
		{store.BulkGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkNotFound, Reason: store.BulkReasonRestored}}, "Not found", "restored from a backup"},
		{store.BulkUnassign, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkReplaced, Reason: store.BulkReasonDevicePage, Failure: onPage}}, "Replaced by a change on the device's page", "(no assigned user, by Megan Bowen on "},
	} {
		v := explain.BulkDevice(tc.action, "Kiosk", tc.d, stopped)
		if v.Label != tc.label || !strings.Contains(v.Detail, tc.word) {
			t.Errorf("%s %s: %+v, want %q and %q", tc.action, tc.d.State, v, tc.label, tc.word)
		}
	}
	if got := explain.ForAction("device-delete", explain.Failure{Graph: enrolled}); got.Title != "Graph refused to delete this registration" ||
		!strings.Contains(got.What, "The device is enrolled in Intune.") {
		t.Errorf("a refused delete: %+v", got)
	}
	unchecked := explain.Explain(explain.Failure{Cause: explain.SerialsUnchecked, Unchecked: 8, Of: 30,
		Graph: &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: 429}})
	if unchecked.Title != "8 of 30 serial numbers could not be checked" || !strings.Contains(unchecked.What, "throttling") {
		t.Errorf("serials unchecked: %+v", unchecked)
	}
}

// A change given up as "outcome unknown — check" says how many looks it had and over how long
// after the loss: "over the following minutes" only when it was so.
func TestUnconfirmedSaysOverHowLongTheDeviceWasRead(t *testing.T) {
	lost := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	d := store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkUnconfirmed, Reason: store.BulkReasonLookedUp, Lookups: 5,
		SentAt: lost.Add(-time.Second), DoneAt: lost.Add(10*time.Minute + 2*time.Second), Failure: mustJSON(t, explain.Failure{At: lost})}}
	if got := explain.BulkDevice(store.BulkGroupTag, "Made", d, nil).Detail; !strings.Contains(got, "read it 5 times over the 10 minutes 2 seconds that followed.") {
		t.Errorf("words: %s", got)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A refused device says once that nothing was changed; a device found made after a lost answer
// says what Graph shows, not that Intune will show it in a few minutes.
func TestBulkDeviceWordsSayThingsOnce(t *testing.T) {
	role := mustJSON(t, explain.Failure{Graph: &graphclient.Error{Kind: graphclient.KindForbiddenRole, StatusCode: 403, Message: "Not allowed."}})
	refused := explain.BulkDevice(store.BulkGroupTag, "Made", store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkRefused, Failure: role}}, nil).Detail
	if n := strings.Count(strings.ToLower(refused), "nothing was changed"); n != 1 {
		t.Errorf("a refused device says %d times that nothing was changed: %s", n, refused)
	}
	found := explain.BulkDevice(store.BulkGroupTag, "Made", store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkDone, Reconciled: true}}, nil).Detail
	if !strings.Contains(found, "Graph shows it with the group tag “Made”.") || strings.Contains(found, "within a few minutes") {
		t.Errorf("a device found made: %s", found)
	}
}

// A device Graph refused for the value sent says what the finished change offers: a group tag
// change is prepared again with the group tag to correct in its review; an unassign has no value
// of its own to correct, so what Graph names is to be checked on the device.
func TestBulkRefusalForAValueSaysWhereTheValueIsChosen(t *testing.T) {
	bad, _ := json.Marshal(explain.Failure{Graph: &graphclient.Error{Kind: graphclient.KindValidation, StatusCode: 400, Message: "Bad tag."}, At: at})
	d := store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkRefused, Failure: bad}}
	for _, tc := range []struct{ action, tag, want string }{
		{store.BulkGroupTag, "Kiosk", "correct the group tag in its review"},
		{store.BulkGroupTag, "", "choose the group tag in its review"},
		{store.BulkUnassign, "", "on the device's page"},
	} {
		if v := explain.BulkDevice(tc.action, tc.tag, d, nil); !strings.Contains(v.Detail, tc.want) || strings.Contains(v.Detail, "tick the devices again") || strings.Contains(v.Detail, "send the form again") {
			t.Errorf("%s %q: %s", tc.action, tc.tag, v.Detail)
		}
	}
}

// The devices of a bulk change a refusal stopped for all say briefly what happened to them and
// point to the refusal, explained once on the page; a device refused for a reason of its own keeps
// its own words.
func TestBulkDevicesStoppedByOneRefusalPointToIt(t *testing.T) {
	role := &graphclient.Error{Kind: graphclient.KindForbiddenRole, StatusCode: 403, Message: "Not allowed."}
	stopped := &explain.Failure{Graph: role, At: at}
	same, _ := json.Marshal(explain.Failure{Graph: role, At: at})
	own, _ := json.Marshal(explain.Failure{Graph: &graphclient.Error{Kind: graphclient.KindValidation, StatusCode: 400, Message: "Bad tag."}, At: at})
	next := explain.Explain(*stopped).NextStep
	for _, d := range []store.BulkDevice{
		{BulkOutcome: store.BulkOutcome{State: store.BulkRefused, Failure: same}},
		{BulkOutcome: store.BulkOutcome{State: store.BulkSkipped}},
	} {
		v := explain.BulkDevice(store.BulkGroupTag, "Kiosk", d, stopped)
		if !v.SeeRefusal || strings.Contains(v.Detail, next) || !strings.Contains(v.Detail, "Your Intune role does not allow this") {
			t.Errorf("%s: %+v", d.State, v)
		}
	}
	if v := explain.BulkDevice(store.BulkGroupTag, "Kiosk", store.BulkDevice{BulkOutcome: store.BulkOutcome{State: store.BulkRefused, Failure: own}}, stopped); v.SeeRefusal || !strings.Contains(v.Detail, "Bad tag.") {
		t.Errorf("a device refused for its own reason: %+v", v)
	}
}
