package main

// Browser tests of the desk's everyday ergonomics: copy buttons, forms that accept what people
// type, the pre-flight's fix form and pages that fit a phone.

import (
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
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
	bd := startBrowserDesk(t, appOptions{})
	tb := bd.newTab(t)
	tb.signIn("admin", "/uploads/new")
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
