package views

import (
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
)

// Access is whether the signed-in person may change anything: Autopilot devices, imports,
// registrations and uploads. A read-only person sees every page without its change controls.
type Access struct {
	ReadOnly bool
	ByGrant  bool   // because of the permission the organisation granted the desk, not their role
	Reason   string // why they may only read, in words for them
}

// RegisteredList is GET /devices.
type RegisteredList struct {
	Serial        string // the search Graph ran
	Tag, State    string // filters on the desk's side
	NoTag, NoUser bool
	Tags          []string // the group tags of the devices loaded
	Devices       []RegisteredRow
	Loaded, Pages int  // devices and pages read from Graph
	Filtered      bool // a desk-side filter is on
	MoreURL       string
	AtLimit       bool // as many pages as one list reads
	ExportURL     string
	Failure       *Failure
	Access        Access
	Budget        string // Intune's write budget in words
	Exchange      *graphclient.Exchange
	Support       graphclient.SupportDetails
	Now           time.Time
	// What was chosen for a bulk change before a sign-in interrupted it, or before its review
	// found something wrong (BulkProblems, by field: "device", "action", "groupTag").
	Chosen              map[string]bool
	BulkAction, BulkTag string
	BulkProblems        map[string]string
	ListQuery           string // the list's search, filters and pages, for the bulk form to come back to
	MaxBulk             int    // the most devices one bulk change takes
	Sync                *AutopilotSync
}

// AutopilotSync is the tenant's sync with the Windows Autopilot service, or why it could not be read.
type AutopilotSync struct {
	State                 explain.State
	LastSync, LastRequest time.Time // zero: never
	// ReadAt is when the desk read the figures, shown when they were read for an earlier page
	// (zero: read for this one).
	ReadAt  time.Time
	Failure *Failure
}

// OverBulk reports whether the list shows more devices than one bulk change takes.
func (l RegisteredList) OverBulk() bool { return l.MaxBulk > 0 && len(l.Devices) > l.MaxBulk }

// bulkFieldID is the id of the control a bulk form's problem links to: the first device's box for
// the devices.
func bulkFieldID(l RegisteredList, field string) string {
	switch field {
	case "device":
		if len(l.Devices) > 0 {
			return "choose-" + l.Devices[0].ID
		}
		return "bulk-form"
	case "action":
		return "bulk-action"
	}
	return "bulk-tag"
}

// bulkDescribedBy names the help of a bulk form's control, and its problem when it has one.
func bulkDescribedBy(l RegisteredList, field, help string) string {
	ids := help
	if l.BulkProblems[field] != "" {
		ids = strings.TrimSpace(ids + " bulk-" + field + "-error")
	}
	return ids
}

// Searching reports whether a search or a filter narrows the list.
func (l RegisteredList) Searching() bool { return l.Serial != "" || l.Filtered }

// SerialOnlyURL is the list with the serial search alone, without the other filters.
func (l RegisteredList) SerialOnlyURL() string {
	return "/devices?" + url.Values{"serial": {l.Serial}}.Encode()
}

// leftOutNote says that devices a filter left out need no import.
func leftOutNote(n int) string {
	if n == 1 {
		return "The device is registered: there is nothing to import."
	}
	return "These devices are registered: there is nothing to import."
}

// pronoun is "it" for one device, "them" for more.
func pronoun(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// RegisteredRow is one registered device on the list.
type RegisteredRow struct {
	ID, Serial, Manufacturer, Model, GroupTag, User, DisplayName string
	State                                                        graphclient.EnrollmentState
	LastContacted                                                time.Time
	Contacted                                                    bool
	Exact                                                        bool // its serial is exactly the one searched for
}

// Property is one property of a registered device: Graph's name, a plain label, its value.
type Property struct {
	Name, Label, Value string
	State              string // for enrollmentState: the member, for its badge
}

// PendingChange is a change Graph accepted that the device does not show yet.
type PendingChange struct {
	What, By   string
	At         time.Time
	Link       string // its record
	AnswerLost bool   // sent, but Graph's answer was lost: not known to be accepted
}

// pendingChanges are the changes of pending whose answer was lost, or those Graph accepted.
func pendingChanges(pending []PendingChange, answerLost bool) []PendingChange {
	var out []PendingChange
	for _, c := range pending {
		if c.AnswerLost == answerLost {
			out = append(out, c)
		}
	}
	return out
}

// ChangeResult is what became of a change of this device: made a moment ago, or refused before
// anything was sent.
type ChangeResult struct {
	ActivityID string
	Outcome    string // success, failure, outcome-unknown, not-sent
	Summary    string
	At         time.Time
	Failure    *Failure
	Exchange   *graphclient.Exchange
	Support    graphclient.SupportDetails
	NotSaved   bool
	Visible    bool // the device already shows it
	Unread     bool // the device could not be read just now, so nothing tells whether it shows it
	Superseded bool // the device shows a later change of the same value instead
}

// HistoryEntry is one thing the desk did to a device.
type HistoryEntry struct {
	At             time.Time
	Who, What      string
	Outcome        explain.State
	Link, LinkText string
}

// DeviceForms are the change forms of a device's page, with their one-time keys and the values
// to show.
type DeviceForms struct {
	GroupTag, DisplayName                  string
	UserPrincipalName, AddressableUserName string
	PropertiesKey, AssignKey, UnassignKey  string
	// The group tag and name the form showed before anything was typed: only a field typed
	// otherwise is sent, so a save never puts back a value changed since (by anyone).
	ShownGroupTag, ShownDisplayName string
	// Errors are what is wrong with the values typed, by field name; nothing was sent.
	Errors   map[string]string
	UserSent bool // the form sent was the assigned user's
}

// deviceFieldLabels name a device form's fields in its error summary's order.
var deviceFieldLabels = []struct{ Name, Label string }{
	{"groupTag", "Group tag"}, {"displayName", "Device name"}, {"userPrincipalName", "User principal name"}, {"addressableUserName", "User friendly name"},
}

// problemsOf are the problems of the named fields, in the form's order, for its error summary.
func (f *DeviceForms) problemsOf(names ...string) []Property {
	var out []Property
	for _, l := range deviceFieldLabels {
		if msg := f.Errors[l.Name]; msg != "" && slices.Contains(names, l.Name) {
			out = append(out, Property{Name: l.Name, Label: l.Label, Value: msg})
		}
	}
	return out
}

// describedBy names a device form field's help (when it has one) and its error (when it has one).
func (f *DeviceForms) describedBy(name, help string) string {
	if f.Errors[name] != "" {
		return strings.TrimSpace(help + " " + name + "-error")
	}
	return help
}

// RegisteredDevice is GET /devices/{id}.
type RegisteredDevice struct {
	ID, Serial string
	Device     *graphclient.AutopilotDevice
	Missing    bool // Graph has no registration with this id
	Properties []Property
	Pending    []PendingChange
	Change     *ChangeResult
	History    []HistoryEntry
	Forms      *DeviceForms // nil: no change controls
	Access     Access
	Exchange   *graphclient.Exchange
	Support    graphclient.SupportDetails
	Failure    *Failure
	Profile    *ProfileAssignment // nil when the device could not be read
	Now        time.Time
}

// ProfileAssignment is a device's Windows Autopilot deployment profile, or why it could not be read.
type ProfileAssignment struct {
	State      explain.State
	Meaning    string
	Profile    string    // the assigned profile's name
	Intended   string    // the profile Intune means to assign, when it is another
	AssignedAt time.Time // zero: never
	Failure    *Failure
}

// DeleteDevice is the confirmation before a registration is deleted.
type DeleteDevice struct {
	Device  RegisteredRow
	FormKey string
}

// BulkJob is a bulk change's page: its confirmation while a draft, its progress and outcome once
// confirmed.
type BulkJob struct {
	ID, State, Action, GroupTag string
	What                        string // "set the group tag to “Kiosk”"
	Owner, OwnerName            string
	IsOwner                     bool
	Access                      Access
	Created                     time.Time
	Devices                     []BulkRow
	Missing                     []string
	NoUser                      []string // serial numbers of devices left out of an unassign: they have no user
	Counts                      BulkCounts
	Enrolled                    int // devices enrolled in Intune (a delete may be refused for them)
	Paused                      bool
	Waiting                     *BulkWait
	Trouble                     string
	Refusal                     *explain.Explanation
	RefusalSupport              graphclient.SupportDetails // the ids of the refusal, for Microsoft support
	Budget                      string
	Estimate                    time.Duration
	FormKey                     string
	RefreshSeconds              int
	// Overlaps are the bulk changes still running that have some of a draft's devices not yet
	// changed, for the same change: confirming it leaves those devices to it.
	Overlaps []BulkOverlap
	// Again are the devices of a finished change it may be prepared again for as it was
	// (bulk.Again), counted by outcome in AgainCounts; Correct, those of a group tag change Graph
	// refused for the group tag (bulk.Correct), prepared again with the group tag to correct.
	Again       []string
	AgainCounts BulkCounts
	Correct     []string
	// Correction: a draft prepared again for devices whose group tag Graph refused; its review
	// shows the group tag to correct (Typed: as typed there, with what is wrong with it).
	Correction *BulkCorrection
	Typed      *TypedTag
	// Serials: the devices were chosen by serial number, and this is what became of those given.
	Serials *BulkSerials
	// Restored says why a draft the desk's backup held is not confirmed here; empty for any other.
	Restored string
}

// chosenHow says how a bulk change's devices were chosen, after "devices".
func chosenHow(j BulkJob) string {
	if j.Serials != nil {
		return "found by serial number"
	}
	return "you ticked"
}

// BulkCorrection is what Graph refused in the bulk change a draft was prepared again from.
type BulkCorrection struct {
	Tag, From string // the group tag Graph refused, and the change it refused it in
	Refusal   explain.Explanation
}

// TypedTag is a group tag typed in a bulk change's review that the desk refused, with why.
type TypedTag struct{ Value, Problem string }

// TagValue is the group tag the review's field shows: as typed, or the one the change sets.
func (j BulkJob) TagValue() string {
	if j.Typed != nil {
		return j.Typed.Value
	}
	return j.GroupTag
}

// BulkOverlap is a running bulk change that shares devices with a draft.
type BulkOverlap struct {
	ID, What, Owner string
	Devices         int
}

// Finished reports whether every device has its final outcome.
func (j BulkJob) Finished() bool { return j.State == "finished" }

// BulkWait is a pause the page explains.
type BulkWait struct {
	Reason string
	Until  time.Time
}

// BulkCounts tally a bulk job's devices.
type BulkCounts struct {
	Devices, Final                                int
	Queued, Sending, Unknown                      int
	Done, Refused, NotFound, Unconfirmed, Skipped int
	Superseded                                    int // not sent: left to a bulk change confirmed later
	Replaced                                      int // answer lost, and a later change of the device made since
	Reconciled                                    int // done, as found by reading them after an answer was lost
	ReplacedOnPage                                int // of the replaced, those replaced by a change made on the device's page
	Restored                                      int // of the unknown, those the backup the desk was restored from had not sent
}

// BulkRow is one device of a bulk job.
type BulkRow struct {
	DeviceID, Serial, Manufacturer, Model, GroupTag, User string
	State                                                 graphclient.EnrollmentState
	Key                                                   string // a store.Bulk* state, for tests
	Outcome                                               explain.State
	Detail                                                string
	StatusCode                                            int
	ActivityID                                            string
	Reconciled                                            bool // found by reading it after an answer was lost
	SeeRefusal                                            bool // its words are brief: the refusal above says what to do
}

// BulkList is GET /devices/bulk: every change still running, then a page of finished ones.
type BulkList struct {
	Running, Finished []BulkSummary
	Older             bool   // the finished ones are older than the newest page
	OlderURL          string // the page of finished changes older than these; "" when none
}

// BulkSummary is one bulk change on the list.
type BulkSummary struct {
	ID, Owner, What, State string
	Created                time.Time
	Devices                int
}

// contactedText says when a device last contacted Intune, relative to now.
func contactedText(t time.Time, ok bool, now time.Time) string {
	if !ok {
		return "Never"
	}
	d := now.Sub(t)
	switch {
	case d < 0:
		return When(t)
	case d < time.Minute:
		return "Just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute ago", "minutes ago")
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour ago", "hours ago")
	case d < 60*24*time.Hour:
		return plural(int(d/(24*time.Hour)), "day ago", "days ago")
	}
	return t.UTC().Format("2 Jan 2006")
}

// deviceCrumb names a device's page in its crumb trail: by its serial number when it is known.
func deviceCrumb(d RegisteredDevice) string {
	if d.Serial != "" {
		return d.Serial
	}
	return "Device"
}

// known joins the parts Graph or a device's file gave, "HP · EliteBook 840", leaving out the ones
// they did not.
func known(parts ...string) string {
	return strings.Join(slices.DeleteFunc(parts, func(p string) bool { return p == "" }), " · ")
}

// makerModel is a device's manufacturer and model as one name, leaving the manufacturer out when
// the model already starts with it ("HP EliteBook 840", not "HP HP EliteBook 840").
func makerModel(manufacturer, model string) string {
	switch {
	case manufacturer == "":
		return model
	case model == "":
		return manufacturer
	case len(model) >= len(manufacturer) && strings.EqualFold(model[:len(manufacturer)], manufacturer):
		return model
	}
	return manufacturer + " " + model
}

func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// listSummary says how many devices the list shows of those loaded.
func listSummary(l RegisteredList) string {
	var b strings.Builder
	switch {
	case l.Searching() && l.Loaded == 0:
		b.WriteString("No registered device matches")
	case l.Searching() && len(l.Devices) == l.Loaded:
		b.WriteString(plural(len(l.Devices), "device matches", "devices match"))
	case l.Searching():
		b.WriteString(plural(len(l.Devices), "device matches", "devices match"))
		b.WriteString(" of " + plural(l.Loaded, "device", "devices") + " loaded")
	default:
		b.WriteString(plural(l.Loaded, "registered device", "registered devices") + " loaded")
	}
	if l.Pages > 1 {
		b.WriteString(" (" + strconv.Itoa(l.Pages) + " pages)")
	}
	b.WriteString(".")
	if l.Filtered {
		b.WriteString(" The filters apply to the devices loaded")
		if l.MoreURL != "" {
			b.WriteString("; load more pages to filter further")
		}
		b.WriteString(".")
	}
	return b.String()
}

func estimateText(d time.Duration) string {
	if d <= 0 {
		return "a few seconds"
	}
	if d < 2*time.Minute {
		return "about " + explain.Duration(d)
	}
	return "about " + explain.Duration(d.Round(time.Minute))
}

// bulkWillText says what confirming a bulk change does, counting the devices.
func bulkWillText(j BulkJob) string {
	n := plural(len(j.Devices), "device", "devices")
	switch j.Action {
	case "unassign-user":
		return "The user will be unassigned from " + n + "."
	case "delete":
		return plural(len(j.Devices), "device registration", "device registrations") + " will be deleted."
	}
	if j.GroupTag == "" {
		return "The group tag of " + n + " will be cleared."
	}
	return "The group tag of " + n + " will be set to “" + j.GroupTag + "”."
}

func hasHave(n int) string {
	if n == 1 {
		return "has"
	}
	return "have"
}

func itThey(n int) string {
	if n == 1 {
		return "it is"
	}
	return "they are"
}

// bulkConfirmText is the confirm button's words: it counts the devices.
func bulkConfirmText(j BulkJob) string {
	n := plural(len(j.Devices), "device", "devices")
	switch j.Action {
	case "unassign-user":
		return "Unassign the user from " + n
	case "delete":
		return "Delete the registration of " + n
	}
	if j.GroupTag == "" {
		return "Clear the group tag of " + n
	}
	return "Set group tag “" + j.GroupTag + "” on " + n
}

func bulkHeading(j BulkJob) string {
	n := plural(len(j.Devices), "device", "devices")
	if j.State == "draft" {
		switch {
		case j.Action == "unassign-user":
			return "Unassign the user from " + n + "?"
		case j.Action == "delete":
			return "Delete the Autopilot registration of " + n + "?"
		case j.GroupTag == "":
			return "Clear the group tag of " + n + "?"
		}
		return "Set the group tag of " + n + " to “" + j.GroupTag + "”?"
	}
	if j.Finished() {
		return "Bulk change finished"
	}
	return "Changing " + n
}

// bulkSummary says how far a bulk change is. The devices with a final outcome are broken down
// after the colon (adding up to the number said), the others after the semicolon: "2 of 5 devices
// have a final outcome: 1 changed and 1 refused by Graph; 3 are being sent."
// bulkCorrectText says which of a finished change's devices Graph refused for the group tag, and
// what preparing the change again for them does.
func bulkCorrectText(j BulkJob) string {
	n := plural(len(j.Correct), "device", "devices")
	refused := "Microsoft Graph refused the group tag “" + j.GroupTag + "” for " + n + "."
	if j.GroupTag == "" {
		refused = "Microsoft Graph refused to clear the group tag of " + n + "."
	}
	return refused + " Prepare the change again for " + itThem(len(j.Correct)) + ": its review shows the group tag for you to correct, and nothing is sent until you confirm."
}

func itThem(n int) string {
	if n == 1 {
		return "it"
	}
	return "them"
}

// bulkCorrectionTitle names what Graph refused in the change a review was prepared again from.
func bulkCorrectionTitle(j BulkJob) string {
	if j.Correction.Tag == "" {
		return "Microsoft Graph refused to clear the group tag of these devices"
	}
	return "Microsoft Graph refused the group tag “" + j.Correction.Tag + "” for these devices"
}

// bulkCorrectionNext says what to do in a review prepared again to correct the group tag.
func bulkCorrectionNext(j BulkJob) string {
	if j.GroupTag == j.Correction.Tag {
		return "Correct the group tag below, then confirm the change. Nothing has been sent yet."
	}
	if j.GroupTag == "" {
		return "This change now clears the group tag instead. Confirm it below, or change the group tag again. Nothing has been sent yet."
	}
	return "This change now sets the group tag to “" + j.GroupTag + "” instead. Confirm it below, or change the group tag again. Nothing has been sent yet."
}

// bulkAgainText says which of a finished change's devices it may be prepared again for as it was.
func bulkAgainText(j BulkJob) string {
	var parts []string
	for _, x := range []struct {
		n    int
		what string
	}{{j.AgainCounts.Refused, "refused by Graph"}, {j.AgainCounts.Skipped, "not sent"}, {j.AgainCounts.Unconfirmed, "to check (outcome unknown)"}} {
		if x.n > 0 {
			parts = append(parts, thousands(x.n)+" "+x.what)
		}
	}
	return explain.Sentence(plural(len(j.Again), "device", "devices")) + " did not end as changed: " + joinList(parts) + "."
}

func bulkSummary(c BulkCounts, finished bool) string {
	tally := func(xs []struct {
		n          int
		one, other string
	}) []string {
		var parts []string
		for _, x := range xs {
			if x.n > 0 {
				parts = append(parts, plural(x.n, x.one, x.other))
			}
		}
		return parts
	}
	final := tally([]struct {
		n          int
		one, other string
	}{
		{c.Done, "changed", "changed"}, {c.Refused, "refused by Graph", "refused by Graph"}, {c.NotFound, "not found", "not found"},
		{c.Unconfirmed, "to check (outcome unknown)", "to check (outcome unknown)"}, {c.Skipped, "not sent", "not sent"},
		{c.Superseded, "left to a later bulk change", "left to a later bulk change"},
		{c.Replaced - c.ReplacedOnPage, "replaced by a later bulk change", "replaced by a later bulk change"},
		{c.ReplacedOnPage, "replaced by a change on the device's page", "replaced by changes on their devices' pages"},
	})
	open := tally([]struct {
		n          int
		one, other string
	}{
		{c.Sending, "is being sent", "are being sent"}, {c.Unknown, "is being read in Graph to find out whether it changed", "are being read in Graph to find out whether they changed"},
		{c.Queued, "is queued", "are queued"},
	})
	var s string
	if finished && len(open) == 0 && len(final) > 0 {
		s = explain.Sentence(joinList(final)) + " — " + plural(c.Devices, "device", "devices") + " in all"
	} else {
		s = strconv.Itoa(c.Final) + " of " + plural(c.Devices, "device has", "devices have") + " a final outcome"
		if len(final) > 0 {
			s += ": " + joinList(final)
		}
		if len(open) > 0 {
			s += "; " + joinList(open)
		}
	}
	s += "."
	if c.Reconciled > 0 {
		if c.Reconciled == 1 {
			s += " 1 device was found changed by reading it in Graph after an answer was lost."
		} else {
			s += " " + strconv.Itoa(c.Reconciled) + " devices were found changed by reading them in Graph after an answer was lost."
		}
	}
	return s
}

func beforeHeading(action string) string {
	if action == "group-tag" {
		return "Group tag before"
	}
	return "Assigned user before"
}

func statusText(code int) string {
	if code == 0 {
		return "—"
	}
	return strconv.Itoa(code)
}
