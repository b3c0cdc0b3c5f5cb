package handlers

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/views"
	"autopilotdesk/web"
)

// TenantUploads remembers, per tenant and for every desk sharing the state database, that the
// tenant's Microsoft Graph answered that it does not know the uploads collection.
type TenantUploads interface {
	RememberUploadsMissing(ctx context.Context, tenantID string, at time.Time) error
	ForgetUploadsMissing(ctx context.Context, tenantID string) error
	UploadsMissingSince(ctx context.Context, tenantID string) (time.Time, bool, error)
}

// uploadsRecheck is how long the desk believes a tenant's Graph has no uploads before asking
// again; the pages offer to ask at once.
const uploadsRecheck = 24 * time.Hour

// uploadsOffer is what the desk knows about whether the tenant's Graph offers uploads.
type uploadsOffer struct {
	Missing *views.UploadsMissing // nil: offered, or not known otherwise
	Fresh   bool                  // seen within uploadsRecheck: no need to ask Graph again yet
}

// knownUploads reads what the desk remembers for the signed-in person's tenant. A database that
// cannot answer just now leaves it unknown: the page asks Graph as it would have.
func knownUploads(c echo.Context, facts TenantUploads, now time.Time) uploadsOffer {
	if facts == nil {
		return uploadsOffer{}
	}
	seen, ok, err := facts.UploadsMissingSince(c.Request().Context(), web.CurrentUser(c).TenantID)
	if err != nil || !ok {
		return uploadsOffer{}
	}
	return uploadsOffer{Missing: &views.UploadsMissing{Since: seen}, Fresh: now.Sub(seen) < uploadsRecheck}
}

// learnUploads keeps what Graph's answer to an uploads call says about the tenant: the segment
// missing is remembered (or its time moved on); any answer of the collection's own forgets it.
// It returns what the page should show.
func learnUploads(c echo.Context, facts TenantUploads, known uploadsOffer, now time.Time, err error) *views.UploadsMissing {
	if facts == nil {
		return nil
	}
	ctx := c.Request().Context()
	tenant := web.CurrentUser(c).TenantID
	ge, isGraph := graphclient.AsError(err)
	switch {
	case explain.UploadsMissing(ge):
		_ = facts.RememberUploadsMissing(ctx, tenant, now)
		return &views.UploadsMissing{Since: now}
	case err == nil || isGraph && ge.StatusCode != 0 && ge.Kind != graphclient.KindSegmentNotFound && ge.StatusCode < 500 && ge.StatusCode != 429:
		// The collection answered (with its items, or a refusal of its own).
		if known.Missing != nil {
			_ = facts.ForgetUploadsMissing(ctx, tenant)
		}
		return nil
	}
	return known.Missing // Graph could not say just now
}

// checkUploads asks Graph once whether the tenant offers uploads (the newest one, if any) and
// keeps what it answered.
func checkUploads(c echo.Context, graph UploadLister, tokens Tokens, facts TenantUploads, known uploadsOffer, now time.Time) (*views.UploadsMissing, error) {
	_, _, err := callGraph(c, tokens, func(ts oauth2.TokenSource) (*graphclient.UploadPage, *graphclient.Exchange, error) {
		return graph.ListUploads(c.Request().Context(), ts, graphclient.ListOptions{Top: 1})
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return nil, err
	}
	return learnUploads(c, facts, known, now, err), nil
}

// uploadsCheckBack are the pages that offer to ask Graph again at once.
var uploadsCheckBack = map[string]bool{"/": true, "/uploads": true, "/uploads/new": true}

// CheckOffered is POST /uploads/offered: ask Graph now whether the tenant offers uploads, then
// show the page the person came from.
func (h *Uploads) CheckOffered(c echo.Context) error {
	back := c.FormValue("back")
	if !uploadsCheckBack[back] {
		back = "/uploads/new"
	}
	now := h.Now()
	if _, err := checkUploads(c, h.Graph, h.Tokens, h.Tenants, knownUploads(c, h.Tenants, now), now); err != nil {
		return err
	}
	return c.Redirect(http.StatusSeeOther, back)
}
