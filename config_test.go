package main

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func TestConfigDefaultsToDemo(t *testing.T) {
	c, err := loadConfig(nil, envOf(nil), &bytes.Buffer{})
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

func TestConfigAddrFlagBeatsEnvironment(t *testing.T) {
	c, err := loadConfig([]string{"--addr", "127.0.0.1:9999"}, envOf(map[string]string{"AUTOPILOTDESK_ADDR": "127.0.0.1:7777"}), &bytes.Buffer{})
	if err != nil {
		t.Fatal(err)
	}
	if c.Addr != "127.0.0.1:9999" {
		t.Errorf("addr = %q", c.Addr)
	}
	c, err = loadConfig(nil, envOf(map[string]string{"AUTOPILOTDESK_ADDR": "127.0.0.1:7777"}), &bytes.Buffer{})
	if err != nil || c.Addr != "127.0.0.1:7777" {
		t.Errorf("addr from environment = %q, %v", c.Addr, err)
	}
}

func TestConfigTenantMode(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	os.WriteFile(secret, []byte("s3cret\n"), 0o600)
	c, err := loadConfig(nil, envOf(map[string]string{
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
	if c.GraphURL != "https://graph.microsoft.us" || !strings.Contains(strings.Join(c.Scopes, " "), "https://graph.microsoft.us/DeviceManagementServiceConfig.ReadWrite.All") {
		t.Errorf("graph = %q scopes = %v", c.GraphURL, c.Scopes)
	}
	if c.PublicURL.String() != "https://desk.example.com" {
		t.Errorf("public URL = %q", c.PublicURL)
	}
}

func TestConfigReportsEveryProblemTogether(t *testing.T) {
	_, err := loadConfig(nil, envOf(map[string]string{
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

func TestConfigHelpListsEverySetting(t *testing.T) {
	var out bytes.Buffer
	_, err := loadConfig([]string{"--help"}, envOf(nil), &out)
	if !errors.Is(err, errHelp) {
		t.Fatalf("err = %v", err)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), s.env) || !strings.Contains(out.String(), "--"+s.flag) {
			t.Errorf("--help does not list %s (--%s)", s.env, s.flag)
		}
		if s.def != "" && !strings.Contains(out.String(), `"`+s.def+`"`) {
			t.Errorf("--help does not show the default of %s", s.env)
		}
	}
}

func TestConfigurationReferenceListsEverySetting(t *testing.T) {
	doc, err := os.ReadFile("docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range settings {
		if !strings.Contains(string(doc), "`"+s.env+"`") || !strings.Contains(string(doc), "`--"+s.flag+"`") {
			t.Errorf("docs/configuration.md does not document %s / --%s", s.env, s.flag)
		}
	}
}
