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
	Activity *Activity
	Manage   *ManageUploads
	Devices  *Devices
	History  *History
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

	// Anyone may reach these.
	pages.GET("/auth/signin", f.Auth.SignInPage)
	pages.GET("/auth/login", f.Auth.Login, shell.RateLimit(f.Limits.Counter, "sign-in", f.Limits.SignIn))
	pages.GET("/auth/callback", f.Auth.Callback, shell.RateLimit(f.Limits.Counter, "callback", f.Limits.SignIn))
	pages.GET("/auth/signed-out", f.Auth.SignedOut)
	pages.GET("/theme", Theme)
	// A create whose session ended keeps the typed values through a new sign-in.
	pages.POST("/uploads", f.Uploads.Create, shell.RateLimit(f.Limits.Counter, "create", f.Limits.Create))

	// Signed-in only.
	user := pages.Group("", web.RequireUser)
	user.GET("/", f.Home.Show)
	user.GET("/uploads/new", f.Uploads.New)
	user.GET("/uploads", f.Manage.List)
	user.GET("/uploads/:id", f.Manage.Show)
	user.POST("/uploads/:id/status", f.Manage.SetStatus)
	user.GET("/uploads/:id/delete", f.Manage.ConfirmDelete)
	user.POST("/uploads/:id/delete", f.Manage.Delete)
	user.GET("/devices/import", f.Devices.Start)
	user.POST("/devices/import", f.Devices.Preflight)
	user.GET("/devices/import/:id", f.Devices.Show)
	user.POST("/devices/import/:id/check", f.Devices.Check)
	user.POST("/devices/import/:id/fix", f.Devices.Fix)
	user.POST("/devices/import/:id/submit", f.Devices.Submit, shell.RateLimit(f.Limits.Counter, "create", f.Limits.Create))
	user.POST("/devices/import/:id/reconcile", f.Devices.Reconcile)
	user.GET("/devices/import/:id/report.csv", f.Devices.Report)
	user.POST("/devices/sync", f.Devices.Sync)
	user.GET("/activity", f.History.List)
	user.GET("/activity/:id", f.Activity.Show)
	user.POST("/auth/signout", f.Auth.SignOut)

	pages.RouteNotFound("/*", func(c echo.Context) error { return echo.ErrNotFound })
}
