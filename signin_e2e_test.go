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

// A form sent after the session ended starts a sign-in at once and comes back, once signed in, with the focus on the
// notice that nothing was sent: a screen reader says so before the person goes on, and Tab
// leads from there into the form kept as it was typed.
func TestBrowserFormKeptThroughSignInSaysSoFirst(t *testing.T) {
	bd, tb := startSignedIn(t, appOptions{}, demoidp.AdminKey, "/registration/codes/new")
	tb.typeInto("#note", "Floor 3 refurb")
	bd.app.db.DeleteSessionsOfUser(t.Context(), demoidp.DemoTenantID+":"+demoidp.AdminObjectID)
	tb.navigate("create the code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	tb.navigate("pick", chromedp.Click(chromedp.CSS(`button[name="login_hint"][value="`+demoidp.AdminKey+`"]`)))
	tb.page("the form kept through sign-in")
	if got := tb.eval(`location.pathname + " " + document.querySelector("#note").value`); got != "/registration/codes/new Floor 3 refurb" {
		t.Fatalf("after signing in again: %s", got)
	}
	if got := tb.eval(`document.activeElement.getAttribute("data-testid") || document.activeElement.tagName`); got != "form-restored" {
		t.Errorf("the focus is on %s, want the notice that nothing was sent", got)
	}
	tb.assertFocusVisible()
	tb.assertClean()
}
