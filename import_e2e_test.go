package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"autopilotdesk/graphclient/emulator"
)

// TestBrowserImportJobPages walks an import's pages in Chromium — the pre-flight, a batch being
// sent, a batch whose answer was lost, the finished import — and checks each with axe-core in
// light and dark, at 1280 and 390 pixels wide. With AUTOPILOTDESK_IMPORT_SHOTS set to a folder it
// also saves what each looks like there, for a person to look at.
func TestBrowserImportJobPages(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, appOptions{ImportDelays: emulator.ImportDelays{Unknown: 5 * time.Millisecond, Pending: 5 * time.Millisecond},
		ImportLookupDelays: []time.Duration{time.Hour, 2 * time.Hour}}, "admin", "/devices/import")
	emu := bd.app.demo.Emulator
	shots := os.Getenv("AUTOPILOTDESK_IMPORT_SHOTS")

	look := func(name string) {
		t.Helper()
		// A page that updates itself is paused first, as a person reading it may: the control works,
		// and the checks see one page rather than its next load.
		if tb.eval(`String(!!document.getElementById("auto-refresh"))`) == "true" {
			if got := tb.eval(`String(!document.getElementById("auto-refresh").closest("label").hidden)`); got != "true" {
				t.Errorf("%s: the control that stops the updates is hidden", name)
			}
			tb.do("stop the updates", chromedp.Click(chromedp.CSS("#auto-refresh")))
			time.Sleep(2500 * time.Millisecond)
			tb.eval(`window.__stillHere = true; "ok"`)
			time.Sleep(2500 * time.Millisecond)
			if tb.eval(`String(window.__stillHere === true)`) != "true" {
				t.Errorf("%s reloaded after its updates were stopped", name)
			}
		}
		for _, width := range []int64{1280, 390} {
			if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1, Mobile: width < 500}); err != nil {
				t.Fatal(err)
			}
			tb.page(name + " at " + strings.TrimSuffix(strings.TrimSuffix(filepathWidth(width), "px"), " ") + " px")
			if got := tb.eval(`String(document.documentElement.scrollWidth > window.innerWidth + 1 && getComputedStyle(document.querySelector("main")).overflowX !== "auto")`); got == "true" && width < 500 {
				if w := tb.eval(`String(document.documentElement.scrollWidth)`); w != "" {
					t.Logf("%s at %d px: the page is %s px wide (tables scroll inside their card)", name, width, w)
				}
			}
			if shots == "" {
				continue
			}
			for _, scheme := range []string{"light", "dark"} {
				tb.emulateScheme(scheme)
				buf, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100))
				if err != nil {
					t.Fatal(err)
				}
				os.WriteFile(filepath.Join(shots, strings.ReplaceAll(name, " ", "-")+"-"+filepathWidth(width)+"-"+scheme+".png"), buf, 0o644)
			}
			tb.emulateScheme("")
		}
		if _, err := chromedp.Call(tb.ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
			t.Fatal(err)
		}
	}
	upload := func(rows [][]string) string { return uploadDevices(t, bd, tb, rows) }
	waitFor := func(what, js string) { t.Helper(); waitInTab(t, tb, what, js) }

	job := upload([][]string{
		{"CZC1234567", "", fakeHash(), "Sales", "AdeleV@contoso.example"},
		{"CZC808OTHER", "", fakeHash(), "", ""},
		{"5CG1234567", "", fakeHash(), "Kiosk-Berlin-Floor-3-Reception", "MeganB@contoso.example"},
		{"", "", fakeHash(), "", ""},
		{"CZC7654321", "", "not base64!!", "", ""},
	})
	look("import draft")

	// A batch on its way: Graph answers slowly.
	emu.SetFaults(emulator.Faults{LatencyMin: 3 * time.Second, LatencyMax: 3 * time.Second})
	tb.navigate("import", chromedp.Click(chromedp.CSS(`form[action$="/submit"] button[type="submit"]`)))
	waitFor("a batch being sent", `String(document.querySelectorAll('tr[data-verdict="sending"]').length > 0)`)
	look("import sending")
	emu.SetFaults(emulator.Faults{})
	waitFor("the finished import", `String(document.querySelector("h1").textContent.trim() === "Import finished")`)
	look("import finished")

	// A batch whose answer is lost.
	emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	upload([][]string{{"CZC1111111", "", fakeHash(), "Sales", ""}, {"CZC2222222", "", fakeHash(), "Sales", ""}})
	tb.navigate("import", chromedp.Click(chromedp.CSS(`form[action$="/submit"] button[type="submit"]`)))
	waitFor("the outcome-unknown notice", `String(document.querySelectorAll('[data-testid="outcome-unknown"]').length === 1)`)
	look("import outcome unknown")
	emu.SetFaults(emulator.Faults{})
	tb.navigate("check what Graph has", chromedp.Click(chromedp.CSS(`form[action$="/reconcile"] button`)))
	waitFor("the reconciled import", `String(document.querySelector("h1").textContent.trim() === "Import finished")`)
	look("import reconciled")

	tb.assertClean()
	_ = job

	// A long file, in a tab of its own (a tab's steps have a minute in all): its rows a window at a time.
	lt := bd.signedInTab(t, "admin", "/devices/import")
	var long [][]string
	for i := range 502 {
		long = append(long, []string{fmt.Sprintf("CZC9%06d", i), "", fakeHash(), "", ""})
	}
	uploadDevices(t, bd, lt, long)
	lt.navigate("import", chromedp.Click(chromedp.CSS(`form[action$="/submit"] button[type="submit"]`)))
	waitInTab(t, lt, "the finished long import", `String(document.querySelector("h1").textContent.trim() === "Import finished")`)
	if got := lt.text(`[data-testid="row-pager"] p`); !strings.Contains(got, "Rows 1–500 of 502.") {
		t.Errorf("the long import's pager says %q", got)
	}
	lt.page("long import finished")
	lt.navigate("the next rows", chromedp.Click(chromedp.CSS(`[data-testid="row-pager"] a[rel="next"]`)))
	if got := lt.eval(`String(document.querySelectorAll('[data-testid="outcome"] tbody tr').length) + " " + location.search`); got != "2 ?from=500" {
		t.Errorf("after Next: %q", got)
	}
	lt.page("long import, its last rows")
	lt.assertClean()
}

// uploadDevices checks a file of rows in tb, as a person choosing it on the import page does, and
// returns the draft's path.
func uploadDevices(t *testing.T, bd *browserDesk, tb *tab, rows [][]string) string {
	t.Helper()
	tb.navigate("open import", chromedp.Navigate(bd.base+"/devices/import"))
	path := filepath.Join(t.TempDir(), "devices.csv")
	writeDeviceCSV(t, path, rows)
	tb.do("choose the file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{path}))
	tb.navigate("check the file", chromedp.Click(chromedp.CSS(`form[enctype="multipart/form-data"] button[type="submit"]`)))
	return tb.path()
}

// waitInTab reloads tb's page until js says "true", for 20 seconds at most.
func waitInTab(t *testing.T, tb *tab, what, js string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for tb.eval(js) != "true" {
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed: %.600s", what, tb.text("main"))
		}
		time.Sleep(50 * time.Millisecond)
		tb.navigate("reload", chromedp.Reload())
	}
}

func filepathWidth(w int64) string {
	if w < 500 {
		return "390px"
	}
	return "1280px"
}
