package handlers

import (
	"cmp"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// DevicesAPI is the part of Graph the device pages call themselves; the import worker sends
// and follows submitted imports, and the serial check looks a draft's serials up.
type DevicesAPI interface {
	SyncAutopilot(ctx context.Context, ts oauth2.TokenSource) (*graphclient.Exchange, error)
}

// ImportJobs keeps import jobs, their rows and their batches in the state database, so any
// replica serves their pages.
type ImportJobs interface {
	CreateImportJob(ctx context.Context, j *store.ImportJob, rows iter.Seq[store.ImportRow]) error
	GetImportJob(ctx context.Context, tenantID, id string) (*store.ImportJob, error)
	ImportRows(ctx context.Context, jobID string, f store.RowFilter) ([]store.ImportRow, error)
	TallyImportRows(ctx context.Context, jobID string) (store.RowTally, error)
	ImportBatches(ctx context.Context, jobID string) ([]store.ImportBatch, error)
	PageImportJobs(ctx context.Context, f store.ImportJobFilter) (page []store.ImportJob, next string, err error)
	CountImportJobs(ctx context.Context, f store.ImportJobFilter) (int, error)
	CountImportRows(ctx context.Context, jobIDs []string) (map[string]store.JobRowCounts, error)
	ReplaceDraftRows(ctx context.Context, tenantID, id, ownerID string, payload []byte, rows iter.Seq[store.ImportRow]) error
	StartTenantCheck(ctx context.Context, tenantID, id, ownerID string, payload []byte) error
	StopTenantCheck(ctx context.Context, tenantID, id, ownerID string, payload []byte) error
	ChangeImport(ctx context.Context, ch store.ImportChange) error
	WakeImportJob(ctx context.Context, tenantID, id string, recheck bool) error
	StopImport(ctx context.Context, tenantID, jobID string, detail []byte, record func(store.StoppedImport) *store.Activity) (store.StoppedImport, error)
}

// Kicker wakes the import worker of this replica.
type Kicker interface{ Kick() }

// kickAndShow wakes worker, when there is one, and sends the browser to the job's page at url.
func kickAndShow(c echo.Context, worker Kicker, url string) error {
	if worker != nil {
		worker.Kick()
	}
	return c.Redirect(http.StatusSeeOther, url)
}

// Devices imports Autopilot devices from the portal's CSV, with a pre-flight before anything is
// sent. Submitted imports are carried through by the import worker.
type Devices struct {
	Graph    DevicesAPI
	Tokens   Tokens
	Jobs     ImportJobs
	Activity ActivityLog
	Worker   Kicker        // the import worker
	Checker  Kicker        // the serial check
	MaxRows  int           // device rows one file may have
	SyncRead *SyncSettings // the tenant's Autopilot sync the devices list read a moment ago
	Now      func() time.Time
	Logger   *slog.Logger
	JobState func(state string) // optional: counts jobs reaching a state
}

func (h *Devices) reached(state string) {
	if h.JobState != nil {
		h.JobState(state)
	}
}

// MaxCSVBytes bounds an uploaded or pasted CSV: rowsInMaxCSV rows of 4 KB hashes fit. A UTF-16 file
// (PowerShell's Out-File, Excel's "Unicode Text") takes twice the bytes for the same devices, and
// may have twice as many.
const MaxCSVBytes = 48 << 20

// rowsInMaxCSV is about how many devices a file of MaxCSVBytes holds.
const rowsInMaxCSV = 10000

// MaxUploadBytes bounds the body of an upload: a UTF-16 file at its limit, and the form around it.
const MaxUploadBytes = 2*MaxCSVBytes + 64<<10

// partRows is how many devices to put in each part of a file refused for its size: the
// configured row limit, or what fits in MaxCSVBytes when that is fewer.
func partRows(maxRows int) string {
	if maxRows <= 0 || maxRows > rowsInMaxCSV {
		maxRows = rowsInMaxCSV
	}
	return explain.Number(maxRows)
}

// UploadTooLarge answers an upload over MaxUploadBytes before it is read, for a desk that takes
// at most maxRows devices from one file.
func UploadTooLarge(maxRows int) *views.ErrorPage {
	return &views.ErrorPage{Status: http.StatusRequestEntityTooLarge, Title: "The file is too large to import at once",
		Message:  fmt.Sprintf("A device file may have up to %d MB (%d MB when saved as UTF-16, as PowerShell's Out-File does) and up to %s devices. Nothing was read or sent to Microsoft Graph.", MaxCSVBytes>>20, 2*MaxCSVBytes>>20, explain.Number(maxRows)),
		NextStep: fmt.Sprintf("Split the file into parts of up to %s devices, each with the header line, and import them one after another.", partRows(maxRows)), ActionURL: "/devices/import", ActionText: "Back to the import"}
}

// Start is GET /devices/import: upload or paste a CSV, or enter one device; and the way back to
// the tenant's recent imports and drafts.
func (h *Devices) Start(c echo.Context) error {
	s := views.ImportStart{MaxRows: h.MaxRows, Access: accessOf(c)}
	if pending, ok := web.TakePendingForm(c); ok { // typed before a sign-in interrupted the import
		s.Paste = pending.Get("csv")
		s.Single = views.SingleDevice{Serial: pending.Get("serialNumber"), GroupTag: pending.Get("groupTag"), User: pending.Get("assignedUser")}
		if pending.Get("hardwareHash") != "" {
			web.NotPutBack(c, "the hardware hash, which the desk never shows back", "paste the hardware hash again")
		}
	}
	return h.renderStart(c, http.StatusOK, s, c.QueryParam("before"))
}

// importsShown is how many of the tenant's imports the import page lists at once; older ones
// are a link away. openShown bounds the list of the viewer's own open imports.
const (
	importsShown = 20
	openShown    = 100
)

// renderStart renders the import's first page with the viewer's own open imports and a page of
// the tenant's imports, those older than the cursor before when it is not empty.
func (h *Devices) renderStart(c echo.Context, status int, s views.ImportStart, before string) error {
	ctx, u := c.Request().Context(), web.CurrentUser(c)
	mine := store.ImportJobFilter{TenantID: u.TenantID, OpenOf: u.ObjectID, Limit: openShown}
	open, _, err := h.Jobs.PageImportJobs(ctx, mine)
	if err != nil {
		return fmt.Errorf("list open import jobs: %w", err)
	}
	if s.OpenCount = len(open); s.OpenCount == openShown {
		if s.OpenCount, err = h.Jobs.CountImportJobs(ctx, mine); err != nil {
			return fmt.Errorf("count open import jobs: %w", err)
		}
	}
	all := store.ImportJobFilter{TenantID: u.TenantID, Before: before, Limit: importsShown}
	recent, next, err := h.Jobs.PageImportJobs(ctx, all)
	if errors.Is(err, store.ErrInvalidCursor) {
		return &views.ErrorPage{Status: http.StatusBadRequest, Title: "That page of the import list does not exist",
			Message: "The link to older imports is not valid.", ActionURL: "/devices/import", ActionText: "Show the newest imports"}
	}
	if err != nil {
		return fmt.Errorf("list import jobs: %w", err)
	}
	if s.Total = len(recent); next != "" || before != "" {
		if s.Total, err = h.Jobs.CountImportJobs(ctx, all); err != nil {
			return fmt.Errorf("count import jobs: %w", err)
		}
	}
	if next != "" {
		s.OlderURL = "/devices/import?before=" + url.QueryEscape(next) + "#recent-imports"
	}
	s.Older = before != ""
	if s.Open, err = h.listItems(ctx, u, open); err != nil {
		return err
	}
	if s.Recent, err = h.listItems(ctx, u, recent); err != nil {
		return err
	}
	return web.Render(c, status, views.ImportStartPage(web.PageFor(c, views.ListTitle("Import devices", s.Older), "devices"), s))
}

// listItems are imports and drafts as the import page lists them, with where each stands.
func (h *Devices) listItems(ctx context.Context, u *web.SessionUser, recs []store.ImportJob) ([]views.ImportListItem, error) {
	ids := make([]string, len(recs))
	for i, rec := range recs {
		ids[i] = rec.ID
	}
	counts, err := h.Jobs.CountImportRows(ctx, ids)
	if err != nil {
		return nil, err
	}
	items := make([]views.ImportListItem, 0, len(recs))
	for _, rec := range recs {
		p, _ := importer.DecodePayload(rec.Payload) // an unreadable payload shows no file name
		item := views.ImportListItem{ID: rec.ID, Created: rec.CreatedAt, Owner: ownerName(&rec), Mine: rec.ObjectID == u.ObjectID, Source: p.Shown(), State: rec.State}
		item.Counts = viewCounts(importer.CountVerdicts(counts[rec.ID].ByVerdict))
		if rec.State == importer.StateDraft || rec.State == importer.StateChecking {
			item.Ready = counts[rec.ID].Valid
		}
		items = append(items, item)
	}
	return items, nil
}

// Preflight is POST /devices/import: read the CSV (file, paste or single device), check it, keep
// it as a draft owned by whoever uploaded it. A file over the row limit is refused while it is
// read, and nothing is stored.
func (h *Devices) Preflight(c echo.Context) error {
	data, source, single, err := readImportInput(c, h.MaxRows)
	if err == nil {
		rep := devicecsv.ParseOwned(data, h.MaxRows) // data is the report's now
		data = nil
		if len(rep.Rows) == 0 && len(rep.FileErrors) > 0 { // too many rows, or not a device CSV: nothing is kept
			err = errors.New(strings.Join(rep.FileErrors, " "))
		} else {
			return h.createDraft(c, rep, source)
		}
	}
	return h.renderStart(c, http.StatusUnprocessableEntity, views.ImportStart{Error: err.Error(), Paste: c.FormValue("csv"), Single: single, MaxRows: h.MaxRows, Access: accessOf(c)}, "")
}

func (h *Devices) createDraft(c echo.Context, rep *devicecsv.Report, source string) error {
	u := web.CurrentUser(c)
	p := importer.Payload{Source: source, FileNotes: rep.FileNotes, FileErrors: rep.FileErrors}
	rec := &store.ImportJob{TenantID: u.TenantID, ObjectID: u.ObjectID, ActorUPN: u.UPN, ActorName: u.Name, State: importer.StateDraft, Payload: p.Encode()}
	if err := h.Jobs.CreateImportJob(c.Request().Context(), rec, rowsOf(rep.Rows)); err != nil {
		return fmt.Errorf("create import job: %w", err)
	}
	h.reached(importer.StateDraft)
	return c.Redirect(http.StatusSeeOther, views.ImportJobURL(rec.ID))
}

// readImportInput takes the uploaded file, else the pasted text, else the single-device fields,
// and names where the rows came from.
func readImportInput(c echo.Context, maxRows int) ([]byte, string, views.SingleDevice, error) {
	single := views.SingleDevice{Serial: strings.TrimSpace(c.FormValue("serialNumber")), Hash: strings.TrimSpace(c.FormValue("hardwareHash")),
		GroupTag: strings.TrimSpace(c.FormValue("groupTag")), User: strings.TrimSpace(c.FormValue("assignedUser"))}
	if fh, err := c.FormFile("file"); err == nil && fh.Size > 0 {
		data, err := readFile(fh, maxRows)
		return data, importer.CleanFileName(fh.Filename), single, err
	}
	if paste := c.FormValue("csv"); strings.TrimSpace(paste) != "" {
		if len(paste) > MaxCSVBytes {
			return nil, "", single, tooLargeError(int64(len(paste)), maxRows)
		}
		return []byte(paste), importer.SourcePasted, single, nil
	}
	if single.Serial != "" || single.Hash != "" {
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
		w.Write([]string{single.Serial, "", single.Hash, single.GroupTag, single.User})
		w.Flush()
		return []byte(b.String()), importer.SourceOneDevice, single, nil
	}
	return nil, "", single, errors.New("Choose a CSV file, paste its contents, or fill in the single-device fields.")
}

// tooLargeError says that size bytes are over the limit of a desk that takes at most maxRows
// devices from one file, and what to do.
func tooLargeError(size int64, maxRows int) error {
	return fmt.Errorf("This is %s MB, and the desk reads at most %d MB at once (%d MB for a file saved as UTF-16) and up to %s devices. Split the file into parts of up to %s devices, each with the header line, and import them one after another.",
		explain.Number(int((size+(1<<20)-1)>>20)), MaxCSVBytes>>20, 2*MaxCSVBytes>>20, explain.Number(maxRows), partRows(maxRows))
}

func readFile(fh *multipart.FileHeader, maxRows int) ([]byte, error) {
	f, err := fh.Open()
	if err != nil {
		return nil, errors.New("The file could not be read. Choose it again.")
	}
	defer f.Close()
	limit := int64(MaxCSVBytes)
	if fh.Size > limit {
		prefix := make([]byte, 512)
		n, _ := io.ReadFull(f, prefix)
		if devicecsv.UTF16(prefix[:n]) {
			limit *= 2 // the same devices take twice the bytes
		}
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			return nil, errors.New("The file could not be read. Choose it again.")
		}
	}
	if fh.Size > limit {
		return nil, tooLargeError(fh.Size, maxRows)
	}
	data := make([]byte, fh.Size)
	if _, err := io.ReadFull(f, data); err != nil {
		return nil, errors.New("The file could not be read. Choose it again.")
	}
	return data, nil
}

// rowsOf are pre-flight rows as the job keeps them, made as they are written.
func rowsOf(rows []devicecsv.Row) iter.Seq[store.ImportRow] {
	return func(yield func(store.ImportRow) bool) {
		for _, r := range rows {
			if !yield(rowOf(r)) {
				return
			}
		}
	}
}

// rowOf is a pre-flight row as the job keeps it, the hash as the check left it (padded).
func rowOf(r devicecsv.Row) store.ImportRow {
	return store.ImportRow{Line: r.Line, Serial: r.SerialNumber, ProductKey: r.ProductKey, Hash: r.HardwareHash, HashShown: devicecsv.Truncate(r.HardwareHash),
		GroupTag: r.GroupTag, User: r.AssignedUser, Notes: r.Notes, Errors: r.Errors}
}

// loaded is a job of the signed-in user's tenant with what its page needs.
type loaded struct {
	rec     *store.ImportJob
	payload importer.Payload
}

// load reads a job of the signed-in user's tenant; any member of the tenant may view it.
func (h *Devices) load(c echo.Context) (*loaded, error) {
	id := c.Param("id")
	if !guid.Valid(id) {
		return nil, notFound("There is no import with this id.")
	}
	ctx := c.Request().Context()
	tenant := web.CurrentUser(c).TenantID
	rec, err := h.Jobs.GetImportJob(ctx, tenant, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("There is no import with this id in your tenant.")
	}
	if err != nil {
		return nil, fmt.Errorf("read import job: %w", err)
	}
	if importer.Legacy(rec.Payload) {
		if err := importer.Upgrade(ctx, h.Jobs, rec); err != nil {
			if rec, err = h.Jobs.GetImportJob(ctx, tenant, id); err != nil || importer.Legacy(rec.Payload) {
				return nil, fmt.Errorf("upgrade import job %s: %w", id, err)
			}
		}
	}
	p, err := importer.DecodePayload(rec.Payload)
	if err != nil {
		return nil, fmt.Errorf("decode import job %s: %w", rec.ID, err)
	}
	return &loaded{rec: rec, payload: p}, nil
}

// loadOwned is load for the actions only the job's owner may take: anyone else gets a page that
// says whose it is.
func (h *Devices) loadOwned(c echo.Context) (*loaded, error) {
	j, err := h.load(c)
	if err != nil {
		return nil, err
	}
	u := web.CurrentUser(c)
	if u.TenantID != j.rec.TenantID || u.ObjectID != j.rec.ObjectID {
		owner := ownerName(j.rec)
		return nil, &views.ErrorPage{Status: http.StatusForbidden, Title: "Only " + owner + " can change this import",
			Message:    "This import belongs to " + owner + ", who uploaded the file. Everyone in your organisation can follow it and download its report, but only " + owner + " can fix, check, import or look up its devices. Nothing was changed.",
			NextStep:   "Ask " + owner + " to do it, or upload the file yourself to start an import of your own.",
			ActionURL:  views.ImportJobURL(j.rec.ID),
			ActionText: "Back to the import"}
	}
	return j, nil
}

func ownerName(rec *store.ImportJob) string {
	return ownerOf(rec.ActorName, rec.ActorUPN, "the person who uploaded it")
}

// checkingNow is the answer to a change of a draft whose serials are being checked.
func checkingNow(id string) *views.ErrorPage {
	return &views.ErrorPage{Status: http.StatusConflict, Title: "The serial numbers are still being checked",
		Message:  "A file takes no changes while its serial numbers are looked up in your tenant. Nothing was changed.",
		NextStep: "Wait for the check to finish, or stop it, then try again.", ActionURL: views.ImportJobURL(id), ActionText: "Follow the check"}
}

// loadDraft is loadOwned for the actions only a draft accepts; a job already submitted answers
// with its page, and nothing is sent.
func (h *Devices) loadDraft(c echo.Context) (*loaded, error) {
	j, err := h.loadOwned(c)
	if err != nil {
		return nil, err
	}
	if j.rec.State == importer.StateChecking {
		return nil, checkingNow(j.rec.ID)
	}
	if j.rec.State != importer.StateDraft {
		return nil, c.Redirect(http.StatusSeeOther, views.ImportJobURL(j.rec.ID))
	}
	return j, nil
}

// Show is GET /devices/import/:id: the pre-flight of a draft, the progress of an import, or its
// outcome — always read from the state database.
func (h *Devices) Show(c echo.Context) error {
	j, err := h.load(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	u := web.CurrentUser(c)
	if j.rec.State == importer.StateChecking {
		// The page shows the check's progress and the rows' counts, reloaded every 2 s: the rows
		// themselves come back when the check ends.
		tally, err := h.Jobs.TallyImportRows(ctx, j.rec.ID)
		if err != nil {
			return err
		}
		view := jobView(j, nil, nil, u.ObjectID == j.rec.ObjectID, h.Now())
		view.Access = accessOf(c)
		view.Tally = &views.RowTally{Rows: tally.Rows, Ticked: tally.Ticked}
		view.ProblemsLeftOut = len(j.payload.LeftOut)
		view.Valid, view.Invalid = tally.Valid, tally.Rows-tally.Valid-view.ProblemsLeftOut
		return web.Render(c, http.StatusOK, views.ImportJobPage(web.PageFor(c, views.ImportJobTitle(view), "devices"), view))
	}
	// Batches first: a row changes with its batch or after it, so the rows read next are at least
	// as far along as the batches the page explains them by.
	var batches []store.ImportBatch
	if j.rec.State != importer.StateDraft {
		if batches, err = h.Jobs.ImportBatches(ctx, j.rec.ID); err != nil {
			return fmt.Errorf("read import batches: %w", err)
		}
	}
	rows, err := h.Jobs.ImportRows(ctx, j.rec.ID, store.RowFilter{})
	if err != nil {
		return fmt.Errorf("read import rows: %w", err)
	}
	if j.rec.State == importer.StateSending && !j.rec.NextPollAt.After(h.Now()) && h.Worker != nil {
		h.Worker.Kick()
	}
	view := jobView(j, rows, batches, u.ObjectID == j.rec.ObjectID, h.Now())
	if c.QueryParam("looked") != "" && view.IsOwner {
		for i := range view.Unknown {
			view.Unknown[i].Asked = true
		}
	}
	view.Access = accessOf(c)
	if j.rec.State == importer.StateDraft && view.IsOwner {
		if pending, ok := web.TakePendingForm(c); ok {
			restoreDraftForm(&view, pending)
		}
	}
	if j.rec.State != importer.StateDraft {
		from, _ := strconv.Atoi(c.QueryParam("from"))
		showRows(&view, from, outcomeRowsShown)
	}
	return web.Render(c, http.StatusOK, views.ImportJobPage(web.PageFor(c, views.ImportJobTitle(view), "devices"), view))
}

// restoreDraftForm puts back on a pre-flight what a sign-in interrupted: the "Leave out" ticks of
// its import form, or what was typed into its fix form (a new hardware hash is never shown).
func restoreDraftForm(v *views.ImportJob, pending url.Values) {
	if ticks, ok := pending["leaveOut"]; ok {
		v.Ticks = map[int]bool{}
		for _, t := range ticks {
			if n, err := strconv.Atoi(t); err == nil {
				v.Ticks[n] = true
			}
		}
		return
	}
	for i := range v.Rows {
		r := &v.Rows[i]
		if len(r.Errors) == 0 {
			continue
		}
		prefix := "row-" + strconv.Itoa(r.Line) + "-"
		for field, value := range map[string]*string{"serial": &r.Serial, "productKey": &r.ProductKey, "groupTag": &r.GroupTag, "user": &r.User} {
			if typed, ok := pending[prefix+field]; ok && len(typed) > 0 {
				*value = typed[0]
				r.TooLong = slices.DeleteFunc(r.TooLong, func(f string) bool { return f == field })
			}
		}
		_, r.LeftOutByOwner = pending[prefix+"leaveOut"]
	}
}

// outcomeRowsShown is how many rows an import's page shows at a time once it is sent: enough for
// any one batch, and a page a browser reloads in a moment while the import runs. (The pre-flight
// shows every row: its form ticks the rows to leave out.)
const outcomeRowsShown = 500

// showRows keeps, of v's rows, size from from (the last window when from is past the end).
func showRows(v *views.ImportJob, from, size int) {
	total := len(v.Rows)
	from = max(min(from, (total-1)/size*size), 0)
	v.Shown = views.RowWindow{From: from, Size: size, Total: total}
	v.Rows = v.Rows[from:min(from+size, total)]
}

// Check is POST /devices/import/:id/check: hand the draft to the serial check
// (importer.Checker), which looks each valid serial up among the tenant's registered Autopilot
// devices, in JSON batches of 20 (500 serials take 25 requests), and among the desk's own imports
// still on their way (in the state database, no request). Rows found are left out, with what the
// tenant holds for them. The job's page follows the check; a short one is over by the time the
// page is shown.
func (h *Devices) Check(c echo.Context) error {
	j, err := h.loadOwned(c)
	if err != nil {
		return err
	}
	if j.rec.State != importer.StateDraft { // checking already, or submitted: its page says which
		return c.Redirect(http.StatusSeeOther, views.ImportJobURL(j.rec.ID))
	}
	ctx := c.Request().Context()
	tally, err := h.Jobs.TallyImportRows(ctx, j.rec.ID)
	if err != nil {
		return err
	}
	if tally.Valid == 0 { // every row has a problem: there is nothing to look up (the page offers no check)
		return c.Redirect(http.StatusSeeOther, views.ImportJobURL(j.rec.ID))
	}
	j.payload.Failure, j.payload.Checked, j.payload.LastCheck = nil, false, nil
	j.payload.Check = &importer.Check{Of: tally.Valid, Started: h.Now()}
	err = h.Jobs.StartTenantCheck(ctx, j.rec.TenantID, j.rec.ID, j.rec.ObjectID, j.payload.Encode())
	if err != nil && !errors.Is(err, store.ErrConflict) { // a conflict: another request started it
		return fmt.Errorf("start the check: %w", err)
	}
	if err == nil && h.Checker != nil {
		h.Checker.Kick()
		h.awaitCheck(ctx, j.rec, checkWait)
	}
	return c.Redirect(http.StatusSeeOther, views.ImportJobURL(j.rec.ID))
}

// checkWait is how long a request that starts a check waits for it to end, so that a check of a
// few hundred serials shows its findings on the page that follows; a longer one shows its progress.
const checkWait = 2 * time.Second

// awaitCheck waits until rec's check has ended, for at most wait.
func (h *Devices) awaitCheck(ctx context.Context, rec *store.ImportJob, wait time.Duration) {
	pollUntil(ctx, wait, 25*time.Millisecond, func(ctx context.Context) bool {
		j, err := h.Jobs.GetImportJob(ctx, rec.TenantID, rec.ID)
		return err != nil || j.State != importer.StateChecking
	})
}

// StopCheck is POST /devices/import/:id/stop-check: end a check before it has looked every
// serial up. What it found so far stays; the draft takes changes again.
func (h *Devices) StopCheck(c echo.Context) error {
	j, err := h.loadOwned(c)
	if err != nil {
		return err
	}
	if check := j.payload.Check; j.rec.State == importer.StateChecking && check != nil {
		check.Stopped, check.Ended = true, h.Now()
		j.payload.Check, j.payload.LastCheck = nil, check
		err := h.Jobs.StopTenantCheck(c.Request().Context(), j.rec.TenantID, j.rec.ID, j.rec.ObjectID, j.payload.Encode())
		if err != nil && !errors.Is(err, store.ErrConflict) { // a conflict: the check has ended meanwhile
			return fmt.Errorf("stop the check: %w", err)
		}
	}
	return c.Redirect(http.StatusSeeOther, views.ImportJobURL(j.rec.ID))
}

// mayImport refuses the fix or import of a draft asked by someone the desk knows to be read-only
// (importing needs the ReadWrite permission): the draft stays as it was, on its page.
func mayImport(c echo.Context) error {
	a := web.Access(c)
	if !a.ReadOnly {
		return nil
	}
	back := "/devices/import"
	if id := c.Param("id"); guid.Valid(id) {
		back = views.ImportJobURL(id)
	}
	return readOnlyRefusal(a, back, "Back to the check")
}

// draftForm is the draft a form was posted to, with the form; j is nil when the answer is err's.
func (h *Devices) draftForm(c echo.Context) (j *loaded, form url.Values, err error) {
	if j, err = h.loadDraft(c); err != nil || j == nil {
		return nil, nil, err
	}
	if form, err = c.FormParams(); err != nil {
		return nil, nil, err
	}
	return j, form, nil
}

// Fix is POST /devices/import/:id/fix: corrected values for the rows with problems. The whole
// set is checked again (a fix can create or remove a duplicate); nothing is sent to Graph.
func (h *Devices) Fix(c echo.Context) error {
	if err := mayImport(c); err != nil {
		return err
	}
	j, form, err := h.draftForm(c)
	if err != nil || j == nil {
		return err
	}
	ctx := c.Request().Context()
	rows, err := h.Jobs.ImportRows(ctx, j.rec.ID, store.RowFilter{Hashes: true})
	if err != nil {
		return fmt.Errorf("read import rows: %w", err)
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write(strings.Split(devicecsv.Header, ","))
	leftOut := map[int]bool{}
	for _, r := range rows {
		hash := r.Hash
		if len(r.Errors) > 0 && form.Get("row-"+strconv.Itoa(r.Line)+"-leaveOut") != "" {
			leftOut[r.Line] = true // left out as it is: what was typed into it does not count
		} else if len(r.Errors) > 0 {
			field := func(name, current string) string {
				if v, ok := form["row-"+strconv.Itoa(r.Line)+"-"+name]; ok {
					return strings.TrimSpace(v[0])
				}
				return current
			}
			r.Serial, r.ProductKey = field("serial", r.Serial), field("productKey", r.ProductKey)
			r.GroupTag, r.User = field("groupTag", r.GroupTag), field("user", r.User)
			if h := field("hash", ""); h != "" {
				hash = h
			}
		}
		w.Write([]string{r.Serial, r.ProductKey, hash, r.GroupTag, r.User})
	}
	w.Flush()
	rep := devicecsv.ParseLimit([]byte(b.String()), h.MaxRows)
	if len(rep.Rows) != len(rows) {
		return &views.ErrorPage{Status: http.StatusUnprocessableEntity, Title: "The corrections could not be applied",
			Message: "A corrected value broke the row apart (for example a line break in a field). Nothing was changed.", ActionURL: views.ImportJobURL(j.rec.ID), ActionText: "Back to the check"}
	}
	j.payload.LeftOut = nil
	for i := range rep.Rows {
		rep.Rows[i].Line = rows[i].Line // keep the file's own line numbers
		if leftOut[rep.Rows[i].Line] && len(rep.Rows[i].Errors) > 0 {
			j.payload.LeftOut = append(j.payload.LeftOut, rep.Rows[i].Line)
		}
	}
	j.payload.Checked, j.payload.Failure, j.payload.LastCheck = false, nil, nil
	err = h.Jobs.ReplaceDraftRows(ctx, j.rec.TenantID, j.rec.ID, j.rec.ObjectID, j.payload.Encode(), rowsOf(rep.Rows))
	if errors.Is(err, store.ErrConflict) {
		// The draft changed under the form: its check began, or it was imported, from another tab.
		if now, err := h.Jobs.GetImportJob(ctx, j.rec.TenantID, j.rec.ID); err == nil && now.State == importer.StateChecking {
			return checkingNow(j.rec.ID)
		}
	} else if err != nil {
		return fmt.Errorf("save the corrections: %w", err)
	}
	return c.Redirect(http.StatusSeeOther, views.ImportJobURL(j.rec.ID))
}

// Submit is POST /devices/import/:id/submit: the valid rows not left out go to the import
// worker in batches. The draft becomes "sending" in one conditional change together with its batches and
// every row's part in them; of concurrent submits only one wins, and the others see the job page.
func (h *Devices) Submit(c echo.Context) error {
	if err := mayImport(c); err != nil {
		return err
	}
	j, form, err := h.draftForm(c)
	if err != nil || j == nil {
		return err
	}
	// Rows are left out by ticking them, so the form stays small however long the file is.
	leaveOut := map[int]bool{}
	for _, v := range form["leaveOut"] {
		if n, err := strconv.Atoi(v); err == nil {
			leaveOut[n] = true
		}
	}
	ctx := c.Request().Context()
	rows, err := h.Jobs.ImportRows(ctx, j.rec.ID, store.RowFilter{})
	if err != nil {
		return fmt.Errorf("read import rows: %w", err)
	}
	choice := importer.Choose(rows, leaveOut)
	if len(choice.Send) == 0 {
		// The page comes back with the ticks as they were sent, so a second press sends nothing
		// either: nothing is stored.
		e := explain.Explain(explain.Failure{Cause: explain.NothingChosen, At: h.Now()})
		view := jobView(j, rows, nil, true, h.Now())
		view.Failure, view.Ticks = &e, leaveOut
		return web.Render(c, http.StatusUnprocessableEntity, views.ImportJobPage(web.PageFor(c, "Import devices", "devices"), view))
	}
	batches, err := importer.Submit(ctx, h.Jobs, j.rec, j.payload, choice)
	if errors.Is(err, store.ErrConflict) {
		return c.Redirect(http.StatusSeeOther, views.ImportJobURL(j.rec.ID)) // another submit won: it is on its way
	}
	if err != nil {
		return fmt.Errorf("submit import job: %w", err)
	}
	send := choice.Send
	u := web.CurrentUser(c)
	h.Logger.Info("audit", "audit", true, "event", "import-submitted", "tid", u.TenantID, "oid", u.ObjectID, "upn", u.UPN, "target", j.rec.ID,
		"detail", fmt.Sprintf("%d devices in %d batches; %d rows left out", len(send), batches, len(rows)-len(send)))
	h.reached(importer.StateSending)
	return kickAndShow(c, h.Worker, views.ImportJobURL(j.rec.ID))
}

// Reconcile is POST /devices/import/:id/reconcile ("Check what Graph has"): look up now the
// devices of batches whose answer never arrived. It never sends anything again.
func (h *Devices) Reconcile(c echo.Context) error {
	j, err := h.loadOwned(c)
	if err != nil {
		return err
	}
	if err := h.Jobs.WakeImportJob(c.Request().Context(), j.rec.TenantID, j.rec.ID, true); err != nil {
		return fmt.Errorf("wake import job: %w", err)
	}
	return kickAndShow(c, h.Worker, views.ImportJobURL(j.rec.ID)+"?looked=1")
}

// Stop is POST /devices/import/:id/stop ("Stop sending"): the batches not sent yet are never
// sent; the devices already sent are followed to the end. Anyone in the tenant who may import
// can stop an import (whoever started it may be away while it sends the wrong file); the record
// says who did. Stopping again, or an import with nothing left to send, changes nothing.
func (h *Devices) Stop(c echo.Context) error {
	if err := mayImport(c); err != nil {
		return err
	}
	j, err := h.load(c)
	if err != nil {
		return err
	}
	u := web.CurrentUser(c)
	by := explain.Stop{By: cmp.Or(u.Name, u.UPN), At: h.Now()}
	stopped, err := importer.Stop(c.Request().Context(), h.Jobs, j.rec, by, *newActivity(u, importer.ActionStopped, nil, nil))
	switch {
	case errors.Is(err, store.ErrConflict):
		stopped = store.StoppedImport{} // a draft, or it finished meanwhile: its page says which
	case err != nil:
		return fmt.Errorf("stop import job: %w", err)
	}
	if stopped.Batches > 0 {
		h.Logger.Info("audit", "audit", true, "event", importer.ActionStopped, "tid", u.TenantID, "oid", u.ObjectID, "upn", u.UPN, "target", j.rec.ID,
			"detail", fmt.Sprintf("%d devices in %d batches not sent", stopped.Rows, stopped.Batches))
	}
	return kickAndShow(c, h.Worker, views.ImportJobURL(j.rec.ID))
}

// Report is GET /devices/import/:id/report.csv: every row of the file with its verdict — never a
// hash, every cell formula-safe.
func (h *Devices) Report(c echo.Context) error {
	j, err := h.load(c)
	if err != nil {
		return err
	}
	if j.rec.State != importer.StateFinished {
		return &views.ErrorPage{Status: http.StatusConflict, Title: "The import has not finished",
			Message: "The report is ready when every row has its final verdict.", ActionURL: views.ImportJobURL(j.rec.ID), ActionText: "Follow the import"}
	}
	ctx := c.Request().Context()
	rows, err := h.Jobs.ImportRows(ctx, j.rec.ID, store.RowFilter{})
	if err != nil {
		return fmt.Errorf("read import rows: %w", err)
	}
	batches, err := h.Jobs.ImportBatches(ctx, j.rec.ID)
	if err != nil {
		return fmt.Errorf("read import batches: %w", err)
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	hd.Set(echo.HeaderContentDisposition, reportDisposition(j.rec.ID, j.payload.FileName()))
	c.Response().WriteHeader(http.StatusOK)
	return writeImportReport(c.Response(), rows, jobFacts(j.rec, j.payload, batches))
}

// Sync is POST /devices/sync: ask Intune to sync Autopilot, at most once per 10 minutes.
func (h *Devices) Sync(c echo.Context) error {
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/devices", "Back to the devices")
	}
	_, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (struct{}, *graphclient.Exchange, error) {
		ex, err := h.Graph.SyncAutopilot(c.Request().Context(), ts)
		return struct{}{}, ex, err
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	h.SyncRead.ForgetTenant(web.CurrentUser(c).TenantID) // the list shows the new "last sync request"
	act := newActivity(web.CurrentUser(c), "sync", ex, err)
	d := resultDetail(nil, ex, err, h.Now())
	if err == nil {
		act.Summary = "Asked Intune to sync Autopilot devices."
	} else {
		act.Summary = explain.ForAction(act.Action, *d.Failure).Title
	}
	act.Detail = encodeDetail(d)
	if err := h.Activity.RecordActivity(c.Request().Context(), act); err != nil {
		return fmt.Errorf("record activity: %w", err)
	}
	return c.Redirect(http.StatusSeeOther, activityURL(act.ID))
}

// jobFacts is what the words for a job's rows need besides the rows: its owner and its batches.
func jobFacts(rec *store.ImportJob, p importer.Payload, batches []store.ImportBatch) explain.Job {
	return explain.Job{Owner: rec.ActorName, Approved: p.ApprovedFrom != "", Batches: importer.BatchFacts(batches)}
}

func checkProgress(c *importer.Check) *views.CheckProgress {
	if c == nil {
		return nil
	}
	return &views.CheckProgress{Done: c.Done, Of: c.Of, Found: c.Found, Step: importer.CheckStep, Started: c.Started, Ended: c.Ended, Stopped: c.Stopped}
}

func viewCounts(c importer.Counts) views.ImportCounts {
	return views.ImportCounts{Rows: c.Rows, Final: c.Final(), Queued: c.Queued, Sending: c.Sending, Unknown: c.Unknown, Processing: c.Processing,
		Imported: c.Imported, Partial: c.Partial, Errors: c.Errors, Refused: c.Refused, NotFound: c.NotFound, LeftOut: c.LeftOut, Stopped: c.Stopped, Reconciled: c.Reconciled}
}

// shownRow is r with each value too long for its column shortened to its ends (it may be a
// hardware hash in the wrong column), and the fields so shortened.
func shownRow(r store.ImportRow) (store.ImportRow, []string) {
	var tooLong []string
	for _, f := range []struct {
		name  string
		value *string
		limit int
	}{
		{"serial", &r.Serial, devicecsv.MaxSerialLength}, {"productKey", &r.ProductKey, devicecsv.MaxProductKeyLength},
		{"groupTag", &r.GroupTag, devicecsv.MaxGroupTagLength}, {"user", &r.User, devicecsv.MaxUserLength},
	} {
		if devicecsv.TooLong(*f.value, f.limit) {
			*f.value = devicecsv.Truncate(*f.value)
			tooLong = append(tooLong, f.name)
		}
	}
	return r, tooLong
}

// stalled says whether a desk holds a job (its lease runs until until) and has recorded nothing
// for explain.StallAfter: it may have stopped, and the job waits for the lease to run out.
func stalled(holder string, until, updated, now time.Time) bool {
	return holder != "" && until.After(now) && now.Sub(updated) > explain.StallAfter
}

// jobView turns a job into what its page shows (hashes only by their ends).
func jobView(j *loaded, rows []store.ImportRow, batches []store.ImportBatch, isOwner bool, now time.Time) views.ImportJob {
	rec, p := j.rec, j.payload
	v := views.ImportJob{ID: rec.ID, State: rec.State, Owner: ownerName(rec), OwnerName: rec.ActorName, IsOwner: isOwner, Created: rec.CreatedAt, FileName: p.FileName(), ApprovedFrom: p.ApprovedFrom,
		FileNotes: p.FileNotes, FileErrors: p.FileErrors, Checked: p.Checked, Paused: p.Paused}
	if p.Failure != nil {
		e := explain.Explain(*p.Failure)
		v.Failure = &e
	}
	v.Checking, v.LastCheck = checkProgress(p.Check), checkProgress(p.LastCheck)
	if p.Trouble != nil {
		v.Trouble = explain.Trouble(*p.Trouble)
	} else if stalled(rec.LeaseOwner, rec.LeaseUntil, rec.UpdatedAt, now) {
		v.Trouble = explain.Stalled("import", rec.UpdatedAt, rec.LeaseUntil)
	}
	if v.OwnerName == "" {
		v.OwnerName = ownerName(rec)
	}
	job := jobFacts(rec, p, batches)
	for _, r := range rows {
		d := explain.Row(r, job)
		shown, tooLong := shownRow(r)
		v.Rows = append(v.Rows, views.ImportRow{Line: r.Line, Serial: shown.Serial, ProductKey: shown.ProductKey, Hash: r.HashShown, GroupTag: shown.GroupTag, User: shown.User, TooLong: tooLong,
			Notes: r.Notes, Errors: r.Errors, AlreadyImported: r.AlreadyImported,
			RegisteredID: r.RegisteredID, RegisteredGroupTag: r.RegisteredGroupTag, RegisteredUser: r.RegisteredUser, ImportingJob: r.ImportingJob,
			Verdict: d.Key, Outcome: d.State, Detail: d.Detail, ErrorLabel: explain.ErrorLabel(r.ErrorCode, r.ErrorName), RegistrationID: r.RegistrationID,
			Reconciled: r.Reconciled, Batch: r.Batch})
		switch {
		case len(r.Errors) == 0:
			v.Valid++
		case slices.Contains(p.LeftOut, r.Line):
			v.Rows[len(v.Rows)-1].LeftOutByOwner = true
			v.ProblemsLeftOut++
		default:
			v.Invalid++
		}
	}
	v.Counts = viewCounts(importer.Count(rows))
	for _, b := range batches {
		if b.State == importer.BatchSplit {
			continue // its rows went into two smaller batches
		}
		v.Batches++
		// A batch put back in the queue (sign-in, throttling) was not sent, nor was one stopped there.
		if !b.SentAt.IsZero() && b.State != importer.BatchQueued && b.State != importer.BatchStopped {
			v.BatchesSent++
		}
		d := importer.DecodeBatchDetail(b.Detail)
		switch b.State {
		case importer.BatchQueued:
			v.QueuedBatches++
		case importer.BatchStopped:
			v.StoppedBatches++
			if v.Stopped == nil {
				v.Stopped = d.Stopped
			}
		case importer.BatchUnknown:
			n := 0
			for _, r := range rows {
				if r.Batch == b.Batch && (r.Verdict == store.VerdictUnknown || r.Verdict == store.VerdictSending) {
					n++
				}
			}
			u := views.UnknownBatch{Batch: b.Batch, Devices: n, SentAt: b.SentAt, NextLook: b.NotBefore, Lookups: b.Lookups, ActivityID: b.ActivityID, Support: d.Support}
			if d.Failure != nil {
				u.Explanation = explain.Explain(*d.Failure)
			}
			if d.LookFailure != nil {
				u.LookFailures, u.LookFailure = d.FailedLooks, explain.Explain(*d.LookFailure)
			}
			v.Unknown = append(v.Unknown, u)
		case importer.BatchRefused:
			if d.Failure != nil && b.ActivityID != "" {
				e := explain.AfterImportEnded(explain.Explain(*d.Failure))
				if p.ApprovedFrom != "" {
					e = explain.AfterApproval(explain.Explain(*d.Failure), explain.RefusedAccount(*d.Failure))
					v.WaitAgain = v.WaitAgain || explain.RefusedAccount(*d.Failure)
				}
				v.Refused = append(v.Refused, views.RefusedBatch{Batch: b.Batch, Explanation: e, Support: d.Support, ActivityID: b.ActivityID})
			}
		}
	}
	w := p.Waiting
	if p.Check != nil {
		w = p.Check.Wait // Graph throttled the check's step under way
	}
	if w != nil && now.Before(w.Until) {
		reason := w.Reason // stored earlier, in words
		if reason == "" {
			reason = explain.Wait(w.Throttled)
		}
		v.Waiting = &views.ImportWait{Reason: reason, For: w.For, Until: w.Until}
	}
	// The page refreshes itself quickly at first, then less often.
	v.RefreshSeconds = min(2<<min(p.Polls/3, 3), 15)
	if len(v.Unknown) > 0 || v.Paused {
		v.RefreshSeconds = 15
	}
	return v
}
