package graphclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/graphclient/jsonbatch"
)

type innerAnswer struct {
	ID      string            `json:"id"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers,omitempty"`
	Body    any               `json:"body,omitempty"`
}

// batchGraph is a fake $batch endpoint: it answers each inner request through answer, in a
// shuffled order, and records every batch it got.
type batchGraph struct {
	mu      sync.Mutex
	batches [][]jsonbatch.Request
	answer  func(round int, r jsonbatch.Request) innerAnswer
}

func (b *batchGraph) handler(w http.ResponseWriter, r *http.Request) {
	var in jsonbatch.Batch
	if r.Method != http.MethodPost || r.URL.Path != "/v1.0/$batch" || json.NewDecoder(r.Body).Decode(&in) != nil {
		graphError(400, "BadRequest", "Invalid batch payload format.")(w, r)
		return
	}
	b.mu.Lock()
	b.batches = append(b.batches, in.Requests)
	round := len(b.batches)
	b.mu.Unlock()
	var out []innerAnswer
	for _, q := range in.Requests {
		out = append(out, b.answer(round, q))
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "33333333-3333-3333-3333-333333333333")
	json.NewEncoder(w).Encode(map[string]any{"responses": out})
}

func (b *batchGraph) rounds() [][]jsonbatch.Request {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.batches)
}

func newBatchClient(t *testing.T, b *batchGraph, mod ...func(*Config)) (*Client, *testkit.Clock) {
	return newTestClient(t, &script{answers: h(b.handler)}, mod...)
}

func graphErrorBody(code, msg string) map[string]any {
	return map[string]any{"error": map[string]any{"code": code, "message": msg,
		"innerError": map[string]string{"date": "2026-11-28T12:00:00", "request-id": "44444444-4444-4444-4444-444444444444", "client-request-id": "55555555-5555-5555-5555-555555555555"}}}
}

func TestBatchSendsRelativeRequestsAndMatchesShuffledAnswers(t *testing.T) {
	b := &batchGraph{answer: func(_ int, r jsonbatch.Request) innerAnswer {
		switch r.ID {
		case "get":
			return innerAnswer{ID: r.ID, Status: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: map[string]any{"id": autopilotID, "serialNumber": "SN-1"}}
		case "missing":
			return innerAnswer{ID: r.ID, Status: 404, Body: graphErrorBody("ResourceNotFound", "Resource not found.")}
		case "forbidden":
			return innerAnswer{ID: r.ID, Status: 403, Body: graphErrorBody("Forbidden",
				`{"_version":3,"Message":"Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementServiceConfig.ReadWrite.All - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: 2578f4a3-1111-4222-8333-944445555666 - Url: https://fef.msub05.manage.microsoft.com/x","CustomApiErrorPhrase":"","RetryAfter":null,"ErrorSourceService":"","HttpHeaders":"{}"}`)}
		}
		return innerAnswer{ID: r.ID, Status: 204}
	}}
	c, _ := newBatchClient(t, b)
	reqs := []BatchRequest{
		{ID: "get", Method: "GET", URL: "/deviceManagement/windowsAutopilotDeviceIdentities/" + autopilotID},
		{ID: "missing", Method: "GET", URL: "/deviceManagement/windowsAutopilotDeviceIdentities/" + autopilotID},
		{ID: "forbidden", Method: "POST", URL: "/deviceManagement/windowsAutopilotDeviceIdentities/" + autopilotID + "/updateDeviceProperties", Body: json.RawMessage(`{"groupTag":"Kiosk"}`)},
		{ID: "gone", Method: "DELETE", URL: "/deviceManagement/windowsAutopilotDeviceIdentities/" + autopilotID},
	}
	got, exs, err := c.Batch(context.Background(), tokens, reqs)
	if err != nil {
		t.Fatal(err)
	}
	sent := b.rounds()
	if len(sent) != 1 || len(sent[0]) != 4 || len(exs) != 1 {
		t.Fatalf("sent %d batches, %d exchanges", len(sent), len(exs))
	}
	for i, q := range sent[0] {
		if q.ID != reqs[i].ID || q.Method != reqs[i].Method || q.URL != reqs[i].URL {
			t.Errorf("inner %d = %+v", i, q)
		}
	}
	var compact bytes.Buffer
	json.Compact(&compact, sent[0][2].Body)
	if sent[0][2].Headers["Content-Type"] != "application/json" || compact.String() != `{"groupTag":"Kiosk"}` {
		t.Errorf("inner body sent as %v %s", sent[0][2].Headers, sent[0][2].Body)
	}
	if sent[0][0].Headers != nil || sent[0][0].Body != nil {
		t.Errorf("a GET carried headers or a body: %+v", sent[0][0])
	}
	for i, r := range got {
		if r.ID != reqs[i].ID || r.Sent != 1 {
			t.Errorf("answer %d = %+v", i, r)
		}
	}
	if got[0].Err != nil || got[0].Status != 200 || !strings.Contains(string(got[0].Body), "SN-1") || got[0].Headers.Get("Content-Type") != "application/json" {
		t.Errorf("get = %+v", got[0])
	}
	if ge, ok := AsError(got[1].Err); !ok || ge.Kind != KindNotFound || ge.StatusCode != 404 || ge.RequestID != "44444444-4444-4444-4444-444444444444" || ge.Date != "2026-11-28T12:00:00" {
		t.Errorf("missing = %#v", got[1].Err)
	}
	ge, ok := AsError(got[2].Err)
	if !ok || ge.Kind != KindForbiddenPermission || ge.ActivityID != "2578f4a3-1111-4222-8333-944445555666" || strings.Contains(ge.Message, "Url:") || strings.HasPrefix(ge.Message, "{") {
		t.Errorf("forbidden = %#v", got[2].Err)
	}
	if got[3].Err != nil || got[3].Status != 204 {
		t.Errorf("delete = %+v", got[3])
	}
	a := exs[0].Attempts[0]
	if a.Method != "POST" || !strings.HasSuffix(a.URL, "/v1.0/$batch") || a.RequestHeader.Get("Authorization") != "Bearer <redacted>" {
		t.Errorf("exchange = %s %s %v", a.Method, a.URL, a.RequestHeader)
	}
}

func TestBatchResendsOnlyThrottledRequestsAfterTheirOwnRetryAfter(t *testing.T) {
	b := &batchGraph{answer: func(round int, r jsonbatch.Request) innerAnswer {
		if round == 1 && r.ID == "2" {
			return innerAnswer{ID: r.ID, Status: 429, Headers: map[string]string{"Retry-After": "7"}, Body: graphErrorBody("TooManyRequests", "Too many requests.")}
		}
		if round == 1 && r.ID == "3" {
			return innerAnswer{ID: r.ID, Status: 429, Headers: map[string]string{"Retry-After": "3"}, Body: graphErrorBody("TooManyRequests", "Too many requests.")}
		}
		return innerAnswer{ID: r.ID, Status: 200, Body: map[string]any{"value": []any{}}}
	}}
	c, ft := newBatchClient(t, b)
	reqs := []BatchRequest{{ID: "1", Method: "GET", URL: "/a"}, {ID: "2", Method: "GET", URL: "/b"}, {ID: "3", Method: "POST", URL: "/c", Body: json.RawMessage(`{}`)}}
	got, exs, err := c.Batch(context.Background(), tokens, reqs)
	if err != nil {
		t.Fatal(err)
	}
	rounds := b.rounds()
	if len(rounds) != 2 || len(exs) != 2 {
		t.Fatalf("%d batches sent", len(rounds))
	}
	var again []string
	for _, q := range rounds[1] {
		again = append(again, q.ID)
	}
	slices.Sort(again)
	if !slices.Equal(again, []string{"2", "3"}) {
		t.Errorf("re-sent %v, want only the throttled 2 and 3", again)
	}
	if !slices.Equal(ft.Waits(), []time.Duration{7 * time.Second}) {
		t.Errorf("waits = %v, want the longest Retry-After once", ft.Waits())
	}
	if exs[1].Attempts[0].Start.Sub(exs[0].Attempts[0].Start) < 7*time.Second {
		t.Error("the re-send went out before Retry-After elapsed")
	}
	for i, want := range []int{1, 2, 2} {
		if got[i].Err != nil || got[i].Sent != want {
			t.Errorf("answer %d = %+v, want sent %d", i, got[i], want)
		}
	}
}

func TestBatchKeepsThe429WhenTheWaitWouldPassTheDeadline(t *testing.T) {
	b := &batchGraph{answer: func(_ int, r jsonbatch.Request) innerAnswer {
		return innerAnswer{ID: r.ID, Status: 429, Headers: map[string]string{"Retry-After": "120"}, Body: graphErrorBody("TooManyRequests", "Too many requests.")}
	}}
	c, ft := newBatchClient(t, b, func(cfg *Config) { cfg.Timeout = time.Minute })
	got, _, err := c.Batch(context.Background(), tokens, []BatchRequest{{ID: "1", Method: "GET", URL: "/a"}})
	if err != nil {
		t.Fatal(err)
	}
	ge, ok := AsError(got[0].Err)
	if !ok || ge.Kind != KindThrottled || ge.RetryAfter != 120*time.Second {
		t.Errorf("answer = %#v", got[0].Err)
	}
	if len(b.rounds()) != 1 || len(ft.Waits()) != 0 {
		t.Errorf("sent %d batches, waited %v", len(b.rounds()), ft.Waits())
	}
	// The caller's own deadline bounds the wait too.
	b2 := &batchGraph{answer: b.answer}
	c2, _ := newBatchClient(t, b2, func(cfg *Config) { cfg.Timeout = time.Hour; cfg.Now = time.Now })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, _, err := c2.Batch(ctx, tokens, []BatchRequest{{ID: "1", Method: "GET", URL: "/a"}}); err != nil || len(b2.rounds()) != 1 {
		t.Errorf("err %v, %d batches", err, len(b2.rounds()))
	}
}

func TestBatchRefusesWhatGraphWouldNotTake(t *testing.T) {
	s := &script{answers: h(noContent)}
	c, _ := newTestClient(t, s)
	many := make([]BatchRequest, BatchLimit+1)
	for i := range many {
		many[i] = BatchRequest{ID: fmt.Sprint(i), Method: "GET", URL: "/a"}
	}
	for name, reqs := range map[string][]BatchRequest{
		"none":          nil,
		"21":            many,
		"duplicate id":  {{ID: "1", Method: "GET", URL: "/a"}, {ID: "1", Method: "GET", URL: "/b"}},
		"empty id":      {{Method: "GET", URL: "/a"}},
		"absolute URL":  {{ID: "1", Method: "GET", URL: "https://evil.example/v1.0/me"}},
		"other host":    {{ID: "1", Method: "GET", URL: "//evil.example/v1.0/me"}},
		"climbs out":    {{ID: "1", Method: "GET", URL: "/deviceManagement/../../beta/me"}},
		"backslash":     {{ID: "1", Method: "GET", URL: "/deviceManagement\\x"}},
		"space":         {{ID: "1", Method: "GET", URL: "/device Management"}},
		"nested batch":  {{ID: "1", Method: "POST", URL: "/$batch", Body: json.RawMessage(`{}`)}},
		"PUT":           {{ID: "1", Method: "PUT", URL: "/a"}},
		"body not JSON": {{ID: "1", Method: "POST", URL: "/a", Body: json.RawMessage(`{`)}},
	} {
		if _, _, err := c.Batch(context.Background(), tokens, reqs); err == nil {
			t.Errorf("%s: accepted", name)
		} else if ge, _ := AsError(err); ge.Kind != KindInvalidInput {
			t.Errorf("%s: err = %v", name, err)
		}
	}
	full := many[:BatchLimit]
	got, _, err := c.Batch(context.Background(), tokens, full)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range got {
		if ge, ok := AsError(r.Err); !ok || ge.Kind != KindBadResponse {
			t.Errorf("a 204 answer to a batch was read as an answer to %s: %+v", r.ID, r)
		}
	}
	if s.count() != 1 {
		t.Errorf("%d requests reached Graph, want only the batch of 20", s.count())
	}
}

func TestBatchAnswerMissingARequestIsAnError(t *testing.T) {
	s := &script{answers: h(jsonAnswer(`{"responses":[{"id":"1","status":200,"body":{}},{"id":"9","status":200,"body":{}},{"id":"1","status":500,"body":{}}]}`))}
	c, _ := newTestClient(t, s)
	got, _, err := c.Batch(context.Background(), tokens, []BatchRequest{{ID: "1", Method: "GET", URL: "/a"}, {ID: "2", Method: "GET", URL: "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	if got[0].Err != nil || got[0].Status != 200 {
		t.Errorf("first = %+v (a repeated id must not override the first answer)", got[0])
	}
	if ge, ok := AsError(got[1].Err); !ok || ge.Kind != KindBadResponse {
		t.Errorf("second = %+v", got[1])
	}
}

func TestBatchPostIsRetriedLikeItsRequests(t *testing.T) {
	// Only reads inside: the batch POST is as safe to repeat as a GET.
	s := &script{answers: h(graphError(504, "GatewayTimeout", "late"), jsonAnswer(`{"responses":[{"id":"1","status":200,"body":{}}]}`))}
	c, _ := newTestClient(t, s)
	if _, _, err := c.Batch(context.Background(), tokens, []BatchRequest{{ID: "1", Method: "GET", URL: "/a"}}); err != nil || s.count() != 2 {
		t.Errorf("reads: err %v, sent %d", err, s.count())
	}
	// A write inside: a 504 leaves the outcome unknown, and nothing is sent again.
	s = &script{answers: h(graphError(504, "GatewayTimeout", "late"), jsonAnswer(`{"responses":[{"id":"1","status":204}]}`))}
	c, _ = newTestClient(t, s)
	got, exs, err := c.Batch(context.Background(), tokens, []BatchRequest{{ID: "1", Method: "DELETE", URL: "/a"}})
	if ge, ok := AsError(err); !ok || ge.Kind != KindOutcomeUnknown || s.count() != 1 || exs[0].Outcome != OutcomeUnknown {
		t.Errorf("write: err %v, sent %d", err, s.count())
	}
	if got[0].Err != err {
		t.Errorf("unanswered request err = %v", got[0].Err)
	}
	// An inner 504 on a write is not re-sent either; on a read it is.
	b := &batchGraph{answer: func(round int, r jsonbatch.Request) innerAnswer {
		if round == 1 {
			return innerAnswer{ID: r.ID, Status: 504, Body: graphErrorBody("GatewayTimeout", "late")}
		}
		return innerAnswer{ID: r.ID, Status: 200, Body: map[string]any{}}
	}}
	c, _ = newBatchClient(t, b)
	got, _, _ = c.Batch(context.Background(), tokens, []BatchRequest{{ID: "r", Method: "GET", URL: "/a"}, {ID: "w", Method: "POST", URL: "/b", Body: json.RawMessage(`{}`)}})
	if got[0].Err != nil || got[0].Sent != 2 || got[1].Err == nil || got[1].Sent != 1 {
		t.Errorf("read %+v, write %+v", got[0], got[1])
	}
}

func TestBatchExchangeKeepsNoTokenOrWholeHash(t *testing.T) {
	hash := strings.Repeat("QUJD", 200)
	b := &batchGraph{answer: func(_ int, r jsonbatch.Request) innerAnswer {
		return innerAnswer{ID: r.ID, Status: 200, Body: map[string]any{"value": []any{map[string]any{"serialNumber": "SN-1", "hardwareIdentifier": hash}}}}
	}}
	c, _ := newBatchClient(t, b)
	_, exs, err := c.Batch(context.Background(), tokens, []BatchRequest{{ID: "1", Method: "GET", URL: "/deviceManagement/importedWindowsAutopilotDeviceIdentities"}})
	if err != nil {
		t.Fatal(err)
	}
	a := exs[0].Attempts[0]
	for _, text := range []string{a.RequestText(), a.ResponseText(), exs[0].AsCurl(), exs[0].AsPowerShell()} {
		if strings.Contains(text, testToken) || strings.Contains(text, hash) {
			t.Errorf("token or whole hash in:\n%s", text)
		}
	}
	if !strings.Contains(a.ResponseText(), devicecsv.Truncate(hash)) {
		t.Errorf("hash not shown by its ends:\n%s", a.ResponseText())
	}
}

// registry answers serial searches the way Graph does: contains(), any letter case.
func registry(registered, imported []string) func(int, jsonbatch.Request) innerAnswer {
	return func(_ int, r jsonbatch.Request) innerAnswer {
		u, err := url.Parse(r.URL)
		if err != nil || r.Method != "GET" {
			return innerAnswer{ID: r.ID, Status: 400, Body: graphErrorBody("BadRequest", "bad")}
		}
		f := u.Query().Get("$filter")
		lit, ok := strings.CutPrefix(f, "contains(serialNumber,'")
		lit, ok2 := strings.CutSuffix(lit, "')")
		if !ok || !ok2 {
			return innerAnswer{ID: r.ID, Status: 400, Body: graphErrorBody("BadRequest", "Invalid filter clause")}
		}
		want := strings.ToUpper(strings.ReplaceAll(lit, "''", "'"))
		pool := registered
		if strings.HasSuffix(u.Path, "/importedWindowsAutopilotDeviceIdentities") {
			pool = imported
		}
		value := []any{}
		for i, s := range pool {
			if strings.Contains(strings.ToUpper(s), want) {
				value = append(value, map[string]any{"id": fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "serialNumber": s, "groupTag": "Tag-" + s})
			}
		}
		return innerAnswer{ID: r.ID, Status: 200, Headers: map[string]string{"Content-Type": "application/json"}, Body: map[string]any{"value": value}}
	}
}

func TestLookUpSerialsTakes25BatchesFor500Serials(t *testing.T) {
	serials := make([]string, 500)
	for i := range serials {
		serials[i] = fmt.Sprintf("SN-%04d", i)
	}
	// SN-0007 is registered; SN-00070 is a longer serial that contains() also matches.
	b := &batchGraph{answer: registry([]string{"SN-0007", "SN-00070", "sn-0123"}, []string{"SN-0499"})}
	c, _ := newBatchClient(t, b)
	got, exs, err := c.LookUpSerials(context.Background(), tokens, serials, InRegistered)
	if err != nil {
		t.Fatal(err)
	}
	rounds := b.rounds()
	if len(rounds) != 25 || len(exs) != 25 {
		t.Fatalf("500 serials took %d batches (%d exchanges), want 25", len(rounds), len(exs))
	}
	seen := map[string]bool{}
	for _, r := range rounds {
		if len(r) > BatchLimit {
			t.Fatalf("a batch held %d requests", len(r))
		}
		for _, q := range r {
			if !strings.HasPrefix(q.URL, "/deviceManagement/windowsAutopilotDeviceIdentities?") {
				t.Errorf("inner url %s", q.URL)
			}
			u, _ := url.Parse(q.URL)
			seen[u.Query().Get("$filter")] = true
		}
	}
	if len(seen) != 500 {
		t.Errorf("%d distinct searches, want 500", len(seen))
	}
	for i, r := range got {
		if r.Serial != serials[i] || r.Err != nil || len(r.Imported) != 0 {
			t.Fatalf("result %d = %+v", i, r)
		}
		want := i == 7 || i == 123
		if r.Found() != want {
			t.Errorf("%s found = %v, want %v (%+v)", r.Serial, r.Found(), want, r.Registered)
		}
	}
	if len(got[7].Registered) != 1 || got[7].Registered[0].GroupTag != "Tag-SN-0007" {
		t.Errorf("SN-0007 = %+v", got[7].Registered)
	}

	// Both collections: one request per serial and collection.
	b2 := &batchGraph{answer: b.answer}
	c2, _ := newBatchClient(t, b2)
	got, _, err = c2.LookUpSerials(context.Background(), tokens, serials, InRegistered|InImported)
	if err != nil {
		t.Fatal(err)
	}
	if n := len(b2.rounds()); n != 50 {
		t.Errorf("500 serials in both collections took %d batches, want 50", n)
	}
	if len(got[499].Imported) != 1 || len(got[499].Registered) != 0 || len(got[7].Registered) != 1 {
		t.Errorf("SN-0499 = %+v, SN-0007 = %+v", got[499], got[7])
	}
}

func TestLookUpSerialsQuotesDedupesAndRefusesBadSerials(t *testing.T) {
	b := &batchGraph{answer: registry([]string{"O'BRIEN-1", "O'BRIEN-10"}, nil)}
	c, _ := newBatchClient(t, b)
	got, _, err := c.LookUpSerials(context.Background(), tokens, []string{"O'Brien-1", "bad\nserial", " o'brien-1 ", "", "NONE"}, InRegistered)
	if err != nil {
		t.Fatal(err)
	}
	rounds := b.rounds()
	if len(rounds) != 1 || len(rounds[0]) != 2 {
		t.Fatalf("sent %v", rounds)
	}
	u, _ := url.Parse(rounds[0][0].URL)
	if f := u.Query().Get("$filter"); f != "contains(serialNumber,'O''Brien-1')" {
		t.Errorf("$filter = %q", f)
	}
	if len(got[0].Registered) != 1 || got[0].Registered[0].SerialNumber != "O'BRIEN-1" {
		t.Errorf("O'Brien-1 = %+v", got[0])
	}
	if len(got[2].Registered) != 1 || got[2].Serial != " o'brien-1 " {
		t.Errorf("the repeated serial = %+v", got[2])
	}
	for _, i := range []int{1, 3} {
		if ge, ok := AsError(got[i].Err); !ok || ge.Kind != KindInvalidInput {
			t.Errorf("result %d = %+v", i, got[i])
		}
	}
	if got[4].Found() || got[4].Err != nil {
		t.Errorf("NONE = %+v", got[4])
	}
	if _, _, err := c.LookUpSerials(context.Background(), tokens, []string{"x"}, 0); err == nil {
		t.Error("a look-up with nowhere to look was accepted")
	}
}

func TestLookUpSerialsKeepsInnerErrorsToTheirSerial(t *testing.T) {
	inner := registry([]string{"SN-2"}, nil)
	b := &batchGraph{answer: func(round int, r jsonbatch.Request) innerAnswer {
		if strings.Contains(r.URL, "SN-1") {
			return innerAnswer{ID: r.ID, Status: 403, Body: graphErrorBody("Forbidden", "Application is not authorized to perform this operation.")}
		}
		return inner(round, r)
	}}
	c, _ := newBatchClient(t, b)
	got, _, err := c.LookUpSerials(context.Background(), tokens, []string{"SN-1", "SN-2"}, InRegistered)
	if err != nil {
		t.Fatal(err)
	}
	if ge, ok := AsError(got[0].Err); !ok || ge.StatusCode != 403 {
		t.Errorf("SN-1 = %+v", got[0])
	}
	if got[1].Err != nil || !got[1].Found() {
		t.Errorf("SN-2 = %+v", got[1])
	}
}

// The first batch goes alone; after it, the batches in flight beside the one that failed are
// answered, and none starts after it.
func TestLookUpSerialsStopsWhenABatchFails(t *testing.T) {
	serials := make([]string, (3+batchesInFlight)*BatchLimit)
	for i := range serials {
		serials[i] = fmt.Sprintf("SN-%d", i)
	}
	ok := (&batchGraph{answer: registry(nil, nil)}).handler
	s := &script{answers: h(ok, graphError(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."))}
	c, _ := newTestClient(t, s)
	got, exs, err := c.LookUpSerials(context.Background(), tokens, serials, InRegistered)
	if ge, ok := AsError(err); !ok || ge.Kind != KindUnauthorized {
		t.Fatalf("err = %v", err)
	}
	if want := 1 + batchesInFlight; s.count() != want || len(exs) != want {
		t.Errorf("sent %d batches (%d exchanges) after a 401, want %d", s.count(), len(exs), want)
	}
	for i, r := range got {
		if (i < 20) != (r.Err == nil) {
			t.Errorf("%s err = %v", r.Serial, r.Err)
		}
	}
}

func TestLookUpSerialsReadsFurtherPagesOfALongSearch(t *testing.T) {
	var srvURL string
	b := &batchGraph{}
	b.answer = func(_ int, r jsonbatch.Request) innerAnswer {
		return innerAnswer{ID: r.ID, Status: 200, Body: map[string]any{"value": []any{map[string]any{"serialNumber": "AB10"}},
			"@odata.nextLink": srvURL + "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities?%24skiptoken=1"}}
	}
	s := &script{answers: h(b.handler, jsonAnswer(`{"value":[{"serialNumber":"ab1","id":"`+autopilotID+`"}]}`))}
	c, _ := newTestClient(t, s)
	srvURL = c.Root()
	got, exs, err := c.LookUpSerials(context.Background(), tokens, []string{"AB1"}, InRegistered)
	if err != nil || got[0].Err != nil {
		t.Fatal(err, got[0].Err)
	}
	if len(got[0].Registered) != 1 || got[0].Registered[0].ID != autopilotID || len(exs) != 2 {
		t.Errorf("result %+v, %d exchanges", got[0], len(exs))
	}
	if s.received[1].Method != "GET" || s.received[1].URL.Query().Get("$skiptoken") != "1" {
		t.Errorf("second request %s %s", s.received[1].Method, s.received[1].URL)
	}
}

// An inner DELETE that timed out (504) may have run: like a standalone delete it is never sent
// again (its repeat would answer 404 for a delete that worked), while a GET beside it is.
func TestBatchNeverResendsADeleteWhoseAnswerWasLost(t *testing.T) {
	b := &batchGraph{answer: func(round int, r jsonbatch.Request) innerAnswer {
		if round == 1 {
			return innerAnswer{ID: r.ID, Status: 504, Body: graphErrorBody("GatewayTimeout", "Gateway timeout.")}
		}
		return innerAnswer{ID: r.ID, Status: 200, Body: map[string]any{"id": "x"}}
	}}
	c, _ := newBatchClient(t, b)
	got, _, err := c.Batch(context.Background(), tokens, []BatchRequest{{ID: "1", Method: "DELETE", URL: "/a"}, {ID: "2", Method: "GET", URL: "/b"}})
	if err != nil {
		t.Fatal(err)
	}
	rounds := b.rounds()
	if len(rounds) != 2 || len(rounds[1]) != 1 || rounds[1][0].Method != "GET" {
		t.Fatalf("rounds: %+v", rounds)
	}
	if ge, ok := AsError(got[0].Err); !ok || got[0].Status != 504 || ge.StatusCode != 504 || got[0].Sent != 1 {
		t.Errorf("the delete: %+v", got[0])
	}
}

// A 403 inside a batch is blamed like one outside it: by the scopes the batch's token was
// granted, so a bulk change by someone whose Intune role reads only says so, not "permission".
func TestBatchInnerRefusalsAreBlamedByTheGrantedScope(t *testing.T) {
	refuse := &batchGraph{answer: func(_ int, r jsonbatch.Request) innerAnswer {
		return innerAnswer{ID: r.ID, Status: 403, Body: graphErrorBody("Forbidden",
			"Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementServiceConfig.ReadWrite.All")}
	}}
	c, _ := newBatchClient(t, refuse)
	for _, tc := range []struct {
		granted string
		want    Kind
	}{
		{"DeviceManagementServiceConfig.ReadWrite.All User.Read", KindForbiddenRole},
		{"DeviceManagementServiceConfig.Read.All User.Read", KindForbiddenPermission},
	} {
		ts := oauth2.StaticTokenSource((&oauth2.Token{AccessToken: "t"}).WithExtra(map[string]any{"scope": tc.granted}))
		got, _, err := c.Batch(context.Background(), ts, []BatchRequest{{ID: "1", Method: http.MethodPatch, URL: "/deviceManagement/windowsAutopilotDeviceIdentities/x", Body: json.RawMessage(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
		if ge, ok := AsError(got[0].Err); !ok || ge.Kind != tc.want {
			t.Errorf("granted %q: %+v, want %s", tc.granted, got[0].Err, tc.want)
		}
	}
}

// throttledTwoMinutes answers every request 429, to be tried again in two minutes: longer than
// a call of a minute may wait.
func throttledTwoMinutes(_ int, r jsonbatch.Request) innerAnswer {
	return innerAnswer{ID: r.ID, Status: 429, Headers: map[string]string{"Retry-After": "120"}, Body: graphErrorBody("TooManyRequests", "Too many requests.")}
}

// A chunk Graph still throttles when the call's time is up stops the look-up: the next batch
// would come before the Retry-After Graph asked for. The serials not asked about carry the 429
// too, and it is returned, so the caller can wait as long as Graph asked.
func TestLookUpSerialsStopsAtAChunkGraphStillThrottles(t *testing.T) {
	b := &batchGraph{answer: throttledTwoMinutes}
	c, _ := newBatchClient(t, b, func(cfg *Config) { cfg.Timeout = time.Minute })
	serials := make([]string, 60)
	for i := range serials {
		serials[i] = fmt.Sprintf("SN-%04d", i)
	}
	got, _, err := c.LookUpSerials(context.Background(), tokens, serials, InRegistered)
	if ge, ok := AsError(err); !ok || ge.Kind != KindThrottled || ge.RetryAfter != 120*time.Second {
		t.Errorf("err = %v", err)
	}
	if n := len(b.rounds()); n != 1 {
		t.Errorf("%d batches sent, want the first only", n)
	}
	for _, r := range got {
		if ge, ok := AsError(r.Err); !ok || ge.Kind != KindThrottled {
			t.Fatalf("%s: %v", r.Serial, r.Err)
		}
	}
}

// Reads by id stop at a chunk Graph still throttles, as look-ups do: nothing more is sent before
// its Retry-After, and the ids not read carry the 429.
func TestReadsByIDStopAtAChunkGraphStillThrottles(t *testing.T) {
	b := &batchGraph{answer: throttledTwoMinutes}
	c, _ := newBatchClient(t, b, func(cfg *Config) { cfg.Timeout = time.Minute })
	ids := make([]string, 60)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	got, _, err := c.ReadDeviceIdentities(context.Background(), tokens, ids)
	if ge, ok := AsError(err); !ok || ge.Kind != KindThrottled {
		t.Errorf("err = %v", err)
	}
	if n := len(b.rounds()); n != 1 {
		t.Errorf("%d batches sent, want the first only", n)
	}
	for _, r := range got {
		if ge, ok := AsError(r.Err); !ok || ge.Kind != KindThrottled || r.Value != nil {
			t.Fatalf("%s: %+v", r.ID, r)
		}
	}
}

// An inner GET that Graph answered 500, 502, 503 or 504 changed nothing, so it is read again
// after a backoff, up to the client's attempts, while a PATCH beside it that got a 502 (it may
// have run) is never sent again.
func TestBatchRereadsGetsGraphFailedWithServiceTrouble(t *testing.T) {
	statuses := map[string]int{"1": 500, "2": 502, "3": 503, "4": 504}
	b := &batchGraph{answer: func(round int, r jsonbatch.Request) innerAnswer {
		if r.Method == http.MethodPatch {
			return innerAnswer{ID: r.ID, Status: 502, Body: graphErrorBody("BadGateway", "Bad gateway.")}
		}
		if round <= 3 {
			return innerAnswer{ID: r.ID, Status: statuses[r.ID], Body: graphErrorBody("ServiceTrouble", "Try later.")}
		}
		return innerAnswer{ID: r.ID, Status: 200, Body: map[string]any{"id": "x"}}
	}}
	c, clock := newBatchClient(t, b)
	start := clock.Now()
	reqs := []BatchRequest{{ID: "1", Method: "GET", URL: "/a"}, {ID: "2", Method: "GET", URL: "/b"}, {ID: "3", Method: "GET", URL: "/c"},
		{ID: "4", Method: "GET", URL: "/d"}, {ID: "5", Method: "PATCH", URL: "/e", Body: json.RawMessage(`{}`)}}
	got, _, err := c.Batch(context.Background(), tokens, reqs)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		if got[i].Err != nil || got[i].Status != 200 || got[i].Sent != 4 {
			t.Errorf("GET %s: status %d, sent %d times, %v", reqs[i].ID, got[i].Status, got[i].Sent, got[i].Err)
		}
	}
	if got[4].Status != 502 || got[4].Sent != 1 {
		t.Errorf("the PATCH whose answer was lost: status %d, sent %d times", got[4].Status, got[4].Sent)
	}
	if waited := clock.Now().Sub(start); waited < 3*time.Second/2 {
		t.Errorf("the reads went again after %s: no backoff", waited)
	}
}

// A GET Graph keeps failing is read at most the client's attempts, and its answer keeps Graph's
// ids for support.
func TestBatchStopsRereadingAfterItsAttempts(t *testing.T) {
	b := &batchGraph{answer: func(_ int, r jsonbatch.Request) innerAnswer {
		return innerAnswer{ID: r.ID, Status: 502, Body: graphErrorBody("BadGateway", "Bad gateway.")}
	}}
	c, _ := newBatchClient(t, b)
	got, _, err := c.Batch(context.Background(), tokens, []BatchRequest{{ID: "1", Method: "GET", URL: "/a"}})
	if err != nil {
		t.Fatal(err)
	}
	ge, ok := AsError(got[0].Err)
	if !ok || got[0].Sent != 4 || len(b.rounds()) != 4 || ge.RequestID != "44444444-4444-4444-4444-444444444444" {
		t.Errorf("sent %d times in %d batches: %+v", got[0].Sent, len(b.rounds()), got[0].Err)
	}
}

// A caller hears of the longest Retry-After of a batch's inner 429s as soon as they come, before
// the batch waits it out, so it can hold the tenant's other writes meanwhile.
func TestBatchThrottlingIsNoticedBeforeTheWait(t *testing.T) {
	b := &batchGraph{answer: func(round int, r jsonbatch.Request) innerAnswer {
		if round == 1 && r.ID != "1" {
			return innerAnswer{ID: r.ID, Status: 429, Headers: map[string]string{"Retry-After": r.ID}, Body: graphErrorBody("TooManyRequests", "Too many requests.")}
		}
		return innerAnswer{ID: r.ID, Status: 204}
	}}
	c, ft := newBatchClient(t, b)
	var heard []time.Duration
	waitsThen := -1
	ctx := OnThrottled(context.Background(), func(d time.Duration) { heard, waitsThen = append(heard, d), len(ft.Waits()) })
	reqs := []BatchRequest{{ID: "1", Method: "PATCH", URL: "/a", Body: json.RawMessage(`{}`)}, {ID: "4", Method: "PATCH", URL: "/b", Body: json.RawMessage(`{}`)},
		{ID: "6", Method: "PATCH", URL: "/c", Body: json.RawMessage(`{}`)}}
	if _, _, err := c.Batch(ctx, tokens, reqs); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 1 || heard[0] != 6*time.Second || waitsThen != 0 || len(ft.Waits()) != 1 {
		t.Errorf("heard %v after %d waits; waited %v", heard, waitsThen, ft.Waits())
	}
}

// Batches go out a few at a time; once Graph throttles one of them, nothing more is sent before
// its Retry-After has elapsed, neither its own requests nor a batch not yet started, and every
// id is read in the end, in order.
func TestReadsByIDSendNothingBeforeARetryAfterABatchBesideThemHeard(t *testing.T) {
	b := &batchGraph{answer: func(round int, r jsonbatch.Request) innerAnswer {
		if round == 2 {
			return innerAnswer{ID: r.ID, Status: 429, Headers: map[string]string{"Retry-After": "5"}, Body: graphErrorBody("TooManyRequests", "Too many requests.")}
		}
		return innerAnswer{ID: r.ID, Status: 200, Body: map[string]any{"id": "x"}}
	}}
	c, ft := newBatchClient(t, b)
	ids := make([]string, 10*BatchLimit)
	for i := range ids {
		ids[i] = fmt.Sprintf("00000000-0000-4000-8000-%012d", i)
	}
	start := ft.Now()
	got, exs, err := c.ReadDeviceIdentities(context.Background(), tokens, ids)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range got {
		if r.ID != ids[i] || r.Err != nil || r.Value == nil {
			t.Fatalf("read %d: %+v", i, r)
		}
	}
	if n := len(b.rounds()); n != 11 || len(exs) != 11 {
		t.Errorf("%d batch POSTs (%d exchanges), want 10 and the throttled one again", n, len(exs))
	}
	for _, ex := range exs {
		if at := ex.Attempts[0].Start.Sub(start); at > 0 && at < 5*time.Second {
			t.Errorf("a batch went %s after the batches in flight, before the Retry-After of 5 s", at)
		}
	}
}
