package main

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
)

// callbackURL begins a sign-in and stops at the provider's redirect back to the desk.
func (d *desk) callbackURL(c *http.Client, identityKey string) string {
	d.t.Helper()
	var callback string
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		testkit.PickIdentity(req, identityKey)
		if req.URL.Path == "/auth/callback" {
			callback = req.URL.String()
			return http.ErrUseLastResponse
		}
		return nil
	}
	defer func() { c.CheckRedirect = nil }()
	resp, err := c.Get(d.srv.URL + "/auth/login")
	if err != nil {
		d.t.Fatal(err)
	}
	resp.Body.Close()
	if callback == "" {
		d.t.Fatalf("no callback reached (status %d)", resp.StatusCode)
	}
	return callback
}

func TestCallbackReplayAndForeignStateAreRefused(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	cb := d.callbackURL(b, "admin")
	resp, doc := d.get(b, strings.TrimPrefix(cb, d.srv.URL))
	if resp.Request.URL.Path != "/" {
		t.Fatalf("first callback landed on %s: %s", resp.Request.URL, text(doc))
	}
	// The same callback again, while it keeps the browser signed in: on to where it went.
	resp, doc = d.get(b, strings.TrimPrefix(cb, d.srv.URL))
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Errorf("replayed callback while signed in: %d at %s: %s", resp.StatusCode, resp.Request.URL, text(doc))
	}
	// In another browser, it is refused: the flow was single-use.
	resp, doc = d.get(d.browser(), strings.TrimPrefix(cb, d.srv.URL))
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(text(doc), "Sign in again") {
		t.Errorf("replayed callback: %d %s", resp.StatusCode, text(doc))
	}

	// Another browser's callback brought to this browser (login CSRF): no flow here.
	victim, attacker := d.browser(), d.browser()
	stolen := d.callbackURL(attacker, "admin")
	d.callbackURL(victim, "admin") // the victim has a flow of its own
	resp, doc = d.get(victim, strings.TrimPrefix(stolen, d.srv.URL))
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(text(doc), "Signed in") {
		t.Errorf("foreign state accepted: %d %s", resp.StatusCode, text(doc))
	}
	resp, _ = d.get(victim, "/")
	if resp.Request.URL.Path != "/auth/signin" {
		t.Errorf("victim signed in with the attacker's code")
	}
}

// The answer that signed a browser in, opened again (Back into the callback, or its address a
// second time): the browser goes on to where it went, and that page says, once, that the person is
// signed in already and nothing else happened. An answer that did not sign it in says the same of
// the sign-in that still holds instead of asking for a new one.
func TestReplayedCallbackSaysYouAreAlreadySignedIn(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	cb := strings.TrimPrefix(d.callbackURL(b, "admin"), d.srv.URL)
	notice := func(doc *goquery.Document) string { return doc.Find(`[data-testid="signed-in-already"]`).Text() }
	if resp, doc := d.get(b, cb); resp.Request.URL.Path != "/" || notice(doc) != "" {
		t.Fatalf("first callback: %s, notice %q", resp.Request.URL, notice(doc))
	}
	resp, doc := d.get(b, cb)
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/" {
		t.Fatalf("replayed callback: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	if n := notice(doc); !strings.Contains(n, "already signed in") || !strings.Contains(n, "Adele Vance") || !strings.Contains(n, "nothing changed") {
		t.Errorf("the page after the replayed callback says %q", n)
	}
	if _, doc := d.get(b, "/"); notice(doc) != "" {
		t.Errorf("the notice stays on the next page: %q", notice(doc))
	}
	b2 := d.browser()
	other := strings.TrimPrefix(d.callbackURL(b2, "admin"), d.srv.URL)
	d.get(b2, other) // it signs the other browser in
	resp, doc = d.get(b, other)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(text(doc), "You are still signed in as Adele Vance") || strings.Contains(text(doc), "Sign in again") {
		t.Errorf("another browser's answer while signed in: %d %s", resp.StatusCode, text(doc))
	}
}

// An answer that is not one of the browser's own sign-ins' — a bare or forged link, another
// browser's — is refused without ending the sign-ins the browser is in the middle of; and a
// callback's error page does not carry the sign-in's code in its theme form.
func TestAnotherSignInsAnswerLeavesTheFlowAlone(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_SIGNIN": "off"})
	b := d.browser()
	foreign := d.callbackURL(d.browser(), "admin")
	newer := d.callbackURL(b, "admin")
	for _, cb := range []string{"/auth/callback", "/auth/callback?state=forged&code=forged", strings.TrimPrefix(foreign, d.srv.URL)} {
		resp, doc := d.get(b, cb)
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d %s", cb, resp.StatusCode, text(doc))
		}
		if ret := doc.Find(`input[name="return_to"]`).AttrOr("value", ""); strings.Contains(ret, "code=") || strings.Contains(ret, "state=") {
			t.Errorf("%s: the theme form returns to %q", cb, ret)
		}
	}
	resp, doc := d.get(b, strings.TrimPrefix(newer, d.srv.URL))
	if resp.Request.URL.Path != "/" {
		t.Errorf("the newer sign-in did not finish after other answers: landed on %s: %s", resp.Request.URL, text(doc))
	}
}

func TestCallbackErrorsAreExplained(t *testing.T) {
	d := startDesk(t, nil)
	for key, want := range map[string]string{
		"no-consent":   "consent",
		"not-assigned": "not assigned",
		"cancel":       "cancel",
	} {
		resp := d.signIn(d.browser(), key, "/")
		doc := parse(t, resp)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(strings.ToLower(text(doc)), want) {
			t.Errorf("%s: %d %s", key, resp.StatusCode, text(doc))
		}
	}
}

func TestAllowedGroupsRefuseOthers(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_ALLOWED_GROUPS": "00000000-0000-0000-0000-00000000beef"})
	resp := d.signIn(d.browser(), "admin", "/")
	doc := parse(t, resp)
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(text(doc), "not allowed") {
		t.Errorf("non-member: %d %s", resp.StatusCode, text(doc))
	}
}

// A group's id is the same in capitals; a list that names no group, or names groups by anything
// but their object ids, is refused at start rather than letting everyone in or no one.
func TestAllowedGroupsAreObjectIDsInAnyCase(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_ALLOWED_GROUPS": strings.ToUpper(demoidp.HelpDeskGroupID)})
	if resp := d.signIn(d.browser(), "admin", "/"); resp.StatusCode != http.StatusOK {
		t.Errorf("member named in capitals: %d %s", resp.StatusCode, text(parse(t, resp)))
	}
	for _, groups := range []string{",", " , ", "not-a-guid", demoidp.HelpDeskGroupID + ";x", " ; "} {
		_, err := loadConfig(nil, testkit.Env(map[string]string{"AUTOPILOTDESK_ALLOWED_GROUPS": groups}), io.Discard)
		if err == nil || !strings.Contains(err.Error(), "AUTOPILOTDESK_ALLOWED_GROUPS") {
			t.Errorf("allowed groups %q: %v", groups, err)
		}
	}
	if _, err := loadConfig(nil, testkit.Env(map[string]string{"AUTOPILOTDESK_ALLOWED_GROUPS": demoidp.HelpDeskGroupID + ", ,"}), io.Discard); err != nil {
		t.Errorf("a list with a spare comma: %v", err)
	}
}

// A user in more groups than an ID token lists (Entra's overage) is let in when Microsoft Graph
// says they belong to an allowed group, and refused when it says they do not.
func TestAllowedGroupsAskGraphOnOverage(t *testing.T) {
	d := startDesk(t, map[string]string{"AUTOPILOTDESK_ALLOWED_GROUPS": "00000000-0000-0000-0000-00000000beef," + demoidp.HelpDeskGroupID})
	resp := d.signIn(d.browser(), demoidp.ManyGroupsKey, "/")
	doc := parse(t, resp)
	if resp.StatusCode != http.StatusOK || !strings.Contains(text(doc), "Isaiah Langer") {
		t.Fatalf("member through Graph: %d %s", resp.StatusCode, text(doc))
	}
	var checks int
	for _, r := range d.app.demo.Emulator.Received() {
		if r.Method == http.MethodPost && r.Path == "/v1.0/me/checkMemberGroups" {
			checks++
		}
	}
	if checks != 1 {
		t.Errorf("%d membership checks sent to Graph, want 1", checks)
	}

	d = startDesk(t, map[string]string{"AUTOPILOTDESK_ALLOWED_GROUPS": "00000000-0000-0000-0000-00000000beef"})
	resp = d.signIn(d.browser(), demoidp.ManyGroupsKey, "/")
	if doc := parse(t, resp); resp.StatusCode != http.StatusForbidden || !strings.Contains(text(doc), "not allowed") {
		t.Errorf("not a member through Graph: %d %s", resp.StatusCode, text(doc))
	}

	// Graph failing the check stops the sign-in with an explanation, never lets the user in.
	d = startDesk(t, map[string]string{"AUTOPILOTDESK_ALLOWED_GROUPS": demoidp.HelpDeskGroupID,
		"AUTOPILOTDESK_EMULATOR_ERROR_RATE": "1", "AUTOPILOTDESK_EMULATOR_ERROR_STATUSES": "503"})
	resp = d.signIn(d.browser(), demoidp.ManyGroupsKey, "/")
	if doc := parse(t, resp); resp.StatusCode != http.StatusBadGateway || !strings.Contains(text(doc), "could not be checked") ||
		!strings.Contains(text(doc), "more groups than a sign-in token can list") ||
		!strings.Contains(text(doc), "details below") {
		t.Errorf("Graph failing the check: %d %s", resp.StatusCode, text(doc))
	} else if support := doc.Find(`[data-testid="support"] pre`).Text(); !strings.Contains(support, "request-id") ||
		!strings.Contains(support, "client-request-id") || !strings.Contains(support, "Date") {
		t.Errorf("the page asks to give the details below, and shows: %q", support)
	}
	if resp, _ := d.get(d.browser(), "/uploads/new"); resp.Request.URL.Path == "/uploads/new" {
		t.Error("a sign-in whose group check failed left a session")
	}
}

func TestConcurrentRequestsRenewTheTokenOnce(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	d.app.demo.IdP.ExpireAccessTokens()
	before := d.app.demo.IdP.TokenRequests()
	var wg sync.WaitGroup
	for i := 0; i < 6; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := b.Get(d.srv.URL + "/")
			if err == nil {
				resp.Body.Close()
			}
		}()
	}
	wg.Wait()
	if got := d.app.demo.IdP.TokenRequests() - before; got != 1 {
		t.Errorf("%d token renewals reached the provider, want 1", got)
	}
	_, doc := d.get(b, "/")
	if doc.Find(`[data-testid="failure"]`).Length() != 0 {
		t.Errorf("home page still failing after renewal: %s", text(doc))
	}
}

func TestIdleSessionEndsOnTheServer(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, nil, appOptions{Now: clk.Now})
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	clk.Advance(16 * time.Minute)
	resp, _ := d.get(b, "/uploads/new")
	if resp.Request.URL.Path != "/auth/signin" {
		t.Errorf("idle session still served %s", resp.Request.URL)
	}
}

func TestReturnToIsSameOrigin(t *testing.T) {
	d := startDesk(t, nil)
	for _, target := range []string{"//evil.example", "https://evil.example/x", "/\\evil.example", "/%09/evil.example"} {
		resp := d.signIn(d.browser(), "admin", target)
		resp.Body.Close()
		if u := resp.Request.URL; u.Host != mustHost(d.srv.URL) || u.Path != "/" {
			t.Errorf("return_to %q landed on %s", target, u)
		}
	}
}

func mustHost(raw string) string {
	u, _ := url.Parse(raw)
	return u.Host
}

func TestRenewalNetworkFailureKeepsTheSession(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT": "3h"}, appOptions{Now: clk.Now})
	b := d.browser()
	parse(t, d.signIn(b, "admin", "/"))
	d.app.demo.Close() // the identity provider (and Graph) become unreachable
	clk.Advance(2 * time.Hour)
	resp, doc := d.get(b, "/")
	if resp.Request.URL.Path != "/" || !strings.Contains(text(doc), "could not be renewed") {
		t.Fatalf("landed on %s: %s", resp.Request.URL, text(doc))
	}
	if doc.Find(`form[action="/auth/signout"]`).Length() != 1 {
		t.Errorf("the session ended on a network failure")
	}
}

func TestSecondSubmitWhileTheFirstIsInFlight(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	form := formValues(t, parse(t, d.signIn(b, "admin", "/uploads/new")), `form[action="/uploads"]`)
	d.app.demo.Emulator.SetFaults(emulator.Faults{LatencyMin: 400 * time.Millisecond, LatencyMax: 400 * time.Millisecond})
	statuses := make(chan int, 2)
	for i := 0; i < 2; i++ {
		go func(delay time.Duration) {
			time.Sleep(delay)
			resp, _ := d.post(b, "/uploads", form)
			statuses <- resp.StatusCode
		}(time.Duration(i) * 100 * time.Millisecond)
	}
	got := []int{<-statuses, <-statuses}
	if !(got[0] == http.StatusOK && got[1] == http.StatusConflict || got[0] == http.StatusConflict && got[1] == http.StatusOK) {
		t.Errorf("statuses %v, want one result and one 'still sending'", got)
	}
	if posts := postsTo(d.emu, ""); posts != 1 {
		t.Errorf("Graph received %d creates", posts)
	}
}

func TestFreshSignInAsksTheProviderToAuthenticateAgain(t *testing.T) {
	d := startDesk(t, nil)
	c := d.srv.Client()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	for query, want := range map[string]bool{"?fresh=1": true, "": false} {
		resp, err := c.Get(d.srv.URL + "/auth/login" + query)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		u, _ := url.Parse(resp.Header.Get("Location"))
		if got := u.Query().Get("prompt") == "login"; got != want {
			t.Errorf("login%s: prompt=login %v, want %v", query, got, want)
		}
	}
}

// With a 2-minute idle timeout, a person who makes a request every 30 seconds stays signed in
// however long they work, and a person who stops is signed out 2 minutes (at most 5 seconds
// early) after their last request.
func TestIdleTimeoutCountsFromTheLastRequest(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_SESSION_IDLE_TIMEOUT": "2m"}, appOptions{Now: clk.Now})
	active, idle := d.browser(), d.browser()
	parse(t, d.signIn(active, "admin", "/"))
	parse(t, d.signIn(idle, "reader", "/"))
	signedIn := func(c *http.Client) bool {
		resp, _ := d.get(c, "/uploads/new")
		return resp.Request.URL.Path == "/uploads/new"
	}
	for second := 30; second <= 900; second += 30 {
		clk.Advance(30 * time.Second)
		if !signedIn(active) {
			t.Fatalf("the active person was signed out %d s in, 30 s after their last request", second)
		}
	}
	// The idle person's last request was a quarter of an hour ago.
	if signedIn(idle) {
		t.Error("the idle person is still signed in a quarter of an hour after their last request")
	}
	parse(t, d.signIn(idle, "reader", "/"))
	clk.Advance(115 * time.Second)
	if !signedIn(idle) {
		t.Fatal("signed out 115 s after the last request, with a 2 m idle timeout")
	}
	clk.Advance(121 * time.Second)
	if signedIn(idle) {
		t.Error("still signed in 121 s after the last request, with a 2 m idle timeout")
	}
}
