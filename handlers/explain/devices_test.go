package explain_test

import (
	"encoding/json"
	"strings"
	"testing"

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
