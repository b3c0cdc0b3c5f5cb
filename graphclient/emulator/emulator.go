// Package emulator is a stateful stand-in for Microsoft Graph's Autopilot upload endpoints: Graph's
// status codes, error envelope, headers and paging, bearer tokens checked against an identity
// provider, and fault injection in the spirit of Microsoft's Dev Proxy.
package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"

	"autopilotdesk/graphclient/guid"
)

// Principal is who a bearer token speaks for.
type Principal struct {
	AppID                   string // the client the token was issued to (Entra's appid/azp)
	TenantID, ObjectID, UPN string
	Scopes                  []string
	Groups                  []string // the groups the account belongs to, for checkMemberGroups
	// IntuneReadOnly: the account's Intune role may read but not change Autopilot devices, so
	// Intune refuses its writes whatever the token's scopes.
	IntuneReadOnly bool
}

// Token verification failures.
var (
	ErrTokenExpired = errors.New("emulator: access token expired")
	ErrTokenUnknown = errors.New("emulator: access token unknown")
)

// TokenVerifier resolves a bearer token.
type TokenVerifier func(token string) (Principal, error)

// Options configure an Emulator.
type Options struct {
	Verify             TokenVerifier    // required
	Now                func() time.Time // default time.Now
	NewID              func() string    // GUID generator; default random
	PageSize           int              // default 100
	OtherTenantSerials []string         // serials the import answers with 808
	ImportDelays       ImportDelays
	SyncDuration       time.Duration // how long an Autopilot sync runs (409 meanwhile); default 30 s
	// ConsistencyDelay is how long a change to a registered Autopilot device takes to show in
	// reads, as Intune's registration is eventually consistent; zero shows it at once.
	ConsistencyDelay time.Duration
	Faults           Faults
	// Outcomes gives chosen serial numbers a final import state of their own (partial, null,
	// unusual error names), as Graph can answer.
	Outcomes map[string]Outcome
	// MaxBodyBytes is the largest request body accepted (default MaxRequestBytes); a larger one
	// gets 413, as Graph answers.
	MaxBodyBytes int64
}

// MaxRequestBytes is Graph's request-size limit, 4 MB, taken as the larger reading (4 MiB) so the
// emulator accepts every body Graph accepts.
const MaxRequestBytes = 4 << 20

// ImportDelays is how long an imported device stays in each state before the next.
type ImportDelays struct {
	Unknown time.Duration // unknown → pending; default 2 s
	Pending time.Duration // pending → complete or error; default 3 s
}

// Stats count what the emulator served.
type Stats struct {
	Requests    int // requests answered
	Connections int // distinct client addresses seen
	Throttled   int // answers 429 (the budget spent, an early retry, or drawn), a batch's inner requests included
	Punished    int // of those, requests sent before the last Retry-After elapsed
	// ImportCalls counts the import actions received whole (POST …/importedWindowsAutopilotDeviceIdentities/import)
	// that were not refused as too large, however many requests Received still keeps.
	ImportCalls int
}

// ReceivedRequest is a request as the emulator saw it (tests assert on what the desk sent).
type ReceivedRequest struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
	TooLarge               bool // refused with 413; Body is not kept
	// Unread: the body did not arrive whole (the client gave up while sending it), so nothing
	// was done with it; Body is what arrived.
	Unread bool
}

// Emulator implements http.Handler; it is safe for concurrent use.
type Emulator struct {
	opts Options

	mu                  sync.Mutex
	tenants             map[string]*tenant
	received            []ReceivedRequest
	faults              Faults
	budgets             map[budgetKey]*budget // Intune throttles each application in each tenant on its own
	requests            int
	importCalls         int
	clients             map[string]bool
	throttled, punished int
}

type tenant struct {
	uploads map[string]*upload
	devices map[string]*device // imported device identities
	seq     int
	sync    syncState

	registered map[string]*registered // windowsAutopilotDeviceIdentities, by id
}

type upload struct {
	ID                 string
	CreatedDateTimeUtc string
	Status             string
	seq                int
	devices            map[string]*device // the contained deviceIdentities
}

// DemoUpload is an upload to preload with SeedDemo.
type DemoUpload struct {
	ID, CreatedDateTimeUtc, Status string
}

const maxReceived = 1000

// New returns an emulator.
func New(o Options) *Emulator {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.NewID == nil {
		o.NewID = uuid.NewString
	}
	if o.PageSize <= 0 {
		o.PageSize = 100
	}
	if o.ImportDelays.Unknown <= 0 {
		o.ImportDelays.Unknown = 2 * time.Second
	}
	if o.ImportDelays.Pending <= 0 {
		o.ImportDelays.Pending = 3 * time.Second
	}
	if o.SyncDuration <= 0 {
		o.SyncDuration = 30 * time.Second
	}
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = MaxRequestBytes
	}
	return &Emulator{opts: o, tenants: map[string]*tenant{}, faults: o.Faults, clients: map[string]bool{}, budgets: map[budgetKey]*budget{}}
}

// SetFaults changes fault injection at run time.
func (e *Emulator) SetFaults(f Faults) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.faults = f
	clear(e.budgets)
}

// Received returns the requests seen so far, oldest first.
func (e *Emulator) Received() []ReceivedRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.received)
}

// Stats reports what the emulator has served so far.
func (e *Emulator) Stats() Stats {
	e.mu.Lock()
	defer e.mu.Unlock()
	return Stats{Requests: e.requests, Connections: len(e.clients), Throttled: e.throttled, Punished: e.punished, ImportCalls: e.importCalls}
}

// SeedDemo preloads uploads for a tenant, oldest first; with none given it preloads a realistic set
// spread over the last weeks, so that lists, filters and paging have something to show.
func (e *Emulator) SeedDemo(tenantID string, uploads ...DemoUpload) {
	if len(uploads) == 0 {
		now := e.opts.Now()
		for i, status := range []string{"complete", "complete", "error", "complete", "noUpload", "complete", "pending", "pending"} {
			at := now.Add(-time.Duration(8-i) * 61 * time.Hour).In(time.FixedZone("", -8*3600))
			uploads = append(uploads, DemoUpload{ID: e.opts.NewID(), CreatedDateTimeUtc: at.Format("2006-01-02T15:04:05.0000000-07:00"), Status: status})
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	t := e.tenant(tenantID)
	for _, u := range uploads {
		t.seq++
		t.uploads[u.ID] = &upload{ID: u.ID, CreatedDateTimeUtc: u.CreatedDateTimeUtc, Status: u.Status, seq: t.seq, devices: map[string]*device{}}
	}
}

func (e *Emulator) tenant(id string) *tenant {
	t := e.tenants[id]
	if t == nil {
		t = &tenant{uploads: map[string]*upload{}, devices: map[string]*device{}}
		e.tenants[id] = t
	}
	return t
}

// answer carries the per-request ids every response repeats.
type answer struct {
	w         http.ResponseWriter
	requestID string
	clientID  string
	now       time.Time
}

func (a answer) headers() {
	h := a.w.Header()
	h.Set("request-id", a.requestID)
	h.Set("client-request-id", a.clientID)
	h.Set("Date", a.now.UTC().Format(http.TimeFormat))
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"Emulator","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"EMU"}}`)
}

func (a answer) json(status int, v any) {
	a.headers()
	b, _ := json.Marshal(inGraphOrder(v))
	a.w.Header().Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	a.w.WriteHeader(status)
	a.w.Write(b)
}

func (a answer) noContent() {
	a.headers()
	a.w.WriteHeader(http.StatusNoContent)
}

// fail answers in Graph's error envelope.
func (a answer) fail(status int, code, message string) {
	a.json(status, map[string]any{"error": map[string]any{
		"code": code, "message": message,
		"innerError": map[string]string{
			"date":              a.now.UTC().Format("2006-01-02T15:04:05"),
			"request-id":        a.requestID,
			"client-request-id": a.clientID,
		},
	}})
}

const (
	uploadsSegment = "importedWindowsAutopilotDeviceIdentityUploads"
	devicesSegment = "importedWindowsAutopilotDeviceIdentities"
	uploadType     = "#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload"
	writeScope     = "DeviceManagementServiceConfig.ReadWrite.All"
	readScope      = "DeviceManagementServiceConfig.Read.All"
)

func (e *Emulator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, bodyErr := readBody(r, e.opts.MaxBodyBytes+1)
	crid := r.Header.Get("client-request-id")
	if crid == "" {
		crid = uuid.NewString()
	}
	if int64(len(body)) > e.opts.MaxBodyBytes {
		// The front door refuses it before anything else looks at it. The error code is Graph's
		// documented name for 413; the exact body Graph sends is unverified.
		e.mu.Lock()
		e.received = append(e.received, ReceivedRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), TooLarge: true})
		e.requests++
		e.mu.Unlock()
		a := answer{w: w, requestID: e.opts.NewID(), clientID: crid, now: e.opts.Now()}
		a.fail(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "The request size exceeds the maximum limit.")
		return
	}
	e.mu.Lock()
	e.received = append(e.received, ReceivedRequest{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body,
		Unread: bodyErr != nil})
	if len(e.received) > maxReceived {
		e.received = e.received[len(e.received)-maxReceived:]
	}
	e.requests++
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/"+devicesSegment+"/import") && bodyErr == nil {
		e.importCalls++
	}
	e.clients[r.RemoteAddr] = true
	faults := e.faults
	e.mu.Unlock()
	a := answer{w: w, requestID: e.opts.NewID(), clientID: crid, now: e.opts.Now()}
	if bodyErr != nil {
		unreadableBody(a, bodyErr)
		return
	}
	e.route(a, r, body, faults)
}

// route answers one request, a batch's inner requests included.
func (e *Emulator) route(a answer, r *http.Request, body []byte, faults Faults) {
	version, rest, ok := splitVersion(r.URL.Path)
	if !ok {
		a.fail(http.StatusBadRequest, "BadRequest", "Invalid version.")
		return
	}
	p, err := e.authenticate(r)
	if err != nil {
		a.w.Header().Set("WWW-Authenticate", `Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000"`)
		msg := "Access token validation failure. Invalid audience."
		switch {
		case errors.Is(err, errNoToken):
			msg = "Access token is empty."
		case errors.Is(err, ErrTokenExpired):
			msg = "Access token has expired or is not yet valid."
		case errors.Is(err, ErrTokenUnknown):
			msg = "Invalid JWT token. The token is not valid."
		}
		a.fail(http.StatusUnauthorized, "InvalidAuthenticationToken", msg)
		return
	}
	// A batch spends no budget of its own: each request inside it does, as if sent alone.
	if rest == "/$batch" {
		e.batch(a, r, version, body, faults)
		return
	}
	if strings.HasSuffix(rest, "/$count") {
		e.countSegment(a, r, body, faults)
		return
	}
	if e.injectFault(a, r, p, faults) {
		return
	}
	segs := strings.Split(strings.Trim(rest, "/"), "/")
	if len(segs) == 2 && segs[0] == "me" && segs[1] == "checkMemberGroups" {
		e.checkMemberGroups(a, r, p, body)
		return
	}
	if len(segs) < 2 || segs[0] != "deviceManagement" {
		a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", lastSegment(segs)))
		return
	}
	known := segs[1] == uploadsSegment || segs[1] == devicesSegment || segs[1] == autopilotSegment || segs[1] == "windowsAutopilotSettings" && (len(segs) == 2 || len(segs) == 3 && segs[2] == "sync")
	if !known {
		a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Resource not found for the segment '%s'.", truncate(lastSegment(segs), 80)))
		return
	}
	if faults.NoIntuneLicence {
		// What Graph answers for Intune's paths in a tenant without an Intune licence.
		a.fail(http.StatusBadRequest, "BadRequest", "Request not applicable to target tenant.")
		return
	}
	if segs[1] == uploadsSegment && faults.UploadsSegmentMissing {
		a.fail(http.StatusBadRequest, "BadRequest", "Resource not found for the segment '"+uploadsSegment+"'.")
		return
	}
	if !e.authorize(a, r, p, faults, rest) {
		return
	}
	if faults.LoseWriteAnswers && r.Method != http.MethodGet {
		lost := answer{w: discard{h: http.Header{}}, requestID: a.requestID, clientID: a.clientID, now: a.now}
		e.dispatch(lost, r, p, version, segs, body)
		a.fail(http.StatusGatewayTimeout, "GatewayTimeout", "Injected failure: the request was carried out, but its answer was lost.")
		return
	}
	e.dispatch(a, r, p, version, segs, body)
}

// discard is a response nobody reads: the answer a lost-answer fault throws away.
type discard struct{ h http.Header }

func (d discard) Header() http.Header         { return d.h }
func (d discard) Write(b []byte) (int, error) { return len(b), nil }
func (d discard) WriteHeader(int)             {}

// dispatch hands a request to the collection it names.
func (e *Emulator) dispatch(a answer, r *http.Request, p Principal, version string, segs []string, body []byte) {
	switch segs[1] {
	case uploadsSegment:
		e.uploads(p, version).serve(a, r, segs[2:], body)
	case devicesSegment:
		e.devices(p, version).serve(a, r, segs[2:], body)
	case autopilotSegment:
		e.autopilot(p, version).serve(a, r, segs[2:], body)
	default:
		if len(segs) == 2 {
			e.autopilotSettings(a, r, p, version)
			return
		}
		e.sync(a, r, p, version)
	}
}

// collection routes the requests of one OData collection as Intune's service does: GET on the
// collection lists it and POST creates in it (where it takes one); a POST names an action bound
// to the collection; any other segment is an entity's key, which must be a GUID, and what lies
// below a key is the entity's own. Graph names a route it has no method for by its template,
// counted from where the collection stands ("~/singleton/navigation" for one under
// deviceManagement).
type collection struct {
	template string
	list     func(a answer, r *http.Request)
	create   func(a answer, body []byte) // nil: the collection takes no POST
	actions  map[string]func(a answer, body []byte)
	// entity serves one entity by its key and the segments below it.
	entity func(a answer, r *http.Request, key string, below []string, body []byte)
}

func (c collection) serve(a answer, r *http.Request, segs []string, body []byte) {
	switch {
	case len(segs) == 0 && r.Method == http.MethodGet:
		c.list(a, r)
	case len(segs) == 0 && r.Method == http.MethodPost && c.create != nil:
		c.create(a, body)
	case len(segs) == 0:
		noRoute(a, r, c.template)
	case c.actions[segs[0]] != nil && len(segs) == 1 && r.Method == http.MethodPost:
		c.actions[segs[0]](a, body)
	case c.actions[segs[0]] != nil:
		noRoute(a, r, c.template+"/action")
	case !guid.Valid(segs[0]):
		invalidKey(a, segs[0])
	default:
		c.entity(a, r, segs[0], segs[1:], body)
	}
}

func lastSegment(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	return segs[len(segs)-1]
}

func splitVersion(path string) (version, rest string, ok bool) {
	for _, v := range []string{"v1.0", "beta"} {
		if strings.HasPrefix(path, "/"+v+"/") {
			return v, strings.TrimPrefix(path, "/"+v), true
		}
	}
	return "", "", false
}

var errNoToken = errors.New("no token")

func (e *Emulator) authenticate(r *http.Request) (Principal, error) {
	auth := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(auth, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
		return Principal{}, errNoToken
	}
	if e.opts.Verify == nil {
		return Principal{}, ErrTokenUnknown
	}
	return e.opts.Verify(strings.TrimSpace(tok))
}

func hasScope(p Principal, scopes ...string) bool {
	for _, s := range p.Scopes {
		if slices.Contains(scopes, s) {
			return true
		}
	}
	return false
}

// authorize checks the caller's scopes; reads accept the read scope too. It answers 403 itself.
func (e *Emulator) authorize(a answer, r *http.Request, p Principal, f Faults, path string) bool {
	write := r.Method != http.MethodGet
	switch {
	case write && (f.Forbid403Nested || p.IntuneReadOnly || !hasScope(p, writeScope)):
		forbidden(a, writeScope, path)
		return false
	case !write && !hasScope(p, writeScope, readScope):
		forbidden(a, readScope+", "+writeScope, path)
		return false
	}
	return true
}

// forbidden answers like Intune does, naming the back-end Url.
func forbidden(a answer, scope, path string) {
	a.fail(http.StatusForbidden, "Forbidden", intuneMessage("Application is not authorized to perform this operation. Application must have one of the following scopes: "+scope+
		" - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: "+a.requestID+
		" - Url: https://fef.msub05.manage.microsoft.com/DeviceEnrollmentFE/StatelessDeviceEnrollmentFEService"+path+"?api-version=5023-05-04"))
}

// intuneMessage is Intune's error.message: a JSON document inside the string.
func intuneMessage(msg string) string {
	b, _ := json.Marshal(map[string]any{
		"_version": 3, "Message": msg,
		"CustomApiErrorPhrase": "", "RetryAfter": nil, "ErrorSourceService": "", "HttpHeaders": "{}",
	})
	return string(b)
}

// metadata is the @odata.context of an answer: where Graph's metadata document describes it.
func metadata(version, fragment string) string {
	return "https://graph.microsoft.com/" + version + "/$metadata#" + fragment
}

// invalidKey is Graph's answer to an entity key that is not a GUID.
func invalidKey(a answer, key string) {
	a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Invalid key '%s'.", truncate(key, 40)))
}

// noRoute is Graph's answer to a verb or path shape the entity does not support.
func noRoute(a answer, r *http.Request, template string) {
	a.fail(http.StatusBadRequest, "No method match route template", "No OData route exists that match template "+template+" with http verb "+r.Method+" for request /DeviceEnrollmentFE/StatelessDeviceEnrollmentFEService"+strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, "/v1.0"), "/beta")+".")
}

// uploads is the collection of Autopilot uploads.
func (e *Emulator) uploads(p Principal, version string) collection {
	ctxBase := metadata(version, "deviceManagement/"+uploadsSegment)
	return collection{
		template: "~/singleton/navigation",
		list:     func(a answer, r *http.Request) { e.listUploads(a, r, p, ctxBase) },
		create:   func(a answer, body []byte) { e.createUpload(a, p, body, ctxBase) },
		entity: func(a answer, r *http.Request, id string, below []string, body []byte) {
			switch {
			case len(below) == 0:
				e.oneUpload(a, r, p, id, body, ctxBase)
			case below[0] == "deviceIdentities" && len(below) <= 2:
				devices, found := e.uploadDevices(p, version, id)
				if !found {
					a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
					return
				}
				devices.serve(a, r, below[1:], body)
			case below[0] == "autopilotDeviceStream" && len(below) == 1 && r.Method == http.MethodGet:
				e.deviceStream(a, p, version, id)
			default:
				noRoute(a, r, "~/singleton/navigation/key/navigation")
			}
		},
	}
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (u *upload) json(ctx string) map[string]any {
	m := map[string]any{"@odata.type": uploadType, "id": u.ID, "createdDateTimeUtc": u.CreatedDateTimeUtc, "status": u.Status}
	if ctx != "" {
		m["@odata.context"] = ctx
	}
	return m
}

var filterRE = regexp.MustCompile(`^status eq '([A-Za-z]+)'$`)

func (e *Emulator) listUploads(a answer, r *http.Request, p Principal, ctxBase string) {
	status := ""
	if f := r.URL.Query().Get("$filter"); f != "" {
		m := filterRE.FindStringSubmatch(f)
		if m == nil || !validStatus(m[1]) {
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid filter clause")
			return
		}
		status = m[1]
	}
	e.mu.Lock()
	var all []*upload
	for _, u := range e.tenant(p.TenantID).uploads {
		if status == "" || u.Status == status {
			all = append(all, u)
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].seq > all[j].seq }) // newest first
	items := make([]map[string]any, len(all))
	for i, u := range all {
		items[i] = u.json("")
	}
	e.mu.Unlock()
	e.page(a, r, ctxBase, len(items), func(start, end int) []map[string]any { return items[start:end] })
}

// page answers one page of a collection: at most PageSize items, and $top in all, with an
// @odata.nextLink on the request's own host while more remain.
func (e *Emulator) page(a answer, r *http.Request, ctx string, total int, items func(start, end int) []map[string]any) {
	q := r.URL.Query()
	top := -1
	if t := q.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid $top value.")
			return
		}
		top = n
	}
	skip := 0
	if s := q.Get("$skiptoken"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid skip token.")
			return
		}
		skip = n
	}
	withCount := false
	switch c := q.Get("$count"); c {
	case "", "false":
	case "true":
		withCount = true
	default:
		a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("'%s' is not a valid count option.", truncate(c, 40)))
		return
	}
	take := e.opts.PageSize
	if top >= 0 {
		take = min(take, top)
	}
	start := min(skip, total)
	end := min(start+take, total)
	value := items(start, end)
	if value == nil {
		value = []map[string]any{}
	}
	resp := map[string]any{"@odata.context": ctx, "value": value}
	if withCount {
		resp["@odata.count"] = total
	}
	if end < total && (top < 0 || top > take) {
		next := q
		next.Set("$skiptoken", strconv.Itoa(end))
		if top >= 0 {
			next.Set("$top", strconv.Itoa(top-take))
		}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		resp["@odata.nextLink"] = scheme + "://" + r.Host + r.URL.Path + "?" + strings.ReplaceAll(next.Encode(), "+", "%20")
	}
	a.json(http.StatusOK, resp)
}

func validStatus(s string) bool {
	switch s {
	case "noUpload", "pending", "complete", "error":
		return true
	}
	return false
}

// DateTimeOffset as Graph accepts it: RFC 3339 with an offset, up to seven fractional digits.
var dateTimeOffsetRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,7})?(Z|[+-]\d{2}:\d{2})$`)

func validDateTimeOffset(s string) bool {
	if !dateTimeOffsetRE.MatchString(s) {
		return false
	}
	_, err := time.Parse(time.RFC3339Nano, s)
	return err == nil
}

// decodeUpload checks a body the way Graph's OData layer does.
func decodeUpload(a answer, body []byte, requireAll bool) (map[string]json.RawMessage, bool) {
	var props map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&props); err != nil || props == nil {
		a.fail(http.StatusBadRequest, "BadRequest", "Invalid JSON. A token was not recognized in the JSON content.")
		return nil, false
	}
	for k := range props {
		switch k {
		case "@odata.type", "id", "createdDateTimeUtc", "status":
		default:
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The property '%s' does not exist on type 'microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload'. Make sure to only use property names that are defined by the type or mark the type as open type.", truncate(k, 80)))
			return nil, false
		}
	}
	if raw, ok := props["@odata.type"]; ok {
		var t string
		if json.Unmarshal(raw, &t) != nil || t != uploadType {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("A type named '%s' could not be resolved by the model. When a model is available, each type name must resolve to a valid type.", truncate(strings.Trim(string(raw), `"`), 80)))
			return nil, false
		}
	}
	if raw, ok := props["status"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil || !validStatus(s) {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'microsoft.graph.importedWindowsAutopilotDeviceIdentityUploadStatus'.", truncate(strings.Trim(string(raw), `"`), 80)))
			return nil, false
		}
	} else if requireAll {
		a.fail(http.StatusBadRequest, "BadRequest", "The property 'status' is required and cannot be null.")
		return nil, false
	}
	if raw, ok := props["createdDateTimeUtc"]; ok {
		var s string
		if json.Unmarshal(raw, &s) != nil || !validDateTimeOffset(s) {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.DateTimeOffset'.", truncate(strings.Trim(string(raw), `"`), 80)))
			return nil, false
		}
	} else if requireAll {
		a.fail(http.StatusBadRequest, "BadRequest", "The property 'createdDateTimeUtc' is required and cannot be null.")
		return nil, false
	}
	return props, true
}

func str(raw json.RawMessage) string {
	var s string
	json.Unmarshal(raw, &s)
	return s
}

func (e *Emulator) createUpload(a answer, p Principal, body []byte, ctxBase string) {
	props, ok := decodeUpload(a, body, true)
	if !ok {
		return
	}
	id := e.opts.NewID()
	if raw, ok := props["id"]; ok && str(raw) != "" {
		id = str(raw)
		if !guid.Valid(id) {
			a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("Cannot convert the literal '%s' to the expected type 'Edm.Guid'.", truncate(id, 80)))
			return
		}
	}
	e.mu.Lock()
	t := e.tenant(p.TenantID)
	if _, taken := t.uploads[id]; taken {
		e.mu.Unlock()
		a.fail(http.StatusConflict, "Conflict", "An object with id '"+id+"' already exists.")
		return
	}
	t.seq++
	u := &upload{ID: id, CreatedDateTimeUtc: str(props["createdDateTimeUtc"]), Status: str(props["status"]), seq: t.seq, devices: map[string]*device{}}
	t.uploads[id] = u
	e.mu.Unlock()
	a.json(http.StatusCreated, u.json(ctxBase+"/$entity"))
}

func (e *Emulator) oneUpload(a answer, r *http.Request, p Principal, id string, body []byte, ctxBase string) {
	e.mu.Lock()
	t := e.tenant(p.TenantID)
	u, found := t.uploads[id]
	var snapshot upload
	if found {
		snapshot = *u
	}
	e.mu.Unlock()
	if !found && r.Method != http.MethodPost {
		a.fail(http.StatusNotFound, "ResourceNotFound", "Resource not found.")
		return
	}
	switch r.Method {
	case http.MethodGet:
		a.json(http.StatusOK, snapshot.json(ctxBase+"/$entity"))
	case http.MethodPatch:
		props, ok := decodeUpload(a, body, false)
		if !ok {
			return
		}
		e.mu.Lock()
		if raw, ok := props["status"]; ok {
			u.Status = str(raw)
		}
		if raw, ok := props["createdDateTimeUtc"]; ok {
			u.CreatedDateTimeUtc = str(raw)
		}
		snapshot = *u
		e.mu.Unlock()
		a.json(http.StatusOK, snapshot.json(ctxBase+"/$entity"))
	case http.MethodDelete:
		e.mu.Lock()
		delete(t.uploads, id)
		e.mu.Unlock()
		a.noContent()
	default:
		noRoute(a, r, "~/singleton/navigation/key")
	}
}
