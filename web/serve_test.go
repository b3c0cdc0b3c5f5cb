package web

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"autopilotdesk/devtools/testkit"
)

// A request still running when the drain time is up is closed, and the stop says so in one line
// and is still the clean stop that was asked for.
func TestShutdownClosesRequestsStillRunningAndSaysSo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	started := make(chan struct{})
	release := make(chan struct{})
	defer close(release)
	slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-release:
		case <-time.After(5 * time.Second):
		}
	})
	var logs testkit.Buffer
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, ln, slow, nil, Shutdown{Drain: 200 * time.Millisecond}, slog.New(slog.NewTextHandler(&logs, nil)))
	}()
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Get("http://" + ln.Addr().String() + "/")
		if err == nil {
			resp.Body.Close()
		}
		answered <- err
	}()
	<-started
	stop()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve returned %v after closing a request still running", err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("Serve did not return once the drain time was up")
	}
	if err := <-answered; err == nil {
		t.Error("the request still running was answered")
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "closed 1 request that was still running after 200ms") {
		t.Errorf("logged:\n%s", logs.String())
	}
}
