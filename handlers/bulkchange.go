package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// BulkJobs keeps bulk changes and their devices in the state database, so any replica serves
// their pages.
type BulkJobs interface {
	CreateBulkJob(ctx context.Context, j *store.BulkJob, devices []store.BulkDevice) error
	GetBulkJob(ctx context.Context, tenantID, id string) (*store.BulkJob, error)
	ListBulkJobs(ctx context.Context, f store.BulkJobFilter) ([]store.BulkJob, error)
	BulkDevices(ctx context.Context, jobID string) ([]store.BulkDevice, error)
	ChangeBulk(ctx context.Context, ch store.BulkChange) error
	WakeBulkJob(ctx context.Context, tenantID, id string, recheck bool) error
	BulkOverlaps(ctx context.Context, tenantID, jobID, action string) ([]store.BulkOverlap, error)
}

// BulkPace says how fast the write budget lets a bulk change go (bulk.Budget).
type BulkPace interface {
	Describe() string
	Estimate(n int) time.Duration
}

// BulkChanges turns devices chosen on the list into a bulk change: a draft that counts them and
// names the change, then, once its owner confirms, a job the bulk worker carries through.
type BulkChanges struct {
	Graph   AutopilotAPI
	Serials SerialFinder // finds the devices of a change chosen by serial number
	Tokens  Tokens
	Jobs    BulkJobs
	Keys    FormKeys
	Worker  Kicker
	Budget  BulkPace
	Holds   WriteHolds // optional: Graph's Retry-After, which the devices' reads wait for too
	// InFlight is the longest a change on its way to Graph waits for its answer (the bulk
	// worker's lease; default 2 minutes): a device an earlier bulk change has on its way when a
	// later one is confirmed is sent by the later one only after that.
	InFlight time.Duration
	Pages    *ListPages // the list's pages read a moment ago, forgotten once a change is confirmed
	Now      func() time.Time
	Logger   *slog.Logger
}

// maxBulkDevices bounds one bulk change: ten of Graph's largest pages.
const maxBulkDevices = 1000

// Create is POST /devices/bulk: the devices ticked on the list and the change to make. Each is
// read from Graph (20 to a batch) so the confirmation names what is there now; nothing changes yet.
func (h *BulkChanges) Create(c echo.Context) error {
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/devices", "Back to the devices")
	}
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	list := bulkListURL(form.Get("list"))
	back := func(msg string) error {
		return &views.ErrorPage{Status: http.StatusUnprocessableEntity, Title: "The bulk change could not be prepared",
			Message: explain.NothingChanged(msg) + h.keepChoice(c, form), ActionURL: list, ActionText: "Back to the devices"}
	}
	choice, problems := readBulkChoice(form)
	if len(problems) > 0 {
		// The list shows what is wrong beside the field, with what was chosen and typed.
		if h.keep(c, form) {
			return c.Redirect(http.StatusSeeOther, list)
		}
		return back(problems[cmp.Or(firstProblem(problems), "device")])
	}
	action, tag, ids := choice.action, choice.tag, choice.ids
	if held := h.held(c); held != nil {
		held.What += h.keepChoice(c, form)
		return &views.ErrorPage{Status: http.StatusTooManyRequests, Title: held.Title, Message: held.What, NextStep: held.NextStep,
			ActionURL: list, ActionText: "Back to the devices"}
	}
	holdOnThrottling(c, h.Holds, h.Now)
	ctx := c.Request().Context()
	reads, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) ([]graphclient.AutopilotDeviceRead, *graphclient.Exchange, error) {
		reads, exs, err := h.Graph.ReadAutopilotDevices(ctx, ts, ids)
		return reads, lastExchange(exs), err
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	unread := 0
	for _, r := range reads {
		if r.Value == nil && !isNotFound(r.Err) {
			unread++
			err = cmp.Or(err, r.Err)
		}
	}
	if err != nil {
		return h.unreadable(c, form, list, unread, len(ids), ex, err)
	}
	var devices []store.BulkDevice
	var p bulk.Payload
	for _, r := range reads {
		if r.Value == nil {
			p.Missing = append(p.Missing, r.ID)
			continue
		}
		devices = takeDevice(devices, &p, action, r.Value)
	}
	if len(devices) == 0 && len(p.NoUser) > 0 {
		return back("None of the ticked devices has a user assigned, so there is no user to unassign.")
	}
	if len(devices) == 0 {
		return back("Microsoft Graph no longer has any of the chosen devices (they were deleted meanwhile).")
	}
	u := web.CurrentUser(c)
	if action == bulk.ActionGroupTag {
		p.Correct = h.correction(ctx, u.TenantID, form.Get("correct"))
	}
	return h.saveDraft(c, action, tag, p, devices)
}

// saveDraft keeps the change chosen, with its devices as Graph has them now, as a draft of the
// signed-in person's, and shows it for them to confirm.
func (h *BulkChanges) saveDraft(c echo.Context, action, tag string, p bulk.Payload, devices []store.BulkDevice) error {
	u := web.CurrentUser(c)
	job := &store.BulkJob{TenantID: u.TenantID, ObjectID: u.ObjectID, ActorUPN: u.UPN, ActorName: u.Name, State: bulk.StateDraft,
		Action: action, GroupTag: tag, Payload: p.Encode()}
	if err := h.Jobs.CreateBulkJob(c.Request().Context(), job, devices); err != nil {
		return fmt.Errorf("create bulk job: %w", err)
	}
	return c.Redirect(http.StatusSeeOther, bulkURL(job.ID))
}

// correction is what a group tag change prepared again from a finished one (its id, from) shows
// in its review when Graph refused the group tag there: the tag and Graph's refusal. nil when
// there is no such change of the tenant's, or Graph refused none of its devices for the tag.
func (h *BulkChanges) correction(ctx context.Context, tenantID, from string) *bulk.Correction {
	if !guid.Valid(from) {
		return nil
	}
	job, err := h.Jobs.GetBulkJob(ctx, tenantID, from)
	if err != nil || job.State != bulk.StateFinished || job.Action != bulk.ActionGroupTag {
		return nil
	}
	devices, err := h.Jobs.BulkDevices(ctx, job.ID)
	if err != nil {
		h.Logger.Warn("read the bulk change prepared again", "job", job.ID, "err", err)
		return nil
	}
	for _, d := range devices {
		if bulk.Correct(job.Action, d) {
			f, _ := jobs.Decode[explain.Failure](d.Failure)
			return &bulk.Correction{From: job.ID, Tag: job.GroupTag, Refusal: f}
		}
	}
	return nil
}

// held explains why the chosen devices are not read now: Graph asked every desk to wait (its
// Retry-After), and a read sent before then makes Intune ask for a longer pause; nil when not.
func (h *BulkChanges) held(c echo.Context) *explain.Explanation {
	now := h.Now()
	until, held := heldUntil(c, h.Holds, now)
	if !held {
		return nil
	}
	e := explain.WritesHeld(until, now)
	e.NextStep = fmt.Sprintf("Review the change again after %s UTC (in %s).", until.UTC().Format("15:04:05"), explain.Duration(until.Sub(now)))
	return &e
}

// unreadable is the page of a bulk change whose devices Graph could not all read, even after
// reading again what failed: the devices chosen stay ticked on the list, and Graph's ids are
// shown for support.
func (h *BulkChanges) unreadable(c echo.Context, form url.Values, list string, unread, chosen int, ex *graphclient.Exchange, err error) error {
	kept := h.keepChoice(c, form)
	e := explain.Explain(failureFacts(err, h.Now()))
	title := "The chosen devices could not be read: " + e.Title
	if unread > 0 && unread < chosen {
		title = fmt.Sprintf("%d of the %d chosen devices could not be read: %s", unread, chosen, e.Title)
	}
	return &views.ErrorPage{Status: failureStatus(err), Title: title,
		Message:   explain.NothingChanged(e.What) + kept,
		NextStep:  cmp.Or(e.NextStep, "Go back to the devices and choose “Review the change…” again."),
		ActionURL: list, ActionText: "Back to the devices", Support: graphclient.SupportFor(ex, err)}
}

// keepChoice keeps the devices ticked and the change chosen for the list, which shows them again,
// and says so ("" when they could not be kept).
func (h *BulkChanges) keepChoice(c echo.Context, form url.Values) string {
	if !h.keep(c, form) || !slices.ContainsFunc(form["device"], guid.Valid) {
		return ""
	}
	return " The devices you ticked are still ticked on the list."
}

// keep keeps the bulk form for the list, and reports whether it could.
func (h *BulkChanges) keep(c echo.Context, form url.Values) bool {
	kept, err := web.KeepForm(c, "/devices", form)
	if err != nil {
		h.Logger.Warn("keep the devices chosen for a bulk change", "err", err)
	}
	return kept
}

// bulkChoice is a bulk change as chosen on the list: what to do, the group tag typed (for a
// group tag change) and the devices ticked, each once.
type bulkChoice struct {
	action, tag string
	ids         []string
}

// Bulk form fields a problem is said beside.
const (
	bulkFieldAction   = "action"
	bulkFieldGroupTag = "groupTag"
	bulkFieldDevices  = "device"
)

// readBulkChoice reads the list's bulk form and says what is wrong with it, by field. The list
// reads a form kept for it the same way, so it shows the problems the review found.
func readBulkChoice(form url.Values) (bulkChoice, map[string]string) {
	ch, problems := readBulkAction(form, "ticked devices")
	seen := map[string]bool{}
	for _, id := range form["device"] {
		if guid.Valid(id) && !seen[strings.ToLower(id)] {
			seen[strings.ToLower(id)] = true
			ch.ids = append(ch.ids, id)
		}
	}
	switch {
	case len(ch.ids) == 0:
		problems[bulkFieldDevices] = "Tick the devices to change first: none is ticked."
	case len(ch.ids) > maxBulkDevices:
		problems[bulkFieldDevices] = fmt.Sprintf("A bulk change takes at most %s devices; you ticked %s. Narrow the list with a search or the filters, or tick the devices in parts.", explain.Number(maxBulkDevices), explain.Number(len(ch.ids)))
	}
	return ch, problems
}

// readBulkAction reads the change a bulk form asks for: what to do with the devices (named so in
// the problem) and the group tag typed, with what is wrong with them, by field.
func readBulkAction(form url.Values, devices string) (bulkChoice, map[string]string) {
	ch := bulkChoice{action: form.Get("action"), tag: strings.TrimSpace(form.Get("groupTag"))}
	problems := map[string]string{}
	if !bulk.ValidAction(ch.action) {
		problems[bulkFieldAction] = "Choose what to do with the " + devices + ": set the group tag, unassign the user or delete the registrations."
	}
	if ch.action != bulk.ActionGroupTag {
		ch.tag = ""
	} else if problem := graphclient.PropertyProblem("group tag", ch.tag); problem != "" {
		problems[bulkFieldGroupTag] = problem
	}
	return ch, problems
}

// firstProblem is the field whose problem the page says first: the devices, the change, its tag.
func firstProblem(problems map[string]string) string {
	for _, f := range []string{bulkFieldDevices, bulkFieldAction, bulkFieldGroupTag} {
		if problems[f] != "" {
			return f
		}
	}
	return ""
}

// bulkListURL is the list the bulk form was sent from: its search, filters and pages, as the
// form's "list" field says them (only the list's own parameters are kept).
func bulkListURL(list string) string {
	v, _ := url.ParseQuery(list)
	q := listQueryOf(v)
	if enc := q.values(q.Pages).Encode(); enc != "" {
		return "/devices?" + enc
	}
	return "/devices"
}

func isNotFound(err error) bool {
	ge, ok := graphclient.AsError(err)
	return ok && ge.Kind == graphclient.KindNotFound
}

// loadBulk reads a job of the signed-in person's tenant; anyone of the tenant may view it.
func (h *BulkChanges) loadBulk(c echo.Context) (*store.BulkJob, bulk.Payload, error) {
	id := c.Param("id")
	if !guid.Valid(id) {
		return nil, bulk.Payload{}, notFound("There is no bulk change with this id.")
	}
	job, err := h.Jobs.GetBulkJob(c.Request().Context(), web.CurrentUser(c).TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return nil, bulk.Payload{}, notFound("There is no bulk change with this id in your tenant.")
	}
	if err != nil {
		return nil, bulk.Payload{}, fmt.Errorf("read bulk job: %w", err)
	}
	p, err := bulk.DecodePayload(job.Payload)
	if err != nil {
		return nil, p, fmt.Errorf("decode bulk job %s: %w", job.ID, err)
	}
	return job, p, nil
}

// loadOwnedBulk is loadBulk for what only the job's owner may do.
func (h *BulkChanges) loadOwnedBulk(c echo.Context) (*store.BulkJob, bulk.Payload, error) {
	job, p, err := h.loadBulk(c)
	if err != nil {
		return nil, p, err
	}
	u := web.CurrentUser(c)
	if u.ObjectID != job.ObjectID {
		owner := bulkOwner(job)
		return nil, p, &views.ErrorPage{Status: http.StatusForbidden, Title: "Only " + owner + " can confirm or act on this bulk change",
			Message:   "This bulk change belongs to " + owner + ", who chose its devices. Everyone in your organisation can follow it, but only " + owner + " can confirm it or ask for a look. Nothing was changed.",
			NextStep:  "Ask " + owner + " to do it, or choose the devices yourself on the list.",
			ActionURL: bulkURL(job.ID), ActionText: "Back to the bulk change"}
	}
	return job, p, nil
}

func bulkOwner(j *store.BulkJob) string {
	return ownerOf(j.ActorName, j.ActorUPN, "the person who chose the devices")
}

// Show is GET /devices/bulk/:id: the confirmation of a draft, then the progress and per-device
// outcome — read from the state database, never from a worker's memory.
func (h *BulkChanges) Show(c echo.Context) error {
	job, p, err := h.loadBulk(c)
	if err != nil {
		return err
	}
	var typed *views.TypedTag
	if job.State == bulk.StateDraft && job.Action == bulk.ActionGroupTag {
		// A group tag typed in the review before a sign-in interrupted it (a confirmation kept
		// through one carries its form key, and is not a group tag typed).
		if pending, ok := web.TakePendingForm(c); ok && pending.Has("groupTag") && !pending.Has("formKey") {
			typed = &views.TypedTag{Value: pending.Get("groupTag")}
		}
	}
	return h.show(c, http.StatusOK, job, p, typed)
}

// show renders a bulk change's page; typed is the group tag its owner typed in the review, with
// what is wrong with it, when it is shown again for that.
func (h *BulkChanges) show(c echo.Context, status int, job *store.BulkJob, p bulk.Payload, typed *views.TypedTag) error {
	devices, err := h.Jobs.BulkDevices(c.Request().Context(), job.ID)
	if err != nil {
		return fmt.Errorf("read bulk devices: %w", err)
	}
	if job.State == bulk.StateSending && !job.NextPollAt.After(h.Now()) && h.Worker != nil {
		h.Worker.Kick()
	}
	u := web.CurrentUser(c)
	view := bulkView(job, p, devices, h.Budget, h.Now())
	view.Typed = typed
	view.IsOwner = u.ObjectID == job.ObjectID
	view.Access = accessOf(c)
	if job.State == bulk.StateDraft && !job.RestoredFrom.IsZero() {
		view.Restored = restoredDraft(job.RestoredFrom)
	} else if job.State == bulk.StateDraft && view.IsOwner && !view.Access.ReadOnly {
		view.FormKey = web.NewFormKey(c, h.Now())
	}
	if job.State == bulk.StateDraft {
		overlaps, err := h.Jobs.BulkOverlaps(c.Request().Context(), job.TenantID, job.ID, job.Action)
		if err != nil {
			return fmt.Errorf("read overlapping bulk changes: %w", err)
		}
		for _, o := range overlaps {
			view.Overlaps = append(view.Overlaps, views.BulkOverlap{ID: o.JobID, What: explain.BulkAction(job.Action, o.GroupTag),
				Owner: ownerOf(o.ActorName, o.ActorUPN, "someone in your organisation"), Devices: o.Devices})
		}
	}
	return web.Render(c, status, views.BulkJobPage(web.PageFor(c, views.BulkJobTitle(view), "devices"), view))
}

// GroupTag is POST /devices/bulk/:id/group-tag: the owner of a group tag change not yet confirmed
// corrects the group tag in its review (Graph refused the one sent before). Nothing is sent.
func (h *BulkChanges) GroupTag(c echo.Context) error {
	job, p, err := h.loadOwnedBulk(c)
	if err != nil {
		return err
	}
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, bulkURL(job.ID), "Back to the bulk change")
	}
	if job.State != bulk.StateDraft || job.Action != bulk.ActionGroupTag {
		return c.Redirect(http.StatusSeeOther, bulkURL(job.ID))
	}
	typed := c.FormValue("groupTag")
	tag := strings.TrimSpace(typed)
	if problem := graphclient.PropertyProblem("group tag", tag); problem != "" {
		return h.show(c, http.StatusUnprocessableEntity, job, p, &views.TypedTag{Value: typed, Problem: problem})
	}
	err = h.Jobs.ChangeBulk(c.Request().Context(), store.BulkChange{JobID: job.ID, TenantID: job.TenantID, OwnerID: job.ObjectID,
		FromState: bulk.StateDraft, GroupTag: &tag})
	if err != nil && !errors.Is(err, store.ErrConflict) { // a conflict: confirmed meanwhile, and its page says so
		return fmt.Errorf("correct the group tag of bulk job: %w", err)
	}
	return c.Redirect(http.StatusSeeOther, bulkURL(job.ID))
}

// Confirm is POST /devices/bulk/:id/confirm: one conditional change draft -> sending starts the
// job. Of any number of confirms, from any sessions and desks, one wins; the others see the job.
func (h *BulkChanges) Confirm(c echo.Context) error {
	job, p, err := h.loadOwnedBulk(c)
	if err != nil {
		return err
	}
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, bulkURL(job.ID), "Back to the bulk change")
	}
	if job.State != bulk.StateDraft {
		return c.Redirect(http.StatusSeeOther, bulkURL(job.ID))
	}
	if !job.RestoredFrom.IsZero() {
		return &views.ErrorPage{Status: http.StatusConflict, Title: "This bulk change comes from a backup",
			Message:   explain.NothingChanged(restoredDraft(job.RestoredFrom)),
			NextStep:  "Check the devices in the devices list, then prepare the change again for those that still need it: the desk reads them as they are now.",
			ActionURL: "/devices", ActionText: "Back to the devices"}
	}
	ctx := c.Request().Context()
	form, err := c.FormParams()
	if err != nil {
		return err
	}
	if shown, ok := form["groupTag"]; ok && job.Action == bulk.ActionGroupTag && strings.TrimSpace(strings.Join(shown, "")) != job.GroupTag {
		return &views.ErrorPage{Status: http.StatusConflict, Title: "The group tag was changed since this page was shown",
			Message:  "The page you confirmed set the group tag to “" + strings.TrimSpace(strings.Join(shown, "")) + "”, but the change now sets it to “" + job.GroupTag + "”, so nothing was sent.",
			NextStep: "Open the bulk change, check the group tag, then confirm it.", ActionURL: bulkURL(job.ID), ActionText: "Open the bulk change"}
	}
	key := strings.TrimSpace(c.FormValue("formKey"))
	if !web.ValidFormKey(c, key, h.Now(), formKeyTTL) {
		return &views.ErrorPage{Status: http.StatusConflict, Title: "This confirmation was already used",
			Message: "The form you submitted has expired or was used before, so nothing was changed.", NextStep: "Open the bulk change and confirm it again.",
			ActionURL: bulkURL(job.ID), ActionText: "Open the bulk change"}
	}
	claimed, _, _, err := h.Keys.ClaimFormKey(ctx, key, web.Session(c).ID, formKeyTTL)
	if err != nil {
		return fmt.Errorf("claim form key: %w", err)
	}
	if !claimed {
		// The first submit of this form is on it, perhaps on another desk: its page is shown once
		// the change has left the draft, not the draft again, as if nothing had been confirmed.
		h.awaitConfirmed(ctx, job)
		return c.Redirect(http.StatusSeeOther, bulkURL(job.ID))
	}
	now := h.Now()
	later := explain.LaterBulk{JobID: job.ID, Action: job.Action, GroupTag: job.GroupTag, By: bulkOwner(job), At: now}
	err = h.Jobs.ChangeBulk(ctx, store.BulkChange{JobID: job.ID, TenantID: job.TenantID, OwnerID: job.ObjectID, FromState: bulk.StateDraft,
		State: bulk.StateSending, Payload: p.Encode(),
		Supersede: &store.BulkSupersede{TenantID: job.TenantID, Action: job.Action, Note: jobs.Encode(later), At: now, Wait: cmp.Or(h.InFlight, 2*time.Minute)}})
	if errors.Is(err, store.ErrConflict) {
		return c.Redirect(http.StatusSeeOther, bulkURL(job.ID)) // another confirm won: it is on its way
	}
	if err != nil {
		return fmt.Errorf("confirm bulk job: %w", err)
	}
	u := web.CurrentUser(c)
	h.Pages.ForgetTenant(u.TenantID)
	h.Logger.Info("audit", "audit", true, "event", "bulk-confirmed", "tid", u.TenantID, "oid", u.ObjectID, "upn", u.UPN, "target", job.ID,
		"detail", fmt.Sprintf("%s on %d devices", explain.BulkAction(job.Action, job.GroupTag), job.Devices))
	return kickAndShow(c, h.Worker, bulkURL(job.ID))
}

// restoredDraft says why a bulk change the desk's backup held as a draft is not confirmed.
func restoredDraft(takenAt time.Time) string {
	return "The desk was restored from a backup taken " + views.When(takenAt) + ", when this change was not yet confirmed. " +
		"The desk the backup was taken from may have confirmed it since, so the change may already have been made, and a later change of these devices may have been made too."
}

// confirmWait bounds how long a second submit of a confirmation waits for the first to commit.
const confirmWait = 5 * time.Second

// awaitConfirmed waits, up to confirmWait, for job to leave the draft.
func (h *BulkChanges) awaitConfirmed(ctx context.Context, job *store.BulkJob) {
	pollUntil(ctx, confirmWait, 50*time.Millisecond, func(ctx context.Context) bool {
		j, err := h.Jobs.GetBulkJob(ctx, job.TenantID, job.ID)
		return err != nil || j.State != bulk.StateDraft
	})
}

// pollUntil asks done every interval until it says yes, for at most wait.
func pollUntil(ctx context.Context, wait, every time.Duration, done func(context.Context) bool) {
	ctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if done(ctx) {
			return
		}
	}
}

// Reconcile is POST /devices/bulk/:id/reconcile ("Check what Graph has"): read now the devices
// whose answer was lost. It never sends a change again.
func (h *BulkChanges) Reconcile(c echo.Context) error {
	job, _, err := h.loadOwnedBulk(c)
	if err != nil {
		return err
	}
	if err := h.Jobs.WakeBulkJob(c.Request().Context(), job.TenantID, job.ID, true); err != nil {
		return fmt.Errorf("wake bulk job: %w", err)
	}
	return kickAndShow(c, h.Worker, bulkURL(job.ID))
}

// bulkListPage is how many finished bulk changes the list shows at once.
const bulkListPage = 50

// List is GET /devices/bulk: the tenant's bulk changes still running, every one, then the
// finished ones newest first, a page at a time (?before= a cursor: those older than it).
func (h *BulkChanges) List(c echo.Context) error {
	ctx, tenant := c.Request().Context(), web.CurrentUser(c).TenantID
	before := c.QueryParam("before")
	running, err := h.Jobs.ListBulkJobs(ctx, store.BulkJobFilter{TenantID: tenant, Running: true})
	if err != nil {
		return fmt.Errorf("list running bulk jobs: %w", err)
	}
	finished, err := h.Jobs.ListBulkJobs(ctx, store.BulkJobFilter{TenantID: tenant, Before: before, Limit: bulkListPage + 1})
	if errors.Is(err, store.ErrInvalidCursor) {
		return c.Redirect(http.StatusSeeOther, "/devices/bulk")
	}
	if err != nil {
		return fmt.Errorf("list finished bulk jobs: %w", err)
	}
	view := views.BulkList{Running: bulkSummaries(running), Older: before != ""}
	if len(finished) > bulkListPage {
		finished = finished[:bulkListPage]
		view.OlderURL = "/devices/bulk?before=" + url.QueryEscape(store.BulkJobCursor(finished[len(finished)-1]))
	}
	view.Finished = bulkSummaries(finished)
	return web.Render(c, http.StatusOK, views.BulkListPage(web.PageFor(c, views.ListTitle("Bulk changes", view.Older), "devices"), view))
}

func bulkSummaries(jobs []store.BulkJob) []views.BulkSummary {
	out := make([]views.BulkSummary, 0, len(jobs))
	for _, j := range jobs {
		out = append(out, views.BulkSummary{ID: j.ID, Created: j.CreatedAt, Owner: bulkOwner(&j), What: explain.BulkAction(j.Action, j.GroupTag),
			Devices: j.Devices, State: j.State})
	}
	return out
}

// bulkView turns a job into what its page shows.
func bulkView(job *store.BulkJob, p bulk.Payload, devices []store.BulkDevice, budget BulkPace, now time.Time) views.BulkJob {
	v := views.BulkJob{ID: job.ID, State: job.State, Action: job.Action, GroupTag: job.GroupTag, What: explain.BulkAction(job.Action, job.GroupTag),
		Owner: bulkOwner(job), OwnerName: job.ActorName, Created: job.CreatedAt, Missing: p.Missing, NoUser: p.NoUser, Paused: p.Paused,
		Budget: budget.Describe(), Estimate: budget.Estimate(len(devices))}
	if v.OwnerName == "" {
		v.OwnerName = bulkOwner(job)
	}
	if p.Trouble != nil {
		v.Trouble = explain.Trouble(*p.Trouble)
	} else if stalled(job.LeaseOwner, job.LeaseUntil, job.UpdatedAt, now) {
		v.Trouble = explain.Stalled("bulk change", job.UpdatedAt, job.LeaseUntil)
	}
	if p.Refusal != nil {
		e := explain.Explain(*p.Refusal)
		v.Refusal = &e
		if p.Refusal.Graph != nil {
			v.RefusalSupport = graphclient.SupportFor(nil, p.Refusal.Graph)
		}
	}
	if p.Waiting != nil && now.Before(p.Waiting.Until) {
		v.Waiting = &views.BulkWait{Reason: explain.BulkWait(p.Waiting.Pacing, p.Waiting.Held, p.Waiting.Throttled, budget.Describe()), Until: p.Waiting.Until}
	}
	if s := p.Serials; s != nil {
		v.Serials = &views.BulkSerials{Given: s.Given, NotFound: s.NotFound, Blank: s.Blank}
		for _, e := range s.LeftOut {
			v.Serials.LeftOut = append(v.Serials.LeftOut, views.BulkSerialLine{Where: e.Where, Serial: e.Serial, Why: e.Why})
		}
	}
	if p.Correct != nil {
		v.Correction = &views.BulkCorrection{Tag: p.Correct.Tag, From: p.Correct.From, Refusal: explain.ForAction("device-change", p.Correct.Refusal)}
	}
	var again []store.BulkDevice
	for _, d := range devices {
		desc := explain.BulkDevice(job.Action, job.GroupTag, d, p.Refusal)
		v.Devices = append(v.Devices, views.BulkRow{DeviceID: d.DeviceID, Serial: d.Serial, Manufacturer: d.Manufacturer, Model: d.Model,
			GroupTag: d.GroupTag, User: d.UserPrincipalName, State: graphclient.EnrollmentState(d.EnrollmentState),
			Key: desc.Key, Outcome: desc.State, Detail: desc.Detail, SeeRefusal: desc.SeeRefusal, StatusCode: d.StatusCode, ActivityID: d.ActivityID, Reconciled: d.Reconciled})
		if d.EnrollmentState == string(graphclient.EnrollmentEnrolled) {
			v.Enrolled++
		}
		switch {
		case job.State != bulk.StateFinished || !bulk.Again(d):
		case bulk.Correct(job.Action, d):
			v.Correct = append(v.Correct, d.DeviceID)
		default:
			v.Again = append(v.Again, d.DeviceID)
			again = append(again, d)
		}
	}
	if a := bulk.Count(again); len(again) > 0 {
		v.AgainCounts = views.BulkCounts{Devices: a.Devices, Refused: a.Refused, Unconfirmed: a.Unconfirmed, Skipped: a.Skipped - a.Superseded}
	}
	cnt := bulk.Count(devices)
	v.Counts = views.BulkCounts{Devices: cnt.Devices, Final: cnt.Final(), Queued: cnt.Queued, Sending: cnt.InFlight, Unknown: cnt.Unknown,
		Done: cnt.Done, Refused: cnt.Refused, NotFound: cnt.NotFound, Unconfirmed: cnt.Unconfirmed, Skipped: cnt.Skipped - cnt.Superseded, Superseded: cnt.Superseded,
		Replaced: cnt.Replaced, Reconciled: cnt.Reconciled, ReplacedOnPage: cnt.ReplacedOnPage, Restored: cnt.Restored}
	v.RefreshSeconds = 2
	if cnt.Unknown > 0 || p.Paused || v.Waiting != nil {
		v.RefreshSeconds = 10
	}
	return v
}
