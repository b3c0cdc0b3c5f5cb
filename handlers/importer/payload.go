package importer

import (
	"time"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/web/store"
)

// Payload is what a job keeps besides its rows and batches: the file's notes and, once
// submitted, where the worker stands. It never holds a hash.
type Payload struct {
	Source string `json:"source,omitempty"` // the file's name, "Pasted text" or "One device"
	// ApprovedFrom names the registration codes of devices sent from the device, whose approval
	// made this import (its owner approved them rather than uploaded a file).
	ApprovedFrom string           `json:"approvedFrom,omitempty"`
	FileNotes    []string         `json:"fileNotes,omitempty"`
	FileErrors   []string         `json:"fileErrors,omitempty"`
	Checked      bool             `json:"checked,omitempty"`   // serials were looked up in the tenant
	Check        *Check           `json:"check,omitempty"`     // the check of the serials under way
	LastCheck    *Check           `json:"lastCheck,omitempty"` // the last check that ended: finished, failed or stopped
	Failure      *explain.Failure `json:"failure,omitempty"`   // why the owner's last action sent nothing
	// LeftOut are the lines of rows with problems the owner chose to leave out rather than fix.
	LeftOut []int `json:"leftOut,omitempty"`
	// Sent is how many devices the import sends, counted when it was submitted.
	Sent int `json:"sent,omitempty"`

	Polls   int              `json:"polls,omitempty"`
	PollAt  time.Time        `json:"pollAt,omitzero"`
	Paused  bool             `json:"paused,omitempty"`  // the owner has no live session: waits for their sign-in
	Waiting *Wait            `json:"waiting,omitempty"` // Graph asked the desk to wait
	Misses  map[int]int      `json:"misses,omitempty"`  // rows Graph answered 404 for, by line: how many times
	Trouble *explain.Failure `json:"trouble,omitempty"` // the last problem that held the job up
}

// Wait is a pause Graph asked for.
type Wait struct {
	Throttled bool          `json:"throttled,omitempty"` // Graph throttled the tenant; else it was unavailable
	Reason    string        `json:"reason,omitempty"`    // the earlier stored format: why, in words
	For       time.Duration `json:"for"`
	Until     time.Time     `json:"until"`
}

// DecodePayload reads a job's payload; an empty one is an empty Payload.
func DecodePayload(b []byte) (Payload, error) { return jobs.Decode[Payload](b) }

// Encode is the payload as the job stores it.
func (p Payload) Encode() []byte { return jobs.Encode(p) }

// BatchDetail is what a batch keeps about its last attempt, for the job page. (The failure's key
// is "explanation" because the earlier format kept it in words there; explain reads both.)
type BatchDetail struct {
	Failure *explain.Failure           `json:"explanation,omitempty"`
	Support graphclient.SupportDetails `json:"support"`
	Wait    *Wait                      `json:"wait,omitempty"`
	Lines   []int                      `json:"lines,omitempty"` // a split batch: where its rows went
	// FailedLooks counts the looks in a row that could not be made for a batch whose answer was
	// lost, LookFailure says why the last one could not: the looks then come less often.
	FailedLooks int              `json:"failedLooks,omitempty"`
	LookFailure *explain.Failure `json:"lookFailure,omitempty"`
	Stopped     *explain.Stop    `json:"stopped,omitempty"` // a stopped batch: who stopped the import, and when
}

// DecodeBatchDetail reads a batch's detail; a malformed one is empty.
func DecodeBatchDetail(b []byte) BatchDetail {
	d, _ := jobs.Decode[BatchDetail](b)
	return d
}

func (d BatchDetail) encode() []byte { return jobs.Encode(d) }

// BatchFacts is what the words for rows need from their batches' records, by batch number.
func BatchFacts(batches []store.ImportBatch) map[int]explain.Batch {
	facts := make(map[int]explain.Batch, len(batches))
	for _, b := range batches {
		d := DecodeBatchDetail(b.Detail)
		facts[b.Batch] = explain.Batch{Failure: d.Failure, Lookups: b.Lookups, Stopped: d.Stopped}
	}
	return facts
}
