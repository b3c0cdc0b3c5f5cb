package main

import (
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"autopilotdesk/web/identity/demoidp"
)

// hostileParams are the names the desk reads from queries and forms.
var hostileParams = []string{"action", "addressableUserName", "again", "assignedUser", "back", "before", "change", "code",
	"createdDateTimeUtc", "csv", "device", "displayName", "formKey", "fresh", "from", "groupTag", "hardwareHash", "hours", "id",
	"leaveOut", "mine", "next", "notag", "note", "nouser", "outcome", "pages", "person", "reason", "return_to", "row", "serial",
	"serialNumber", "state", "status", "submission", "tag", "theme", "user", "userPrincipalName", "uses"}

// hostileValues are written as they go on the wire: numbers past any range, bytes that are not
// UTF-8, NUL, a way out of the path, markup, a right-to-left override, and a value long enough
// that every parameter carrying it comes close to the desk's 64 KiB header limit.
var hostileValues = []string{"", "-1", "99999999999999999999999", "%ff%fe", "%00", "..%2F..%2Fetc%2Fpasswd",
	"%3Cscript%3Ealert(1)%3C%2Fscript%3E", "%E2%80%AE", strings.Repeat("A", 1500)}

// Every signed-in route, given hostile values in every parameter the desk reads and in place of
// every id in its path, answers without a server error and without a panic. A 5xx here means the
// desk blamed Graph (or itself) for input it should have refused.
func TestEveryRouteAnswersHostileInputWithoutAServerError(t *testing.T) {
	d, routes := everyRoute(t)
	b := d.browser()
	doc := parse(t, d.signIn(b, demoidp.AdminKey, "/uploads/new"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	b.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	send := func(method, path, body string) {
		t.Helper()
		req, err := http.NewRequest(method, d.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if method == http.MethodPost {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.Header.Set("Origin", d.srv.URL)
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatalf("%s %.200s: %v", method, path, err)
		}
		page, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusForbidden || strings.HasPrefix(resp.Header.Get("Location"), "/auth/") {
			// The token or the session was lost: what follows would not reach the handlers.
			t.Fatalf("%s %.200s was refused before its handler: %d %s", method, path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp.StatusCode >= 500 {
			t.Errorf("%s %.200s with %.100q answered %d: %.300s", method, path, body, resp.StatusCode, page)
		}
	}

	keys := make([]string, 0, len(routes))
	for key := range routes {
		keys = append(keys, key)
	}
	slices.Sort(keys)
	for _, key := range keys {
		rt := routes[key]
		method, _, _ := strings.Cut(key, " ")
		for _, v := range hostileValues {
			every := make([]string, len(hostileParams))
			for i, p := range hostileParams {
				every[i] = p + "=" + v
			}
			// The route's own form, every field hostile, with a good CSRF token.
			form := "_csrf=" + url.QueryEscape(csrf) + "&" + strings.Join(every, "&")
			if method == http.MethodPost {
				send(method, rt.path, form)
			} else {
				send(method, rt.path+"?"+strings.Join(every, "&"), "")
			}
			// Each id in the path replaced.
			segments := strings.Split(rt.path, "/")
			for i, s := range segments {
				if !strings.ContainsAny(s, "0123456789") {
					continue
				}
				path := strings.Join(slices.Concat(segments[:i], []string{v}, segments[i+1:]), "/")
				send(method, path, "_csrf="+url.QueryEscape(csrf)+"&"+rt.form.Encode())
			}
		}
	}
	if logs := d.log.String(); strings.Contains(logs, `"msg":"panic"`) {
		t.Errorf("the desk panicked:\n%s", logs)
	}
}
