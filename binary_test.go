package main

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"autopilotdesk/devtools/deskrun"
	"autopilotdesk/devtools/testkit"
)

// The production binary carries no load generator and no browser driver: those belong to the
// developer tools under devtools/.
func TestProductionBinaryCarriesNoDeveloperTools(t *testing.T) {
	bin, err := deskrun.Build(context.Background(), testkit.BuildFlags...)
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("go", "version", "-m", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go version -m: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/labstack/echo/v4") {
		t.Fatalf("go version -m lists no modules:\n%s", out)
	}
	for _, tool := range []string{"github.com/tsenart/vegeta", "github.com/chromedp/", "github.com/go-json-experiment/json",
		"github.com/influxdata/tdigest", "github.com/josharian/intern", "github.com/mailru/easyjson", "github.com/rs/dnscache"} {
		if strings.Contains(string(out), tool) {
			t.Errorf("the desk's binary links %s", tool)
		}
	}
}
