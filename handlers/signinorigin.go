package handlers

import (
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"autopilotdesk/views"
)

// originGuard sends a sign-in started at another address than the desk's public URL there first:
// the flow cookie is kept by the address that starts the sign-in, and the provider sends the
// browser back to the public URL, where it would be missing.
type originGuard struct {
	mu      sync.Mutex
	sent    map[string]time.Time // client, host and path of a sign-in sent to the public URL
	proxied map[string]bool      // hosts that came back after being sent: a proxy's rewritten Host
}

// sentAgainWithin is how soon the same browser asking again at the same address means the
// redirect did not lead elsewhere: a reverse proxy that rewrites the Host header makes every
// request look as if it came to another address, and sending those on would loop.
const sentAgainWithin = 10 * time.Second

// elsewhere is the same path and query at the public URL when a sign-in starts at another
// address; "" when it is at the public URL, or must stay here.
func (h *Auth) elsewhere(c echo.Context) string {
	public, err := url.Parse(h.PublicURL)
	if !h.SendToPublicURL || err != nil || public.Host == "" || sameHost(c.Request().Host, public) {
		return ""
	}
	host := strings.ToLower(c.Request().Host)
	key := c.RealIP() + " " + host + " " + c.Request().URL.RequestURI()
	now := time.Now()
	g := &h.origins
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.sent == nil {
		g.sent, g.proxied = map[string]time.Time{}, map[string]bool{}
	}
	if g.proxied[host] {
		return ""
	}
	if at, ok := g.sent[key]; ok && now.Sub(at) < sentAgainWithin {
		g.proxied[host] = true
		h.Logger.Warn("sign-in requests keep arriving for the host "+host+", which is not the host of "+h.Settings.PublicURL+
			" ("+public.Host+"): if a reverse proxy changes the Host header, have it pass the browser's (nginx: proxy_set_header Host $host), "+
			"or correct "+h.Settings.PublicURL+"; sign-ins at this host are no longer sent on", "host", host)
		return ""
	}
	for k, at := range g.sent {
		if now.Sub(at) >= sentAgainWithin {
			delete(g.sent, k)
		}
	}
	g.sent[key] = now
	h.Logger.Info("sign-in started at another address than the public URL: sent there first", "host", host, "public_url", h.PublicURL)
	return (&url.URL{Scheme: public.Scheme, Host: public.Host, Path: c.Request().URL.Path, RawQuery: c.Request().URL.RawQuery}).String()
}

// sameHost says whether a request's Host header names the public URL's host and port (a port
// left out is the scheme's default: behind a proxy ending TLS the request itself may be plain).
func sameHost(requestHost string, public *url.URL) bool {
	port := public.Port()
	if port == "" {
		port = map[string]string{"http": "80", "https": "443"}[public.Scheme]
	}
	host, reqPort, err := net.SplitHostPort(requestHost)
	if err != nil {
		host, reqPort = strings.Trim(requestHost, "[]"), port
	}
	return strings.EqualFold(strings.TrimSuffix(host, "."), strings.TrimSuffix(public.Hostname(), ".")) && reqPort == port
}

// startedElsewhere is the page for a callback that brings no flow cookie although its sign-in
// was started: the browser started it at another address than the public URL.
func (h *Auth) startedElsewhere() error {
	h.Logger.Warn("a sign-in came back without its cookie: it was started at another address than " + h.Settings.PublicURL + " (" + h.PublicURL +
		"); people must open the desk at that address, or correct " + h.Settings.PublicURL + " to the address they use")
	return &views.ErrorPage{Status: http.StatusBadRequest, Title: "Open the desk at " + h.PublicURL,
		Message: "This sign-in was started at another address than the desk's own, " + h.PublicURL +
			" (or in another browser), so this browser has no sign-in cookie for it here. For your safety the desk does not finish a sign-in without it.",
		NextStep:  "Open the desk at " + h.PublicURL + " (bookmark that address), then sign in again.",
		ActionURL: h.PublicURL + "/auth/login", ActionText: "Sign in at " + h.PublicURL}
}
