package handlers

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"

	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// ActivityHistory lists the team's recorded activity.
type ActivityHistory interface {
	ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, string, error)
}

// History is GET /activity: the team's activity, filterable by person, action and outcome; "mine=1" is my activity.
type History struct {
	Log ActivityHistory
}

const historyPageSize = 50

func (h *History) List(c echo.Context) error {
	u := web.CurrentUser(c)
	q := c.QueryParams()
	view := views.ActivityList{Mine: q.Get("mine") == "1", Person: strings.TrimSpace(q.Get("person")), Action: q.Get("action"), Outcome: q.Get("outcome")}
	f := store.ActivityFilter{TenantID: u.TenantID, Action: view.Action, Outcome: view.Outcome, Before: q.Get("before"), Limit: historyPageSize}
	if view.Mine {
		f.ObjectID = u.ObjectID
	} else if view.Person != "" {
		f.ActorUPN = view.Person
	}
	entries, next, err := h.Log.ListActivity(c.Request().Context(), f)
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
