package registration

import (
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web/store"
)

// After Intune's 806 the technician reads that the device is in Autopilot and what to do at it;
// after 808 that their IT team must have the previous owner release it. Neither reads as an
// administrator's failure, and every line fits the device's screen.
func TestStatusAfterAlreadyRegisteredSpeaksToTheTechnician(t *testing.T) {
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	sub := store.RegistrationSubmission{State: store.SubmissionFinished, DecidedAt: now, Code: store.RegistrationCode{GroupTag: "Floor3", ExpiresAt: now.Add(time.Hour)}}
	for _, c := range []struct {
		name  string
		row   store.ImportRow
		state string
		says  []string
	}{
		{"806, group tag unknown", store.ImportRow{GroupTag: "Floor3", Outcome: store.Outcome{Verdict: store.VerdictError, ErrorCode: 806, ErrorName: "ZtdDeviceAlreadyAssigned"}},
			"ALREADY REGISTERED", []string{"already registered in Windows Autopilot", "Restart the device", "\"Floor3\"", "ask your IT team"}},
		{"806, the code's group tag", store.ImportRow{GroupTag: "Floor3", TenantMatch: store.TenantMatch{RegisteredID: "r", RegisteredGroupTag: "Floor3"},
			Outcome: store.Outcome{Verdict: store.VerdictError, ErrorName: "ZtdDeviceAlreadyAssigned"}},
			"ALREADY REGISTERED", []string{"it has group tag \"Floor3\"", "Restart the device"}},
		{"808", store.ImportRow{GroupTag: "Floor3", Outcome: store.Outcome{Verdict: store.VerdictError, ErrorCode: 808, ErrorName: "ZtdDeviceAssignedToOtherTenant"}},
			"NOT REGISTERED", []string{"another organisation", "Ask your IT team", "previous owner"}},
	} {
		d := store.RegistrationDevice{Serial: "5CG1234ABC", ReceivedAt: now}
		st := StatusText(Status{GroupTag: "Floor3", Expires: now.Add(time.Hour), Now: now, Devices: []DeviceStatus{DeviceState(sub, d, &c.row, explain.Job{}, now)}})
		if !strings.Contains(st, "5CG1234ABC (sent 14:00 UTC on 2 March 2026): "+c.state+"\n") {
			t.Errorf("%s: not %s:\n%s", c.name, c.state, st)
		}
		for _, want := range c.says {
			if !strings.Contains(strings.Join(strings.Fields(st), " "), want) {
				t.Errorf("%s: lacks %q:\n%s", c.name, want, st)
			}
		}
		for _, no := range []string{"FAILED", "Nothing to do", "delete the existing record", "import it again"} {
			if strings.Contains(st, no) {
				t.Errorf("%s: says %q to the technician:\n%s", c.name, no, st)
			}
		}
		if c.name == "806, the code's group tag" && strings.Contains(st, "change its group tag") {
			t.Errorf("%s: asks to change a group tag that is already the code's:\n%s", c.name, st)
		}
		for _, l := range strings.Split(st, "\n") {
			if len(l) > width {
				t.Errorf("%s: line of %d characters: %q", c.name, len(l), l)
			}
		}
	}
}

// Why an approval imported nothing is said of the approver, once, whoever reads it.
func TestRefusalSpeaksOfTheApproverOnce(t *testing.T) {
	at := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	for _, kind := range []graphclient.Kind{graphclient.KindForbiddenRole, graphclient.KindForbiddenPermission, graphclient.KindForbiddenLicense, graphclient.KindConditionalAccess, graphclient.KindUnknown} {
		r := Refusal{By: "Megan Bowen", At: at, Failure: explain.Failure{Graph: &graphclient.Error{StatusCode: 403, Kind: kind, Message: "Forbidden"}}}
		got := RefusalText(r.Encode())
		if !strings.HasPrefix(got, "Megan Bowen approved at 14:00 UTC, but Microsoft Graph refused the import for their account: ") ||
			strings.Contains(strings.ToLower(got), "your") || strings.Count(got, "Intune role") > 1 || strings.Contains(got, "..") {
			t.Errorf("%s: %q", kind, got)
		}
	}
}
