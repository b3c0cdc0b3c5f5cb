package handlers

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/handlers/bulk"
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

// A desk that stops outright while it holds an import (or a bulk change) leaves it held until its
// lease runs out: once nothing has been recorded for a while, the page says so and when another
// desk continues it, instead of showing the devices "being sent" for two minutes without a word.
// While the job moves, or nobody holds it, the page says nothing of the kind.
func TestAJobHeldByAStoppedDeskSaysWhenAnotherContinuesIt(t *testing.T) {
	const id = "0199a000-0000-7000-8000-0000000000c4"
	now := time.Now().UTC()
	jobs := &fakeSendingJob{fakeFinishedJob: fakeFinishedJob{job: store.ImportJob{ID: id, State: "sending", Payload: []byte(`{}`)}},
		batches: []store.ImportBatch{{Batch: 1, State: "in-flight"}}}
	jobs.rows = []store.ImportRow{{Line: 2, Serial: "SN-1", Outcome: store.Outcome{Batch: 1, Verdict: store.VerdictQueued}}}
	r := newRig(t, func(user *echo.Group, _ func(string, string, echo.HandlerFunc)) {
		h := &Devices{Tokens: &fakeTokens{}, Jobs: jobs, Activity: &fakeActivity{}, Logger: discardLogger, Now: func() time.Time { return now }}
		user.GET("/devices/import/:id", h.Show)
	}).signIn("")
	jobs.job.TenantID = rigUser.TenantID

	for _, c := range []struct {
		name           string
		holder         string
		updated, until time.Time
		want           string
	}{
		{"held, nothing recorded for a minute", "worker-1", now.Add(-time.Minute), now.Add(time.Minute),
			"Nothing has moved since " + now.Add(-time.Minute).Format("15:04:05") + " UTC. If the desk server working on this import has stopped, another continues it by itself at " +
				now.Add(time.Minute).Truncate(time.Second).Add(time.Second).Format("15:04:05") + " UTC"},
		{"held and moving", "worker-1", now.Add(-5 * time.Second), now.Add(2 * time.Minute), ""},
		{"waiting for its next turn", "", now.Add(-time.Minute), time.Time{}, ""},
	} {
		jobs.job.LeaseOwner, jobs.job.UpdatedAt, jobs.job.LeaseUntil = c.holder, c.updated, c.until
		_, doc := r.get("/devices/import/" + id)
		said := doc.Find(`main .alert-info`).Text()
		if c.want == "" && strings.Contains(said, "Nothing has moved") || c.want != "" && !strings.Contains(said, c.want) {
			t.Errorf("%s: the page says %q, want %q", c.name, said, c.want)
		}
	}

	bulkJob := &store.BulkJob{ID: id, State: "sending", LeaseOwner: "worker-2", UpdatedAt: now.Add(-time.Minute), LeaseUntil: now.Add(time.Minute)}
	if v := bulkView(bulkJob, bulk.Payload{}, nil, &fakeBudget{}, now); !strings.Contains(v.Trouble, "working on this bulk change has stopped") {
		t.Errorf("a bulk change held by a stopped desk says %q", v.Trouble)
	}
}
