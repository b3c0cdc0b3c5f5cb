package importer

import (
	"context"
	"fmt"

	"autopilotdesk/handlers/explain"
	"autopilotdesk/web/store"
)

// Stopper is the part of the state database a stop changes.
type Stopper interface {
	StopImport(ctx context.Context, tenantID, jobID string, detail []byte, record func(store.StoppedImport) *store.Activity) (store.StoppedImport, error)
}

// ActionStopped is the action of the record a stop leaves.
const ActionStopped = "import-stopped"

// Stop keeps the batches of a sending import that have not gone yet from going: they become
// BatchStopped and their rows VerdictStopped, recorded as by, who need not be the import's owner.
// Batches already sent are followed to the end as before, so the import still finishes with every
// device's outcome. Nothing was left to stop when it returns zero counts; an import that is not
// sending (a draft, or finished meanwhile) is store.ErrConflict.
func Stop(ctx context.Context, st Stopper, job *store.ImportJob, by explain.Stop, who store.Activity) (store.StoppedImport, error) {
	detail := BatchDetail{Stopped: &by}.encode()
	return st.StopImport(ctx, job.TenantID, job.ID, detail, func(n store.StoppedImport) *store.Activity {
		a := who
		a.TenantID, a.Action, a.Target, a.Outcome, a.At = job.TenantID, ActionStopped, job.ID, "success", by.At
		p, _ := DecodePayload(job.Payload) // an unreadable payload names no file
		a.Summary = fmt.Sprintf("Stopped the import of %s's file%s: %s in %s not sent. Devices sent before the stop are followed until Intune finishes them.",
			job.ActorName, named(p.FileName()), explain.Count(n.Rows, "device", "devices"), explain.Count(n.Batches, "batch", "batches"))
		return &a
	})
}
