package handlers

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/labstack/echo/v4"

	"autopilotdesk/graphclient/guid"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// Activity shows recorded actions: the result page every create redirects to.
type Activity struct {
	Log ActivityLog
}

// Show is GET /activity/:id, visible to the signed-in user's whole tenant (a shared history).
// An activity this desk still holds for the database is shown from memory, with a notice.
func (h *Activity) Show(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("There is no recorded activity with this id.")
	}
	u := web.CurrentUser(c)
	a, err := h.Log.GetActivity(c.Request().Context(), u.TenantID, id)
	notSaved := false
	if err != nil {
		kept, ok := h.Log.Kept(u.TenantID, id)
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
	if d.Explanation != nil {
		r.Failure = &views.Failure{Explanation: *d.Explanation, Support: d.Support}
	}
	return web.Render(c, http.StatusOK, views.ResultPage(web.PageFor(c, "Result", ""), r))
}

func notFound(msg string) error {
	return &web.PageError{Status: http.StatusNotFound, Title: "Not found", Message: msg, ActionURL: "/", ActionText: "Go to the home page"}
}
