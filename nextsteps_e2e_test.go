package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"autopilotdesk/graphclient/emulator"
)

// lookAtWidths checks the page at 1280 and 390 px (axe in light and dark, nothing scrolling
// sideways at 390 px) and, with AUTOPILOTDESK_NEXT_SHOTS set to a folder, saves what it looks like.
func (tb *tab) lookAtWidths(name string) {
	tb.t.Helper()
	for _, width := range []int64{1280, 390} {
		if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1, Mobile: width < 500}); err != nil {
			tb.t.Fatal(err)
		}
		tb.page(fmt.Sprintf("%s at %d px", name, width))
		if got := tb.eval(`String(document.documentElement.scrollWidth - window.innerWidth)`); width < 500 && got != "0" {
			tb.t.Logf("%s at %d px is %s px wider than the window", name, width, got)
		}
		if dir := os.Getenv("AUTOPILOTDESK_NEXT_SHOTS"); dir != "" {
			for _, scheme := range []string{"light", "dark"} {
				tb.emulateScheme(scheme)
				if buf, err := chromedp.Run(tb.ctx, chromedp.FullScreenshot(100)); err == nil {
					os.WriteFile(filepath.Join(dir, fmt.Sprintf("%s-%d-%s.png", strings.ReplaceAll(name, " ", "-"), width, scheme)), buf, 0o644)
				}
			}
			tb.emulateScheme("")
		}
	}
	if _, err := chromedp.Call(tb.ctx, emulation.ClearDeviceMetricsOverride, cdp.Empty{}); err != nil {
		tb.t.Fatal(err)
	}
}

// A tenant whose Graph has no uploads: the refusal leads to the desk's device import, and from
// then on home and the create form lead there before anything is typed.
func TestBrowserTenantWithoutUploadsLeadsToImport(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd := startBrowserDesk(t, appOptions{})
	bd.app.demo.Emulator.SetFaults(emulator.Faults{UploadsSegmentMissing: true})
	tb := bd.signedInTab(t, "admin", "/uploads/new")
	tb.expectDocumentStatus("/uploads", "400 (Bad Request)")
	tb.navigate("submit", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.lookAtWidths("uploads refused")
	if got := tb.text(`[data-testid="failure"] a.btn`); got != "Import devices instead" {
		t.Errorf("the refusal's main action is %q", got)
	}
	tb.navigate("import instead", chromedp.Click(chromedp.CSS(`[data-testid="failure"] a.btn`)))
	if p := tb.path(); p != "/devices/import" {
		t.Errorf("Import devices instead led to %s", p)
	}
	tb.navigate("home", chromedp.Navigate(bd.base+"/"))
	tb.lookAtWidths("home without uploads")
	if got := tb.text(`[data-testid="start"] a.btn`); got != "Import devices" {
		t.Errorf("home starts with %q", got)
	}
	tb.navigate("create form", chromedp.Navigate(bd.base+"/uploads/new"))
	tb.lookAtWidths("create form without uploads")
	// The notice comes before the form's first field.
	if got := tb.eval(`String(!!(document.querySelector('[data-testid="uploads-missing"]').compareDocumentPosition(document.querySelector("#createdDateTimeUtc")) & Node.DOCUMENT_POSITION_FOLLOWING))`); got != "true" {
		t.Error("the notice is not above the form")
	}
	bd.app.demo.Emulator.SetFaults(emulator.Faults{})
	tb.navigate("check again now", chromedp.Click(chromedp.CSS(`[data-testid="check-offered"]`)))
	if tb.path() != "/uploads/new" || tb.eval(`String(document.querySelectorAll('[data-testid="uploads-missing"]').length)`) != "0" {
		t.Error("checking again did not find the uploads offered again")
	}
	tb.assertClean()
}

// A create whose answer was lost: Check again finds it; the history names it in words, the row
// opens with the keyboard, and the record leads on to the upload.
func TestBrowserUnknownOutcomeAndHistory(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, appOptions{}, "admin", "/uploads/new")
	emu := bd.app.demo.Emulator
	emu.SetFaults(emulator.Faults{LoseWriteAnswers: true, ErrorRate: 1, Methods: []string{http.MethodGet}, ErrorStatuses: []int{500}})
	tb.navigate("submit", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.lookAtWidths("outcome unknown")
	if got := tb.text(`[data-testid="result-actions"] .btn`); got != "Check again" {
		t.Errorf("the main action is %q", got)
	}
	if strings.Contains(tb.text("main"), "Create another upload") {
		t.Error("an unknown outcome offers to create another upload")
	}
	emu.SetFaults(emulator.Faults{})
	tb.navigate("check again", chromedp.Click(chromedp.CSS(`[data-testid="check-again"]`)))
	if got := tb.text("h1"); got != "Upload created" {
		t.Fatalf("after checking again: %q", got)
	}
	id := tb.text(`[data-testid="upload-id"]`)

	tb.navigate("history", chromedp.Navigate(bd.base+"/activity"))
	tb.lookAtWidths("history")
	if got := tb.text(`[data-testid="activity-title"]`); got != "Created upload "+id[:8]+"…" {
		t.Errorf("the newest row reads %q", got)
	}
	// The row is a real link: focused with Tab and opened with Enter.
	tb.do("focus the page", chromedp.Focus(chromedp.CSS(`select#outcome`)))
	tb.tabTo("A " + "Created upload " + id[:8] + "…")
	tb.navigate("open the row", chromedp.KeyEvent(kb.Enter))
	if !strings.HasPrefix(tb.path(), "/activity/") {
		t.Fatalf("Enter on the row led to %s", tb.path())
	}
	tb.navigate("open the upload", chromedp.Click(chromedp.CSS(`[data-testid="result-actions"] a.btn`)))
	if tb.path() != "/uploads/"+id {
		t.Errorf("the record leads to %s", tb.path())
	}
	tb.assertClean()
}

// A passing failure keeps what was typed; Try again sends the form again with a fresh one-time
// key; a list page that failed offers a reload.
func TestBrowserTryAgainAndReload(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, appOptions{}, "admin", "/uploads/new")
	emu := bd.app.demo.Emulator
	tb.do("choose a status", chromedp.SetValue(chromedp.CSS("#status"), "complete"))
	emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodPost}, ErrorStatuses: []int{507}})
	tb.expectDocumentStatus("/uploads", "502 (Bad Gateway)")
	tb.navigate("submit", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.lookAtWidths("passing failure")
	if got := tb.eval(`document.querySelector("#status").value`); got != "complete" {
		t.Errorf("the status typed is now %q", got)
	}
	emu.SetFaults(emulator.Faults{})
	tb.navigate("try again", chromedp.Click(chromedp.CSS(`[data-testid="try-again"]`)))
	if !strings.HasPrefix(tb.path(), "/activity/") || tb.text(`[data-testid="upload-status"]`) != "Complete" {
		t.Errorf("Try again: %s %s", tb.path(), tb.text("h1"))
	}

	emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{500}})
	tb.navigate("devices", chromedp.Navigate(bd.base+"/devices"))
	tb.lookAtWidths("devices list failed")
	emu.SetFaults(emulator.Faults{})
	tb.navigate("reload", chromedp.Click(chromedp.CSS(`[data-testid="reload"]`)))
	if tb.eval(`String(document.querySelectorAll('[data-testid="failure"]').length)`) != "0" {
		t.Error("the reload still shows the failure")
	}
	tb.assertClean()
}
