package main

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
)

// TestBenchCommandPrintsTable runs the cheap steps of `autopilotdesk bench` at a tiny size.
func TestBenchCommandPrintsTable(t *testing.T) {
	var out bytes.Buffer
	args := []string{"bench", "--steps", "pages,sessions,weight,csv", "--duration", "100ms", "--sessions", "50", "--csv-rows", "100"}
	if err := run(context.Background(), args, func(string) string { return "" }, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"MEASURE", "GET /uploads/new throughput", "session load+save p99 (50 stored)", "page weight: result", "CSV pre-flight 100 rows: time"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "Bearer") {
		t.Error("the table shows a token")
	}
}
