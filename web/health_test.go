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

func (g *gatedChecker) CheckFiles() error   { return nil }
func (g *gatedChecker) SlotShortage() error { return nil }

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

// shortChecker is a PostgreSQL whose connection slots run short: its check and its shortage
// are what the test sets.
type shortChecker struct{ check, shortage error }

func (s *shortChecker) Check(context.Context) error { return s.check }
func (s *shortChecker) CheckFiles() error           { return nil }
func (s *shortChecker) SlotShortage() error         { return s.shortage }

// A shortage of connection slots is logged once, with its cause and remedy, and ends with one
// INFO line; it refuses no page, readiness included, even when the check itself found no slot.
func TestHealthLogsASlotShortageOnceAndServes(t *testing.T) {
	var logs bytes.Buffer
	s := &shortChecker{}
	h := NewHealth(s, slog.New(slog.NewJSONHandler(&logs, nil)))
	noSlot := &store.CheckError{Err: store.ErrNoConnectionSlot, Cause: "every connection slot it has (max_connections) is taken",
		Recover: "keep their sum below max_connections"}
	s.shortage = noSlot
	for range 3 {
		if err := h.check(context.Background()); err != nil || h.Problem() != nil {
			t.Fatalf("a shortage refuses pages: %v %v", err, h.Problem())
		}
	}
	s.check = noSlot // the check's own connection found no slot
	if err := h.check(context.Background()); err != nil || h.Problem() != nil {
		t.Fatalf("a check that found no slot refuses pages: %v %v", err, h.Problem())
	}
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 || !strings.Contains(logs.String(), "no free connection slot") || !strings.Contains(logs.String(), "max_connections") {
		t.Errorf("want one ERROR line naming the shortage and its remedy, got:\n%s", logs.String())
	}
	s.check, s.shortage = nil, nil
	h.check(context.Background())
	if !strings.Contains(logs.String(), "connection slots free again") || strings.Count(logs.String(), `"level":"ERROR"`) != 1 {
		t.Errorf("the end of the shortage, logged:\n%s", logs.String())
	}
	if pe := stateUnavailable(noSlot); pe.Status != 503 || !strings.Contains(pe.Message, "no free connection slot") {
		t.Errorf("the page of a request that found no slot: %+v", pe)
	}
}
