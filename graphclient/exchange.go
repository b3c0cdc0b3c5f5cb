package graphclient

import (
	"cmp"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// OutcomeUnknown marks an exchange whose write may or may not have been carried out.
const OutcomeUnknown = "outcome-unknown"

// OutcomeDeletedEarlier marks a delete whose answer was lost and that was sent again: Graph then
// answered 404, because the first attempt had deleted it.
const OutcomeDeletedEarlier = "deleted-earlier"

// Exchange is every attempt of one Graph operation, captured for display with the token redacted.
type Exchange struct {
	Attempts       []Attempt       `json:"attempts"`
	Outcome        string          `json:"outcome,omitempty"`
	Reconciliation *Reconciliation `json:"reconciliation,omitempty"`
}

// Reconciliation is what the desk found when it looked for a write whose outcome was unknown.
//
// A create that named its id is looked up by it, and Found is the upload with that id. One that
// did not, or whose id Graph does not have (Graph assigns the ids), is looked for among the
// uploads with its status: Matches are those with its date and
// status, and which of them, if any, is the one sent is for the caller to judge (Judge), as only
// it knows which uploads it created before.
type Reconciliation struct {
	Looked  bool     `json:"looked"`
	Found   *Upload  `json:"found,omitempty"`
	Matches []Upload `json:"matches,omitempty"`
	// Partial: the uploads with this status were more than the look reads, so a miss proves nothing.
	Partial bool   `json:"partial,omitempty"`
	Failed  *Error `json:"failed,omitempty"` // the look itself failed
	// Accepted is the 2xx status Graph answered a create whose answer could not be read or did
	// not name the upload: it was created, whatever the look finds.
	Accepted int    `json:"accepted,omitempty"`
	Err      string `json:"error,omitempty"` // the earlier stored format: the failed look in words

	// The caller's judgement (Judge): how many matches are uploads it had created before, and,
	// when nothing was found, the time until which Graph may still not list a new upload.
	Known    int       `json:"known,omitempty"`
	NotUntil time.Time `json:"notUntil,omitzero"`
}

// Judge settles a look without an id: a match that is not among the uploads the caller created
// before (recorded) is the one sent, when it is the only such match. A miss before settles
// (Graph may answer 404, or not list an upload, for a moment after creating it) proves nothing
// yet; NotUntil says until when.
// A nil recorded means the caller cannot say: then no match is taken for the one sent.
func (r *Reconciliation) Judge(recorded map[string]bool, settles, now time.Time) {
	if !r.Looked || r.Failed != nil || r.Found != nil {
		return
	}
	r.Known = 0
	var unknown []int
	for i, u := range r.Matches {
		if recorded[u.ID] {
			r.Known++
		} else {
			unknown = append(unknown, i)
		}
	}
	switch {
	case len(unknown) == 1 && recorded != nil:
		r.Found = &r.Matches[unknown[0]]
	case len(unknown) == 0 && now.Before(settles):
		r.NotUntil = settles
	}
}

// Undecided is how many matches the caller has no record of creating when none was taken for
// the one sent: it cannot tell whether one of them is.
func (r *Reconciliation) Undecided() int {
	if r.Found != nil {
		return 0
	}
	return len(r.Matches) - r.Known
}

// NotCreated reports whether the look shows that the write was not carried out: it looked in
// full, late enough, and found nothing that could be it (and Graph had not answered that it was).
func (r *Reconciliation) NotCreated() bool {
	return r.Looked && r.Accepted == 0 && r.Failed == nil && r.Err == "" && r.Found == nil && !r.Partial && r.NotUntil.IsZero() && len(r.Matches) == r.Known
}

// Attempt is one HTTP request and its response.
type Attempt struct {
	Method         string        `json:"method"`
	URL            string        `json:"url"`
	RequestHeader  http.Header   `json:"requestHeader"`
	RequestBody    []byte        `json:"requestBody,omitempty"`   // as shown: whole hashes shortened
	RequestLength  int           `json:"requestLength,omitempty"` // the bytes of the body actually sent
	Proto          string        `json:"proto,omitempty"`
	StatusCode     int           `json:"statusCode,omitempty"`
	Status         string        `json:"status,omitempty"`
	ResponseHeader http.Header   `json:"responseHeader,omitempty"`
	ResponseBody   []byte        `json:"responseBody,omitempty"`
	Err            string        `json:"error,omitempty"`
	Start          time.Time     `json:"start"`
	Duration       time.Duration `json:"duration"`
	WaitBefore     time.Duration `json:"waitBefore,omitempty"`

	granted string // the scope the token's answer granted, when it said: never kept or shown
}

// Last is the final attempt, or nil.
func (e *Exchange) Last() *Attempt {
	if e == nil || len(e.Attempts) == 0 {
		return nil
	}
	return &e.Attempts[len(e.Attempts)-1]
}

// headerOrder prints headers the way Microsoft's docs do: the important ones first.
var headerOrder = map[string]int{"Authorization": 0, "Accept": 1, "Content-Type": 2, "Content-Length": 3, "Client-Request-Id": 4, "Request-Id": 5, "Date": 6}

func writeHeaders(b *strings.Builder, h http.Header) {
	keys := make([]string, 0, len(h))
	for k := range h {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		oi, iok := headerOrder[http.CanonicalHeaderKey(keys[i])]
		oj, jok := headerOrder[http.CanonicalHeaderKey(keys[j])]
		if iok != jok {
			return iok
		}
		if oi != oj {
			return oi < oj
		}
		return keys[i] < keys[j]
	})
	for _, k := range keys {
		for _, v := range h[k] {
			fmt.Fprintf(b, "%s: %s\n", displayName(k), v)
		}
	}
}

// displayName writes Graph's lower-case id headers as Graph spells them.
func displayName(k string) string {
	switch strings.ToLower(k) {
	case "client-request-id", "request-id", "x-ms-ags-diagnostic":
		return strings.ToLower(k)
	}
	return http.CanonicalHeaderKey(k)
}

// RequestText prints the request as Microsoft's docs do: request line, headers, blank line, body.
func (a Attempt) RequestText() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s\n", a.Method, a.URL)
	h := a.RequestHeader
	if len(a.RequestBody) > 0 {
		// Beside Content-Type, as the docs print it, rather than after Graph's ids.
		if h = h.Clone(); h == nil {
			h = http.Header{}
		}
		h.Set("Content-Length", strconv.Itoa(cmp.Or(a.RequestLength, len(a.RequestBody))))
	}
	writeHeaders(&b, h)
	if len(a.RequestBody) > 0 {
		fmt.Fprintf(&b, "\n%s", a.RequestBody)
	}
	return strings.TrimRight(b.String(), "\n")
}

// ResponseText prints the status line, the kept headers and the body.
func (a Attempt) ResponseText() string {
	if a.StatusCode == 0 {
		if a.Err != "" {
			return "(" + a.Err + ")"
		}
		return "(no response)"
	}
	var b strings.Builder
	proto := a.Proto
	if proto == "" {
		proto = "HTTP/1.1"
	}
	fmt.Fprintf(&b, "%s %s\n", proto, a.Status)
	writeHeaders(&b, a.ResponseHeader)
	if len(a.ResponseBody) > 0 {
		fmt.Fprintf(&b, "\n%s", a.ResponseBody)
	}
	return strings.TrimRight(b.String(), "\n")
}

func (e *Exchange) request() *Attempt {
	if e == nil || len(e.Attempts) == 0 {
		return nil
	}
	return &e.Attempts[0]
}

// AsCurl is the request as a curl command; the token is a shell variable the reader fills in.
func (e *Exchange) AsCurl() string {
	a := e.request()
	if a == nil {
		return ""
	}
	var b strings.Builder
	fmt.Fprintf(&b, "curl -X %s %s \\\n  -H \"Authorization: Bearer $TOKEN\" \\\n  -H \"Accept: application/json\"", a.Method, shellQuote(a.URL))
	if len(a.RequestBody) > 0 {
		fmt.Fprintf(&b, " \\\n  -H \"Content-Type: application/json\" \\\n  --data-raw %s", shellQuote(string(a.RequestBody)))
	}
	return b.String()
}

// AsPowerShell is the request for the Microsoft Graph PowerShell SDK (which brings its own token).
func (e *Exchange) AsPowerShell() string {
	a := e.request()
	if a == nil {
		return ""
	}
	var b strings.Builder
	b.WriteString("Connect-MgGraph -Scopes \"DeviceManagementServiceConfig.ReadWrite.All\"\n")
	if len(a.RequestBody) > 0 {
		fmt.Fprintf(&b, "$body = @'\n%s\n'@\n", a.RequestBody)
		fmt.Fprintf(&b, "Invoke-MgGraphRequest -Method %s -Uri %s -Body $body -ContentType \"application/json\"", a.Method, psQuote(a.URL))
	} else {
		fmt.Fprintf(&b, "Invoke-MgGraphRequest -Method %s -Uri %s", a.Method, psQuote(a.URL))
	}
	return b.String()
}

// AsHTTP is the raw HTTP request with the token redacted.
func (e *Exchange) AsHTTP() string {
	a := e.request()
	if a == nil {
		return ""
	}
	return a.RequestText()
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
func psQuote(s string) string    { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// Joined is the last of several exchanges of one operation, with the attempts of every one
// before it first; nil ones are passed over.
func Joined(exs ...*Exchange) *Exchange {
	var out *Exchange
	var attempts []Attempt
	for _, ex := range exs {
		if ex == nil {
			continue
		}
		attempts = append(attempts, ex.Attempts...)
		c := *ex
		out = &c
	}
	if out != nil {
		out.Attempts = attempts
	}
	return out
}

// WithRenewal runs call with ts. Graph refuses an expired or revoked token with 401 before it
// runs anything, so after such a refusal the token is renewed once and the call sent again; both
// attempts stay in the exchange. renew is given the token Graph refused.
func WithRenewal[T any](ts oauth2.TokenSource, renew func(refused oauth2.TokenSource) (oauth2.TokenSource, error),
	call func(oauth2.TokenSource) (T, *Exchange, error)) (T, *Exchange, error) {
	v, ex, err := call(ts)
	if ge, ok := AsError(err); !ok || ge.Kind != KindUnauthorized {
		return v, ex, err
	}
	var zero T
	if ts, err = renew(ts); err != nil {
		return zero, ex, err
	}
	v, again, err := call(ts)
	return v, Joined(ex, again), err
}
