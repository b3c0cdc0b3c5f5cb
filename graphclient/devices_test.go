package graphclient

import (
	"autopilotdesk/graphclient/jsonbatch"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestImportDeviceIdentitiesSendsPaddedHashes(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"value":[{"id":"7f1b5c2e-3a4d-4e6f-8a9b-0c1d2e3f4a5b","serialNumber":"SN-1","state":{"deviceImportStatus":"pending","deviceErrorCode":0}}]}`)
	}}}
	c, _ := newTestClient(t, s)
	got, _, err := c.ImportDeviceIdentities(context.Background(), tokens, []DeviceIdentity{{SerialNumber: "SN-1", HardwareIdentifier: []byte{1, 2, 3, 4}, GroupTag: "Kiosk", ImportID: "ignored"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].State.DeviceImportStatus != "pending" {
		t.Errorf("devices = %+v", got)
	}
	r := s.received[0]
	if r.Method != http.MethodPost || r.URL.Path != "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities/import" {
		t.Errorf("sent %s %s", r.Method, r.URL.Path)
	}
	var sent struct {
		Devices []map[string]any `json:"importedWindowsAutopilotDeviceIdentities"`
	}
	if err := json.Unmarshal([]byte(s.bodies[0]), &sent); err != nil || len(sent.Devices) != 1 {
		t.Fatalf("body %q: %v", s.bodies[0], err)
	}
	d := sent.Devices[0]
	if d["hardwareIdentifier"] != "AQIDBA==" || d["serialNumber"] != "SN-1" || d["groupTag"] != "Kiosk" {
		t.Errorf("device sent = %v", d)
	}
	if _, ok := d["importId"]; ok {
		t.Errorf("output-only importId was sent: %v", d)
	}
}

func TestDeviceCallsUseFixedPaths(t *testing.T) {
	const id = "7f1b5c2e-3a4d-4e6f-8a9b-0c1d2e3f4a5b"
	ok := func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete || strings.HasSuffix(r.URL.Path, "/sync") {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"id":"`+id+`","value":[]}`)
	}
	s := &script{answers: []func(http.ResponseWriter, *http.Request){ok}}
	c, _ := newTestClient(t, s)
	ctx := context.Background()
	if _, err := c.DeleteDeviceIdentity(ctx, tokens, id); err != nil {
		t.Fatal(err)
	}
	if _, err := c.SyncAutopilot(ctx, tokens); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := c.ListDeviceIdentities(ctx, tokens, "O'Brien 1", ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ListUploadDeviceIdentities(ctx, tokens, id); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"DELETE /v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities/" + id,
		"POST /beta/deviceManagement/windowsAutopilotSettings/sync", // only beta has the action
		"GET /v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities?$filter=contains(serialNumber,'O''Brien 1')",
		"GET /v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/" + id + "/deviceIdentities",
	}
	for i, r := range s.received {
		got := r.Method + " " + r.URL.Path
		if f := r.URL.Query().Get("$filter"); f != "" {
			got += "?$filter=" + f
		}
		if got != want[i] {
			t.Errorf("request %d = %q, want %q", i, got, want[i])
		}
	}
}

func TestDeviceIDsAndLinksAreCheckedBeforeSending(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){created}}
	c, _ := newTestClient(t, s)
	ctx := context.Background()
	for _, id := range []string{"../uploads", "a%2Fb", "x?y", "x#y", "evil.example", ""} {
		if got, _, err := c.ReadDeviceIdentities(ctx, tokens, []string{id}); err != nil || !isKind(got[0].Err, KindInvalidInput) {
			t.Errorf("ReadDeviceIdentities(%q) = %v, %v", id, got[0].Err, err)
		}
		if _, err := c.DeleteDeviceIdentity(ctx, tokens, id); !isKind(err, KindInvalidInput) {
			t.Errorf("DeleteDeviceIdentity(%q) err = %v", id, err)
		}
	}
	if _, _, _, err := c.ListDeviceIdentities(ctx, tokens, "", "https://evil.example/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities?$skiptoken=1"); !isKind(err, KindBadResponse) {
		t.Errorf("foreign nextLink err = %v", err)
	}
	if s.count() != 0 {
		t.Errorf("%d requests reached the wire", s.count())
	}
}

// Imported devices are read by id 20 to a JSON batch, each inner request a GET of one device;
// a device Graph no longer has is KindNotFound, the others their own.
func TestReadDeviceIdentitiesBatchesTwentyIDs(t *testing.T) {
	ids := make([]string, 25)
	for i := range ids {
		ids[i] = fmt.Sprintf("7f1b5c2e-3a4d-4e6f-8a9b-%012d", i)
	}
	b := &batchGraph{answer: func(_ int, r jsonbatch.Request) innerAnswer {
		id := r.URL[strings.LastIndex(r.URL, "/")+1:]
		if id == ids[3] {
			return innerAnswer{ID: r.ID, Status: 404, Body: graphErrorBody("ResourceNotFound", "Not found.")}
		}
		return innerAnswer{ID: r.ID, Status: 200, Body: map[string]any{"id": id, "serialNumber": "SN-" + id[len(id)-2:],
			"state": map[string]any{"deviceImportStatus": "complete"}}}
	}}
	c, _ := newBatchClient(t, b)
	got, _, err := c.ReadDeviceIdentities(context.Background(), tokens, ids)
	if err != nil {
		t.Fatal(err)
	}
	rounds := b.rounds()
	if len(rounds) != 2 || len(rounds[0]) != 20 || len(rounds[1]) != 5 {
		t.Fatalf("%d batches", len(rounds))
	}
	for _, r := range rounds[0] {
		if r.Method != http.MethodGet || !strings.HasPrefix(r.URL, "/deviceManagement/importedWindowsAutopilotDeviceIdentities/") {
			t.Errorf("inner request %s %s", r.Method, r.URL)
		}
	}
	for i, r := range got {
		switch {
		case r.ID != ids[i]:
			t.Errorf("result %d is of %s", i, r.ID)
		case i == 3 && !isKind(r.Err, KindNotFound):
			t.Errorf("the device Graph no longer has: %+v", r)
		case i != 3 && (r.Err != nil || r.Value.ID != ids[i] || r.Value.State.Status() != "complete"):
			t.Errorf("device %d: %+v %v", i, r.Value, r.Err)
		}
	}
}

func isKind(err error, k Kind) bool {
	ge, ok := AsError(err)
	return ok && ge.Kind == k
}

// deviceImportStatus has five members; partial is final, and a null state is unknown, not a failure.
func TestDeviceImportStates(t *testing.T) {
	for _, c := range []struct {
		json   string
		final  bool
		status string
	}{
		{`{"state":{"deviceImportStatus":"complete"}}`, true, "complete"},
		{`{"state":{"deviceImportStatus":"partial"}}`, true, "partial"},
		{`{"state":{"deviceImportStatus":"error","deviceErrorCode":806}}`, true, "error"},
		{`{"state":{"deviceImportStatus":"pending"}}`, false, "pending"},
		{`{"state":{"deviceImportStatus":"unknown"}}`, false, "unknown"},
		{`{"state":{"deviceImportStatus":null}}`, false, "unknown"},
		{`{"state":null}`, false, "unknown"},
		{`{}`, false, "unknown"},
	} {
		var d DeviceIdentity
		if err := json.Unmarshal([]byte(c.json), &d); err != nil {
			t.Fatalf("%s: %v", c.json, err)
		}
		if d.State.Final() != c.final || d.State.Status() != c.status {
			t.Errorf("%s: final %v status %q, want %v %q", c.json, d.State.Final(), d.State.Status(), c.final, c.status)
		}
	}
}

// A batch measured with ImportEntryBytes is never larger on the wire than the measure says, and
// an import body over MaxImportRequestBytes is refused before anything is sent.
func TestImportRequestSize(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"value":[]}`)
	}}}
	c, _ := newTestClient(t, s)
	hash := make([]byte, 4500) // large enough that fewer than 500 fit
	var devices []DeviceIdentity
	measured := ImportRequestOverhead
	for i := 0; i < MaxImportDevices; i++ {
		d := DeviceIdentity{SerialNumber: fmt.Sprintf("SN-\"%d\"\u00e9", i), HardwareIdentifier: hash, GroupTag: "<Sales & Co>", AssignedUserPrincipalName: "a@b.example"}
		if measured+ImportEntryBytes(d) > MaxImportRequestBytes {
			break
		}
		measured += ImportEntryBytes(d)
		devices = append(devices, d)
	}
	if _, _, err := c.ImportDeviceIdentities(context.Background(), tokens, devices); err != nil {
		t.Fatalf("%d devices measured at %d bytes: %v", len(devices), measured, err)
	}
	for _, n := range []int{0, 1, 2, 3, 2999, 3000, 4096} {
		d := DeviceIdentity{SerialNumber: "SN-\"x\"", GroupTag: "<&>", HardwareIdentifier: make([]byte, n)}
		if got, want := ImportEntryBytesWithHash(d, n), ImportEntryBytes(d); got != want {
			t.Errorf("a %d-byte hash measured %d without its bytes, %d with", n, got, want)
		}
	}
	if got := len(s.bodies[0]); got > measured || got < measured-len(devices)*8-ImportRequestOverhead {
		t.Errorf("body is %d bytes, measured %d", got, measured)
	}
	if len(devices) == MaxImportDevices {
		t.Fatal("the size limit was never reached")
	}
	devices = append(devices, devices[0], devices[0])
	if _, _, err := c.ImportDeviceIdentities(context.Background(), tokens, devices); !isKind(err, KindInvalidInput) {
		t.Errorf("an oversized import: err = %v", err)
	}
	if s.count() != 1 {
		t.Errorf("%d requests reached the wire", s.count())
	}
}

// Every hash in a captured body is cut to its ends, in requests and answers alike, whatever the
// spacing; text that only mentions the key inside a string is left as it is.
func TestRedactHashes(t *testing.T) {
	hash := strings.Repeat("QUJD", 1000)
	body := []byte(`{"value":[{"hardwareIdentifier":"` + hash + `","serialNumber":"A"},{"hardwareIdentifier" :  "` + hash + `"},` +
		`{"note":"a \"hardwareIdentifier\": \"x\" in text","hardwareIdentifier":null},{"hardwareIdentifier":"` + strings.Replace(hash, "QUJD", `QU\/D`, 1) + `"}]}`)
	got := string(redactHashes(body))
	if strings.Contains(got, hash[:40]) {
		t.Fatalf("a hash survived: %.200s", got)
	}
	if strings.Count(got, "QUJD…QUJD") != 2 || strings.Count(got, "QU\\/…QUJD") != 1 || !strings.Contains(got, `a \"hardwareIdentifier\": \"x\" in text`) || !json.Valid([]byte(got)) {
		t.Errorf("redacted body: %s", got)
	}
}
