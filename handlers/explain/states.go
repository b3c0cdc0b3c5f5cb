package explain

import (
	"unicode"
	"unicode/utf8"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/unseen"
)

// The words of every state a page shows as a badge: Graph's enums and the desk's own, one
// function each, in sentence case, so a state reads the same on every page. A Graph enum keeps
// Graph's own value beside the words for support; the exchange and the support details print
// Graph's JSON as it came.

// Meaning is what a state means to the person reading it; a page shows it as the badge's colour.
type Meaning string

// The meanings of a state.
const (
	Done      Meaning = "done"      // finished as asked
	Moving    Meaning = "moving"    // on its way; nothing to do but wait
	Attention Meaning = "attention" // needs a look: not known yet, partly done, already there
	Failed    Meaning = "failed"    // refused or failed
	Quiet     Meaning = "quiet"     // nothing happens: a draft, left out, expired, ended
)

// Meanings are every meaning, for the pages' tests.
var Meanings = [...]Meaning{Done, Moving, Attention, Failed, Quiet}

// State is a state as a badge says it.
type State struct {
	Label   string // the desk's words, in sentence case: "Not contacted"
	Meaning Meaning
	Graph   string // for a Graph enum, its property and value as Graph spells them ("enrollmentState: notContacted")
}

// toCheck is a write whose outcome the desk could not learn: not "failed" (Graph may have made
// it, and sending it again could make it twice), but a person should look.
var toCheck = State{Label: "Outcome unknown — check", Meaning: Attention}

// InSentence is the label as it reads inside a sentence: "partly imported".
func (s State) InSentence() string {
	r, n := utf8.DecodeRuneInString(s.Label)
	return string(unicode.ToLower(r)) + s.Label[n:]
}

func graphState(property, value, label string, m Meaning) State {
	return State{Label: label, Meaning: m, Graph: property + ": " + value}
}

// other is a value the desk has no words for (Graph may add members to its enums): said as it
// came, shortened and without characters nobody can see, and to be looked at.
func other(value string) string {
	value = unseen.Drop(value)
	if utf8.RuneCountInString(value) > 40 {
		value = string([]rune(value)[:40]) + "…"
	}
	return "Other (" + value + ")"
}

// UploadStatus says an upload's status (importedWindowsAutopilotDeviceIdentityUploadStatus).
func UploadStatus(s string) State {
	switch s {
	case graphclient.UploadNoUpload:
		return graphState("status", s, "No upload", Quiet)
	case graphclient.UploadPending:
		return graphState("status", s, "Pending", Moving)
	case graphclient.UploadComplete:
		return graphState("status", s, "Complete", Done)
	case graphclient.UploadError:
		return graphState("status", s, "Failed", Failed)
	case "":
		return State{Label: "Not given", Meaning: Quiet}
	}
	return graphState("status", unseen.Drop(s), other(s), Attention)
}

// DeviceImportStatus says where Intune stands with an imported device (deviceImportStatus); a
// missing (null) status reads as unknown, as graphclient reads it.
func DeviceImportStatus(s string) State {
	if s == "" {
		s = graphclient.ImportUnknown
	}
	switch s {
	case graphclient.ImportUnknown:
		return graphState("deviceImportStatus", s, "Not reported yet", Moving)
	case graphclient.ImportPending:
		return graphState("deviceImportStatus", s, "Importing", Moving)
	case graphclient.ImportPartial:
		return graphState("deviceImportStatus", s, "Partly imported", Attention)
	case graphclient.ImportComplete:
		return graphState("deviceImportStatus", s, "Imported", Done)
	case graphclient.ImportError:
		return graphState("deviceImportStatus", s, "Failed", Failed)
	}
	return graphState("deviceImportStatus", unseen.Drop(s), other(s), Attention)
}

// EnrollmentState says a registered device's enrollmentState in the Intune admin center's words.
func EnrollmentState(s graphclient.EnrollmentState) State {
	switch s {
	case graphclient.EnrollmentEnrolled:
		return graphState("enrollmentState", string(s), "Enrolled", Done)
	case graphclient.EnrollmentNotContacted:
		return graphState("enrollmentState", string(s), "Not contacted", Quiet)
	case graphclient.EnrollmentPendingReset:
		return graphState("enrollmentState", string(s), "Pending reset", Attention)
	case graphclient.EnrollmentFailed:
		return graphState("enrollmentState", string(s), "Enrollment failed", Failed)
	case graphclient.EnrollmentUnknown, "":
		return graphState("enrollmentState", string(graphclient.EnrollmentUnknown), "Unknown", Quiet)
	}
	return graphState("enrollmentState", unseen.Drop(string(s)), other(string(s)), Attention)
}

// The outcomes of a recorded activity.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeUnknown = "outcome-unknown"
)

// Outcomes are the activity outcomes in the order the activity filter offers them.
var Outcomes = [...]string{OutcomeSuccess, OutcomeFailure, OutcomeUnknown}

// Outcome says a recorded activity's outcome.
func Outcome(s string) State {
	switch s {
	case OutcomeSuccess:
		return State{Label: "Succeeded", Meaning: Done}
	case OutcomeFailure:
		return State{Label: "Failed", Meaning: Failed}
	case OutcomeUnknown:
		return State{Label: "Outcome unknown", Meaning: Attention}
	}
	return State{Label: other(s), Meaning: Attention}
}

// ImportState says where an import stands (handlers/importer's job states); a finished one by
// what it made of the devices it sent.
func ImportState(state string, imported, sent int) State {
	switch state {
	case "draft":
		return State{Label: "Draft", Meaning: Quiet}
	case "checking":
		return State{Label: "Checking serials", Meaning: Moving}
	case "sending":
		return State{Label: "Importing", Meaning: Moving}
	case "finished":
		return ImportEnded(imported, sent)
	}
	return State{Label: other(state), Meaning: Attention}
}

// ImportEnded says what an ended import made of the devices it sent: all imported, some, none.
func ImportEnded(imported, sent int) State {
	switch {
	case sent == 0:
		return State{Label: "Finished", Meaning: Quiet}
	case imported >= sent:
		return State{Label: "Imported", Meaning: Done}
	case imported == 0:
		return State{Label: "Not imported", Meaning: Failed}
	}
	return State{Label: "Partly imported", Meaning: Attention}
}

// BulkState says where a bulk change stands (handlers/bulk's job states).
func BulkState(state string) State {
	switch state {
	case "draft":
		return State{Label: "Not confirmed", Meaning: Quiet}
	case "sending":
		return State{Label: "In progress", Meaning: Moving}
	case "finished":
		return State{Label: "Finished", Meaning: Quiet}
	}
	return State{Label: other(state), Meaning: Attention}
}

// CodeState says whether a registration code still takes devices.
func CodeState(state string) State {
	switch state {
	case "active":
		return State{Label: "Active", Meaning: Moving}
	case "expired":
		return State{Label: "Expired", Meaning: Quiet}
	case "revoked":
		return State{Label: "Revoked", Meaning: Quiet}
	case "used":
		return State{Label: "All used", Meaning: Quiet}
	}
	return State{Label: other(state), Meaning: Attention}
}

// Submission says where a registration from the device stands (store.Submission*); a finished
// one by what its import made of the devices.
func Submission(state string, imported, sent, unknown int) State {
	switch state {
	case "waiting":
		return State{Label: "Waiting for approval", Meaning: Attention}
	case "approved":
		return State{Label: "Importing", Meaning: Moving}
	case "finished":
		if unknown > 0 {
			// Not "not imported": Intune may have them, and sending them again could import them twice.
			return toCheck
		}
		return ImportEnded(imported, sent)
	case "rejected":
		return State{Label: "Rejected", Meaning: Failed}
	case "expired":
		return State{Label: "Expired", Meaning: Quiet}
	}
	return State{Label: other(state), Meaning: Attention}
}

// The verdicts of a row's check before importing.
const (
	PreflightReady           = "ok"
	PreflightFixed           = "fixed"
	PreflightProblem         = "error"
	PreflightRegistered      = "already registered"
	PreflightBeingImported   = "being imported"
	PreflightAlreadyImported = "already imported"
	PreflightLeftOut         = "left out"
)

// Preflight says a row's verdict at the check before importing.
func Preflight(verdict string) State {
	switch verdict {
	case PreflightReady:
		return State{Label: "Ready", Meaning: Done}
	case PreflightFixed:
		return State{Label: "Fixed", Meaning: Done}
	case PreflightProblem:
		return State{Label: "Needs fixing", Meaning: Failed}
	case PreflightRegistered:
		return State{Label: "Already registered", Meaning: Attention}
	case PreflightBeingImported:
		return State{Label: "Being imported", Meaning: Attention}
	case PreflightAlreadyImported:
		return State{Label: "Already imported", Meaning: Attention}
	case PreflightLeftOut:
		return State{Label: "Left out", Meaning: Quiet}
	}
	return State{Label: other(verdict), Meaning: Attention}
}
