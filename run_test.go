package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// selfSigned writes a certificate and key for 127.0.0.1 and returns their paths.
func selfSigned(t *testing.T) (certFile, keyFile string) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	certPEM, _ := testkit.SelfSigned(t, key, "127.0.0.1")
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	os.WriteFile(certFile, certPEM, 0o600)
	os.WriteFile(keyFile, testkit.PrivateKeyPEM(t, key), 0o600)
	return certFile, keyFile
}

func TestRunServesTLSAndShutsDownGracefully(t *testing.T) {
	cert, key := selfSigned(t)
	addr := testkit.FreeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	var out, logs testkit.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", addr}, testkit.Env(map[string]string{
			"AUTOPILOTDESK_DATA_DIR": t.TempDir(), "AUTOPILOTDESK_TLS_CERT_FILE": cert, "AUTOPILOTDESK_TLS_KEY_FILE": key,
			"AUTOPILOTDESK_PUBLIC_URL": "https://" + addr,
		}), &out, &logs)
	}()
	pool := x509.NewCertPool()
	pemBytes, _ := os.ReadFile(cert)
	pool.AppendCertsFromPEM(pemBytes)
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = client.Get("https://" + addr + "/auth/signin"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("desk never answered: %v\n%s", err, logs.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("TLS answer %d, HSTS %q", resp.StatusCode, resp.Header.Get("Strict-Transport-Security"))
	}
	if !strings.Contains(out.String(), "Open https://"+addr) {
		t.Errorf("the URL to open was not printed:\n%s", out.String())
	}
	stop()
	waitStopped(t, done)
	if !strings.Contains(out.String(), "stopped") {
		t.Errorf("no stop message")
	}
}

// runDemo runs the demo as `autopilotdesk` does, on a port the system chooses, until the test
// ends. It returns the address printed to open and a browser that signs in as the administrator
// when the desk sends it to sign in.
func runDemo(t *testing.T, env map[string]string) (open string, browser *http.Client) {
	t.Helper()
	ctx, stop := context.WithCancel(context.Background())
	var out, logs testkit.Buffer
	done := make(chan error, 1)
	full := map[string]string{"AUTOPILOTDESK_DATA_DIR": t.TempDir()}
	for k, v := range env {
		full[k] = v
	}
	go func() { done <- run(ctx, []string{"--addr", "127.0.0.1:0"}, testkit.Env(full), &out, &logs) }()
	t.Cleanup(func() { stop(); waitStopped(t, done) })
	for i := 0; i < 500 && open == ""; i++ {
		if _, rest, ok := strings.Cut(out.String(), "Open "); ok {
			open, _, _ = strings.Cut(rest, " ")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if open == "" {
		t.Fatalf("the desk printed no address:\n%s\n%s", out.String(), logs.String())
	}
	jar, _ := cookiejar.New(nil)
	browser = &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}}
	if certFile := env["AUTOPILOTDESK_TLS_CERT_FILE"]; certFile != "" { // as browsers do: HTTP/2 over TLS
		pool := x509.NewCertPool()
		pemBytes, _ := os.ReadFile(certFile)
		pool.AppendCertsFromPEM(pemBytes)
		browser.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}, ForceAttemptHTTP2: true}
	}
	return open, browser
}

// A demo on a port the system chooses prints that port, and sign-in comes back to it.
func TestDemoOnAnyPortPrintsItAndSignsIn(t *testing.T) {
	open, client := runDemo(t, nil)
	if u, err := url.Parse(open); err != nil || u.Port() == "" || u.Port() == "0" {
		t.Fatalf("printed %q", open)
	}
	resp, err := client.Get(open + "/auth/login?return_to=/uploads/new")
	if err != nil {
		t.Fatalf("sign-in: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != open+"/uploads/new" {
		t.Errorf("sign-in ended %d at %s, want %s/uploads/new", resp.StatusCode, resp.Request.URL, open)
	}
}

// shortServerTimeouts shortens the server's read and write timeouts for one test.
func shortServerTimeouts(t *testing.T, read, write time.Duration) {
	saved := web.ServerTimeouts
	web.ServerTimeouts.Read, web.ServerTimeouts.Write = read, write
	t.Cleanup(func() { web.ServerTimeouts = saved })
}

// The server's write timeout counts from Graph's answer, not from the request: a create that
// waits on a slow Graph longer than the timeout still gets its result page, instead of a
// connection closed with nothing in it (HTTP/1.1) or a reset stream (HTTP/2).
func TestSlowGraphStillGetsItsAnswerWritten(t *testing.T) {
	shortServerTimeouts(t, 15*time.Second, time.Second)
	cert, key := selfSigned(t)
	for _, tc := range []struct {
		proto string
		env   map[string]string
	}{
		{"HTTP/1.1", nil},
		{"HTTP/2.0", map[string]string{"AUTOPILOTDESK_TLS_CERT_FILE": cert, "AUTOPILOTDESK_TLS_KEY_FILE": key}},
	} {
		env := map[string]string{"AUTOPILOTDESK_EMULATOR_LATENCY": "1500ms"}
		for k, v := range tc.env {
			env[k] = v
		}
		open, browser := runDemo(t, env)
		resp, err := browser.Get(open + "/auth/login?return_to=/uploads/new")
		if err != nil {
			t.Fatal(err)
		}
		form := formValues(t, parse(t, resp), `form[action="/uploads"]`)
		start := time.Now()
		resp, err = browser.PostForm(open+"/uploads", form)
		if err != nil {
			t.Fatalf("%s: the create's answer was lost after %s: %v", tc.proto, time.Since(start).Round(time.Millisecond), err)
		}
		doc := parse(t, resp)
		if resp.Proto != tc.proto || resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/activity/") ||
			doc.Find(`[data-testid="upload-id"]`).Length() != 1 {
			t.Errorf("%s: the create ended %s %d at %s: %.300s", tc.proto, resp.Proto, resp.StatusCode, resp.Request.URL, text(doc))
		}
	}
}

// The same holds for the identity provider: a sign-in whose code takes longer to redeem than the
// server's write timeout still lands the person on their page.
func TestSlowIdentityProviderStillLandsTheSignIn(t *testing.T) {
	shortServerTimeouts(t, 15*time.Second, time.Second)
	addr := testkit.FreeAddr(t)
	public := "http://" + addr
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	idp, err := demoidp.New(demoidp.Options{Issuer: base, ClientID: "desk", ClientSecret: "provider-secret",
		RedirectURIs: []string{public + "/auth/callback"}, PostLogoutRedirectURIs: []string{public + "/auth/signed-out"}})
	if err != nil {
		t.Fatal(err)
	}
	services := demo.Mux(idp, emulator.New(emulator.Options{Verify: demo.Verifier(idp)}))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/token") {
			time.Sleep(1500 * time.Millisecond) // the code's redemption
		}
		services.ServeHTTP(w, r)
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	ctx, stop := context.WithCancel(context.Background())
	var out, logs testkit.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", addr}, testkit.Env(map[string]string{"AUTOPILOTDESK_DATA_DIR": t.TempDir(),
			"AUTOPILOTDESK_ISSUER_URL": idp.IssuerURL(), "AUTOPILOTDESK_CLIENT_ID": "desk", "AUTOPILOTDESK_CLIENT_SECRET": "provider-secret",
			"AUTOPILOTDESK_GRAPH_URL": base, "AUTOPILOTDESK_PUBLIC_URL": public}), &out, &logs)
	}()
	defer func() { stop(); waitStopped(t, done) }()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}}
	var resp *http.Response
	for i := 0; i < 200; i++ {
		if resp, err = browser.Get(public + "/auth/login?return_to=/uploads/new"); err == nil || !strings.Contains(err.Error(), "connection refused") {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("the sign-in's answer was lost: %v\n%s", err, logs.String())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/uploads/new" {
		t.Errorf("the sign-in ended %d at %s", resp.StatusCode, resp.Request.URL)
	}
}

// A device file is given the time a large file takes to arrive on a slow link, while a form keeps
// the server's usual read timeout.
func TestLargeUploadMayArriveSlowly(t *testing.T) {
	shortServerTimeouts(t, time.Second, 30*time.Second)
	open, browser := runDemo(t, nil)
	resp, err := browser.Get(open + "/auth/login?return_to=/devices/import")
	if err != nil {
		t.Fatal(err)
	}
	csrf := parse(t, resp).Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("_csrf", csrf)
	fw, _ := w.CreateFormFile("file", "devices.csv")
	fw.Write([]byte("Device Serial Number,Windows Product ID,Hardware Hash\r\nSLOW-1,," + fakeHash() + "\r\n"))
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, open+"/devices/import", &slowReader{data: body.Bytes(), over: 2 * time.Second})
	req.ContentLength = int64(body.Len())
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", open)
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatalf("a file that took 2 s to arrive: %v", err)
	}
	doc := parse(t, resp)
	if !strings.HasPrefix(resp.Request.URL.Path, "/devices/import/") || !strings.Contains(text(doc), "SLOW-1") {
		t.Errorf("the upload ended %d at %s: %.300s", resp.StatusCode, resp.Request.URL, text(doc))
	}
}

// slowReader hands out data in ten pieces, waiting a tenth of over before each but the first.
type slowReader struct {
	data []byte
	over time.Duration
	left int // of the current piece
	n    int // pieces started
}

func (r *slowReader) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	if r.left == 0 {
		if r.n > 0 {
			time.Sleep(r.over / 10)
		}
		r.n++
		r.left = min(len(r.data), len(r.data)/(11-r.n)+1)
	}
	n := copy(p, r.data[:r.left])
	r.data, r.left = r.data[n:], r.left-n
	return n, nil
}

// On the shutdown signal readiness turns false at once, and with a shutdown delay the desk keeps
// answering everything, so a load balancer sees the 503 before the port closes.
func TestShutdownDelayKeepsServingWithReadinessOff(t *testing.T) {
	addr := testkit.FreeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	var out, logs testkit.Buffer
	done := make(chan error, 1)
	const delay = 800 * time.Millisecond
	go func() {
		done <- run(ctx, []string{"--addr", addr}, testkit.Env(map[string]string{
			"AUTOPILOTDESK_DATA_DIR": t.TempDir(), "AUTOPILOTDESK_SHUTDOWN_DELAY": delay.String(),
		}), &out, &logs)
	}()
	client := &http.Client{Timeout: 5 * time.Second}
	status := func(path string) int {
		resp, err := client.Get("http://" + addr + path)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for i := 0; status("/readyz") != http.StatusOK; i++ {
		if i == 250 {
			t.Fatalf("never ready:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	stopped := time.Now()
	stop() // what SIGTERM does through signal.NotifyContext
	time.Sleep(100 * time.Millisecond)
	if got := status("/readyz"); got != http.StatusServiceUnavailable {
		t.Errorf("readiness during the shutdown delay: %d, want 503", got)
	}
	if got := status("/auth/signin"); got != http.StatusOK {
		t.Errorf("a page during the shutdown delay: %d, want 200", got)
	}
	waitStopped(t, done)
	if waited := time.Since(stopped); waited < delay {
		t.Errorf("stopped after %s, before the %s delay", waited, delay)
	}
	if got := status("/healthz"); got != 0 {
		t.Errorf("still answering after the shutdown: %d", got)
	}
}

func TestRunReportsConfigurationProblems(t *testing.T) {
	err := run(context.Background(), nil, testkit.Env(map[string]string{"AUTOPILOTDESK_CLIENT_ID": "x", "AUTOPILOTDESK_EMULATOR_ERROR_RATE": "2"}), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "AUTOPILOTDESK_TENANT_ID") || !strings.Contains(err.Error(), "AUTOPILOTDESK_EMULATOR_ERROR_RATE") {
		t.Errorf("err = %v", err)
	}
}

// waitStopped waits for a desk run in the background to return, without an error.
func waitStopped(t *testing.T, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("shutdown: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the desk did not stop")
	}
}

// emulatorCommand runs `autopilotdesk emulator` on addr with the client secret until ctx ends,
// printing to out; the channel gives what it returned.
func emulatorCommand(ctx context.Context, addr, secret string, out io.Writer) <-chan error {
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"emulator", "--addr", addr, "--client-secret", secret}, testkit.Env(nil), out, io.Discard)
	}()
	return done
}

func TestEmulatorCommandServesGraphAndSignIn(t *testing.T) {
	addr := testkit.FreeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	var out testkit.Buffer
	done := emulatorCommand(ctx, addr, "s", &out)
	defer func() { stop(); <-done }()
	var resp *http.Response
	var err error
	for i := 0; i < 100; i++ {
		if resp, err = http.Get(fmt.Sprintf("http://%s/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads", addr)); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("request-id") == "" {
		t.Errorf("anonymous Graph call: %d", resp.StatusCode)
	}
	if !strings.Contains(out.String(), "Identity issuer: http://"+addr) {
		t.Errorf("issuer not printed:\n%s", out.String())
	}
	resp, err = http.Get("http://" + addr + "/5b7a1c2e-3f4d-4e6a-9b8c-0d1e2f3a4b5c/v2.0/.well-known/openid-configuration")
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("discovery: %v", err)
	}
}

// The emulator started without redirect flags takes a desk on any loopback port, by name or by
// address, as Entra does for http://localhost: the desk signs in, reaches Graph and signs out.
func TestEmulatorCommandPairsWithADeskOnAnyLoopbackPort(t *testing.T) {
	emuAddr := testkit.FreeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	var out testkit.Buffer
	emuDone := emulatorCommand(ctx, emuAddr, "pairing-secret", &out)
	deskAddr := testkit.FreeAddr(t)
	_, deskPort, _ := strings.Cut(deskAddr, ":")
	public := "http://localhost:" + deskPort
	deskDone := make(chan error, 1)
	go func() {
		for !strings.Contains(out.String(), "Client secret:") {
			time.Sleep(10 * time.Millisecond)
		}
		deskDone <- run(ctx, []string{"--addr", deskAddr}, testkit.Env(map[string]string{
			"AUTOPILOTDESK_DATA_DIR":      t.TempDir(),
			"AUTOPILOTDESK_PUBLIC_URL":    public,
			"AUTOPILOTDESK_ISSUER_URL":    "http://" + emuAddr + "/" + demoidp.DemoTenantID + "/v2.0",
			"AUTOPILOTDESK_TENANT_ID":     demoidp.DemoTenantID,
			"AUTOPILOTDESK_CLIENT_ID":     "autopilotdesk-demo",
			"AUTOPILOTDESK_CLIENT_SECRET": "pairing-secret",
			"AUTOPILOTDESK_GRAPH_URL":     "http://" + emuAddr,
		}), io.Discard, io.Discard)
	}()
	defer func() { stop(); <-emuDone; <-deskDone }()
	for i := 0; ; i++ {
		resp, err := http.Get(public + "/readyz")
		if err == nil && resp.StatusCode == http.StatusOK {
			resp.Body.Close()
			break
		}
		if i == 300 {
			t.Fatalf("the desk did not start: %v\n%s", err, out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}

	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}}
	resp, err := b.Get(public + "/auth/login?return_to=/devices")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != public+"/devices" || !strings.Contains(string(body), "Sign out") {
		t.Fatalf("sign-in through the emulator landed on %d %s:\n%.600s", resp.StatusCode, resp.Request.URL, body)
	}

	// The same by address on another port, and what stays refused: another path, another host.
	authorize := func(redirect string) int {
		q := url.Values{"client_id": {"autopilotdesk-demo"}, "redirect_uri": {redirect}, "response_type": {"code"},
			"scope": {"openid"}, "state": {"s"}, "nonce": {"n"}, "code_challenge": {"c"}, "code_challenge_method": {"S256"}}
		resp, err := http.Get("http://" + emuAddr + "/" + demoidp.DemoTenantID + "/oauth2/v2.0/authorize?" + q.Encode())
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for redirect, want := range map[string]int{
		"http://127.0.0.1:" + deskPort + "/auth/callback": http.StatusOK,
		"http://127.0.0.1:1/auth/callback":                http.StatusOK,
		"http://localhost/auth/callback":                  http.StatusOK,
		"http://localhost:8142/elsewhere":                 http.StatusBadRequest,
		"https://localhost:8142/auth/callback":            http.StatusBadRequest,
		"http://desk.example.com:8142/auth/callback":      http.StatusBadRequest,
		"http://127.0.0.2:8142/auth/callback":             http.StatusBadRequest,
	} {
		if got := authorize(redirect); got != want {
			t.Errorf("authorize with redirect %s: %d, want %d", redirect, got, want)
		}
	}
}

func TestHealthAndReadiness(t *testing.T) {
	d := startDesk(t, nil)
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := d.srv.Client().Get(d.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Set-Cookie") != "" {
			t.Errorf("%s: %d, cookie %q", path, resp.StatusCode, resp.Header.Get("Set-Cookie"))
		}
	}
	d.app.health.Drain()
	if resp, _ := d.srv.Client().Get(d.srv.URL + "/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readiness while draining: %d", resp.StatusCode)
	}
	d.app.db.Close()
	if resp, _ := d.srv.Client().Get(d.srv.URL + "/healthz"); resp.StatusCode != http.StatusOK {
		t.Errorf("liveness with the database gone: %d", resp.StatusCode)
	}
}

func TestStateDatabaseLostMidRequestIs503(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	d.app.db.Close()
	// The session itself may come from memory; the activity history has to be read.
	resp, doc := d.get(b, "/activity")
	if resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(text(doc), "briefly unavailable") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("%d: %s", resp.StatusCode, text(doc))
	}
}

func TestMetricsNeedTheTokenAndCountACreate(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_METRICS_TOKEN": "scrape-secret-0f2d6e55"})
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	d.createUpload(b, "pending")
	if resp, _ := d.srv.Client().Get(d.srv.URL + "/metrics"); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("metrics without the token: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest(http.MethodGet, d.srv.URL+"/metrics", nil)
	req.Header.Set("Authorization", "Bearer scrape-secret-0f2d6e55")
	resp, err := d.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`autopilotdesk_graph_requests_total{operation="create-upload",status="201"} 1`,
		`autopilotdesk_http_requests_total{method="POST",route="/uploads",status="303"} 1`,
		`autopilotdesk_sign_ins_total{reason="",result="success"} 1`,
		`autopilotdesk_active_sessions 1`,
		`autopilotdesk_build_info{`,
		`autopilotdesk_graph_request_duration_seconds_bucket{operation="create-upload"`,
		"\nautopilotdesk_state_schema_version " + strconv.Itoa(d.app.db.Schema().To) + "\n",
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(d.log.String(), `"msg":"graph call"`) || !strings.Contains(d.log.String(), `"client_request_id"`) ||
		!regexp.MustCompile(`"date":"[A-Z][a-z]{2}, \d{2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} GMT"`).MatchString(d.log.String()) {
		t.Errorf("Graph calls are not logged with their ids and Graph's date")
	}
}

func TestUnreachableDatabaseAtStartIsAClearError(t *testing.T) {
	addr := testkit.FreeAddr(t) // nothing listens here
	start := time.Now()
	var stderr bytes.Buffer
	err := run(context.Background(), []string{"--addr", testkit.FreeAddr(t), "--log-format", "json"}, testkit.Env(map[string]string{
		"AUTOPILOTDESK_DATABASE_URL":          "postgres://desk@" + addr + "/desk?sslmode=disable&connect_timeout=1",
		"AUTOPILOTDESK_DATABASE_STARTUP_WAIT": "1s",
	}), &bytes.Buffer{}, &stderr)
	if err == nil || !strings.Contains(err.Error(), "state database") {
		t.Fatalf("err = %v", err)
	}
	// The wait is said once, with how long it lasts, while it lasts.
	if n := strings.Count(stderr.String(), `"msg":"waiting for PostgreSQL to answer before starting","up_to":"1s","setting":"AUTOPILOTDESK_DATABASE_STARTUP_WAIT"`); n != 1 {
		t.Errorf("%d lines about the wait:\n%s", n, stderr.String())
	}
	if took := time.Since(start); took < 500*time.Millisecond || took > 10*time.Second {
		t.Errorf("gave up after %s, want about the startup wait", took)
	}
}

// A second desk on a SQLite data folder another desk uses does not start, and says how to run
// several: the setting that shares state through PostgreSQL, by its name.
func TestSecondDeskOnOneDataFolderIsAClearError(t *testing.T) {
	dir := t.TempDir()
	db, err := store.Open(context.Background(), store.Options{DataDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = run(context.Background(), []string{"--addr", testkit.FreeAddr(t)}, testkit.Env(map[string]string{
		"AUTOPILOTDESK_DATA_DIR": dir}), &bytes.Buffer{}, &bytes.Buffer{})
	if !errors.Is(err, store.ErrDataDirInUse) || !strings.Contains(err.Error(), "share state through PostgreSQL (AUTOPILOTDESK_DATABASE_URL)") {
		t.Fatalf("err = %v", err)
	}
}

func TestCreatePageWeighsUnder50KB(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	resp := d.signIn(b, "admin", "/uploads/new")
	html, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	total := len(html)
	for _, asset := range []string{"app.css", "app.js"} {
		raw, gz := d.app.assets.Size(asset)
		if gz > raw || raw == 0 {
			t.Errorf("%s: %d bytes, %d compressed", asset, raw, gz)
		}
		total += raw
	}
	if total >= 50<<10 {
		t.Errorf("the create page weighs %d bytes (HTML + CSS + JS), want under 50 KB", total)
	}
}

// A request still running when the drain time is up (here a page waiting on a slow Graph) is
// closed; the desk says so in one WARN line, prints its stop line last and ends cleanly, as the
// service manager was asked.
func TestShutdownClosesASlowRequestAndStopsCleanly(t *testing.T) {
	drain := shutdownDrain
	shutdownDrain = 300 * time.Millisecond
	t.Cleanup(func() { shutdownDrain = drain })
	addr := testkit.FreeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	// Both outputs in one, as a service manager's journal keeps them; the log is slow to take
	// lines, as a busy journal is.
	var logs testkit.Buffer
	out := &logs
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", addr}, testkit.Env(map[string]string{
			"AUTOPILOTDESK_DATA_DIR": t.TempDir(), "AUTOPILOTDESK_EMULATOR_LATENCY": "2s",
		}), out, slowWriter{&logs, 50 * time.Millisecond})
	}()
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second, CheckRedirect: func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}}
	open := "http://" + addr
	for i := 0; ; i++ {
		resp, err := browser.Get(open + "/readyz")
		if err == nil {
			resp.Body.Close()
			break
		}
		if i == 250 {
			t.Fatalf("never ready:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := browser.Get(open + "/auth/login?return_to=/uploads/new")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	answered := make(chan error, 1)
	go func() {
		resp, err := browser.Get(open + "/") // the home page reads Graph: 2 s
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	time.Sleep(500 * time.Millisecond)
	stop()
	waitStopped(t, done)
	if err := <-answered; err == nil {
		t.Error("the page waiting on Graph was answered after the drain time")
	}
	if !strings.Contains(logs.String(), "closed 1 request that was still running after 300ms") {
		t.Errorf("nothing said what was closed:\n%s", logs.String())
	}
	if !strings.HasSuffix(out.String(), "Autopilot Desk stopped.\n") {
		t.Errorf("the stop line is not the last printed:\n%s", out.String())
	}
}

// slowWriter takes each write after a delay.
type slowWriter struct {
	w     io.Writer
	delay time.Duration
}

func (s slowWriter) Write(p []byte) (int, error) {
	time.Sleep(s.delay)
	return s.w.Write(p)
}

// A desk whose temporary folder cannot be written (a distroless image, a read-only root file
// system) still takes a device file larger than it keeps in memory: on SQLite it stores it in
// its data folder while it reads it, and says so at start.
func TestLargeUploadWithoutATemporaryFolder(t *testing.T) {
	dataDir := t.TempDir() // the test's temporary folder is made before TMPDIR goes away
	t.Setenv("TMPDIR", filepath.Join(dataDir, "no-such-folder"))
	open, browser := runDemo(t, map[string]string{"AUTOPILOTDESK_DATA_DIR": dataDir})
	resp, err := browser.Get(open + "/auth/login?return_to=/devices/import")
	if err != nil {
		t.Fatal(err)
	}
	csrf := parse(t, resp).Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	var csv bytes.Buffer
	csv.WriteString("Device Serial Number,Windows Product ID,Hardware Hash\r\n")
	for i := range 1100 {
		fmt.Fprintf(&csv, "NOTMP-%04d,,%s\r\n", i, fakeHash())
	}
	if csv.Len() <= 4<<20 {
		t.Fatalf("the file is %d bytes, not more than the desk keeps in memory", csv.Len())
	}
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	w.WriteField("_csrf", csrf)
	fw, _ := w.CreateFormFile("file", "devices.csv")
	fw.Write(csv.Bytes())
	w.Close()
	req, _ := http.NewRequest(http.MethodPost, open+"/devices/import", &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Origin", open)
	resp, err = browser.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	doc := parse(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/devices/import/") || !strings.Contains(text(doc), "1,100") {
		t.Errorf("the upload ended %d at %s: %.400s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	if entries, err := os.ReadDir(filepath.Join(dataDir, "uploads")); err != nil || len(entries) != 0 {
		t.Errorf("the data folder's uploads: %v, %d files left", err, len(entries))
	}
}

// With PostgreSQL the desk may have no folder of its own: without a writable temporary folder it
// does not start, and says what to set.
func TestNoTemporaryFolderWithPostgreSQLIsAClearError(t *testing.T) {
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "no-such-folder"))
	err := run(context.Background(), []string{"--addr", testkit.FreeAddr(t)}, testkit.Env(map[string]string{
		"AUTOPILOTDESK_DATABASE_URL": "postgres://desk@" + testkit.FreeAddr(t) + "/desk?sslmode=disable&connect_timeout=1",
	}), &bytes.Buffer{}, &bytes.Buffer{})
	if err == nil || !strings.Contains(err.Error(), "no-such-folder cannot be written") || !strings.Contains(err.Error(), "set TMPDIR") {
		t.Fatalf("err = %v", err)
	}
}
