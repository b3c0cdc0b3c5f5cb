package registration

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/graphclient/unseen"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// The answers below are read on the screen of a device in the middle of Windows setup, in a
// command prompt: plain text, lines of at most 78 characters, times in UTC, no names of the
// people who approve (whoever holds the code reads them), never a whole hash. Text the desk
// stored (a group tag, a note, a reason, a serial, a model) is written through shown: a
// character nobody can see (an escape, a line break, a direction mark) shows as its code instead
// of moving the technician's cursor or reordering the words after it.

const width = 78

// Receipt is what the desk kept of one request from a device.
type Receipt struct {
	Kept          []Kept    // devices now waiting for approval
	NotKept       []NotKept // rows refused, with why
	Waiting       []Waiting // rows sent before that wait already, not kept again
	FileNotes     []string  // what the check repaired in the file as a whole
	Expires       time.Time // when the code expires
	StatusCommand string    // the command that shows the status
}

// Kept is a device row that waits for approval.
type Kept struct {
	Line                        int
	Serial, Manufacturer, Model string
	HashShown                   string
	Notes                       []string // what the check repaired or replaced in the row
	GroupTag, User              string   // what it will be registered with
}

// Waiting is a device row sent before, which waits already (or is being imported).
type Waiting struct {
	Line     int
	Serial   string
	Since    time.Time // when it arrived, when it came with this code
	ThisCode bool      // it came with this code; otherwise with another, which is not named
}

// NotKept is a device row the desk did not keep.
type NotKept struct {
	Line   int
	Serial string
	Why    []string
}

// ReceiptText is the answer to a device that sent its CSV.
func ReceiptText(r Receipt) string {
	var b strings.Builder
	here := 0 // devices waiting under this code, kept now or before
	for _, w := range r.Waiting {
		if w.ThisCode {
			here++
		}
	}
	switch {
	case len(r.Kept) > 0:
		fmt.Fprintf(&b, "Autopilot Desk received %s for registration.\n", explain.Count(len(r.Kept), "device", "devices"))
	case len(r.Waiting) == 1:
		b.WriteString("Autopilot Desk: this device was sent before and waits already; nothing new was kept.\n")
	case len(r.Waiting) > 1:
		fmt.Fprintf(&b, "Autopilot Desk: %s were sent before and wait already; nothing new was kept.\n", explain.Count(len(r.Waiting), "device", "devices"))
	default:
		b.WriteString("Autopilot Desk: nothing was kept, so nothing waits for approval.\n")
	}
	here += len(r.Kept)
	if len(r.Kept) > 0 {
		b.WriteString("\nReceived:\n")
		for _, k := range r.Kept {
			head := fmt.Sprintf("Line %d: serial %s", k.Line, shownSerial(k.Serial))
			if d := deviceName(k.Manufacturer, k.Model); d != "" {
				head += ", " + shown(d)
			}
			indent(&b, "  ", head+", hash "+k.HashShown)
			what := "Will be registered with group tag " + quoteOrNone(k.GroupTag)
			if k.User != "" {
				what += " and assigned to " + shown(k.User)
			}
			indent(&b, "    ", what+".")
			for _, n := range k.Notes {
				indent(&b, "    ", shown(n))
			}
		}
	}
	if len(r.Waiting) > 0 {
		b.WriteString("\nSent before (not kept again):\n")
		for _, w := range r.Waiting {
			indent(&b, "  ", fmt.Sprintf("Line %d: serial %s", w.Line, shownSerial(w.Serial)))
			if w.ThisCode {
				indent(&b, "    ", "It was received at "+At(w.Since)+" with this code and waits for approval (or is being imported). Nothing needs doing.")
			} else {
				indent(&b, "    ", "It waits for approval under another registration code, so this code does not take it. "+
					"If it was sent with the wrong code (a wrong group tag, say), ask your IT team to reject it there; then send it again with this code.")
			}
		}
	}
	if len(r.NotKept) > 0 {
		b.WriteString("\nNot kept (fix these lines in the file and send it again):\n")
		for _, n := range r.NotKept {
			head := fmt.Sprintf("  Line %d", n.Line)
			if n.Serial != "" {
				head += ": serial " + shownSerial(n.Serial)
			}
			b.WriteString(head + "\n")
			for _, why := range n.Why {
				indent(&b, "    ", shown(why))
			}
		}
	}
	if len(r.FileNotes) > 0 {
		b.WriteString("\nThe file was checked as the Intune import checks it, and repaired:\n")
		for _, n := range r.FileNotes {
			indent(&b, "  - ", shown(n))
		}
	}
	b.WriteString("\nWhat happens next:\n")
	switch {
	case here > 0:
		indent(&b, "  ", "Waiting for approval by someone in your IT team. This code expires at "+At(r.Expires)+
			"; a device not approved by then must be sent again with a new code. Nothing needs doing on the device meanwhile.")
	case len(r.Waiting) > 0:
		indent(&b, "  ", "Ask your IT team where it stands: it waits under a code they gave out, and only its status command shows it.")
	default:
		indent(&b, "  ", "Fix the file (or capture the hash again with Get-WindowsAutopilotInfo) and send it again with the same command. This code expires at "+At(r.Expires)+".")
	}
	if r.StatusCommand != "" && (here > 0 || len(r.Waiting) == 0) {
		b.WriteString("\n  See where it stands with:\n    " + r.StatusCommand + "\n")
	}
	return b.String()
}

// Status is what a code's status command shows.
type Status struct {
	Note, GroupTag, User string
	Expires              time.Time
	UsesLeft             int
	Revoked              bool
	Devices              []DeviceStatus
	Now                  time.Time
}

// DeviceStatus is where one device sent with the code stands.
type DeviceStatus struct {
	Serial   string
	Received time.Time
	State    string // waiting, importing, registered, already registered, not registered, rejected, failed, expired, check
	Detail   string
}

// StatusText is the answer to the status command.
func StatusText(s Status) string {
	var b strings.Builder
	b.WriteString("Autopilot Desk: registration code")
	if s.Note != "" {
		b.WriteString(" \"" + shown(s.Note) + "\"")
	}
	b.WriteString("\n")
	line := "Group tag " + quoteOrNone(s.GroupTag)
	if s.User != "" {
		line += ", assigned user " + shown(s.User)
	}
	b.WriteString(line + ".\n")
	switch {
	case s.Revoked:
		b.WriteString("The code was revoked: it takes no more devices.\n")
	case !s.Now.Before(s.Expires):
		b.WriteString("The code expired at " + At(s.Expires) + ": it takes no more devices.\n")
	case s.UsesLeft == 0:
		b.WriteString("Every use of the code is taken: it takes no more devices.\n")
	default:
		b.WriteString("The code takes " + explain.Count(s.UsesLeft, "more device", "more devices") + " until " + At(s.Expires) + ".\n")
	}
	if len(s.Devices) == 0 {
		b.WriteString("\nNo device has sent its hardware hash with this code yet.\n")
		return b.String()
	}
	for _, d := range s.Devices {
		b.WriteString("\n") // a blank line between devices: 50 of them stay readable
		fmt.Fprintf(&b, "%s (sent %s): %s\n", shownSerial(d.Serial), At(d.Received), strings.ToUpper(d.State))
		indent(&b, "  ", d.Detail)
	}
	return b.String()
}

// DeviceState is where a device sent with a code stands, in words for the device's screen: the
// submission it came with, and once approved the row of the import job that carries it (nil
// while unknown) with what the job's records say of its batches.
func DeviceState(s store.RegistrationSubmission, d store.RegistrationDevice, row *store.ImportRow, job explain.Job, now time.Time) DeviceStatus {
	st := DeviceStatus{Serial: d.Serial, Received: d.ReceivedAt}
	switch s.State {
	case store.SubmissionWaiting:
		if !now.Before(s.Code.ExpiresAt) {
			return expired(st, s)
		}
		st.State = "waiting"
		st.Detail = "Waiting for approval by someone in your IT team. The code expires at " + At(s.Code.ExpiresAt) + ". " + checkLater
		if s.Refused != "" {
			st.Detail = waitingAgain(s)
		}
		return st
	case store.SubmissionRejected:
		st.State = "rejected"
		st.Detail = "Rejected by your IT team: " + explain.QuotedSentence(shown(s.Reason), "\"", "\"") + " It will not be registered; ask your IT team what to do."
		return st
	case store.SubmissionExpired:
		return expired(st, s)
	}
	importing := "Approved at " + At(s.DecidedAt) + "; it is being imported into Intune. " + checkLater
	if row == nil {
		st.State, st.Detail = "importing", importing
		return st
	}
	switch row.Verdict {
	case store.VerdictImported:
		st.State = "registered"
		st.Detail = "Registered in Windows Autopilot with group tag " + quoteOrNone(row.GroupTag)
		if row.User != "" {
			st.Detail += " and assigned to " + shown(row.User)
		}
		st.Detail += ". Once Intune assigns its Autopilot profile (this can take some minutes), restart the device to start Windows setup with it."
	case store.VerdictPartial:
		st.State = "check"
		st.Detail = "Intune reported the import as only partly done. Ask your IT team to check the device in the Intune admin center before restarting it."
	case store.VerdictError:
		if words, ok := alreadyRegistered(*row); ok {
			st.State, st.Detail = words.State, words.Detail
			return st
		}
		st.State = "failed"
		m := explain.DeviceErrorMeaning(row.ErrorCode, row.ErrorName)
		st.Detail = "Intune could not register it (error " + explain.ErrorLabel(row.ErrorCode, row.ErrorName) + "): " + m.What + " " + m.Next
	case store.VerdictRefused:
		var f explain.Failure
		if b := job.Batches[row.Batch]; b.Failure != nil {
			f = *b.Failure
		}
		if explain.RefusedAccount(f) {
			// The follower puts it back among the waiting devices in a moment.
			st.State, st.Detail = "waiting", waitingAgain(s)
			return st
		}
		st.State = "failed"
		st.Detail = "It was not imported: Microsoft Graph refused the import (" + strings.TrimSuffix(explain.Title(f), ".") + "). " +
			"Ask your IT team what to correct; to try again, send the hash again from this device with the registration code they give you."
	case store.VerdictStopped:
		st.State = "failed"
		st.Detail = "It was not imported: your IT team stopped the import before it was sent. To try again, send the hash again from this device with the registration code they give you."
	case store.VerdictLeftOut:
		st.State = "failed"
		st.Detail = "It was not imported: " + explain.Row(*row, job).Detail
	case store.VerdictNotFound:
		st.State = "check"
		st.Detail = "The desk could not confirm whether Intune imported it. Ask your IT team to check the device in the Intune admin center before sending it again."
	default:
		st.State, st.Detail = "importing", importing
	}
	return st
}

// checkLater is the next step of a device still on its way.
const checkLater = "Nothing to do on the device; run the status command again in a few minutes."

// ApproverAway is what the device is told while the import of its approval waits for the approver
// to sign in again: the desk imports with their account.
const ApproverAway = "The import waits for the person who approved it to sign in to the desk again, as it runs with their account; if it waits long, ask your IT team."

func waitingAgain(s store.RegistrationSubmission) string {
	return "Waiting for approval again: an approval could not import it, because Microsoft Graph refused the approving account. Someone allowed to import devices in Intune must approve it. The code expires at " + At(s.Code.ExpiresAt) + "."
}

// alreadyRegistered says, for the technician at the device, what Intune's 806 (registered in
// this tenant already) and 808 (registered in another tenant) mean there and what to do next.
func alreadyRegistered(row store.ImportRow) (DeviceStatus, bool) {
	switch explain.DeviceErrorMeaning(row.ErrorCode, row.ErrorName) {
	case explain.DeviceErrorMeaning(806, ""):
		d := "This device is already registered in Windows Autopilot for your organisation (Intune error 806), so it was not imported again"
		if row.RegisteredID != "" {
			d += "; it has group tag " + quoteOrNone(row.RegisteredGroupTag)
		}
		d += ". Restart the device (or continue Windows setup) to set it up with its Autopilot profile."
		switch {
		case row.RegisteredID == "":
			d += " If it should have this code's group tag " + quoteOrNone(row.GroupTag) + ", ask your IT team to check its group tag in Intune first."
		case row.RegisteredGroupTag != row.GroupTag:
			d += " If it should have this code's group tag " + quoteOrNone(row.GroupTag) + " rather than that one, ask your IT team to change its group tag in Intune first."
		}
		return DeviceStatus{State: "already registered", Detail: d}, true
	case explain.DeviceErrorMeaning(808, ""):
		return DeviceStatus{State: "not registered", Detail: "This device is registered in Windows Autopilot by another organisation (Intune error 808), so it cannot be registered for yours. Ask your IT team for help: the previous owner (or the seller) must release it from their Autopilot first. Then send its hash again with a new code."}, true
	}
	return DeviceStatus{}, false
}

func expired(st DeviceStatus, s store.RegistrationSubmission) DeviceStatus {
	st.State = "expired"
	st.Detail = "Nobody approved it before the code expired at " + At(s.Code.ExpiresAt) + ", so it was not registered. Ask your IT team for a new code and send the hash again."
	return st
}

// At writes a time as the device's answers do: 14:00 UTC on 2 March 2026.
func At(t time.Time) string {
	return t.UTC().Format("15:04") + " UTC on " + t.UTC().Format("2 January 2006")
}

func indent(b *strings.Builder, prefix, text string) {
	pad := strings.Repeat(" ", len(prefix))
	for i, l := range strings.Split(web.Wrap(text, width-len(prefix)), "\n") {
		if i == 0 {
			b.WriteString(prefix + l + "\n")
		} else {
			b.WriteString(pad + l + "\n")
		}
	}
}

// shownSerial is a serial as the answers show it: a long one by its ends, one with characters
// nobody can see quoted with their codes, as the check's own messages show them.
func shownSerial(s string) string {
	if utf8.RuneCountInString(s) > 40 {
		s = devicecsv.Truncate(s)
	}
	if _, hidden := unseen.Find(s); hidden {
		return shown(strconv.Quote(s))
	}
	return s
}

// shown is stored text as a plain-text answer may carry it: what nobody can see is written as its
// code ("<U+202E>"), a line break in it too, so it cannot start a line of its own.
func shown(s string) string { return unseen.Show(s) }

func deviceName(manufacturer, model string) string {
	switch {
	case manufacturer != "" && model != "" && !strings.HasPrefix(strings.ToLower(model), strings.ToLower(manufacturer)):
		return manufacturer + " " + model
	case model != "":
		return model
	}
	return manufacturer
}

func quoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return "\"" + shown(s) + "\""
}
