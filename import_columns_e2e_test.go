package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
)

// TestBrowserShiftedRowAndRecentImports shows, in Chromium at 1280 and 375 pixels wide and with
// axe-core in light and dark, a pre-flight whose row has a hash in the product ID column (the
// table stays inside its card, the fix form starts the field empty) and the import page listing
// the draft. With AUTOPILOTDESK_IMPORT_SHOTS set to a folder it saves what each looks like there.
func TestBrowserShiftedRowAndRecentImports(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, appOptions{}, "admin", "/devices/import")
	shots := os.Getenv("AUTOPILOTDESK_IMPORT_SHOTS")
	look := func(name string) {
		t.Helper()
		for _, width := range []int64{1280, 375} {
			if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1, Mobile: width < 500}); err != nil {
				t.Fatal(err)
			}
			tb.page(name + " at " + strconv.FormatInt(width, 10) + " px")
			if got := tb.eval(`String(Math.max(...[...document.querySelectorAll("main .card")].map(c => c.getBoundingClientRect().right)) <= document.documentElement.clientWidth + 1)`); got != "true" {
				t.Errorf("%s at %d px: a card reaches past the page", name, width)
			}
			if shots != "" {
				buf, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(shots, strings.ReplaceAll(name, " ", "-")+"-"+strconv.FormatInt(width, 10)+".png"), buf, 0o644)
			}
		}
		if _, err := chromedp.Call(tb.ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	job := uploadDevices(t, bd, tb, [][]string{
		{"PK-GOOD", "", realHash(), "", ""},
		{"PK-BAD", realHash(), "Sales", ""},
		{strings.Repeat("L", 129), "", realHash(), "", ""},
	})
	if got := tb.eval(`document.getElementById("row-3-productKey").value`); got != "" {
		t.Errorf("the fix form pre-fills the misplaced hash: %.40q", got)
	}
	look("import shifted row")
	tb.navigate("open the import page", chromedp.Navigate(bd.base+"/devices/import"))
	if got := tb.eval(`document.querySelector('[data-testid="recent-imports"] a[href="` + job + `"]') !== null ? "true" : "false"`); got != "true" {
		t.Error("the import page does not link to the draft")
	}
	look("import start with recent")
	tb.assertClean()
}
