package explain

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"autopilotdesk/graphclient"
	"autopilotdesk/web/store"
)

// DeviceError is what a per-device import error means and what to do about it.
type DeviceError struct{ What, Next string }

// DeviceErrorMeaning explains Intune's per-device import errors (deviceErrorCode and
// deviceErrorName); 808 is spelt two ways in Microsoft's pages, and both are read.
func DeviceErrorMeaning(code int, name string) DeviceError {
	switch {
	case code == 801 || name == "InvalidZtdRequestBody":
		return DeviceError{"The import request for this device was malformed.", "Check the row's values and import it again."}
	case code == 802 || name == "InvalidZtdHardwareHash":
		return DeviceError{"The hardware hash is invalid, or the manufacturer or serial number inside it is missing.", "Capture the hash again on the device (Get-WindowsAutopilotInfo) and re-import."}
	case code == 803 || name == "MissingZtdSerialNumberAndProductKey":
		return DeviceError{"The serial number and the product ID are both empty or invalid.", "Add the device's serial number and import it again."}
	case code == 806 || name == "ZtdDeviceAlreadyAssigned":
		return DeviceError{"The device is already registered in this tenant.", "Nothing to do; or delete the existing record and import again to change its group tag or user."}
	case code == 808 || name == "ZtdDeviceAssignedToOtherTenant" || name == "ZtdDeviceAssignedToAnotherTenant":
		return DeviceError{"The device is registered in another organisation's tenant.", "Ask the previous owner or the seller to deregister it, then import it again."}
	case code == 640 || name == "StorageError":
		return DeviceError{"A passing Intune service error.", "Import the device again later."}
	case name == "ZtdDeviceDuplicated":
		return DeviceError{"The same hardware hash appeared twice in one import; only one copy was processed.", "Nothing to do if the other copy completed."}
	case code == 0 && name == "":
		return DeviceError{}
	}
	return DeviceError{"Intune reported an error for this device.", "Check the device in the Intune admin center (Devices › Windows › Enrollment › Devices)."}
}

// ErrorLabel is a device's Graph error as code and name: "808 ZtdDeviceAssignedToOtherTenant".
func ErrorLabel(code int, name string) string {
	switch {
	case code != 0 && name != "":
		return strconv.Itoa(code) + " " + name
	case code != 0:
		return strconv.Itoa(code)
	}
	return name
}

// Verdict is a row's verdict as an Intune administrator reads it on the job page and in the
// outcome report: its badge, and what happened.
type Verdict struct {
	Key string // a store.Verdict constant, for styling and tests
	State
	Detail string // what happened and what to do
	// SeeRefusal: a bulk change's device whose words are brief because the refusal that stopped
	// the change, explained once on its page, is what happened to it.
	SeeRefusal bool
}

// Job is what a row's words need besides the row: who owns the import, and what its batches'
// records say (by batch number).
type Job struct {
	Owner   string        // the owner's name, as the page calls them
	Batches map[int]Batch // the row's batch, for refused and looked-up rows
	// Approved: the import was made by approving devices sent from the device, so nobody has a
	// file to correct or send again.
	Approved bool
}

// Batch is what a row's words need from its batch's record.
type Batch struct {
	Failure *Failure // why Graph refused it, or why it was not sent
	Lookups int      // how many times its devices were looked up after a lost answer
	Stopped *Stop    // who kept it from being sent by stopping the import
}

// Stop is who stopped an import, and when: the batches still queued then were never sent.
type Stop struct {
	By string    `json:"by"` // the person's name
	At time.Time `json:"at"`
}

// Row puts a row's verdict into words.
func Row(r store.ImportRow, job Job) Verdict {
	d := Verdict{Key: r.Verdict}
	b := job.Batches[r.Batch]
	switch r.Verdict {
	case "":
		d.Key, d.State = store.VerdictLeftOut, State{Label: "Left out", Meaning: Quiet}
		d.Detail = "The import was submitted without this row."
	case store.VerdictLeftOut:
		d.State, d.Detail = State{Label: "Left out", Meaning: Quiet}, leftOut(r, job.Owner)
	case store.VerdictQueued:
		d.State, d.Detail = State{Label: "Queued", Meaning: Moving}, fmt.Sprintf("In batch %d, waiting to be sent.", r.Batch)
	case store.VerdictSending:
		d.State, d.Detail = State{Label: "Sending", Meaning: Moving}, fmt.Sprintf("In batch %d, on its way to Microsoft Graph.", r.Batch)
	case store.VerdictUnknown:
		d.State = State{Label: "Outcome unknown", Meaning: Attention}
		d.Detail = fmt.Sprintf("Microsoft Graph's answer to batch %d never arrived, so it is not known yet whether this device was imported. The desk looks it up in Graph and never sends it again on its own.", r.Batch)
		if r.Reason == store.ReasonRestored {
			d.Detail = fmt.Sprintf("The desk was restored from a backup in which batch %d was not sent yet; the desk the backup was taken from may have sent it since, so it is not known whether this device was imported. The desk looks it up in Microsoft Graph and never sends it on its own.", r.Batch)
		}
	case store.VerdictSent:
		d.State, d.Detail = importStatus(graphclient.ImportPending, r.Status), sentDetail(r.Status)
	case store.VerdictImported:
		d.State, d.Detail = importStatus(graphclient.ImportComplete, r.Status), "Intune imported the device."
	case store.VerdictPartial:
		d.State = importStatus(graphclient.ImportPartial, r.Status)
		d.Detail = "Intune reported this device's import as only partly done, without saying what is missing. Check the device in the Intune admin center (Devices › Windows › Enrollment › Devices), compare its group tag and assigned user with the file, and import it again if it is not there."
	case store.VerdictError:
		m := DeviceErrorMeaning(r.ErrorCode, r.ErrorName)
		d.State, d.Detail = importStatus(graphclient.ImportError, r.Status), m.What+" "+m.Next
	case store.VerdictRefused:
		d.State, d.Detail = State{Label: "Not imported", Meaning: Failed}, refused(r, b, job.Approved)
	case store.VerdictStopped:
		d.State, d.Detail = State{Label: "Not sent", Meaning: Quiet}, stopped(r, b, job.Approved)
	case store.VerdictNotFound:
		d.State = toCheck
		d.Detail = notFound(r, b, job.Approved)
	default:
		d.State = State{Label: other(r.Verdict), Meaning: Attention}
	}
	if r.Reconciled && r.Verdict != store.VerdictNotFound {
		d.Detail += " Found in Graph after its batch's answer was lost."
	}
	return d
}

// sentDetail says where Intune stands with a device Graph accepted, by the import state it reports.
func sentDetail(status string) string {
	switch status {
	case graphclient.ImportPending:
		return "Microsoft Graph accepted the device and Intune is importing it."
	case graphclient.ImportUnknown, "":
		return "Microsoft Graph accepted the device; Intune has not reported how its import is going yet."
	}
	return "Microsoft Graph accepted the device; Intune reports its import state as “" + DeviceImportStatus(status).Label + "”."
}

// importStatus is the words of the final import status a verdict stands for, with Graph's value
// as the row keeps it (a row found by looking may keep none).
func importStatus(final, kept string) State {
	s := DeviceImportStatus(final)
	if kept == "" {
		s.Graph = ""
	} else {
		s.Graph = DeviceImportStatus(kept).Graph
	}
	return s
}

func leftOut(r store.ImportRow, owner string) string {
	switch r.Reason {
	case store.ReasonCheck:
		return "Refused by the check: " + strings.Join(r.Errors, " ")
	case store.ReasonAlreadyImported:
		switch {
		case r.RegisteredID != "":
			return "Left out: already registered in the tenant when the serials were checked (" + Registered(r.RegisteredGroupTag, r.RegisteredUser) + ")."
		case r.ImportingJob != "":
			return "Left out: another import of the desk was bringing this device in when the serials were checked."
		}
		return "Left out: already imported in the tenant when the serials were checked."
	case store.ReasonLeftOutByOwner:
		if owner == "" {
			return "Left out when importing."
		}
		return "Left out by " + owner + " when importing."
	}
	return r.Reason // stored earlier, in words
}

func refused(r store.ImportRow, b Batch, approved bool) string {
	var e Explanation
	if b.Failure != nil {
		e = Explain(*b.Failure)
		if approved {
			e = AfterApproval(e, RefusedAccount(*b.Failure))
		}
	}
	switch r.Reason {
	case store.ReasonBatchRefused:
		reason := e.Title + ". " + e.What
		if e.NextStep != "" {
			reason += " " + e.NextStep
		}
		return reason
	case store.ReasonNotSent:
		return "Not sent: Microsoft Graph refused an earlier batch of this import for a reason that holds for every batch (" + e.Title + "). " + e.NextStep
	}
	return r.Reason
}

func stopped(r store.ImportRow, b Batch, approved bool) string {
	who, when := "Someone", ""
	if b.Stopped != nil {
		who, when = b.Stopped.By, " on "+b.Stopped.At.UTC().Format("2 Jan 2006 15:04:05")+" UTC"
	}
	return fmt.Sprintf("Not sent: %s stopped the import%s, before batch %d went to Microsoft Graph. To import this device later, %s.",
		who, when, r.Batch, importAgain(approved))
}

// importAgain is how a device of this import is imported again: from the file it came in, or,
// for devices approved under Registration, from the device itself.
func importAgain(approved bool) string {
	if approved {
		return "the technician sends its hash again from the device with a registration code, and someone approves it under Registration"
	}
	return "upload your file again and check its serials in the tenant: the devices already there are left out"
}

func notFound(r store.ImportRow, b Batch, approved bool) string {
	switch r.Reason {
	case store.ReasonLookedUp:
		return fmt.Sprintf("Not found in Microsoft Graph. Graph's answer to batch %d was lost, and the desk looked this device up %s over the following minutes without finding it, so it was most likely not imported. Nothing was sent again. Check Devices › Windows › Enrollment › Devices in the Intune admin center; if the device is not there, %s.",
			r.Batch, plural(b.Lookups, "time", "times"), importAgain(approved))
	case store.ReasonRestored:
		return fmt.Sprintf("Not found in Microsoft Graph. The desk was restored from a backup in which batch %d was not sent yet, and it looked this device up %s over the following minutes without finding it, so it was most likely never sent. Nothing was sent. Check Devices › Windows › Enrollment › Devices in the Intune admin center; if the device is not there, %s.",
			r.Batch, plural(b.Lookups, "time", "times"), importAgain(approved))
	case store.ReasonVanished:
		return "Microsoft Graph accepted this device, then stopped listing its import record before Intune had finished with it (the list of imported devices may have been cleared). Check Devices › Windows › Enrollment › Devices in the Intune admin center."
	case store.ReasonStalled:
		return fmt.Sprintf("Intune had still not finished importing this device (its import state was “%s”) when the desk stopped following it, a day after it was sent, and it was not among the registered Autopilot devices. Nothing was sent again. Check Devices › Windows › Enrollment › Devices in the Intune admin center later; if it never appears, %s.",
			DeviceImportStatus(r.Status).Label, importAgain(approved))
	}
	return r.Reason
}

// Count puts a number and its noun together so they agree: "1 device", "1,700 devices".
func Count(n int, one, many string) string { return plural(n, one, many) }

// Sentence is s begun with a capital letter, to start a sentence with words made elsewhere.
func Sentence(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return Number(n) + " " + many
}

// Duration says a wait in words, to the second: "45 seconds", "2 minutes", "1 minute 30 seconds",
// "1 hour 5 minutes".
func Duration(d time.Duration) string {
	d = d.Round(time.Second)
	if d < time.Second {
		return "less than a second"
	}
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	if h > 0 {
		sec = 0 // to the minute, past an hour
	}
	var parts []string
	for _, p := range []struct {
		n         int
		one, many string
	}{{h, "hour", "hours"}, {m, "minute", "minutes"}, {sec, "second", "seconds"}} {
		if p.n > 0 {
			parts = append(parts, plural(p.n, p.one, p.many))
		}
	}
	return strings.Join(parts, " ")
}

// QuotedOrNone is a value as the pages quote it, or "(none)" when it is empty.
func QuotedOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return "“" + s + "”"
}

// QuotedSentence quotes what someone wrote between open and close as a sentence of its own: with
// a full stop after it, unless it ends in its own (“Not ours.”, not “Not ours.”.).
func QuotedSentence(s, open, close string) string {
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "…") {
		return open + s + close
	}
	return open + s + close + "."
}

// Number writes n with its thousands apart, as the pages do: "10,000".
func Number(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0 && s[i-1] != '-'; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}
