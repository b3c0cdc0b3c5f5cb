package demo

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"autopilotdesk/graphclient/jsonbatch"
)

// Repeatable makes a demo show the same pages on every run, as the documentation's pictures show
// it. Its time stands still but for Microsoft Graph: each request Graph receives takes one
// millisecond, and each change (any method but GET and HEAD) a minute before it, so every action
// of a walkthrough lands on a whole minute and an import is final at the first look after it.
// The ids Graph hands out and the client-request-ids the desk sends are numbered.
type Repeatable struct {
	mu            sync.Mutex
	start, now    time.Time
	ticks         time.Duration // what Graph's requests took: their milliseconds, not the changes' minutes
	ids, requests int
}

// NewRepeatable starts a repeatable demo's clock at start.
func NewRepeatable(start time.Time) *Repeatable { return &Repeatable{start: start, now: start} }

// Now is the demo's time.
func (r *Repeatable) Now() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

// Ticks is a clock that moves only by the millisecond each Graph request takes. The desk times
// its exchanges with Graph by it, so a change takes a millisecond there, not the minute it moves
// the demo's time.
func (r *Repeatable) Ticks() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.start.Add(r.ticks)
}

// NewID numbers the ids Graph hands out: 5c0e0001-aa11-4b22-8c33-00d0c5000001, then …0002.
func (r *Repeatable) NewID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ids++
	return fmt.Sprintf("5c0e%04x-aa11-4b22-8c33-%012x", r.ids, 0xd0c5000000+r.ids)
}

// NewRequestID numbers the desk's client-request-ids: c11e0001-7e57-4d00-9e00-000000000001, then …0002.
func (r *Repeatable) NewRequestID() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests++
	return fmt.Sprintf("c11e%04x-7e57-4d00-9e00-%012x", r.requests, r.requests)
}

// Pace moves the clock as Graph's requests arrive, before next answers them.
func (r *Repeatable) Pace(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		changes := changes(req)
		r.mu.Lock()
		if changes {
			r.now = r.now.Add(time.Minute)
		}
		r.now = r.now.Add(time.Millisecond)
		r.ticks += time.Millisecond
		r.mu.Unlock()
		next.ServeHTTP(w, req)
	})
}

// changes says whether req changes something in Graph: any method but GET and HEAD, except a
// JSON batch that only reads. Background work (following an import) reads in batches as often as
// real time allows; were those changes, the demo's time would differ from run to run.
func changes(req *http.Request) bool {
	if req.Method == http.MethodGet || req.Method == http.MethodHead {
		return false
	}
	if req.Method != http.MethodPost || !strings.HasSuffix(req.URL.Path, "/$batch") || req.Body == nil {
		return true
	}
	body, err := io.ReadAll(req.Body)
	req.Body = io.NopCloser(bytes.NewReader(body))
	var batch jsonbatch.Batch
	if err != nil || json.Unmarshal(body, &batch) != nil {
		return true
	}
	for _, inner := range batch.Requests {
		if !strings.EqualFold(inner.Method, http.MethodGet) {
			return true
		}
	}
	return false
}
