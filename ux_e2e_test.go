package main

// Browser tests of the desk's everyday ergonomics: copy buttons, forms that accept what people
// type, the pre-flight's fix form and pages that fit a phone.

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"autopilotdesk/graphclient/emulator"
)

// clipboard grants or refuses the page's clipboard, as a browser policy or a person would.
func (tb *tab) clipboard(setting cdpbrowser.PermissionSetting) {
	tb.t.Helper()
	ctxID := chromedp.FromContext(tb.ctx).BrowserContextID
	for _, name := range []string{"clipboard-read", "clipboard-write"} {
		if _, err := chromedp.CallBrowser(tb.ctx, cdpbrowser.SetPermission, cdpbrowser.SetPermissionParams{
			Permission: &cdpbrowser.PermissionDescriptor{Name: name, AllowWithoutSanitization: name == "clipboard-write"},
			Setting:    setting, Origin: tb.bd.base, BrowserContextID: ctxID}); err != nil {
			tb.t.Fatalf("clipboard permission %s: %v", name, err)
		}
	}
}

// typeInto empties a field and types into it, key by key.
func (tb *tab) typeInto(sel, typed string) {
	tb.t.Helper()
	tb.eval(`(function (el) { el.value = ""; el.dispatchEvent(new Event("input")); return ""; })(document.querySelector(` + fmt.Sprintf("%q", sel) + `))`)
	tb.do("type into "+sel, chromedp.SendKeys(chromedp.CSS(sel), typed))
}

// waitFor polls a JavaScript condition on the page.
func (tb *tab) waitFor(what, cond string) {
	tb.t.Helper()
	if _, err := chromedp.Run(tb.ctx, chromedp.Poll[bool](cond, chromedp.WithPollingTimeout(5*time.Second))); err != nil {
		tb.t.Fatalf("%s on %s: %v (%s)", what, tb.at, err, cond)
	}
}

// copyWorks presses the copy button of the snippet with the id target and checks that the
// clipboard then holds the snippet, the button says "Copied", and the page did not reload.
func (tb *tab) copyWorks(target string) {
	tb.t.Helper()
	tb.eval(`window.__notReloaded = "yes"`)
	tb.do("copy "+target, chromedp.Click(chromedp.CSS(`button[data-copy="`+target+`"]`)))
	tb.waitFor("the button says Copied", `document.querySelector('button[data-copy="`+target+`"]').textContent === "Copied"`)
	got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`navigator.clipboard.readText()`, chromedp.EvalAwaitPromise))
	want := tb.eval(`document.getElementById("` + target + `").textContent`)
	if err != nil || got != want || want == "" {
		tb.t.Errorf("after copying %s the clipboard holds %q (%v), want %q", target, got, err, want)
	}
	if tb.eval(`window.__notReloaded || ""`) != "yes" {
		tb.t.Errorf("copying %s reloaded the page", target)
	}
}

func TestBrowserCopyButtonsCopyOrSayWhichKeys(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, appOptions{}, "admin", "/uploads/new")
	tb.navigate("create", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.page("create result")
	tb.clipboard(cdpbrowser.PermissionSettingGranted)
	tb.do("open the snippets", chromedp.Click(chromedp.CSS(`[data-testid="exchange"] summary`)))
	for _, target := range []string{"copy-curl", "copy-pwsh", "copy-http", "support-text"} {
		tb.copyWorks(target)
	}
	tb.page("create result, copied")

	// Refused: the clipboard API and the older copy command both fail; the snippet is selected
	// and the button says which keys copy it.
	tb.clipboard(cdpbrowser.PermissionSettingDenied)
	tb.eval(`navigator.clipboard.writeText = function () { return Promise.reject(new DOMException("Write permission denied.", "NotAllowedError")); };
document.execCommand = function () { return false; }; "ok"`)
	tb.do("copy, refused", chromedp.Click(chromedp.CSS(`button[data-copy="copy-pwsh"]`)))
	tb.waitFor("the button says which keys", `document.querySelector('button[data-copy="copy-pwsh"]').textContent === "Press Ctrl+C"`)
	if sel, want := tb.eval(`String(window.getSelection())`), tb.eval(`document.getElementById("copy-pwsh").textContent`); sel != want {
		t.Errorf("refused copy selected %q, want the snippet %q", sel, want)
	}
	if got := tb.eval(`document.querySelector('button[data-copy="copy-pwsh"]').parentNode.querySelector('[role="status"]').textContent`); !strings.Contains(got, "press Ctrl+C") {
		t.Errorf("refused copy says %q", got)
	}
	tb.assertClean()

	// The registration commands a technician types at the device.
	tb.clipboard(cdpbrowser.PermissionSettingGranted)
	tb.navigate("new code", chromedp.Navigate(bd.base+"/registration/codes/new"))
	tb.navigate("create a code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	tb.page("registration code created")
	for _, target := range []string{"capture", "send", "status"} {
		tb.copyWorks(target)
	}
	tb.assertClean()
}

// The create form takes the dates and GUIDs people type, shows what it will send while they
// type, keeps everything through a 422 and moves the focus to the error summary.
func TestBrowserCreateFormAcceptsWhatPeopleType(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	_, tb := startSignedIn(t, appOptions{}, "admin", "/uploads/new")
	tb.page("create form")
	if got := tb.text(`label[for="createdDateTimeUtc"]`); got != "Created (UTC) · createdDateTimeUtc" {
		t.Errorf("date label reads %q", got)
	}
	if got := tb.text(`[data-testid="sends"]`); !strings.HasPrefix(got, "Sends 20") {
		t.Errorf("the prefilled date does not say what it sends: %q", got)
	}
	for typed, want := range map[string]string{
		"2026-11-29":                        "Sends 2026-11-29T00:00:00Z (no offset typed: taken as UTC)",
		"2026/11/29 14:30":                  "Sends 2026-11-29T14:30:00Z (no offset typed: taken as UTC)",
		"2026/11/29 14:30 +0200":            "Sends 2026-11-29T14:30:00+02:00",
		"2016-12-31T23:59:45.8788427-08:00": "Sends 2016-12-31T23:59:45.8788427-08:00",
		"2026-11-29 14:30 UTC":              "Sends 2026-11-29T14:30:00Z",
		"2026-02-30":                        "Not a date the desk can read yet: type it like 2026-11-29 or 2026/11/29 14:30.",
		"2026-11-29 14:30 +14:30":           "Not a date the desk can read yet: type it like 2026-11-29 or 2026/11/29 14:30.",
		"next Tuesday":                      "Not a date the desk can read yet: type it like 2026-11-29 or 2026/11/29 14:30.",
	} {
		tb.typeInto("#createdDateTimeUtc", typed)
		if got := strings.Join(strings.Fields(tb.text(`[data-testid="sends"]`)), " "); got != want {
			t.Errorf("typing %q shows %q, want %q", typed, got, want)
		}
	}

	// A bad id: the 422 keeps both values, says what the date sends (server-rendered), and the
	// focus lands on the error summary.
	const bracedID = "{8D639524-9524-8D63-2495-638D2495638D}"
	tb.typeInto("#createdDateTimeUtc", "2026/11/29 14:30")
	tb.typeInto("#id", "{8D639524-9524}")
	tb.expectDocumentStatus("/uploads", "422 (Unprocessable Entity)")
	tb.navigate("submit", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.page("create form with a bad id")
	if got := tb.eval(`document.activeElement.getAttribute("data-testid") || document.activeElement.tagName`); got != "form-errors" {
		t.Errorf("after a 422 the focus is on %s, want the error summary", got)
	}
	if got := tb.eval(`document.querySelector("#createdDateTimeUtc").value + " | " + document.querySelector("#id").value`); got != "2026/11/29 14:30 | {8D639524-9524}" {
		t.Errorf("typed values after the 422: %q", got)
	}
	if got := strings.Join(strings.Fields(tb.text(`[data-testid="sends"]`)), " "); got != "Sends 2026-11-29T14:30:00Z (no offset typed: taken as UTC)" {
		t.Errorf("after the 422 the date says %q", got)
	}

	// A GUID in braces and upper case is sent in Graph's form.
	tb.typeInto("#id", bracedID)
	tb.navigate("submit", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.page("create result")
	if got := strings.TrimSpace(tb.text(`[data-testid="upload-id"]`)); got != "8d639524-9524-8d63-2495-638d2495638d" {
		t.Errorf("created upload id %q", got)
	}
	if got := tb.text(`[data-testid="upload-created"]`); got != "2026-11-29T14:30:00Z" {
		t.Errorf("created shown as %q", got)
	}
	tb.assertClean()
}

// The pre-flight shows and lets the owner fix every column it can refuse (the Windows Product
// ID too), and its summary and import button say how many devices will be sent, through a fix,
// a check of the serials and every change of the ticks; the import then sends that many.
func TestBrowserPreflightFixesWhatItReportsAndCountsWhatItSends(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, quickImports, "admin", "/devices/import")
	csvPath := filepath.Join(t.TempDir(), "devices.csv")
	writeDeviceCSV(t, csvPath, [][]string{
		{"SN-PF-1", "", fakeHash(), "", ""},
		{"SN-PF-2", "", fakeHash(), "", ""},
		{"SN-PF-3", "ABCDE-12345", fakeHash(), "", ""}, // a product key cut short
		{"5CG3281JQZ", "", fakeHash(), "", ""},         // registered in the demo tenant already
		{"SN-PF-5", "", fakeHash(), "", ""},
		{"SN-PF-1", "", fakeHash(), "", ""}, // the serial of line 2 again: nothing to fix, to leave out
	})
	tb.do("choose the file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{csvPath}))
	tb.navigate("check the file", chromedp.Click(chromedp.CSS(`form[enctype="multipart/form-data"] button[type="submit"]`)))
	tb.page("import pre-flight")
	summary := func() string { return strings.Join(strings.Fields(tb.text(`[data-testid="preflight-summary"]`)), " ") }
	button := func() string { return strings.TrimSpace(tb.text(`[data-testid="import-button"]`)) }
	if got, want := summary(), "6 rows: 4 devices to import, 2 rows with problems."; got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	if got := button(); got != "Import 4 devices" {
		t.Errorf("button %q", got)
	}
	if got := tb.eval(`Array.from(document.querySelectorAll('[data-testid="preflight"] th')).map(function (th) { return th.textContent; }).join("|")`); !strings.Contains(got, "Windows Product ID") {
		t.Errorf("the table does not show the Windows Product ID it refused: %s", got)
	}

	// The refused product key is in the fix form; corrected, the row is ready. The duplicate is
	// left out, and counts as such, not as a problem.
	tb.typeInto("#row-4-productKey", "ABCDE-12345-FGHIJ-67890-KLMNO")
	tb.typeInto("#row-7-serial", "typed, then left out")
	tb.do("leave the duplicate out", chromedp.Click(chromedp.CSS(`input[name="row-7-leaveOut"]`)))
	tb.navigate("check the corrected rows", chromedp.Click(chromedp.CSS(`[data-testid="fix-rows"] button[type="submit"]`)))
	tb.page("import pre-flight, fixed")
	if got := tb.eval(`document.querySelector('tr[data-verdict="left out"]') ? document.querySelector('tr[data-verdict="left out"] code').textContent + " " + document.querySelector('input[name="row-7-leaveOut"]').checked : "none"`); got != "SN-PF-1 true" {
		t.Errorf("the duplicate left out: %s", got)
	}
	if got, want := summary(), "6 rows: 5 devices to import, 1 left out."; got != want {
		t.Errorf("after the fix the summary reads %q, want %q", got, want)
	}

	// The check finds the registered serial: it is ticked, and the counts say so. Graph is slow to
	// answer, so the page first shows the check under way, and updates itself until it has ended.
	bd.app.demo.Emulator.SetFaults(emulator.Faults{LatencyMin: 3 * time.Second, LatencyMax: 3 * time.Second})
	tb.navigate("check the serials", chromedp.Click(chromedp.CSS(`form[action$="/check"] button[type="submit"]`)))
	tb.page("import pre-flight, checking")
	if got := tb.text(`[data-testid="check-progress"]`); got != "0 of 5 serial numbers" {
		t.Errorf("while checking the page says %q", got)
	}
	bd.app.demo.Emulator.SetFaults(emulator.Faults{})
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		ended, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && !document.querySelector('[data-testid="checking"]')`))
		if err == nil && ended {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page did not update itself to the check's end: %s", tb.text("main"))
		}
	}
	tb.page("import pre-flight, checked")
	if got := summary(); got != "6 rows: 4 devices to import, 2 left out." {
		t.Errorf("after the check the summary reads %q", got)
	}
	if got := button(); got != "Import 4 devices" {
		t.Errorf("after the check the button reads %q", got)
	}

	// Ticks change the counts as they change.
	tb.do("leave line 2 out", chromedp.Click(chromedp.CSS(`#leave-out-2`)))
	if got := button(); got != "Import 3 devices" || summary() != "6 rows: 3 devices to import, 3 left out." {
		t.Errorf("after a tick: button %q, summary %q", got, summary())
	}
	tb.do("leave all out", chromedp.Click(chromedp.CSS(`button[data-select="all"][data-select-name="leaveOut"]`)))
	if got := button(); got != "Nothing to import: every ready row is left out" {
		t.Errorf("after leaving all out: %q", got)
	}
	tb.do("import all", chromedp.Click(chromedp.CSS(`button[data-select="none"][data-select-name="leaveOut"]`)))
	if got := button(); got != "Import 5 devices" {
		t.Errorf("after importing all: %q", got)
	}
	tb.do("leave out the registered one and line 2", chromedp.Click(chromedp.CSS(`#leave-out-5`)), chromedp.Click(chromedp.CSS(`#leave-out-2`)))
	if got := button(); got != "Import 3 devices" {
		t.Errorf("with two left out: %q", got)
	}
	tb.do("leave out line 6", chromedp.Click(chromedp.CSS(`#leave-out-6`)))
	if got := button(); got != "Import 2 devices" {
		t.Errorf("with three left out: %q", got)
	}
	tb.do("bring line 6 back", chromedp.Click(chromedp.CSS(`#leave-out-6`)))
	tb.page("import pre-flight, ticked")
	jobPath := tb.path()
	tb.navigate("import", chromedp.Click(chromedp.CSS(`[data-testid="import-button"]`)))
	deadline := time.Now().Add(15 * time.Second)
	for tb.text("h1") != "Import finished" {
		if time.Now().After(deadline) {
			t.Fatalf("import did not finish: %s", tb.text(`[data-testid="progress-summary"]`))
		}
		time.Sleep(50 * time.Millisecond)
		tb.navigate("reload progress", chromedp.Navigate(bd.base+jobPath))
	}
	if got := tb.text(`[data-testid="progress-summary"]`); !strings.Contains(got, "3 imported") || !strings.Contains(got, "3 left out") {
		t.Errorf("the import sent other than the button said: %s", got)
	}
	tb.assertClean()
}

// phoneLayout is what a page looks like on a 390 px wide phone: whether anything scrolls
// sideways (the page or a table), whether every table's status column — the header marked
// data-col="status" — is on the screen in every row, and whether a GUID breaks over more
// than two lines. It answers one problem per line, or "" when there is none.
const phoneLayout = `(function () {
  var out = [], vw = document.documentElement.clientWidth;
  if (document.documentElement.scrollWidth > vw) out.push("the page scrolls sideways: " + document.documentElement.scrollWidth + " px in " + vw);
  document.querySelectorAll("main table").forEach(function (t) {
    var name = t.getAttribute("data-testid") || t.caption && t.caption.textContent || "a table";
    var wrap = t.closest(".table-wrap") || t.parentElement;
    if (wrap.scrollWidth > wrap.clientWidth + 1) out.push(name + " scrolls sideways: " + wrap.scrollWidth + " px in " + wrap.clientWidth);
    var heads = Array.prototype.slice.call(t.querySelectorAll("thead th"));
    var col = heads.findIndex(function (th) { return th.getAttribute("data-col") === "status"; });
    if (col < 0) { out.push(name + " has no status column marked"); return; }
    var h = heads[col].getBoundingClientRect();
    t.querySelectorAll("tbody tr").forEach(function (tr, i) {
      if (tr.children.length < heads.length) return; // a row that spans the table: "nothing here yet"
      var r = tr.children[col].getBoundingClientRect();
      if (r.width < 20 || r.height === 0 || r.left < 0 || r.right > vw + 0.5) out.push(name + " row " + (i + 1) + ": the status is off the screen (" + Math.round(r.left) + "–" + Math.round(r.right) + " px of " + vw + ")");
    });
  });
  var guid = /^\{?[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\}?$/i;
  document.querySelectorAll("main *").forEach(function (el) {
    if (el.children.length || !guid.test(el.textContent.trim()) || !el.getClientRects().length) return;
    var range = document.createRange(); range.selectNodeContents(el);
    var tops = {};
    Array.prototype.forEach.call(range.getClientRects(), function (r) { if (r.width > 0) tops[Math.round(r.top)] = true; });
    var lines = Object.keys(tops).length;
    if (lines > 2) out.push("the GUID " + el.textContent.trim() + " breaks over " + lines + " lines");
  });
  return out.join("\n");
})()`

// oneWay is what every page says the same way: each status is a badge of one of the five tones, in
// the desk's words capitalised as a sentence; each moment is shown as "29 Nov 2026 14:30:05 UTC"
// (or, for a recent contact, "2 hours ago" with that in its title), and numbers agree with their
// nouns. It answers one problem per line.
const oneWay = `(function () {
  var out = [];
  document.querySelectorAll(".badge").forEach(function (b) {
    var tones = Array.prototype.filter.call(b.classList, function (c) { return /^badge-(ok|info|warn|bad|muted)$/.test(c); });
    var others = Array.prototype.filter.call(b.classList, function (c) { return /^badge-/.test(c) && !/^badge-(ok|info|warn|bad|muted|beside)$/.test(c); });
    if (tones.length !== 1 || others.length) out.push("the badge " + JSON.stringify(b.textContent.trim()) + " has classes " + b.className);
    if (!/^[A-Z]/.test(b.textContent.trim()) || /[a-z][A-Z]/.test(b.textContent)) out.push("the badge " + JSON.stringify(b.textContent.trim()) + " is not in the desk's words, in sentence case");
  });
  var when = /^\d{1,2} [A-Z][a-z]{2} \d{4} \d{2}:\d{2}:\d{2} UTC$/;
  document.querySelectorAll("main time").forEach(function (t) {
    var text = t.textContent.trim();
    if (!when.test(text) && !when.test(t.getAttribute("title") || "")) out.push("the time " + JSON.stringify(text) + " is not shown as 29 Nov 2026 14:30:05 UTC");
  });
  var m = document.querySelector("main").innerText.match(/\b1 (devices|batches|rows|uploads|seconds|codes|minutes|hours|days|times)\b|\bof 1 (devices|batches)\b/g);
  if (m) out.push("numbers disagree with their nouns: " + m.join(", "));
  return out.join("\n");
})()`

// fitsAPhone checks the page as it is at 390 px, in light and dark, then looks at it with axe.
func (tb *tab) fitsAPhone(name string) {
	tb.t.Helper()
	tb.page(name + " at 390 px")
	if got := tb.eval(phoneLayout); got != "" {
		tb.t.Errorf("%s at 390 px:\n%s", name, got)
	}
	if got := tb.eval(oneWay); got != "" {
		tb.t.Errorf("%s:\n%s", name, got)
	}
	if dir := os.Getenv("AUTOPILOTDESK_TEST_SCREENSHOTS"); dir != "" {
		tb.eval(`(function (t) { if (t) t.scrollIntoView(); return ""; })(document.querySelector("main table"))`)
		b, err := chromedp.Run(tb.ctx, chromedp.CaptureScreenshot())
		if err == nil {
			os.WriteFile(filepath.Join(dir, strings.NewReplacer(" ", "-", ",", "", "/", "-").Replace(name)+".png"), b, 0o644)
		}
	}
}

// signedInPhoneTab is a tab whose page is 390 px wide, as on a phone, signed in as identity and
// showing path.
func (bd *browserDesk) signedInPhoneTab(t *testing.T, identity, path string) *tab {
	t.Helper()
	tb := bd.newTab(t)
	if _, err := chromedp.Call(tb.ctx, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{Width: 390, Height: 844, DeviceScaleFactor: 1}); err != nil {
		t.Fatal(err)
	}
	tb.signIn(identity, path)
	return tb
}

// openOnAPhone opens path and checks it as fitsAPhone does, naming it name.
func (tb *tab) openOnAPhone(name, path string) {
	tb.t.Helper()
	tb.navigate(name, chromedp.Navigate(tb.bd.base+path))
	tb.fitsAPhone(name)
}

// Every page with a table, at 390 px: nothing scrolls sideways, the status or verdict column
// stays on the screen, GUIDs do not break into pieces; and every page shows statuses, moments
// and counts the same way.
func TestBrowserTablesFitAPhoneAndPagesSpeakOneWay(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd := startBrowserDesk(t, appOptions{
		ImportDelays: emulator.ImportDelays{Unknown: 5 * time.Millisecond, Pending: 5 * time.Millisecond},
		SyncDuration: time.Millisecond, RegistrationEvery: 20 * time.Millisecond, ConsistencyDelay: time.Millisecond,
	})
	tb := bd.signedInPhoneTab(t, "admin", "/uploads/new")
	tb.navigate("create", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.do("open the snippets", chromedp.Click(chromedp.CSS(`[data-testid="exchange"] summary`)))
	tb.fitsAPhone("create result")
	if got := tb.eval(`Array.from(document.querySelectorAll('[data-testid="upload"] dt')).map(function (dt) { return dt.textContent.trim().replace(/\s+/g, " "); }).join(" | ")`); got != "Upload ID · id | Created (UTC) · createdDateTimeUtc | Status · status" {
		t.Errorf("the upload's properties are labelled %q", got)
	}
	tb.openOnAPhone("home", "/")
	tb.openOnAPhone("uploads", "/uploads")
	tb.navigate("an upload", chromedp.Click(chromedp.CSS(`[data-testid="uploads"] tbody a`)))
	tb.fitsAPhone("upload")

	// An import: its pre-flight, then its outcome.
	tb.navigate("import", chromedp.Navigate(bd.base+"/devices/import"))
	csvPath := filepath.Join(t.TempDir(), "devices.csv")
	writeDeviceCSV(t, csvPath, [][]string{
		{"SN-PHONE-1", "ABCDE-12345-FGHIJ-67890-KLMNO", fakeHash(), "Sales", "adele.vance@contoso.example"},
		{"SN-PHONE-2", "", fakeHash(), "", ""},
		{"", "", fakeHash(), "", ""},
		{"5CG3281JQZ", "", fakeHash(), "", ""},
	})
	tb.do("choose the file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{csvPath}))
	tb.navigate("check the file", chromedp.Click(chromedp.CSS(`form[enctype="multipart/form-data"] button[type="submit"]`)))
	tb.navigate("check the serials", chromedp.Click(chromedp.CSS(`form[action$="/check"] button[type="submit"]`)))
	tb.fitsAPhone("import pre-flight")
	jobPath := tb.path()
	tb.navigate("import", chromedp.Click(chromedp.CSS(`[data-testid="import-button"]`)))
	tb.reloadUntil(jobPath, "Import finished", 15*time.Second, "main")
	tb.fitsAPhone("import finished")
	tb.openOnAPhone("activity", "/activity")

	tb.assertClean()

	// Registered devices, a device, a bulk change (a tab of its own: each has a minute).
	tb = bd.signedInPhoneTab(t, "admin", "/devices")
	tb.fitsAPhone("devices")
	tb.navigate("a device", chromedp.Click(chromedp.CSS(`[data-testid="devices"] tbody a`)))
	tb.fitsAPhone("device")
	tb.navigate("the Sales devices", chromedp.Navigate(bd.base+"/devices?tag=Sales"))
	tb.do("choose them", chromedp.Click(chromedp.CSS(`button[data-select="all"]`)), chromedp.SetValue(chromedp.CSS("#bulk-tag"), "Sales-EMEA"))
	tb.navigate("review", chromedp.Click(chromedp.CSS(`#bulk-form button[type="submit"]`)))
	tb.fitsAPhone("bulk confirmation")
	tb.navigate("confirm", chromedp.Click(chromedp.CSS(`[data-testid="bulk-confirm"] button`)))
	job := tb.path()
	tb.reloadUntil(job, "Bulk change finished", 30*time.Second, "main")
	tb.fitsAPhone("bulk outcome")
	tb.openOnAPhone("bulk changes", "/devices/bulk")

	// Registration: a code, a device waiting, its decision.
	tb.assertClean()
	tb = bd.signedInPhoneTab(t, "admin", "/registration/codes/new")
	tb.navigate("create a code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	tb.fitsAPhone("registration code")
	bd.sendDevice(t, strings.TrimSpace(tb.text(`[data-testid="code"]`)), "5CG3021XYZ")
	approver := bd.signedInPhoneTab(t, "many-groups", "/registration")
	approver.fitsAPhone("registration, a device waiting")
	approver.eval(`document.querySelectorAll('input[name="submission"]').forEach(function (b) { b.checked = true; }); ""`)
	approver.typeInto(".reject-field input", "Not one of ours")
	approver.navigate("reject", chromedp.Click(chromedp.CSS(`button[value="reject"]`)))
	if got := approver.text("main"); !strings.Contains(got, "Rejected") {
		t.Fatalf("the rejection answered: %s", got)
	}
	approver.fitsAPhone("registration, decided")
	tb.assertClean()
	approver.assertClean()
}

// The tables where approvers decide keep their shape whatever a device sends as its model (a
// long word wraps, the outcome column keeps its width, nothing spills out of its card), and the
// commands a technician copies at the device stay unbroken on a phone, scrolling within their
// block rather than wrapping at hyphens.
func TestBrowserRegistrationKeepsLongTextAndCommandsReadable(t *testing.T) {
	bd := startBrowserDesk(t, appOptions{RegistrationEvery: 20 * time.Millisecond})
	tb := bd.signedInPhoneTab(t, "admin", "/registration/codes/new")
	// The number fields look like the text fields beside them, in either theme.
	for _, scheme := range []string{"light", "dark"} {
		tb.emulateScheme(scheme)
		if got := tb.eval(numberFieldsLikeText); got != "" {
			t.Errorf("the new-code form, %s:\n%s", scheme, got)
		}
	}
	tb.emulateScheme("")
	tb.navigate("create a code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	tb.fitsAPhone("registration code")
	if got := tb.eval(unbrokenCommands); got != "" {
		t.Errorf("the commands at 390 px:\n%s", got)
	}
	code := strings.TrimSpace(tb.text(`[data-testid="code"]`))
	file := "Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model\r\n" +
		"5CG3021LONG,," + fakeHash() + ",Contoso," + strings.Repeat("W", 100) + "\r\n"
	dev := &device{t: t, base: bd.base, client: http.DefaultClient}
	if status, answer, _ := dev.multipart("/register/"+code, utf16LE(file)); status != http.StatusAccepted {
		t.Fatalf("the device's file answered %d: %s", status, answer)
	}
	approver := bd.signedInTab(t, "many-groups", "/registration")
	approver.page("registration, a long model waiting")
	if got := approver.eval(tablesKeepTheirShape); got != "" {
		t.Errorf("a long model waiting, at 1280 px:\n%s", got)
	}
	approver.typeInto(".reject-field input", "Not one of ours")
	approver.navigate("reject", chromedp.Click(chromedp.CSS(`button[value="reject"]`)))
	if got := approver.eval(tablesKeepTheirShape); got != "" {
		t.Errorf("a long model decided, at 1280 px:\n%s", got)
	}
	tb.assertClean()
	approver.assertClean()
}

// tablesKeepTheirShape answers, one per line, a table of waiting or decided devices that is wider
// than its card or whose status column is squeezed below 8 em.
const tablesKeepTheirShape = `(function () {
  var out = [], tables = document.querySelectorAll('main table[data-testid="waiting"], main table[data-testid="recent"]');
  if (!tables.length) out.push("no table of waiting or decided devices");
  tables.forEach(function (t) {
    var name = t.getAttribute("data-testid");
    var wrap = t.closest(".table-wrap") || t.parentElement;
    if (wrap.scrollWidth > wrap.clientWidth + 1) out.push(name + " is wider than its card: " + wrap.scrollWidth + " px in " + wrap.clientWidth);
    var heads = Array.prototype.slice.call(t.querySelectorAll("thead th"));
    var col = heads.findIndex(function (th) { return th.getAttribute("data-col") === "status"; });
    var em = parseFloat(getComputedStyle(t).fontSize);
    t.querySelectorAll("tbody tr").forEach(function (tr, i) {
      var w = tr.children[col].getBoundingClientRect().width;
      if (w < 8 * em) out.push(name + " row " + (i + 1) + ": the status column is " + Math.round(w) + " px wide");
    });
  });
  return out.join("\n");
})()`

// unbrokenCommands answers, one per line, a command block whose lines wrap on the screen.
const unbrokenCommands = `(function () {
  var out = [];
  document.querySelectorAll("ol.steps pre.code").forEach(function (pre) {
    var range = document.createRange(); range.selectNodeContents(pre);
    var tops = {};
    Array.prototype.forEach.call(range.getClientRects(), function (r) { if (r.width > 0) tops[Math.round(r.top)] = true; });
    var lines = pre.textContent.split("\n").length, shown = Object.keys(tops).length;
    if (shown !== lines) out.push(pre.id + ": " + lines + " lines shown on " + shown);
  });
  return out.join("\n");
})()`

// numberFieldsLikeText answers, one per line, how a number field of the form looks other than the
// text field before it: its background, border, padding and font.
const numberFieldsLikeText = `(function () {
  var out = [], text = getComputedStyle(document.querySelector('main input[type="text"]'));
  document.querySelectorAll('main input[type="number"]').forEach(function (n) {
    var s = getComputedStyle(n);
    ["backgroundColor", "color", "borderTopColor", "borderTopWidth", "borderTopLeftRadius", "paddingLeft", "fontSize", "fontFamily"].forEach(function (p) {
      if (s[p] !== text[p]) out.push(n.id + ": " + p + " is " + s[p] + ", the text field's " + text[p]);
    });
  });
  return out.join("\n");
})()`
