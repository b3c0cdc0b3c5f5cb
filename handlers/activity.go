package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// ActivityHistory lists the team's recorded activity.
type ActivityHistory interface {
	ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, string, error)
}

// JobRecordCounter counts the records imports and bulk changes wrote as they went, for the
// history's rows that fold them under the newest of each job.
type JobRecordCounter interface {
	FoldedJobs(ctx context.Context, tenantID string, jobs []string) (store.JobRecords, error)
}

// RecordedActivity reads one recorded action back.
type RecordedActivity interface {
	GetActivity(ctx context.Context, tenantID, id string) (*store.Activity, error)
	// Kept is an activity of the tenant that this desk holds until the database takes it.
	Kept(tenantID, id string) (*store.Activity, bool)
	// CreatedUploads says which of ids the tenant's history records as uploads created here.
	CreatedUploads(ctx context.Context, tenantID string, ids []string) (map[string]bool, error)
}

// createSettles is how long after a create Graph may still answer 404 for the new upload, or not
// list it: a look that finds nothing sooner does not show that the create was not carried out.
const createSettles = 2 * time.Minute

// judgeLook settles what a look for a create whose answer was lost found (sent at sentAt): an
// upload with the same date and status that the tenant's history records as created here is not
// the one sent. When the history cannot say, no match is taken for the one sent.
func judgeLook(ctx context.Context, recorded RecordedActivity, tenantID string, rc *graphclient.Reconciliation, sentAt, now time.Time) {
	if rc == nil {
		return
	}
	ids := make([]string, 0, len(rc.Matches))
	for _, u := range rc.Matches {
		ids = append(ids, u.ID)
	}
	created, err := recorded.CreatedUploads(ctx, tenantID, ids)
	if err != nil {
		created = nil
	}
	rc.Judge(created, sentAt.Add(createSettles), now)
}

// Activity serves the team's history: GET /activity lists it, GET /activity/:id is one action's
// result page, where every create redirects.
type Activity struct {
	History  ActivityHistory  // the state database
	Jobs     JobRecordCounter // the state database; nil: a job's folded records are not counted
	Recorded RecordedActivity // the database, and what this desk still holds for it
	// For "Check again" on a create whose outcome is unknown: Graph, the person's token, and the
	// record to rewrite with what was found.
	Graph   UploadFinder
	Tokens  Tokens
	Records ActivityRewriter
	Now     func() time.Time
}

// UploadFinder looks for an upload a create may or may not have made.
type UploadFinder interface {
	FindUpload(ctx context.Context, ts oauth2.TokenSource, in graphclient.NewUpload) *graphclient.Reconciliation
}

// ActivityRewriter rewrites what a record says once its outcome is known.
type ActivityRewriter interface {
	UpdateActivity(ctx context.Context, a *store.Activity, fromOutcome string) error
}

const historyPageSize = 50

// List is GET /activity: the team's activity, filterable by person (the start of a name or a
// UPN), action and outcome; "mine=1" is my activity. Pages go back with "before" and forward
// again with "after". The records an import or a bulk change writes as it goes, one a batch, are
// one row a job, its newest, leading to all of them ("job=ID"); filtered by outcome, every record
// that matches is a row of its own, so no failure hides under a job's newer success.
func (h *Activity) List(c echo.Context) error {
	u := web.CurrentUser(c)
	q := c.QueryParams()
	view := views.ActivityList{Mine: q.Get("mine") == "1", Person: strings.TrimSpace(q.Get("person")), Action: q.Get("action"), Outcome: q.Get("outcome"),
		Job: q.Get("job")}
	if err := unknownActivityFilter(q); err != nil {
		return err
	}
	if view.Job != "" && !guid.Valid(view.Job) {
		return &views.ErrorPage{Status: http.StatusBadRequest, Title: "That job's records cannot be listed",
			Message: "The link names no import or bulk change the history knows.", ActionURL: "/activity", ActionText: "Show the whole history"}
	}
	f := store.ActivityFilter{TenantID: u.TenantID, Action: view.Action, Outcome: view.Outcome, Before: q.Get("before"), Limit: historyPageSize,
		Job: view.Job, Fold: view.Job == "" && view.Outcome == ""}
	if f.Before == "" {
		f.After = q.Get("after")
	}
	if view.Mine {
		f.ObjectID = u.ObjectID
	} else if view.Person != "" {
		f.Person = view.Person
	}
	entries, next, err := h.History.ListActivity(c.Request().Context(), f)
	if err != nil && (f.Before != "" || f.After != "") {
		return &views.ErrorPage{Status: http.StatusBadRequest, Title: "That page of the history does not exist",
			Message: "The link to older or newer entries is not valid.", ActionURL: "/activity", ActionText: "Show the newest entries"}
	}
	if err != nil {
		return fmt.Errorf("list activity: %w", errors.Join(err))
	}
	for _, a := range entries {
		e := views.ActivityEntry{ID: a.ID, At: a.At, Action: a.Action, Outcome: a.Outcome, Summary: a.Summary,
			ActorName: a.ActorName, ActorUPN: a.ActorUPN, Target: a.Target, Serial: a.Serial, RequestID: a.RequestID, StatusCode: a.StatusCode}
		// Only a record that kept no answer of Graph's own, or an error status, can be a lost answer found settled.
		if a.Outcome != outcomeUnknown && (a.StatusCode == 0 || a.StatusCode >= 500) {
			if d, err := decodeDetail(&a); err == nil {
				e.Settled = settled(&a, d)
			}
		}
		view.Entries = append(view.Entries, e)
	}
	if err := h.countFolded(c.Request().Context(), u.TenantID, f, view.Entries); err != nil {
		return err
	}
	// Older entries follow the last row; newer ones precede the first, when this page is not the newest.
	older, newer := next, ""
	if f.After != "" {
		older, newer = "", next
		if len(entries) > 0 {
			older = store.ActivityCursor(entries[len(entries)-1])
		}
	} else if f.Before != "" && len(entries) > 0 {
		newer = store.ActivityCursor(entries[0])
	}
	page := func(key, cursor string) string {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Del("before")
		nq.Del("after")
		if view.Person != "" {
			nq.Set("person", view.Person)
		}
		nq.Set(key, cursor)
		return "/activity?" + nq.Encode()
	}
	if older != "" {
		view.NextURL = page("before", older)
	}
	if newer != "" {
		view.NewerURL = page("after", newer)
	}
	title := "Team activity"
	if view.Mine {
		title = "My activity"
	}
	return web.Render(c, http.StatusOK, views.ActivityListPage(web.PageFor(c, views.ListTitle(title, view.NewerURL != ""), "activity"), view))
}

// countFolded says, on the rows of a page that folds jobs' records, how many records each job wrote.
func (h *Activity) countFolded(ctx context.Context, tenantID string, f store.ActivityFilter, entries []views.ActivityEntry) error {
	if !f.Fold || h.Jobs == nil {
		return nil
	}
	var jobs []string
	for _, e := range entries {
		if views.JobRecord(e.Action) && guid.Valid(e.Target) {
			jobs = append(jobs, e.Target)
		}
	}
	counts, err := h.Jobs.FoldedJobs(ctx, tenantID, jobs)
	if err != nil {
		return fmt.Errorf("count a job's records: %w", err)
	}
	for i, e := range entries {
		if views.JobRecord(e.Action) {
			entries[i].JobRecords = counts[e.Target]
		}
	}
	return nil
}

// unknownActivityFilter refuses an action or outcome the history does not know, which would
// otherwise show an empty history with the filter at "Any"; the way back keeps the other filters.
func unknownActivityFilter(q url.Values) error {
	for _, f := range []struct {
		name, kind string
		known      func(string) bool
	}{{"action", "an action", views.KnownActivityAction}, {"outcome", "an outcome", views.KnownActivityOutcome}} {
		v := q.Get(f.name)
		if v == "" || f.known(v) {
			continue
		}
		rest := url.Values{}
		for k, vs := range q {
			if k != f.name && k != "before" && k != "after" {
				rest[k] = vs
			}
		}
		back := "/activity"
		if len(rest) > 0 {
			back += "?" + rest.Encode()
		}
		return &views.ErrorPage{Status: http.StatusBadRequest, Title: "Choose " + f.kind + " from the list",
			Message:  "“" + clipTo(v, 40) + "” is not " + f.kind + " the history records, so nothing could match it.",
			NextStep: "Show the history without it, then choose " + f.kind + " from the " + explain.Sentence(f.name) + " list.", ActionURL: back,
			ActionText: "Show the history without this " + f.name}
	}
	return nil
}

// Show is GET /activity/:id, visible to the signed-in user's whole tenant (a shared history).
// An activity this desk still holds for the database is shown from memory, with a notice.
func (h *Activity) Show(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("There is no recorded activity with this id.")
	}
	u := web.CurrentUser(c)
	a, err := h.Recorded.GetActivity(c.Request().Context(), u.TenantID, id)
	notSaved := false
	if err != nil {
		kept, ok := h.Recorded.Kept(u.TenantID, id)
		switch {
		case ok:
			a, notSaved = kept, true
		case errors.Is(err, store.ErrNotFound):
			return notFound("There is no recorded activity with this id in your tenant.")
		default:
			return fmt.Errorf("read activity: %w", err)
		}
	}
	d, err := decodeDetail(a)
	if err != nil {
		return fmt.Errorf("decode activity %s: %w", a.ID, err)
	}
	return renderResult(c, a, d, notSaved)
}

// CheckAgain is POST /activity/:id/check: for a create whose outcome is unknown, look the upload
// up once more (by the id it sent, or among the uploads with its status), keep what was found in
// the record and show it. Nothing but the look-up is sent.
func (h *Activity) CheckAgain(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("There is no recorded activity with this id.")
	}
	u := web.CurrentUser(c)
	ctx := c.Request().Context()
	a, err := h.Recorded.GetActivity(ctx, u.TenantID, id)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return notFound("There is no recorded activity with this id in your tenant.")
	case err != nil:
		return fmt.Errorf("read activity: %w", err)
	}
	d, err := decodeDetail(a)
	if err != nil {
		return fmt.Errorf("decode activity %s: %w", a.ID, err)
	}
	sent := sentOf(d)
	if a.Action != "create-upload" || a.Outcome != outcomeUnknown || sent == nil {
		return c.Redirect(http.StatusSeeOther, activityURL(a.ID)) // its outcome is known
	}
	rc, _, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.Reconciliation, *graphclient.Exchange, error) {
		rc := h.Graph.FindUpload(ctx, ts, *sent)
		if rc.Failed != nil {
			return rc, nil, rc.Failed // a 401 is renewed once, as for every call
		}
		return rc, nil, nil
	})
	if rc == nil {
		return err // no token to look with: the session ended, or it could not be renewed now
	}
	if d.Exchange == nil {
		d.Exchange = &graphclient.Exchange{}
	}
	if before := d.Exchange.Reconciliation; before != nil {
		rc.Accepted = before.Accepted // Graph's answer that it created the upload still holds
	}
	judgeLook(ctx, h.Recorded, u.TenantID, rc, a.At, h.Now())
	d.Exchange.Reconciliation, d.CheckedAt = rc, h.Now()
	switch {
	case rc.Found != nil:
		d.Upload = rc.Found
		a.Target, a.Outcome = rc.Found.ID, outcomeSuccess
		a.Summary = fmt.Sprintf("Created upload %s with status %s (found when the desk looked again).", rc.Found.ID, rc.Found.Status)
	case rc.NotCreated():
		a.Outcome = outcomeFailure
		a.Summary = "The upload was not created: the desk looked again and Graph has no upload matching what was sent."
	}
	a.Detail = encodeDetail(d)
	switch err := h.Records.UpdateActivity(ctx, a, outcomeUnknown); {
	case errors.Is(err, store.ErrConflict):
		// Another look settled the record meanwhile: show what it found.
	case err != nil:
		return renderResult(c, a, d, true)
	}
	return c.Redirect(http.StatusSeeOther, activityURL(a.ID))
}

// recordAndShow records what an action did, then sends the browser to its result page; when the
// history cannot take the record yet, the result page is this answer, with a notice.
func recordAndShow(c echo.Context, log ActivityLog, act *store.Activity, d activityDetail) error {
	act.Detail = encodeDetail(d)
	if !log.Record(c.Request().Context(), act, "") {
		return renderResult(c, act, d, true)
	}
	return c.Redirect(http.StatusSeeOther, activityURL(act.ID))
}

// renderResult shows one action's result page.
func renderResult(c echo.Context, a *store.Activity, d activityDetail, notSaved bool) error {
	r := views.Result{
		ActivityID: a.ID, At: a.At, ActorName: a.ActorName, ActorUPN: a.ActorUPN,
		Action: a.Action, Outcome: a.Outcome, Summary: a.Summary, Target: a.Target,
		Upload: d.Upload, Exchange: d.Exchange, Support: d.Support, NotSaved: notSaved,
		CheckedAt: d.CheckedAt, CanSendAgain: d.Sent != nil || sentOf(d) != nil,
		DeskStep: d.Exchange == nil && d.Support == (graphclient.SupportDetails{}) && a.StatusCode == 0 && d.Failure == nil && d.Upload == nil,
		Settled:  settled(a, d), Own: a.ObjectID != "" && a.ObjectID == web.CurrentUser(c).ObjectID, AskedStatus: d.Asked, Access: accessOf(c),
	}
	if d.Failure != nil {
		r.Failure = &views.Failure{Explanation: explain.ForAction(a.Action, *d.Failure), Support: d.Support}
		if r.Own && a.Outcome == outcomeFailure && guid.Valid(a.Target) {
			// A change of an upload that failed in passing, or was found not made, can be sent again.
			switch {
			case a.Action == "update-upload" && d.Asked != "":
				r.Failure.Retry = views.SendAgainForm
			case a.Action == "delete-upload":
				r.Failure.RetryURL = "/uploads/" + a.Target + "/delete" // asks to confirm again
			}
		}
	}
	return web.Render(c, http.StatusOK, views.ResultPage(web.PageFor(c, views.ResultTitle(r), ""), r))
}

// settled reports whether Graph's answer to a was lost and the desk has since found its outcome
// by looking: the outcome leads, the lost answer is a detail.
func settled(a *store.Activity, d activityDetail) bool {
	if a.Outcome != outcomeSuccess && a.Outcome != outcomeFailure || d.Failure == nil || d.Failure.Graph == nil {
		return false
	}
	return d.Failure.Graph.Kind == graphclient.KindOutcomeUnknown
}

func notFound(msg string) error {
	return &views.ErrorPage{Status: http.StatusNotFound, Title: "Not found", Message: msg, ActionURL: "/", ActionText: "Go to the home page"}
}
