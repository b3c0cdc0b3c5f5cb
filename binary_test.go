package main

import (
	"context"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

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

// SIGHUP (a closed terminal, or an operator's habit after renewing a certificate) does not stop
// the desk: it keeps serving and says in one line what it does with settings instead.
func TestHangupKeepsTheDeskRunning(t *testing.T) {
	bin, err := deskrun.Build(context.Background(), testkit.BuildFlags...)
	if err != nil {
		t.Fatal(err)
	}
	addr, err := deskrun.FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	d, err := deskrun.Start(context.Background(), bin, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer d.Stop()
	if err := syscall.Kill(d.Pid(), syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for i := 0; !strings.Contains(d.Output(), "SIGHUP received"); i++ {
		if i == 100 {
			t.Fatalf("nothing logged for SIGHUP:\n%s", d.Output())
		}
		time.Sleep(20 * time.Millisecond)
	}
	resp, err := http.Get(d.URL + "/readyz")
	if err != nil {
		t.Fatalf("the desk stopped on SIGHUP: %v\n%s", err, d.Output())
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("readiness after SIGHUP: %d", resp.StatusCode)
	}
	if out := d.Output(); !strings.Contains(out, "restart it to apply changed settings") {
		t.Errorf("the SIGHUP line does not say what to do:\n%s", out)
	}
	if err := d.Stop(); err != nil {
		t.Error(err)
	}
}
