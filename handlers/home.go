package handlers

import (
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/views"
	"autopilotdesk/web"
)

// Home shows who is signed in and the first uploads Graph lists, newest first.
type Home struct {
	Graph   UploadLister
	Tokens  Tokens
	Tenants TenantUploads // what the desk remembers of the tenant's Graph
	Now     func() time.Time
}

const recentUploads = 10

func (h *Home) Show(c echo.Context) error {
	u := web.CurrentUser(c)
	view := views.Home{User: views.User{Name: u.Name, UPN: u.UPN, Tenant: u.Tenant()}, Access: accessOf(c)}
	now := h.Now()
	known := knownUploads(c, h.Tenants, now)
	if known.Fresh {
		// Seen today: the tenant's Graph has no uploads, so nothing is asked of it.
		view.UploadsMissing = known.Missing
		return web.Render(c, http.StatusOK, views.HomePage(web.PageFor(c, "Home", "home"), view))
	}
	page, ex, err := h.list(c)
	switch {
	case errors.Is(err, web.ErrSessionEnded):
		return err
	case err != nil:
		view.Failure = failureOf(ex, err)
		view.Failure.Reload = "/"
	default:
		view.Uploads, view.More = graphclient.NewestFirst(page.Uploads), len(page.Uploads) >= recentUploads
	}
	if view.UploadsMissing = learnUploads(c, h.Tenants, known, now, ex, err); view.UploadsMissing != nil {
		view.Failure = nil // the notice says it, with the way on
	}
	return web.Render(c, http.StatusOK, views.HomePage(web.PageFor(c, "Home", "home"), view))
}

// list reads the first uploads Graph lists (in an order of its own: it is not asked for one,
// as which orders the uploads collection takes is not known).
func (h *Home) list(c echo.Context) (*graphclient.UploadPage, *graphclient.Exchange, error) {
	return callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.UploadPage, *graphclient.Exchange, error) {
		return h.Graph.ListUploads(c.Request().Context(), ts, graphclient.ListOptions{Top: recentUploads})
	})
}
