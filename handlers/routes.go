package handlers

import (
	"github.com/labstack/echo/v4"

	"autopilotdesk/web"
)

// Features are the handlers the desk serves.
type Features struct {
	Auth     *Auth
	Home     *Home
	Uploads  *Uploads
	Devices  *Devices
	Activity *Activity
	Limits   Limits
}

// Limits are the rate limits of the actions worth abusing: starting sign-in, callbacks, creates.
type Limits struct {
	Counter        web.Counter
	SignIn, Create web.Limit
}

// Routes is the desk's whole URL space, grouped by the middleware each part needs.
func Routes(shell *web.Shell, f Features) {
	pages := shell.Pages() // session loaded, CSRF checked on every state change
	// A form whose session ended starts a sign-in at once, counted as one.
	shell.SetSignIn(f.Auth, shell.RateLimit(f.Limits.Counter, "sign-in", f.Limits.SignIn))

	// Anyone may reach these.
	web.GET(pages, "/auth/signin", f.Auth.SignInPage)
	web.GET(pages, "/auth/login", f.Auth.Login, shell.RateLimit(f.Limits.Counter, "sign-in", f.Limits.SignIn))
	web.GET(pages, "/auth/callback", f.Auth.Callback, shell.RateLimit(f.Limits.Counter, "callback", f.Limits.SignIn))
	web.GET(pages, "/auth/signed-out", f.Auth.SignedOut)
	web.GET(pages, "/theme", Theme)
	// Signing out of a session that already ended just confirms it.
	pages.POST("/auth/signout", f.Auth.SignOut)

	// Signed-in only. Without a session (or once the identity provider refuses to renew it),
	// a page sends the person to sign in and back; a form keeps what was typed through the
	// sign-in and returns to the page it is on (web.FormPage names it when the browser does not).
	user := pages.Group("", web.RequireUser)
	// form adds a POST route whose form is on page.
	form := func(path, page string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
		user.POST(path, h, m...)
		shell.FormPage(path, page)
	}
	web.GET(user, "/", f.Home.Show)
	web.GET(user, "/uploads/new", f.Uploads.New)
	form("/uploads", "/uploads/new", f.Uploads.Create, shell.RateLimit(f.Limits.Counter, "create", f.Limits.Create))
	web.GET(user, "/uploads", f.Uploads.List)
	web.GET(user, "/uploads/:id", f.Uploads.Show)
	form("/uploads/:id/status", "/uploads/:id", f.Uploads.SetStatus)
	web.GET(user, "/uploads/:id/delete", f.Uploads.ConfirmDelete)
	form("/uploads/:id/delete", "/uploads/:id/delete", f.Uploads.Delete)
	web.GET(user, "/devices/import", f.Devices.Start)
	form("/devices/import", "/devices/import", f.Devices.Preflight)
	web.GET(user, "/devices/import/:id", f.Devices.Show)
	form("/devices/import/:id/check", "/devices/import/:id", f.Devices.Check)
	form("/devices/import/:id/fix", "/devices/import/:id", f.Devices.Fix)
	form("/devices/import/:id/submit", "/devices/import/:id", f.Devices.Submit, shell.RateLimit(f.Limits.Counter, "create", f.Limits.Create))
	form("/devices/import/:id/reconcile", "/devices/import/:id", f.Devices.Reconcile)
	web.GET(user, "/devices/import/:id/report.csv", f.Devices.Report)
	form("/devices/sync", "/devices/import", f.Devices.Sync)
	web.GET(user, "/activity", f.Activity.List)
	web.GET(user, "/activity/:id", f.Activity.Show)

	pages.RouteNotFound("/*", func(c echo.Context) error { return echo.ErrNotFound })
}
