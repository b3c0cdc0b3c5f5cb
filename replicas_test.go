package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
)

// cluster is a load balancer in front of replicas that share one PostgreSQL database, one
// identity provider and one Graph emulator. The test chooses which replica serves each request.
type cluster struct {
	t      *testing.T
	lb     *httptest.Server
	target atomic.Pointer[httptest.Server]
	env    map[string]string
	emu    *emulator.Emulator
	idp    *demoidp.Provider
	// tokenDelay holds every answer of the identity provider's token endpoint this long.
	tokenDelay atomic.Int64
	replicas   map[string]*httptest.Server
	apps       []*app
	byName     map[string]*app
	logs       map[string]*testkit.Buffer // each replica's log, by name
	opts       clusterOptions
}

// clusterOptions vary a cluster: a SQLite data folder instead of PostgreSQL (then one desk
// runs at a time, restarted on the same folder), the shape of the shared identity provider and
// emulator, the desks' seams and settings.
type clusterOptions struct {
	sqlite bool
	shape  func(*demo.Options)
	app    appOptions
	env    map[string]string
}

func startCluster(t *testing.T) *cluster { return startClusterWith(t, clusterOptions{}) }

func startClusterWith(t *testing.T, co clusterOptions) *cluster {
	cl := &cluster{t: t, replicas: map[string]*httptest.Server{}, byName: map[string]*app{}, logs: map[string]*testkit.Buffer{}, opts: co}
	cl.lb = httptest.NewUnstartedServer(nil)
	public := "https://" + cl.lb.Listener.Addr().String()

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	o := demo.Options{ClientID: "desk", ClientSecret: "replica-secret",
		RedirectURIs: []string{public + "/auth/callback"}, PostLogoutRedirectURIs: []string{public + "/auth/signed-out"},
		Emulator: emulator.Options{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}},
	}
	if co.shape != nil {
		co.shape(&o)
	}
	pair, err := demo.New("http://"+ln.Addr().String(), o)
	if err != nil {
		t.Fatal(err)
	}
	cl.idp, cl.emu = pair.IdP, pair.Emulator
	slowTokens := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			time.Sleep(time.Duration(cl.tokenDelay.Load()))
		}
		pair.Handler.ServeHTTP(w, r)
	})
	shared := &http.Server{Handler: slowTokens}
	go shared.Serve(ln)
	t.Cleanup(func() { shared.Close() })

	cl.env = map[string]string{
		"AUTOPILOTDESK_PUBLIC_URL": public,
		"AUTOPILOTDESK_ISSUER_URL": pair.IdP.IssuerURL(), "AUTOPILOTDESK_TENANT_ID": demoidp.DemoTenantID,
		"AUTOPILOTDESK_CLIENT_ID": "desk", "AUTOPILOTDESK_CLIENT_SECRET": "replica-secret", "AUTOPILOTDESK_GRAPH_URL": pair.URL,
		"AUTOPILOTDESK_TRUSTED_PROXIES": "127.0.0.1",
	}
	if co.sqlite {
		cl.env["AUTOPILOTDESK_DATA_DIR"] = t.TempDir()
	} else {
		cl.env["AUTOPILOTDESK_DATABASE_URL"] = testkit.PostgresSchema(t)
	}
	for k, v := range co.env {
		cl.env[k] = v
	}
	if o.WithoutTenantClaims {
		delete(cl.env, "AUTOPILOTDESK_TENANT_ID") // a provider without tenants
	}
	proxy := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		target, _ := url.Parse(cl.target.Load().URL)
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host
		pr.SetXForwarded()
	}}
	cl.lb.Config.Handler = proxy
	cl.lb.StartTLS()
	t.Cleanup(cl.lb.Close)
	return cl
}

// start runs a replica named name (again, after a stop).
func (cl *cluster) start(name string) {
	cl.t.Helper()
	cfg, err := loadConfig(nil, testkit.Env(cl.env), io.Discard)
	if err != nil {
		cl.t.Fatal(err)
	}
	logs := &testkit.Buffer{}
	a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), cl.opts.app)
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.logs[name] = logs
	srv := httptest.NewServer(a.handler)
	cl.replicas[name] = srv
	cl.apps = append(cl.apps, a)
	cl.byName[name] = a
	cl.t.Cleanup(func() { srv.Close(); a.Close() })
}

// stop shuts a desk down, its state database closed: on SQLite the next desk can then open the
// same folder, as a restarted process would.
func (cl *cluster) stop(name string) {
	cl.replicas[name].Close()
	cl.byName[name].Close()
}

// stopHard drops a replica at once: connections cut, listener closed.
func (cl *cluster) stopHard(name string) {
	srv := cl.replicas[name]
	srv.CloseClientConnections()
	srv.Listener.Close()
}

func (cl *cluster) via(name string) { cl.target.Store(cl.replicas[name]) }

// onDesks starts replicas of the given names, sends requests to the first, and is the desk as
// a browser sees it, through the load balancer.
func (cl *cluster) onDesks(names ...string) *desk {
	for _, name := range names {
		cl.start(name)
	}
	cl.via(names[0])
	return clusterDesk(cl.t, cl)
}

func (cl *cluster) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{Transport: cl.lb.Client().Transport, Jar: jar}
}

func TestReplicasShareEverything(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	cl := startCluster(t)
	d := cl.onDesks("A", "B")
	b := cl.browser()
	doc := parse(t, d.signIn(b, "admin", "/"))
	if doc.Find(`form[action="/auth/signout"]`).Length() != 1 {
		t.Fatalf("sign-in on A failed: %s", text(doc))
	}
	cl.via("B")
	_, doc = d.get(b, "/uploads/new")
	form := formValues(t, doc, `form[action="/uploads"]`)
	cl.via("A")
	resp, doc := d.post(b, "/uploads", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		t.Fatalf("form from B submitted on A: %s", text(doc))
	}

	// A double submit split across A and B creates exactly one upload.
	cl.via("B")
	_, doc = d.get(b, "/uploads/new")
	form = formValues(t, doc, `form[action="/uploads"]`)
	before := countPosts(cl.emu)
	var wg sync.WaitGroup
	for _, name := range []string{"A", "B"} {
		wg.Add(1)
		go func(srv *httptest.Server) {
			defer wg.Done()
			req, _ := http.NewRequest(http.MethodPost, srv.URL+"/uploads", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			u, _ := url.Parse(cl.lb.URL)
			for _, ck := range b.Jar.Cookies(u) {
				req.AddCookie(ck)
			}
			c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
			if resp, err := c.Do(req); err == nil {
				resp.Body.Close()
			}
		}(cl.replicas[name])
	}
	wg.Wait()
	if got := countPosts(cl.emu) - before; got != 1 {
		t.Errorf("split double submit created %d uploads, want 1", got)
	}

	// An import started on A is followed to completion on B.
	cl.via("A")
	_, doc = d.get(b, "/devices/import")
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	w.Write([]string{"SN-REPLICA-1", "", fakeHash(), "", ""})
	w.Flush()
	resp, _ = d.uploadCSV(b, csrf, file.Bytes())
	jobURL := resp.Request.URL.Path
	_, doc = d.get(b, jobURL)
	resp, doc = d.post(b, jobURL+"/submit", formValues(t, doc, `form[action$="/submit"]`))
	cl.via("B")
	for i := 0; i < 20 && !strings.Contains(doc.Find(`[data-testid="progress-summary"]`).Text(), "have finished"); i++ {
		time.Sleep(5 * time.Millisecond)
		_, doc = d.get(b, jobURL)
	}
	if !strings.Contains(doc.Find(`[data-testid="progress-summary"]`).Text(), "1 imported") {
		t.Errorf("import followed on B: %s", text(doc))
	}

	// A dies mid-session; B serves the same session; A restarted rejoins.
	cl.stopHard("A")
	cl.via("B")
	resp, doc = d.get(b, "/uploads/new")
	if resp.Request.URL.Path != "/uploads/new" || doc.Find(`form[action="/uploads"]`).Length() != 1 {
		t.Errorf("B lost the session after A died: %s", resp.Request.URL)
	}
	cl.start("A")
	cl.via("A")
	resp, doc = d.post(b, "/uploads", formValues(t, doc, `form[action="/uploads"]`))
	if !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		t.Errorf("restarted A did not serve the session: %s", text(doc))
	}
}

func countPosts(e *emulator.Emulator) int {
	return postsTo(e, "/importedWindowsAutopilotDeviceIdentityUploads")
}

// Two desks on one PostgreSQL database, a provider that rotates refresh tokens (each is good
// once) and answers slowly: requests of one session arriving at both desks as its access token
// expires all succeed, and so does work outside any request asking each desk for the same
// session's token; the provider sees one redemption.
func TestTokenRenewalIsSerialisedAcrossReplicas(t *testing.T) {
	cl := startCluster(t)
	d := cl.onDesks("A", "B")
	b := d.signedInBrowser("admin", cl.browser)
	u, _ := url.Parse(cl.lb.URL)
	cookies := b.Jar.Cookies(u)
	keys, err := cl.apps[0].sessionStore().LiveSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("live sessions: %v %v", keys, err)
	}

	for round := range 3 {
		cl.idp.ExpireAccessTokens()
		cl.tokenDelay.Store(int64(150 * time.Millisecond))
		before := cl.idp.TokenRequests()
		var wg sync.WaitGroup
		failures := make(chan string, 16)
		for i := range 8 {
			replica := cl.replicas[[]string{"A", "B"}[i%2]]
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodGet, replica.URL+"/uploads", nil)
				for _, ck := range cookies {
					req.AddCookie(ck)
				}
				resp, err := (&http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}).Do(req)
				if err != nil {
					failures <- err.Error()
					return
				}
				doc := parse(t, resp)
				if resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="failure"]`).Length() != 0 {
					failures <- fmt.Sprintf("%d %s %s", resp.StatusCode, resp.Header.Get("Location"), text(doc))
				}
			})
		}
		for _, a := range cl.apps {
			wg.Go(func() {
				ts, err := a.shell.TokenFor(context.Background(), keys[0], "")
				if err != nil {
					failures <- "background: " + err.Error()
					return
				}
				if tok, err := ts.Token(); err != nil || tok.Expiry.Before(time.Now().Add(time.Minute)) {
					failures <- fmt.Sprintf("background: token %v, %v", tok.Expiry, err)
				}
			})
		}
		wg.Wait()
		close(failures)
		for f := range failures {
			t.Errorf("round %d: a request failed: %s", round, f)
		}
		if got := cl.idp.TokenRequests() - before; got != 1 {
			t.Errorf("round %d: the provider saw %d token redemptions, want 1", round, got)
		}
	}
	// Still signed in, on either desk.
	cl.tokenDelay.Store(0)
	cl.via("B")
	if resp, _ := d.get(b, "/uploads/new"); resp.Request.URL.Path != "/uploads/new" {
		t.Errorf("signed out after the renewals: %s", resp.Request.URL)
	}
}
