package demoidp

import (
	"bytes"
	_ "embed"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
)

// authorize checks the request like Entra does, then shows the picker or, with a login_hint naming
// an identity or a sign-in problem, answers the application at once.
func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	// Until the client and its redirect URI are known good, errors stay on this page: redirecting
	// them would make the provider an open redirector.
	if q.Get("client_id") != p.clientID {
		p.renderPage(w, http.StatusBadRequest, page{Title: "Sign-in problem",
			Message: "AADSTS700016: Application with identifier '" + q.Get("client_id") + "' was not found in the directory."})
		return
	}
	redirect := q.Get("redirect_uri")
	if !registered(p.redirectURIs, redirect) {
		p.renderPage(w, http.StatusBadRequest, page{Title: "Sign-in problem",
			Message: "AADSTS50011: The redirect URI '" + redirect + "' specified in the request does not match the redirect URIs configured for the application."})
		return
	}
	fail := func(code, description string) {
		http.Redirect(w, r, withQuery(redirect, url.Values{"error": {code}, "error_description": {description}, "state": {q.Get("state")}}), http.StatusFound)
	}
	switch {
	case q.Get("response_type") != "code":
		fail("unsupported_response_type", "AADSTS700054: The demo identity provider supports only response_type=code.")
		return
	case q.Get("response_mode") != "" && q.Get("response_mode") != "query":
		fail("invalid_request", "AADSTS900144: The demo identity provider supports only response_mode=query.")
		return
	case !slices.Contains(strings.Fields(q.Get("scope")), "openid"):
		fail("invalid_scope", "AADSTS900144: The request must contain the openid scope.")
		return
	case q.Get("code_challenge") == "" || q.Get("code_challenge_method") != "S256":
		fail("invalid_request", "AADSTS9002325: Proof Key for Code Exchange with code_challenge_method S256 is required.")
		return
	case q.Get("state") == "":
		fail("invalid_request", "AADSTS900144: The request must contain the following parameter: 'state'.")
		return
	case q.Get("nonce") == "":
		fail("invalid_request", "AADSTS900144: The request must contain the following parameter: 'nonce'.")
		return
	}
	hint := q.Get("login_hint")
	if problem, ok := problemByKey(hint); ok {
		fail(problem.Code, problem.ErrorDescription)
		return
	}
	id, ok := p.identityByKey(hint)
	if !ok {
		p.picker(w, r)
		return
	}
	code := p.randomString(32)
	now := p.now()
	p.mu.Lock()
	p.codes[code] = authCode{identity: id, redirectURI: redirect, challenge: q.Get("code_challenge"),
		nonce: q.Get("nonce"), scope: q.Get("scope"), expires: now.Add(codeLifetime)}
	p.mu.Unlock()
	http.Redirect(w, r, withQuery(redirect, url.Values{"code": {code}, "state": {q.Get("state")}}), http.StatusFound)
}

type hiddenField struct{ Name, Value string }

type page struct {
	Title, Message string
	Stylesheet     string
	// The picker's parts.
	Action     string
	Hidden     []hiddenField
	Identities []Identity
	Problems   []signInProblem
	CancelURL  string
}

func (p *Provider) picker(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	q.Del("login_hint")
	var hidden []hiddenField
	for _, name := range sortedKeys(q) {
		for _, v := range q[name] {
			hidden = append(hidden, hiddenField{name, v})
		}
	}
	cancel := r.URL.Query()
	cancel.Set("login_hint", cancelKey)
	p.renderPage(w, http.StatusOK, page{Title: "Demo sign-in", Action: r.URL.Path, Hidden: hidden,
		Identities: p.Identities(), Problems: signInProblems, CancelURL: r.URL.Path + "?" + cancel.Encode()})
}

func sortedKeys(v url.Values) []string {
	keys := make([]string, 0, len(v))
	for k := range v {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func (p *Provider) renderPage(w http.ResponseWriter, status int, pg page) {
	pg.Stylesheet = stylesheetPath
	var buf bytes.Buffer
	if err := pageTemplate.Execute(&buf, pg); err != nil {
		http.Error(w, "the demo identity provider could not show this page", http.StatusInternalServerError)
		return
	}
	// The picker's form answers with a redirect to the application, which form-action also governs.
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self' "+
		strings.Join(origins(p.redirectURIs), " ")+"; frame-ancestors 'none'; base-uri 'none'")
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// origins are the CSP sources of the registered addresses; a loopback one allows any port.
func origins(uris []string) []string {
	var out []string
	for _, s := range uris {
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			o := u.Scheme + "://" + u.Host
			if isLoopback(u) {
				o = u.Scheme + "://" + bracketed(u.Hostname()) + ":*"
			}
			if !slices.Contains(out, o) {
				out = append(out, o)
			}
		}
	}
	return out
}

// registered says whether uri is one of the registered addresses. As Entra does for
// http://localhost (RFC 8252 §7.3), the port of a loopback address is ignored: scheme, host,
// path and query must still match exactly.
func registered(list []string, uri string) bool {
	if slices.Contains(list, uri) {
		return true
	}
	got, err := url.Parse(uri)
	if err != nil || !isLoopback(got) {
		return false
	}
	for _, r := range list {
		want, err := url.Parse(r)
		if err == nil && isLoopback(want) && want.Scheme == got.Scheme && want.Hostname() == got.Hostname() &&
			want.EscapedPath() == got.EscapedPath() && want.RawQuery == got.RawQuery && got.Fragment == "" && got.User == nil {
			return true
		}
	}
	return false
}

// isLoopback is an http address of this machine by name: localhost, 127.0.0.1 or [::1].
func isLoopback(u *url.URL) bool {
	switch u.Hostname() {
	case "localhost", "127.0.0.1", "::1":
		return u.Scheme == "http"
	}
	return false
}

func bracketed(host string) string {
	if strings.Contains(host, ":") {
		return "[" + host + "]"
	}
	return host
}

var pageTemplate = template.Must(template.New("page").Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{.Title}} · Demo identity provider</title>
<link rel="stylesheet" href="{{.Stylesheet}}">
</head>
<body>
<main>
<p class="tag">Demo identity provider · not Microsoft · no passwords</p>
<h1>{{.Title}}</h1>
{{- if .Message}}
<p>{{.Message}}</p>
{{- else}}
<p>Choose who to sign in as. Each account shows how the desk treats a real case.</p>
<form method="get" action="{{.Action}}">
{{- range .Hidden}}
<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{- end}}
<ul class="choices" aria-label="Accounts">
{{- range .Identities}}
<li><button type="submit" name="login_hint" value="{{.Key}}" aria-describedby="about-{{.Key}}"><span class="name">{{.Name}}</span> <span class="upn">{{.UPN}}</span></button>
<p id="about-{{.Key}}">{{.Description}}</p></li>
{{- end}}
</ul>
<h2>Sign-in problems to try</h2>
<ul class="choices problems" aria-label="Sign-in problems">
{{- range .Problems}}
<li><button type="submit" name="login_hint" value="{{.Key}}" aria-describedby="about-{{.Key}}"><span class="name">{{.Name}}</span></button>
<p id="about-{{.Key}}">{{.Description}}</p></li>
{{- end}}
</ul>
</form>
<p><a class="cancel" href="{{.CancelURL}}">Cancel sign-in</a></p>
{{- end}}
</main>
</body>
</html>
`))

//go:embed picker.css
var stylesheet []byte

func serveStylesheet(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Header().Set("Cache-Control", "public, max-age=3600")
	w.Write(stylesheet)
}
