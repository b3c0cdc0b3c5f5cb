package main

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"autopilotdesk/graphclient/emulator"
)

// An import's progress page is brought up to date in place: a person who reached "Refresh now"
// with the keyboard stays there through the updates (the page is never loaded again), the switch
// that stops the updates comes before it, and when the import finishes the heading takes the
// focus and the page says so politely.
func TestBrowserProgressPageUpdatesInPlaceAndKeepsFocus(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, appOptions{ImportDelays: emulator.ImportDelays{Unknown: 5 * time.Millisecond, Pending: 5 * time.Millisecond},
		SyncDuration: time.Millisecond}, "admin", "/devices/import")
	emu := bd.app.demo.Emulator
	uploadDevices(t, bd, tb, [][]string{{"CZC3141592", "", fakeHash(), "Sales", ""}, {"CZC2718281", "", fakeHash(), "", ""}})
	emu.SetFaults(emulator.Faults{LatencyMin: 6 * time.Second, LatencyMax: 6 * time.Second})
	tb.navigate("import", chromedp.Click(chromedp.CSS(`form[action$="/submit"] button[type="submit"]`)))
	if got := tb.text("h1"); got != "Importing devices" {
		t.Fatalf("the import's page reads %q", got)
	}
	tb.page("import progress")
	tb.eval(`window.__stillHere = true; document.querySelector('[data-testid="progress-summary"]').setAttribute("data-seen", "old"); ""`)
	tb.tabTo("INPUT#auto-refresh")
	tb.key(kb.Tab)
	if got := tb.focused(); got != "A Refresh now" {
		t.Fatalf("after the switch Tab went to %q, want the Refresh now link", got)
	}
	tb.waitFor("an update in place", `!document.querySelector('[data-testid="progress-summary"]').hasAttribute("data-seen")`)
	time.Sleep(2500 * time.Millisecond) // one more update
	if got := tb.eval(`String(window.__stillHere === true)`); got != "true" {
		t.Fatal("the progress page was loaded again")
	}
	if got := tb.focused(); got != "A Refresh now" {
		t.Errorf("after the updates the focus is on %q, want it still on Refresh now", got)
	}
	emu.SetFaults(emulator.Faults{})
	deadline := time.Now().Add(30 * time.Second)
	for tb.text("h1") != "Import finished" {
		if time.Now().After(deadline) {
			t.Fatalf("the page never showed the finished import: %.400s", tb.text("main"))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if got := tb.eval(`String(window.__stillHere === true)`); got != "true" {
		t.Error("the progress page was loaded again as the import finished")
	}
	if got := tb.focused(); got != "H1 Import finished" {
		t.Errorf("once the import finished the focus is on %q, want the heading", got)
	}
	if got := tb.eval(`Array.from(document.querySelectorAll('body > [role="status"]')).map(function (e) { return e.textContent; }).join("|")`); !strings.HasPrefix(got, "Import finished. ") {
		t.Errorf("the page announced %q when the import finished", got)
	}
	if got := tb.eval(`document.title`); !strings.HasPrefix(got, "Import finished") {
		t.Errorf("the finished page's title is %q", got)
	}
	tb.page("import finished in place")
	tb.assertClean()
}

// sideways is how far the page is wider than the window, with the widest elements that stick
// out, or "" when nothing scrolls sideways.
const sideways = `(function () {
  var vw = document.documentElement.clientWidth, out = [];
  if (document.documentElement.scrollWidth <= vw) return "";
  document.querySelectorAll("body *").forEach(function (el) {
    var r = el.getBoundingClientRect();
    if (r.right > vw + 0.5 && r.width > 0 && !el.closest("thead") && el.parentElement.getBoundingClientRect().right <= vw + 0.5) out.push(el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") + "(" + Math.round(r.right) + ") " + el.textContent.trim().slice(0, 40));
  });
  return document.documentElement.scrollWidth + " px in " + vw + ": " + out.slice(0, 5).join("; ");
})()`

// The pages that scrolled sideways on a 375 px phone, at 375 and 320 px: long identifiers wrap,
// inputs fit their card, the one-time registration code stays on one line, and each filter's
// label stays with its control.
func TestBrowserPagesFitANarrowPhone(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd := startBrowserDesk(t, appOptions{RegistrationEvery: 20 * time.Millisecond})
	narrow := func(tb *tab, width int64) {
		t.Helper()
		if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 800, DeviceScaleFactor: 1, Mobile: true}); err != nil {
			t.Fatal(err)
		}
	}
	fits := func(tb *tab, name string) {
		t.Helper()
		for _, width := range []int64{375, 320} {
			narrow(tb, width)
			if got := tb.eval(sideways); got != "" {
				t.Errorf("%s at %d px scrolls sideways: %s", name, width, got)
			}
		}
		narrow(tb, 375)
	}
	open := func(tb *tab, name, path string) {
		t.Helper()
		tb.navigate(name, chromedp.Navigate(bd.base+path))
		fits(tb, name)
	}

	tb := bd.newTab(t)
	narrow(tb, 375)
	tb.signIn("admin", "/uploads")
	fits(tb, "uploads")
	open(tb, "create upload", "/uploads/new")
	open(tb, "import devices", "/devices/import")
	for _, width := range []int64{375, 768} {
		narrow(tb, width)
		tb.navigate("devices", chromedp.Navigate(bd.base+"/devices"))
		apart := tb.eval(`(function () {
  var out = [];
  document.querySelectorAll(".filters label[for]").forEach(function (l) {
    var c = document.getElementById(l.htmlFor);
    if (!c) return;
    var a = l.getBoundingClientRect(), b = c.getBoundingClientRect();
    var sameLine = Math.abs((a.top + a.bottom) / 2 - (b.top + b.bottom) / 2) < 6 && b.left >= a.right - 1 && b.left - a.right < 24;
    var above = b.top >= a.bottom - 2 && b.top - a.bottom < 12 && Math.abs(b.left - a.left) < 4;
    if (!sameLine && !above) out.push(l.textContent.trim());
  });
  return out.join(", ");
})()`)
		if apart != "" {
			t.Errorf("devices at %d px: labels away from their controls: %s", width, apart)
		}
	}
	narrow(tb, 375)
	open(tb, "registration", "/registration")
	tb.navigate("new code", chromedp.Navigate(bd.base+"/registration/codes/new"))
	tb.navigate("create a code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	for _, width := range []int64{375, 320} {
		narrow(tb, width)
		if got := tb.eval(`(function (el) { var r = document.createRange(); r.selectNodeContents(el); var tops = {}; Array.from(r.getClientRects()).forEach(function (x) { if (x.width > 0) tops[Math.round(x.top)] = 1; }); return Object.keys(tops).length + " " + (el.getBoundingClientRect().right <= document.documentElement.clientWidth); })(document.getElementById("reg-code"))`); got != "1 true" {
			t.Errorf("at %d px the registration code takes %s (lines, on the screen)", width, got)
		}
	}
	fits(tb, "registration code")
	code := strings.TrimSpace(tb.text(`[data-testid="code"]`))
	bd.sendDevice(t, code, "5CG3021XYZ")
	approver := bd.newTab(t)
	narrow(approver, 375)
	approver.signIn("many-groups", "/registration")
	waitInTab(t, approver, "the device waiting", `String(document.querySelectorAll(".reject-field input").length > 0)`)
	fits(approver, "registration, a device waiting")

	reader := bd.newTab(t)
	narrow(reader, 375)
	reader.signIn("read-grant", "/uploads/new")
	fits(reader, "create upload, read only")
	open(reader, "import devices, read only", "/devices/import")
	open(reader, "devices, read only", "/devices")
	open(reader, "registration, read only", "/registration")
	reader.navigate("devices", chromedp.Navigate(bd.base+"/devices"))
	reader.navigate("a device, read only", chromedp.Click(chromedp.CSS(`[data-testid="devices"] tbody a`)))
	fits(reader, "a device, read only")

	refused := bd.newTab(t)
	narrow(refused, 375)
	refused.navigate("sign in", chromedp.Navigate(bd.base+"/auth/signin"))
	refused.navigate("to the picker", chromedp.Click(chromedp.CSS(`main a.btn[href^="/auth/login"]`)))
	refused.navigate("consent not granted", chromedp.Click(chromedp.CSS(`button[name="login_hint"][value="no-consent"]`)))
	fits(refused, "sign-in refused for want of consent")
}

// On a phone the top bar's rows start where the page does: the brand, the first link's word, the
// signed-in name, the page's heading and the footer share one left edge, and the colour buttons
// sit with Sign out at the right, not in the middle of the row; in the light and the dark theme.
func TestBrowserTopBarLinesUpOnAPhone(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd := startBrowserDesk(t, appOptions{})
	tb := bd.signedInTab(t, "admin", "/")
	if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 1, Mobile: true}); err != nil {
		t.Fatal(err)
	}
	for _, scheme := range []string{"light", "dark"} {
		tb.emulateScheme(scheme)
		got := tb.eval(`(function () {
  var textLeft = function (el) { var r = document.createRange(); r.selectNodeContents(el); return Math.round(r.getClientRects()[0].left); };
  var left = function (s) { return Math.round(document.querySelector(s).getBoundingClientRect().left); };
  var edges = { brand: left(".brand"), link: textLeft(document.querySelector(".nav a")), name: left(".who strong"), heading: textLeft(document.querySelector("main h1")), footer: textLeft(document.querySelector("body > footer")) };
  var out = [];
  for (var k in edges) if (Math.abs(edges[k] - edges.brand) > 1) out.push(k + " at " + edges[k] + " px, the brand at " + edges.brand + " px");
  var toggle = document.querySelector(".who .theme-toggle").getBoundingClientRect(), signOut = document.querySelector('.who form[action="/auth/signout"]').getBoundingClientRect();
  if (signOut.left - toggle.right > 16) out.push("the colour buttons stand " + Math.round(signOut.left - toggle.right) + " px from Sign out");
  return out.join("; ");
})()`)
		if got != "" {
			t.Errorf("the top bar at 390 px, %s theme: %s", scheme, got)
		}
	}
	tb.emulateScheme("")
	tb.lookAtWidths("home")
}

// At 1280 px the top bar is one line for every demo identity, with the waiting count beside
// Registration: the name is shortened with its whole self in its title.
func TestBrowserTopBarIsOneLine(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd := startBrowserDesk(t, appOptions{RegistrationEvery: 20 * time.Millisecond})
	tb := bd.signedInTab(t, "admin", "/registration/codes/new")
	tb.navigate("create a code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	// A device whose decision says a lot, beside a serial of a usual length.
	file := "Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model\r\n" +
		"BIN969720,," + fakeHash() + ",Contoso,Surface Laptop 5\r\n"
	dev := &device{t: t, base: bd.base, client: http.DefaultClient}
	if status, answer, _ := dev.multipart("/register/"+strings.TrimSpace(tb.text(`[data-testid="code"]`)), utf16LE(file)); status != http.StatusAccepted {
		t.Fatalf("the device's file answered %d: %s", status, answer)
	}
	for _, who := range []string{"admin", "many-groups", "read-grant", "reader"} {
		w := bd.signedInTab(t, who, "/registration")
		if _, err := chromedp.Call(w.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 1280, Height: 800, DeviceScaleFactor: 1}); err != nil {
			t.Fatal(err)
		}
		if who != "read-grant" {
			waitInTab(t, w, "the waiting count", `String(!!document.querySelector('[data-testid="waiting-count"]'))`)
		}
		oneLine := `(function () {
  var mid = function (s) { var r = document.querySelector(s).getBoundingClientRect(); return r.top + r.height / 2; };
  return Math.abs(mid(".brand") - mid(".who")) < 6 && Math.abs(mid(".nav") - mid(".who")) < 6;
})()`
		if got := w.eval(`String(` + oneLine + `)`); got != "true" {
			t.Errorf("%s at 1280 px: the top bar takes two lines", who)
		}
		if got := w.eval(`document.querySelector(".who strong").getAttribute("title")`); !strings.Contains(got, w.text(".who strong")) || !strings.Contains(got, "@contoso.example") {
			t.Errorf("%s: the name's title is %q", who, got)
		}
		// A name much longer than the demo's is shortened, and the bar stays one line.
		w.eval(`document.querySelector(".who strong").textContent = "Maximilian Alexander Featherstonehaugh-Cholmondeley"; ""`)
		if got := w.eval(`String(` + oneLine + `)`); got != "true" {
			t.Errorf("%s at 1280 px with a long name: the top bar takes two lines", who)
		}
	}

	// Decided in the last 7 days, at 1280 px: a serial number of a usual length stays whole
	// whatever the columns beside it hold.
	w := bd.signedInTab(t, "many-groups", "/registration")
	if _, err := chromedp.Call(w.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 1280, Height: 800, DeviceScaleFactor: 1}); err != nil {
		t.Fatal(err)
	}
	waitInTab(t, w, "the device waiting", `String(document.querySelectorAll(".reject-field input").length > 0)`)
	w.eval(`document.querySelectorAll('input[name="submission"]').forEach(function (b) { b.checked = true; }); ""`)
	w.typeInto(".reject-field input", "Not one of ours: "+strings.Repeat("the supplier sent this laptop to the wrong site, so it goes back to them ", 3))
	w.navigate("reject", chromedp.Click(chromedp.CSS(`button[value="reject"]`)))
	if got := w.eval(`(function (el) { if (!el) return "no serial"; var r = document.createRange(); r.selectNodeContents(el); var tops = {}; Array.from(r.getClientRects()).forEach(function (x) { if (x.width > 0) tops[Math.round(x.top)] = 1; }); return Object.keys(tops).length + " lines, " + getComputedStyle(el).whiteSpace; })(document.querySelector('[data-testid="recent"] code'))`); got != "1 lines, nowrap" {
		t.Errorf("a decided device's serial at 1280 px takes %s", got)
	}
}

// brokenColumnNames lists the column names of the import page's CSV header that a line break
// cuts in two, or says how the header reads when it is not the header itself.
const brokenColumnNames = `(function () {
  var code = document.querySelector(".lede code"), names = ["Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"];
  if (!code || code.textContent !== names.join(",")) return "the header reads " + (code ? code.textContent : "nothing");
  var nodes = [], walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT), n, bad = [];
  while ((n = walker.nextNode())) nodes.push(n);
  names.forEach(function (name) {
    var start = code.textContent.indexOf(name), end = start + name.length, pos = 0, r = document.createRange(), tops = {};
    nodes.forEach(function (t) {
      if (start >= pos && start < pos + t.length) r.setStart(t, start - pos);
      if (end > pos && end <= pos + t.length) r.setEnd(t, end - pos);
      pos += t.length;
    });
    Array.from(r.getClientRects()).forEach(function (x) { if (x.width > 0) tops[Math.round(x.top)] = true; });
    if (Object.keys(tops).length > 1) bad.push(name);
  });
  return bad.join("; ");
})()`

// The import page's CSV header wraps only between column names, on a wide screen and a phone,
// and still reads (and copies) as the header line.
func TestBrowserCSVHeaderWrapsBetweenColumnNames(t *testing.T) {
	_, tb := startSignedIn(t, appOptions{}, "admin", "/devices/import")
	for _, width := range []int64{1280, 1024, 375, 320} {
		if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1, Mobile: width < 500}); err != nil {
			t.Fatal(err)
		}
		if got := tb.eval(brokenColumnNames); got != "" {
			t.Errorf("at %d px the CSV header breaks inside: %s", width, got)
		}
		if got := tb.eval(sideways); got != "" {
			t.Errorf("at %d px the import page scrolls sideways: %s", width, got)
		}
	}
}

// The devices' filters keep each label beside its control on a wide screen and a phone, however
// many filters are set; the wide list's footer lines up with it; and a form's first heading
// starts at the top of its card as any card's does.
func TestBrowserFiltersAndFormCardsLineUp(t *testing.T) {
	bd, tb := startSignedIn(t, appOptions{}, "admin", "/devices")
	tb.navigate("every filter set", chromedp.Navigate(bd.base+"/devices?serial=5CG3281JR0&tag=Sales&notag=1&nouser=1"))
	besideTheirControls := `(function () {
  var split = [];
  document.querySelectorAll(".filters .filter").forEach(function (f) {
    var l = f.querySelector("label").getBoundingClientRect(), c = f.querySelector("input, select").getBoundingClientRect();
    if (l.bottom <= c.top || l.right > c.left) split.push(f.querySelector("label").textContent.trim());
  });
  return split.join(", ");
})()`
	// Beyond a phone the wide list's footer lines up with the page above it, as the top bar does.
	footerOff := `String(Math.round(document.querySelector("footer").getBoundingClientRect().left + parseFloat(getComputedStyle(document.querySelector("footer")).paddingLeft) - document.querySelector("main h1").getBoundingClientRect().left))`
	for _, width := range []int64{1280, 1024, 390} {
		if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1, Mobile: width < 500}); err != nil {
			t.Fatal(err)
		}
		if got := tb.eval(besideTheirControls); got != "" {
			t.Errorf("at %d px these filters' labels sit above their controls: %s", width, got)
		}
		if got := tb.eval(footerOff); width > 500 && got != "0" {
			t.Errorf("at %d px the footer starts %s px right of the page's heading", width, got)
		}
	}

	// The import page's forms carry hidden fields before their headings.
	tb.navigate("the import page", chromedp.Navigate(bd.base+"/devices/import"))
	gaps := `(function () {
  var out = [];
  document.querySelectorAll("main .card > h2").forEach(function (h) {
    var card = h.parentElement;
    if (Array.prototype.some.call(card.children, function (c) { return c !== h && c.getClientRects().length > 0 && c.compareDocumentPosition(h) & Node.DOCUMENT_POSITION_FOLLOWING; })) return;
    var gap = h.getBoundingClientRect().top - card.getBoundingClientRect().top - parseFloat(getComputedStyle(card).paddingTop) - parseFloat(getComputedStyle(card).borderTopWidth);
    if (Math.abs(gap) > 1) out.push(h.textContent.trim() + " " + Math.round(gap) + " px lower");
  });
  return out.join(", ");
})()`
	if got := tb.eval(gaps); got != "" {
		t.Errorf("headings that open a card start below its top: %s", got)
	}
}

// A bulk change's review keeps its note on the listed values apart from the confirm button and
// Cancel above it, on a wide screen and a phone.
func TestBrowserBulkReviewNoteStandsApart(t *testing.T) {
	bd, tb := startSignedIn(t, appOptions{}, "admin", "/devices")
	tb.navigate("the Sales devices", chromedp.Navigate(bd.base+"/devices?tag=Sales"))
	tb.do("choose them", chromedp.Click(chromedp.CSS(`button[data-select="all"]`)), chromedp.SetValue(chromedp.CSS("#bulk-tag"), "Sales-EMEA"))
	tb.navigate("review", chromedp.Click(chromedp.CSS(`#bulk-form button[type="submit"]`)))
	gap := `String(Math.round(document.querySelector('[data-testid="bulk-as-listed"]').getBoundingClientRect().top - document.querySelector('[data-testid="bulk-confirm"] .actions').getBoundingClientRect().bottom))`
	for _, width := range []int64{1280, 390} {
		if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: width, Height: 900, DeviceScaleFactor: 1, Mobile: width < 500}); err != nil {
			t.Fatal(err)
		}
		if got, err := strconv.Atoi(tb.eval(gap)); err != nil || got < 8 {
			t.Errorf("at %d px the note sits %d px below the confirm button (%v)", width, got, err)
		}
	}
}

// What a decision on the registration page did is said at the top of the page it comes back to,
// and the focus is there: a person who pressed Revoke or Reject far down the page with the
// keyboard hears it, and goes on from there.
func TestBrowserRegistrationNoticeTakesTheFocus(t *testing.T) {
	_, tb := startSignedIn(t, appOptions{}, "admin", "/registration/codes/new")
	tb.navigate("create a code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	tb.navigate("the registration page", chromedp.Navigate(tb.bd.base+"/registration"))
	tb.do("focus Revoke", chromedp.Focus(chromedp.CSS(`form[action$="/revoke"] button`)))
	tb.navigate("revoke with Enter", chromedp.KeyEvent(kb.Enter))
	tb.page("a code revoked")
	if got := tb.eval(`(document.activeElement.getAttribute("data-testid") || document.activeElement.tagName) + ": " + document.activeElement.textContent.trim()`); !strings.HasPrefix(got, "notice: Revoked code") {
		t.Errorf("after Revoke the focus is on %.120s", got)
	}
	tb.assertFocusVisible()
	tb.assertClean()
}
