package handlers

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// TenantUploads remembers, per tenant and for every desk sharing the state database, that the
// tenant's Microsoft Graph answered that it does not know the uploads collection.
type TenantUploads interface {
	RememberUploadsMissing(ctx context.Context, tenantID string, m store.UploadsMissing) error
	ForgetUploadsMissing(ctx context.Context, tenantID string) error
	UploadsMissingSince(ctx context.Context, tenantID string) (store.UploadsMissing, bool, error)
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
	missing := &views.UploadsMissing{Since: seen.Seen}
	_ = json.Unmarshal([]byte(seen.Support), &missing.Support) // details kept before they were: none
	return uploadsOffer{Missing: missing, Fresh: now.Sub(seen.Seen) < uploadsRecheck}
}

// learnUploads keeps what Graph's answer to an uploads call says about the tenant: the segment
// missing is remembered (or its time moved on); any answer of the collection's own forgets it.
// It returns what the page should show, with the support details of the answer that said so.
func learnUploads(c echo.Context, facts TenantUploads, known uploadsOffer, now time.Time, ex *graphclient.Exchange, err error) *views.UploadsMissing {
	if facts == nil {
		return nil
	}
	ctx := c.Request().Context()
	tenant := web.CurrentUser(c).TenantID
	ge, isGraph := graphclient.AsError(err)
	switch {
	case explain.UploadsMissing(ge):
		missing := &views.UploadsMissing{Since: now, Support: graphclient.SupportFor(ex, err)}
		support, _ := json.Marshal(missing.Support)
		_ = facts.RememberUploadsMissing(ctx, tenant, store.UploadsMissing{Seen: now, Support: string(support)})
		return missing
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
	_, ex, err := callGraph(c, tokens, func(ts oauth2.TokenSource) (*graphclient.UploadPage, *graphclient.Exchange, error) {
		return graph.ListUploads(c.Request().Context(), ts, graphclient.ListOptions{Top: 1})
	})
	if errors.Is(err, web.ErrSessionEnded) {
		return nil, err
	}
	return learnUploads(c, facts, known, now, ex, err), nil
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
