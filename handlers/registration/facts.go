package registration

import (
	"encoding/json"
	"strings"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
)

// A submission keeps facts, as import jobs do; pages and the device's answers put them into words
// when they are shown (RefusalText, SyncText).

// Refusal is why an approval imported nothing and the devices wait again: Graph refused the
// approver's import for their account (a 403).
type Refusal struct {
	By      string          `json:"by"`
	At      time.Time       `json:"at"`
	Failure explain.Failure `json:"failure"`
}

// Encode is the refusal as a submission keeps it.
func (r Refusal) Encode() string { return string(jobs.Encode(r)) }

// DecodeRefusal reads a submission's refusal; ok is false when it has none.
func DecodeRefusal(stored string) (r Refusal, ok bool) {
	if stored == "" || json.Unmarshal([]byte(stored), &r) != nil {
		return Refusal{}, false
	}
	return r, true
}

// RefusalText says on the waiting list why devices wait again. Whoever reads it, the approver or
// someone else in the team, it speaks of the approver.
func RefusalText(stored string) string {
	r, ok := DecodeRefusal(stored)
	if !ok {
		return ""
	}
	return r.By + " approved at " + r.At.UTC().Format("15:04") + " UTC, but Microsoft Graph refused the import for their account: " +
		RefusedBecause(r.Failure) + ". Nothing was imported; someone allowed to import devices in Intune can approve them."
}

// RefusedBecause is why Graph refused an approver's import, said of the approver rather than to
// them.
func RefusedBecause(f explain.Failure) string {
	if f.Graph != nil {
		switch f.Graph.Kind {
		case graphclient.KindForbiddenRole:
			return "their Intune role does not allow importing Autopilot devices"
		case graphclient.KindForbiddenPermission:
			return "the desk was not granted the permission to change Autopilot devices for their sign-in"
		case graphclient.KindConditionalAccess:
			return "a Conditional Access policy asked them to sign in again first"
		case graphclient.KindForbiddenLicense:
			return "the tenant has no active Intune licence"
		}
	}
	return "Graph's answer was “" + strings.TrimSuffix(explain.Title(f), ".") + "”"
}

// What became of the Autopilot sync after an approved import.
const (
	SyncRequested     = "requested"       // Intune accepted the sync
	SyncRunning       = "running"         // a sync was running already (409); it picks the devices up
	SyncAgain         = "again"           // Intune asked to wait (429) or was unavailable: asked again at Next
	SyncFailed        = "failed"          // Intune refused it otherwise
	SyncUnknown       = "unknown"         // its answer was lost (time-out, 500, 502, 504): it may have run
	SyncWaitingSignIn = "waiting-sign-in" // the approver has no live session: tried again at Next
	SyncNoSession     = "no-session"      // the approver did not sign in again within the hour
)

// SyncOutcome is what a submission keeps of its sync.
type SyncOutcome struct {
	State   string           `json:"state"`
	At      time.Time        `json:"at"`
	Next    time.Time        `json:"next,omitzero"`
	By      string           `json:"by,omitempty"`
	Failure *explain.Failure `json:"failure,omitempty"`
}

// Encode is the outcome as a submission keeps it.
func (o SyncOutcome) Encode() string { return string(jobs.Encode(o)) }

// SyncText says what became of the sync, for the registration page.
func SyncText(stored string) string {
	var o SyncOutcome
	if stored == "" || json.Unmarshal([]byte(stored), &o) != nil {
		return ""
	}
	switch o.State {
	case SyncRequested:
		return "Intune was asked to sync Autopilot devices at " + o.At.UTC().Format("15:04") + " UTC."
	case SyncRunning:
		return "An Autopilot sync was already running; it picks up the devices."
	case SyncAgain:
		return "Intune allows one Autopilot sync every 10 minutes: the desk asks again at " + o.Next.UTC().Format("15:04") + " UTC."
	case SyncWaitingSignIn:
		return "The Autopilot sync waits for " + o.By + " to sign in to the desk again."
	case SyncUnknown:
		return "Intune was asked to sync Autopilot devices at " + o.At.UTC().Format("15:04") + " UTC, but no answer came back, so the sync may have run or not; Intune shows the devices after its next sync at the latest."
	case SyncNoSession:
		return "The Autopilot sync was not requested: " + o.By + " did not sign in to the desk again within the hour. Intune shows the devices after its next sync."
	}
	title := "Intune refused it"
	if o.Failure != nil {
		title = explain.ForAction("sync", *o.Failure).Title
	}
	return "The Autopilot sync did not run (" + title + "); Intune shows the devices after its next sync."
}
