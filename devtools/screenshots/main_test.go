package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"autopilotdesk/devtools/browser"
	"autopilotdesk/devtools/deskrun"
	"autopilotdesk/devtools/testkit"
)

// TestScreenshotsCommand renders the docs' screenshots into a temporary folder and checks their
// sizes; docs/screenshots is regenerated with go run ./devtools/screenshots.
func TestScreenshotsCommand(t *testing.T) {
	if !testkit.NeedInCI(t, "Chromium", browser.Chromium) {
		t.Skipf("Chromium not found at %s: the screenshots test is skipped", browser.Chromium)
	}
	desk, err := deskrun.Build(context.Background(), testkit.BuildFlags...)
	if err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"--out", out, "--desk", desk}, &stdout, &stderr); err != nil {
		t.Fatalf("screenshots: %v\n%s", err, stderr.String())
	}
	files, _ := filepath.Glob(filepath.Join(out, "*.png"))
	if len(files) < 20 {
		t.Fatalf("%d screenshots written: %s", len(files), stdout.String())
	}
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			t.Fatal(err)
		}
		cfg, err := png.DecodeConfig(r)
		r.Close()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		want := 1280
		if strings.Contains(f, "mobile") {
			want = 390
		}
		if cfg.Width != want {
			t.Errorf("%s is %dx%d, want %d wide", filepath.Base(f), cfg.Width, cfg.Height, want)
		}
	}
}
