package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"autopilotdesk/devtools/deskrun"
	"autopilotdesk/devtools/testkit"
)

func TestMain(m *testing.M) {
	serveIfAsked() // the bench runs this test binary as its own servers
	os.Exit(m.Run())
}

// TestBenchPrintsTable runs every step but start-up at a tiny size against the desk built as a
// process of its own.
func TestBenchPrintsTable(t *testing.T) {
	desk, err := deskrun.Build(context.Background(), testkit.BuildFlags...)
	if err != nil {
		t.Fatal(err)
	}
	var out, log bytes.Buffer
	args := []string{"--desk", desk, "--steps", "pages,forward,sessions,weight,csv,bulk", "--duration", "60ms", "--rates", "100,200",
		"--sessions", "50", "--csv-rows", "100", "--bulk-devices", "30", "--bulk-writes", "10", "--bulk-window", "400ms"}
	if err := run(context.Background(), args, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	for _, want := range []string{"MEASURE", "GET /uploads/new throughput", "RSS of the desk process",
		"POST /uploads @100/s (below saturation): added p50", "POST /uploads @200/s (near saturation): upstream conns",
		"session load+save p99 (50 stored)", "Go heap per cached session", "page weight: result", "CSV pre-flight 100 rows: time",
		"bulk group tag, 30 devices, 10 writes per 400ms: time", "requests sent before a Retry-After elapsed", "30 of 30"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "Bearer") {
		t.Error("the table shows a token")
	}
}
