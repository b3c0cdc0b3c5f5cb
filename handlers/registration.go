package handlers

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf16"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/graphclient/unseen"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/handlers/registration"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// RegistrationStore keeps registration codes, what devices sent with them and the import jobs
// approvals create.
type RegistrationStore interface {
	CreateRegistrationCode(ctx context.Context, c *store.RegistrationCode, codeHash, formKeyHash string, a *store.Activity) error
	RegistrationCode(ctx context.Context, tenantID, id string) (*store.RegistrationCode, error)
	RegistrationCodesPage(ctx context.Context, tenantID string, skip, n int) (store.CodeList, error)
	WaitingByCode(ctx context.Context, tenantID string) ([]store.WaitingCode, error)
	RevokeRegistrationCode(ctx context.Context, tenantID, id, by string, a *store.Activity) error
	Registrations(ctx context.Context, f store.SubmissionFilter) ([]store.RegistrationSubmission, error)
	CountWaitingDevices(ctx context.Context, tenantID string) (int, error)
	ApproveRegistrations(ctx context.Context, a store.Approval) error
	RejectRegistrations(ctx context.Context, tenantID string, ids []string, by store.Decider, reason string, a *store.Activity) error
	ImportRows(ctx context.Context, jobID string, f store.RowFilter) ([]store.ImportRow, error)
	ChangeImport(ctx context.Context, ch store.ImportChange) error
	GetImportJob(ctx context.Context, tenantID, id string) (*store.ImportJob, error)
	SerialsImporting(ctx context.Context, tenantID string, serials, verdicts []string, since time.Time) (map[string]string, error)
}

// SerialLookup looks serials up among the tenant's registered Autopilot devices.
type SerialLookup interface {
	LookUpSerials(ctx context.Context, ts oauth2.TokenSource, serials []string, where graphclient.SerialSources) ([]graphclient.SerialLookup, []*graphclient.Exchange, error)
}

// Registration is the team's side of registration from the device: codes, and the devices they
// brought waiting for someone to approve (with their own token, through the import) or reject.
type Registration struct {
	Store       RegistrationStore
	Graph       SerialLookup
	Tokens      Tokens
	Worker      Kicker // the import worker
	Follower    Kicker // carries approved registrations on
	PublicURL   string
	SelfApprove bool // a code's creator may approve its devices
	Demo        bool // demo mode: offer the capture file of a made-up device
	// DemoApprovers are the demo's accounts that may approve devices: a new code's page names
	// one other than its creator, to sign in as. Demo mode only.
	DemoApprovers []DemoAccount
	Count         *WaitingCount
	Now           func() time.Time
	Logger        *slog.Logger
}

// Code bounds, as the create form explains them.
const (
	defaultCodeHours = 4
	maxCodeHours     = 7 * 24
	maxCodeUses      = 50
	maxNoteLen       = 200
	maxReasonLen     = 300
	codeFormKeyTTL   = 2 * time.Hour
	// recentDays is how far back the page lists decided registrations, the newest recentShown
	// (and the first recentShown of those being imported).
	recentDays  = 7
	recentShown = 100
	// endedCodesShown is how many of the codes that take no more devices a page lists, newest
	// first, the older ones a page further each; every code that still takes devices is listed
	// on every page, to be revoked.
	endedCodesShown = 100
	// waitingPageDevices is about how many waiting devices a page shows: whole codes, the code
	// that expires first first, so every waiting device is a few pages away at most.
	waitingPageDevices = 200
	// lookupWait bounds the look-up of the waiting serials: while Graph throttles or is slow the
	// page shows them as not checked yet rather than keep the approvers waiting.
	lookupWait = 3 * time.Second
)

// Show is GET /registration.
func (h *Registration) Show(c echo.Context) error {
	var keep *views.RegistrationCard
	if pending, ok := web.TakePendingForm(c); ok { // a decision a sign-in interrupted: what was ticked and typed
		keep = &views.RegistrationCard{CodeID: pending.Get("code"), Reason: pending.Get("reason")}
		for _, id := range pending["submission"] {
			keep.Entries = append(keep.Entries, views.RegistrationEntry{ID: id})
		}
	}
	view, err := h.page(c, keep)
	if err != nil {
		return err
	}
	return web.Render(c, http.StatusOK, views.RegistrationPage(web.PageFor(c, registrationTitle(view), "registration"), view))
}

// registrationTitle is the registration page's title: a later page of its codes or of the
// devices waiting says so.
func registrationTitle(v views.Registration) string {
	return views.ListTitle("Registration", v.CodesPage > 1 || v.WaitingPage > 1)
}

// page reads what GET /registration shows; keep, when set, is a card whose typed values stay.
func (h *Registration) page(c echo.Context, keep *views.RegistrationCard) (views.Registration, error) {
	ctx := c.Request().Context()
	u := web.CurrentUser(c)
	now := h.Now()
	view := views.Registration{SelfApprove: h.SelfApprove, Access: accessOf(c), Now: now}
	waiting, err := h.waitingPage(c, &view, keep)
	if err != nil {
		return view, err
	}
	importing, err := h.Store.Registrations(ctx, store.SubmissionFilter{TenantID: u.TenantID, States: []string{store.SubmissionApproved}, Limit: recentShown + 1})
	if err != nil {
		return view, fmt.Errorf("read registrations: %w", err)
	}
	if len(importing) > recentShown {
		importing, view.ImportingMore = importing[:recentShown], true
	}
	for _, s := range importing {
		e := entryOf(s, nil)
		if e.WaitsFor, err = importWaitsFor(ctx, h.Store, s); err != nil {
			return view, err
		}
		view.Importing = append(view.Importing, e)
	}
	recent, err := h.Store.Registrations(ctx, store.SubmissionFilter{TenantID: u.TenantID, NewestFirst: true, Limit: recentShown + 1,
		States: []string{store.SubmissionFinished, store.SubmissionRejected, store.SubmissionExpired}, Since: now.AddDate(0, 0, -recentDays)})
	if err != nil {
		return view, fmt.Errorf("read registrations: %w", err)
	}
	if len(recent) > recentShown {
		recent, view.RecentMore = recent[:recentShown], true
	}
	registered, lookupErr := h.lookUp(c, waiting)
	if errors.Is(lookupErr, web.ErrSessionEnded) {
		return view, lookupErr
	}
	if lookupErr != nil {
		view.Lookup = &views.Failure{Explanation: explain.Explain(failureFacts(lookupErr, now))}
	}
	view.Waiting = waitingCards(waiting, registered, keep, u.ObjectID)
	for _, s := range recent {
		e := entryOf(s, nil)
		if s.State == store.SubmissionFinished && s.JobID != "" {
			if rows, err := h.Store.ImportRows(ctx, s.JobID, store.RowFilter{}); err == nil {
				e.OutcomeSum, e.Imported, e.Sent, e.Unknown = outcomeSummary(s, rows)
			}
		}
		view.Recent = append(view.Recent, e)
	}
	page, _ := strconv.Atoi(c.FormValue("codes"))
	page = max(page, 1)
	codes, err := h.Store.RegistrationCodesPage(ctx, u.TenantID, (page-1)*endedCodesShown, endedCodesShown)
	if err != nil {
		return view, fmt.Errorf("read registration codes: %w", err)
	}
	if pages := max(1, (codes.Ended+endedCodesShown-1)/endedCodesShown); page > pages {
		// A page past the last (the codes it listed were deleted since): the last page.
		page = pages
		if codes, err = h.Store.RegistrationCodesPage(ctx, u.TenantID, (page-1)*endedCodesShown, endedCodesShown); err != nil {
			return view, fmt.Errorf("read registration codes: %w", err)
		}
	}
	view.EndedShown, view.EndedN = len(codes.Newest), codes.Ended
	view.CodesPage, view.CodesPages, view.EndedBefore = page, max(1, (codes.Ended+endedCodesShown-1)/endedCodesShown), (page-1)*endedCodesShown
	for _, rc := range append(codes.Usable, codes.Newest...) {
		view.Codes = append(view.Codes, codeOf(rc, now))
	}
	return view, nil
}

// waitingPage reads the devices waiting for approval that this page shows: the page asked for,
// or the one with keep's card. Their codes' cards are whole: all of a code's devices or none.
func (h *Registration) waitingPage(c echo.Context, view *views.Registration, keep *views.RegistrationCard) ([]store.RegistrationSubmission, error) {
	u := web.CurrentUser(c)
	byCode, err := h.Store.WaitingByCode(c.Request().Context(), u.TenantID)
	if err != nil {
		return nil, fmt.Errorf("read registrations: %w", err)
	}
	pages := waitingPages(byCode)
	page, _ := strconv.Atoi(c.FormValue("waiting"))
	if keep != nil {
		for i, codes := range pages {
			if slices.ContainsFunc(codes, func(w store.WaitingCode) bool { return w.CodeID == keep.CodeID }) {
				page = i + 1
			}
		}
	}
	page = max(1, min(page, len(pages)))
	view.WaitingPage, view.WaitingPages, view.WaitingCodesN = page, len(pages), len(byCode)
	var ids []string
	for i, codes := range pages {
		for _, w := range codes {
			view.WaitingN += w.Devices
			if i+1 < page {
				view.WaitingBefore += w.Devices
			}
			if i+1 == page {
				ids = append(ids, w.CodeID)
				view.WaitingShown += w.Devices
			}
		}
	}
	if len(ids) == 0 {
		return nil, nil
	}
	subs, err := h.Store.Registrations(c.Request().Context(), store.SubmissionFilter{TenantID: u.TenantID, CodeIDs: ids,
		States: []string{store.SubmissionWaiting}, Limit: view.WaitingShown})
	if err != nil {
		return nil, fmt.Errorf("read registrations: %w", err)
	}
	now := h.Now()
	subs = slices.DeleteFunc(subs, func(s store.RegistrationSubmission) bool { return !now.Before(s.Code.ExpiresAt) })
	order := func(s store.RegistrationSubmission) int { return slices.Index(ids, s.CodeID) }
	slices.SortStableFunc(subs, func(a, b store.RegistrationSubmission) int { return cmp.Compare(order(a), order(b)) })
	return subs, nil
}

// waitingPages splits the codes with devices waiting into pages of about waitingPageDevices
// devices, each code whole on one page.
func waitingPages(codes []store.WaitingCode) [][]store.WaitingCode {
	var pages [][]store.WaitingCode
	n := 0
	for _, w := range codes {
		if len(pages) == 0 || n+w.Devices > waitingPageDevices {
			pages, n = append(pages, nil), 0
		}
		pages[len(pages)-1] = append(pages[len(pages)-1], w)
		n += w.Devices
	}
	return pages
}

// waitingCards are the cards of the waiting devices, one for each code, in the order of subs;
// keep's ticks and reason stay on its card.
func waitingCards(subs []store.RegistrationSubmission, registered map[string]registeredAs, keep *views.RegistrationCard, oid string) []views.RegistrationCard {
	var cards []views.RegistrationCard
	for _, s := range subs {
		i := slices.IndexFunc(cards, func(card views.RegistrationCard) bool { return card.CodeID == s.CodeID })
		if i < 0 {
			cards = append(cards, views.RegistrationCard{CodeID: s.CodeID, CodeName: registration.CodeName(s.Code),
				Creator: personName(s.Code.CreatorName, s.Code.CreatorUPN), Expires: s.Code.ExpiresAt, OwnCode: s.Code.CreatorOID == oid})
			i = len(cards) - 1
		}
		e := entryOf(s, registered)
		e.Checked = true
		if keep != nil && keep.CodeID == s.CodeID {
			e.Checked = slices.ContainsFunc(keep.Entries, func(k views.RegistrationEntry) bool { return k.ID == s.ID })
		}
		cards[i].Entries = append(cards[i].Entries, e)
	}
	if keep != nil {
		for i := range cards {
			if cards[i].CodeID == keep.CodeID {
				cards[i].Reason, cards[i].ReasonError = keep.Reason, keep.ReasonError
			}
		}
	}
	return cards
}

// codeOf is a code as the list shows it, with its state at now.
func codeOf(rc store.RegistrationCode, now time.Time) views.RegistrationCode {
	v := views.RegistrationCode{ID: rc.ID, Note: rc.Note, GroupTag: rc.GroupTag, User: rc.AssignedUser, Creator: personName(rc.CreatorName, rc.CreatorUPN),
		Created: rc.CreatedAt, Expires: rc.ExpiresAt, Uses: rc.Uses, Used: rc.Used, State: "active", RevokedBy: rc.RevokedBy}
	switch {
	case !rc.RevokedAt.IsZero():
		v.State = "revoked"
	case !now.Before(rc.ExpiresAt):
		v.State = "expired"
	case rc.Used >= rc.Uses:
		v.State = "used"
	}
	return v
}

// registeredAs is what the look-up found of a waiting serial: in words ("no" when nothing), and
// the desk's own import that brought it in, if so.
type registeredAs struct {
	words string
	job   string
}

// lookUp finds which waiting serials are registered in the tenant already (the batched
// existence check), with the signed-in person's token, within lookupWait; and, as an import's
// check does, which the desk's own imports are bringing in or finished within the hour (Intune's
// list may not show them yet).
func (h *Registration) lookUp(c echo.Context, subs []store.RegistrationSubmission) (map[string]registeredAs, error) {
	var serials []string
	for _, s := range subs {
		for _, d := range s.Devices {
			serials = append(serials, d.Serial)
		}
	}
	if len(serials) == 0 || h.Graph == nil {
		return nil, nil
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), lookupWait)
	defer cancel()
	found, _, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) ([]graphclient.SerialLookup, *graphclient.Exchange, error) {
		found, _, err := h.Graph.LookUpSerials(ctx, ts, serials, graphclient.InRegistered)
		return found, nil, err
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return nil, err
	}
	registered := map[string]registeredAs{}
	for _, f := range found {
		key := strings.ToUpper(strings.TrimSpace(f.Serial))
		switch {
		case f.Err != nil:
		case len(f.Registered) > 0:
			d := f.Registered[0]
			s := "registered already, group tag " + explain.QuotedOrNone(d.GroupTag)
			if d.UserPrincipalName != "" {
				s += ", user " + d.UserPrincipalName
			}
			registered[key] = registeredAs{words: s + "; importing it again fails with error 806."}
		default:
			registered[key] = registeredAs{words: "no"}
		}
	}
	importing, ierr := h.Store.SerialsImporting(c.Request().Context(), subs[0].TenantID, serials, importer.OnTheirWay, h.Now().Add(-importer.RecentImport))
	if ierr != nil {
		return registered, errors.Join(err, fmt.Errorf("read the desk's imports: %w", ierr))
	}
	for serial, job := range importing {
		if r, ok := registered[serial]; !ok || r.words == "no" {
			registered[serial] = registeredAs{words: "imported by the desk a moment ago, or being imported (Intune's list may not show it yet); importing it again fails with error 806.", job: job}
		}
	}
	return registered, err
}

// importWaitsFor names the approver an approved registration's import waits for, when it waits
// for their sign-in; "" when it does not.
func importWaitsFor(ctx context.Context, jobs interface {
	GetImportJob(ctx context.Context, tenantID, id string) (*store.ImportJob, error)
}, s store.RegistrationSubmission) (string, error) {
	if s.JobID == "" || s.State != store.SubmissionApproved {
		return "", nil
	}
	job, err := jobs.GetImportJob(ctx, s.TenantID, s.JobID)
	if errors.Is(err, store.ErrNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read the import of a registration: %w", err)
	}
	if p, err := importer.DecodePayload(job.Payload); err != nil || !p.Paused {
		return "", nil
	}
	return cmp.Or(job.ActorName, ownerName(job)), nil
}

// ownerOf names the owner of a job as its page shows them: nobody, when the job keeps no UPN.
func ownerOf(name, upn, nobody string) string {
	if upn == "" {
		return nobody
	}
	return personName(name, upn)
}

// personName is "Name (UPN)", or whichever of the two is known.
func personName(name, upn string) string {
	switch {
	case name != "" && upn != "":
		return name + " (" + upn + ")"
	case name != "":
		return name
	}
	return upn
}

func entryOf(s store.RegistrationSubmission, registered map[string]registeredAs) views.RegistrationEntry {
	e := views.RegistrationEntry{ID: s.ID, CodeName: registration.CodeName(s.Code), Received: s.ReceivedAt, ClientIP: s.ClientIP,
		FileNotes: s.FileNotes, Refused: registration.RefusalText(s.Refused), State: s.State, DecidedBy: s.DeciderName, DecidedAt: s.DecidedAt,
		Reason: s.Reason, JobID: s.JobID, SyncNote: registration.SyncText(s.SyncNote)}
	for _, d := range s.Devices {
		v := views.RegistrationDevice{Serial: d.Serial, Manufacturer: d.Manufacturer, Model: d.Model, Hash: d.HashShown,
			GroupTag: d.GroupTag, User: d.User, Notes: d.Notes}
		if r, ok := registered[strings.ToUpper(strings.TrimSpace(d.Serial))]; ok {
			v.Registered, v.AlreadyRegistered = r.words, r.words != "no"
			if r.job != "" {
				v.ImportURL = views.ImportJobURL(r.job)
			}
		}
		e.Devices = append(e.Devices, v)
	}
	return e
}

// outcomeSummary says what the import made of each device a registration brought, how many of
// the devices it sent Intune imported, and of how many nobody knows (to check before sending
// them again).
func outcomeSummary(s store.RegistrationSubmission, rows []store.ImportRow) (summary string, imported, sent, unknown int) {
	byLine := map[int]store.ImportRow{}
	for _, r := range rows {
		byLine[r.Line] = r
	}
	var parts []string
	for _, d := range s.Devices {
		r, ok := byLine[d.JobLine]
		if !ok {
			continue
		}
		v := explain.Row(r, explain.Job{})
		label := v.InSentence()
		if l := explain.ErrorLabel(r.ErrorCode, r.ErrorName); l != "" {
			label += " " + l
		}
		parts = append(parts, d.Serial+" "+label)
		sent++
		switch v.Key {
		case store.VerdictImported:
			imported++
		case store.VerdictNotFound:
			unknown++
		}
	}
	return strings.Join(parts, ", "), imported, sent, unknown
}

// NewCode is GET /registration/codes/new.
func (h *Registration) NewCode(c echo.Context) error {
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/registration", "Back to registration")
	}
	f := views.NewRegistrationCode{Hours: strconv.Itoa(defaultCodeHours), Uses: "1", FormKey: web.NewFormKey(c, h.Now()), SelfApprove: h.SelfApprove}
	if pending, ok := web.TakePendingForm(c); ok { // typed before a sign-in interrupted it
		f.GroupTag, f.User, f.Note = pending.Get("groupTag"), pending.Get("assignedUser"), pending.Get("note")
		f.Hours, f.Uses = pending.Get("hours"), pending.Get("uses")
	}
	return web.Render(c, http.StatusOK, views.NewRegistrationCodePage(web.PageFor(c, "Create a registration code", "registration"), f))
}

// CreateCode is POST /registration/codes: check the form, then show the new code once.
func (h *Registration) CreateCode(c echo.Context) error {
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/registration", "Back to registration")
	}
	get := func(name string) string { return strings.TrimSpace(c.FormValue(name)) }
	f := views.NewRegistrationCode{GroupTag: get("groupTag"), User: get("assignedUser"), Note: get("note"), Hours: get("hours"), Uses: get("uses"),
		FormKey: get("formKey"), Errors: map[string]string{}, SelfApprove: h.SelfApprove}
	// The check speaks of the CSV's columns; the form's fields are named in a sentence's words.
	if msg := devicecsv.CheckGroupTag(f.GroupTag); msg != "" {
		f.Errors["groupTag"] = strings.Replace(msg, "Group Tag ", "The group tag ", 1)
	}
	if msg := devicecsv.CheckAssignedUser(f.User); msg != "" {
		f.Errors["assignedUser"] = strings.Replace(msg, "Assigned User ", "The assigned user ", 1)
	}
	if n := len([]rune(f.Note)); n > maxNoteLen {
		f.Errors["note"] = fmt.Sprintf("The note is %s characters long; keep it to %d.", explain.Number(n), maxNoteLen)
	} else if msg := unseen.Problem("The note", f.Note); msg != "" {
		f.Errors["note"] = msg + " The technician reads the note on the device's screen."
	}
	hours, err := strconv.Atoi(f.Hours)
	if err != nil || hours < 1 || hours > maxCodeHours {
		f.Errors["hours"] = fmt.Sprintf("Enter a whole number of hours from 1 to %d (7 days).", maxCodeHours)
	}
	uses, err := strconv.Atoi(f.Uses)
	if err != nil || uses < 1 || uses > maxCodeUses {
		f.Errors["uses"] = fmt.Sprintf("Enter how many devices, from 1 to %d.", maxCodeUses)
	}
	now := h.Now()
	if len(f.Errors) > 0 {
		f.FormKey = web.NewFormKey(c, now)
		return web.Render(c, http.StatusUnprocessableEntity, views.NewRegistrationCodePage(web.PageFor(c, "Create a registration code", "registration"), f))
	}
	if !web.ValidFormKey(c, f.FormKey, now, codeFormKeyTTL) {
		f.FormKey = web.NewFormKey(c, now)
		f.Errors["form"] = "stale"
		return &views.ErrorPage{Status: http.StatusConflict, Title: "This form is too old to send",
			Message:  "The form was opened too long ago, or in another sign-in, so no code was created.",
			NextStep: "Open the form again and create the code.", ActionURL: "/registration/codes/new", ActionText: "Create a code"}
	}
	u := web.CurrentUser(c)
	code := registration.NewCode()
	rc := &store.RegistrationCode{TenantID: u.TenantID, CreatorOID: u.ObjectID, CreatorUPN: u.UPN, CreatorName: u.Name,
		Note: f.Note, GroupTag: f.GroupTag, AssignedUser: f.User, CreatedAt: now, ExpiresAt: now.Add(time.Duration(hours) * time.Hour), Uses: uses}
	act := h.activity(u, "registration-code-created", "", createdCodeSummary(*rc))
	sum := sha256.Sum256([]byte(f.FormKey))
	err = h.Store.CreateRegistrationCode(c.Request().Context(), rc, registration.Hash(code), hex.EncodeToString(sum[:]), act)
	if errors.Is(err, store.ErrConflict) {
		return &views.ErrorPage{Status: http.StatusConflict, Title: "This form was already sent",
			Message:  "The code this form created was shown once, when it was first sent; the desk keeps only a hash of it, so it cannot show it again.",
			NextStep: "If nobody copied the code, revoke it in the list of codes and create another.", ActionURL: "/registration", ActionText: "Back to registration"}
	}
	if err != nil {
		return fmt.Errorf("create registration code: %w", err)
	}
	act.Target = rc.ID
	h.audit(act)
	h.Count.Forget(u.TenantID)
	shown := registration.Format(code)
	url := strings.TrimSuffix(h.PublicURL, "/") + "/register/" + shown
	view := views.CreatedRegistrationCode{Code: shown, Note: rc.Note, GroupTag: rc.GroupTag, User: rc.AssignedUser, Expires: rc.ExpiresAt, Uses: uses,
		Capture: captureCommands, Send: `curl.exe -F "csv=@AutopilotHWID.csv" ` + url, Status: "curl.exe " + url + "/status", Demo: h.Demo, SelfApprove: h.SelfApprove,
		DemoApprover: h.demoApprover(u.ObjectID)}
	return web.Render(c, http.StatusOK, views.CreatedRegistrationCodePage(web.PageFor(c, "Registration code created", "registration"), view))
}

// DemoAccount is an account of the demo's identity provider.
type DemoAccount struct{ ObjectID, Name string }

// demoApprover names the first demo account, other than the creator's, that may approve the
// devices of a code; "" outside demo mode.
func (h *Registration) demoApprover(creator string) string {
	for _, a := range h.DemoApprovers {
		if a.ObjectID != creator {
			return a.Name
		}
	}
	return ""
}

// captureCommands are Microsoft's documented commands that save the hardware hash to a CSV file
// (Windows Autopilot, "Manually register devices"), with -Partner for the manufacturer and model.
const captureCommands = `[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12
New-Item -Type Directory -Path "C:\HWID"
Set-Location -Path "C:\HWID"
$env:Path += ";C:\Program Files\WindowsPowerShell\Scripts"
Set-ExecutionPolicy -Scope Process -ExecutionPolicy RemoteSigned
Install-Script -Name Get-WindowsAutopilotInfo
Get-WindowsAutopilotInfo -Partner -OutputFile AutopilotHWID.csv`

// SampleDevice is GET /registration/sample-device.csv in demo mode: the file the capture script
// would write on a made-up device (UTF-16 with a BOM, as Windows PowerShell 5.1 writes it), so
// the device's side can be tried from any computer with curl.
func (h *Registration) SampleDevice(c echo.Context) error {
	if !h.Demo {
		return echo.ErrNotFound
	}
	hash := make([]byte, 2990)
	rand.Read(hash)
	serial := "DEMO-" + strings.ToUpper(rand.Text()[:6])
	text := "Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model\r\n" +
		serial + ",," + base64.StdEncoding.EncodeToString(hash) + ",Contoso Devices,Demo Laptop 14\r\n"
	out := []byte{0xFF, 0xFE}
	for _, u := range utf16.Encode([]rune(text)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentDisposition, `attachment; filename="AutopilotHWID.csv"`)
	hd.Set("Cache-Control", "no-store")
	return c.Blob(http.StatusOK, "text/csv", out)
}

// createdCodeSummary is the history's line for a new code. The code is named by its note when
// it has one; the time it was made is beside the line already.
func createdCodeSummary(rc store.RegistrationCode) string {
	name := "a registration code"
	if rc.Note != "" {
		name = "registration code “" + rc.Note + "”"
	}
	tag := "without a group tag"
	if rc.GroupTag != "" {
		tag = "with group tag “" + rc.GroupTag + "”"
	}
	return fmt.Sprintf("Created %s for %s %s%s, valid until %s UTC.", name, explain.Count(rc.Uses, "device", "devices"), tag,
		userSuffix(rc.AssignedUser), rc.ExpiresAt.UTC().Format("2 Jan 2006 15:04:05"))
}

func userSuffix(upn string) string {
	if upn == "" {
		return ""
	}
	return ", assigned to " + upn
}

// Revoke is POST /registration/codes/:id/revoke.
func (h *Registration) Revoke(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("There is no registration code with this id.")
	}
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/registration", "Back to registration")
	}
	u := web.CurrentUser(c)
	ctx := c.Request().Context()
	rc, err := h.Store.RegistrationCode(ctx, u.TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("There is no registration code with this id in your tenant.")
	}
	if err != nil {
		return fmt.Errorf("read registration code: %w", err)
	}
	name := registration.CodeName(*rc)
	act := h.activity(u, "registration-code-revoked", id, "Revoked registration code "+name+
		fmt.Sprintf(" (%d of %s used); it takes no more devices.", rc.Used, explain.Count(rc.Uses, "device", "devices")))
	err = h.Store.RevokeRegistrationCode(ctx, u.TenantID, id, personName(u.Name, u.UPN), act)
	if err != nil && !errors.Is(err, store.ErrConflict) {
		return fmt.Errorf("revoke registration code: %w", err)
	}
	if err == nil {
		h.audit(act)
	}
	if errors.Is(err, store.ErrConflict) { // revoked by someone else, or expired, a moment ago
		return h.again(c, nil, http.StatusOK, "Code "+name+" takes no more devices already; nothing was changed.", "warn")
	}
	return h.again(c, nil, http.StatusOK, "Revoked code "+name+": it takes no more devices. Devices sent with it before still wait below for a decision.", "ok")
}

// Decide is POST /registration/decide: approve or reject the ticked devices of one code.
func (h *Registration) Decide(c echo.Context) error {
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/registration", "Back to registration")
	}
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	u := web.CurrentUser(c)
	codeID := form.Get("code")
	var ids []string
	for _, id := range form["submission"] {
		if guid.Valid(id) && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	keep := &views.RegistrationCard{CodeID: codeID, Reason: strings.TrimSpace(form.Get("reason"))}
	for _, id := range ids {
		keep.Entries = append(keep.Entries, views.RegistrationEntry{ID: id})
	}
	if len(ids) == 0 {
		return h.again(c, keep, http.StatusUnprocessableEntity, "Tick at least one device to approve or reject; nothing was changed.", "error")
	}
	ctx := c.Request().Context()
	subs, err := h.Store.Registrations(ctx, store.SubmissionFilter{TenantID: u.TenantID, IDs: ids})
	if err != nil {
		return fmt.Errorf("read registrations: %w", err)
	}
	if len(subs) != len(ids) {
		return notFound("Some of the ticked devices are not in your tenant's registrations.")
	}
	for _, s := range subs {
		if s.State != store.SubmissionWaiting || !h.Now().Before(s.Code.ExpiresAt) {
			return h.again(c, nil, http.StatusConflict, alreadyDecided(s, h.Now()), "warn")
		}
	}
	switch form.Get("action") {
	case "approve":
		if keep.Reason != "" {
			// Enter in the reason's field sends the form with its first button, Approve.
			keep.ReasonError = "You typed a reason for rejecting, so nothing was approved. To reject the ticked devices, press “Reject the ticked devices”; to approve them, clear the reason first."
			return h.again(c, keep, http.StatusUnprocessableEntity, "", "")
		}
		return h.approve(c, u, subs)
	case "reject":
		switch n := len([]rune(keep.Reason)); {
		case n == 0:
			keep.ReasonError = "Say why, in a few words: the technician at the device reads it. Nothing was rejected."
			return h.again(c, keep, http.StatusUnprocessableEntity, "", "")
		case n > maxReasonLen:
			keep.ReasonError = fmt.Sprintf("Keep the reason to %d characters (it has %s). Nothing was rejected.", maxReasonLen, explain.Number(n))
			return h.again(c, keep, http.StatusUnprocessableEntity, "", "")
		}
		if msg := unseen.Problem("The reason", keep.Reason); msg != "" {
			keep.ReasonError = msg + " The technician reads it on the device's screen. Nothing was rejected."
			return h.again(c, keep, http.StatusUnprocessableEntity, "", "")
		}
		return h.reject(c, u, subs, keep.Reason)
	}
	return h.again(c, keep, http.StatusUnprocessableEntity, "Choose Approve or Reject; nothing was changed.", "error")
}

// again shows the page once more after a decision that changed nothing.
func (h *Registration) again(c echo.Context, keep *views.RegistrationCard, status int, notice, kind string) error {
	view, err := h.page(c, keep)
	if err != nil {
		return err
	}
	view.Notice, view.NoticeKind = notice, kind
	return web.Render(c, status, views.RegistrationPage(web.PageFor(c, registrationTitle(view), "registration"), view))
}

func alreadyDecided(s store.RegistrationSubmission, now time.Time) string {
	serials := serialList(s.Devices)
	switch s.State {
	case store.SubmissionApproved, store.SubmissionFinished:
		return serials + " was already approved by " + personName(s.DeciderName, s.DeciderUPN) + " at " + s.DecidedAt.UTC().Format("15:04") + " UTC; nothing was changed. Follow its import below."
	case store.SubmissionRejected:
		return serials + " was already rejected by " + personName(s.DeciderName, s.DeciderUPN) + ": " + explain.QuotedSentence(s.Reason, "“", "”") + " Nothing was changed."
	}
	if !now.Before(s.Code.ExpiresAt) || s.State == store.SubmissionExpired {
		return serials + " can no longer be approved: its code expired at " + s.Code.ExpiresAt.UTC().Format("15:04") + " UTC. Nothing was changed; the technician sends it again with a new code."
	}
	return serials + " changed meanwhile; nothing was changed. Look again below."
}

func serialList(devices []store.RegistrationDevice) string {
	var serials []string
	for _, d := range devices {
		serials = append(serials, d.Serial)
	}
	return strings.Join(serials, ", ")
}

// approve creates the approver's import job from the devices and submits it, exactly once:
// one transaction approves the submissions and creates the job as a draft (of concurrent
// approvals only one gets that far); then the same conditional submit as any import sends it to
// the worker, which imports with the approver's own token. Should this desk stop in between,
// the follower submits the draft.
func (h *Registration) approve(c echo.Context, u *web.SessionUser, subs []store.RegistrationSubmission) error {
	ctx := c.Request().Context()
	for _, s := range subs {
		if !h.SelfApprove && s.Code.CreatorOID == u.ObjectID {
			return selfApprovalRefusal()
		}
	}
	var ids, names []string
	devices := 0
	for _, s := range subs {
		ids = append(ids, s.ID)
		devices += len(s.Devices)
		if name := registration.CodeName(s.Code); !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	p := importer.Payload{Source: "Registration code " + strings.Join(names, ", "), ApprovedFrom: strings.Join(names, ", "), FileNotes: []string{fmt.Sprintf("%s sent from the device with registration code %s, approved by %s. Line numbers count the devices in the order they arrived.",
		explain.Count(devices, "device", "devices"), strings.Join(names, ", "), personName(u.Name, u.UPN))}}
	job := &store.ImportJob{TenantID: u.TenantID, ObjectID: u.ObjectID, ActorUPN: u.UPN, ActorName: u.Name, State: importer.StateDraft, Payload: p.Encode()}
	act := h.activity(u, "registration-approved", "", fmt.Sprintf("Approved %s sent from the device with registration code %s (from %s); importing with %s's account.",
		explain.Count(devices, "device", "devices")+" ("+serialsOfAll(subs)+")", strings.Join(names, ", "), addressesOf(subs), u.Name))
	approval := store.Approval{TenantID: u.TenantID, SubmissionIDs: ids, By: store.Decider{OID: u.ObjectID, UPN: u.UPN, Name: u.Name}, Job: job, Activity: act}
	if !h.SelfApprove {
		approval.NotCreatedBy = u.ObjectID
	}
	err := h.Store.ApproveRegistrations(ctx, approval)
	switch {
	case errors.Is(err, store.ErrSelfApproval):
		return selfApprovalRefusal()
	case errors.Is(err, store.ErrConflict):
		// Another approval (or rejection, or the code's expiry) came first.
		fresh, rerr := h.Store.Registrations(ctx, store.SubmissionFilter{TenantID: u.TenantID, IDs: ids})
		msg := "These devices were decided by someone else a moment ago; nothing was changed."
		for _, s := range fresh {
			if s.State != store.SubmissionWaiting || !h.Now().Before(s.Code.ExpiresAt) {
				msg = alreadyDecided(s, h.Now())
				break
			}
		}
		if rerr != nil {
			return fmt.Errorf("read registrations: %w", rerr)
		}
		return h.again(c, nil, http.StatusConflict, msg, "warn")
	case err != nil:
		return fmt.Errorf("approve registrations: %w", err)
	}
	h.audit(act)
	h.Count.Forget(u.TenantID)
	rows, err := h.Store.ImportRows(ctx, job.ID, store.RowFilter{})
	if err == nil {
		_, err = importer.Submit(ctx, h.Store, job, p, importer.Choose(rows, nil))
	}
	if err != nil && !errors.Is(err, store.ErrConflict) {
		// The approval stands; the follower submits the draft.
		h.Logger.Warn("submit an approved registration; the follower takes it over", "job", job.ID, "error", err.Error())
		if h.Follower != nil {
			h.Follower.Kick()
		}
	}
	return kickAndShow(c, h.Worker, views.ImportJobURL(job.ID))
}

func selfApprovalRefusal() error {
	return &views.ErrorPage{Status: http.StatusForbidden, Title: "Someone else approves these devices",
		Message:    "You created the registration code these devices were sent with, and this desk asks a second person to approve them, so that nobody registers devices alone. Nothing was changed.",
		NextStep:   "Ask someone else in your team who may import devices to approve them. You can still reject them.",
		ActionURL:  "/registration",
		ActionText: "Back to registration"}
}

func (h *Registration) reject(c echo.Context, u *web.SessionUser, subs []store.RegistrationSubmission, reason string) error {
	var ids []string
	for _, s := range subs {
		ids = append(ids, s.ID)
	}
	devices := 0
	for _, s := range subs {
		devices += len(s.Devices)
	}
	act := h.activity(u, "registration-rejected", ids[0], fmt.Sprintf("Rejected %s sent from the device with registration code %s (from %s): %s Hashes overwritten.",
		explain.Count(devices, "device", "devices")+" ("+serialsOfAll(subs)+")", registration.CodeName(subs[0].Code), addressesOf(subs), explain.QuotedSentence(reason, "“", "”")))
	err := h.Store.RejectRegistrations(c.Request().Context(), u.TenantID, ids, store.Decider{OID: u.ObjectID, UPN: u.UPN, Name: u.Name}, reason, act)
	if errors.Is(err, store.ErrConflict) {
		return h.again(c, nil, http.StatusConflict, "These devices were decided by someone else a moment ago; nothing was changed.", "warn")
	}
	if err != nil {
		return fmt.Errorf("reject registrations: %w", err)
	}
	h.audit(act)
	h.Count.Forget(u.TenantID)
	return h.again(c, nil, http.StatusOK, fmt.Sprintf("Rejected %s; %s overwritten. The technician sees your reason with the status command.",
		explain.Count(devices, "device", "devices"), map[bool]string{true: "its hash was", false: "their hashes were"}[devices == 1]), "ok")
}

func serialsOfAll(subs []store.RegistrationSubmission) string {
	var serials []string
	for _, s := range subs {
		serials = append(serials, serialList(s.Devices))
	}
	return strings.Join(serials, ", ")
}

func addressesOf(subs []store.RegistrationSubmission) string {
	var ips []string
	for _, s := range subs {
		if !slices.Contains(ips, s.ClientIP) {
			ips = append(ips, s.ClientIP)
		}
	}
	return strings.Join(ips, ", ")
}

func (h *Registration) activity(u *web.SessionUser, action, target, summary string) *store.Activity {
	return &store.Activity{TenantID: u.TenantID, ObjectID: u.ObjectID, ActorName: u.Name, ActorUPN: u.UPN, Action: action, Target: target,
		Outcome: outcomeSuccess, Summary: summary}
}

// audit writes the structured audit line a SIEM reads for every registration event.
func (h *Registration) audit(a *store.Activity) {
	h.Logger.Info("audit", "audit", true, "event", a.Action, "outcome", a.Outcome, "activity_id", a.ID, "tid", a.TenantID, "oid", a.ObjectID,
		"upn", a.ActorUPN, "target", a.Target, "summary", a.Summary)
}

// WaitingCount puts the number of devices waiting for approval beside "Registration" in the
// navigation of every signed-in page. A count is shown for navCountFor before it is counted
// again, so a page costs no extra query; a change made on this desk shows at once, one made on
// another replica within seconds.
type WaitingCount struct {
	Store interface {
		CountWaitingDevices(ctx context.Context, tenantID string) (int, error)
	}
	counts sync.Map // tenant id -> navCount
}

type navCount struct {
	n  int
	at time.Time
}

const navCountFor = 5 * time.Second

// Middleware counts for the signed-in person's tenant.
func (w *WaitingCount) Middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if u := web.CurrentUser(c); u != nil {
			now := time.Now()
			v, ok := w.counts.Load(u.TenantID)
			cached, _ := v.(navCount)
			if !ok || now.Sub(cached.at) > navCountFor {
				if n, err := w.Store.CountWaitingDevices(c.Request().Context(), u.TenantID); err == nil {
					cached = navCount{n: n, at: now}
					w.counts.Store(u.TenantID, cached)
				}
			}
			web.SetNavCount(c, "registration", cached.n)
		}
		return next(c)
	}
}

// Forget drops a tenant's count after a change, so this desk's next page counts again.
func (w *WaitingCount) Forget(tenantID string) {
	if w != nil {
		w.counts.Delete(tenantID)
	}
}
