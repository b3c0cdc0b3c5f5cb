package handlers

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
	"autopilotdesk/static"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// A rig serves one handler's routes behind the real shell (sessions, CSRF, the error handler)
// with fakes for the interfaces the handler declares, so a test sees exactly what a browser
// would: the status, the redirect, the page.
type rig struct {
	t      *testing.T
	shell  *web.Shell
	srv    *httptest.Server
	client *http.Client
	clock  *testkit.Clock
	logs   *testkit.Buffer
	csrf   string
}

var rigUser = web.SessionUser{TenantID: "11111111-1111-4111-8111-111111111111", ObjectID: "22222222-2222-4222-8222-222222222222",
	Name: "Megan Bowen", UPN: "meganb@contoso.example"}

var discardLogger = slog.New(slog.DiscardHandler)

// Read-only people: their token grants reading Autopilot devices and not changing them.
const readOnlyScope = "openid https://graph.microsoft.com/DeviceManagementServiceConfig.Read.All"

// newRig serves the routes add declares on the signed-in group; form adds a POST route whose
// form is on page, as Routes does.
func newRig(t *testing.T, add func(user *echo.Group, form func(path, page string, h echo.HandlerFunc))) *rig {
	t.Helper()
	return newRigWith(t, add, nil)
}

// newRigWith also lets devices add routes outside the pages (those devices call).
func newRigWith(t *testing.T, add func(user *echo.Group, form func(path, page string, h echo.HandlerFunc)), devices func(*web.Shell)) *rig {
	t.Helper()
	clock := testkit.NewClock()
	db, err := store.Open(context.Background(), store.Options{DataDir: t.TempDir(), Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	assets, err := static.Load()
	if err != nil {
		t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	shell := web.New(web.Options{Logger: slog.New(slog.NewTextHandler(logs, nil)), Assets: assets, Now: clock.Now,
		Sessions: db.SessionStore(store.SessionOptions{CookieName: web.SessionCookieName, Secure: true, Codec: web.SessionCodec{}})})
	pages := shell.Pages()
	// The sign-in the rig stands for: a session for rigUser with the scope asked, its CSRF token the answer.
	pages.GET("/rig/signin", func(c echo.Context) error {
		if err := shell.StartSession(c, rigUser, web.SessionTokens{AccessToken: "rig-token", Scope: c.QueryParam("scope")}); err != nil {
			return err
		}
		return c.String(http.StatusOK, web.CSRFToken(c))
	})
	user := pages.Group("", web.RequireUser)
	add(user, func(path, page string, h echo.HandlerFunc) {
		user.POST(path, h)
		shell.FormPage(path, page)
	})
	if devices != nil {
		devices(shell)
	}
	srv := httptest.NewTLSServer(shell.Echo)
	t.Cleanup(srv.Close)
	client := srv.Client()
	client.Jar, _ = cookiejar.New(nil)
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &rig{t: t, shell: shell, srv: srv, client: client, clock: clock, logs: logs}
}

// signIn starts a session granting scope ("" grants everything Graph decides on).
func (r *rig) signIn(scope string) *rig {
	r.t.Helper()
	resp, body := r.do(http.MethodGet, "/rig/signin?scope="+url.QueryEscape(scope), nil)
	if resp.StatusCode != http.StatusOK {
		r.t.Fatalf("sign in: %d %s", resp.StatusCode, body)
	}
	r.csrf = body
	return r
}

func (r *rig) do(method, path string, form url.Values) (*http.Response, string) {
	r.t.Helper()
	if form == nil {
		return r.send(method, path, "", nil)
	}
	return r.send(method, path, "application/x-www-form-urlencoded", []byte(form.Encode()))
}

// send makes a request with a body of its own content type.
func (r *rig) send(method, path, contentType string, body []byte) (*http.Response, string) {
	r.t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, r.srv.URL+path, rd)
	if err != nil {
		r.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp, string(b)
}

// get answers a page and its document.
func (r *rig) get(path string) (*http.Response, *goquery.Document) {
	r.t.Helper()
	resp, body := r.do(http.MethodGet, path, nil)
	return resp, r.parse(body)
}

// post submits form (with the session's CSRF token) to path.
func (r *rig) post(path string, form url.Values) (*http.Response, *goquery.Document) {
	r.t.Helper()
	if form == nil {
		form = url.Values{}
	}
	if form.Get("_csrf") == "" {
		form.Set("_csrf", r.csrf)
	}
	resp, body := r.do(http.MethodPost, path, form)
	return resp, r.parse(body)
}

func (r *rig) parse(body string) *goquery.Document {
	r.t.Helper()
	doc, err := goquery.NewDocumentFromReader(strings.NewReader(body))
	if err != nil {
		r.t.Fatal(err)
	}
	return doc
}

// redirected fails unless resp sends the browser to a path starting with prefix, and returns it.
func redirected(t *testing.T, resp *http.Response, prefix string) string {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, prefix) {
		t.Fatalf("answered %d to %q, want 303 to %s…", resp.StatusCode, loc, prefix)
	}
	return loc
}

// fakeTokens gives every request the same token; renewals are counted.
type fakeTokens struct {
	mu      sync.Mutex
	renewed int
}

func (f *fakeTokens) TokenSource(echo.Context) (oauth2.TokenSource, error) {
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "first"}), nil
}

func (f *fakeTokens) RenewToken(echo.Context) (oauth2.TokenSource, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.renewed++
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: "renewed"}), nil
}

// fakeActivity keeps what handlers record; down makes Record report the history did not take it.
type fakeActivity struct {
	mu    sync.Mutex
	down  bool
	taken []store.Activity
	keys  []string
}

func (f *fakeActivity) Record(_ context.Context, a *store.Activity, formKey string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if a.ID == "" {
		a.ID = "0199a000-0000-7000-8000-00000000000" + string(rune('0'+len(f.taken)%10))
	}
	if f.down {
		return false
	}
	f.taken, f.keys = append(f.taken, *a), append(f.keys, formKey)
	return true
}

func (f *fakeActivity) RecordActivity(ctx context.Context, a *store.Activity) error {
	f.Record(ctx, a, "")
	return nil
}

func (f *fakeActivity) GetActivity(_ context.Context, tenantID, id string) (*store.Activity, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.taken {
		if a.ID == id && a.TenantID == tenantID {
			return &a, nil
		}
	}
	return nil, store.ErrNotFound
}

func (f *fakeActivity) Kept(string, string) (*store.Activity, bool) { return nil, false }

func (f *fakeActivity) CreatedUploads(_ context.Context, tenantID string, ids []string) (map[string]bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	created := map[string]bool{}
	for _, a := range f.taken {
		if a.TenantID == tenantID && a.Action == "create-upload" && a.Outcome == outcomeSuccess && slices.Contains(ids, a.Target) {
			created[a.Target] = true
		}
	}
	return created, nil
}

func (f *fakeActivity) recorded() []store.Activity {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]store.Activity(nil), f.taken...)
}

// fakeKeys is the one-time form keys: each claimed once.
type fakeKeys struct {
	mu      sync.Mutex
	claimed map[string]bool
}

func (f *fakeKeys) ClaimFormKey(_ context.Context, key, _ string, _ time.Duration) (bool, store.FormKeyState, string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.claimed == nil {
		f.claimed = map[string]bool{}
	}
	if f.claimed[key] {
		return false, store.FormKeyInProgress, "", nil
	}
	f.claimed[key] = true
	return true, "", "", nil
}

func (f *fakeKeys) ReleaseFormKey(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.claimed, key)
	return nil
}

// graphRefusal is the error the Graph client returns for an answer with status.
func graphRefusal(status int, kind graphclient.Kind) error {
	return &graphclient.Error{StatusCode: status, Kind: kind, Message: "Graph said no."}
}
