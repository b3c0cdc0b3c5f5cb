package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
)

// A page that updates itself, whose session ends meanwhile, says that the person was signed out
// and offers to sign in again back to the same page, rather than that it could not be updated.
func TestBrowserUpdatingPageSaysWhenSignedOut(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, quickImports, demoidp.AdminKey, "/devices/import")
	emu := bd.app.demo.Emulator
	uploadDevices(t, bd, tb, [][]string{{"CZC1234567", "", fakeHash(), "Sales", ""}})
	emu.SetFaults(emulator.Faults{LatencyMin: 8 * time.Second, LatencyMax: 8 * time.Second})
	defer emu.SetFaults(emulator.Faults{})
	tb.navigate("import", chromedp.Click(chromedp.CSS(`form[action$="/submit"] button[type="submit"]`)))
	waitInTab(t, tb, "a batch being sent", `String(document.querySelectorAll('tr[data-verdict="sending"]').length > 0 && !!document.querySelector("[data-refresh-seconds]"))`)
	page := tb.path()

	bd.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)
	deadline := time.Now().Add(15 * time.Second)
	for tb.eval(`String(!!document.querySelector(".refresh-note"))`) != "true" {
		if time.Now().After(deadline) {
			t.Fatalf("the page never said it stopped updating: %.600s", tb.text("main"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	note := tb.text(".refresh-note")
	if !strings.Contains(note, "signed out") || strings.Contains(note, "could not be updated") {
		t.Errorf("the page says %q", note)
	}
	if href := tb.eval(`document.querySelector(".refresh-note a").getAttribute("href")`); href != "/auth/signin?return_to="+strings.ReplaceAll(page, "/", "%2F") {
		t.Errorf("the way to sign in again goes to %q, want back to %s", href, page)
	}
}
