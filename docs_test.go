package main

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/handlers"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// readDoc is a documentation file with its lines joined, so a figure broken over two lines is
// still found.
func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return strings.Join(strings.Fields(string(b)), " ")
}

// The nginx example of docs/deploy.md lets through the largest device file the desk takes (one
// saved as UTF-16 at its limit, and the form around it), so a file too large is answered by the
// desk, which says what the limit is, and never by the proxy's bare 413.
func TestDeployExampleProxyTakesTheLargestDeviceFile(t *testing.T) {
	m := regexp.MustCompile(`client_max_body_size (\d+)m;`).FindStringSubmatch(readDoc(t, "docs/deploy.md"))
	if m == nil {
		t.Fatal("docs/deploy.md has no client_max_body_size")
	}
	if mb, _ := strconv.Atoi(m[1]); int64(mb)<<20 < handlers.MaxUploadBytes {
		t.Errorf("client_max_body_size %sm is less than the %d bytes the desk takes on /devices/import: give at least %dm",
			m[1], handlers.MaxUploadBytes, (handlers.MaxUploadBytes+(1<<20)-1)>>20)
	}
}

// The figures the documentation gives for a device file and the server's time limits are the
// desk's.
func TestDocumentedLimitsAreTheDesks(t *testing.T) {
	importing, deploy, security := readDoc(t, "docs/importing-devices.md"), readDoc(t, "docs/deploy.md"), readDoc(t, "SECURITY.md")
	idle, _ := time.ParseDuration(optSessionIdleTimeout.def)
	lifetime, _ := time.ParseDuration(optSessionLifetime.def)
	seconds := func(d time.Duration) string { return strconv.Itoa(int(d.Seconds())) + " s" }
	for _, c := range []struct{ doc, name, says string }{
		{importing, "docs/importing-devices.md", fmt.Sprintf("up to %d MB — %d MB when saved as UTF-16", handlers.MaxCSVBytes>>20, 2*handlers.MaxCSVBytes>>20)},
		{importing, "docs/importing-devices.md", "up to **" + explain.Number(atoi(t, optImportMaxRows.def)) + " devices** (`" + optImportMaxRows.env + "`)"},
		{deploy, "docs/deploy.md", "headers must arrive within " + seconds(web.ServerTimeouts.ReadHeader) + " and a form within " + seconds(web.ServerTimeouts.Read)},
		{deploy, "docs/deploy.md", fmt.Sprintf("gets %d minutes (%d MB on a slow link", int(web.ServerTimeouts.Upload.Minutes()), 2*handlers.MaxCSVBytes>>20)},
		{deploy, "docs/deploy.md", "then has " + seconds(web.ServerTimeouts.Write) + " to be written"},
		{security, "SECURITY.md", "up to " + explain.Number(store.DefaultSessionCacheSize) + " decoded sessions"},
		{security, "SECURITY.md", fmt.Sprintf("idle (%d min) and absolute (%d h) limits", int(idle.Minutes()), int(lifetime.Hours()))},
	} {
		if !strings.Contains(c.doc, c.says) {
			t.Errorf("%s does not say %q", c.name, c.says)
		}
	}
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The README's "Try it" names the Go that go.mod asks for.
func TestReadmeNamesTheGoOfGoMod(t *testing.T) {
	mod, err := os.ReadFile("go.mod")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^go (\S+)$`).FindSubmatch(mod)
	if m == nil {
		t.Fatal("go.mod names no Go version")
	}
	if want := "With Go " + string(m[1]) + " or later"; !strings.Contains(readDoc(t, "README.md"), want) {
		t.Errorf("README.md does not say %q", want)
	}
}

// docs/configuration.md names every flag of autopilotdesk emulator that is not one of its
// faults (those are in its generated table).
func TestConfigurationNamesTheEmulatorsOwnFlags(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"emulator", "--help"}, testkit.Env(nil), &out, &out); !errors.Is(err, errHelp) {
		t.Fatalf("--help: %v", err)
	}
	doc := readDoc(t, "docs/configuration.md")
	flags := regexp.MustCompile(`(?m)^  (--[a-z-]+)$`).FindAllStringSubmatch(out.String(), -1)
	if len(flags) < 5 {
		t.Fatalf("emulator --help lists %d flags of its own:\n%s", len(flags), out.String())
	}
	for _, f := range flags {
		if !strings.Contains(doc, "`"+f[1]+"`") {
			t.Errorf("docs/configuration.md does not name %s", f[1])
		}
	}
}

// A desk or emulator whose address another program holds says so, and how to give it another,
// rather than only the system's "bind: address already in use".
func TestAddressInUseSaysHowToChooseAnother(t *testing.T) {
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	addr := held.Addr().String()
	for _, args := range [][]string{{"--addr", addr, "--data-dir", t.TempDir()}, {"emulator", "--addr", addr}} {
		var out bytes.Buffer
		err := run(context.Background(), args, testkit.Env(nil), &out, &out)
		if err == nil || !strings.Contains(err.Error(), addr+" is already in use by another program") || !strings.Contains(err.Error(), "--addr") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// autopilotdesk backup --help gives the data folder's default once: the desk's own setting when
// it is set, else the desk's default.
func TestBackupHelpGivesTheDataFolderOnce(t *testing.T) {
	for env, want := range map[string]string{"": `(default "data")`, "/var/lib/autopilotdesk": `(default "/var/lib/autopilotdesk")`} {
		var out bytes.Buffer
		getenv := testkit.Env(nil)
		if env != "" {
			getenv = testkit.Env(map[string]string{optDataDir.env: env})
		}
		if err := run(context.Background(), []string{"backup", "--help"}, getenv, &out, &out); !errors.Is(err, errHelp) {
			t.Fatalf("backup --help: %v", err)
		}
		if help := out.String(); !strings.Contains(help, want) || strings.Count(help, "default") != 1 {
			t.Errorf("%s=%q: backup --help gives the data folder as\n%s", optDataDir.env, env, help)
		}
	}
}

// The README's table of the main settings names settings that exist, with their defaults.
func TestReadmeSettingsAreTheOptions(t *testing.T) {
	b, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	byEnv := map[string]*option{}
	for _, o := range deskOptions {
		byEnv[o.env] = o
	}
	names, values := regexp.MustCompile(`AUTOPILOTDESK_[A-Z_]+`), regexp.MustCompile("`([^`]+)`")
	rows := 0
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "| `AUTOPILOTDESK_") {
			continue
		}
		rows++
		cols := strings.Split(line, " | ")
		vars := names.FindAllString(cols[0], -1)
		for _, v := range vars {
			if byEnv[v] == nil {
				t.Errorf("README.md names %s, which is no setting", v)
			}
		}
		defs := values.FindAllStringSubmatch(cols[1], -1)
		if len(defs) != len(vars) {
			continue // a default in words ("derived from the cloud")
		}
		for i, v := range vars {
			o := byEnv[v]
			if o == nil {
				continue
			}
			if got := defs[i][1]; o.def != got && (o.def != "" || !strings.Contains(o.shownDef, got)) {
				t.Errorf("README.md gives %s the default %q; it is %q", v, got, cmp.Or(o.def, o.shownDef))
			}
		}
	}
	if rows < 10 {
		t.Fatalf("README.md's settings table has %d rows", rows)
	}
}
