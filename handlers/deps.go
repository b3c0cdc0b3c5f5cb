// Package handlers holds one file per feature. Each handler struct holds only the interfaces it
// uses, and each action reads: parse -> validate -> call -> record -> redirect or render.
package handlers

import (
	"context"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/web/store"
)

// Tokens gives handlers the signed-in user's Graph token.
type Tokens interface {
	TokenSource(c echo.Context) (oauth2.TokenSource, error)
	RenewToken(c echo.Context) (oauth2.TokenSource, error)
}

// UploadsAPI is the part of Microsoft Graph the upload pages call.
type UploadsAPI interface {
	CreateUpload(ctx context.Context, ts oauth2.TokenSource, in graphclient.NewUpload) (*graphclient.Upload, *graphclient.Exchange, error)
	ListUploads(ctx context.Context, ts oauth2.TokenSource, opts graphclient.ListOptions) (*graphclient.UploadPage, *graphclient.Exchange, error)
}

// ActivityLog records what people did and reads it back for result pages. Recording never fails
// a request: once Graph has answered, a record the database cannot take is kept and retried.
type ActivityLog interface {
	// Record records a (marking formKey done, when given) and reports whether the history has
	// it; when it does not, the caller shows the outcome itself with a notice.
	Record(ctx context.Context, a *store.Activity, formKey string) (saved bool)
	// RecordActivity is Record for callers that redirect to the result page either way; it
	// returns nil.
	RecordActivity(ctx context.Context, a *store.Activity) error
	GetActivity(ctx context.Context, tenantID, id string) (*store.Activity, error)
	// Kept is an activity of the tenant that this desk holds until the database takes it.
	Kept(tenantID, id string) (*store.Activity, bool)
}

// FormKeys record the one-time key of each submitted create form, so a repeat sends nothing.
type FormKeys interface {
	ClaimFormKey(ctx context.Context, key, sessionID string, ttl time.Duration) (bool, store.FormKeyState, string, error)
	ReleaseFormKey(ctx context.Context, key string) error
}
