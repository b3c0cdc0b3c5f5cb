package importer

import (
	"context"
	"encoding/json"
	"errors"

	"autopilotdesk/graphclient"
	"autopilotdesk/web/store"
)

// Jobs stored before rows and batches had tables of their own carry everything in their payload:
// the rows (hashes as base64 until the job was done) and the devices Graph created. Upgrade
// moves such a job's rows into the rows table once, keeping every device id Graph returned.

// legacyJob is the earlier payload: the notes, the check, the owner's last failure and the polls
// under the keys Payload has kept, beside the rows and the devices.
type legacyJob struct {
	Payload
	Rows    []legacyRow    `json:"rows"`
	Devices []legacyDevice `json:"devices"`
}

type legacyRow struct {
	Line            int      `json:"line"`
	Serial          string   `json:"serial"`
	ProductKey      string   `json:"productKey"`
	Hash            string   `json:"hash"`
	HashShown       string   `json:"hashShown"`
	GroupTag        string   `json:"groupTag"`
	User            string   `json:"user"`
	Notes           []string `json:"notes"`
	Errors          []string `json:"errors"`
	AlreadyImported bool     `json:"alreadyImported"`
}

type legacyDevice struct {
	ID             string `json:"id"`
	Serial         string `json:"serial"`
	Status         string `json:"status"`
	RegistrationID string `json:"registrationId"`
	ErrorCode      int    `json:"errorCode"`
	ErrorName      string `json:"errorName"`
	Batch          int    `json:"batch"`
}

// Legacy reports whether a job's payload is of the earlier format.
func Legacy(payload []byte) bool {
	var probe struct {
		Rows json.RawMessage `json:"rows"`
	}
	return json.Unmarshal(payload, &probe) == nil && len(probe.Rows) > 0 && string(probe.Rows) != "null"
}

// Upgrade moves a job of the earlier format into rows and batches. Two replicas upgrading one job
// at once cannot both succeed: the second finds the rows already there and the job upgraded.
func Upgrade(ctx context.Context, s interface {
	ChangeImport(ctx context.Context, ch store.ImportChange) error
}, job *store.ImportJob) error {
	var old legacyJob
	if err := json.Unmarshal(job.Payload, &old); err != nil {
		return err
	}
	devices := map[string]legacyDevice{}
	batches := map[int]bool{}
	for _, d := range old.Devices {
		devices[upper(d.Serial)] = d
		batches[d.Batch] = true
	}
	rows := make([]store.ImportRow, len(old.Rows))
	for i, r := range old.Rows {
		row := store.ImportRow{Line: r.Line, Serial: r.Serial, ProductKey: r.ProductKey, HashShown: r.HashShown, GroupTag: r.GroupTag,
			User: r.User, Notes: r.Notes, Errors: r.Errors, AlreadyImported: r.AlreadyImported}
		row.Hash = r.Hash
		if job.State != StateDraft {
			d, sent := devices[upper(r.Serial)]
			switch {
			case sent:
				s := graphclient.DeviceImportState{DeviceImportStatus: d.Status, DeviceRegistrationID: d.RegistrationID, DeviceErrorCode: d.ErrorCode, DeviceErrorName: d.ErrorName}
				row.Outcome = store.Outcome{Batch: d.Batch, Verdict: verdictOf(s), DeviceID: d.ID, Status: s.Status(),
					RegistrationID: d.RegistrationID, ErrorCode: d.ErrorCode, ErrorName: d.ErrorName}
			case len(r.Errors) > 0:
				row.Outcome = store.Outcome{Verdict: store.VerdictLeftOut, Reason: store.ReasonCheck}
			default:
				row.Outcome = store.Outcome{Verdict: store.VerdictLeftOut, Reason: store.ReasonLeftOutByOwner}
			}
			if job.State == StateFinished {
				row.Hash = ""
			}
		}
		rows[i] = row
	}
	var newBatches []store.ImportBatch
	for n := range batches {
		newBatches = append(newBatches, store.ImportBatch{Batch: n, State: BatchSent})
	}
	p := Payload{FileNotes: old.FileNotes, FileErrors: old.FileErrors, Checked: old.Checked, Failure: old.Failure, Polls: old.Polls}
	err := s.ChangeImport(ctx, store.ImportChange{JobID: job.ID, FromState: job.State, Payload: p.Encode(), Batches: len(newBatches),
		NewRows: rows, NewBatches: newBatches, WipeHashes: job.State == StateFinished})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return err
	}
	job.Payload = p.Encode()
	return nil
}
