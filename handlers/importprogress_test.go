package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/web/store"
)

// fakeSendingJob is an import under way with the rows and batches given.
type fakeSendingJob struct {
	fakeFinishedJob
	batches []store.ImportBatch
}

func (f *fakeSendingJob) ImportBatches(context.Context, string) ([]store.ImportBatch, error) {
	return f.batches, nil
}

// An import's progress counts as sent only the batches that went to Graph and stayed there (a
// batch put back in the queue after a sign-in ended or Graph throttled it was not), and every
// list in its summary adds up to the number it follows, with thousands separated.
func TestImportProgressAddsUp(t *testing.T) {
	const id = "0199a000-0000-7000-8000-0000000000c3"
	sent := time.Date(2026, 11, 30, 9, 0, 0, 0, time.UTC)
	jobs := &fakeSendingJob{fakeFinishedJob: fakeFinishedJob{job: store.ImportJob{ID: id, State: "sending", Payload: []byte(`{}`)}},
		batches: []store.ImportBatch{{Batch: 1, State: "sent", SentAt: sent}, {Batch: 2, State: "queued", SentAt: sent}, {Batch: 3, State: "queued"}}}
	for i := range 1200 {
		o := store.Outcome{Batch: 1, Verdict: store.VerdictSent}
		switch {
		case i >= 1196:
			o = store.Outcome{Verdict: store.VerdictLeftOut, Reason: store.ReasonLeftOutByOwner}
		case i >= 4:
			o = store.Outcome{Batch: 2 + i%2, Verdict: store.VerdictQueued}
		}
		jobs.rows = append(jobs.rows, store.ImportRow{Line: i + 2, Serial: "SN", Outcome: o})
	}
	r := newRig(t, func(user *echo.Group, _ func(string, string, echo.HandlerFunc)) {
		h := &Devices{Tokens: &fakeTokens{}, Jobs: jobs, Activity: &fakeActivity{}, Logger: discardLogger, Now: time.Now}
		user.GET("/devices/import/:id", h.Show)
	}).signIn("")
	jobs.job.TenantID = rigUser.TenantID
	resp, doc := r.get("/devices/import/" + id)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, doc.Text())
	}
	want := "4 of 1,200 rows have their final verdict (4 left out); on the way: 4 being processed by Intune and 1,192 queued."
	if got := strings.TrimSpace(doc.Find(`[data-testid="progress-summary"]`).Text()); got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if got := doc.Find(`[data-testid="batches"]`).Text(); !strings.HasPrefix(got, "1 of 3 batches sent") {
		t.Errorf("batches: %q", got)
	}
}
