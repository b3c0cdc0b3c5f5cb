package handlers

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/graphclient/unseen"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/registration"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// AutopilotAPI is the part of Microsoft Graph the registered-device pages call.
type AutopilotAPI interface {
	ListAutopilotDevices(ctx context.Context, ts oauth2.TokenSource, q graphclient.AutopilotDeviceQuery) (*graphclient.AutopilotDevicePage, *graphclient.Exchange, error)
	GetAutopilotDevice(ctx context.Context, ts oauth2.TokenSource, id string) (*graphclient.AutopilotDevice, *graphclient.Exchange, error)
	UpdateAutopilotDeviceProperties(ctx context.Context, ts oauth2.TokenSource, id string, change graphclient.AutopilotDeviceChange) (*graphclient.Exchange, error)
	AssignUserToAutopilotDevice(ctx context.Context, ts oauth2.TokenSource, id, userPrincipalName, addressableUserName string) (*graphclient.Exchange, error)
	UnassignUserFromAutopilotDevice(ctx context.Context, ts oauth2.TokenSource, id string) (*graphclient.Exchange, error)
	DeleteAutopilotDevice(ctx context.Context, ts oauth2.TokenSource, id string) (*graphclient.Exchange, error)
	ReadAutopilotDevices(ctx context.Context, ts oauth2.TokenSource, ids []string) ([]graphclient.AutopilotDeviceRead, []*graphclient.Exchange, error)
	GetProfileAssignment(ctx context.Context, ts oauth2.TokenSource, id string) (*graphclient.ProfileAssignment, *graphclient.Exchange, error)
	GetAutopilotSettings(ctx context.Context, ts oauth2.TokenSource) (*graphclient.AutopilotSettings, *graphclient.Exchange, error)
}

// DeviceHistory reads what the desk did to a device: by its serial number, or by its id once
// Graph no longer knows it.
type DeviceHistory interface {
	HistoryOfSerial(ctx context.Context, tenantID, serial string, limit int) (*store.SerialHistory, error)
	ListActivity(ctx context.Context, f store.ActivityFilter) ([]store.Activity, string, error)
	// Registrations names the registrations from the device an approval imported with a job.
	Registrations(ctx context.Context, f store.SubmissionFilter) ([]store.RegistrationSubmission, error)
}

// WriteBudget is the tenant's budget of Intune writes, kept together by every desk that shares
// the state database (bulk.Budget).
type WriteBudget interface {
	Take(ctx context.Context, tenantID string, want int) (bulk.Slots, time.Time, error)
	Answered(ctx context.Context, s bulk.Slots, now time.Time) error
	Hold(ctx context.Context, tenantID string, until time.Time) error
	Describe() string
}

// Registered shows the tenant's registered Autopilot devices and changes them one at a time:
// group tag and device name, the assigned user, and the registration itself. Every change is one
// POST with a one-time key, paced to Intune's write budget, recorded, and shown with Graph's
// exchange on the device's page.
type Registered struct {
	Graph    AutopilotAPI
	Tokens   Tokens
	Activity ActivityLog      // records the changes
	Recorded RecordedActivity // reads a change's record back for the device's page
	Keys     FormKeys
	History  DeviceHistory
	Budget   WriteBudget
	Records  ActivityRewriter // settles a change whose answer was lost, once the device shows it
	Pages    *ListPages       // the list's pages each sign-in read a moment ago
	Sync     *SyncSettings    // the tenant's Autopilot sync read a moment ago
	Now      func() time.Time
	Logger   *slog.Logger
}

// maxListPages bounds how many of Graph's pages one list shows; a search narrows it further.
const maxListPages = 20

// maxListDevices is the most devices one list shows: maxListPages of Graph's pages of registered
// devices, at most 100 devices each.
const maxListDevices = maxListPages * 100

// listQuery is the list's search (sent to Graph) and its filters (applied on the desk's side to
// the pages loaded).
type listQuery struct {
	Serial        string
	Pages         int
	Tag           string
	NoTag, NoUser bool
	State         string
}

func readListQuery(c echo.Context) listQuery { return listQueryOf(c.QueryParams()) }

// listQueryOf reads the list's search and filters from a URL's query.
func listQueryOf(v url.Values) listQuery {
	q := listQuery{Serial: strings.TrimSpace(v.Get("serial")), Tag: strings.TrimSpace(v.Get("tag")),
		NoTag: v.Get("notag") == "1", NoUser: v.Get("nouser") == "1", State: v.Get("state"), Pages: 1}
	if n, err := strconv.Atoi(v.Get("pages")); err == nil {
		q.Pages = min(max(n, 1), maxListPages)
	}
	if !graphclient.EnrollmentState(q.State).Known() {
		q.State = ""
	}
	if len(q.Tag) > 256 {
		q.Tag = q.Tag[:256]
	}
	return q
}

// values is the query as a URL's, with pages loaded.
func (q listQuery) values(pages int) url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"serial": q.Serial, "tag": q.Tag, "state": q.State} {
		if s != "" {
			v.Set(k, s)
		}
	}
	if q.NoTag {
		v.Set("notag", "1")
	}
	if q.NoUser {
		v.Set("nouser", "1")
	}
	if pages > 1 {
		v.Set("pages", strconv.Itoa(pages))
	}
	return v
}

func (q listQuery) keeps(d graphclient.AutopilotDevice) bool {
	switch {
	case q.Tag != "" && !strings.EqualFold(d.GroupTag, q.Tag):
		return false
	case q.NoTag && d.GroupTag != "":
		return false
	case q.NoUser && d.UserPrincipalName != "":
		return false
	case q.State != "" && string(d.EnrollmentState) != q.State:
		return false
	}
	return true
}

func (q listQuery) filtered() bool { return q.Tag != "" || q.NoTag || q.NoUser || q.State != "" }

// loaded is what one look at the list read from Graph.
type loadedList struct {
	devices []graphclient.AutopilotDevice
	pages   int
	more    bool // Graph has further pages
}

// load reads the first q.Pages pages of the list (or of the serial search): the pages this
// sign-in read a moment ago are taken as they were, and only the pages after them are read from
// Graph, from the nextLink Graph gave with the last one. The first page alone is always read.
func (h *Registered) load(c echo.Context, q listQuery) (*loadedList, *graphclient.Exchange, error) {
	ctx := c.Request().Context()
	signIn, tenantID, now := web.Session(c).ID, web.CurrentUser(c).TenantID, h.Now()
	var pages []readPage
	readAt := now
	if q.Pages > 1 {
		pages, readAt = h.Pages.take(signIn, tenantID, q.Serial, now)
		pages = pages[:min(len(pages), q.Pages)]
	}
	kept := len(pages)
	gq := graphclient.AutopilotDeviceQuery{SerialContains: q.Serial}
	if kept > 0 {
		gq = graphclient.AutopilotDeviceQuery{NextLink: pages[kept-1].NextLink}
	}
	for len(pages) < q.Pages && (len(pages) == 0 || pages[len(pages)-1].NextLink != "") {
		page, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.AutopilotDevicePage, *graphclient.Exchange, error) {
			return h.Graph.ListAutopilotDevices(ctx, ts, gq)
		})
		if err != nil {
			h.Pages.forget(signIn) // the next look starts again from the first page
			return listOf(pages), cmp.Or(ex, exchangeOf(pages)), err
		}
		pages = append(pages, readPage{AutopilotDevicePage: *page, exchange: ex})
		gq = graphclient.AutopilotDeviceQuery{NextLink: page.NextLink}
	}
	if len(pages) > kept {
		h.Pages.keep(signIn, tenantID, q.Serial, readAt, pages, now)
	}
	return listOf(pages), exchangeOf(pages), nil
}

// listOf is the list the pages read make.
func listOf(pages []readPage) *loadedList {
	out := &loadedList{pages: len(pages)}
	for _, p := range pages {
		out.devices = append(out.devices, p.Devices...)
		out.more = p.NextLink != ""
	}
	return out
}

// exchangeOf is the exchange that read the last of the pages.
func exchangeOf(pages []readPage) *graphclient.Exchange {
	if len(pages) == 0 {
		return nil
	}
	return pages[len(pages)-1].exchange
}

// List is GET /devices: the tenant's registered Autopilot devices, searched by serial number in
// Graph, filtered on the desk's side over the pages loaded.
func (h *Registered) List(c echo.Context) error {
	q := readListQuery(c)
	view := views.RegisteredList{Serial: q.Serial, Tag: q.Tag, NoTag: q.NoTag, NoUser: q.NoUser, State: q.State,
		Access: accessOf(c), Budget: h.Budget.Describe(), Now: h.Now(), MaxBulk: maxBulkDevices}
	// A bulk change chosen before a sign-in interrupted it, or sent back by its review: what was
	// chosen, and what is wrong with it beside its field.
	if pending, ok := web.TakePendingForm(c); ok {
		view.BulkAction, view.BulkTag = pending.Get("action"), pending.Get("groupTag")
		view.Chosen = map[string]bool{}
		for _, id := range pending["device"] {
			view.Chosen[id] = true
		}
		_, view.BulkProblems = readBulkChoice(pending)
	}
	l, ex, err := h.load(c, q)
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	var serr error
	if view.Sync, serr = h.syncOf(c, err == nil); serr != nil {
		return serr
	}
	status := http.StatusOK
	if err != nil {
		view.Failure = failureOf(ex, err)
		view.Failure.Reload = c.Request().URL.RequestURI()
		if failureStatus(err) == http.StatusUnprocessableEntity {
			status = http.StatusUnprocessableEntity // the serial typed cannot be searched: nothing was sent
		}
	}
	// One option per tag whatever its case, as the filter ignores case, and the tag chosen kept
	// even when no device loaded has it.
	tags := map[string]string{}
	if q.Tag != "" {
		tags[strings.ToLower(q.Tag)] = q.Tag
	}
	for _, d := range l.devices {
		if k := strings.ToLower(d.GroupTag); d.GroupTag != "" && (tags[k] == "" || tags[k] == q.Tag) {
			tags[k] = d.GroupTag
		}
		if !q.keeps(d) {
			continue
		}
		row := registeredRow(d)
		row.Exact = q.Serial != "" && graphclient.SameSerial(d.SerialNumber, q.Serial)
		view.Devices = append(view.Devices, row)
	}
	for _, t := range tags {
		view.Tags = append(view.Tags, t)
	}
	slices.SortFunc(view.Tags, func(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) })
	if q.Serial != "" {
		slices.SortStableFunc(view.Devices, func(a, b views.RegisteredRow) int {
			switch {
			case a.Exact && !b.Exact:
				return -1
			case b.Exact && !a.Exact:
				return 1
			}
			return 0
		})
	}
	view.Loaded, view.Pages, view.Filtered = len(l.devices), l.pages, q.filtered()
	if l.more && l.pages < maxListPages {
		view.MoreURL = "/devices?" + q.values(l.pages+1).Encode()
	}
	view.AtLimit = l.more && l.pages >= maxListPages
	view.ListQuery = q.values(l.pages).Encode()
	view.ExportURL = "/devices/export.csv"
	if v := q.values(l.pages).Encode(); v != "" {
		view.ExportURL += "?" + v
	}
	view.Exchange, view.Support = ex, graphclient.SupportFor(ex, err)
	page := web.PageFor(c, "Devices", "devices")
	page.Wide = true
	return web.Render(c, status, views.RegisteredListPage(page, view))
}

func registeredRow(d graphclient.AutopilotDevice) views.RegisteredRow {
	r := views.RegisteredRow{ID: d.ID, Serial: d.SerialNumber, Manufacturer: d.Manufacturer, Model: d.Model, GroupTag: d.GroupTag,
		User: d.UserPrincipalName, DisplayName: d.DisplayName, State: d.EnrollmentState}
	r.LastContacted, r.Contacted = d.LastContacted()
	return r
}

func accessOf(c echo.Context) views.Access {
	a := web.Access(c)
	return views.Access{ReadOnly: a.ReadOnly, ByGrant: a.ByScopes, Reason: readOnlyReason(a)}
}

// readOnlyReason says why a person may only read.
func readOnlyReason(a web.WriteAccess) string {
	switch {
	case !a.ReadOnly:
		return ""
	case a.ByScopes:
		return explain.ReadOnlyByScopes()
	}
	return explain.ReadOnlyRefused(a.RefusedAt, a.GraphSaid)
}

// exportHeader is the export's header: the Intune admin center's column names where it has
// them, the other v1.0 properties after them.
var exportHeader = []string{"Serial number", "Manufacturer", "Model", "Group tag", "Purchase order", "User", "Device name", "Enrollment state",
	"Last contacted", "User friendly name", "Product key", "SKU number", "System family", "Resource name",
	"Autopilot device ID", "Microsoft Entra device ID", "Intune device ID"}

// Export is GET /devices/export.csv: the list as the page shows it (its search, filters and pages
// loaded), every cell formula-safe.
func (h *Registered) Export(c echo.Context) error {
	q := readListQuery(c)
	l, ex, err := h.load(c, q)
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	if err != nil {
		_ = ex
		e := explain.Explain(failureFacts(err, h.Now()))
		return &views.ErrorPage{Status: failureStatus(err), Title: "The list could not be exported: " + e.Title, Message: e.What, NextStep: e.NextStep,
			ActionURL: "/devices?" + q.values(q.Pages).Encode(), ActionText: "Back to the devices"}
	}
	hd := c.Response().Header()
	hd.Set(echo.HeaderContentType, "text/csv; charset=utf-8")
	hd.Set(echo.HeaderContentDisposition, `attachment; filename="autopilot-devices-`+h.Now().UTC().Format("20060102-1504")+`.csv"`)
	c.Response().WriteHeader(http.StatusOK)
	w := spreadsheetCSV(c.Response())
	w.Write(exportHeader)
	for _, d := range l.devices {
		if !q.keeps(d) {
			continue
		}
		contacted := ""
		if t, ok := d.LastContacted(); ok {
			contacted = t.UTC().Format(time.RFC3339)
		}
		record := []string{d.SerialNumber, d.Manufacturer, d.Model, d.GroupTag, d.PurchaseOrderIdentifier, d.UserPrincipalName, d.DisplayName,
			explain.EnrollmentState(d.EnrollmentState).Label, contacted, d.AddressableUserName, d.ProductKey, d.SkuNumber, d.SystemFamily, d.ResourceName,
			d.ID, d.AzureActiveDirectoryDeviceID, d.ManagedDeviceID}
		for i := range record {
			record[i] = csvSafe(record[i])
		}
		w.Write(record)
	}
	w.Flush()
	return w.Error()
}

// deviceIntent is what a change asked of a device, kept with its activity so the device's page can
// tell a change that is accepted but not visible yet from one that shows.
type deviceIntent struct {
	GroupTag    *string `json:"groupTag,omitempty"`
	DisplayName *string `json:"displayName,omitempty"`
	User        *string `json:"user,omitempty"` // "" once unassigned
	Delete      bool    `json:"delete,omitempty"`
}

// Device actions as the history records them.
const (
	actionDeviceProperties = "device-properties"
	actionDeviceAssign     = "device-assign-user"
	actionDeviceUnassign   = "device-unassign-user"
	actionDeviceDelete     = "device-delete"
)

// pendingWindow is how long after a change the device's page compares it with what Graph shows:
// Intune's registrations show changes within minutes.
const pendingWindow = time.Hour

// Show is GET /devices/:id: every v1.0 property, the support details of the call that read it,
// the changes accepted but not visible yet, the result of the change just made (?change=) and
// the device's history in the desk.
func (h *Registered) Show(c echo.Context) error {
	id := c.Param("id")
	if !guid.Valid(id) {
		return notFound("An Autopilot device id is a GUID such as 9a3f6c2e-1b4d-4e5f-8a6b-7c8d9e0f1a2b.")
	}
	return h.show(c, id, nil, nil)
}

// show renders a device's page; result is a change made in this request that the history could
// not take yet, form a change refused before it was sent.
func (h *Registered) show(c echo.Context, id string, result *views.ChangeResult, form *views.DeviceForms) error {
	ctx := c.Request().Context()
	u := web.CurrentUser(c)
	device, ex, err := h.readDevice(c, id)
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	view := views.RegisteredDevice{ID: id, Device: device, Exchange: ex, Support: graphclient.SupportFor(ex, err), Access: accessOf(c), Now: h.Now()}
	status := http.StatusOK
	if form != nil && len(form.Errors) > 0 {
		status = http.StatusUnprocessableEntity // what was typed cannot be sent: nothing was
	}
	serial := ""
	if err != nil {
		ge, _ := graphclient.AsError(err)
		if ge != nil && ge.Kind == graphclient.KindNotFound {
			view.Missing = true
			status = http.StatusNotFound
		} else {
			view.Failure = failureOf(ex, err)
			view.Failure.Reload = deviceURL(id)
			status = failureStatus(err)
		}
	} else {
		serial = device.SerialNumber
		view.Properties = deviceProperties(device)
		if view.Profile, err = h.profileOf(c, id); err != nil {
			return err
		}
	}
	hist, serial, herr := h.deviceHistory(ctx, u.TenantID, id, serial)
	if herr != nil {
		return herr
	}
	view.Serial = serial
	if err == nil || view.Missing {
		h.settleLostAnswers(ctx, id, hist.Activity, device, view.Missing)
	}
	view.History = historyOf(hist, h.registeredFrom(ctx, hist.Imports))
	var awaited deviceIntent
	view.Pending, awaited = pendingOf(hist, device, view.Missing, h.Now())
	if result == nil {
		if ref := c.QueryParam("change"); guid.Valid(ref) {
			result = h.changeResult(c, ref, id)
		}
	}
	if result != nil && result.Outcome == outcomeSuccess {
		// The change just made is said once, on its own result: shown, or not visible yet. It
		// shows only when the device was read and has what the change asked (a later change,
		// or a read that failed, shows nothing of it).
		result.Unread = device == nil && !view.Missing
		shows, waiting := !result.Unread && changeShows(hist.Activity, result.ActivityID, device, view.Missing), false
		view.Pending = slices.DeleteFunc(view.Pending, func(pc views.PendingChange) bool {
			if pc.Link == activityURL(result.ActivityID) {
				waiting = true
				return true
			}
			return false
		})
		result.Visible = shows && !waiting
		result.Superseded = !shows && !waiting && !result.Unread // a later change of the same value shows instead
	}
	if result != nil && result.Outcome == outcomeUnknown {
		// Its own result says the answer was lost.
		view.Pending = slices.DeleteFunc(view.Pending, func(pc views.PendingChange) bool { return pc.Link == activityURL(result.ActivityID) })
	}
	view.Change = result
	if device != nil && !view.Access.ReadOnly {
		switch {
		case form == nil:
			form = freshForms(c, device, awaited)
		case form.UserSent:
			// The user form comes back as typed; the group tag and name as the device has them.
			f := shownProperties(device, awaited)
			f.UserPrincipalName, f.AddressableUserName, f.Errors = form.UserPrincipalName, form.AddressableUserName, form.Errors
			form = f
		}
		now := h.Now()
		form.PropertiesKey, form.AssignKey, form.UnassignKey = web.NewFormKey(c, now), web.NewFormKey(c, now), web.NewFormKey(c, now)
		view.Forms = form
	}
	title := "Device"
	if serial != "" {
		title = "Device " + serial
	}
	return web.Render(c, status, views.RegisteredDevicePage(web.PageFor(c, title, "devices"), view))
}

// deviceHistory is the desk's own record of a device: by its serial (the serial Graph gave, else
// the one its records name), and by its id once Graph no longer has it.
func (h *Registered) deviceHistory(ctx context.Context, tenantID, id, serial string) (*store.SerialHistory, string, error) {
	byID, _, err := h.History.ListActivity(ctx, store.ActivityFilter{TenantID: tenantID, Device: id, Limit: 50})
	if err != nil {
		return nil, "", fmt.Errorf("read device history: %w", err)
	}
	if serial == "" {
		for _, a := range byID {
			if a.Serial != "" {
				serial = a.Serial
				break
			}
		}
	}
	hist := &store.SerialHistory{}
	if serial != "" {
		if hist, err = h.History.HistoryOfSerial(ctx, tenantID, serial, 50); err != nil {
			return nil, "", fmt.Errorf("read device history: %w", err)
		}
	}
	for _, a := range byID {
		if !slices.ContainsFunc(hist.Activity, func(x store.Activity) bool { return x.ID == a.ID }) {
			hist.Activity = append(hist.Activity, a)
		}
	}
	return hist, serial, nil
}

// freshForms are a device's change forms as its page first shows them: the values the device
// will have (a change accepted but not visible yet included), or what was typed before a sign-in
// interrupted the change.
func freshForms(c echo.Context, device *graphclient.AutopilotDevice, awaited deviceIntent) *views.DeviceForms {
	form := shownProperties(device, awaited)
	if pending, ok := web.TakePendingForm(c); ok {
		keep := func(name string, into *string) {
			if pending.Has(name) {
				*into = pending.Get(name)
			}
		}
		keep("groupTag", &form.GroupTag)
		keep("displayName", &form.DisplayName)
		keep("userPrincipalName", &form.UserPrincipalName)
		keep("addressableUserName", &form.AddressableUserName)
	}
	return form
}

// shownProperties is the group tag and name form as a device's page shows it: the values the
// device will have (a change accepted but not visible yet included).
func shownProperties(device *graphclient.AutopilotDevice, awaited deviceIntent) *views.DeviceForms {
	tag, name := device.GroupTag, device.DisplayName
	if awaited.GroupTag != nil {
		tag = *awaited.GroupTag
	}
	if awaited.DisplayName != nil {
		name = *awaited.DisplayName
	}
	return &views.DeviceForms{GroupTag: tag, DisplayName: name, ShownGroupTag: tag, ShownDisplayName: name}
}

// changeResult is the result of a recorded change of this device, for the page it returns to.
func (h *Registered) changeResult(c echo.Context, activityID, deviceID string) *views.ChangeResult {
	u := web.CurrentUser(c)
	a, err := h.Recorded.GetActivity(c.Request().Context(), u.TenantID, activityID)
	notSaved := false
	if err != nil {
		kept, ok := h.Recorded.Kept(u.TenantID, activityID)
		if !ok {
			return nil
		}
		a, notSaved = kept, true
	}
	if a.Target != deviceID {
		return nil
	}
	d, err := decodeDetail(a)
	if err != nil {
		return nil
	}
	return resultOf(a, d, notSaved)
}

func resultOf(a *store.Activity, d activityDetail, notSaved bool) *views.ChangeResult {
	r := &views.ChangeResult{ActivityID: a.ID, Outcome: a.Outcome, Summary: a.Summary, At: a.At, Exchange: d.Exchange, Support: d.Support, NotSaved: notSaved}
	if d.Failure != nil {
		r.Failure = &views.Failure{Explanation: explain.ForAction(a.Action, *d.Failure), Support: d.Support}
	}
	return r
}

// deviceProperties lists every v1.0 property as Graph names it, with its value in plain words.
func deviceProperties(d *graphclient.AutopilotDevice) []views.Property {
	contacted := "Never"
	if t, ok := d.LastContacted(); ok {
		contacted = views.When(t)
	}
	return []views.Property{
		{Name: "serialNumber", Label: "Serial number", Value: d.SerialNumber},
		{Name: "manufacturer", Label: "Manufacturer", Value: d.Manufacturer},
		{Name: "model", Label: "Model", Value: d.Model},
		{Name: "groupTag", Label: "Group tag", Value: d.GroupTag},
		{Name: "purchaseOrderIdentifier", Label: "Purchase order", Value: d.PurchaseOrderIdentifier},
		{Name: "userPrincipalName", Label: "Assigned user", Value: d.UserPrincipalName},
		{Name: "addressableUserName", Label: "User friendly name", Value: d.AddressableUserName},
		{Name: "displayName", Label: "Device name", Value: d.DisplayName},
		{Name: "enrollmentState", Label: "Enrollment state", Value: explain.EnrollmentState(d.EnrollmentState).Label, State: string(d.EnrollmentState)},
		{Name: "lastContactedDateTime", Label: "Last contacted", Value: contacted},
		{Name: "productKey", Label: "Product key", Value: d.ProductKey},
		{Name: "skuNumber", Label: "SKU number", Value: d.SkuNumber},
		{Name: "systemFamily", Label: "System family", Value: d.SystemFamily},
		{Name: "resourceName", Label: "Resource name", Value: d.ResourceName},
		{Name: "azureActiveDirectoryDeviceId", Label: "Microsoft Entra device ID", Value: d.AzureActiveDirectoryDeviceID},
		{Name: "managedDeviceId", Label: "Intune device ID", Value: d.ManagedDeviceID},
		{Name: "id", Label: "Autopilot device ID", Value: d.ID},
	}
}

// registeredFrom are, by import job and line, the registrations from the device among a device's
// imports: such a row was not read from a CSV file. A job that cannot be read is named as an import.
func (h *Registered) registeredFrom(ctx context.Context, imports []store.SerialImport) map[string]map[int]store.RegistrationSubmission {
	from := map[string]map[int]store.RegistrationSubmission{}
	for _, r := range imports {
		if _, seen := from[r.JobID]; seen {
			continue
		}
		lines := map[int]store.RegistrationSubmission{}
		from[r.JobID] = lines
		subs, err := h.History.Registrations(ctx, store.SubmissionFilter{JobID: r.JobID, States: []string{store.SubmissionApproved, store.SubmissionFinished}})
		if err != nil {
			continue
		}
		for _, s := range subs {
			for _, d := range s.Devices {
				lines[d.JobLine] = s
			}
		}
	}
	return from
}

// historyOf puts the desk's records of a device in one list, newest first; registered names the
// rows of imports that registrations from the device made.
func historyOf(h *store.SerialHistory, registered map[string]map[int]store.RegistrationSubmission) []views.HistoryEntry {
	var out []views.HistoryEntry
	for _, a := range h.Activity {
		out = append(out, views.HistoryEntry{At: a.At, Who: a.ActorName, What: a.Summary, Outcome: explain.Outcome(a.Outcome), Link: activityURL(a.ID), LinkText: "The record"})
	}
	for _, r := range h.Imports {
		d := explain.Row(store.ImportRow{Outcome: r.Outcome}, explain.Job{Owner: r.ActorName})
		what := fmt.Sprintf("Import from a CSV file, line %d: %s.", r.Line, d.InSentence())
		if s, ok := registered[r.JobID][r.Line]; ok {
			what = fmt.Sprintf("Registered from the device with registration code %s (sent from %s), approved by %s: %s.",
				registration.CodeName(s.Code), s.ClientIP, cmp.Or(s.DeciderName, s.DeciderUPN), d.InSentence())
		}
		out = append(out, views.HistoryEntry{At: r.At, Who: r.ActorName, What: what,
			Outcome: d.State, Link: views.ImportJobURL(r.JobID), LinkText: "The import"})
	}
	for _, b := range h.Bulk {
		d := explain.BulkDevice(b.Action, b.GroupTag, b.BulkDevice, nil)
		at := b.At
		if !b.DoneAt.IsZero() {
			at = b.DoneAt
		}
		what := "Bulk change: " + explain.BulkAction(b.Action, b.GroupTag) + "."
		out = append(out, views.HistoryEntry{At: at, Who: b.ActorName, What: what, Outcome: d.State, Link: bulkURL(b.JobID), LinkText: "The bulk change"})
	}
	slices.SortStableFunc(out, func(a, b views.HistoryEntry) int { return b.At.Compare(a.At) })
	return out
}

// pendingOf lists the changes of a device made within pendingWindow that Graph's read does not
// show yet — accepted, or sent with their answer lost — and awaited, the newest accepted group
// tag and name among them. Only the newest change of each property counts.
func pendingOf(h *store.SerialHistory, d *graphclient.AutopilotDevice, missing bool, now time.Time) (out []views.PendingChange, awaited deviceIntent) {
	type change struct {
		at     time.Time
		by     string
		intent deviceIntent
		link   string
		lost   bool // Graph's answer was lost: not known to be accepted
	}
	var changes []change
	for _, a := range h.Activity {
		if a.Outcome != outcomeSuccess && a.Outcome != outcomeUnknown || now.Sub(a.At) > pendingWindow {
			continue
		}
		detail, err := decodeDetail(&a)
		if err != nil || detail.Device == nil {
			continue
		}
		changes = append(changes, change{a.At, a.ActorName, *detail.Device, activityURL(a.ID), a.Outcome == outcomeUnknown})
	}
	for _, b := range h.Bulk {
		if b.State != bulk.DeviceDone || b.Reconciled || now.Sub(b.DoneAt) > pendingWindow {
			continue
		}
		var in deviceIntent
		switch b.Action {
		case bulk.ActionGroupTag:
			tag := b.GroupTag
			in.GroupTag = &tag
		case bulk.ActionUnassign:
			none := ""
			in.User = &none
		case bulk.ActionDelete:
			in.Delete = true
		}
		changes = append(changes, change{b.DoneAt, b.ActorName, in, bulkURL(b.JobID), false})
	}
	slices.SortStableFunc(changes, func(a, b change) int { return b.at.Compare(a.at) })
	seen := map[string]bool{}
	add := func(c change, key, what string, shows bool) {
		if seen[key] {
			return
		}
		seen[key] = true
		if !shows {
			out = append(out, views.PendingChange{What: what, By: c.by, At: c.at, Link: c.link, AnswerLost: c.lost})
		}
	}
	for _, c := range changes {
		in := c.intent
		if in.Delete {
			add(c, "delete", "Delete the Autopilot registration", missing)
		}
		if d == nil {
			continue
		}
		if in.GroupTag != nil {
			if !seen["groupTag"] && !c.lost && d.GroupTag != *in.GroupTag {
				awaited.GroupTag = in.GroupTag
			}
			add(c, "groupTag", "Group tag “"+*in.GroupTag+"”", d.GroupTag == *in.GroupTag)
		}
		if in.DisplayName != nil {
			if !seen["displayName"] && !c.lost && d.DisplayName != *in.DisplayName {
				awaited.DisplayName = in.DisplayName
			}
			add(c, "displayName", "Device name “"+*in.DisplayName+"”", d.DisplayName == *in.DisplayName)
		}
		if in.User != nil {
			if *in.User == "" {
				add(c, "user", "No assigned user", d.UserPrincipalName == "")
			} else {
				add(c, "user", "Assigned user "+*in.User, strings.EqualFold(d.UserPrincipalName, *in.User))
			}
		}
	}
	return out, awaited
}

func bulkURL(id string) string { return "/devices/bulk/" + id }

func deviceURL(id string) string { return "/devices/" + id }

// ConfirmDelete is GET /devices/:id/delete: the registration's serial, model and user, and one
// deliberate button.
func (h *Registered) ConfirmDelete(c echo.Context) error {
	id := c.Param("id")
	if err := mayChange(c, id); err != nil {
		return err
	}
	device, _, err := h.readDevice(c, id)
	if errors.Is(err, web.ErrSessionEnded) {
		return err
	}
	if err != nil {
		return h.show(c, id, nil, nil)
	}
	title := "Delete a registration"
	if device.SerialNumber != "" {
		title = "Delete the registration of " + device.SerialNumber
	}
	return web.Render(c, http.StatusOK, views.DeleteDevicePage(web.PageFor(c, title, "devices"),
		views.DeleteDevice{Device: registeredRow(*device), FormKey: web.NewFormKey(c, h.Now())}))
}

// mayChange refuses a change of a device whose id is no GUID, or asked by someone the desk knows
// to be read-only.
func mayChange(c echo.Context, id string) error {
	if !guid.Valid(id) {
		return notFound("An Autopilot device id is a GUID such as 9a3f6c2e-1b4d-4e5f-8a6b-7c8d9e0f1a2b.")
	}
	if a := web.Access(c); a.ReadOnly {
		return readOnlyRefusal(a, deviceURL(id), "Back to the device")
	}
	return nil
}

// readDevice reads one registered device with the person's token.
func (h *Registered) readDevice(c echo.Context, id string) (*graphclient.AutopilotDevice, *graphclient.Exchange, error) {
	return callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.AutopilotDevice, *graphclient.Exchange, error) {
		return h.Graph.GetAutopilotDevice(c.Request().Context(), ts, id)
	})
}

// syncOf is the tenant's sync with the Windows Autopilot service: as read for the tenant less than
// a minute ago when Graph has just let this person read the list (the same permission reads
// both), else read now; a failure to read it is explained beside it, and the list stands.
func (h *Registered) syncOf(c echo.Context, listRead bool) (*views.AutopilotSync, error) {
	tenantID, now := web.CurrentUser(c).TenantID, h.Now()
	if kept, readAt, ok := h.Sync.take(tenantID, now); ok && listRead {
		v := syncView(&kept)
		v.ReadAt = readAt
		return v, nil
	}
	mark := h.Sync.reading(tenantID)
	s, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.AutopilotSettings, *graphclient.Exchange, error) {
		return h.Graph.GetAutopilotSettings(c.Request().Context(), ts)
	})
	switch {
	case errors.Is(err, web.ErrSessionEnded):
		return nil, err
	case err != nil:
		return &views.AutopilotSync{Failure: failureOf(ex, err)}, nil
	}
	h.Sync.keep(tenantID, mark, *s, now)
	return syncView(s), nil
}

func syncView(s *graphclient.AutopilotSettings) *views.AutopilotSync {
	v := &views.AutopilotSync{State: explain.SyncStatus(s.SyncStatus)}
	v.LastSync, _ = s.LastSync()
	v.LastRequest, _ = s.LastRequest()
	return v
}

// profileOf reads the device's deployment profile assignment; a failure to read it is explained in
// its own section, and the rest of the page stands.
func (h *Registered) profileOf(c echo.Context, id string) (*views.ProfileAssignment, error) {
	p, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (*graphclient.ProfileAssignment, *graphclient.Exchange, error) {
		return h.Graph.GetProfileAssignment(c.Request().Context(), ts, id)
	})
	switch {
	case errors.Is(err, web.ErrSessionEnded):
		return nil, err
	case err != nil:
		f := failureOf(ex, err)
		f.Reload = deviceURL(id)
		return &views.ProfileAssignment{Failure: f}, nil
	}
	v := &views.ProfileAssignment{State: explain.ProfileAssignment(p.Status), Meaning: explain.ProfileMeaning(p.Status, p.DetailedStatus)}
	if p.Profile != nil {
		v.Profile = unseen.Drop(p.Profile.DisplayName)
	}
	if p.IntendedProfile != nil && (p.Profile == nil || p.IntendedProfile.ID != p.Profile.ID) {
		v.Intended = unseen.Drop(p.IntendedProfile.DisplayName)
	}
	v.AssignedAt, _ = p.AssignedAt()
	return v, nil
}

// readOnlyRefusal answers a change asked by someone the desk knows to be read-only: nothing is sent.
func readOnlyRefusal(a web.WriteAccess, back, backText string) error {
	title := "Your role lets you read only"
	if a.ByScopes {
		title = "Your organisation's permission lets the desk read only"
	}
	return &views.ErrorPage{Status: http.StatusForbidden, Title: title,
		Message: readOnlyReason(a) + " Nothing was sent to Microsoft Graph.", ActionURL: back, ActionText: backText}
}

// rememberRefusal keeps, for the rest of the person's session, that Graph refused their change
// with 403 for their role or the desk's permission: the pages then offer no more changes. Not
// kept (the state database did not answer), the next page still offers them and Graph refuses
// again, which is no worse.
func rememberRefusal(c echo.Context, now time.Time, err error) {
	if ge, ok := graphclient.AsError(err); ok && (ge.Kind == graphclient.KindForbiddenRole || ge.Kind == graphclient.KindForbiddenPermission) {
		_ = web.RememberWriteRefused(c, now, ge.Message)
	}
}

// Properties is POST /devices/:id/properties: group tag and device name (updateDeviceProperties).
func (h *Registered) Properties(c echo.Context) error {
	id := c.Param("id")
	tag, name := strings.TrimSpace(c.FormValue("groupTag")), strings.TrimSpace(c.FormValue("displayName"))
	form := &views.DeviceForms{GroupTag: tag, DisplayName: name, ShownGroupTag: c.FormValue("shownGroupTag"), ShownDisplayName: c.FormValue("shownDisplayName")}
	// A field is sent only when it was typed otherwise than the form showed it: the value shown
	// may be older than the device's (changed since, by anyone, or not visible yet), and sending
	// it back would undo that change. A form that does not say what it showed sends what differs.
	typed := func(name, value, shown string) bool { return !c.Request().PostForm.Has(name) || value != shown }
	tagTyped, nameTyped := typed("shownGroupTag", tag, form.ShownGroupTag), typed("shownDisplayName", name, form.ShownDisplayName)
	if err := mayChange(c, id); err != nil {
		return err
	}
	// Only what is sent is checked: a name the device already has stays as it is.
	problems := fieldProblems{}
	form.Errors = problems
	if tagTyped {
		problems.add("groupTag", graphclient.PropertyProblem("group tag", tag))
	}
	if nameTyped {
		problems.add("displayName", graphclient.DeviceNameProblem(name))
	}
	if len(form.Errors) > 0 {
		return h.show(c, id, nil, form)
	}
	return h.change(c, id, actionDeviceProperties, form, func(ctx context.Context, ts oauth2.TokenSource, d *graphclient.AutopilotDevice) (*graphclient.Exchange, deviceIntent, string, error) {
		var ch graphclient.AutopilotDeviceChange
		var in deviceIntent
		var said []string
		if tagTyped && tag != d.GroupTag {
			ch.GroupTag, in.GroupTag = &tag, &tag
			said = append(said, "group tag "+explain.QuotedOrNone(d.GroupTag)+" → "+explain.QuotedOrNone(tag))
		}
		if nameTyped && name != d.DisplayName {
			ch.DisplayName, in.DisplayName = &name, &name
			said = append(said, "device name "+explain.QuotedOrNone(d.DisplayName)+" → "+explain.QuotedOrNone(name))
		}
		if len(said) == 0 {
			return nil, in, "", errNothingToChange
		}
		ex, err := h.Graph.UpdateAutopilotDeviceProperties(ctx, ts, id, ch)
		return ex, in, "Changed " + strings.Join(said, " and ") + " of device " + d.SerialNumber + ".", err
	})
}

// fieldProblems are a form's problems by field name, each said beside its field.
type fieldProblems map[string]string

func (f fieldProblems) add(field, problem string) {
	if problem != "" {
		f[field] = problem
	}
}

// errNothingToChange means the form asks for the values the device already has.
var errNothingToChange = errors.New("nothing to change")

// AssignUser is POST /devices/:id/user (assignUserToDevice).
func (h *Registered) AssignUser(c echo.Context) error {
	id := c.Param("id")
	upn, friendly := strings.TrimSpace(c.FormValue("userPrincipalName")), strings.TrimSpace(c.FormValue("addressableUserName"))
	problems := fieldProblems{}
	form := &views.DeviceForms{UserPrincipalName: upn, AddressableUserName: friendly, Errors: problems, UserSent: true}
	if err := mayChange(c, id); err != nil {
		return err
	}
	switch {
	case upn == "":
		problems.add("userPrincipalName", "Type the user principal name of the user to assign, such as adele@contoso.com.")
	case !devicecsv.PlausibleUPN(upn):
		problems.add("userPrincipalName", "A user principal name looks like adele@contoso.com: one @, a domain after it, and no spaces.")
	default:
		problems.add("userPrincipalName", graphclient.PropertyProblem("user principal name", upn))
	}
	problems.add("addressableUserName", graphclient.PropertyProblem("user friendly name", friendly))
	if len(form.Errors) > 0 {
		return h.show(c, id, nil, form)
	}
	return h.change(c, id, actionDeviceAssign, form, func(ctx context.Context, ts oauth2.TokenSource, d *graphclient.AutopilotDevice) (*graphclient.Exchange, deviceIntent, string, error) {
		in := deviceIntent{User: &upn}
		ex, err := h.Graph.AssignUserToAutopilotDevice(ctx, ts, id, upn, friendly)
		return ex, in, "Assigned " + upn + " to device " + d.SerialNumber + ".", err
	})
}

// UnassignUser is POST /devices/:id/unassign (unassignUserFromDevice).
func (h *Registered) UnassignUser(c echo.Context) error {
	id := c.Param("id")
	return h.change(c, id, actionDeviceUnassign, nil, func(ctx context.Context, ts oauth2.TokenSource, d *graphclient.AutopilotDevice) (*graphclient.Exchange, deviceIntent, string, error) {
		none := ""
		ex, err := h.Graph.UnassignUserFromAutopilotDevice(ctx, ts, id)
		return ex, deviceIntent{User: &none}, "Unassigned " + explain.QuotedOrNone(d.UserPrincipalName) + " from device " + d.SerialNumber + ".", err
	})
}

// Delete is POST /devices/:id/delete: the registration, after its confirmation page.
func (h *Registered) Delete(c echo.Context) error {
	id := c.Param("id")
	return h.change(c, id, actionDeviceDelete, nil, func(ctx context.Context, ts oauth2.TokenSource, d *graphclient.AutopilotDevice) (*graphclient.Exchange, deviceIntent, string, error) {
		ex, err := h.Graph.DeleteAutopilotDevice(ctx, ts, id)
		return ex, deviceIntent{Delete: true}, deletedSummary(d), err
	})
}

// deletedSummary says which device's registration a delete removed: its serial, and its model
// when Graph knows it.
func deletedSummary(d *graphclient.AutopilotDevice) string {
	if d.Model == "" {
		return "Deleted the Autopilot registration of device " + d.SerialNumber + "."
	}
	return "Deleted the Autopilot registration of device " + d.SerialNumber + " (" + d.Model + ")."
}

// changeCall makes one change to a device read a moment before, and says what it asked and,
// in words, what it did.
type changeCall func(ctx context.Context, ts oauth2.TokenSource, d *graphclient.AutopilotDevice) (*graphclient.Exchange, deviceIntent, string, error)

// change runs one change of a device: the person must not be known read-only; the device is
// read; the form's one-time key is claimed (a second submit shows the first result and sends
// nothing); a slot of the tenant's write budget is taken; the change is sent once; the outcome is
// recorded and the device's page shows it.
func (h *Registered) change(c echo.Context, id, action string, form *views.DeviceForms, call changeCall) error {
	if err := mayChange(c, id); err != nil {
		return err
	}
	ctx := c.Request().Context()
	// The device is read first: its serial names the change in the history, and a sign-in that
	// can no longer be renewed shows here, before anything is claimed or sent.
	device, readEx, readErr := h.readDevice(c, id)
	if errors.Is(readErr, web.ErrSessionEnded) {
		return readErr
	}
	key := strings.TrimSpace(c.FormValue("formKey"))
	if !web.ValidFormKey(c, key, h.Now(), formKeyTTL) {
		return &views.ErrorPage{Status: http.StatusConflict, Title: "This form was already used",
			Message:  "The form you submitted has expired or was used before, so nothing was sent to Microsoft Graph.",
			NextStep: "Open the device again and make the change from its page.", ActionURL: deviceURL(id), ActionText: "Open the device"}
	}
	claimed, state, ref, err := h.Keys.ClaimFormKey(ctx, key, web.Session(c).ID, formKeyTTL)
	if err != nil {
		return fmt.Errorf("claim form key: %w", err)
	}
	if !claimed {
		if state == store.FormKeyDone && guid.Valid(ref) {
			return c.Redirect(http.StatusSeeOther, deviceURL(id)+"?change="+ref)
		}
		return &views.ErrorPage{Status: http.StatusConflict, Title: "Still sending your first submission",
			Message:  "This change was already submitted and Microsoft Graph has not answered yet. It was not sent a second time.",
			NextStep: "Wait a moment, then open the device to see the result.", ActionURL: deviceURL(id), ActionText: "Open the device"}
	}
	release := func() { _ = h.Keys.ReleaseFormKey(context.WithoutCancel(ctx), key) }
	u := web.CurrentUser(c)

	if readErr != nil {
		release()
		return h.refusedBeforeSending(c, id, form, failureOf(readEx, readErr))
	}
	slot, wait, err := h.takeWriteSlot(ctx, u.TenantID)
	if err != nil {
		release()
		return err
	} else if wait > 0 {
		release()
		until := h.Now().Add(wait)
		return h.refusedBeforeSending(c, id, form, &views.Failure{Explanation: explain.BudgetBusy(h.Budget.Describe(), until, h.Now())})
	}

	holdOnThrottling(c, h.Budget, h.Now)
	ctx = c.Request().Context()
	var intent deviceIntent
	var summary string
	_, ex, err := callGraph(c, h.Tokens, func(ts oauth2.TokenSource) (struct{}, *graphclient.Exchange, error) {
		var ex *graphclient.Exchange
		var err error
		ex, intent, summary, err = call(ctx, ts, device)
		return struct{}{}, ex, err
	})
	h.Pages.ForgetTenant(u.TenantID) // the list shows the change once Intune does, not the pages read before
	if aerr := h.Budget.Answered(context.WithoutCancel(ctx), slot, h.Now()); aerr != nil {
		h.Logger.Warn("count the write budget from Graph's answer", "error", aerr.Error())
	}
	switch {
	case errors.Is(err, web.ErrSessionEnded):
		release()
		return err
	case errors.Is(err, errNothingToChange):
		release()
		return h.refusedBeforeSending(c, id, form, &views.Failure{Explanation: explain.NothingToChange()})
	}
	if ge, ok := graphclient.AsError(err); ok {
		switch {
		case ge.Kind == graphclient.KindInvalidInput && ex == nil:
			release() // refused by the desk's own checks: nothing was sent
			return h.refusedBeforeSending(c, id, form, failureOf(nil, err))
		case ge.StatusCode == http.StatusTooManyRequests && ge.RetryAfter > 0:
			// Held already when Graph answered (holdOnThrottling); a later end wins, so this
			// only matters for an answer that did not come through the client's own calls.
			if herr := h.Budget.Hold(context.WithoutCancel(ctx), u.TenantID, h.Now().Add(ge.RetryAfter)); herr != nil {
				h.Logger.Warn("hold the tenant's writes", "error", herr.Error())
			}
		case ge.Kind == graphclient.KindForbiddenRole || ge.Kind == graphclient.KindForbiddenPermission:
			if rerr := web.RememberWriteRefused(c, h.Now(), ge.Message); rerr != nil {
				h.Logger.Warn("remember a refused change", "error", rerr.Error())
			}
		}
	}
	act, detail := h.changeRecord(u, id, action, device, ex, err, intent, summary)
	saved := h.Activity.Record(ctx, act, key)
	if !saved || act.Outcome == outcomeFailure {
		// Refused (nothing changed): the page again, with what was typed and Graph's reason.
		return h.show(c, id, resultOf(act, detail, !saved), form)
	}
	return c.Redirect(http.StatusSeeOther, deviceURL(id)+"?change="+act.ID)
}

// changeShows reports whether the device as read shows the change recorded as id; a record not
// among these (not in the history yet) is taken to show.
func changeShows(records []store.Activity, id string, d *graphclient.AutopilotDevice, missing bool) bool {
	for _, a := range records {
		if a.ID != id {
			continue
		}
		detail, err := decodeDetail(&a)
		if err != nil || detail.Device == nil {
			return true
		}
		return detail.Device.shows(d, missing)
	}
	return true
}

// changeRecord is the history's record of a change sent to Graph: what it did, or what it
// asked when Graph's answer was lost (kept, so that a read of the device showing it settles the
// record), or why Graph refused it.
func (h *Registered) changeRecord(u *web.SessionUser, id, action string, device *graphclient.AutopilotDevice, ex *graphclient.Exchange, err error,
	intent deviceIntent, summary string) (*store.Activity, activityDetail) {
	act := newActivity(u, action, ex, err)
	act.Target, act.Serial = id, device.SerialNumber
	detail := resultDetail(nil, ex, err, h.Now())
	switch act.Outcome {
	case outcomeSuccess:
		act.Summary, detail.Device = summary, &intent
	case outcomeUnknown:
		asked := device.SerialNumber
		if !intent.Delete { // a delete's action says all it asked
			asked += " (" + intentText(intent) + ")"
		}
		act.Summary = deviceRefusalSummary(action, asked, failureFacts(err, h.Now()))
		detail.Device, detail.Said = &intent, summary
	default:
		act.Summary = deviceRefusalSummary(action, device.SerialNumber, failureFacts(err, h.Now()))
	}
	act.Detail = encodeDetail(detail)
	return act, detail
}

// intentText says what a change of a device asked for: "group tag “Kiosk”, device name (none)".
func intentText(in deviceIntent) string {
	var parts []string
	if in.GroupTag != nil {
		parts = append(parts, "group tag "+explain.QuotedOrNone(*in.GroupTag))
	}
	if in.DisplayName != nil {
		parts = append(parts, "device name "+explain.QuotedOrNone(*in.DisplayName))
	}
	if in.User != nil {
		if *in.User == "" {
			parts = append(parts, "no assigned user")
		} else {
			parts = append(parts, "assigned user "+*in.User)
		}
	}
	if in.Delete {
		parts = append(parts, "the registration deleted")
	}
	return strings.Join(parts, ", ")
}

// shows reports whether a device read shows everything a change asked for (missing: Graph has
// no registration with the device's id any more).
func (in deviceIntent) shows(d *graphclient.AutopilotDevice, missing bool) bool {
	if in.Delete {
		return missing
	}
	return d != nil && (in.GroupTag == nil || d.GroupTag == *in.GroupTag) && (in.DisplayName == nil || d.DisplayName == *in.DisplayName) &&
		(in.User == nil || strings.EqualFold(d.UserPrincipalName, *in.User))
}

// settleLostAnswers records as done the changes of this device whose answers were lost and that
// the device, as just read, shows: found by reading it, as bulk changes settle theirs (records
// settled are changed in place). What it does not show yet stays unknown (the registration is
// eventually consistent).
func (h *Registered) settleLostAnswers(ctx context.Context, id string, records []store.Activity, d *graphclient.AutopilotDevice, missing bool) {
	if h.Records == nil {
		return
	}
	for i, a := range records {
		if a.Outcome != outcomeUnknown || a.Target != id || !strings.HasPrefix(a.Action, "device-") {
			continue
		}
		detail, err := decodeDetail(&a)
		if err != nil || detail.Device == nil || detail.Said == "" || !detail.Device.shows(d, missing) {
			continue
		}
		a.Outcome = outcomeSuccess
		a.Summary = strings.TrimSuffix(detail.Said, ".") + " (found by reading the device: Graph's answer was lost)."
		detail.CheckedAt = h.Now()
		a.Detail = encodeDetail(detail)
		switch err := h.Records.UpdateActivity(ctx, &a, outcomeUnknown); {
		case err == nil:
			records[i] = a // the page shows it settled
		case !errors.Is(err, store.ErrConflict):
			h.Logger.Warn("settle a device change whose answer was lost", "error", err.Error())
		}
	}
}

// refusedBeforeSending shows the device's page with why a change was not sent, the values typed
// kept.
func (h *Registered) refusedBeforeSending(c echo.Context, id string, form *views.DeviceForms, f *views.Failure) error {
	return h.show(c, id, &views.ChangeResult{Outcome: "not-sent", Failure: f}, form)
}

// takeWriteSlot takes one slot of the tenant's write budget, waiting a moment if one frees soon;
// it returns how long until one frees when none does.
func (h *Registered) takeWriteSlot(ctx context.Context, tenantID string) (bulk.Slots, time.Duration, error) {
	for range 2 {
		slot, retryAt, err := h.Budget.Take(ctx, tenantID, 1)
		if err != nil {
			return slot, 0, fmt.Errorf("take a write slot: %w", err)
		}
		if slot.N == 1 {
			return slot, 0, nil
		}
		wait := retryAt.Sub(h.Now())
		if wait > 3*time.Second {
			return slot, wait, nil
		}
		select {
		case <-ctx.Done():
			return slot, 0, ctx.Err()
		case <-time.After(max(wait, 10*time.Millisecond)):
		}
	}
	return bulk.Slots{}, time.Second, nil
}

func deviceRefusalSummary(action, serial string, f explain.Failure) string {
	what := map[string]string{actionDeviceProperties: "change the properties of", actionDeviceAssign: "assign a user to",
		actionDeviceUnassign: "unassign the user from", actionDeviceDelete: "delete the registration of"}[action]
	if f.Graph != nil && f.Graph.Kind == graphclient.KindOutcomeUnknown {
		return "Asked to " + what + " device " + serial + "; Graph did not say whether it worked."
	}
	return "Could not " + what + " device " + serial + ": " + explain.ForAction(action, f).Title + "."
}
