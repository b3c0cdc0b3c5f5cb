package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"autopilotdesk/web"
)

// Theme remembers the light or dark choice in a cookie; "system" forgets it.
func Theme(c echo.Context) error {
	ck := &http.Cookie{Name: web.ThemeCookieName, Path: "/", Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode, MaxAge: 365 * 24 * 3600}
	switch v := c.QueryParam("theme"); v {
	case "light", "dark":
		ck.Value = v
	default:
		ck.MaxAge = -1
	}
	c.SetCookie(ck)
	return c.Redirect(http.StatusSeeOther, web.SafeReturnTo(c.QueryParam("return_to")))
}
