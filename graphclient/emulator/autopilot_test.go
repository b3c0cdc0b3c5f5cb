package emulator_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
)

const (
	registered   = "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities"
	registeredT  = "#microsoft.graph.windowsAutopilotDeviceIdentity"
	registeredID = "0e1d2c3b-4a59-4687-9a6b-5c4d3e2f1a0b"
	enrolledID   = "1f2e3d4c-5b6a-4798-8a7b-6c5d4e3f2a1b"
)

// seedRegistered preloads a not-yet-contacted device, an enrolled one and one with a quote in
// its serial number.
func seedRegistered(f *fixture) {
	f.emu.SeedAutopilotDevices(tenantA,
		emulator.AutopilotDevice{ID: registeredID, SerialNumber: "5CG3281JQZ", Manufacturer: "HP", Model: "HP EliteBook 840 14 inch G10 Notebook PC",
			EnrollmentState: "notContacted", GroupTag: "Sales", UserPrincipalName: "AdeleV@contoso.example", AddressableUserName: "Adele Vance"},
		emulator.AutopilotDevice{ID: enrolledID, SerialNumber: "7HX2LM3", Manufacturer: "Dell Inc.", Model: "Latitude 5440", EnrollmentState: "enrolled",
			ManagedDeviceID: "2a3b4c5d-6e7f-4081-9293-a4b5c6d7e8f9", LastContacted: time.Date(2026, 11, 27, 8, 15, 2, 0, time.UTC)},
		emulator.AutopilotDevice{SerialNumber: "O'NEIL-5CG1", Manufacturer: "LENOVO", Model: "21HD003QUS"},
	)
}

func filterQuery(f string) string { return "?%24filter=" + url.QueryEscape(f) }

func serials(t *testing.T, r reply) []string {
	t.Helper()
	var out []string
	for _, v := range values(t, r) {
		out = append(out, v["serialNumber"].(string))
	}
	return out
}

func TestRegisteredDevicesListGetFilterAndPage(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.PageSize = 2 })
	seedRegistered(f)
	r := f.do(req{method: http.MethodGet, path: registered, token: "reader"})
	if r.status != http.StatusOK || r.body["@odata.context"] != "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/windowsAutopilotDeviceIdentities" {
		t.Fatalf("list %d %s", r.status, r.raw)
	}
	if got := serials(t, r); !equal(got, []string{"5CG3281JQZ", "7HX2LM3"}) {
		t.Errorf("first page %v", got)
	}
	next, _ := r.body["@odata.nextLink"].(string)
	if !strings.HasPrefix(next, f.srv.URL+registered+"?") {
		t.Fatalf("nextLink %q", next)
	}
	r2 := f.do(req{method: http.MethodGet, path: next, token: "reader"})
	if got := serials(t, r2); !equal(got, []string{"O'NEIL-5CG1"}) || r2.body["@odata.nextLink"] != nil {
		t.Errorf("second page %v %v", got, r2.body["@odata.nextLink"])
	}
	v := values(t, r)[0]
	for _, k := range []string{"id", "groupTag", "purchaseOrderIdentifier", "serialNumber", "productKey", "manufacturer", "model", "enrollmentState",
		"lastContactedDateTime", "addressableUserName", "userPrincipalName", "resourceName", "skuNumber", "systemFamily",
		"azureActiveDirectoryDeviceId", "managedDeviceId", "displayName"} {
		if _, ok := v[k]; !ok {
			t.Errorf("property %s missing: %v", k, v)
		}
	}
	if v["@odata.type"] != registeredT || v["lastContactedDateTime"] != "0001-01-01T00:00:00Z" || v["enrollmentState"] != "notContacted" {
		t.Errorf("device %v", v)
	}

	g := f.do(req{method: http.MethodGet, path: registered + "/" + enrolledID, token: "reader"})
	if g.status != http.StatusOK || g.body["lastContactedDateTime"] != "2026-11-27T08:15:02Z" || g.body["enrollmentState"] != "enrolled" ||
		g.body["@odata.context"] != "https://graph.microsoft.com/v1.0/$metadata#deviceManagement/windowsAutopilotDeviceIdentities/$entity" {
		t.Errorf("get %d %s", g.status, g.raw)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: registered + "/" + guidA, token: "reader"}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(f.do(req{method: http.MethodGet, path: registered + "/not-a-key", token: "reader"}), http.StatusBadRequest, "BadRequest", "Invalid key")

	// contains() matches any part, in any letter case; a quote in the literal is doubled.
	for filter, want := range map[string][]string{
		"contains(serialNumber,'5cg')":        {"5CG3281JQZ", "O'NEIL-5CG1"},
		"contains(serialNumber,'O''NEIL')":    {"O'NEIL-5CG1"},
		"contains(serialNumber, '7HX2LM3')":   {"7HX2LM3"},
		"contains(serialNumber,'NOT-THERE')":  nil,
		"contains(serialNumber,'''')":         {"O'NEIL-5CG1"},
		"contains(serialNumber,'5CG3281JQZ')": {"5CG3281JQZ"},
	} {
		r := f.do(req{method: http.MethodGet, path: registered + filterQuery(filter), token: "reader"})
		if r.status != http.StatusOK || !equal(serials(t, r), want) {
			t.Errorf("%s: %d %v, want %v", filter, r.status, r.raw, want)
		}
	}
	// Every other filter form, and sorting, is refused as Graph refuses an unsupported query.
	for _, q := range []string{
		filterQuery("serialNumber eq '7HX2LM3'"), filterQuery("startswith(serialNumber,'7H')"),
		filterQuery("contains(serialNumber,'a') or contains(serialNumber,'b')"), filterQuery("contains(serialNumber,'it's')"),
		filterQuery("contains(groupTag,'Sales')"), "?%24orderby=serialNumber", "?%24search=%227HX%22",
	} {
		f.wantError(f.do(req{method: http.MethodGet, path: registered + q, token: "reader"}), http.StatusBadRequest, "BadRequest", "not supported")
	}
	// Another tenant sees none of them.
	if r := f.do(req{method: http.MethodGet, path: registered, token: "admin-b"}); len(values(t, r)) != 0 {
		t.Errorf("tenant B sees %s", r.raw)
	}
	// Devices are registered by importing them: no create, no PATCH.
	f.wantError(f.do(req{method: http.MethodPost, path: registered, token: "admin", body: `{"serialNumber":"X"}`}), http.StatusBadRequest, "No method match route template", "")
	f.wantError(f.do(req{method: http.MethodPatch, path: registered + "/" + registeredID, token: "admin", body: `{"groupTag":"X"}`}), http.StatusBadRequest, "No method match route template", "")
}

func action(f *fixture, token, id, name, body string) reply {
	return f.do(req{method: http.MethodPost, path: registered + "/" + id + "/" + name, token: token, body: body})
}

func TestRegisteredDeviceActionsAreEventuallyConsistent(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.ConsistencyDelay = 30 * time.Second })
	seedRegistered(f)
	get := func() map[string]any {
		t.Helper()
		r := f.do(req{method: http.MethodGet, path: registered + "/" + registeredID, token: "reader"})
		if r.status != http.StatusOK {
			t.Fatalf("get %d %s", r.status, r.raw)
		}
		return r.body
	}
	if r := action(f, "admin", registeredID, "updateDeviceProperties", `{"groupTag":"Kiosk","displayName":"KIOSK-%RAND:4%"}`); r.status != http.StatusNoContent || len(r.raw) != 0 {
		t.Fatalf("update %d %s", r.status, r.raw)
	}
	if d := get(); d["groupTag"] != "Sales" {
		t.Errorf("the change showed at once: %v", d["groupTag"])
	}
	f.clock.Advance(29 * time.Second)
	if d := get(); d["groupTag"] != "Sales" {
		t.Errorf("the change showed before the delay: %v", d["groupTag"])
	}
	f.clock.Advance(time.Second)
	if d := get(); d["groupTag"] != "Kiosk" || d["displayName"] != "KIOSK-%RAND:4%" || d["userPrincipalName"] != "AdeleV@contoso.example" {
		t.Errorf("after the delay: %v", d)
	}

	if r := action(f, "admin", registeredID, "microsoft.graph.unassignUserFromDevice", ""); r.status != http.StatusNoContent {
		t.Fatalf("unassign %d %s", r.status, r.raw)
	}
	// Writes see the newest state at once: assigning right after builds on the unassignment.
	if r := action(f, "admin", registeredID, "assignUserToDevice", `{"userPrincipalName":"MeganB@contoso.example","addressableUserName":"Megan Bowen"}`); r.status != http.StatusNoContent {
		t.Fatalf("assign %d %s", r.status, r.raw)
	}
	if d := get(); d["userPrincipalName"] != "AdeleV@contoso.example" {
		t.Errorf("assignment showed at once: %v", d)
	}
	f.clock.Advance(30 * time.Second)
	if d := get(); d["userPrincipalName"] != "MeganB@contoso.example" || d["addressableUserName"] != "Megan Bowen" || d["groupTag"] != "Kiosk" {
		t.Errorf("after assign: %v", d)
	}
	if r := action(f, "admin", registeredID, "unassignUserFromDevice", "{}"); r.status != http.StatusNoContent {
		t.Fatalf("unassign with {} %d %s", r.status, r.raw)
	}
	f.clock.Advance(30 * time.Second)
	if d := get(); d["userPrincipalName"] != "" || d["addressableUserName"] != "" {
		t.Errorf("after unassign: %v", d)
	}

	// A delete is accepted at once, and the device lingers in reads until the delay passes.
	if r := f.do(req{method: http.MethodDelete, path: registered + "/" + registeredID, token: "admin"}); r.status != http.StatusNoContent {
		t.Fatalf("delete %d %s", r.status, r.raw)
	}
	get()
	f.wantError(f.do(req{method: http.MethodDelete, path: registered + "/" + registeredID, token: "admin"}), http.StatusNotFound, "ResourceNotFound", "")
	f.wantError(action(f, "admin", registeredID, "updateDeviceProperties", `{"groupTag":"X"}`), http.StatusNotFound, "ResourceNotFound", "")
	f.clock.Advance(30 * time.Second)
	f.wantError(f.do(req{method: http.MethodGet, path: registered + "/" + registeredID, token: "reader"}), http.StatusNotFound, "ResourceNotFound", "")
	if got := serials(t, f.do(req{method: http.MethodGet, path: registered, token: "reader"})); slices.Contains(got, "5CG3281JQZ") {
		t.Errorf("deleted device still listed: %v", got)
	}
}

func TestRegisteredDeviceActionsRefuseBadBodies(t *testing.T) {
	f := newFixture(t, nil)
	seedRegistered(f)
	for _, c := range []struct{ name, body, msg string }{
		{"updateDeviceProperties", `{"groupTag":"A","orderIdentifier":"B"}`, "The parameter 'orderIdentifier' in the request payload is not a valid parameter for the operation 'updateDeviceProperties'."},
		{"updateDeviceProperties", `{"groupTag":5}`, "Edm.String"},
		{"updateDeviceProperties", `{"groupTag":`, "Invalid JSON"},
		{"updateDeviceProperties", `["groupTag"]`, "Invalid JSON"},
		{"updateDeviceProperties", `{"displayName":"THIS-NAME-IS-TOO-LONG"}`, "device name"},
		{"updateDeviceProperties", `{"displayName":"bad_name"}`, "device name"},
		{"updateDeviceProperties", `{"displayName":"123456"}`, "device name"},
		{"updateDeviceProperties", `{"userPrincipalName":"not-a-upn"}`, "user principal name"},
		{"assignUserToDevice", `{"addressableUserName":"Megan"}`, "'userPrincipalName' is required"},
		{"assignUserToDevice", `{"userPrincipalName":""}`, "'userPrincipalName' is required"},
		{"assignUserToDevice", `{"userPrincipalName":"a@b.example","groupTag":"X"}`, "'groupTag' in the request payload is not a valid parameter for the operation 'assignUserToDevice'"},
		{"unassignUserFromDevice", `{"userPrincipalName":"a@b.example"}`, "not a valid parameter for the operation 'unassignUserFromDevice'"},
	} {
		f.wantError(action(f, "admin", registeredID, c.name, c.body), http.StatusBadRequest, "BadRequest", c.msg)
	}
	f.wantError(action(f, "admin", registeredID, "wipe", `{}`), http.StatusBadRequest, "BadRequest", "Resource not found for the segment 'wipe'")
	f.wantError(f.do(req{method: http.MethodGet, path: registered + "/" + registeredID + "/assignUserToDevice", token: "admin"}), http.StatusBadRequest, "No method match route template", "")
	f.wantError(action(f, "admin", guidA, "assignUserToDevice", `{"userPrincipalName":"a@b.example"}`), http.StatusNotFound, "ResourceNotFound", "")
	// A reader may look but not change, and is told in Intune's words.
	msg := f.wantError(action(f, "reader", registeredID, "unassignUserFromDevice", ""), http.StatusForbidden, "Forbidden", "DeviceManagementServiceConfig.ReadWrite.All")
	if !strings.Contains(msg, `"_version":3`) {
		t.Errorf("403 message is not Intune's nested JSON: %s", msg)
	}
	f.wantError(f.do(req{method: http.MethodDelete, path: registered + "/" + registeredID, token: "reader"}), http.StatusForbidden, "Forbidden", "")
	// Nothing changed.
	if d := f.do(req{method: http.MethodGet, path: registered + "/" + registeredID, token: "reader"}).body; d["groupTag"] != "Sales" || d["userPrincipalName"] != "AdeleV@contoso.example" || d["displayName"] != "" {
		t.Errorf("a refused action changed the device: %v", d)
	}
}

func TestDeletingAnEnrolledDeviceIsRefused(t *testing.T) {
	f := newFixture(t, nil)
	seedRegistered(f)
	msg := f.wantError(f.do(req{method: http.MethodDelete, path: registered + "/" + enrolledID, token: "admin"}), http.StatusBadRequest, "BadRequest", "enrolled in Intune")
	if !strings.Contains(msg, `"_version":3`) || !strings.Contains(msg, "Activity ID:") {
		t.Errorf("message %s", msg)
	}
	if r := f.do(req{method: http.MethodGet, path: registered + "/" + enrolledID, token: "reader"}); r.status != http.StatusOK {
		t.Errorf("refused delete removed the device: %d", r.status)
	}
}

func TestImportedDevicesBecomeRegisteredWhenTheirImportCompletes(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) {
		o.ImportDelays = emulator.ImportDelays{Unknown: time.Second, Pending: 2 * time.Second}
		o.ConsistencyDelay = 5 * time.Second
	})
	seedRegistered(f)
	dev := deviceJSON("NEW-DEVICE-1", hash(7))
	dev["assignedUserPrincipalName"] = "MeganB@contoso.example"
	r := f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(dev, deviceJSON("7hx2lm3", hash(8)))})
	if r.status != http.StatusOK {
		t.Fatalf("import %d %s", r.status, r.raw)
	}
	importedID := values(t, r)[0]["id"].(string)
	find := func() []map[string]any {
		return values(t, f.do(req{method: http.MethodGet, path: registered + filterQuery("contains(serialNumber,'NEW-DEVICE')"), token: "reader"}))
	}
	f.clock.Advance(3 * time.Second) // the import completes now; the registration shows 5 s later
	if got := find(); len(got) != 0 {
		t.Errorf("registered before it became visible: %v", got)
	}
	imp := f.do(req{method: http.MethodGet, path: devices + "/" + importedID, token: "reader"})
	st := state(t, imp.body)
	if st["deviceImportStatus"] != "complete" || st["@odata.type"] != "#microsoft.graph.importedWindowsAutopilotDeviceIdentityState" {
		t.Fatalf("import state %v", st)
	}
	f.clock.Advance(5 * time.Second)
	got := find()
	if len(got) != 1 {
		t.Fatalf("registered devices %v", got)
	}
	d := got[0]
	if d["id"] != st["deviceRegistrationId"] || d["groupTag"] != "Sales" || d["userPrincipalName"] != "MeganB@contoso.example" ||
		d["enrollmentState"] != "notContacted" || d["manufacturer"] == "" || d["model"] == "" {
		t.Errorf("registered %v (import state %v)", d, st)
	}
	// The serial already registered by the seed failed with 806.
	dup := values(t, f.do(req{method: http.MethodGet, path: devices + filterQuery("serialNumber eq '7hx2lm3'"), token: "reader"}))
	if s := state(t, dup[0]); s["deviceErrorCode"] != 806.0 {
		t.Errorf("importing a registered serial: %v", s)
	}
	// Importing the new device again fails with 806; once its registration is deleted, it imports.
	again := func() map[string]any {
		r := f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(deviceJSON("NEW-DEVICE-1", hash(9)))})
		id := values(t, r)[0]["id"].(string)
		f.clock.Advance(3 * time.Second)
		return state(t, f.do(req{method: http.MethodGet, path: devices + "/" + id, token: "reader"}).body)
	}
	if s := again(); s["deviceErrorCode"] != 806.0 {
		t.Errorf("re-import of a registered serial: %v", s)
	}
	if r := f.do(req{method: http.MethodDelete, path: registered + "/" + d["id"].(string), token: "admin"}); r.status != http.StatusNoContent {
		t.Fatalf("delete %d %s", r.status, r.raw)
	}
	if s := again(); s["deviceImportStatus"] != "complete" {
		t.Errorf("re-import after deleting the registration: %v", s)
	}
}

func TestDemoAutopilotDevicesAreRealisticAndStable(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	a, b := emulator.DemoAutopilotDevices(now), emulator.DemoAutopilotDevices(now)
	states, makers := map[string]bool{}, map[string]bool{}
	for i, d := range a {
		states[d.EnrollmentState] = true
		makers[d.Manufacturer] = true
		if !guid.Valid(d.ID) || d.ID != b[i].ID || d.Model == "" || d.SerialNumber == "" {
			t.Errorf("device %+v", d)
		}
		if d.EnrollmentState == "notContacted" && !d.LastContacted.IsZero() || d.EnrollmentState == "enrolled" && d.LastContacted.IsZero() {
			t.Errorf("%s: state %s, last contacted %v", d.SerialNumber, d.EnrollmentState, d.LastContacted)
		}
	}
	for _, s := range []string{"unknown", "enrolled", "pendingReset", "failed", "notContacted"} {
		if !states[s] {
			t.Errorf("no demo device is %s", s)
		}
	}
	if len(makers) < 4 {
		t.Errorf("manufacturers %v", makers)
	}
	f := newFixture(t, nil)
	f.emu.SeedAutopilotDevices(tenantA)
	if n := len(values(t, f.do(req{method: http.MethodGet, path: registered, token: "reader"}))); n != len(a) {
		t.Errorf("seeded %d, want %d", n, len(a))
	}
}

// rawDo sends a request whose answer may not be JSON.
func rawDo(t *testing.T, f *fixture, method, path, token string, body []byte, header map[string]string) (*http.Response, []byte) {
	t.Helper()
	r, err := http.NewRequest(method, f.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	res, err := f.srv.Client().Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res, raw
}

func gzipped(s string) []byte {
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	zw.Write([]byte(s))
	zw.Close()
	return b.Bytes()
}

func TestGzipRequestBodiesAreRead(t *testing.T) {
	f := newFixture(t, nil)
	seedRegistered(f)
	gz := map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"}
	res, raw := rawDo(t, f, http.MethodPost, uploads, "admin", gzipped(createBody(guidA, "pending")), gz)
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("gzip create %d %s", res.StatusCode, raw)
	}
	res, raw = rawDo(t, f, http.MethodPost, importPath, "admin", gzipped(importBody(deviceJSON("GZ-1", hash(3)))), gz)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("gzip import %d %s", res.StatusCode, raw)
	}
	res, raw = rawDo(t, f, http.MethodPost, registered+"/"+registeredID+"/updateDeviceProperties", "admin", gzipped(`{"groupTag":"Gz"}`), gz)
	if res.StatusCode != http.StatusNoContent {
		t.Fatalf("gzip action %d %s", res.StatusCode, raw)
	}
	if d := f.do(req{method: http.MethodGet, path: registered + "/" + registeredID, token: "admin"}); d.body["groupTag"] != "Gz" {
		t.Errorf("gzip action not applied: %s", d.raw)
	}
	res, raw = rawDo(t, f, http.MethodPost, uploads, "admin", []byte("not gzip at all"), gz)
	if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(raw), "gzip") {
		t.Errorf("corrupt gzip %d %s", res.StatusCode, raw)
	}
	res, raw = rawDo(t, f, http.MethodPost, uploads, "admin", []byte(createBody(guidB, "pending")), map[string]string{"Content-Type": "application/json", "Content-Encoding": "br"})
	if res.StatusCode != http.StatusUnsupportedMediaType || !strings.Contains(string(raw), "UnsupportedMediaType") {
		t.Errorf("brotli %d %s", res.StatusCode, raw)
	}
	// A small compressed body that expands past Graph's request-size limit is refused at the
	// limit (413), not read whole.
	bomb := gzipped(`{"status":"` + strings.Repeat("A", 64<<20) + `"}`)
	if len(bomb) > 1<<20 {
		t.Fatalf("bomb is %d bytes", len(bomb))
	}
	res, raw = rawDo(t, f, http.MethodPost, uploads, "admin", bomb, gz)
	if res.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("bomb %d %s", res.StatusCode, raw)
	}
	// Received keeps the decompressed body.
	rec := f.emu.Received()
	if !slices.ContainsFunc(rec, func(r emulator.ReceivedRequest) bool { return string(r.Body) == `{"groupTag":"Gz"}` }) {
		t.Error("the decompressed body was not recorded")
	}
}

func TestCountOnEveryCollection(t *testing.T) {
	f := newFixture(t, nil)
	seedRegistered(f)
	f.create("admin", createBody(guidA, "pending"))
	f.create("admin", createBody(guidB, "complete"))
	f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(deviceJSON("C-1", hash(1)), deviceJSON("C-2", hash(2)), deviceJSON("C-3", hash(3)))})
	f.do(req{method: http.MethodPost, path: uploads + "/" + guidA + "/deviceIdentities", token: "admin", body: `{"serialNumber":"U-1"}`})
	for path, want := range map[string]float64{
		uploads:                                  2,
		uploads + "?$filter=status eq 'pending'": 1,
		devices:                                  3,
		registered:                               3,
		registered + filterQuery("contains(serialNumber,'5CG')"): 2,
		uploads + "/" + guidA + "/deviceIdentities":              1,
	} {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		r := f.do(req{method: http.MethodGet, path: strings.ReplaceAll(path, " ", "%20") + sep + "$count=true&$top=1", token: "reader"})
		if r.status != http.StatusOK || r.body["@odata.count"] != want || len(values(t, r)) != 1 {
			t.Errorf("%s $count=true: %d %s, want count %v", path, r.status, r.raw, want)
		}
		// The /$count segment answers the number alone, as text.
		base, query, _ := strings.Cut(path, "?")
		target := base + "/$count"
		if query != "" {
			target += "?" + strings.ReplaceAll(query, " ", "%20")
		}
		res, raw := rawDo(t, f, http.MethodGet, target, "reader", nil, nil)
		if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") || string(raw) != strconv.Itoa(int(want)) ||
			res.Header.Get("request-id") == "" {
			t.Errorf("%s: %d %q %s", target, res.StatusCode, res.Header.Get("Content-Type"), raw)
		}
	}
	if r := f.do(req{method: http.MethodGet, path: uploads, token: "reader"}); r.body["@odata.count"] != nil {
		t.Errorf("count without asking: %s", r.raw)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: uploads + "?$count=maybe", token: "reader"}), http.StatusBadRequest, "BadRequest", "count")
	f.wantError(f.do(req{method: http.MethodGet, path: uploads + "/" + guidA + "/$count", token: "reader"}), http.StatusBadRequest, "BadRequest", "$count")
	f.wantError(f.do(req{method: http.MethodPost, path: registered + "/$count", token: "admin", body: "{}"}), http.StatusBadRequest, "No method match route template", "")
	f.wantError(f.do(req{method: http.MethodGet, path: registered + "/$count" + filterQuery("serialNumber eq 'X'"), token: "reader"}), http.StatusBadRequest, "BadRequest", "not supported")
	f.wantError(f.do(req{method: http.MethodGet, path: registered + "/$count"}), http.StatusUnauthorized, "InvalidAuthenticationToken", "")
}

// Every @odata.type the emulator writes, nested ones included, carries its leading '#'.
func TestEveryODataTypeCarriesItsHash(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) {
		o.ImportDelays = emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}
	})
	seedRegistered(f)
	f.create("admin", createBody(guidA, "pending"))
	f.do(req{method: http.MethodPost, path: importPath, token: "admin", body: importBody(deviceJSON("T-1", hash(1)), deviceJSON("", hash(2)))})
	f.do(req{method: http.MethodPost, path: uploads + "/" + guidA + "/deviceIdentities", token: "admin", body: `{"serialNumber":"U-1"}`})
	f.clock.Advance(time.Second)
	var walk func(path string, v any)
	found := 0
	walk = func(path string, v any) {
		switch x := v.(type) {
		case map[string]any:
			for k, val := range x {
				if k == "@odata.type" {
					found++
					if s, _ := val.(string); !strings.HasPrefix(s, "#microsoft.graph.") {
						t.Errorf("%s: @odata.type %q", path, val)
					}
				}
				walk(path, val)
			}
		case []any:
			for _, val := range x {
				walk(path, val)
			}
		}
	}
	for _, p := range []string{uploads, devices, registered, uploads + "/" + guidA + "/deviceIdentities", registered + "/" + registeredID, uploads + "/" + guidA} {
		walk(p, f.do(req{method: http.MethodGet, path: p, token: "reader"}).body)
	}
	if found < 8 {
		t.Errorf("only %d @odata.type values seen", found)
	}
}

// Only beta has the deployment profile assignment: its properties on every device, and the
// assigned and intended profiles through $expand, with the shape in @odata.context. v1.0 has
// neither, and refuses $expand of a navigation property it does not have, as Graph does.
func TestProfileAssignmentOnlyInBeta(t *testing.T) {
	f := newFixture(t, nil)
	profile := &emulator.DeploymentProfile{ID: "3f2a9c1e-7d4b-4c8e-9a6f-1b2c3d4e5f60", DisplayName: "Contoso user-driven"}
	f.emu.SeedAutopilotDevices(tenantA,
		emulator.AutopilotDevice{ID: registeredID, SerialNumber: "5CG3281JQZ", ProfileStatus: "assignedInSync", Profile: profile, IntendedProfile: profile,
			ProfileAssigned: time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)},
		emulator.AutopilotDevice{ID: enrolledID, SerialNumber: "7HX2LM3"})
	beta := strings.Replace(registered, "/v1.0/", "/beta/", 1)
	expand := "?%24expand=deploymentProfile,intendedDeploymentProfile"

	g := f.do(req{method: http.MethodGet, path: beta + "/" + registeredID + expand, token: "reader"})
	p, _ := g.body["deploymentProfile"].(map[string]any)
	if g.status != http.StatusOK || g.body["deploymentProfileAssignmentStatus"] != "assignedInSync" || g.body["deploymentProfileAssignmentDetailedStatus"] != "none" ||
		g.body["deploymentProfileAssignedDateTime"] != "2026-11-02T09:00:00Z" || p == nil || p["displayName"] != "Contoso user-driven" || p["id"] != profile.ID ||
		g.body["@odata.context"] != "https://graph.microsoft.com/beta/$metadata#deviceManagement/windowsAutopilotDeviceIdentities(deploymentProfile(),intendedDeploymentProfile())/$entity" {
		t.Fatalf("beta get %d %s", g.status, g.raw)
	}
	if i, _ := g.body["intendedDeploymentProfile"].(map[string]any); i == nil || i["id"] != profile.ID {
		t.Errorf("intended profile %v", g.body["intendedDeploymentProfile"])
	}
	none := f.do(req{method: http.MethodGet, path: beta + "/" + enrolledID + expand, token: "reader"})
	if none.status != http.StatusOK || none.body["deploymentProfileAssignmentStatus"] != "notAssigned" || none.body["deploymentProfile"] != nil ||
		none.body["deploymentProfileAssignedDateTime"] != "0001-01-01T00:00:00Z" {
		t.Errorf("a device without a profile %d %s", none.status, none.raw)
	}
	if l := f.do(req{method: http.MethodGet, path: beta, token: "reader"}); values(t, l)[0]["deploymentProfileAssignmentStatus"] != "assignedInSync" {
		t.Errorf("beta list %s", l.raw)
	}

	v1 := f.do(req{method: http.MethodGet, path: registered + "/" + registeredID, token: "reader"})
	if _, has := v1.body["deploymentProfileAssignmentStatus"]; v1.status != http.StatusOK || has {
		t.Errorf("v1.0 get %d %s", v1.status, v1.raw)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: registered + "/" + registeredID + expand, token: "reader"}),
		http.StatusBadRequest, "BadRequest", "Could not find a property named 'deploymentProfile'")
	f.wantError(f.do(req{method: http.MethodGet, path: beta + "/" + registeredID + "?%24expand=owner", token: "reader"}),
		http.StatusBadRequest, "BadRequest", "Could not find a property named 'owner'")
}
