package emulator_test

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
)

const (
	devices    = "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities"
	importPath = devices + "/import"
	syncPath   = "/beta/deviceManagement/windowsAutopilotSettings/sync"
	deviceType = "#microsoft.graph.importedWindowsAutopilotDeviceIdentity"
)

// hash is a plausible 4K hardware hash, distinct per seed; its base64 ends in padding.
func hash(seed byte) string {
	return base64.StdEncoding.EncodeToString(append(bytes.Repeat([]byte{seed, 0x4b, 0x21}, 1000), seed))
}

func deviceJSON(serial, hw string) map[string]any {
	return map[string]any{"@odata.type": deviceType, "serialNumber": serial, "hardwareIdentifier": hw, "groupTag": "Sales"}
}

func importBody(devs ...map[string]any) string {
	b, _ := json.Marshal(map[string]any{"importedWindowsAutopilotDeviceIdentities": devs})
	return string(b)
}

func state(t *testing.T, v map[string]any) map[string]any {
	t.Helper()
	s, ok := v["state"].(map[string]any)
	if !ok {
		t.Fatalf("no state: %v", v)
	}
	return s
}

func statuses(t *testing.T, r reply) []string {
	t.Helper()
	var out []string
	for _, v := range values(t, r) {
		out = append(out, state(t, v)["deviceImportStatus"].(string))
	}
	return out
}

func TestImportProgressesToEachOutcome(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) {
		o.OtherTenantSerials = []string{"SOLD-ELSEWHERE"}
		o.ImportDelays = emulator.ImportDelays{Unknown: 2 * time.Second, Pending: 5 * time.Second}
	})
	// A device already registered in the tenant, from an earlier import.
	if r := f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(deviceJSON("ALREADY-1", hash(1)))}); r.status != http.StatusOK {
		t.Fatalf("first import %d %s", r.status, r.raw)
	}
	f.clock.Advance(time.Minute)

	r := f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(
		deviceJSON("GOOD-1", hash(2)),
		deviceJSON("already-1", hash(3)),      // serial present (case does not matter): 806
		deviceJSON("SOLD-ELSEWHERE", hash(4)), // 808
		deviceJSON("SHORT-1", "AAAA"),         // decodes, but far too short: 802
		deviceJSON("EMPTY-1", ""),             // 802
		deviceJSON("DUP-1", hash(2)),          // same hash as GOOD-1 in this import
		deviceJSON("", hash(5)),               // no serial, no product key: 803
	)})
	if r.status != http.StatusOK {
		t.Fatalf("import %d %s", r.status, r.raw)
	}
	if !strings.Contains(r.body["@odata.context"].(string), "Collection(microsoft.graph.importedWindowsAutopilotDeviceIdentity)") {
		t.Errorf("@odata.context %v", r.body["@odata.context"])
	}
	got := values(t, r)
	if len(got) != 7 {
		t.Fatalf("%d records, want 7", len(got))
	}
	for _, v := range got {
		if !guid.Valid(v["id"].(string)) || v["@odata.type"] != deviceType || v["groupTag"] != "Sales" {
			t.Errorf("record %v", v)
		}
		if s := state(t, v); s["deviceImportStatus"] != "unknown" || s["deviceErrorCode"] != 0.0 {
			t.Errorf("fresh state %v", s)
		}
	}
	firstID := got[0]["id"].(string)

	list := func() reply {
		return f.do(req{method: http.MethodGet, path: devices + "?$filter=" + url.QueryEscape("serialNumber eq 'GOOD-1'"), token: "reader"})
	}
	f.clock.Advance(time.Second)
	if s := statuses(t, list()); strings.Join(s, ",") != "unknown" {
		t.Errorf("after 1 s: %v", s)
	}
	f.clock.Advance(time.Second)
	if s := statuses(t, list()); strings.Join(s, ",") != "pending" {
		t.Errorf("after 2 s: %v", s)
	}
	f.clock.Advance(5 * time.Second)

	all := f.do(req{method: http.MethodGet, path: devices, token: "reader"})
	type final struct {
		status string
		code   float64
		name   string
	}
	want := map[string]final{
		"ALREADY-1":      {"complete", 0, ""},
		"GOOD-1":         {"complete", 0, ""},
		"already-1":      {"error", 806, "ZtdDeviceAlreadyAssigned"},
		"SOLD-ELSEWHERE": {"error", 808, "ZtdDeviceAssignedToOtherTenant"},
		"SHORT-1":        {"error", 802, "InvalidZtdHardwareHash"},
		"EMPTY-1":        {"error", 802, "InvalidZtdHardwareHash"},
		"DUP-1":          {"error", 0, "ZtdDeviceDuplicated"},
		"":               {"error", 803, "MissingZtdSerialNumberAndProductKey"},
	}
	vs := values(t, all)
	if len(vs) != len(want) {
		t.Fatalf("%d devices listed, want %d", len(vs), len(want))
	}
	for _, v := range vs {
		s := state(t, v)
		w := want[v["serialNumber"].(string)]
		if got := (final{s["deviceImportStatus"].(string), s["deviceErrorCode"].(float64), s["deviceErrorName"].(string)}); got != w {
			t.Errorf("%q: %+v, want %+v", v["serialNumber"], got, w)
		}
		reg := s["deviceRegistrationId"].(string)
		if (w.status == "complete") != guid.Valid(reg) {
			t.Errorf("%q: deviceRegistrationId %q", v["serialNumber"], reg)
		}
	}

	// Get by id agrees with the list.
	g := f.do(req{method: http.MethodGet, path: devices + "/" + firstID, token: "reader"})
	if g.status != http.StatusOK || state(t, g.body)["deviceImportStatus"] != "complete" || !strings.HasSuffix(g.body["@odata.context"].(string), "/$entity") {
		t.Errorf("get %d %s", g.status, g.raw)
	}
}

func TestImportRejectsBadBodies(t *testing.T) {
	f := newFixture(t, nil)
	unpadded := strings.TrimRight(hash(7), "=")
	if unpadded == hash(7) {
		t.Fatal("test hash needs padding")
	}
	withOrder := deviceJSON("S1", hash(1))
	withOrder["orderIdentifier"] = "PO-1"
	wrongType := deviceJSON("S1", hash(1))
	wrongType["@odata.type"] = "#microsoft.graph.windowsAutopilotDeviceIdentity"
	for name, c := range map[string]struct{ body, msg string }{
		"unpadded base64": {importBody(deviceJSON("S1", unpadded)), "to the expected type 'Edm.Binary'"},
		"not base64":      {importBody(deviceJSON("S1", "%%%")), "'Edm.Binary'"},
		"malformed JSON":  {`{"importedWindowsAutopilotDeviceIdentities":[`, "Invalid JSON"},
		"trailing data":   {importBody() + `{}`, "Invalid JSON"},
		"not a list":      {`{"importedWindowsAutopilotDeviceIdentities":{}}`, "not a collection"},
		"unknown param":   {`{"devices":[]}`, "'devices'"},
		"unknown prop":    {importBody(withOrder), "The property 'orderIdentifier' does not exist"},
		"wrong type":      {importBody(wrongType), "could not be resolved"},
		"non-string":      {`{"importedWindowsAutopilotDeviceIdentities":[{"serialNumber":5}]}`, "'serialNumber'"},
	} {
		t.Run(name, func(t *testing.T) {
			f.t = t
			r := f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: c.body})
			msg := f.wantError(r, http.StatusBadRequest, "BadRequest", c.msg)
			if strings.Contains(msg, unpadded[:40]) {
				t.Errorf("message echoes the hash: %q", msg)
			}
		})
	}
	f.t = t
	if l := f.do(req{method: http.MethodGet, path: devices, token: "admin"}); len(values(t, l)) != 0 {
		t.Errorf("a refused import stored devices: %s", l.raw)
	}
	// A reader may not import.
	f.wantError(f.do(req{method: http.MethodPost, path: importPath, token: "reader", body: importBody(deviceJSON("S1", hash(1)))}), http.StatusForbidden, "Forbidden", "")
}

func TestDeviceCRUDAndFilters(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.PageSize = 2 })
	b, _ := json.Marshal(deviceJSON("PF-ABC-1", hash(1)))
	c := f.do(req{method: http.MethodPost, path: devices, token: "admin", body: string(b)})
	if c.status != http.StatusCreated || c.body["serialNumber"] != "PF-ABC-1" || c.body["@odata.context"] == nil {
		t.Fatalf("create %d %s", c.status, c.raw)
	}
	id := c.body["id"].(string)
	for i, serial := range []string{"PF-ABC-2", "XY-9"} {
		b, _ := json.Marshal(deviceJSON(serial, hash(byte(10+i))))
		f.do(req{method: http.MethodPost, path: devices, token: "admin", body: string(b)})
	}

	serials := func(path string) []string {
		var out []string
		for link := path; link != ""; {
			r := f.do(req{method: http.MethodGet, path: link, token: "reader"})
			if r.status != http.StatusOK {
				t.Fatalf("%s: %d %s", link, r.status, r.raw)
			}
			for _, v := range values(t, r) {
				out = append(out, v["serialNumber"].(string))
			}
			link, _ = r.body["@odata.nextLink"].(string)
		}
		return out
	}
	if got := serials(devices); !equal(got, []string{"PF-ABC-1", "PF-ABC-2", "XY-9"}) {
		t.Errorf("all pages %v", got)
	}
	if got := serials(devices + "?$filter=" + url.QueryEscape("contains(serialNumber,'abc')")); !equal(got, []string{"PF-ABC-1", "PF-ABC-2"}) {
		t.Errorf("contains %v", got)
	}
	if got := serials(devices + "?$filter=" + url.QueryEscape("serialNumber eq 'XY-9'")); !equal(got, []string{"XY-9"}) {
		t.Errorf("eq %v", got)
	}
	// $top above the page size pages rather than dropping rows, and stops at $top.
	if got := serials(devices + "?$top=3"); len(got) != 3 {
		t.Errorf("$top=3 over pages of 2: %v", got)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: devices + "?$filter=" + url.QueryEscape("groupTag eq 'x'"), token: "admin"}), http.StatusBadRequest, "BadRequest", "Invalid filter")
	// A quote inside an OData literal is doubled, as the desk sends it; a lone one ends the literal.
	b, _ = json.Marshal(deviceJSON("AB'C-1", hash(20)))
	f.do(req{method: http.MethodPost, path: devices, token: "admin", body: string(b)})
	if got := serials(devices + "?$filter=" + url.QueryEscape("contains(serialNumber,'AB''C-1')")); !equal(got, []string{"AB'C-1"}) {
		t.Errorf("contains with a doubled quote %v", got)
	}
	if got := serials(devices + "?$filter=" + url.QueryEscape("serialNumber eq 'ab''c-1'")); !equal(got, []string{"AB'C-1"}) {
		t.Errorf("eq with a doubled quote %v", got)
	}
	for _, bad := range []string{"contains(serialNumber,'AB'C-1')", "serialNumber eq 'AB'C-1'", "serialNumber eq 'X' ", "contains(serialNumber,'X') or true"} {
		f.wantError(f.do(req{method: http.MethodGet, path: devices + "?$filter=" + url.QueryEscape(bad), token: "admin"}), http.StatusBadRequest, "BadRequest", "Invalid filter")
	}

	f.wantError(f.do(req{method: http.MethodPatch, path: devices + "/" + id, token: "admin", body: `{"groupTag":"x"}`}), http.StatusBadRequest, "No method match route template", "PATCH")
	f.wantError(f.do(req{method: http.MethodGet, path: importPath, token: "admin"}), http.StatusBadRequest, "No method match route template", "GET")
	f.wantError(f.do(req{method: http.MethodPut, path: devices, token: "admin", body: "{}"}), http.StatusBadRequest, "No method match route template", "PUT")
	f.wantError(f.do(req{method: http.MethodGet, path: devices + "/nope", token: "admin"}), http.StatusBadRequest, "BadRequest", "Invalid key")

	if d := f.do(req{method: http.MethodDelete, path: devices + "/" + id, token: "admin"}); d.status != http.StatusNoContent || len(d.raw) != 0 {
		t.Errorf("delete %d %s", d.status, d.raw)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: devices + "/" + id, token: "admin"}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(f.do(req{method: http.MethodDelete, path: devices + "/" + id, token: "admin"}), http.StatusNotFound, "ResourceNotFound", "")

	// Other tenants see none of it.
	if l := f.do(req{method: http.MethodGet, path: devices, token: "admin-b"}); len(values(t, l)) != 0 {
		t.Errorf("tenant B sees %s", l.raw)
	}
}

func TestUploadDeviceIdentities(t *testing.T) {
	f := newFixture(t, nil)
	f.create("admin", createBody(guidA, "pending"))
	nested := uploads + "/" + guidA + "/deviceIdentities"

	b, _ := json.Marshal(deviceJSON("UP-1", hash(1)))
	c := f.do(req{method: http.MethodPost, path: nested, token: "admin", body: string(b)})
	if c.status != http.StatusCreated {
		t.Fatalf("nested create %d %s", c.status, c.raw)
	}
	if want := ctxV1 + "('" + guidA + "')/deviceIdentities/$entity"; c.body["@odata.context"] != want {
		t.Errorf("@odata.context %v, want %s", c.body["@odata.context"], want)
	}
	did := c.body["id"].(string)

	l := f.do(req{method: http.MethodGet, path: nested, token: "reader"})
	if l.status != http.StatusOK || len(values(t, l)) != 1 {
		t.Errorf("nested list %d %s", l.status, l.raw)
	}
	// The tenant's own device list is a different collection.
	if d := f.do(req{method: http.MethodGet, path: devices, token: "admin"}); len(values(t, d)) != 0 {
		t.Errorf("nested device leaked into the tenant list: %s", d.raw)
	}

	p := f.do(req{method: http.MethodPatch, path: nested + "/" + did, token: "admin", body: `{"groupTag":"Finance"}`})
	if p.status != http.StatusOK || p.body["groupTag"] != "Finance" || p.body["serialNumber"] != "UP-1" {
		t.Errorf("nested patch %d %s", p.status, p.raw)
	}
	f.wantError(f.do(req{method: http.MethodPatch, path: nested + "/" + did, token: "admin", body: `{"colour":"red"}`}), http.StatusBadRequest, "BadRequest", "'colour'")
	g := f.do(req{method: http.MethodGet, path: nested + "/" + did, token: "reader"})
	if g.status != http.StatusOK || g.body["groupTag"] != "Finance" {
		t.Errorf("nested get %d %s", g.status, g.raw)
	}

	s := f.do(req{method: http.MethodGet, path: uploads + "/" + guidA + "/autopilotDeviceStream", token: "reader"})
	stream, _ := s.body["value"].(string)
	if s.status != http.StatusOK || !strings.HasPrefix(stream, "Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n") || !strings.Contains(stream, "UP-1,,"+hash(1)+",Finance,") {
		t.Errorf("stream %d %.200s", s.status, s.raw)
	}

	if d := f.do(req{method: http.MethodDelete, path: nested + "/" + did, token: "admin"}); d.status != http.StatusNoContent {
		t.Errorf("nested delete %d", d.status)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: nested + "/" + did, token: "admin"}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(f.do(req{method: http.MethodPatch, path: nested + "/" + did, token: "admin", body: `{}`}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(f.do(req{method: http.MethodPut, path: nested, token: "admin", body: `{}`}), http.StatusBadRequest, "No method match route template", "")

	// Missing upload, and another tenant's upload.
	other := uploads + "/" + guidB + "/deviceIdentities"
	f.wantError(f.do(req{method: http.MethodGet, path: other, token: "admin"}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(f.do(req{method: http.MethodGet, path: nested, token: "admin-b"}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(f.do(req{method: http.MethodGet, path: uploads + "/" + guidB + "/autopilotDeviceStream", token: "admin"}), http.StatusNotFound, "ResourceNotFound", "")
}

func TestSyncWindow(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.SyncDuration = time.Minute })
	if r := f.do(req{method: http.MethodPost, path: syncPath, token: "admin"}); r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("first sync %d %s", r.status, r.raw)
	}
	f.clock.Advance(30 * time.Second)
	f.wantError(f.do(req{method: http.MethodPost, path: syncPath, token: "admin"}), http.StatusConflict, "Conflict", "already in progress")

	f.clock.Advance(90 * time.Second) // 2 minutes after the first
	r := f.do(req{method: http.MethodPost, path: syncPath, token: "admin"})
	f.wantError(r, http.StatusTooManyRequests, "TooManyRequests", "less than 10 minutes ago")
	if r.header.Get("Retry-After") != "480" {
		t.Errorf("Retry-After %q, want 480", r.header.Get("Retry-After"))
	}
	// Another tenant has its own window.
	if b := f.do(req{method: http.MethodPost, path: syncPath, token: "admin-b"}); b.status != http.StatusNoContent {
		t.Errorf("tenant B sync %d", b.status)
	}
	f.clock.Advance(8 * time.Minute)
	if r := f.do(req{method: http.MethodPost, path: syncPath, token: "admin"}); r.status != http.StatusNoContent {
		t.Errorf("sync after 10 minutes %d %s", r.status, r.raw)
	}

	f.wantError(f.do(req{method: http.MethodPost, path: syncPath, token: "reader"}), http.StatusForbidden, "Forbidden", "")
	f.wantError(f.do(req{method: http.MethodGet, path: syncPath, token: "admin"}), http.StatusBadRequest, "No method match route template", "")
	f.wantError(f.do(req{method: http.MethodPost, path: "/v1.0/deviceManagement/windowsAutopilotSettings/other", token: "admin"}), http.StatusBadRequest, "BadRequest", "segment 'other'")
}

func TestFaultForbidWritesNested(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults.Forbid403Nested = true })
	for _, r := range []req{
		{method: http.MethodPost, path: uploads, token: "admin", body: createBody(guidA, "pending")},
		{method: http.MethodPost, path: importPath, token: "admin", body: importBody(deviceJSON("S", hash(1)))},
		{method: http.MethodPost, path: syncPath, token: "admin"},
	} {
		msg := f.wantError(f.do(r), http.StatusForbidden, "Forbidden", "")
		var inner struct{ Message string }
		if err := json.Unmarshal([]byte(msg), &inner); err != nil || !strings.Contains(inner.Message, "Url: https://fef.") || !strings.Contains(inner.Message, r.path[len("/v1.0"):]) {
			t.Errorf("%s: nested message %q (%v)", r.path, msg, err)
		}
	}
	if l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"}); l.status != http.StatusOK {
		t.Errorf("read under Forbid403Nested: %d", l.status)
	}
}

func TestStatsAndSeedDemo(t *testing.T) {
	f := newFixture(t, nil)
	f.emu.SeedDemo(tenantA)
	l := f.do(req{method: http.MethodGet, path: uploads, token: "admin"})
	vs := values(t, l)
	if len(vs) != 8 {
		t.Fatalf("demo uploads %d", len(vs))
	}
	seen := map[string]bool{}
	for _, v := range vs {
		seen[v["status"].(string)] = true
		if _, err := time.Parse(time.RFC3339Nano, v["createdDateTimeUtc"].(string)); err != nil {
			t.Errorf("demo date %v: %v", v["createdDateTimeUtc"], err)
		}
	}
	if len(seen) != 4 {
		t.Errorf("demo statuses %v, want all four", seen)
	}
	f.do(req{method: http.MethodGet, path: uploads, token: "nobody"})
	if s := f.emu.Stats(); s.Requests != 2 || s.Connections < 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestConcurrentImportsListsAndSyncs(t *testing.T) {
	f := newFixture(t, nil)
	const n = 20
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			for _, r := range []*http.Request{
				newRequest(f, http.MethodPost, importPath, importBody(deviceJSON(fmt.Sprint("C-", i), hash(byte(i))))),
				newRequest(f, http.MethodGet, devices, ""),
				newRequest(f, http.MethodPost, syncPath, ""),
			} {
				res, err := f.srv.Client().Do(r)
				if err != nil {
					t.Error(err)
					return
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
			}
		})
	}
	wg.Wait()
	if l := f.do(req{method: http.MethodGet, path: devices, token: "admin"}); len(values(t, l)) != n {
		t.Errorf("%d devices after %d concurrent imports", len(values(t, l)), n)
	}
	if s := f.emu.Stats(); s.Requests != 3*n+1 {
		t.Errorf("stats %+v", s)
	}
}

func newRequest(f *fixture, method, path, body string) *http.Request {
	r, _ := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer admin")
	return r
}

// Only beta has windowsAutopilotSettings: v1.0 answers with Graph's own 400 for the segment.
func TestSyncExistsOnlyInBeta(t *testing.T) {
	f := newFixture(t, nil)
	f.wantError(f.do(req{method: http.MethodPost, path: "/v1.0/deviceManagement/windowsAutopilotSettings/sync", token: "admin"}),
		http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'windowsAutopilotSettings'.")
	if r := f.do(req{method: http.MethodPost, path: syncPath, token: "admin"}); r.status != http.StatusNoContent {
		t.Errorf("beta sync %d %s", r.status, r.raw)
	}
}

// realHash is a hardware hash of the size real devices have (about 4,000 base64 characters).
func realHash(seed int) string {
	b := make([]byte, 3000)
	for i := range b {
		b[i] = byte(seed*31 + i*7)
	}
	return base64.StdEncoding.EncodeToString(b)
}

// Every body Graph accepts is read whole (a 500-device import of real-sized hashes is about
// 2.1 MB); one over Graph's 4 MB limit gets 413 before anything is imported.
func TestRequestBodiesUpToGraphsLimit(t *testing.T) {
	f := newFixture(t, nil)
	var devs []map[string]any
	for i := 0; i < 500; i++ {
		devs = append(devs, deviceJSON(fmt.Sprintf("BIG-%03d", i), realHash(i)))
	}
	body := importBody(devs...)
	if len(body) < 2_000_000 {
		t.Fatalf("the test body is only %d bytes", len(body))
	}
	r := f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: body})
	if r.status != http.StatusOK || len(values(t, r)) != 500 {
		t.Fatalf("a %d-byte import answered %d: %.300s", len(body), r.status, r.raw)
	}
	// Just under the limit: whitespace is JSON too.
	padded := body[:len(body)-1] + strings.Repeat(" ", emulator.MaxRequestBytes-len(body)) + "}"
	if len(padded) != emulator.MaxRequestBytes {
		t.Fatalf("padded body is %d bytes", len(padded))
	}
	if r := f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: strings.Replace(padded, "BIG-", "PAD-", -1)}); r.status != http.StatusOK {
		t.Fatalf("a body of exactly %d bytes answered %d: %.300s", len(padded), r.status, r.raw)
	}
	over := padded[:len(padded)-1] + " }"
	f.wantError(f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: over}), http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "maximum limit")
}

// Options.Outcomes gives chosen serials a partial import, a null state or an unusual error.
func TestChosenOutcomes(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) {
		o.ImportDelays = emulator.ImportDelays{Unknown: time.Second, Pending: time.Second}
		o.Outcomes = map[string]emulator.Outcome{
			"PART-1": {Status: "partial", ErrorName: "ZtdDeviceProfileNotAssigned"},
			"NULL-1": {Status: "null"},
			"ODD-1":  {Status: "error", ErrorCode: 999, ErrorName: "=HYPERLINK(\"x\")"},
		}
	})
	r := f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(
		deviceJSON("PART-1", hash(1)), deviceJSON("NULL-1", hash(2)), deviceJSON("ODD-1", hash(3)))})
	if r.status != http.StatusOK {
		t.Fatalf("import %d %s", r.status, r.raw)
	}
	f.clock.Advance(time.Minute)
	got := values(t, f.do(req{method: http.MethodGet, path: devices, token: "admin"}))
	if len(got) != 3 {
		t.Fatalf("%d devices", len(got))
	}
	if s := state(t, got[0]); s["deviceImportStatus"] != "partial" || s["deviceRegistrationId"] == "" {
		t.Errorf("partial device state = %v", s)
	}
	if got[1]["state"] != nil {
		t.Errorf("null-state device state = %v", got[1]["state"])
	}
	if s := state(t, got[2]); s["deviceImportStatus"] != "error" || s["deviceErrorName"] != "=HYPERLINK(\"x\")" || s["deviceErrorCode"] != float64(999) {
		t.Errorf("odd device state = %v", s)
	}
}

// LoseWriteAnswers: the write is carried out, then answered 504, as when an answer is lost on
// its way back; the devices are there to be found.
func TestLoseWriteAnswers(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults = emulator.Faults{LoseWriteAnswers: true} })
	f.wantError(f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(deviceJSON("LOST-1", hash(1)))}),
		http.StatusGatewayTimeout, "GatewayTimeout", "answer was lost")
	got := values(t, f.do(req{method: http.MethodGet, path: devices + "?$filter=" + url.QueryEscape("serialNumber eq 'LOST-1'"), token: "admin"}))
	if len(got) != 1 {
		t.Errorf("%d devices imported by the write whose answer was lost", len(got))
	}
}

func TestImportRecordsSayWhenEachImportArrivedAndEnds(t *testing.T) {
	clock := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	e := emulator.New(emulator.Options{Verify: func(string) (emulator.Principal, error) {
		return emulator.Principal{TenantID: "t", Scopes: []string{"DeviceManagementServiceConfig.ReadWrite.All"}}, nil
	}, Now: func() time.Time { return clock }, ImportDelays: emulator.ImportDelays{Unknown: time.Second, Pending: 2 * time.Second}})
	hash := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 3000))
	for _, serial := range []string{"A1", "B2"} {
		body := `{"importedWindowsAutopilotDeviceIdentities":[{"serialNumber":"` + serial + `","hardwareIdentifier":"` + hash + `"}]}`
		req := httptest.NewRequest(http.MethodPost, "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities/import", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer x")
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			t.Fatalf("import answered %d: %s", rec.Code, rec.Body)
		}
		clock = clock.Add(time.Minute)
	}
	got := e.ImportRecords("t")
	if len(got) != 2 || got[0].SerialNumber != "A1" || got[1].SerialNumber != "B2" || got[1].Arrived.Sub(got[0].Arrived) != time.Minute ||
		got[0].Final.Sub(got[0].Arrived) != 3*time.Second {
		t.Errorf("records %+v", got)
	}
}

// The count of import actions outlasts the bounded log of received requests: a test that reads
// it after a busy run still sees every import sent, and nothing else counted as one.
func TestImportCallsOutlastTheReceivedLog(t *testing.T) {
	f := newFixture(t, nil)
	f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(deviceJSON("SN-COUNT", hash(1)))})
	f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: "not json"}) // refused, still an import call
	for range 1000 {
		f.do(req{method: http.MethodGet, path: devices + "?$top=1", token: "admin"})
	}
	for _, r := range f.emu.Received() {
		if strings.HasSuffix(r.Path, "/import") {
			t.Fatalf("the log still holds an import: this test no longer overruns it")
		}
	}
	if got := f.emu.Stats().ImportCalls; got != 2 {
		t.Errorf("%d import calls counted, want 2", got)
	}
}

// windowsAutopilotSettings (beta only) says the tenant's sync: never, then seeded as Intune's own,
// in progress while a sync asked for runs, completed after it; another tenant has its own.
func TestAutopilotSettingsFollowTheSync(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.SyncDuration = time.Minute })
	settings := strings.TrimSuffix(syncPath, "/sync")
	read := func(token string) reply {
		t.Helper()
		r := f.do(req{method: http.MethodGet, path: settings, token: token})
		if r.status != http.StatusOK || r.body["@odata.context"] != "https://graph.microsoft.com/beta/$metadata#deviceManagement/windowsAutopilotSettings/$entity" ||
			r.body["@odata.type"] != "#microsoft.graph.windowsAutopilotSettings" {
			t.Fatalf("settings %d %s", r.status, r.raw)
		}
		return r
	}
	want := func(r reply, status, last, asked string) {
		t.Helper()
		if r.body["syncStatus"] != status || r.body["lastSyncDateTime"] != last || r.body["lastManualSyncTriggerDateTime"] != asked {
			t.Errorf("settings %s, want %s %s %s", r.raw, status, last, asked)
		}
	}
	never := "0001-01-01T00:00:00Z"
	want(read("reader"), "unknown", never, never)
	start := f.clock.Now()
	at := func(t time.Time) string { return t.UTC().Truncate(100 * time.Nanosecond).Format(time.RFC3339Nano) } // Graph's 7 digits at most
	f.emu.SeedAutopilotSync(tenantA, 3*time.Hour)
	seeded := start.Add(-3 * time.Hour).UTC().Truncate(time.Second).Format(time.RFC3339)
	want(read("reader"), "completed", seeded, never)
	if r := f.do(req{method: http.MethodPost, path: syncPath, token: "admin"}); r.status != http.StatusNoContent {
		t.Fatalf("sync %d %s", r.status, r.raw)
	}
	f.clock.Advance(30 * time.Second)
	want(read("reader"), "inProgress", seeded, at(start))
	f.clock.Advance(30 * time.Second)
	want(read("reader"), "completed", at(start.Add(time.Minute)), at(start))
	want(read("admin-b"), "unknown", never, never)

	f.wantError(f.do(req{method: http.MethodGet, path: "/v1.0/deviceManagement/windowsAutopilotSettings", token: "reader"}),
		http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'windowsAutopilotSettings'.")
	f.wantError(f.do(req{method: http.MethodPatch, path: settings, token: "admin", body: `{}`}), http.StatusBadRequest, "No method match route template", "")
}
