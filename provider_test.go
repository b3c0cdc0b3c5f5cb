package main

import (
	"bytes"
	"encoding/csv"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/views"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// startDeskWithProvider starts a desk outside demo mode, signing in through a demo identity
// provider shaped by idpOpts and calling a Graph emulator, both on a loopback port of their own
// (as another OpenID Connect provider and a Graph-compatible endpoint would be). env adds to the
// settings that point the desk at them.
func startDeskWithProvider(t *testing.T, idpOpts func(*demoidp.Options), env map[string]string, opts appOptions) *desk {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	var idp *demoidp.Provider
	var emu *emulator.Emulator
	d := startDeskFor(t, func(public string) map[string]string {
		o := demoidp.Options{Issuer: base, ClientID: "desk", ClientSecret: "provider-secret",
			RedirectURIs: []string{public + "/auth/callback"}, PostLogoutRedirectURIs: []string{public + "/auth/signed-out"}, Now: opts.Now}
		if idpOpts != nil {
			idpOpts(&o)
		}
		if idp, err = demoidp.New(o); err != nil {
			t.Fatal(err)
		}
		emu = emulator.New(emulator.Options{Verify: demo.Verifier(idp), Now: opts.Now, ImportDelays: opts.ImportDelays})
		srv := &http.Server{Handler: demo.Mux(idp, emu)}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
		out := map[string]string{"AUTOPILOTDESK_ISSUER_URL": idp.IssuerURL(), "AUTOPILOTDESK_CLIENT_ID": "desk",
			"AUTOPILOTDESK_CLIENT_SECRET": "provider-secret", "AUTOPILOTDESK_GRAPH_URL": base}
		for k, v := range env {
			out[k] = v
		}
		return out
	}, opts)
	d.idp, d.emu = idp, emu
	return d
}

// A standards-compliant OpenID Connect provider whose ID tokens carry no tid claim: the desk keys
// the tenant by the issuer, and create, import and history work as they do with Entra.
func TestProviderWithoutTenantClaimWalksCreateImportAndHistory(t *testing.T) {
	d := startDeskWithProvider(t, func(o *demoidp.Options) { o.WithoutTenantClaims = true }, nil,
		appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	issuerHost := mustHost(d.idp.IssuerURL())
	wantKey := uuid.NewSHA1(uuid.NameSpaceURL, []byte(d.idp.IssuerURL())).String()

	b := d.browser()
	resp := d.signIn(b, demoidp.AdminKey, "/")
	doc := parse(t, resp)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("sign-in: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	if got := strings.TrimSpace(doc.Find(`[data-testid="tenant"]`).Text()); got != issuerHost {
		t.Errorf("tenant shown as %q, want the issuer's host %q", got, issuerHost)
	}

	// Create: Graph answers 201 and the result page shows it.
	_, doc = d.get(b, "/uploads/new")
	resp, doc = d.post(b, "/uploads", formValues(t, doc, `form[action="/uploads"]`))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		t.Fatalf("create: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	if !guid.Valid(strings.TrimSpace(doc.Find(`[data-testid="upload-id"]`).Text())) {
		t.Errorf("result page shows no upload: %s", text(doc))
	}

	// Import: pre-flight, submit, followed to the end.
	_, doc = d.get(b, "/devices/import")
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	w.Write([]string{"SN-GENERIC-1", "", fakeHash(), "", ""})
	w.Flush()
	resp, _ = d.uploadCSV(b, csrf, file.Bytes())
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, views.ImportJobURL("")) {
		t.Fatalf("pre-flight: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	jobURL := resp.Request.URL.Path
	_, doc = d.get(b, jobURL)
	resp, doc = d.post(b, jobURL+"/submit", formValues(t, doc, `form[action$="/submit"]`))
	for i := 0; i < 400 && strings.TrimSpace(doc.Find("h1").Text()) != "Import finished"; i++ {
		time.Sleep(5 * time.Millisecond)
		resp, doc = d.get(b, jobURL)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(doc.Find(`[data-testid="progress-summary"]`).Text(), "1 imported") {
		t.Errorf("import: %d %s", resp.StatusCode, text(doc))
	}

	// History: the create, the import's batch and its finished record, under the issuer's key.
	resp, doc = d.get(b, "/activity")
	rows := doc.Find(`[data-testid="activity"] tbody tr`)
	if resp.StatusCode != http.StatusOK || rows.Length() != 3 {
		t.Errorf("history: %d, %d rows: %s", resp.StatusCode, rows.Length(), text(doc))
	}
	entries, _, err := d.app.db.ListActivity(t.Context(), store.ActivityFilter{TenantID: wantKey})
	if err != nil || len(entries) != 3 {
		t.Errorf("activity keyed by %s: %d entries, %v", wantKey, len(entries), err)
	}
}

// The start-up message names the mode and what the tenant is keyed by.
func TestStartupNamesTheProvider(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"demo", map[string]string{}, "demo mode"},
		{"Entra tenant", map[string]string{"AUTOPILOTDESK_TENANT_ID": demoidp.DemoTenantID, "AUTOPILOTDESK_CLIENT_ID": "c",
			"AUTOPILOTDESK_CLIENT_SECRET": "s", "AUTOPILOTDESK_PUBLIC_URL": "https://desk.example"}, "tenant " + demoidp.DemoTenantID},
		{"another provider", map[string]string{"AUTOPILOTDESK_ISSUER_URL": "https://idp.example/realms/it", "AUTOPILOTDESK_CLIENT_ID": "c",
			"AUTOPILOTDESK_CLIENT_SECRET": "s", "AUTOPILOTDESK_PUBLIC_URL": "https://desk.example"}, "idp.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := loadConfig(nil, testkit.Env(tc.env), nil)
			if err != nil {
				t.Fatal(err)
			}
			if got := startupMode(cfg); !strings.Contains(got, tc.want) || strings.Contains(got, "  ") {
				t.Errorf("mode %q, want it to name %q", got, tc.want)
			}
		})
	}
}

// A demo desk pointed at another Graph says so wherever it speaks of the Graph it calls: the
// banner of every page, the sign-in page and the start-up message; never that it is emulated.
func TestDemoWithAnotherGraphSaysWhereItsGraphIs(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_GRAPH_URL": "http://127.0.0.1:18599"}, appOptions{})
	_, doc := d.get(d.browser(), "/auth/signin")
	banner := doc.Find(`[data-testid="demo-banner"]`).Text()
	if !strings.Contains(banner, "127.0.0.1:18599") || strings.Contains(banner, "emulated") || strings.Contains(banner, "Nothing here reaches a real tenant") {
		t.Errorf("banner %q", banner)
	}
	if page := doc.Find(".signin").Text(); !strings.Contains(page, "127.0.0.1:18599") || strings.Contains(page, "emulated") {
		t.Errorf("sign-in page: %q", page)
	}
	if got := startupMode(d.app.cfg); !strings.Contains(got, "127.0.0.1:18599") || strings.Contains(got, "emulated") {
		t.Errorf("start-up mode %q", got)
	}
	plain := startDeskWith(t, nil, appOptions{})
	_, doc = plain.get(plain.browser(), "/auth/signin")
	if banner := doc.Find(`[data-testid="demo-banner"]`).Text(); !strings.Contains(banner, "emulated Microsoft Graph") {
		t.Errorf("the embedded emulator's banner: %q", banner)
	}
}

// The demo's start-up message says how to leave the demo for one's own tenant: the settings to
// give and where the app registration is described; a desk on a tenant says nothing of it.
func TestDemoStartSaysHowToUseYourTenant(t *testing.T) {
	demo, err := loadConfig(nil, testkit.Env(nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	msg := startMessage(demo, nil)
	for _, want := range []string{optTenantID.env, optClientID.env, optClientSecret.env, optPublicURL.env, "README.md", "Use it with your tenant"} {
		if !strings.Contains(msg, want) {
			t.Errorf("demo start-up message lacks %q:\n%s", want, msg)
		}
	}
	tenant, err := loadConfig(nil, testkit.Env(map[string]string{optTenantID.env: demoidp.DemoTenantID, optClientID.env: "c",
		optClientSecret.env: "s", optPublicURL.env: "https://desk.example"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if msg := startMessage(tenant, nil); strings.Contains(msg, "README") {
		t.Errorf("a desk on a tenant is told how to leave the demo:\n%s", msg)
	}
}

// With a tenant configured (always so for Microsoft Entra), an ID token without tid is refused
// with an explanation, never let in under another key.
func TestConfiguredTenantStillRequiresTheTenantClaim(t *testing.T) {
	d := startDeskWithProvider(t, func(o *demoidp.Options) { o.WithoutTenantClaims = true },
		map[string]string{"AUTOPILOTDESK_TENANT_ID": demoidp.DemoTenantID}, appOptions{})
	resp := d.signIn(d.browser(), demoidp.AdminKey, "/")
	doc := parse(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(text(doc), "did not say which organisation") ||
		!strings.Contains(text(doc), "AUTOPILOTDESK_TENANT_ID") {
		t.Errorf("%d: %s", resp.StatusCode, text(doc))
	}
}

// Replicas agree on the tenant of a provider without tenants: a create on one desk is in the
// history the other shows.
func TestProviderWithoutTenantClaimOnReplicas(t *testing.T) {
	cl := startClusterWith(t, clusterOptions{shape: func(o *demo.Options) { o.WithoutTenantClaims = true }})
	d := cl.onDesks("A", "B")
	b := d.signedInBrowser(demoidp.AdminKey, cl.browser)
	cl.via("B")
	_, doc := d.get(b, "/uploads/new")
	resp, doc := d.post(b, "/uploads", formValues(t, doc, `form[action="/uploads"]`))
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		t.Fatalf("create on B: %d %s", resp.StatusCode, text(doc))
	}
	result := resp.Request.URL.Path
	cl.via("A")
	if resp, doc = d.get(b, result); resp.StatusCode != http.StatusOK || !strings.Contains(doc.Find("h1").Text(), "Upload created") {
		t.Errorf("B's result on A: %d %s", resp.StatusCode, text(doc))
	}
	if _, doc = d.get(b, "/activity"); doc.Find(`[data-testid="activity"] tbody tr`).Length() != 1 {
		t.Errorf("history on A: %s", text(doc))
	}
}

// A server whose clock is off refuses every sign-in, as it must (the ID token is expired, or not
// valid yet, by its clock); the page and the log say that the clock is the cause and how far it is
// off, instead of asking the person to try again. A few minutes either way still signs in.
func TestSignInWithTheServerClockOffSaysSo(t *testing.T) {
	for _, tc := range []struct {
		skew  time.Duration
		apart string
	}{{-2 * time.Hour, "2 hours apart"}, {2*time.Hour + 5*time.Minute, "2 hours and 5 minutes apart"}, {-10 * time.Minute, "10 minutes apart"}, {3 * time.Minute, ""}, {-3 * time.Minute, ""}} {
		d := startDeskWithProvider(t, func(o *demoidp.Options) { o.Now = time.Now }, nil,
			appOptions{Now: func() time.Time { return time.Now().Add(tc.skew) }})
		resp := d.signIn(d.browser(), demoidp.AdminKey, "/uploads/new")
		page := strings.Join(strings.Fields(text(parse(t, resp))), " ")
		if tc.apart == "" {
			if resp.Request.URL.Path != "/uploads/new" {
				t.Errorf("clock off by %s: sign-in ended %d at %s: %.300s", tc.skew, resp.StatusCode, resp.Request.URL.Path, page)
			}
			continue
		}
		if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(page, "The desk's clock is off") || !strings.Contains(page, tc.apart) ||
			!strings.Contains(page, "set this server's time") {
			t.Errorf("clock off by %s: %d: %.400s", tc.skew, resp.StatusCode, page)
		}
		if logs := d.log.String(); !strings.Contains(logs, `"level":"ERROR","msg":"this server's clock is off`) {
			t.Errorf("clock off by %s: no error logged:\n%s", tc.skew, logs)
		}
	}
}
