package main

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/handlers/importer"
	"autopilotdesk/views"
	"autopilotdesk/web/identity/demoidp"
)

// status is the status of a GET of path, without following redirects.
func (d *desk) status(c *http.Client, path string) (int, http.Header, string) {
	d.t.Helper()
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := cc.Get(d.srv.URL + path)
	if err != nil {
		d.t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.Header.Get("Content-Type") == "text/html; charset=UTF-8" {
		doc := parse(d.t, resp)
		return resp.StatusCode, resp.Header, text(doc)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(body)
}

// errorLines counts the log's ERROR lines.
func (d *desk) errorLines() []string {
	var out []string
	for _, l := range strings.Split(d.log.String(), "\n") {
		if strings.Contains(l, `"level":"ERROR"`) {
			out = append(out, l)
		}
	}
	return out
}

// makeUnwritable stops the desk from writing path: an immutable flag when the tests run as root
// (whom permissions do not stop), read-only permissions otherwise. It returns the undo.
func makeUnwritable(t *testing.T, path string) func() {
	t.Helper()
	if os.Geteuid() == 0 {
		if out, err := exec.Command("chattr", "+i", path).CombinedOutput(); err != nil {
			t.Skipf("cannot make %s immutable: %v %s", path, err, out)
		}
		return func() { exec.Command("chattr", "-i", path).Run() }
	}
	os.Chmod(path, 0o400)
	return func() { os.Chmod(path, 0o600) }
}

// The SQLite files removed while the desk runs: readiness fails, every page (sign-in included)
// answers 503 with Retry-After and says a restart is needed, nothing reaches Graph, and the
// log has one ERROR line naming the file and how to recover.
func TestLostSQLiteFileStopsTheDesk(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	if code, _, _ := d.status(b, "/readyz"); code != http.StatusOK {
		t.Fatalf("readyz before: %d", code)
	}
	path := filepath.Join(d.app.cfg.DataDir, "autopilotdesk.db")
	for _, p := range []string{path, path + "-wal", path + "-shm"} {
		if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
	}
	// A state change right away, before any check ran: refused, nothing reaches Graph.
	resp, doc := d.post(b, "/uploads", form)
	if resp.StatusCode != http.StatusServiceUnavailable || countCreates(d) != 0 {
		t.Errorf("create at once: %d, %d creates reached Graph: %s", resp.StatusCode, countCreates(d), text(doc))
	}
	if code, _, body := d.status(b, "/readyz"); code != http.StatusServiceUnavailable || strings.Contains(body, path) {
		t.Errorf("readyz: %d %q", code, body)
	}
	for _, page := range []string{"/uploads/new", "/", "/auth/signin", "/auth/login"} {
		code, h, body := d.status(b, page)
		if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "restarted") {
			t.Errorf("%s: %d, Retry-After %q: %s", page, code, h.Get("Retry-After"), body)
		}
	}
	resp, doc = d.post(b, "/uploads", form)
	if resp.StatusCode != http.StatusServiceUnavailable || countCreates(d) != 0 {
		t.Errorf("create: %d, %d creates reached Graph: %s", resp.StatusCode, countCreates(d), text(doc))
	}
	if code, _, _ := d.status(b, "/healthz"); code != http.StatusOK {
		t.Errorf("healthz: %d (the process is alive)", code)
	}
	d.status(b, "/readyz")
	lines := d.errorLines()
	if len(lines) != 1 || !strings.Contains(lines[0], path) || !strings.Contains(lines[0], "removed") || !strings.Contains(lines[0], "restart the desk") {
		t.Errorf("want one ERROR line naming the file, the cause and the way back, got %d:\n%s", len(lines), strings.Join(lines, "\n"))
	}
}

// The SQLite file made read-only: readiness and pages answer 503 while it is, with one ERROR
// line; once it is writable again the desk serves by itself.
func TestReadOnlySQLiteFileStopsTheDeskUntilWritable(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/uploads/new"))
	undo := makeUnwritable(t, filepath.Join(d.app.cfg.DataDir, "autopilotdesk.db"))
	t.Cleanup(undo)
	for range 3 {
		if code, _, _ := d.status(b, "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("readyz while read-only: %d", code)
		}
		if code, h, body := d.status(b, "/uploads/new"); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "cannot save") {
			t.Errorf("page while read-only: %d %q: %s", code, h.Get("Retry-After"), body)
		}
	}
	undo()
	if code, _, _ := d.status(b, "/readyz"); code != http.StatusOK {
		t.Errorf("readyz once writable: %d", code)
	}
	if code, _, body := d.status(b, "/uploads/new"); code != http.StatusOK {
		t.Errorf("page once writable: %d %s", code, body)
	}
	if lines := d.errorLines(); len(lines) != 1 || !strings.Contains(lines[0], "may no longer write") {
		t.Errorf("want one ERROR line, got:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(d.log.String(), "state database available again") {
		t.Error("the recovery is not logged")
	}
}

// The disk holding the SQLite file runs out of room: readiness and pages answer 503 saying so,
// a create is refused before anything reaches Graph, the log has one ERROR line naming the
// folder and the room left, and once there is room again the desk serves by itself.
func TestFullDiskStopsTheDeskUntilThereIsRoom(t *testing.T) {
	var free atomic.Uint64
	free.Store(1 << 30)
	d := startDeskWith(t, nil, appOptions{StateFreeSpace: func(string) (uint64, error) { return free.Load(), nil }})
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	free.Store(512 << 10)
	resp, doc := d.post(b, "/uploads", form)
	if resp.StatusCode != http.StatusServiceUnavailable || countCreates(d) != 0 || !strings.Contains(text(doc), "disk that holds the desk's state database is full") {
		t.Errorf("create on a full disk: %d, %d creates reached Graph: %s", resp.StatusCode, countCreates(d), text(doc))
	}
	for range 3 {
		if code, _, _ := d.status(b, "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("readyz on a full disk: %d", code)
		}
		if code, h, body := d.status(b, "/uploads/new"); code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "is full") {
			t.Errorf("page on a full disk: %d %q: %s", code, h.Get("Retry-After"), body)
		}
	}
	free.Store(1 << 30)
	if code, _, _ := d.status(b, "/readyz"); code != http.StatusOK {
		t.Errorf("readyz with room again: %d", code)
	}
	if resp, doc := d.post(b, "/uploads", form); resp.StatusCode != http.StatusOK || countCreates(d) != 1 {
		t.Errorf("create with room again: %d, %d creates: %.300s", resp.StatusCode, countCreates(d), text(doc))
	}
	lines := d.errorLines()
	if len(lines) != 1 || !strings.Contains(lines[0], d.app.cfg.DataDir) || !strings.Contains(lines[0], "0.5 MB free") {
		t.Errorf("want one ERROR line naming the folder and the room left, got:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(d.log.String(), "state database available again") {
		t.Error("the recovery is not logged")
	}
}

// tcpProxy stands between the desk and PostgreSQL, so a test can stop the server (connections
// refused) or make it unreachable (bytes vanish) without touching the real one.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu        sync.Mutex
	ln        net.Listener
	conns     map[net.Conn]bool
	blackhole bool
	readOnly  bool // new connections ask for default_transaction_read_only, as a standby's are
}

func startTCPProxy(t *testing.T, target string) *tcpProxy {
	p := &tcpProxy{t: t, target: target, conns: map[net.Conn]bool{}}
	p.start()
	t.Cleanup(p.stop)
	return p
}

func (p *tcpProxy) start() {
	addr := p.addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		p.t.Fatal(err)
	}
	p.mu.Lock()
	p.ln, p.addr = ln, ln.Addr().String()
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.serve(c)
		}
	}()
}

// stop is the server going away: the port refuses connections, open ones are cut.
func (p *tcpProxy) stop() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// setBlackhole makes the network drop every byte (on) or carry them again (off).
func (p *tcpProxy) setBlackhole(on bool) {
	p.mu.Lock()
	p.blackhole = on
	p.mu.Unlock()
}

func (p *tcpProxy) dropping() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.blackhole }

// setReadOnly makes the connections opened from now on accept no writes (on), as PostgreSQL's
// are once it is a standby or default_transaction_read_only is set for the database; or
// writable again (off). Open connections keep what they were opened with.
func (p *tcpProxy) setReadOnly(on bool) {
	p.mu.Lock()
	p.readOnly = on
	p.mu.Unlock()
}

// cut closes the open connections, as pg_terminate_backend does; the port still answers.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// startup forwards the client's startup message to server, adding default_transaction_read_only
// when the proxy is read-only.
func (p *tcpProxy) startup(server, client net.Conn) error {
	var head [8]byte
	if _, err := io.ReadFull(client, head[:]); err != nil {
		return err
	}
	body := make([]byte, binary.BigEndian.Uint32(head[:4])-8)
	if _, err := io.ReadFull(client, body); err != nil {
		return err
	}
	p.mu.Lock()
	readOnly := p.readOnly
	p.mu.Unlock()
	if readOnly && binary.BigEndian.Uint32(head[4:]) == 196608 { // protocol 3.0: key\0value\0…\0
		body = append(body[:len(body)-1], "default_transaction_read_only\x00on\x00\x00"...)
		binary.BigEndian.PutUint32(head[:4], uint32(8+len(body)))
	}
	_, err := server.Write(append(head[:], body...))
	return err
}

func (p *tcpProxy) serve(client net.Conn) {
	server, err := net.Dial("tcp", p.target)
	if err != nil {
		client.Close()
		return
	}
	p.mu.Lock()
	p.conns[client], p.conns[server] = true, true
	p.mu.Unlock()
	if err := p.startup(server, client); err != nil {
		client.Close()
		server.Close()
		return
	}
	pipe := func(dst, src net.Conn) {
		defer dst.Close()
		defer src.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if err != nil {
				return
			}
			if p.dropping() {
				continue
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return
			}
		}
	}
	go pipe(server, client)
	pipe(client, server)
}

// PostgreSQL stopped, then back; then unreachable (bytes vanish), then back: readiness answers
// within its bound each time, pages answer 503 with Retry-After meanwhile, each outage is one
// ERROR line, and the desk serves again by itself, with the same session.
func TestUnreachablePostgreSQLAndRecovery(t *testing.T) {
	dbURL, err := url.Parse(testkit.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, dbURL.Host)
	dbURL.Host = proxy.addr
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_DATABASE_URL": dbURL.String()})
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/uploads/new"))

	waitFor := func(what, path string, want int) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			code, _, _ := d.status(b, path)
			if code == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: %s still answers %d, want %d", what, path, code, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	outage := func(name string, begin, end func()) {
		t.Helper()
		errorsBefore := len(d.errorLines())
		begin()
		start := time.Now()
		if code, _, _ := d.status(b, "/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("%s: readyz %d", name, code)
		}
		if took := time.Since(start); took > 3*time.Second {
			t.Errorf("%s: readyz took %s, want it bounded", name, took)
		}
		for range 3 {
			code, h, body := d.status(b, "/uploads/new")
			if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "cannot reach its state database") {
				t.Errorf("%s: page %d %q: %s", name, code, h.Get("Retry-After"), body)
			}
		}
		// A list page offers itself again.
		if resp, doc := d.get(b, "/activity?mine=1"); resp.StatusCode != http.StatusServiceUnavailable || doc.Find(`main a.btn[href="/activity?mine=1"]`).Text() != "Try again" {
			t.Errorf("%s: the activity list %d offers no reload: %s", name, resp.StatusCode, text(doc))
		}
		if n := len(d.errorLines()) - errorsBefore; n != 1 {
			t.Errorf("%s: %d ERROR lines, want 1:\n%s", name, n, strings.Join(d.errorLines(), "\n"))
		}
		end()
		waitFor(name+", back", "/readyz", http.StatusOK)
		waitFor(name+", back", "/uploads/new", http.StatusOK)
	}
	outage("stopped", proxy.stop, proxy.start)
	outage("unreachable", func() { proxy.setBlackhole(true) }, func() { proxy.setBlackhole(false) })
	if strings.Count(d.log.String(), "state database available again") != 2 {
		t.Errorf("recoveries not logged:\n%s", d.log.String())
	}
}

// PostgreSQL that accepts no writes (the old primary after a fail-over, a standby, or
// default_transaction_read_only set for the desk's database or role) is an outage as an
// unreachable server is: /readyz answers 503, pages say the desk cannot save anything, the log
// names the cause in one ERROR line and the workers wait quietly. Once the server accepts writes
// again the desk serves within seconds, on new connections, with the same session.
func TestPostgreSQLThatRefusesWritesAndRecovery(t *testing.T) {
	dbURL, err := url.Parse(testkit.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, dbURL.Host)
	dbURL.Host = proxy.addr
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_DATABASE_URL": dbURL.String()},
		appOptions{RegistrationEvery: 100 * time.Millisecond})
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/uploads/new"))
	noisy := func() (lines []string) {
		for _, l := range strings.Split(d.log.String(), "\n") {
			if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
				lines = append(lines, l)
			}
		}
		return lines
	}

	before := len(noisy())
	proxy.setReadOnly(true)
	proxy.cut()
	waitFor(t, "readyz to notice", func() bool { code, _, _ := d.status(b, "/readyz"); return code == http.StatusServiceUnavailable })
	time.Sleep(3 * time.Second) // three ticks of every worker
	code, h, body := d.status(b, "/uploads/new")
	if code != http.StatusServiceUnavailable || h.Get("Retry-After") == "" || !strings.Contains(body, "cannot save anything") {
		t.Errorf("a page while PostgreSQL refuses writes: %d %q: %s", code, h.Get("Retry-After"), body)
	}
	during := noisy()[before:]
	if !strings.Contains(strings.Join(during, "\n"), "PostgreSQL accepts no writes") {
		t.Errorf("the log does not say PostgreSQL accepts no writes:\n%s", strings.Join(during, "\n"))
	}
	for _, l := range during {
		if !strings.Contains(l, "state database unavailable: the desk answers 503") {
			t.Errorf("logged while PostgreSQL refuses writes: %s", l)
		}
	}

	proxy.setReadOnly(false) // the connections open now stay read-only
	writable := time.Now()
	waitFor(t, "the desk to serve again", func() bool { return strings.Contains(d.log.String(), "state database available again") })
	if took := time.Since(writable); took > 10*time.Second {
		t.Errorf("the desk served again %s after PostgreSQL accepted writes, want seconds", took.Round(time.Second))
	}
	if resp, doc := d.get(b, "/uploads/new"); resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/uploads/new" {
		t.Errorf("once PostgreSQL accepts writes: %d %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
}

// While PostgreSQL is down, the background workers (imports, serial checks, bulk changes, the
// registration follower) leave it alone: the outage is the health check's one ERROR line and its
// "available again" line, never a warning a second per worker. They resume by themselves: an
// import submitted once it is back is carried out.
func TestWorkersStayQuietWhilePostgreSQLIsDown(t *testing.T) {
	dbURL, err := url.Parse(testkit.PostgresSchema(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := startTCPProxy(t, dbURL.Host)
	dbURL.Host = proxy.addr
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_DATABASE_URL": dbURL.String()},
		appOptions{RegistrationEvery: 100 * time.Millisecond, ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}})
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-OUTAGE", 3)
	job := draftOf(t, d, b, data)
	form := submitForm(t, d, b, job)

	noisy := func() (lines []string) {
		for _, l := range strings.Split(d.log.String(), "\n") {
			if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
				lines = append(lines, l)
			}
		}
		return lines
	}
	before := len(noisy())
	proxy.stop()
	time.Sleep(4 * time.Second) // four ticks of every worker
	during := noisy()[before:]
	if len(during) != 1 || !strings.Contains(during[0], "state database unavailable") {
		t.Errorf("during 4 s of outage, %d warnings and errors, want the one ERROR line:\n%s", len(during), strings.Join(during, "\n"))
	}
	proxy.start()
	waitFor(t, "the desk to find its database again", func() bool { return strings.Contains(d.log.String(), "state database available again") })
	if after := noisy()[before:]; len(after) != 1 {
		t.Errorf("the recovery logged warnings:\n%s", strings.Join(after, "\n"))
	}
	if resp, _ := d.post(b, job+"/submit", form); resp.Request.URL.Path != job {
		t.Fatalf("submit after the outage landed on %s", resp.Request.URL)
	}
	waitFinished(t, d, b, job)
}

// A PostgreSQL outage of a few seconds in the middle of an import (while Graph answers a batch, or
// just before the worker sends it): the worker keeps Graph's answer, says nothing beyond the
// health check's two lines, and the import goes on within seconds of the database's return, not
// once its lease has run out.
func TestShortPostgreSQLOutageDoesNotStallAnImport(t *testing.T) {
	for _, when := range []string{"while Graph answers", "before the batch is sent"} {
		t.Run(when, func(t *testing.T) {
			dbURL, err := url.Parse(testkit.PostgresSchema(t))
			if err != nil {
				t.Fatal(err)
			}
			proxy := startTCPProxy(t, dbURL.Host)
			dbURL.Host = proxy.addr
			var cut atomic.Bool
			cutBeforeSending := when == "before the batch is sent"
			hook := func(point string) error {
				if point == importer.FaultBatchRecorded && cutBeforeSending && cut.CompareAndSwap(false, true) {
					proxy.stop()
				}
				return nil
			}
			d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_DATABASE_URL": dbURL.String()},
				appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}, ImportFault: hook})
			d.app.demo.Emulator.SetFaults(emulator.Faults{LatencyMin: 800 * time.Millisecond, LatencyMax: 800 * time.Millisecond, Methods: []string{http.MethodPost}})
			b := d.browser()
			d.signIn(b, "admin", "/")
			data, _ := deviceCSV("SN-BLIP", 3)
			job := draftOf(t, d, b, data)
			noisy := func() (lines []string) {
				for _, l := range strings.Split(d.log.String(), "\n") {
					if strings.Contains(l, `"level":"WARN"`) || strings.Contains(l, `"level":"ERROR"`) {
						lines = append(lines, l)
					}
				}
				return lines
			}
			before := len(noisy())
			d.post(b, job+"/submit", submitForm(t, d, b, job))
			if cutBeforeSending {
				waitFor(t, "the batch to be recorded", cut.Load)
			} else {
				waitFor(t, "the batch to be sent", func() bool { return importCalls(d.app.demo.Emulator) > 0 })
				proxy.stop() // while Graph takes 800 ms to answer the batch
			}
			time.Sleep(3 * time.Second)
			proxy.start()
			back := time.Now()
			waitFor(t, "the desk to find its database again", func() bool { return strings.Contains(d.log.String(), "state database available again") })
			id := strings.TrimPrefix(job, views.ImportJobURL(""))
			for {
				j, err := d.app.db.GetImportJob(context.Background(), demoidp.DemoTenantID, id)
				if err == nil && j.State == "finished" {
					break
				}
				if time.Since(back) > 20*time.Second {
					t.Fatalf("the import had not finished 20 s after the database came back: %+v\n%s", j, strings.Join(noisy()[before:], "\n"))
				}
				time.Sleep(50 * time.Millisecond)
			}
			t.Logf("finished %s after the database came back", time.Since(back).Round(100*time.Millisecond))
			if n := importCalls(d.app.demo.Emulator); n != 1 {
				t.Errorf("%d import calls, want the one", n)
			}
			if during := noisy()[before:]; len(during) != 1 || !strings.Contains(during[0], "state database unavailable") {
				t.Errorf("%d warnings and errors, want the health check's ERROR and nothing else:\n%s", len(during), strings.Join(during, "\n"))
			}
		})
	}
}
