package web

import (
	"log/slog"
	"net"
	"sync"

	"github.com/labstack/echo/v4"
)

// untrustedForwarding warns, once for each peer, when a peer that is not a trusted proxy sends
// X-Forwarded-For or X-Forwarded-Proto: most likely a reverse proxy missing from the setting, so
// the desk takes the proxy for the client and everyone behind it shares one rate-limit budget.
type untrustedForwarding struct {
	log     *slog.Logger
	setting string // the trusted-proxies setting, named in the warning
	trusted []*net.IPNet
	mu      sync.Mutex
	warned  map[string]bool // peers warned about, at most maxWarnedPeers
}

// maxWarnedPeers bounds what the desk remembers of peers it warned about: past it, any client
// sending the headers could otherwise grow the set without end. Proxies are few; a desk that has
// met this many untrusted peers sending them has said enough.
const maxWarnedPeers = 256

func (u *untrustedForwarding) middleware(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if (r.Header.Get(echo.HeaderXForwardedFor) != "" || r.Header.Get(echo.HeaderXForwardedProto) != "") && !fromPeerIn(r.RemoteAddr, u.trusted) {
			u.warn(r.RemoteAddr)
		}
		return next(c)
	}
}

func (u *untrustedForwarding) warn(remoteAddr string) {
	peer, _, err := net.SplitHostPort(remoteAddr)
	if err != nil {
		peer = remoteAddr
	}
	u.mu.Lock()
	if u.warned[peer] || len(u.warned) >= maxWarnedPeers {
		u.mu.Unlock()
		return
	}
	u.warned[peer] = true
	u.mu.Unlock()
	u.log.Warn("requests from "+peer+" carry X-Forwarded-For or X-Forwarded-Proto, but "+peer+" is not in "+u.setting+
		": the desk takes "+peer+" for the client, so everyone behind it shares one rate-limit budget (sign-in, registration codes) "+
		"and the client's address is not logged. If "+peer+" is your reverse proxy, add it to "+u.setting,
		"peer", peer, "setting", u.setting)
}
