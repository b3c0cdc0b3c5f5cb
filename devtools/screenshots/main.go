// Command screenshots renders the pages of the main flows into the PNG files of docs/screenshots:
// light and dark at 1280×800, plus the form 390 px wide. It builds the desk, starts it as a
// process of its own in the repeatable demo (--demo-time: a fixed clock that moves only with
// Graph, numbered ids and client-request-ids) and drives it with headless Chromium, so two runs on
// the same machine give the same pictures.
//
//	go run ./devtools/screenshots --out docs/screenshots
package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/csv"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"
	"unicode/utf16"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"autopilotdesk/devtools/browser"
	"autopilotdesk/devtools/deskrun"
	"autopilotdesk/web/identity/demoidp"
)

// demoTime is the repeatable demo's "now" in the pictures.
const demoTime = "2026-03-02T09:30:00Z"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "screenshots:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("screenshots", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "docs/screenshots", "folder to write the PNG files to")
	chromium := fs.String("chromium", browser.Chromium, "Chromium or Chrome to drive (headless)")
	desk := fs.String("desk", "", "a built autopilotdesk binary to run (default: build one from this module)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if _, err := os.Stat(*chromium); err != nil {
		return fmt.Errorf("screenshots need Chromium: %w (install it with apt-get install chromium, or pass --chromium)", err)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "autopilotdesk-screenshots-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if *desk == "" {
		if *desk, err = deskrun.Build(ctx); err != nil {
			return err
		}
	}
	addr, err := deskrun.FreeAddr()
	if err != nil {
		return err
	}
	d, err := deskrun.Start(ctx, *desk, addr, "--demo-time", demoTime, "--log-level", "warn")
	if err != nil {
		return err
	}
	defer d.Stop()

	opts := browser.Options(*chromium, filepath.Join(tmp, "profile"), 1280, 800)
	if env, err := onlyDejaVu(tmp); err != nil {
		return err
	} else if env != "" {
		opts = append(opts, chromedp.Env(env))
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()
	if err := chromedp.Do(bctx); err != nil {
		return fmt.Errorf("start Chromium: %w", err)
	}
	s := &shooter{base: d.URL, out: *out, stdout: stdout}
	if err := s.adminFlow(bctx, tmp); err != nil {
		return err
	}
	if err := s.readerFlow(bctx); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d screenshots written to %s\n", s.n, *out)
	return nil
}

type shooter struct {
	base   string
	out    string
	stdout io.Writer
	n      int
}

func (s *shooter) tab(browser context.Context) (context.Context, context.CancelFunc, error) {
	ctx, cancel := chromedp.NewContext(browser, chromedp.WithNewBrowserContext())
	tctx, cancelT := context.WithTimeout(ctx, 2*time.Minute)
	stop := func() { cancelT(); cancel() }
	if err := chromedp.Do(tctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		stop()
		return nil, nil, err
	}
	return tctx, stop, nil
}

// load runs the steps and waits for the page they load.
func load(ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) error {
	if _, err := chromedp.RunResponse(ctx, steps...); err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// normalizePage makes the page the same on every run: no focus ring or caret, at the top, every
// version-4 GUID but Graph's numbered ids (5c0e…) and the demo tenant's renumbered in order of
// appearance, so each page's client-request-ids count from c11e0001, and the embedded Graph's
// loopback port shown as 8081.
const normalizePage = `(async function () {
  if (document.activeElement) document.activeElement.blur();
  window.scrollTo(0, 0);
  var n = 0, seen = {};
  var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  var re = /[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}/gi;
  for (var node = walker.nextNode(); node; node = walker.nextNode()) {
    node.nodeValue = node.nodeValue.replace(re, function (g) {
      if (/^5c0e/.test(g) || g === "` + demoidp.DemoTenantID + `") return g; // fixed ids
      if (!seen[g]) { n++; seen[g] = "c11e" + ("0000" + n).slice(-4) + "-7e57-4d00-9e00-00000000" + ("0000" + n).slice(-4); }
      return seen[g];
    });
  }
  // The embedded Graph's loopback port is the system's choice: shown as one fixed port.
  walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (var node = walker.nextNode(); node; node = walker.nextNode()) {
    node.nodeValue = node.nodeValue.replace(/http:\/\/127\.0\.0\.1:\d+\//g, "http://127.0.0.1:8081/");
  }
  await document.fonts.ready;
  return true;
})()`

// shot writes the page in light and dark as name-light.png and name-dark.png.
func (s *shooter) shot(ctx context.Context, name string) error { return s.shotFrom(ctx, name, "") }

// shotFrom is shot with the page scrolled so that the element css selects is at the top (none:
// the top of the page).
func (s *shooter) shotFrom(ctx context.Context, name, css string) error {
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.readyState === "complete"`, chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](normalizePage, chromedp.EvalAwaitPromise)); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if css != "" {
		scroll := fmt.Sprintf(`(function () { var e = document.querySelector(%q); if (!e) return false; e.scrollIntoView({block: "start"}); return true; })()`, css)
		if found, err := chromedp.Run(ctx, chromedp.Evaluate[bool](scroll)); err != nil || !found {
			return fmt.Errorf("%s: %s not on the page (%v)", name, css, err)
		}
	}
	for _, scheme := range []string{"light", "dark"} {
		if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, emulation.SetEmulatedMediaParams{
			Features: []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}, {Name: "prefers-reduced-motion", Value: "reduce"}},
		}); err != nil {
			return err
		}
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			return fmt.Errorf("%s (%s): %w", name, scheme, err)
		}
		file := filepath.Join(s.out, name+"-"+scheme+".png")
		if err := os.WriteFile(file, png, 0o644); err != nil {
			return err
		}
		s.n++
		fmt.Fprintln(s.stdout, file)
	}
	return nil
}

func (s *shooter) signIn(ctx context.Context, identity, path string, shots bool) error {
	if err := load(ctx, "open "+path, chromedp.Navigate(s.base+path)); err != nil {
		return err
	}
	if shots {
		if err := s.shot(ctx, "sign-in"); err != nil {
			return err
		}
	}
	if err := load(ctx, "to the picker", chromedp.Click(chromedp.CSS(`main a.btn[href^="/auth/login"]`))); err != nil {
		return err
	}
	if shots {
		if err := s.shot(ctx, "identity-picker"); err != nil {
			return err
		}
	}
	return load(ctx, "pick "+identity, chromedp.Click(chromedp.CSS(`button[name="login_hint"][value="`+identity+`"]`)))
}

func (s *shooter) adminFlow(browser context.Context, tmp string) error {
	ctx, cancel, err := s.tab(browser)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.signIn(ctx, "admin", "/uploads/new", true); err != nil {
		return err
	}
	if err := s.shot(ctx, "create-form"); err != nil {
		return err
	}
	// The form on a phone.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1))); err != nil {
		return err
	}
	if err := s.shot(ctx, "create-form-mobile"); err != nil {
		return err
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		return err
	}
	// Invalid input.
	submit := chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`))
	if err := chromedp.Do(ctx,
		chromedp.Clear(chromedp.CSS("#createdDateTimeUtc")),
		chromedp.SendKeys(chromedp.CSS("#createdDateTimeUtc"), "yesterday at noon"),
		chromedp.SendKeys(chromedp.CSS("#id"), "not-a-guid"),
	); err != nil {
		return err
	}
	if err := load(ctx, "submit invalid", submit); err != nil {
		return err
	}
	if err := s.shot(ctx, "create-form-errors"); err != nil {
		return err
	}
	// A valid create.
	if err := chromedp.Do(ctx,
		chromedp.Clear(chromedp.CSS("#createdDateTimeUtc")),
		chromedp.SendKeys(chromedp.CSS("#createdDateTimeUtc"), "2026-03-02T09:29:12.0000000+00:00"),
		chromedp.Clear(chromedp.CSS("#id")),
	); err != nil {
		return err
	}
	if err := load(ctx, "submit", submit); err != nil {
		return err
	}
	if err := s.shot(ctx, "create-result"); err != nil {
		return err
	}
	if err := s.shotFrom(ctx, "create-exchange", `[data-testid="exchange"]`); err != nil {
		return err
	}
	if err := load(ctx, "home", chromedp.Click(chromedp.CSS(`nav a[href="/"]`))); err != nil {
		return err
	}
	if err := s.shot(ctx, "home"); err != nil {
		return err
	}
	if err := s.importFlow(ctx, tmp); err != nil {
		return err
	}
	if err := s.registrationFlow(ctx, browser); err != nil {
		return err
	}
	if err := s.devicesFlow(ctx); err != nil {
		return err
	}
	if err := load(ctx, "activity", chromedp.Click(chromedp.CSS(`nav a[href="/activity"]`))); err != nil {
		return err
	}
	if err := s.shot(ctx, "activity"); err != nil {
		return err
	}
	// Sign out: the desk, then the identity provider's end-session endpoint, back to /auth/signed-out.
	if err := load(ctx, "sign out", chromedp.Click(chromedp.CSS(`form[action="/auth/signout"] button`))); err != nil {
		return err
	}
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](`location.pathname === "/auth/signed-out" && document.readyState === "complete"`,
		chromedp.WithPollingTimeout(10*time.Second))); err != nil {
		return fmt.Errorf("signed out: %w", err)
	}
	return s.shot(ctx, "signed-out")
}

// importFlow imports demoDeviceCSV from the navigation, as the administrator signed in the tab.
func (s *shooter) importFlow(ctx context.Context, tmp string) error {
	if err := load(ctx, "devices", chromedp.Click(chromedp.CSS(`nav a[href="/devices"]`))); err != nil {
		return err
	}
	if err := load(ctx, "import", chromedp.Click(chromedp.CSS(`nav a[href="/devices/import"]`))); err != nil {
		return err
	}
	if err := s.shot(ctx, "import-start"); err != nil {
		return err
	}
	csvPath := filepath.Join(tmp, "devices.csv")
	if err := os.WriteFile(csvPath, demoDeviceCSV(), 0o644); err != nil {
		return err
	}
	if err := chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS("#file"), []string{csvPath})); err != nil {
		return err
	}
	if err := load(ctx, "check the file", chromedp.Click(chromedp.CSS(`form[enctype="multipart/form-data"] button[type="submit"]`))); err != nil {
		return err
	}
	if err := s.shot(ctx, "import-preflight"); err != nil {
		return err
	}
	if err := load(ctx, "import", chromedp.Click(chromedp.CSS(`form[action$="/submit"] button[type="submit"]`))); err != nil {
		return err
	}
	jobURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return err
	}
	for i := 0; ; i++ { // the import runs in the background: the picture is of it finished
		if err := load(ctx, "progress", chromedp.Navigate(jobURL)); err != nil {
			return err
		}
		h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		if err != nil {
			return fmt.Errorf("progress: %w", err)
		}
		if strings.TrimSpace(h1) == "Import finished" {
			break
		}
		if i == 100 {
			return fmt.Errorf("progress: the import did not finish (%q)", h1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	return s.shot(ctx, "import-progress")
}

// exampleCode stands for the random code in the pictures, and exampleURL for the desk's loopback
// address, so they stay the same from run to run and read like a real deployment.
const (
	exampleCode = "K7QM-2XWD-9FHT"
	exampleURL  = "https://desk.contoso.example"
)

// replaceText replaces old by new in every text of the page.
func replaceText(ctx context.Context, pairs ...string) error {
	script := `(function () {
  var pairs = ` + jsStrings(pairs) + `;
  var walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (var node = walker.nextNode(); node; node = walker.nextNode())
    for (var i = 0; i < pairs.length; i += 2) node.nodeValue = node.nodeValue.split(pairs[i]).join(pairs[i + 1]);
  return true;
})()`
	_, err := chromedp.Run(ctx, chromedp.Evaluate[bool](script))
	return err
}

func jsStrings(s []string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// registrationFlow: the administrator signed in the tab creates a registration code; a device
// sends the file Windows PowerShell 5.1 writes with curl.exe; a second person approves it; the
// device asks for its status. The device's screen is drawn as a console window.
func (s *shooter) registrationFlow(ctx, browser context.Context) error {
	if err := load(ctx, "registration", chromedp.Click(chromedp.CSS(`nav a[href="/registration"]`))); err != nil {
		return err
	}
	if err := load(ctx, "new code", chromedp.Click(chromedp.CSS(`a[href="/registration/codes/new"]`))); err != nil {
		return err
	}
	if err := chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS("#groupTag"), "Floor3"),
		chromedp.SendKeys(chromedp.CSS("#note"), "Floor 3 refurb batch"),
		chromedp.Clear(chromedp.CSS("#uses")),
		chromedp.SendKeys(chromedp.CSS("#uses"), "3"),
	); err != nil {
		return err
	}
	if err := s.shot(ctx, "registration-new-code"); err != nil {
		return err
	}
	if err := load(ctx, "create the code", chromedp.Click(chromedp.CSS(`form[action="/registration/codes"] button[type="submit"]`))); err != nil {
		return err
	}
	code, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`[data-testid="code"]`)))
	if err != nil {
		return fmt.Errorf("the new code: %w", err)
	}
	code = strings.TrimSpace(code)
	if err := replaceText(ctx, code, exampleCode, s.base, exampleURL); err != nil {
		return err
	}
	if err := s.shot(ctx, "registration-code"); err != nil {
		return err
	}

	send := `curl.exe -F "csv=@AutopilotHWID.csv" ` + s.base + "/register/" + code
	answer, err := s.sendFromDevice(code, demoCaptureFile())
	if err != nil {
		return err
	}
	if err := s.console(ctx, "registration-device-sent", send, answer, code); err != nil {
		return err
	}

	approver, cancel, err := s.tab(browser)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.signIn(approver, demoidp.ManyGroupsKey, "/registration", false); err != nil {
		return err
	}
	if err := s.shot(approver, "registration-waiting"); err != nil {
		return err
	}
	if err := s.readOnlyRegistration(browser); err != nil {
		return err
	}
	if err := load(approver, "approve", chromedp.Click(chromedp.CSS(`button[value="approve"]`))); err != nil {
		return err
	}
	for i := 0; ; i++ { // the import, then its sync, run in the background
		if err := load(approver, "registration", chromedp.Navigate(s.base+"/registration")); err != nil {
			return err
		}
		done, err := chromedp.Run(approver, chromedp.Evaluate[bool](`!!document.querySelector('[data-testid="recent"] tr[data-state="finished"]') &&
  document.querySelector('[data-testid="recent"]').textContent.indexOf("sync") >= 0`))
		if err != nil {
			return err
		}
		if done {
			break
		}
		if i == 300 {
			return errors.New("registration: the approved device was not imported and synced")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.shot(approver, "registration-decided"); err != nil {
		return err
	}
	status := "curl.exe " + s.base + "/register/" + code + "/status"
	answer, err = s.deviceGet(s.base + "/register/" + code + "/status")
	if err != nil {
		return err
	}
	if err := s.console(ctx, "registration-device-status", status, answer, code); err != nil {
		return err
	}
	return load(ctx, "back to the desk", chromedp.Navigate(s.base+"/"))
}

// sendFromDevice posts a capture file as curl.exe -F "csv=@AutopilotHWID.csv" does.
func (s *shooter) sendFromDevice(code string, file []byte) (string, error) {
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, err := w.CreateFormFile("csv", "AutopilotHWID.csv")
	if err != nil {
		return "", err
	}
	part.Write(file)
	w.Close()
	resp, err := http.Post(s.base+"/register/"+code, w.FormDataContentType(), &body)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusAccepted {
		return "", fmt.Errorf("the device's file was answered %d: %s", resp.StatusCode, answer)
	}
	return string(answer), err
}

func (s *shooter) deviceGet(u string) (string, error) {
	resp, err := http.Get(u)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(resp.Body)
	return string(answer), err
}

// console draws a command and the desk's plain-text answer as a PowerShell window shows them.
func (s *shooter) console(ctx context.Context, name, command, answer, code string) error {
	text := "PS C:\\HWID> " + command + "\n" + strings.ReplaceAll(answer, "\r\n", "\n") + "\nPS C:\\HWID> "
	text = strings.NewReplacer(code, exampleCode, s.base, exampleURL).Replace(text)
	page := `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Windows PowerShell</title><style>
body{margin:0;background:#0c0c0c;color:#cccccc;font:15px/1.35 "DejaVu Sans Mono",Consolas,monospace}
.bar{background:#1f1f1f;color:#ffffff;font:13px system-ui,sans-serif;padding:8px 14px}
pre{margin:0;padding:12px 14px;white-space:pre-wrap}</style></head><body><div class="bar">Administrator: Windows PowerShell</div><pre id="t"></pre></body></html>`
	if err := load(ctx, name, chromedp.Navigate("data:text/html;charset=utf-8,"+url.PathEscape(page))); err != nil {
		return err
	}
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(function(){document.getElementById("t").textContent = `+jsString(text)+`; return true})()`)); err != nil {
		return err
	}
	return s.shot(ctx, name)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// demoCaptureFile is what Get-WindowsAutopilotInfo -Partner -OutputFile writes on Windows
// PowerShell 5.1: UTF-16 little-endian with a byte order mark, CRLF, no quotes; the hash is fixed.
func demoCaptureFile() []byte {
	text := "Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model\r\n" +
		"5CG3021XYZ,," + demoHash("registration") + ",HP,HP EliteBook 840 G9\r\n"
	out := []byte{0xFF, 0xFE}
	for _, u := range utf16.Encode([]rune(text)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

// devicesFlow walks the registered devices: the list, a device whose group tag was just changed
// (accepted, not visible yet), and a bulk change of the Sales devices' group tag, confirmed and
// finished.
func (s *shooter) devicesFlow(ctx context.Context) error {
	if err := load(ctx, "devices", chromedp.Click(chromedp.CSS(`nav a[href="/devices"]`))); err != nil {
		return err
	}
	if err := s.shot(ctx, "devices-list"); err != nil {
		return err
	}
	if err := load(ctx, "a device", chromedp.Click(chromedp.CSS(`[data-testid="devices"] a[href^="/devices/"]`))); err != nil {
		return err
	}
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#groupTag"), "Sales-EMEA")); err != nil {
		return err
	}
	if err := load(ctx, "change the group tag", chromedp.Click(chromedp.CSS(`form[action$="/properties"] button[type="submit"]`))); err != nil {
		return err
	}
	if err := s.shot(ctx, "device-page"); err != nil {
		return err
	}
	if err := load(ctx, "the Sales devices", chromedp.Navigate(s.base+"/devices?tag=Sales")); err != nil {
		return err
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`button[data-select="all"]`)), chromedp.SetValue(chromedp.CSS("#bulk-tag"), "Sales-EMEA")); err != nil {
		return err
	}
	if err := load(ctx, "review the bulk change", chromedp.Click(chromedp.CSS(`#bulk-form button[type="submit"]`))); err != nil {
		return err
	}
	if err := s.shot(ctx, "bulk-confirm"); err != nil {
		return err
	}
	if err := load(ctx, "confirm the bulk change", chromedp.Click(chromedp.CSS(`form[action$="/confirm"] button[type="submit"]`))); err != nil {
		return err
	}
	jobURL, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return err
	}
	for i := 0; ; i++ { // the change runs in the background: the picture is of it finished
		if err := load(ctx, "bulk progress", chromedp.Navigate(jobURL)); err != nil {
			return err
		}
		h1, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS("h1")))
		if err != nil {
			return fmt.Errorf("bulk progress: %w", err)
		}
		if strings.TrimSpace(h1) == "Bulk change finished" {
			break
		}
		if i == 100 {
			return fmt.Errorf("bulk progress: the change did not finish (%q)", h1)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := s.shot(ctx, "bulk-outcome"); err != nil {
		return err
	}
	// Devices chosen by serial number: a list pasted from a spreadsheet, with one serial number
	// not registered, one given twice and one Excel turned into a number.
	if err := load(ctx, "choose by serial number", chromedp.Navigate(s.base+"/devices/bulk/serials")); err != nil {
		return err
	}
	serials := "5CG3281JQZ\n5CG3281JR0\n5CG3281JR7\n\n5CG4102MNB\t5CG4102MNC\n5CG9999XYZ\n5cg3281jqz\n2.8417E+11"
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.CSS("#serials-serials"), serials), chromedp.SetValue(chromedp.CSS("#serials-groupTag"), "Loaners")); err != nil {
		return err
	}
	if err := s.shot(ctx, "bulk-serials-form"); err != nil {
		return err
	}
	if err := load(ctx, "find the devices", chromedp.Click(chromedp.CSS(`[data-testid="serials-form"] button[type="submit"]`))); err != nil {
		return err
	}
	return s.shot(ctx, "bulk-serials-confirm")
}

// readOnlyRegistration: someone whose sign-in grants the desk only reading sees the same devices
// waiting, without anything to tick, approve or revoke, and why.
func (s *shooter) readOnlyRegistration(browser context.Context) error {
	ctx, cancel, err := s.tab(browser)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.signIn(ctx, demoidp.ReadGrantKey, "/registration", false); err != nil {
		return err
	}
	return s.shot(ctx, "registration-read-only")
}

func (s *shooter) readerFlow(browser context.Context) error {
	ctx, cancel, err := s.tab(browser)
	if err != nil {
		return err
	}
	defer cancel()
	if err := s.signIn(ctx, "reader", "/uploads/new", false); err != nil {
		return err
	}
	if err := load(ctx, "submit as reader", chromedp.Click(chromedp.CSS(`form[action="/uploads"] button[type="submit"]`))); err != nil {
		return err
	}
	return s.shot(ctx, "create-refused-reader")
}

// demoHash is a fixed hardware hash of a real hash's size, made from seed.
func demoHash(seed string) string {
	var b bytes.Buffer
	sum := sha256.Sum256([]byte(seed))
	for b.Len() < 3000 {
		b.Write(sum[:])
		sum = sha256.Sum256(sum[:])
	}
	return base64.StdEncoding.EncodeToString(b.Bytes())
}

// demoDeviceCSV is a small Intune CSV with fixed hardware hashes: two good rows, one repaired
// and one refused by the pre-flight.
func demoDeviceCSV() []byte {
	hash := demoHash
	var out bytes.Buffer
	w := csv.NewWriter(&out)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	w.Write([]string{"CZC1234ABC", "", hash("one"), "Sales", "AdeleV@contoso.example"})
	w.Write([]string{"CZC1234ABD", "", strings.TrimRight(hash("two")+"=", "="), "Sales", ""})
	w.Write([]string{"CZC1234ABE", "", hash("three"), "", ""})
	w.Write([]string{"", "", hash("four"), "", ""})
	w.Flush()
	return out.Bytes()
}

// dejaVu is where Debian keeps the DejaVu fonts, the ones a machine with Chromium and nothing
// else has.
const dejaVu = "/usr/share/fonts/truetype/dejavu"

// onlyDejaVu keeps the pictures the same whatever other fonts the machine has: it writes a
// fontconfig file that offers Chromium the DejaVu fonts alone, and returns the variable that
// points Chromium to it ("" where DejaVu is not installed: the machine's fonts are used).
func onlyDejaVu(tmp string) (string, error) {
	if _, err := os.Stat(dejaVu); err != nil {
		return "", nil
	}
	conf := filepath.Join(tmp, "fonts.conf")
	text := `<?xml version="1.0"?>
<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">
<fontconfig>
  <dir>` + dejaVu + `</dir>
  <cachedir>` + filepath.Join(tmp, "fontcache") + `</cachedir>
  <include ignore_missing="yes">/etc/fonts/conf.d</include>
</fontconfig>
`
	if err := os.WriteFile(conf, []byte(text), 0o644); err != nil {
		return "", err
	}
	return "FONTCONFIG_FILE=" + conf, nil
}
