package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

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

// RecordedActivity reads one recorded action back.
type RecordedActivity interface {
	GetActivity(ctx context.Context, tenantID, id string) (*store.Activity, error)
	// Kept is an activity of the tenant that this desk holds until the database takes it.
	Kept(tenantID, id string) (*store.Activity, bool)
}

// Activity serves the team's history: GET /activity lists it, GET /activity/:id is one action's
// result page, where every create redirects.
type Activity struct {
	History  ActivityHistory  // the state database
	Recorded RecordedActivity // the database, and what this desk still holds for it
}

const historyPageSize = 50

// List is GET /activity: the team's activity, filterable by person, action and outcome; "mine=1"
// is my activity.
func (h *Activity) List(c echo.Context) error {
	u := web.CurrentUser(c)
	q := c.QueryParams()
	view := views.ActivityList{Mine: q.Get("mine") == "1", Person: strings.TrimSpace(q.Get("person")), Action: q.Get("action"), Outcome: q.Get("outcome")}
	f := store.ActivityFilter{TenantID: u.TenantID, Action: view.Action, Outcome: view.Outcome, Before: q.Get("before"), Limit: historyPageSize}
	if view.Mine {
		f.ObjectID = u.ObjectID
	} else if view.Person != "" {
		f.ActorUPN = view.Person
	}
	entries, next, err := h.History.ListActivity(c.Request().Context(), f)
	if err != nil && f.Before != "" {
		return &web.PageError{Status: http.StatusBadRequest, Title: "That page of the history does not exist",
			Message: "The link to older entries is not valid.", ActionURL: "/activity", ActionText: "Show the newest entries"}
	}
	if err != nil {
		return fmt.Errorf("list activity: %w", errors.Join(err))
	}
	for _, a := range entries {
		view.Entries = append(view.Entries, views.ActivityEntry{ID: a.ID, At: a.At, Action: a.Action, Outcome: a.Outcome, Summary: a.Summary,
			ActorName: a.ActorName, ActorUPN: a.ActorUPN, Target: a.Target, RequestID: a.RequestID, StatusCode: a.StatusCode})
	}
	if next != "" {
		nq := url.Values{}
		for k, v := range q {
			nq[k] = v
		}
		nq.Set("before", next)
		view.NextURL = "/activity?" + nq.Encode()
	}
	title := "Team activity"
	if view.Mine {
		title = "My activity"
	}
	return web.Render(c, http.StatusOK, views.ActivityListPage(web.PageFor(c, title, "activity"), view))
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
	var d activityDetail
	if len(a.Detail) > 0 {
		if err := json.Unmarshal(a.Detail, &d); err != nil {
			return fmt.Errorf("decode activity %s: %w", a.ID, err)
		}
	}
	return renderResult(c, a, d, notSaved)
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
	}
	if d.Failure != nil {
		r.Failure = &views.Failure{Explanation: explain.ForAction(a.Action, *d.Failure), Support: d.Support}
	}
	return web.Render(c, http.StatusOK, views.ResultPage(web.PageFor(c, "Result", ""), r))
}

func notFound(msg string) error {
	return &web.PageError{Status: http.StatusNotFound, Title: "Not found", Message: msg, ActionURL: "/", ActionText: "Go to the home page"}
}
