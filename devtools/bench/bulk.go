package main

// The bulk step: a bulk change of the group tag of many registered devices through a Graph
// emulator that enforces a write budget and punishes early retries, as Intune does. It measures
// the time against the least the budget allows, the requests sent before a Retry-After elapsed,
// and that every device's outcome was recorded.

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"autopilotdesk/devtools/deskrun"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers/bulk"
	"autopilotdesk/web/demo"
	"autopilotdesk/web/identity/demoidp"
)

// bulkFlags bound the bulk step: how many devices, and the write budget (Intune's is 100 writes
// per 20 s; the window is scaled down so the step takes seconds, not minutes).
type bulkFlags struct {
	devices int
	writes  int
	window  time.Duration
}

func (f bulkFlags) String() string {
	return fmt.Sprintf("%d devices, %d writes per %s", f.devices, f.writes, f.window)
}

// minimum is the least time the budget allows for the step's changes: a window for every full
// share of the budget a bulk change may use (all but the tenth kept for single changes) after
// the first.
func (f bulkFlags) minimum() time.Duration {
	return bulk.Minimum(f.devices, f.writes, f.window)
}

// benchBulk runs the step: its own emulator and identity provider in this process (the load here
// is a handful of requests; the figure is the budget's pacing), a desk process told the same
// budget, 500 devices' group tag changed through the desk's bulk change.
func benchBulk(ctx context.Context, deskBin string, f bulkFlags, t *benchTable) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	addr, err := deskrun.FreeAddr()
	if err != nil {
		ln.Close()
		return err
	}
	public, secret := "http://"+addr, rand.Text()
	pair, err := demo.New("http://"+ln.Addr().String(), demo.Options{ClientID: benchClientID, ClientSecret: secret,
		RedirectURIs: []string{public + "/auth/callback"}, PostLogoutRedirectURIs: []string{public + "/auth/signed-out"},
		Emulator: emulator.Options{PageSize: 1000, Faults: emulator.Faults{ThrottleWrites: f.writes, ThrottleWindow: f.window, PunishEarlyRetry: true}}})
	if err != nil {
		ln.Close()
		return err
	}
	srv := &http.Server{Handler: pair.Handler, ReadHeaderTimeout: 5 * time.Second, ErrorLog: slog.NewLogLogger(slog.DiscardHandler, slog.LevelError)}
	go srv.Serve(ln)
	defer srv.Close()
	devices := make([]emulator.AutopilotDevice, f.devices)
	ids := make([]string, f.devices)
	for i := range devices {
		devices[i] = emulator.AutopilotDevice{SerialNumber: fmt.Sprintf("BENCH-%05d", i+1), Manufacturer: "Dell Inc.", Model: "Latitude 5440", GroupTag: "Sales"}
		ids[i] = emulator.AutopilotDeviceID(devices[i].SerialNumber)
	}
	pair.Emulator.SeedAutopilotDevices(demoidp.DemoTenantID, devices...)

	b := &rig{}
	defer b.close()
	b.desk, err = deskrun.Start(ctx, deskBin, addr, "--public-url", public, "--issuer-url", pair.IdP.IssuerURL(), "--tenant-id", demoidp.DemoTenantID,
		"--client-id", benchClientID, "--client-secret", secret, "--graph-url", pair.URL, "--log-level", "warn",
		"--rate-limit-create", "off", "--graph-write-budget", strconv.Itoa(f.writes)+"/"+f.window.String())
	if err != nil {
		return err
	}
	b.client = &http.Client{Jar: newBenchJar(), Timeout: time.Minute}
	if err := b.signIn(ctx); err != nil {
		return fmt.Errorf("sign in: %w", err)
	}
	job, err := b.chooseDevices(ctx, "Frontline", ids)
	if err != nil {
		return err
	}
	page, _, err := b.get(ctx, "/devices/bulk/"+job)
	if err != nil {
		return err
	}
	confirm := formFields(page)
	readsBefore := pair.Emulator.Stats().Requests
	start := time.Now()
	if err := b.post(ctx, "/devices/bulk/"+job+"/confirm", url.Values{"_csrf": {b.csrf}, "formKey": {confirm["formKey"]}}); err != nil {
		return err
	}
	var outcomes map[string]int
	for {
		page, _, err := b.get(ctx, "/devices/bulk/"+job)
		if err != nil {
			return err
		}
		if strings.Contains(string(page), "<h1>Bulk change finished</h1>") {
			outcomes = bulkOutcomes(page)
			break
		}
		if time.Since(start) > f.minimum()*3+time.Minute {
			return fmt.Errorf("the bulk change did not finish in %s", time.Since(start).Round(time.Second))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	took := time.Since(start)
	st := pair.Emulator.Stats()
	writes := writesPerDevice(pair.Emulator)
	once := 0
	for _, n := range writes {
		if n == 1 {
			once++
		}
	}
	min := f.minimum()
	ratio := float64(took) / float64(max(min, time.Millisecond))
	t.add(fmt.Sprintf("bulk group tag, %s: time", f), took.Round(10*time.Millisecond).String(), "budget-limited minimum "+min.String(), "≤ 1.1×",
		fmt.Sprintf("%.2f×", ratio), ratio <= 1.1)
	t.add("bulk group tag: requests sent before a Retry-After elapsed", strconv.Itoa(st.Punished), fmt.Sprintf("%d throttled (429) in all", st.Throttled), "0", "", st.Punished == 0)
	recorded := outcomes["done"]
	t.add("bulk group tag: devices with their outcome recorded", fmt.Sprintf("%d of %d", recorded, f.devices),
		fmt.Sprintf("%d written exactly once at Graph; %d Graph requests", once, st.Requests-readsBefore), fmt.Sprintf("%d", f.devices), "",
		recorded == f.devices && once == f.devices && len(writes) == f.devices)
	return nil
}

// chooseDevices posts the devices to change, as the list's bulk form does, and returns the draft.
func (b *rig) chooseDevices(ctx context.Context, groupTag string, ids []string) (string, error) {
	form := url.Values{"_csrf": {b.csrf}, "action": {"group-tag"}, "groupTag": {groupTag}, "device": ids}
	resp, body, err := b.postForm(ctx, b.client, "/devices/bulk", form)
	if err != nil {
		return "", err
	}
	job, ok := strings.CutPrefix(resp.Request.URL.Path, "/devices/bulk/")
	if resp.StatusCode != http.StatusOK || !ok {
		return "", fmt.Errorf("choosing the devices answered %d at %s: %.300s", resp.StatusCode, resp.Request.URL.Path, body)
	}
	return job, nil
}

// post sends a form of the signed-in session and expects the desk's page after its redirect.
func (b *rig) post(ctx context.Context, path string, form url.Values) error {
	resp, _, err := b.postForm(ctx, b.client, path, form)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return errors.New("POST " + path + " answered " + resp.Status)
	}
	return nil
}

var outcomeAttr = regexp.MustCompile(`data-outcome="([a-z-]+)"`)

func bulkOutcomes(page []byte) map[string]int {
	out := map[string]int{}
	for _, m := range outcomeAttr.FindAllSubmatch(page, -1) {
		out[string(m[1])]++
	}
	return out
}

// writesPerDevice counts the changes the emulator received for each device inside JSON batches.
func writesPerDevice(e *emulator.Emulator) map[string]int {
	counts := map[string]int{}
	for _, r := range e.Received() {
		if r.Method != http.MethodPost || !strings.HasSuffix(r.Path, "/$batch") {
			continue
		}
		var body struct {
			Requests []struct{ Method, URL string } `json:"requests"`
		}
		if json.Unmarshal(r.Body, &body) != nil {
			continue
		}
		for _, q := range body.Requests {
			if _, rest, ok := strings.Cut(q.URL, "/windowsAutopilotDeviceIdentities/"); ok && q.Method != http.MethodGet {
				id, _, _ := strings.Cut(rest, "/")
				counts[id]++
			}
		}
	}
	return counts
}
