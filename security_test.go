package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
)

func TestOutcomeUnknownIsReconciledNotResent(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	d.app.demo.Emulator.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{504}, Methods: []string{http.MethodPost}})
	resp, doc := d.post(b, "/uploads", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/activity/") || !strings.Contains(text(doc), "Outcome unknown") {
		t.Fatalf("landed on %s: %s", resp.Request.URL, text(doc))
	}
	if !strings.Contains(doc.Find(`[data-testid="reconciliation"]`).Text(), "it was not created") {
		t.Errorf("reconciliation not shown: %s", text(doc))
	}
	if posts := postsTo(d.emu, ""); posts != 1 {
		t.Errorf("the create was sent %d times", posts)
	}
}

func TestSegmentMissingIsExplained(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	d.app.demo.Emulator.SetFaults(emulator.Faults{UploadsSegmentMissing: true})
	resp, doc := d.post(b, "/uploads", form)
	failure := doc.Find(`[data-testid="failure"]`).Text()
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(failure, "does not offer uploads") || !strings.Contains(failure, "Resource not found for the segment") {
		t.Errorf("%d: %s", resp.StatusCode, failure)
	}
	if doc.Find(`[data-testid="failure"] a[href*="add-devices"]`).Length() != 1 {
		t.Errorf("no link to the supported device import")
	}
}

// xssCorpus are payloads that must come back escaped wherever they appear.
var xssCorpus = []string{
	`<script>alert(1)</script>`, `"><script>alert(1)</script>`, `'><img src=x onerror=alert(1)>`, `<img src=x onerror=alert(1)>`,
	`<svg onload=alert(1)>`, `javascript:alert(1)`, `</style><script>alert(1)</script>`, `</title><script>alert(1)</script>`,
	`</textarea><script>alert(1)</script>`, `{{7*7}}`, `${7*7}`, `<%= 7*7 %>`, "\u202e<script>alert(1)</script>",
	`<iframe src="javascript:alert(1)">`, `<a href="javascript:alert(1)">x</a>`, `" autofocus onfocus="alert(1)`, `' onmouseover='alert(1)`,
	`<body onload=alert(1)>`, `<math><mtext><table><mglyph><style><img src=x onerror=alert(1)>`, `<details open ontoggle=alert(1)>`,
	`<input autofocus onfocus=alert(1)>`, `<object data="javascript:alert(1)">`, `<base href="//evil.example/">`, `<meta http-equiv="refresh" content="0;url=//evil.example">`,
	`<link rel=stylesheet href=//evil.example/x.css>`, `<form action=//evil.example><button>x</button></form>`, `<!--<script>alert(1)//-->`,
	`<scr<script>ipt>alert(1)</script>`, `&lt;script&gt;alert(1)&lt;/script&gt;`, `<x style="background:url(javascript:alert(1))">`,
	`%3Cscript%3Ealert(1)%3C/script%3E`, "<script\x00>alert(1)</script>",
}

func TestUserInputIsEscapedEverywhere(t *testing.T) {
	if len(xssCorpus) < 30 {
		t.Fatalf("corpus has %d payloads", len(xssCorpus))
	}
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"})
	b := d.browser()
	base := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	for _, payload := range xssCorpus {
		for _, field := range []string{"createdDateTimeUtc", "status", "id"} {
			form := url.Values{}
			for k, v := range base {
				form[k] = v
			}
			form.Set(field, payload)
			req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/uploads", strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnprocessableEntity {
				t.Errorf("%s=%q: status %d", field, payload, resp.StatusCode)
			}
			if strings.Contains(string(body), strings.TrimSpace(payload)) && strings.ContainsAny(payload, "<>\"'") {
				t.Errorf("%s=%q appears unescaped", field, payload)
			}
		}
	}
}

func TestBadCookiesAreNoSessionNeverAnError(t *testing.T) {
	d := startDesk(t, nil)
	for name, value := range map[string]string{
		"tampered":  strings.Repeat("A", 43),
		"truncated": "abc",
		"oversized": strings.Repeat("x", 5000),
		"foreign":   "MTY5OTk5OTk5OXxEdi1CQkFFQ180SUFBUkFCRUFBQV8tRF9nQUFBQT09fA==",
		"garbage":   "%%%;;==",
	} {
		req, _ := http.NewRequest(http.MethodGet, d.srv.URL+"/uploads/new", nil)
		req.Header.Set("Cookie", "__Host-autopilotdesk="+value)
		resp, err := d.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/auth/signin" {
			t.Errorf("%s cookie: %d at %s", name, resp.StatusCode, resp.Request.URL)
		}
	}
}

func TestSignedInPagesAreNotCachedAndTLSGetsHSTS(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	for _, path := range []string{"/", "/uploads/new"} {
		resp, err := b.Get(d.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q", path, resp.Header.Get("Cache-Control"))
		}
		if !strings.Contains(resp.Header.Get("Strict-Transport-Security"), "max-age=31536000") {
			t.Errorf("%s over TLS: no HSTS", path)
		}
		if resp.Header.Get("Referrer-Policy") != "strict-origin-when-cross-origin" || resp.Header.Get("Cross-Origin-Opener-Policy") != "same-origin" {
			t.Errorf("%s: referrer/COOP headers missing", path)
		}
	}
	_ = tls.VersionTLS12
}

func TestForgedForwardingHeadersAreIgnored(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "3/1m"})
	c := d.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	statuses := []int{}
	for i := 0; i < 5; i++ {
		req, _ := http.NewRequest(http.MethodGet, d.srv.URL+"/auth/login", nil)
		// A client that rotates X-Forwarded-For must not escape the per-IP limit: it is not a trusted proxy.
		req.Header.Set("X-Forwarded-For", "203.0.113."+string(rune('1'+i)))
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests && resp.Header.Get("Retry-After") == "" {
			t.Errorf("429 without Retry-After")
		}
	}
	if statuses[2] != http.StatusFound || statuses[3] != http.StatusTooManyRequests || statuses[4] != http.StatusTooManyRequests {
		t.Errorf("statuses %v: want the fourth sign-in start limited", statuses)
	}
}

func TestOversizedFormIs413(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	base := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	base.Set("id", strings.Repeat("a", 70<<10))
	resp, doc := d.post(b, "/uploads", base)
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(text(doc), "too much") {
		t.Errorf("%d: %s", resp.StatusCode, text(doc))
	}
}

func TestSecretsNeverLeave(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	var urls []string
	b.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		urls = append(urls, req.URL.String())
		testkit.PickIdentity(req, "admin")
		return nil
	}
	resp, err := b.Get(d.srv.URL + "/auth/login?return_to=/uploads/new")
	if err != nil {
		t.Fatal(err)
	}
	form := formValues(t, parse(t, resp), `form[action="/uploads"]`)
	resp, doc := d.post(b, "/uploads", form)
	pages := []string{}
	html, _ := doc.Html()
	pages = append(pages, html)
	headers := []http.Header{resp.Header}
	for _, p := range []string{"/", "/uploads/new", resp.Request.URL.Path} {
		r, _ := b.Get(d.srv.URL + p)
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		pages = append(pages, string(body))
		headers = append(headers, r.Header)
	}
	secrets := append(d.app.demo.IdP.IssuedTokens(), d.app.demo.ClientSecret)
	u, _ := url.Parse(d.srv.URL)
	for _, s := range secrets {
		for _, p := range pages {
			if strings.Contains(p, s) {
				t.Errorf("a secret appears in a page")
			}
		}
		for _, h := range headers {
			for k, vs := range h {
				if k == "Set-Cookie" {
					continue
				}
				if strings.Contains(strings.Join(vs, " "), s) {
					t.Errorf("a secret appears in header %s", k)
				}
			}
		}
		for _, l := range urls {
			if strings.Contains(l, s) {
				t.Errorf("a secret appears in a URL")
			}
		}
		for _, ck := range b.Jar.Cookies(u) {
			if strings.Contains(ck.Value, s) {
				t.Errorf("a secret appears in a cookie")
			}
		}
		if strings.Contains(d.log.String(), s) {
			t.Errorf("a secret appears in the log")
		}
	}
}

func TestForwardedHeadersAreBelievedOnlyFromTrustedProxies(t *testing.T) {
	for _, tc := range []struct {
		name          string
		trusted, peer string
		wantHSTS      bool
		wantLimited   bool
	}{
		{"untrusted peer", "", "203.0.113.9:4000", false, true},
		{"trusted proxy", "10.0.0.5", "10.0.0.5:4000", true, false},
		{"peer outside the trusted range", "10.0.0.0/24", "10.0.1.5:4000", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDesk(t, map[string]string{"AUTOPILOTDESK_TRUSTED_PROXIES": tc.trusted, "AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "2/1m"})
			limited := false
			// Five requests: the limit counts in windows, and one window's end may fall between
			// them, so at most four pass when the peer's own address is counted.
			for i := 0; i < 5; i++ {
				req := httptest.NewRequest(http.MethodGet, "http://desk.example/auth/login", nil)
				req.RemoteAddr = tc.peer
				req.Header.Set("X-Forwarded-Proto", "https")
				req.Header.Set("X-Forwarded-For", fmt.Sprintf("198.51.100.%d", i+1))
				rec := httptest.NewRecorder()
				d.app.handler.ServeHTTP(rec, req)
				if rec.Code == http.StatusTooManyRequests {
					limited = true
				}
				if got := rec.Header().Get("Strict-Transport-Security") != ""; got != tc.wantHSTS {
					t.Errorf("HSTS sent = %v, want %v", got, tc.wantHSTS)
				}
			}
			if limited != tc.wantLimited {
				t.Errorf("rate limited = %v, want %v (X-Forwarded-For believed only from trusted proxies)", limited, tc.wantLimited)
			}
		})
	}
}

func TestMadeUpFormKeyIsRefused(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	form.Set("formKey", "made-up-key")
	before := len(d.received())
	resp, doc := d.post(b, "/uploads", form)
	if resp.StatusCode != http.StatusConflict || !strings.Contains(text(doc), "already used") || len(d.received()) != before {
		t.Errorf("made-up key: %d, Graph got %d requests: %s", resp.StatusCode, len(d.received())-before, text(doc))
	}
}

// HEAD answers wherever GET does: the same status and headers, no body.
func TestHeadWorksWhereverGetDoes(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_METRICS_TOKEN": "metrics-secret-0f2d6e55"})
	gets, heads := map[string]bool{}, map[string]bool{}
	for _, r := range d.app.shell.Echo.Routes() {
		switch r.Method {
		case http.MethodGet:
			gets[r.Path] = true
		case http.MethodHead:
			heads[r.Path] = true
		}
	}
	for path := range gets {
		if !heads[path] {
			t.Errorf("GET %s has no HEAD", path)
		}
	}
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	noFollow := *b
	noFollow.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for _, path := range []string{"/", "/uploads/new", "/uploads", "/activity", "/devices/import", "/auth/signin", "/auth/signed-out",
		"/healthz", "/readyz", d.app.assets.Path("app.css"), "/favicon.ico", "/no-such-page", "/uploads/not-a-guid"} {
		get, err := noFollow.Get(d.srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(get.Body)
		get.Body.Close()
		req, _ := http.NewRequest(http.MethodHead, d.srv.URL+path, nil)
		head, err := noFollow.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(head.Body)
		head.Body.Close()
		if head.StatusCode != get.StatusCode || len(rest) != 0 || head.Header.Get("Content-Type") != get.Header.Get("Content-Type") {
			t.Errorf("HEAD %s: %d %q (%d body bytes), GET: %d %q", path, head.StatusCode, head.Header.Get("Content-Type"), len(rest),
				get.StatusCode, get.Header.Get("Content-Type"))
		}
		if cl := head.Header.Get("Content-Length"); cl != "" && get.StatusCode == http.StatusOK && cl != fmt.Sprint(len(body)) {
			t.Errorf("HEAD %s: Content-Length %s, GET sent %d bytes", path, cl, len(body))
		}
	}
}

// A multipart body that is cut off, has no boundary, or has more parts than a form can have is
// answered with what is wrong (400, or 413 when it is too much), never as a missing security token.
func TestMalformedMultipartIsExplained(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	const boundary = "XyZzY"
	part := func(name, value string) string {
		return "--" + boundary + "\r\nContent-Disposition: form-data; name=\"" + name + "\"\r\n\r\n" + value + "\r\n"
	}
	many := strings.Builder{}
	many.WriteString(part("_csrf", csrf))
	for i := range 5000 {
		many.WriteString(part(fmt.Sprintf("f%d", i), "x"))
	}
	many.WriteString("--" + boundary + "--\r\n")
	for _, tc := range []struct {
		name, contentType, body string
		status                  int
		says                    string
	}{
		{"no closing boundary", "multipart/form-data; boundary=" + boundary, part("_csrf", csrf) + part("csv", "Device Serial Number\r\nSN-1"),
			http.StatusBadRequest, "cut off"},
		{"no boundary parameter", "multipart/form-data", part("_csrf", csrf), http.StatusBadRequest, "boundary"},
		{"thousands of parts", "multipart/form-data; boundary=" + boundary, many.String(), http.StatusRequestEntityTooLarge, "parts"},
		{"bad escape in a urlencoded form", "application/x-www-form-urlencoded", "_csrf=" + csrf + "&csv=%zz", http.StatusBadRequest, "could not be read"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/devices/import", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Origin", d.srv.URL)
			resp, err := b.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			doc := parse(t, resp)
			if resp.StatusCode != tc.status || !strings.Contains(text(doc), tc.says) || strings.Contains(text(doc), "security token") {
				t.Errorf("%d, want %d saying %q: %s", resp.StatusCode, tc.status, tc.says, text(doc))
			}
		})
	}
}

// A form posted without a session starts a sign-in, which counts against the sign-in rate limit
// like any other start (each records a flow).
func TestFormsWithoutSessionCountAsSignInStarts(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "3/1m"})
	c := d.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	var statuses []int
	for range 5 {
		req, _ := http.NewRequest(http.MethodPost, d.srv.URL+"/uploads", strings.NewReader("status=pending"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", d.srv.URL)
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		statuses = append(statuses, resp.StatusCode)
	}
	if statuses[0] != http.StatusFound || statuses[2] != http.StatusFound || statuses[3] != http.StatusTooManyRequests || statuses[4] != http.StatusTooManyRequests {
		t.Errorf("statuses %v: want three sign-in starts, then 429", statuses)
	}
}

// A made-up method is any text a client chooses: logs and metrics name it "other", so none of it
// is kept or grows the metrics. A request id is believed from a trusted proxy alone, and only
// when it reads as one.
func TestClientTextDoesNotBecomeLabelsOrRequestIDs(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_METRICS_TOKEN": "scrape-secret-0f2d6e55", "AUTOPILOTDESK_TRUSTED_PROXIES": "10.0.0.5"})
	for i := 0; i < 20; i++ {
		req := httptest.NewRequest(http.MethodGet, "http://desk.example/nothing", nil)
		req.Method = fmt.Sprintf("XMADEUP%d%s", i, strings.Repeat("Q", 2000))
		d.app.handler.ServeHTTP(httptest.NewRecorder(), req)
	}
	req := httptest.NewRequest(http.MethodGet, "http://desk.example/metrics", nil)
	req.Header.Set("Authorization", "bearer scrape-secret-0f2d6e55") // the scheme in any case
	rec := httptest.NewRecorder()
	d.app.handler.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("metrics with a lower-case bearer scheme: %d", rec.Code)
	}
	if m := rec.Body.String(); strings.Contains(m, "XMADEUP") || !strings.Contains(m, `method="other"`) {
		t.Errorf("made-up methods are not one label:\n%s", m)
	}
	if strings.Contains(d.log.String(), "XMADEUP") || !strings.Contains(d.log.String(), `"method":"other"`) {
		t.Errorf("made-up methods are logged as sent")
	}

	for _, tc := range []struct {
		peer, id string
		believed bool
	}{
		{"203.0.113.9:4000", "0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d", false},
		{"10.0.0.5:4000", "0f2d6e55-3a8c-4c1e-9d6b-2f3e4a5b6c7d", true},
		{"10.0.0.5:4000", "<script>x</script>", false},
		{"10.0.0.5:4000", strings.Repeat("a", 129), false},
	} {
		req := httptest.NewRequest(http.MethodGet, "http://desk.example/nothing", nil)
		req.RemoteAddr = tc.peer
		req.Header.Set("X-Request-Id", tc.id)
		rec := httptest.NewRecorder()
		d.app.handler.ServeHTTP(rec, req)
		got := rec.Header().Get("X-Request-Id")
		if (got == tc.id) != tc.believed || got == "" || (!tc.believed && strings.Contains(rec.Body.String(), tc.id)) {
			t.Errorf("request id %.20q from %s: answered with %.20q, believed want %v", tc.id, tc.peer, got, tc.believed)
		}
	}
	if strings.Contains(d.log.String(), "<script>") {
		t.Errorf("a client's request id was logged")
	}
}
