package emulator_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
)

const (
	tenantA    = "11111111-1111-1111-1111-111111111111"
	tenantB    = "22222222-2222-2222-2222-222222222222"
	writeScope = "DeviceManagementServiceConfig.ReadWrite.All"
	readScope  = "DeviceManagementServiceConfig.Read.All"
	uploadType = "#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload"
	uploads    = "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads"
	betaUpl    = "/beta/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads"
	ctxV1      = "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/importedWindowsAutopilotDeviceIdentityUploads"
	ctxBeta    = "https://graph.microsoft.com/beta/$metadata#deviceManagement/importedWindowsAutopilotDeviceIdentityUploads"
	seedDate   = "2016-12-31T23:59:45.8788427-08:00"

	guidA = "aaaaaaaa-0000-4000-8000-000000000001"
	guidB = "bbbbbbbb-0000-4000-8000-000000000002"
	guidC = "cccccccc-0000-4000-8000-000000000003"
)

// verify is the fake identity provider.
func verify(token string) (emulator.Principal, error) {
	switch token {
	case "admin":
		return emulator.Principal{AppID: "app-1", TenantID: tenantA, ObjectID: "o-admin", UPN: "admin@a.example", Scopes: []string{writeScope}}, nil
	case "admin-app2": // the same tenant through another application, which Intune throttles apart
		return emulator.Principal{AppID: "app-2", TenantID: tenantA, ObjectID: "o-admin", UPN: "admin@a.example", Scopes: []string{writeScope}}, nil
	case "reader":
		return emulator.Principal{TenantID: tenantA, ObjectID: "o-reader", UPN: "reader@a.example", Scopes: []string{readScope}}, nil
	case "admin-b": // a second tenant, for isolation tests
		return emulator.Principal{AppID: "app-1", TenantID: tenantB, ObjectID: "o-admin-b", UPN: "admin@b.example", Scopes: []string{writeScope}}, nil
	case "nobody": // signed in, but no Intune scope at all
		return emulator.Principal{TenantID: tenantA, ObjectID: "o-nobody", UPN: "nobody@a.example", Scopes: []string{"User.Read"},
			Groups: []string{groupHelpDesk, groupEngineers}}, nil
	case "expired":
		return emulator.Principal{}, emulator.ErrTokenExpired
	}
	return emulator.Principal{}, emulator.ErrTokenUnknown
}

type fixture struct {
	t     *testing.T
	emu   *emulator.Emulator
	srv   *httptest.Server
	clock *testkit.Clock
	ids   atomic.Int64
}

// newFixture starts an emulator behind httptest; mutate opts to add faults or paging.
func newFixture(t *testing.T, mutate func(*emulator.Options)) *fixture {
	t.Helper()
	// A non-UTC zone proves the emulator converts to UTC itself.
	f := &fixture{t: t, clock: testkit.NewClockAt(time.Date(2026, 11, 28, 13, 4, 5, 123456789, time.FixedZone("CET", 3600)))}
	o := emulator.Options{
		Verify: verify,
		Now:    f.clock.Now,
		NewID: func() string {
			return fmt.Sprintf("00000000-0000-4000-8000-%012d", f.ids.Add(1))
		},
	}
	if mutate != nil {
		mutate(&o)
	}
	f.emu = emulator.New(o)
	f.srv = httptest.NewServer(f.emu)
	t.Cleanup(f.srv.Close)
	return f
}

type reply struct {
	status int
	header http.Header
	raw    []byte
	body   map[string]any
}

// req is a request to send; crid "" means no client-request-id header.
type req struct {
	method, path, token, body, crid string
	rawAuth                         *string // overrides the Authorization header entirely
}

// do sends a request and checks the headers every answer must carry.
func (f *fixture) do(r req) reply {
	f.t.Helper()
	target := r.path
	if !strings.HasPrefix(target, "http") {
		target = f.srv.URL + r.path
	}
	var body io.Reader
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	hr, err := http.NewRequest(r.method, target, body)
	if err != nil {
		f.t.Fatal(err)
	}
	switch {
	case r.rawAuth != nil:
		hr.Header.Set("Authorization", *r.rawAuth)
	case r.token != "":
		hr.Header.Set("Authorization", "Bearer "+r.token)
	}
	if r.body != "" {
		hr.Header.Set("Content-Type", "application/json")
	}
	if r.crid != "" {
		hr.Header.Set("client-request-id", r.crid)
	}
	res, err := f.srv.Client().Do(hr)
	if err != nil {
		f.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	out := reply{status: res.StatusCode, header: res.Header, raw: raw}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out.body); err != nil {
			f.t.Fatalf("%s %s: body is not a JSON object: %v\n%s", r.method, r.path, err, raw)
		}
		if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			f.t.Errorf("%s %s: Content-Type %q", r.method, r.path, ct)
		}
	}

	// Headers on every answer.
	if rid := res.Header.Get("request-id"); !guid.Valid(rid) {
		f.t.Errorf("%s %s: request-id %q is not a GUID", r.method, r.path, rid)
	}
	crid := res.Header.Get("client-request-id")
	if r.crid != "" && crid != r.crid {
		f.t.Errorf("%s %s: client-request-id %q, want echoed %q", r.method, r.path, crid, r.crid)
	}
	if r.crid == "" && !guid.Valid(crid) {
		f.t.Errorf("%s %s: generated client-request-id %q is not a GUID", r.method, r.path, crid)
	}
	if got, want := res.Header.Get("Date"), f.clock.Now().UTC().Format(http.TimeFormat); got != want {
		f.t.Errorf("%s %s: Date %q, want %q", r.method, r.path, got, want)
	}
	if res.Header.Get("x-ms-ags-diagnostic") == "" {
		f.t.Errorf("%s %s: no x-ms-ags-diagnostic", r.method, r.path)
	}
	return out
}

func (f *fixture) create(token, body string) reply {
	f.t.Helper()
	return f.do(req{method: http.MethodPost, path: uploads, token: token, body: body})
}

func createBody(id, status string) string {
	m := map[string]string{"@odata.type": uploadType, "createdDateTimeUtc": seedDate, "status": status}
	if id != "" {
		m["id"] = id
	}
	b, _ := json.Marshal(m)
	return string(b)
}

// wantError checks Graph's error envelope and returns error.message.
func (f *fixture) wantError(r reply, status int, code, msgContains string) string {
	f.t.Helper()
	if r.status != status {
		f.t.Fatalf("status %d, want %d\n%s", r.status, status, r.raw)
	}
	if len(r.body) != 1 {
		f.t.Errorf("envelope has keys other than error: %s", r.raw)
	}
	e, ok := r.body["error"].(map[string]any)
	if !ok {
		f.t.Fatalf("no error object: %s", r.raw)
	}
	if e["code"] != code {
		f.t.Errorf("error.code %q, want %q", e["code"], code)
	}
	msg, _ := e["message"].(string)
	if !strings.Contains(msg, msgContains) {
		f.t.Errorf("error.message %q does not contain %q", msg, msgContains)
	}
	inner, ok := e["innerError"].(map[string]any)
	if !ok {
		f.t.Fatalf("no innerError: %s", r.raw)
	}
	date, _ := inner["date"].(string)
	if len(date) != 19 {
		f.t.Errorf("innerError.date %q is not 19 characters", date)
	}
	if strings.ContainsAny(date, "Z+") || strings.Count(date, "-") != 2 {
		f.t.Errorf("innerError.date %q carries a zone", date)
	}
	if want := f.clock.Now().UTC().Format("2006-01-02T15:04:05"); date != want {
		f.t.Errorf("innerError.date %q, want UTC %q", date, want)
	}
	if inner["request-id"] != r.header.Get("request-id") {
		f.t.Errorf("innerError.request-id %q != header %q", inner["request-id"], r.header.Get("request-id"))
	}
	if inner["client-request-id"] != r.header.Get("client-request-id") {
		f.t.Errorf("innerError.client-request-id %q != header %q", inner["client-request-id"], r.header.Get("client-request-id"))
	}
	return msg
}

func values(t *testing.T, r reply) []map[string]any {
	t.Helper()
	raw, ok := r.body["value"].([]any)
	if !ok {
		t.Fatalf("no value array: %s", r.raw)
	}
	out := make([]map[string]any, len(raw))
	for i, v := range raw {
		out[i] = v.(map[string]any)
	}
	return out
}

func ids(t *testing.T, r reply) []string {
	t.Helper()
	var out []string
	for _, v := range values(t, r) {
		out = append(out, v["id"].(string))
	}
	return out
}

func equal(a, b []string) bool {
	return strings.Join(a, ",") == strings.Join(b, ",")
}

func TestCreateAssignsServerGUIDAndKeepsDateExactly(t *testing.T) {
	f := newFixture(t, nil)
	r := f.create("admin", createBody("", "pending"))
	if r.status != http.StatusCreated {
		t.Fatalf("status %d, want 201\n%s", r.status, r.raw)
	}
	id, _ := r.body["id"].(string)
	if !guid.Valid(id) {
		t.Fatalf("id %q is not a GUID", id)
	}
	if id == r.header.Get("request-id") {
		t.Errorf("upload id reuses the request-id %q", id)
	}
	if got, want := r.body["@odata.context"], ctxV1+"/$entity"; got != want {
		t.Errorf("@odata.context %q, want %q", got, want)
	}
	if r.body["@odata.type"] != uploadType {
		t.Errorf("@odata.type %q", r.body["@odata.type"])
	}
	if r.body["status"] != "pending" {
		t.Errorf("status %q", r.body["status"])
	}
	// Seven fractional digits and the -08:00 offset survive untouched (a string, not a re-formatted time).
	if !bytes.Contains(r.raw, []byte(`"createdDateTimeUtc":"`+seedDate+`"`)) {
		t.Errorf("createdDateTimeUtc not kept exactly: %s", r.raw)
	}

	g := f.do(req{method: http.MethodGet, path: uploads + "/" + id, token: "admin"})
	if g.status != http.StatusOK {
		t.Fatalf("GET status %d\n%s", g.status, g.raw)
	}
	if g.body["id"] != id || g.body["createdDateTimeUtc"] != seedDate || g.body["status"] != "pending" ||
		g.body["@odata.type"] != uploadType || g.body["@odata.context"] != ctxV1+"/$entity" {
		t.Errorf("GET by id: %s", g.raw)
	}
}

func TestCreateHonoursClientGUIDAndConflictsOnReuse(t *testing.T) {
	f := newFixture(t, nil)
	r := f.create("admin", createBody(guidA, "pending"))
	if r.status != http.StatusCreated || r.body["id"] != guidA {
		t.Fatalf("status %d id %v, want 201 %s\n%s", r.status, r.body["id"], guidA, r.raw)
	}
	again := f.create("admin", createBody(guidA, "complete"))
	f.wantError(again, http.StatusConflict, "Conflict", guidA)

	// The conflicting create changed nothing.
	g := f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin"})
	if g.body["status"] != "pending" {
		t.Errorf("status after conflict %v", g.body["status"])
	}
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if got := ids(t, l); !equal(got, []string{guidA}) {
		t.Errorf("list after conflict %v", got)
	}

	// A client id that is not a GUID is refused.
	bad := f.create("admin", createBody("not-a-guid", "pending"))
	f.wantError(bad, http.StatusBadRequest, "BadRequest", "Edm.Guid")
}

func TestCreateRejectsBadBodies(t *testing.T) {
	cases := []struct {
		name, body, msg string
	}{
		{"malformed JSON", `{"status":`, "Invalid JSON. A token was not recognized in the JSON content."},
		{"not an object", `["pending"]`, "Invalid JSON"},
		{"JSON null", `null`, "Invalid JSON"},
		{"empty body", ``, "Invalid JSON"},
		{"unknown status", `{"@odata.type":"` + uploadType + `","createdDateTimeUtc":"` + seedDate + `","status":"done"}`,
			"Cannot convert the literal 'done' to the expected type 'microsoft.graph.importedWindowsAutopilotDeviceIdentityUploadStatus'."},
		{"numeric status", `{"createdDateTimeUtc":"` + seedDate + `","status":1}`, "importedWindowsAutopilotDeviceIdentityUploadStatus"},
		{"unparseable date", `{"createdDateTimeUtc":"yesterday","status":"pending"}`,
			"Cannot convert the literal 'yesterday' to the expected type 'Edm.DateTimeOffset'."},
		{"date without offset", `{"createdDateTimeUtc":"2016-12-31T23:59:45","status":"pending"}`, "Edm.DateTimeOffset"},
		{"date with 8 fractional digits", `{"createdDateTimeUtc":"2016-12-31T23:59:45.87884271Z","status":"pending"}`, "Edm.DateTimeOffset"},
		{"impossible date", `{"createdDateTimeUtc":"2016-13-45T23:59:45Z","status":"pending"}`, "Edm.DateTimeOffset"},
		{"wrong @odata.type", `{"@odata.type":"#microsoft.graph.user","createdDateTimeUtc":"` + seedDate + `","status":"pending"}`,
			"A type named '#microsoft.graph.user' could not be resolved by the model."},
		{"unknown property", `{"createdDateTimeUtc":"` + seedDate + `","status":"pending","serialNumber":"X1"}`,
			"The property 'serialNumber' does not exist on type 'microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload'."},
		{"missing status", `{"createdDateTimeUtc":"` + seedDate + `"}`, "The property 'status' is required"},
		{"missing date", `{"status":"pending"}`, "The property 'createdDateTimeUtc' is required"},
	}
	f := newFixture(t, nil)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			r := f.create("admin", c.body)
			f.wantError(r, http.StatusBadRequest, "BadRequest", c.msg)
		})
	}
	f.t = t
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if got := values(t, l); len(got) != 0 {
		t.Errorf("rejected creates were stored: %s", l.raw)
	}
}

func TestCreateAcceptsDateForms(t *testing.T) {
	f := newFixture(t, nil)
	for _, d := range []string{"2016-12-31T23:59:45Z", "2016-12-31T23:59:45.1+05:30", "2016-12-31T23:59:45.1234567Z"} {
		r := f.create("admin", `{"createdDateTimeUtc":"`+d+`","status":"noUpload"}`)
		if r.status != http.StatusCreated || r.body["createdDateTimeUtc"] != d {
			t.Errorf("%s: status %d %s", d, r.status, r.raw)
		}
	}
}

func TestListNewestFirstFilterTop(t *testing.T) {
	f := newFixture(t, nil)
	for _, c := range []struct{ id, status string }{{guidA, "pending"}, {guidB, "complete"}, {guidC, "pending"}} {
		if r := f.create("admin", createBody(c.id, c.status)); r.status != http.StatusCreated {
			t.Fatalf("create %s: %d %s", c.id, r.status, r.raw)
		}
	}

	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if l.status != http.StatusOK {
		t.Fatalf("list %d %s", l.status, l.raw)
	}
	if l.body["@odata.context"] != ctxV1 {
		t.Errorf("list @odata.context %q", l.body["@odata.context"])
	}
	if _, ok := l.body["@odata.nextLink"]; ok {
		t.Errorf("unexpected nextLink on a single page: %s", l.raw)
	}
	if got := ids(t, l); !equal(got, []string{guidC, guidB, guidA}) {
		t.Errorf("list order %v, want newest first", got)
	}
	for _, v := range values(t, l) {
		if v["@odata.type"] != uploadType || v["createdDateTimeUtc"] != seedDate {
			t.Errorf("list item %v", v)
		}
		if _, ok := v["@odata.context"]; ok {
			t.Errorf("list item carries its own @odata.context: %v", v)
		}
	}

	p := f.do(req{method: http.MethodGet, path: uploads + "?" + url.Values{"$filter": {"status eq 'pending'"}}.Encode(), token: "admin"})
	if got := ids(t, p); !equal(got, []string{guidC, guidA}) {
		t.Errorf("pending %v", got)
	}
	e := f.do(req{method: http.MethodGet, path: uploads + "?$filter=" + url.QueryEscape("status eq 'error'"), token: "admin"})
	if got := values(t, e); len(got) != 0 {
		t.Errorf("error filter %s", e.raw)
	}

	top := f.do(req{method: http.MethodGet, path: uploads + "?$top=2", token: "admin"})
	if got := ids(t, top); !equal(got, []string{guidC, guidB}) {
		t.Errorf("$top=2 %v", got)
	}

	for _, q := range []string{
		"$filter=" + url.QueryEscape("status eq 'done'"),
		"$filter=" + url.QueryEscape("id eq 'x'"),
		"$top=0", "$top=abc", "$skiptoken=-1", "$skiptoken=x",
	} {
		r := f.do(req{method: http.MethodGet, path: uploads + "?" + q, token: "admin"})
		f.wantError(r, http.StatusBadRequest, "BadRequest", "Invalid")
	}
}

func TestListPagingFollowsNextLink(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.PageSize = 2 })
	for _, c := range []struct{ id, status string }{{guidA, "pending"}, {guidB, "complete"}, {guidC, "pending"}} {
		if r := f.create("admin", createBody(c.id, c.status)); r.status != http.StatusCreated {
			t.Fatalf("create: %d %s", r.status, r.raw)
		}
	}
	first := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if got := ids(t, first); !equal(got, []string{guidC, guidB}) {
		t.Fatalf("first page %v", got)
	}
	next, _ := first.body["@odata.nextLink"].(string)
	if !strings.HasPrefix(next, f.srv.URL+uploads+"?") {
		t.Fatalf("nextLink %q does not point back at the emulator", next)
	}
	second := f.do(req{method: http.MethodGet, path: next, token: "admin"})
	if second.status != http.StatusOK {
		t.Fatalf("second page %d %s", second.status, second.raw)
	}
	if got := ids(t, second); !equal(got, []string{guidA}) {
		t.Errorf("second page %v", got)
	}
	if _, ok := second.body["@odata.nextLink"]; ok {
		t.Errorf("last page has a nextLink: %s", second.raw)
	}

	// The link keeps the filter.
	ff := newFixture(t, func(o *emulator.Options) { o.PageSize = 1 })
	for _, c := range []struct{ id, status string }{{guidA, "pending"}, {guidB, "complete"}, {guidC, "pending"}} {
		ff.create("admin", createBody(c.id, c.status))
	}
	var got []string
	link := uploads + "?$filter=" + url.QueryEscape("status eq 'pending'")
	for pages := 0; link != ""; pages++ {
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		r := ff.do(req{method: http.MethodGet, path: link, token: "admin"})
		if r.status != http.StatusOK {
			t.Fatalf("page %d: %d %s", pages, r.status, r.raw)
		}
		got = append(got, ids(t, r)...)
		link, _ = r.body["@odata.nextLink"].(string)
		if link != "" && !strings.Contains(link, "%24filter=status%20eq%20%27pending%27") {
			t.Errorf("nextLink %q lost the filter", link)
		}
	}
	if !equal(got, []string{guidC, guidA}) {
		t.Errorf("filtered pages %v", got)
	}
}

func TestGetPatchDelete(t *testing.T) {
	f := newFixture(t, nil)
	f.create("admin", createBody(guidA, "pending"))

	missing := f.do(req{method: http.MethodGet, path: uploads + "/" + guidB, token: "admin"})
	f.wantError(missing, http.StatusNotFound, "ResourceNotFound", "Resource not found.")

	badKey := f.do(req{method: http.MethodGet, path: uploads + "/nope", token: "admin"})
	f.wantError(badKey, http.StatusBadRequest, "BadRequest", "Invalid key 'nope'.")

	p := f.do(req{method: http.MethodPatch, path: uploads + "/" + guidA, token: "admin", body: `{"status":"complete"}`})
	if p.status != http.StatusOK {
		t.Fatalf("PATCH %d %s", p.status, p.raw)
	}
	if p.body["status"] != "complete" || p.body["id"] != guidA || p.body["createdDateTimeUtc"] != seedDate ||
		p.body["@odata.context"] != ctxV1+"/$entity" || p.body["@odata.type"] != uploadType {
		t.Errorf("PATCH answer %s", p.raw)
	}
	g := f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin"})
	if g.body["status"] != "complete" {
		t.Errorf("PATCH not stored: %s", g.raw)
	}
	newDate := "2020-01-02T03:04:05.1234567+01:00"
	p = f.do(req{method: http.MethodPatch, path: uploads + "/" + guidA, token: "admin", body: `{"createdDateTimeUtc":"` + newDate + `"}`})
	if p.status != http.StatusOK || p.body["createdDateTimeUtc"] != newDate || p.body["status"] != "complete" {
		t.Errorf("PATCH date %d %s", p.status, p.raw)
	}

	bad := f.do(req{method: http.MethodPatch, path: uploads + "/" + guidA, token: "admin", body: `{"status":"finished"}`})
	f.wantError(bad, http.StatusBadRequest, "BadRequest", "Cannot convert the literal 'finished'")
	bad = f.do(req{method: http.MethodPatch, path: uploads + "/" + guidA, token: "admin", body: `{"status":`})
	f.wantError(bad, http.StatusBadRequest, "BadRequest", "Invalid JSON")
	bad = f.do(req{method: http.MethodPatch, path: uploads + "/" + guidA, token: "admin", body: `{"colour":"red"}`})
	f.wantError(bad, http.StatusBadRequest, "BadRequest", "The property 'colour' does not exist")
	g = f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin"})
	if g.body["status"] != "complete" || g.body["createdDateTimeUtc"] != newDate {
		t.Errorf("rejected PATCH changed the upload: %s", g.raw)
	}

	pm := f.do(req{method: http.MethodPatch, path: uploads + "/" + guidB, token: "admin", body: `{"status":"complete"}`})
	f.wantError(pm, http.StatusNotFound, "ResourceNotFound", "Resource not found.")

	put := f.do(req{method: http.MethodPut, path: uploads + "/" + guidA, token: "admin", body: createBody(guidA, "pending")})
	f.wantError(put, http.StatusBadRequest, "No method match route template", "http verb PUT")
	putColl := f.do(req{method: http.MethodPut, path: uploads, token: "admin", body: createBody(guidA, "pending")})
	f.wantError(putColl, http.StatusBadRequest, "No method match route template", "http verb PUT")

	d := f.do(req{method: http.MethodDelete, path: uploads + "/" + guidA, token: "admin"})
	if d.status != http.StatusNoContent || len(d.raw) != 0 {
		t.Fatalf("DELETE %d %q", d.status, d.raw)
	}
	g = f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin"})
	f.wantError(g, http.StatusNotFound, "ResourceNotFound", "Resource not found.")
	d = f.do(req{method: http.MethodDelete, path: uploads + "/" + guidA, token: "admin"})
	f.wantError(d, http.StatusNotFound, "ResourceNotFound", "Resource not found.")
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if len(values(t, l)) != 0 {
		t.Errorf("deleted upload still listed: %s", l.raw)
	}
	// A deleted id may be used again.
	if r := f.create("admin", createBody(guidA, "pending")); r.status != http.StatusCreated {
		t.Errorf("re-create after delete %d %s", r.status, r.raw)
	}
}

func strptr(s string) *string { return &s }

func TestUnauthenticated(t *testing.T) {
	f := newFixture(t, nil)
	cases := []struct {
		name string
		r    req
		msg  string
	}{
		{"missing", req{method: http.MethodGet, path: uploads}, "Access token is empty."},
		{"blank bearer", req{method: http.MethodGet, path: uploads, rawAuth: strptr("Bearer   ")}, "Access token is empty."},
		{"basic scheme", req{method: http.MethodGet, path: uploads, rawAuth: strptr("Basic YWRtaW46eA==")}, "Access token is empty."},
		{"unknown", req{method: http.MethodGet, path: uploads, token: "forged"}, "Invalid JWT token. The token is not valid."},
		{"expired", req{method: http.MethodGet, path: uploads, token: "expired"}, "Access token has expired or is not yet valid."},
		{"expired write", req{method: http.MethodPost, path: uploads, token: "expired", body: createBody("", "pending")}, "Access token has expired or is not yet valid."},
	}
	msgs := map[string]bool{}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.t = t
			r := f.do(c.r)
			msgs[f.wantError(r, http.StatusUnauthorized, "InvalidAuthenticationToken", c.msg)] = true
			if wa := r.header.Get("WWW-Authenticate"); !strings.HasPrefix(wa, "Bearer ") || !strings.Contains(wa, "authorization_uri=") {
				t.Errorf("WWW-Authenticate %q", wa)
			}
		})
	}
	f.t = t
	if len(msgs) != 3 {
		t.Errorf("want 3 distinct 401 messages, got %v", msgs)
	}
	// Nothing was created by the rejected POST.
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if len(values(t, l)) != 0 {
		t.Errorf("unauthenticated POST stored an upload: %s", l.raw)
	}
	// A successful answer carries no WWW-Authenticate.
	if l.header.Get("WWW-Authenticate") != "" {
		t.Errorf("200 with WWW-Authenticate")
	}

	// No verifier at all: every token is unknown.
	n := newFixture(t, func(o *emulator.Options) { o.Verify = nil })
	n.wantError(n.do(req{method: http.MethodGet, path: uploads, token: "admin"}), http.StatusUnauthorized, "InvalidAuthenticationToken", "Invalid JWT token")
}

func TestForbiddenIntuneMessage(t *testing.T) {
	f := newFixture(t, nil)
	f.create("admin", createBody(guidA, "pending"))

	for _, r := range []req{
		{method: http.MethodPost, path: uploads, token: "reader", body: createBody(guidB, "pending")},
		{method: http.MethodPatch, path: uploads + "/" + guidA, token: "reader", body: `{"status":"complete"}`},
		{method: http.MethodDelete, path: uploads + "/" + guidA, token: "reader"},
	} {
		t.Run(r.method, func(t *testing.T) {
			f.t = t
			res := f.do(r)
			msg := f.wantError(res, http.StatusForbidden, "Forbidden", "")
			var inner struct {
				Version int    `json:"_version"`
				Message string `json:"Message"`
			}
			if err := json.Unmarshal([]byte(msg), &inner); err != nil {
				t.Fatalf("error.message is not a JSON string: %v\n%s", err, msg)
			}
			if inner.Version != 3 {
				t.Errorf("_version %d", inner.Version)
			}
			if !strings.Contains(inner.Message, "Activity ID: "+res.header.Get("request-id")) {
				t.Errorf("Message lacks the Activity ID of this request: %q", inner.Message)
			}
			if !strings.Contains(inner.Message, writeScope) || !strings.HasPrefix(inner.Message, "Application is not authorized") {
				t.Errorf("Message %q", inner.Message)
			}
		})
	}
	f.t = t

	// Reader may read.
	l := f.do(req{method: http.MethodGet, path: uploads, token: "reader"})
	if l.status != http.StatusOK || !equal(ids(t, l), []string{guidA}) {
		t.Errorf("reader list %d %s", l.status, l.raw)
	}
	g := f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "reader"})
	if g.status != http.StatusOK || g.body["status"] != "pending" {
		t.Errorf("reader get %d %s", g.status, g.raw)
	}

	// The forbidden writes did nothing.
	if g.body["status"] != "pending" {
		t.Errorf("reader PATCH took effect")
	}
	if got := ids(t, l); len(got) != 1 {
		t.Errorf("reader POST or DELETE took effect: %v", got)
	}

	// No Intune scope at all: even reads are forbidden, naming both scopes.
	n := f.do(req{method: http.MethodGet, path: uploads, token: "nobody"})
	msg := f.wantError(n, http.StatusForbidden, "Forbidden", readScope)
	if !strings.Contains(msg, writeScope) {
		t.Errorf("read 403 does not name %s: %s", writeScope, msg)
	}
}

func TestClientRequestIDEchoedOrGenerated(t *testing.T) {
	f := newFixture(t, nil)
	const mine = "12345678-90ab-4cde-8f01-234567890abc"
	r := f.do(req{method: http.MethodGet, path: uploads, token: "admin", crid: mine})
	if r.header.Get("client-request-id") != mine {
		t.Errorf("not echoed")
	}
	// Echoed on errors too, inside the envelope.
	e := f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin", crid: mine})
	f.wantError(e, http.StatusNotFound, "ResourceNotFound", "")
	e = f.do(req{method: http.MethodGet, path: uploads, token: "expired", crid: mine})
	f.wantError(e, http.StatusUnauthorized, "InvalidAuthenticationToken", "")

	a := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	b := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if a.header.Get("client-request-id") == b.header.Get("client-request-id") {
		t.Errorf("generated client-request-id repeated")
	}
	if a.header.Get("request-id") == b.header.Get("request-id") {
		t.Errorf("request-id repeated")
	}
	// The clock moves and the Date header follows it (checked inside do).
	f.clock.Advance(90 * time.Minute)
	f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	f.wantError(f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin"}), http.StatusNotFound, "ResourceNotFound", "")
}

func TestBetaPrefixAndRouting(t *testing.T) {
	f := newFixture(t, nil)
	r := f.do(req{method: http.MethodPost, path: betaUpl, token: "admin", body: createBody(guidA, "pending")})
	if r.status != http.StatusCreated || r.body["@odata.context"] != ctxBeta+"/$entity" {
		t.Fatalf("beta create %d %s", r.status, r.raw)
	}
	l := f.do(req{method: http.MethodGet, path: betaUpl, token: "admin"})
	if l.status != http.StatusOK || l.body["@odata.context"] != ctxBeta || !equal(ids(t, l), []string{guidA}) {
		t.Errorf("beta list %d %s", l.status, l.raw)
	}
	// Same store behind both versions.
	if g := f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin"}); g.status != http.StatusOK {
		t.Errorf("v1.0 cannot see the beta upload: %d", g.status)
	}

	f.wantError(f.do(req{method: http.MethodGet, path: "/v1.0/deviceManagement/managedDevices", token: "admin"}),
		http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'managedDevices'.")
	f.wantError(f.do(req{method: http.MethodGet, path: "/beta/me", token: "admin"}),
		http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'me'.")
	f.wantError(f.do(req{method: http.MethodGet, path: "/v2.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads", token: "admin"}),
		http.StatusBadRequest, "BadRequest", "Invalid version.")
	f.wantError(f.do(req{method: http.MethodGet, path: uploads + "/" + guidA + "/autopilotDeviceStream/x", token: "admin"}),
		http.StatusBadRequest, "No method match route template", "")
	f.wantError(f.do(req{method: http.MethodGet, path: uploads + "/" + guidA + "/deviceIdentities/x", token: "admin"}),
		http.StatusBadRequest, "BadRequest", "Invalid key 'x'.")
}

func TestFaultUploadsSegmentMissing(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults.UploadsSegmentMissing = true })
	const msg = "Resource not found for the segment 'importedWindowsAutopilotDeviceIdentityUploads'."
	f.wantError(f.do(req{method: http.MethodGet, path: uploads, token: "admin"}), http.StatusBadRequest, "BadRequest", msg)
	f.wantError(f.create("admin", createBody(guidA, "pending")), http.StatusBadRequest, "BadRequest", msg)
	f.wantError(f.do(req{method: http.MethodGet, path: betaUpl + "/" + guidA, token: "reader"}), http.StatusBadRequest, "BadRequest", msg)
	// Authentication still comes first.
	f.wantError(f.do(req{method: http.MethodGet, path: uploads}), http.StatusUnauthorized, "InvalidAuthenticationToken", "")

	// Switching the fault off at run time restores the collection; nothing was stored meanwhile.
	f.emu.SetFaults(emulator.Faults{})
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if l.status != http.StatusOK || len(values(t, l)) != 0 {
		t.Errorf("after SetFaults: %d %s", l.status, l.raw)
	}
}

func TestFaultErrorRate(t *testing.T) {
	var draws atomic.Int64
	f := newFixture(t, func(o *emulator.Options) {
		o.Faults = emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{503}, Rand: func() float64 { draws.Add(1); return 0.5 }}
	})
	r := f.create("admin", createBody(guidA, "pending"))
	f.wantError(r, http.StatusServiceUnavailable, "ServiceUnavailable", "Injected failure")
	if ra := r.header.Get("Retry-After"); ra != "1" {
		t.Errorf("Retry-After %q, want 1", ra)
	}
	if draws.Load() == 0 {
		t.Errorf("injected Rand was not used")
	}

	// Only the listed methods fail.
	f.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{500, 504}, Methods: []string{http.MethodPost}, Rand: func() float64 { return 0.99 }})
	r = f.create("admin", createBody(guidA, "pending"))
	f.wantError(r, http.StatusGatewayTimeout, "GatewayTimeout", "Injected failure")
	if r.header.Get("Retry-After") != "" {
		t.Errorf("504 with Retry-After")
	}
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if l.status != http.StatusOK || len(values(t, l)) != 0 {
		t.Errorf("GET failed or failed POSTs stored: %d %s", l.status, l.raw)
	}

	// Each injected status carries the code Graph writes beside it.
	for status, code := range map[int]string{400: "BadRequest", 403: "Forbidden", 404: "ResourceNotFound", 409: "Conflict", 502: "BadGateway"} {
		f.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{status}})
		f.wantError(f.create("admin", createBody(guidA, "pending")), status, code, "Injected failure")
	}

	// 429 drawn at random is a throttle answer with Retry-After.
	f.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{429}, Rand: func() float64 { return 0 }})
	r = f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	f.wantError(r, http.StatusTooManyRequests, "TooManyRequests", "")
	if r.header.Get("Retry-After") == "" {
		t.Errorf("random 429 without Retry-After")
	}

	// Rate below the draw: no fault.
	f.emu.SetFaults(emulator.Faults{ErrorRate: 0.5, ErrorStatuses: []int{503}, Rand: func() float64 { return 0.7 }})
	if r := f.do(req{method: http.MethodGet, path: uploads, token: "admin"}); r.status != http.StatusOK {
		t.Errorf("draw above rate still failed: %d", r.status)
	}

	// Latency goes through the injected Sleep, never the real clock.
	var slept []time.Duration
	var mu sync.Mutex
	f.emu.SetFaults(emulator.Faults{LatencyMin: 10 * time.Second, LatencyMax: 20 * time.Second,
		Rand: func() float64 { return 0.5 }, Sleep: func(d time.Duration) { mu.Lock(); slept = append(slept, d); mu.Unlock() }})
	if r := f.do(req{method: http.MethodGet, path: uploads, token: "admin"}); r.status != http.StatusOK {
		t.Errorf("latency fault: %d", r.status)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(slept) != 1 || slept[0] != 15*time.Second {
		t.Errorf("slept %v, want [15s]", slept)
	}
}

func TestFaultThrottle(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults = emulator.Faults{ThrottleRequests: 2} })
	for i := range 2 {
		if r := f.do(req{method: http.MethodGet, path: uploads, token: "admin"}); r.status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, r.status, r.raw)
		}
	}
	f.clock.Advance(5 * time.Second)
	r := f.create("admin", createBody(guidA, "pending"))
	f.wantError(r, http.StatusTooManyRequests, "TooManyRequests", "Retry-After")
	if ra := r.header.Get("Retry-After"); ra != "15" {
		t.Errorf("Retry-After %q, want 15 (rest of the 20 s window)", ra)
	}

	// A new window after the clock passes the old one; the throttled POST was never executed.
	f.clock.Advance(15 * time.Second)
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if l.status != http.StatusOK {
		t.Fatalf("new window: %d %s", l.status, l.raw)
	}
	if len(values(t, l)) != 0 {
		t.Errorf("throttled POST was executed: %s", l.raw)
	}
	if r := f.create("admin", createBody(guidA, "pending")); r.status != http.StatusCreated {
		t.Errorf("second request of new window: %d %s", r.status, r.raw)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: uploads, token: "admin"}), http.StatusTooManyRequests, "TooManyRequests", "")

	// Write budget: reads pass, the second write is throttled.
	f.emu.SetFaults(emulator.Faults{ThrottleWrites: 1, ThrottleWindow: 10 * time.Second})
	if r := f.create("admin", createBody(guidB, "pending")); r.status != http.StatusCreated {
		t.Fatalf("first write: %d", r.status)
	}
	w := f.create("admin", createBody(guidC, "pending"))
	f.wantError(w, http.StatusTooManyRequests, "TooManyRequests", "")
	if w.header.Get("Retry-After") != "10" {
		t.Errorf("write Retry-After %q, want 10", w.header.Get("Retry-After"))
	}
	if r := f.do(req{method: http.MethodGet, path: uploads, token: "admin"}); r.status != http.StatusOK {
		t.Errorf("read throttled by the write budget: %d", r.status)
	}

	// Omitted Retry-After, as Intune sometimes does.
	f.emu.SetFaults(emulator.Faults{ThrottleRequests: 1, Omit429RetryAfter: 1, Rand: func() float64 { return 0 }})
	f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	o := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	f.wantError(o, http.StatusTooManyRequests, "TooManyRequests", "")
	if _, ok := o.header["Retry-After"]; ok {
		t.Errorf("Retry-After sent although omitted: %q", o.header.Get("Retry-After"))
	}
}

// Intune's budget belongs to one application in one tenant: another application, or the same
// application in another tenant, is not throttled by it.
func TestThrottleBudgetIsPerApplicationPerTenant(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults = emulator.Faults{ThrottleRequests: 1} })
	if r := f.do(req{method: http.MethodGet, path: uploads, token: "admin"}); r.status != http.StatusOK {
		t.Fatalf("first request: %d", r.status)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: uploads, token: "admin"}), http.StatusTooManyRequests, "TooManyRequests", "")
	for _, token := range []string{"admin-app2", "admin-b"} {
		if r := f.do(req{method: http.MethodGet, path: uploads, token: token}); r.status != http.StatusOK {
			t.Errorf("%s spent another budget: %d %s", token, r.status, r.raw)
		}
	}
}

func TestFaultPunishEarlyRetry(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) {
		o.Faults = emulator.Faults{ThrottleRequests: 1, PunishEarlyRetry: true}
	})
	f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	r := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	f.wantError(r, http.StatusTooManyRequests, "TooManyRequests", "")
	if r.header.Get("Retry-After") != "20" {
		t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
	}
	f.clock.Advance(time.Second)
	early := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	f.wantError(early, http.StatusTooManyRequests, "TooManyRequests", "")
	if early.header.Get("Retry-After") != "40" {
		t.Errorf("early retry Retry-After %q, want 40", early.header.Get("Retry-After"))
	}
	f.clock.Advance(40 * time.Second)
	if ok := f.do(req{method: http.MethodGet, path: uploads, token: "admin"}); ok.status != http.StatusOK {
		t.Errorf("patient retry: %d %s", ok.status, ok.raw)
	}
	if st := f.emu.Stats(); st.Throttled != 2 || st.Punished != 1 {
		t.Errorf("counted %d throttled, %d punished; want 2 and 1", st.Throttled, st.Punished)
	}
}

func TestStatePerTenant(t *testing.T) {
	f := newFixture(t, nil)
	f.create("admin", createBody(guidA, "pending"))
	f.emu.SeedDemo(tenantB, emulator.DemoUpload{ID: guidB, CreatedDateTimeUtc: seedDate, Status: "complete"})

	a := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if got := ids(t, a); !equal(got, []string{guidA}) {
		t.Errorf("tenant A sees %v", got)
	}
	b := f.do(req{method: http.MethodGet, path: uploads, token: "admin-b"})
	if got := ids(t, b); !equal(got, []string{guidB}) {
		t.Errorf("tenant B sees %v", got)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin-b"}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(f.do(req{method: http.MethodDelete, path: uploads + "/" + guidA, token: "admin-b"}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(f.do(req{method: http.MethodPatch, path: uploads + "/" + guidA, token: "admin-b", body: `{"status":"error"}`}), http.StatusNotFound, "ResourceNotFound", "")
	// The same id is free in another tenant.
	if r := f.create("admin-b", createBody(guidA, "error")); r.status != http.StatusCreated {
		t.Errorf("tenant B create with tenant A's id: %d %s", r.status, r.raw)
	}
	g := f.do(req{method: http.MethodGet, path: uploads + "/" + guidA, token: "admin"})
	if g.status != http.StatusOK || g.body["status"] != "pending" {
		t.Errorf("tenant A's upload touched by tenant B: %s", g.raw)
	}
}

func TestReceivedRecordsRequests(t *testing.T) {
	f := newFixture(t, nil)
	body := createBody(guidA, "pending")
	f.do(req{method: http.MethodPost, path: uploads, token: "admin", body: body, crid: "99999999-0000-4000-8000-000000000000"})
	f.do(req{method: http.MethodGet, path: uploads + "?$top=1", token: "reader"})
	f.do(req{method: http.MethodDelete, path: uploads + "/" + guidA, token: "expired"})

	got := f.emu.Received()
	if len(got) != 3 {
		t.Fatalf("received %d requests, want 3", len(got))
	}
	if got[0].Method != http.MethodPost || got[0].Path != uploads || string(got[0].Body) != body {
		t.Errorf("first %+v", got[0])
	}
	if got[0].Header.Get("Authorization") != "Bearer admin" || got[0].Header.Get("client-request-id") != "99999999-0000-4000-8000-000000000000" {
		t.Errorf("first headers %v", got[0].Header)
	}
	if got[1].Method != http.MethodGet || got[1].Path != uploads || got[1].RawQuery != "$top=1" || len(got[1].Body) != 0 {
		t.Errorf("second %+v", got[1])
	}
	if got[2].Method != http.MethodDelete || got[2].Path != uploads+"/"+guidA {
		t.Errorf("rejected requests are recorded too: %+v", got[2])
	}
	// Received returns a copy.
	got[0].Method = "MUTATED"
	if f.emu.Received()[0].Method != http.MethodPost {
		t.Errorf("Received shares its backing array")
	}
}

func TestConcurrentCreates(t *testing.T) {
	f := newFixture(t, nil)
	const n = 40
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Go(func() {
			res, err := f.srv.Client().Do(func() *http.Request {
				r, _ := http.NewRequest(http.MethodPost, f.srv.URL+uploads, strings.NewReader(createBody("", "pending")))
				r.Header.Set("Authorization", "Bearer admin")
				return r
			}())
			if err != nil {
				t.Error(err)
				return
			}
			io.Copy(io.Discard, res.Body)
			res.Body.Close()
			statuses[i] = res.StatusCode
		})
	}
	wg.Wait()
	for i, s := range statuses {
		if s != http.StatusCreated {
			t.Errorf("create %d: %d", i, s)
		}
	}
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	if got := len(values(t, l)); got != n {
		t.Errorf("%d uploads listed, want %d", got, n)
	}
	if len(f.emu.Received()) != n+1 {
		t.Errorf("received %d", len(f.emu.Received()))
	}
}

// A body that does not arrive whole (the client gave up while sending it) is acted on in no part:
// recorded as unread, answered 400, and not counted as an import.
func TestABodyCutShortIsNotActedOn(t *testing.T) {
	f := newFixture(t, nil)
	body := io.MultiReader(strings.NewReader(`{"importedWindowsAutopilotDeviceIdentities":[{"serialNumber":"SN-CUT"`), iotest.ErrReader(io.ErrUnexpectedEOF))
	r := httptest.NewRequest(http.MethodPost, "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities/import", body)
	r.Header.Set("Authorization", "Bearer admin")
	w := httptest.NewRecorder()
	f.emu.ServeHTTP(w, r)
	got := f.emu.Received()
	if w.Code != http.StatusBadRequest || len(got) == 0 || !got[len(got)-1].Unread || f.emu.Stats().ImportCalls != 0 {
		t.Errorf("a body cut short: %d, received %+v, %d import calls", w.Code, got, f.emu.Stats().ImportCalls)
	}
}

// The emulator writes JSON keys in Graph's order, as Microsoft's docs print them: an upload's id
// before its date, an error's code, message, then innerError, a collection's context before its
// next link and values.
func TestAnswersKeepGraphsKeyOrder(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.PageSize = 1 })
	order := func(raw []byte, keys ...string) {
		t.Helper()
		at := -1
		for _, k := range keys {
			i := bytes.Index(raw, []byte(`"`+k+`"`))
			if i <= at {
				t.Errorf("%q is not after the keys before it in %s", k, raw)
				return
			}
			at = i
		}
	}
	c := f.do(req{method: http.MethodPost, path: uploads, token: "admin", body: `{"@odata.type":"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload","createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`})
	order(c.raw, "@odata.context", "@odata.type", "id", "createdDateTimeUtc", "status")
	f.do(req{method: http.MethodPost, path: uploads, token: "admin", body: `{"createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`})
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	order(l.raw, "@odata.context", "@odata.nextLink", "value", "@odata.type", "id", "createdDateTimeUtc", "status")
	e := f.do(req{method: http.MethodGet, path: uploads + "/not-a-guid", token: "admin"})
	order(e.raw, "error", "code", "message", "innerError", "date", "request-id", "client-request-id")
}
