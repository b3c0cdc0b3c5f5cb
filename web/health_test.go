package web

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

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

func (g *gatedChecker) CheckFiles() error                        { return nil }
func (g *gatedChecker) SlotRefusals() (uint64, error, time.Time) { return 0, nil, time.Time{} }

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

// shortChecker is a PostgreSQL whose connection slots run short: its check and the refusals
// are what the test sets.
type shortChecker struct {
	check    error
	refusals uint64
	latest   error
	at       time.Time
}

func (s *shortChecker) Check(context.Context) error { return s.check }
func (s *shortChecker) CheckFiles() error           { return nil }
func (s *shortChecker) SlotRefusals() (uint64, error, time.Time) {
	return s.refusals, s.latest, s.at
}

// A shortage of connection slots is logged once, with its cause and remedy, and its end once no
// connection was refused for a while; it refuses no page, readiness included, even when the
// check itself found no slot.
func TestHealthLogsASlotShortageOnceAndServes(t *testing.T) {
	var logs bytes.Buffer
	noSlot := &store.CheckError{Err: store.ErrNoConnectionSlot, Cause: "every connection slot it has (max_connections) is taken",
		Recover: "keep their sum below max_connections"}
	s := &shortChecker{refusals: 2, latest: noSlot, at: time.Now().Add(-time.Hour)}
	h := NewHealth(s, slog.New(slog.NewJSONHandler(&logs, nil)))
	h.check(context.Background())
	if logs.Len() != 0 {
		t.Errorf("refusals from before the desk served were logged:\n%s", logs.String())
	}
	for i := range 3 {
		s.refusals, s.at = s.refusals+1, time.Now()
		if i == 2 {
			s.check = noSlot // the check's own connection found no slot
		}
		if err := h.check(context.Background()); err != nil || h.Problem() != nil {
			t.Fatalf("a shortage refuses pages: %v %v", err, h.Problem())
		}
	}
	h.check(context.Background())
	if n := strings.Count(logs.String(), `"level":"ERROR"`); n != 1 || !strings.Contains(logs.String(), "no free connection slot") ||
		!strings.Contains(logs.String(), "max_connections") || strings.Contains(logs.String(), "no connection refused") {
		t.Errorf("want one ERROR line naming the shortage and its remedy, got:\n%s", logs.String())
	}
	s.check, s.at = nil, time.Now().Add(-slotShortageQuiet)
	h.check(context.Background())
	if !strings.Contains(logs.String(), "no connection refused for 10s") || strings.Count(logs.String(), `"level":"ERROR"`) != 1 {
		t.Errorf("the end of the shortage, logged:\n%s", logs.String())
	}
	if pe := stateUnavailable(noSlot); pe.Status != 503 || !strings.Contains(pe.Message, "no free connection slot") {
		t.Errorf("the page of a request that found no slot: %+v", pe)
	}
}
