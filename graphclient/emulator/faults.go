package emulator

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Faults make the emulator misbehave on purpose, like Microsoft's Dev Proxy.
type Faults struct {
	ErrorRate              float64       // share of requests answered with a random error (0..1)
	ErrorStatuses          []int         // statuses to draw from; empty: Dev Proxy's defaults per method
	LatencyMin, LatencyMax time.Duration // added latency range
	Methods                []string      // methods that get random errors (empty: all)
	ThrottleRequests       int           // request budget per window (0: off)
	ThrottleWrites         int           // write budget per window (0: off)
	PunishEarlyRetry       bool          // a request sent before the last Retry-After elapsed gets a longer one
	Omit429RetryAfter      float64       // share of 429s sent without Retry-After, as Intune sometimes does
	ThrottleWindow         time.Duration // default 20 s
	UploadsSegmentMissing  bool          // the uploads collection answers like today's service
	Forbid403Nested        bool          // every write gets Intune's nested 403, as without an Intune role
	NoIntuneLicence        bool          // every deviceManagement request is refused, as in a tenant without an Intune licence
	// LoseWriteAnswers: a write is carried out, then answered 504 as if its answer was lost on
	// the way back, which a client cannot tell from one that never ran.
	LoseWriteAnswers bool
	Rand             func() float64
	Sleep            func(time.Duration)
}

// DefaultErrorStatuses are Dev Proxy's: GET 429, 500, 502, 503, 504; writes add 507.
func DefaultErrorStatuses(method string) []int {
	s := []int{429, 500, 502, 503, 504}
	if method != http.MethodGet {
		s = append(s, 507)
	}
	return s
}

// budgetKey is whose budget a request spends: one application in one tenant.
type budgetKey struct{ appID, tenantID string }

type budget struct {
	windowStart   time.Time
	used, writes  int
	notBefore     time.Time // the last Retry-After given
	givenAt       time.Time // when it was given
	lastRetryWait time.Duration
}

// budgetOf is the caller's budget; e.mu must be held.
func (e *Emulator) budgetOf(p Principal) *budget {
	k := budgetKey{p.AppID, p.TenantID}
	b := e.budgets[k]
	if b == nil {
		b = &budget{}
		e.budgets[k] = b
	}
	return b
}

// throttle answers 429, with Retry-After unless this one is drawn to omit it.
func (e *Emulator) throttle(a answer, p Principal, f Faults, wait time.Duration) {
	e.mu.Lock()
	e.throttled++
	e.mu.Unlock()
	if !(f.Omit429RetryAfter > 0 && f.random() < f.Omit429RetryAfter) {
		secs := max(1, int(wait.Seconds()+0.999))
		a.w.Header().Set("Retry-After", strconv.Itoa(secs))
		e.mu.Lock()
		b := e.budgetOf(p)
		b.notBefore, b.givenAt = a.now.Add(time.Duration(secs)*time.Second), a.now
		b.lastRetryWait = time.Duration(secs) * time.Second
		e.mu.Unlock()
	}
	a.fail(http.StatusTooManyRequests, "TooManyRequests", "Too many requests. Retry after the time in the Retry-After header.")
}

// injectFault answers with a fault when one applies; it reports whether it answered.
func (e *Emulator) injectFault(a answer, r *http.Request, p Principal, f Faults) bool {
	f.delay()
	if f.PunishEarlyRetry {
		e.mu.Lock()
		b := e.budgetOf(p)
		// Sent after a Retry-After was given and before it elapsed. The requests of one batch are
		// sent together: one throttled does not make the rest early.
		early := b.givenAt.Before(a.now) && a.now.Before(b.notBefore)
		wait := 2 * b.lastRetryWait
		e.mu.Unlock()
		if early {
			e.mu.Lock()
			e.punished++
			e.mu.Unlock()
			e.throttle(a, p, f, wait)
			return true
		}
	}
	if f.ThrottleRequests > 0 || f.ThrottleWrites > 0 {
		window := f.ThrottleWindow
		if window <= 0 {
			window = 20 * time.Second
		}
		e.mu.Lock()
		now := a.now
		b := e.budgetOf(p)
		if now.Sub(b.windowStart) >= window {
			b.windowStart, b.used, b.writes = now, 0, 0
		}
		b.used++
		if r.Method != http.MethodGet {
			b.writes++
		}
		over := f.ThrottleRequests > 0 && b.used > f.ThrottleRequests ||
			f.ThrottleWrites > 0 && r.Method != http.MethodGet && b.writes > f.ThrottleWrites
		retry := b.windowStart.Add(window).Sub(now)
		e.mu.Unlock()
		if over {
			e.throttle(a, p, f, retry)
			return true
		}
	}
	if f.ErrorRate > 0 && (len(f.Methods) == 0 || slices.Contains(f.Methods, r.Method)) && f.random() < f.ErrorRate {
		statuses := f.ErrorStatuses
		if len(statuses) == 0 {
			statuses = DefaultErrorStatuses(r.Method)
		}
		status := statuses[int(f.random()*float64(len(statuses)))%len(statuses)]
		if status == 429 {
			e.throttle(a, p, f, time.Second)
			return true
		}
		if status == 503 {
			a.w.Header().Set("Retry-After", "1")
		}
		a.fail(status, codeFor(status), "Injected failure: "+http.StatusText(status)+".")
		return true
	}
	return false
}

// delay waits the added latency, if any.
func (f Faults) delay() {
	if f.LatencyMax <= 0 {
		return
	}
	d := f.LatencyMin
	if span := f.LatencyMax - f.LatencyMin; span > 0 {
		d += time.Duration(f.random() * float64(span))
	}
	if f.Sleep != nil {
		f.Sleep(d)
	} else {
		time.Sleep(d)
	}
}

func (f Faults) random() float64 {
	if f.Rand != nil {
		return f.Rand()
	}
	return rand.Float64()
}

// codeFor is the error code Graph writes beside an injected status.
func codeFor(status int) string {
	if code, ok := graphCodes[status]; ok {
		return code
	}
	if status < 500 {
		return "BadRequest"
	}
	return "InternalServerError"
}

var graphCodes = map[int]string{400: "BadRequest", 401: "InvalidAuthenticationToken", 403: "Forbidden", 404: "ResourceNotFound",
	405: "MethodNotAllowed", 409: "Conflict", 412: "PreconditionFailed", 429: "TooManyRequests", 500: "InternalServerError",
	502: "BadGateway", 503: "ServiceUnavailable", 504: "GatewayTimeout", 507: "InsufficientStorage"}

// ParseStatuses reads comma-separated HTTP error statuses, such as "429,503".
func ParseStatuses(s string) ([]int, error) {
	var out []int
	for _, p := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || n < 400 || n > 599 {
			return nil, fmt.Errorf("%q is not an HTTP error status", p)
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// ParseLatency reads a latency, fixed ("20ms") or a range ("10ms-50ms").
func ParseLatency(s string) (time.Duration, time.Duration, error) {
	lo, hi, ranged := strings.Cut(s, "-")
	a, err := time.ParseDuration(strings.TrimSpace(lo))
	if err != nil || a < 0 {
		return 0, 0, fmt.Errorf("%q is not a duration or a range like 10ms-50ms", s)
	}
	if !ranged {
		return a, a, nil
	}
	b, err := time.ParseDuration(strings.TrimSpace(hi))
	if err != nil || b < a {
		return 0, 0, fmt.Errorf("%q is not a range like 10ms-50ms", s)
	}
	return a, b, nil
}

// ParseThrottle reads a budget: "1000/20s" (requests per window) or "100/1000/20s" (writes and
// requests per window, as Intune states its limits; 0 turns one off).
func ParseThrottle(s string) (writes, requests int, window time.Duration, err error) {
	parts := strings.Split(s, "/")
	bad := fmt.Errorf("%q is not a budget like 1000/20s or 100/1000/20s", s)
	if len(parts) < 2 || len(parts) > 3 {
		return 0, 0, 0, bad
	}
	counts := make([]int, len(parts)-1)
	for i, p := range parts[:len(parts)-1] {
		if counts[i], err = strconv.Atoi(p); err != nil || counts[i] < 0 {
			return 0, 0, 0, bad
		}
	}
	if window, err = time.ParseDuration(parts[len(parts)-1]); err != nil || window <= 0 {
		return 0, 0, 0, bad
	}
	if len(counts) == 2 {
		writes = counts[0]
	}
	requests = counts[len(counts)-1]
	if writes == 0 && requests == 0 {
		return 0, 0, 0, bad
	}
	return writes, requests, window, nil
}
