package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"autopilotdesk/devtools/deskrun"
	"autopilotdesk/graphclient/devicecsv"
	"autopilotdesk/static"
	"autopilotdesk/web"
	"autopilotdesk/web/store"
)

// pages compares the signed-in create form with a bare net/http handler writing the same bytes,
// each a process of its own.
func (b *rig) pages(ctx context.Context, o benchFlags, t *benchTable) error {
	bare, err := b.startBare(ctx)
	if err != nil {
		return err
	}
	defer bare.stop()
	hdr := http.Header{"Cookie": {b.cookie}}
	deskTarget := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: b.desk.URL + "/uploads/new", Header: hdr})
	bareTarget := vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodGet, URL: bare.url})
	var desk, ref loadRun
	compare(ctx, o.step,
		func(d time.Duration) { desk.maxRate(ctx, "desk", deskTarget, http.StatusOK, d) },
		func(d time.Duration) { ref.maxRate(ctx, "bare", bareTarget, http.StatusOK, d) })
	desk.Close()
	ref.Close()
	if err := errorsOf(desk.Metrics, "200"); err != nil {
		return fmt.Errorf("desk: %w", err)
	}
	ratio := desk.throughput() / ref.throughput()
	t.add("GET /uploads/new throughput", fmt.Sprintf("%.0f req/s", desk.throughput()), fmt.Sprintf("bare net/http %.0f req/s", ref.throughput()),
		">= 50% of bare", fmt.Sprintf("%.0f%%", 100*ratio), ratio >= 0.5)
	t.add("GET /uploads/new p50 / p99", fmt.Sprintf("%s / %s", ms(desk.Latencies.P50), ms(desk.Latencies.P99)),
		fmt.Sprintf("bare %s / %s", ms(ref.Latencies.P50), ms(ref.Latencies.P99)), "", "", true)
	t.add("RSS of the desk process", mib(b.desk.RSS()), "after the page load, one session", "report", "", true)
	return nil
}

// benchWorkers is the closed-loop concurrency of the throughput steps.
const benchWorkers = 16

// benchRounds is how many rounds each side of a comparison gets. The rounds of the two sides
// alternate (A B B A A B B A ...), so a neighbour slowing the shared machine for a moment weighs
// on the figure and its reference alike.
const benchRounds = 6

// loadRun is one side of a comparison, measured over its rounds only.
type loadRun struct {
	vegeta.Metrics
	active time.Duration // time spent in this side's rounds
	ok     int           // answers with the expected status
}

// throughput is expected answers per second of this side's own rounds.
func (l *loadRun) throughput() float64 { return float64(l.ok) / l.active.Seconds() }

// compare runs each side for d, in rounds whose order turns: with two sides A B, B A, A B...
func compare(ctx context.Context, d time.Duration, sides ...func(d time.Duration)) {
	round := d / benchRounds
	for i := range benchRounds {
		for j := range sides {
			if ctx.Err() != nil {
				return
			}
			sides[(i+j)%len(sides)](round)
		}
	}
}

// maxRate sends requests into l as fast as benchWorkers can for d: the throughput the server sustains.
func (l *loadRun) maxRate(ctx context.Context, name string, tr vegeta.Targeter, want int, d time.Duration) {
	a, conns := newAttacker(vegeta.Workers(benchWorkers), vegeta.MaxWorkers(benchWorkers))
	defer conns.CloseIdleConnections()
	l.collect(ctx, a, a.Attack(tr, vegeta.Rate{Freq: 0}, d, name), want)
}

// openLoop sends rate requests per second into l for d whatever the answers take (vegeta's default).
func (l *loadRun) openLoop(ctx context.Context, name string, tr vegeta.Targeter, rate, want int, d time.Duration) {
	a, conns := newAttacker()
	defer conns.CloseIdleConnections()
	l.collect(ctx, a, a.Attack(tr, vegeta.Rate{Freq: rate, Per: time.Second}, d, name), want)
}

// newAttacker is a vegeta attacker that follows no redirect and gives up after 10 s, with a
// transport like vegeta's own, returned so that the connections it leaves can be closed: a server
// waits at shutdown for a connection opened but never used.
func newAttacker(opts ...func(*vegeta.Attacker)) (*vegeta.Attacker, *http.Transport) {
	dialer := &net.Dialer{LocalAddr: &net.TCPAddr{IP: vegeta.DefaultLocalAddr.IP, Zone: vegeta.DefaultLocalAddr.Zone}, KeepAlive: 30 * time.Second}
	tr := &http.Transport{Proxy: http.ProxyFromEnvironment, DialContext: dialer.DialContext, TLSClientConfig: vegeta.DefaultTLSConfig,
		MaxIdleConnsPerHost: vegeta.DefaultConnections, MaxConnsPerHost: vegeta.DefaultMaxConnections}
	opts = append([]func(*vegeta.Attacker){vegeta.Client(&http.Client{Transport: tr})}, opts...)
	opts = append(opts, vegeta.Redirects(vegeta.NoFollow), vegeta.Timeout(10*time.Second))
	return vegeta.NewAttacker(opts...), tr
}

func (l *loadRun) collect(ctx context.Context, a *vegeta.Attacker, results <-chan *vegeta.Result, want int) {
	start := time.Now()
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()
	for r := range results {
		l.Add(r)
		if int(r.Code) == want {
			l.ok++
		}
	}
	l.active += time.Since(start)
}

// errorsOf reports answers other than want.
func errorsOf(m vegeta.Metrics, want string) error {
	if bad := int(m.Requests) - m.StatusCodes[want]; bad > 0 || m.Requests == 0 {
		return fmt.Errorf("%d of %d requests not answered %s: %v %v", bad, m.Requests, want, m.StatusCodes, firstN(m.Errors, 3))
	}
	return nil
}

func firstN(s []string, n int) []string { return s[:min(n, len(s))] }

// forward compares POST /uploads through the desk with the same create sent straight to the
// emulator, which answers after a fixed 20 ms, at two rates. A bare reverse proxy to the
// emulator runs in the same rounds: what a second hop alone adds on this machine.
func (b *rig) forward(ctx context.Context, o benchFlags, t *benchTable) error {
	token, err := b.accessToken(ctx)
	if err != nil {
		return err
	}
	proxy, err := startProxy(b.pair.Direct)
	if err != nil {
		return err
	}
	defer proxy.stop()
	const created = "2016-12-31T23:59:45.8788427-08:00"
	const uploads = "/v1.0/deviceManagement/importedWindowsAutopilotDeviceIdentityUploads"
	create := func(root string) vegeta.Targeter {
		return vegeta.NewStaticTargeter(vegeta.Target{Method: http.MethodPost, URL: root + uploads,
			Body:   []byte(`{"createdDateTimeUtc":"` + created + `","status":"pending"}`),
			Header: http.Header{"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"}}})
	}
	direct, proxied := create(b.pair.Direct), create(proxy.url)
	for i, rate := range o.rates {
		n := int(math.Ceil(float64(rate)*o.step.Seconds())) + rate/10 + 10
		keys, err := b.formKeys(ctx, n)
		if err != nil {
			return err
		}
		var next atomic.Int64
		hdr := http.Header{"Cookie": {b.cookie}, "Origin": {b.desk.URL}, "Content-Type": {"application/x-www-form-urlencoded"}}
		viaDesk := vegeta.Targeter(func(tgt *vegeta.Target) error {
			k := int(next.Add(1)) - 1
			if k >= len(keys) {
				return vegeta.ErrNoTargets
			}
			*tgt = vegeta.Target{Method: http.MethodPost, URL: b.desk.URL + "/uploads", Header: hdr,
				Body: []byte(url.Values{"_csrf": {b.csrf}, "formKey": {keys[k]}, "createdDateTimeUtc": {created}, "status": {"pending"}}.Encode())}
			return nil
		})
		var desk, ref, hop loadRun
		var opened int64
		compare(ctx, o.step,
			func(d time.Duration) { ref.openLoop(ctx, "direct", direct, rate, http.StatusCreated, d) },
			func(d time.Duration) { hop.openLoop(ctx, "proxy", proxied, rate, http.StatusCreated, d) },
			func(d time.Duration) {
				profiled := b.profileDesk(ctx, d.Round(time.Second)+time.Second)
				before := b.accepted(ctx)
				desk.openLoop(ctx, "desk", viaDesk, rate, http.StatusSeeOther, d)
				opened += b.accepted(ctx) - before
				if err := profiled(); err != nil {
					fmt.Fprintln(os.Stderr, "bench: the desk's profile:", err)
				}
			})
		desk.Close()
		ref.Close()
		hop.Close()

		deskBad := int(desk.Requests) - desk.ok
		refBad := int(ref.Requests) - ref.ok
		added := desk.Latencies.P50 - ref.Latencies.P50
		ratio := float64(desk.Latencies.P99) / float64(ref.Latencies.P99)
		// Little's law: requests in flight at the upstream = rate x time each spends there.
		inFlight := float64(rate) * desk.Latencies.P99.Seconds()
		label := [2]string{"below saturation", "near saturation"}[i]
		name := fmt.Sprintf("POST /uploads @%d/s (%s)", rate, label)
		t.add(name+": added p50", ms(added), fmt.Sprintf("direct p50 %s, desk %s", ms(ref.Latencies.P50), ms(desk.Latencies.P50)),
			"<= 1 ms", ms(added), added <= time.Millisecond)
		t.add(name+": a bare proxy's added p50", ms(hop.Latencies.P50-ref.Latencies.P50),
			fmt.Sprintf("net/http/httputil to the same emulator: p50 %s", ms(hop.Latencies.P50)), "report", "", true)
		t.add(name+": p99 ratio", fmt.Sprintf("%.2f", ratio), fmt.Sprintf("direct p99 %s, desk %s", ms(ref.Latencies.P99), ms(desk.Latencies.P99)),
			"<= 1.2", fmt.Sprintf("%.2f", ratio), ratio <= 1.2)
		t.add(name+": errors", fmt.Sprintf("%d of %d", deskBad, desk.Requests), fmt.Sprintf("direct %d of %d", refBad, ref.Requests),
			"0", strconv.Itoa(deskBad), deskBad == 0 && desk.Requests > 0)
		t.add(name+": upstream conns", strconv.FormatInt(opened, 10), fmt.Sprintf("%.1f in flight at p99 (rate x p99)", inFlight),
			"~ concurrency", strconv.FormatInt(opened, 10), float64(opened) <= 2*math.Ceil(inFlight)+2)
	}
	return nil
}

// benchSessions stores o.sessions sessions in a state database of its own (SQLite, in a
// temporary folder, opened as the desk opens its own), then loads and saves random ones. It also
// reads the Go heap a session kept in memory costs.
func benchSessions(ctx context.Context, o benchFlags, t *benchTable) error {
	dir, err := os.MkdirTemp("", "autopilotdesk-bench-sessions-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	db, err := store.Open(ctx, store.Options{DataDir: dir})
	if err != nil {
		return err
	}
	defer db.Close()
	st := db.SessionStore(store.SessionOptions{CookieName: web.SessionCookieName, Secure: true, Codec: web.SessionCodec{},
		IdleTimeout: 15 * time.Minute, AbsoluteLifetime: 8 * time.Hour})

	runtime.GC()
	rssBefore := deskrun.RSS(os.Getpid())
	var msBefore, msCached runtime.MemStats
	runtime.ReadMemStats(&msBefore)
	// Every session saved is kept in memory until the cache is full.
	cached := min(o.sessions, store.DefaultSessionCacheSize)
	ids := make([]string, o.sessions)
	start := time.Now()
	for i := range ids {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		r := (&http.Request{Header: http.Header{}}).WithContext(ctx)
		sess, err := st.New(r, web.SessionCookieName)
		if err != nil {
			return err
		}
		user := web.SessionUser{TenantID: "bench-tenant", ObjectID: fmt.Sprintf("user-%05d", i), Name: fmt.Sprintf("Bench User %d", i),
			UPN: fmt.Sprintf("bench%d@contoso.example", i)}
		// Each session has tokens of its own, as signed-in people do.
		tokens := web.SessionTokens{AccessToken: filler(1800), RefreshToken: filler(900), IDToken: filler(1200),
			TokenType: "Bearer", Expiry: time.Now().Add(time.Hour)}
		sess.Values["user"], sess.Values["tokens"], sess.Values["csrf"] = user, tokens, rand.Text()
		st.SetUserKey(sess, user.Key())
		if err := st.Save(r, discardWriter{}, sess); err != nil {
			return err
		}
		ids[i] = sess.ID
		if i+1 == cached {
			runtime.GC()
			runtime.ReadMemStats(&msCached)
		}
	}
	fill := time.Since(start)

	var lat []time.Duration
	deadline := time.Now().Add(o.step)
	for len(lat) < 50_000 && time.Now().Before(deadline) && ctx.Err() == nil {
		id := ids[mathrand.IntN(len(ids))]
		r := (&http.Request{Header: http.Header{"Cookie": {web.SessionCookieName + "=" + id}}}).WithContext(ctx)
		t0 := time.Now()
		sess, err := st.New(r, web.SessionCookieName)
		if err != nil {
			return err
		}
		if sess.IsNew {
			return errors.New("a stored session did not load")
		}
		sess.Values["csrf"] = rand.Text()
		if err := st.Save(r, discardWriter{}, sess); err != nil {
			return err
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	p50, p99 := percentile(lat, 0.50), percentile(lat, 0.99)
	t.add(fmt.Sprintf("session load+save p99 (%d stored)", o.sessions), ms(p99), fmt.Sprintf("p50 %s over %d ops; filled in %s", ms(p50), len(lat), fill.Round(time.Millisecond)),
		"<= 2 ms", ms(p99), p99 <= 2*time.Millisecond)

	runtime.GC()
	rssAfter := deskrun.RSS(os.Getpid())
	perSession := (float64(msCached.HeapAlloc) - float64(msBefore.HeapAlloc)) / float64(cached)
	t.add("RSS of the bench process", fmt.Sprintf("%s after %d sessions", mib(rssAfter), o.sessions), "before: "+mib(rssBefore), "report", "", true)
	t.add("Go heap per cached session", fmt.Sprintf("%.0f B", perSession),
		fmt.Sprintf("heap %s -> %s with the first %d sessions, all kept in memory; beyond %d they are read from SQLite",
			mib(int64(msBefore.HeapAlloc)), mib(int64(msCached.HeapAlloc)), cached, store.DefaultSessionCacheSize),
		"report", "", true)
	return nil
}

// discardWriter is a response nobody reads: the session store only sets a cookie on it.
type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
func (discardWriter) WriteHeader(int)             {}

// filler is n characters of token-like text, a fresh string each time: a session's tokens take
// their real room.
func filler(n int) string { return strings.Repeat(rand.Text(), n/26+1)[:n] }

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(math.Ceil(p*float64(len(sorted))))-1)]
}

// benchStartup starts the desk binary in demo mode three times, each with a fresh data folder,
// and times process start to /readyz answering 200; it reads the idle process's RSS.
func benchStartup(ctx context.Context, deskBin string, t *benchTable) error {
	var times []time.Duration
	var rss []int64
	for range 3 {
		addr, err := deskrun.FreeAddr()
		if err != nil {
			return err
		}
		d, err := deskrun.Start(ctx, deskBin, addr, "--log-level", "warn")
		if err != nil {
			return err
		}
		time.Sleep(200 * time.Millisecond) // let it settle before reading its memory
		times, rss = append(times, d.Ready), append(rss, d.RSS())
		d.Stop()
	}
	slices.Sort(times)
	slices.Sort(rss)
	t.add("start-up to /readyz (demo)", ms(times[1]), fmt.Sprintf("median of 3; min %s, max %s", ms(times[0]), ms(times[2])),
		"<= 300 ms", ms(times[1]), times[1] <= 300*time.Millisecond)
	t.add("RSS of the idle demo process", mib(rss[1]), "separate process, just ready", "report", "", true)
	return nil
}

// weight reports the bytes of HTML, CSS and JS of the main pages, raw and gzip-compressed.
func (b *rig) weight(ctx context.Context, t *benchTable) error {
	assets, err := static.Load()
	if err != nil {
		return err
	}
	cssRaw, cssGz := assets.Size("app.css")
	jsRaw, jsGz := assets.Size("app.js")
	activity, err := b.createOne(ctx)
	if err != nil {
		return err
	}
	for _, p := range []struct{ name, path string }{
		{"home", "/"}, {"create form", "/uploads/new"}, {"result", activity}, {"uploads", "/uploads"},
		{"activity", "/activity"}, {"import", "/devices/import"},
	} {
		body, _, err := b.get(ctx, p.path)
		if err != nil {
			return err
		}
		gz := gzipLen(body)
		t.add("page weight: "+p.name, fmt.Sprintf("%s raw / %s gzip", kilobytes(len(body)+cssRaw+jsRaw), kilobytes(gz+cssGz+jsGz)),
			fmt.Sprintf("HTML %s/%s, CSS %s/%s, JS %s/%s", kilobytes(len(body)), kilobytes(gz), kilobytes(cssRaw), kilobytes(cssGz), kilobytes(jsRaw), kilobytes(jsGz)), "report", "", true)
	}
	return nil
}

// createOne creates an upload through the desk and returns the result page's path.
func (b *rig) createOne(ctx context.Context) (string, error) {
	keys, err := b.formKeys(ctx, 1)
	if err != nil {
		return "", err
	}
	form := url.Values{"_csrf": {b.csrf}, "formKey": {keys[0]}, "createdDateTimeUtc": {"2016-12-31T23:59:45.8788427-08:00"}, "status": {"pending"}}
	resp, _, err := b.postForm(ctx, b.client, "/uploads", form)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, "/activity/") {
		return "", fmt.Errorf("create answered %d at %s", resp.StatusCode, resp.Request.URL.Path)
	}
	return resp.Request.URL.Path, nil
}

func gzipLen(b []byte) int {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	zw.Write(b)
	zw.Close()
	return buf.Len()
}

// benchCSV times the pre-flight of a generated CSV of n valid rows and the memory it allocates.
func benchCSV(n int, t *benchTable) {
	data := benchCSVFile(n)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak atomic.Uint64
	done := make(chan struct{})
	sampled := make(chan struct{})
	go func() { // sample the live heap while the pre-flight runs
		defer close(sampled)
		var ms runtime.MemStats
		for {
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > peak.Load() {
				peak.Store(ms.HeapAlloc)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	start := time.Now()
	rep := devicecsv.Parse(data)
	elapsed := time.Since(start)
	close(done)
	<-sampled
	runtime.ReadMemStats(&after)
	allocated := int64(after.TotalAlloc - before.TotalAlloc)
	peakLive := int64(peak.Load()) - int64(before.HeapAlloc)
	ok := rep.ValidCount == n
	t.add(fmt.Sprintf("CSV pre-flight %d rows: time", n), ms(elapsed), fmt.Sprintf("%s file, %d valid rows", mib(int64(len(data))), rep.ValidCount),
		"<= 1 s", ms(elapsed), ok && elapsed <= time.Second)
	t.add(fmt.Sprintf("CSV pre-flight %d rows: memory", n), mib(max(peakLive, 0))+" peak live",
		mib(allocated)+" allocated in all (upper bound of peak)", "<= 100 MB", mib(allocated), ok && allocated <= 100<<20)
}

// benchCSVFile is a portal-style CSV of n valid devices with realistic 4 KB hardware hashes.
func benchCSVFile(n int) []byte {
	var b bytes.Buffer
	b.WriteString(devicecsv.Header + "\r\n")
	r := mathrand.New(mathrand.NewPCG(9, 9))
	hash := make([]byte, 4000)
	for i := range n {
		for j := range hash {
			hash[j] = byte(r.Uint32())
		}
		fmt.Fprintf(&b, "SN%08d,,%s,Tag%d,user%d@contoso.com\r\n", i, base64.StdEncoding.EncodeToString(hash[:4000-i%3]), i%7, i)
	}
	return b.Bytes()
}
