package handlers

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/views"
	"autopilotdesk/web"
)

// callGraph runs one Graph call with the user's token. Graph refuses with 401 before running
// anything, so after one token renewal the call is sent once more (never a loop); both attempts
// stay in the exchange.
func callGraph[T any](c echo.Context, tokens Tokens, call func(oauth2.TokenSource) (T, *graphclient.Exchange, error)) (T, *graphclient.Exchange, error) {
	ts, err := tokens.TokenSource(c)
	if err != nil {
		var zero T
		return zero, nil, err
	}
	defer web.AwaitingUpstream(c)()
	return graphclient.WithRenewal(ts, func(oauth2.TokenSource) (oauth2.TokenSource, error) { return tokens.RenewToken(c) }, call)
}

// List is GET /uploads: a status filter, newest first, paged through Graph's nextLink.
func (h *Uploads) List(c echo.Context) error {
	status := c.QueryParam("status")
	if status != "" && !graphclient.IsUploadStatus(status) {
		return &views.ErrorPage{Status: http.StatusBadRequest, Title: "Choose a status from the list",
			Message:   "“" + clipTo(status, 40) + "” is not an upload status. The statuses are noUpload, pending, complete and error.",
			ActionURL: "/uploads", ActionText: "Show every upload"}
	}
	opts := graphclient.ListOptions{Status: status, NextLink: c.QueryParam("next")}
	page, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.UploadPage, *graphclient.Exchange, error) {
		return h.Graph.ListUploads(c.Request().Context(), ts, opts)
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	view := views.UploadList{Status: status, Access: accessOf(c)}
	if opts.NextLink != "" {
		// A later page: the way back to the first, also when this page's link no longer works.
		view.FirstURL = "/uploads"
		if status != "" {
			view.FirstURL += "?" + url.Values{"status": {status}}.Encode()
		}
	}
	now := h.Now()
	if view.UploadsMissing = learnUploads(c, h.Tenants, knownUploads(c, h.Tenants, now), now, ex, err); view.UploadsMissing != nil {
		// The notice says it, with the way on.
	} else if err != nil {
		view.Failure = failureOf(ex, err)
		view.Failure.Reload = c.Request().URL.RequestURI()
	} else {
		view.Uploads = page.Uploads
		if page.NextLink != "" {
			q := url.Values{"next": {page.NextLink}}
			if status != "" {
				q.Set("status", status)
			}
			view.NextURL = "/uploads?" + q.Encode()
		}
	}
	return web.Render(c, http.StatusOK, views.UploadListPage(web.PageFor(c, views.ListTitle("Uploads", view.FirstURL != ""), "uploads"), view))
}

// Show is GET /uploads/:id.
func (h *Uploads) Show(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("An upload id is a GUID such as 8d639524-9524-8d63-2495-638d2495638d.")
	}
	if canonical, _ := guid.Normalize(id); canonical != id {
		return c.Redirect(http.StatusMovedPermanently, "/uploads/"+canonical) // Graph's ids are lower case
	}
	u, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.Upload, *graphclient.Exchange, error) {
		return h.Graph.GetUpload(c.Request().Context(), ts, id)
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	view := views.UploadDetail{Upload: u, Exchange: ex, Support: graphclient.SupportFor(ex, err), Access: accessOf(c)}
	if pending, ok := web.TakePendingForm(c); ok && graphclient.IsUploadStatus(pending.Get("status")) {
		view.ChosenStatus = pending.Get("status") // chosen before a sign-in interrupted the change
	}
	status := http.StatusOK
	if err != nil {
		view.Failure = failureOf(ex, err)
		view.Failure.Reload = "/uploads/" + id
		status = failureStatus(err)
	} else {
		devices, dex, derr := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.UploadDevices, *graphclient.Exchange, error) {
			return h.Graph.ListUploadDeviceIdentities(c.Request().Context(), ts, id)
		})
		if errors.Is(derr, web.ErrSessionEnded) {
			return derr
		}
		if derr != nil {
			view.DevicesFailure = failureOf(dex, derr)
			view.DevicesFailure.Reload = "/uploads/" + id
		}
		if devices == nil {
			devices = &graphclient.UploadDevices{}
		}
		view.MoreDevices = devices.More
		for _, d := range devices.Devices {
			view.Devices = append(view.Devices, views.ImportedDevice{Serial: d.SerialNumber, Status: d.State.DeviceImportStatus,
				RegistrationID: d.State.DeviceRegistrationID, ErrorCode: d.State.DeviceErrorCode, ErrorName: d.State.DeviceErrorName})
		}
	}
	return web.Render(c, status, views.UploadDetailPage(web.PageFor(c, "Upload "+id, "uploads"), view))
}

// SetStatus is POST /uploads/:id/status: PATCH, recorded, then the result page.
func (h *Uploads) SetStatus(c echo.Context) error {
	id, status := c.Param("id"), c.FormValue("status")
	if !guid.Valid(id) {
		return notFound("An upload id is a GUID such as 8d639524-9524-8d63-2495-638d2495638d.")
	}
	if !graphclient.IsUploadStatus(status) {
		return &views.ErrorPage{Status: http.StatusUnprocessableEntity, Title: "Choose a status",
			Message: "Choose one of the listed statuses: noUpload, pending, complete or error.", ActionURL: "/uploads/" + id, ActionText: "Back to the upload"}
	}
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/uploads/"+id, "Back to the upload")
	}
	if held := h.writesHeld(c); held != nil {
		return heldPage(held, id)
	}
	holdOnThrottling(c, h.Holds, h.Now)
	u, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.Upload, *graphclient.Exchange, error) {
		return h.Graph.UpdateUploadStatus(c.Request().Context(), ts, id, status)
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	rememberRefusal(c, h.Now(), err)
	act := newActivity(web.CurrentUser(c), "update-upload", ex, err)
	act.Target = id
	if err == nil {
		act.Summary = fmt.Sprintf("Changed the status of upload %s to %s.", id, statusWords(status))
	}
	detail := resultDetail(u, ex, err, time.Now())
	detail.Asked = status
	if act.Outcome == outcomeUnknown {
		// Graph's answer was lost: the upload as it is now says whether the change was made.
		switch now, _ := h.read(c, id); {
		case now != nil && now.Status == status:
			act.Outcome, detail.Upload = outcomeSuccess, now
			act.Summary = fmt.Sprintf("Changed the status of upload %s to %s (found when the desk looked, Graph's answer having been lost).", id, statusWords(status))
		case now != nil:
			act.Outcome, detail.Upload = outcomeFailure, now
			act.Summary = fmt.Sprintf("The status of upload %s was not changed: the desk looked, Graph's answer having been lost, and it is still %s.", id, statusWords(now.Status))
		}
	}
	return recordAndShow(c, h.Activity, act, detail)
}

// heldPage answers a change of an upload not sent because Graph asked every desk to wait.
func heldPage(held *views.Failure, id string) error {
	ex := held.Explanation
	return &views.ErrorPage{Status: http.StatusTooManyRequests, Title: ex.Title, Message: ex.What, NextStep: ex.NextStep,
		ActionURL: "/uploads/" + id, ActionText: "Back to the upload"}
}

// read reads an upload (after a change whose answer was lost, or to show what a delete would
// remove): what it is now, or whether it is gone; a read that failed proves nothing (neither is
// set).
func (h *Uploads) read(c echo.Context, id string) (now *graphclient.Upload, gone bool) {
	u, _, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.Upload, *graphclient.Exchange, error) {
		return h.Graph.GetUpload(c.Request().Context(), ts, id)
	})
	if ge, ok := graphclient.AsError(err); ok && ge.Kind == graphclient.KindNotFound {
		return nil, true
	}
	if err != nil {
		return nil, false
	}
	return u, false
}

// ConfirmDelete is GET /uploads/:id/delete: nothing is deleted without a second, deliberate step.
func (h *Uploads) ConfirmDelete(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("An upload id is a GUID such as 8d639524-9524-8d63-2495-638d2495638d.")
	}
	if canonical, _ := guid.Normalize(id); canonical != id {
		return c.Redirect(http.StatusMovedPermanently, "/uploads/"+canonical+"/delete")
	}
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/uploads/"+id, "Back to the upload")
	}
	// What is deleted, as Graph has it: a read that fails leaves the page to the id alone.
	u, gone := h.read(c, id)
	if gone {
		return notFound("Your tenant has no upload with this id: it may have been deleted already.")
	}
	return web.Render(c, http.StatusOK, views.ConfirmDeletePage(web.PageFor(c, "Delete upload "+id, "uploads"), id, u))
}

// Delete is POST /uploads/:id/delete.
func (h *Uploads) Delete(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("An upload id is a GUID such as 8d639524-9524-8d63-2495-638d2495638d.")
	}
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, "/uploads/"+id, "Back to the upload")
	}
	if held := h.writesHeld(c); held != nil {
		return heldPage(held, id)
	}
	holdOnThrottling(c, h.Holds, h.Now)
	_, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (struct{}, *graphclient.Exchange, error) {
		ex, err := h.Graph.DeleteUpload(c.Request().Context(), ts, id)
		return struct{}{}, ex, err
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	rememberRefusal(c, h.Now(), err)
	act := newActivity(web.CurrentUser(c), "delete-upload", ex, err)
	act.Target = id
	switch {
	case err == nil && ex != nil && ex.Outcome == graphclient.OutcomeDeletedEarlier:
		act.Summary = fmt.Sprintf("Deleted upload %s (Graph's answer was lost; sent again, Graph no longer had it).", id)
	case err == nil:
		act.Summary = fmt.Sprintf("Deleted upload %s.", id)
	case act.Outcome == outcomeUnknown:
		switch now, gone := h.read(c, id); {
		case gone:
			act.Outcome = outcomeSuccess
			act.Summary = fmt.Sprintf("Deleted upload %s (found gone when the desk looked, Graph's answer having been lost).", id)
		case now != nil:
			act.Outcome = outcomeFailure
			act.Summary = fmt.Sprintf("Upload %s was not deleted: the desk looked, Graph's answer having been lost, and it is still there.", id)
		}
	}
	return recordAndShow(c, h.Activity, act, resultDetail(nil, ex, err, time.Now()))
}
