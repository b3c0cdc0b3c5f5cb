package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
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

func syncCalls(e *emulator.Emulator) int {
	n := 0
	for _, r := range e.Received() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/windowsAutopilotSettings/sync") {
			n++
		}
	}
	return n
}

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
	codes, _ := d.app.db.RegistrationCodes(context.Background(), demoidp.DemoTenantID)
	if len(codes) != 1 {
		t.Fatalf("%d codes stored", len(codes))
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
	for _, want := range []string{"registration-code-created", "registration-received", "registration-approved", "import", "sync"} {
		if !strings.Contains(strings.Join(actions, " "), want) {
			t.Errorf("the history lacks %s: %v", want, actions)
		}
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

var _ = fmt.Sprint
var _ = url.Values{}
var _ sync.Mutex
var _ atomic.Int32
var _ = base64.StdEncoding
var _ = testkit.Env
var _ = registration.Format
