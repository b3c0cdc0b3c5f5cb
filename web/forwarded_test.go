package web

import (
	"bytes"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
)

// The warning about forwarded headers from untrusted peers is said once a peer, and what it
// remembers is bounded however many addresses send them.
func TestUntrustedForwardingWarnsOncePerPeerWithinBounds(t *testing.T) {
	var logs bytes.Buffer
	_, proxy, _ := net.ParseCIDR("10.0.0.5/32")
	u := &untrustedForwarding{log: slog.New(slog.NewJSONHandler(&logs, nil)), setting: "THE_SETTING", trusted: []*net.IPNet{proxy}, warned: map[string]bool{}}
	for range 3 {
		u.warn("192.0.2.1:4000")
		u.warn("[2001:db8::1]:4000")
	}
	if n := strings.Count(logs.String(), "\n"); n != 2 || !strings.Contains(logs.String(), `"peer":"192.0.2.1"`) || !strings.Contains(logs.String(), `"peer":"2001:db8::1"`) {
		t.Errorf("%d warnings:\n%s", n, logs.String())
	}
	for i := range 10 * maxWarnedPeers {
		u.warn(net.JoinHostPort("198.51."+strconv.Itoa(i/256)+"."+strconv.Itoa(i%256), "1"))
	}
	if len(u.warned) != maxWarnedPeers {
		t.Errorf("remembers %d peers, want at most %d", len(u.warned), maxWarnedPeers)
	}
}
