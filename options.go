package main

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/handlers"
	"autopilotdesk/web"
	"autopilotdesk/web/identity"
)

// option is one setting, written once: its environment variable, its flag, its default, how its
// value is read and checked, and its help. --help, docs/configuration.md (through
// TestConfigurationReference) and the checks at start all come from these rows.
type option struct {
	env, flag string
	def       string // the value when neither the flag nor the variable is set
	shownDef  string // Markdown: what the default is, when it is worked out at start
	secret    bool   // may be read from the file {env}_FILE names; never printed
	boolean   bool   // its flag may be given without a value
	help      string // Markdown; --help prints it without the backquotes
	// set reads a non-empty value into c, or says what is wrong with it (without repeating a secret).
	set func(c *config, v string) error
}

// The desk's settings. Rows that other checks or messages name have names of their own.
var (
	optAddr = option{env: "AUTOPILOTDESK_ADDR", flag: "addr", def: "127.0.0.1:8080",
		help: "Address to listen on.",
		set:  func(c *config, v string) error { c.Addr = v; return hostPort(v) }}
	optPublicURL = option{env: "AUTOPILOTDESK_PUBLIC_URL", flag: "public-url", shownDef: "`http://{addr}` in demo mode (a wildcard host such as `:8080` or `0.0.0.0` is `127.0.0.1`; port `0` is the port the system chose)",
		help: "The URL people use to reach the desk: scheme, host and port only (no path, query or user name), and `https` unless the host is " +
			"this machine (`localhost`, `127.0.0.1`, `[::1]`), as browsers keep the desk's Secure cookies only there. The redirect URI to register is `{public URL}/auth/callback`; " +
			"the post-logout redirect URI is `{public URL}/auth/signed-out` (the scheme's default port, such as `:443`, is left out of both, as browsers leave it out). " +
			"POSTs must come from this origin. Required outside demo mode.",
		set: func(c *config, v string) (err error) { c.PublicURL, err = publicURL(v); return err }}
	optTenantID = option{env: "AUTOPILOTDESK_TENANT_ID", flag: "tenant-id",
		help: "The Microsoft Entra tenant id: the Directory (tenant) ID, a GUID, on the Overview page of Microsoft Entra ID (a domain " +
			"name such as `contoso.onmicrosoft.com` is refused: ID tokens name the tenant by its GUID). Setting it (with a client id) leaves " +
			"demo mode. `common` and `consumers` are refused (the Intune APIs do not support personal accounts), and so is " +
			"`organizations` (it would let any organisation's accounts in).",
		set: func(c *config, v string) error {
			c.TenantID = v
			switch strings.ToLower(v) {
			case "common", "consumers":
				return fmt.Errorf("%q is not allowed: use your tenant id (personal accounts are not supported)", v)
			case "organizations":
				return fmt.Errorf("%q is not allowed: it would let any organisation's accounts sign in; use your tenant id", v)
			}
			id, ok := guid.Normalize(v)
			if !ok {
				return fmt.Errorf("%q is not a tenant id: give the Directory (tenant) ID, a GUID, from the Overview page of Microsoft Entra ID "+
					"(ID tokens name the tenant by it, never by a domain name)", v)
			}
			c.TenantID = id
			return nil
		}}
	optClientID = option{env: "AUTOPILOTDESK_CLIENT_ID", flag: "client-id",
		help: "Application (client) id of the app registration.",
		set:  func(c *config, v string) error { c.ClientID = v; return nil }}
	optClientSecret = option{env: "AUTOPILOTDESK_CLIENT_SECRET", flag: "client-secret", secret: true,
		help: "Client secret of the app registration.",
		set:  func(c *config, v string) error { c.ClientSecret = v; return nil }}
	optClientCertFile = option{env: "AUTOPILOTDESK_CLIENT_CERTIFICATE_FILE", flag: "client-certificate-file",
		help: "PEM certificate uploaded to the app registration; the desk then authenticates with a signed client assertion " +
			"(`private_key_jwt`) instead of a secret (a client secret set beside it is ignored, with a warning at start).",
		set: func(c *config, v string) error { c.ClientCertFile = v; return nil }}
	optClientKeyFile = option{env: "AUTOPILOTDESK_CLIENT_KEY_FILE", flag: "client-key-file",
		help: "PEM private key of that certificate.",
		set:  func(c *config, v string) error { c.ClientKeyFile = v; return nil }}
	optCloud = option{env: "AUTOPILOTDESK_CLOUD", flag: "cloud", def: "global",
		help: "`global` (also GCC), `usgov` (GCC High), `usgovdod` (DoD) or `china` (21Vianet): picks the sign-in host, " +
			"the Graph root and the Graph host inside the permission scope.",
		set: func(c *config, v string) (err error) {
			if c.Cloud, err = identity.CloudByName(v); err != nil {
				return fmt.Errorf("%q is not one of global, usgov, usgovdod, china", v)
			}
			return nil
		}}
	optIssuerURL = option{env: "AUTOPILOTDESK_ISSUER_URL", flag: "issuer-url", shownDef: "from the cloud and tenant",
		help: "Override the OpenID Connect issuer (any standards-compliant provider). Outside demo mode it must be `https` unless " +
			"it is on this machine: the client secret and tokens travel to it. Another Microsoft cloud's sign-in address than " +
			"`AUTOPILOTDESK_CLOUD`'s is refused.",
		set: func(c *config, v string) error { c.IssuerURL = strings.TrimSuffix(v, "/"); return httpURL(v) }}
	optGraphURL = option{env: "AUTOPILOTDESK_GRAPH_URL", flag: "graph-url", shownDef: "from the cloud; the embedded emulator in demo mode",
		help: "Override the Microsoft Graph root (for example an emulator or Microsoft's Dev Proxy); a URL ending in `/v1.0` or `/beta` " +
			"is taken as its root (the version is `AUTOPILOTDESK_GRAPH_VERSION`'s). Another cloud's Graph than " +
			"`AUTOPILOTDESK_CLOUD`'s is refused: it would refuse the desk's tokens. Outside demo mode it must be `https` unless it " +
			"is on this machine: every request carries a signed-in person's token.",
		set: func(c *config, v string) error {
			if err := httpURL(v); err != nil {
				return err
			}
			u, _ := url.Parse(strings.TrimSuffix(v, "/"))
			switch path := u.Path; {
			case path == "/v1.0" || path == "/beta":
				// The address a Graph tool prints (the emulator's among them) ends in a version:
				// the desk takes the root, and picks the version itself.
				c.graphURLVersion, u.Path = path, ""
			case path != "":
				return fmt.Errorf("%q has a path (%s): give Microsoft Graph's root, such as https://graph.microsoft.com (the version is %s's)",
					v, path, optGraphVersion.env)
			}
			c.GraphURL = u.String()
			return nil
		}}
	optScopes = option{env: "AUTOPILOTDESK_SCOPES", flag: "scopes",
		shownDef: "`openid profile offline_access {graph}/DeviceManagementServiceConfig.ReadWrite.All`",
		help:     "Override the requested scopes (space separated). A scope naming another cloud's Microsoft Graph than `AUTOPILOTDESK_CLOUD`'s is refused.",
		set:      func(c *config, v string) error { c.Scopes = strings.Fields(v); return nil }}
	optGraphVersion = option{env: "AUTOPILOTDESK_GRAPH_VERSION", flag: "graph-version", def: "v1.0",
		help: "Graph API version: `v1.0` or `beta`.",
		set:  func(c *config, v string) (err error) { c.GraphVersion, err = oneOf(v, "v1.0", "beta"); return err }}
	optGraphTimeout = option{env: "AUTOPILOTDESK_GRAPH_TIMEOUT", flag: "graph-timeout", def: "30s",
		help: "Deadline of one Graph call, retries included: from `1s` to `10m`.",
		set: func(c *config, v string) (err error) {
			c.GraphTimeout, err = durationIn(v, time.Second, 10*time.Minute)
			return err
		}}
	optDataDir = option{env: "AUTOPILOTDESK_DATA_DIR", flag: "data-dir", def: "data",
		help: "Folder of the SQLite state database (`autopilotdesk.db`). The desk creates it `0700` and the database files `0600` " +
			"(an existing database is made `0600` at start). Keep it on a local disk: if the file is removed or replaced while the desk " +
			"runs, the desk stops serving (503) until it is restarted. Ignored, with a warning at start, when " + optDatabaseURL.env + " is set.",
		set: func(c *config, v string) error { c.DataDir = v; return nil }}
	optDatabaseURL = option{env: "AUTOPILOTDESK_DATABASE_URL", flag: "database-url", secret: true,
		help: "`postgres://…` keeps all state in PostgreSQL instead (for several replicas).",
		set: func(c *config, v string) error {
			c.DatabaseURL = v
			if !strings.HasPrefix(v, "postgres://") && !strings.HasPrefix(v, "postgresql://") {
				return errors.New("must start with postgres:// or postgresql://")
			}
			return postgresURL(v)
		}}
	optDatabaseMaxConns = option{env: "AUTOPILOTDESK_DATABASE_MAX_CONNS", flag: "database-max-conns", def: "16",
		help: "PostgreSQL connection pool size of each process, which never holds more connections (SQLite uses a small fixed pool). " +
			"Keep (replicas + 1) × this, with every other client's connections, within the server's `max_connections` less " +
			"`superuser_reserved_connections` (see docs/deploy.md, Sizing PostgreSQL's connections).",
		set: func(c *config, v string) (err error) { c.DatabaseMaxConns, err = intIn(v, 1, 1000); return err }}
	optShutdownDelay = option{env: "AUTOPILOTDESK_SHUTDOWN_DELAY", flag: "shutdown-delay", def: "0s",
		help: "On SIGTERM or Ctrl-C, `/readyz` answers 503 at once; the desk then keeps serving every request this long before it " +
			"closes its listener and lets requests in flight finish (up to 10 s). Behind a load balancer, set it a little longer than " +
			"the balancer needs to take a failing replica out (probe interval × failure threshold), e.g. `15s`, so no request meets " +
			"a closed port. At most `5m`.",
		set: func(c *config, v string) (err error) {
			c.ShutdownDelay, err = durationIn(v, 0, 5*time.Minute)
			return err
		}}
	optDatabaseStartupWait = option{env: "AUTOPILOTDESK_DATABASE_STARTUP_WAIT", flag: "database-startup-wait", def: "30s",
		help: "At start, keep retrying an unreachable PostgreSQL, and an identity provider that cannot be reached (no DNS answer, no " +
			"connection, a 5xx answer from it or a proxy), with backoff, this long before giving up with a clear error, instead of " +
			"crash-looping. From `1s` to `1h`.",
		set: func(c *config, v string) (err error) {
			c.DatabaseStartupWait, err = durationIn(v, time.Second, time.Hour)
			return err
		}}
	optSessionIdleTimeout = option{env: "AUTOPILOTDESK_SESSION_IDLE_TIMEOUT", flag: "session-idle-timeout", def: "15m",
		help: "A session unused this long ends, counted from its last request: it ends at most a sixteenth of this (and never more " +
			"than 5 s) early, because the last-use time is written when it is that old rather than on every request. From `1m` to `2160h` " +
			"(90 days), and no longer than `" + optSessionLifetime.env + "`.",
		set: func(c *config, v string) (err error) {
			c.IdleTimeout, err = durationIn(v, time.Minute, maxSession)
			return err
		}}
	optSessionLifetime = option{env: "AUTOPILOTDESK_SESSION_LIFETIME", flag: "session-lifetime", def: "8h",
		help: "A session ends this long after sign-in, however active: from `5m` to `2160h` (90 days).",
		set: func(c *config, v string) (err error) {
			c.SessionLifetime, err = durationIn(v, 5*time.Minute, maxSession)
			return err
		}}
	optActivityRetention = option{env: "AUTOPILOTDESK_ACTIVITY_RETENTION", flag: "activity-retention", def: "2160h",
		help: "How long the activity history is kept (2160h is 90 days), from `24h` to `87600h` (10 years); older entries are deleted every few minutes.",
		set: func(c *config, v string) (err error) {
			c.ActivityRetention, err = durationIn(v, 24*time.Hour, 87600*time.Hour)
			return err
		}}
	optImportMaxRows = option{env: "AUTOPILOTDESK_IMPORT_MAX_ROWS", flag: "import-max-rows", def: "10000",
		help: "The most device rows one CSV file may have (1 to 100,000). A larger file is refused while it is read, with a " +
			"message that names the limit and suggests splitting it; nothing of it is stored. " + fmt.Sprintf("A file also has at most %d MB "+
			"(%d MB saved as UTF-16), about 10,000 devices with their hardware hashes, so a limit above 10,000 lets in only files "+
			"whose hashes are shorter.", handlers.MaxCSVBytes>>20, 2*handlers.MaxCSVBytes>>20),
		set: func(c *config, v string) (err error) { c.ImportMaxRows, err = intIn(v, 1, 100000); return err }}
	optGraphWriteBudget = option{env: "AUTOPILOTDESK_GRAPH_WRITE_BUDGET", flag: "graph-write-budget", def: "100/20s",
		help: "Intune's write budget for the desk in each tenant, as changes per window (its documented per-application " +
			"limit is `100/20s`). Changes to registered Autopilot devices — bulk changes and changes of one device — are paced " +
			"to it, counted in the state database so every replica shares it; bulk changes leave a tenth of every window to " +
			"changes of one device, so those are sent at once while a bulk change runs; a `Retry-After` Graph gives holds every desk's " +
			"changes until it has passed. Lower it if other tools write to Intune with the same app registration.",
		set: func(c *config, v string) (err error) { c.WriteBudget, c.WriteWindow, err = writeBudget(v); return err }}
	optAllowedGroups = option{env: "AUTOPILOTDESK_ALLOWED_GROUPS", flag: "allowed-groups",
		help: "Comma-separated group object ids (GUIDs, in any case; with a provider that is not Microsoft Entra, the values its " +
			"`groups` claim lists, exactly). When set, only their members may use the desk (the app registration must emit " +
			"the `groups` claim). The desk then also asks for `User.Read`: for someone in more groups than a token lists (200 in " +
			"Entra), it asks Microsoft Graph which allowed groups they belong to (`POST /me/checkMemberGroups`, transitive) and " +
			"refuses the sign-in with an explanation if Graph cannot answer.",
		set: func(c *config, v string) error {
			c.AllowedGroups = splitList(v)
			if len(c.AllowedGroups) == 0 && strings.TrimSpace(v) != "" {
				// Read as "no restriction", it would let everyone in.
				return fmt.Errorf("%q names no group: give group object ids separated by commas, or leave it unset to let everyone the provider signs in use the desk", v)
			}
			return nil
		}}
	optTrustedProxies = option{env: "AUTOPILOTDESK_TRUSTED_PROXIES", flag: "trusted-proxies",
		help: "Comma-separated IPs or CIDR ranges of reverse proxies. Only requests from these peers have their " +
			"`X-Forwarded-For` and `X-Forwarded-Proto` believed. A range wider than an IPv4 `/8` (or an IPv6 `/32` outside `fc00::/7`), " +
			"such as `0.0.0.0/0`, is refused: every client in it could escape the per-address rate limits. Behind a proxy that is not listed, " +
			"the desk takes the proxy for every client, so all share one rate-limit budget: it warns once for each peer not listed that " +
			"sends those headers, naming it.",
		set: func(c *config, v string) error {
			var bad, wide []string
			for _, p := range splitList(v) {
				n, err := parseIPOrCIDR(p)
				switch {
				case err != nil:
					bad = append(bad, strconv.Quote(p))
				case tooWide(n):
					wide = append(wide, strconv.Quote(p))
				default:
					c.TrustedProxies = append(c.TrustedProxies, n)
				}
			}
			var problems []string
			if len(bad) > 0 {
				problems = append(problems, strings.Join(bad, ", ")+": not an IP address or CIDR range")
			}
			if len(wide) > 0 {
				problems = append(problems, strings.Join(wide, ", ")+" covers far more than reverse proxies: any client in it could claim "+
					"any address in X-Forwarded-For and escape the per-address rate limits. List exactly your proxies' addresses "+
					"(such as 10.0.0.5, or their subnet such as 10.0.0.0/24)")
			}
			if len(problems) > 0 {
				return errors.New(strings.Join(problems, "; "))
			}
			return nil
		}}
	optRateLimitSignIn = option{env: "AUTOPILOTDESK_RATE_LIMIT_SIGNIN", flag: "rate-limit-signin", def: "20/1m",
		help: "Sign-in starts (a form posted after its session ended starts one) and callbacks allowed per client IP and per user in a window; `off` disables (`0` is refused). Counts live in the " +
			"state database, so replicas share them.",
		set: func(c *config, v string) (err error) { c.SignInLimit, err = web.ParseLimit(v); return err }}
	optRateLimitCreate = option{env: "AUTOPILOTDESK_RATE_LIMIT_CREATE", flag: "rate-limit-create", def: "30/1m",
		help: "Creates (uploads, device imports, changes of registered devices and confirmed bulk changes) allowed per client IP and per user in a window; `off` disables.",
		set:  func(c *config, v string) (err error) { c.CreateLimit, err = web.ParseLimit(v); return err }}
	optRateLimitRegister = option{env: "AUTOPILOTDESK_RATE_LIMIT_REGISTER", flag: "rate-limit-register", def: "200/10m",
		help: "Requests from devices to `/register/…` allowed per client address, and apart per registration code, in a window; " +
			"`off` disables. A floor of technicians behind one address shares its budget.",
		set: func(c *config, v string) (err error) { c.RegisterLimit, err = web.ParseLimit(v); return err }}
	optRateLimitRegisterWrong = option{env: "AUTOPILOTDESK_RATE_LIMIT_REGISTER_WRONG", flag: "rate-limit-register-wrong", def: "10/10m",
		help: "Wrong, expired, revoked or used-up registration codes one client address may send in a window; past it, every request " +
			"from that address to `/register/…` is answered 429 with `Retry-After` until the window ends, right codes included, so codes " +
			"cannot be guessed. `off` disables.",
		set: func(c *config, v string) (err error) { c.RegisterWrongLimit, err = web.ParseLimit(v); return err }}
	optRegistrationSelfApprove = option{env: "AUTOPILOTDESK_REGISTRATION_SELF_APPROVE", flag: "registration-self-approve", def: "false", boolean: true,
		help: "Let the person who created a registration code approve the devices sent with it. By default a second person approves, " +
			"so nobody registers devices alone.",
		set: func(c *config, v string) (err error) { c.RegistrationSelfApprove, err = boolean(v); return err }}
	optTLSCertFile = option{env: "AUTOPILOTDESK_TLS_CERT_FILE", flag: "tls-cert-file",
		help: "Serve HTTPS with this PEM certificate (with the key below). A renewed certificate is served within seconds, without a restart. " +
			"The desk warns, at start and when it reads a renewed one, about a certificate that has expired, is not yet valid, or expires within 14 days.",
		set: func(c *config, v string) error { c.TLSCertFile = v; return nil }}
	optTLSKeyFile = option{env: "AUTOPILOTDESK_TLS_KEY_FILE", flag: "tls-key-file",
		help: "Private key of the TLS certificate, unencrypted (a key encrypted with a passphrase is refused: the desk cannot ask for it).",
		set:  func(c *config, v string) error { c.TLSKeyFile = v; return nil }}
	optMetricsToken = option{env: "AUTOPILOTDESK_METRICS_TOKEN", flag: "metrics-token", secret: true,
		help: "Serve Prometheus metrics at `/metrics` on the main address to requests with `Authorization: Bearer {token}`. " +
			"At least 16 characters, such as the output of `openssl rand -hex 16`: wrong tokens are not rate-limited.",
		set: func(c *config, v string) error {
			c.MetricsToken = v
			if len(v) < 16 {
				return fmt.Errorf("is %d characters long: a token that short could be guessed, and wrong tokens are not rate-limited; use at least 16 random characters, such as the output of openssl rand -hex 16", len(v))
			}
			return nil
		}}
	optAdminAddr = option{env: "AUTOPILOTDESK_ADMIN_ADDR", flag: "admin-addr",
		help: "Serve `/metrics`, `/healthz` and `/readyz` on this separate address (e.g. `127.0.0.1:9090`), without a token. " +
			"Without it or a token, metrics are not served.",
		set: func(c *config, v string) error { c.AdminAddr = v; return hostPort(v) }}
	optLogLevel = option{env: "AUTOPILOTDESK_LOG_LEVEL", flag: "log-level", def: "info",
		help: "`debug`, `info`, `warn` or `error`.",
		set: func(c *config, v string) (err error) {
			c.LogLevel, err = oneOf(v, "debug", "info", "warn", "error")
			return err
		}}
	optLogFormat = option{env: "AUTOPILOTDESK_LOG_FORMAT", flag: "log-format", def: "auto",
		help: "`json`, `text`, or `auto` (text in a terminal, JSON otherwise).",
		set:  func(c *config, v string) (err error) { c.LogFormat, err = oneOf(v, "json", "text", "auto"); return err }}
	optDemoTime = option{env: "AUTOPILOTDESK_DEMO_TIME", flag: "demo-time",
		help: "Demo mode only: a repeatable demo, as the documentation's pictures show it. Time starts at this moment (RFC 3339, " +
			"e.g. `2026-03-02T09:30:00Z`) and passes only with Microsoft Graph: a millisecond with each request and a minute " +
			"before each change (a JSON batch that only reads is not one), so an import is final at the first look. " +
			"The emulator hands out numbered ids and the desk numbered client-request-ids, so every run shows the same pages " +
			"(but for the loopback port of the embedded Graph). " +
			"Empty: the real clock and random ids.",
		set: func(c *config, v string) (err error) {
			if c.DemoTime, err = time.Parse(time.RFC3339, v); err != nil {
				return fmt.Errorf("%q is not a time such as 2026-03-02T09:30:00Z", v)
			}
			return nil
		}}
)

// deskOptions are the desk's settings in the order --help and docs/configuration.md list them.
var deskOptions = []*option{
	&optAddr, &optPublicURL, &optTenantID, &optClientID, &optClientSecret, &optClientCertFile, &optClientKeyFile,
	&optCloud, &optIssuerURL, &optGraphURL, &optScopes, &optGraphVersion, &optGraphTimeout,
	&optDataDir, &optDatabaseURL, &optDatabaseMaxConns, &optShutdownDelay, &optDatabaseStartupWait,
	&optSessionIdleTimeout, &optSessionLifetime, &optActivityRetention, &optImportMaxRows, &optGraphWriteBudget,
	&optAllowedGroups, &optTrustedProxies, &optRateLimitSignIn, &optRateLimitCreate, &optRateLimitRegister, &optRateLimitRegisterWrong,
	&optRegistrationSelfApprove,
	&optTLSCertFile, &optTLSKeyFile, &optMetricsToken, &optAdminAddr, &optLogLevel, &optLogFormat, &optDemoTime,
}

// emulatorOptions make the Graph emulator misbehave on purpose, like Microsoft's Dev Proxy: the one
// inside demo mode and the one `autopilotdesk emulator` serves. Later rows win where two set the
// same thing (a throttle's window).
var emulatorOptions = []*option{
	{env: "AUTOPILOTDESK_EMULATOR_ERROR_RATE", flag: "error-rate",
		help: "Share of requests answered with a random Graph error, from 0 to 1.",
		set:  func(c *config, v string) (err error) { c.EmulatorFaults.ErrorRate, err = fraction(v); return err }},
	{env: "AUTOPILOTDESK_EMULATOR_ERROR_STATUSES", flag: "error-statuses", shownDef: "Dev Proxy's: 429, 500, 502, 503, 504; writes add 507",
		help: "Comma-separated statuses the random errors are drawn from.",
		set: func(c *config, v string) (err error) {
			c.EmulatorFaults.ErrorStatuses, err = emulator.ParseStatuses(v)
			return err
		}},
	{env: "AUTOPILOTDESK_EMULATOR_ERROR_METHODS", flag: "error-methods", shownDef: "all",
		help: "Comma-separated methods that get random errors.",
		set: func(c *config, v string) error {
			c.EmulatorFaults.Methods = strings.Split(strings.ToUpper(v), ",")
			return nil
		}},
	{env: "AUTOPILOTDESK_EMULATOR_LATENCY", flag: "latency",
		help: "Added latency, fixed (`20ms`) or a range (`10ms-50ms`).",
		set: func(c *config, v string) (err error) {
			c.EmulatorFaults.LatencyMin, c.EmulatorFaults.LatencyMax, err = emulator.ParseLatency(v)
			return err
		}},
	{env: "AUTOPILOTDESK_EMULATOR_THROTTLE", flag: "throttle",
		help: "Request budget per window for each application in each tenant, as Intune counts it: requests (`1000/20s`) or " +
			"writes and requests (`100/1000/20s`); then 429 with `Retry-After`.",
		set: func(c *config, v string) error {
			writes, requests, window, err := emulator.ParseThrottle(v)
			if writes > 0 {
				c.EmulatorFaults.ThrottleWrites = writes
			}
			c.EmulatorFaults.ThrottleRequests, c.EmulatorFaults.ThrottleWindow = requests, window
			return err
		}},
	{env: "AUTOPILOTDESK_EMULATOR_THROTTLE_WRITES", flag: "throttle-writes",
		help: "Write budget per window, e.g. `100/20s` (Intune's per-application write budget).",
		set: func(c *config, v string) (err error) {
			_, c.EmulatorFaults.ThrottleWrites, c.EmulatorFaults.ThrottleWindow, err = emulator.ParseThrottle(v)
			return err
		}},
	{env: "AUTOPILOTDESK_EMULATOR_PUNISH_EARLY_RETRY", flag: "punish-early-retry", boolean: true,
		help: "A request sent before the last `Retry-After` elapsed gets a longer one.",
		set:  func(c *config, v string) (err error) { c.EmulatorFaults.PunishEarlyRetry, err = boolean(v); return err }},
	{env: "AUTOPILOTDESK_EMULATOR_OMIT_RETRY_AFTER_RATE", flag: "omit-retry-after-rate",
		help: "Share of 429 answers sent without `Retry-After`, as Intune sometimes answers, from 0 to 1.",
		set: func(c *config, v string) (err error) {
			c.EmulatorFaults.Omit429RetryAfter, err = fraction(v)
			return err
		}},
	{env: "AUTOPILOTDESK_EMULATOR_FORBID_WRITES", flag: "forbid-writes", boolean: true,
		help: "Every write gets Intune's nested 403, whatever the token's scopes.",
		set:  func(c *config, v string) (err error) { c.EmulatorFaults.Forbid403Nested, err = boolean(v); return err }},
	{env: "AUTOPILOTDESK_EMULATOR_LOSE_WRITE_ANSWERS", flag: "lose-write-answers", boolean: true,
		help: "Every write is carried out, then answered 504 as if the answer was lost on the way back.",
		set: func(c *config, v string) (err error) {
			c.EmulatorFaults.LoseWriteAnswers, err = boolean(v)
			return err
		}},
	{env: "AUTOPILOTDESK_EMULATOR_SEGMENT_MISSING", flag: "segment-missing", boolean: true,
		help: "The uploads collection answers like today's service: 400 \"Resource not found for the segment\".",
		set: func(c *config, v string) (err error) {
			c.EmulatorFaults.UploadsSegmentMissing, err = boolean(v)
			return err
		}},
	{env: "AUTOPILOTDESK_EMULATOR_NO_INTUNE_LICENCE", flag: "no-intune-licence", boolean: true,
		help: "The tenant has no Intune licence: every Intune request answers 400 \"Request not applicable to target tenant.\".",
		set: func(c *config, v string) (err error) {
			c.EmulatorFaults.NoIntuneLicence, err = boolean(v)
			return err
		}},
}

// writeBudget reads a budget of changes per window, such as 100/20s.
func writeBudget(v string) (int, time.Duration, error) {
	n, w, ok := strings.Cut(v, "/")
	count, err := strconv.Atoi(n)
	window, werr := time.ParseDuration(w)
	if !ok || err != nil || werr != nil || count < 1 || count > 10000 || window < 100*time.Millisecond || window > time.Hour {
		return 0, 0, fmt.Errorf("%q is not a budget such as 100/20s (1 to 10000 changes per 100ms to 1h)", v)
	}
	return count, window, nil
}

func hostPort(v string) error {
	if _, _, err := net.SplitHostPort(v); err != nil {
		return fmt.Errorf("%q is not host:port", v)
	}
	return nil
}

// publicURL reads the URL people reach the desk at: an origin only (scheme, host, port), since
// the redirect URI and the origin POSTs must come from are built from it; and https unless the
// host is this machine, since the desk's cookies are Secure and a browser keeps none over plain
// http elsewhere, so sign-in could never finish.
func publicURL(v string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimSuffix(v, "/"))
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Opaque != "" {
		return nil, fmt.Errorf("%q is not an absolute http(s) URL such as https://desk.contoso.com", redactedURL(v))
	}
	shown := u.Redacted()
	switch {
	case u.User != nil:
		return nil, fmt.Errorf("%q carries a user name or password: give only the address people open, such as %s://%s", shown, u.Scheme, u.Host)
	case u.Path != "" && u.Path != "/":
		return nil, fmt.Errorf("%q has a path (%s): the desk is served at the root of its address, such as %s://%s", shown, u.Path, u.Scheme, u.Host)
	case u.RawQuery != "" || u.ForceQuery:
		return nil, fmt.Errorf("%q has a query (?%s): give only scheme, host and port, such as %s://%s", shown, u.RawQuery, u.Scheme, u.Host)
	case u.Fragment != "" || strings.Contains(v, "#"):
		return nil, fmt.Errorf("%q has a fragment (#…): give only scheme, host and port, such as %s://%s", shown, u.Scheme, u.Host)
	}
	host := u.Hostname()
	if port := u.Port(); port != "" || strings.HasSuffix(u.Host, ":") {
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%q has the port %q: a port is a number from 1 to 65535", shown, port)
		}
	}
	if ip := net.ParseIP(host); strings.ContainsAny(host, "*?") || ip != nil && ip.IsUnspecified() {
		return nil, fmt.Errorf("%q is not one address: give the host name people open (a wildcard or %s cannot be signed in to)", shown, host)
	}
	if u.Scheme == "http" && !loopbackHost(host) {
		return nil, fmt.Errorf("%q is plain http on a host other than this machine: browsers keep the desk's sign-in cookies only over https, "+
			"so sign-in could never finish. Serve https (%s and %s, or a reverse proxy) and give https://%s", shown, optTLSCertFile.env, optTLSKeyFile.env, u.Host)
	}
	u.Path, u.RawPath = "", ""
	if port := u.Port(); u.Scheme == "https" && port == "443" || u.Scheme == "http" && port == "80" {
		// The browser and the identity provider leave the default port out: a redirect URI with
		// it would not match the one registered.
		u.Host = strings.TrimSuffix(u.Host, ":"+port)
	}
	return u, nil
}

// plainHTTPOffThisMachine reports whether v is an http URL whose host is not this machine.
func plainHTTPOffThisMachine(v string) bool {
	u, err := url.Parse(v)
	return err == nil && strings.EqualFold(u.Scheme, "http") && !loopbackHost(u.Hostname())
}

// loopbackHost says whether host is this machine, where browsers take http for a secure origin.
func loopbackHost(host string) bool {
	if ip := net.ParseIP(host); ip != nil {
		return ip.IsLoopback()
	}
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

// redactedURL is v with a password in it masked, for a message.
func redactedURL(v string) string {
	if u, err := url.Parse(v); err == nil {
		return u.Redacted()
	}
	if at := strings.LastIndex(v, "@"); at >= 0 {
		if scheme := strings.Index(v, "://"); scheme >= 0 && scheme < at {
			return v[:scheme+3] + "xxxxx" + v[at:]
		}
	}
	return v
}

// postgresURL reads a PostgreSQL URL as the driver will, so a malformed one is reported at start
// rather than retried for the whole start-up wait. The message never repeats the URL, whose
// password may be anywhere in a string that does not parse.
func postgresURL(v string) error {
	// The driver, like libpq, ends the user name and password at the first @, so a second one
	// before the host would make the rest of the password the host name.
	_, authority, _ := strings.Cut(v, "://")
	if end := strings.IndexAny(authority, "/?#"); end >= 0 {
		authority = authority[:end]
	}
	if strings.Count(authority, "@") > 1 {
		return errors.New("is not a PostgreSQL URL the desk can use: it has more than one @ before the host name; an @ in the " +
			"user name or password must be written percent-encoded, as %40 (likewise : as %3A, / as %2F, ? as %3F, # as %23 and % as %25)")
	}
	_, err := pgx.ParseConfig(v)
	if err == nil {
		return nil
	}
	why := err.Error()
	if i := strings.LastIndex(why, "`: "); i >= 0 {
		why = why[i+3:]
	}
	if strings.Contains(why, "percent") {
		why += ": a special character in the user name or password must be percent-encoded, such as %40 for @ and %25 for %"
	}
	if u, uerr := url.Parse(v); uerr == nil {
		if pw, ok := u.User.Password(); ok && pw != "" {
			why = strings.ReplaceAll(why, pw, "xxxxx")
		}
	}
	return fmt.Errorf("is not a PostgreSQL URL the desk can use: %s", why)
}

func httpURL(v string) error {
	if u, err := url.Parse(v); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an absolute http(s) URL", v)
	}
	return nil
}

// oneOf reads one of choices, in any case, as the choice is spelt.
func oneOf(v string, choices ...string) (string, error) {
	for _, c := range choices {
		if strings.EqualFold(v, c) {
			return c, nil
		}
	}
	last := len(choices) - 1
	return "", fmt.Errorf("%q is not %s or %s", v, strings.Join(choices[:last], ", "), choices[last])
}

func intIn(v string, lo, hi int) (int, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%q is not a number from %d to %d", v, lo, hi)
	}
	return n, nil
}

// maxSession is the longest a session may last, idle or not: 90 days, as long as Microsoft Entra
// keeps an unused refresh token.
const maxSession = 2160 * time.Hour

// durationSyntax is what time.ParseDuration reads; a value of this form it refuses is too long.
var durationSyntax = regexp.MustCompile(`^[-+]?((\d+(\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h))+$`)

// durationIn reads a duration from lo to hi, saying the range when it is outside it.
func durationIn(v string, lo, hi time.Duration) (time.Duration, error) {
	within := fmt.Sprintf("give a duration from %s to %s", shortDuration(lo), shortDuration(hi))
	d, err := time.ParseDuration(v)
	switch {
	case err != nil && durationSyntax.MatchString(v):
		return 0, fmt.Errorf("%q is too long: %s", v, within)
	case err != nil:
		// Go durations have no days or weeks: such a value is answered with its hours.
		if hours, meant, units, ok := web.InHours(v); ok {
			return 0, fmt.Errorf("%q is not a duration the desk reads: durations have no %s; write %s for %s", v, units, hours, meant)
		}
		return 0, fmt.Errorf("%q is not a duration such as 30s, 15m or 8h: %s", v, within)
	case d < lo || d > hi:
		// A number of seconds that would be in range as minutes is most likely them mistyped.
		if n, ok := strings.CutSuffix(v, "s"); ok && !strings.ContainsAny(n, "nuµμmh") {
			if m, err := time.ParseDuration(n + "m"); err == nil && m >= lo && m <= hi {
				return 0, fmt.Errorf("%q is out of range: %s (did you mean %sm?)", v, within, n)
			}
		}
		return 0, fmt.Errorf("%q is out of range: %s", v, within)
	}
	return d, nil
}

// shortDuration is d as people write it: 1m, 2160h, 1m30s (not 1m0s, 2160h0m0s).
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

func fraction(v string) (float64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1 {
		return 0, fmt.Errorf("%q is not a number from 0 to 1", v)
	}
	return f, nil
}

func boolean(v string) (bool, error) {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%q is not true or false", v)
	}
	return b, nil
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

// tooWide says whether a trusted-proxy range is wider than any network of proxies: wider than
// an IPv4 /8 (10.0.0.0/8, the widest private range), or, for IPv6, wider than a /32 outside the
// unique local range fc00::/7. An IPv4-mapped IPv6 range counts as the IPv4 range it maps.
func tooWide(n *net.IPNet) bool {
	ones, bits := n.Mask.Size()
	if n.IP.To4() != nil {
		if bits == 128 {
			ones -= 96
		}
		return ones < 8
	}
	if ones >= 7 && n.IP[0]&0xfe == 0xfc {
		return false
	}
	return ones < 32
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
