package web

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
)

// A page leaves in one write. net/http gathers a response in a 4 KB buffer, so a page of a few
// kilobytes with the desk's headers (the CSP among them) went out in two system calls, each a
// loopback or network send of its own. Render holds the connection's writes while it writes the
// status, the headers and the page and flushes them, then sends them at once.

// heldConn is an accepted connection whose writes can be held and sent together.
type heldConn struct {
	net.Conn
	held *[]byte // while holding; from heldBuffers
}

func (c *heldConn) Write(p []byte) (int, error) {
	if c.held != nil {
		*c.held = append(*c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// hold starts gathering writes; release sends them in one write. Both run on the goroutine
// serving the connection (HTTP/1.x serves a connection's requests one at a time on one).
func (c *heldConn) hold() {
	if c.held == nil {
		c.held = heldBuffers.Get().(*[]byte)
	}
}

func (c *heldConn) release() error {
	out := c.held
	if out == nil {
		return nil
	}
	c.held = nil
	var err error
	if len(*out) > 0 {
		_, err = c.Conn.Write(*out)
	}
	if cap(*out) <= maxPooledBuffer {
		*out = (*out)[:0]
		heldBuffers.Put(out)
	}
	return err
}

var heldBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 16<<10); return &b }}

// heldListener hands out heldConns.
type heldListener struct{ net.Listener }

func (l heldListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &heldConn{Conn: c}, nil
}

type heldConnKey struct{}

// withHeldConn is the server's ConnContext: requests find their connection in their context.
func withHeldConn(ctx context.Context, c net.Conn) context.Context {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if hc, ok := c.(*heldConn); ok {
		return context.WithValue(ctx, heldConnKey{}, hc)
	}
	return ctx
}

// heldConnOf is the request's connection when its writes can be held: HTTP/1.x only (HTTP/2
// writes a connection's frames from a goroutine of its own).
func heldConnOf(r *http.Request) *heldConn {
	if r.ProtoMajor != 1 {
		return nil
	}
	hc, _ := r.Context().Value(heldConnKey{}).(*heldConn)
	return hc
}
