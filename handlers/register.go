package handlers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/graphclient/unseen"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/handlers/registration"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// DeviceRegistrations is the part of the state database the device's side uses.
type DeviceRegistrations interface {
	RegistrationCodeByHash(ctx context.Context, codeHash string) (*store.RegistrationCode, error)
	AddRegistration(ctx context.Context, s *store.RegistrationSubmission, a *store.Activity) error
	Registrations(ctx context.Context, f store.SubmissionFilter) ([]store.RegistrationSubmission, error)
	WaitingSerials(ctx context.Context, tenantID string, serials []string) (map[string]store.WaitingSerial, error)
	ImportRows(ctx context.Context, jobID string, f store.RowFilter) ([]store.ImportRow, error)
	ImportBatches(ctx context.Context, jobID string) ([]store.ImportBatch, error)
	GetImportJob(ctx context.Context, tenantID, id string) (*store.ImportJob, error)
}

// RegisterCounter counts requests from devices in the state database, so replicas share counts.
type RegisterCounter interface {
	web.Counter
	// Exceeded reports, without counting, whether a bucket is over its limit.
	Exceeded(ctx context.Context, bucket string, limit int, window time.Duration) (bool, time.Duration, error)
}

// Register is the device's side of registration: POST /register/{code} with the CSV that
// Get-WindowsAutopilotInfo wrote, and GET /register/{code}/status. No session and no cookie: the
// code in the path is all the authority a request has, and all it lets a device do is wait for
// approval. Answers are plain text for the device's screen.
type Register struct {
	Store   DeviceRegistrations
	Counter RegisterCounter
	// PerClient bounds the requests of one client address and, apart, those with one code;
	// WrongCodes bounds the unknown codes one address may try before it is answered 429.
	PerClient, WrongCodes web.Limit
	PublicURL             string
	Count                 *WaitingCount
	Now                   func() time.Time
	Logger                *slog.Logger
}

// MaxRegisterRows is the most devices one request from a device may carry.
const MaxRegisterRows = 50

// RegisterBodyLimit bounds a request from a device: 50 rows of the largest hashes the check
// accepts, saved as UTF-16 by Windows PowerShell, fit.
const RegisterBodyLimit = 2 << 20

// maxDeviceText bounds the manufacturer and model kept for display: real ones are far shorter
// ("HP EliteBook 840 14 inch G10 Notebook PC" has 40 characters).
const maxDeviceText = 64

// Send is POST /register/{code}. A device sent again (a retry after a lost answer) is told it
// waits, even once the first send took the code's last use: a retry is no wrong code.
func (h *Register) Send(c echo.Context) error {
	code, shown, err := h.admit(c, func(rc *store.RegistrationCode) (bool, error) { return rc.Usable(h.Now()) || spent(rc, h.Now()), nil })
	if err != nil || code == nil {
		return err
	}
	data, err := readDeviceCSV(c, h.sendCommand(shown))
	if err != nil {
		return err
	}
	rep := devicecsv.ParseOwned(data, MaxRegisterRows)
	data = nil
	if !code.Usable(h.Now()) {
		return h.resent(c, code, shown, rep)
	}
	if rep.TooManyRows {
		return &views.ErrorPage{Status: http.StatusRequestEntityTooLarge, Title: "Autopilot Desk: the file has too many devices",
			Message:  fmt.Sprintf("A registration takes at most %d devices at once, and this file has more. Nothing was kept.", MaxRegisterRows),
			NextStep: "Send the devices in files of at most 50 rows (each with the header line), or ask your IT team to import the file in the desk."}
	}
	if len(rep.FileErrors) > 0 {
		return &views.ErrorPage{Status: http.StatusUnprocessableEntity, Title: "Autopilot Desk: the file could not be read",
			Message:  forTheDevice(strings.Join(rep.FileErrors, " ")) + " Nothing was kept.",
			NextStep: "Capture the hash again with Get-WindowsAutopilotInfo -OutputFile and send that file."}
	}
	ctx := c.Request().Context()
	waiting, err := h.Store.WaitingSerials(ctx, code.TenantID, validSerials(rep))
	if err != nil {
		return fmt.Errorf("read waiting serials: %w", err)
	}
	receipt := registration.Receipt{FileNotes: rep.FileNotes, Expires: code.ExpiresAt, StatusCommand: h.statusCommand(shown)}
	sub := &store.RegistrationSubmission{CodeID: code.ID, TenantID: code.TenantID, ClientIP: c.RealIP(), FileNotes: rep.FileNotes, ReceivedAt: h.Now()}
	for _, r := range rep.Rows {
		if len(r.Errors) > 0 {
			why := make([]string, len(r.Errors))
			for i, e := range r.Errors {
				why[i] = forTheDevice(e)
			}
			receipt.NotKept = append(receipt.NotKept, registration.NotKept{Line: r.Line, Serial: r.SerialNumber, Why: why})
			continue
		}
		if w, ok := waiting[strings.ToUpper(r.SerialNumber)]; ok {
			receipt.Waiting = append(receipt.Waiting, waitingRow(r, w, code))
			continue
		}
		d := store.RegistrationDevice{Line: r.Line, Serial: r.SerialNumber, ProductKey: r.ProductKey, Hash: r.HardwareHash,
			HashShown: devicecsv.Truncate(r.HardwareHash), GroupTag: code.GroupTag, User: code.AssignedUser,
			Manufacturer: deviceText(r.Manufacturer), Model: deviceText(r.Model), Notes: r.Notes}
		// The code decides the group tag and user: the technician at the device does not.
		if r.GroupTag != "" && r.GroupTag != code.GroupTag {
			d.Notes = append(d.Notes, "The file's group tag \""+r.GroupTag+"\" is replaced by the code's, "+plainQuoteOrNone(code.GroupTag)+".")
		}
		if r.AssignedUser != "" && r.AssignedUser != code.AssignedUser {
			d.Notes = append(d.Notes, "The file's assigned user "+r.AssignedUser+" is replaced by the code's, "+plainQuoteOrNone(code.AssignedUser)+".")
		}
		sub.Devices = append(sub.Devices, d)
		receipt.Kept = append(receipt.Kept, registration.Kept{Line: d.Line, Serial: d.Serial, Manufacturer: d.Manufacturer, Model: d.Model,
			HashShown: d.HashShown, Notes: d.Notes, GroupTag: d.GroupTag, User: d.User})
	}
	// Devices sent before take no use of the code again.
	if left := code.Uses - code.Used; len(sub.Devices) > left {
		return &views.ErrorPage{Status: http.StatusUnprocessableEntity, Title: "Autopilot Desk: the code takes fewer devices",
			Message:  fmt.Sprintf("This code takes %s, and the file has %s not sent before. Nothing was kept.", explain.Count(left, "more device", "more devices"), explain.Count(len(sub.Devices), "device", "devices")),
			NextStep: "Send a file with fewer devices, or ask your IT team for a code that takes more."}
	}
	if len(sub.Devices) == 0 {
		status := http.StatusUnprocessableEntity
		if len(receipt.Waiting) > 0 {
			status = http.StatusOK // sent before: it waits, which is what the technician wanted
		}
		return web.PlainText(c, status, registration.ReceiptText(receipt))
	}
	ip := c.RealIP()
	act := &store.Activity{TenantID: code.TenantID, ActorName: "A device at " + ip, Action: "registration-received", Outcome: outcomeSuccess,
		Summary: fmt.Sprintf("%s (%s) sent %s with registration code %s from %s; waiting for approval.",
			explain.Count(len(sub.Devices), "device", "devices"), serialList(sub.Devices), hashesWord(len(sub.Devices)), registration.CodeName(*code), ip)}
	err = h.Store.AddRegistration(ctx, sub, act)
	if errors.Is(err, store.ErrConflict) {
		return h.wrong(c) // spent, revoked or expired a moment ago
	}
	if err != nil {
		return fmt.Errorf("keep a registration: %w", err)
	}
	h.Count.Forget(code.TenantID)
	h.Logger.Info("audit", "audit", true, "event", act.Action, "outcome", act.Outcome, "activity_id", act.ID, "tid", act.TenantID,
		"target", sub.ID, "ip", ip, "summary", act.Summary)
	return web.PlainText(c, http.StatusAccepted, registration.ReceiptText(receipt))
}

// spent reports whether a code took all the devices it may and still works otherwise: it then
// answers only a device it brought, sent again.
func spent(rc *store.RegistrationCode, now time.Time) bool {
	return rc.RevokedAt.IsZero() && now.Before(rc.ExpiresAt) && rc.Used >= rc.Uses
}

// resent answers a file sent with a spent code: when every device in it came with this code
// and waits, the technician is told so; anything else is answered as a wrong code, as before
// (the code takes nothing new, and says nothing of other codes).
func (h *Register) resent(c echo.Context, code *store.RegistrationCode, shown string, rep *devicecsv.Report) error {
	serials := validSerials(rep)
	if rep.TooManyRows || len(rep.FileErrors) > 0 || len(serials) == 0 || len(serials) != len(rep.Rows) {
		return h.wrong(c)
	}
	waiting, err := h.Store.WaitingSerials(c.Request().Context(), code.TenantID, serials)
	if err != nil {
		return fmt.Errorf("read waiting serials: %w", err)
	}
	receipt := registration.Receipt{FileNotes: rep.FileNotes, Expires: code.ExpiresAt, StatusCommand: h.statusCommand(shown)}
	for _, r := range rep.Rows {
		w, ok := waiting[strings.ToUpper(r.SerialNumber)]
		if !ok || w.CodeID != code.ID {
			return h.wrong(c)
		}
		receipt.Waiting = append(receipt.Waiting, waitingRow(r, w, code))
	}
	return web.PlainText(c, http.StatusOK, registration.ReceiptText(receipt))
}

// waitingRow is a device of the file that waits already: since when, only when it waits under
// this code (of another code, whoever holds this one learns no more than that it waits).
func waitingRow(r devicecsv.Row, w store.WaitingSerial, code *store.RegistrationCode) registration.Waiting {
	if w.CodeID != code.ID {
		return registration.Waiting{Line: r.Line, Serial: r.SerialNumber}
	}
	return registration.Waiting{Line: r.Line, Serial: r.SerialNumber, Since: w.Received, ThisCode: true}
}

func validSerials(rep *devicecsv.Report) []string {
	var serials []string
	for _, r := range rep.Rows {
		if len(r.Errors) == 0 {
			serials = append(serials, r.SerialNumber)
		}
	}
	return serials
}

// forTheDevice is a message of the CSV check without its sentences about uploading the file,
// which speak to the import page: at the device the file is sent, and the answer says how.
func forTheDevice(msg string) string {
	sentences := strings.SplitAfter(msg, ". ")
	kept := sentences[:0]
	for _, s := range sentences {
		if !strings.Contains(strings.ToLower(s), "upload") {
			kept = append(kept, s)
		}
	}
	if len(kept) == 0 {
		return msg
	}
	return strings.TrimSpace(strings.Join(kept, ""))
}

func hashesWord(n int) string {
	if n == 1 {
		return "its hardware hash"
	}
	return "their hardware hashes"
}

// deviceText is a manufacturer or model as the desk keeps it for display: without the characters
// nobody can see (an escape sequence would reach the technician's terminal in the receipt, a
// direction mark would reorder the approver's page) and at most maxDeviceText characters long.
func deviceText(s string) string {
	r := []rune(strings.TrimSpace(unseen.Drop(s)))
	if len(r) > maxDeviceText {
		return strings.TrimSpace(string(r[:maxDeviceText-1])) + "…"
	}
	return string(r)
}

// clipTo is s cut to n characters, marked when cut.
func clipTo(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n]) + "…"
	}
	return s
}

func plainQuoteOrNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return "\"" + s + "\""
}

// Status is GET /register/{code}/status: where each device sent with the code stands.
func (h *Register) Status(c echo.Context) error {
	var subs []store.RegistrationSubmission
	code, _, err := h.admit(c, func(rc *store.RegistrationCode) (bool, error) {
		var err error
		subs, err = h.Store.Registrations(c.Request().Context(), store.SubmissionFilter{CodeID: rc.ID})
		// A code that never brought a device shows only while it could.
		return len(subs) > 0 || rc.Usable(h.Now()), err
	})
	if err != nil || code == nil {
		return err
	}
	now := h.Now()
	st := registration.Status{Note: code.Note, GroupTag: code.GroupTag, User: code.AssignedUser, Expires: code.ExpiresAt,
		UsesLeft: max(code.Uses-code.Used, 0), Revoked: !code.RevokedAt.IsZero(), Now: now}
	type jobRows struct {
		rows   map[int]store.ImportRow
		job    explain.Job
		paused bool // it waits for its approver to sign in again
	}
	jobs := map[string]*jobRows{}
	ctx := c.Request().Context()
	for _, s := range subs {
		if s.JobID != "" && jobs[s.JobID] == nil {
			rows, err := h.Store.ImportRows(ctx, s.JobID, store.RowFilter{})
			if err != nil {
				return fmt.Errorf("read import rows: %w", err)
			}
			batches, err := h.Store.ImportBatches(ctx, s.JobID)
			if err != nil {
				return fmt.Errorf("read import batches: %w", err)
			}
			j := &jobRows{rows: map[int]store.ImportRow{}, job: explain.Job{Approved: true, Batches: importer.BatchFacts(batches)}}
			for _, r := range rows {
				j.rows[r.Line] = r
			}
			waits, err := importWaitsFor(ctx, h.Store, s)
			if err != nil {
				return err
			}
			j.paused = waits != ""
			jobs[s.JobID] = j
		}
		for _, d := range s.Devices {
			var row *store.ImportRow
			var job explain.Job
			if j := jobs[s.JobID]; j != nil && s.State != store.SubmissionWaiting {
				if r, ok := j.rows[d.JobLine]; ok {
					row, job = &r, j.job
				}
			}
			ds := registration.DeviceState(s, d, row, job, now)
			if j := jobs[s.JobID]; j != nil && j.paused && ds.State == "importing" {
				ds.Detail += " " + registration.ApproverAway
			}
			st.Devices = append(st.Devices, ds)
		}
	}
	return web.PlainText(c, http.StatusOK, registration.StatusText(st))
}

// Refuse answers any other method on /register/{code}: only POST sends a file. The code is not
// looked at, so this tells nothing about it.
func (h *Register) Refuse(c echo.Context) error {
	if err := h.allowClient(c); err != nil {
		return err
	}
	c.Response().Header().Set("Allow", http.MethodPost)
	shown := "XXXX-XXXX-XXXX"
	if norm, ok := registration.Normalize(c.Param("code")); ok {
		shown = registration.Format(norm)
	}
	return &views.ErrorPage{Status: http.StatusMethodNotAllowed, Title: "Autopilot Desk: send the file with POST",
		Message:  "This address takes the device's CSV file sent with POST, as the command from your IT team does; nothing else.",
		NextStep: "Run, with your code:\n  " + h.sendCommand(shown)}
}

// NoCode answers /register without a code after it.
func (h *Register) NoCode(c echo.Context) error {
	if err := h.allowClient(c); err != nil {
		return err
	}
	return &views.ErrorPage{Status: http.StatusNotFound, Title: "Autopilot Desk: the address has no registration code",
		Message:  "The command was sent to " + h.codeURL("") + " without the code your IT team gave you after it. Nothing was kept.",
		NextStep: "Run, with your code:\n  " + h.sendCommand("XXXX-XXXX-XXXX")}
}

// admit applies the rate limits and finds the code of the path; usable says whether a code found
// serves this request. A code that does not serve it is answered exactly like one that does not
// exist, and counted as a wrong code.
func (h *Register) admit(c echo.Context, usable func(*store.RegistrationCode) (bool, error)) (*store.RegistrationCode, string, error) {
	if err := h.allowClient(c); err != nil {
		return nil, "", err
	}
	ctx := c.Request().Context()
	ip := c.RealIP()
	if h.WrongCodes.N > 0 {
		over, retry, err := h.Counter.Exceeded(ctx, "register-wrong:ip:"+ip, h.WrongCodes.N, h.WrongCodes.Window)
		if err != nil {
			return nil, "", fmt.Errorf("rate limit: %w", err)
		}
		if over {
			return nil, "", h.flooded(c, retry)
		}
	}
	norm, ok := registration.Normalize(c.Param("code"))
	if !ok {
		if err := h.misaddressed(c); err != nil {
			return nil, "", err
		}
		return nil, "", h.wrong(c)
	}
	code, err := h.Store.RegistrationCodeByHash(ctx, registration.Hash(norm))
	if errors.Is(err, store.ErrNotFound) {
		return nil, "", h.wrong(c)
	}
	if err != nil {
		return nil, "", fmt.Errorf("read registration code: %w", err)
	}
	serves, err := usable(code)
	if err != nil {
		return nil, "", err
	}
	if !serves {
		return nil, "", h.wrong(c)
	}
	if h.PerClient.N > 0 {
		ok, retry, err := h.Counter.Allow(ctx, "register:code:"+code.ID, h.PerClient.N, h.PerClient.Window)
		if err != nil {
			return nil, "", fmt.Errorf("rate limit: %w", err)
		}
		if !ok {
			return nil, "", tooMany(c, retry, "This code was used more often in a short time than the desk allows.")
		}
	}
	return code, registration.Format(norm), nil
}

func (h *Register) allowClient(c echo.Context) error {
	if h.PerClient.N == 0 {
		return nil
	}
	ok, retry, err := h.Counter.Allow(c.Request().Context(), "register:ip:"+c.RealIP(), h.PerClient.N, h.PerClient.Window)
	if err != nil {
		return fmt.Errorf("rate limit: %w", err)
	}
	if !ok {
		h.Logger.Info("rate limited", "action", "register", "bucket_kind", "ip", "ip", c.RealIP())
		return tooMany(c, retry, "Your network sent more requests to the desk in a short time than it allows.")
	}
	return nil
}

// wrong answers a code that does not serve the request, whatever the reason, with the same text,
// and counts it against the client address.
func (h *Register) wrong(c echo.Context) error {
	if h.WrongCodes.N > 0 {
		ok, retry, err := h.Counter.Allow(c.Request().Context(), "register-wrong:ip:"+c.RealIP(), h.WrongCodes.N, h.WrongCodes.Window)
		if err != nil {
			return fmt.Errorf("rate limit: %w", err)
		}
		if !ok {
			return h.flooded(c, retry)
		}
	}
	return h.NoSuchCode(c)
}

// NoSuchCode is the one answer to every code that does not serve a request, whatever the reason:
// it names none, so that codes cannot be probed. A technician whose one-use code is spent because
// the first send worked is shown the way to its status.
func (h *Register) NoSuchCode(c echo.Context) error {
	if err := h.misaddressed(c); err != nil {
		return err
	}
	return &views.ErrorPage{Status: http.StatusNotFound, Title: "Autopilot Desk: no registration code matches",
		Message: "The code may be mistyped, or it expired, was revoked or has taken all the devices it may.",
		NextStep: "Check the code with the person who gave it to you: three groups of four letters and digits, such as K7QM-2XWD-9FHT. Or ask them for a new code.\n\n" +
			"If you already sent this device's file with this code, see where it stands with (your code in place of the Xs):\n  curl.exe " + h.codeURL("XXXX-XXXX-XXXX") + "/status"}
}

// misaddressed answers an address whose code reads right but which is not one of the desk's (a
// slash or full stop after the code or after "status", as a command copied from a sentence has):
// it says the address is wrong, not the code, with the two right commands. It returns nil for any
// other address. No code is looked up, so it tells nothing of the code, and it is not counted as
// a wrong one.
func (h *Register) misaddressed(c echo.Context) error {
	rest, ok := strings.CutPrefix(c.Request().URL.Path, "/register/")
	if !ok {
		return nil
	}
	first, after, slash := strings.Cut(rest, "/")
	trimmed := strings.TrimRight(first, ".,;:!?'\")>")
	norm, ok := registration.Normalize(trimmed)
	if !ok || trimmed == first && (!slash || after == "status") {
		return nil // not a code, or the desk's own address: a code that does not serve it
	}
	shown := registration.Format(norm)
	return &views.ErrorPage{Status: http.StatusNotFound, Title: "Autopilot Desk: the address is not quite right",
		Message: "The command named an address the desk does not have: the code in it reads right, but something around it is not " +
			"(a slash or a full stop after the code or after \"status\", say). Nothing was kept.",
		NextStep: "To send the device's file, run:\n  " + h.sendCommand(shown) + "\n\nTo see where the devices sent with the code stand, run:\n  " + h.statusCommand(shown)}
}

func (h *Register) flooded(c echo.Context, retry time.Duration) error {
	h.Logger.Warn("registration: too many wrong codes from one address", "ip", c.RealIP())
	return tooMany(c, retry, "Too many wrong registration codes were sent from your network in a short time.")
}

func tooMany(c echo.Context, retry time.Duration, why string) error {
	secs := max(int(math.Ceil(retry.Seconds())), 1)
	c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	return &views.ErrorPage{Status: http.StatusTooManyRequests, Title: "Autopilot Desk: too many requests",
		Message: why, NextStep: "Wait " + explain.Duration(time.Duration(secs)*time.Second) + ", then run the command again."}
}

func (h *Register) codeURL(shown string) string {
	return strings.TrimSuffix(h.PublicURL, "/") + "/register/" + shown
}

func (h *Register) statusCommand(shown string) string {
	return "curl.exe " + h.codeURL(shown) + "/status"
}

func (h *Register) sendCommand(shown string) string {
	return `curl.exe -F "csv=@AutopilotHWID.csv" ` + h.codeURL(shown)
}

// readDeviceCSV reads the CSV a device sent: the multipart field "csv" (curl.exe -F), or the
// whole body sent as text/csv (curl.exe --data-binary with that content type).
func readDeviceCSV(c echo.Context, command string) ([]byte, error) {
	r := c.Request()
	mediaType, _, err := mime.ParseMediaType(r.Header.Get(echo.HeaderContentType))
	if err != nil && r.Header.Get(echo.HeaderContentType) != "" {
		mediaType = "unreadable"
	}
	switch mediaType {
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, deviceBadRequest("it says it is a multipart upload but gives no boundary between its parts", command)
		}
		for {
			part, err := mr.NextPart()
			if errors.Is(err, io.EOF) {
				return nil, &views.ErrorPage{Status: http.StatusUnprocessableEntity, Title: "Autopilot Desk: no file was sent",
					Message: "The upload has no part named \"csv\", so there was nothing to check. Nothing was kept.", NextStep: "Run:\n  " + command}
			}
			if err != nil {
				return nil, readError(err, command)
			}
			if part.FormName() != "csv" {
				part.Close()
				continue
			}
			data, err := io.ReadAll(part)
			if err != nil {
				return nil, readError(err, command)
			}
			return data, nil
		}
	case "text/csv", "text/plain", "application/csv", "application/octet-stream":
		data, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, readError(err, command)
		}
		return data, nil
	}
	return nil, &views.ErrorPage{Status: http.StatusUnsupportedMediaType, Title: "Autopilot Desk: send the CSV file as it is",
		Message: "The desk takes the file as a form field named \"csv\" or as a text/csv body; this request was neither " +
			"(curl.exe -d or --data-binary without a content type sends a form, and -d also drops the file's line breaks). Nothing was kept.",
		NextStep: "Run:\n  " + command}
}

var errDeviceFileTooLarge = &views.ErrorPage{Status: http.StatusRequestEntityTooLarge, Title: "Autopilot Desk: the file is too large",
	Message:  fmt.Sprintf("A registration takes at most %d devices at once, which fit in 2 MB; this request is larger. Nothing was kept.", MaxRegisterRows),
	NextStep: "Send the file Get-WindowsAutopilotInfo -OutputFile wrote for this device, and nothing else."}

func readError(err error, command string) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errDeviceFileTooLarge
	}
	return deviceBadRequest("it was cut off before its end (the connection may have dropped)", command)
}

func deviceBadRequest(why, command string) error {
	return &views.ErrorPage{Status: http.StatusBadRequest, Title: "Autopilot Desk: the request could not be read",
		Message: "The desk could not read what was sent: " + why + ". Nothing was kept.", NextStep: "Run the command again:\n  " + command}
}
