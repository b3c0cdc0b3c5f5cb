package main

import (
	"bytes"
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

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
	haveWrk := testkit.NeedInCI(t, "wrk (the load of the external pages step)", "/usr/bin/wrk")
	var out, log bytes.Buffer
	args := []string{"--desk", desk, "--steps", "wrk,pages,forward,sessions,weight,csv,imports,bulk", "--duration", "60ms", "--rates", "100,200",
		"--sessions", "50", "--csv-rows", "100", "--wrk-duration", "1s", "--wrk-rounds", "1",
		"--import-devices", "30,10", "--import-reference", "5", "--import-delay", "300ms,300ms", "--import-window", "1s", "--lookup-serials", "10", "--check-serials", "20",
		"--bulk-devices", "30", "--bulk-writes", "10", "--bulk-window", "400ms"}
	if err := run(context.Background(), args, &out, &log); err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if haveWrk && strings.Contains(out.String(), "not measured") {
		t.Errorf("wrk is installed, yet a step was not measured:\n%s", out.String())
	}
	for _, want := range []string{"MEASURE", "GET /uploads/new throughput", "RSS of the desk process",
		"POST /uploads @100/s (below saturation): added p50", "POST /uploads @200/s (near saturation): upstream conns",
		"session load+save p99 (50 stored)", "Go heap per cached session", "page weight: result", "CSV pre-flight 100 rows: time",
		"GET /uploads/new, wrk -t1 -c16 (external)", "Import 30 devices through the desk: submit to every device final",
		"Import 10 devices through the desk: Graph requests per 1,000 devices", "Import 5 devices the way scripts do (reference): Graph requests per 1,000 devices",
		"LookUpSerials: 10 serials among 30 registered devices", "Check 20 serials through the desk: click to the check's end",
		"bulk group tag, 30 devices, 10 writes per 400ms: time", "requests sent before a Retry-After elapsed", "30 of 30"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "Bearer") {
		t.Error("the table shows a token")
	}
	for _, line := range strings.Split(out.String(), "\n") {
		if strings.Contains(line, "through the desk: duplicates / lost") && !strings.Contains(line, "PASS (0 / 0)") {
			t.Errorf("the desk's import lost or doubled devices: %s", line)
		}
	}
}

func TestParseWrk(t *testing.T) {
	r, err := parseWrk(`Running 4s test @ http://127.0.0.1:40000/uploads/new
  1 threads and 16 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   812.33us    1.02ms  21.39ms   93.51%
    Req/Sec    18.02k     1.10k   19.73k    70.00%
  Latency Distribution
     50%  601.00us
     75%  760.00us
     90%    1.20ms
     99%    5.43ms
  71734 requests in 4.00s, 350.27MB read
  Non-2xx or 3xx responses: 3
  Socket errors: connect 0, read 1, write 0, timeout 2
Requests/sec:  17932.71
Transfer/sec:     87.56MB
`)
	if err != nil {
		t.Fatal(err)
	}
	if r.Requests != 71734 || r.Seconds != 4 || r.PerSecond != 17932.71 || r.P50 != 601*time.Microsecond || r.P99 != 5430*time.Microsecond ||
		r.Non2xx3xx != 3 || r.SocketErr != 3 || math.Abs(r.Bytes-350.27*(1<<20)) > 1 {
		t.Errorf("parsed %+v", r)
	}
	if _, err := parseWrk("wrk: command not understood"); err == nil {
		t.Error("an unreadable report was accepted")
	}
}
