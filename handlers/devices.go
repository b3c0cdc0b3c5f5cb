package handlers

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/guid"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// DevicesAPI is the part of Graph the device import uses.
type DevicesAPI interface {
	ImportDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, devices []graphclient.DeviceIdentity) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error)
	GetDeviceIdentity(ctx context.Context, ts oauth2.TokenSource, id string) (*graphclient.DeviceIdentity, *graphclient.Exchange, error)
	FindDevicesBySerial(ctx context.Context, ts oauth2.TokenSource, serial string) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error)
	SyncAutopilot(ctx context.Context, ts oauth2.TokenSource) (*graphclient.Exchange, error)
}

// ImportJobs keeps import jobs in the state database, so any replica can follow one.
type ImportJobs interface {
	CreateImportJob(ctx context.Context, j *store.ImportJob) error
	GetImportJob(ctx context.Context, tenantID, id string) (*store.ImportJob, error)
	UpdateImportJob(ctx context.Context, j *store.ImportJob) error
}

// Devices imports Autopilot devices from the portal's CSV, with a pre-flight before anything is sent.
type Devices struct {
	Graph    DevicesAPI
	Tokens   Tokens
	Jobs     ImportJobs
	Activity ActivityLog
	Now      func() time.Time
	Log      *slog.Logger
	JobState func(state string) // optional: counts jobs reaching a state
}

func (h *Devices) reached(state string) {
	if h.JobState != nil {
		h.JobState(state)
	}
}

// MaxCSVBytes bounds an uploaded or pasted CSV: 10,000 rows of 4 KB hashes fit.
const MaxCSVBytes = 48 << 20

const (
	jobDraft   = "draft"   // pre-flight shown, nothing sent
	jobPolling = "polling" // imported; following each device to its final state
	jobDone    = "done"    // every device final; hashes deleted
)

// importJob is a job's payload: the pre-flight rows (hashes only until the job completes) and,
// once submitted, the devices Graph created.
type importJob struct {
	FileNotes  []string                 `json:"fileNotes,omitempty"`
	FileErrors []string                 `json:"fileErrors,omitempty"`
	Rows       []importRow              `json:"rows"`
	Devices    []importDevice           `json:"devices,omitempty"`
	Checked    bool                     `json:"checked,omitempty"`
	Failure    *graphclient.Explanation `json:"failure,omitempty"`
	Polls      int                      `json:"polls,omitempty"`
}

type importRow struct {
	Line            int      `json:"line"`
	Serial          string   `json:"serial"`
	ProductKey      string   `json:"productKey,omitempty"`
	Hash            string   `json:"hash,omitempty"` // padded base64; deleted when the job completes
	HashShown       string   `json:"hashShown"`
	GroupTag        string   `json:"groupTag,omitempty"`
	User            string   `json:"user,omitempty"`
	Notes           []string `json:"notes,omitempty"`
	Errors          []string `json:"errors,omitempty"`
	AlreadyImported bool     `json:"alreadyImported,omitempty"`
}

type importDevice struct {
	ID             string `json:"id"`
	Serial         string `json:"serial"`
	Status         string `json:"status"`
	RegistrationID string `json:"registrationId,omitempty"`
	ErrorCode      int    `json:"errorCode,omitempty"`
	ErrorName      string `json:"errorName,omitempty"`
	Batch          int    `json:"batch"`
}

// Start is GET /devices/import: upload or paste a CSV, or enter one device.
func (h *Devices) Start(c echo.Context) error {
	return web.Render(c, http.StatusOK, views.ImportStartPage(web.PageFor(c, "Import devices", "import"), views.ImportStart{}))
}

// Preflight is POST /devices/import: read the CSV (file, paste or single device), check it, keep it as a draft job.
func (h *Devices) Preflight(c echo.Context) error {
	data, single, err := readImportInput(c)
	if err != nil {
		return web.Render(c, http.StatusUnprocessableEntity, views.ImportStartPage(web.PageFor(c, "Import devices", "import"),
			views.ImportStart{Error: err.Error(), Paste: c.FormValue("csv"), Single: single}))
	}
	rep := devicecsv.Parse(data)
	job := importJob{FileNotes: rep.FileNotes, FileErrors: rep.FileErrors}
	for _, r := range rep.Rows {
		job.Rows = append(job.Rows, rowOf(r))
	}
	u := web.CurrentUser(c)
	rec := &store.ImportJob{TenantID: u.TenantID, ObjectID: u.ObjectID, ActorUPN: u.UPN, State: jobDraft, Payload: mustJSON(job)}
	if err := h.Jobs.CreateImportJob(c.Request().Context(), rec); err != nil {
		return fmt.Errorf("create import job: %w", err)
	}
	h.reached(jobDraft)
	return c.Redirect(http.StatusSeeOther, "/devices/import/"+rec.ID)
}

// readImportInput takes the uploaded file, else the pasted text, else the single-device fields.
func readImportInput(c echo.Context) ([]byte, views.SingleDevice, error) {
	single := views.SingleDevice{Serial: strings.TrimSpace(c.FormValue("serialNumber")), Hash: strings.TrimSpace(c.FormValue("hardwareHash")),
		GroupTag: strings.TrimSpace(c.FormValue("groupTag")), User: strings.TrimSpace(c.FormValue("assignedUser"))}
	if fh, err := c.FormFile("file"); err == nil && fh.Size > 0 {
		f, err := fh.Open()
		if err != nil {
			return nil, single, errors.New("The file could not be read. Choose it again.")
		}
		defer f.Close()
		data, err := io.ReadAll(io.LimitReader(f, MaxCSVBytes+1))
		if err != nil || len(data) > MaxCSVBytes {
			return nil, single, fmt.Errorf("The file is larger than %d MB. Split it and import the parts one after another.", MaxCSVBytes>>20)
		}
		return data, single, nil
	}
	if paste := c.FormValue("csv"); strings.TrimSpace(paste) != "" {
		return []byte(paste), single, nil
	}
	if single.Serial != "" || single.Hash != "" {
		var b strings.Builder
		w := csv.NewWriter(&b)
		w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
		w.Write([]string{single.Serial, "", single.Hash, single.GroupTag, single.User})
		w.Flush()
		return []byte(b.String()), single, nil
	}
	return nil, single, errors.New("Choose a CSV file, paste its contents, or fill in the single-device fields.")
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only plain data is encoded
	}
	return b
}

// load reads a job of the signed-in user's tenant.
func (h *Devices) load(c echo.Context) (*store.ImportJob, *importJob, error) {
	id := c.Param("id")
	if !guid.Valid(id) {
		return nil, nil, notFound("There is no import with this id.")
	}
	rec, err := h.Jobs.GetImportJob(c.Request().Context(), web.CurrentUser(c).TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil, notFound("There is no import with this id in your tenant.")
	}
	if err != nil {
		return nil, nil, fmt.Errorf("read import job: %w", err)
	}
	var job importJob
	if err := json.Unmarshal(rec.Payload, &job); err != nil {
		return nil, nil, fmt.Errorf("decode import job %s: %w", rec.ID, err)
	}
	return rec, &job, nil
}

// loadDraft is load for the actions only a draft accepts; for a job already submitted it answers
// with the job's page (a repeated check, fix or submit sends nothing) and a nil job.
func (h *Devices) loadDraft(c echo.Context) (*store.ImportJob, *importJob, error) {
	rec, job, err := h.load(c)
	if err != nil {
		return nil, nil, err
	}
	if rec.State != jobDraft {
		return rec, nil, c.Redirect(http.StatusSeeOther, "/devices/import/"+rec.ID)
	}
	return rec, job, nil
}

// rowOf is a pre-flight row as the job keeps it.
func rowOf(r devicecsv.Row) importRow {
	return importRow{Line: r.Line, Serial: r.SerialNumber, ProductKey: r.ProductKey, Hash: r.HardwareHash,
		HashShown: devicecsv.Truncate(r.HardwareHash), GroupTag: r.GroupTag, User: r.AssignedUser, Notes: r.Notes, Errors: r.Errors}
}

func (h *Devices) save(ctx context.Context, rec *store.ImportJob, job *importJob) error {
	rec.Payload = mustJSON(job)
	if err := h.Jobs.UpdateImportJob(ctx, rec); err != nil {
		return fmt.Errorf("save import job: %w", err)
	}
	return nil
}

// Show is GET /devices/import/:id: the pre-flight of a draft, or the progress of an import.
// Progress is always re-read from Graph for devices that are not final yet.
func (h *Devices) Show(c echo.Context) error {
	rec, job, err := h.load(c)
	if err != nil {
		return err
	}
	if rec.State == jobPolling {
		if err := h.poll(c, rec, job); err != nil {
			return err
		}
	}
	return web.Render(c, http.StatusOK, views.ImportJobPage(web.PageFor(c, "Import devices", "import"), jobView(rec, job, h.Now())))
}

// poll re-reads every device that is not final; when all are, the job completes and the hashes go.
func (h *Devices) poll(c echo.Context, rec *store.ImportJob, job *importJob) error {
	ctx := c.Request().Context()
	pending := 0
	for i := range job.Devices {
		d := &job.Devices[i]
		if d.Status == "complete" || d.Status == "error" {
			continue
		}
		got, _, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.DeviceIdentity, *graphclient.Exchange, error) {
			return h.Graph.GetDeviceIdentity(ctx, ts, d.ID)
		})
		if err != nil {
			if errors.Is(err, web.ErrSessionEnded) {
				return err
			}
			e := explain(err)
			job.Failure = &e
			pending++
			continue
		}
		job.Failure = nil
		d.Status, d.RegistrationID = got.State.DeviceImportStatus, got.State.DeviceRegistrationID
		d.ErrorCode, d.ErrorName = got.State.DeviceErrorCode, got.State.DeviceErrorName
		if !got.State.Final() {
			pending++
		}
	}
	job.Polls++
	if pending == 0 {
		rec.State = jobDone
		for i := range job.Rows {
			job.Rows[i].Hash = "" // hashes are not kept once the job is complete
		}
		h.audit(c, "import-complete", rec.ID, fmt.Sprintf("%d devices final", len(job.Devices)))
		h.reached(jobDone)
	}
	return h.save(ctx, rec, job)
}

// Check is POST /devices/import/:id/check: look each valid serial up in the tenant.
func (h *Devices) Check(c echo.Context) error {
	rec, job, err := h.loadDraft(c)
	if err != nil || job == nil {
		return err
	}
	ctx := c.Request().Context()
	for i := range job.Rows {
		r := &job.Rows[i]
		if len(r.Errors) > 0 {
			continue
		}
		found, _, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error) {
			return h.Graph.FindDevicesBySerial(ctx, ts, r.Serial)
		})
		if err != nil {
			if errors.Is(err, web.ErrSessionEnded) {
				return err
			}
			e := explain(err)
			job.Failure = &e
			break
		}
		r.AlreadyImported = false
		for _, d := range found {
			if d.State.DeviceImportStatus == "complete" || d.State.DeviceErrorCode == 0 && d.State.DeviceImportStatus != "error" {
				r.AlreadyImported = true
			}
		}
	}
	job.Checked = job.Failure == nil
	if err := h.save(ctx, rec, job); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/devices/import/"+rec.ID)
}

// Fix is POST /devices/import/:id/fix: corrected values for the rows with problems. The whole
// set is checked again (a fix can create or remove a duplicate); nothing is sent to Graph.
func (h *Devices) Fix(c echo.Context) error {
	rec, job, err := h.loadDraft(c)
	if err != nil || job == nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	var b strings.Builder
	w := csv.NewWriter(&b)
	w.Write(strings.Split(devicecsv.Header, ","))
	for _, r := range job.Rows {
		if len(r.Errors) > 0 {
			field := func(name, current string) string {
				if v, ok := form["row-"+strconv.Itoa(r.Line)+"-"+name]; ok {
					return strings.TrimSpace(v[0])
				}
				return current
			}
			r.Serial, r.GroupTag, r.User = field("serial", r.Serial), field("groupTag", r.GroupTag), field("user", r.User)
			if hash := field("hash", ""); hash != "" {
				r.Hash = hash
			}
		}
		w.Write([]string{r.Serial, r.ProductKey, r.Hash, r.GroupTag, r.User})
	}
	w.Flush()
	rep := devicecsv.Parse([]byte(b.String()))
	if len(rep.Rows) != len(job.Rows) {
		return &web.PageError{Status: http.StatusUnprocessableEntity, Title: "The corrections could not be applied",
			Message: "A corrected value broke the row apart (for example a line break in a field).", ActionURL: "/devices/import/" + rec.ID, ActionText: "Back to the check"}
	}
	for i, r := range rep.Rows {
		r.Line = job.Rows[i].Line // keep the file's own line numbers
		job.Rows[i] = rowOf(r)
	}
	job.Checked, job.Failure = false, nil
	if err := h.save(c.Request().Context(), rec, job); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/devices/import/"+rec.ID)
}

// Submit is POST /devices/import/:id/submit: import the chosen valid rows, at most 500 per call.
func (h *Devices) Submit(c echo.Context) error {
	rec, job, err := h.loadDraft(c)
	if err != nil || job == nil {
		return err
	}
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	chosen := map[int]bool{}
	for _, v := range form["row"] {
		if n, err := strconv.Atoi(v); err == nil {
			chosen[n] = true
		}
	}
	var rows []devicecsv.Row
	for _, r := range job.Rows {
		if chosen[r.Line] && len(r.Errors) == 0 && !(r.AlreadyImported && form.Get("skipExisting") == "1") {
			rows = append(rows, devicecsv.Row{Line: r.Line, SerialNumber: r.Serial, ProductKey: r.ProductKey, HardwareHash: r.Hash, GroupTag: r.GroupTag, AssignedUser: r.User})
		}
	}
	if len(rows) == 0 {
		job.Failure = &graphclient.Explanation{Title: "Nothing to import", What: "No valid row was chosen, so nothing was sent to Microsoft Graph.",
			NextStep: "Tick the rows to import, or fix the file and upload it again."}
		if err := h.save(c.Request().Context(), rec, job); err != nil {
			return err
		}
		return c.Redirect(http.StatusSeeOther, "/devices/import/"+rec.ID)
	}
	rec.State = jobPolling // claimed before sending: a second submit of this job sends nothing
	if err := h.save(c.Request().Context(), rec, job); err != nil {
		return err
	}
	u := web.CurrentUser(c)
	batches := devicecsv.Batches(rows, devicecsv.MaxRowsPerImport)
	rec.Batches = len(batches)
	var lastEx *graphclient.Exchange
	var importErr error
	for bi, batch := range batches {
		devices := make([]graphclient.DeviceIdentity, len(batch))
		for i, r := range batch {
			hash, _ := devicecsv.DecodeHash(r.HardwareHash)
			devices[i] = graphclient.DeviceIdentity{SerialNumber: r.SerialNumber, ProductKey: r.ProductKey, HardwareIdentifier: hash,
				GroupTag: r.GroupTag, AssignedUserPrincipalName: r.AssignedUser}
		}
		created, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) ([]graphclient.DeviceIdentity, *graphclient.Exchange, error) {
			return h.Graph.ImportDeviceIdentities(c.Request().Context(), ts, devices)
		})
		lastEx = ex
		if err != nil {
			importErr = err
			e := explain(err)
			job.Failure = &e
			break
		}
		for _, d := range created {
			job.Devices = append(job.Devices, importDevice{ID: d.ID, Serial: d.SerialNumber, Status: d.State.DeviceImportStatus, Batch: bi + 1})
		}
	}
	if len(job.Devices) == 0 {
		rec.State = jobDraft // nothing was imported: the draft can be submitted again
	} else {
		h.reached(jobPolling)
	}
	act := newActivity(u, "import", lastEx, importErr)
	act.Target = rec.ID
	if importErr == nil {
		act.Summary = fmt.Sprintf("Imported %d devices in %d batches.", len(job.Devices), len(batches))
	}
	act.Detail = encodeDetail(resultDetail(nil, lastEx, importErr))
	if err := h.Activity.RecordActivity(c.Request().Context(), act); err != nil {
		return fmt.Errorf("record activity: %w", err)
	}
	if err := h.save(c.Request().Context(), rec, job); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, "/devices/import/"+rec.ID)
}

// Report is GET /devices/import/:id/report.csv: serial, status, error, registration id — never the hash.
func (h *Devices) Report(c echo.Context) error {
	rec, job, err := h.load(c)
	if err != nil {
		return err
	}
	if rec.State != jobDone {
		return &web.PageError{Status: http.StatusConflict, Title: "The import is still running",
			Message: "The report is ready when every device has reached its final state.", ActionURL: "/devices/import/" + rec.ID, ActionText: "Follow the import"}
	}
	h2 := c.Response().Header()
	h2.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	h2.Set(echo.HeaderContentDisposition, `attachment; filename="autopilot-import-`+rec.ID+`.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	w := csv.NewWriter(c.Response())
	w.Write([]string{"Device Serial Number", "Status", "Error Code", "Error", "Meaning", "Device Registration ID"})
	for _, d := range job.Devices {
		code := ""
		if d.ErrorCode != 0 {
			code = strconv.Itoa(d.ErrorCode)
		}
		w.Write([]string{csvSafe(d.Serial), d.Status, code, d.ErrorName, views.DeviceErrorMeaning(d.ErrorCode, d.ErrorName).What, d.RegistrationID})
	}
	w.Flush()
	return w.Error()
}

// csvSafe keeps a value from being read as a formula by spreadsheet programs.
func csvSafe(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

// Sync is POST /devices/sync: ask Intune to sync Autopilot, at most once per 10 minutes.
func (h *Devices) Sync(c echo.Context) error {
	ex, err := func() (*graphclient.Exchange, error) {
		_, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (struct{}, *graphclient.Exchange, error) {
			ex, err := h.Graph.SyncAutopilot(c.Request().Context(), ts)
			return struct{}{}, ex, err
		})
		return ex, err
	}()
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	act := newActivity(web.CurrentUser(c), "sync", ex, err)
	if err == nil {
		act.Summary = "Asked Intune to sync Autopilot devices."
	} else if ge, ok := graphclient.AsError(err); ok && (ge.StatusCode == http.StatusTooManyRequests || ge.StatusCode == http.StatusConflict) {
		act.Summary = syncRefusal(ge)
	}
	d := resultDetail(nil, ex, err)
	if ge, ok := graphclient.AsError(err); ok && (ge.StatusCode == http.StatusTooManyRequests || ge.StatusCode == http.StatusConflict) {
		d.Explanation = &graphclient.Explanation{Title: syncRefusal(ge), What: syncWhat(ge), NextStep: syncNext(ge, h.Now()), Action: graphclient.ActionTryLater}
		if ge.RetryAfter > 0 {
			d.Explanation.RetryAt = h.Now().Add(ge.RetryAfter)
		}
	}
	act.Detail = encodeDetail(d)
	if err := h.Activity.RecordActivity(c.Request().Context(), act); err != nil {
		return fmt.Errorf("record activity: %w", err)
	}
	return c.Redirect(http.StatusSeeOther, activityURL(act.ID))
}

func syncRefusal(ge *graphclient.Error) string {
	if ge.StatusCode == http.StatusConflict {
		return "A sync is already running"
	}
	return "Intune allows one sync every 10 minutes"
}

func syncWhat(ge *graphclient.Error) string {
	if ge.StatusCode == http.StatusConflict {
		return "Intune is still running the previous Autopilot sync, so it refused another one. Nothing is lost: the running sync picks up the imported devices."
	}
	return "An Autopilot sync ran less than 10 minutes ago. Intune refuses another one until the 10 minutes have passed."
}

func syncNext(ge *graphclient.Error, now time.Time) string {
	if ge.RetryAfter > 0 {
		return fmt.Sprintf("Try again after %s UTC (in %s).", now.Add(ge.RetryAfter).UTC().Format("15:04:05"), ge.RetryAfter.Round(time.Second))
	}
	return "Wait a few minutes, then sync again."
}

func (h *Devices) audit(c echo.Context, event, target, detail string) {
	u := web.CurrentUser(c)
	h.Log.Info("audit", "audit", true, "event", event, "tid", u.TenantID, "oid", u.ObjectID, "upn", u.UPN, "target", target, "detail", detail)
}

// jobView turns a job into what its page shows (hashes only truncated).
func jobView(rec *store.ImportJob, job *importJob, now time.Time) views.ImportJob {
	v := views.ImportJob{ID: rec.ID, State: rec.State, FileNotes: job.FileNotes, FileErrors: job.FileErrors, Checked: job.Checked,
		Failure: job.Failure, Batches: rec.Batches}
	for _, r := range job.Rows {
		v.Rows = append(v.Rows, views.ImportRow{Line: r.Line, Serial: r.Serial, Hash: r.HashShown, GroupTag: r.GroupTag, User: r.User,
			Notes: r.Notes, Errors: r.Errors, AlreadyImported: r.AlreadyImported})
		if len(r.Errors) == 0 {
			v.Valid++
		} else {
			v.Invalid++
		}
	}
	for _, d := range job.Devices {
		v.Devices = append(v.Devices, views.ImportedDevice{Serial: d.Serial, Status: d.Status, RegistrationID: d.RegistrationID,
			ErrorCode: d.ErrorCode, ErrorName: d.ErrorName, Batch: d.Batch})
		if d.Status == "complete" || d.Status == "error" {
			v.Final++
		}
	}
	// Poll with backoff: quickly at first, then less often.
	v.RefreshSeconds = min(2<<min(job.Polls/3, 4), 30)
	return v
}
