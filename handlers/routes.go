package handlers

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"autopilotdesk/handlers/registration"
	"autopilotdesk/web"
)

// Features are the handlers the desk serves.
type Features struct {
	Auth       *Auth
	Home       *Home
	Uploads    *Uploads
	Devices    *Devices
	Registered *Registered
	Bulk       *BulkChanges
	Activity   *Activity
	// Registration is the team's side of registration from the device; Register the device's.
	Registration *Registration
	Register     *Register
	Limits       Limits
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
	user := pages.Group("", web.RequireUser, f.Registration.Count.Middleware)
	// form adds a POST route whose form is on page.
	form := func(path, page string, h echo.HandlerFunc, m ...echo.MiddlewareFunc) {
		user.POST(path, h, m...)
		shell.FormPage(path, page)
	}
	web.GET(user, "/", f.Home.Show)
	web.GET(user, "/uploads/new", f.Uploads.New)
	form("/uploads", "/uploads/new", f.Uploads.Create, shell.RateLimit(f.Limits.Counter, "create", f.Limits.Create))
	web.GET(user, "/uploads", f.Uploads.List)
	form("/uploads/offered", "/uploads/new", f.Uploads.CheckOffered)
	web.GET(user, "/uploads/:id", f.Uploads.Show)
	form("/uploads/:id/status", "/uploads/:id", f.Uploads.SetStatus)
	web.GET(user, "/uploads/:id/delete", f.Uploads.ConfirmDelete)
	form("/uploads/:id/delete", "/uploads/:id/delete", f.Uploads.Delete)
	create := shell.RateLimit(f.Limits.Counter, "create", f.Limits.Create)
	formLimits(shell, f.Devices.MaxRows)
	web.GET(user, "/devices", f.Registered.List)
	web.GET(user, "/devices/export.csv", f.Registered.Export)
	web.GET(user, "/devices/bulk", f.Bulk.List)
	form("/devices/bulk", "/devices", f.Bulk.Create)
	web.GET(user, "/devices/bulk/serials", f.Bulk.SerialsForm)
	form("/devices/bulk/serials", "/devices/bulk/serials", f.Bulk.FromSerials)
	web.GET(user, "/devices/bulk/:id", f.Bulk.Show)
	form("/devices/bulk/:id/confirm", "/devices/bulk/:id", f.Bulk.Confirm, create)
	form("/devices/bulk/:id/reconcile", "/devices/bulk/:id", f.Bulk.Reconcile)
	form("/devices/bulk/:id/group-tag", "/devices/bulk/:id", f.Bulk.GroupTag)
	web.GET(user, "/devices/:id", f.Registered.Show)
	form("/devices/:id/properties", "/devices/:id", f.Registered.Properties, create)
	form("/devices/:id/user", "/devices/:id", f.Registered.AssignUser, create)
	form("/devices/:id/unassign", "/devices/:id", f.Registered.UnassignUser, create)
	web.GET(user, "/devices/:id/delete", f.Registered.ConfirmDelete)
	form("/devices/:id/delete", "/devices/:id/delete", f.Registered.Delete, create)
	web.GET(user, "/devices/import", f.Devices.Start)
	form("/devices/import", "/devices/import", f.Devices.Preflight)
	web.GET(user, "/devices/import/:id", f.Devices.Show)
	form("/devices/import/:id/check", "/devices/import/:id", f.Devices.Check)
	form("/devices/import/:id/stop-check", "/devices/import/:id", f.Devices.StopCheck)
	form("/devices/import/:id/fix", "/devices/import/:id", f.Devices.Fix)
	form("/devices/import/:id/submit", "/devices/import/:id", f.Devices.Submit, create)
	form("/devices/import/:id/reconcile", "/devices/import/:id", f.Devices.Reconcile)
	form("/devices/import/:id/stop", "/devices/import/:id", f.Devices.Stop)
	web.GET(user, "/devices/import/:id/report.csv", f.Devices.Report)
	form("/devices/sync", "/devices", f.Devices.Sync)
	web.GET(user, "/registration", f.Registration.Show)
	web.GET(user, "/registration/codes/new", f.Registration.NewCode)
	web.GET(user, "/registration/sample-device.csv", f.Registration.SampleDevice)
	form("/registration/codes", "/registration/codes/new", f.Registration.CreateCode, shell.RateLimit(f.Limits.Counter, "create", f.Limits.Create))
	form("/registration/codes/:id/revoke", "/registration", f.Registration.Revoke)
	form("/registration/decide", "/registration", f.Registration.Decide, shell.RateLimit(f.Limits.Counter, "create", f.Limits.Create))
	web.GET(user, "/activity", f.Activity.List)
	web.GET(user, "/activity/:id", f.Activity.Show)
	form("/activity/:id/check", "/activity/:id", f.Activity.CheckAgain)

	// From devices, during Windows setup: no session and no cookie, so no CSRF token either —
	// there is no ambient authority for a forged request to ride on. The one-time code in the
	// path is all a request carries, and all it lets a device do is wait for approval.
	device := shell.Devices("/register", RegisterBodyLimit, errDeviceFileTooLarge, registration.Runs)
	device.POST("/:code", f.Register.Send)
	web.GET(device, "/:code/status", f.Register.Status)
	device.Match([]string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}, "/:code", f.Register.Refuse)
	device.Any("", f.Register.NoCode)
	device.Any("/", f.Register.NoCode)
	device.RouteNotFound("/*", f.Register.NoSuchCode)

	pages.RouteNotFound("/*", func(c echo.Context) error { return echo.ErrNotFound })
}
