package main

import (
	"context"
	"crypto/rand"
	"errors"
	"maps"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// takeSlots opens plain connections to the server of dbURL until it refuses one for want of a
// free connection slot, and takes each slot another client frees until release is called (the
// test's cleanup calls it too). The server is shared: hold them for a moment only.
func takeSlots(t *testing.T, dbURL string) (release func()) {
	t.Helper()
	var mu sync.Mutex
	var held []*pgx.Conn
	refused, broken := false, false
	connect := func() {
		c, err := pgx.Connect(context.Background(), dbURL)
		mu.Lock()
		defer mu.Unlock()
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			held = append(held, c)
		case errors.As(err, &pgErr) && pgErr.Code == "53300":
			refused = true
		default:
			broken = true
			t.Errorf("hold a connection slot: %v", err)
		}
	}
	stop, stopped := make(chan struct{}), make(chan struct{})
	var once sync.Once
	release = func() {
		once.Do(func() {
			close(stop)
			<-stopped
			for _, c := range held {
				c.Close(context.Background())
			}
		})
	}
	for len(held) < 1000 && !refused && !broken {
		var wg sync.WaitGroup
		for range 16 {
			wg.Go(connect)
		}
		wg.Wait()
	}
	if !refused {
		close(stopped)
		release()
		t.Fatalf("PostgreSQL still had a free connection slot after %d connections", len(held))
	}
	go func() {
		defer close(stopped)
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
				connect()
			}
		}
	}()
	t.Cleanup(release)
	return release
}

// connectionCount counts, on a connection of its own, the connections each of the application
// names holds.
func connectionCount(t *testing.T, dbURL string, names []string) func() map[string]int {
	t.Helper()
	c, err := pgx.Connect(t.Context(), dbURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return func() map[string]int {
		counts := map[string]int{}
		rows, err := c.Query(context.Background(),
			`SELECT application_name, count(*) FROM pg_stat_activity WHERE application_name = ANY($1) GROUP BY 1`, names)
		if err != nil {
			return counts
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var n int
			if rows.Scan(&name, &n) == nil {
				counts[name] = n
			}
		}
		return counts
	}
}

// connectionsOf counts the connections of each application name every few milliseconds until
// the test ends; peak is the most it saw of each so far.
func connectionsOf(t *testing.T, dbURL string, names []string) (peak func() map[string]int) {
	t.Helper()
	count := connectionCount(t, dbURL, names)
	var mu sync.Mutex
	seen := map[string]int{}
	done := make(chan struct{})
	t.Cleanup(func() { <-done }) // before count's connection closes
	go func() {
		defer close(done)
		for {
			for name, n := range count() {
				mu.Lock()
				seen[name] = max(seen[name], n)
				mu.Unlock()
			}
			select {
			case <-t.Context().Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	}()
	return func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(seen)
	}
}

// Desks on one PostgreSQL server whose connection slots another client has all taken: a request
// that needs a new connection waits for a slot instead of failing at once, and no desk holds more
// connections than its pool's size. One that finds no slot within the wait answers a page saying
// so, and its desk logs that in one ERROR line.
func TestDesksWaitForAFreeConnectionSlot(t *testing.T) {
	const poolSize = 20
	cl := startClusterWith(t, clusterOptions{
		env: map[string]string{"AUTOPILOTDESK_DATABASE_MAX_CONNS": "20"},
		// Idle connections close within a second or so, so the requests need new ones.
		app: appOptions{SlotWait: 700 * time.Millisecond, StateIdleTime: 50 * time.Millisecond},
	})
	dbURL := cl.env["AUTOPILOTDESK_DATABASE_URL"]
	suffix := strings.ToLower(rand.Text()[:10])
	appName := func(desk string) string { return "desk-" + strings.ToLower(desk) + "-" + suffix }
	start := func(desks ...string) {
		for _, desk := range desks {
			cl.env["AUTOPILOTDESK_DATABASE_URL"] = dbURL + "&application_name=" + appName(desk)
			cl.start(desk)
		}
	}
	start("A", "B")
	cl.via("A")
	b := clusterDesk(t, cl).signedInBrowser("admin", cl.browser)
	lb, _ := url.Parse(cl.lb.URL)
	cookies := b.Jar.Cookies(lb)
	type answer struct {
		desk, page string
		status     int
		retryAfter string
		took       time.Duration
	}
	pages := []string{"/uploads", "/devices", "/activity", "/uploads/new"}
	// atOnce sends n page requests at once, alternately to each desk.
	atOnce := func(n int, desks ...string) []answer {
		answers := make([]answer, n)
		storm(t, n, func(i int) (int, error) {
			desk := desks[i%len(desks)]
			req, _ := http.NewRequest(http.MethodGet, cl.replicas[desk].URL+pages[i/len(desks)%len(pages)], nil)
			for _, ck := range cookies {
				req.AddCookie(ck)
			}
			start := time.Now()
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return 0, err
			}
			defer resp.Body.Close()
			doc, err := goquery.NewDocumentFromReader(resp.Body)
			if err != nil {
				return 0, err
			}
			answers[i] = answer{desk, text(doc), resp.StatusCode, resp.Header.Get("Retry-After"), time.Since(start)}
			return resp.StatusCode, nil
		})
		return answers
	}
	names := []string{appName("A"), appName("B"), appName("C"), appName("D")}
	peak := connectionsOf(t, dbURL, names)
	count := connectionCount(t, dbURL, names)
	// fewOpen waits until each of the desks holds no more than a few connections.
	fewOpen := func(desks ...string) {
		for i := 0; ; i++ {
			counts, few := count(), true
			for _, desk := range desks {
				few = few && counts[appName(desk)] <= 3
			}
			if few {
				return
			}
			if i == 100 {
				t.Fatalf("the desks kept their idle connections open: %v", counts)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	// The slots are taken for less than the wait: every request is served, once a slot freed.
	fewOpen("A", "B")
	before := count()
	release := takeSlots(t, dbURL)
	time.AfterFunc(250*time.Millisecond, release)
	for _, a := range atOnce(48, "A", "B") {
		if a.status != http.StatusOK {
			t.Errorf("a request to %s answered %d while the slots were briefly taken:\n%s", a.desk, a.status, a.page)
		}
	}
	if most := peak(); most[appName("A")] <= before[appName("A")] && most[appName("B")] <= before[appName("B")] {
		t.Errorf("no request needed a new connection while every slot was taken: the desks held %v, at most %v", before, most)
	}

	// Every slot stays taken past the wait, on desks started since: the requests that need a new
	// connection answer, after the wait, a page that says why, and their desk says so in one
	// ERROR line.
	start("C", "D")
	fewOpen("C", "D")
	release = takeSlots(t, dbURL)
	answers := atOnce(48, "C", "D")
	release()
	refused := map[string]bool{}
	for _, a := range answers {
		if a.status == http.StatusOK {
			continue
		}
		refused[a.desk] = true
		if a.status != http.StatusServiceUnavailable || a.retryAfter == "" || !strings.Contains(a.page, "no free connection slot") {
			t.Errorf("a request to %s that found no free connection slot: %d (Retry-After %q)\n%s", a.desk, a.status, a.retryAfter, a.page)
		}
		if a.took < 600*time.Millisecond {
			t.Errorf("a request to %s failed after %s, without waiting for a connection slot", a.desk, a.took)
		}
	}
	if len(refused) == 0 {
		t.Errorf("no request needed a new connection while every slot was taken: the desks held %v", count())
	}
	for desk := range refused {
		var lines []string
		for i := 0; i < 200 && len(lines) == 0; i++ {
			time.Sleep(10 * time.Millisecond)
			lines = logLines(cl.logs[desk].String(), `"level":"ERROR"`)
		}
		if len(lines) != 1 || !strings.Contains(lines[0], "no free connection slot") {
			t.Errorf("desk %s logged %d ERROR lines, want one about connection slots:\n%s", desk, len(lines), strings.Join(lines, "\n"))
		}
		if warn := logLines(cl.logs[desk].String(), `"msg":"request failed"`); len(warn) > 0 {
			t.Errorf("desk %s logged the refused requests one by one:\n%s", desk, strings.Join(warn, "\n"))
		}
	}

	for name, n := range peak() {
		if n > poolSize {
			t.Errorf("%s held %d connections, more than its pool's %d", name, n, poolSize)
		}
	}
}

// logLines are the lines of a log that contain s.
func logLines(log, s string) []string {
	var lines []string
	for line := range strings.Lines(log) {
		if strings.Contains(line, s) {
			lines = append(lines, strings.TrimSpace(line))
		}
	}
	return lines
}
