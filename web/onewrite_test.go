package web

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"
)

// countingListener counts the writes its connections make.
type countingListener struct {
	net.Listener
	writes atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, writes: &l.writes}, nil
}

type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// A rendered page larger than net/http's 4 KB write buffer, with its headers, leaves in one
// write per response on a kept-alive connection, for GET and HEAD alike, and arrives whole.
func TestRenderedPageLeavesInOneWrite(t *testing.T) {
	page := strings.Repeat("<p>An Autopilot device</p>\n", 400) // 11 kB
	e := echo.New()
	e.GET("/page", func(c echo.Context) error {
		c.Response().Header().Set("Content-Security-Policy", strings.Repeat("default-src 'self'; ", 20))
		return Render(c, http.StatusOK, templ.Raw(page))
	})
	e.HEAD("/page", func(c echo.Context) error { return Render(c, http.StatusOK, templ.Raw(page)) })
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := &countingListener{Listener: raw}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { Serve(ctx, ln, e, nil, Shutdown{Drain: time.Second}, slog.New(slog.DiscardHandler)) })
	defer func() { cancel(); wg.Wait() }()

	client := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	for i, method := range []string{"GET", "GET", "HEAD", "GET"} {
		before := ln.writes.Load()
		req, _ := http.NewRequest(method, "http://"+raw.Addr().String()+"/page", nil)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(bufio.NewReader(resp.Body))
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK || resp.ContentLength != int64(len(page)) {
			t.Fatalf("%s %d: %v, status %d, length %d", method, i, err, resp.StatusCode, resp.ContentLength)
		}
		if method == "GET" && string(body) != page || method == "HEAD" && len(body) != 0 {
			t.Fatalf("%s %d: %d bytes of body", method, i, len(body))
		}
		if n := ln.writes.Load() - before; n != 1 {
			t.Errorf("%s %d: the response took %d writes", method, i, n)
		}
	}
}
