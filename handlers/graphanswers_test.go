package handlers

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient"
)

// scriptedGraph answers the upload calls of the real Graph client in turn, by method.
type scriptedGraph struct {
	mu      sync.Mutex
	answers map[string][]func(http.ResponseWriter)
	got     []string
}

func (g *scriptedGraph) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	g.got = append(g.got, r.Method)
	list := g.answers[r.Method]
	var a func(http.ResponseWriter)
	if len(list) > 0 {
		a = list[0]
		if len(list) > 1 {
			g.answers[r.Method] = list[1:]
		}
	}
	g.mu.Unlock()
	if a == nil {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	a(w)
}

func (g *scriptedGraph) sent(method string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, m := range g.got {
		if m == method {
			n++
		}
	}
	return n
}

func reply(status int, body string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if body != "" {
			w.Header().Set("Content-Type", "application/json")
		}
		w.Header().Set("request-id", "77777777-7777-7777-7777-777777777777")
		w.WriteHeader(status)
		fmt.Fprint(w, body)
	}
}

const graphUpload = `{"@odata.type":"#microsoft.graph.importedWindowsAutopilotDeviceIdentityUpload","id":"` + uploadID + `","createdDateTimeUtc":"2016-12-31T23:59:45.8788427-08:00","status":"pending"}`

// newGraphRig serves the upload pages and the history over the real Graph client, talking to g.
func newGraphRig(t *testing.T, g *scriptedGraph) *uploadsRig {
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	client, err := graphclient.New(graphclient.Config{Root: srv.URL, Timeout: 10 * time.Second, Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	u := &uploadsRig{activity: &fakeActivity{}, tokens: &fakeTokens{}}
	u.rig = newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
		h := &Uploads{Graph: client, Tokens: u.tokens, Activity: u.activity, Keys: &fakeKeys{}, Now: time.Now, Recorded: u.activity}
		a := &Activity{History: u.activity, Recorded: u.activity, Tokens: u.tokens, Records: u.activity, Now: time.Now}
		user.GET("/uploads/new", h.New)
		form("/uploads", "/uploads/new", h.Create)
		user.GET("/uploads/:id", h.Show)
		form("/uploads/:id/status", "/uploads/:id", h.SetStatus)
		user.GET("/activity/:id", a.Show)
	}).signIn("")
	return u
}

// A create Graph answered 201 with an empty body was carried out: the desk never shows it as
// failed with Try again (which would create a second upload). It looks for it as for a lost
// answer, and shows it when found; when not found, it says Graph created it and not to send again.
func TestCreateAnswered201WithoutABodyIsNeverOfferedAgain(t *testing.T) {
	for _, found := range []bool{true, false} {
		list := `{"value":[]}`
		if found {
			list = `{"value":[` + graphUpload + `]}`
		}
		g := &scriptedGraph{answers: map[string][]func(http.ResponseWriter){
			http.MethodPost: {reply(http.StatusCreated, "")}, http.MethodGet: {reply(http.StatusOK, list)}}}
		r := newGraphRig(t, g)
		form := r.createForm()
		form.Set("createdDateTimeUtc", "2016-12-31T23:59:45.8788427-08:00")
		form.Set("status", "pending")
		resp, doc := r.post("/uploads", form)
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("found %v: a 201 create answered %d: %s", found, resp.StatusCode, testkit.Text(doc))
		}
		_, doc = r.get(resp.Header.Get("Location"))
		page := testkit.Text(doc)
		if doc.Find(`form[action="/uploads"]`).Length() != 0 || strings.Contains(page, "Try again") || strings.Contains(page, "can send it again") {
			t.Errorf("found %v: a create Graph answered 201 is offered again: %s", found, page)
		}
		acts := r.activity.recorded()
		switch {
		case found && (acts[0].Outcome != outcomeSuccess || !strings.Contains(doc.Find(`[data-testid="upload-id"]`).Text(), uploadID)):
			t.Errorf("found: recorded %+v; page %s", acts[0], page)
		case !found && (acts[0].Outcome != outcomeUnknown || doc.Find(`[data-testid="accepted-unread"]`).Length() == 0):
			t.Errorf("not found: recorded %+v; page %s", acts[0], page)
		}
		if g.sent(http.MethodPost) != 1 {
			t.Errorf("the create went %d times", g.sent(http.MethodPost))
		}
	}
}

// A 204 to a status change is a normal answer: the page shows the upload with what was sent and
// what reading it again said, never blank fields.
func TestStatusChangeAnswered204ShowsTheUpload(t *testing.T) {
	g := &scriptedGraph{answers: map[string][]func(http.ResponseWriter){
		http.MethodPatch: {reply(http.StatusNoContent, "")}, http.MethodGet: {reply(http.StatusOK, graphUpload)}}}
	r := newGraphRig(t, g)
	resp, doc := r.post("/uploads/"+uploadID+"/status", map[string][]string{"status": {"complete"}})
	if resp.StatusCode == http.StatusSeeOther {
		_, doc = r.get(resp.Header.Get("Location"))
	}
	if got := doc.Find(`[data-testid="upload-id"]`).Text(); got != uploadID {
		t.Errorf("upload id shown %q: %s", got, testkit.Text(doc))
	}
	if got := doc.Find(`[data-testid="upload-created"]`).Text(); got != "2016-12-31T23:59:45.8788427-08:00" {
		t.Errorf("created shown %q", got)
	}
	if got := doc.Find(`[data-testid="upload-status"]`).Text(); !strings.Contains(got, "Complete") {
		t.Errorf("status shown %q", got)
	}
}

// An upload's page lists the devices of every page Graph gives (as far as the desk reads), and
// says when there are more.
func TestUploadPageSaysWhenItHoldsMoreDevices(t *testing.T) {
	for _, pages := range []int{3, 1000} {
		g := &scriptedGraph{answers: map[string][]func(http.ResponseWriter){http.MethodGet: {reply(http.StatusOK, graphUpload)}}}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if !strings.HasSuffix(r.URL.Path, "/deviceIdentities") {
				g.ServeHTTP(w, r)
				return
			}
			n := 0
			fmt.Sscan(r.URL.Query().Get("$skiptoken"), &n)
			next := ""
			if n+1 < pages {
				next = fmt.Sprintf(`,"@odata.nextLink":"http://%s%s?$skiptoken=%d"`, r.Host, r.URL.Path, n+1)
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"value":[{"id":"33333333-0000-0000-0000-%012d","serialNumber":"S-%d"}]%s}`, n, n, next)
		}))
		t.Cleanup(srv.Close)
		client, err := graphclient.New(graphclient.Config{Root: srv.URL, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		r := newRig(t, func(user *echo.Group, form func(string, string, echo.HandlerFunc)) {
			h := &Uploads{Graph: client, Tokens: &fakeTokens{}, Activity: &fakeActivity{}, Keys: &fakeKeys{}, Now: time.Now}
			user.GET("/uploads/:id", h.Show)
		}).signIn("")
		_, doc := r.get("/uploads/" + uploadID)
		rows := doc.Find(`[data-testid="upload-devices"] tbody tr`).Length()
		more := doc.Find(`[data-testid="more-devices"]`)
		switch {
		case pages == 3 && (rows != 3 || more.Length() != 0):
			t.Errorf("3 pages: %d rows, more %q", rows, more.Text())
		case pages > 3 && (rows < 3 || rows >= pages || !strings.Contains(more.Text(), fmt.Sprint(rows))):
			t.Errorf("%d pages: %d rows, more %q", pages, rows, more.Text())
		}
	}
}
