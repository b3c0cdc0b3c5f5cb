package registration

import (
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/unseen"
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

// Text the desk stored from before the check refused it — a code's group tag or note, a reason for
// rejecting, a serial — reaches the technician's console without a character that would drive it:
// an escape that clears the screen, a carriage return that writes over a line, a direction mark
// that reverses the words after it, a line break that starts a line of its own.
func TestAnswersShowStoredTextThatCannotBeSeenByItsCodes(t *testing.T) {
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	hostile := "A\x1b[2J\x1b[31mRED\u202eevil\r\nLine2"
	reason := "Wrong site\r\n\u202eevil \x1b[31mred\x1b[0m"
	code := store.RegistrationCode{GroupTag: hostile, Note: hostile, AssignedUser: "ada\u200f@contoso.com", ExpiresAt: now.Add(time.Hour)}
	rejected := store.RegistrationSubmission{State: store.SubmissionRejected, Reason: reason, Code: code}
	imported := store.RegistrationSubmission{State: store.SubmissionFinished, DecidedAt: now, Code: code}
	row := store.ImportRow{GroupTag: hostile, User: "ada\u200f@contoso.com", Outcome: store.Outcome{Verdict: store.VerdictImported}}
	d := store.RegistrationDevice{Serial: "SER\u202eLIVE", ReceivedAt: now}
	status := StatusText(Status{Note: code.Note, GroupTag: code.GroupTag, User: code.AssignedUser, Expires: code.ExpiresAt, UsesLeft: 1, Now: now,
		Devices: []DeviceStatus{DeviceState(rejected, d, nil, explain.Job{}, now), DeviceState(imported, d, &row, explain.Job{}, now)}})
	receipt := ReceiptText(Receipt{Expires: now.Add(time.Hour),
		Kept:    []Kept{{Line: 2, Serial: "SER\u202eLIVE", Model: "Mo\u202edel", HashShown: "T0Ad…AAA=", GroupTag: hostile, User: "ada\u200f@contoso.com", Notes: []string{"Note\x1b[2J"}}},
		NotKept: []NotKept{{Line: 3, Serial: "5CG3281JQZ\u200b", Why: []string{"Why\r\u202e"}}}, FileNotes: []string{"File\x1b]0;title\x07"}})
	for name, text := range map[string]string{"status": status, "receipt": receipt} {
		for _, r := range text {
			if r != '\n' && unseen.Is(r) {
				t.Errorf("the %s answer carries %U:\n%q", name, r, text)
				break
			}
		}
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(strings.TrimSpace(l), "Line2") {
				t.Errorf("the %s answer lets stored text start a line of its own: %q", name, l)
			}
		}
	}
	for _, want := range []string{`Group tag "A<U+001B>[2J<U+001B>[31mRED<U+202E>evil<U+000D><U+000A>Line2"`, `"SER\u202eLIVE" (sent`,
		`Rejected by your IT team: "Wrong site<U+000D><U+000A><U+202E>evil <U+001B>[31mred<U+001B>[0m".`, "assigned to ada<U+200F>@contoso.com"} {
		if !strings.Contains(strings.Join(strings.Fields(status), " "), want) {
			t.Errorf("the status answer lacks %q:\n%s", want, status)
		}
	}
	for _, want := range []string{`Line 2: serial "SER\u202eLIVE", Mo<U+202E>del`, `Line 3: serial "5CG3281JQZ\u200b"`} {
		if !strings.Contains(receipt, want) {
			t.Errorf("the receipt lacks %q:\n%s", want, receipt)
		}
	}
}
