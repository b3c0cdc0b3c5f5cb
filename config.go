package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web"
	"autopilotdesk/web/identity"
)

// setting is one configuration key: an environment variable, its flag, default and help.
type setting struct {
	env, flag, def, help string
	secret               bool // may come from {env}_FILE, never printed
}

// settings is every key the desk reads, in the order --help lists them.
var settings = []setting{
	{env: "AUTOPILOTDESK_ADDR", flag: "addr", def: "127.0.0.1:8080", help: "address to listen on"},
	{env: "AUTOPILOTDESK_PUBLIC_URL", flag: "public-url", help: "URL browsers use to reach the desk; the redirect URI is {this}/auth/callback (default: http://{addr} in demo mode; required otherwise)"},
	{env: "AUTOPILOTDESK_TENANT_ID", flag: "tenant-id", help: "Microsoft Entra tenant id (GUID); setting it (with a client id) leaves demo mode"},
	{env: "AUTOPILOTDESK_CLIENT_ID", flag: "client-id", help: "application (client) id of the desk's app registration"},
	{env: "AUTOPILOTDESK_CLIENT_SECRET", flag: "client-secret", help: "client secret of the app registration", secret: true},
	{env: "AUTOPILOTDESK_CLIENT_CERTIFICATE_FILE", flag: "client-certificate-file", help: "PEM certificate for private_key_jwt client authentication instead of a secret"},
	{env: "AUTOPILOTDESK_CLIENT_KEY_FILE", flag: "client-key-file", help: "PEM private key that belongs to the client certificate"},
	{env: "AUTOPILOTDESK_CLOUD", flag: "cloud", def: "global", help: "Microsoft cloud: global, usgov, usgovdod or china"},
	{env: "AUTOPILOTDESK_ISSUER_URL", flag: "issuer-url", help: "override the OpenID Connect issuer (any standards-compliant provider)"},
	{env: "AUTOPILOTDESK_GRAPH_URL", flag: "graph-url", help: "override the Microsoft Graph root, e.g. an emulator (default: the cloud's Graph, or the embedded emulator in demo mode)"},
	{env: "AUTOPILOTDESK_SCOPES", flag: "scopes", help: "override the requested scopes, space separated (default: derived from the cloud)"},
	{env: "AUTOPILOTDESK_GRAPH_VERSION", flag: "graph-version", def: "v1.0", help: "Graph API version: v1.0 or beta"},
	{env: "AUTOPILOTDESK_GRAPH_TIMEOUT", flag: "graph-timeout", def: "30s", help: "deadline for one Graph call, retries included"},
	{env: "AUTOPILOTDESK_DATA_DIR", flag: "data-dir", def: "data", help: "folder of the SQLite state database"},
	{env: "AUTOPILOTDESK_DATABASE_URL", flag: "database-url", help: "postgres://... to keep state in PostgreSQL instead of SQLite", secret: true},
	{env: "AUTOPILOTDESK_DATABASE_MAX_CONNS", flag: "database-max-conns", def: "16", help: "PostgreSQL connection pool size of this process"},
	{env: "AUTOPILOTDESK_SHUTDOWN_DELAY", flag: "shutdown-delay", def: "0s", help: "after SIGTERM, keep serving this long with /readyz answering 503, so a load balancer stops sending requests before the listener closes"},
	{env: "AUTOPILOTDESK_DATABASE_STARTUP_WAIT", flag: "database-startup-wait", def: "30s", help: "how long to keep retrying an unreachable PostgreSQL at start before giving up"},
	{env: "AUTOPILOTDESK_SESSION_IDLE_TIMEOUT", flag: "session-idle-timeout", def: "15m", help: "sign out after this long without a request"},
	{env: "AUTOPILOTDESK_SESSION_LIFETIME", flag: "session-lifetime", def: "8h", help: "sign out this long after sign-in, however active"},
	{env: "AUTOPILOTDESK_ACTIVITY_RETENTION", flag: "activity-retention", def: "2160h", help: "how long the activity history is kept (2160h is 90 days)"},
	{env: "AUTOPILOTDESK_IMPORT_MAX_ROWS", flag: "import-max-rows", def: "10000", help: "device rows one CSV file may have; a larger file is refused while it is read"},
	{env: "AUTOPILOTDESK_ALLOWED_GROUPS", flag: "allowed-groups", help: "comma-separated group object ids; when set only their members may use the desk"},
	{env: "AUTOPILOTDESK_TRUSTED_PROXIES", flag: "trusted-proxies", help: "comma-separated IPs or CIDRs of reverse proxies whose X-Forwarded-* headers are believed"},
	{env: "AUTOPILOTDESK_RATE_LIMIT_SIGNIN", flag: "rate-limit-signin", def: "20/1m", help: "sign-in starts and callbacks allowed per client IP and per user in a window (off to disable)"},
	{env: "AUTOPILOTDESK_RATE_LIMIT_CREATE", flag: "rate-limit-create", def: "30/1m", help: "creates allowed per client IP and per user in a window (off to disable)"},
	{env: "AUTOPILOTDESK_TLS_CERT_FILE", flag: "tls-cert-file", help: "serve HTTPS with this PEM certificate"},
	{env: "AUTOPILOTDESK_TLS_KEY_FILE", flag: "tls-key-file", help: "private key of the TLS certificate"},
	{env: "AUTOPILOTDESK_METRICS_TOKEN", flag: "metrics-token", help: "serve Prometheus metrics at /metrics to requests bearing this token", secret: true},
	{env: "AUTOPILOTDESK_ADMIN_ADDR", flag: "admin-addr", help: "serve /metrics, /healthz and /readyz on this separate address, without a token"},
	{env: "AUTOPILOTDESK_LOG_LEVEL", flag: "log-level", def: "info", help: "debug, info, warn or error"},
	{env: "AUTOPILOTDESK_LOG_FORMAT", flag: "log-format", def: "auto", help: "json, text, or auto (text in a terminal, JSON otherwise)"},
}

// config is the desk's configuration, read once at start.
type config struct {
	Addr                string
	PublicURL           *url.URL
	Demo                bool
	TenantID            string
	ClientID            string
	ClientSecret        string
	ClientCertFile      string
	ClientKeyFile       string
	Cloud               identity.Cloud
	IssuerURL           string
	GraphURL            string
	Scopes              []string
	GraphVersion        string
	GraphTimeout        time.Duration
	DataDir             string
	DatabaseURL         string
	IdleTimeout         time.Duration
	SessionLifetime     time.Duration
	ActivityRetention   time.Duration
	DatabaseStartupWait time.Duration
	ShutdownDelay       time.Duration
	DatabaseMaxConns    int
	ImportMaxRows       int
	AllowedGroups       []string
	TrustedProxies      []*net.IPNet
	EmulatorFaults      emulator.Faults // demo mode: AUTOPILOTDESK_EMULATOR_* fault injection
	SignInLimit         web.Limit
	CreateLimit         web.Limit
	TLSCertFile         string
	TLSKeyFile          string
	MetricsToken        string
	AdminAddr           string
	LogLevel            string
	LogFormat           string
}

// errHelp is returned when --help was asked for; the usage has been printed.
var errHelp = errors.New("help requested")

// configError lists every problem found, naming each key.
type configError []string

func (e configError) Error() string {
	return "configuration is not valid:\n  - " + strings.Join(e, "\n  - ")
}

// loadConfig reads flags, then environment variables, then *_FILE secrets, then defaults, and
// validates the whole: every problem is reported together.
func loadConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("autopilotdesk", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { printUsage(out) }
	flagValues := map[string]*string{}
	for _, s := range settings {
		flagValues[s.env] = fs.String(s.flag, "", s.help)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return config{}, errHelp
		}
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	var problems configError
	raw := map[string]string{}
	for _, s := range settings {
		v := *flagValues[s.env]
		if v == "" {
			v = getenv(s.env)
		}
		if v == "" && s.secret {
			if path := getenv(s.env + "_FILE"); path != "" {
				b, err := os.ReadFile(path)
				if err != nil {
					problems = append(problems, fmt.Sprintf("%s_FILE: cannot read %s: %v", s.env, path, err))
				}
				v = strings.TrimSpace(string(b))
			}
		}
		if v == "" {
			v = s.def
		}
		raw[s.env] = strings.TrimSpace(v)
	}
	c := config{
		Addr: raw["AUTOPILOTDESK_ADDR"], TenantID: raw["AUTOPILOTDESK_TENANT_ID"], ClientID: raw["AUTOPILOTDESK_CLIENT_ID"],
		ClientSecret: raw["AUTOPILOTDESK_CLIENT_SECRET"], ClientCertFile: raw["AUTOPILOTDESK_CLIENT_CERTIFICATE_FILE"],
		ClientKeyFile: raw["AUTOPILOTDESK_CLIENT_KEY_FILE"], IssuerURL: strings.TrimSuffix(raw["AUTOPILOTDESK_ISSUER_URL"], "/"),
		GraphURL: strings.TrimSuffix(raw["AUTOPILOTDESK_GRAPH_URL"], "/"), GraphVersion: raw["AUTOPILOTDESK_GRAPH_VERSION"],
		DataDir: raw["AUTOPILOTDESK_DATA_DIR"], DatabaseURL: raw["AUTOPILOTDESK_DATABASE_URL"],
		TLSCertFile: raw["AUTOPILOTDESK_TLS_CERT_FILE"], TLSKeyFile: raw["AUTOPILOTDESK_TLS_KEY_FILE"],
		LogLevel: raw["AUTOPILOTDESK_LOG_LEVEL"], MetricsToken: raw["AUTOPILOTDESK_METRICS_TOKEN"], AdminAddr: raw["AUTOPILOTDESK_ADMIN_ADDR"], LogFormat: raw["AUTOPILOTDESK_LOG_FORMAT"],
	}
	bad := func(key, format string, a ...any) { problems = append(problems, key+": "+fmt.Sprintf(format, a...)) }

	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		bad("AUTOPILOTDESK_ADDR", "%q is not host:port", c.Addr)
	}
	if n, err := strconv.Atoi(raw["AUTOPILOTDESK_DATABASE_MAX_CONNS"]); err != nil || n < 1 || n > 1000 {
		bad("AUTOPILOTDESK_DATABASE_MAX_CONNS", "%q is not a number from 1 to 1000", raw["AUTOPILOTDESK_DATABASE_MAX_CONNS"])
	} else {
		c.DatabaseMaxConns = n
	}
	if n, err := strconv.Atoi(raw["AUTOPILOTDESK_IMPORT_MAX_ROWS"]); err != nil || n < 1 || n > 100000 {
		bad("AUTOPILOTDESK_IMPORT_MAX_ROWS", "%q is not a number from 1 to 100000", raw["AUTOPILOTDESK_IMPORT_MAX_ROWS"])
	} else {
		c.ImportMaxRows = n
	}
	if c.AdminAddr != "" {
		if _, _, err := net.SplitHostPort(c.AdminAddr); err != nil {
			bad("AUTOPILOTDESK_ADMIN_ADDR", "%q is not host:port", c.AdminAddr)
		}
	}
	cloud, err := identity.CloudByName(raw["AUTOPILOTDESK_CLOUD"])
	if err != nil {
		bad("AUTOPILOTDESK_CLOUD", "%q is not one of global, usgov, usgovdod, china", raw["AUTOPILOTDESK_CLOUD"])
	}
	c.Cloud = cloud
	durations := []struct {
		key string
		dst *time.Duration
	}{
		{"AUTOPILOTDESK_GRAPH_TIMEOUT", &c.GraphTimeout},
		{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT", &c.IdleTimeout},
		{"AUTOPILOTDESK_SESSION_LIFETIME", &c.SessionLifetime},
		{"AUTOPILOTDESK_ACTIVITY_RETENTION", &c.ActivityRetention},
		{"AUTOPILOTDESK_DATABASE_STARTUP_WAIT", &c.DatabaseStartupWait},
	}
	if v, err := time.ParseDuration(raw["AUTOPILOTDESK_SHUTDOWN_DELAY"]); err != nil || v < 0 || v > 5*time.Minute {
		bad("AUTOPILOTDESK_SHUTDOWN_DELAY", "%q is not a duration from 0s to 5m, such as 0s or 10s", raw["AUTOPILOTDESK_SHUTDOWN_DELAY"])
	} else {
		c.ShutdownDelay = v
	}
	for _, d := range durations {
		v, err := time.ParseDuration(raw[d.key])
		if err != nil || v <= 0 {
			bad(d.key, "%q is not a positive duration such as 30s, 15m or 8h", raw[d.key])
			continue
		}
		*d.dst = v
	}
	if c.IdleTimeout > 0 && c.SessionLifetime > 0 && c.IdleTimeout > c.SessionLifetime {
		bad("AUTOPILOTDESK_SESSION_IDLE_TIMEOUT", "is longer than AUTOPILOTDESK_SESSION_LIFETIME")
	}
	if c.GraphVersion != "v1.0" && c.GraphVersion != "beta" {
		bad("AUTOPILOTDESK_GRAPH_VERSION", "%q is not v1.0 or beta", c.GraphVersion)
	}
	for _, key := range []string{"AUTOPILOTDESK_ISSUER_URL", "AUTOPILOTDESK_GRAPH_URL"} {
		if v := raw[key]; v != "" {
			if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
				bad(key, "%q is not an absolute http(s) URL", v)
			}
		}
	}
	if v := raw["AUTOPILOTDESK_SCOPES"]; v != "" {
		c.Scopes = strings.Fields(v)
	}
	c.AllowedGroups = splitList(raw["AUTOPILOTDESK_ALLOWED_GROUPS"])
	for _, p := range splitList(raw["AUTOPILOTDESK_TRUSTED_PROXIES"]) {
		n, err := parseIPOrCIDR(p)
		if err != nil {
			bad("AUTOPILOTDESK_TRUSTED_PROXIES", "%q is not an IP address or CIDR range", p)
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, n)
	}
	for _, l := range []struct {
		key string
		dst *web.Limit
	}{{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN", &c.SignInLimit}, {"AUTOPILOTDESK_RATE_LIMIT_CREATE", &c.CreateLimit}} {
		v, err := web.ParseLimit(raw[l.key])
		if err != nil {
			bad(l.key, "%v", err)
		}
		*l.dst = v
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad("AUTOPILOTDESK_TLS_CERT_FILE", "and AUTOPILOTDESK_TLS_KEY_FILE must be set together")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("AUTOPILOTDESK_LOG_LEVEL", "%q is not debug, info, warn or error", c.LogLevel)
	}
	switch c.LogFormat {
	case "json", "text", "auto":
	default:
		bad("AUTOPILOTDESK_LOG_FORMAT", "%q is not json, text or auto", c.LogFormat)
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		bad("AUTOPILOTDESK_DATABASE_URL", "must start with postgres:// or postgresql://")
	}

	// Demo mode: no app registration and no issuer configured.
	c.Demo = c.ClientID == "" && c.IssuerURL == "" && c.TenantID == ""
	if !c.Demo {
		if c.ClientID == "" {
			bad("AUTOPILOTDESK_CLIENT_ID", "is required outside demo mode")
		}
		if c.IssuerURL == "" {
			switch strings.ToLower(c.TenantID) {
			case "":
				bad("AUTOPILOTDESK_TENANT_ID", "is required (or set AUTOPILOTDESK_ISSUER_URL for another provider)")
			case "common", "consumers":
				bad("AUTOPILOTDESK_TENANT_ID", "%q is not allowed: use your tenant id (personal accounts are not supported)", c.TenantID)
			default:
				c.IssuerURL = c.Cloud.Issuer(c.TenantID)
			}
		}
		if c.ClientSecret == "" && c.ClientCertFile == "" {
			bad("AUTOPILOTDESK_CLIENT_SECRET", "is required (or AUTOPILOTDESK_CLIENT_CERTIFICATE_FILE with AUTOPILOTDESK_CLIENT_KEY_FILE)")
		}
		if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
			bad("AUTOPILOTDESK_CLIENT_CERTIFICATE_FILE", "and AUTOPILOTDESK_CLIENT_KEY_FILE must be set together")
		}
		if raw["AUTOPILOTDESK_PUBLIC_URL"] == "" {
			bad("AUTOPILOTDESK_PUBLIC_URL", "is required outside demo mode (the redirect URI is {public URL}/auth/callback)")
		}
		if c.GraphURL == "" {
			c.GraphURL = c.Cloud.GraphRoot
		}
		if len(c.Scopes) == 0 {
			c.Scopes = c.Cloud.DefaultScopes()
			if len(c.AllowedGroups) > 0 {
				c.Scopes = append(c.Scopes, c.Cloud.GroupCheckScope())
			}
		}
	}
	public := raw["AUTOPILOTDESK_PUBLIC_URL"]
	if public == "" {
		public = "http://" + c.Addr
	}
	if u, err := url.Parse(strings.TrimSuffix(public, "/")); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") {
		bad("AUTOPILOTDESK_PUBLIC_URL", "%q is not an absolute http(s) URL without a path", public)
	} else {
		u.Path = ""
		c.PublicURL = u
	}
	faults, err := emulator.FaultsFromEnv(getenv)
	if err != nil {
		problems = append(problems, err.Error())
	}
	c.EmulatorFaults = faults
	if len(problems) > 0 {
		return config{}, problems
	}
	return c, nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func parseIPOrCIDR(s string) (*net.IPNet, error) {
	if strings.Contains(s, "/") {
		_, n, err := net.ParseCIDR(s)
		return n, err
	}
	ip := net.ParseIP(s)
	if ip == nil {
		return nil, fmt.Errorf("not an IP")
	}
	bits := 32
	if ip.To4() == nil {
		bits = 128
	}
	return &net.IPNet{IP: ip, Mask: net.CIDRMask(bits, bits)}, nil
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Autopilot Desk: create Intune Windows Autopilot uploads through Microsoft Graph from a browser.

Usage:
  autopilotdesk [flags]             serve the desk (demo mode when no app registration is configured)
  autopilotdesk emulator [flags]    serve the Graph emulator and the demo identity provider on their own

Every setting is a flag or an environment variable (the flag wins). Secrets marked (secret) may also
be read from a file named by {VARIABLE}_FILE.

`)
	for _, s := range settings {
		def := ""
		if s.def != "" {
			def = fmt.Sprintf(" (default %q)", s.def)
		}
		sec := ""
		if s.secret {
			sec = " (secret)"
		}
		fmt.Fprintf(w, "  --%s, %s%s\n      %s%s\n", s.flag, s.env, sec, s.help, def)
	}
}
