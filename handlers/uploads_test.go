package handlers

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
)

// fakeUploads is the part of Graph the upload pages call. fail, when set, answers the next call
// instead; calls lists what was asked, with the token each call carried.
type fakeUploads struct {
	mu      sync.Mutex
	fail    []error
	calls   []string
	tokens  []string
	created []graphclient.NewUpload
	page    graphclient.UploadPage
	listed  []graphclient.ListOptions
}

const uploadID = "8d639524-9524-8d63-2495-638d2495638d"

func (f *fakeUploads) call(ts oauth2.TokenSource, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	tok, _ := ts.Token()
	f.calls, f.tokens = append(f.calls, name), append(f.tokens, tok.AccessToken)
	if len(f.fail) > 0 {
		err := f.fail[0]
		f.fail = f.fail[1:]
		return err
	}
	return nil
}

func (f *fakeUploads) sent() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func (f *fakeUploads) ListUploads(_ context.Context, ts oauth2.TokenSource, opts graphclient.ListOptions) (*graphclient.UploadPage, *graphclient.Exchange, error) {
	f.listed = append(f.listed, opts)
	if err := f.call(ts, "list"); err != nil {
		return nil, nil, err
	}
	page := f.page
	return &page, nil, nil
}

func (f *fakeUploads) CreateUpload(_ context.Context, ts oauth2.TokenSource, in graphclient.NewUpload) (*graphclient.Upload, *graphclient.Exchange, error) {
	if err := f.call(ts, "create"); err != nil {
		return nil, nil, err
	}
	f.created = append(f.created, in)
	return &graphclient.Upload{ID: uploadID, Status: in.Status}, nil, nil
}

func (f *fakeUploads) GetUpload(_ context.Context, ts oauth2.TokenSource, id string) (*graphclient.Upload, *graphclient.Exchange, error) {
	if err := f.call(ts, "get "+id); err != nil {
		return nil, nil, err
	}
	return &graphclient.Upload{ID: id, Status: "pending"}, nil, nil
}

func (f *fakeUploads) UpdateUploadStatus(_ context.Context, ts oauth2.TokenSource, id, status string) (*graphclient.Upload, *graphclient.Exchange, error) {
	if err := f.call(ts, "status "+id+" "+status); err != nil {
		return nil, nil, err
	}
	return &graphclient.Upload{ID: id, Status: status}, nil, nil
}

func (f *fakeUploads) DeleteUpload(_ context.Context, ts oauth2.TokenSource, id string) (*graphclient.Exchange, error) {
	return nil, f.call(ts, "delete "+id)
}

func (f *fakeUploads) ListUploadDeviceIdentities(_ context.Context, ts oauth2.TokenSource, id string) (*graphclient.UploadDevices, *graphclient.Exchange, error) {
	return nil, nil, f.call(ts, "devices "+id)
}

type uploadsRig struct {
	*rig
	graph    *fakeUploads
	activity *fakeActivity
	tokens   *fakeTokens
}

func newUploadsRig(t *testing.T) *uploadsRig {
	u := &uploadsRig{graph: &fakeUploads{}, activity: &fakeActivity{}, tokens: &fakeTokens{}}
	u.rig = newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		h := &Uploads{Graph: u.graph, Tokens: u.tokens, Activity: u.activity, Keys: &fakeKeys{}, Now: time.Now}
		user.GET("/uploads/new", h.New)
		form("/uploads", "/uploads/new", h.Create)
		user.GET("/uploads", h.List)
		user.GET("/uploads/:id", h.Show)
		form("/uploads/:id/status", "/uploads/:id", h.SetStatus)
		user.GET("/uploads/:id/delete", h.ConfirmDelete)
		form("/uploads/:id/delete", "/uploads/:id/delete", h.Delete)
	}).signIn("")
	return u
}

// createForm is the create form as the page shows it, with its one-time key.
func (u *uploadsRig) createForm() url.Values {
	u.t.Helper()
	_, doc := u.get("/uploads/new")
	return testkit.FormValues(u.t, doc, `form[action="/uploads"]`)
}

// A create is sent to Graph once with what was typed, recorded with its form key, and the
// browser is sent to the result; the same form again sends nothing.
func TestCreateUploadSendsOnceAndRedirectsToTheResult(t *testing.T) {
	r := newUploadsRig(t)
	form := r.createForm()
	form.Set("status", "complete")
	resp, _ := r.post("/uploads", form)
	loc := redirected(t, resp, "/activity/")
	acts := r.activity.recorded()
	if len(acts) != 1 || loc != "/activity/"+acts[0].ID || acts[0].Action != "create-upload" || acts[0].Target != uploadID ||
		acts[0].Outcome != outcomeSuccess || acts[0].ObjectID != rigUser.ObjectID || r.activity.keys[0] != form.Get("formKey") {
		t.Fatalf("recorded %+v with keys %q, redirected to %s", acts, r.activity.keys, loc)
	}
	if len(r.graph.created) != 1 || r.graph.created[0].Status != "complete" || r.graph.created[0].CreatedDateTimeUtc != form.Get("createdDateTimeUtc") {
		t.Errorf("Graph was asked %+v", r.graph.created)
	}
	resp, doc := r.post("/uploads", form)
	if resp.StatusCode != http.StatusConflict || len(r.graph.sent()) != 1 {
		t.Errorf("a repeated form answered %d and Graph saw %q: %s", resp.StatusCode, r.graph.sent(), testkit.Text(doc))
	}
}

func TestInvalidInputKeepsValuesAndExplainsEachField(t *testing.T) {
	r := newUploadsRig(t)
	base := r.createForm()
	cases := []struct {
		name, field, value, wantMsg string
	}{
		{"unparseable date", "createdDateTimeUtc", "yesterday at noon", "UTC offset"},
		{"day first", "createdDateTimeUtc", "31/12/2016 23:59", "year, month, day"},
		{"offset beyond 14 hours", "createdDateTimeUtc", "2016-12-31T23:59:45+15:00", "UTC offset"},
		{"GUID without its dashes", "id", "8d63952495248d632495638d2495638d", "GUID"},
		{"impossible date", "createdDateTimeUtc", "2016-02-31T23:59:45Z", "UTC offset"},
		{"eight fractional digits", "createdDateTimeUtc", "2016-12-31T23:59:45.12345678Z", "UTC offset"},
		{"missing date", "createdDateTimeUtc", "", "Enter the date"},
		{"unknown status", "status", "finished", "listed statuses"},
		{"missing status", "status", "", "Choose a status"},
		{"malformed GUID", "id", "not-a-guid", "GUID"},
		{"oversized id", "id", strings.Repeat("a", 500), "too long"},
		{"oversized date", "createdDateTimeUtc", strings.Repeat("9", 500), "too long"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range base {
				form[k] = v
			}
			form.Set(tc.field, tc.value)
			resp, doc := r.post("/uploads", form)
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Fatalf("status %d, want 422", resp.StatusCode)
			}
			msg := doc.Find("#" + tc.field + "-error").Text()
			if !strings.Contains(msg, tc.wantMsg) {
				t.Errorf("message at %s = %q, want it to mention %q", tc.field, msg, tc.wantMsg)
			}
			if doc.Find("#"+tc.field).AttrOr("aria-invalid", "") != "true" {
				t.Errorf("%s not marked invalid", tc.field)
			}
			kept := testkit.FormValues(t, doc, `form[action="/uploads"]`)
			if tc.field != "status" && kept.Get(tc.field) != strings.TrimSpace(tc.value) {
				t.Errorf("value of %s not kept: %q", tc.field, kept.Get(tc.field))
			}
			if len(r.graph.sent()) != 0 {
				t.Errorf("invalid input reached Graph")
			}
		})
	}
}

// A form key the desk did not sign is refused before Graph hears of it.
func TestCreateWithAMadeUpFormKeySendsNothing(t *testing.T) {
	r := newUploadsRig(t)
	form := r.createForm()
	form.Set("formKey", "made-up")
	resp, doc := r.post("/uploads", form)
	if resp.StatusCode != http.StatusConflict || len(r.graph.sent()) != 0 || doc.Find(`[data-testid="failure"]`).Length() == 0 {
		t.Errorf("made-up key: %d, Graph saw %q: %s", resp.StatusCode, r.graph.sent(), testkit.Text(doc))
	}
}

// Graph's refusal comes back on the form, with what was typed, as Graph's own status; it is
// recorded as a failure. A 401 renews the token once and sends again. A 403 for the person's
// role makes the rest of the session read-only: what was typed stays on the page, the form goes.
func TestCreateRefusedByGraphKeepsTheForm(t *testing.T) {
	r := newUploadsRig(t)
	r.graph.fail = []error{graphRefusal(http.StatusUnauthorized, graphclient.KindUnauthorized), graphRefusal(http.StatusConflict, graphclient.KindConflict),
		graphRefusal(http.StatusForbidden, graphclient.KindForbiddenRole)}
	form := r.createForm()
	typedID := "{" + strings.ToUpper(uploadID) + "}"
	form.Set("id", typedID)
	resp, doc := r.post("/uploads", form)
	if resp.StatusCode != http.StatusConflict || doc.Find(`[data-testid="failure"]`).Length() == 0 {
		t.Fatalf("refused create: %d %s", resp.StatusCode, testkit.Text(doc))
	}
	kept := testkit.FormValues(t, doc, `form[action="/uploads"]`)
	if kept.Get("id") != typedID || kept.Get("formKey") == form.Get("formKey") {
		t.Errorf("the form came back as %v", kept)
	}
	if got := r.graph.tokens; len(got) != 2 || got[0] != "first" || got[1] != "renewed" || r.tokens.renewed != 1 {
		t.Errorf("tokens sent %q, renewed %d times", got, r.tokens.renewed)
	}
	resp, doc = r.post("/uploads", kept)
	if resp.StatusCode != http.StatusForbidden || doc.Find(`[data-testid="failure"]`).Length() == 0 || doc.Find(`form[action="/uploads"]`).Length() != 0 ||
		!strings.Contains(doc.Find(`[data-testid="read-only"]`).Text(), "Microsoft Graph refused your change") ||
		!strings.Contains(doc.Find(`[data-testid="typed"]`).Text(), typedID) || strings.Contains(testkit.Text(doc), "Nothing was sent") {
		t.Errorf("after Graph's 403: %d %s", resp.StatusCode, testkit.Text(doc))
	}
	if acts := r.activity.recorded(); len(acts) != 2 || acts[0].Outcome != outcomeFailure || acts[0].Target != uploadID {
		t.Errorf("recorded %+v", acts)
	}
}

// When the history cannot take the record, Graph's answer is shown at once, saying so.
func TestCreateShowsTheResultWhenTheHistoryIsDown(t *testing.T) {
	r := newUploadsRig(t)
	r.activity.down = true
	resp, doc := r.post("/uploads", r.createForm())
	if resp.StatusCode != http.StatusOK || !strings.Contains(doc.Find(`[data-testid="upload-id"]`).Text(), uploadID) ||
		doc.Find(`[data-testid="not-saved"]`).Length() == 0 {
		t.Errorf("unrecorded create: %d %s", resp.StatusCode, testkit.Text(doc))
	}
}

// The list passes its status filter to Graph (an unknown one is refused: nothing is asked) and
// its next link keeps the filter.
func TestUploadListFilterAndNextLink(t *testing.T) {
	r := newUploadsRig(t)
	r.graph.page = graphclient.UploadPage{Uploads: []graphclient.Upload{{ID: uploadID, Status: "pending"}},
		NextLink: "https://graph.microsoft.com/v1.0/x?$skiptoken=2"}
	_, doc := r.get("/uploads?status=pending")
	next, _ := doc.Find(`a[rel="next"]`).Attr("href")
	if want := "/uploads?" + (url.Values{"next": {r.graph.page.NextLink}, "status": {"pending"}}).Encode(); next != want {
		t.Errorf("next link %q, want %q", next, want)
	}
	r.get(next)
	if resp, _ := r.get("/uploads?status=Pending"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("an unknown status: %d", resp.StatusCode)
	}
	got := r.graph.listed
	if len(got) != 2 || got[0].Status != "pending" || got[1].NextLink != r.graph.page.NextLink || got[1].Status != "pending" {
		t.Errorf("Graph was asked %+v", got)
	}
	r.graph.fail = []error{graphRefusal(http.StatusBadRequest, graphclient.KindValidation)}
	if resp, doc := r.get("/uploads"); resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="failure"]`).Length() == 0 {
		t.Errorf("a refused list: %d %s", resp.StatusCode, testkit.Text(doc))
	}
}

// Status changes and deletes take a GUID and a listed status, or nothing is sent; what is sent
// is recorded and the browser goes to the result.
func TestUploadStatusAndDeleteRefuseBadInput(t *testing.T) {
	r := newUploadsRig(t)
	for _, bad := range []string{"/uploads/not-a-guid/status", "/uploads/not-a-guid/delete"} {
		if resp, _ := r.post(bad, url.Values{"status": {"complete"}}); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", bad, resp.StatusCode)
		}
	}
	for _, bad := range []string{"/uploads/not-a-guid", "/uploads/not-a-guid/delete"} {
		if resp, _ := r.get(bad); resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", bad, resp.StatusCode)
		}
	}
	if resp, doc := r.post("/uploads/"+uploadID+"/status", url.Values{"status": {"finished"}}); resp.StatusCode != http.StatusUnprocessableEntity ||
		!strings.Contains(testkit.Text(doc), "noUpload, pending, complete or error") {
		t.Errorf("unknown status: %d %s", resp.StatusCode, testkit.Text(doc))
	}
	if len(r.graph.sent()) != 0 {
		t.Fatalf("bad input reached Graph: %q", r.graph.sent())
	}
	resp, _ := r.post("/uploads/"+uploadID+"/status", url.Values{"status": {"complete"}})
	redirected(t, resp, "/activity/")
	resp, _ = r.post("/uploads/"+uploadID+"/delete", nil)
	redirected(t, resp, "/activity/")
	acts := r.activity.recorded()
	want := "status " + uploadID + " complete|delete " + uploadID
	if strings.Join(r.graph.sent(), "|") != want ||
		len(acts) != 2 || acts[0].Action != "update-upload" || acts[1].Action != "delete-upload" || acts[1].Target != uploadID {
		t.Errorf("Graph saw %q; recorded %+v", r.graph.sent(), acts)
	}
}

// A failure page's status says whose the failure is: the input the desk refused without sending
// it, Graph's own refusal, or trouble on the way to Graph.
func TestFailureStatusSaysWhoseTheFailureIs(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want int
	}{
		{&graphclient.Error{Kind: graphclient.KindInvalidInput, Message: "not a valid search"}, http.StatusUnprocessableEntity},
		{graphRefusal(http.StatusForbidden, graphclient.KindForbiddenRole), http.StatusForbidden},
		{graphRefusal(http.StatusTooManyRequests, graphclient.KindThrottled), http.StatusTooManyRequests},
		{graphRefusal(http.StatusServiceUnavailable, graphclient.KindServer), http.StatusBadGateway},
		{&graphclient.Error{Kind: graphclient.KindTimeout}, http.StatusGatewayTimeout},
		{context.Canceled, http.StatusBadGateway},
	} {
		if got := failureStatus(tc.err); got != tc.want {
			t.Errorf("failureStatus(%v) = %d, want %d", tc.err, got, tc.want)
		}
	}
}

// Read-only people — by their token's scopes, or once Graph refused a change of theirs with 403 —
// see the uploads without their change controls, with the note that says why, and every change
// they post anyway is refused before Graph hears of it; a create keeps what was typed.
func TestReadOnlyPeopleSeeNoUploadChangeControls(t *testing.T) {
	for _, tc := range []struct {
		name, why, heading string
		become             func(t *testing.T, r *uploadsRig)
	}{
		{"by scopes", "DeviceManagementServiceConfig.Read.All without", "Your organisation's permission lets the desk read only", func(_ *testing.T, r *uploadsRig) { r.signIn(readOnlyScope) }},
		{"after Graph's 403", "Microsoft Graph refused your change", "Your role lets you read only", func(t *testing.T, r *uploadsRig) {
			r.graph.fail = []error{graphRefusal(http.StatusForbidden, graphclient.KindForbiddenPermission)}
			if resp, _ := r.post("/uploads/"+uploadID+"/status", url.Values{"status": {"complete"}}); resp.StatusCode != http.StatusSeeOther || len(r.graph.sent()) != 1 {
				t.Fatalf("the first change, refused by Graph: %d, Graph saw %q", resp.StatusCode, r.graph.sent())
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newUploadsRig(t)
			tc.become(t, r)
			sent := len(r.graph.sent())
			for path, controls := range map[string]string{
				"/uploads/new":         `form[action="/uploads"]`,
				"/uploads":             `main a[href="/uploads/new"]`,
				"/uploads/" + uploadID: `form[action$="/status"], a[href$="/delete"]`,
			} {
				resp, doc := r.get(path)
				if resp.StatusCode != http.StatusOK || !strings.Contains(doc.Find(`[data-testid="read-only"]`).Text(), tc.why) || doc.Find(controls).Length() != 0 {
					t.Errorf("GET %s: %d %s", path, resp.StatusCode, testkit.Text(doc))
				}
			}
			resp, doc := r.post("/uploads", url.Values{"createdDateTimeUtc": {"2026-03-02 10:00"}, "status": {"pending"}, "id": {"{" + strings.ToUpper(uploadID) + "}"}})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(doc.Find(`[data-testid="typed"]`).Text(), "2026-03-02 10:00") ||
				!strings.Contains(testkit.Text(doc), "Nothing was sent to Microsoft Graph") || doc.Find(`form[action="/uploads"]`).Length() != 0 {
				t.Errorf("POST /uploads: %d %s", resp.StatusCode, testkit.Text(doc))
			}
			for _, path := range []string{"/uploads/" + uploadID + "/status", "/uploads/" + uploadID + "/delete"} {
				resp, doc := r.post(path, url.Values{"status": {"complete"}})
				if resp.StatusCode != http.StatusForbidden || !strings.Contains(testkit.Text(doc), tc.heading) || !strings.Contains(testkit.Text(doc), tc.why) {
					t.Errorf("POST %s: %d %s", path, resp.StatusCode, testkit.Text(doc))
				}
			}
			if resp, _ := r.get("/uploads/" + uploadID + "/delete"); resp.StatusCode != http.StatusForbidden {
				t.Errorf("the delete confirmation: %d", resp.StatusCode)
			}
			for _, call := range r.graph.sent()[sent:] {
				if !strings.HasPrefix(call, "list") && !strings.HasPrefix(call, "get ") && !strings.HasPrefix(call, "devices ") {
					t.Errorf("a reader's change reached Graph: %q", call)
				}
			}
		})
	}
}
