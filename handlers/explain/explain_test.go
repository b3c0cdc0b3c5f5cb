package explain_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/web/store"
)

// at is when the failures of these tests happened.
var at = testkit.Epoch

// Every kind of Graph failure and every failure on the desk's side gets a title, what happened,
// the next step and the page's one action; the words come back the same from the stored facts.
func TestEveryFailureIsExplained(t *testing.T) {
	cases := []struct {
		f      explain.Failure
		action explain.Action
		word   string
	}{
		{graphFailure(graphclient.KindValidation, "Cannot convert the literal 'x' to the expected type 'Edm.DateTimeOffset'."), explain.ActionCheckInput, "Edm.DateTimeOffset"},
		{graphFailure(graphclient.KindSegmentNotFound, "Resource not found for the segment 'importedWindowsAutopilotDeviceIdentityUploads'."), explain.ActionUseDeviceImport, "no longer"},
		{graphFailure(graphclient.KindSegmentNotFound, "Resource not found for the segment 'windowsAutopilotSettings'."), explain.ActionNone, "does not know"},
		{graphFailure(graphclient.KindNoMethodMatch, "No OData route exists"), explain.ActionNone, "operation"},
		{graphFailure(graphclient.KindUnauthorized, "Access token has expired"), explain.ActionSignInAgain, "Sign in again"},
		{graphFailure(graphclient.KindForbiddenPermission, "Application must have one of the following scopes"), explain.ActionNone, "admin consent"},
		{graphFailure(graphclient.KindForbiddenRole, "User is not authorized"), explain.ActionNone, "Intune role"},
		{graphFailure(graphclient.KindForbiddenLicense, "no valid Intune license"), explain.ActionNone, "licence"},
		{graphFailure(graphclient.KindConditionalAccess, "Conditional access"), explain.ActionFreshSignIn, "Sign in again"},
		{graphFailure(graphclient.KindNotFound, "Resource not found."), explain.ActionNone, "id"},
		{graphFailure(graphclient.KindConflict, "An object with id already exists."), explain.ActionNone, "state"},
		{explain.Failure{Graph: &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: 429, RetryAfter: 30 * time.Second}}, explain.ActionTryLater, "30 seconds"},
		{graphFailure(graphclient.KindServer, "The service is unavailable."), explain.ActionTryLater, "service health"},
		{graphFailure(graphclient.KindTooLarge, "too large"), explain.ActionCheckInput, "fewer"},
		{graphFailure(graphclient.KindTimeout, ""), explain.ActionTryLater, "in time"},
		{graphFailure(graphclient.KindNetwork, "connection refused"), explain.ActionTryLater, "proxy"},
		{graphFailure(graphclient.KindOutcomeUnknown, ""), explain.ActionNone, "did not send it again"},
		{graphFailure(graphclient.KindBadResponse, "not JSON"), explain.ActionTryLater, "proxy"},
		{graphFailure(graphclient.KindInvalidInput, "The id is not a GUID."), explain.ActionCheckInput, "not a GUID"},
		{graphFailure(graphclient.KindUnknown, "odd"), explain.ActionNone, "odd"},
		{explain.Failure{}, explain.ActionTryLater, "before Microsoft Graph answered"},
		{explain.Failure{Cause: explain.SessionEnded}, explain.ActionSignInAgain, "Sign in again"},
		{explain.Failure{Cause: explain.TokenUnavailable}, explain.ActionTryLater, "still signed in"},
		{explain.Failure{Cause: explain.OwnerTokenUnavailable}, explain.ActionTryLater, "owner's access"},
		{explain.Failure{Cause: explain.AnswerNotStored, Batch: 7}, explain.ActionNone, "Batch 7 was recorded as sent"},
		{explain.Failure{Cause: explain.NothingChosen}, explain.ActionNone, "Leave out"},
		{explain.Failure{Cause: explain.FormUsed}, explain.ActionNone, "submit the form again"},
	}
	for _, tc := range cases {
		tc.f.At = at
		ex := explain.Explain(tc.f)
		if ex.Title == "" || ex.What == "" || ex.NextStep == "" || ex.Action != tc.action {
			t.Errorf("%+v explained as %+v", tc.f, ex)
		}
		if !strings.Contains(ex.Title+" "+ex.What+" "+ex.NextStep, tc.word) {
			t.Errorf("%+v: explanation lacks %q: %+v", tc.f, tc.word, ex)
		}
		for _, words := range []string{ex.Title, ex.What, ex.NextStep} {
			if strings.Contains(words, ") (") || strings.Contains(words, "..") || strings.Contains(words, "  ") {
				t.Errorf("%+v: words stumble: %q", tc.f, words)
			}
		}
		stored, err := json.Marshal(tc.f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(stored), ex.Title) || strings.Contains(string(stored), ex.NextStep) {
			t.Errorf("the stored facts hold words: %s", stored)
		}
		var back explain.Failure
		if err := json.Unmarshal(stored, &back); err != nil || explain.Explain(back) != ex {
			t.Errorf("read back from %s: %+v, %v; want %+v", stored, explain.Explain(back), err, ex)
		}
	}
}

func graphFailure(k graphclient.Kind, msg string) explain.Failure {
	return explain.Failure{Graph: &graphclient.Error{Kind: k, Message: msg, StatusCode: 400, Code: "Code"}}
}

// Intune's refusal of a second Autopilot sync says when to try again, counted from when it
// happened, however late the page is shown.
func TestSyncRefusalSaysWhenToTryAgain(t *testing.T) {
	f := explain.Failure{At: at, Graph: &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: 429, RetryAfter: 90 * time.Second}}
	ex := explain.ForAction("sync", f)
	if ex.Title != "Intune allows one sync every 10 minutes" || ex.NextStep != "Try again after 12:01:30 UTC (in 1 minute 30 seconds)." {
		t.Errorf("sync refusal = %+v", ex)
	}
	if ex := explain.ForAction("create-upload", f); ex.Title != "Microsoft Graph is throttling requests" {
		t.Errorf("a throttled create = %+v", ex)
	}
	f.Graph = &graphclient.Error{Kind: graphclient.KindConflict, StatusCode: 409}
	if ex := explain.ForAction("sync", f); ex.Title != "A sync is already running" || ex.NextStep != "Wait a few minutes, then sync again." {
		t.Errorf("sync conflict = %+v", ex)
	}
}

// Each row's verdict is put into words from facts: its reason, its batch's record and its owner.
func TestRowVerdictsAreWordedFromFacts(t *testing.T) {
	refusal := explain.Failure{Graph: &graphclient.Error{Kind: graphclient.KindForbiddenRole, StatusCode: 403, Message: "User is not authorized"}}
	job := explain.Job{Owner: "Adele Vance", Batches: map[int]explain.Batch{2: {Failure: &refusal}, 3: {Failure: &refusal}, 4: {Lookups: 3}}}
	row := func(verdict, reason string, batch int) store.ImportRow {
		return store.ImportRow{Line: 2, Errors: []string{"The hash is empty.", "The serial is empty."},
			Outcome: store.Outcome{Verdict: verdict, Reason: reason, Batch: batch, ErrorCode: 808}}
	}
	for _, tc := range []struct {
		r            store.ImportRow
		label, words string
	}{
		{row(store.VerdictLeftOut, store.ReasonCheck, 0), "Left out", "Refused by the check: The hash is empty. The serial is empty."},
		{row(store.VerdictLeftOut, store.ReasonAlreadyImported, 0), "Left out", "Left out: already imported in the tenant when the serials were checked."},
		{row(store.VerdictLeftOut, store.ReasonLeftOutByOwner, 0), "Left out", "Left out by Adele Vance when importing."},
		{row(store.VerdictRefused, store.ReasonBatchRefused, 2), "Not imported",
			"Your Intune role does not allow this. The desk has the permission it needs, but Intune refused this for your account"},
		{row(store.VerdictRefused, store.ReasonNotSent, 3), "Not imported",
			"Not sent: Microsoft Graph refused an earlier batch of this import for a reason that holds for every batch (Your Intune role does not allow this). Ask"},
		{row(store.VerdictNotFound, store.ReasonLookedUp, 4), "Outcome unknown — check", "Graph's answer to batch 4 was lost, and the desk looked this device up 3 times"},
		{row(store.VerdictNotFound, store.ReasonVanished, 4), "Outcome unknown — check", "then stopped listing its import record"},
		{row(store.VerdictUnknown, store.ReasonRestored, 4), "Outcome unknown", "restored from a backup in which batch 4 was not sent yet"},
		{row(store.VerdictNotFound, store.ReasonRestored, 4), "Outcome unknown — check", "restored from a backup in which batch 4 was not sent yet, and it looked this device up 3 times"},
		{row(store.VerdictError, "", 1), "Failed", "another organisation's tenant"},
		{row(store.VerdictQueued, "", 5), "Queued", "In batch 5, waiting to be sent."},
		// Rows stored before reasons were facts kept the sentence: it is shown as it was.
		{row(store.VerdictLeftOut, "Left out by Megan Bowen when importing.", 0), "Left out", "Left out by Megan Bowen when importing."},
		{row(store.VerdictNotFound, "Not found in Microsoft Graph after 2 looks.", 4), "Outcome unknown — check", "Not found in Microsoft Graph after 2 looks."},
	} {
		got := explain.Row(tc.r, job)
		if got.Label != tc.label || !strings.HasPrefix(got.Detail, tc.words) && !strings.Contains(got.Detail, tc.words) {
			t.Errorf("%s/%s: %+v, want %q: %q", tc.r.Verdict, tc.r.Reason, got, tc.label, tc.words)
		}
	}
	if got := explain.Row(row("", "", 0), job); got.Label != "Left out" || got.Meaning != explain.Quiet || got.Key != store.VerdictLeftOut {
		t.Errorf("a row the import was submitted without = %+v, want it left out", got)
	}
}

// Devices approved under Registration came from the device, not a file: the next step of a row
// that did not make it says how to send the device again, never to import a file nobody has.
func TestRowsOfAnApprovedImportNeverAskForAFile(t *testing.T) {
	stop := explain.Stop{By: "Adele Vance", At: time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)}
	batches := map[int]explain.Batch{1: {Lookups: 3}, 2: {Stopped: &stop}}
	rows := []store.ImportRow{
		{Outcome: store.Outcome{Verdict: store.VerdictNotFound, Reason: store.ReasonLookedUp, Batch: 1}},
		{Outcome: store.Outcome{Verdict: store.VerdictNotFound, Reason: store.ReasonStalled, Batch: 1, Status: graphclient.ImportPending}},
		{Outcome: store.Outcome{Verdict: store.VerdictStopped, Batch: 2}},
	}
	for _, r := range rows {
		fromFile := explain.Row(r, explain.Job{Batches: batches}).Detail
		approved := explain.Row(r, explain.Job{Batches: batches, Approved: true}).Detail
		if !strings.Contains(fromFile, "upload your file again") {
			t.Errorf("%s/%s from a file: %q, want the file uploaded again", r.Verdict, r.Reason, fromFile)
		}
		if strings.Contains(approved, "file") || !strings.Contains(approved, "the technician sends its hash again from the device") {
			t.Errorf("%s/%s approved: %q, want the device sent again and no file", r.Verdict, r.Reason, approved)
		}
	}
}

// Jobs, batches and activities stored before failures were facts kept them in words: they are
// read, and shown as they were.
func TestEarlierStoredWordsAreStillShown(t *testing.T) {
	old := `{"checked":false,"failure":{"Title":"Nothing to import","What":"No valid row was chosen.","NextStep":"Untick it.","Action":0,"RetryAt":"0001-01-01T00:00:00Z"},
		"trouble":"Microsoft Graph had a problem; the desk tries again by itself.",
		"waiting":{"reason":"Microsoft Graph is throttling this tenant","for":30000000000,"until":"2026-11-28T12:00:30Z"}}`
	p, err := importer.DecodePayload([]byte(old))
	if err != nil {
		t.Fatal(err)
	}
	if ex := explain.Explain(*p.Failure); ex != (explain.Explanation{Title: "Nothing to import", What: "No valid row was chosen.", NextStep: "Untick it."}) {
		t.Errorf("earlier failure = %+v", ex)
	}
	if got := explain.Trouble(*p.Trouble); got != "Microsoft Graph had a problem; the desk tries again by itself." {
		t.Errorf("earlier trouble = %q", got)
	}
	if p.Waiting.Reason != "Microsoft Graph is throttling this tenant" {
		t.Errorf("earlier wait = %+v", p.Waiting)
	}
	d := importer.DecodeBatchDetail([]byte(`{"explanation":{"Title":"Graph did not find it","What":"Gone.","NextStep":"Refresh.","Action":0},"support":{"status":404}}`))
	if d.Failure == nil || explain.Explain(*d.Failure).Title != "Graph did not find it" || d.Support.Status != 404 {
		t.Errorf("earlier batch detail = %+v", d)
	}

	// Saved again (the worker and the draft's actions rewrite the payload), the words stay.
	if again, err := importer.DecodePayload(p.Encode()); err != nil || explain.Explain(*again.Failure).NextStep != "Untick it." ||
		explain.Trouble(*again.Trouble) != "Microsoft Graph had a problem; the desk tries again by itself." {
		t.Errorf("saved again: %s (%v)", p.Encode(), err)
	}

	// The facts stored now carry no words.
	p = importer.Payload{Failure: &explain.Failure{Cause: explain.NothingChosen}, Trouble: &explain.Failure{Cause: explain.Unreachable},
		Waiting: &importer.Wait{Throttled: true}}
	if stored := string(p.Encode()); strings.Contains(stored, "Nothing to import") || strings.Contains(stored, "throttling") || strings.Contains(stored, "could not reach") {
		t.Errorf("a payload stores words: %s", stored)
	}
}

// Waits are said in words, never in Go's notation ("2m0s").
func TestDurationsAreSaidInWords(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond:                     "less than a second",
		time.Second:                                "1 second",
		45*time.Second + 400*time.Millisecond:      "45 seconds",
		time.Minute:                                "1 minute",
		2 * time.Minute:                            "2 minutes",
		90 * time.Second:                           "1 minute 30 seconds",
		time.Hour + 5*time.Minute + 30*time.Second: "1 hour 5 minutes",
		26 * time.Hour:                             "26 hours",
	} {
		if got := explain.Duration(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
	f := explain.Failure{At: at, Graph: &graphclient.Error{Kind: graphclient.KindThrottled, StatusCode: 429, RetryAfter: 2 * time.Minute}}
	if got := explain.Explain(f).NextStep; got != "Wait 2 minutes, then send it again." {
		t.Errorf("a throttled request: %q", got)
	}
}

// A refusal blamed on the person's role says Intune worded it as a missing scope only when it did.
func TestRoleRefusalQuotesOnlyWhatIntuneSaid(t *testing.T) {
	for msg, intuneWords := range map[string]bool{
		"Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementServiceConfig.ReadWrite.All": true,
		"Forbidden": false,
	} {
		ex := explain.Explain(explain.Failure{At: at, Graph: &graphclient.Error{Kind: graphclient.KindForbiddenRole, StatusCode: 403, Message: msg}})
		if got := strings.Contains(ex.Details, "Intune words this refusal"); got != intuneWords || !strings.Contains(ex.Details, "was granted") {
			t.Errorf("%q: %s", msg, ex.Details)
		}
	}
}
