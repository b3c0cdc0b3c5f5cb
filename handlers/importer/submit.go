package importer

import (
	"context"

	"autopilotdesk/web/store"
)

// Changer is the part of the state database a submit changes.
type Changer interface {
	ChangeImport(ctx context.Context, ch store.ImportChange) error
}

// Choice is what a submit makes of a draft's rows: the rows to send, and the outcome of every
// row left out (refused by the check, or ticked "Leave out").
type Choice struct {
	Send    []store.ImportRow
	LeftOut []store.RowOutcome
}

// Choose sends every row without an error that is not in leaveOut (by line).
func Choose(rows []store.ImportRow, leaveOut map[int]bool) Choice {
	var c Choice
	for _, r := range rows {
		reason := ""
		switch {
		case len(r.Errors) > 0:
			reason = store.ReasonCheck
		case leaveOut[r.Line] && r.AlreadyImported:
			reason = store.ReasonAlreadyImported
		case leaveOut[r.Line]:
			reason = store.ReasonLeftOutByOwner
		default:
			c.Send = append(c.Send, r)
			continue
		}
		c.LeftOut = append(c.LeftOut, store.RowOutcome{Line: r.Line, Outcome: store.Outcome{Verdict: store.VerdictLeftOut, Reason: reason}})
	}
	return c
}

// Submit moves a draft with something to send to "sending" in one conditional change, together
// with its batches (Plan) and every row's part in them, and returns how many batches it has. The
// change holds only while the job is still a draft of its owner: of concurrent submits exactly
// one wins, and the others get store.ErrConflict with nothing changed and nothing sent. The
// worker then sends the batches with the owner's token.
func Submit(ctx context.Context, jobs Changer, job *store.ImportJob, p Payload, c Choice) (batches int, err error) {
	plan := Plan(c.Send)
	newBatches := make([]store.ImportBatch, len(plan))
	outs := append([]store.RowOutcome(nil), c.LeftOut...)
	for i, lines := range plan {
		newBatches[i] = store.ImportBatch{Batch: i + 1, State: BatchQueued}
		for _, line := range lines {
			outs = append(outs, store.RowOutcome{Line: line, Outcome: store.Outcome{Batch: i + 1, Verdict: store.VerdictQueued}})
		}
	}
	p.Failure, p.Sent = nil, len(c.Send)
	err = jobs.ChangeImport(ctx, store.ImportChange{JobID: job.ID, TenantID: job.TenantID, OwnerID: job.ObjectID,
		FromState: StateDraft, State: StateSending, Payload: p.Encode(), Batches: len(newBatches), NewBatches: newBatches, Rows: outs})
	if err != nil {
		return 0, err
	}
	return len(newBatches), nil
}
