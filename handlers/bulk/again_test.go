package bulk

import (
	"testing"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// Of a finished change's devices prepared again, only those of a group tag change Graph refused
// for the value (400 or 422) are prepared with the group tag to correct; a device refused for
// another reason, not sent or to check goes again as it was, and an unassign has no value to correct.
func TestOnlyAGroupTagRefusedForItsValueIsToCorrect(t *testing.T) {
	refused := func(kind graphclient.Kind, status int) store.BulkDevice {
		f := explain.Failure{Graph: &graphclient.Error{Kind: kind, StatusCode: status}, At: time.Unix(0, 0)}
		return store.BulkDevice{BulkOutcome: store.BulkOutcome{State: DeviceRefused, Failure: jobs.Encode(f)}}
	}
	for _, tc := range []struct {
		action string
		d      store.BulkDevice
		want   bool
	}{
		{ActionGroupTag, refused(graphclient.KindValidation, 400), true},
		{ActionGroupTag, refused(graphclient.KindValidation, 422), true},
		{ActionGroupTag, refused(graphclient.KindConflict, 409), false},
		{ActionGroupTag, refused(graphclient.KindForbiddenRole, 403), false},
		{ActionUnassign, refused(graphclient.KindValidation, 400), false},
		{ActionGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: DeviceSkipped}}, false},
		{ActionGroupTag, store.BulkDevice{BulkOutcome: store.BulkOutcome{State: DeviceUnconfirmed}}, false},
	} {
		if got := Correct(tc.action, tc.d); got != tc.want || !Again(tc.d) {
			t.Errorf("%s %s %s: to correct %v, want %v (again %v)", tc.action, tc.d.State, tc.d.Failure, got, tc.want, Again(tc.d))
		}
	}
}
