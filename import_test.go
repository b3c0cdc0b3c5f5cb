package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/views"
	"autopilotdesk/web"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// realHash is a hardware hash of the size real devices produce: about 3,000 bytes, about 4,000
// base64 characters.
func realHash() string {
	b := make([]byte, 2990+int(randByte())%20)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func randByte() byte {
	var b [1]byte
	rand.Read(b[:])
	return b[0]
}

// deviceCSV is a portal CSV of devices named prefix-00001 and so on, with real-sized hashes.
func deviceCSV(prefix string, n int) ([]byte, []string) {
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	hashes := make([]string, n)
	for i := range n {
		hashes[i] = realHash()
		w.Write([]string{fmt.Sprintf("%s-%05d", prefix, i+1), "", hashes[i], "Sales", ""})
	}
	w.Flush()
	return file.Bytes(), hashes
}

// draftOf uploads a file as b and returns the new job's path.
func draftOf(t *testing.T, d *desk, b *http.Client, data []byte) string {
	t.Helper()
	return draftNamed(t, d, b, "devices.csv", data)
}

// draftNamed uploads a file named name as b and returns the new job's path.
func draftNamed(t *testing.T, d *desk, b *http.Client, name string, data []byte) string {
	t.Helper()
	_, doc := d.get(b, "/devices/import")
	resp, html := d.uploadNamed(b, doc.Find(`input[name="_csrf"]`).First().AttrOr("value", ""), name, data)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, views.ImportJobURL("")) {
		t.Fatalf("pre-flight answered %d at %s: %.500s", resp.StatusCode, resp.Request.URL, html)
	}
	return resp.Request.URL.Path
}

// submitForm is the submit form of a draft as b's browser shows it, no row left out.
func submitForm(t *testing.T, d *desk, b *http.Client, job string) url.Values {
	t.Helper()
	_, doc := d.get(b, job)
	return formValues(t, doc, `form[action$="/submit"]`)
}

// postDirect sends a form with b's cookies straight to one server, without following redirects.
func postDirect(base string, b *http.Client, cookieURL, path string, form url.Values) (int, error) {
	req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	u, _ := url.Parse(cookieURL)
	for _, ck := range b.Jar.Cookies(u) {
		req.AddCookie(ck)
	}
	c := &http.Client{Transport: b.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitRows waits until the rows of the import job id, counted, satisfy cond.
func waitRows(t *testing.T, d *desk, id, what string, cond func(importer.Counts) bool) {
	t.Helper()
	waitFor(t, what, func() bool {
		rows, _ := d.app.db.ImportRows(context.Background(), id, store.RowFilter{})
		return cond(importer.Count(rows))
	})
}

// storm sends n requests at once, the i-th by send(i), and counts the answers by status.
func storm(t *testing.T, n int, send func(i int) (status int, err error)) map[int]int {
	t.Helper()
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			status, err := send(i)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			statuses[status]++
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return statuses
}

// postAtOnce posts a form to path n times at once: the i-th from browsers[i%len(browsers)] with
// the form formOf gives that browser, to targets[i%len(targets)] (desks behind cookieURL). It
// counts the answers by status.
func postAtOnce(t *testing.T, n int, targets []string, cookieURL string, browsers []*http.Client, path string, formOf func(*http.Client) url.Values) map[int]int {
	t.Helper()
	forms := make([]url.Values, len(browsers))
	for i, b := range browsers {
		forms[i] = formOf(b)
	}
	return storm(t, n, func(i int) (int, error) {
		return postDirect(targets[i%len(targets)], browsers[i%len(browsers)], cookieURL, path, forms[i%len(forms)])
	})
}

// report downloads a finished job's report.
func report(t *testing.T, d *desk, b *http.Client, job string) [][]string {
	t.Helper()
	resp, err := b.Get(d.srv.URL + job + "/report.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("report answered %d", resp.StatusCode)
	}
	body, _ := io.ReadAll(resp.Body)
	if !bytes.HasPrefix(body, []byte("\xef\xbb\xbf")) {
		t.Errorf("the report does not start with the byte order mark that tells a spreadsheet it is UTF-8")
	}
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

// devicesBySerial counts the imported devices the emulator holds for each serial.
func devicesBySerial(t *testing.T, e *emulator.Emulator, base string, b *http.Client) map[string]int {
	t.Helper()
	_ = base
	counts := map[string]int{}
	for _, r := range e.Received() {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/import") || r.TooLarge || r.Unread {
			continue // refused before it was read: nothing was imported
		}
		var body struct {
			Devices []struct {
				Serial string `json:"serialNumber"`
			} `json:"importedWindowsAutopilotDeviceIdentities"`
		}
		if err := json.Unmarshal(r.Body, &body); err != nil {
			t.Fatalf("an import body the emulator accepted does not decode: %v", err)
		}
		for _, d := range body.Devices {
			counts[d.Serial]++
		}
	}
	return counts
}

// A draft moves to "sending" once, however many submits race: 60 at once from five sessions
// of the same administrator send the import exactly once.
func TestImportSubmittedExactlyOnce(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"},
		appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	d.app.demo.Emulator.SetFaults(emulator.Faults{LatencyMin: 50 * time.Millisecond, LatencyMax: 50 * time.Millisecond, Methods: []string{http.MethodPost}})
	browsers := d.signedIn(5, "admin", d.browser)
	data, _ := deviceCSV("SN-ONCE", 3)
	job := draftOf(t, d, browsers[0], data)
	statuses := postAtOnce(t, 60, []string{d.srv.URL}, d.srv.URL, browsers, job+"/submit", func(b *http.Client) url.Values { return submitForm(t, d, b, job) })
	if statuses[http.StatusSeeOther] != 60 {
		t.Errorf("of 60 submits, answered by status: %v; want all with the job page (303)", statuses)
	}
	doc := waitFinished(t, d, browsers[1], job)
	if n := importCalls(d.app.demo.Emulator); n != 1 {
		t.Errorf("60 concurrent submits made %d import calls, want 1", n)
	}
	for serial, n := range devicesBySerial(t, d.app.demo.Emulator, "", nil) {
		if n != 1 {
			t.Errorf("%s sent %d times", serial, n)
		}
	}
	if got := doc.Find(`[data-testid="outcome"] tr[data-verdict="imported"]`).Length(); got != 3 {
		t.Errorf("%d rows imported, want 3", got)
	}
}

// Only the person who uploaded a file may fix, check, import or look up its devices; the rest
// of the tenant may follow it. A reader and a second administrator are refused with a page that
// names the owner, and nothing changes or reaches Graph.
func TestImportDraftBelongsToItsUploader(t *testing.T) {
	d := startDesk(t, nil)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	data := []byte("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\n" +
		",," + realHash() + ",,\n" + "SN-OWNED-2,," + realHash() + ",,\n")
	job := draftOf(t, d, admin, data)
	_, ownerDoc := d.get(admin, job)
	fix := formValues(t, ownerDoc, `form[action$="/fix"]`)
	fix.Set("row-2-serial", "HIJACKED")
	submit := submitForm(t, d, admin, job)

	for _, who := range []string{"reader", "many-groups"} {
		b := d.browser()
		doc := parse(t, d.signIn(b, who, job))
		if !strings.Contains(doc.Find(`[data-testid="owner"]`).Text(), "Adele Vance") {
			t.Errorf("%s: the page does not say whose import it is: %s", who, text(doc))
		}
		if n := doc.Find(`form[action$="/submit"], form[action$="/fix"], form[action$="/check"], input[name="leaveOut"]`).Length(); n != 0 {
			t.Errorf("%s is offered %d controls of someone else's draft", who, n)
		}
		csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
		for _, action := range []struct {
			path string
			form url.Values
		}{{"/fix", fix}, {"/check", url.Values{}}, {"/stop-check", url.Values{}}, {"/submit", submit}, {"/reconcile", url.Values{}}} {
			f := url.Values{}
			for k, v := range action.form {
				f[k] = v
			}
			f.Set("_csrf", csrf)
			resp, page := d.post(b, job+action.path, f)
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(text(page), "belongs to Adele Vance (AdeleV@contoso.example)") {
				t.Errorf("%s POST %s: %d %s", who, action.path, resp.StatusCode, text(page))
			}
		}
	}
	_, doc := d.get(admin, job)
	if got := doc.Find(`[data-testid="preflight"] tbody tr`).First().Find("td").Eq(2).Text(); got != "" {
		t.Errorf("someone else's fix changed the owner's draft: serial %q", got)
	}
	for _, r := range d.received() {
		if r.Method != http.MethodGet {
			t.Errorf("someone else's action reached Graph: %s %s", r.Method, r.Path)
		}
	}
	// The owner can.
	resp, _ := d.post(admin, job+"/submit", submit)
	if resp.Request.URL.Path != job {
		t.Errorf("the owner's submit landed on %s", resp.Request.URL)
	}
}

// A file over the row limit is refused while it is read, within a second, with the limit named
// and splitting suggested, and nothing of it is stored; a file at the limit is accepted.
func TestImportRowLimit(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "reader", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	var big bytes.Buffer
	big.WriteString("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\n")
	for i := range 1_000_000 {
		fmt.Fprintf(&big, "S%d,,QUJD,,\n", i)
	}
	start := time.Now()
	resp, html := d.uploadCSV(b, csrf, big.Bytes())
	took := time.Since(start)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, "more than 10,000 devices") || !strings.Contains(html, "Split it") {
		t.Fatalf("a 1,000,000-row file answered %d: %.400s", resp.StatusCode, html)
	}
	if limit := time.Second; took > limit && !raceEnabled || took > 5*limit {
		t.Errorf("refusing a %d MB file took %s", big.Len()>>20, took)
	}
	if jobs, _ := d.app.db.ListImportJobs(context.Background(), "5b7a1c2e-3f4d-4e6a-9b8c-0d1e2f3a4b5c", 10); len(jobs) != 0 {
		t.Errorf("%d jobs stored for a refused file", len(jobs))
	}

	small := startDesk(t, map[string]string{"AUTOPILOTDESK_IMPORT_MAX_ROWS": "3"})
	sb := small.browser()
	small.signIn(sb, "admin", "/")
	at, _ := deviceCSV("SN-LIMIT", 3)
	draftOf(t, small, sb, at)
	over, _ := deviceCSV("SN-LIMIT", 4)
	_, doc = small.get(sb, "/devices/import")
	resp, html = small.uploadCSV(sb, doc.Find(`input[name="_csrf"]`).First().AttrOr("value", ""), over)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, "more than 3 devices") {
		t.Errorf("a file one row over a limit of 3 answered %d", resp.StatusCode)
	}
}

// Batches are cut by bytes as well as by count, so a 10,000-row file of real-sized hashes
// imports end to end in demo mode; afterwards no hash is readable in the database files.
func TestImportTenThousandRealSizedHashes(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	if testing.Short() {
		t.Skip("imports 10,000 devices")
	}
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, hashes := deviceCSV("SN-BIG", 10000)
	start := time.Now()
	job := draftOf(t, d, b, data)
	t.Logf("pre-flight of %d MB: %s", len(data)>>20, time.Since(start))
	resp, _ := d.post(b, job+"/submit", submitForm(t, d, b, job))
	if resp.Request.URL.Path != job {
		t.Fatalf("submit landed on %s", resp.Request.URL)
	}
	doc := waitFinished(t, d, b, job)
	t.Logf("imported in %s", time.Since(start))
	if !strings.Contains(doc.Find(`[data-testid="progress-summary"]`).Text(), "10,000 imported") {
		t.Errorf("summary: %s", doc.Find(`[data-testid="progress-summary"]`).Text())
	}
	calls := 0
	for _, r := range d.app.demo.Emulator.Received() {
		if r.Method == http.MethodPost && strings.HasSuffix(r.Path, "/import") {
			calls++
			if r.TooLarge || len(r.Body) > graphclient.MaxImportRequestBytes {
				t.Errorf("an import of %d bytes was sent", len(r.Body))
			}
		}
	}
	counts := devicesBySerial(t, d.app.demo.Emulator, "", nil)
	if len(counts) != 10000 {
		t.Errorf("%d devices reached Graph", len(counts))
	}
	batches, _ := d.app.db.ImportBatches(context.Background(), strings.TrimPrefix(job, views.ImportJobURL("")))
	if calls != len(batches) || calls < 20 {
		t.Errorf("%d import calls for %d batches", calls, len(batches))
	}
	if rows := report(t, d, b, job); len(rows) != 10001 {
		t.Errorf("the report has %d lines", len(rows))
	}
	assertHashesGone(t, d.app, d.app.cfg.DataDir, hashes[1234])
}

// assertHashesGone checks that a hash of a finished job is in none of the database's files.
func assertHashesGone(t *testing.T, a *app, dir, hash string) {
	t.Helper()
	for i := 0; a.db.LogTruncatePending() && i < 200; i++ {
		time.Sleep(10 * time.Millisecond)
	}
	raw, _ := base64.StdEncoding.DecodeString(hash)
	files, _ := filepath.Glob(filepath.Join(dir, "autopilotdesk.db*"))
	if len(files) == 0 {
		t.Fatal("no database files")
	}
	for _, f := range files {
		b, _ := os.ReadFile(f)
		if bytes.Contains(b, raw[1000:1064]) || bytes.Contains(b, []byte(hash[1000:1064])) {
			t.Errorf("a finished job's hash is readable in %s", filepath.Base(f))
		}
	}
}

// The report lists every row of the file; every cell is formula-safe, whether the text came from
// the file or from Graph.
func TestReportCellsAreFormulaSafe(t *testing.T) {
	hostile := []string{"=HYPERLINK(\"http://evil.example\",\"x\")", "+cmd|' /C calc'!A0", "-2+3+cmd|' /C calc'!A0", "@SUM(1+9)*cmd|' /C calc'!A0",
		"\t=1+1", "\r=1+1", "  =1+1"}
	outcomes := map[string]emulator.Outcome{}
	var file bytes.Buffer
	w := csv.NewWriter(&file)
	w.Write([]string{"Device Serial Number", "Windows Product ID", "Hardware Hash", "Group Tag", "Assigned User"})
	for i, h := range hostile {
		serial := fmt.Sprintf("SN-HOSTILE-%d", i)
		outcomes[serial] = emulator.Outcome{Status: "error", ErrorCode: 900 + i, ErrorName: h}
		w.Write([]string{serial, "", realHash(), "=1+1", ""})
	}
	outcomes["SN-HOSTILE-REG"] = emulator.Outcome{Status: "complete", RegistrationID: "=IMPORTXML(\"http://evil.example\",\"//a\")"}
	w.Write([]string{"SN-HOSTILE-REG", "", realHash(), "@x", ""})
	w.Write([]string{"-1+1", "", realHash(), "+x", ""})
	w.Flush()
	cl := startClusterWith(t, clusterOptions{sqlite: true, shape: func(o *demo.Options) { o.Emulator.Outcomes = outcomes }})
	rd := cl.onDesks("A")
	b := rd.signedInBrowser("admin", cl.browser)
	job := draftOf(t, rd, b, file.Bytes())
	rd.post(b, job+"/submit", submitForm(t, rd, b, job))
	waitFinished(t, rd, b, job)
	rows := report(t, rd, b, job)
	if len(rows) != len(hostile)+3 {
		t.Fatalf("%d report lines", len(rows))
	}
	for _, row := range rows[1:] {
		for i, cell := range row {
			if c := strings.TrimLeft(cell, " "); c != "" && strings.ContainsRune("=+-@\t\r", rune(c[0])) {
				t.Errorf("column %q holds a cell a spreadsheet would run: %q", rows[0][i], cell)
			}
		}
	}
	all := fmt.Sprint(rows)
	for _, want := range []string{"'=HYPERLINK", "'+cmd", "'-2+3", "'@SUM", "'=IMPORTXML", "'=1+1", "'-1+1", "'@x"} {
		if !strings.Contains(all, want) {
			t.Errorf("the report lost %q (it must be kept, neutralised)", want)
		}
	}
}

// stopOnce is a fault hook that stops the first worker to reach point, as if its process died
// there, and lets every later one through.
func stopOnce(point string) (hook func(string) error, fired *atomic.Bool) {
	fired = &atomic.Bool{}
	return func(p string) error {
		if p == point && fired.CompareAndSwap(false, true) {
			return importer.ErrStopped
		}
		return nil
	}, fired
}

// clusterDesk lets the desk helpers drive a cluster through its load balancer.
func clusterDesk(t *testing.T, cl *cluster) *desk { return &desk{t: t, srv: cl.lb} }

func waitFired(t *testing.T, fired *atomic.Bool) {
	t.Helper()
	for i := 0; !fired.Load(); i++ {
		if i > 3000 {
			t.Fatal("the fault point was never reached")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// crash is an import whose desk was stopped at a fault point and started again on the same
// SQLite data: A2 serves it.
type crash struct {
	cl          *cluster
	d           *desk
	b           *http.Client
	job         string
	hashes      []string
	callsBefore int // import calls Graph had received when the desk stopped
	seenBefore  int // requests Graph had received then
}

// crashedImport submits n devices whose serials start with prefix, stops the desk when its worker
// reaches point (the process is gone; its lease is left to run out) and starts another.
func crashedImport(t *testing.T, point string, lookups []time.Duration, prefix string, n int) crash {
	hook, fired := stopOnce(point)
	cl := startClusterWith(t, clusterOptions{sqlite: true, app: appOptions{ImportFault: hook, ImportLease: 2 * time.Second,
		ImportLookupDelays: lookups}})
	c := crash{cl: cl, d: cl.onDesks("A")}
	c.b = c.d.signedInBrowser("admin", cl.browser)
	data, hashes := deviceCSV(prefix, n)
	c.job, c.hashes = draftOf(t, c.d, c.b, data), hashes
	c.d.post(c.b, c.job+"/submit", submitForm(t, c.d, c.b, c.job))
	waitFired(t, fired)
	c.callsBefore, c.seenBefore = importCalls(cl.emu), len(cl.emu.Received())
	cl.stop("A")
	cl.start("A2")
	cl.via("A2")
	return c
}

// A desk killed after Graph accepted a batch and before the answer was stored: restarted on the
// same data, a new worker takes the job over through the lease, finds the devices in Graph
// instead of sending them again, and finishes with every row accounted for.
func TestImportSurvivesACrashBeforeTheAnswerIsStored(t *testing.T) {
	c := crashedImport(t, importer.FaultAnswerReceived, []time.Duration{0, time.Second}, "SN-CRASH", 20)
	if c.callsBefore != 1 {
		t.Fatalf("%d import calls before the crash", c.callsBefore)
	}
	d, b, job := c.d, c.b, c.job
	doc := waitFinished(t, d, b, job)
	if n := importCalls(c.cl.emu); n != 1 {
		t.Errorf("%d import calls in all: a batch was sent again", n)
	}
	if got := doc.Find(`[data-testid="outcome"] tr[data-verdict="imported"]`).Length(); got != 20 {
		t.Errorf("%d of 20 rows imported: %.400s", got, text(doc))
	}
	if !strings.Contains(doc.Find(`[data-testid="progress-summary"]`).Text(), "20 rows were found by looking in Graph") {
		t.Errorf("the page does not say which rows were reconciled: %s", doc.Find(`[data-testid="progress-summary"]`).Text())
	}
	rows := report(t, d, b, job)
	if len(rows) != 21 {
		t.Fatalf("the report has %d lines", len(rows))
	}
	for _, r := range rows[1:] {
		if r[4] != "Imported" || r[8] != "yes" || r[10] == "" {
			t.Errorf("report row %q", r)
		}
	}
	assertHashesGone(t, c.cl.byName["A2"], c.cl.env["AUTOPILOTDESK_DATA_DIR"], c.hashes[7])
	// The 20 devices were looked up in one JSON batch, not one request each.
	if batches, others := batchPosts(c.cl.emu, c.seenBefore); batches != 1 || others != 0 {
		t.Errorf("after the restart: %d JSON batches and %d other requests besides reading the devices followed, want one batch for the 20 devices", batches, others)
	}
}

// A desk killed after recording a batch as in flight and before sending it: the batch is never
// sent blindly; its devices are looked for, not found, and reported "outcome unknown — check"
// with what to do, and the job still finishes.
func TestImportLostBeforeSendingIsNeverResentBlindly(t *testing.T) {
	c := crashedImport(t, importer.FaultBatchRecorded, []time.Duration{0, 50 * time.Millisecond, 100 * time.Millisecond}, "SN-UNSENT", 3)
	doc := waitFinished(t, c.d, c.b, c.job)
	if n := importCalls(c.cl.emu); n != 0 {
		t.Errorf("%d import calls: a batch whose fate was unknown was sent again", n)
	}
	if got := doc.Find(`[data-testid="outcome"] tr[data-verdict="not-found"]`).Length(); got != 3 {
		t.Errorf("%d of 3 rows read outcome unknown: %.400s", got, text(doc))
	}
	rows := report(t, c.d, c.b, c.job)
	for _, r := range rows[1:] {
		if r[4] != "Outcome unknown — check" || !strings.Contains(r[7], "if the device is not there, upload your file again") {
			t.Errorf("report row %q", r)
		}
	}
}

// Two desks on one PostgreSQL: 60 concurrent submits of one draft, split between the desks and
// five sessions, send each batch once; the worker that sends the first batch dies before storing
// Graph's answer, and a worker takes the job over through the lease without sending it again.
func TestImportOnTwoDesksSharingPostgres(t *testing.T) {
	// Not beside other long tests: its two-second leases are the point, and a starved process
	// would lose them for reasons of its own.
	hook, fired := stopOnce(importer.FaultAnswerReceived)
	cl := startClusterWith(t, clusterOptions{app: appOptions{ImportFault: hook, ImportLease: 2 * time.Second,
		ImportLookupDelays: []time.Duration{0, time.Second}}, env: map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"},
		shape: func(o *demo.Options) {
			o.Emulator.Faults = emulator.Faults{LatencyMin: 20 * time.Millisecond, LatencyMax: 20 * time.Millisecond}
		}})
	d := cl.onDesks("A", "B")
	browsers := d.signedIn(5, "admin", cl.browser)
	data, _ := deviceCSV("SN-PG", 700) // two batches
	job := draftOf(t, d, browsers[0], data)
	postAtOnce(t, 60, []string{cl.replicas["A"].URL, cl.replicas["B"].URL}, cl.lb.URL, browsers, job+"/submit", func(b *http.Client) url.Values { return submitForm(t, d, b, job) })
	doc := waitFinished(t, d, browsers[0], job)
	if !fired.Load() {
		t.Error("no worker was stopped: the takeover was not exercised")
	}
	batches, _ := cl.apps[0].db.ImportBatches(context.Background(), strings.TrimPrefix(job, views.ImportJobURL("")))
	if n := importCalls(cl.emu); n != len(batches) || n != 2 {
		t.Errorf("%d import calls for %d batches", n, len(batches))
	}
	for serial, n := range devicesBySerial(t, cl.emu, "", nil) {
		if n != 1 {
			t.Errorf("%s sent %d times", serial, n)
		}
	}
	rows := report(t, d, browsers[0], job)
	reconciled, verdicts := 0, map[string]int{}
	for _, r := range rows[1:] {
		verdicts[r[4]]++
		if r[8] == "yes" {
			reconciled++
		}
	}
	if verdicts["Imported"] != 700 || !strings.Contains(doc.Find(`[data-testid="progress-summary"]`).Text(), "700 imported") {
		t.Errorf("%d of 700 rows imported (rows by outcome: %v); the job's page: %.1500s", verdicts["Imported"], verdicts, text(doc))
	}
	if len(rows) != 701 || reconciled == 0 {
		t.Errorf("report: %d lines, %d reconciled", len(rows), reconciled)
	}
}

// When a batch's answer never arrives, the page says what is known and offers one main action,
// "Check what Graph has", with the support details and the activity record; no import button.
// Looking finds the devices Graph did import, without sending them again.
func TestOutcomeUnknownPage(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond},
		ImportLookupDelays: []time.Duration{time.Hour, 2 * time.Hour}})
	d.app.demo.Emulator.SetFaults(emulator.Faults{LoseWriteAnswers: true})
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-LOST", 4)
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	var doc *goquery.Document
	for i := 0; ; i++ {
		_, doc = d.get(b, job)
		if doc.Find(`[data-testid="outcome-unknown"]`).Length() > 0 || i > 300 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	section := doc.Find(`[data-testid="outcome-unknown"]`)
	if section.Length() != 1 {
		t.Fatalf("no outcome-unknown section: %.600s", text(doc))
	}
	if got := section.Find("h2").Text(); got != "Microsoft Graph did not say whether batch 1 was imported" {
		t.Errorf("heading %q", got)
	}
	if !strings.Contains(section.Text(), "not send them again") || !strings.Contains(section.Text(), "504") && !strings.Contains(section.Text(), "did not say") {
		t.Errorf("section: %s", section.Text())
	}
	if n := section.Find(`form[action$="/reconcile"] button`).Length(); n != 1 || section.Find("button").Text() != "Check what Graph has" {
		t.Errorf("the main action is missing: %s", section.Text())
	}
	if !strings.Contains(section.Find("details pre").Text(), "request-id") {
		t.Errorf("no support details: %s", section.Text())
	}
	activity := section.Find(`a[href^="/activity/"]`).AttrOr("href", "")
	if activity == "" {
		t.Fatal("no link to the activity record")
	}
	if doc.Find(`form[action$="/submit"], [data-testid="import-button"]`).Length() != 0 {
		t.Error("an import button is offered while the outcome is unknown")
	}
	if got := doc.Find(`[data-testid="outcome"] tr[data-verdict="unknown"]`).Length(); got != 4 {
		t.Errorf("%d rows read outcome unknown", got)
	}
	if _, rec := d.get(b, activity); !strings.Contains(text(rec), "Graph did not say whether it worked") || !strings.Contains(text(rec), "504") {
		t.Errorf("the activity record: %.500s", text(rec))
	}
	// Someone else may watch, not act.
	reader := d.browser()
	rdoc := parse(t, d.signIn(reader, "reader", job))
	if rdoc.Find(`form[action$="/reconcile"]`).Length() != 0 || !strings.Contains(rdoc.Find(`[data-testid="outcome-unknown"]`).Text(), "Only Adele Vance") {
		t.Errorf("the reader's view: %s", rdoc.Find(`[data-testid="outcome-unknown"]`).Text())
	}

	d.app.demo.Emulator.SetFaults(emulator.Faults{})
	d.post(b, job+"/reconcile", formValues(t, doc, `form[action$="/reconcile"]`))
	doc = waitFinished(t, d, b, job)
	if got := doc.Find(`[data-testid="outcome"] tr[data-verdict="imported"]`).Length(); got != 4 {
		t.Errorf("%d of 4 rows found and imported: %.500s", got, text(doc))
	}
	if n := importCalls(d.app.demo.Emulator); n != 1 {
		t.Errorf("%d import calls", n)
	}
	if !strings.Contains(doc.Find(`[data-testid="outcome"]`).Text(), "Found in Graph after its batch's answer was lost") {
		t.Error("the rows do not say they were reconciled")
	}
}

// partial is final with its own explanation; a null state is unknown, never a failure.
func TestPartialAndNullStates(t *testing.T) {
	cl := startClusterWith(t, clusterOptions{sqlite: true, shape: func(o *demo.Options) {
		o.Emulator.Outcomes = map[string]emulator.Outcome{"SN-STATE-00001": {Status: "partial"}, "SN-STATE-00002": {Status: "null"}}
	}})
	d := cl.onDesks("A")
	b := d.signedInBrowser("admin", cl.browser)
	data, _ := deviceCSV("SN-STATE", 3)
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	var doc *goquery.Document
	for i := 0; i < 500; i++ {
		_, doc = d.get(b, job)
		if doc.Find(`tr[data-verdict="partial"]`).Length() == 1 && doc.Find(`tr[data-verdict="imported"]`).Length() == 1 {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	partial := doc.Find(`tr[data-verdict="partial"]`)
	if partial.Length() != 1 || !strings.Contains(partial.Text(), "only partly done") {
		t.Errorf("the partial device: %.300s", text(doc))
	}
	null := doc.Find(`[data-testid="outcome"] tbody tr`).Eq(1)
	if null.AttrOr("data-verdict", "") != "sent" || null.Find(".badge").Text() != "Importing" || !strings.Contains(null.Text(), "Intune has not reported how its import is going yet") {
		t.Errorf("a device whose state Graph left null reads %q: %s", null.AttrOr("data-verdict", ""), null.Text())
	}
	if strings.TrimSpace(doc.Find("h1").Text()) != "Importing devices" {
		t.Error("the job finished while a device's state is unknown")
	}
}

// Graph refuses a request over its size limit with 413 before running it: the desk splits the
// batch and sends the halves, and every device is imported once.
func TestImportSplitsABatchGraphRefusesAsTooLarge(t *testing.T) {
	cl := startClusterWith(t, clusterOptions{sqlite: true, shape: func(o *demo.Options) { o.Emulator.MaxBodyBytes = 300_000 }})
	d := cl.onDesks("A")
	b := d.signedInBrowser("admin", cl.browser)
	data, _ := deviceCSV("SN-413", 100) // about 440 kB in one batch
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	doc := waitFinished(t, d, b, job)
	if got := doc.Find(`tr[data-verdict="imported"]`).Length(); got != 100 {
		t.Errorf("%d of 100 imported: %.400s", got, text(doc))
	}
	refused := 0
	for _, r := range cl.emu.Received() {
		if r.TooLarge {
			refused++
		}
	}
	if refused == 0 {
		t.Error("no request was refused as too large: the test proves nothing")
	}
	for serial, n := range devicesBySerial(t, cl.emu, "", nil) {
		if n != 1 {
			t.Errorf("%s imported %d times", serial, n)
		}
	}
}

// While the Graph client waits out the Retry-After of Graph's 429 to a batch within the call,
// the import's page says the import waits for Graph, and until when, rather than that the batch
// is on its way, and the tenant's other writes are held; every device is then imported once,
// and nothing goes before its time.
func TestImportPageSaysWhileABatchWaitsOutThrottling(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_GRAPH_TIMEOUT": "20s"},
		appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-WAIT", 700) // two batches: the second is throttled
	job := draftOf(t, d, b, data)
	_, doc := d.get(b, "/uploads/new")
	upload := formValues(t, doc, `form[action="/uploads"]`)
	d.emu.SetFaults(emulator.Faults{ThrottleWrites: 1, ThrottleWindow: 10 * time.Second, PunishEarlyRetry: true, Methods: []string{http.MethodPost}})
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	// The second batch waits out the rest of the 10 s window inside its call, within the call's
	// time (a slow machine may take seconds over the first batch): Graph's 429 never reaches the
	// worker, only the notice does.
	var waiting string
	for deadline := time.Now().Add(30 * time.Second); waiting == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		_, doc := d.get(b, job)
		if strings.TrimSpace(doc.Find("h1").Text()) == "Import finished" {
			break
		}
		waiting = words(doc.Find(`[data-testid="waiting"]`))
	}
	if !strings.Contains(waiting, "Microsoft Graph asked the desk to wait") || !strings.Contains(waiting, "UTC") {
		t.Errorf("while its batch waits out Graph's Retry-After, the page says: %q (%d throttled)", waiting, d.emu.Stats().Throttled)
	}
	// The tenant's other writes are held meanwhile: Graph would punish them.
	if resp, doc := d.post(b, "/uploads", upload); resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(text(doc), "asked the desk to wait") {
		t.Errorf("an upload created during the wait: %d %.300s", resp.StatusCode, text(doc))
	}
	doc = waitFinished(t, d, b, job)
	if got := words(doc.Find("main")); !strings.Contains(got, "700 imported") {
		t.Errorf("the finished import: %.400s", got)
	}
	if st := d.emu.Stats(); st.Throttled == 0 || st.Punished != 0 {
		t.Errorf("%d throttled, %d sent before Graph's Retry-After passed", st.Throttled, st.Punished)
	}
	imported := map[string]int{}
	for _, r := range d.emu.ImportRecords(demoidp.DemoTenantID) {
		imported[r.SerialNumber]++
	}
	for serial, n := range imported {
		if n != 1 {
			t.Errorf("%s imported %d times", serial, n)
		}
	}
	if len(imported) != 700 {
		t.Errorf("%d devices imported, want 700", len(imported))
	}
}

// Without a live session of its owner, a job waits and says so; it goes on by itself when they
// sign in again.
func TestImportWaitsForItsOwnerToSignIn(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: 300 * time.Millisecond, Pending: time.Millisecond},
		ImportPausedRecheck: 50 * time.Millisecond})
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	data, _ := deviceCSV("SN-PAUSE", 2)
	job := draftOf(t, d, admin, data)
	_, doc := d.post(admin, job+"/submit", submitForm(t, d, admin, job))
	d.post(admin, "/auth/signout", formValues(t, doc, `form[action="/auth/signout"]`))
	reader := d.browser()
	d.signIn(reader, "reader", "/")
	for i := 0; ; i++ {
		_, doc = d.get(reader, job)
		if doc.Find(`[data-testid="paused"]`).Length() == 1 {
			break
		}
		if i > 300 {
			t.Fatalf("the job did not say it waits for its owner: %.500s", text(doc))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := doc.Find(`[data-testid="paused"]`).Text(); !strings.Contains(got, "continues by itself when Adele Vance signs in again") {
		t.Errorf("paused note: %s", got)
	}
	time.Sleep(200 * time.Millisecond)
	if _, doc = d.get(reader, job); strings.TrimSpace(doc.Find("h1").Text()) == "Import finished" {
		t.Fatal("the job finished without its owner's sign-in")
	}
	d.signIn(admin, "admin", "/")
	doc = waitFinished(t, d, reader, job)
	if got := doc.Find(`tr[data-verdict="imported"]`).Length(); got != 2 {
		t.Errorf("%d of 2 imported after the owner came back", got)
	}
}

// A job stored before rows had a table of their own is moved into it when first opened: a draft
// can still be imported, and a finished import still has its page and report.
func TestImportJobsOfTheEarlierFormat(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	ctx := context.Background()
	hash := realHash()
	old := map[string]any{"fileNotes": []string{"Removed the UTF-8 byte order mark."}, "rows": []map[string]any{
		{"line": 2, "serial": "SN-OLD-1", "hash": hash, "hashShown": "abcd…wxyz", "groupTag": "Sales"},
		{"line": 3, "serial": "", "hash": "not base64", "hashShown": "not base64", "errors": []string{"Device Serial Number is empty."}}}}
	payload, _ := json.Marshal(old)
	draft := &store.ImportJob{TenantID: demoidp.DemoTenantID, ObjectID: demoidp.AdminObjectID, ActorUPN: "AdeleV@contoso.example", State: "draft", Payload: payload}
	if err := d.app.db.CreateImportJob(ctx, draft, nil); err != nil {
		t.Fatal(err)
	}
	done := map[string]any{"rows": []map[string]any{{"line": 2, "serial": "SN-OLD-2", "hashShown": "abcd…wxyz"}, {"line": 3, "serial": "SN-OLD-3", "hashShown": "abcd…wxyz"}},
		"devices": []map[string]any{{"id": "7f1b5c2e-3a4d-4e6f-8a9b-0c1d2e3f4a5b", "serial": "SN-OLD-2", "status": "error", "errorCode": 808, "errorName": "ZtdDeviceAssignedToOtherTenant", "batch": 1}}}
	payload, _ = json.Marshal(done)
	finished := &store.ImportJob{TenantID: demoidp.DemoTenantID, ObjectID: demoidp.AdminObjectID, ActorUPN: "AdeleV@contoso.example", State: "finished", Payload: payload}
	if err := d.app.db.CreateImportJob(ctx, finished, nil); err != nil {
		t.Fatal(err)
	}

	_, doc := d.get(b, views.ImportJobURL(finished.ID))
	if !strings.Contains(doc.Find(`tr[data-verdict="error"]`).Text(), "808") || doc.Find(`tr[data-verdict="left-out"]`).Length() != 1 {
		t.Errorf("the finished job of the earlier format: %.500s", text(doc))
	}
	if rows := report(t, d, b, views.ImportJobURL(finished.ID)); len(rows) != 3 || rows[1][5] != "808" {
		t.Errorf("its report: %q", rows)
	}
	job := views.ImportJobURL(draft.ID)
	_, doc = d.get(b, job)
	if doc.Find(`[data-testid="preflight"] tbody tr`).Length() != 2 || !strings.Contains(text(doc), "byte order mark") {
		t.Fatalf("the draft of the earlier format: %.500s", text(doc))
	}
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	doc = waitFinished(t, d, b, job)
	if doc.Find(`tr[data-verdict="imported"]`).Length() != 1 {
		t.Errorf("the draft of the earlier format did not import: %.500s", text(doc))
	}
	for _, r := range d.received() {
		if strings.HasSuffix(r.Path, "/import") && !strings.Contains(string(r.Body), hash) {
			t.Error("the hash sent is not the one of the file")
		}
	}
}

// A pasted CSV larger than a form field may hold is refused as too much to send, not as a form
// whose security token is missing.
func TestHugePasteIsRefusedAsTooLarge(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices/import"))
	resp := d.postMultipart(b, "/devices/import", func(w *multipart.Writer) {
		w.WriteField("_csrf", doc.Find(`input[name="_csrf"]`).First().AttrOr("value", ""))
		w.WriteField("csv", strings.Repeat("SN,,QUJD,,\n", 1_500_000))
	})
	page := parse(t, resp)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text(page), "split the file") {
		t.Errorf("a 16 MB paste answered %d: %s", resp.StatusCode, text(page))
	}
}

// A file refused for its size names the row limit the desk was given, not the default: both when
// the handler reads its size and when the body is over the upload limit before it is read.
func TestFileTooLargeNamesTheConfiguredRowLimit(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_IMPORT_MAX_ROWS": "500"})
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	resp := d.postMultipart(b, "/devices/import", func(w *multipart.Writer) {
		w.WriteField("_csrf", csrf)
		f, _ := w.CreateFormFile("file", "devices.csv")
		f.Write(bytes.Repeat([]byte("SN,,QUJD,,\n"), (handlers.MaxCSVBytes/11)+1))
	})
	page := text(parse(t, resp))
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(page, "parts of up to 500 devices") || strings.Contains(page, "10,000") {
		t.Errorf("a 48 MB file with a limit of 500 rows answered %d: %s", resp.StatusCode, page)
	}

	// Over the upload limit: refused from its length, before its body is sent.
	client := *b
	tr := d.srv.Client().Transport.(*http.Transport).Clone()
	tr.ExpectContinueTimeout = time.Minute
	client.Transport = tr
	size := int64(handlers.MaxUploadBytes + 1)
	req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/devices/import", io.LimitReader(zeros{}, size))
	req.ContentLength = size
	req.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	req.Header.Set("Origin", d.srv.URL)
	req.Header.Set("Expect", "100-continue")
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	page = text(parse(t, resp))
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(page, "parts of up to 500 devices") || strings.Contains(page, "10,000") {
		t.Errorf("an upload over the limit with a limit of 500 rows answered %d: %s", resp.StatusCode, page)
	}
}

// zeros reads as endless zero bytes.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// The worker borrows its owner's session without keeping it alive: an expired access token is
// renewed through the session's refresh token, and the session still ends when its person has
// been idle for the idle timeout, however recently the worker used it.
// skewedClock runs with the real clock, moved ahead by the test: the worker's waits still pass
// after the jump.
type skewedClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *skewedClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().UTC().Add(c.offset)
}

func (c *skewedClock) Add(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

func TestImportRenewsTheOwnersTokenWithoutKeepingTheSessionAlive(t *testing.T) {
	clock := &skewedClock{}
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT": "2h"},
		appOptions{Now: clock.Now, ImportDelays: emulator.ImportDelays{Unknown: time.Second, Pending: time.Second}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-RENEW", 2)
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	ctx := context.Background()
	sessions := d.app.sessionStore()
	owner := demoidp.DemoTenantID + ":" + demoidp.AdminObjectID
	tokensOf := func() (tokens web.SessionTokens) {
		ids, err := sessions.LiveSessionsOfUser(ctx, owner)
		if err != nil || len(ids) != 1 {
			t.Fatalf("live sessions %v %v", ids, err)
		}
		sessions.UpdateLocked(ctx, ids[0], func(values map[any]any) (store.SessionChange, error) {
			tokens, _ = values["tokens"].(web.SessionTokens)
			return store.KeepSession, nil
		})
		return tokens
	}
	before := tokensOf()
	id := strings.TrimPrefix(job, views.ImportJobURL(""))
	state := func() string {
		j, err := d.app.db.GetImportJob(ctx, demoidp.DemoTenantID, id)
		if err != nil {
			t.Fatal(err)
		}
		return j.State
	}
	// The batch goes while the token is fresh; the devices stay unknown.
	waitRows(t, d, id, "the batch to be sent", func(c importer.Counts) bool { return c.Processing == 2 })
	clock.Add(61 * time.Minute) // the access token has expired; the session is idle but alive
	for i := 0; state() != "finished"; i++ {
		if i > 6000 {
			t.Fatal("the import did not finish after the token expired")
		}
		if i%500 == 499 {
			// A look begun before the jump ends after it and paces the next by the hour the
			// batch has (seemingly) been processing: at most two minutes, which pass here.
			clock.Add(2 * time.Minute)
		}
		time.Sleep(10 * time.Millisecond)
	}
	after := tokensOf()
	if after.AccessToken == before.AccessToken || after.RefreshToken == before.RefreshToken || !after.Expiry.After(clock.Now()) {
		t.Errorf("the owner's tokens were not renewed")
	}
	clock.Add(60 * time.Minute) // two hours since the person's last request
	if ids, _ := sessions.LiveSessionsOfUser(ctx, owner); len(ids) != 0 {
		t.Errorf("the worker kept an idle session alive")
	}
	if resp, _ := d.get(b, job); resp.Request.URL.Path != "/auth/signin" {
		t.Errorf("the idle session still served %s", resp.Request.URL.Path)
	}
}
