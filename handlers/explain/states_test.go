package explain_test

import (
	"slices"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/web/store"
)

// strs is an enum's members as strings.
func strs[S ~string](members []S) []string {
	out := make([]string, len(members))
	for i, m := range members {
		out[i] = string(m)
	}
	return out
}

// Every value of every enum graphclient knows has the desk's words: a label in sentence case
// that is not Graph's raw value, a meaning, and Graph's property and value kept for support.
// A member added to graphclient without words makes this fail.
func TestEveryGraphEnumValueHasWords(t *testing.T) {
	type enum struct {
		property string
		values   []string
		say      func(string) explain.State
	}
	var enrollment []string
	for _, s := range graphclient.EnrollmentStates {
		enrollment = append(enrollment, string(s))
	}
	enums := []enum{
		{"status", graphclient.UploadStatuses[:], explain.UploadStatus},
		{"deviceImportStatus", graphclient.DeviceImportStatuses[:], explain.DeviceImportStatus},
		{"enrollmentState", enrollment, func(s string) explain.State { return explain.EnrollmentState(graphclient.EnrollmentState(s)) }},
		{"deploymentProfileAssignmentStatus", strs(graphclient.ProfileAssignmentStatuses),
			func(s string) explain.State { return explain.ProfileAssignment(graphclient.ProfileAssignmentStatus(s)) }},
		{"syncStatus", strs(graphclient.SyncStatuses), func(s string) explain.State { return explain.SyncStatus(graphclient.SyncStatus(s)) }},
	}
	for _, e := range enums {
		if len(e.values) == 0 {
			t.Fatalf("graphclient lists no values of %s", e.property)
		}
		labels := map[string]string{}
		for _, v := range e.values {
			s := e.say(v)
			checkWords(t, e.property+" "+v, s)
			if strings.EqualFold(s.Label, v) && strings.ContainsFunc(v, unicode.IsUpper) {
				t.Errorf("%s %s: the label %q is Graph's value, not words", e.property, v, s.Label)
			}
			if want := e.property + ": " + v; s.Graph != want {
				t.Errorf("%s %s: Graph's value kept as %q, want %q", e.property, v, s.Graph, want)
			}
			if other, ok := labels[s.Label]; ok {
				t.Errorf("%s: %s and %s both read %q", e.property, other, v, s.Label)
			}
			labels[s.Label] = v
		}
		// A member Graph adds later is said as it came, to be looked at, with its value kept.
		added := e.say("somethingNew")
		if added.Label != "Other (somethingNew)" || added.Meaning != explain.Attention || added.Graph != e.property+": somethingNew" {
			t.Errorf("%s: a member added later reads %+v", e.property, added)
		}
	}
	// A missing (null) state reads as Graph's unknown, as graphclient reads it.
	if explain.DeviceImportStatus("") != explain.DeviceImportStatus(graphclient.ImportUnknown) ||
		explain.EnrollmentState("") != explain.EnrollmentState(graphclient.EnrollmentUnknown) {
		t.Error("a null state does not read as unknown")
	}
	// The Intune admin center's words where it has them.
	for s, want := range map[graphclient.EnrollmentState]string{graphclient.EnrollmentEnrolled: "Enrolled", graphclient.EnrollmentNotContacted: "Not contacted",
		graphclient.EnrollmentPendingReset: "Pending reset", graphclient.EnrollmentFailed: "Enrollment failed", graphclient.EnrollmentUnknown: "Unknown"} {
		if got := explain.EnrollmentState(s).Label; got != want {
			t.Errorf("enrollmentState %s reads %q, want %q", s, got, want)
		}
	}
	// Colour follows meaning: what ended well, what failed, what is on its way, what needs a look.
	for _, c := range []struct {
		s    explain.State
		want explain.Meaning
	}{
		{explain.UploadStatus(graphclient.UploadComplete), explain.Done}, {explain.UploadStatus(graphclient.UploadError), explain.Failed},
		{explain.UploadStatus(graphclient.UploadPending), explain.Moving}, {explain.UploadStatus(graphclient.UploadNoUpload), explain.Quiet},
		{explain.DeviceImportStatus(graphclient.ImportComplete), explain.Done}, {explain.DeviceImportStatus(graphclient.ImportError), explain.Failed},
		{explain.DeviceImportStatus(graphclient.ImportPending), explain.Moving}, {explain.DeviceImportStatus(graphclient.ImportPartial), explain.Attention},
		{explain.EnrollmentState(graphclient.EnrollmentEnrolled), explain.Done}, {explain.EnrollmentState(graphclient.EnrollmentFailed), explain.Failed},
		{explain.EnrollmentState(graphclient.EnrollmentPendingReset), explain.Attention},
	} {
		if c.s.Meaning != c.want {
			t.Errorf("%q means %s, want %s", c.s.Label, c.s.Meaning, c.want)
		}
	}
}

// The desk's own states have words too, in the same voice: every activity outcome, import and
// bulk job state, registration code and submission state, check verdict, and every outcome of
// an imported row and of a bulk change's device.
func TestEveryDeskStateHasWords(t *testing.T) {
	for _, o := range explain.Outcomes {
		checkWords(t, "outcome "+o, explain.Outcome(o))
	}
	for _, s := range []string{importer.StateDraft, importer.StateChecking, importer.StateSending, importer.StateFinished} {
		checkWords(t, "import "+s, explain.ImportState(s, 1, 2))
	}
	for _, s := range []string{bulk.StateDraft, bulk.StateSending, bulk.StateFinished} {
		checkWords(t, "bulk change "+s, explain.BulkState(s))
	}
	for _, s := range []string{"active", "expired", "revoked", "used"} {
		checkWords(t, "code "+s, explain.CodeState(s))
	}
	for _, s := range []string{store.SubmissionWaiting, store.SubmissionApproved, store.SubmissionFinished, store.SubmissionRejected, store.SubmissionExpired} {
		checkWords(t, "submission "+s, explain.Submission(s, 1, 1, 0))
	}
	for _, v := range []string{explain.PreflightReady, explain.PreflightFixed, explain.PreflightProblem, explain.PreflightRegistered,
		explain.PreflightBeingImported, explain.PreflightAlreadyImported, explain.PreflightLeftOut} {
		checkWords(t, "check "+v, explain.Preflight(v))
	}
	for _, v := range []string{"", store.VerdictQueued, store.VerdictSending, store.VerdictUnknown, store.VerdictSent, store.VerdictLeftOut,
		store.VerdictImported, store.VerdictPartial, store.VerdictError, store.VerdictRefused, store.VerdictStopped, store.VerdictNotFound} {
		checkWords(t, "row "+v, explain.Row(store.ImportRow{Outcome: store.Outcome{Verdict: v}}, explain.Job{}).State)
	}
	for _, s := range []string{store.BulkQueued, store.BulkInFlight, store.BulkUnknown, store.BulkDone, store.BulkRefused, store.BulkNotFound,
		store.BulkUnconfirmed, store.BulkSkipped} {
		for _, action := range []string{store.BulkGroupTag, store.BulkUnassign, store.BulkDelete} {
			checkWords(t, "bulk device "+s, explain.BulkDevice(action, "Kiosk", store.BulkDevice{BulkOutcome: store.BulkOutcome{State: s}}, nil).State)
		}
	}
	// What an ended import made of its devices: all, some, none, or nothing was sent.
	for _, c := range []struct {
		imported, sent int
		want           string
		meaning        explain.Meaning
	}{{3, 3, "Imported", explain.Done}, {1, 3, "Partly imported", explain.Attention}, {0, 3, "Not imported", explain.Failed}, {0, 0, "Finished", explain.Quiet}} {
		for _, s := range []explain.State{explain.ImportState(importer.StateFinished, c.imported, c.sent), explain.Submission(store.SubmissionFinished, c.imported, c.sent, 0)} {
			if s.Label != c.want || s.Meaning != c.meaning {
				t.Errorf("%d of %d imported: %+v, want %q (%s)", c.imported, c.sent, s, c.want, c.meaning)
			}
		}
	}
}

// A row's badge keeps Graph's import status for support, and says the status in words.
func TestRowVerdictKeepsGraphsImportStatus(t *testing.T) {
	sent := explain.Row(store.ImportRow{Outcome: store.Outcome{Verdict: store.VerdictSent, Status: graphclient.ImportPending}}, explain.Job{})
	if sent.Label != "Importing" || sent.Graph != "deviceImportStatus: pending" || !strings.Contains(sent.Detail, "Intune is importing it") {
		t.Errorf("a row Intune is importing: %+v", sent)
	}
	null := explain.Row(store.ImportRow{Outcome: store.Outcome{Verdict: store.VerdictSent}}, explain.Job{})
	if null.Label != "Importing" || null.Graph != "" || !strings.Contains(null.Detail, "not reported") {
		t.Errorf("a row whose state Graph left null: %+v", null)
	}
	failed := explain.Row(store.ImportRow{Outcome: store.Outcome{Verdict: store.VerdictError, Status: graphclient.ImportError, ErrorCode: 806}}, explain.Job{})
	if failed.Label != "Failed" || failed.Meaning != explain.Failed || failed.Graph != "deviceImportStatus: error" {
		t.Errorf("a row Intune failed: %+v", failed)
	}
	stalled := explain.Row(store.ImportRow{Outcome: store.Outcome{Verdict: store.VerdictNotFound, Reason: store.ReasonStalled, Status: graphclient.ImportPending}}, explain.Job{})
	if !strings.Contains(stalled.Detail, "its import state was “Importing”") || strings.Contains(stalled.Detail, " pending") {
		t.Errorf("a stalled row says its state as %q", stalled.Detail)
	}
}

// A value nobody has words for is shortened and loses what cannot be seen.
func TestOtherValuesAreShortAndVisible(t *testing.T) {
	s := explain.EnrollmentState(graphclient.EnrollmentState("new\u202e" + strings.Repeat("x", 100)))
	if strings.ContainsRune(s.Label, '\u202e') || strings.ContainsRune(s.Graph, '\u202e') || utf8.RuneCountInString(s.Label) > 50 {
		t.Errorf("an unknown value reads %q (%q)", s.Label, s.Graph)
	}
	if got := explain.DeviceImportStatus(graphclient.ImportPartial).InSentence(); got != "partly imported" {
		t.Errorf("in a sentence: %q", got)
	}
}

// checkWords fails unless s is said in the desk's voice: words in sentence case, not a value
// the desk has no words for, and a meaning.
func checkWords(t *testing.T, what string, s explain.State) {
	t.Helper()
	first, _ := utf8.DecodeRuneInString(s.Label)
	switch {
	case s.Label == "" || strings.HasPrefix(s.Label, "Other ("):
		t.Errorf("%s has no words (%q)", what, s.Label)
	case !unicode.IsUpper(first):
		t.Errorf("%s reads %q: not in sentence case", what, s.Label)
	case strings.ContainsAny(s.Label, "-_") || camelCase(s.Label):
		t.Errorf("%s reads %q: a value, not words", what, s.Label)
	}
	if !slices.Contains(explain.Meanings[:], s.Meaning) {
		t.Errorf("%s has no meaning (%q)", what, s.Meaning)
	}
}

// camelCase reports whether s has a capital inside a word, as Graph's values do ("notContacted").
func camelCase(s string) bool {
	prev := ' '
	for _, r := range s {
		if unicode.IsUpper(r) && unicode.IsLower(prev) {
			return true
		}
		prev = r
	}
	return false
}

// Every profile assignment status Intune reports, but unknown, says what it means for the
// device's next setup; a failure names Intune's reason when it gives one.
func TestEveryProfileAssignmentSaysWhatItMeans(t *testing.T) {
	fallback := explain.ProfileMeaning("somethingNew", "")
	for _, s := range graphclient.ProfileAssignmentStatuses {
		if got := explain.ProfileMeaning(s, "none"); got == "" || (got == fallback) != (s == graphclient.ProfileUnknown) {
			t.Errorf("%s: %q", s, got)
		}
	}
	for _, detail := range []string{"hardwareRequirementsNotMet", "surfaceHubProfileNotSupported", "holoLensProfileNotSupported",
		"windowsPcProfileNotSupported", "surfaceHub2SProfileNotSupported"} {
		if got := explain.ProfileMeaning(graphclient.ProfileFailed, detail); got == explain.ProfileMeaning(graphclient.ProfileFailed, "none") {
			t.Errorf("%s: %q", detail, got)
		}
	}
}
