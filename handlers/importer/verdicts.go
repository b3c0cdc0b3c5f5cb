// Package importer carries device imports through once they are submitted: it sends each batch
// exactly once, follows every device to a final state, reconciles a batch whose answer never
// arrived by looking in Graph (never by sending it again), and finishes the job with its hashes
// overwritten. A job lives in the state database; a worker on any replica advances it under a
// lease, and another takes over when that worker dies.
package importer

import (
	"fmt"
	"strconv"

	"autopilotdesk/graphclient"
	"autopilotdesk/web/store"
)

// Job states.
const (
	StateDraft    = "draft"    // pre-flight shown, nothing sent; only its owner may change or submit it
	StateSending  = "sending"  // submitted: batches go out, devices are followed
	StateFinished = "finished" // every row has a final verdict; hashes overwritten
)

// Row verdicts. The first ones are on the way; the others are final.
const (
	VerdictQueued   = "queued"   // waiting for its batch to be sent
	VerdictSending  = "sending"  // its batch is recorded as in flight
	VerdictUnknown  = "unknown"  // its batch's answer never arrived; not yet found in Graph
	VerdictSent     = "sent"     // Graph has it and is processing the import
	VerdictLeftOut  = "left-out" // not sent: refused by the pre-flight, not ticked, or already in the tenant
	VerdictImported = "imported" // complete
	VerdictPartial  = "partial"  // Intune imported it only partly
	VerdictError    = "error"    // Intune reported an error for the device
	VerdictRefused  = "refused"  // Graph refused its whole batch, or the batch was never sent
	VerdictNotFound = "not-found"
)

// OnTheirWay are the verdicts of rows whose devices an import is bringing into the tenant: a
// check of another file leaves such serials out.
var OnTheirWay = []string{VerdictQueued, VerdictSending, VerdictUnknown, VerdictSent, VerdictImported}

// Final reports whether a verdict is the row's last.
func Final(verdict string) bool {
	switch verdict {
	case VerdictLeftOut, VerdictImported, VerdictPartial, VerdictError, VerdictRefused, VerdictNotFound:
		return true
	}
	return false
}

// verdictOf is the verdict a device's state from Graph gives its row.
func verdictOf(s graphclient.DeviceImportState) string {
	switch s.Status() {
	case "complete":
		return VerdictImported
	case "partial":
		return VerdictPartial
	case "error":
		return VerdictError
	}
	return VerdictSent
}

// Described is a row's verdict as an Intune administrator reads it on the page and in the report.
type Described struct {
	Key    string // a verdict constant, for styling and tests
	Label  string // short: "imported", "error 808"
	Detail string // what happened and what to do
}

// Describe puts a row's verdict into words.
func Describe(r store.ImportRow) Described {
	d := Described{Key: r.Verdict}
	switch r.Verdict {
	case "":
		d.Key, d.Label = VerdictLeftOut, "not imported"
		d.Detail = "The import was submitted without this row."
	case VerdictLeftOut:
		d.Label, d.Detail = "left out", r.Reason
	case VerdictQueued:
		d.Label, d.Detail = "queued", fmt.Sprintf("In batch %d, waiting to be sent.", r.Batch)
	case VerdictSending:
		d.Label, d.Detail = "sending", fmt.Sprintf("In batch %d, on its way to Microsoft Graph.", r.Batch)
	case VerdictUnknown:
		d.Label = "outcome unknown"
		d.Detail = fmt.Sprintf("Microsoft Graph's answer to batch %d never arrived, so it is not known yet whether this device was imported. The desk looks it up in Graph and never sends it again on its own.", r.Batch)
	case VerdictSent:
		d.Label = "processing"
		d.Detail = "Microsoft Graph accepted the device and Intune is processing the import (state " + stateName(r.Status) + ")."
	case VerdictImported:
		d.Label, d.Detail = "imported", "Intune imported the device."
	case VerdictPartial:
		d.Label = "partly imported"
		d.Detail = "Intune reported this device's import as only partly done, without saying what is missing. Check the device in the Intune admin center (Devices › Windows › Enrollment › Devices), compare its group tag and assigned user with the file, and import it again if it is not there."
	case VerdictError:
		m := graphclient.DeviceErrorMeaning(r.ErrorCode, r.ErrorName)
		d.Label, d.Detail = "error", m.What+" "+m.Next
	case VerdictRefused:
		d.Label, d.Detail = "not imported", r.Reason
	case VerdictNotFound:
		d.Label = "outcome unknown — check"
		d.Detail = r.Reason
	}
	if r.Reconciled && r.Verdict != VerdictNotFound {
		d.Detail += " Found in Graph after its batch's answer was lost."
	}
	return d
}

func stateName(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}

// ErrorLabel is a row's Graph error as code and name: "808 ZtdDeviceAssignedToOtherTenant".
func ErrorLabel(r store.ImportRow) string {
	switch {
	case r.ErrorCode != 0 && r.ErrorName != "":
		return strconv.Itoa(r.ErrorCode) + " " + r.ErrorName
	case r.ErrorCode != 0:
		return strconv.Itoa(r.ErrorCode)
	}
	return r.ErrorName
}

// Counts summarise a job's rows.
type Counts struct {
	Rows, Sent                                            int
	Queued, Sending, Unknown, Processing                  int
	Imported, Partial, Errors, Refused, NotFound, LeftOut int
	Reconciled                                            int
}

// Final is how many rows have their final verdict.
func (c Counts) Final() int {
	return c.Imported + c.Partial + c.Errors + c.Refused + c.NotFound + c.LeftOut
}

// Count tallies rows by verdict.
func Count(rows []store.ImportRow) Counts {
	c := Counts{Rows: len(rows)}
	for _, r := range rows {
		switch r.Verdict {
		case VerdictQueued:
			c.Queued++
		case VerdictSending:
			c.Sending++
		case VerdictUnknown:
			c.Unknown++
		case VerdictSent:
			c.Processing++
		case VerdictImported:
			c.Imported++
		case VerdictPartial:
			c.Partial++
		case VerdictError:
			c.Errors++
		case VerdictRefused:
			c.Refused++
		case VerdictNotFound:
			c.NotFound++
		default:
			c.LeftOut++
		}
		if r.Batch > 0 && r.Verdict != VerdictQueued && r.Verdict != VerdictRefused {
			c.Sent++
		}
		if r.Reconciled {
			c.Reconciled++
		}
	}
	return c
}
