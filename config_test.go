package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

func TestConfigDefaultsToDemo(t *testing.T) {
	c, err := loadConfig(nil, testkit.Env(nil), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if !c.Demo || c.Addr != "127.0.0.1:8080" || c.PublicURL.String() != "http://127.0.0.1:8080" {
		t.Errorf("demo defaults wrong: demo=%v addr=%q public=%q", c.Demo, c.Addr, c.PublicURL)
	}
	if c.IdleTimeout != 15*time.Minute || c.SessionLifetime != 8*time.Hour || c.GraphTimeout != 30*time.Second || c.GraphVersion != "v1.0" || c.ImportMaxRows != 10000 {
		t.Errorf("duration/version defaults wrong: %+v", c)
	}
}

// In demo mode the address to open is one a browser on this machine can reach, whatever form
// the listening address takes.
func TestDemoPublicURLIsWhereABrowserReachesTheDesk(t *testing.T) {
	for addr, want := range map[string]string{
		":9090": "http://127.0.0.1:9090", "0.0.0.0:9090": "http://127.0.0.1:9090", "[::]:9090": "http://127.0.0.1:9090",
		"[::1]:9090": "http://[::1]:9090", "localhost:9090": "http://localhost:9090", "127.0.0.1:0": "http://127.0.0.1:0",
	} {
		c, err := loadConfig([]string{"--addr", addr}, testkit.Env(nil), &bytes.Buffer{})
		if err != nil {
			t.Fatal(err)
		}
		if got := c.PublicURL.String(); got != want || !c.publicFromAddr {
			t.Errorf("--addr %s: public URL %s (from the address: %v), want %s", addr, got, c.publicFromAddr, want)
		}
	}
	c, err := loadConfig([]string{"--addr", ":9090"}, testkit.Env(map[string]string{"AUTOPILOTDESK_PUBLIC_URL": "https://desk.lan:9090"}), &bytes.Buffer{})
	if err != nil || c.PublicURL.String() != "https://desk.lan:9090" || c.publicFromAddr {
		t.Errorf("a public URL set is kept: %v %v", c.PublicURL, err)
	}
}

func TestConfigAddrFlagBeatsEnvironment(t *testing.T) {
	c, err := loadConfig([]string{"--addr", "127.0.0.1:9999"}, testkit.Env(map[string]string{"AUTOPILOTDESK_ADDR": "127.0.0.1:7777"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" {
		t.Errorf("addr = %q", c.Addr)
	}
	c, err = loadConfig(nil, testkit.Env(map[string]string{"AUTOPILOTDESK_ADDR": "127.0.0.1:7777"}), &bytes.Buffer{})
	if err != nil || c.Addr != "127.0.0.1:7777" {
		t.Errorf("addr from environment = %q, %v", c.Addr, err)
	}
}

// A Graph root of another Microsoft cloud than the one people sign in to is refused at start:
// every call would fail with 401. Graph of the same cloud, or an emulator, is taken.
func TestGraphOfAnotherCloudIsRefused(t *testing.T) {
	env := func(cloud, graph string) map[string]string {
		return map[string]string{"AUTOPILOTDESK_TENANT_ID": "72f988bf-86f1-41af-91ab-2d7cd011db47", "AUTOPILOTDESK_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
			"AUTOPILOTDESK_CLIENT_SECRET": "s", "AUTOPILOTDESK_PUBLIC_URL": "https://desk.contoso.com", "AUTOPILOTDESK_CLOUD": cloud, "AUTOPILOTDESK_GRAPH_URL": graph}
	}
	for _, tc := range []struct{ cloud, graph, says string }{
		{"usgov", "https://graph.microsoft.com", "AUTOPILOTDESK_GRAPH_URL: is the Microsoft Graph of the global cloud, but the desk's tokens are for https://graph.microsoft.us (AUTOPILOTDESK_CLOUD=usgov)"},
		{"global", "HTTPS://Graph.Microsoft.US/", "set AUTOPILOTDESK_CLOUD=usgov"},
		{"usgov", "https://dod-graph.microsoft.us", "of the usgovdod cloud"},
	} {
		_, err := loadConfig(nil, testkit.Env(env(tc.cloud, tc.graph)), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s with %s: %v, want %q", tc.cloud, tc.graph, err, tc.says)
		}
	}
	for _, ok := range [][2]string{{"usgov", "https://graph.microsoft.us"}, {"china", "https://microsoftgraph.chinacloudapi.cn/"}, {"global", "http://127.0.0.1:8081"}} {
		if _, err := loadConfig(nil, testkit.Env(env(ok[0], ok[1])), &bytes.Buffer{}); err != nil {
			t.Errorf("%s with %s: %v", ok[0], ok[1], err)
		}
	}
}

// An issuer or a scope naming another Microsoft cloud's hosts than the one configured is refused
// at start, as another cloud's Graph is: sign-in or every Graph call would fail. Another
// provider's issuer, and the cloud's own hosts, are taken.
func TestIssuerAndScopesOfAnotherCloudAreRefused(t *testing.T) {
	const tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
	env := func(cloud, issuer, scopes string) map[string]string {
		e := map[string]string{"AUTOPILOTDESK_TENANT_ID": tenant, "AUTOPILOTDESK_CLIENT_ID": "11111111-1111-1111-1111-111111111111",
			"AUTOPILOTDESK_CLIENT_SECRET": "s", "AUTOPILOTDESK_PUBLIC_URL": "https://desk.contoso.com", "AUTOPILOTDESK_CLOUD": cloud}
		if issuer != "" {
			e["AUTOPILOTDESK_ISSUER_URL"] = issuer
		}
		if scopes != "" {
			e["AUTOPILOTDESK_SCOPES"] = scopes
		}
		return e
	}
	for _, tc := range []struct{ cloud, issuer, scopes, says string }{
		{"usgov", "https://login.microsoftonline.com/" + tenant + "/v2.0", "", "AUTOPILOTDESK_ISSUER_URL: is the sign-in address of the global cloud, but AUTOPILOTDESK_CLOUD=usgov signs in at https://login.microsoftonline.us"},
		{"china", "https://login.microsoftonline.us/" + tenant + "/v2.0", "", "of the usgov or usgovdod cloud"},
		{"global", "https://login.partner.microsoftonline.cn/" + tenant + "/v2.0", "", "set AUTOPILOTDESK_CLOUD=china"},
		{"usgov", "", "openid profile offline_access https://graph.microsoft.com/DeviceManagementServiceConfig.ReadWrite.All",
			"AUTOPILOTDESK_SCOPES: https://graph.microsoft.com/DeviceManagementServiceConfig.ReadWrite.All names the Microsoft Graph of the global cloud, but the desk's tokens are for https://graph.microsoft.us (AUTOPILOTDESK_CLOUD=usgov)"},
		{"global", "", "openid offline_access HTTPS://Graph.Microsoft.US/User.Read", "of the usgov cloud"},
	} {
		_, err := loadConfig(nil, testkit.Env(env(tc.cloud, tc.issuer, tc.scopes)), &bytes.Buffer{})
		if err == nil || !strings.Contains(err.Error(), tc.says) {
			t.Errorf("%s with %s %s: %v, want %q", tc.cloud, tc.issuer, tc.scopes, err, tc.says)
		}
	}
	for _, ok := range [][3]string{
		{"usgov", "https://login.microsoftonline.us/" + tenant + "/v2.0", "openid offline_access https://graph.microsoft.us/DeviceManagementServiceConfig.ReadWrite.All"},
		{"usgovdod", "", "openid offline_access https://dod-graph.microsoft.us/DeviceManagementServiceConfig.ReadWrite.All"},
		{"china", "https://login.chinacloudapi.cn/" + tenant + "/v2.0", ""},
		{"global", "https://sts.windows.net/" + tenant + "/", "openid api://11111111-1111-1111-1111-111111111111/access"},
		{"usgov", "https://idp.contoso.com/realms/desk", "openid profile https://idp.contoso.com/scope"},
	} {
		if _, err := loadConfig(nil, testkit.Env(env(ok[0], ok[1], ok[2])), &bytes.Buffer{}); err != nil {
			t.Errorf("%s with %s %s: %v", ok[0], ok[1], ok[2], err)
		}
	}
}

func TestConfigTenantMode(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	c, err := loadConfig(nil, testkit.Env(map[string]string{
		"AUTOPILOTDESK_TENANT_ID":          "72f988bf-86f1-41af-91ab-2d7cd011db47",
		"AUTOPILOTDESK_CLIENT_ID":          "11111111-1111-1111-1111-111111111111",
		"AUTOPILOTDESK_CLIENT_SECRET_FILE": secret,
		"AUTOPILOTDESK_PUBLIC_URL":         "https://desk.example.com/",
		"AUTOPILOTDESK_CLOUD":              "usgov",
	}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Demo || c.ClientSecret != "s3cret" {
		t.Errorf("demo=%v secret read=%v", c.Demo, c.ClientSecret == "s3cret")
	}
	if c.IssuerURL != "https://login.microsoftonline.us/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0" {
		t.Errorf("issuer = %q", c.IssuerURL)
	}
	if scopes := strings.Join(c.signInScopes(c.Cloud), " "); c.GraphURL != "https://graph.microsoft.us" ||
		scopes != "openid profile offline_access https://graph.microsoft.us/DeviceManagementServiceConfig.ReadWrite.All" {
		t.Errorf("graph = %q scopes = %v", c.GraphURL, scopes)
	}
	if c.PublicURL.String() != "https://desk.example.com" {
		t.Errorf("public URL = %q", c.PublicURL)
	}
}

func TestConfigReportsEveryProblemTogether(t *testing.T) {
	_, err := loadConfig(nil, testkit.Env(map[string]string{
		"AUTOPILOTDESK_TENANT_ID":            "common",
		"AUTOPILOTDESK_ADDR":                 "nonsense",
		"AUTOPILOTDESK_CLOUD":                "mars",
		"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT": "soon",
		"AUTOPILOTDESK_GRAPH_VERSION":        "v2",
		"AUTOPILOTDESK_TRUSTED_PROXIES":      "10.0.0.0/8, not-an-ip",
		"AUTOPILOTDESK_DATABASE_URL":         "mysql://x",
		"AUTOPILOTDESK_LOG_LEVEL":            "loud",
		"AUTOPILOTDESK_SHUTDOWN_DELAY":       "-5s",
		"AUTOPILOTDESK_IMPORT_MAX_ROWS":      "0",
	}), &bytes.Buffer{})
	var ce configError
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want configError", err)
	}
	for _, key := range []string{"AUTOPILOTDESK_ADDR", "AUTOPILOTDESK_CLOUD", "AUTOPILOTDESK_SESSION_IDLE_TIMEOUT",
		"AUTOPILOTDESK_GRAPH_VERSION", "AUTOPILOTDESK_TRUSTED_PROXIES", "AUTOPILOTDESK_DATABASE_URL", "AUTOPILOTDESK_LOG_LEVEL",
		"AUTOPILOTDESK_TENANT_ID", "AUTOPILOTDESK_CLIENT_ID", "AUTOPILOTDESK_CLIENT_SECRET", "AUTOPILOTDESK_PUBLIC_URL",
		"AUTOPILOTDESK_SHUTDOWN_DELAY", "AUTOPILOTDESK_IMPORT_MAX_ROWS"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%v", key, err)
		}
	}
}

// A mistyped flag is refused in one line with the flag most likely meant, not above the whole
// help; a secret's file is named by its variable, which is how it is given.
func TestMistypedFlagIsOneLineWithWhatWasMeant(t *testing.T) {
	for args, want := range map[string]string{
		"--adr 127.0.0.1:1":            "--adr names no setting: did you mean --addr? (see --help)",
		"--client-secret-file s.txt":   "--client-secret-file is not a flag: a file holding the secret of --client-secret is named by the variable AUTOPILOTDESK_CLIENT_SECRET_FILE",
		"--nothing-like-any-setting 1": "--nothing-like-any-setting names no setting (see --help)",
	} {
		var out bytes.Buffer
		_, err := loadConfig(strings.Fields(args), testkit.Env(nil), &out)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: %v, want %q", args, err, want)
		}
		if out.Len() != 0 {
			t.Errorf("%s printed %d bytes besides the error: %.200s", args, out.Len(), out.String())
		}
	}
}

func TestConfigHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := loadConfig([]string{"--help"}, testkit.Env(nil), &out)
	if !errors.Is(err, errHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, o := range slices.Concat(deskOptions, emulatorOptions) {
		if !strings.Contains(out.String(), "--"+o.flag+", "+o.env) {
			t.Errorf("--help does not list %s (--%s)", o.env, o.flag)
		}
		if o.def != "" && !strings.Contains(out.String(), `"`+o.def+`"`) {
			t.Errorf("--help does not show the default of %s", o.env)
		}
	}
	for _, want := range []string{"autopilotdesk emulator", "devtools/", "DEVELOPERS.md"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("--help does not mention %s", want)
		}
	}
}

var update = flag.Bool("update", false, "rewrite the generated parts of docs/configuration.md")

// TestConfigurationReference keeps the tables of docs/configuration.md what the option table
// says; go test -run TestConfigurationReference -update . rewrites them.
func TestConfigurationReference(t *testing.T) {
	const path = "docs/configuration.md"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want := string(doc)
	for _, part := range []struct {
		name string
		opts []*option
	}{{"settings", deskOptions}, {"emulator", emulatorOptions}} {
		begin := "<!-- BEGIN " + part.name + ": generated from options.go by go test -run TestConfigurationReference -update . -->\n"
		end := "<!-- END " + part.name + " -->\n"
		i, j := strings.Index(want, begin), strings.Index(want, end)
		if i < 0 || j < i {
			t.Fatalf("%s lacks the lines\n%s...\n%s", path, begin, end)
		}
		want = want[:i+len(begin)] + optionsTable(part.opts) + want[j:]
	}
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range emulatorOptions { // the README's table of the emulator's faults
		if !strings.Contains(string(readme), "`--"+o.flag) || !strings.Contains(string(readme), "`"+o.env+"`") {
			t.Errorf("README.md does not list --%s, %s", o.flag, o.env)
		}
	}
	if want == string(doc) {
		return
	}
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s does not say what options.go says: run go test -run TestConfigurationReference -update . and commit", path)
}

// optionsTable is the Markdown table of opts, as docs/configuration.md shows it.
func optionsTable(opts []*option) string {
	var b strings.Builder
	b.WriteString("| Variable | Flag | Default | Meaning |\n|---|---|---|---|\n")
	for _, o := range opts {
		def := "—"
		switch {
		case o.def != "":
			def = "`" + o.def + "`"
		case o.shownDef != "":
			def = o.shownDef
		}
		help := o.help
		if o.secret {
			help = "*Secret.* " + help
		}
		fmt.Fprintf(&b, "| `%s` | `--%s` | %s | %s |\n", o.env, o.flag, def, help)
	}
	return b.String()
}

// Each AUTOPILOTDESK_ variable is named once outside the tests: a setting in its option's row.
func TestEachVariableIsNamedOnce(t *testing.T) {
	seen := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && path != "." || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				if s, err := strconv.Unquote(lit.Value); err == nil && strings.HasPrefix(s, "AUTOPILOTDESK_") && s != "AUTOPILOTDESK_" {
					seen[s] = append(seen[s], path)
				}
			}
			return true
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range slices.Concat(deskOptions, emulatorOptions) {
		if len(seen[o.env]) != 1 {
			t.Errorf("%s is written %d times: %v", o.env, len(seen[o.env]), seen[o.env])
		}
		delete(seen, o.env)
	}
	for name, files := range seen { // the developer tools' own settings, such as the tests' database
		if len(files) != 1 || !strings.HasPrefix(files[0], "devtools/") {
			t.Errorf("%s is written in %v but is no option", name, files)
		}
	}
}

func TestEmulatorFaultSettings(t *testing.T) {
	c, err := loadConfig(nil, testkit.Env(map[string]string{
		"AUTOPILOTDESK_EMULATOR_ERROR_RATE":            "0.25",
		"AUTOPILOTDESK_EMULATOR_ERROR_STATUSES":        "503, 429",
		"AUTOPILOTDESK_EMULATOR_LATENCY":               "10ms-50ms",
		"AUTOPILOTDESK_EMULATOR_THROTTLE":              "1000/20s",
		"AUTOPILOTDESK_EMULATOR_ERROR_METHODS":         "post,patch",
		"AUTOPILOTDESK_EMULATOR_PUNISH_EARLY_RETRY":    "true",
		"AUTOPILOTDESK_EMULATOR_OMIT_RETRY_AFTER_RATE": "0.5",
		"AUTOPILOTDESK_EMULATOR_SEGMENT_MISSING":       "1",
	}), io.Discard)
	f := c.EmulatorFaults
	if err != nil || f.ErrorRate != 0.25 || fmt.Sprint(f.ErrorStatuses) != "[429 503]" || f.LatencyMin != 10*time.Millisecond ||
		f.LatencyMax != 50*time.Millisecond || f.ThrottleRequests != 1000 || f.ThrottleWindow != 20*time.Second ||
		fmt.Sprint(f.Methods) != "[POST PATCH]" || !f.PunishEarlyRetry || f.Omit429RetryAfter != 0.5 || !f.UploadsSegmentMissing {
		t.Errorf("parsed %+v, %v", f, err)
	}
	c, err = loadConfig(nil, testkit.Env(map[string]string{"AUTOPILOTDESK_EMULATOR_LATENCY": "30ms", "AUTOPILOTDESK_EMULATOR_THROTTLE_WRITES": "100/20s"}), io.Discard)
	if f := c.EmulatorFaults; err != nil || f.LatencyMin != 30*time.Millisecond || f.LatencyMax != 30*time.Millisecond || f.ThrottleWrites != 100 || f.ThrottleWindow != 20*time.Second {
		t.Errorf("single latency / write budget: %+v %v", f, err)
	}
	// Intune's own notation, writes/requests/window, and flags given alone for true.
	c, err = loadConfig([]string{"--throttle", "100/1000/20s", "--forbid-writes", "--segment-missing=false"},
		testkit.Env(map[string]string{"AUTOPILOTDESK_EMULATOR_SEGMENT_MISSING": "true"}), io.Discard)
	if f := c.EmulatorFaults; err != nil || f.ThrottleWrites != 100 || f.ThrottleRequests != 1000 || f.ThrottleWindow != 20*time.Second ||
		!f.Forbid403Nested || f.UploadsSegmentMissing {
		t.Errorf("writes/requests/window: %+v %v", f, err)
	}

	bad := map[string][]string{
		"AUTOPILOTDESK_EMULATOR_ERROR_RATE":            {"x", "-0.1", "1.5"},
		"AUTOPILOTDESK_EMULATOR_ERROR_STATUSES":        {"200", "503,abc", "600"},
		"AUTOPILOTDESK_EMULATOR_LATENCY":               {"fast", "50ms-10ms", "10ms-x"},
		"AUTOPILOTDESK_EMULATOR_THROTTLE":              {"1000", "0/20s", "x/20s", "10/0s", "10/x", "0/0/20s", "1/2/3/4s", "-1/5/20s"},
		"AUTOPILOTDESK_EMULATOR_THROTTLE_WRITES":       {"100"},
		"AUTOPILOTDESK_EMULATOR_PUNISH_EARLY_RETRY":    {"maybe"},
		"AUTOPILOTDESK_EMULATOR_OMIT_RETRY_AFTER_RATE": {"2"},
		"AUTOPILOTDESK_EMULATOR_SEGMENT_MISSING":       {"yes please"},
	}
	for k, vs := range bad {
		for _, v := range vs {
			_, err := loadConfig(nil, testkit.Env(map[string]string{k: v}), io.Discard)
			if err == nil || !strings.Contains(err.Error(), k+": ") {
				t.Errorf("%s=%q: error %v does not name the variable", k, v, err)
			}
		}
	}
}

func TestEmulatorCommandReadsFaultFlags(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"emulator", "--throttle", "lots", "--error-rate", "2"}, testkit.Env(nil), &out, &out)
	if err == nil || !strings.Contains(err.Error(), "AUTOPILOTDESK_EMULATOR_THROTTLE: ") || !strings.Contains(err.Error(), "AUTOPILOTDESK_EMULATOR_ERROR_RATE: ") {
		t.Errorf("err = %v", err)
	}
	out.Reset()
	if err := run(context.Background(), []string{"emulator", "--help"}, testkit.Env(nil), &out, &out); !errors.Is(err, errHelp) {
		t.Fatalf("--help: %v", err)
	}
	for _, want := range []string{"--addr", "--client-secret", "--latency, AUTOPILOTDESK_EMULATOR_LATENCY", "--forbid-writes"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("emulator --help lacks %s:\n%s", want, out.String())
		}
	}
}

func TestDemoTimeAndImportRowsAreChecked(t *testing.T) {
	c, err := loadConfig([]string{"--demo-time", "2026-03-02T09:30:00Z"}, testkit.Env(nil), io.Discard)
	if err != nil || !c.DemoTime.Equal(time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)) || c.ImportMaxRows != 10000 {
		t.Errorf("demo time %v, import rows %d, %v", c.DemoTime, c.ImportMaxRows, err)
	}
	_, err = loadConfig(nil, testkit.Env(map[string]string{
		"AUTOPILOTDESK_DEMO_TIME": "yesterday", "AUTOPILOTDESK_IMPORT_MAX_ROWS": "0",
	}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "AUTOPILOTDESK_DEMO_TIME: ") || !strings.Contains(err.Error(), "AUTOPILOTDESK_IMPORT_MAX_ROWS: ") {
		t.Errorf("err = %v", err)
	}
	_, err = loadConfig(nil, testkit.Env(map[string]string{
		"AUTOPILOTDESK_DEMO_TIME": "2026-03-02T09:30:00Z", "AUTOPILOTDESK_ISSUER_URL": "https://idp.example", "AUTOPILOTDESK_CLIENT_ID": "x",
		"AUTOPILOTDESK_CLIENT_SECRET": "s", "AUTOPILOTDESK_PUBLIC_URL": "https://desk.example",
	}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "AUTOPILOTDESK_DEMO_TIME: applies only to demo mode") {
		t.Errorf("demo time outside demo mode: %v", err)
	}
}

// A secret's value never appears in a configuration error, even when it is wrong.
func TestConfigErrorsKeepSecretsOut(t *testing.T) {
	_, err := loadConfig(nil, testkit.Env(map[string]string{
		"AUTOPILOTDESK_DATABASE_URL": "mysql://user:hunter2@db", "AUTOPILOTDESK_CLIENT_ID": "x",
	}), io.Discard)
	if err == nil || strings.Contains(err.Error(), "hunter2") || !strings.Contains(err.Error(), "AUTOPILOTDESK_DATABASE_URL: ") {
		t.Errorf("err = %v", err)
	}
	_, err = loadConfig(nil, testkit.Env(map[string]string{"AUTOPILOTDESK_CLIENT_SECRET_FILE": filepath.Join(t.TempDir(), "missing")}), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "AUTOPILOTDESK_CLIENT_SECRET: cannot read the file AUTOPILOTDESK_CLIENT_SECRET_FILE names") {
		t.Errorf("unreadable secret file: %v", err)
	}
}

// Outside demo mode the secret, codes and tokens go to the issuer and to Graph: plain http is
// refused for them but on this machine.
func TestPlainHTTPProviderOrGraphElsewhereIsRefused(t *testing.T) {
	env := func(host string) map[string]string {
		return map[string]string{
			"AUTOPILOTDESK_ISSUER_URL":    "http://" + host + "/5b7a/v2.0",
			"AUTOPILOTDESK_GRAPH_URL":     "http://" + host,
			"AUTOPILOTDESK_CLIENT_ID":     "11111111-1111-1111-1111-111111111111",
			"AUTOPILOTDESK_CLIENT_SECRET": "s3cret",
			"AUTOPILOTDESK_PUBLIC_URL":    "https://desk.example.com",
		}
	}
	_, err := loadConfig(nil, testkit.Env(env("192.0.2.2:18123")), io.Discard)
	for _, key := range []string{"AUTOPILOTDESK_ISSUER_URL", "AUTOPILOTDESK_GRAPH_URL"} {
		if err == nil || !strings.Contains(err.Error(), key) || !strings.Contains(err.Error(), "unencrypted") {
			t.Errorf("plain http elsewhere: %s not refused: %v", key, err)
		}
	}
	if strings.Contains(fmt.Sprint(err), "s3cret") {
		t.Errorf("the error shows the secret: %v", err)
	}
	for _, host := range []string{"127.0.0.1:18123", "localhost:18123", "[::1]:18123"} {
		if _, err := loadConfig(nil, testkit.Env(env(host)), io.Discard); err != nil {
			t.Errorf("plain http on this machine (%s) refused: %v", host, err)
		}
	}
}

// A retention in days (Go durations have none) is answered with the hours to write instead.
func TestDurationInDaysSuggestsItsHours(t *testing.T) {
	_, err := loadConfig([]string{"--activity-retention", "90d"}, testkit.Env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "write 2160h for 90 days") {
		t.Errorf("err = %v", err)
	}
	_, err = loadConfig([]string{"--activity-retention", "soon"}, testkit.Env(nil), io.Discard)
	if err == nil || !strings.Contains(err.Error(), "such as 30s, 15m or 8h") || strings.Contains(err.Error(), "days") {
		t.Errorf("err = %v", err)
	}
}

// The tenant id is the GUID ID tokens carry in tid: a domain name, which every sign-in would then
// be refused against, is refused at start saying where the GUID is shown. The multi-tenant names
// keep messages of their own; a GUID in braces or upper case is taken in Graph's form.
func TestTenantIDMustBeTheDirectoryGUID(t *testing.T) {
	for v, want := range map[string]string{
		"contoso.onmicrosoft.com":          `"contoso.onmicrosoft.com" is not a tenant id: give the Directory (tenant) ID, a GUID, from the Overview page of Microsoft Entra ID`,
		"contoso.com":                      "Directory (tenant) ID, a GUID",
		"72f988bf86f141af91ab2d7cd011db47": "Directory (tenant) ID, a GUID",
		"common":                           "personal accounts are not supported",
		"Consumers":                        "personal accounts are not supported",
		"organizations":                    "any organisation's accounts",
	} {
		problems := configProblems(t, tenantEnv(map[string]string{"AUTOPILOTDESK_TENANT_ID": v}))
		if len(problems) != 1 || !strings.HasPrefix(problems[0], "AUTOPILOTDESK_TENANT_ID: ") || !strings.Contains(problems[0], want) {
			t.Errorf("%s: %q, want %q", v, problems, want)
		}
	}
	c, err := loadConfig(nil, tenantEnv(map[string]string{"AUTOPILOTDESK_TENANT_ID": "{72F988BF-86F1-41AF-91AB-2D7CD011DB47}"}), &bytes.Buffer{})
	if err != nil || c.TenantID != "72f988bf-86f1-41af-91ab-2d7cd011db47" || c.IssuerURL != "https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47/v2.0" {
		t.Errorf("a GUID in braces: %q %q, %v", c.TenantID, c.IssuerURL, err)
	}
}

// Each duration setting has a range a working desk needs, refused at start with the range named:
// a Graph deadline of a nanosecond would blame Graph for every page, an idle timeout of 15s is
// most likely 15m mistyped. A value too long for a duration is said to be too long, and one in
// days or weeks (Go durations have neither) is answered with its hours.
func TestDurationsOutOfTheirRangeAreRefused(t *testing.T) {
	for _, tc := range []struct{ env, v, says string }{
		{"AUTOPILOTDESK_GRAPH_TIMEOUT", "1ns", `"1ns" is out of range: give a duration from 1s to 10m`},
		{"AUTOPILOTDESK_GRAPH_TIMEOUT", "1h", "from 1s to 10m"},
		{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT", "15s", `"15s" is out of range: give a duration from 1m to 2160h (did you mean 15m?)`},
		{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT", "1s", "from 1m to 2160h"},
		{"AUTOPILOTDESK_SESSION_LIFETIME", "100000000h", `"100000000h" is too long: give a duration from 5m to 2160h`},
		{"AUTOPILOTDESK_SESSION_LIFETIME", "1w", "durations have no weeks; write 168h for 1 week"},
		{"AUTOPILOTDESK_SESSION_LIFETIME", "0s", "from 5m to 2160h"},
		{"AUTOPILOTDESK_ACTIVITY_RETENTION", "1m", "from 24h to 87600h"},
		{"AUTOPILOTDESK_ACTIVITY_RETENTION", "2w", "write 336h for 2 weeks"},
		{"AUTOPILOTDESK_DATABASE_STARTUP_WAIT", "1ms", "from 1s to 1h"},
		{"AUTOPILOTDESK_SHUTDOWN_DELAY", "10m", "from 0s to 5m"},
		{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN", "20/1d", "durations have no days; write 20/24h for 1 day"},
		{"AUTOPILOTDESK_RATE_LIMIT_REGISTER_WRONG", "10/1w", "write 10/168h for 1 week"},
	} {
		problems := configProblems(t, tenantEnv(map[string]string{tc.env: tc.v}))
		if len(problems) != 1 || !strings.HasPrefix(problems[0], tc.env+": ") || !strings.Contains(problems[0], tc.says) {
			t.Errorf("%s=%s: %q, want %q", tc.env, tc.v, problems, tc.says)
		}
	}
	c, err := loadConfig(nil, tenantEnv(map[string]string{"AUTOPILOTDESK_GRAPH_TIMEOUT": "1s", "AUTOPILOTDESK_SESSION_IDLE_TIMEOUT": "1m",
		"AUTOPILOTDESK_SESSION_LIFETIME": "2160h", "AUTOPILOTDESK_ACTIVITY_RETENTION": "87600h", "AUTOPILOTDESK_SHUTDOWN_DELAY": "0s"}), io.Discard)
	if err != nil || c.GraphTimeout != time.Second || c.IdleTimeout != time.Minute || c.SessionLifetime != 2160*time.Hour {
		t.Errorf("the ends of the ranges: %v", err)
	}
}

// Values chosen from a list are taken in any case, as the cloud's name always was, and kept in the
// desk's own spelling; a limit that may be off says so when refused. A secret set to white space
// only is refused (read as unset, a metrics token would silently turn metrics off).
func TestEnumeratedValuesInAnyCase(t *testing.T) {
	c, err := loadConfig(nil, tenantEnv(map[string]string{"AUTOPILOTDESK_LOG_LEVEL": "DEBUG", "AUTOPILOTDESK_LOG_FORMAT": "JSON",
		"AUTOPILOTDESK_GRAPH_VERSION": "BETA", "AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "OFF", "AUTOPILOTDESK_RATE_LIMIT_REGISTER": "Off",
		"AUTOPILOTDESK_CLOUD": "Global", "AUTOPILOTDESK_REGISTRATION_SELF_APPROVE": "TRUE"}), io.Discard)
	if err != nil || c.LogLevel != "debug" || c.LogFormat != "json" || c.GraphVersion != "beta" || c.SignInLimit.N != 0 || c.RegisterLimit.N != 0 || !c.RegistrationSelfApprove {
		t.Errorf("%+v, %v", c, err)
	}
	for env, says := range map[string]string{
		"AUTOPILOTDESK_RATE_LIMIT_SIGNIN": `"soon" is not a limit such as 20/1m, or off to disable it`,
		"AUTOPILOTDESK_LOG_LEVEL":         `"soon" is not debug, info, warn or error`,
	} {
		problems := configProblems(t, tenantEnv(map[string]string{env: "soon"}))
		if len(problems) != 1 || !strings.Contains(problems[0], says) {
			t.Errorf("%s: %q, want %q", env, problems, says)
		}
	}
	for _, env := range []string{"AUTOPILOTDESK_METRICS_TOKEN", "AUTOPILOTDESK_CLIENT_SECRET"} {
		problems := configProblems(t, tenantEnv(map[string]string{env: " \t "}))
		if len(problems) != 1 || !strings.HasPrefix(problems[0], env+": is set to white space only") {
			t.Errorf("%s of white space: %q", env, problems)
		}
	}
}

// A public URL with its scheme's default port is the same address without it: the redirect URI
// is built without the port, as Entra compares it to the one registered.
func TestPublicURLDropsTheDefaultPort(t *testing.T) {
	for raw, want := range map[string]string{"https://desk.example.com:443": "https://desk.example.com", "https://desk.example.com:443/": "https://desk.example.com",
		"http://localhost:80": "http://localhost", "https://[2001:db8::1]:443": "https://[2001:db8::1]", "https://desk.example.com:8443": "https://desk.example.com:8443",
		"http://127.0.0.1:443": "http://127.0.0.1:443"} {
		c, err := loadConfig(nil, tenantEnv(map[string]string{"AUTOPILOTDESK_PUBLIC_URL": raw}), io.Discard)
		if err != nil || c.PublicURL.String() != want {
			t.Errorf("%s: %v, %v; want %s", raw, c.PublicURL, err, want)
		}
	}
}
