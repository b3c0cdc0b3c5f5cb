package graphclient

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

const autopilotID = "5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b"

func noContent(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) }

func jsonAnswer(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}
}

const registeredJSON = `{"@odata.type":"#microsoft.graph.windowsAutopilotDeviceIdentity","id":"5e1f2a3b-4c5d-4e6f-8a7b-9c0d1e2f3a4b",
"groupTag":"Kiosk","purchaseOrderIdentifier":"PO-7","serialNumber":"CZC1234567","productKey":"","manufacturer":"HP","model":"HP EliteBook 840 G9",
"enrollmentState":"enrolled","lastContactedDateTime":"2026-11-27T08:15:02.1234567Z","addressableUserName":"Adele Vance",
"userPrincipalName":"AdeleV@contoso.example","resourceName":"","skuNumber":"","systemFamily":"","azureActiveDirectoryDeviceId":"0b9e8a5c-2f4d-4a1b-9c3e-7d6f5a4b3c2d",
"managedDeviceId":"1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f","displayName":"KIOSK-042"}`

func TestAutopilotCallsUseFixedPathsMethodsAndBodies(t *testing.T) {
	s := &script{answers: h(jsonAnswer(registeredJSON), noContent, noContent, noContent, noContent)}
	c, _ := newTestClient(t, s)
	ctx := context.Background()
	d, _, err := c.GetAutopilotDevice(ctx, tokens, autopilotID)
	if err != nil {
		t.Fatal(err)
	}
	want := AutopilotDevice{ID: autopilotID, GroupTag: "Kiosk", PurchaseOrderIdentifier: "PO-7", SerialNumber: "CZC1234567", Manufacturer: "HP",
		Model: "HP EliteBook 840 G9", EnrollmentState: EnrollmentEnrolled, LastContactedDateTime: "2026-11-27T08:15:02.1234567Z",
		AddressableUserName: "Adele Vance", UserPrincipalName: "AdeleV@contoso.example", AzureActiveDirectoryDeviceID: "0b9e8a5c-2f4d-4a1b-9c3e-7d6f5a4b3c2d",
		ManagedDeviceID: "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f", DisplayName: "KIOSK-042"}
	if *d != want {
		t.Errorf("device =\n%+v\nwant\n%+v", *d, want)
	}
	tag, name := "Lobby", ""
	if _, err := c.UpdateAutopilotDeviceProperties(ctx, tokens, autopilotID, AutopilotDeviceChange{GroupTag: &tag, DisplayName: &name}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.AssignUserToAutopilotDevice(ctx, tokens, autopilotID, "MeganB@contoso.example", "Megan Bowen"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UnassignUserFromAutopilotDevice(ctx, tokens, autopilotID); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteAutopilotDevice(ctx, tokens, autopilotID); err != nil {
		t.Fatal(err)
	}
	base := "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities/" + autopilotID
	wantSent := []struct{ method, path, body string }{
		{"GET", base, ""},
		{"POST", base + "/updateDeviceProperties", "{\n  \"groupTag\": \"Lobby\",\n  \"displayName\": \"\"\n}"},
		{"POST", base + "/assignUserToDevice", "{\n  \"userPrincipalName\": \"MeganB@contoso.example\",\n  \"addressableUserName\": \"Megan Bowen\"\n}"},
		{"POST", base + "/unassignUserFromDevice", ""},
		{"DELETE", base, ""},
	}
	if len(s.received) != len(wantSent) {
		t.Fatalf("sent %d requests, want %d", len(s.received), len(wantSent))
	}
	for i, w := range wantSent {
		r := s.received[i]
		if r.Method != w.method || r.URL.Path != w.path || r.URL.RawQuery != "" || s.bodies[i] != w.body {
			t.Errorf("request %d = %s %s ?%s %q, want %s %s %q", i, r.Method, r.URL.Path, r.URL.RawQuery, s.bodies[i], w.method, w.path, w.body)
		}
		if (w.body == "") != (r.Header.Get("Content-Type") == "") {
			t.Errorf("request %d Content-Type = %q with body %q", i, r.Header.Get("Content-Type"), w.body)
		}
	}
}

func TestAutopilotIDsAreCheckedBeforeAnythingIsSent(t *testing.T) {
	s := &script{answers: h(noContent)}
	c, _ := newTestClient(t, s)
	ctx := context.Background()
	tag := "x"
	for _, id := range []string{"", "../uploads", autopilotID + "/../x", "not-a-guid", autopilotID + "?x=1"} {
		_, _, e1 := c.GetAutopilotDevice(ctx, tokens, id)
		_, e2 := c.DeleteAutopilotDevice(ctx, tokens, id)
		_, e3 := c.UpdateAutopilotDeviceProperties(ctx, tokens, id, AutopilotDeviceChange{GroupTag: &tag})
		_, e4 := c.AssignUserToAutopilotDevice(ctx, tokens, id, "a@b.example", "")
		_, e5 := c.UnassignUserFromAutopilotDevice(ctx, tokens, id)
		for i, err := range []error{e1, e2, e3, e4, e5} {
			if ge, ok := AsError(err); !ok || ge.Kind != KindInvalidInput {
				t.Errorf("id %q call %d: err = %v", id, i, err)
			}
		}
	}
	bad := "line\nbreak"
	long := strings.Repeat("x", maxPropertyLength+1)
	for _, err := range []error{
		second(c.UpdateAutopilotDeviceProperties(ctx, tokens, autopilotID, AutopilotDeviceChange{})),
		second(c.UpdateAutopilotDeviceProperties(ctx, tokens, autopilotID, AutopilotDeviceChange{GroupTag: &bad})),
		second(c.UpdateAutopilotDeviceProperties(ctx, tokens, autopilotID, AutopilotDeviceChange{DisplayName: &long})),
		second(c.AssignUserToAutopilotDevice(ctx, tokens, autopilotID, "", "")),
		second(c.AssignUserToAutopilotDevice(ctx, tokens, autopilotID, "no-at-sign", "")),
		second(c.AssignUserToAutopilotDevice(ctx, tokens, autopilotID, "a@b@contoso.com", "")),
		second(c.AssignUserToAutopilotDevice(ctx, tokens, autopilotID, "ada lovelace@contoso.com", "")),
	} {
		if ge, ok := AsError(err); !ok || ge.Kind != KindInvalidInput || ge.Message == "" {
			t.Errorf("err = %v", err)
		}
	}
	if s.count() != 0 {
		t.Errorf("%d requests reached Graph", s.count())
	}
}

func second[T any](_ T, err error) error { return err }

func TestListAutopilotDevicesQuotesTheSerialAndPages(t *testing.T) {
	var srvURL string
	s := &script{}
	s.answers = h(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprintf(w, `{"value":[{"id":"%s","serialNumber":"O'Brien-1","enrollmentState":"notContacted","lastContactedDateTime":"0001-01-01T00:00:00Z"}],
			"@odata.nextLink":"%s/v1.0/deviceManagement/windowsAutopilotDeviceIdentities?%%24filter=contains(serialNumber%%2C%%27O%%27%%27Brien%%27)&%%24skiptoken=1"}`, autopilotID, srvURL)
	}, jsonAnswer(`{"value":[{"id":"5f3c2a1b-0000-4000-8000-000000000002","serialNumber":"O'Brien-2","enrollmentState":"somethingNew"}]}`))
	c, _ := newTestClient(t, s)
	srvURL = c.Root()
	ctx := context.Background()
	p, _, err := c.ListAutopilotDevices(ctx, tokens, AutopilotDeviceQuery{SerialContains: "O'Brien", Top: 50})
	if err != nil {
		t.Fatal(err)
	}
	r := s.received[0]
	if r.URL.Path != "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities" || r.URL.Query().Get("$filter") != "contains(serialNumber,'O''Brien')" || r.URL.Query().Get("$top") != "50" {
		t.Errorf("sent %s ?%s", r.URL.Path, r.URL.RawQuery)
	}
	if strings.Contains(r.URL.RawQuery, "+") {
		t.Errorf("spaces or pluses left unescaped: %s", r.URL.RawQuery)
	}
	if len(p.Devices) != 1 || p.Devices[0].EnrollmentState != EnrollmentNotContacted || p.NextLink == "" {
		t.Fatalf("page = %+v", p)
	}
	if _, ok := p.Devices[0].LastContacted(); ok {
		t.Error("0001-01-01 read as a real contact time")
	}
	p2, _, err := c.ListAutopilotDevices(ctx, tokens, AutopilotDeviceQuery{NextLink: p.NextLink, SerialContains: "ignored"})
	if err != nil {
		t.Fatal(err)
	}
	if s.received[1].URL.Query().Get("$skiptoken") != "1" || len(p2.Devices) != 1 || p2.NextLink != "" {
		t.Errorf("second page: sent ?%s, got %+v", s.received[1].URL.RawQuery, p2)
	}
	if st := p2.Devices[0].EnrollmentState; st.Known() || st != "somethingNew" {
		t.Errorf("unknown member read as %q", st)
	}
	for _, link := range []string{
		"https://evil.example/v1.0/deviceManagement/windowsAutopilotDeviceIdentities?$skiptoken=1",
		srvURL + "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities?$skiptoken=1",
		srvURL + "/beta/deviceManagement/windowsAutopilotDeviceIdentities?$skiptoken=1",
		srvURL + "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities/../x?$skiptoken=1",
	} {
		if _, _, err := c.ListAutopilotDevices(ctx, tokens, AutopilotDeviceQuery{NextLink: link}); !isKind(err, KindBadResponse) {
			t.Errorf("followed %s, or said it was the person's input: %v", link, err)
		}
	}
	for _, q := range []AutopilotDeviceQuery{{SerialContains: "a\nb"}, {SerialContains: strings.Repeat("9", 129)}, {Top: -1}, {Top: 1000}} {
		if _, _, err := c.ListAutopilotDevices(ctx, tokens, q); err == nil {
			t.Errorf("query %+v accepted", q)
		}
	}
	if s.count() != 2 {
		t.Errorf("%d requests sent, want 2", s.count())
	}
}

func TestDeleteAutopilotDeviceIsNeverResentBlindly(t *testing.T) {
	for _, status := range []int{500, 502, 504} {
		s := &script{answers: h(graphError(status, "InternalServerError", "boom"), noContent)}
		c, _ := newTestClient(t, s)
		ex, err := c.DeleteAutopilotDevice(context.Background(), tokens, autopilotID)
		if ge, ok := AsError(err); !ok || ge.Kind != KindOutcomeUnknown || ex.Outcome != OutcomeUnknown {
			t.Errorf("%d: err = %v", status, err)
		}
		if s.count() != 1 {
			t.Errorf("%d: sent %d times", status, s.count())
		}
	}
	// Throttled: Graph did not run it, so it is sent again after Retry-After.
	s := &script{answers: h(graphError(429, "TooManyRequests", "slow down", "Retry-After", "3"), noContent)}
	c, ft := newTestClient(t, s)
	if _, err := c.DeleteAutopilotDevice(context.Background(), tokens, autopilotID); err != nil {
		t.Fatal(err)
	}
	if s.count() != 2 || len(ft.Waits()) != 1 || ft.Waits()[0] != 3*time.Second {
		t.Errorf("sent %d, waits %v", s.count(), ft.Waits())
	}
	// The actions are POSTs: a 504 is outcome unknown too.
	s = &script{answers: h(graphError(504, "GatewayTimeout", "late"), noContent)}
	c, _ = newTestClient(t, s)
	if _, err := c.UnassignUserFromAutopilotDevice(context.Background(), tokens, autopilotID); err == nil || s.count() != 1 {
		t.Errorf("unassign after 504: err %v, sent %d", err, s.count())
	}
}

func TestContactTimeAndSameSerial(t *testing.T) {
	d := AutopilotDevice{LastContactedDateTime: "2026-11-27T08:15:02.1234567Z"}
	if at, ok := d.LastContacted(); !ok || !at.Equal(time.Date(2026, 11, 27, 8, 15, 2, 123456700, time.UTC)) {
		t.Errorf("last contacted = %v %v", at, ok)
	}
	if !SameSerial(" cz123 ", "CZ123") || SameSerial("CZ1234", "CZ123") {
		t.Error("SameSerial compares wrongly")
	}
}

// A property is measured in characters, not bytes: 256 letters of any script are taken; a
// control character or one that cannot be seen is named for what it is.
func TestPropertyProblemCountsCharacters(t *testing.T) {
	for v, want := range map[string]string{
		strings.Repeat("あ", 200):  "",
		strings.Repeat("é", 200):  "",
		"Sales-EMEA":              "",
		strings.Repeat("あ", 201):  "has 201 characters; it may have at most 200",
		strings.Repeat("x", 5000): "has 5,000 characters; it may have at most 200",
		"a\tb":                    "control character",
		"a\u0085b":                "control character",
		"kiosk\u200b":             "cannot be seen (U+200B",
		"rtl\u202egnp.exe":        "cannot be seen (U+202E",
	} {
		got := PropertyProblem("group tag", v)
		if want == "" && got != "" || want != "" && !strings.Contains(got, want) {
			t.Errorf("%q: %q, want %q", v, got, want)
		}
	}
}

// A device name is taken as the admin center takes it: up to 15 letters, digits and hyphens, not
// digits only, or a pattern of up to 63 characters with the %SERIAL% and %RAND:x% macros.
func TestDeviceNameProblem(t *testing.T) {
	for name, want := range map[string]string{
		"":                 "",
		"KIOSK-01":         "",
		"CONTOSO-LAPTOP1":  "",
		"CONTOSO-%SERIAL%": "",
		"CT-%RAND:4%":      "",
		"CONTOSO-LAPTOP-1": "has 16 characters; Windows takes at most 15",
		"KIOSK 1":          "holds a space",
		"KIOSK_1":          "holds “_”",
		"KIOSK-%SERIAL":    "holds a % outside the %SERIAL% and %RAND:x% macros",
		"12345":            "digits only",
		"KIOSK\u200b1":     "cannot be seen (U+200B, a zero-width space)",
		"A" + strings.Repeat("-", 55) + "%SERIAL%": "has 64 characters; with macros it may have at most 63",
	} {
		got := DeviceNameProblem(name)
		if (want == "") != (got == "") || !strings.Contains(got, want) {
			t.Errorf("DeviceNameProblem(%q) = %q, want %q", name, got, want)
		}
	}
}
