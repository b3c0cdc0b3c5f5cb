package emulator_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
)

const batchPath = "/v1.0/$batch"

type innerAnswer struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
	Body    json.RawMessage   `json:"body"`
}

func batchBody(reqs ...map[string]any) string {
	b, _ := json.Marshal(map[string]any{"requests": reqs})
	return string(b)
}

func get(id, url string) map[string]any { return map[string]any{"id": id, "method": "GET", "url": url} }

// answers reads a batch answer, keyed by id, in the order Graph sent them.
func answers(t *testing.T, r reply) (map[string]innerAnswer, []string) {
	t.Helper()
	if r.status != http.StatusOK {
		t.Fatalf("batch %d %s", r.status, r.raw)
	}
	var out struct {
		Responses []innerAnswer `json:"responses"`
	}
	if err := json.Unmarshal(r.raw, &out); err != nil || len(r.body) != 1 {
		t.Fatalf("batch answer %s: %v", r.raw, err)
	}
	m := map[string]innerAnswer{}
	var order []string
	for _, a := range out.Responses {
		if _, dup := m[a.ID]; dup {
			t.Errorf("id %s answered twice", a.ID)
		}
		m[a.ID] = a
		order = append(order, a.ID)
	}
	return m, order
}

func TestBatchAnswersEachRequestAsIfSentAlone(t *testing.T) {
	f := newFixture(t, nil)
	seedRegistered(f)
	r := f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: batchBody(
		get("1", "/deviceManagement/windowsAutopilotDeviceIdentities/"+registeredID),
		get("2", "/deviceManagement/windowsAutopilotDeviceIdentities/"+guidA),
		map[string]any{"id": "3", "method": "POST", "url": "/deviceManagement/windowsAutopilotDeviceIdentities/" + registeredID + "/updateDeviceProperties",
			"headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"groupTag": "Batch"}},
		get("4", "deviceManagement/windowsAutopilotDeviceIdentities?$filter="+strings.ReplaceAll("contains(serialNumber,'7HX')", " ", "%20")),
		get("5", "/deviceManagement/windowsAutopilotDeviceIdentities/$count"),
		get("6", "/deviceManagement/somethingElse"),
		map[string]any{"id": "7", "method": "DELETE", "url": "/deviceManagement/windowsAutopilotDeviceIdentities/" + enrolledID},
	)})
	got, _ := answers(t, r)
	if len(got) != 7 {
		t.Fatalf("%d answers: %s", len(got), r.raw)
	}
	if a := got["1"]; a.Status != 200 || !strings.HasPrefix(a.Headers["Content-Type"], "application/json") || !strings.Contains(string(a.Body), `"serialNumber":"5CG3281JQZ"`) {
		t.Errorf("1: %+v %s", a, a.Body)
	}
	for id, a := range got {
		for k := range a.Headers {
			if strings.EqualFold(k, "request-id") || strings.EqualFold(k, "Date") {
				t.Errorf("%s: inner header %s belongs to the batch's own answer", id, k)
			}
		}
	}
	var notFound struct {
		Error struct {
			Code       string
			InnerError map[string]string
		}
	}
	json.Unmarshal(got["2"].Body, &notFound)
	if got["2"].Status != 404 || notFound.Error.Code != "ResourceNotFound" || !guid.Valid(notFound.Error.InnerError["request-id"]) {
		t.Errorf("2: %+v %s", got["2"], got["2"].Body)
	}
	if got["3"].Status != 204 || len(got["3"].Body) != 0 {
		t.Errorf("3: %+v", got["3"])
	}
	if a := got["4"]; a.Status != 200 || !strings.Contains(string(a.Body), "7HX2LM3") || strings.Contains(string(a.Body), "5CG3281JQZ") {
		t.Errorf("4: %s", a.Body)
	}
	var text string
	json.Unmarshal(got["5"].Body, &text)
	if n, _ := base64.StdEncoding.DecodeString(text); got["5"].Status != 200 || string(n) != "3" || !strings.HasPrefix(got["5"].Headers["Content-Type"], "text/plain") {
		t.Errorf("5: %+v (%q)", got["5"], n)
	}
	if got["6"].Status != 400 || !strings.Contains(string(got["6"].Body), "somethingElse") {
		t.Errorf("6: %+v %s", got["6"], got["6"].Body)
	}
	if got["7"].Status != 400 || !strings.Contains(string(got["7"].Body), "enrolled in Intune") {
		t.Errorf("7: %+v %s", got["7"], got["7"].Body)
	}
	if d := f.do(req{method: http.MethodGet, path: registered + "/" + registeredID, token: "reader"}); d.body["groupTag"] != "Batch" {
		t.Errorf("the batched update was not applied: %s", d.raw)
	}
}

func TestBatchAnswersComeInAShuffledOrder(t *testing.T) {
	f := newFixture(t, nil)
	reqs := make([]map[string]any, 20)
	for i := range reqs {
		reqs[i] = get(fmt.Sprint(i+1), "/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads")
	}
	inOrder := 0
	for range 5 {
		got, order := answers(t, f.do(req{method: http.MethodPost, path: batchPath, token: "reader", body: batchBody(reqs...)}))
		if len(got) != 20 {
			t.Fatalf("%d answers", len(got))
		}
		if strings.Join(order, ",") == "1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20" {
			inOrder++
		}
	}
	if inOrder == 5 {
		t.Error("five batches of 20 were all answered in request order")
	}
}

func TestBatchRefusesWhatGraphRefuses(t *testing.T) {
	f := newFixture(t, nil)
	many := make([]map[string]any, 21)
	for i := range many {
		many[i] = get(fmt.Sprint(i), "/deviceManagement/importedWindowsAutopilotDeviceIdentities")
	}
	f.wantError(f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: batchBody(many...)}), http.StatusBadRequest, "BadRequest", "maximum number of requests in a batch is 20")
	f.wantError(f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: batchBody(get("a", "/me"), get("a", "/me"))}), http.StatusBadRequest, "BadRequest", "Request Id a has to be unique in a batch.")
	for _, body := range []string{`{"requests":[]}`, `{"requests":`, `[]`, `{"requests":[{"id":"1"}]}`} {
		f.wantError(f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: body}), http.StatusBadRequest, "BadRequest", "Invalid batch payload format")
	}
	f.wantError(f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: batchBody(
		map[string]any{"id": "1", "method": "POST", "url": "/deviceManagement/windowsAutopilotDeviceIdentities/" + registeredID + "/unassignUserFromDevice"})}),
		http.StatusBadRequest, "BadRequest", "Write request id : 1 does not contain Content-Type header or body.")
	f.wantError(f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: batchBody(
		map[string]any{"id": "1", "method": "GET", "url": "/me", "dependsOn": []string{"2"}}, get("2", "/me"))}), http.StatusBadRequest, "BadRequest", "depends on")
	f.wantError(f.do(req{method: http.MethodGet, path: batchPath, token: "admin"}), http.StatusMethodNotAllowed, "BadRequest", "POST")
	f.wantError(f.do(req{method: http.MethodPost, path: batchPath, body: batchBody(get("1", "/me"))}), http.StatusUnauthorized, "InvalidAuthenticationToken", "")

	got, _ := answers(t, f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: batchBody(
		get("abs", "https://graph.microsoft.com/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities"),
		get("host", "//evil.example/v1.0/me"),
		map[string]any{"id": "nested", "method": "POST", "url": "/$batch", "headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"requests": []any{}}},
	)}))
	for _, id := range []string{"abs", "host", "nested"} {
		if got[id].Status != 400 || !strings.Contains(string(got[id].Body), map[string]string{"abs": "Invalid request URL", "host": "Invalid request URL", "nested": "another batch"}[id]) {
			t.Errorf("%s: %+v %s", id, got[id], got[id].Body)
		}
	}
}

func TestBatchDependsOnAndPermissionsPerRequest(t *testing.T) {
	f := newFixture(t, nil)
	seedRegistered(f)
	got, _ := answers(t, f.do(req{method: http.MethodPost, path: batchPath, token: "reader", body: batchBody(
		get("read", "/deviceManagement/windowsAutopilotDeviceIdentities/"+registeredID),
		map[string]any{"id": "write", "method": "POST", "url": "/deviceManagement/windowsAutopilotDeviceIdentities/" + registeredID + "/updateDeviceProperties",
			"headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"groupTag": "X"}},
		map[string]any{"id": "after", "method": "GET", "url": "/deviceManagement/windowsAutopilotDeviceIdentities", "dependsOn": []string{"write"}},
	)}))
	if got["read"].Status != 200 || got["write"].Status != 403 || !strings.Contains(string(got["write"].Body), "DeviceManagementServiceConfig.ReadWrite.All") {
		t.Errorf("read %d, write %d %s", got["read"].Status, got["write"].Status, got["write"].Body)
	}
	if got["after"].Status != http.StatusFailedDependency {
		t.Errorf("after a failed dependency: %+v", got["after"])
	}
}

// Graph counts every request inside a batch against the throttling budget as if sent alone.
func TestBatchRequestsSpendTheThrottleBudgetOneByOne(t *testing.T) {
	f := newFixture(t, func(o *emulator.Options) { o.Faults = emulator.Faults{ThrottleRequests: 5} })
	reqs := make([]map[string]any, 8)
	for i := range reqs {
		reqs[i] = get(fmt.Sprint(i+1), "/deviceManagement/importedWindowsAutopilotDeviceIdentities")
	}
	got, _ := answers(t, f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: batchBody(reqs...)}))
	ok, throttled := 0, 0
	for id, a := range got {
		switch a.Status {
		case 200:
			ok++
		case 429:
			throttled++
			if a.Headers["Retry-After"] != "20" || !strings.Contains(string(a.Body), "TooManyRequests") {
				t.Errorf("%s: 429 without its own Retry-After: %+v %s", id, a.Headers, a.Body)
			}
		default:
			t.Errorf("%s: status %d", id, a.Status)
		}
	}
	if ok != 5 || throttled != 3 {
		t.Errorf("%d answered, %d throttled; want 5 and 3", ok, throttled)
	}
	f.wantError(f.do(req{method: http.MethodGet, path: devices, token: "admin"}), http.StatusTooManyRequests, "TooManyRequests", "")
	// Faults reach inner requests too, each drawn on its own.
	f.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{503}})
	got, _ = answers(t, f.do(req{method: http.MethodPost, path: batchPath, token: "admin", body: batchBody(reqs[:2]...)}))
	if got["1"].Status != 503 || got["1"].Headers["Retry-After"] != "1" {
		t.Errorf("injected fault inside a batch: %+v", got["1"])
	}
}

func TestBatchBodiesMayBeGzipped(t *testing.T) {
	f := newFixture(t, nil)
	seedRegistered(f)
	res, raw := rawDo(t, f, http.MethodPost, batchPath, "admin", gzipped(batchBody(get("1", "/deviceManagement/windowsAutopilotDeviceIdentities/$count"))),
		map[string]string{"Content-Type": "application/json", "Content-Encoding": "gzip"})
	if res.StatusCode != http.StatusOK || !strings.Contains(string(raw), `"status":200`) {
		t.Errorf("gzipped batch %d %s", res.StatusCode, raw)
	}
}

// Dozens of concurrent changes, reads and batches leave one consistent device (run with -race).
func TestRegisteredDevicesUnderConcurrentChangesAndBatches(t *testing.T) {
	f := newFixture(t, nil)
	seedRegistered(f)
	var wg sync.WaitGroup
	statuses := make(chan int, 200)
	for i := range 40 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tag := fmt.Sprintf("Tag-%02d", i)
			r := newRequest(f, http.MethodPost, registered+"/"+registeredID+"/updateDeviceProperties", `{"groupTag":"`+tag+`"}`)
			r.Header.Set("Content-Type", "application/json")
			statuses <- send(t, f, r)
			statuses <- send(t, f, newRequest(f, http.MethodGet, registered+"/"+registeredID, ""))
			b := newRequest(f, http.MethodPost, batchPath, batchBody(get("1", "/deviceManagement/windowsAutopilotDeviceIdentities"),
				map[string]any{"id": "2", "method": "POST", "url": "/deviceManagement/windowsAutopilotDeviceIdentities/" + registeredID + "/assignUserToDevice",
					"headers": map[string]string{"Content-Type": "application/json"}, "body": map[string]any{"userPrincipalName": tag + "@contoso.example"}}))
			b.Header.Set("Content-Type", "application/json")
			statuses <- send(t, f, b)
		}()
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusNoContent && s != http.StatusOK {
			t.Errorf("status %d", s)
		}
	}
	d := f.do(req{method: http.MethodGet, path: registered + "/" + registeredID, token: "reader"}).body
	tag, _ := d["groupTag"].(string)
	upn, _ := d["userPrincipalName"].(string)
	if !strings.HasPrefix(tag, "Tag-") || !strings.HasPrefix(upn, "Tag-") {
		t.Errorf("after concurrent changes: %v", d)
	}
}

func send(t *testing.T, f *fixture, r *http.Request) int {
	res, err := f.srv.Client().Do(r)
	if err != nil {
		t.Error(err)
		return 0
	}
	res.Body.Close()
	return res.StatusCode
}
