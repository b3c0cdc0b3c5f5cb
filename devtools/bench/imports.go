package main

// The imports step: what an administrator waits for when importing thousands of devices, where
// the limits are Graph's own. The desk imports a file through its form and its background
// worker against an emulator (a process of its own) that processes imports asynchronously and
// throttles as Intune does (a scaled-down window); beside it, in the same run, a client that
// works the way many scripts do: one POST per device, then one GET per device per poll round.

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/devtools/deskrun"
	"autopilotdesk/graphclient"
	"autopilotdesk/graphclient/emulator"
)

// importFlags bound the imports step.
type importFlags struct {
	sizes     []int            // devices the desk imports, one import after another
	reference int              // devices the script-like client imports
	delays    [2]time.Duration // how long Intune keeps an imported device unknown, then pending
	window    time.Duration    // Intune's throttling window, scaled down from 20 s
	serials   int              // serials LookUpSerials checks
	checks    int              // serials of a file the desk checks in the tenant
}

// importThrottle is Intune's documented budget per application per tenant, 100 writes and 1,000
// requests per 20 s (graph-facts §3), over the bench's scaled-down window.
func (f importFlags) throttle() string { return "100/1000/" + f.window.String() }

// scriptPause is how long the script-like client sleeps between poll rounds: the 30 s of the
// scripts in wide use, scaled down as the throttling window is.
func (f importFlags) scriptPause() time.Duration {
	return time.Duration(float64(30*time.Second) * f.window.Seconds() / 20).Round(time.Millisecond)
}

func benchImports(ctx context.Context, deskBin string, o benchFlags, t *benchTable) error {
	f := o.imports
	b, err := startRigWith(ctx, deskBin, "", demoConfig{
		ImportDelays: emulator.ImportDelays{Unknown: f.delays[0], Pending: f.delays[1]}, Throttle: f.throttle()})
	if err != nil {
		return err
	}
	defer b.close()
	scale := fmt.Sprintf("emulator: each device unknown %s then pending %s; Intune's throttling %s (20 s scaled to %s), early retries punished; 20 ms a request",
		f.delays[0], f.delays[1], f.throttle(), f.window)
	for i, n := range f.sizes {
		r, err := b.importThroughDesk(ctx, fmt.Sprintf("BENCH%d-", i+1), n)
		if err != nil {
			return fmt.Errorf("desk import of %d devices: %w", n, err)
		}
		name := fmt.Sprintf("Import %d devices through the desk", n)
		ratio := r.elapsed.Seconds() / r.limit.Seconds()
		t.add(name+": submit to every device final", fmt.Sprintf("%.1f s", r.elapsed.Seconds()),
			fmt.Sprintf("emulator's processing %.1f s (first batch in to last device final; batches went in over %.1f s); first batch in %.1f s after the submit, every row final at the desk %.1f s after the last device was; %s",
				r.limit.Seconds(), r.sending.Seconds(), r.first.Sub(r.start).Seconds(), r.done.Sub(r.lastFinal).Seconds(), scale),
			"<= 1.2x processing", fmt.Sprintf("%.2fx", ratio), ratio <= 1.2)
		per := 1000 * float64(r.requests.graph()) / float64(n)
		if staged := sum(f.sizes[:i]); staged == 0 {
			t.add(name+": Graph requests per 1,000 devices", fmt.Sprintf("%.1f", per), r.requests.String(), "<= 20", fmt.Sprintf("%.1f", per), per <= 20)
		} else {
			// Graph's list of imported devices still holds the earlier imports (nothing here
			// deletes them), and the worker reads all of it: the target is for an import alone.
			t.add(name+": Graph requests per 1,000 devices", fmt.Sprintf("%.1f", per),
				fmt.Sprintf("%s; Graph's list of imported devices held %d from the imports before this one, so reading it took %d pages, where one GET per device would take %d",
					r.requests, staged, (staged+n+emulatorPage-1)/emulatorPage, n), "report", "", true)
		}
		t.add(name+": duplicates / lost", fmt.Sprintf("%d / %d", r.duplicates, r.lost),
			fmt.Sprintf("counted in the emulator; the desk's report: %d of %d imported", r.imported, n), "0 / 0",
			fmt.Sprintf("%d / %d", r.duplicates, r.lost), r.duplicates == 0 && r.lost == 0 && r.imported == n)
		t.add(name+": desk memory", fmt.Sprintf("peak %s during the import", mib(r.peak)),
			fmt.Sprintf("%s when submitted (after the upload and pre-flight); peak %s above it", mib(r.before), mib(r.peak-r.before)), "report", "", true)
	}
	if f.reference > 0 {
		r, err := b.importLikeAScript(ctx, "REF-", f.reference, f.scriptPause())
		if err != nil {
			return fmt.Errorf("script-like import: %w", err)
		}
		name := fmt.Sprintf("Import %d devices the way scripts do (reference)", f.reference)
		t.add(name+": start to every device final", fmt.Sprintf("%.1f s", r.elapsed.Seconds()),
			fmt.Sprintf("emulator's processing %.1f s; one POST per device, then one GET per device every %s", r.limit.Seconds(), f.scriptPause()), "report", "", true)
		t.add(name+": Graph requests per 1,000 devices", fmt.Sprintf("%.1f", 1000*float64(r.requests.graph())/float64(f.reference)), r.requests.String(), "report", "", true)
		t.add(name+": duplicates / lost", fmt.Sprintf("%d / %d", r.duplicates, r.lost), "counted in the emulator", "report", "", true)
	}
	var pace time.Duration // LookUpSerials' time per serial, straight to the emulator
	if f.serials > 0 && len(f.sizes) > 0 {
		elapsed, err := b.lookUpSerials(ctx, "BENCH1-", f.sizes[0], f.serials, t)
		if err != nil {
			return err
		}
		pace = elapsed / time.Duration(f.serials)
	}
	if f.checks > 0 && len(f.sizes) > 0 {
		return b.checkThroughDesk(ctx, "BENCH1-", f.sizes[0], f.checks, f.window, pace, t)
	}
	return nil
}

// emulatorPage is how many imported devices the emulator lists on a page.
const emulatorPage = 100

func sum(ns []int) int {
	total := 0
	for _, n := range ns {
		total += n
	}
	return total
}

// importResult is one import as the bench saw it and as the emulator counted it.
type importResult struct {
	start, done             time.Time // submit (or the first request), and every device final as the client saw it
	first, lastFinal        time.Time // the emulator's first import in, and its last device final
	elapsed, limit, sending time.Duration
	requests                kinds
	duplicates, lost        int
	imported                int   // rows the desk's report calls imported
	before, peak            int64 // the desk's resident memory when submitted, and at most during the import
}

// kinds are Graph requests by kind (see requestKind).
type kinds map[string]int

func (k kinds) minus(o kinds) kinds {
	out := kinds{}
	for name, n := range k {
		if d := n - o[name]; d != 0 {
			out[name] = d
		}
	}
	return out
}

// graph counts the requests as Intune's budget does: a batch's inner requests one by one.
func (k kinds) graph() int {
	n := 0
	for name, v := range k {
		switch name {
		case "batch", "throttled":
		default:
			n += v
		}
	}
	return n
}

func (k kinds) String() string {
	var parts []string
	for _, name := range []string{"import", "create", "get", "list", "lookup", "registered", "batch-inner", "sync", "other"} {
		if k[name] > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", name, k[name]))
		}
	}
	if k["batch"] > 0 {
		parts = append(parts, fmt.Sprintf("(in %d batch POSTs)", k["batch"]))
	}
	parts = append(parts, fmt.Sprintf("429 answers %d", k["throttled"]))
	return strings.Join(parts, ", ")
}

// requests are the Graph requests the emulator has counted so far on one of its listeners.
func (b *rig) requests(ctx context.Context, listener string) (kinds, error) {
	body, err := b.control(ctx, "/requests")
	if err != nil {
		return nil, err
	}
	var all map[string]kinds
	if err := json.Unmarshal([]byte(body), &all); err != nil {
		return nil, err
	}
	if all[listener] == nil {
		return kinds{}, nil
	}
	return all[listener], nil
}

// emulated is what the emulator holds of the devices whose serials start with prefix.
func (b *rig) emulated(ctx context.Context, prefix string) (importSummary, error) {
	body, err := b.control(ctx, "/imports?prefix="+url.QueryEscape(prefix))
	var s importSummary
	if err == nil {
		err = json.Unmarshal([]byte(body), &s)
	}
	return s, err
}

// benchHash is a plausible hardware hash: 2,200 random bytes, about 2,900 base64 characters, so
// 500 devices make a request of about 1.6 MB and the desk sends them as one batch.
func benchHash(r *rand.Rand) string {
	raw := make([]byte, 2200)
	for i := range raw {
		raw[i] = byte(r.Uint32())
	}
	return base64.StdEncoding.EncodeToString(raw)
}

// importThroughDesk uploads a file of n devices to the desk, submits it, and waits until the
// desk's report is ready: every row final.
func (b *rig) importThroughDesk(ctx context.Context, prefix string, n int) (importResult, error) {
	var res importResult
	path, err := writeImportFile(prefix, n)
	if err != nil {
		return res, err
	}
	defer os.Remove(path)
	jobPath, err := b.upload(ctx, path)
	if err != nil {
		return res, err
	}
	before, err := b.requests(ctx, "desk")
	if err != nil {
		return res, err
	}
	// The desk's peak memory is counted from here: the upload and pre-flight are measured elsewhere.
	os.WriteFile(fmt.Sprintf("/proc/%d/clear_refs", b.desk.Pid()), []byte("5"), 0)
	res.before = b.desk.RSS()
	noRedirect := &http.Client{Transport: b.client.Transport, Jar: b.client.Jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := time.Now()
	res.start = start
	resp, _, err := b.postForm(ctx, noRedirect, jobPath+"/submit", url.Values{"_csrf": {b.csrf}})
	if err != nil {
		return res, err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return res, fmt.Errorf("submit answered %d", resp.StatusCode)
	}
	var report []byte
	deadline := start.Add(30 * time.Minute)
	for report == nil {
		if time.Now().After(deadline) {
			return res, errors.New("the import did not finish within 30 minutes")
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.desk.URL+jobPath+"/report.csv", nil)
		resp, err := noRedirect.Do(req)
		if err != nil {
			return res, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		switch {
		case err != nil:
			return res, err
		case resp.StatusCode == http.StatusOK:
			res.done = time.Now()
			res.elapsed, report = res.done.Sub(start), body
		case resp.StatusCode != http.StatusConflict:
			return res, fmt.Errorf("the report answered %d", resp.StatusCode)
		}
	}
	res.peak = deskrun.PeakRSS(b.desk.Pid())
	records, err := csv.NewReader(strings.NewReader(string(report))).ReadAll()
	if err != nil {
		return res, fmt.Errorf("read the report: %w", err)
	}
	for _, rec := range records[1:] {
		if len(rec) > 4 && rec[4] == "Imported" {
			res.imported++
		}
	}
	after, err := b.requests(ctx, "desk")
	if err != nil {
		return res, err
	}
	res.requests = after.minus(before)
	return res, b.settle(ctx, prefix, n, &res)
}

// settle fills in what the emulator did with the devices of prefix.
func (b *rig) settle(ctx context.Context, prefix string, n int, res *importResult) error {
	s, err := b.emulated(ctx, prefix)
	if err != nil {
		return err
	}
	res.duplicates, res.lost = s.Records-s.Serials, n-s.Serials
	res.limit, res.sending = s.LastFinal.Sub(s.First), s.LastArrived.Sub(s.First)
	res.first, res.lastFinal = s.First, s.LastFinal
	return nil
}

// writeImportFile writes a portal CSV of n devices with serials prefix000001...
func writeImportFile(prefix string, n int) (string, error) {
	f, err := os.CreateTemp("", "autopilotdesk-bench-import-*.csv")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	w.WriteString("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n")
	r := rand.New(rand.NewPCG(uint64(n), 18))
	for i := range n {
		fmt.Fprintf(w, "%s%06d,,%s,Bench,\r\n", prefix, i+1, benchHash(r))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}

// upload sends the file through the desk's import form, streamed, and returns the draft's path.
func (b *rig) upload(ctx context.Context, path string) (string, error) {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)
	go func() {
		mw.WriteField("_csrf", b.csrf)
		fw, err := mw.CreateFormFile("file", filepath.Base(path))
		if err == nil {
			var f *os.File
			if f, err = os.Open(path); err == nil {
				_, err = io.Copy(fw, f)
				f.Close()
			}
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.desk.URL+"/devices/import", pr)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, _, err := b.send(b.client, req)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/devices/import/") {
		return "", fmt.Errorf("the upload answered %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	return resp.Request.URL.Path, nil
}

// postForm sends a form of the signed-in session through c and returns the answer with its body.
func (b *rig) postForm(ctx context.Context, c *http.Client, path string, form url.Values) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, b.desk.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.send(c, req)
}

// send sends a POST from the desk's own pages (their Origin, as a browser sends it) and reads
// the whole answer.
func (b *rig) send(c *http.Client, req *http.Request) (*http.Response, []byte, error) {
	req.Header.Set("Origin", b.desk.URL)
	resp, err := c.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// importLikeAScript imports n devices the way many scripts do: one POST per device to the
// imported-identities collection, waiting out each 429 as Graph asks, then rounds of one GET
// per device, pause seconds apart, until none is still processing.
func (b *rig) importLikeAScript(ctx context.Context, prefix string, n int, pause time.Duration) (importResult, error) {
	var res importResult
	token, err := b.accessToken(ctx)
	if err != nil {
		return res, err
	}
	before, err := b.requests(ctx, "direct")
	if err != nil {
		return res, err
	}
	collection := b.pair.Direct + "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentities"
	client := &http.Client{Timeout: 30 * time.Second}
	send := func(method, u string, body []byte, out any) error {
		for {
			var rd io.Reader
			if body != nil {
				rd = strings.NewReader(string(body))
			}
			req, err := http.NewRequestWithContext(ctx, method, u, rd)
			if err != nil {
				return err
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				return err
			}
			data, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				return err
			}
			if resp.StatusCode == http.StatusTooManyRequests {
				wait := 2 * time.Second
				if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
					wait = time.Duration(s) * time.Second
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(wait):
				}
				continue
			}
			if resp.StatusCode/100 != 2 {
				return fmt.Errorf("%s answered %d: %.200s", method, resp.StatusCode, data)
			}
			return json.Unmarshal(data, out)
		}
	}
	r := rand.New(rand.NewPCG(uint64(n), 19))
	start := time.Now()
	res.start = start
	ids := make([]string, 0, n)
	for i := range n {
		body, _ := json.Marshal(map[string]string{"@odata.type": "#microsoft.graph.importedWindowsAutopilotDeviceIdentity",
			"serialNumber": fmt.Sprintf("%s%06d", prefix, i+1), "hardwareIdentifier": benchHash(r), "groupTag": "Bench"})
		var d graphclient.DeviceIdentity
		if err := send(http.MethodPost, collection, body, &d); err != nil {
			return res, err
		}
		ids = append(ids, d.ID)
	}
	for processing := n; processing > 0; {
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(pause):
		}
		processing = 0
		for _, id := range ids {
			var d graphclient.DeviceIdentity
			if err := send(http.MethodGet, collection+"/"+id, nil, &d); err != nil {
				return res, err
			}
			if !d.State.Final() {
				processing++
			}
		}
	}
	res.done = time.Now()
	res.elapsed = res.done.Sub(start)
	after, err := b.requests(ctx, "direct")
	if err != nil {
		return res, err
	}
	res.requests = after.minus(before)
	return res, b.settle(ctx, prefix, n, &res)
}

// lookUpSerials times graphclient's LookUpSerials for n serials among the registered devices,
// through the emulator process: half of them imported by the desk a moment ago (registered
// now), half unknown.
func (b *rig) lookUpSerials(ctx context.Context, prefix string, imported, n int, t *benchTable) (time.Duration, error) {
	token, err := b.accessToken(ctx)
	if err != nil {
		return 0, err
	}
	gc, err := graphclient.New(graphclient.Config{Root: b.pair.Direct})
	if err != nil {
		return 0, err
	}
	serials := make([]string, n)
	for i := range serials {
		if i%2 == 0 && i/2 < imported {
			serials[i] = fmt.Sprintf("%s%06d", prefix, i/2+1)
		} else {
			serials[i] = fmt.Sprintf("UNKNOWN-%06d", i)
		}
	}
	before, err := b.requests(ctx, "direct")
	if err != nil {
		return 0, err
	}
	start := time.Now()
	results, _, err := gc.LookUpSerials(ctx, oauth2.StaticTokenSource(&oauth2.Token{AccessToken: token}), serials, graphclient.InRegistered)
	elapsed := time.Since(start)
	if err != nil {
		return 0, err
	}
	after, err := b.requests(ctx, "direct")
	if err != nil {
		return 0, err
	}
	found, wrong := 0, 0
	for i, r := range results {
		if r.Err != nil {
			return 0, fmt.Errorf("serial %s: %w", r.Serial, r.Err)
		}
		if r.Found() {
			found++
		}
		if r.Found() != strings.HasPrefix(serials[i], prefix) {
			wrong++
		}
	}
	k := after.minus(before)
	t.add(fmt.Sprintf("LookUpSerials: %d serials among %d registered devices", n, imported), fmt.Sprintf("%d requests, %s", k["batch"], ms(elapsed)),
		fmt.Sprintf("%d found, %d not, %d wrong; %s (each inner request spends Intune's budget)", found, n-found, wrong, k.String()),
		"<= 25 requests", strconv.Itoa(k["batch"]+k["registered"]), wrong == 0 && k["batch"]+k["registered"] <= 25)
	return elapsed, nil
}

// checkThroughDesk checks a file of n serials in the tenant through the desk's form and its
// background check, from the click to the check's end on the page: every other serial imported
// by the first import (registered now), the rest unknown. pace, when known, is LookUpSerials'
// time per serial straight to the emulator in the same run.
func (b *rig) checkThroughDesk(ctx context.Context, prefix string, imported, n int, window, pace time.Duration, t *benchTable) error {
	serials := make([]string, n)
	registered := 0
	for i := range serials {
		if i%2 == 0 && i/2 < imported {
			serials[i], registered = fmt.Sprintf("%s%06d", prefix, i/2+1), registered+1
		} else {
			serials[i] = fmt.Sprintf("UNKNOWN-%06d", i)
		}
	}
	path, err := writeSerialsFile(serials)
	if err != nil {
		return err
	}
	defer os.Remove(path)
	jobPath, err := b.upload(ctx, path)
	if err != nil {
		return err
	}
	before, err := b.requests(ctx, "desk")
	if err != nil {
		return err
	}
	noRedirect := &http.Client{Transport: b.client.Transport, Jar: b.client.Jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := time.Now()
	resp, _, err := b.postForm(ctx, noRedirect, jobPath+"/check", url.Values{"_csrf": {b.csrf}})
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusSeeOther {
		return fmt.Errorf("the check answered %d", resp.StatusCode)
	}
	var page string
	for deadline := start.Add(10 * time.Minute); ; {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.desk.URL+jobPath, nil)
		resp, body, err := b.send(noRedirect, req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("the job's page answered %d", resp.StatusCode)
		}
		if page = string(body); !strings.Contains(page, `data-testid="checking"`) {
			break
		}
		if time.Now().After(deadline) {
			return errors.New("the check did not end within 10 minutes")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	elapsed := time.Since(start)
	after, err := b.requests(ctx, "desk")
	if err != nil {
		return err
	}
	k := after.minus(before)
	found := strings.Count(page, `data-testid="already-registered"`)
	// Intune's budget lets 1,000 requests through a window: n look-ups need that many windows,
	// the last of them begun, not waited out. The check sends its batches one after another, so
	// their own time (the emulator's 20 ms and its search) is the other bound: LookUpSerials'
	// pace straight to the emulator.
	least := time.Duration((n-1)/1000) * window
	reference := fmt.Sprintf("%d look-ups fit in one window of Intune's budget (1,000 a %s window)", n, window)
	if least > 0 {
		reference = fmt.Sprintf("the least Intune's budget allows for %d look-ups, 1,000 a %s window: %.1f s (%.2fx)", n, window, least.Seconds(), elapsed.Seconds()/least.Seconds())
	}
	if pace > 0 {
		alone := pace * time.Duration(n)
		reference += fmt.Sprintf("; LookUpSerials straight to the emulator, one batch after another, at its pace in this run: %.1f s (%.2fx)", alone.Seconds(), elapsed.Seconds()/alone.Seconds())
	}
	name := fmt.Sprintf("Check %d serials through the desk", n)
	t.add(name+": click to the check's end", fmt.Sprintf("%.1f s", elapsed.Seconds()),
		fmt.Sprintf("%s; %d found of the %d imported, none of the others", reference, found, registered),
		"every serial checked", fmt.Sprintf("%d found", found), found == registered && !strings.Contains(page, "could not be checked"))
	t.add(name+": Graph requests", fmt.Sprintf("%d look-ups in %d batch POSTs", k["batch-inner"], k["batch"]),
		fmt.Sprintf("%d serials, 20 to a batch: %d POSTs at the least; the others carry look-ups Intune throttled, sent again once their Retry-After passed", n, (n+19)/20),
		"report", "", true)
	return nil
}

// writeSerialsFile writes a portal CSV of the serials, each with a hash of its own.
func writeSerialsFile(serials []string) (string, error) {
	f, err := os.CreateTemp("", "autopilotdesk-bench-check-*.csv")
	if err != nil {
		return "", err
	}
	w := bufio.NewWriter(f)
	w.WriteString("Device Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n")
	r := rand.New(rand.NewPCG(uint64(len(serials)), 19))
	for _, s := range serials {
		fmt.Fprintf(w, "%s,,%s,Bench,\r\n", s, benchHash(r))
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return "", err
	}
	return f.Name(), f.Close()
}
