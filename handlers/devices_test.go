package handlers

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"

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
