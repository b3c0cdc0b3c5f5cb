package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"autopilotdesk/guid"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// Activity shows recorded actions: the result page every create redirects to.
type Activity struct {
	Log ActivityLog
}

// Show is GET /activity/:id, visible to the signed-in user's whole tenant (a shared history).
func (h *Activity) Show(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("There is no recorded activity with this id.")
	}
	u := web.CurrentUser(c)
	a, err := h.Log.GetActivity(c.Request().Context(), u.TenantID, id)
	if errors.Is(err, store.ErrNotFound) {
		return notFound("There is no recorded activity with this id in your tenant.")
	}
	if err != nil {
		return fmt.Errorf("read activity: %w", err)
	}
	var d activityDetail
	if len(a.Detail) > 0 {
		if err := json.Unmarshal(a.Detail, &d); err != nil {
			return fmt.Errorf("decode activity %s: %w", a.ID, err)
		}
	}
	r := views.Result{
		ActivityID: a.ID, At: a.At, ActorName: a.ActorName, ActorUPN: a.ActorUPN,
		Action: a.Action, Outcome: a.Outcome, Summary: a.Summary,
		Upload: d.Upload, Exchange: d.Exchange, Support: d.Support,
	}
	if d.Explanation != nil {
		r.Failure = &views.Failure{Explanation: *d.Explanation, Support: d.Support}
	}
	return web.Render(c, http.StatusOK, views.ResultPage(web.PageFor(c, "Result", ""), r))
}

func notFound(msg string) error {
	return &web.PageError{Status: http.StatusNotFound, Title: "Not found", Message: msg, ActionURL: "/", ActionText: "Go to the home page"}
}
