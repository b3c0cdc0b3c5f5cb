package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/web"
	"autopilotdesk/web/identity"
)

// config is the desk's configuration, read once at start.
type config struct {
	Addr                    string
	PublicURL               *url.URL
	publicFromAddr          bool // demo mode: PublicURL is where the desk listens, not a setting
	Demo                    bool
	TenantID                string
	ClientID                string
	ClientSecret            string
	ClientCertFile          string
	ClientKeyFile           string
	Cloud                   identity.Cloud
	IssuerURL               string
	GraphURL                string
	graphURLVersion         string // the version the Graph URL given ended in, which the desk left out
	Scopes                  []string
	GraphVersion            string
	GraphTimeout            time.Duration
	DataDir                 string
	DatabaseURL             string
	IdleTimeout             time.Duration
	SessionLifetime         time.Duration
	ActivityRetention       time.Duration
	DatabaseStartupWait     time.Duration
	ShutdownDelay           time.Duration
	DatabaseMaxConns        int
	AllowedGroups           []string
	TrustedProxies          []*net.IPNet
	EmulatorFaults          emulator.Faults // demo mode and the emulator command: fault injection
	SignInLimit             web.Limit
	CreateLimit             web.Limit
	RegisterLimit           web.Limit // requests from devices per client address and per registration code
	RegisterWrongLimit      web.Limit // wrong registration codes per client address
	RegistrationSelfApprove bool      // a code's creator may approve its devices
	TLSCertFile             string
	TLSKeyFile              string
	MetricsToken            string
	AdminAddr               string
	LogLevel                string
	LogFormat               string
	ImportMaxRows           int             // most rows one device-import file may have
	WriteBudget             int             // changes to registered devices Intune takes from the desk per WriteWindow
	WriteWindow             time.Duration   // the window of that budget
	DemoTime                time.Time       // demo mode: a repeatable demo starting at this time (zero: the real clock)
	given                   map[string]bool // the variables of the settings given (by flag, variable or file), not defaulted
}

// errHelp is returned when --help was asked for; the usage has been printed.
var errHelp = errors.New("help requested")

// configError lists every problem found, naming each variable.
type configError []string

func (e configError) Error() string {
	return "configuration is not valid:\n  - " + strings.Join(e, "\n  - ")
}

// loadConfig reads the desk's settings once (each from its flag, else its environment variable,
// else the file its *_FILE variable names for a secret, else its default) and checks them as a
// whole: every problem is reported together, each naming its variable.
func loadConfig(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("autopilotdesk", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { printUsage(out) }
	var c config
	problems, err := readOptions(fs, slices.Concat(deskOptions, emulatorOptions), args, getenv, &c)
	if err != nil {
		return config{}, err
	}
	if problems = append(problems, c.check(problems)...); len(problems) > 0 {
		return config{}, problems
	}
	return c, nil
}

// readOptions registers opts on fs, parses args and reads every option into c. It returns the
// problems found in the values, or an error when the command line itself is wrong.
func readOptions(fs *flag.FlagSet, opts []*option, args []string, getenv func(string) string, c *config) (configError, error) {
	flags := make([]optionFlag, len(opts))
	for i, o := range opts {
		flags[i].boolean = o.boolean
		fs.Var(&flags[i], o.flag, o.help)
	}
	// The help is printed when asked for; a mistyped flag is one line, not the help after it.
	usage, output := fs.Usage, fs.Output()
	fs.Usage = func() {}
	fs.SetOutput(io.Discard)
	err := fs.Parse(args)
	fs.Usage = usage
	fs.SetOutput(output)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage()
			return nil, errHelp
		}
		return nil, unknownFlag(err, opts)
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q (see --help)", fs.Arg(0))
	}
	var problems configError
	c.given = map[string]bool{}
	for i, o := range opts {
		if strings.TrimSpace(flags[i].value+getenv(o.env)) != "" || o.secret && getenv(o.env+"_FILE") != "" {
			c.given[o.env] = true
		}
		v, err := o.value(flags[i].value, getenv)
		if err == nil && v != "" {
			err = o.set(c, v)
		}
		if err != nil {
			problems = append(problems, o.env+": "+err.Error())
		}
	}
	return problems, nil
}

// unknownFlag explains a flag that names no setting with the one most likely meant; a secret's
// file, which has no flag, is named by its variable.
func unknownFlag(err error, opts []*option) error {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok {
		return fmt.Errorf("%w (see --help)", err)
	}
	name = strings.TrimPrefix(name, "-")
	nearest, best := "", -1
	for _, o := range opts {
		if o.secret && name == o.flag+"-file" {
			return fmt.Errorf("--%s is not a flag: a file holding the secret of --%s is named by the variable %s_FILE (see --help)", name, o.flag, o.env)
		}
		if d := editDistance(name, o.flag); best < 0 || d < best {
			nearest, best = o.flag, d
		}
	}
	if best > max(2, len(name)/3) { // nothing close: a guess would mislead
		return fmt.Errorf("--%s names no setting (see --help)", name)
	}
	return fmt.Errorf("--%s names no setting: did you mean --%s? (see --help)", name, nearest)
}

// value is what the option is set to: its flag, else its variable, else (a secret) the content
// of the file its _FILE variable names, else its default; surrounding white space trimmed.
func (o *option) value(flagValue string, getenv func(string) string) (string, error) {
	v := flagValue
	if v == "" {
		v = getenv(o.env)
	}
	if path := getenv(o.env + "_FILE"); o.secret && path != "" {
		if strings.TrimSpace(v) != "" {
			return "", fmt.Errorf("and %s_FILE are both set: set only one of them (the variable or flag, or the file)", o.env)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("cannot read the file %s_FILE names: %v", o.env, err)
		}
		if v = string(b); strings.TrimSpace(v) == "" {
			return "", fmt.Errorf("the file %s_FILE names (%s) is empty: write the value into it", o.env, path)
		}
	}
	if trimmed := strings.TrimSpace(v); trimmed == "" && v != "" && o.secret {
		// Read as unset, it would quietly turn off what it guards (metrics) or ask for it again.
		return "", errors.New("is set to white space only: write the value, or unset the variable")
	}
	if v = strings.TrimSpace(v); v == "" {
		v = o.def
	}
	return v, nil
}

// optionFlag is an option's flag as given on the command line; a boolean option's flag may be
// given without a value.
type optionFlag struct {
	value   string
	boolean bool
}

func (f *optionFlag) String() string     { return f.value }
func (f *optionFlag) Set(v string) error { f.value = v; return nil }
func (f *optionFlag) IsBoolFlag() bool   { return f.boolean }

// check looks at the settings together: it decides the mode, requires what that mode needs, and
// works out the defaults that follow from other settings. A setting whose value was already
// refused (read) is not said to be missing as well.
func (c *config) check(read configError) configError {
	var problems configError
	bad := func(o *option, format string, a ...any) {
		problems = append(problems, o.env+": "+fmt.Sprintf(format, a...))
	}
	missing := func(o *option, format string, a ...any) {
		if !slices.ContainsFunc(read, func(p string) bool { return strings.HasPrefix(p, o.env+": ") }) {
			bad(o, format, a...)
		}
	}
	if c.IdleTimeout > 0 && c.SessionLifetime > 0 && c.IdleTimeout > c.SessionLifetime {
		bad(&optSessionIdleTimeout, "is longer than %s", optSessionLifetime.env)
	}
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		bad(&optTLSCertFile, "and %s must be set together", optTLSKeyFile.env)
	}
	if c.AdminAddr != "" && sameListener(c.AdminAddr, c.Addr) {
		bad(&optAdminAddr, "%q is where the desk itself listens (%s): give metrics and health an address of their own, such as 127.0.0.1:9090", c.AdminAddr, optAddr.env)
	}
	// Demo mode: no app registration and no issuer configured.
	c.Demo = c.ClientID == "" && c.IssuerURL == "" && c.TenantID == ""
	if c.Demo || c.TenantID != "" {
		// Microsoft Entra names groups by object id; anything else matches no one's groups.
		var notIDs []string
		for _, g := range c.AllowedGroups {
			if !guid.Valid(g) {
				notIDs = append(notIDs, strconv.Quote(g))
			}
		}
		if len(notIDs) > 0 {
			bad(&optAllowedGroups, "%s: not a group object id (a GUID, shown on the group's Overview page in the Microsoft Entra admin center), so no one would be let in", strings.Join(notIDs, ", "))
		}
	}
	if c.Demo {
		if c.PublicURL == nil {
			c.PublicURL, c.publicFromAddr = reachAt(c.Addr, c.TLSCertFile != ""), true
		}
		return problems
	}
	if !c.DemoTime.IsZero() {
		bad(&optDemoTime, "applies only to demo mode (set none of %s, %s and %s)", optClientID.env, optTenantID.env, optIssuerURL.env)
	}
	if c.ClientID == "" {
		missing(&optClientID, "is required outside demo mode")
	}
	if c.IssuerURL == "" {
		if c.TenantID == "" {
			missing(&optTenantID, "is required (or set %s for another provider)", optIssuerURL.env)
		} else {
			c.IssuerURL = c.Cloud.Issuer(c.TenantID)
		}
	}
	if c.ClientSecret == "" && c.ClientCertFile == "" {
		missing(&optClientSecret, "is required (or %s with %s)", optClientCertFile.env, optClientKeyFile.env)
	}
	if (c.ClientCertFile == "") != (c.ClientKeyFile == "") {
		bad(&optClientCertFile, "and %s must be set together", optClientKeyFile.env)
	}
	if c.PublicURL == nil {
		missing(&optPublicURL, "is required outside demo mode (the redirect URI is {public URL}/auth/callback)")
	}
	// Outside demo mode the client secret, codes and tokens travel to these two: in the clear
	// only to this machine.
	if plainHTTPOffThisMachine(c.IssuerURL) {
		bad(&optIssuerURL, "%q is plain http on a host other than this machine: the client secret, sign-in codes and tokens would cross the network unencrypted. Give its https address", redactedURL(c.IssuerURL))
	}
	if plainHTTPOffThisMachine(c.GraphURL) {
		bad(&optGraphURL, "%q is plain http on a host other than this machine: every request would carry a signed-in person's token unencrypted. Give its https address", redactedURL(c.GraphURL))
	}
	c.checkCloudHosts(bad)
	if c.GraphURL == "" {
		c.GraphURL = c.Cloud.GraphRoot
	} else if other, ok := identity.CloudOfGraph(c.GraphURL); ok && other.GraphRoot != c.Cloud.GraphRoot {
		bad(&optGraphURL, "is the Microsoft Graph of the %s cloud, but the desk's tokens are for %s (%s=%s), and Graph refuses another cloud's tokens: "+
			"leave %s empty, or set %s=%s", other.Name, c.Cloud.GraphRoot, optCloud.env, c.Cloud.Name, optGraphURL.env, optCloud.env, other.Name)
	}
	return problems
}

// checkCloudHosts refuses an issuer or a scope that names another Microsoft cloud's hosts than
// the configured cloud's: Entra of one cloud does not know another's tenants, and issues tokens
// only for its own Graph. Other providers' issuers and scopes are theirs to name.
func (c *config) checkCloudHosts(bad func(o *option, format string, args ...any)) {
	if u, err := url.Parse(c.IssuerURL); err == nil && u.Host != "" && !c.Cloud.SignsInAt(u.Hostname()) {
		if of := identity.CloudsOfLoginHost(u.Hostname()); len(of) > 0 {
			names := make([]string, len(of))
			for i, o := range of {
				names[i] = o.Name
			}
			bad(&optIssuerURL, "is the sign-in address of the %s cloud, but %s=%s signs in at %s: leave %s empty (the desk derives it from the cloud and tenant), or set %s=%s",
				strings.Join(names, " or "), optCloud.env, c.Cloud.Name, c.Cloud.LoginHost, optIssuerURL.env, optCloud.env, of[0].Name)
		}
	}
	for _, scope := range c.Scopes {
		if !strings.Contains(scope, "://") {
			continue
		}
		if other, ok := identity.CloudOfGraph(scope); ok && other.GraphRoot != c.Cloud.GraphRoot {
			bad(&optScopes, "%s names the Microsoft Graph of the %s cloud, but the desk's tokens are for %s (%s=%s), and Entra would issue them for the wrong Graph: "+
				"name %s in the scope, or leave %s empty", scope, other.Name, c.Cloud.GraphRoot, optCloud.env, c.Cloud.Name, c.Cloud.GraphRoot, optScopes.env)
		}
	}
}

// signInScopes are the scopes the desk asks for: the configured ones, or the defaults for the
// Graph the tokens are for (the cloud's, or in demo mode the emulator's).
func (c *config) signInScopes(graph identity.Cloud) []string {
	if len(c.Scopes) > 0 {
		return c.Scopes
	}
	scopes := graph.DefaultScopes()
	if len(c.AllowedGroups) > 0 {
		scopes = append(scopes, graph.GroupCheckScope())
	}
	return scopes
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, `Autopilot Desk: create Intune Windows Autopilot uploads through Microsoft Graph from a browser.

Usage:
  autopilotdesk [flags]             serve the desk (demo mode when no app registration is configured)
  autopilotdesk emulator [flags]    serve the Graph emulator and the demo identity provider on their own
                                    (autopilotdesk emulator --help lists its flags)
  autopilotdesk backup FILE         write a consistent copy of the SQLite state database to FILE,
                                    also while the desk runs (--data-dir as the desk's)
  autopilotdesk --version           print the version (as /metrics reports it in autopilotdesk_build_info)

The benchmark and the screenshot generator are developer tools, not part of this program: they are
commands of their own in the source, under devtools/ (see DEVELOPERS.md).

Every setting is a flag or an environment variable (the flag wins). Secrets marked (secret) may also
be read from a file named by {VARIABLE}_FILE. docs/configuration.md explains each setting.

Settings:

`)
	printOptions(w, deskOptions)
	fmt.Fprint(w, "\nFault injection of the Graph emulator (demo mode and autopilotdesk emulator):\n\n")
	printOptions(w, emulatorOptions)
}

// printOptions lists options as --help shows them: flag, variable and default, then the help.
func printOptions(w io.Writer, opts []*option) {
	for _, o := range opts {
		fmt.Fprintf(w, "  --%s, %s", o.flag, o.env)
		switch {
		case o.secret:
			fmt.Fprint(w, " (secret)")
		case o.def != "":
			fmt.Fprintf(w, " (default %q)", o.def)
		case o.shownDef != "":
			fmt.Fprintf(w, " (default: %s)", strings.ReplaceAll(o.shownDef, "`", ""))
		}
		fmt.Fprintln(w)
		line := "     "
		for _, word := range strings.Fields(strings.ReplaceAll(o.help, "`", "")) {
			if len(line)+1+len(word) > 100 {
				fmt.Fprintln(w, line)
				line = "     "
			}
			line += " " + word
		}
		fmt.Fprintln(w, line)
	}
}

// reachAt is where a browser on this machine reaches a desk listening on addr: a wildcard host
// (":8080", "0.0.0.0:8080", "[::]:8080") is the loopback address.
func reachAt(addr string, tls bool) *url.URL {
	u := &url.URL{Scheme: "http", Host: addr}
	if tls {
		u.Scheme = "https"
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return u
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	u.Host = net.JoinHostPort(host, port)
	return u
}

// wildcardAddr says whether addr listens on every address (":8080", "0.0.0.0:8080", "[::]:8080").
func wildcardAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	ip := net.ParseIP(host)
	return err == nil && (host == "" || ip != nil && ip.IsUnspecified())
}

// unknownSettings says which AUTOPILOTDESK_ variables in environ ("NAME=value") name no setting,
// each with the setting it most likely meant.
func unknownSettings(environ []string) []string {
	known := map[string]bool{}
	for _, o := range slices.Concat(deskOptions, emulatorOptions) {
		known[o.env] = true
		if o.secret {
			known[o.env+"_FILE"] = true
		}
	}
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		if !strings.HasPrefix(name, "AUTOPILOTDESK_") || known[name] {
			continue
		}
		nearest, best := "", -1
		for k := range known {
			if d := editDistance(name, k); best < 0 || d < best || d == best && k < nearest {
				nearest, best = k, d
			}
		}
		out = append(out, name+" (did you mean "+nearest+"?)")
	}
	slices.Sort(out)
	return out
}

// startWarning is what the desk warns about at start, in one line: variables that name no
// setting, settings that only apply outside demo mode given to a desk that runs in it, and
// settings another one overrides.
func (c *config) startWarning(environ []string) string {
	var parts []string
	unknown := unknownSettings(environ)
	if len(unknown) > 0 {
		parts = append(parts, "these environment variables name no setting and are ignored: "+strings.Join(unknown, ", "))
	}
	// A public URL alone is how a demo is shown at another name; beside a misspelt variable it
	// more likely meant to leave demo mode.
	if c.Demo && (c.ClientSecret != "" || c.ClientCertFile != "" || !c.publicFromAddr && len(unknown) > 0) {
		parts = append(parts, fmt.Sprintf("a client secret, certificate or public URL is set, but the desk runs in DEMO MODE with demo sign-in, "+
			"because none of %s, %s and %s is set: check their spelling", optTenantID.env, optClientID.env, optIssuerURL.env))
	}
	if !c.Demo && c.ClientSecret != "" && c.ClientCertFile != "" {
		parts = append(parts, fmt.Sprintf("%s is set, but ignored: the desk signs in with the certificate (%s); unset one of them",
			optClientSecret.env, optClientCertFile.env))
	}
	if c.DatabaseURL != "" && c.given[optDataDir.env] {
		parts = append(parts, fmt.Sprintf("%s is set, but ignored: the state is kept in PostgreSQL (%s); unset one of them", optDataDir.env, optDatabaseURL.env))
	}
	return strings.Join(parts, "; ")
}

// startAttrs say how the desk runs, for one line of the start-up log: its mode, where it listens
// (listening: the address it got), and its state database (never a password).
func (c *config) startAttrs(listening, adminListening string) []any {
	attrs := []any{"mode", "demo"}
	switch {
	case c.Demo:
	case c.TenantID != "":
		attrs = []any{"mode", "tenant", "tenant_id", c.TenantID, "cloud", c.Cloud.Name}
	default:
		attrs = []any{"mode", "openid-connect", "issuer", c.IssuerURL}
	}
	attrs = append(attrs, "addr", listening, "public_url", c.PublicURL.String())
	if adminListening != "" {
		attrs = append(attrs, "admin_addr", adminListening)
	}
	if c.TLSCertFile != "" {
		attrs = append(attrs, "tls_cert_file", c.TLSCertFile)
	}
	return append(attrs, "state_database", c.stateDatabase())
}

// stateDatabase names the state database: the SQLite file, or PostgreSQL's database, host,
// user and, when the URL sets one, schema (the URL's password left out).
func (c *config) stateDatabase() string {
	if c.DatabaseURL == "" {
		path := filepath.Join(c.DataDir, "autopilotdesk.db")
		if abs, err := filepath.Abs(path); err == nil {
			path = abs
		}
		return "SQLite " + path
	}
	pg, err := pgx.ParseConfig(c.DatabaseURL)
	if err != nil {
		return "PostgreSQL"
	}
	named := fmt.Sprintf("PostgreSQL %s on %s as %s", pg.Database, net.JoinHostPort(pg.Host, strconv.Itoa(int(pg.Port))), pg.User)
	if schema := pg.RuntimeParams["search_path"]; schema != "" {
		named += ", schema " + schema // desks share state only when they name the same one
	}
	return named
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}

// sameListener says whether two listening addresses would take the same port: the same port
// (not 0, which the system chooses) on the same host, or on every address.
func sameListener(a, b string) bool {
	ha, pa, errA := net.SplitHostPort(a)
	hb, pb, errB := net.SplitHostPort(b)
	if errA != nil || errB != nil || pa != pb || pa == "0" {
		return false
	}
	return strings.EqualFold(ha, hb) || wildcardAddr(a) || wildcardAddr(b)
}
