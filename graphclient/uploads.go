package graphclient

import (
	"cmp"
	"context"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient/guid"
)

const (
	uploadsPath = "/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads"
	uploadType  = "#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload"
)

// Upload is an importedWindowsAutopilotDeviceIdentityUpload. CreatedDateTimeUtc is kept exactly
// as Graph wrote it (up to seven fractional digits).
type Upload struct {
	ODataContext       string `json:"@odata.context,omitempty"`
	ODataType          string `json:"@odata.type,omitempty"`
	ID                 string `json:"id,omitempty"`
	CreatedDateTimeUtc string `json:"createdDateTimeUtc"`
	Status             string `json:"status"`
}

// NewUpload is what the create form sends.
type NewUpload struct {
	ID                 string
	CreatedDateTimeUtc string
	Status             string
}

// createBody is the seed's request body, field order included.
type createBody struct {
	ODataType          string `json:"@odata.type"`
	ID                 string `json:"id,omitempty"`
	CreatedDateTimeUtc string `json:"createdDateTimeUtc"`
	Status             string `json:"status"`
}

// UploadPage is one page of the uploads list.
type UploadPage struct {
	Uploads  []Upload
	NextLink string
}

// ListOptions filter and page the uploads list.
type ListOptions struct {
	Status   string
	Top      int
	NextLink string
}

// The values of importedWindowsAutopilotDeviceIdentityUploadStatus.
const (
	UploadNoUpload = "noUpload"
	UploadPending  = "pending"
	UploadComplete = "complete"
	UploadError    = "error"
)

// UploadStatuses are the upload statuses in Graph's order.
var UploadStatuses = [...]string{UploadNoUpload, UploadPending, UploadComplete, UploadError}

// IsUploadStatus reports whether s is one of Graph's upload statuses.
func IsUploadStatus(s string) bool { return slices.Contains(UploadStatuses[:], s) }

// CreateUpload POSTs a new upload. A create whose outcome is unknown is never re-sent: the
// client looks for it and reports what it found in the exchange's Reconciliation.
func (c *Client) CreateUpload(ctx context.Context, ts oauth2.TokenSource, in NewUpload) (*Upload, *Exchange, error) {
	if in.ID != "" && !guid.Valid(in.ID) {
		return nil, nil, invalidID("The upload id", in.ID)
	}
	body := jsonBody(createBody{ODataType: uploadType, ID: in.ID, CreatedDateTimeUtc: in.CreatedDateTimeUtc, Status: in.Status})
	var u Upload
	ex, err := c.do(ctx, ts, call{op: "create-upload", method: http.MethodPost, url: c.base + uploadsPath, body: body}, &u)
	if err == nil && u.ID == "" {
		// A 204, or an entity without its id: Graph created it, but did not say which it is.
		err, ex.Outcome = createdUnsaid(ex.Last(), c.cfg.Version), OutcomeUnknown
	}
	if ge, ok := AsError(err); ok && ge.Kind == KindOutcomeUnknown {
		ex.Reconciliation = c.reconcile(ctx, ts, in)
		if ge.StatusCode/100 == 2 {
			ex.Reconciliation.Accepted = ge.StatusCode
		}
		if ex.Reconciliation.Found != nil {
			return ex.Reconciliation.Found, ex, err
		}
		return nil, ex, err
	}
	if err != nil {
		return nil, ex, err
	}
	return &u, ex, nil
}

// createdUnsaid is a create Graph answered with a 2xx that does not say the upload's id.
func createdUnsaid(a *Attempt, version string) *Error {
	e := &Error{Kind: KindOutcomeUnknown, StatusCode: http.StatusCreated, Version: version,
		Message: "Graph answered that it created the upload, but its answer did not say the upload's id."}
	if a != nil {
		e.StatusCode = a.StatusCode
		e.Message = "Graph answered " + a.Status + ", so it created the upload, but its answer did not say the upload's id."
		e.RequestID, e.ClientRequestID, e.Date = a.ResponseHeader.Get("request-id"), a.RequestHeader.Get("client-request-id"), a.ResponseHeader.Get("Date")
	}
	return e
}

// FindUpload looks once more for an upload matching what a create whose outcome was unknown
// sent: by its id when it named one, and (when that id is not there: Graph assigns the ids) among
// the uploads with its status, whose matches the caller then judges. Nothing is sent but the
// look-ups.
func (c *Client) FindUpload(ctx context.Context, ts oauth2.TokenSource, in NewUpload) *Reconciliation {
	return c.reconcile(ctx, ts, in)
}

// reconcile looks for an upload matching what was sent, with a short deadline of its own.
func (c *Client) reconcile(ctx context.Context, ts oauth2.TokenSource, in NewUpload) *Reconciliation {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	r := &Reconciliation{Looked: true}
	if in.ID != "" {
		// Graph may have kept the id sent, or assigned its own: the date and status say the rest.
		u, _, err := c.GetUpload(ctx, ts, in.ID)
		if ge, ok := AsError(err); err != nil && !(ok && ge.Kind == KindNotFound) {
			r.Failed = errorOf(err)
			return r
		}
		if err == nil {
			r.Found = u
			return r
		}
	}
	opts := ListOptions{Status: in.Status}
	for pages := 0; ; pages++ {
		if pages == maxLookPages {
			r.Partial = true
			return r
		}
		page, _, err := c.ListUploads(ctx, ts, opts)
		if err != nil {
			r.Failed = errorOf(err)
			return r
		}
		for _, u := range page.Uploads {
			if u.Status == in.Status && sameInstant(u.CreatedDateTimeUtc, in.CreatedDateTimeUtc) {
				r.Matches = append(r.Matches, u)
			}
		}
		if page.NextLink == "" {
			return r
		}
		opts = ListOptions{NextLink: page.NextLink}
	}
}

// NewestFirst sorts uploads by their createdDateTimeUtc, the newest first (ties and dates that do
// not read as times keep Graph's order).
func NewestFirst(uploads []Upload) []Upload {
	at := func(u Upload) time.Time {
		t, _ := time.Parse(time.RFC3339Nano, u.CreatedDateTimeUtc)
		return t
	}
	slices.SortStableFunc(uploads, func(a, b Upload) int { return at(b).Compare(at(a)) })
	return uploads
}

// maxLookPages bounds the pages of uploads a look reads (Graph's pages hold 100 or more).
const maxLookPages = 20

// sameInstant reports whether two createdDateTimeUtc values name the same moment, however each
// is written (Graph may write the offset or the fraction otherwise than it was sent).
func sameInstant(a, b string) bool {
	ta, errA := time.Parse(time.RFC3339Nano, a)
	tb, errB := time.Parse(time.RFC3339Nano, b)
	if errA != nil || errB != nil {
		return a == b
	}
	return ta.Equal(tb)
}

type uploadList struct {
	Value    []Upload `json:"value"`
	NextLink string   `json:"@odata.nextLink"`
}

// ListUploads reads one page of uploads; NextLink is followed only under the configured root.
func (c *Client) ListUploads(ctx context.Context, ts oauth2.TokenSource, opts ListOptions) (*UploadPage, *Exchange, error) {
	target := c.base + uploadsPath
	if opts.NextLink != "" {
		var err error
		if target, err = c.pageLink(uploadsPath, opts.NextLink); err != nil {
			return nil, nil, err
		}
	} else {
		q := url.Values{}
		if opts.Status != "" {
			if !IsUploadStatus(opts.Status) {
				return nil, nil, &Error{Kind: KindInvalidInput, Message: "Unknown upload status " + strconv.Quote(truncate(opts.Status, 40)) + "."}
			}
			q.Set("$filter", "status eq '"+opts.Status+"'")
		}
		if opts.Top > 0 {
			q.Set("$top", strconv.Itoa(opts.Top))
		}
		if len(q) > 0 {
			target += "?" + strings.ReplaceAll(q.Encode(), "+", "%20")
		}
	}
	var l uploadList
	ex, err := c.do(ctx, ts, call{op: "list-uploads", method: http.MethodGet, url: target}, &l)
	if err != nil {
		return nil, ex, err
	}
	uploads, next := page(c, opts.NextLink, l.Value, l.NextLink, func(u Upload) string { return u.ID })
	return &UploadPage{Uploads: uploads, NextLink: next}, ex, nil
}

// GetUpload reads one upload.
func (c *Client) GetUpload(ctx context.Context, ts oauth2.TokenSource, id string) (*Upload, *Exchange, error) {
	if !guid.Valid(id) {
		return nil, nil, invalidID("The upload id", id)
	}
	return entity[Upload](ctx, c, ts, call{op: "get-upload", method: http.MethodGet, url: c.base + uploadsPath + "/" + id})
}

// UpdateUploadStatus PATCHes an upload's status.
func (c *Client) UpdateUploadStatus(ctx context.Context, ts oauth2.TokenSource, id, status string) (*Upload, *Exchange, error) {
	if !guid.Valid(id) {
		return nil, nil, invalidID("The upload id", id)
	}
	body := jsonBody(struct {
		ODataType string `json:"@odata.type"`
		Status    string `json:"status"`
	}{uploadType, status})
	u, ex, err := entity[Upload](ctx, c, ts, call{op: "update-upload", method: http.MethodPatch, url: c.base + uploadsPath + "/" + id, body: body})
	if err != nil || u.ID != "" && u.Status != "" && u.CreatedDateTimeUtc != "" {
		return u, ex, err
	}
	// 204 No Content (or a partial entity) is a normal answer to a PATCH: the upload is what was
	// sent, and what the answer did not say is read again (a read that fails leaves it unsaid).
	u.ID, u.Status = cmp.Or(u.ID, id), cmp.Or(u.Status, status)
	if u.CreatedDateTimeUtc == "" {
		if now, _, rerr := c.GetUpload(ctx, ts, id); rerr == nil {
			u.CreatedDateTimeUtc, u.ODataType = now.CreatedDateTimeUtc, cmp.Or(u.ODataType, now.ODataType)
		}
	}
	return u, ex, nil
}

// DeleteUpload deletes an upload (204).
func (c *Client) DeleteUpload(ctx context.Context, ts oauth2.TokenSource, id string) (*Exchange, error) {
	if !guid.Valid(id) {
		return nil, invalidID("The upload id", id)
	}
	return c.do(ctx, ts, call{op: "delete-upload", method: http.MethodDelete, url: c.base + uploadsPath + "/" + id}, nil)
}
