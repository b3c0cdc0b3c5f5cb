package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers/registration"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// captureCSV is the file Get-WindowsAutopilotInfo -OutputFile writes: ConvertTo-Csv with its
// quotes stripped, CRLF line ends; -Partner adds the manufacturer and model.
func captureCSV(partner bool, devices ...[2]string) string {
	var b strings.Builder
	if partner {
		b.WriteString("Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model\r\n")
	} else {
		b.WriteString("Device Serial Number,Windows Product ID,Hardware Hash\r\n")
	}
	for _, d := range devices {
		b.WriteString(d[0] + ",," + d[1])
		if partner {
			b.WriteString(",HP,HP EliteBook 840 G9")
		}
		b.WriteString("\r\n")
	}
	return b.String()
}

// utf16LE is text as Windows PowerShell 5.1's Out-File writes it: UTF-16 little-endian with a BOM.
func utf16LE(s string) []byte {
	out := []byte{0xFF, 0xFE}
	for _, u := range utf16.Encode([]rune(s)) {
		out = binary.LittleEndian.AppendUint16(out, u)
	}
	return out
}

// createCode creates a registration code as b's signed-in person and returns it as shown.
func createCode(t *testing.T, d *desk, b *http.Client, values map[string]string) (string, *goquery.Document) {
	t.Helper()
	_, doc := d.get(b, "/registration/codes/new")
	form := formValues(t, doc, `form[action="/registration/codes"]`)
	for k, v := range values {
		form.Set(k, v)
	}
	resp, doc := d.post(b, "/registration/codes", form)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("creating a code answered %d: %.600s", resp.StatusCode, text(doc))
	}
	code := strings.TrimSpace(doc.Find(`[data-testid="code"]`).Text())
	if code == "" {
		t.Fatalf("no code shown: %.600s", text(doc))
	}
	return code, doc
}

// device sends what a technician's curl.exe would: no cookie, no CSRF token.
type device struct {
	t      *testing.T
	base   string
	client *http.Client
	ip     string // X-Forwarded-For, when the desk trusts its peer
}

func (d *desk) device() *device {
	return &device{t: d.t.(*testing.T), base: d.srv.URL, client: &http.Client{Transport: d.srv.Client().Transport}}
}

// multipart posts file as the form field "csv", as curl.exe -F "csv=@AutopilotHWID.csv" does.
func (v *device) multipart(path string, file []byte) (int, string, http.Header) {
	v.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("csv", "AutopilotHWID.csv")
	part.Write(file)
	w.Close()
	return v.do(http.MethodPost, path, w.FormDataContentType(), &body)
}

// raw posts file as the whole body, as curl.exe --data-binary with a content type does.
func (v *device) raw(path, contentType string, file []byte) (int, string, http.Header) {
	v.t.Helper()
	return v.do(http.MethodPost, path, contentType, bytes.NewReader(file))
}

func (v *device) status(code string) (int, string) {
	v.t.Helper()
	status, body, _ := v.do(http.MethodGet, "/register/"+code+"/status", "", nil)
	return status, body
}

func (v *device) do(method, path, contentType string, body io.Reader) (int, string, http.Header) {
	v.t.Helper()
	req, _ := http.NewRequest(method, v.base+path, body)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("User-Agent", "curl/8.9.1")
	if v.ip != "" {
		req.Header.Set("X-Forwarded-For", v.ip)
	}
	resp, err := v.client.Do(req)
	if err != nil {
		v.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if len(resp.Cookies()) > 0 {
		v.t.Errorf("%s %s set a cookie: %v", method, path, resp.Header.Values("Set-Cookie"))
	}
	return resp.StatusCode, string(data), resp.Header
}

func registrations(t *testing.T, a *app, f store.SubmissionFilter) []store.RegistrationSubmission {
	t.Helper()
	if f.TenantID == "" && f.CodeID == "" && f.JobID == "" {
		f.TenantID = demoidp.DemoTenantID
	}
	subs, err := a.db.Registrations(context.Background(), f)
	if err != nil {
		t.Fatal(err)
	}
	return subs
}

// waitFor polls cond until it holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	if raceEnabled {
		deadline = time.Now().Add(3 * time.Minute)
	}
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func syncCalls(e *emulator.Emulator) int { return postsTo(e, "/windowsAutopilotSettings/sync") }

var fastImports = appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond},
	RegistrationEvery: 20 * time.Millisecond}

// The whole flow: an administrator creates a code; the technician at the device posts the file
// Windows PowerShell 5.1 wrote (UTF-16 with a BOM, -Partner columns) with curl.exe and reads the
// answer; a second person sees the device waiting (with its model, the code's note and creator,
// where it came from, whether it is registered), approves, and it is imported with their token,
// synced, and reported registered to the device; its hash is overwritten everywhere; the
// history has every step.
func TestRegistrationFromTheDeviceEndToEnd(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, page := createCode(t, d, admin, map[string]string{"groupTag": "Floor3", "note": "Floor 3 refurb batch", "hours": "4", "uses": "2"})
	if len(strings.ReplaceAll(code, "-", "")) != 12 || strings.Count(code, "-") != 2 {
		t.Errorf("code %q is not three groups of four", code)
	}
	send := page.Find(`[data-testid="send"]`).Text()
	if want := `curl.exe -F "csv=@AutopilotHWID.csv" ` + d.srv.URL + "/register/" + code; send != want {
		t.Errorf("send command %q, want %q", send, want)
	}
	if capture := page.Find(`[data-testid="capture"]`).Text(); !strings.Contains(capture, "Get-WindowsAutopilotInfo -Partner -OutputFile AutopilotHWID.csv") {
		t.Errorf("capture commands: %q", capture)
	}
	if st := page.Find(`[data-testid="status"]`).Text(); st != "curl.exe "+d.srv.URL+"/register/"+code+"/status" {
		t.Errorf("status command %q", st)
	}
	codes, _ := d.app.db.RegistrationCodes(context.Background(), demoidp.DemoTenantID, 10)
	if len(codes.Usable) != 1 || codes.Ended != 0 {
		t.Fatalf("%d codes stored that take devices, %d that do not", len(codes.Usable), codes.Ended)
	}
	if got := bodyOf(t, admin, d.srv.URL+"/registration"); strings.Contains(got, code) || strings.Contains(got, strings.ToLower(code)) {
		t.Error("the list of codes shows a code's value")
	}

	hash := realHash()
	dev := d.device()
	// Typed in lower case, without dashes: the same code.
	typed := strings.ToLower(strings.ReplaceAll(code, "-", ""))
	status, answer, _ := dev.multipart("/register/"+typed, utf16LE(captureCSV(true, [2]string{"5CG1234ABC", hash})))
	if status != http.StatusAccepted {
		t.Fatalf("sending answered %d:\n%s", status, answer)
	}
	for _, want := range []string{"received 1 device", "Line 2: serial 5CG1234ABC, HP EliteBook 840 G9", "UTF-16", "Waiting for approval",
		"This code expires at", "group tag \"Floor3\"", "curl.exe " + d.srv.URL + "/register/" + code + "/status"} {
		if !strings.Contains(answer, want) {
			t.Errorf("the answer lacks %q:\n%s", want, answer)
		}
	}
	if strings.Contains(answer, hash) || strings.Contains(answer, hash[:40]) {
		t.Error("the answer shows the hash")
	}
	for _, l := range strings.Split(answer, "\r\n") {
		if len([]rune(l)) > 78 {
			t.Errorf("line longer than 78 characters: %q", l)
		}
	}
	_, st := dev.status(code)
	if !strings.Contains(st, "5CG1234ABC (sent") || !strings.Contains(st, "WAITING") || !strings.Contains(st, "Floor 3 refurb batch") {
		t.Errorf("status:\n%s", st)
	}

	// The creator sees the device, but a second person approves.
	_, doc := d.get(admin, "/registration")
	if doc.Find(`[data-testid="waiting-count"]`).Text() == "" || !strings.Contains(doc.Find(`[data-testid="waiting-count"]`).Text(), "1") {
		t.Errorf("the navigation shows no waiting count: %q", doc.Find(`nav`).Text())
	}
	if doc.Find(`[data-testid="own-code"]`).Length() != 1 || doc.Find(`button[value="approve"]`).Length() != 0 {
		t.Errorf("the creator is offered to approve their own code")
	}
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	_, doc = d.get(second, "/registration")
	row := doc.Find(`[data-testid="waiting"] tr[data-serial="5CG1234ABC"]`)
	rowText := row.Text()
	for _, want := range []string{"HP", "HP EliteBook 840 G9", hash[:4] + "…" + hash[len(hash)-4:], "127.0.0.1", "no"} {
		if !strings.Contains(rowText, want) {
			t.Errorf("the waiting row lacks %q: %q", want, rowText)
		}
	}
	card := doc.Find(`[data-testid="waiting-card"]`).Text()
	if !strings.Contains(card, "Floor 3 refurb batch") || !strings.Contains(card, "Adele Vance") {
		t.Errorf("the card does not name the code's note and creator: %q", card)
	}
	form := formValues(t, doc, `form[action="/registration/decide"]`)
	form.Set("action", "approve")
	resp, doc := d.post(second, "/registration/decide", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/devices/import/") {
		t.Fatalf("approving led to %s: %.600s", resp.Request.URL, text(doc))
	}
	job := resp.Request.URL.Path
	doc = waitFinished(t, d, second, job)
	if doc.Find(`[data-testid="outcome"] tr[data-verdict="imported"]`).Length() != 1 {
		t.Fatalf("not imported: %s", text(doc))
	}
	if owner := strings.Join(strings.Fields(doc.Find(`[data-testid="owner"]`).Text()), " "); !strings.HasPrefix(owner, "Approved by ") || !strings.Contains(owner, "from the registration code") {
		t.Errorf("the import page says %q of who started it", owner)
	}
	jobRec, _ := d.app.db.GetImportJob(context.Background(), demoidp.DemoTenantID, strings.TrimPrefix(job, "/devices/import/"))
	if jobRec.ObjectID != demoidp.ManyGroupsObjectID {
		t.Errorf("the import job belongs to %s, not the approver", jobRec.ObjectID)
	}
	if n := importCalls(d.emu); n != 1 {
		t.Errorf("%d import calls", n)
	}
	waitFor(t, "the sync", func() bool { return syncCalls(d.emu) == 1 })
	waitFor(t, "the registration to settle", func() bool {
		subs := registrations(t, d.app, store.SubmissionFilter{})
		return len(subs) == 1 && subs[0].State == store.SubmissionFinished && subs[0].SyncNote != ""
	})
	_, st = dev.status(code)
	if !strings.Contains(st, "REGISTERED") || !strings.Contains(st, "group tag \"Floor3\"") {
		t.Errorf("status after import:\n%s", st)
	}
	for _, s := range registrations(t, d.app, store.SubmissionFilter{Hashes: true}) {
		for _, dv := range s.Devices {
			if dv.Hash != "" {
				t.Error("the registration still holds the hash after its import")
			}
		}
	}
	rows, _ := d.app.db.ImportRows(context.Background(), jobRec.ID, store.RowFilter{Hashes: true})
	if len(rows) != 1 || rows[0].Hash != "" || rows[0].GroupTag != "Floor3" {
		t.Errorf("import rows after the import: %+v", rows)
	}
	var actions []string
	entries, _, _ := d.app.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Limit: 50})
	for _, a := range entries {
		actions = append(actions, a.Action)
		if a.Action == "registration-received" && !strings.Contains(a.Summary, "127.0.0.1") {
			t.Errorf("the use of the code does not say from where: %q", a.Summary)
		}
	}
	for _, want := range []string{"registration-code-created", "registration-received", "registration-approved", "import", "sync", "import-finished"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("the history lacks %s: %v", want, actions)
		}
	}
	// The steps the desk took alone say so: no answer from Graph, no support ids, and a device is
	// named by its address alone.
	for _, a := range entries {
		if !strings.HasPrefix(a.Action, "registration-") {
			continue
		}
		_, doc := d.get(second, "/activity/"+a.ID)
		if doc.Find(`[data-testid="support"]`).Length() != 0 || strings.Contains(text(doc), "Graph accepted") || doc.Find(`[data-testid="desk-step"]`).Length() != 1 {
			t.Errorf("the record of %s claims an answer from Graph: %.900s", a.Action, text(doc))
		}
		if by := doc.Find(`[data-testid="byline"]`).Text(); strings.Contains(by, "()") {
			t.Errorf("the record of %s names its author %q", a.Action, by)
		}
	}
	// The device's history names its registration, not a CSV file.
	var href string
	for i := 0; href == ""; i++ {
		_, doc = d.get(second, "/devices?serial=5CG1234ABC")
		href = doc.Find(`[data-testid="devices"] a[href^="/devices/"]`).AttrOr("href", "")
		if i > 200 {
			t.Fatalf("the registered device is not listed: %s", text(doc))
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, doc = d.get(second, href)
	if history := doc.Find(`[data-testid="history"]`).Text(); !strings.Contains(history, "Registered from the device with registration code “Floor 3 refurb batch” (sent from 127.0.0.1), approved by Isaiah Langer: imported") ||
		strings.Contains(history, "CSV file") {
		t.Errorf("the device's history: %s", history)
	}
	if logs := d.log.String(); strings.Contains(logs, strings.ReplaceAll(code, "-", "")) || strings.Contains(logs, code) || strings.Contains(logs, typed) || strings.Contains(logs, hash[:64]) {
		t.Error("the logs hold the code or the hash")
	}
}

func bodyOf(t *testing.T, b *http.Client, u string) string {
	t.Helper()
	resp, err := b.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	return string(data)
}

// The files the capture script writes, sent both ways curl.exe sends them: Windows PowerShell
// 5.1's UTF-16 with a BOM, PowerShell 7's UTF-8, CRLF or LF, quotes stripped or not, with
// -Partner or -GroupTag columns. Each is kept with its serial and hash intact; a group tag or user
// in the file gives way to the code's, with a note.
func TestRegisterReadsTheCaptureScriptsFiles(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, map[string]string{"groupTag": "Kiosk", "uses": "20"})
	dev := d.device()
	type shape struct {
		name        string
		file        func(serial, hash string) []byte
		contentType string // "" sends multipart
		note        string // expected in the answer
	}
	quoted := func(serial, hash string) string {
		return "\"Device Serial Number\",\"Windows Product ID\",\"Hardware Hash\"\r\n\"" + serial + "\",\"\",\"" + hash + "\"\r\n"
	}
	shapes := []shape{
		{"Windows PowerShell 5.1", func(s, h string) []byte { return utf16LE(captureCSV(false, [2]string{s, h})) }, "", "UTF-16"},
		{"Windows PowerShell 5.1 -Partner, raw body", func(s, h string) []byte { return utf16LE(captureCSV(true, [2]string{s, h})) }, "text/csv", "Manufacturer name"},
		{"PowerShell 7", func(s, h string) []byte { return []byte(captureCSV(false, [2]string{s, h})) }, "", ""},
		{"PowerShell 7 -Partner, raw body", func(s, h string) []byte { return []byte(captureCSV(true, [2]string{s, h})) }, "text/csv; charset=utf-8", "Device model"},
		{"quotes kept", func(s, h string) []byte { return []byte(quoted(s, h)) }, "", "quotation marks"},
		{"UTF-8 with a BOM, LF", func(s, h string) []byte {
			return []byte("\xEF\xBB\xBF" + strings.ReplaceAll(captureCSV(false, [2]string{s, h}), "\r\n", "\n"))
		}, "application/octet-stream", "byte order mark"},
		{"-GroupTag and -AssignedUser", func(s, h string) []byte {
			return utf16LE("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n" + s + ",," + h + ",Sales,AdeleV@contoso.example\r\n")
		}, "", "replaced by the code's"},
	}
	for i, sh := range shapes {
		serial, hash := fmt.Sprintf("CAPTURE-%02d", i), realHash()
		var status int
		var answer string
		if sh.contentType == "" {
			status, answer, _ = dev.multipart("/register/"+code, sh.file(serial, hash))
		} else {
			status, answer, _ = dev.raw("/register/"+code, sh.contentType, sh.file(serial, hash))
		}
		if status != http.StatusAccepted || !strings.Contains(answer, "serial "+serial) || !strings.Contains(answer, sh.note) {
			t.Errorf("%s: answered %d:\n%s", sh.name, status, answer)
			continue
		}
		var found *store.RegistrationDevice
		for _, sub := range registrations(t, d.app, store.SubmissionFilter{Hashes: true}) {
			for _, dv := range sub.Devices {
				if dv.Serial == serial {
					found = &dv
				}
			}
		}
		switch {
		case found == nil:
			t.Errorf("%s: %s was not kept", sh.name, serial)
		case found.Hash != hash:
			t.Errorf("%s: the hash was not kept as sent", sh.name)
		case found.GroupTag != "Kiosk" || found.User != "":
			t.Errorf("%s: kept with group tag %q and user %q, not the code's", sh.name, found.GroupTag, found.User)
		case strings.Contains(sh.name, "Partner") && (found.Manufacturer != "HP" || found.Model != "HP EliteBook 840 G9"):
			t.Errorf("%s: manufacturer %q, model %q", sh.name, found.Manufacturer, found.Model)
		}
	}
}

// Every code that cannot take a device — mistyped, malformed, expired, revoked or used up — gets
// the very same answer, so nothing about codes can be learnt by trying them; and a code that
// never brought a device has no status once it cannot take one.
func TestRegisterAnswersEveryUnusableCodeAlike(t *testing.T) {
	clock := &skewedClock{}
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT": "24h", "AUTOPILOTDESK_SESSION_LIFETIME": "24h",
		"AUTOPILOTDESK_RATE_LIMIT_REGISTER_WRONG": "off"}, appOptions{Now: clock.Now, RegistrationEvery: 20 * time.Millisecond})
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	expiring, _ := createCode(t, d, admin, map[string]string{"hours": "1"})
	spent, _ := createCode(t, d, admin, map[string]string{"hours": "8"})
	revoked, _ := createCode(t, d, admin, map[string]string{"hours": "8", "note": "to revoke"})
	dev := d.device()
	file := func(serial string) []byte { return []byte(captureCSV(false, [2]string{serial, realHash()})) }
	if status, answer, _ := dev.multipart("/register/"+spent, file("SPENT-1")); status != http.StatusAccepted {
		t.Fatalf("first use answered %d: %s", status, answer)
	}
	_, doc := d.get(admin, "/registration")
	form := formValues(t, doc, `tr[data-code-state="active"]:has(td:contains("to revoke")) form`)
	action := doc.Find(`tr[data-code-state="active"]:has(td:contains("to revoke")) form`).AttrOr("action", "")
	if _, after := d.post(admin, action, form); !strings.Contains(after.Find(`[role="status"], .alert`).Text(), "Revoked code “to revoke”: it takes no more devices") {
		t.Errorf("no notice after revoking: %.600s", text(after))
	}
	clock.Add(2 * time.Hour) // the one-hour code has expired

	var first string
	for _, c := range []struct{ name, path string }{
		{"wrong", "/register/" + registration.Format(registration.NewCode())},
		{"malformed", "/register/hello"},
		{"too long", "/register/" + strings.Repeat("A", 200)},
		{"expired", "/register/" + expiring},
		{"used up", "/register/" + spent},
		{"revoked", "/register/" + revoked},
	} {
		status, answer, _ := dev.multipart(c.path, file("NOPE-1"))
		if status != http.StatusNotFound {
			t.Errorf("%s: %d %s", c.name, status, answer)
		}
		if first == "" {
			first = answer
		} else if answer != first {
			t.Errorf("%s answers differently:\n%s\nvs\n%s", c.name, answer, first)
		}
	}
	// A spent one-use code's technician may only be sending again what was taken: the one answer
	// shows them the way to its status.
	if !strings.Contains(first, "no registration code matches") || !strings.Contains(first, "If you already sent this device's file with this code") ||
		!strings.Contains(first, "curl.exe "+d.srv.URL+"/register/XXXX-XXXX-XXXX/status") {
		t.Errorf("the answer: %s", first)
	}
	for _, l := range strings.Split(first, "\r\n") {
		if len(l) > 78 {
			t.Errorf("a line of %d characters: %q", len(l), l)
		}
	}
	for _, c := range []string{registration.Format(registration.NewCode()), expiring, revoked} {
		if status, answer := dev.status(c); status != http.StatusNotFound || answer != first {
			t.Errorf("status of %s: %d %s", c, status, answer)
		}
	}
	// A code that brought a device still answers its status.
	if status, answer := dev.status(spent); status != http.StatusOK || !strings.Contains(answer, "SPENT-1") || !strings.Contains(answer, "Every use") {
		t.Errorf("status of a used code: %d %s", status, answer)
	}
	if subs := registrations(t, d.app, store.SubmissionFilter{}); len(subs) != 1 {
		t.Errorf("%d submissions kept, want 1", len(subs))
	}
	revokes, _, _ := d.app.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Action: "registration-code-revoked", Limit: 5})
	if len(revokes) != 1 || revokes[0].ActorUPN != "AdeleV@contoso.example" || !strings.Contains(revokes[0].Summary, "to revoke") {
		t.Errorf("the history of the revocation: %+v", revokes)
	}
}

// A flood of wrong codes from one address is answered 429 with Retry-After — then the right code
// from that address is too, so the answer tells nothing — while other addresses go on; each
// address, and each code, has its own budget of requests.
// A code typed into a wrong address (another case, a doubled slash, the team's page instead of
// the device's) is kept out of the logs as the right address's is: only "…" stands for it. The
// words of the desk's own routes stay readable.
func TestACodeInAWrongAddressIsNotLogged(t *testing.T) {
	d := startDesk(t, nil)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, map[string]string{"hours": "4", "uses": "1"})
	bare := strings.ReplaceAll(code, "-", "")
	dev := d.device()
	for _, path := range []string{"/REGISTER/" + code, "/Register/" + code + "/status", "/register//" + code, "/registration/" + code,
		"/./register/" + code + "/status", "/uploads/" + strings.ToLower(bare), "/register/" + code + "/" + code,
		"/register-" + code, "/regster/" + code + ".", "/x/" + code + ".csv", "/x/" + strings.ToLower(bare) + "!", "/x/id" + bare + "end",
		"/devices/import/0192abcd-1a90-7643-b166-51de2fabcdef"} {
		dev.do(http.MethodGet, path, "", nil)
	}
	logs := d.log.String()
	for _, leak := range []string{code, bare, strings.ToLower(code), strings.ToLower(bare)} {
		if strings.Contains(logs, leak) {
			t.Errorf("the logs hold the code as %q:\n%s", leak, logs)
		}
	}
	for _, kept := range []string{`"path":"/REGISTER/…"`, `"path":"/registration/…"`, `"path":"/uploads/…"`, `"path":"/register/…/…"`,
		`"path":"/…"`, `"path":"/regster/…."`, `"path":"/x/….csv"`, `"path":"/x/…!"`, `"path":"/devices/import/0192abcd-1a90-7643-b166-51de2fabcdef"`} {
		if !strings.Contains(logs, kept) {
			t.Errorf("no line with %s:\n%s", kept, logs)
		}
	}
}

func TestRegisterRateLimits(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_REGISTER_WRONG": "3/10m", "AUTOPILOTDESK_RATE_LIMIT_REGISTER": "6/10m",
		"AUTOPILOTDESK_TRUSTED_PROXIES": "127.0.0.1"}, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, map[string]string{"uses": "50"})
	guesser := d.device()
	guesser.ip = "203.0.113.9"
	for i := range 3 {
		if status, _ := guesser.status(registration.Format(registration.NewCode())); status != http.StatusNotFound {
			t.Fatalf("wrong code %d answered %d", i+1, status)
		}
	}
	status, answer, header := guesser.do(http.MethodGet, "/register/"+registration.Format(registration.NewCode())+"/status", "", nil)
	if status != http.StatusTooManyRequests || header.Get("Retry-After") == "" {
		t.Fatalf("the 4th wrong code answered %d (Retry-After %q): %s", status, header.Get("Retry-After"), answer)
	}
	if status, _ := guesser.status(code); status != http.StatusTooManyRequests {
		t.Errorf("the right code from a flooding address answered %d, not 429", status)
	}
	other := d.device()
	other.ip = "198.51.100.7"
	if status, answer := other.status(code); status != http.StatusOK {
		t.Errorf("another address was refused: %d %s", status, answer)
	}
	// Per address: the 7th request of one address is refused, whichever codes it names.
	code2, _ := createCode(t, d, admin, nil)
	code3, _ := createCode(t, d, admin, nil)
	busy := d.device()
	busy.ip = "198.51.100.8"
	for i := range 6 {
		if status, answer := busy.status([]string{code2, code3}[i%2]); status != http.StatusOK {
			t.Fatalf("request %d: %d %s", i+1, status, answer)
		}
	}
	if status, _ := busy.status(code3); status != http.StatusTooManyRequests {
		t.Errorf("the 7th request of one address answered %d", status)
	}
	// Per code: the first code's 7th request is refused, from whichever address (one was above).
	for i := range 6 {
		v := d.device()
		v.ip = fmt.Sprintf("192.0.2.%d", i+1)
		want := http.StatusOK
		if i == 5 {
			want = http.StatusTooManyRequests
		}
		if status, _ := v.status(code); status != want {
			t.Errorf("request %d of the code answered %d, want %d", i+2, status, want)
		}
	}
}

// On the whole desk: a device's request carries no session, even beside a signed-in browser, and
// the state database keeps a device sent twice once. (Every refusal of what a device sends is
// tested in handlers.)
func TestRegisterNeedsNoSessionAndKeepsADeviceOnce(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, map[string]string{"uses": "3"})
	dev := d.device()
	one := []byte(captureCSV(false, [2]string{"ONE-1", realHash()}))
	// The signed-in administrator's cookie gives a device request nothing, and is not needed.
	u, _ := url.Parse(d.srv.URL)
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/register/"+registration.Format(registration.NewCode()), bytes.NewReader(one))
	req.Header.Set("Content-Type", "text/csv")
	for _, ck := range admin.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	resp, err := dev.client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound || len(resp.Cookies()) > 0 {
		t.Errorf("a wrong code with a session cookie answered %d, cookies %v", resp.StatusCode, resp.Cookies())
	}
	// A right code needs no cookie, no CSRF token and no Origin.
	if status, answer, _ := dev.raw("/register/"+code, "text/csv", one); status != http.StatusAccepted {
		t.Errorf("the right file answered %d: %s", status, answer)
	}
	// The same device twice is not kept twice: it is told it waits.
	status, answer, _ := dev.raw("/register/"+code, "text/csv", one)
	if status != http.StatusOK || !strings.Contains(answer, "sent before") || len(registrations(t, d.app, store.SubmissionFilter{})) != 1 {
		t.Errorf("the same device again answered %d: %s", status, answer)
	}
}

// sendDevice creates nothing: it sends one device with code and fails the test unless kept.
func sendDevice(t *testing.T, d *desk, code, serial string) string {
	t.Helper()
	hash := realHash()
	if status, answer, _ := d.device().raw("/register/"+code, "text/csv", []byte(captureCSV(false, [2]string{serial, hash}))); status != http.StatusAccepted {
		t.Fatalf("sending %s answered %d: %s", serial, status, answer)
	}
	return hash
}

// decideForm is the decision form of the card of code, as b's page shows it.
func decideForm(t *testing.T, d *desk, b *http.Client) (url.Values, *goquery.Document) {
	t.Helper()
	_, doc := d.get(b, "/registration")
	return formValues(t, doc, `form[action="/registration/decide"]`), doc
}

// A reader cannot approve (nor create codes): no button, and a forged POST is refused with
// nothing changed. A code's creator cannot approve its devices unless the desk allows it; they
// may reject, with a reason the device then reads, and the hash is overwritten.
func TestRegistrationApprovalRules(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, created := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "RULES-1")
	if !strings.Contains(text(created), "someone else in your team approves it") {
		t.Errorf("the created code does not say another person approves: %.900s", text(created))
	}

	reader := d.browser() // granted only the read permission
	d.signIn(reader, demoidp.ReadGrantKey, "/")
	form, doc := decideForm(t, d, admin) // the admin's form, with the reader's token below
	if _, rdoc := d.get(reader, "/registration"); rdoc.Find(`button[value="approve"], button[value="reject"], a[href="/registration/codes/new"]`).Length() != 0 ||
		rdoc.Find(`[data-testid="read-only"]`).Length() != 1 {
		t.Errorf("a reader is offered to decide or create codes")
	}
	_, rdoc := d.get(reader, "/registration")
	form.Set("_csrf", rdoc.Find(`form[action="/auth/signout"] input[name="_csrf"]`).AttrOr("value", ""))
	form.Set("action", "approve")
	if resp, _ := d.post(reader, "/registration/decide", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a reader's approval answered %d", resp.StatusCode)
	}
	if resp, _ := d.get(reader, "/registration/codes/new"); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a reader's code form answered %d", resp.StatusCode)
	}

	// The creator: no approve button, and a forged approval is refused.
	if doc.Find(`button[value="approve"]`).Length() != 0 {
		t.Error("the creator is offered to approve")
	}
	form, _ = decideForm(t, d, admin)
	form.Set("action", "approve")
	if resp, doc := d.post(admin, "/registration/decide", form); resp.StatusCode != http.StatusForbidden || !strings.Contains(text(doc), "Someone else approves") {
		t.Errorf("the creator's approval answered %d: %.300s", resp.StatusCode, text(doc))
	}
	if importCalls(d.emu) != 0 || registrations(t, d.app, store.SubmissionFilter{})[0].State != store.SubmissionWaiting {
		t.Fatal("a refused approval changed something")
	}
	// Rejecting needs a reason; what was ticked and typed stays.
	form, _ = decideForm(t, d, admin)
	form.Set("action", "reject")
	form.Set("reason", "  ")
	resp, doc := d.post(admin, "/registration/decide", form)
	if resp.StatusCode != http.StatusUnprocessableEntity || doc.Find(`.reject-field .field-error`).Length() != 1 {
		t.Errorf("a rejection without a reason answered %d: %.300s", resp.StatusCode, text(doc))
	}
	form.Set("reason", "Not one of ours: serial unknown to purchasing.")
	if resp, doc := d.post(admin, "/registration/decide", form); resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="notice"]`).Length() != 1 {
		t.Errorf("the rejection answered %d: %.300s", resp.StatusCode, text(doc))
	} else if row := doc.Find(`[data-testid="recent"] tr[data-state="rejected"]`).Text(); !strings.Contains(row, "purchasing.”") || strings.Contains(row, ".”.") {
		t.Errorf("the decided row: %q", row)
	}
	subs := registrations(t, d.app, store.SubmissionFilter{Hashes: true})
	if subs[0].State != store.SubmissionRejected || subs[0].Devices[0].Hash != "" {
		t.Errorf("after the rejection: state %s, hash kept %v", subs[0].State, subs[0].Devices[0].Hash != "")
	}
	if _, answer := d.device().status(code); !strings.Contains(answer, "REJECTED") || !strings.Contains(answer, "Not one of ours") ||
		strings.Contains(answer, "Adele") || strings.Contains(answer, `.".`) {
		t.Errorf("status after the rejection:\n%s", answer)
	}
	if importCalls(d.emu) != 0 {
		t.Error("a rejected device was imported")
	}
	rejections, _, _ := d.app.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Action: "registration-rejected", Limit: 5})
	if len(rejections) != 1 || !strings.Contains(rejections[0].Summary, "RULES-1") || !strings.Contains(rejections[0].Summary, "Not one of ours") ||
		strings.Contains(rejections[0].Summary, ".”.") {
		t.Errorf("the history of the rejection: %+v", rejections)
	}
}

// With AUTOPILOTDESK_REGISTRATION_SELF_APPROVE the creator approves their own code's devices.
func TestRegistrationSelfApprovalWhenAllowed(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_REGISTRATION_SELF_APPROVE": "true"}, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, created := createCode(t, d, admin, map[string]string{"groupTag": "Solo"})
	sendDevice(t, d, code, "SOLO-1")
	_, newForm := d.get(admin, "/registration/codes/new")
	form, page := decideForm(t, d, admin)
	// The pages say what the desk allows: nobody else is needed.
	for name, doc := range map[string]*goquery.Document{"the new-code form": newForm, "the created code": created, "the registration page": page} {
		if got := strings.ToLower(text(doc)); strings.Contains(got, "someone else") || strings.Contains(got, "another demo administrator") || !strings.Contains(got, "approve") {
			t.Errorf("%s says another person approves: %.900s", name, text(doc))
		}
	}
	form.Set("action", "approve")
	resp, doc := d.post(admin, "/registration/decide", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/devices/import/") {
		t.Fatalf("self-approval led to %s: %.300s", resp.Request.URL, text(doc))
	}
	waitFinished(t, d, admin, resp.Request.URL.Path)
	if importCalls(d.emu) != 1 {
		t.Errorf("%d import calls", importCalls(d.emu))
	}
}

// Fifty approvals of one device at once, from five sessions of two people on one desk, import it
// exactly once: one job, one import call; every other approver is told who came first.
func TestConcurrentApprovalsImportOnce(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"}, fastImports)
	d.emu.SetFaults(emulator.Faults{LatencyMin: 30 * time.Millisecond, LatencyMax: 30 * time.Millisecond, Methods: []string{http.MethodPost}})
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "ONCE-1")
	var browsers []*http.Client
	var forms []url.Values
	for i := range 5 {
		b := d.browser()
		d.signIn(b, map[bool]string{true: demoidp.ManyGroupsKey, false: "admin"}[i%2 == 0], "/")
		browsers = append(browsers, b)
	}
	// Admin sessions cannot approve their own code: give every session a second person's form.
	for i, b := range browsers {
		if i%2 != 0 {
			b = browsers[0]
		}
		f, _ := decideForm(t, d, b)
		f.Set("action", "approve")
		forms = append(forms, f)
	}
	statuses := storm(t, 50, func(i int) (int, error) {
		k := (i % 3) * 2 // sessions 0, 2 and 4: the second person's
		return postDirect(d.srv.URL, browsers[k], d.srv.URL, "/registration/decide", forms[k])
	})
	if statuses[http.StatusSeeOther] != 1 || statuses[http.StatusConflict] != 49 || len(statuses) != 2 {
		t.Errorf("approvals answered by status: %v; want one through (303) and 49 told it was decided (409)", statuses)
	}
	subs := registrations(t, d.app, store.SubmissionFilter{})
	if len(subs) != 1 || subs[0].JobID == "" {
		t.Fatalf("submissions %+v", subs)
	}
	waitFinished(t, d, browsers[0], "/devices/import/"+subs[0].JobID)
	jobs, _ := d.app.db.ListImportJobs(context.Background(), demoidp.DemoTenantID, 50)
	if len(jobs) != 1 || importCalls(d.emu) != 1 {
		t.Errorf("%d import jobs and %d import calls, want 1 and 1", len(jobs), importCalls(d.emu))
	}
}

// When Graph refuses the approver's import for their account (Intune's 403), nothing is lost: the
// device waits again, its hash kept, with why; someone allowed to import then approves it.
func TestApprovalRefusedByGraphWaitsAgain(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	hash := sendDevice(t, d, code, "REFUSED-1")
	d.emu.SetFaults(emulator.Faults{Forbid403Nested: true})
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	form, _ := decideForm(t, d, second)
	form.Set("action", "approve")
	resp, _ := d.post(second, "/registration/decide", form)
	waitFinished(t, d, second, resp.Request.URL.Path)
	waitFor(t, "the device to wait again", func() bool {
		subs := registrations(t, d.app, store.SubmissionFilter{})
		return subs[0].State == store.SubmissionWaiting
	})
	subs := registrations(t, d.app, store.SubmissionFilter{Hashes: true})
	if subs[0].Devices[0].Hash != hash || !strings.Contains(subs[0].Refused, "Isaiah Langer") || subs[0].JobID != "" {
		t.Fatalf("after Graph's refusal: %+v", subs[0])
	}
	_, doc := d.get(admin, "/registration")
	if !strings.Contains(doc.Find(`[data-testid="refused-approval"]`).Text(), "refused") {
		t.Errorf("the waiting list does not say why: %.400s", text(doc))
	}
	if _, answer := d.device().status(code); !strings.Contains(answer, "WAITING") || !strings.Contains(answer, "again") {
		t.Errorf("status:\n%s", answer)
	}
	// Graph's 403 for the approver's role, met by the import in the background, leaves their pages
	// without changes, as a 403 to a request does; once their role allows it, they sign in again.
	if _, doc := d.get(second, "/registration"); doc.Find(`form[action="/registration/decide"]`).Length() != 0 ||
		doc.Find(`[data-testid="read-only"]`).Length() != 1 {
		t.Errorf("the refused approver is still offered the approval: %.400s", text(doc))
	}
	d.emu.SetFaults(emulator.Faults{})
	second = d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	form, _ = decideForm(t, d, second)
	form.Set("action", "approve")
	resp, _ = d.post(second, "/registration/decide", form)
	waitFinished(t, d, second, resp.Request.URL.Path)
	waitFor(t, "the import", func() bool {
		return registrations(t, d.app, store.SubmissionFilter{})[0].State == store.SubmissionFinished
	})
	if _, answer := d.device().status(code); !strings.Contains(answer, "REGISTERED") {
		t.Errorf("status:\n%s", answer)
	}
}

// A device nobody approves before its code expires is dropped: its hash overwritten, the history
// told, the status saying so; the code takes nothing more.
func TestRegistrationExpires(t *testing.T) {
	clock := &skewedClock{}
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT": "24h", "AUTOPILOTDESK_SESSION_LIFETIME": "24h"},
		appOptions{Now: clock.Now, RegistrationEvery: 20 * time.Millisecond})
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, map[string]string{"hours": "1", "uses": "2"})
	sendDevice(t, d, code, "LATE-1")
	clock.Add(61 * time.Minute)
	waitFor(t, "the expiry", func() bool {
		return registrations(t, d.app, store.SubmissionFilter{})[0].State == store.SubmissionExpired
	})
	subs := registrations(t, d.app, store.SubmissionFilter{Hashes: true})
	if subs[0].Devices[0].Hash != "" {
		t.Error("an expired device keeps its hash")
	}
	if _, answer := d.device().status(code); !strings.Contains(answer, "EXPIRED") || !strings.Contains(answer, "new code") {
		t.Errorf("status:\n%s", answer)
	}
	if status, _, _ := d.device().raw("/register/"+code, "text/csv", []byte(captureCSV(false, [2]string{"LATE-2", realHash()}))); status != http.StatusNotFound {
		t.Errorf("an expired code took a device: %d", status)
	}
	entries, _, _ := d.app.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Action: "registration-expired", Limit: 5})
	if len(entries) != 1 || !strings.Contains(entries[0].Summary, "LATE-1") {
		t.Fatalf("the history of the expiry: %+v", entries)
	}
	// The expiry is what the desk does when nobody approves in time, not a step that failed.
	_, doc := d.get(admin, "/activity")
	if title := doc.Find(`a[href="/activity/` + entries[0].ID + `"]`).Text(); title != "Devices dropped: nobody approved them in time" {
		t.Errorf("the history's line for the expiry reads %q", title)
	}
}

// Should the desk stop between the approval and its submit, the approved draft is submitted by
// the follower on any desk, exactly once.
func TestApprovedDraftIsSubmittedByTheFollower(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond},
		RegistrationEvery: time.Hour})
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "DRAFT-1")
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	subs := registrations(t, d.app, store.SubmissionFilter{})
	// The approval's first step alone, as a desk that stopped right after it leaves it.
	job := &store.ImportJob{TenantID: demoidp.DemoTenantID, ObjectID: demoidp.ManyGroupsObjectID, ActorName: "Isaiah Langer", ActorUPN: "IsaiahL@contoso.example", State: "draft"}
	if err := d.app.db.ApproveRegistrations(context.Background(), store.Approval{TenantID: demoidp.DemoTenantID, SubmissionIDs: []string{subs[0].ID},
		By: store.Decider{OID: demoidp.ManyGroupsObjectID, Name: "Isaiah Langer"}, Job: job,
		Activity: &store.Activity{TenantID: demoidp.DemoTenantID, Action: "registration-approved"}}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 5 {
		wg.Go(func() {
			if err := d.app.follower.Once(context.Background()); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	waitFinished(t, d, second, "/devices/import/"+job.ID)
	if n := importCalls(d.emu); n != 1 {
		t.Errorf("%d import calls, want 1", n)
	}
	d.app.follower.Once(context.Background())
	if s := registrations(t, d.app, store.SubmissionFilter{})[0]; s.State != store.SubmissionFinished {
		t.Errorf("state %s", s.State)
	}
}

// Two desks on one PostgreSQL database: a code created on A takes a device that reaches B; the
// device waits on both; approvals sent at once to A and B import it exactly once, with the
// approver's token; the device's status on either says it is registered.
func TestRegistrationAcrossReplicas(t *testing.T) {
	cl := startClusterWith(t, clusterOptions{app: appOptions{RegistrationEvery: 20 * time.Millisecond}})
	d := cl.onDesks("A", "B")
	admin, second := d.signedInBrowser("admin", cl.browser), cl.browser()
	code, _ := createCode(t, d, admin, map[string]string{"groupTag": "Replicas"})
	cl.via("B")
	parse(t, d.signIn(second, demoidp.ManyGroupsKey, "/"))
	if status, answer, _ := d.device().raw("/register/"+code, "text/csv", utf16LE(captureCSV(true, [2]string{"REPLICA-REG-1", realHash()}))); status != http.StatusAccepted {
		t.Fatalf("the device's file on B answered %d: %s", status, answer)
	}
	cl.via("A")
	form, doc := decideForm(t, d, second)
	if doc.Find(`tr[data-serial="REPLICA-REG-1"]`).Length() != 1 {
		t.Fatalf("A does not show the device B took: %.400s", text(doc))
	}
	form.Set("action", "approve")
	statuses := postAtOnce(t, 10, []string{cl.replicas["A"].URL, cl.replicas["B"].URL}, cl.lb.URL, []*http.Client{second}, "/registration/decide",
		func(*http.Client) url.Values { return form })
	if statuses[http.StatusSeeOther] != 1 {
		t.Errorf("of 10 approvals split over A and B, answered by status: %v; want one through (303)", statuses)
	}
	subs := registrations(t, cl.apps[0], store.SubmissionFilter{})
	if len(subs) != 1 || subs[0].JobID == "" || subs[0].DeciderOID != demoidp.ManyGroupsObjectID {
		t.Fatalf("submissions: %+v", subs)
	}
	cl.via("B")
	waitFinished(t, d, second, "/devices/import/"+subs[0].JobID)
	waitFor(t, "the registration to settle", func() bool {
		return registrations(t, cl.apps[1], store.SubmissionFilter{})[0].State == store.SubmissionFinished
	})
	if n := importCalls(cl.emu); n != 1 {
		t.Errorf("%d import calls, want 1", n)
	}
	for _, name := range []string{"A", "B"} {
		cl.via(name)
		if _, answer := d.device().status(code); !strings.Contains(answer, "REGISTERED") || !strings.Contains(answer, "Replicas") {
			t.Errorf("status on %s:\n%s", name, answer)
		}
	}
}

var _ = testkit.Env

// The waiting list says which serials are registered in the tenant already (the batched look-up
// among registered devices); approved anyway, such a device fails with Intune's 806, and the
// device's status tells the technician it is in Autopilot already.
func TestWaitingListSaysWhichSerialsAreRegistered(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	seeded := emulator.DemoAutopilotDevices(time.Now())[0]
	code, _ := createCode(t, d, admin, map[string]string{"uses": "2"})
	sendDevice(t, d, code, seeded.SerialNumber)
	sendDevice(t, d, code, "NEW-REG-1")
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	form, doc := decideForm(t, d, second)
	known := doc.Find(`tr[data-serial="` + seeded.SerialNumber + `"]`).Text()
	if !strings.Contains(known, "registered already") || (seeded.GroupTag != "" && !strings.Contains(known, seeded.GroupTag)) {
		t.Errorf("a registered serial: %q", known)
	}
	if fresh := doc.Find(`tr[data-serial="NEW-REG-1"]`).Text(); strings.Contains(fresh, "registered already") || !strings.Contains(fresh, "no") {
		t.Errorf("a new serial: %q", fresh)
	}
	form.Set("action", "approve")
	resp, _ := d.post(second, "/registration/decide", form)
	waitFinished(t, d, second, resp.Request.URL.Path)
	waitFor(t, "the registrations to settle", func() bool {
		for _, s := range registrations(t, d.app, store.SubmissionFilter{}) {
			if s.State != store.SubmissionFinished {
				return false
			}
		}
		return true
	})
	// The import's outcome is in the history, found by filtering on failures.
	_, doc = d.get(second, "/activity?outcome=failure")
	finished := doc.Find(`[data-testid="activity-title"]`).FilterFunction(func(_ int, s *goquery.Selection) bool {
		return strings.HasPrefix(s.Text(), "Import of 2 devices finished")
	})
	if finished.Length() != 1 || !strings.Contains(finished.Text(), "not every device was imported") ||
		!strings.Contains(text(doc), "1 imported, 1 failed in Intune (806 ZtdDeviceAlreadyAssigned)") {
		t.Errorf("the failed import is not among the failures: %s", text(doc))
	}
	_, answer := d.device().status(code)
	if !strings.Contains(answer, seeded.SerialNumber+" (sent") || !strings.Contains(answer, "ALREADY REGISTERED") || !strings.Contains(answer, "806") ||
		!strings.Contains(answer, "already registered in Windows Autopilot") || !strings.Contains(answer, "NEW-REG-1") || strings.Contains(answer, "FAILED") {
		t.Errorf("status:\n%s", answer)
	}
}

// While Graph throttles, the registration page does not wait out Retry-After for the look-up of
// the waiting serials: it shows at once, says they were not checked and why, and still offers
// to approve and reject.
func TestRegistrationPageStaysQuickWhileGraphThrottles(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "THROTTLED-1")
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	d.emu.SetFaults(emulator.Faults{ThrottleRequests: 1, ThrottleWindow: 20 * time.Second})
	d.get(second, "/registration") // spends the window's budget
	start := time.Now()
	resp, doc := d.get(second, "/registration")
	if took := time.Since(start); took > 8*time.Second {
		t.Errorf("the page took %s while Graph throttled", took.Round(time.Millisecond))
	}
	if resp.StatusCode != http.StatusOK || doc.Find(`button[value="approve"]`).Length() != 1 || doc.Find(`button[value="reject"]`).Length() != 1 {
		t.Errorf("the page answered %d without its decisions: %.400s", resp.StatusCode, text(doc))
	}
	if !strings.Contains(doc.Find(`[data-testid="lookup-failure"]`).Text(), "throttling") ||
		!strings.Contains(doc.Find(`tr[data-serial="THROTTLED-1"]`).Text(), "not checked yet") {
		t.Errorf("the page does not say the serials were not checked, and why: %.600s", text(doc))
	}
}

// An Autopilot sync whose answer was lost may have run: the history records its outcome as
// unknown, and the decided registration says so, not that it did not run.
func TestALostSyncAnswerIsOutcomeUnknown(t *testing.T) {
	opts := fastImports
	opts.ImportLookupDelays = []time.Duration{0, 50 * time.Millisecond}
	d := startDeskWith(t, nil, opts)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "LOSTSYNC-1")
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	d.emu.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	form, _ := decideForm(t, d, second)
	form.Set("action", "approve")
	resp, _ := d.post(second, "/registration/decide", form)
	waitFinished(t, d, second, resp.Request.URL.Path)
	waitFor(t, "the sync", func() bool {
		subs := registrations(t, d.app, store.SubmissionFilter{})
		return subs[0].State == store.SubmissionFinished && subs[0].SyncNote != ""
	})
	if syncCalls(d.emu) != 1 {
		t.Errorf("%d sync calls", syncCalls(d.emu))
	}
	syncs, _, _ := d.app.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Action: "sync", Limit: 5})
	if len(syncs) != 1 || syncs[0].Outcome != "outcome-unknown" || strings.Contains(syncs[0].Summary, "did not run") {
		for _, a := range syncs {
			t.Errorf("the history of the sync: %s: %s", a.Outcome, a.Summary)
		}
	}
	if len(syncs) == 1 {
		if _, rec := d.get(second, "/activity/"+syncs[0].ID); strings.Contains(text(rec), "did not run") || !strings.Contains(text(rec), "may have run") {
			t.Errorf("the sync's record: %.800s", text(rec))
		}
	}
	_, doc := d.get(second, "/registration")
	row := doc.Find(`[data-testid="recent"] tr[data-state="finished"]`).Text()
	if strings.Contains(row, "did not run") || !strings.Contains(row, "may have run") {
		t.Errorf("the decided row: %q", row)
	}
}

// The device's addresses answer in plain text whatever is typed: /register without a code says
// the code is missing, and an address in another case says addresses are lower case — neither
// answers with a page for a browser, sets a cookie or asks for a form's token.
func TestRegisterAnswersWrongAddressesInPlainText(t *testing.T) {
	d := startDesk(t, nil)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	dev := d.device()
	file := []byte(captureCSV(false, [2]string{"CASE-1", realHash()}))
	for _, c := range []struct{ method, path, says string }{
		{http.MethodPost, "/register", "has no registration code"},
		{http.MethodPost, "/register/", "has no registration code"},
		{http.MethodGet, "/register", "has no registration code"},
		{http.MethodPost, "/REGISTER/" + code, "lower case"},
		{http.MethodPost, "/Register/" + code, "lower case"},
		{http.MethodGet, "/REGISTER/" + code + "/status", "lower case"},
	} {
		status, answer, h := dev.do(c.method, c.path, "text/csv", bytes.NewReader(file))
		if status != http.StatusNotFound || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") || !strings.Contains(answer, c.says) || len(answer) > 1000 {
			t.Errorf("%s %s answered %d %s:\n%s", c.method, c.path, status, h.Get("Content-Type"), answer)
		}
	}
	if subs := registrations(t, d.app, store.SubmissionFilter{}); len(subs) != 0 {
		t.Errorf("%d submissions kept from wrong addresses", len(subs))
	}
}

// A reason for rejecting typed, then Enter pressed in its field, sends the form with its first
// button, Approve: the desk approves nothing then, keeps the ticks and the reason, and says to
// press Reject, or to clear the reason to approve.
func TestEnterInTheRejectReasonApprovesNothing(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_REGISTRATION_SELF_APPROVE": "true"}, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "ENTER-1")
	form, _ := decideForm(t, d, admin)
	form.Set("reason", "Not one of ours")
	form.Set("action", "approve") // the form's default button, as Enter in a field sends it
	resp, doc := d.post(admin, "/registration/decide", form)
	if resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("approve with a reason typed answered %d at %s: %.300s", resp.StatusCode, resp.Request.URL.Path, text(doc))
	}
	field := doc.Find(`.reject-field input[name="reason"]`)
	if field.AttrOr("value", "") != "Not one of ours" || field.AttrOr("aria-invalid", "") != "true" || !strings.Contains(doc.Find(`.reject-field .field-error`).Text(), "Reject") {
		t.Errorf("the reason field after approve with a reason: %q, %q", field.AttrOr("value", ""), doc.Find(`.reject-field .field-error`).Text())
	}
	if doc.Find(`input[name="submission"][checked]`).Length() != 1 {
		t.Error("the ticks were not kept")
	}
	if importCalls(d.emu) != 0 || registrations(t, d.app, store.SubmissionFilter{})[0].State != store.SubmissionWaiting {
		t.Fatal("approve with a reason typed changed something")
	}
	// With the reason cleared, Approve approves.
	form.Set("reason", "")
	if resp, doc := d.post(admin, "/registration/decide", form); !strings.HasPrefix(resp.Request.URL.Path, "/devices/import/") {
		t.Errorf("approve without a reason led to %s: %.300s", resp.Request.URL, text(doc))
	}
}

// The demo's accounts that may approve a registration are its administrators, whose sign-in
// grants the write permission and whose Intune role writes: a code's page names one of them.
func TestDemoApproversAreTheDemosAdministrators(t *testing.T) {
	d := startDesk(t, nil)
	var names []string
	for _, a := range d.app.demoApprovers() {
		names = append(names, a.Name)
	}
	if got := strings.Join(names, ", "); got != "Adele Vance, Isaiah Langer" {
		t.Errorf("demo approvers: %s", got)
	}
}
