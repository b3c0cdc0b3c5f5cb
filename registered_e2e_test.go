package main

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"autopilotdesk/graphclient/emulator"
)

// TestBrowserDevicesFlows walks the registered devices in Chromium — the list and a search,
// selecting all and none, a device's page, a change accepted but not visible yet, a delete's
// confirmation, a bulk change confirmed and finished, one whose group tag Graph refused and its
// review to correct it, and the list as a reader sees it — checking
// every page for console errors and CSP violations, and with axe-core in light and dark.
func TestBrowserDevicesFlows(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, appOptions{ConsistencyDelay: time.Hour}, "admin", "/devices")
	tb.page("devices list")
	if n := tb.eval(`String(document.querySelectorAll('[data-testid="devices"] tbody tr').length)`); n != "17" {
		t.Errorf("the list shows %s devices", n)
	}

	// Select all on the page, then none, with the buttons the script shows.
	tb.do("select all", chromedp.Click(chromedp.CSS(`button[data-select="all"]`)))
	if n := tb.eval(`String(document.querySelectorAll('input[name="device"]:checked').length)`); n != "17" {
		t.Errorf("select all ticked %s devices", n)
	}
	tb.do("select none", chromedp.Click(chromedp.CSS(`button[data-select="none"]`)))
	if n := tb.eval(`String(document.querySelectorAll('input[name="device"]:checked').length)`); n != "0" {
		t.Errorf("select none left %s ticked", n)
	}

	// The group tag's field shows only for the change that uses it.
	choose := func(action string) {
		tb.eval(`(function (s) { s.value = "` + action + `"; s.dispatchEvent(new Event("change")); return ""; })(document.querySelector("#bulk-action"))`)
	}
	shown := `[document.querySelector("#bulk-tag"), document.querySelector("#bulk-tag-help")].map(function (el) { return el.getClientRects().length > 0; }).join(" ")`
	for action, want := range map[string]string{"delete": "false false", "unassign-user": "false false", "group-tag": "true true"} {
		choose(action)
		if got := tb.eval(shown); got != want {
			t.Errorf("with %s chosen, the group tag and its help are shown: %s, want %s", action, got, want)
		}
	}

	// Review with nothing ticked comes back to the list: the focus on the problem, the change
	// chosen kept (and the group tag still hidden for it).
	choose("unassign-user")
	tb.navigate("review with nothing ticked", chromedp.Click(chromedp.CSS(`#bulk-form button[type="submit"]`)))
	tb.page("devices list, nothing ticked")
	if got := tb.eval(`location.pathname + " " + document.activeElement.getAttribute("data-testid") + " " + document.querySelector("#bulk-action").value + " " + (` + shown + `)`); got != "/devices form-errors unassign-user false false" {
		t.Errorf("after a review with nothing ticked: %s", got)
	}
	if got := tb.text(`#bulk-device-error`); !strings.Contains(got, "Tick the devices to change first") {
		t.Errorf("beside the devices: %q", got)
	}

	// A search by serial number.
	tb.do("type a serial", chromedp.SendKeys(chromedp.CSS("#serial"), "5cg3281jr0"))
	tb.navigate("search", chromedp.Click(chromedp.CSS(`form[role="search"] button[type="submit"]`)))
	tb.page("devices search")
	if got := tb.text(`tr.exact [data-testid="exact"]`); got != "Exact match" {
		t.Errorf("the exact match reads %q", got)
	}

	// A device's page, and a change of its group tag.
	tb.navigate("open the device", chromedp.Click(chromedp.CSS(`[data-testid="devices"] tbody a`)))
	tb.page("device page")
	tb.do("type a group tag", chromedp.SetValue(chromedp.CSS("#groupTag"), "Kiosk"))
	tb.navigate("save", chromedp.Click(chromedp.CSS(`form[action$="/properties"] button[type="submit"]`)))
	tb.page("device change accepted, not visible yet")
	if got := tb.text(`[data-testid="not-visible-yet"]`); !strings.Contains(got, "still the old ones") {
		t.Errorf("the change result: %q", got)
	}
	if got := tb.text(`[data-testid="exchange"] [data-testid="response"]`); !strings.Contains(got, "204 No Content") {
		t.Errorf("the exchange: %q", got)
	}

	// A user principal name that cannot be sent: a 422, the field marked and described by its
	// error, the focus on the form's error summary, what was typed kept.
	device := tb.path()
	tb.do("type a bad user", chromedp.SetValue(chromedp.CSS("#userPrincipalName"), "bad user"))
	tb.expectDocumentStatus(device+"/user", "422 (Unprocessable Entity)")
	tb.navigate("assign", chromedp.Click(chromedp.CSS(`form[action$="/user"] button[type="submit"]`)))
	tb.page("device page, a bad user")
	if got := tb.eval(`document.activeElement.getAttribute("data-testid") + " | " + document.activeElement.closest("form").getAttribute("action")`); got != "form-errors | "+device+"/user" {
		t.Errorf("after a bad user the focus is on %s, want the assign form's error summary", got)
	}
	upn := `document.querySelector("#userPrincipalName")`
	if got := tb.eval(upn + `.value + " | " + ` + upn + `.getAttribute("aria-invalid") + " | " + ` + upn + `.getAttribute("aria-describedby")`); got != "bad user | true | userPrincipalName-help userPrincipalName-error" {
		t.Errorf("the user field after a bad user: %s", got)
	}

	// A delete's confirmation names the device; keep it.
	tb.navigate("delete…", chromedp.Click(chromedp.CSS(`a[href$="/delete"]`)))
	tb.page("delete confirmation")
	if got := tb.text(`[data-testid="delete-serial"]`); got != "5CG3281JR0" {
		t.Errorf("the confirmation names %q", got)
	}
	tb.navigate("keep it", chromedp.Click(chromedp.CSS(`form[action$="/delete"] a`)))

	// A bulk change of the Sales devices.
	tb.navigate("the Sales devices", chromedp.Navigate(bd.base+"/devices?tag=Sales"))
	tb.do("choose them", chromedp.Click(chromedp.CSS(`button[data-select="all"]`)), chromedp.SetValue(chromedp.CSS("#bulk-tag"), "Sales-EMEA"))
	tb.navigate("review", chromedp.Click(chromedp.CSS(`#bulk-form button[type="submit"]`)))
	tb.page("bulk confirmation")
	if got := tb.text(`[data-testid="bulk-confirm"] button`); got != "Set group tag “Sales-EMEA” on 5 devices" {
		t.Errorf("the confirm button says %q", got)
	}
	tb.navigate("confirm", chromedp.Click(chromedp.CSS(`[data-testid="bulk-confirm"] button`)))
	job := tb.path()
	tb.reloadUntil(job, "Bulk change finished", 30*time.Second, `[data-testid="bulk-summary"]`)
	tb.page("bulk outcome")
	if n := tb.eval(`String(document.querySelectorAll('tr[data-outcome="done"]').length)`); n != "5" {
		t.Errorf("%s devices changed", n)
	}
	tb.navigate("bulk changes", chromedp.Navigate(bd.base+"/devices/bulk"))
	tb.page("bulk changes")

	// Devices chosen by serial number: nothing given comes back with the focus on the problem and
	// the change kept; a list pasted from a spreadsheet is reviewed like ticked devices.
	tb.navigate("choose by serial number", chromedp.Click(chromedp.CSS(`[data-testid="by-serial"] a[href="/devices/bulk/serials"]`)))
	tb.page("serial numbers form")
	tb.eval(`(function (s) { s.value = "unassign-user"; s.dispatchEvent(new Event("change")); return ""; })(document.querySelector("#serials-action"))`)
	tb.expectDocumentStatus("/devices/bulk/serials", "422 (Unprocessable Entity)")
	tb.navigate("find nothing", chromedp.Click(chromedp.CSS(`[data-testid="serials-form"] button[type="submit"]`)))
	tb.page("serial numbers form, none given")
	if got := tb.eval(`document.activeElement.getAttribute("data-testid") + " " + document.querySelector("#serials-action").value`); got != "form-errors unassign-user" {
		t.Errorf("after nothing given: %s", got)
	}
	tb.do("paste serial numbers", chromedp.SetValue(chromedp.CSS("#serials-serials"), "5CG3281JQZ\t7HX2LM3\n\nNOT-REGISTERED-1\n5cg3281jqz"))
	tb.navigate("find the devices", chromedp.Click(chromedp.CSS(`[data-testid="serials-form"] button[type="submit"]`)))
	tb.page("bulk review by serial number")
	if got := tb.text(`[data-testid="serials-not-found"]`); got != "NOT-REGISTERED-1" {
		t.Errorf("not registered: %q", got)
	}
	if got := tb.text(`[data-testid="serials-left-out"]`); !strings.Contains(got, "Line 4: 5cg3281jqz repeats line 1") {
		t.Errorf("left out: %q", got)
	}

	// A group tag Graph refuses (400): the finished change offers to prepare it again with the
	// group tag to correct, whose review lets it be changed; a group tag too long keeps the focus
	// on its field, described by its error.
	emu := bd.app.demo.Emulator
	emu.SetFaults(emulator.Faults{ErrorRate: 1, Methods: []string{http.MethodPost}, ErrorStatuses: []int{400}})
	tb.navigate("the Engineering devices", chromedp.Navigate(bd.base+"/devices?tag=Engineering"))
	tb.do("choose them again", chromedp.Click(chromedp.CSS(`button[data-select="all"]`)), chromedp.SetValue(chromedp.CSS("#bulk-tag"), "Engineering-APAC"))
	tb.navigate("review the refused change", chromedp.Click(chromedp.CSS(`#bulk-form button[type="submit"]`)))
	tb.navigate("confirm the refused change", chromedp.Click(chromedp.CSS(`[data-testid="bulk-confirm"] button`)))
	tb.reloadUntil(tb.path(), "Bulk change finished", 30*time.Second, `[data-testid="bulk-summary"]`)
	emu.SetFaults(emulator.Faults{})
	tb.page("bulk outcome, group tag refused")
	tb.navigate("prepare again to correct", chromedp.Click(chromedp.CSS(`[data-testid="bulk-again-correct"] button`)))
	tb.page("bulk review, group tag to correct")
	if got := tb.text(`[data-testid="bulk-correction"] h2`); got != "Microsoft Graph refused the group tag “Engineering-APAC” for these devices" {
		t.Errorf("the review says %q", got)
	}
	review := tb.path()
	tb.do("type a group tag too long", chromedp.SetValue(chromedp.CSS("#bulk-correct-tag"), strings.Repeat("t", 201)))
	tb.expectDocumentStatus(review+"/group-tag", "422 (Unprocessable Entity)")
	tb.navigate("change the group tag", chromedp.Click(chromedp.CSS(`[data-testid="bulk-group-tag"] button`)))
	tb.page("bulk review, group tag too long")
	if got := tb.eval(`document.activeElement.id + " | " + document.activeElement.getAttribute("aria-describedby")`); got != "bulk-correct-tag | bulk-correct-tag-error" {
		t.Errorf("after a group tag too long the focus is on %s", got)
	}
	tb.assertClean()

	// Graph refuses the help-desk reader's role (403): explained once above the devices, each
	// row linking to it.
	role := bd.signedInTab(t, "reader", "/devices")
	role.navigate("the Engineering devices", chromedp.Navigate(bd.base+"/devices?tag=Engineering"))
	role.do("choose", chromedp.Click(chromedp.CSS(`button[data-select="all"]`)), chromedp.SetValue(chromedp.CSS("#bulk-tag"), "Engineering-APAC"))
	role.navigate("review", chromedp.Click(chromedp.CSS(`#bulk-form button[type="submit"]`)))
	role.navigate("confirm", chromedp.Click(chromedp.CSS(`[data-testid="bulk-confirm"] button`)))
	role.reloadUntil(role.path(), "Bulk change finished", 30*time.Second, `[data-testid="bulk-summary"]`)
	role.page("bulk outcome, refused for every device")
	if got := role.eval(`String(document.querySelectorAll('[data-testid="bulk-outcome"] tbody tr').length - document.querySelectorAll('[data-testid="bulk-outcome"] .detail a[href="#bulk-refused"]').length)`); got != "0" {
		t.Errorf("%s rows do not link to the refusal above", got)
	}
	role.assertClean()

	// The reader sees the list without change controls, and why.
	reader := bd.signedInTab(t, "read-grant", "/devices")
	reader.page("devices list, read-only")
	if got := reader.eval(`String(document.querySelectorAll('#bulk-form, input[name="device"]').length)`); got != "0" {
		t.Errorf("the reader is offered %s change controls", got)
	}
	reader.navigate("a device, read-only", chromedp.Click(chromedp.CSS(`[data-testid="devices"] tbody a`)))
	reader.page("device page, read-only")
	reader.assertClean()
}
