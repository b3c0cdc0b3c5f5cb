// Package graphclient makes the desk's Microsoft Graph calls: typed requests for Autopilot uploads
// and imported device identities, one error type, the retry policy, and the captured exchange
// (token redacted) that result pages print.
package graphclient

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/google/uuid"
	"golang.org/x/oauth2"

	"autopilotdesk/graphclient/devicecsv"
)

// Config configures a Client.
type Config struct {
	Root         string            // Graph root without version, e.g. https://graph.microsoft.com
	Version      string            // v1.0 (default) or beta
	Timeout      time.Duration     // deadline of one call, retries included (default 30 s)
	MaxBody      int64             // response body limit (default 4 MiB)
	Transport    http.RoundTripper // nil: the shared tuned transport
	Now          func() time.Time
	Sleep        func(ctx context.Context, d time.Duration) error
	NewRequestID func() string
	Backoff      time.Duration // first backoff without Retry-After (default 2 s)
	MaxAttempts  int           // default 4
	Observer     func(CallRecord)
}

// CallRecord describes one finished attempt, for logs and metrics.
type CallRecord struct {
	Operation, Method      string
	Status                 int
	Duration               time.Duration
	Attempt                int
	Throttled              bool
	OutcomeUnknown         bool // a write that may or may not have been carried out
	ClientRequestID, ReqID string
	Date                   string // Graph's Date header: with the ids, what Microsoft support asks for
	Err                    error
}

// Client calls Microsoft Graph.
type Client struct {
	cfg   Config
	http  *http.Client
	base  string // root + "/" + version
	walks walks  // the walks through paged collections in progress (see page)
}

var (
	sharedOnce      sync.Once
	sharedTransport *http.Transport
)

// SharedTransport is the one transport all Graph calls share, tuned for connection reuse.
func SharedTransport() *http.Transport {
	sharedOnce.Do(func() {
		sharedTransport = &http.Transport{
			Proxy:                 http.ProxyFromEnvironment,
			DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			ForceAttemptHTTP2:     true,
			MaxIdleConns:          256,
			MaxIdleConnsPerHost:   128,
			IdleConnTimeout:       90 * time.Second,
			TLSHandshakeTimeout:   10 * time.Second,
			ResponseHeaderTimeout: 60 * time.Second,
			ExpectContinueTimeout: time.Second,
		}
	})
	return sharedTransport
}

// New validates the configuration and returns a client.
func New(cfg Config) (*Client, error) {
	u, err := url.Parse(cfg.Root)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" {
		return nil, fmt.Errorf("graphclient: root %q must be an absolute http(s) URL without a path", cfg.Root)
	}
	if cfg.Version == "" {
		cfg.Version = "v1.0"
	}
	if cfg.Version != "v1.0" && cfg.Version != "beta" {
		return nil, fmt.Errorf("graphclient: version %q is not v1.0 or beta", cfg.Version)
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 4 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Sleep == nil {
		cfg.Sleep = sleepCtx
	}
	if cfg.NewRequestID == nil {
		cfg.NewRequestID = uuid.NewString
	}
	if cfg.Backoff <= 0 {
		cfg.Backoff = 2 * time.Second
	}
	if cfg.MaxAttempts <= 0 {
		cfg.MaxAttempts = 4
	}
	tr := cfg.Transport
	if tr == nil {
		tr = SharedTransport()
	}
	root := strings.TrimSuffix(u.Scheme+"://"+u.Host, "/")
	return &Client{cfg: cfg, http: &http.Client{Transport: tr, CheckRedirect: noRedirects}, base: root + "/" + cfg.Version}, nil
}

// Graph never redirects these calls; following one could carry the token elsewhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Root is the configured Graph root; Version the API version.
func (c *Client) Root() string    { return strings.TrimSuffix(c.base, "/"+c.cfg.Version) }
func (c *Client) Version() string { return c.cfg.Version }

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func invalidID(what, id string) error {
	return &Error{Kind: KindInvalidInput, Message: fmt.Sprintf("%s %q is not a GUID, so nothing was sent to Graph.", what, truncate(id, 60))}
}

// call is one logical Graph operation: attempts with the retry policy, all captured.
type call struct {
	op        string
	method    string
	url       string
	body      []byte
	sensitive bool // bodies carry hardware hashes: the captured exchange keeps only their ends
	// rules names the method whose retry rules apply, when they differ from the request's own:
	// a DELETE whose repeat would answer 404 follows a POST's, a $batch of reads a GET's.
	rules string
}

// retryRules is the method whose retry and outcome-unknown rules the call follows.
func (cl call) retryRules() string {
	if cl.rules != "" {
		return cl.rules
	}
	return cl.method
}

// pageLink is an @odata.nextLink to follow, when it stays on the configured Graph root and the
// collection's path. Another is an answer the desk cannot use: something between the desk and
// Graph rewrote it, or the link was made elsewhere.
func (c *Client) pageLink(path, next string) (string, error) {
	if !strings.HasPrefix(next, c.base+path+"?") {
		return "", &Error{Kind: KindBadResponse, Message: "The link to the next page leads outside the configured Microsoft Graph (" + c.base + "), so the desk did not follow it.", Version: c.cfg.Version}
	}
	return next, nil
}

// entity makes a call whose answer is one entity, and returns it decoded.
func entity[T any](ctx context.Context, c *Client, ts oauth2.TokenSource, cl call) (*T, *Exchange, error) {
	var v T
	ex, err := c.do(ctx, ts, cl, &v)
	if err != nil {
		return nil, ex, err
	}
	return &v, ex, nil
}

// do runs a call under the client's deadline and retry policy, decoding a 2xx JSON body into out.
func (c *Client) do(ctx context.Context, ts oauth2.TokenSource, cl call, out any) (*Exchange, error) {
	parentDeadline, hasParentDeadline := ctx.Deadline()
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	deadline := c.cfg.Now().Add(c.cfg.Timeout)
	ex := &Exchange{}
	var lastErr error
	var wait time.Duration
	mayHaveRun := false // an earlier attempt of a write may have been carried out
	for attempt := 1; ; attempt++ {
		if wait > 0 {
			// A wait that would pass the deadline is not started: give up with what we have.
			wait = max(wait, pauseLeft(ctx, c.cfg.Now()))
			if hasParentDeadline && time.Until(parentDeadline) < wait || !c.waitOut(ctx, wait, deadline) {
				return ex, lastErr
			}
		}
		a, resp, body, err := c.attempt(ctx, ts, cl, wait)
		ex.Attempts = append(ex.Attempts, a)
		rec := CallRecord{Operation: cl.op, Method: cl.method, Attempt: attempt, Duration: a.Duration,
			ClientRequestID: a.RequestHeader.Get("client-request-id")}
		if resp != nil {
			rec.Status, rec.ReqID, rec.Date, rec.Throttled = resp.StatusCode, resp.Header.Get("request-id"), resp.Header.Get("Date"), resp.StatusCode == 429
		}
		if err == nil && resp.StatusCode >= 200 && resp.StatusCode < 300 {
			lastErr = nil
			if out != nil && resp.StatusCode != http.StatusNoContent {
				if derr := decodeJSON(resp, body, out); derr != nil {
					lastErr = derr
					if isWrite(cl.retryRules()) {
						// Graph said it did it: the write is never to be sent again as if it failed.
						lastErr, ex.Outcome, rec.OutcomeUnknown = doneUnread(resp, derr, c.cfg.Version), OutcomeUnknown, true
					}
				}
			}
			rec.Err = lastErr
			c.observe(rec)
			return ex, lastErr
		}
		if err == nil && resp.StatusCode == http.StatusNotFound && mayHaveRun && cl.retryRules() == http.MethodDelete {
			// The delete whose answer was lost was carried out: what it deleted is gone.
			ex.Outcome = OutcomeDeletedEarlier
			c.observe(rec)
			return ex, nil
		}
		if err != nil {
			lastErr = transportError(ctx, err, c.cfg.Version)
		} else {
			ge := parseError(resp, body, c.cfg.Version)
			blame(ge, a.granted, cl.method)
			lastErr = ge
			if notice, ok := ctx.Value(throttleNoticeKey{}).(func(time.Duration)); ok && ge.StatusCode == http.StatusTooManyRequests && ge.RetryAfter > 0 {
				notice(ge.RetryAfter)
			}
		}
		rec.Err = lastErr
		rec.OutcomeUnknown = isWrite(cl.retryRules()) && outcomeUnknown(resp, lastErr)
		mayHaveRun = mayHaveRun || rec.OutcomeUnknown
		c.observe(rec)
		retry, next := c.retryable(cl.retryRules(), resp, lastErr, attempt)
		if !retry {
			if isWrite(cl.retryRules()) && outcomeUnknown(resp, lastErr) {
				ge := lastErr.(*Error)
				ex.Outcome = OutcomeUnknown
				return ex, &Error{Kind: KindOutcomeUnknown, StatusCode: ge.StatusCode, Code: ge.Code, Message: ge.Message,
					RequestID: ge.RequestID, ClientRequestID: ge.ClientRequestID, Date: ge.Date, Version: c.cfg.Version, Cause: ge}
			}
			return ex, lastErr
		}
		wait = next
	}
}

type throttleNoticeKey struct{}

// OnThrottled returns ctx carrying notice, which the client calls as soon as Graph answers a call
// made with ctx 429 with a Retry-After, before it waits that out itself: a caller can then hold
// its other writes to the tenant at once, not only once the call has given up.
func OnThrottled(ctx context.Context, notice func(retryAfter time.Duration)) context.Context {
	return context.WithValue(ctx, throttleNoticeKey{}, notice)
}

func (c *Client) observe(r CallRecord) {
	if c.cfg.Observer != nil {
		c.cfg.Observer(r)
	}
}

// isWrite reports whether a method changes something, so that a lost answer leaves its outcome
// unknown. (A DELETE is also idempotent: it is sent again, and a 404 then means it was done.)
func isWrite(method string) bool {
	return method == http.MethodPost || method == http.MethodPatch || method == http.MethodDelete
}

// outcomeUnknown: a write that timed out or got 500/502/504 may have been executed.
func outcomeUnknown(resp *http.Response, err error) bool {
	ge, ok := err.(*Error)
	if !ok {
		return false
	}
	if ge.Kind == KindTimeout || ge.Kind == KindNetwork && resp == nil && ge.sent {
		return true
	}
	switch ge.StatusCode {
	case 500, 502, 504:
		return true
	}
	return false
}

// retryable applies the policy: GET/DELETE on 429/503/504 and connection errors; writes only on
// 429 and on 503 carrying Retry-After. Returns how long to wait first.
func (c *Client) retryable(method string, resp *http.Response, err error, attempt int) (bool, time.Duration) {
	if attempt >= c.cfg.MaxAttempts {
		return false, 0
	}
	ge, _ := err.(*Error)
	if ge == nil {
		return false, 0
	}
	status := ge.StatusCode
	idempotent := method == http.MethodGet || method == http.MethodDelete
	switch {
	case status == 429:
	case status == 503 && (idempotent || ge.RetryAfter > 0):
	case status == 504 && idempotent:
	case ge.Kind == KindNetwork && (idempotent || !ge.sent):
	default:
		return false, 0
	}
	if ge.RetryAfter > 0 {
		return true, ge.RetryAfter
	}
	return true, c.backoff(attempt)
}

// backoff is exponential with jitter: a random wait between half and all of base·2^(attempt-1),
// so a retry never follows at once (Graph asks for the first one after a few seconds).
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.cfg.Backoff << (attempt - 1)
	n, err := rand.Int(rand.Reader, big.NewInt(int64(ceiling)))
	if err != nil {
		return ceiling
	}
	return c.cfg.Backoff/2 + time.Duration(n.Int64())/2
}

func (c *Client) attempt(ctx context.Context, ts oauth2.TokenSource, cl call, waited time.Duration) (Attempt, *http.Response, []byte, error) {
	start := c.cfg.Now()
	crid := c.cfg.NewRequestID()
	a := Attempt{Method: cl.method, URL: cl.url, RequestHeader: http.Header{}, RequestBody: cl.body, RequestLength: len(cl.body), Start: start, WaitBefore: waited}
	if cl.sensitive {
		a.RequestBody = redactHashes(cl.body)
	}
	a.RequestHeader.Set("Authorization", "Bearer <redacted>")
	a.RequestHeader.Set("Accept", "application/json")
	a.RequestHeader.Set("client-request-id", crid)
	if cl.body != nil {
		a.RequestHeader.Set("Content-Type", "application/json")
	}
	tok, err := ts.Token()
	if err == nil {
		a.granted, _ = tok.Extra("scope").(string)
	}
	if err != nil {
		a.Err = "could not get an access token"
		return a, nil, nil, &Error{Kind: KindUnauthorized, Message: "The desk could not get an access token for you.", Cause: err, Version: c.cfg.Version}
	}
	var body io.Reader
	if cl.body != nil {
		body = bytes.NewReader(cl.body)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, cl.url, body)
	if err != nil {
		return a, nil, nil, &Error{Kind: KindInvalidInput, Message: "The request could not be built.", Cause: err}
	}
	req.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	for _, k := range []string{"Accept", "client-request-id", "Content-Type"} {
		if v := a.RequestHeader.Get(k); v != "" {
			req.Header[http.CanonicalHeaderKey(k)] = []string{v}
		}
	}
	req.Header["client-request-id"] = []string{crid}
	delete(req.Header, "Client-Request-Id")
	resp, err := c.http.Do(req)
	a.Duration = c.cfg.Now().Sub(start)
	if err != nil {
		a.Err = noAnswer(err, a.Duration)
		return a, nil, nil, err
	}
	defer resp.Body.Close()
	raw, rerr := io.ReadAll(io.LimitReader(resp.Body, c.cfg.MaxBody+1))
	a.Duration = c.cfg.Now().Sub(start)
	a.Proto, a.StatusCode, a.Status = resp.Proto, resp.StatusCode, resp.Status
	a.ResponseHeader = keepHeaders(resp.Header)
	if resp.ContentLength >= 0 && resp.Header.Get("Content-Length") != "" {
		a.ResponseHeader.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10)) // as Graph sent it
	}
	a.ResponseBody = displayBody(resp.Header.Get("Content-Type"), raw, c.cfg.MaxBody)
	if cl.sensitive {
		a.ResponseBody = redactHashes(a.ResponseBody)
	}
	if rerr != nil {
		return a, resp, raw, &Error{Kind: KindBadResponse, StatusCode: resp.StatusCode, Message: "Graph's answer was cut off before it was complete.", Cause: rerr, Version: c.cfg.Version}
	}
	if int64(len(raw)) > c.cfg.MaxBody {
		return a, resp, raw, &Error{Kind: KindBadResponse, StatusCode: resp.StatusCode,
			Message: fmt.Sprintf("Graph's answer was larger than the %d bytes the desk accepts.", c.cfg.MaxBody), Version: c.cfg.Version,
			RequestID: resp.Header.Get("request-id"), ClientRequestID: resp.Header.Get("client-request-id"), Date: resp.Header.Get("Date")}
	}
	return a, resp, raw, nil
}

// noAnswer says in words why an attempt got no answer, as its exchange shows it.
func noAnswer(err error, waited time.Duration) string {
	var ne net.Error
	var op *net.OpError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("no answer within the desk's deadline: it waited %.1f s", waited.Seconds())
	case errors.Is(err, context.Canceled):
		return "no answer: the desk stopped waiting, as the page's request was cancelled"
	case errors.As(err, &op) && op.Op == "dial":
		return "no connection: the desk could not connect to Microsoft Graph (" + redactErr(err) + ")"
	}
	return "no answer: the connection failed (" + redactErr(err) + ")"
}

// redactErr keeps a transport error's message but never a URL query or credentials.
func redactErr(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Op + ": " + ue.Err.Error()
	}
	return err.Error()
}

func transportError(ctx context.Context, err error, version string) error {
	if ge, ok := err.(*Error); ok {
		return ge
	}
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
		return &Error{Kind: KindTimeout, Message: "Microsoft Graph did not answer in time.", Cause: err, Version: version, sent: true}
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return &Error{Kind: KindTimeout, Message: "Microsoft Graph did not answer in time.", Cause: err, Version: version, sent: true}
	}
	var op *net.OpError
	sent := !(errors.As(err, &op) && op.Op == "dial")
	return &Error{Kind: KindNetwork, Message: "The desk could not reach Microsoft Graph: " + redactErr(err), Cause: err, Version: version, sent: sent}
}

var keptHeaders = []string{"Content-Type", "request-id", "client-request-id", "Date", "Retry-After", "WWW-Authenticate", "x-ms-ags-diagnostic", "Location", "OData-Version"}

func keepHeaders(h http.Header) http.Header {
	out := http.Header{}
	for _, k := range keptHeaders {
		if v := h.Values(k); len(v) > 0 {
			out[http.CanonicalHeaderKey(k)] = append([]string(nil), v...)
		}
	}
	return out
}

// displayBody is the body as pages print it: indented JSON, or a short note for anything else.
func displayBody(contentType string, raw []byte, limit int64) []byte {
	if len(raw) == 0 {
		return nil
	}
	if int64(len(raw)) > limit {
		return []byte(fmt.Sprintf("(%d+ bytes, larger than the desk accepts; not shown)", limit))
	}
	var buf bytes.Buffer
	if json.Valid(raw) && json.Indent(&buf, raw, "", "  ") == nil {
		return buf.Bytes()
	}
	ct := contentType
	if ct == "" {
		ct = "no content type"
	}
	return []byte(fmt.Sprintf("(%d bytes of %s that are not JSON; not shown)", len(raw), truncate(ct, 60)))
}

const (
	notJSON = "Graph answered with something that is not JSON, so its result could not be read."
	noBody  = "Graph's answer had no body, so its result could not be read."
)

func decodeJSON(resp *http.Response, raw []byte, out any) *Error {
	if !json.Valid(raw) {
		msg := notJSON
		if len(bytes.TrimSpace(raw)) == 0 {
			msg = noBody
		}
		return &Error{Kind: KindBadResponse, StatusCode: resp.StatusCode, Message: msg,
			RequestID: resp.Header.Get("request-id"), ClientRequestID: resp.Header.Get("client-request-id"), Date: resp.Header.Get("Date")}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return &Error{Kind: KindBadResponse, StatusCode: resp.StatusCode, Message: "Graph's answer did not have the expected shape.", Cause: err,
			RequestID: resp.Header.Get("request-id"), ClientRequestID: resp.Header.Get("client-request-id"), Date: resp.Header.Get("Date")}
	}
	return nil
}

// doneUnread is a write Graph answered with a 2xx whose body could not be read: Graph carried it
// out, so it is KindOutcomeUnknown (with that 2xx status), never a failure to send again.
func doneUnread(resp *http.Response, unread *Error, version string) *Error {
	why := "its answer did not have the expected shape"
	switch {
	case unread.Message == noBody:
		why = "its answer had no body"
	case unread.Message == notJSON:
		why = "its answer was not JSON"
	}
	return &Error{Kind: KindOutcomeUnknown, StatusCode: resp.StatusCode, Version: version,
		Message:   "Graph answered " + resp.Status + ", so it carried out the request, but " + why + ", so the desk could not read the result.",
		RequestID: resp.Header.Get("request-id"), ClientRequestID: resp.Header.Get("client-request-id"), Date: resp.Header.Get("Date"), Cause: unread}
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// jsonBody encodes v with two-space indentation, as Microsoft's docs print request bodies.
func jsonBody(v any) []byte {
	b, _ := json.MarshalIndent(v, "", "  ")
	return b
}

// redactHashes replaces every "hardwareIdentifier" value in a JSON body with its ends
// (devicecsv.Truncate, the desk's one rule), so an exchange kept for display never holds a whole
// hardware hash. It rewrites the text rather than decoding it (an import body is megabytes):
// inside a JSON string every quote is escaped, so the key in quotes followed by a colon is always
// a real key.
func redactHashes(body []byte) []byte {
	key := []byte(`"hardwareIdentifier"`)
	if !bytes.Contains(body, key) {
		return body
	}
	out := make([]byte, 0, len(body)/4)
	rest := body
	for {
		i := bytes.Index(rest, key)
		if i < 0 {
			return append(out, rest...)
		}
		j := i + len(key)
		j += countSpace(rest[j:])
		if j >= len(rest) || rest[j] != ':' {
			out, rest = append(out, rest[:i+len(key)]...), rest[i+len(key):]
			continue
		}
		j++
		j += countSpace(rest[j:])
		end := -1
		if j < len(rest) && rest[j] == '"' {
			end = stringEnd(rest[j+1:])
		}
		if end < 0 {
			out, rest = append(out, rest[:j]...), rest[j:]
			continue
		}
		out = append(out, rest[:j+1]...)
		out = append(out, devicecsv.Truncate(string(rest[j+1:j+1+end]))...)
		rest = rest[j+1+end:]
	}
}

// stringEnd is the index of the quote that ends a JSON string whose opening quote came just
// before b, or -1.
func stringEnd(b []byte) int {
	for i := 0; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i
		}
	}
	return -1
}

func countSpace(b []byte) int {
	n := 0
	for n < len(b) && (b[n] == ' ' || b[n] == '\t' || b[n] == '\n' || b[n] == '\r') {
		n++
	}
	return n
}
