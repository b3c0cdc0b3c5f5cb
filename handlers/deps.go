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

// UploadLister is the part of Microsoft Graph the home page calls.
type UploadLister interface {
	ListUploads(ctx context.Context, ts oauth2.TokenSource, opts graphclient.ListOptions) (*graphclient.UploadPage, *graphclient.Exchange, error)
}

// UploadsAPI is the part of Microsoft Graph the upload pages call.
type UploadsAPI interface {
	UploadLister
	CreateUpload(ctx context.Context, ts oauth2.TokenSource, in graphclient.NewUpload) (*graphclient.Upload, *graphclient.Exchange, error)
	GetUpload(ctx context.Context, ts oauth2.TokenSource, id string) (*graphclient.Upload, *graphclient.Exchange, error)
	UpdateUploadStatus(ctx context.Context, ts oauth2.TokenSource, id, status string) (*graphclient.Upload, *graphclient.Exchange, error)
	DeleteUpload(ctx context.Context, ts oauth2.TokenSource, id string) (*graphclient.Exchange, error)
	ListUploadDeviceIdentities(ctx context.Context, ts oauth2.TokenSource, uploadID string) (*graphclient.UploadDevices, *graphclient.Exchange, error)
}

// ActivityLog records what people did. Recording never fails a request: once Graph has
// answered, a record the database cannot take is kept and retried.
type ActivityLog interface {
	// Record records a (marking formKey done, when given) and reports whether the history has
	// it; when it does not, the caller shows the outcome itself with a notice.
	Record(ctx context.Context, a *store.Activity, formKey string) (saved bool)
	// RecordActivity is Record for callers that redirect to the result page either way; it
	// returns nil.
	RecordActivity(ctx context.Context, a *store.Activity) error
}

// FormKeys record the one-time key of each submitted create form, so a repeat sends nothing.
type FormKeys interface {
	ClaimFormKey(ctx context.Context, key, sessionID string, ttl time.Duration) (bool, store.FormKeyState, string, error)
	ReleaseFormKey(ctx context.Context, key string) error
}
