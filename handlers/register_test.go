package handlers

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/unseen"
	"autopilotdesk/handlers/explain"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/handlers/jobs"
	"autopilotdesk/handlers/registration"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// fakeRegistrations holds one registration code and keeps what devices send with it.
type fakeRegistrations struct {
	mu   sync.Mutex
	code store.RegistrationCode
	hash string
	kept []store.RegistrationSubmission
	// What the status reads, when set: submissions of the code, and the rows and batches of
	// their import jobs.
	subs    []store.RegistrationSubmission
	rows    map[string][]store.ImportRow
	batches map[string][]store.ImportBatch
}

func (f *fakeRegistrations) RegistrationCodeByHash(_ context.Context, h string) (*store.RegistrationCode, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if h != f.hash {
		return nil, store.ErrNotFound
	}
	c := f.code
	return &c, nil
}

func (f *fakeRegistrations) AddRegistration(_ context.Context, s *store.RegistrationSubmission, _ *store.Activity) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.code.Used += len(s.Devices)
	f.kept = append(f.kept, *s)
	return nil
}

func (f *fakeRegistrations) Registrations(context.Context, store.SubmissionFilter) ([]store.RegistrationSubmission, error) {
	return f.subs, nil
}

// WaitingSerials are the serials already kept, upper-cased.
func (f *fakeRegistrations) WaitingSerials(_ context.Context, _ string, serials []string) (map[string]store.WaitingSerial, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]store.WaitingSerial{}
	for _, s := range f.kept {
		for _, d := range s.Devices {
			out[strings.ToUpper(d.Serial)] = store.WaitingSerial{Received: s.ReceivedAt, CodeID: s.CodeID}
		}
	}
	return out, nil
}

func (f *fakeRegistrations) GetImportJob(context.Context, string, string) (*store.ImportJob, error) {
	return nil, store.ErrNotFound
}

func (f *fakeRegistrations) ImportRows(_ context.Context, jobID string, _ store.RowFilter) ([]store.ImportRow, error) {
	return f.rows[jobID], nil
}

func (f *fakeRegistrations) ImportBatches(_ context.Context, jobID string) ([]store.ImportBatch, error) {
	return f.batches[jobID], nil
}

func (f *fakeRegistrations) submissions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.kept)
}

// noLimits lets every request from a device through.
type noLimits struct{}

func (noLimits) Allow(context.Context, string, int, time.Duration) (bool, time.Duration, error) {
	return true, 0, nil
}

func (noLimits) Exceeded(context.Context, string, int, time.Duration) (bool, time.Duration, error) {
	return false, 0, nil
}

func capture(devices ...string) []byte {
	var b strings.Builder
	b.WriteString("Device Serial Number,Windows Product ID,Hardware Hash\r\n")
	for _, serial := range devices {
		hash := make([]byte, 3000)
		rand.Read(hash)
		b.WriteString(serial + ",," + base64.StdEncoding.EncodeToString(hash) + "\r\n")
	}
	return []byte(b.String())
}

// newRegisterRig serves the device's side with a code that takes three devices; it returns the
// code as a device types it.
func newRegisterRig(t *testing.T) (*rig, *fakeRegistrations, string) {
	norm, _ := registration.Normalize(registration.NewCode())
	regs := &fakeRegistrations{hash: registration.Hash(norm)}
	var r *rig
	r = newRigWith(t, func(*echo.Group, func(string, string, echo.HandlerFunc)) {}, func(shell *web.Shell) {
		h := &Register{Store: regs, Counter: noLimits{}, PublicURL: "https://desk.contoso.example", Now: func() time.Time { return r.clock.Now() },
			Logger: discardLogger}
		device := shell.Devices("/register", RegisterBodyLimit, errDeviceFileTooLarge, registration.Runs)
		device.POST("/:code", h.Send)
		web.GET(device, "/:code/status", h.Status)
		device.Match([]string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}, "/:code", h.Refuse)
		device.RouteNotFound("/*", h.NoSuchCode)
	})
	regs.code = store.RegistrationCode{ID: "code-1", TenantID: rigUser.TenantID, Uses: 3, ExpiresAt: r.clock.Now().Add(8 * time.Hour)}
	return r, regs, registration.Format(norm)
}

// The device's side takes the capture script's file and nothing else, explains every refusal in
// plain text for the device's screen, and keeps nothing it refused.
func TestRegisterRefusesAnythingButItsFile(t *testing.T) {
	r, regs, code := newRegisterRig(t)
	one := capture("ONE-1")
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("MANY-%02d", i)
	}
	for _, c := range []struct {
		name        string
		method      string
		contentType string
		body        []byte
		status      int
		says        string
	}{
		{"GET", http.MethodGet, "", nil, http.StatusMethodNotAllowed, "POST"},
		{"PUT", http.MethodPut, "text/csv", one, http.StatusMethodNotAllowed, "curl.exe -F"},
		{"a form", http.MethodPost, "application/x-www-form-urlencoded", one, http.StatusUnsupportedMediaType, "curl.exe -F"},
		{"JSON", http.MethodPost, "application/json", []byte(`{"serial":"X"}`), http.StatusUnsupportedMediaType, "csv"},
		{"no csv part", http.MethodPost, "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nhello\r\n--x--\r\n"), http.StatusUnprocessableEntity, "\"csv\""},
		{"no boundary", http.MethodPost, "multipart/form-data", one, http.StatusBadRequest, "boundary"},
		{"an Excel workbook", http.MethodPost, "text/csv", []byte("PK\x03\x04 not a csv at all"), http.StatusUnprocessableEntity, "Excel"},
		{"4 devices, 3 uses", http.MethodPost, "text/csv", capture("A", "B", "C", "D"), http.StatusUnprocessableEntity, "takes 3 more devices"},
		{"51 devices", http.MethodPost, "text/csv", capture(many...), http.StatusRequestEntityTooLarge, "at most 50"},
		{"3 MB", http.MethodPost, "text/csv", bytes.Repeat([]byte("A"), 3<<20), http.StatusRequestEntityTooLarge, "too large"},
		{"only a bad row", http.MethodPost, "text/csv", []byte("Device Serial Number,Windows Product ID,Hardware Hash\r\nBAD-1,,\r\n"), http.StatusUnprocessableEntity, "Line 2: serial BAD-1"},
		{"a wrong code", http.MethodPost, "text/csv", one, http.StatusNotFound, "no registration code matches"},
	} {
		path := "/register/" + code
		if c.name == "a wrong code" {
			path = "/register/" + registration.Format(registration.NewCode())
		}
		resp, answer := r.send(c.method, path, c.contentType, c.body)
		if resp.StatusCode != c.status || !strings.Contains(answer, c.says) || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
			t.Errorf("%s: answered %d %s, want %d with %q:\n%s", c.name, resp.StatusCode, resp.Header.Get("Content-Type"), c.status, c.says, answer)
		}
	}
	if n := regs.submissions(); n != 0 {
		t.Fatalf("%d submissions kept from refused requests", n)
	}
	// The right file needs no cookie, no CSRF token and no Origin; the same device twice is not kept twice.
	if resp, answer := r.send(http.MethodPost, "/register/"+code, "text/csv", one); resp.StatusCode != http.StatusAccepted || len(resp.Cookies()) > 0 {
		t.Errorf("the right file answered %d (cookies %v): %s", resp.StatusCode, resp.Cookies(), answer)
	}
	if resp, answer := r.send(http.MethodPost, "/register/"+code, "text/csv", one); resp.StatusCode != http.StatusOK || !strings.Contains(answer, "sent before") {
		t.Errorf("the same device again answered %d: %s", resp.StatusCode, answer)
	}
	if n := regs.submissions(); n != 1 || regs.kept[0].Devices[0].Serial != "ONE-1" || regs.kept[0].Devices[0].HashShown == regs.kept[0].Devices[0].Hash {
		t.Errorf("kept %+v", regs.kept)
	}
}

// A device's file is taken up to the byte limit exactly, and refused one byte past it with
// nothing kept.
func TestRegisterTakesAFileUpToItsLimit(t *testing.T) {
	r, regs, code := newRegisterRig(t)
	padded := func(serial string, size int) []byte {
		file := capture(serial)
		return append(file, bytes.Repeat([]byte("\n"), size-len(file))...) // blank lines at the end are ignored
	}
	if resp, answer := r.send(http.MethodPost, "/register/"+code, "text/csv", padded("OVER-1", RegisterBodyLimit+1)); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("one byte past the limit answered %d: %s", resp.StatusCode, answer)
	}
	if n := regs.submissions(); n != 0 {
		t.Fatalf("%d submissions kept from a file past the limit", n)
	}
	if resp, answer := r.send(http.MethodPost, "/register/"+code, "text/csv", padded("EDGE-1", RegisterBodyLimit)); resp.StatusCode != http.StatusAccepted {
		t.Errorf("a file of exactly the limit answered %d: %s", resp.StatusCode, answer)
	}
	if n := regs.submissions(); n != 1 || regs.kept[0].Devices[0].Serial != "EDGE-1" {
		t.Errorf("kept %+v", regs.kept)
	}
}

// The history's line for a new code names it by its note, says its group tag or that it has
// none, and does not repeat what the line's other columns say.
func TestCreatedCodeSummarySaysWhatTheCodeGives(t *testing.T) {
	until := time.Date(2026, 3, 2, 13, 32, 0, 0, time.UTC)
	for _, c := range []struct {
		code store.RegistrationCode
		want string
	}{
		{store.RegistrationCode{Uses: 1, ExpiresAt: until},
			"Created a registration code for 1 device without a group tag, valid until 2 Mar 2026 13:32:00 UTC."},
		{store.RegistrationCode{Note: "Floor 3 refurb batch", GroupTag: "Floor3", AssignedUser: "adelev@contoso.example", Uses: 3, ExpiresAt: until},
			"Created registration code “Floor 3 refurb batch” for 3 devices with group tag “Floor3”, assigned to adelev@contoso.example, valid until 2 Mar 2026 13:32:00 UTC."},
		{store.RegistrationCode{GroupTag: "Floor3", Uses: 20, ExpiresAt: until},
			"Created a registration code for 20 devices with group tag “Floor3”, valid until 2 Mar 2026 13:32:00 UTC."},
	} {
		if got := createdCodeSummary(c.code); got != c.want {
			t.Errorf("got  %q\nwant %q", got, c.want)
		}
	}
}

// What a finished registration's import made of its devices is counted from the import's rows:
// a device Intune refused (806) is sent but not imported; one whose outcome is unknown is counted
// apart.
func TestOutcomeSummaryCountsTheDevicesImported(t *testing.T) {
	s := store.RegistrationSubmission{Devices: []store.RegistrationDevice{{Serial: "OVR-1", JobLine: 2}, {Serial: "CT-1", JobLine: 3}}}
	rows := []store.ImportRow{
		{Line: 2, Serial: "OVR-1", Outcome: store.Outcome{Verdict: store.VerdictError, ErrorCode: 806, ErrorName: "ZtdDeviceAlreadyAssigned"}},
		{Line: 3, Serial: "CT-1", Outcome: store.Outcome{Verdict: store.VerdictImported}},
		{Line: 4, Serial: "LOST-1", Outcome: store.Outcome{Verdict: store.VerdictNotFound}},
	}
	s.Devices = append(s.Devices, store.RegistrationDevice{Serial: "LOST-1", JobLine: 4})
	sum, imported, sent, unknown := outcomeSummary(s, rows)
	if imported != 1 || sent != 3 || unknown != 1 || !strings.Contains(sum, "OVR-1") || !strings.Contains(sum, "806") {
		t.Errorf("%d of %d imported: %q", imported, sent, sum)
	}
}

// A device's manufacturer and model are display text: control characters (an escape sequence
// would reach the technician's terminal) are dropped, and an unbroken run is cut to a bound.
func TestRegisterKeepsDeviceTextPrintableAndBounded(t *testing.T) {
	r, regs, code := newRegisterRig(t)
	hash := make([]byte, 3000)
	rand.Read(hash)
	model := "\x1b[31mEliteBook\x07" + strings.Repeat("X", 100)
	file := "Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model\r\n" +
		"CTRL-1,," + base64.StdEncoding.EncodeToString(hash) + ",\x07HP\x1b," + model + "\r\n"
	resp, answer := r.send(http.MethodPost, "/register/"+code, "text/csv", []byte(file))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("answered %d: %s", resp.StatusCode, answer)
	}
	if strings.ContainsFunc(answer, func(c rune) bool { return unicode.IsControl(c) && c != '\n' && c != '\r' }) {
		t.Errorf("the receipt echoes control characters: %q", answer)
	}
	for _, l := range strings.Split(answer, "\r\n") {
		if utf8.RuneCountInString(l) > 78 {
			t.Errorf("the receipt has a line of %d characters: %q", utf8.RuneCountInString(l), l)
		}
	}
	d := regs.kept[0].Devices[0]
	if d.Manufacturer != "HP" || !strings.HasPrefix(d.Model, "[31mEliteBookXXX") || utf8.RuneCountInString(d.Model) > maxDeviceText {
		t.Errorf("kept manufacturer %q and model %q (%d characters)", d.Manufacturer, d.Model, utf8.RuneCountInString(d.Model))
	}
}

// A refused row's serial is shown by its ends in the receipt, however much was put in the serial
// column (a hash, a whole line): the answer stays the size of a screen.
func TestRegisterShowsARefusedLongSerialByItsEnds(t *testing.T) {
	r, regs, code := newRegisterRig(t)
	for _, size := range []int{4000, 1500000} {
		serial := "HEAD" + strings.Repeat("s", size-8) + "TAIL"
		file := "Device Serial Number,Windows Product ID,Hardware Hash\r\n" + serial + ",,AAAA\r\n"
		resp, answer := r.send(http.MethodPost, "/register/"+code, "text/csv", []byte(file))
		if resp.StatusCode != http.StatusUnprocessableEntity || len(answer) > 4000 || !strings.Contains(answer, "Line 2: serial HEAD...TAIL\r\n") {
			t.Errorf("a serial of %d characters answered %d with %d bytes: %.600s", size, resp.StatusCode, len(answer), answer)
		}
	}
	if n := regs.submissions(); n != 0 {
		t.Errorf("%d submissions kept", n)
	}
}

// A serial with a character nobody can see is refused, line by line and with the character named:
// "SER\u202eLIVE" would show as "SEREVIL" to the approver, and "5CG3281JQZ\u200b" as a serial
// already in the tenant. A maker or model only loses what cannot be seen, and the answer carries
// nothing that would drive the technician's terminal.
func TestRegisterRefusesSerialsThatCannotBeSeen(t *testing.T) {
	r, regs, code := newRegisterRig(t)
	row := func(serial, model string) string {
		hash := make([]byte, 3000)
		rand.Read(hash)
		return serial + ",," + base64.StdEncoding.EncodeToString(hash) + ",Contoso," + model + "\r\n"
	}
	file := "Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model\r\n" +
		row("SER\u202eLIVE", "Mo\u202edel") + row("5CG3281JQZ\u200b", "Laptop") + row("GOOD-1", "Mo\u202edel \u2066X\x1b[2J")
	resp, answer := r.send(http.MethodPost, "/register/"+code, "text/csv", []byte(file))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("answered %d: %s", resp.StatusCode, answer)
	}
	flat := strings.Join(strings.Fields(answer), " ")
	for _, want := range []string{`Line 2: serial "SER\u202eLIVE"`, "(U+202E, a right-to-left override)", `Line 3: serial "5CG3281JQZ\u200b"`,
		"(U+200B, a zero-width space)", "Line 4: serial GOOD-1, Contoso Model X[2J"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the receipt lacks %q:\n%s", want, answer)
		}
	}
	for _, c := range strings.ReplaceAll(answer, "\r\n", "") {
		if unseen.Is(c) {
			t.Errorf("the receipt carries %U: %q", c, answer)
			break
		}
	}
	if len(regs.kept) != 1 || len(regs.kept[0].Devices) != 1 {
		t.Fatalf("kept %+v", regs.kept)
	}
	if d := regs.kept[0].Devices[0]; d.Serial != "GOOD-1" || d.Model != "Model X[2J" {
		t.Errorf("kept serial %q, model %q", d.Serial, d.Model)
	}
}

// The status answer shows a code's group tag and note stored before the desk refused such text
// with the hidden characters by their codes: nothing clears the technician's screen or starts a line.
func TestRegisterStatusShowsStoredTextByItsCodes(t *testing.T) {
	r, regs, code := newRegisterRig(t)
	regs.code.GroupTag = "A\x1b[2J\x1b[31mRED\u202eevil\r\nLine2"
	regs.code.Note = "Floor 3\x1b]0;pwned\x07"
	resp, answer := r.send(http.MethodGet, "/register/"+code+"/status", "", nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("answered %d: %s", resp.StatusCode, answer)
	}
	for _, c := range strings.ReplaceAll(answer, "\r\n", "") {
		if unseen.Is(c) {
			t.Fatalf("the status answer carries %U: %q", c, answer)
		}
	}
	for _, want := range []string{`Group tag "A<U+001B>[2J<U+001B>[31mRED<U+202E>evil<U+000D><U+000A>Line2".`, `"Floor 3<U+001B>]0;pwned<U+0007>"`} {
		if !strings.Contains(answer, want) {
			t.Errorf("the status answer lacks %q: %q", want, answer)
		}
	}
}

// refusing answers every request that its bucket is over its limit, for retry more.
type refusing struct{ retry time.Duration }

func (r refusing) Allow(context.Context, string, int, time.Duration) (bool, time.Duration, error) {
	return false, r.retry, nil
}

func (r refusing) Exceeded(context.Context, string, int, time.Duration) (bool, time.Duration, error) {
	return true, r.retry, nil
}

// A device told to wait reads the wait in words, while Retry-After keeps it in whole seconds for
// the machines.
func TestRegisterSaysItsWaitInWords(t *testing.T) {
	for _, c := range []struct {
		retry       time.Duration
		words, secs string
	}{
		{545*time.Second + 200*time.Millisecond, "Wait 9 minutes 6 seconds, then run the command again.", "546"},
		{30 * time.Second, "Wait 30 seconds, then run the command again.", "30"},
		{10 * time.Millisecond, "Wait 1 second, then run the command again.", "1"},
		{2*time.Hour + time.Minute, "Wait 2 hours 1 minute, then run the command again.", "7260"},
	} {
		r := newRigWith(t, func(*echo.Group, func(string, string, echo.HandlerFunc)) {}, func(shell *web.Shell) {
			h := &Register{Store: &fakeRegistrations{}, Counter: refusing{c.retry}, PerClient: web.Limit{N: 1, Window: time.Hour},
				PublicURL: "https://desk.contoso.example", Now: time.Now, Logger: discardLogger}
			shell.Devices("/register", RegisterBodyLimit, errDeviceFileTooLarge, registration.Runs).POST("/:code", h.Send)
		})
		resp, answer := r.send(http.MethodPost, "/register/"+registration.Format(registration.NewCode()), "text/csv", capture("ONE-1"))
		if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(answer, c.words) || resp.Header.Get("Retry-After") != c.secs {
			t.Errorf("a wait of %s: %d, Retry-After %q, want %q and %q:\n%s", c.retry, resp.StatusCode, resp.Header.Get("Retry-After"), c.secs, c.words, answer)
		}
	}
}

// Every answer a technician can get is ASCII: a Windows setup console (curl.exe after Shift+F10,
// code page 437 or 850) shows anything else as other characters. Typographic characters of the
// desk's words (… “ ” ’ — ›) are written as their ASCII look-alikes.
func TestEveryAnswerToTheDeviceIsASCII(t *testing.T) {
	r, regs, code := newRegisterRig(t)
	regs.code.GroupTag, regs.code.Note = "Floor “3”", "Refurb — batch…"
	many := make([]string, 51)
	for i := range many {
		many[i] = fmt.Sprintf("MANY-%02d", i)
	}
	var answers []string
	ask := func(method, path, contentType string, body []byte) {
		t.Helper()
		resp, answer := r.send(method, path, contentType, body)
		if resp.StatusCode >= 500 {
			t.Fatalf("%s %s answered %d: %s", method, path, resp.StatusCode, answer)
		}
		answers = append(answers, method+" "+path+" "+resp.Status+"\n"+answer)
	}
	at := "/register/" + code
	ask(http.MethodGet, at, "", nil)
	ask(http.MethodPost, at, "application/json", []byte(`{}`))
	ask(http.MethodPost, at, "multipart/form-data; boundary=x", []byte("--x\r\nContent-Disposition: form-data; name=\"file\"\r\n\r\nhi\r\n--x--\r\n"))
	ask(http.MethodPost, at, "multipart/form-data", capture("X"))
	ask(http.MethodPost, at, "text/csv", []byte("PK\x03\x04 not a csv at all"))
	ask(http.MethodPost, at, "text/csv", []byte(""))
	ask(http.MethodPost, at, "text/csv", []byte("\x00\x01\x02binary"))
	ask(http.MethodPost, at, "text/csv", []byte("Device Serial Number,Device Serial Number,Hardware Hash\r\nX,X,AAAA\r\n"))
	ask(http.MethodPost, at, "text/csv", capture("A", "B", "C", "D"))
	ask(http.MethodPost, at, "text/csv", capture(many...))
	ask(http.MethodPost, at, "text/csv", bytes.Repeat([]byte("A"), 3<<20))
	ask(http.MethodPost, at, "text/csv", []byte("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag\r\nBAD-1,,\r\n\"GOOD “1”\",,"+
		base64.StdEncoding.EncodeToString(make([]byte, 3000))+",Other\r\n"))
	ask(http.MethodPost, at, "text/csv", capture("KEPT-1"))
	ask(http.MethodPost, at, "text/csv", capture("KEPT-1")) // sent again
	ask(http.MethodPost, "/register/"+registration.Format(registration.NewCode()), "text/csv", capture("X"))
	ask(http.MethodGet, "/register/"+registration.Format(registration.NewCode())+"/status", "", nil)
	ask(http.MethodGet, "/register", "", nil)
	ask(http.MethodGet, "/register/", "", nil)
	ask(http.MethodGet, "/REGISTER/"+code, "", nil)
	ask(http.MethodGet, at+"/status", "", nil) // no device yet

	// The status of a device in every state the desk knows.
	now := r.clock.Now()
	c := regs.code
	refusal := func(status int, kind graphclient.Kind) string {
		f := explain.Failure{Graph: &graphclient.Error{StatusCode: status, Kind: kind, Message: "Graph said “no”…"}, At: now}
		return string(jobs.Encode(importer.BatchDetail{Failure: &f, Support: graphclient.SupportDetails{Status: status}}))
	}
	sub := func(state, job string, lines ...int) store.RegistrationSubmission {
		s := store.RegistrationSubmission{ID: fmt.Sprint(len(regs.subs)), CodeID: c.ID, TenantID: c.TenantID, State: state, Code: c, JobID: job,
			ReceivedAt: now, DecidedAt: now, Reason: "Not ours — “wrong” tag…"}
		for _, l := range lines {
			s.Devices = append(s.Devices, store.RegistrationDevice{Serial: fmt.Sprintf("SER-%d", l), JobLine: l, ReceivedAt: now})
		}
		return s
	}
	refused := sub(store.SubmissionWaiting, "")
	refused.Refused = registration.Refusal{By: "Isaiah Langer", At: now, Failure: explain.Failure{Graph: &graphclient.Error{StatusCode: 403, Kind: graphclient.KindForbiddenRole}}}.Encode()
	refused.Devices = []store.RegistrationDevice{{Serial: "SER-W2", ReceivedAt: now}}
	regs.subs = []store.RegistrationSubmission{sub(store.SubmissionWaiting, "", 0), refused, sub(store.SubmissionRejected, "", 0), sub(store.SubmissionExpired, "", 0),
		sub(store.SubmissionApproved, "job-0"), sub(store.SubmissionFinished, "job-1", 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)}
	row := func(line, batch int, o store.Outcome) store.ImportRow {
		o.Batch = batch
		return store.ImportRow{Line: line, Serial: fmt.Sprintf("SER-%d", line), GroupTag: "Floor “3”", Outcome: o,
			TenantMatch: store.TenantMatch{RegisteredID: "x", RegisteredGroupTag: "Other"}}
	}
	regs.rows = map[string][]store.ImportRow{"job-1": {
		row(2, 1, store.Outcome{Verdict: store.VerdictImported}), row(3, 1, store.Outcome{Verdict: store.VerdictPartial}),
		row(4, 1, store.Outcome{Verdict: store.VerdictError, ErrorCode: 806}), row(5, 1, store.Outcome{Verdict: store.VerdictError, ErrorCode: 808}),
		row(6, 1, store.Outcome{Verdict: store.VerdictError, ErrorCode: 999}), row(7, 2, store.Outcome{Verdict: store.VerdictRefused, Reason: store.ReasonBatchRefused}),
		row(8, 3, store.Outcome{Verdict: store.VerdictRefused, Reason: store.ReasonBatchRefused}), row(9, 1, store.Outcome{Verdict: store.VerdictNotFound, Reason: store.ReasonLookedUp}),
		row(10, 1, store.Outcome{Verdict: store.VerdictLeftOut, Reason: store.ReasonAlreadyImported}), row(11, 1, store.Outcome{Verdict: store.VerdictSent}),
		row(12, 1, store.Outcome{Verdict: store.VerdictUnknown})}}
	regs.batches = map[string][]store.ImportBatch{"job-1": {{Batch: 2, Detail: []byte(refusal(400, graphclient.KindInvalidInput))}, {Batch: 3, Detail: []byte(refusal(403, graphclient.KindForbiddenRole))}}}
	ask(http.MethodGet, at+"/status", "", nil)
	regs.code.RevokedAt = now
	ask(http.MethodGet, at+"/status", "", nil)

	for _, a := range answers {
		for i, ch := range a {
			if ch > 0x7e || ch < 0x20 && ch != '\r' && ch != '\n' {
				t.Errorf("an answer carries %U at %d:\n%s", ch, i, a)
				break
			}
		}
	}
	if os.Getenv("SHOW_ANSWERS") != "" {
		t.Log(strings.Join(answers, "\n"))
	}
	if all := strings.Join(answers, "\n"); strings.Contains(all, "upload that") || strings.Contains(all, "upload the file") || strings.Contains(all, "Export the device list") {
		t.Errorf("an answer to the device speaks of uploading:\n%s", all)
	}
	if all := strings.Join(answers, "\n"); !strings.Contains(all, "hash ") || !strings.Contains(all, "...") || !strings.Contains(all, `"Not ours - "wrong" tag..."`) {
		t.Errorf("the answers lost their words:\n%s", all)
	}
}

// A right code in an address with a slash or full stop too many is told the address is wrong,
// with the right commands, not that no code matches; it is not counted as a wrong code.
func TestRegisterSaysWhenTheAddressAroundACodeIsWrong(t *testing.T) {
	r, regs, code := newRegisterRig(t)
	for _, c := range []struct{ method, path string }{
		{http.MethodPost, "/register/" + code + "/"}, {http.MethodPost, "/register/" + code + "."},
		{http.MethodGet, "/register/" + code + "/status."}, {http.MethodGet, "/register/" + code + "./status"}, {http.MethodGet, "/register/" + code + "/status/"},
	} {
		resp, answer := r.send(c.method, c.path, "text/csv", capture("SLASH-1"))
		if resp.StatusCode != http.StatusNotFound || !strings.Contains(answer, "address is not quite right") ||
			!strings.Contains(answer, "https://desk.contoso.example/register/"+code+"/status\r\n") || strings.Contains(answer, "no registration code matches") {
			t.Errorf("%s %s answered %d: %s", c.method, c.path, resp.StatusCode, answer)
		}
	}
	if n := regs.submissions(); n != 0 {
		t.Errorf("%d submissions kept", n)
	}
	if resp, answer := r.send(http.MethodGet, "/register/"+registration.Format(registration.NewCode())+"/status", "", nil); !strings.Contains(answer, "no registration code matches") {
		t.Errorf("a wrong code answered %d: %s", resp.StatusCode, answer)
	}
}
