package graphclient

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/guid"
)

const testToken = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.secret-token"

var tokens = oauth2.StaticTokenSource(&oauth2.Token{AccessToken: testToken})

// script is a fake Graph answering from a list of responses, recording what it got.
type script struct {
	mu       sync.Mutex
	answers  []func(w http.ResponseWriter, r *http.Request)
	received []*http.Request
	bodies   []string
}

func (s *script) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(b))
	s.mu.Lock()
	n := len(s.received)
	s.received = append(s.received, r)
	s.bodies = append(s.bodies, string(b))
	s.mu.Unlock()
	if n >= len(s.answers) {
		n = len(s.answers) - 1
	}
	s.answers[n](w, r)
}

func (s *script) count() int { s.mu.Lock(); defer s.mu.Unlock(); return len(s.received) }

// posts counts the POSTs received so far.
func (s *script) posts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, r := range s.received {
		if r.Method == http.MethodPost {
			n++
		}
	}
	return n
}

func graphError(status int, code, msg string, headers ...string) func(w http.ResponseWriter, r *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		for i := 0; i+1 < len(headers); i += 2 {
			w.Header().Set(headers[i], headers[i+1])
		}
		w.Header().Set("request-id", "11111111-1111-1111-1111-111111111111")
		w.Header().Set("client-request-id", r.Header.Get("client-request-id"))
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		b, _ := json.Marshal(map[string]any{"error": map[string]any{"code": code, "message": msg,
			"innerError": map[string]string{"date": "2026-11-28T12:00:00", "request-id": "11111111-1111-1111-1111-111111111111", "client-request-id": r.Header.Get("client-request-id")}}})
		w.Write(b)
	}
}

func created(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("request-id", "22222222-2222-2222-2222-222222222222")
	w.WriteHeader(http.StatusCreated)
	fmt.Fprint(w, `{"@odata.type":"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload","id":"8d639524-9524-8d63-2495-638d2495638d","createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`)
}

func newTestClient(t *testing.T, s *script, mod ...func(*Config)) (*Client, *testkit.Clock) {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	ft := testkit.NewClock()
	cfg := Config{Root: srv.URL, Now: ft.Now, Sleep: ft.Sleep, Backoff: time.Second, Timeout: time.Minute}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c, ft
}

var seedUpload = NewUpload{CreatedDateTimeUtc: "2016-12-31T23:59:45.8788427-08:00", Status: "pending"}

func TestCreateSendsTheSeedRequest(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){created}}
	c, _ := newTestClient(t, s)
	u, ex, err := c.CreateUpload(context.Background(), tokens, seedUpload)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "8d639524-9524-8d63-2495-638d2495638d" || u.CreatedDateTimeUtc != "2016-12-31T23:59:45.8788427-08:00" {
		t.Errorf("upload = %+v", u)
	}
	r := s.received[0]
	if r.Method != http.MethodPost || r.URL.Path != "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads" {
		t.Errorf("sent %s %s", r.Method, r.URL.Path)
	}
	if r.Header.Get("Authorization") != "Bearer "+testToken || r.Header.Get("Accept") != "application/json" || r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v", r.Header)
	}
	if !guid.Valid(r.Header.Get("client-request-id")) {
		t.Errorf("client-request-id = %q", r.Header.Get("client-request-id"))
	}
	want := "{\n  \"@odata.type\": \"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload\",\n  \"createdDateTimeUtc\": \"2016-12-31T23:59:45.8788427-08:00\",\n  \"status\": \"pending\"\n}"
	if s.bodies[0] != want {
		t.Errorf("body =\n%s\nwant\n%s", s.bodies[0], want)
	}
	for _, text := range []string{ex.Attempts[0].RequestText(), ex.Attempts[0].ResponseText(), ex.AsCurl(), ex.AsPowerShell(), ex.AsHTTP()} {
		if strings.Contains(text, testToken) || strings.Contains(text, "secret-token") {
			t.Errorf("token in exchange text:\n%s", text)
		}
	}
	if !strings.Contains(ex.Attempts[0].RequestText(), "Authorization: Bearer <redacted>") || !strings.Contains(ex.Attempts[0].ResponseText(), "201 Created") {
		t.Errorf("exchange:\n%s\n%s", ex.Attempts[0].RequestText(), ex.Attempts[0].ResponseText())
	}
	js, _ := json.Marshal(ex)
	if strings.Contains(string(js), "secret-token") {
		t.Errorf("token in the stored exchange")
	}
}

func TestIDsAreCheckedBeforeAnythingIsSent(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){created}}
	c, _ := newTestClient(t, s)
	for _, id := range []string{"../me", "..%2F..%2Fusers", "8d639524-9524-8d63-2495-638d2495638d/../../users", "x?$select=*", "a#b",
		"evil.example", "//evil.example/x", "8d639524-9524-8d63-2495-638d2495638d?x=1", " 8d639524-9524-8d63-2495-638d2495638d"} {
		if _, _, err := c.GetUpload(context.Background(), tokens, id); err == nil {
			t.Errorf("GetUpload(%q) sent", id)
		}
		if _, err := c.DeleteUpload(context.Background(), tokens, id); err == nil {
			t.Errorf("DeleteUpload(%q) sent", id)
		}
		if _, _, err := c.CreateUpload(context.Background(), tokens, NewUpload{ID: id, Status: "pending", CreatedDateTimeUtc: "2026-01-01T00:00:00Z"}); err == nil {
			t.Errorf("CreateUpload(id %q) sent", id)
		}
	}
	if _, _, err := c.ListUploads(context.Background(), tokens, ListOptions{NextLink: "https://evil.example/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads?$skiptoken=1"}); err == nil {
		t.Error("followed a paging link to another host")
	}
	if _, _, err := c.ListUploads(context.Background(), tokens, ListOptions{Status: "pending' or 1 eq 1"}); err == nil {
		t.Error("sent an unknown status filter")
	}
	if s.count() != 0 {
		t.Errorf("%d requests reached Graph", s.count())
	}
}

func TestRetryPolicy(t *testing.T) {
	throttled := graphError(429, "TooManyRequests", "Too many requests", "Retry-After", "7")
	unavailable := graphError(503, "ServiceUnavailable", "busy")
	unavailableWithRetry := graphError(503, "ServiceUnavailable", "busy", "Retry-After", "3")
	gatewayTimeout := graphError(504, "GatewayTimeout", "slow")
	serverError := graphError(500, "InternalServerError", "boom")
	listOK := func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, `{"value":[]}`) }
	cases := []struct {
		name     string
		create   bool
		answers  []func(http.ResponseWriter, *http.Request)
		attempts int
		waits    []time.Duration // exact where Retry-After applies; -1 for a backoff
		kind     Kind
	}{
		{"POST retried after 429 with Retry-After", true, h(throttled, created), 2, []time.Duration{7 * time.Second}, 0},
		{"POST retried after 503 with Retry-After", true, h(unavailableWithRetry, created), 2, []time.Duration{3 * time.Second}, 0},
		{"POST not retried after 503 without Retry-After", true, h(unavailable, created), 1, nil, KindServer},
		{"POST not retried after 500: outcome unknown", true, h(serverError, created), 1, nil, KindOutcomeUnknown},
		{"POST not retried after 502: outcome unknown", true, h(graphError(502, "BadGateway", "x"), created), 1, nil, KindOutcomeUnknown},
		{"POST not retried after 504: outcome unknown", true, h(gatewayTimeout, created), 1, nil, KindOutcomeUnknown},
		{"GET retried after 503 with backoff", false, h(unavailable, listOK), 2, []time.Duration{-1}, 0},
		{"GET retried after 504", false, h(gatewayTimeout, gatewayTimeout, listOK), 3, []time.Duration{-1, -1}, 0},
		{"GET not retried after 500", false, h(serverError, listOK), 1, nil, KindServer},
		{"GET gives up after four attempts", false, h(throttled), 4, []time.Duration{7 * time.Second, 7 * time.Second, 7 * time.Second}, KindThrottled},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := &script{answers: tc.answers}
			if tc.create {
				// the outcome-unknown lookup lists uploads; answer it with nothing found
				s.answers = append(s.answers, listOK)
			}
			c, ft := newTestClient(t, s)
			var ex *Exchange
			var err error
			if tc.create {
				_, ex, err = c.CreateUpload(context.Background(), tokens, seedUpload)
			} else {
				_, ex, err = c.ListUploads(context.Background(), tokens, ListOptions{})
			}
			posts := s.posts()
			if got := len(ex.Attempts); got != tc.attempts {
				t.Errorf("attempts = %d, want %d", got, tc.attempts)
			}
			if tc.create && posts != tc.attempts {
				t.Errorf("POST sent %d times, want %d", posts, tc.attempts)
			}
			if len(ft.Waits()) != len(tc.waits) {
				t.Fatalf("waits = %v, want %v", ft.Waits(), tc.waits)
			}
			for i, w := range tc.waits {
				if w >= 0 && ft.Waits()[i] != w {
					t.Errorf("wait %d = %s, want %s (Retry-After)", i, ft.Waits()[i], w)
				}
				if w < 0 && (ft.Waits()[i] <= 0 || ft.Waits()[i] > time.Second<<i) {
					t.Errorf("backoff %d = %s, want within (0, %s]", i, ft.Waits()[i], time.Second<<i)
				}
			}
			ids := map[string]bool{}
			for _, a := range ex.Attempts {
				ids[a.RequestHeader.Get("client-request-id")] = true
			}
			if len(ids) != len(ex.Attempts) {
				t.Errorf("client-request-id reused across attempts")
			}
			switch {
			case tc.kind == 0 && err != nil:
				t.Errorf("err = %v", err)
			case tc.kind != 0:
				ge, ok := AsError(err)
				if !ok || ge.Kind != tc.kind {
					t.Errorf("err = %v, want kind %d", err, tc.kind)
				}
			}
		})
	}
}

func h(fs ...func(http.ResponseWriter, *http.Request)) []func(http.ResponseWriter, *http.Request) {
	return fs
}

func TestRetryAfterHTTPDateIsHonoured(t *testing.T) {
	at := time.Now().Add(9 * time.Second).UTC().Format(http.TimeFormat)
	s := &script{answers: h(graphError(429, "TooManyRequests", "slow down", "Retry-After", at), created)}
	c, ft := newTestClient(t, s)
	if _, _, err := c.CreateUpload(context.Background(), tokens, seedUpload); err != nil {
		t.Fatal(err)
	}
	if len(ft.Waits()) != 1 || ft.Waits()[0] < 7*time.Second || ft.Waits()[0] > 9*time.Second {
		t.Errorf("waited %v for an HTTP-date Retry-After 9 s away", ft.Waits())
	}
}

func TestDeadlineBoundsRetries(t *testing.T) {
	s := &script{answers: h(graphError(429, "TooManyRequests", "slow down", "Retry-After", "120"))}
	c, ft := newTestClient(t, s, func(c *Config) { c.Timeout = 30 * time.Second })
	_, ex, err := c.ListUploads(context.Background(), tokens, ListOptions{})
	if len(ex.Attempts) != 1 || len(ft.Waits()) != 0 {
		t.Errorf("attempts %d waits %v: a 120 s wait cannot fit a 30 s deadline", len(ex.Attempts), ft.Waits())
	}
	if ge, ok := AsError(err); !ok || ge.Kind != KindThrottled || ge.RetryAfter != 120*time.Second {
		t.Errorf("err = %v", err)
	}
}

func TestOutcomeUnknownLooksForTheUpload(t *testing.T) {
	found := func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"value":[{"id":"8d639524-9524-8d63-2495-638d2495638d","createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}]}`)
	}
	s := &script{answers: h(graphError(504, "GatewayTimeout", "slow"), found)}
	c, _ := newTestClient(t, s)
	u, ex, err := c.CreateUpload(context.Background(), tokens, seedUpload)
	if ge, ok := AsError(err); !ok || ge.Kind != KindOutcomeUnknown {
		t.Fatalf("err = %v", err)
	}
	// Without an id the client cannot tell its upload from an earlier one with the same date
	// and status: it gives the matches, and the caller judges them.
	if rc := ex.Reconciliation; ex.Outcome != OutcomeUnknown || rc == nil || !rc.Looked || rc.Found != nil || len(rc.Matches) != 1 || u != nil {
		t.Errorf("reconciliation = %+v, upload %v", ex.Reconciliation, u)
	}
	if s.received[1].Method != http.MethodGet || !strings.Contains(s.received[1].URL.RawQuery, "status") {
		t.Errorf("lookup sent %s %s", s.received[1].Method, s.received[1].URL)
	}
}

// The look reads every page of the uploads with the status sent, and takes a date written
// otherwise (another offset, fewer digits) for the same moment; past its last page it says it
// did not read them all.
func TestLookForALostCreateReadsEveryPage(t *testing.T) {
	var s *script
	page := func(next bool, uploads ...string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, r *http.Request) {
			link := ""
			if next {
				link = `,"@odata.nextLink":"http://` + r.Host + r.URL.Path + `?$skiptoken=p` + strconv.Itoa(s.count()) + `"`
			}
			fmt.Fprintf(w, `{"value":[%s]%s}`, strings.Join(uploads, ","), link)
		}
	}
	upload := func(id, at string) string {
		return `{"id":"` + id + `","createdDateTimeUtc":"` + at + `","status":"pending"}`
	}
	s = &script{answers: h(page(true, upload("11111111-1111-1111-1111-111111111111", "2016-12-31T23:59:45Z")),
		page(false, upload("22222222-2222-2222-2222-222222222222", "2017-01-01T07:59:45.8788427Z")))}
	c, _ := newTestClient(t, s)
	rc := c.FindUpload(context.Background(), tokens, seedUpload)
	if len(rc.Matches) != 1 || rc.Matches[0].ID != "22222222-2222-2222-2222-222222222222" || rc.Partial || s.count() != 2 {
		t.Errorf("look read %d pages: %+v", s.count(), rc)
	}

	endless := make([]func(http.ResponseWriter, *http.Request), maxLookPages+1)
	for i := range endless {
		endless[i] = page(true)
	}
	s = &script{answers: h(endless...)}
	c, _ = newTestClient(t, s)
	if rc := c.FindUpload(context.Background(), tokens, seedUpload); !rc.Partial || s.count() != maxLookPages {
		t.Errorf("after %d pages: %+v", s.count(), rc)
	}
}

func TestTimeoutOnPostIsOutcomeUnknown(t *testing.T) {
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	s := &script{answers: h(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	c, _ := New(Config{Root: srv.URL, Timeout: 50 * time.Millisecond})
	_, ex, err := c.CreateUpload(context.Background(), tokens, seedUpload)
	if ge, ok := AsError(err); !ok || ge.Kind != KindOutcomeUnknown {
		t.Fatalf("err = %v", err)
	}
	posts := s.posts()
	if posts != 1 || ex.Reconciliation == nil || !ex.Reconciliation.Looked {
		t.Errorf("posts %d, reconciliation %+v", posts, ex.Reconciliation)
	}
	// The exchange says it in words, not in Go's.
	if got := ex.Attempts[0].ResponseText(); !strings.HasPrefix(got, "(no answer within the desk's deadline: it waited ") ||
		strings.Contains(got, "context") || strings.Contains(got, "Post") {
		t.Errorf("the timed-out attempt reads %q", got)
	}
}

func TestGarbageBodiesBecomeCleanErrors(t *testing.T) {
	cases := map[string]func(http.ResponseWriter, *http.Request){
		"HTML with 200": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			fmt.Fprint(w, "<html><script>alert(1)</script>Sign in to your proxy</html>")
		},
		"truncated JSON": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprint(w, `{"value":[{"id":"8d63`)
		},
		"10 MB body": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"value":["` + strings.Repeat("a", 10<<20) + `"]}`))
		},
		"wrong content type": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write([]byte{0xff, 0xfe, 0x00, 0x01})
		},
		"HTML error page": func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			w.WriteHeader(400)
			fmt.Fprint(w, "<h1>Bad Request</h1><script>x</script>")
		},
	}
	for name, answer := range cases {
		t.Run(name, func(t *testing.T) {
			c, _ := newTestClient(t, &script{answers: h(answer)})
			_, ex, err := c.ListUploads(context.Background(), tokens, ListOptions{})
			ge, ok := AsError(err)
			if !ok || ge.Kind != KindBadResponse {
				t.Fatalf("err = %v", err)
			}
			shown := ge.Error() + ex.Last().ResponseText()
			if strings.Contains(shown, "<script>") || len(shown) > 4096 {
				t.Errorf("raw upstream body reached the display (%d bytes)", len(shown))
			}
		})
	}
}

func TestUnwrapsIntuneNestedMessage(t *testing.T) {
	msg := `{"_version":3,"Message":"Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementServiceConfig.ReadWrite.All - Operation ID (for customer support): 00000000-0000-0000-0000-000000000000 - Activity ID: 2578f4a3-1b2c-4d5e-8f90-a1b2c3d4e5f6 - Url: https://fef.msub05.manage.microsoft.com/DeviceEnrollmentFE/x?api-version=5023","CustomApiErrorPhrase":"","RetryAfter":null,"ErrorSourceService":"","HttpHeaders":"{}"}`
	c, _ := newTestClient(t, &script{answers: h(graphError(403, "Forbidden", msg))})
	_, _, err := c.CreateUpload(context.Background(), tokens, seedUpload)
	ge, _ := AsError(err)
	if ge == nil || ge.Kind != KindForbiddenPermission {
		t.Fatalf("err = %v", err)
	}
	if ge.Message != "Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementServiceConfig.ReadWrite.All" {
		t.Errorf("message = %q", ge.Message)
	}
	if ge.ActivityID != "2578f4a3-1b2c-4d5e-8f90-a1b2c3d4e5f6" || ge.OperationID != "00000000-0000-0000-0000-000000000000" {
		t.Errorf("ids = %q %q", ge.ActivityID, ge.OperationID)
	}
	if ge.Date != "2026-11-28T12:00:00" || ge.RequestID == "" {
		t.Errorf("support ids: %+v", ge)
	}
}

// Graph's answers are classified by what they mean, and a classified failure survives being
// stored as JSON (activities and import jobs keep it).
func TestEveryFailureIsClassified(t *testing.T) {
	cases := []struct {
		answer func(http.ResponseWriter, *http.Request)
		kind   Kind
	}{
		{graphError(400, "BadRequest", "Cannot convert the literal 'x' to the expected type 'Edm.DateTimeOffset'."), KindValidation},
		{graphError(400, "BadRequest", "Resource not found for the segment 'importedWindowsAutopilotDeviceIdentityUploads'."), KindSegmentNotFound},
		{graphError(400, "No method match route template", "No OData route exists that match template"), KindNoMethodMatch},
		{graphError(401, "InvalidAuthenticationToken", "Access token has expired or is not yet valid."), KindUnauthorized},
		{graphError(403, "Forbidden", `{"Message":"Application must have one of the following scopes: DeviceManagementServiceConfig.ReadWrite.All - Activity ID: 2578f4a3-1b2c-4d5e-8f90-a1b2c3d4e5f6"}`), KindForbiddenPermission},
		{graphError(403, "Forbidden", `{"Message":"User is not authorized to perform this operation. - Activity ID: 2578f4a3-1b2c-4d5e-8f90-a1b2c3d4e5f6"}`), KindForbiddenRole},
		{graphError(403, "Forbidden", "The tenant does not have a valid Intune license."), KindForbiddenLicense},
		{graphError(403, "Forbidden", "Conditional access", "WWW-Authenticate", `Bearer error="insufficient_claims", claims="eyJhY2Nlc3MiOnt9fQ=="`), KindConditionalAccess},
		{graphError(404, "ResourceNotFound", "Resource not found."), KindNotFound},
		{graphError(409, "Conflict", "An object with id already exists."), KindConflict},
		{graphError(429, "TooManyRequests", "Too many requests", "Retry-After", "30"), KindThrottled},
		{graphError(503, "ServiceUnavailable", "The service is unavailable."), KindServer},
		{graphError(400, "BadRequest", "Request not applicable to target tenant."), KindForbiddenLicense},
		{graphError(413, "RequestEntityTooLarge", "The request is too large."), KindTooLarge},
		{graphError(422, "UnprocessableEntity", "The entity cannot be processed."), KindValidation},
		{graphError(418, "Teapot", "Not a status Graph gives."), KindUnknown},
	}
	for _, tc := range cases {
		c, _ := newTestClient(t, &script{answers: h(tc.answer)}, func(c *Config) { c.MaxAttempts = 1 })
		_, _, err := c.UpdateUploadStatus(context.Background(), tokens, "8d639524-9524-8d63-2495-638d2495638d", "complete")
		ge, _ := AsError(err)
		if ge == nil || ge.Kind != tc.kind {
			t.Errorf("kind = %v, want %d (err %v)", ge, tc.kind, err)
			continue
		}
		b, jerr := json.Marshal(ge)
		var back Error
		if jerr != nil || json.Unmarshal(b, &back) != nil || back.Kind != ge.Kind || back.StatusCode != ge.StatusCode || back.Code != ge.Code ||
			back.Message != ge.Message || back.RequestID != ge.RequestID || back.ActivityID != ge.ActivityID || back.RetryAfter != ge.RetryAfter {
			t.Errorf("kind %v stored as %s, read back as %+v", tc.kind, b, back)
		}
		if !strings.Contains(string(b), `"kind":"`+tc.kind.String()+`"`) {
			t.Errorf("kind %v is not stored by name: %s", tc.kind, b)
		}
	}
	var k Kind
	if err := k.UnmarshalText([]byte("a-kind-from-the-future")); err != nil || k != KindUnknown {
		t.Errorf("an unknown kind name reads as %v, %v", k, err)
	}
}

func TestNetworkFailureIsExplained(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close()
	ft := testkit.NewClockAt(time.Now())
	c, _ := New(Config{Root: url, Sleep: ft.Sleep})
	_, ex, err := c.ListUploads(context.Background(), tokens, ListOptions{})
	if ge, ok := AsError(err); !ok || ge.Kind != KindNetwork {
		t.Fatalf("err = %v", err)
	}
	if len(ex.Attempts) != 4 || strings.Contains(ex.Last().ResponseText(), testToken) {
		t.Errorf("a refused connection on GET should be retried: %d attempts", len(ex.Attempts))
	}
	if got := ex.Last().ResponseText(); !strings.HasPrefix(got, "(no connection: the desk could not connect to Microsoft Graph (") {
		t.Errorf("the refused attempt reads %q", got)
	}
}

func FuzzParseError(f *testing.F) {
	f.Add(400, `{"error":{"code":"BadRequest","message":"Resource not found for the segment 'x'.","innerError":{"date":"2026-11-28T12:00:00"}}}`, "")
	f.Add(403, `{"error":{"code":"Forbidden","message":"{\"_version\":3,\"Message\":\"x - Activity ID: 2578f4a3-1b2c-4d5e-8f90-a1b2c3d4e5f6 - Url: https://x\"}"}}`, "")
	f.Add(429, `{"error":{}}`, "Fri, 31 Dec 1999 23:59:59 GMT")
	f.Add(500, `<html>`, "-5")
	f.Add(401, `{"error":{"code":1}}`, "1e9")
	f.Fuzz(func(t *testing.T, status int, body, retry string) {
		if status < 100 || status > 999 {
			return
		}
		resp := &http.Response{StatusCode: status, Status: fmt.Sprint(status), Header: http.Header{"Retry-After": {retry}}}
		e := parseError(resp, []byte(body), "v1.0")
		if e == nil || e.StatusCode != status || e.RetryAfter < 0 {
			t.Fatalf("parseError = %+v", e)
		}
		if strings.Contains(e.Message, "Url:") {
			t.Fatalf("Url tail kept: %q", e.Message)
		}
	})
}

// Intune words a missing permission and a missing role alike; what the token answer granted
// tells them apart, and a refusal that names the licence stays one.
func TestRefusalsAreBlamedByTheGrantedScope(t *testing.T) {
	intune := &Error{StatusCode: 403, Message: "Application is not authorized to perform this operation. Application must have one of the following scopes: DeviceManagementServiceConfig.ReadWrite.All"}
	cases := []struct {
		granted, method string
		want            Kind
	}{
		{"", http.MethodPost, KindForbiddenPermission}, // not said: Graph's words decide
		{"https://graph.microsoft.com/DeviceManagementServiceConfig.Read.All User.Read", http.MethodPost, KindForbiddenPermission},
		{"DeviceManagementServiceConfig.ReadWrite.All User.Read", http.MethodPost, KindForbiddenRole},
		{"DeviceManagementServiceConfig.Read.All", http.MethodGet, KindForbiddenRole},
		{"User.Read", http.MethodGet, KindForbiddenPermission},
	}
	for _, tc := range cases {
		e := *intune
		e.Kind = classify(&e)
		blame(&e, tc.granted, tc.method)
		if e.Kind != tc.want {
			t.Errorf("%q %s: %s, want %s", tc.granted, tc.method, e.Kind, tc.want)
		}
	}
	licence := &Error{StatusCode: 400, Code: "BadRequest", Message: "Request not applicable to target tenant."}
	licence.Kind = classify(licence)
	blame(licence, "DeviceManagementServiceConfig.ReadWrite.All", http.MethodGet)
	if licence.Kind != KindForbiddenLicense {
		t.Errorf("a tenant without a licence: %s", licence.Kind)
	}
}

// A delete whose answer was lost is sent again (it is idempotent); Graph's 404 then means the
// first attempt deleted it. A delete that never gets an answer has an unknown outcome, and a 404
// to a first attempt is still "not found".
func TestDeleteWhoseAnswerWasLost(t *testing.T) {
	const id = "8d639524-9524-8d63-2495-638d2495638d"
	gone := graphError(404, "ResourceNotFound", "not found")
	s := &script{answers: h(graphError(504, "GatewayTimeout", "slow"), gone)}
	c, _ := newTestClient(t, s)
	ex, err := c.DeleteUpload(context.Background(), tokens, id)
	if err != nil || ex.Outcome != OutcomeDeletedEarlier || len(ex.Attempts) != 2 {
		t.Errorf("504 then 404: %v, outcome %q, %d attempts", err, ex.Outcome, len(ex.Attempts))
	}

	s = &script{answers: h(graphError(504, "GatewayTimeout", "slow"))}
	c, _ = newTestClient(t, s)
	if _, err := c.DeleteUpload(context.Background(), tokens, id); !isKind(err, KindOutcomeUnknown) || s.count() != 4 {
		t.Errorf("504 every time: %v after %d attempts", err, s.count())
	}

	s = &script{answers: h(gone)}
	c, _ = newTestClient(t, s)
	if ex, err := c.DeleteUpload(context.Background(), tokens, id); !isKind(err, KindNotFound) || ex.Outcome != "" {
		t.Errorf("404 at once: %v, outcome %q", err, ex.Outcome)
	}
}

// A caller hears of Graph's Retry-After as soon as it comes, before the client waits it out, so
// it can hold the tenant's other writes meanwhile.
func TestThrottlingIsNoticedBeforeTheWait(t *testing.T) {
	s := &script{answers: h(graphError(429, "TooManyRequests", "slow down", "Retry-After", "5"), created)}
	c, ft := newTestClient(t, s)
	var heard []time.Duration
	waitsThen := -1
	ctx := OnThrottled(context.Background(), func(d time.Duration) { heard, waitsThen = append(heard, d), len(ft.Waits()) })
	if _, _, err := c.CreateUpload(ctx, tokens, seedUpload); err != nil {
		t.Fatal(err)
	}
	if len(heard) != 1 || heard[0] != 5*time.Second || waitsThen != 0 || len(ft.Waits()) != 1 {
		t.Errorf("heard %v after %d waits; waited %v", heard, waitsThen, ft.Waits())
	}
}

// Support details name the Graph version the request went to: a sync goes to beta whatever the
// desk's configured version.
func TestSupportDetailsNameTheVersionSentTo(t *testing.T) {
	s := &script{answers: h(graphError(409, "Conflict", "A sync is already running."))}
	c, _ := newTestClient(t, s)
	ex, err := c.SyncAutopilot(context.Background(), tokens)
	if err == nil {
		t.Fatal("the refused sync succeeded")
	}
	if got := SupportFor(ex, err).Version; got != "beta" {
		t.Errorf("support details of a sync name version %q, want beta", got)
	}
}

// The request is printed as Microsoft's page for the create prints it: the request line, the
// headers with Content-Type and Content-Length together (the count of the body shown), a blank
// line and the indented body; the ids Graph is given for support come after them.
func TestRequestIsPrintedAsMicrosoftsPagePrintsIt(t *testing.T) {
	s := &script{answers: []func(http.ResponseWriter, *http.Request){created}}
	c, _ := newTestClient(t, s)
	_, ex, err := c.CreateUpload(context.Background(), tokens, seedUpload)
	if err != nil {
		t.Fatal(err)
	}
	body := "{\n  \"@odata.type\": \"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload\",\n  \"createdDateTimeUtc\": \"2016-12-31T23:59:45.8788427-08:00\",\n  \"status\": \"pending\"\n}"
	want := "POST http://" + s.received[0].Host + "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads\n" +
		"Authorization: Bearer <redacted>\n" +
		"Accept: application/json\n" +
		"Content-Type: application/json\n" +
		fmt.Sprintf("Content-Length: %d\n", len(body)) +
		"client-request-id: " + s.received[0].Header.Get("client-request-id") + "\n\n" + body
	for name, got := range map[string]string{"request": ex.Attempts[0].RequestText(), "raw HTTP": ex.AsHTTP()} {
		if got != want {
			t.Errorf("%s printed\n%s\nwant\n%s", name, got, want)
		}
	}
}
