package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// Uploads serves /uploads: the create form (creates are forwarded to Graph once), the list,
// one upload's page, its status change and its deletion.
type Uploads struct {
	Graph    UploadsAPI
	Tokens   Tokens
	Activity ActivityLog
	Keys     FormKeys
	Recorded RecordedActivity // what a recorded create sent, for "Try again"
	Tenants  TenantUploads    // what the desk remembers of the tenant's Graph
	Holds    WriteHolds       // the waits Graph asked of the tenant's writes
	Now      func() time.Time
}

// WriteHolds are the waits Graph asked of a tenant's writes (its Retry-After), kept for every
// desk (bulk.Budget).
type WriteHolds = jobs.WriteHolds

// heldUntil is when the wait Graph asked of every desk for the tenant's writes ends, if one is
// running now; the answer's Retry-After then says so too.
func heldUntil(c echo.Context, holds WriteHolds, now time.Time) (time.Time, bool) {
	if holds == nil {
		return time.Time{}, false
	}
	until, err := holds.HeldUntil(c.Request().Context(), web.CurrentUser(c).TenantID, now)
	if err != nil || !until.After(now) {
		return time.Time{}, false // a hold the database cannot tell of is Graph's to answer with its own 429
	}
	c.Response().Header().Set("Retry-After", strconv.Itoa(int(until.Sub(now).Seconds())+1))
	return until, true
}

// writesHeld is why a write of the tenant's must not be sent now (Graph asked every desk to wait),
// or nil.
func (h *Uploads) writesHeld(c echo.Context) *views.Failure {
	now := h.Now()
	until, held := heldUntil(c, h.Holds, now)
	if !held {
		return nil
	}
	return &views.Failure{Explanation: explain.WritesHeld(until, now)}
}

// holdOnThrottling makes the request's Graph calls hold the tenant's writes for every desk as
// soon as Graph answers one with 429 and a Retry-After, before the client waits it out itself:
// nothing else of the tenant's is written before it passes.
func holdOnThrottling(c echo.Context, holds interface {
	Hold(ctx context.Context, tenantID string, until time.Time) error
}, now func() time.Time) {
	if holds == nil {
		return
	}
	r := c.Request()
	tenant := web.CurrentUser(c).TenantID
	c.SetRequest(r.WithContext(graphclient.OnThrottled(r.Context(), func(retryAfter time.Duration) {
		_ = holds.Hold(context.WithoutCancel(r.Context()), tenant, now().Add(retryAfter))
	})))
}

const formKeyTTL = 2 * time.Hour

// New shows the create form, prefilled with the current time (or what the user typed before a
// sign-in interrupted them).
func (h *Uploads) New(c echo.Context) error {
	form := uploadForm{CreatedDateTimeUtc: defaultCreatedDateTime(h.Now()), Status: "pending"}
	if pending, ok := web.TakePendingForm(c); ok {
		form = uploadFormFrom(pending.Get)
	} else if sent := h.sentBefore(c, c.QueryParam("again")); sent != nil {
		form = uploadForm{CreatedDateTimeUtc: sent.CreatedDateTimeUtc, Status: sent.Status, ID: sent.ID}
	} else if web.Access(c).ReadOnly {
		form = uploadForm{} // nothing typed to show; the page says why there is no form
	}
	return h.renderForm(c, http.StatusOK, form, nil, nil)
}

// sentBefore is what a recorded create of the person's tenant sent, for "Try again": the form
// shown again with those values and a fresh one-time key.
func (h *Uploads) sentBefore(c echo.Context, activityID string) *graphclient.NewUpload {
	if activityID == "" || !guid.Valid(activityID) || h.Recorded == nil {
		return nil
	}
	a, err := h.Recorded.GetActivity(c.Request().Context(), web.CurrentUser(c).TenantID, activityID)
	if err != nil || a.Action != "create-upload" {
		return nil
	}
	d, err := decodeDetail(a)
	if err != nil {
		return nil
	}
	return sentOf(d)
}

// sentOf is what a create sent: kept with the record, or read from the request of a record kept
// before the desk kept it.
func sentOf(d activityDetail) *graphclient.NewUpload {
	if d.Sent != nil {
		return d.Sent
	}
	if d.Exchange == nil || len(d.Exchange.Attempts) == 0 {
		return nil
	}
	var body struct {
		ID                 string `json:"id"`
		CreatedDateTimeUtc string `json:"createdDateTimeUtc"`
		Status             string `json:"status"`
	}
	if json.Unmarshal(d.Exchange.Attempts[0].RequestBody, &body) != nil || body.CreatedDateTimeUtc == "" {
		return nil
	}
	return &graphclient.NewUpload{ID: body.ID, CreatedDateTimeUtc: body.CreatedDateTimeUtc, Status: body.Status}
}

// uploadsMissing is what the create form says before anything is typed: that the tenant's Graph
// does not offer uploads, as last seen (asked again once a day has passed).
func (h *Uploads) uploadsMissing(c echo.Context) *views.UploadsMissing {
	now := h.Now()
	known := knownUploads(c, h.Tenants, now)
	if known.Missing == nil || known.Fresh {
		return known.Missing
	}
	m, err := checkUploads(c, h.Graph, h.Tokens, h.Tenants, known, now)
	if err != nil {
		return known.Missing
	}
	return m
}

// renderForm shows the form with a fresh one-time key (signed, so showing a form writes nothing).
func (h *Uploads) renderForm(c echo.Context, status int, form uploadForm, errs map[string]string, failure *views.Failure) error {
	v := form.view(web.NewFormKey(c, h.Now()), errs)
	v.Failure = failure
	v.UploadsMissing = h.uploadsMissing(c)
	v.Access = accessOf(c)
	return web.Render(c, status, views.UploadFormPage(web.PageFor(c, "Create upload", "create"), v))
}

// renderFormNotSaved shows the form with Graph's refusal, noting when the attempt is not in the
// history yet; missing is what the refusal taught of the tenant's uploads.
func (h *Uploads) renderFormNotSaved(c echo.Context, status int, form uploadForm, failure *views.Failure, notSaved bool, missing *views.UploadsMissing) error {
	v := form.view(web.NewFormKey(c, h.Now()), nil)
	if failure.Explanation.Action == explain.ActionTryLater {
		failure.Retry = views.UploadFormID // the form below, as typed, with a fresh one-time key
	}
	v.Failure, v.NotSaved = failure, notSaved
	v.UploadsMissing = missing
	v.Access = accessOf(c)
	return web.Render(c, status, views.UploadFormPage(web.PageFor(c, "Create upload", "create"), v))
}

// Create validates the form, sends it to Graph once, records the outcome and shows it.
func (h *Uploads) Create(c echo.Context) error {
	form := bindUploadForm(c)
	user := web.CurrentUser(c)
	ctx := c.Request().Context()
	if web.Access(c).ReadOnly {
		// Creating needs the ReadWrite permission: refused before Graph hears of it, with what
		// was typed on the page.
		v := form.view("", nil)
		v.Access, v.NotSent = accessOf(c), true
		return web.Render(c, http.StatusForbidden, views.UploadFormPage(web.PageFor(c, "Create upload", "create"), v))
	}
	if errs := form.validate(); len(errs) > 0 {
		return h.renderForm(c, http.StatusUnprocessableEntity, form, errs, nil)
	}
	if !web.ValidFormKey(c, form.FormKey, h.Now(), formKeyTTL) {
		return h.repeatedSubmit(c, form, "", "")
	}
	if held := h.writesHeld(c); held != nil {
		return h.renderFormNotSaved(c, http.StatusTooManyRequests, form, held, false, nil)
	}
	holdOnThrottling(c, h.Holds, h.Now)
	claimed, state, ref, err := h.Keys.ClaimFormKey(ctx, form.FormKey, web.Session(c).ID, formKeyTTL)
	if err != nil {
		return fmt.Errorf("claim form key: %w", err)
	}
	if !claimed {
		return h.repeatedSubmit(c, form, state, ref)
	}

	sentAt := h.Now()
	upload, exchange, err := h.create(c, form)
	if errors.Is(err, web.ErrSessionEnded) {
		// Nothing was sent: the same form may be submitted again after signing in.
		_ = h.Keys.ReleaseFormKey(ctx, form.FormKey)
		return err
	}
	now := h.Now()
	rememberRefusal(c, now, err)
	missing := learnUploads(c, h.Tenants, knownUploads(c, h.Tenants, now), now, exchange, err)
	act := newActivity(user, "create-upload", exchange, err)
	act.Target = form.newUpload().ID // as sent: lower case, without braces
	switch rc := reconciliationOf(exchange); {
	case upload != nil && err == nil:
		act.Target = upload.ID
		act.Summary = fmt.Sprintf("Created upload %s with status %s.", upload.ID, statusWords(upload.Status))
	case rc != nil:
		// Graph's answer was lost: what the look found is judged against what was created before.
		judgeLook(ctx, h.Recorded, user.TenantID, rc, sentAt, now)
		if upload = rc.Found; upload != nil {
			act.Target, act.Outcome = upload.ID, outcomeSuccess
			act.Summary = fmt.Sprintf("Created upload %s with status %s (found when the desk looked, Graph's answer having been lost).", upload.ID, statusWords(upload.Status))
		}
	}
	detail := resultDetail(upload, exchange, err, now)
	sent := form.newUpload()
	detail.Sent = &sent
	act.Detail = encodeDetail(detail)
	saved := h.Activity.Record(ctx, act, form.FormKey)
	if err != nil && act.Outcome == outcomeFailure {
		return h.renderFormNotSaved(c, failureStatus(err), form, failureOf(exchange, err), !saved, missing)
	}
	if !saved {
		return renderResult(c, act, detail, true)
	}
	return c.Redirect(http.StatusSeeOther, activityURL(act.ID))
}

// reconciliationOf is the look made for a create whose answer was lost, or nil.
func reconciliationOf(ex *graphclient.Exchange) *graphclient.Reconciliation {
	if ex == nil {
		return nil
	}
	return ex.Reconciliation
}

func (h *Uploads) create(c echo.Context, form uploadForm) (*graphclient.Upload, *graphclient.Exchange, error) {
	return callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.Upload, *graphclient.Exchange, error) {
		return h.Graph.CreateUpload(c.Request().Context(), ts, form.newUpload())
	})
}

// repeatedSubmit answers a second POST of the same form: nothing goes to Graph.
func (h *Uploads) repeatedSubmit(c echo.Context, form uploadForm, state store.FormKeyState, ref string) error {
	switch {
	case state == store.FormKeyDone && guid.Valid(ref):
		return c.Redirect(http.StatusSeeOther, activityURL(ref))
	case state == store.FormKeyInProgress:
		return &views.ErrorPage{Status: http.StatusConflict, Title: "Still sending your first submission",
			Message:  "This form was already submitted and Microsoft Graph has not answered yet. It was not sent a second time.",
			NextStep: "Wait a moment, then open the home page to see the result.", ActionURL: "/", ActionText: "Go to the home page"}
	}
	return h.renderForm(c, http.StatusConflict, form, nil, &views.Failure{Explanation: explain.Explain(explain.Failure{Cause: explain.FormUsed})})
}

// lastExchange is the last of a call's exchanges (a batch's last POST), or nil.
func lastExchange(exs []*graphclient.Exchange) *graphclient.Exchange {
	if len(exs) == 0 {
		return nil
	}
	return exs[len(exs)-1]
}

const (
	outcomeSuccess = explain.OutcomeSuccess
	outcomeFailure = explain.OutcomeFailure
	outcomeUnknown = explain.OutcomeUnknown
)

// statusWords is an upload status as a recorded summary says it: “Pending”.
func statusWords(status string) string {
	return explain.QuotedOrNone(explain.UploadStatus(status).Label)
}

func newActivity(u *web.SessionUser, action string, ex *graphclient.Exchange, err error) *store.Activity {
	a := &store.Activity{
		TenantID: u.TenantID, ObjectID: u.ObjectID, ActorName: u.Name, ActorUPN: u.UPN,
		Action: action, Outcome: outcomeSuccess,
	}
	support := graphclient.SupportFor(ex, err)
	a.StatusCode, a.RequestID, a.ClientRequestID = support.Status, support.RequestID, support.ClientRequestID
	if err != nil {
		a.Outcome = outcomeFailure
		if ge, ok := graphclient.AsError(err); ok && ge.Kind == graphclient.KindOutcomeUnknown {
			a.Outcome = outcomeUnknown
		}
		a.Summary = explain.Title(failureFacts(err, time.Time{}))
	}
	return a
}

// activityDetail is what a result page needs, kept with the activity (the exchange is already
// redacted): facts, put into words when the page is shown. (The failure's key is "explanation"
// because the earlier format kept it in words there; explain reads both.)
type activityDetail struct {
	Upload   *graphclient.Upload        `json:"upload,omitempty"`
	Exchange *graphclient.Exchange      `json:"exchange,omitempty"`
	Failure  *explain.Failure           `json:"explanation,omitempty"`
	Support  graphclient.SupportDetails `json:"support"`
	Device   *deviceIntent              `json:"device,omitempty"` // what a device change asked, once accepted
	// A create's values as sent, so its outcome can be looked up again and its form shown again.
	Sent      *graphclient.NewUpload `json:"sent,omitempty"`
	CheckedAt time.Time              `json:"checkedAt,omitzero"` // when the desk last looked again
	// Said is what a device change whose answer was lost would say once found done.
	Said string `json:"said,omitempty"`
	// Asked is the status a change of an upload's status asked for, so it can be sent again.
	Asked string `json:"asked,omitempty"`
}

func resultDetail(u *graphclient.Upload, ex *graphclient.Exchange, err error, at time.Time) activityDetail {
	d := activityDetail{Upload: u, Exchange: ex, Support: graphclient.SupportFor(ex, err)}
	if err != nil {
		f := failureFacts(err, at)
		d.Failure = &f
	}
	return d
}

// decodeDetail reads a record's detail; a record without one has the zero detail.
func decodeDetail(a *store.Activity) (activityDetail, error) {
	var d activityDetail
	if len(a.Detail) == 0 {
		return d, nil
	}
	err := json.Unmarshal(a.Detail, &d)
	return d, err
}

func encodeDetail(d activityDetail) []byte {
	b, err := json.Marshal(d)
	if err != nil {
		return nil
	}
	return b
}

// failureOf is a failed call as its page shows it: explained, with the support details.
func failureOf(ex *graphclient.Exchange, err error) *views.Failure {
	return &views.Failure{Explanation: explain.Explain(failureFacts(err, time.Now())), Support: graphclient.SupportFor(ex, err), Exchange: ex}
}

// failureFacts is explain.Of plus the failures of the person's own session, which happen before
// Graph is called.
func failureFacts(err error, at time.Time) explain.Failure {
	switch {
	case errors.Is(err, web.ErrSessionEnded):
		return explain.Failure{Cause: explain.SessionEnded, At: at}
	case errors.Is(err, web.ErrTokenUnavailable):
		return explain.Failure{Cause: explain.TokenUnavailable, At: at}
	}
	return explain.Of(err, at)
}

// failureStatus is the status of a page that shows a Graph failure: 422 when the desk's own
// checks refused what was asked (nothing was sent), Graph's own 4xx, 502 for upstream trouble,
// 504 when Graph did not answer in time.
func failureStatus(err error) int {
	ge, ok := graphclient.AsError(err)
	switch {
	case !ok:
		return http.StatusBadGateway
	case ge.Kind == graphclient.KindInvalidInput:
		return http.StatusUnprocessableEntity
	case ge.Kind == graphclient.KindTimeout:
		return http.StatusGatewayTimeout
	case ge.StatusCode >= 400 && ge.StatusCode < 500:
		return ge.StatusCode
	}
	return http.StatusBadGateway
}

func activityURL(id string) string { return "/activity/" + id }
