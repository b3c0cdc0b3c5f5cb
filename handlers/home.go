package handlers

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"autopilotdesk/graphclient"
	"autopilotdesk/views"
	"autopilotdesk/web"
)

// Home shows who is signed in and the tenant's most recent uploads.
type Home struct {
	Graph  UploadsAPI
	Tokens Tokens
}

const recentUploads = 10

func (h *Home) Show(c echo.Context) error {
	u := web.CurrentUser(c)
	view := views.Home{User: views.User{Name: u.Name, UPN: u.UPN, TenantID: u.TenantID}}
	page, ex, err := h.list(c)
	switch {
	case errors.Is(err, web.ErrSessionEnded):
		return c.Redirect(http.StatusSeeOther, "/auth/signin")
	case err != nil:
		view.Failure = failureOf(ex, err)
	default:
		view.Uploads = page.Uploads
	}
	return web.Render(c, http.StatusOK, views.HomePage(web.PageFor(c, "Home", "home"), view))
}

// list reads the newest uploads; listing is idempotent, so a 401 gets one renewal and one retry.
func (h *Home) list(c echo.Context) (*graphclient.UploadPage, *graphclient.Exchange, error) {
	ts, err := h.Tokens.TokenSource(c)
	if err != nil {
		return nil, nil, err
	}
	opts := graphclient.ListOptions{Top: recentUploads}
	page, ex, err := h.Graph.ListUploads(c.Request().Context(), ts, opts)
	if ge, ok := graphclient.AsError(err); ok && ge.Kind == graphclient.KindUnauthorized {
		if ts, err = h.Tokens.RenewToken(c); err != nil {
			return nil, ex, err
		}
		page, ex, err = h.Graph.ListUploads(c.Request().Context(), ts, opts)
	}
	return page, ex, err
}
