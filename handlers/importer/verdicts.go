// Package importer carries device imports through once they are submitted: it sends each batch
// exactly once, follows every device to a final state, reconciles a batch whose answer never
// arrived by looking in Graph (never by sending it again), and finishes the job with its hashes
// overwritten. A job lives in the state database; a worker on any replica advances it under a
// lease, and another takes over when that worker dies.
package importer

import (
	"autopilotdesk/graphclient"
	"autopilotdesk/web/store"
)

// Job states.
const (
	StateDraft    = "draft"    // pre-flight shown, nothing sent; only its owner may change or submit it
	StateSending  = "sending"  // submitted: batches go out, devices are followed
	StateFinished = "finished" // every row has a final verdict; hashes overwritten
)

// OnTheirWay are the verdicts of rows whose devices an import is bringing into the tenant: a
// check of another file leaves such serials out.
var OnTheirWay = []string{store.VerdictQueued, store.VerdictSending, store.VerdictUnknown, store.VerdictSent, store.VerdictImported}

// Final reports whether a verdict (a store.Verdict constant) is the row's last.
func Final(verdict string) bool {
	switch verdict {
	case store.VerdictLeftOut, store.VerdictImported, store.VerdictPartial, store.VerdictError, store.VerdictRefused, store.VerdictStopped, store.VerdictNotFound:
		return true
	}
	return false
}

// verdictOf is the verdict a device's state from Graph gives its row.
func verdictOf(s graphclient.DeviceImportState) string {
	switch s.Status() {
	case "complete":
		return store.VerdictImported
	case "partial":
		return store.VerdictPartial
	case "error":
		return store.VerdictError
	}
	return store.VerdictSent
}

// Counts summarise a job's rows.
type Counts struct {
	Rows, Sent                                            int
	Queued, Sending, Unknown, Processing                  int
	Imported, Partial, Errors, Refused, NotFound, LeftOut int
	Stopped                                               int // not sent: the import was stopped before their batch went
	Reconciled                                            int // rows found in Graph by a look-up after their batch's answer was lost
}

// FoundByLookUp reports whether r's device was found in Graph by a look-up after its batch's
// answer was lost (a row looked up and not found was not).
func FoundByLookUp(r store.ImportRow) bool { return r.Reconciled && r.Verdict != store.VerdictNotFound }

// Final is how many rows have their final verdict.
func (c Counts) Final() int {
	return c.Imported + c.Partial + c.Errors + c.Refused + c.NotFound + c.LeftOut + c.Stopped
}

// Count tallies rows by verdict.
func Count(rows []store.ImportRow) Counts {
	c := Counts{Rows: len(rows)}
	for _, r := range rows {
		c.add(r.Verdict, 1)
		if r.Batch > 0 && r.Verdict != store.VerdictQueued && r.Verdict != store.VerdictRefused && r.Verdict != store.VerdictStopped {
			c.Sent++
		}
		if FoundByLookUp(r) {
			c.Reconciled++
		}
	}
	return c
}

// CountVerdicts tallies rows counted by verdict (store.DB.CountImportVerdicts); Sent and
// Reconciled stay 0. A draft's rows, without a verdict yet, are not counted in any.
func CountVerdicts(byVerdict map[string]int) Counts {
	var c Counts
	for v, n := range byVerdict {
		c.Rows += n
		if v != "" {
			c.add(v, n)
		}
	}
	return c
}

func (c *Counts) add(verdict string, n int) {
	switch verdict {
	case store.VerdictQueued:
		c.Queued += n
	case store.VerdictSending:
		c.Sending += n
	case store.VerdictUnknown:
		c.Unknown += n
	case store.VerdictSent:
		c.Processing += n
	case store.VerdictImported:
		c.Imported += n
	case store.VerdictPartial:
		c.Partial += n
	case store.VerdictError:
		c.Errors += n
	case store.VerdictRefused:
		c.Refused += n
	case store.VerdictNotFound:
		c.NotFound += n
	case store.VerdictStopped:
		c.Stopped += n
	default:
		c.LeftOut += n
	}
}
