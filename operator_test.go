package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
)

// tenantEnv is a complete configuration outside demo mode, with extra settings added or replaced.
func tenantEnv(extra map[string]string) func(string) string {
	env := map[string]string{"AUTOPILOTDESK_TENANT_ID": "11111111-2222-3333-4444-555555555555", "AUTOPILOTDESK_CLIENT_ID": "x",
		"AUTOPILOTDESK_CLIENT_SECRET": "s", "AUTOPILOTDESK_PUBLIC_URL": "https://desk.example.com"}
	for k, v := range extra {
		env[k] = v
	}
	return testkit.Env(env)
}

// configProblems is what loadConfig refused, one problem a line; empty when it took the settings.
func configProblems(t *testing.T, getenv func(string) string) []string {
	t.Helper()
	_, err := loadConfig(nil, getenv, &bytes.Buffer{})
	if err == nil {
		return nil
	}
	var ce configError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want configError", err)
	}
	return ce
}

// A trusted-proxy range that covers far more than proxies would let any client forge its address
// and escape every per-address rate limit: refused at start, saying what to list instead.
func TestTrustedProxiesCoveringEveryoneAreRefused(t *testing.T) {
	for _, wide := range []string{"0.0.0.0/0", "::/0", "0.0.0.0/1", "128.0.0.0/1", "10.0.0.5, 0.0.0.0/0", "::ffff:0.0.0.0/96", "2000::/3", "1.0.0.0/7"} {
		problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_TRUSTED_PROXIES": wide}))
		if len(problems) != 1 || !strings.HasPrefix(problems[0], "AUTOPILOTDESK_TRUSTED_PROXIES: ") ||
			!strings.Contains(problems[0], "escape the per-address rate limits") || !strings.Contains(problems[0], "List exactly your proxies' addresses") {
			t.Errorf("%s: %q", wide, problems)
		}
	}
	for _, fine := range []string{"10.0.0.0/8", "10.0.0.5", "192.168.0.0/16", "fd00::/8", "fc00::/7", "2001:db8::/32", "::1", "127.0.0.1, 172.16.0.0/12"} {
		if problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_TRUSTED_PROXIES": fine})); len(problems) > 0 {
			t.Errorf("%s refused: %q", fine, problems)
		}
	}
}

// Only "off" turns a rate limit off: a limit of 0 is refused, not read as "no limit".
func TestRateLimitOfZeroIsRefused(t *testing.T) {
	for _, name := range []string{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN", "AUTOPILOTDESK_RATE_LIMIT_CREATE", "AUTOPILOTDESK_RATE_LIMIT_REGISTER", "AUTOPILOTDESK_RATE_LIMIT_REGISTER_WRONG"} {
		for _, zero := range []string{"0", "0/1m", "00/10s"} {
			problems := configProblems(t, tenantEnv(map[string]string{name: zero}))
			if len(problems) != 1 || !strings.HasPrefix(problems[0], name+": ") || !strings.Contains(problems[0], "or off to disable it") {
				t.Errorf("%s=%s: %q", name, zero, problems)
			}
		}
		c, err := loadConfig(nil, tenantEnv(map[string]string{name: "off"}), &bytes.Buffer{})
		if err != nil || c.SignInLimit.N == 0 && c.CreateLimit.N == 0 && c.RegisterLimit.N == 0 && c.RegisterWrongLimit.N == 0 {
			t.Errorf("%s=off: %v (every limit off?)", name, err)
		}
	}
}

// The public URL is an origin people open: a query, fragment, user info, path, impossible port or
// wildcard host is refused, and so is plain http anywhere but this machine (the desk's cookies are
// Secure, so sign-in could never finish). Each is one line naming the setting, never a second,
// false "is required".
func TestPublicURLMustBeAnOriginPeopleCanSignInAt(t *testing.T) {
	for raw, want := range map[string]string{
		"https://desk.example.com?x=1":           "has a query",
		"https://desk.example.com?":              "has a query",
		"https://desk.example.com#top":           "has a fragment",
		"https://desk.example.com/#":             "has a fragment",
		"https://admin:hunter2@desk.example.com": "carries a user name or password",
		"https://desk.example.com:99999":         `has the port "99999"`,
		"https://desk.example.com:0":             `has the port "0"`,
		"https://*.example.com":                  "is not one address",
		"https://0.0.0.0:8443":                   "is not one address",
		"http://desk.example.com":                "plain http on a host other than this machine",
		"http://10.0.0.5:8080":                   "plain http on a host other than this machine",
		"https://desk.example.com/desk":          "has a path",
		"desk.example.com":                       "is not an absolute http(s) URL",
	} {
		problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_PUBLIC_URL": raw}))
		if len(problems) != 1 || !strings.HasPrefix(problems[0], "AUTOPILOTDESK_PUBLIC_URL: ") || !strings.Contains(problems[0], want) {
			t.Errorf("%s: want one problem saying %q, got %q", raw, want, problems)
		}
		if strings.Contains(strings.Join(problems, "\n"), "hunter2") {
			t.Errorf("%s: the password was repeated: %q", raw, problems)
		}
	}
	for raw, want := range map[string]string{
		"https://desk.example.com/": "https://desk.example.com", "https://desk.example.com:8443": "https://desk.example.com:8443",
		"http://localhost:8424": "http://localhost:8424", "http://127.0.0.1:8424": "http://127.0.0.1:8424", "http://[::1]:8424": "http://[::1]:8424",
		"http://desk.localhost": "http://desk.localhost",
	} {
		c, err := loadConfig(nil, tenantEnv(map[string]string{"AUTOPILOTDESK_PUBLIC_URL": raw}), &bytes.Buffer{})
		if err != nil || c.PublicURL.String() != want {
			t.Errorf("%s: %v, %v", raw, c.PublicURL, err)
		}
	}
}

// A secret file that cannot be read, or is empty, or is given beside the variable itself, is one
// true line: never also "is required".
func TestSecretFileProblemsAreSaidOnce(t *testing.T) {
	dir := t.TempDir()
	empty := filepath.Join(dir, "empty")
	full := filepath.Join(dir, "secret")
	if err := os.WriteFile(empty, []byte("\n  \n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(full, []byte("from-the-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"unreadable", map[string]string{"AUTOPILOTDESK_CLIENT_SECRET": "", "AUTOPILOTDESK_CLIENT_SECRET_FILE": filepath.Join(dir, "missing")}, "cannot read the file AUTOPILOTDESK_CLIENT_SECRET_FILE names"},
		{"empty", map[string]string{"AUTOPILOTDESK_CLIENT_SECRET": "", "AUTOPILOTDESK_CLIENT_SECRET_FILE": empty}, "the file AUTOPILOTDESK_CLIENT_SECRET_FILE names (" + empty + ") is empty"},
		{"both", map[string]string{"AUTOPILOTDESK_CLIENT_SECRET_FILE": full}, "and AUTOPILOTDESK_CLIENT_SECRET_FILE are both set"},
		{"both metrics", map[string]string{"AUTOPILOTDESK_METRICS_TOKEN": "t", "AUTOPILOTDESK_METRICS_TOKEN_FILE": full}, "AUTOPILOTDESK_METRICS_TOKEN: and AUTOPILOTDESK_METRICS_TOKEN_FILE are both set"},
		{"short metrics token", map[string]string{"AUTOPILOTDESK_METRICS_TOKEN": "letmein"}, "AUTOPILOTDESK_METRICS_TOKEN: is 7 characters long"},
	} {
		problems := configProblems(t, tenantEnv(tc.env))
		if len(problems) != 1 || !strings.Contains(problems[0], tc.want) {
			t.Errorf("%s: want one problem saying %q, got %q", tc.name, tc.want, problems)
		}
	}
	c, err := loadConfig(nil, tenantEnv(map[string]string{"AUTOPILOTDESK_CLIENT_SECRET": "", "AUTOPILOTDESK_CLIENT_SECRET_FILE": full}), &bytes.Buffer{})
	if err != nil || c.ClientSecret != "from-the-file" {
		t.Errorf("secret from its file: %q, %v", c.ClientSecret, err)
	}
}

// A client secret Entra refuses when the desk redeems the code (wrong, or expired) is explained as
// the desk's own credentials, not as an unverifiable sign-in, and logged as one ERROR line naming
// the setting to fix.
func TestRefusedClientSecretNamesTheSettingToFix(t *testing.T) {
	for _, tc := range []struct {
		name, aadsts, fix string
		idp               func(*demoidp.Options)
		env               map[string]string
	}{
		{"wrong", "AADSTS7000215", "the client secret is wrong", nil, map[string]string{"AUTOPILOTDESK_CLIENT_SECRET": "not-the-secret"}},
		{"expired", "AADSTS7000222", "the client secret has expired", func(o *demoidp.Options) { o.SecretExpired = true }, nil},
	} {
		d := startDeskWithProvider(t, tc.idp, tc.env, appOptions{})
		resp := d.signIn(d.browser(), demoidp.AdminKey, "/")
		page := strings.Join(strings.Fields(text(parse(t, resp))), " ")
		if !strings.Contains(page, "The desk's client secret is wrong or expired") || !strings.Contains(page, tc.aadsts) ||
			!strings.Contains(page, "update AUTOPILOTDESK_CLIENT_SECRET") || strings.Contains(page, "could not be verified") {
			t.Errorf("%s secret: %d %.500s", tc.name, resp.StatusCode, page)
		}
		errs := d.errorLines()
		if len(errs) != 1 || !strings.Contains(errs[0], tc.fix) || !strings.Contains(errs[0], "AUTOPILOTDESK_CLIENT_SECRET (or the file AUTOPILOTDESK_CLIENT_SECRET_FILE names)") ||
			!strings.Contains(errs[0], tc.aadsts) {
			t.Errorf("%s secret: want one ERROR line naming the setting, got:\n%s", tc.name, strings.Join(errs, "\n"))
		}
		if n := strings.Count(d.log.String(), `"msg":"sign-in failed"`); n != 0 {
			t.Errorf("%s secret: also %d INFO lines for the same refusal", tc.name, n)
		}
		if strings.Contains(d.log.String(), "not-the-secret") {
			t.Errorf("%s secret: the secret reached the log", tc.name)
		}
	}
}

// A desk opened at another address than its public URL (here the public URL names the host
// example.com, and the browser types 127.0.0.1): a sign-in is sent to the same path at the public
// URL first, and finishes there; only the origin changes.
func TestSignInAtAnotherAddressIsSentToThePublicURL(t *testing.T) {
	var public string
	d := startDeskFor(t, func(listening string) map[string]string {
		u, _ := url.Parse(listening)
		public = "https://example.com:" + u.Port()
		return map[string]string{"AUTOPILOTDESK_PUBLIC_URL": public}
	}, appOptions{})
	// The browser reaches example.com at the desk's loopback address, as a name in DNS would.
	transport := d.srv.Client().Transport.(*http.Transport).Clone()
	transport.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if strings.HasPrefix(addr, "example.com:") {
			addr = d.srv.Listener.Addr().String()
		}
		return (&net.Dialer{}).DialContext(ctx, network, addr)
	}
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Transport: transport, Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for path, want := range map[string]string{
		"/auth/login?return_to=%2Fuploads%2Fnew":                      public + "/auth/login?return_to=%2Fuploads%2Fnew",
		"/auth/signin?return_to=%2Factivity":                          public + "/auth/signin?return_to=%2Factivity",
		"/auth/login?return_to=https%3A%2F%2Fevil.example%2F&fresh=1": public + "/auth/login?return_to=https%3A%2F%2Fevil.example%2F&fresh=1",
	} {
		resp, err := b.Get(d.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want || len(resp.Cookies()) > 0 {
			t.Errorf("%s at %s: %d to %q (cookies %v), want 303 to %s", path, d.srv.URL, resp.StatusCode, resp.Header.Get("Location"), resp.Cookies(), want)
		}
	}
	// Followed, the sign-in ends signed in at the public URL.
	b.CheckRedirect = func(req *http.Request, _ []*http.Request) error {
		testkit.PickIdentity(req, demoidp.AdminKey)
		return nil
	}
	resp, err := b.Get(d.srv.URL + "/auth/login?return_to=%2Factivity")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.String() != public+"/activity" {
		t.Errorf("sign-in begun at %s ended %d at %s", d.srv.URL, resp.StatusCode, resp.Request.URL)
	}
	if strings.Contains(d.log.String(), `"level":"WARN"`) {
		t.Errorf("warnings logged:\n%s", d.log.String())
	}
}

// A reverse proxy that rewrites the Host header makes every request look as if it came to
// another address: the second time the same browser asks at that address, the desk stops
// sending it on (no redirect loop), serves the sign-in, and says once what to fix.
func TestRewrittenHostDoesNotLoop(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_PUBLIC_URL": "https://desk.example.com"}, appOptions{})
	b := d.browser()
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for i, want := range []string{"https://desk.example.com/auth/login?return_to=%2F", "/authorize", "/authorize"} {
		resp, err := b.Get(d.srv.URL + "/auth/login?return_to=%2F")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if !strings.Contains(resp.Header.Get("Location"), want) {
			t.Errorf("request %d: %d to %q, want %q", i+1, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
	if n := strings.Count(d.log.String(), `"level":"WARN","msg":"sign-in requests keep arriving for the host`); n != 1 ||
		!strings.Contains(d.log.String(), "proxy_set_header Host $host") || !strings.Contains(d.log.String(), "AUTOPILOTDESK_PUBLIC_URL") {
		t.Errorf("%d warnings, want one naming the setting:\n%s", n, d.log.String())
	}
}

// A callback that comes back without its flow cookie, for a sign-in the desk did start (it began
// at another address, where the browser keeps the cookie), says where to open the desk and logs a
// warning naming the setting.
func TestCallbackWithoutItsCookieSaysWhereToOpenTheDesk(t *testing.T) {
	d := startDesk(t, nil)
	started, elsewhere := d.browser(), d.browser()
	cb := d.callbackURL(started, "admin")
	resp, doc := d.get(elsewhere, strings.TrimPrefix(cb, d.srv.URL))
	page := strings.Join(strings.Fields(text(doc)), " ")
	public := d.app.cfg.PublicURL.String()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(page, "Open the desk at "+public) ||
		doc.Find(`main a.btn[href="`+public+`/auth/login"]`).Length() != 1 {
		t.Errorf("%d: %.400s", resp.StatusCode, page)
	}
	if n := strings.Count(d.log.String(), `"level":"WARN","msg":"a sign-in came back without its cookie`); n != 1 || !strings.Contains(d.log.String(), "AUTOPILOTDESK_PUBLIC_URL") {
		t.Errorf("%d warnings:\n%s", n, d.log.String())
	}
	// A callback for no sign-in at all still asks to start again.
	resp, doc = d.get(d.browser(), "/auth/callback?state=never-started&code=x")
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(text(doc), "did not start in this browser") {
		t.Errorf("unknown state: %d %s", resp.StatusCode, text(doc))
	}
}

// A misspelt variable is named at start with the setting it most likely meant; a desk left in demo
// mode by a misspelt tenant or client id, with a secret given, says so plainly.
func TestStartWarnsAboutUnknownVariablesAndAnUnintendedDemo(t *testing.T) {
	environ := []string{"PATH=/bin", "AUTOPILOTDESK_TENANTID=11111111-2222-3333-4444-555555555555", "AUTOPILOTDESK_CLIENTID=x",
		"AUTOPILOTDESK_CLIENT_SECRET=s", "AUTOPILOTDESK_PUBLIC_URL=https://desk.example.com", "AUTOPILOTDESK_CLIENT_SECRET_FILE=/run/x",
		"AUTOPILOTDESK_RATELIMIT_SIGNIN=5/1m"}
	getenv := func(k string) string {
		for _, kv := range environ {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v
			}
		}
		return ""
	}
	c, err := loadConfig(nil, func(k string) string {
		if k == "AUTOPILOTDESK_CLIENT_SECRET_FILE" {
			return ""
		}
		return getenv(k)
	}, &bytes.Buffer{})
	if err != nil || !c.Demo {
		t.Fatalf("demo %v, %v", c.Demo, err)
	}
	w := c.startWarning(environ)
	for _, want := range []string{"AUTOPILOTDESK_TENANTID (did you mean AUTOPILOTDESK_TENANT_ID?)", "AUTOPILOTDESK_CLIENTID (did you mean AUTOPILOTDESK_CLIENT_ID?)",
		"AUTOPILOTDESK_RATELIMIT_SIGNIN (did you mean AUTOPILOTDESK_RATE_LIMIT_SIGNIN?)", "runs in DEMO MODE"} {
		if !strings.Contains(w, want) {
			t.Errorf("warning lacks %q: %s", want, w)
		}
	}
	if strings.Contains(w, "AUTOPILOTDESK_CLIENT_SECRET_FILE (") || strings.Contains(w, "AUTOPILOTDESK_CLIENT_SECRET (") || strings.Contains(w, "=s") {
		t.Errorf("warning names a known variable or a value: %s", w)
	}
	if c, _ := loadConfig(nil, testkit.Env(nil), &bytes.Buffer{}); c.startWarning([]string{"AUTOPILOTDESK_ADDR=127.0.0.1:1"}) != "" {
		t.Errorf("a plain demo warns")
	}
	demoAt := testkit.Env(map[string]string{"AUTOPILOTDESK_PUBLIC_URL": "http://localhost:8080"})
	if c, _ := loadConfig(nil, demoAt, &bytes.Buffer{}); c.startWarning([]string{"AUTOPILOTDESK_PUBLIC_URL=http://localhost:8080"}) != "" {
		t.Errorf("a demo shown at another name warns")
	}
	if c, _ := loadConfig(nil, demoAt, &bytes.Buffer{}); !strings.Contains(c.startWarning([]string{"AUTOPILOTDESK_PUBLIC_URL=http://localhost:8080", "AUTOPILOTDESK_CLIENT=x"}), "DEMO MODE") {
		t.Errorf("a public URL beside a misspelt variable does not say demo mode")
	}
	// A secret beside a certificate is said to be ignored, not silently passed over.
	both := tenantEnv(map[string]string{"AUTOPILOTDESK_CLIENT_CERTIFICATE_FILE": "cert.pem", "AUTOPILOTDESK_CLIENT_KEY_FILE": "key.pem"})
	if c, err := loadConfig(nil, both, &bytes.Buffer{}); err != nil || !strings.Contains(c.startWarning(nil),
		"AUTOPILOTDESK_CLIENT_SECRET is set, but ignored: the desk signs in with the certificate (AUTOPILOTDESK_CLIENT_CERTIFICATE_FILE)") {
		t.Errorf("a secret beside a certificate: %v, warning %q", err, c.startWarning(nil))
	}
	if c, _ := loadConfig(nil, tenantEnv(nil), &bytes.Buffer{}); c.startWarning(nil) != "" {
		t.Errorf("a secret alone warns: %s", c.startWarning(nil))
	}
	// The warning is one line of the start-up log.
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	t.Setenv("AUTOPILOTDESK_TENANTID", "x")
	run(ctx, []string{"--addr", "127.0.0.1:0", "--log-format", "json"}, testkit.Env(map[string]string{"AUTOPILOTDESK_DATA_DIR": t.TempDir()}), io.Discard, &stderr)
	if n := strings.Count(stderr.String(), `"level":"WARN"`); n != 1 || !strings.Contains(stderr.String(), "AUTOPILOTDESK_TENANTID (did you mean AUTOPILOTDESK_TENANT_ID?)") {
		t.Errorf("%d WARN lines:\n%s", n, stderr.String())
	}
}

// A malformed PostgreSQL URL is refused at once, saying what is wrong and never its password,
// instead of being retried for the whole start-up wait and reported as a database that did not
// answer.
func TestMalformedDatabaseURLIsRefusedAtOnce(t *testing.T) {
	for raw, want := range map[string]string{
		"postgres://desk:hunter2%zz@db.example.com/desk":                  "invalid percent-encoded token in password): a special character",
		"postgres://desk:hunter2@db.example.com:99999/desk":               "invalid port",
		"postgres://desk:hunter2@db.example.com/desk?sslmode=bogus":       "sslmode is invalid",
		"postgres://desk:hunter2@db.example.com/desk?connect_timeout=abc": "connect_timeout",
	} {
		problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_DATABASE_URL": raw}))
		if len(problems) != 1 || !strings.HasPrefix(problems[0], "AUTOPILOTDESK_DATABASE_URL: is not a PostgreSQL URL the desk can use") ||
			!strings.Contains(problems[0], want) || strings.Contains(problems[0], "hunter2") {
			t.Errorf("%s: %q", raw, problems)
		}
	}
	if problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_DATABASE_URL": "postgres://desk:p%40ss@db.example.com:5432/desk?sslmode=verify-full&connect_timeout=5"})); len(problems) > 0 {
		t.Errorf("a good URL refused: %q", problems)
	}
}

// A password (or user name) with an @ that is not percent-encoded would make the rest of it the
// host name: the desk refuses it at once, before trying to connect, saying to write %40, and
// never prints the password, instead of waiting out its start-up wait for a host that does not
// exist.
func TestDatabaseURLWithAnUnencodedAtIsRefusedBeforeConnecting(t *testing.T) {
	for _, raw := range []string{
		"postgres://desk:p@ss@db.example:5432/desk",
		"postgresql://desk:s3cr@t@db.example/desk?sslmode=require",
		"postgres://desk@server:s3cr@t@db.example/desk",
	} {
		problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_DATABASE_URL": raw}))
		if len(problems) != 1 || !strings.HasPrefix(problems[0], "AUTOPILOTDESK_DATABASE_URL: is not a PostgreSQL URL the desk can use") ||
			!strings.Contains(problems[0], "more than one @ before the host name") || !strings.Contains(problems[0], "percent-encoded, as %40") ||
			strings.Contains(problems[0], "ss@db") || strings.Contains(problems[0], "s3cr") {
			t.Errorf("%s: %q", raw, problems)
		}
	}
	// An @ after the host, in the database name or the settings, is not the password's.
	for _, raw := range []string{
		"postgres://desk:p%40ss@db.example:5432/desk?application_name=desk@eu",
		"postgres://db.example/desk?user=desk&password=p@ss",
	} {
		if problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_DATABASE_URL": raw})); len(problems) > 0 {
			t.Errorf("%s refused: %q", raw, problems)
		}
	}
	// The key/value form is still refused for what it is, not for its password's @.
	problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_DATABASE_URL": "host=db.example user=desk password=p@ss@x dbname=desk"}))
	if len(problems) != 1 || !strings.Contains(problems[0], "must start with postgres:// or postgresql://") || strings.Contains(problems[0], "p@ss") {
		t.Errorf("the key/value form: %q", problems)
	}

	// The whole start stops at once, with a long start-up wait, and prints the password nowhere.
	var out bytes.Buffer
	began := time.Now()
	err := run(context.Background(), []string{"--addr", "127.0.0.1:0"}, testkit.Env(map[string]string{
		"AUTOPILOTDESK_DATABASE_URL":          "postgres://desk:p@ss-4711@db.example:5432/desk",
		"AUTOPILOTDESK_DATABASE_STARTUP_WAIT": "2m",
	}), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "AUTOPILOTDESK_DATABASE_URL") || !strings.Contains(err.Error(), "%40") ||
		strings.Contains(err.Error()+out.String(), "4711") || time.Since(began) > 10*time.Second {
		t.Errorf("start after %v: %v\n%s", time.Since(began), err, out.String())
	}
}

// The admin address must be a port of its own: the desk's own address is refused by the
// configuration check, and one in use stops the start naming its setting, before the desk says
// it is running.
func TestAdminAddressOfItsOwn(t *testing.T) {
	for _, tc := range [][2]string{{"127.0.0.1:8080", "127.0.0.1:8080"}, {"0.0.0.0:8080", "127.0.0.1:8080"}, {":8080", "localhost:8080"}} {
		_, err := loadConfig([]string{"--addr", tc[0], "--admin-addr", tc[1]}, testkit.Env(nil), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), "AUTOPILOTDESK_ADMIN_ADDR: ") || !strings.Contains(err.Error(), "where the desk itself listens") {
			t.Errorf("--addr %s --admin-addr %s: %v", tc[0], tc[1], err)
		}
	}
	if _, err := loadConfig([]string{"--addr", "127.0.0.1:0", "--admin-addr", "127.0.0.1:0"}, testkit.Env(nil), &bytes.Buffer{}); err != nil {
		t.Errorf("two ports the system chooses: %v", err)
	}
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	var stdout bytes.Buffer
	err = run(context.Background(), []string{"--addr", "127.0.0.1:0", "--admin-addr", taken.Addr().String()},
		testkit.Env(map[string]string{"AUTOPILOTDESK_DATA_DIR": t.TempDir()}), &stdout, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "AUTOPILOTDESK_ADMIN_ADDR: "+taken.Addr().String()+" is already in use") || strings.Contains(stdout.String(), "running") {
		t.Errorf("admin address in use: %v; printed %q", err, stdout.String())
	}
}

// The Graph URL a tool prints with its version (the emulator's among them) is taken as its root;
// any other path is refused naming the setting. The emulator prints the root to give.
func TestGraphURLWithItsVersionIsTakenAsTheRoot(t *testing.T) {
	for raw, root := range map[string]string{"http://127.0.0.1:8081/v1.0": "http://127.0.0.1:8081", "http://127.0.0.1:8081/beta/": "http://127.0.0.1:8081",
		"https://graph.microsoft.com": "https://graph.microsoft.com"} {
		c, err := loadConfig(nil, tenantEnv(map[string]string{"AUTOPILOTDESK_GRAPH_URL": raw}), &bytes.Buffer{})
		if err != nil || c.GraphURL != root {
			t.Errorf("%s: root %q, %v", raw, c.GraphURL, err)
		}
	}
	problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_GRAPH_URL": "http://127.0.0.1:8081/graph"}))
	if len(problems) != 1 || !strings.HasPrefix(problems[0], "AUTOPILOTDESK_GRAPH_URL: ") || !strings.Contains(problems[0], "has a path (/graph)") {
		t.Errorf("a path: %q", problems)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out testkit.Buffer
	done := emulatorCommand(ctx, "127.0.0.1:0", "s", &out)
	waitFor(t, "the emulator to print its addresses", func() bool { return strings.Contains(out.String(), "Client secret:") })
	cancel()
	<-done
	line, _, _ := strings.Cut(out.String(), "\n")
	printed := strings.Fields(strings.TrimPrefix(line, "Graph emulator:"))[0]
	c, err := loadConfig(nil, tenantEnv(map[string]string{"AUTOPILOTDESK_GRAPH_URL": printed}), &bytes.Buffer{})
	if err != nil || c.GraphURL != printed || !strings.Contains(line, "AUTOPILOTDESK_GRAPH_URL") {
		t.Errorf("the emulator printed %q: %v", line, err)
	}
}

// --version prints the version /metrics reports, and the start-up log names it.
func TestVersionIsPrintedAndLogged(t *testing.T) {
	version, goVersion := web.BuildVersion()
	for _, arg := range []string{"--version", "-version", "version"} {
		var out bytes.Buffer
		if err := run(context.Background(), []string{arg}, testkit.Env(nil), &out, io.Discard); err != nil || out.String() != "autopilotdesk "+version+" (built with "+goVersion+")\n" {
			t.Errorf("%s: %q, %v", arg, out.String(), err)
		}
	}
	var stderr bytes.Buffer
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	run(ctx, []string{"--addr", "127.0.0.1:0", "--log-format", "json"}, testkit.Env(map[string]string{"AUTOPILOTDESK_DATA_DIR": t.TempDir()}), io.Discard, &stderr)
	if !strings.Contains(stderr.String(), `"msg":"Autopilot Desk starting","version":"`+version+`","go":"`+goVersion+`"`) {
		t.Errorf("start-up log:\n%s", stderr.String())
	}
}

// The desk serving TLS itself picks up a renewed certificate within seconds, without a restart.
func TestRunServesARenewedCertificate(t *testing.T) {
	t.Parallel() // waits out the desk's few seconds between looks at the files
	cert, key := selfSigned(t)
	addr := testkit.FreeAddr(t)
	ctx, stop := context.WithCancel(context.Background())
	var logs testkit.Buffer
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"--addr", addr}, testkit.Env(map[string]string{
			"AUTOPILOTDESK_DATA_DIR": t.TempDir(), "AUTOPILOTDESK_TLS_CERT_FILE": cert, "AUTOPILOTDESK_TLS_KEY_FILE": key,
			"AUTOPILOTDESK_PUBLIC_URL": "https://" + addr,
		}), io.Discard, &logs)
	}()
	defer func() { stop(); waitStopped(t, done) }()
	servedCert := func() []byte {
		conn, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
		if err != nil {
			return nil
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].Raw
	}
	waitFor(t, "the desk to serve TLS", func() bool { return servedCert() != nil })
	first := servedCert()
	renewedCert, renewedKey := selfSigned(t)
	for _, f := range [][2]string{{renewedKey, key}, {renewedCert, cert}} {
		data, err := os.ReadFile(f[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f[1], data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(certificateCheckEvery + 5*time.Second)
	for bytes.Equal(servedCert(), first) {
		if time.Now().After(deadline) {
			t.Fatalf("the renewed certificate is not served after %s:\n%s", certificateCheckEvery+5*time.Second, logs.String())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// A reverse proxy left out of AUTOPILOTDESK_TRUSTED_PROXIES makes every client behind it one
// address to the rate limits: the desk warns once for that peer, naming it and the setting, and
// the "rate limited" line names the address it limited. A trusted proxy gets no warning.
func TestForwardedHeadersFromAnUntrustedPeerAreWarnedAbout(t *testing.T) {
	statuses := func(d *desk) (last int) {
		b := d.browser()
		b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
		for i := range 5 {
			req, _ := http.NewRequest(http.MethodGet, d.srv.URL+"/auth/login?return_to=%2F", nil)
			req.Header.Set("X-Forwarded-For", "203.0.113."+strconv.Itoa(i+1))
			req.Header.Set("X-Forwarded-Proto", "https")
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			last = resp.StatusCode
		}
		return last
	}
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "3/1m"}, appOptions{})
	if last := statuses(d); last != http.StatusTooManyRequests {
		t.Errorf("the fifth sign-in from one untrusted peer: %d, want 429", last)
	}
	logs := d.log.String()
	if n := strings.Count(logs, `"level":"WARN","msg":"requests from 127.0.0.1 carry X-Forwarded-For or X-Forwarded-Proto`); n != 1 ||
		!strings.Contains(logs, `"peer":"127.0.0.1","setting":"AUTOPILOTDESK_TRUSTED_PROXIES"`) || !strings.Contains(logs, "add it to AUTOPILOTDESK_TRUSTED_PROXIES") {
		t.Errorf("%d warnings, want one naming the peer and the setting:\n%s", n, logs)
	}
	if !strings.Contains(logs, `"msg":"rate limited","action":"sign-in","bucket_kind":"ip","ip":"127.0.0.1"`) {
		t.Errorf("the rate-limited line names no address:\n%s", logs)
	}
	trusted := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "3/1m", "AUTOPILOTDESK_TRUSTED_PROXIES": "127.0.0.1"}, appOptions{})
	if last := statuses(trusted); last == http.StatusTooManyRequests || strings.Contains(trusted.log.String(), `"level":"WARN"`) {
		t.Errorf("behind a trusted proxy: %d, logs:\n%s", last, trusted.log.String())
	}
}

// A data folder the desk cannot use stops the start with what to do, naming the folder and the
// user the desk runs as: permissions (the folder owned by another user), a read-only file system,
// a full disk.
func TestDataFolderProblemsAtStartSayWhatToDo(t *testing.T) {
	dir := t.TempDir()
	lock := filepath.Join(dir, "autopilotdesk.lock")
	me := runningAs()
	for _, tc := range []struct {
		err  error
		says []string
	}{
		{fmt.Errorf("store: data folder lock: %w", &fs.PathError{Op: "open", Path: lock, Err: syscall.EACCES}),
			[]string{"the desk, running as " + me + ", may not write its data folder " + dir, "permission denied", "mkdir -p " + dir + " && chown -R ", "StateDirectory=", "AUTOPILOTDESK_DATA_DIR"}},
		{fmt.Errorf("store: data directory: %w", &fs.PathError{Op: "mkdir", Path: dir, Err: syscall.EACCES}),
			[]string{"may not write its data folder " + dir, "chown -R "}},
		{fmt.Errorf("store: data folder lock: %w", &fs.PathError{Op: "open", Path: lock, Err: syscall.EROFS}),
			[]string{"the data folder " + dir + " is on a read-only file system", "writable", "AUTOPILOTDESK_DATA_DIR"}},
		{errors.New("store: commit migrations: database or disk is full (13)"),
			[]string{"the disk holding the data folder " + dir + " is full", "free space on it", "4.0 MB"}},
	} {
		got := dataDirProblem(tc.err, dir)
		if got == nil {
			t.Errorf("%v: not explained", tc.err)
			continue
		}
		for _, want := range tc.says {
			if !strings.Contains(got.Error(), want) {
				t.Errorf("%v:\n%s\nlacks %q", tc.err, got, want)
			}
		}
	}
	if got := dataDirProblem(errors.New("store: something else"), dir); got != nil {
		t.Errorf("another error explained: %v", got)
	}
}

// A data folder that is a file, or under one, stops the start with the setting to change; a
// PostgreSQL server that refuses the URL's password or does not have its database says which
// part of the URL to correct, and never prints the password.
func TestStateDatabaseSettingMistakesSayWhatToFix(t *testing.T) {
	file := filepath.Join(t.TempDir(), "data")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	start := func(args ...string) string {
		var out bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		err := run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), testkit.Env(nil), &out, &out)
		if err == nil {
			t.Fatalf("%v started", args)
		}
		return err.Error()
	}
	for dir, says := range map[string]string{
		file:                        "the data folder " + file + " is a file, not a folder: set AUTOPILOTDESK_DATA_DIR to a folder",
		filepath.Join(file, "desk"): "because " + file + " is a file, not a folder: set AUTOPILOTDESK_DATA_DIR",
	} {
		if got := start("--data-dir", dir); !strings.Contains(got, says) {
			t.Errorf("data folder %s: %s", dir, got)
		}
	}

	u, err := url.Parse(testkit.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	wrong := *u
	wrong.User = url.UserPassword(u.User.Username(), "not-the-password-4711")
	if got := start("--database-url", wrong.String()); !strings.Contains(got, "PostgreSQL refused the user name or password in AUTOPILOTDESK_DATABASE_URL") ||
		!strings.Contains(got, "percent-encoded") || strings.Contains(got, "4711") {
		t.Errorf("a wrong password: %s", got)
	}
	missing := *u
	missing.Path = "/no_such_database_here"
	if got := start("--database-url", missing.String()); !strings.Contains(got, "the database named in AUTOPILOTDESK_DATABASE_URL does not exist") ||
		!strings.Contains(got, "no_such_database_here") {
		t.Errorf("a database that does not exist: %s", got)
	}
}

// A desk that starts with its disk below the room it keeps free does not invite people to open
// it: the start-up message says the disk is below the desk's floor, and that it serves by itself
// once there is room.
func TestStartOnALowDiskSaysSo(t *testing.T) {
	var free atomic.Uint64
	free.Store(1700 << 10)
	d := startDeskWith(t, nil, appOptions{StateFreeSpace: func(string) (uint64, error) { return free.Load(), nil }})
	msg := startMessage(d.app.cfg, d.app.startProblem())
	if strings.Contains(msg, "in your browser") || !strings.Contains(msg, "1.7 MB free") || !strings.Contains(msg, "below the desk's floor of 4.0 MB") ||
		!strings.Contains(msg, "serves by itself once there is room") {
		t.Errorf("start-up message on a low disk:\n%s", msg)
	}
	free.Store(1 << 30)
	if msg := startMessage(d.app.cfg, d.app.startProblem()); !strings.Contains(msg, "Open "+d.app.cfg.PublicURL.String()+" in your browser") {
		t.Errorf("start-up message with room:\n%s", msg)
	}
}

// An encrypted TLS key stops the start naming the key's setting, not the certificate's.
func TestEncryptedTLSKeyNamesItsSetting(t *testing.T) {
	cert, key := selfSigned(t)
	os.WriteFile(key, []byte("-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n"), 0o600)
	err := run(context.Background(), []string{"--addr", "127.0.0.1:0"}, testkit.Env(map[string]string{"AUTOPILOTDESK_DATA_DIR": t.TempDir(),
		"AUTOPILOTDESK_TLS_CERT_FILE": cert, "AUTOPILOTDESK_TLS_KEY_FILE": key}), io.Discard, io.Discard)
	if err == nil || !strings.HasPrefix(err.Error(), "AUTOPILOTDESK_TLS_KEY_FILE: ") || !strings.Contains(err.Error(), "is encrypted with a passphrase") {
		t.Errorf("err = %v", err)
	}
}

// The start-up log says, in one INFO line, how the desk runs: its mode, where it listens, its
// admin address and its state database (the SQLite file, or PostgreSQL's host and database, never
// a password). A data folder given beside a PostgreSQL URL, which it ignores, is warned about.
func TestStartUpLogSaysHowTheDeskRuns(t *testing.T) {
	startLog := func(args []string, env map[string]string) string {
		var stderr bytes.Buffer
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		run(ctx, append([]string{"--addr", "127.0.0.1:0", "--log-format", "json"}, args...), testkit.Env(env), io.Discard, &stderr)
		return stderr.String()
	}
	dir := t.TempDir()
	out := startLog([]string{"--admin-addr", "127.0.0.1:0"}, map[string]string{"AUTOPILOTDESK_DATA_DIR": dir})
	for _, want := range []string{`"level":"INFO","msg":"Autopilot Desk settings","mode":"demo"`, `"addr":"127.0.0.1:`, `"admin_addr":"127.0.0.1:`,
		`"state_database":"SQLite ` + filepath.Join(dir, "autopilotdesk.db") + `"`, `"public_url":"http://127.0.0.1:`} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up log lacks %s:\n%s", want, out)
		}
	}
	env := map[string]string{"AUTOPILOTDESK_TENANT_ID": "11111111-2222-3333-4444-555555555555", "AUTOPILOTDESK_CLIENT_ID": "x",
		"AUTOPILOTDESK_CLIENT_SECRET": "s", "AUTOPILOTDESK_PUBLIC_URL": "https://desk.example.com",
		"AUTOPILOTDESK_DATABASE_URL": "postgres://desk:hunter2@db.example.com:5433/deskstate?sslmode=require", "AUTOPILOTDESK_DATA_DIR": dir}
	out = startLog(nil, env)
	for _, want := range []string{`"mode":"tenant","tenant_id":"11111111-2222-3333-4444-555555555555"`, `"state_database":"PostgreSQL deskstate on db.example.com:5433 as desk"`} {
		if !strings.Contains(out, want) {
			t.Errorf("start-up log lacks %s:\n%s", want, out)
		}
	}
	// The start's warnings are one line, with variables of the environment that name no setting.
	if warn := logLine(out, `"level":"WARN"`); !strings.Contains(warn, "AUTOPILOTDESK_DATA_DIR is set, but ignored: the state is kept in PostgreSQL (AUTOPILOTDESK_DATABASE_URL)") {
		t.Errorf("no warning about the data folder:\n%s", out)
	}
	if strings.Contains(out, "hunter2") {
		t.Errorf("the password is logged:\n%s", out)
	}
	// Replicas share state only on the same schema: the line names the one the URL sets.
	env["AUTOPILOTDESK_DATABASE_URL"] = "postgres://desk:hunter2@db.example.com:5433/deskstate?sslmode=require&search_path=desk_prod"
	if out := startLog(nil, env); !strings.Contains(out, `"state_database":"PostgreSQL deskstate on db.example.com:5433 as desk, schema desk_prod"`) {
		t.Errorf("start-up log does not name the schema:\n%s", out)
	}
	delete(env, "AUTOPILOTDESK_DATA_DIR")
	if out := startLog(nil, env); strings.Contains(out, "AUTOPILOTDESK_DATA_DIR is set") {
		t.Errorf("warned without a data folder given:\n%s", out)
	}
}

// An identity provider that cannot be reached yet at start (a container up before DNS or its
// proxy) is waited for, within the start-up wait, saying so once; one that never answers stops the
// start naming its address and HTTPS_PROXY; one that answers wrongly stops it at once.
func TestUnreachableProviderAtStartIsWaitedFor(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	idp, err := demoidp.New(demoidp.Options{Issuer: base, ClientID: "desk", ClientSecret: "provider-secret",
		RedirectURIs: []string{"https://desk.example.com/auth/callback"}})
	if err != nil {
		t.Fatal(err)
	}
	var notReady, missing atomic.Int32
	notReady.Store(3)
	mux := demo.Mux(idp, emulator.New(emulator.Options{Verify: demo.Verifier(idp)}))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case missing.Load() > 0:
			http.NotFound(w, r)
		case notReady.Add(-1) >= 0:
			http.Error(w, "upstream not ready", http.StatusServiceUnavailable)
		default:
			mux.ServeHTTP(w, r)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	start := func(issuer, wait string) (*testkit.Buffer, time.Duration, error) {
		cfg, err := loadConfig(nil, testkit.Env(map[string]string{"AUTOPILOTDESK_ISSUER_URL": issuer, "AUTOPILOTDESK_CLIENT_ID": "desk",
			"AUTOPILOTDESK_CLIENT_SECRET": "provider-secret", "AUTOPILOTDESK_GRAPH_URL": base, "AUTOPILOTDESK_PUBLIC_URL": "https://desk.example.com",
			"AUTOPILOTDESK_DATA_DIR": t.TempDir(), "AUTOPILOTDESK_DATABASE_STARTUP_WAIT": wait}), io.Discard)
		if err != nil {
			t.Fatal(err)
		}
		logs, began := &testkit.Buffer{}, time.Now()
		a, err := newApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(logs, nil)), appOptions{})
		if err == nil {
			a.Close()
		}
		return logs, time.Since(began), err
	}
	logs, _, err := start(idp.IssuerURL(), "30s")
	if err != nil || strings.Count(logs.String(), `"msg":"waiting for the identity provider to answer before starting"`) != 1 ||
		!strings.Contains(logs.String(), `"issuer":"`+idp.IssuerURL()+`"`) || !strings.Contains(logs.String(), `"setting":"AUTOPILOTDESK_DATABASE_STARTUP_WAIT"`) {
		t.Errorf("a provider not ready at first: %v\n%s", err, logs.String())
	}
	nobody := "http://" + testkit.FreeAddr(t)
	_, took, err := start(nobody, "1s")
	if err == nil || !strings.Contains(err.Error(), "the identity provider at "+nobody+" did not answer within 1s") || !strings.Contains(err.Error(), "HTTPS_PROXY") ||
		took < 900*time.Millisecond || took > 10*time.Second {
		t.Errorf("a provider never reached, after %s: %v", took, err)
	}
	missing.Store(1)
	_, took, err = start(idp.IssuerURL(), "30s")
	if err == nil || !strings.Contains(err.Error(), idp.IssuerURL()) || took > 5*time.Second {
		t.Errorf("a provider answering 404, after %s: %v", took, err)
	}
}

// logLine is the first line of logs that contains part, "" when none does.
func logLine(logs, part string) string {
	for line := range strings.Lines(logs) {
		if strings.Contains(line, part) {
			return line
		}
	}
	return ""
}
