package handlers

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/web/store"
)

// fakeImportJobs keeps the drafts the import page creates; the rest of ImportJobs is the
// worker's and the job page's, which these tests do not reach.
type fakeImportJobs struct {
	ImportJobs
	mu      sync.Mutex
	created []store.ImportJob
	rows    [][]store.ImportRow
}

func (f *fakeImportJobs) CreateImportJob(_ context.Context, j *store.ImportJob, rows iter.Seq[store.ImportRow]) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	j.ID = "0199a000-0000-7000-8000-0000000000a1"
	f.created = append(f.created, *j)
	var kept []store.ImportRow
	for r := range rows {
		kept = append(kept, r)
	}
	f.rows = append(f.rows, kept)
	return nil
}

func (f *fakeImportJobs) PageImportJobs(context.Context, store.ImportJobFilter) ([]store.ImportJob, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.created), "", nil
}

func (f *fakeImportJobs) CountImportJobs(context.Context, store.ImportJobFilter) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.created), nil
}

func (f *fakeImportJobs) CountImportRows(context.Context, []string) (map[string]store.JobRowCounts, error) {
	return map[string]store.JobRowCounts{}, nil
}

func (f *fakeImportJobs) TallyImportRows(context.Context, string) (store.RowTally, error) {
	return store.RowTally{}, nil
}

func newImportRig(t *testing.T, maxRows int) (*rig, *fakeImportJobs) {
	jobs := &fakeImportJobs{}
	r := newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		h := &Devices{Tokens: &fakeTokens{}, Jobs: jobs, Activity: &fakeActivity{}, MaxRows: maxRows, Logger: discardLogger}
		user.GET("/devices/import", h.Start)
		form("/devices/import", "/devices/import", h.Preflight)
	}).signIn("")
	return r, jobs
}

func pasted(serials ...string) string {
	var b strings.Builder
	b.WriteString("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\n")
	for _, s := range serials {
		b.WriteString(s + ",," + strings.Repeat("QUJD", 1000) + ",Sales,\n")
	}
	return b.String()
}

// The import page takes a paste or one device's fields, keeps the draft as its uploader's and
// shows it; a file over the row limit is refused with the limit named, the paste kept and nothing
// stored; an empty form says what to choose.
func TestImportPreflightBindsAndRefuses(t *testing.T) {
	r, jobs := newImportRig(t, 3)
	resp, doc := r.post("/devices/import", url.Values{"csv": {pasted("A", "B", "C", "D")}})
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(testkit.Text(doc), "more than 3 devices") ||
		!strings.Contains(doc.Find(`textarea[name="csv"]`).Text(), "D,,QUJD") {
		t.Errorf("a file over the limit: %d %s", resp.StatusCode, testkit.Text(doc))
	}
	if resp, doc := r.post("/devices/import", url.Values{"csv": {"  "}}); resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(testkit.Text(doc), "Choose a CSV file, paste its contents, or fill in the single-device fields") {
		t.Errorf("nothing chosen: %d %s", resp.StatusCode, testkit.Text(doc))
	}
	if len(jobs.created) != 0 {
		t.Fatalf("refused files were stored: %+v", jobs.created)
	}
	resp, _ = r.post("/devices/import", url.Values{"csv": {pasted("A", "B", "C")}})
	redirected(t, resp, "/devices/import/0199a000-0000-7000-8000-0000000000a1")
	resp, _ = r.post("/devices/import", url.Values{"serialNumber": {" ONE-1 "}, "hardwareHash": {strings.Repeat("QUJD", 1000)}, "groupTag": {"Kiosk"}})
	redirected(t, resp, "/devices/import/")
	if len(jobs.created) != 2 || jobs.created[0].ObjectID != rigUser.ObjectID || jobs.created[0].TenantID != rigUser.TenantID ||
		jobs.created[0].State != "draft" || len(jobs.rows[0]) != 3 {
		t.Fatalf("drafts %+v", jobs.created)
	}
	if one := jobs.rows[1]; len(one) != 1 || one[0].Serial != "ONE-1" || one[0].GroupTag != "Kiosk" || one[0].HashShown == one[0].Hash {
		t.Errorf("the single device became %+v", one)
	}
}

// fakeFinishedJob is one finished import of n rows, all imported, for the job page.
type fakeFinishedJob struct {
	ImportJobs
	job  store.ImportJob
	rows []store.ImportRow
}

func (f *fakeFinishedJob) GetImportJob(_ context.Context, tenantID, id string) (*store.ImportJob, error) {
	if id != f.job.ID || tenantID != f.job.TenantID {
		return nil, store.ErrNotFound
	}
	j := f.job
	return &j, nil
}

func (f *fakeFinishedJob) ImportRows(context.Context, string, store.RowFilter) ([]store.ImportRow, error) {
	return f.rows, nil
}

func (f *fakeFinishedJob) ImportBatches(context.Context, string) ([]store.ImportBatch, error) {
	return []store.ImportBatch{{Batch: 1, State: "sent"}, {Batch: 2, State: "sent"}, {Batch: 3, State: "sent"}}, nil
}

// A long import's page shows its rows 500 at a time, with the way to the others and the counts of
// them all; a window asked for past the end, or not a number, shows the last or the first.
func TestLongImportShowsItsRowsAWindowAtATime(t *testing.T) {
	const id = "0199a000-0000-7000-8000-0000000000b2"
	jobs := &fakeFinishedJob{job: store.ImportJob{ID: id, State: "finished", Payload: []byte(`{}`)}}
	for i := range 1201 {
		jobs.rows = append(jobs.rows, store.ImportRow{Line: i + 2, Serial: fmt.Sprintf("SN-%04d", i),
			Outcome: store.Outcome{Batch: i/500 + 1, Verdict: store.VerdictImported, Status: "complete"}})
	}
	r := newRig(t, func(user *echo.Group, _ func(string, string, echo.HandlerFunc)) {
		h := &Devices{Tokens: &fakeTokens{}, Jobs: jobs, Activity: &fakeActivity{}, Logger: discardLogger, Now: time.Now}
		user.GET("/devices/import/:id", h.Show)
	}).signIn("")
	jobs.job.TenantID = rigUser.TenantID
	for _, tc := range []struct {
		query         string
		first, last   string // the serials of the first and last row shown
		window        string
		prev, nextURL string
	}{
		{"", "SN-0000", "SN-0499", "Rows 1–500 of 1,201.", "", "?from=500"},
		{"?from=500", "SN-0500", "SN-0999", "Rows 501–1,000 of 1,201.", "/devices/import/" + id, "?from=1000"},
		{"?from=1000", "SN-1000", "SN-1200", "Rows 1,001–1,201 of 1,201.", "?from=500", ""},
		{"?from=99999", "SN-1000", "SN-1200", "Rows 1,001–1,201 of 1,201.", "?from=500", ""},
		{"?from=-3", "SN-0000", "SN-0499", "Rows 1–500 of 1,201.", "", "?from=500"},
		{"?from=x", "SN-0000", "SN-0499", "Rows 1–500 of 1,201.", "", "?from=500"},
	} {
		resp, doc := r.get("/devices/import/" + id + tc.query)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", tc.query, resp.StatusCode, doc.Text())
		}
		serials := doc.Find(`[data-testid="outcome"] tbody tr code`).Not(".regid")
		if first, last := serials.First().Text(), serials.Last().Text(); first != tc.first || last != tc.last {
			t.Errorf("%s: rows %s to %s, want %s to %s", tc.query, first, last, tc.first, tc.last)
		}
		pager := doc.Find(`[data-testid="row-pager"]`)
		if got := strings.Join(strings.Fields(pager.Find("p").First().Text()), " "); got != tc.window+" The outcome report has them all." {
			t.Errorf("%s: pager says %q", tc.query, got)
		}
		if got := pager.Find(`a[rel="prev"]`).AttrOr("href", ""); !strings.HasSuffix(got, tc.prev) || (tc.prev == "") != (got == "") {
			t.Errorf("%s: previous rows at %q, want …%s", tc.query, got, tc.prev)
		}
		if got := pager.Find(`a[rel="next"]`).AttrOr("href", ""); !strings.HasSuffix(got, tc.nextURL) || (tc.nextURL == "") != (got == "") {
			t.Errorf("%s: next rows at %q, want …%s", tc.query, got, tc.nextURL)
		}
		if got := doc.Find(`[data-testid="progress-summary"]`).Text(); !strings.Contains(got, "1,201") {
			t.Errorf("%s: the summary does not count every row: %q", tc.query, got)
		}
	}
}

// fakeRacedDraft is a draft whose check another tab starts between a fix's read and its write.
type fakeRacedDraft struct {
	ImportJobs
	mu   sync.Mutex
	job  store.ImportJob
	rows []store.ImportRow
}

func (f *fakeRacedDraft) GetImportJob(_ context.Context, tenantID, id string) (*store.ImportJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := f.job
	return &j, nil
}

func (f *fakeRacedDraft) ImportRows(context.Context, string, store.RowFilter) ([]store.ImportRow, error) {
	return f.rows, nil
}

func (f *fakeRacedDraft) ReplaceDraftRows(context.Context, string, string, string, []byte, iter.Seq[store.ImportRow]) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.job.State = "checking" // the check won
	return store.ErrConflict
}

// A fix that loses the race to a check begun in another tab says so (409, nothing changed), so
// the corrections are not dropped without a word.
func TestFixThatLosesToACheckSaysSo(t *testing.T) {
	const id = "0199a000-0000-7000-8000-0000000000c3"
	jobs := &fakeRacedDraft{job: store.ImportJob{ID: id, TenantID: rigUser.TenantID, ObjectID: rigUser.ObjectID, State: "draft", Payload: []byte(`{}`)},
		rows: []store.ImportRow{{Line: 2, Serial: "SN-1", Hash: strings.Repeat("QUJD", 1000)}, {Line: 3, Hash: strings.Repeat("QUJD", 1000), Errors: []string{"Serial missing."}}}}
	r := newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		h := &Devices{Tokens: &fakeTokens{}, Jobs: jobs, Activity: &fakeActivity{}, MaxRows: 10, Logger: discardLogger, Now: time.Now}
		form("/devices/import/:id/fix", "/devices/import/:id", h.Fix)
	}).signIn("")
	resp, doc := r.post("/devices/import/"+id+"/fix", url.Values{"row-3-serial": {"SN-2"}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(testkit.Text(doc), "still being checked") || !strings.Contains(testkit.Text(doc), "Nothing was changed") {
		t.Errorf("a fix that lost to a check: %d %s", resp.StatusCode, testkit.Text(doc))
	}
}

// fakeCheckingJob is a draft whose serials are being checked; its rows are never to be read.
type fakeCheckingJob struct {
	ImportJobs
	t   *testing.T
	job store.ImportJob
}

func (f *fakeCheckingJob) GetImportJob(_ context.Context, tenantID, id string) (*store.ImportJob, error) {
	j := f.job
	return &j, nil
}

func (f *fakeCheckingJob) ImportRows(context.Context, string, store.RowFilter) ([]store.ImportRow, error) {
	f.t.Error("the page of a check under way read every row")
	return nil, nil
}

func (f *fakeCheckingJob) TallyImportRows(context.Context, string) (store.RowTally, error) {
	return store.RowTally{Rows: 10000, Valid: 9990, Ticked: 7}, nil
}

// A check's page, reloaded every 2 s while it runs, counts the rows rather than reading 10,000 of
// them, and says the same as the pre-flight would.
func TestCheckingPageCountsTheRows(t *testing.T) {
	const id = "0199a000-0000-7000-8000-0000000000d4"
	jobs := &fakeCheckingJob{t: t, job: store.ImportJob{ID: id, TenantID: rigUser.TenantID, ObjectID: rigUser.ObjectID, State: "checking",
		Payload: []byte(`{"leftOut":[5,9],"check":{"of":9990,"done":1200,"found":7}}`)}}
	r := newRig(t, func(user *echo.Group, _ func(string, string, echo.HandlerFunc)) {
		h := &Devices{Tokens: &fakeTokens{}, Jobs: jobs, Activity: &fakeActivity{}, Logger: discardLogger, Now: time.Now}
		user.GET("/devices/import/:id", h.Show)
	}).signIn("")
	resp, doc := r.get("/devices/import/" + id)
	summary := strings.Join(strings.Fields(doc.Find(`[data-testid="preflight-summary"]`).Text()), " ")
	if resp.StatusCode != http.StatusOK || summary != "10,000 rows: 9,983 devices to import, 9 left out, 8 rows with problems. They will be imported in batches of at most 500." {
		t.Errorf("%d, the summary reads %q", resp.StatusCode, summary)
	}
	if got := doc.Find(`[data-testid="check-progress"]`).Text(); got != "1,200 of 9,990 serial numbers" {
		t.Errorf("progress %q", got)
	}
}
