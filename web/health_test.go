package web

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"

	"autopilotdesk/web/store"
)

// gatedChecker answers each Check with the next queued answer, after its gate opens, so a test
// decides in which order concurrent checks end.
type gatedChecker struct {
	answers chan checkAnswer
	took    chan struct{} // a check has taken its answer
}

type checkAnswer struct {
	gate chan struct{}
	err  error
}

func (g *gatedChecker) Check(context.Context) error {
	a := <-g.answers
	g.took <- struct{}{}
	<-a.gate
	return a.err
}

func (g *gatedChecker) CheckFiles() error { return nil }

// A check begun while the file was still writable, ending after a later check found it
// read-only, must not turn the known problem back into "serving" (pages would answer 200 while
// writes fail) nor log the outage twice.
func TestHealthDropsAStaleCheck(t *testing.T) {
	var logs bytes.Buffer
	g := &gatedChecker{answers: make(chan checkAnswer, 3), took: make(chan struct{}, 3)}
	h := NewHealth(g, slog.New(slog.NewJSONHandler(&logs, nil)))
	readOnly := &store.CheckError{Err: store.ErrDatabaseReadOnly, Path: "/data/autopilotdesk.db", Cause: "the desk may no longer write it"}

	early, late := make(chan struct{}), make(chan struct{})
	g.answers <- checkAnswer{gate: early}               // begins first, answers "serving"
	g.answers <- checkAnswer{gate: late, err: readOnly} // begins second, answers "read-only"
	firstDone := make(chan struct{})
	go func() { h.check(context.Background()); close(firstDone) }()
	<-g.took
	secondDone := make(chan struct{})
	go func() { h.check(context.Background()); close(secondDone) }()
	<-g.took
	close(late)
	<-secondDone
	close(early)
	<-firstDone

	if !errors.Is(h.Problem(), store.ErrDatabaseReadOnly) {
		t.Fatalf("problem after a stale check: %v", h.Problem())
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 || strings.Contains(logs.String(), "available again") {
		t.Errorf("want one ERROR line and no recovery, got:\n%s", logs.String())
	}

	g.answers <- checkAnswer{gate: closedGate()} // a check begun after the file is writable again
	h.check(context.Background())
	if h.Problem() != nil || !strings.Contains(logs.String(), "available again") {
		t.Errorf("a fresh check that passes: problem %v, log:\n%s", h.Problem(), logs.String())
	}
}

func closedGate() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
