package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"autopilotdesk/web/identity/demoidp"
)

// The pages of someone whose sign-in grants the desk only reading, as a browser shows them: each
// says why there is nothing to change, passes axe-core in light and dark, and reads at 1280 and
// 390 px (AUTOPILOTDESK_NEXT_SHOTS keeps the pictures).
func TestBrowserReadOnlyPagesSayWhy(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd := startBrowserDesk(t, appOptions{})
	admin := bd.signedInTab(t, "admin", "/uploads/new")
	admin.navigate("create", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	upload := strings.TrimSpace(admin.text(`[data-testid="upload-id"]`))
	admin.navigate("new code", chromedp.Navigate(bd.base+"/registration/codes/new"))
	admin.navigate("create the code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))

	tb := bd.signedInTab(t, demoidp.ReadGrantKey, "/")
	data, _ := deviceCSV("RO-BROWSER", 2)
	for _, p := range []struct{ name, path string }{
		{"home (read only)", "/"},
		{"uploads (read only)", "/uploads"},
		{"create form (read only)", "/uploads/new"},
		{"upload (read only)", "/uploads/" + upload},
		{"registration (read only)", "/registration"},
		{"import start (read only)", "/devices/import"},
	} {
		tb.navigate(p.name, chromedp.Navigate(bd.base+p.path))
		tb.page(p.name)
		if got := tb.text(`[data-testid="read-only"]`); !strings.Contains(got, "Your organisation's permission lets the desk read only.") {
			t.Errorf("%s says %q", p.name, got)
		}
		tb.lookAtWidths(p.name)
	}
	tb.do("paste", chromedp.SetValue(chromedp.CSS(`#csv`), string(data)))
	tb.navigate("check", chromedp.Click(chromedp.CSS(`form[enctype] button[type="submit"]`)))
	tb.page("pre-flight (read only)")
	if n := tb.eval(`String(document.querySelectorAll('form[action$="/submit"], [data-testid="import-button"], input[name="leaveOut"]').length)`); n != "0" {
		t.Errorf("the reader's pre-flight offers %s import controls", n)
	}
	tb.lookAtWidths("pre-flight (read only)")
	tb.assertClean()
	admin.assertClean()
}
