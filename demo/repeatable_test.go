package demo

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

func TestRepeatableTimePassesOnlyWithGraph(t *testing.T) {
	start := time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC)
	r := NewRepeatable(start)
	var seen []time.Time
	h := r.Pace(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { seen = append(seen, r.Now()) }))
	if !r.Now().Equal(start) {
		t.Fatalf("starts at %v", r.Now())
	}
	for _, method := range []string{http.MethodGet, http.MethodPost, http.MethodGet, http.MethodPatch, http.MethodHead, http.MethodDelete} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(method, "/v1.0/deviceManagement", nil))
	}
	ms, minute := time.Millisecond, time.Minute
	want := []time.Duration{ms, minute + 2*ms, minute + 3*ms, 2*minute + 4*ms, 2*minute + 5*ms, 3*minute + 6*ms}
	for i, w := range want {
		if got := seen[i].Sub(start); got != w {
			t.Errorf("request %d answered at start+%s, want start+%s", i+1, got, w)
		}
	}
	if !r.Now().Equal(start.Add(want[len(want)-1])) {
		t.Errorf("the clock moved without Graph: %v", r.Now())
	}
	if got := r.Ticks().Sub(start); got != 6*ms {
		t.Errorf("the requests took %s by Ticks, want 6 ms", got)
	}
}

func TestRepeatableIDsAreNumbered(t *testing.T) {
	r := NewRepeatable(time.Now())
	for _, want := range []string{"5c0e0001-aa11-4b22-8c33-00d0c5000001", "5c0e0002-aa11-4b22-8c33-00d0c5000002"} {
		if got := r.NewID(); got != want {
			t.Errorf("NewID = %s, want %s", got, want)
		}
	}
	for _, want := range []string{"c11e0001-7e57-4d00-9e00-000000000001", "c11e0002-7e57-4d00-9e00-000000000002"} {
		if got := r.NewRequestID(); got != want {
			t.Errorf("NewRequestID = %s, want %s", got, want)
		}
	}
}
