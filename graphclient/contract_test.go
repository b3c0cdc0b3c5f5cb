package graphclient

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

var seedTime = time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)

// answer writes status with body (no Content-Type when the body is empty).
func answer(status int, contentType, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.Header().Set("request-id", "66666666-6666-6666-6666-666666666666")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

const seedEntity = `{"@odata.type":"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload","id":"8d639524-9524-8d63-2495-638d2495638d","createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`

// A create Graph answered with a 2xx is carried out, whatever its body: an empty or unreadable
// body, a 204 or an entity without its id is an outcome to look for, never a failure to send
// again; the create is sent once and the look made for lost answers finds it.
func TestCreateAnsweredTwoHundredIsNeverAFailure(t *testing.T) {
	cases := map[string]func(http.ResponseWriter, *http.Request){
		"201 empty":      answer(201, "application/json", ""),
		"201 not JSON":   answer(201, "text/html", "<html>ok</html>"),
		"201 cut off":    answer(201, "application/json", `{"id":"8d63`),
		"204":            answer(204, "", ""),
		"200 without id": answer(200, "application/json", `{"createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`),
	}
	list := answer(200, "application/json", `{"value":[`+seedEntity+`]}`)
	for name, first := range cases {
		t.Run(name, func(t *testing.T) {
			s := &script{answers: h(first, list)}
			c, _ := newTestClient(t, s)
			u, ex, err := c.CreateUpload(context.Background(), tokens, seedUpload)
			ge, ok := AsError(err)
			if !ok || ge.Kind != KindOutcomeUnknown || ge.StatusCode/100 != 2 {
				t.Fatalf("err = %v (kind %v), want outcome unknown with Graph's 2xx", err, ge)
			}
			if s.posts() != 1 {
				t.Errorf("the create was sent %d times", s.posts())
			}
			rc := ex.Reconciliation
			if ex.Outcome != OutcomeUnknown || rc == nil || !rc.Looked || rc.Accepted != ge.StatusCode || len(rc.Matches) != 1 || u != nil {
				t.Fatalf("exchange outcome %q, reconciliation %+v, upload %v", ex.Outcome, rc, u)
			}
			// Even a look that finds nothing, late, never says it was not created.
			rc.Matches = nil
			rc.Judge(map[string]bool{}, seedTime, seedTime.Add(48*time.Hour))
			if rc.NotCreated() {
				t.Error("a create Graph answered 2xx is judged not created")
			}
		})
	}
}

// A status change or any write answered 2xx with a body that cannot be read was carried out.
func TestWriteAnsweredTwoHundredUnreadableIsOutcomeUnknown(t *testing.T) {
	s := &script{answers: h(answer(200, "application/json", "{"))}
	c, _ := newTestClient(t, s)
	_, ex, err := c.UpdateUploadStatus(context.Background(), tokens, "8d639524-9524-8d63-2495-638d2495638d", "complete")
	if ge, ok := AsError(err); !ok || ge.Kind != KindOutcomeUnknown || ge.StatusCode != 200 || ex.Outcome != OutcomeUnknown {
		t.Fatalf("err = %v, outcome %q", err, ex.Outcome)
	}
	if s.count() != 1 {
		t.Errorf("the change was sent %d times", s.count())
	}
	// A read answered 200 with garbage is still an answer the desk cannot read: it may be read again.
	c, _ = newTestClient(t, &script{answers: h(answer(200, "application/json", "{"))})
	if _, _, err := c.GetUpload(context.Background(), tokens, "8d639524-9524-8d63-2495-638d2495638d"); !isKind(err, KindBadResponse) {
		t.Errorf("read: err = %v", err)
	}
}

// A 204 to a PATCH is a normal answer: the upload is what was sent, with what the answer did not
// say read again; never blank fields.
func TestStatusChangeAnswered204SaysWhatWasChanged(t *testing.T) {
	s := &script{answers: h(answer(204, "", ""), answer(200, "application/json", seedEntity))}
	c, _ := newTestClient(t, s)
	u, _, err := c.UpdateUploadStatus(context.Background(), tokens, "8d639524-9524-8d63-2495-638d2495638d", "complete")
	if err != nil {
		t.Fatal(err)
	}
	if u.ID != "8d639524-9524-8d63-2495-638d2495638d" || u.Status != "complete" || u.CreatedDateTimeUtc != "2016-12-31T23:59:45.8788427-08:00" {
		t.Errorf("upload after a 204 = %+v", u)
	}
	if s.count() != 2 || s.received[1].Method != http.MethodGet {
		t.Errorf("calls: %d", s.count())
	}
	// The read failing leaves only the date unsaid.
	s = &script{answers: h(answer(204, "", ""), graphError(500, "InternalServerError", "x"))}
	c, _ = newTestClient(t, s, func(c *Config) { c.MaxAttempts = 1 })
	u, _, err = c.UpdateUploadStatus(context.Background(), tokens, "8d639524-9524-8d63-2495-638d2495638d", "error")
	if err != nil || u.ID != "8d639524-9524-8d63-2495-638d2495638d" || u.Status != "error" {
		t.Errorf("upload %+v, err %v", u, err)
	}
}

// An error answer without a readable body keeps the meaning of its status: a 401 is an expired
// token (renewed once), a 403 a refusal, a 404 not found; the body is only a detail.
func TestErrorWithoutABodyIsClassifiedByItsStatus(t *testing.T) {
	cases := []struct {
		status int
		kind   Kind
	}{
		{401, KindUnauthorized}, {403, KindForbiddenRole}, {404, KindNotFound}, {409, KindConflict},
		{413, KindTooLarge}, {429, KindThrottled}, {500, KindServer}, {400, KindBadResponse}, {418, KindBadResponse},
	}
	for _, tc := range cases {
		for _, body := range []string{"", "<html>proxy</html>"} {
			c, _ := newTestClient(t, &script{answers: h(answer(tc.status, "text/html", body))}, func(c *Config) { c.MaxAttempts = 1 })
			_, _, err := c.GetUpload(context.Background(), tokens, "8d639524-9524-8d63-2495-638d2495638d")
			ge, _ := AsError(err)
			if ge == nil || ge.Kind != tc.kind || ge.StatusCode != tc.status || !strings.Contains(ge.Message, "without a readable error") {
				t.Errorf("%d %q: err = %v (kind %v), want %v", tc.status, body, err, ge, tc.kind)
			}
			if ge != nil && strings.Contains(ge.Message, "proxy") {
				t.Errorf("the raw body reached the message: %q", ge.Message)
			}
		}
	}
	// The 401 is renewed once and the call made again.
	s := &script{answers: h(answer(401, "", ""), answer(200, "application/json", seedEntity))}
	c, _ := newTestClient(t, s)
	renewed := 0
	u, _, err := WithRenewal(tokens, func(ts oauth2.TokenSource) (oauth2.TokenSource, error) { renewed++; return tokens, nil },
		func(ts oauth2.TokenSource) (*Upload, *Exchange, error) {
			return c.GetUpload(context.Background(), ts, "8d639524-9524-8d63-2495-638d2495638d")
		})
	if err != nil || u == nil || renewed != 1 {
		t.Errorf("renewed %d times, err %v", renewed, err)
	}
}

// A write inside an accepted batch that Graph's answer says nothing about may have been carried
// out: its outcome is unknown (read back, never called refused); a read is simply unanswered.
func TestBatchWriteWithoutAnAnswerIsOutcomeUnknown(t *testing.T) {
	for _, body := range []string{`{"responses":[]}`, `{"responses":[{"id":"1","status":204}]}`} {
		s := &script{answers: h(jsonAnswer(body))}
		c, _ := newTestClient(t, s)
		reqs := []BatchRequest{
			{ID: "1", Method: http.MethodPost, URL: "/deviceManagement/windowsAutopilotDeviceIdentities/a/updateDeviceProperties", Body: []byte(`{"groupTag":"x"}`)},
			{ID: "2", Method: http.MethodPost, URL: "/deviceManagement/windowsAutopilotDeviceIdentities/b/updateDeviceProperties", Body: []byte(`{"groupTag":"x"}`)},
			{ID: "3", Method: http.MethodGet, URL: "/deviceManagement/windowsAutopilotDeviceIdentities/c"},
		}
		got, _, err := c.Batch(context.Background(), tokens, reqs)
		if err != nil {
			t.Fatal(err)
		}
		if ge, ok := AsError(got[1].Err); !ok || ge.Kind != KindOutcomeUnknown || ge.ClientRequestID == "" {
			t.Errorf("%s: unanswered write = %+v", body, got[1].Err)
		}
		if !isKind(got[2].Err, KindBadResponse) {
			t.Errorf("%s: unanswered read = %+v", body, got[2].Err)
		}
		if s.posts() != 1 {
			t.Errorf("%s: %d batch POSTs, want 1 (nothing sent again)", body, s.posts())
		}
	}
	// A batch of writes answered 200 with a body that cannot be read: every write's outcome is unknown.
	s := &script{answers: h(answer(200, "application/json", ""))}
	c, _ := newTestClient(t, s)
	got, _, err := c.Batch(context.Background(), tokens, []BatchRequest{{ID: "1", Method: http.MethodDelete, URL: "/deviceManagement/x/1"}})
	if !isKind(err, KindOutcomeUnknown) || !isKind(got[0].Err, KindOutcomeUnknown) {
		t.Errorf("unreadable batch of writes: err %v, answer %+v", err, got[0].Err)
	}
	// The batch's 200 says only that Graph took the batch, not that it carried out each request.
	if ge, _ := AsError(got[0].Err); ge == nil || ge.StatusCode/100 == 2 || !strings.Contains(ge.Message, "accepted the batch") {
		t.Errorf("an unreadable batch answer reads as done: %+v", got[0].Err)
	}
}

// A create that named its own id and lost its answer is also looked for by its date and status:
// Graph assigns the ids, so a 404 for the id sent does not show it was not created.
func TestLostCreateWithItsOwnIDIsAlsoLookedForByDate(t *testing.T) {
	other := `{"id":"bbbbbbbb-2222-4222-8222-222222222222","createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`
	s := &script{answers: h(graphError(504, "GatewayTimeout", "timeout"), graphError(404, "ResourceNotFound", "Resource not found."),
		answer(200, "application/json", `{"value":[`+other+`]}`))}
	c, _ := newTestClient(t, s)
	in := seedUpload
	in.ID = "aaaaaaaa-1111-4111-8111-111111111111"
	_, ex, err := c.CreateUpload(context.Background(), tokens, in)
	if !isKind(err, KindOutcomeUnknown) {
		t.Fatalf("err = %v", err)
	}
	rc := ex.Reconciliation
	if rc == nil || len(rc.Matches) != 1 || rc.Matches[0].ID != "bbbbbbbb-2222-4222-8222-222222222222" || s.count() != 3 {
		t.Fatalf("reconciliation %+v after %d calls", rc, s.count())
	}
	rc.Judge(map[string]bool{}, seedTime, seedTime)
	if rc.NotCreated() || rc.Found == nil {
		t.Errorf("judged %+v", rc)
	}
}

// pager answers a collection's pages: the page for each link, by its $skiptoken ("" first).
func pager(t *testing.T, pages map[string]string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		body, ok := pages[r.URL.Query().Get("$skiptoken")]
		if !ok {
			t.Errorf("asked for %s", r.URL)
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, strings.ReplaceAll(body, "{HOST}", "http://"+r.Host))
	}
}

// Intune has answered the same @odata.nextLink again: a link already followed ends the walk, and
// no object is returned twice, whether the pages are read in one loop or one call at a time.
func TestRepeatedNextLinkEndsTheWalkWithoutDuplicates(t *testing.T) {
	const path = "/v1.0/deviceManagement/windowsAutopilotDeviceIdentities"
	dev := `{"id":"11111111-0000-0000-0000-000000000001","serialNumber":"8147-1637-0157"}`
	dev2 := `{"id":"11111111-0000-0000-0000-000000000002","serialNumber":"8147-1637-0158"}`
	pages := map[string]string{
		"":    `{"value":[` + dev + `],"@odata.nextLink":"{HOST}` + path + `?$skiptoken=A"}`,
		"A":   `{"value":[` + dev + `,` + dev2 + `],"@odata.nextLink":"{HOST}` + path + `?$skiptoken=A"}`,
		"B":   `{"value":[` + dev2 + `],"@odata.nextLink":"{HOST}` + path + `?$skiptoken=C"}`,
		"C":   `{"value":[],"@odata.nextLink":"{HOST}` + path + `?$skiptoken=B"}`,
		"END": `{"value":[]}`,
	}
	s := &script{answers: h(pager(t, pages))}
	c, _ := newTestClient(t, s)
	ctx := context.Background()
	var seen []string
	q := AutopilotDeviceQuery{}
	for n := 0; n < 10; n++ {
		p, _, err := c.ListAutopilotDevices(ctx, tokens, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range p.Devices {
			seen = append(seen, d.SerialNumber)
		}
		if p.NextLink == "" {
			break
		}
		q = AutopilotDeviceQuery{NextLink: p.NextLink}
	}
	if strings.Join(seen, ",") != "8147-1637-0157,8147-1637-0158" || s.count() != 2 {
		t.Errorf("read %v in %d calls", seen, s.count())
	}
	// A loop through links B → C → B ends at the repeat too, and so do the uploads and the
	// imported identities.
	s2 := &script{answers: h(pager(t, map[string]string{
		"":  `{"value":[` + dev2 + `],"@odata.nextLink":"{HOST}/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities?$skiptoken=B"}`,
		"B": `{"value":[` + dev + `],"@odata.nextLink":"{HOST}/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities?$skiptoken=C"}`,
		"C": `{"value":[` + dev2 + `],"@odata.nextLink":"{HOST}/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities?$skiptoken=B"}`,
	}))}
	c, _ = newTestClient(t, s2)
	var ids []string
	next := ""
	for n := 0; n < 10; n++ {
		ds, nl, _, err := c.ListDeviceIdentities(ctx, tokens, "", next)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range ds {
			ids = append(ids, d.ID)
		}
		if next = nl; next == "" {
			break
		}
	}
	if len(ids) != 2 || s2.count() != 3 {
		t.Errorf("imported identities: %v in %d calls", ids, s2.count())
	}
	s3 := &script{answers: h(pager(t, map[string]string{
		"":  `{"value":[` + seedEntity + `],"@odata.nextLink":"{HOST}/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads?$skiptoken=A"}`,
		"A": `{"value":[` + seedEntity + `],"@odata.nextLink":"{HOST}/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads?$skiptoken=A"}`,
	}))}
	c, _ = newTestClient(t, s3)
	p1, _, _ := c.ListUploads(ctx, tokens, ListOptions{})
	p2, _, err := c.ListUploads(ctx, tokens, ListOptions{NextLink: p1.NextLink})
	if err != nil || len(p1.Uploads) != 1 || len(p2.Uploads) != 0 || p2.NextLink != "" {
		t.Errorf("uploads: %+v then %+v (%v)", p1, p2, err)
	}
}

// An upload's device list follows Graph's pages (bounded), and says when there are more.
func TestUploadDevicesFollowEveryPage(t *testing.T) {
	const id = "8d639524-9524-8d63-2495-638d2495638d"
	path := "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads/" + id + "/deviceIdentities"
	devs := func(from, n int, next string) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteString(",")
			}
			fmt.Fprintf(&b, `{"id":"22222222-0000-0000-0000-%012d","serialNumber":"S%d"}`, from+i, from+i)
		}
		if next != "" {
			return `{"value":[` + b.String() + `],"@odata.nextLink":"{HOST}` + path + `?$skiptoken=` + next + `"}`
		}
		return `{"value":[` + b.String() + `]}`
	}
	s := &script{answers: h(pager(t, map[string]string{"": devs(0, 100, "2"), "2": devs(100, 100, "3"), "3": devs(200, 50, "")}))}
	c, _ := newTestClient(t, s)
	got, _, err := c.ListUploadDeviceIdentities(context.Background(), tokens, id)
	if err != nil || len(got.Devices) != 250 || got.More || s.count() != 3 {
		t.Fatalf("read %d devices (more %v) in %d calls: %v", len(got.Devices), got.More, s.count(), err)
	}
	// Past the pages the desk reads, it says more exist.
	pages := map[string]string{}
	for i := 0; i <= maxUploadDevicePages+1; i++ {
		key := ""
		if i > 0 {
			key = fmt.Sprint(i)
		}
		pages[key] = devs(i*10, 10, fmt.Sprint(i+1))
	}
	s = &script{answers: h(pager(t, pages))}
	c, _ = newTestClient(t, s)
	got, _, err = c.ListUploadDeviceIdentities(context.Background(), tokens, id)
	if err != nil || !got.More || len(got.Devices) != maxUploadDevicePages*10 || s.count() != maxUploadDevicePages {
		t.Errorf("read %d devices (more %v) in %d calls: %v", len(got.Devices), got.More, s.count(), err)
	}
}

// The printed request says the length of the body actually sent (its hashes are shortened only for
// display), and the printed response keeps the Content-Length Graph sent, as Microsoft's docs do.
func TestPrintedExchangeSaysTheLengthsSentAndReceived(t *testing.T) {
	var got int
	s := &script{answers: h(func(w http.ResponseWriter, r *http.Request) {
		got = int(r.ContentLength)
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Content-Length", "12")
		fmt.Fprint(w, `{"value":[]}`)
	})}
	c, _ := newTestClient(t, s)
	hash := strings.Repeat("QUFB", 1000)
	_, ex, err := c.ImportDeviceIdentities(context.Background(), tokens, []DeviceIdentity{{SerialNumber: "S-1", HardwareIdentifier: []byte(hash)}})
	if err != nil {
		t.Fatal(err)
	}
	a := ex.Last()
	if req := a.RequestText(); !strings.Contains(req, fmt.Sprintf("Content-Length: %d\n", got)) || strings.Contains(req, hash) || got < 4000 {
		t.Errorf("sent %d bytes; printed:\n%s", got, req)
	}
	if resp := a.ResponseText(); !strings.Contains(resp, "Content-Length: 12\n") {
		t.Errorf("printed response:\n%s", resp)
	}
}

// Walks left unfinished (a list opened and not paged on) are remembered within maxIDs ids in
// all: the oldest make room for the newest, which still end a repeated link and drop repeats.
func TestRememberedWalksStayWithinTheirBound(t *testing.T) {
	c := &Client{cfg: Config{Now: time.Now}}
	id := func(s string) string { return s }
	const perPage = 10_000
	for walk := range 2 * maxIDs / perPage {
		ids := make([]string, perPage)
		for i := range ids {
			ids[i] = fmt.Sprintf("w%d-%d", walk, i)
		}
		page(c, "", ids, fmt.Sprintf("https://graph.example/next-%d", walk), id)
		sum := 0
		for _, w := range c.walks.byAt {
			sum += len(w.ids)
		}
		if c.walks.total != sum || sum > maxIDs {
			t.Fatalf("after walk %d: %d ids counted, %d remembered, bound %d", walk, c.walks.total, sum, maxIDs)
		}
	}
	last := fmt.Sprintf("https://graph.example/next-%d", 2*maxIDs/perPage-1)
	again := fmt.Sprintf("w%d-0", 2*maxIDs/perPage-1)
	if kept, next := page(c, last, []string{again, "new"}, last, id); len(kept) != 1 || kept[0] != "new" || next != "" {
		t.Errorf("the newest walk: kept %v, next %q", kept, next)
	}
}
