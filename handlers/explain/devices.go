package explain

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/web/store"
)

// The words of the registered-device pages: what a bulk change does and what became of each of
// its devices, a device change Graph refused, why a person may only read, and what a check of
// serials found in the tenant.

// BulkAction says what a bulk change does to each device: "set the group tag to “Kiosk”".
func BulkAction(action, groupTag string) string {
	switch action {
	case store.BulkUnassign:
		return "unassign the user"
	case store.BulkDelete:
		return "delete the Autopilot registration"
	}
	if groupTag == "" {
		return "clear the group tag"
	}
	return "set the group tag to “" + groupTag + "”"
}

// BulkDevice puts one device's outcome of a bulk change into words; stopped is the job's refusal
// that stopped the devices not yet sent, if any.
func BulkDevice(action, groupTag string, d store.BulkDevice, stopped *Failure) Verdict {
	v := Verdict{Key: d.State}
	var f *Failure
	if len(d.Failure) > 0 {
		var stored Failure
		if json.Unmarshal(d.Failure, &stored) == nil {
			f = &stored
		}
	}
	switch d.State {
	case store.BulkQueued:
		v.State, v.Detail = State{Label: "Queued", Meaning: Moving}, "Waiting for its turn in Intune's write budget."
	case store.BulkInFlight:
		v.State, v.Detail = State{Label: "Sending", Meaning: Moving}, "On its way to Microsoft Graph."
	case store.BulkUnknown:
		v.State = State{Label: "Outcome unknown", Meaning: Attention}
		v.Detail = "Microsoft Graph's answer never arrived"
		switch {
		case d.Reason == store.BulkReasonRestored:
			v.Detail = "The desk was restored from a backup taken before this change was sent, and the desk the backup was taken from may have sent it since. The desk reads the device in Graph to find out whether it has the change, and never sends it on its own."
			return v
		case d.Reason == store.BulkReasonDeskStopped:
			v.Detail = "The change was recorded as sent, but the desk stopped (a restart, crash or deploy) before Microsoft Graph's answer was stored"
		case f != nil && f.Graph != nil && f.Graph.StatusCode/100 == 5 && f.Graph.StatusCode != 504 && f.Graph.Kind != graphclient.KindTimeout:
			v.Detail = fmt.Sprintf("Microsoft Graph answered %d (%s), an error that does not say whether the change was made before it", f.Graph.StatusCode, Title(*f))
		case f != nil:
			v.Detail += " (" + Title(*f) + ")"
		}
		v.Detail += ". The desk reads the device in Graph to find out whether it was made, and never sends the change again on its own."
	case store.BulkDone:
		v.State.Meaning = Done
		v.Label, v.Detail = bulkDone(action, groupTag)
		switch {
		case d.Reason == store.BulkReasonRestored:
			v.Detail = "Found by reading the device after the desk was restored from a backup taken before this change was sent: " + bulkFound(action, groupTag)
		case d.Reconciled:
			v.Detail = "Found by reading the device after Graph's answer was lost: " + bulkFound(action, groupTag)
		}
	case store.BulkRefused:
		v.State = State{Label: "Refused by Graph", Meaning: Failed}
		switch {
		case f != nil && sameRefusal(*f, stopped):
			// Said once above the devices, not again in each row a screen reader reads out.
			v.Detail, v.SeeRefusal = NothingChanged(Title(*f)+"."), true
		case f != nil:
			v.Detail = refusedWords(action, groupTag, ForAction(deviceAction(action), *f))
		}
	case store.BulkNotFound:
		v.State = State{Label: "Not found", Meaning: Attention}
		v.Detail = "Microsoft Graph has no Autopilot registration with this id any more (it was deleted meanwhile), so nothing was changed."
		switch d.Reason {
		case store.BulkReasonRestored:
			v.Detail = "The desk was restored from a backup taken before this change was sent, and Microsoft Graph no longer has this registration (it was deleted meanwhile). Nothing was sent."
		case store.BulkReasonGone:
			v.Detail = "Microsoft Graph's answer to the change was lost, and Graph no longer has this registration (it was deleted meanwhile)."
		}
	case store.BulkUnconfirmed:
		v.State = toCheck
		if d.Reason == store.BulkReasonRestored {
			v.Detail = fmt.Sprintf("Not sent by this desk: it was restored from a backup taken before this change was sent, and when it read the device in Graph on %s UTC, %s. The desk the backup was taken from may not have sent it, or the device was changed since. Nothing was sent: open the device to check, and prepare the change again for it if it should still be made.",
				d.DoneAt.UTC().Format("2 Jan 2006 15:04:05"), bulkNotShown(action, groupTag))
			return v
		}
		lost := d.SentAt
		if f != nil && !f.At.IsZero() {
			lost = f.At
		}
		opening := "Microsoft Graph's answer to the change was lost"
		if f != nil && f.Graph != nil && f.Graph.StatusCode/100 == 5 && f.Graph.StatusCode != 504 && f.Graph.Kind != graphclient.KindTimeout {
			opening = fmt.Sprintf("Microsoft Graph answered the change with %d (%s), which does not say whether it was made", f.Graph.StatusCode, Title(*f))
		}
		v.Detail = fmt.Sprintf("%s, and the device did not show the change when the desk read it %s%s. Graph may not have made it, or Intune has not shown it yet. Nothing was sent again: open the device to check, and change it on its own if needed.",
			opening, plural(d.Lookups, "time", "times"), lookedOver(lost, d.DoneAt))
	case store.BulkReplaced:
		later, _ := decodeLater(d.Failure)
		if d.Reason == store.BulkReasonDevicePage {
			v.State = State{Label: "Replaced by a change on the device's page", Meaning: Quiet}
			v.Detail = "Microsoft Graph's answer to this change was lost, and before the desk could read the device a change was made to it on its own page"
			v.Detail += pageChangeNamed(later)
			v.Detail += ". Its value is the one that stands, so whether this change was made first no longer matters. Nothing was sent again, and there is nothing to check."
			return v
		}
		v.State = State{Label: "Replaced by a later bulk change", Meaning: Quiet}
		v.Detail = "Microsoft Graph's answer to this change was lost, and before the desk could read the device a later bulk change was sent to it"
		v.Detail += laterNamed(later, "by")
		v.Detail += ". Its value is the one that stands, so whether this change was made first no longer matters. Nothing was sent again, and there is nothing to check."
		return v
	case store.BulkSkipped:
		if d.Reason == store.BulkReasonSuperseded {
			later, _ := decodeLater(d.Failure)
			v.State = State{Label: "Left to a later bulk change", Meaning: Quiet}
			v.Detail = "Not sent: a bulk change confirmed later changes this device too"
			v.Detail += laterNamed(later, "confirmed by")
			v.Detail += ", so this one left it to that change: the newer choice wins. Nothing was sent to this device for this change."
			return v
		}
		v.State = State{Label: "Not sent", Meaning: Quiet}
		v.Detail = "Not sent: Microsoft Graph refused an earlier change of this bulk change for a reason that holds for every device."
		if stopped != nil {
			v.Detail = "Not sent: Microsoft Graph refused an earlier change of this bulk change for a reason that holds for every device (" + Title(*stopped) + ")."
			v.SeeRefusal = true
		}
	default:
		v.State = State{Label: other(d.State), Meaning: Attention}
	}
	return v
}

// sameRefusal reports whether a device's refusal is the one that stopped its bulk change: Graph
// refused it alike, for a reason that holds for every device.
func sameRefusal(f Failure, stopped *Failure) bool {
	return stopped != nil && f.Graph != nil && stopped.Graph != nil &&
		f.Graph.Kind == stopped.Graph.Kind && f.Graph.StatusCode == stopped.Graph.StatusCode
}

// LaterBulk is the bulk change confirmed later that a device of an earlier one was left to
// (store.BulkReasonSuperseded) or replaced by (store.BulkReplaced), or the change made on the
// device's own page that replaced it (store.BulkReasonDevicePage, Said set): facts, kept as the
// device's Failure.
type LaterBulk struct {
	JobID    string    `json:"laterJob,omitempty"`
	Action   string    `json:"action"`
	GroupTag string    `json:"groupTag,omitempty"`
	By       string    `json:"by"`
	At       time.Time `json:"at"`
	// Said is what a change made on the device's page asked: "group tag “Kiosk”".
	Said string `json:"said,omitempty"`
}

func decodeLater(b []byte) (LaterBulk, error) {
	var l LaterBulk
	if len(b) == 0 {
		return l, nil
	}
	err := json.Unmarshal(b, &l)
	return l, err
}

// lookedOver says over how long after the loss a device or batch was read: " over the 10 minutes
// that followed" ("" when the times are not known).
func lookedOver(lost, last time.Time) string {
	if lost.IsZero() || last.IsZero() || !last.After(lost) {
		return ""
	}
	return " over the " + Duration(last.Sub(lost)) + " that followed"
}

// bulkFound says what reading a device after a lost answer showed: the change, as Graph has it now.
func bulkFound(action, groupTag string) string {
	switch action {
	case store.BulkUnassign:
		return "Graph shows it with no assigned user."
	case store.BulkDelete:
		return "Graph no longer has the Autopilot registration. It leaves the list within a few minutes."
	}
	if groupTag == "" {
		return "Graph shows it with no group tag."
	}
	return "Graph shows it with the group tag “" + groupTag + "”."
}

// bulkNotShown says how a device read in Graph did not show a bulk change: "it did not have the
// group tag “Kiosk”".
func bulkNotShown(action, groupTag string) string {
	switch action {
	case store.BulkUnassign:
		return "it still had an assigned user"
	case store.BulkDelete:
		return "the registration was still there"
	}
	if groupTag == "" {
		return "it still had a group tag"
	}
	return "it did not have the group tag “" + groupTag + "”"
}

func bulkDone(action, groupTag string) (label, detail string) {
	switch action {
	case store.BulkUnassign:
		return "User unassigned", "Graph accepted the change: the device has no assigned user. Intune shows it within a few minutes."
	case store.BulkDelete:
		return "Deleted", "Graph deleted the Autopilot registration. It leaves the list within a few minutes."
	}
	if groupTag == "" {
		return "Group tag cleared", "Graph accepted the change: the group tag is cleared. Intune shows it within a few minutes."
	}
	return "Group tag set", "Graph accepted the change: the group tag is “" + groupTag + "”. Intune shows it within a few minutes."
}

// deviceAction is the action of a single change that a bulk action makes to each device, so a
// refusal reads the same either way.
func deviceAction(bulkAction string) string {
	if bulkAction == store.BulkDelete {
		return "device-delete"
	}
	return "device-change"
}

// refusedWords are a refused device's words: Graph's message and what it means, and that nothing changed.
func refusedWords(action, groupTag string, e Explanation) string {
	switch {
	case e.Action == ActionCheckInput && action == store.BulkGroupTag && groupTag == "":
		e.NextStep = "Prepare the change again for the devices Graph refused it for, and choose the group tag in its review before you confirm."
	case e.Action == ActionCheckInput && action == store.BulkGroupTag:
		e.NextStep = "Prepare the change again for the devices Graph refused this group tag for, and correct the group tag in its review before you confirm."
	case e.Action == ActionCheckInput:
		// An unassign or a delete has no value to correct: what Graph names is the device's.
		e.NextStep = "Check what Graph names on the device's page before you prepare the change again."
	}
	s := e.Title + ". " + e.What
	if action != store.BulkDelete {
		s = NothingChanged(s)
	}
	if e.NextStep != "" {
		s += " " + e.NextStep
	}
	return s
}

// NothingChanged is s followed by "Nothing was changed.", unless s says so already.
func NothingChanged(s string) string {
	if strings.Contains(strings.ToLower(s), "nothing was changed") {
		return s
	}
	return strings.TrimRight(s, " ") + " Nothing was changed."
}

// deviceChange explains a refused change of a registered device: a delete Graph refuses (400
// or 409, a device still enrolled in Intune) has words of its own; a change whose answer was
// lost says to look before sending it again.
func deviceChange(action string, f Failure) (Explanation, bool) {
	ge := f.Graph
	if ge == nil {
		return Explanation{}, false
	}
	if action == "device-delete" && (ge.StatusCode == 400 || ge.StatusCode == 409) {
		said := ""
		if ge.Message != "" {
			said = " Graph said: “" + ge.Message + "”"
		}
		return Explanation{Title: "Graph refused to delete this registration",
			What:     "Microsoft Graph refused the delete, so nothing was deleted: the device is still registered for Autopilot." + said,
			NextStep: "If the device is still enrolled in Intune, delete it from Intune first (Devices › All devices), then delete the registration here."}, true
	}
	if ge.Kind == graphclient.KindOutcomeUnknown {
		ex := graphAnswer(ge)
		ex.NextStep = "Refresh the device's page in a few minutes: it shows the change once Intune has it. Do not send it again before you have looked."
		return ex, true
	}
	return Explanation{}, false
}

// BudgetBusy explains a change of one device not sent because the tenant's write budget is taken
// (or Graph asked every desk to wait) until a time.
func BudgetBusy(budget string, until, now time.Time) Explanation {
	return Explanation{Title: "Intune's write budget for your tenant is in use",
		What:     "Intune accepts " + budget + " from the desk, and they are taken (a bulk change may be running), or Microsoft Graph asked the desk to wait. Nothing was sent.",
		NextStep: fmt.Sprintf("Send it again after %s UTC (in %s).", clockUp(until), Duration(ceilSecond(until).Sub(now))), Action: ActionTryLater}
}

// clockUp is a time of day to the second, rounded up: a time said as the moment to try again is
// never a moment early.
func clockUp(t time.Time) string { return ceilSecond(t).UTC().Format("15:04:05") }

func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); r.Before(t) {
		return r.Add(time.Second)
	}
	return t
}

// WritesHeld explains a write not sent because Microsoft Graph asked every desk to wait (its
// Retry-After to an earlier write of the tenant's) until a time.
func WritesHeld(until, now time.Time) Explanation {
	return Explanation{Title: "Microsoft Graph asked the desk to wait",
		What:     "Graph throttled your tenant's changes a moment ago and asked for a pause. Nothing was sent: a change sent before the pause ends makes Intune ask for a longer one.",
		NextStep: fmt.Sprintf("Send it again after %s UTC (in %s).", clockUp(until), Duration(ceilSecond(until).Sub(now))), Action: ActionTryLater}
}

// NothingToChange explains a change form sent with the values the device already has.
func NothingToChange() Explanation {
	return Explanation{Title: "Nothing to change",
		What: "The values are the ones the device already has, so nothing was sent to Microsoft Graph.", NextStep: "Change a value, then save."}
}

// ReadOnlyByScopes says why a person whose sign-in grants only reading sees no change control.
func ReadOnlyByScopes() string {
	return "Your organisation granted the desk permission to read Autopilot devices for your sign-in but not to change them " +
		"(DeviceManagementServiceConfig.Read.All without DeviceManagementServiceConfig.ReadWrite.All), so you can look at devices, imports, registrations and uploads " +
		"but not import, create, change or delete anything. " +
		"A Global Administrator can grant the desk admin consent for the change permission; then sign out and sign in again."
}

// ReadOnlyRefused says why a person whose change Graph refused with 403 sees no more change controls.
func ReadOnlyRefused(at time.Time, graphSaid string) string {
	s := "Microsoft Graph refused your change of " + at.UTC().Format("2 Jan 2006 15:04:05") + " UTC with 403 Forbidden"
	if graphSaid != "" {
		s += " (“" + graphSaid + "”)"
	}
	return s + ", so the desk shows you these pages without change controls. If your Intune role or the desk's permission has changed since, sign out and sign in again."
}

// Registered says what the tenant holds for a registered serial: "group tag Sales, user
// adele@contoso.com".
func Registered(groupTag, user string) string {
	if groupTag == "" {
		groupTag = "none"
	}
	if user == "" {
		user = "none"
	}
	return "group tag " + groupTag + ", user " + user
}

// BulkWait says why a bulk change waits: pacing to the write budget, a Retry-After Graph gave
// (held: to whichever desk it answered, so every desk waits), or Graph's trouble.
func BulkWait(pacing, held, throttled bool, budget string) string {
	switch {
	case held:
		return "Microsoft Graph asked every desk to wait before sending more changes to this tenant (a Retry-After after it throttled a change)"
	case pacing:
		return "Pacing the changes to Intune's write budget (" + budget + ") shared by everyone using the desk"
	case throttled:
		return "Microsoft Graph is throttling this tenant"
	}
	return "Microsoft Graph was unavailable"
}

// pageChangeNamed names a change made on a device's page in brackets (what it asked, who, when),
// or nothing when it is not known.
func pageChangeNamed(l LaterBulk) string {
	if l.By == "" {
		return ""
	}
	said := ""
	if l.Said != "" {
		said = l.Said + ", "
	}
	return " (" + said + "by " + l.By + " on " + l.At.UTC().Format("2 Jan 2006 15:04:05") + " UTC)"
}

// laterNamed names a later bulk change in brackets (what it does, who, when), or nothing when it
// is not known.
func laterNamed(l LaterBulk, by string) string {
	if l.JobID == "" {
		return ""
	}
	return " (" + BulkAction(l.Action, l.GroupTag) + ", " + by + " " + l.By + " on " + l.At.UTC().Format("2 Jan 2006 15:04:05") + " UTC)"
}
