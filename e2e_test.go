package main

// End-to-end tests in a real browser: the desk runs in-process in demo mode and Debian's
// /usr/bin/chromium drives it through chromedp. Every page of the flows is checked for console
// errors, CSP violations and, with axe-core, WCAG 2.2 A/AA violations in light and dark.

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"autopilotdesk/devtools/browser"
	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/graphclient/guid"
	"autopilotdesk/views"
)

const axePath = ".ci/node_modules-axe/node_modules/axe-core/axe.min.js"

// axeTags are the WCAG 2.2 A and AA rules.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "wcag22aa"}

// browserDesk is the desk served over plain HTTP on 127.0.0.1 (Chromium treats loopback as a
// secure context, so the __Host- Secure cookie works) and one headless Chromium.
type browserDesk struct {
	t       *testing.T
	base    string
	app     *app
	browser context.Context
	axe     string
}

func startBrowserDesk(t *testing.T, opts appOptions) *browserDesk {
	t.Helper()
	if !testkit.NeedInCI(t, "Chromium", browser.Chromium) {
		t.Skipf("Chromium not found at %s: the browser tests are skipped (apt-get install chromium; CI=true fails instead)", browser.Chromium)
	}
	bd := &browserDesk{t: t}
	if testkit.NeedInCI(t, "axe-core", axePath) {
		b, err := os.ReadFile(axePath)
		if err != nil {
			t.Fatal(err)
		}
		bd.axe = string(b)
	} else {
		t.Logf("axe-core not found at %s: accessibility checks skipped (run .ci/install-axe.sh)", axePath)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bd.base = "http://" + ln.Addr().String()
	cfg, err := loadConfig(nil, testkit.Env(map[string]string{
		"AUTOPILOTDESK_DATA_DIR":   t.TempDir(),
		"AUTOPILOTDESK_PUBLIC_URL": bd.base,
	}), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	bd.app, err = newApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: bd.app.handler, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close(); bd.app.Close() })

	bd.browser = startChromium(t, 1280, 800)
	return bd
}

func startChromium(t *testing.T, width, height int) context.Context {
	t.Helper()
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), browser.Options(browser.Chromium, t.TempDir(), width, height)...)
	bctx, cancelBrowser := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelBrowser(); cancelAlloc() })
	if err := chromedp.Do(bctx); err != nil {
		t.Fatalf("start Chromium: %v", err)
	}
	return bctx
}

// tab is one browser profile (its own cookies) with one tab, collecting every console error,
// uncaught exception and CSP violation of every page it shows.
type tab struct {
	bd   *browserDesk
	t    *testing.T
	ctx  context.Context
	mu   sync.Mutex
	at   string   // the page being looked at, for messages
	errs []string // console errors, exceptions, CSP violations
	// expected are browser log lines that are not errors of the page: the network log line
	// Chromium writes when a document itself answers 4xx on purpose (422 form, Graph's 403).
	expected []string
}

// expectDocumentStatus tells the tab that the document at path answers status on purpose.
func (tb *tab) expectDocumentStatus(path string, status string) {
	tb.mu.Lock()
	tb.expected = append(tb.expected, "the server responded with a status of "+status+" "+tb.bd.base+path)
	tb.mu.Unlock()
}

// cspReporter turns every CSP violation into a console error, so the listener sees it with the rest.
const cspReporter = `document.addEventListener("securitypolicyviolation", function (e) {
  console.error("CSP violation: " + e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber);
});`

func (bd *browserDesk) newTab(t *testing.T) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(bd.browser, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	ctx, cancelTimeout := context.WithTimeout(ctx, 60*time.Second)
	t.Cleanup(cancelTimeout)
	tb := &tab{bd: bd, t: t, ctx: ctx}
	if err := chromedp.Listen(ctx, tb.listen); err != nil {
		t.Fatal(err)
	}
	if _, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{Source: cspReporter}); err != nil {
		t.Fatal(err)
	}
	return tb
}

func (tb *tab) listen(ev any) {
	var msg string
	switch ev := ev.(type) {
	case *runtime.EventExceptionThrown:
		d := ev.ExceptionDetails
		msg = "uncaught exception: " + d.Text
		if d.Exception != nil {
			msg += " " + d.Exception.Description
		}
		msg += " at " + d.URL
	case *runtime.EventConsoleAPICalled:
		if string(ev.Type) != "error" && string(ev.Type) != "assert" {
			return
		}
		var parts []string
		for _, a := range ev.Args {
			if len(a.Value) > 0 {
				parts = append(parts, strings.Trim(string(a.Value), `"`))
			} else {
				parts = append(parts, a.Description)
			}
		}
		msg = "console." + string(ev.Type) + ": " + strings.Join(parts, " ")
	case *cdplog.EventEntryAdded:
		if ev.Entry == nil || string(ev.Entry.Level) != "error" {
			return
		}
		msg = "browser log (" + string(ev.Entry.Source) + "): " + ev.Entry.Text + " " + ev.Entry.URL
		tb.mu.Lock()
		defer tb.mu.Unlock()
		for _, e := range tb.expected {
			if strings.HasSuffix(msg, e) {
				return
			}
		}
		tb.errs = append(tb.errs, tb.at+": "+msg)
		return
	default:
		return
	}
	tb.mu.Lock()
	tb.errs = append(tb.errs, tb.at+": "+msg)
	tb.mu.Unlock()
}

// do runs the steps, failing the test with what step names.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if err := chromedp.Do(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// navigate runs the steps and waits for the page they load.
func (tb *tab) navigate(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	if _, err := chromedp.RunResponse(tb.ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

func (tb *tab) eval(expr string) string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

func (tb *tab) text(sel string) string {
	tb.t.Helper()
	v, err := chromedp.Run(tb.ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		tb.t.Fatalf("text of %s on %s: %v", sel, tb.at, err)
	}
	return v
}

func (tb *tab) path() string { return tb.eval(`location.pathname`) }

// page is called on every page of the flows once it has loaded: it names the page for the
// messages and checks it with axe-core in light and dark.
func (tb *tab) page(name string) {
	tb.t.Helper()
	tb.mu.Lock()
	tb.at = name
	tb.mu.Unlock()
	// The navigation that brought the page may still be replacing the context its scripts run
	// in as the poll starts: DevTools then answers that the context is not found, and the poll
	// is made again in the new one.
	ready := chromedp.Poll[bool](`document.readyState === "complete"`, chromedp.WithPollingTimeout(10*time.Second))
	var err error
	for range 20 {
		if _, err = chromedp.Run(tb.ctx, ready); err == nil || !strings.Contains(err.Error(), "Cannot find context with specified id") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		tb.t.Fatalf("wait for %s: %v", name, err)
	}
	if got := tb.eval(`document.querySelectorAll("h1").length + " h1, " + document.querySelectorAll("main").length + " main"`); got != "1 h1, 1 main" {
		tb.t.Errorf("%s has %s, want one h1 and one main landmark", name, got)
	}
	if tb.bd.axe == "" {
		return
	}
	if v, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](`typeof axe === "object"`)); !v {
		if _, err := chromedp.Run(tb.ctx, chromedp.Evaluate[bool](tb.bd.axe+"\n;true")); err != nil {
			tb.t.Fatalf("inject axe-core into %s: %v", name, err)
		}
	}
	if n, err := chromedp.Run(tb.ctx, chromedp.Evaluate[int](`axe.getRules(`+jsList(axeTags)+`).length`)); err != nil || n < 50 {
		tb.t.Fatalf("axe-core on %s knows %d WCAG rules (%v)", name, n, err)
	}
	for _, scheme := range []string{"light", "dark"} {
		tb.emulateScheme(scheme)
		tb.axe(name + " (" + scheme + ")")
	}
	tb.emulateScheme("")
}

func (tb *tab) emulateScheme(scheme string) {
	tb.t.Helper()
	p := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		p.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	if _, err := chromedp.Call(tb.ctx, emulation.SetEmulatedMedia, p); err != nil {
		tb.t.Fatal(err)
	}
}

type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	URL    string `json:"helpUrl"`
	Nodes  []struct {
		Target  string `json:"target"`
		HTML    string `json:"html"`
		Summary string `json:"summary"`
	} `json:"nodes"`
}

// axe runs the WCAG 2.2 A/AA rules on the page as it is and reports each violation readably.
func (tb *tab) axe(name string) {
	tb.t.Helper()
	script := `axe.run(document, {runOnly: {type: "tag", values: ` + jsList(axeTags) + `}, resultTypes: ["violations"]}).then(function (r) {
  return r.violations.map(function (v) {
    return {id: v.id, impact: v.impact || "", help: v.help, helpUrl: v.helpUrl, nodes: v.nodes.map(function (n) {
      return {target: n.target.join(" "), html: n.html.slice(0, 300), summary: n.failureSummary || ""};
    })};
  });
})`
	vs, err := chromedp.Run(tb.ctx, chromedp.Evaluate[[]axeViolation](script, chromedp.EvalAwaitPromise))
	if err != nil {
		tb.t.Fatalf("axe on %s: %v", name, err)
	}
	for _, v := range vs {
		var b strings.Builder
		fmt.Fprintf(&b, "axe %s on %s [%s]: %s (%s)", v.ID, name, v.Impact, v.Help, v.URL)
		for _, n := range v.Nodes {
			fmt.Fprintf(&b, "\n    at %s: %s\n      %s", n.Target, n.HTML, strings.ReplaceAll(n.Summary, "\n", "\n      "))
		}
		tb.t.Error(b.String())
	}
}

func jsList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = fmt.Sprintf("%q", s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// assertClean fails the test for every console error, exception or CSP violation seen.
func (tb *tab) assertClean() {
	tb.t.Helper()
	time.Sleep(50 * time.Millisecond) // let late events arrive
	tb.mu.Lock()
	defer tb.mu.Unlock()
	for _, e := range tb.errs {
		tb.t.Errorf("browser reported an error: %s", e)
	}
	tb.errs = nil
}

// quickImports are the options of a browser desk whose imports finish and sync in moments, so a
// flow reaches an import's finished page in seconds.
var quickImports = appOptions{ImportDelays: emulator.ImportDelays{Unknown: 5 * time.Millisecond, Pending: 5 * time.Millisecond},
	SyncDuration: time.Millisecond}

// startSignedIn starts a browser desk with opts and a tab signed in as identity, showing path.
func startSignedIn(t *testing.T, opts appOptions, identity, path string) (*browserDesk, *tab) {
	t.Helper()
	bd := startBrowserDesk(t, opts)
	return bd, bd.signedInTab(t, identity, path)
}

// signedInTab is a new tab signed in as identity, showing path.
func (bd *browserDesk) signedInTab(t *testing.T, identity, path string) *tab {
	t.Helper()
	tb := bd.newTab(t)
	tb.signIn(identity, path)
	return tb
}

// reloadUntil reloads path until the page's heading reads h1; after within it fails with the
// text of the element show selects.
func (tb *tab) reloadUntil(path, h1 string, within time.Duration, show string) {
	tb.t.Helper()
	deadline := time.Now().Add(within)
	for tb.text("h1") != h1 {
		if time.Now().After(deadline) {
			tb.t.Fatalf("%s did not reach %q: %s", path, h1, tb.text(show))
		}
		time.Sleep(50 * time.Millisecond)
		tb.navigate("reload "+path, chromedp.Navigate(tb.bd.base+path))
	}
}

// sendDevice sends a device's hardware file with a registration code, as the device's script does.
func (bd *browserDesk) sendDevice(t *testing.T, code, serial string) {
	t.Helper()
	dev := &device{t: t, base: bd.base, client: http.DefaultClient}
	if status, answer, _ := dev.multipart("/register/"+code, utf16LE(captureCSV(true, [2]string{serial, fakeHash()}))); status != http.StatusAccepted {
		t.Fatalf("the device's file answered %d: %s", status, answer)
	}
}

// signIn goes through the desk's sign-in page and the demo identity provider's picker.
func (tb *tab) signIn(identity, path string) {
	tb.t.Helper()
	tb.navigate("open "+path, chromedp.Navigate(tb.bd.base+path))
	if p := tb.path(); p != "/auth/signin" {
		tb.t.Fatalf("anonymous %s landed on %s", path, p)
	}
	tb.page("sign-in")
	tb.navigate("to the picker", chromedp.Click(chromedp.CSS(`main a.btn[href^="/auth/login"]`)))
	tb.page("identity picker")
	tb.navigate("pick "+identity, chromedp.Click(chromedp.CSS(`button[name="login_hint"][value="`+identity+`"]`)))
	if p := tb.path(); p != path {
		tb.t.Fatalf("after sign-in landed on %s, want %s", p, path)
	}
}

func TestBrowserAdministratorFlows(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	_, tb := startSignedIn(t, quickImports, "admin", "/")
	tb.page("home")
	if got := tb.text(".who strong"); got == "" {
		t.Errorf("home does not show who is signed in")
	}

	// The form, through the navigation.
	tb.navigate("open the form", chromedp.Click(chromedp.CSS(`nav a[href="/uploads/new"]`)))
	tb.page("create form")

	// Invalid input: the field messages, the summary, the fields marked invalid, the values kept.
	tb.do("type invalid values",
		chromedp.Clear(chromedp.CSS("#createdDateTimeUtc")),
		chromedp.SendKeys(chromedp.CSS("#createdDateTimeUtc"), "yesterday at noon"),
		chromedp.SendKeys(chromedp.CSS("#id"), "not-a-guid"),
	)
	tb.expectDocumentStatus("/uploads", "422 (Unprocessable Entity)")
	tb.navigate("submit invalid", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.page("create form with errors")
	if msg := tb.text("#createdDateTimeUtc-error"); !strings.Contains(msg, "UTC offset") {
		t.Errorf("date message = %q", msg)
	}
	if msg := tb.text("#id-error"); !strings.Contains(msg, "GUID") {
		t.Errorf("id message = %q", msg)
	}
	if got := tb.eval(`document.querySelector("#createdDateTimeUtc").getAttribute("aria-invalid") + " " + document.querySelector("#createdDateTimeUtc").getAttribute("aria-describedby")`); got != "true createdDateTimeUtc-help createdDateTimeUtc-error" {
		t.Errorf("invalid date field: aria-invalid, aria-describedby = %q", got)
	}
	if got := tb.eval(`document.querySelector('[data-testid="form-errors"]').getAttribute("role")`); got != "alert" {
		t.Errorf("error summary role = %q, want alert (announced)", got)
	}
	if got := tb.eval(`document.querySelector("#createdDateTimeUtc").value`); got != "yesterday at noon" {
		t.Errorf("typed value not kept: %q", got)
	}

	// Fixed: the upload is created and the result shows it and the exchange.
	tb.do("type valid values",
		chromedp.Clear(chromedp.CSS("#createdDateTimeUtc")),
		chromedp.SendKeys(chromedp.CSS("#createdDateTimeUtc"), "2016-12-31T23:59:45.8788427-08:00"),
		chromedp.Clear(chromedp.CSS("#id")),
	)
	tb.navigate("submit valid", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	if p := tb.path(); !strings.HasPrefix(p, "/activity/") {
		t.Fatalf("create landed on %s", p)
	}
	tb.page("create result")
	if id := strings.TrimSpace(tb.text(`[data-testid="upload-id"]`)); !guid.Valid(id) {
		t.Errorf("upload id %q", id)
	}
	if got := tb.text(`[data-testid="upload-created"]`); got != "2016-12-31T23:59:45.8788427-08:00" {
		t.Errorf("created shown as %q", got)
	}
	for sel, want := range map[string]string{`[data-testid="request"]`: "Authorization: Bearer <redacted>", `[data-testid="response"]`: "201 Created"} {
		if got := tb.text(sel); !strings.Contains(got, want) {
			t.Errorf("%s lacks %q:\n%s", sel, want, got)
		}
	}

	// The manual theme toggle, remembered in a cookie.
	tb.navigate("switch to dark", chromedp.Click(chromedp.CSS(`form[action="/theme"] button[value="dark"]`)))
	if got := tb.eval(`document.documentElement.dataset.theme`); got != "dark" {
		t.Errorf("after the toggle data-theme = %q", got)
	}
	tb.page("create result, dark by cookie")
	tb.navigate("reload", chromedp.Reload())
	if got := tb.eval(`document.documentElement.dataset.theme`); got != "dark" {
		t.Errorf("theme not remembered: %q", got)
	}
	tb.navigate("switch to light", chromedp.Click(chromedp.CSS(`form[action="/theme"] button[value="light"]`)))

	// Device import from a CSV file through the file input.
	tb.navigate("open the devices", chromedp.Click(chromedp.CSS(`nav a[href="/devices"]`)))
	tb.page("registered devices")
	tb.navigate("open import", chromedp.Click(chromedp.CSS(`nav a[href="/devices/import"]`)))
	tb.page("import start")
	csvPath := filepath.Join(t.TempDir(), "devices.csv")
	writeDeviceCSV(t, csvPath, [][]string{
		{"SN-E2E-1", "", fakeHash(), "Sales", ""},
		{"SN-E2E-2", "", fakeHash(), "", ""},
		{"", "", fakeHash(), "", ""}, // missing serial: refused by the pre-flight
	})
	tb.do("choose the file", chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{csvPath}))
	tb.navigate("check the file", chromedp.Click(chromedp.CSS(`form[enctype="multipart/form-data"] button[type="submit"]`)))
	if p := tb.path(); !strings.HasPrefix(p, views.ImportJobURL("")) {
		t.Fatalf("pre-flight landed on %s", p)
	}
	jobPath := tb.path()
	tb.page("import pre-flight")
	if n := tb.eval(`String(document.querySelectorAll('[data-testid="preflight"] tr[data-verdict="error"]').length)`); n != "1" {
		t.Errorf("%s rows refused by the pre-flight, want 1", n)
	}
	tb.navigate("import", chromedp.Click(chromedp.CSS(`form[action$="/submit"] button[type="submit"]`)))
	tb.reloadUntil(jobPath, "Import finished", 15*time.Second, `[data-testid="progress-summary"]`)
	tb.page("import progress, finished")
	if got := tb.text(`[data-testid="progress-summary"]`); !strings.Contains(got, "2 imported") {
		t.Errorf("progress summary: %s", got)
	}
	report := tb.eval(`(document.querySelector('a[href$="/report.csv"]') || {}).getAttribute ? document.querySelector('a[href$="/report.csv"]').getAttribute("href") : ""`)
	if report == "" {
		t.Fatal("no report download link")
	}
	got, err := chromedp.Run(tb.ctx, chromedp.Evaluate[string](`fetch(`+fmt.Sprintf("%q", report)+`).then(function (r) { return r.text().then(function (b) { return r.status + " " + r.headers.get("Content-Type") + " " + b.split("\n")[0]; }); })`, chromedp.EvalAwaitPromise))
	if err != nil || !strings.HasPrefix(got, "200 text/csv") {
		t.Errorf("report download: %q %v", got, err)
	}

	// Team activity shows both.
	tb.navigate("open activity", chromedp.Click(chromedp.CSS(`nav a[href="/activity"]`)))
	tb.page("activity")

	// Sign out.
	tb.signOut()
	tb.assertClean()
}

// signOut presses Sign out: the desk ends the server-side session and sends the browser to the
// identity provider's end-session endpoint, which comes back to /auth/signed-out.
func (tb *tab) signOut() {
	tb.t.Helper()
	if _, err := chromedp.RunResponse(tb.ctx, chromedp.Click(chromedp.CSS(`form[action="/auth/signout"] button`))); err != nil {
		tb.t.Fatalf("sign out: %v", err)
	}
	// The desk redirects to the identity provider's end-session endpoint, which comes back.
	chromedp.Run(tb.ctx, chromedp.Poll[bool](`location.pathname === "/auth/signed-out" && document.readyState === "complete"`,
		chromedp.WithPollingTimeout(10*time.Second)))
	if p := tb.path(); p != "/auth/signed-out" {
		tb.t.Errorf("sign-out landed on %s", p)
	}
	tb.page("signed out")
	tb.navigate("after sign-out", chromedp.Navigate(tb.bd.base+"/uploads/new"))
	if p := tb.path(); p != "/auth/signin" {
		tb.t.Errorf("after sign-out the form is still reachable: %s", p)
	}
}

func writeDeviceCSV(t *testing.T, path string, rows [][]string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	w := csv.NewWriter(f)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	w.WriteAll(rows)
	if err := errors.Join(w.Error(), f.Close()); err != nil {
		t.Fatal(err)
	}
}

func TestBrowserReaderSeesGraphsRefusalExplained(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	_, tb := startSignedIn(t, appOptions{}, "reader", "/uploads/new")
	tb.page("create form (reader)")
	tb.expectDocumentStatus("/uploads", "403 (Forbidden)")
	tb.navigate("submit as reader", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.page("create refused (reader)")
	tb.lookAtWidths("create refused (reader)")
	// The permission was granted; her Intune role is what refused, and the page says so first.
	if got := tb.text(`[data-testid="failure"] h2`); got != "Your Intune role does not allow this" {
		t.Errorf("403 explained as %q", got)
	}
	support := tb.text(`[data-testid="support"] pre`)
	for _, want := range []string{"403", "request-id", "client-request-id"} {
		if !strings.Contains(support, want) {
			t.Errorf("support details lack %q: %s", want, support)
		}
	}
	tb.assertClean()
}

// TestBrowserCreateWithTheKeyboardAlone walks from the home page to a created upload with Tab
// and Enter only, checking that each focused control shows a focus indicator.
func TestBrowserCreateWithTheKeyboardAlone(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	_, tb := startSignedIn(t, appOptions{}, "admin", "/")
	tb.page("home (keyboard)")

	// The first Tab reaches the skip link.
	tb.key(kb.Tab)
	if got := tb.focused(); got != "A Skip to content" {
		t.Errorf("first Tab focused %q, want the skip link", got)
	}
	tb.tabTo(`A Create upload`)
	tb.navigate("Enter on Create upload", chromedp.KeyEvent(kb.Enter))
	if p := tb.path(); p != "/uploads/new" {
		t.Fatalf("Enter on the link landed on %s", p)
	}
	tb.tabTo("INPUT#createdDateTimeUtc")
	tb.key(kb.Tab)
	if got := tb.focused(); got != "SELECT#status" {
		t.Errorf("after the date, Tab focused %q, want the status", got)
	}
	tb.key(kb.Tab)
	if got := tb.focused(); got != "INPUT#id" {
		t.Errorf("after the status, Tab focused %q, want the id", got)
	}
	tb.key(kb.Tab)
	if got := tb.focused(); got != "BUTTON Create upload" {
		t.Fatalf("after the id, Tab focused %q, want the submit button", got)
	}
	tb.navigate("Enter on Create upload", chromedp.KeyEvent(kb.Enter))
	if p := tb.path(); !strings.HasPrefix(p, "/activity/") {
		t.Fatalf("keyboard submit landed on %s", p)
	}
	if id := strings.TrimSpace(tb.text(`[data-testid="upload-id"]`)); !guid.Valid(id) {
		t.Errorf("upload id %q", id)
	}
	tb.assertClean()
}

func (tb *tab) key(k string) {
	tb.t.Helper()
	tb.do("press key", chromedp.KeyEvent(k))
}

// focused names the focused element: tag, then #id or its text.
func (tb *tab) focused() string {
	return tb.eval(`(function (e) { if (!e) return ""; return e.tagName + (e.id ? "#" + e.id : " " + e.textContent.trim()); })(document.activeElement)`)
}

// tabTo presses Tab until the focused element is want, checking each stop has a visible focus style.
func (tb *tab) tabTo(want string) {
	tb.t.Helper()
	var seen []string
	for range 30 {
		got := tb.focused()
		if got == want {
			tb.assertFocusVisible()
			return
		}
		seen = append(seen, got)
		tb.key(kb.Tab)
	}
	tb.t.Fatalf("Tab never reached %s; stops: %q", want, seen)
}

func (tb *tab) assertFocusVisible() {
	tb.t.Helper()
	style := tb.eval(`(function (e) { var s = getComputedStyle(e); return s.outlineStyle + " " + s.outlineWidth + " " + s.boxShadow; })(document.activeElement)`)
	if strings.HasPrefix(style, "none ") && strings.HasSuffix(style, " none") {
		tb.t.Errorf("%s has no visible focus style (%s)", tb.focused(), style)
	}
}

// The pages a person sees when the desk's database fails them: a result shown from what the desk
// kept, and the desk refusing to serve once its database file is gone. Both are checked like
// every other page (console, CSP, axe in light and dark).
func TestBrowserUnsavedResultAndStoppedDesk(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd := startBrowserDesk(t, appOptions{})
	d := &desk{t: t, app: bd.app}
	tb := bd.signedInTab(t, "admin", "/uploads/new")
	refuseActivity(t, d)
	tb.navigate("create while the history refuses it", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`)))
	tb.page("result not saved to the history")
	if got := tb.text(`[data-testid="not-saved"]`); !strings.Contains(got, "not saved to the team history") {
		t.Errorf("notice: %q", got)
	}
	if got := tb.text(`h1`); got != "Upload created" {
		t.Errorf("heading %q", got)
	}
	path := filepath.Join(bd.app.cfg.DataDir, "autopilotdesk.db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		os.Remove(p)
	}
	// The load balancer's next readiness probe notices.
	if resp, err := http.Get(bd.base + "/readyz"); err != nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	tb.expectDocumentStatus("/uploads/new", "503 (Service Unavailable)")
	tb.navigate("open a page once the database file is gone", chromedp.Navigate(bd.base+"/uploads/new"))
	tb.page("desk stopped: database file removed")
	if got := tb.text(`main`); !strings.Contains(got, "restarted") {
		t.Errorf("stopped page: %s", got)
	}
	tb.assertClean()
}

// Registration from the device in a browser: the code form and the page that shows the code
// once; a device sends its file; a second administrator sees it waiting, is told a rejection
// needs a reason, approves, and follows it to the end (console, CSP, axe in light and dark).
func TestBrowserRegistrationFlow(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	bd, tb := startSignedIn(t, appOptions{ImportDelays: emulator.ImportDelays{Unknown: 5 * time.Millisecond, Pending: 5 * time.Millisecond},
		SyncDuration: time.Millisecond, RegistrationEvery: 20 * time.Millisecond}, "admin", "/registration")
	tb.page("registration, empty")
	tb.navigate("new code", chromedp.Click(chromedp.CSS(`a[href="/registration/codes/new"]`)))
	tb.page("new registration code")
	tb.do("type", chromedp.SendKeys(chromedp.CSS("#groupTag"), "Floor3"), chromedp.SendKeys(chromedp.CSS("#note"), "Floor 3 refurb batch"),
		chromedp.SendKeys(chromedp.CSS("#assignedUser"), "Bob Smith"), chromedp.SetValue(chromedp.CSS("#hours"), "900"))
	tb.expectDocumentStatus("/registration/codes", "422 (Unprocessable Entity)")
	tb.navigate("create, with a bad user and too many hours", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	tb.page("new registration code with errors")
	if msg := tb.text("#assignedUser-error"); !strings.Contains(msg, "user principal name") || tb.eval(`document.querySelector("#note").value`) != "Floor 3 refurb batch" {
		t.Errorf("user message %q, or the note was lost", msg)
	}
	// The refused form's error summary takes the focus, links to each field it names, and each
	// field is marked and described by its message, as on the other forms.
	if got := tb.eval(`document.activeElement.getAttribute("data-testid") + " | " + Array.from(document.activeElement.querySelectorAll("a")).map(a => a.getAttribute("href")).join(" ")`); got != "form-errors | #assignedUser #hours" {
		t.Errorf("after the code form's 422 the focus and its links: %q, want the error summary linking to #assignedUser and #hours", got)
	}
	for _, field := range []string{"assignedUser", "hours"} {
		el := `document.querySelector("#` + field + `")`
		if got := tb.eval(el + `.getAttribute("aria-invalid") + " | " + ` + el + `.getAttribute("aria-describedby")`); got != "true | "+field+"-help "+field+"-error" {
			t.Errorf("the %s field after the 422: %s", field, got)
		}
	}
	tb.do("follow the summary's link", chromedp.Click(chromedp.CSS(`[data-testid="form-errors"] a[href="#hours"]`)))
	if got := tb.eval(`document.activeElement.id`); got != "hours" {
		t.Errorf("the summary's link to the hours leaves the focus on %q", got)
	}
	tb.do("fix", chromedp.Clear(chromedp.CSS("#assignedUser")), chromedp.SetValue(chromedp.CSS("#hours"), "4"))
	tb.navigate("create", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`)))
	tb.page("registration code created")
	bd.sendDevice(t, strings.TrimSpace(tb.text(`[data-testid="code"]`)), "5CG3021XYZ")

	approver := bd.signedInTab(t, "many-groups", "/registration")
	approver.page("registration, a device waiting")
	if n := approver.text(`[data-testid="waiting-count"]`); !strings.Contains(n, "1") {
		t.Errorf("navigation count %q", n)
	}
	approver.expectDocumentStatus("/registration/decide", "422 (Unprocessable Entity)")
	approver.navigate("reject without a reason", chromedp.Click(chromedp.CSS(`button[value="reject"]`)))
	approver.page("registration, a rejection without a reason")
	if got := approver.eval(`document.querySelector(".reject-field input").getAttribute("aria-invalid")`); got != "true" {
		t.Errorf("the reason field is not marked invalid: %q", got)
	}
	if got := approver.eval(`document.activeElement === document.querySelector(".reject-field input") ? "the reason" : document.activeElement.tagName`); got != "the reason" {
		t.Errorf("after a rejection without a reason the focus is on %s, want the reason field", got)
	}
	approver.navigate("approve", chromedp.Click(chromedp.CSS(`button[value="approve"]`)))
	if p := approver.path(); !strings.HasPrefix(p, "/devices/import/") {
		t.Fatalf("approving landed on %s", p)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		approver.navigate("registration", chromedp.Navigate(bd.base+"/registration"))
		if approver.eval(`String(!!document.querySelector('[data-testid="recent"] tr[data-state="finished"]'))`) == "true" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the approved device did not finish: %s", approver.text("main"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	approver.page("registration, decided")
	tb.assertClean()
	approver.assertClean()
}
