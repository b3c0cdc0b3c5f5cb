package graphclient

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"autopilotdesk/graphclient/guid"
	"autopilotdesk/graphclient/jsonbatch"
)

// BatchLimit is how many requests Graph takes in one JSON batch.
const BatchLimit = jsonbatch.Limit

// BatchRequest is one request inside a JSON batch.
type BatchRequest struct {
	ID      string            // unique within the batch
	Method  string            // GET, POST, PATCH or DELETE
	URL     string            // relative to the version root, e.g. /deviceManagement/…?$filter=…
	Headers map[string]string // Content-Type is added for a body
	Body    json.RawMessage   // a JSON value, or nil
}

// BatchResponse is Graph's answer to one request of a batch.
type BatchResponse struct {
	ID      string
	Status  int
	Headers http.Header
	Body    json.RawMessage
	// Err is the answer as the same *Error a standalone call would give, for a status outside
	// 2xx, or why no answer came back for this request.
	Err error
	// Sent counts how often the request went out: more than once after an inner 429.
	Sent int
}

// validBatchURL accepts only a path under the version root with an optional query: nothing
// inside a batch can name another host or climb out of the version.
func validBatchURL(u string) bool {
	path, _, _ := strings.Cut(u, "?")
	return strings.HasPrefix(u, "/") && !strings.HasPrefix(u, "//") && len(u) <= 2048 &&
		!strings.ContainsAny(u, "\\#") && !strings.ContainsFunc(u, func(r rune) bool { return r <= 0x20 || r == 0x7f }) &&
		!strings.Contains("/"+path+"/", "/../") && !strings.Contains("/"+path+"/", "/./") && !strings.Contains(strings.ToLower(path), "$batch")
}

func checkBatch(reqs []BatchRequest) error {
	if len(reqs) == 0 || len(reqs) > BatchLimit {
		return &Error{Kind: KindInvalidInput, Message: fmt.Sprintf("A batch holds between 1 and %d requests.", BatchLimit)}
	}
	seen := map[string]bool{}
	for _, r := range reqs {
		switch {
		case r.ID == "" || seen[r.ID] || len(r.ID) > 64:
			return &Error{Kind: KindInvalidInput, Message: "Every request in a batch needs its own id."}
		case r.Method != http.MethodGet && r.Method != http.MethodPost && r.Method != http.MethodPatch && r.Method != http.MethodDelete:
			return &Error{Kind: KindInvalidInput, Message: "A batch request must be GET, POST, PATCH or DELETE."}
		case !validBatchURL(r.URL):
			return &Error{Kind: KindInvalidInput, Message: "A batch request's address must be a path under the Graph version, such as /deviceManagement/…"}
		case r.Body != nil && !json.Valid(r.Body):
			return &Error{Kind: KindInvalidInput, Message: "A batch request's body must be JSON."}
		}
		seen[r.ID] = true
	}
	return nil
}

// Batch sends up to 20 requests in one POST {root}/{version}/$batch and matches Graph's answers
// to them by id, whatever their order. Each inner answer outside 2xx becomes the same *Error a
// standalone call would give. An inner request that Graph throttled (429), or that failed in a
// way the client's retry rules allow for its method (a DELETE follows a POST's; a GET also goes
// again after a 500 or 502), is sent again after the wait its answer asks for or a backoff, as
// long as the wait ends before the deadline; the others are never re-sent. A notice OnThrottled
// put in ctx hears of the longest Retry-After of the inner 429s as soon as they come. Inside a
// read that sends several batches at once (inBatches), the throttled requests also wait for the
// Retry-After the read's other batches heard, and go again one batch at a time.
// The batch POST itself is retried like a GET when every request in it reads, and like a POST
// otherwise (never blindly after a timeout or a 500/502/504).
//
// The responses come in the order of reqs. A non-nil error means the batch as a whole failed;
// requests without an answer then carry that error. Every POST is returned as an exchange.
func (c *Client) Batch(ctx context.Context, ts oauth2.TokenSource, reqs []BatchRequest) ([]BatchResponse, []*Exchange, error) {
	if err := checkBatch(reqs); err != nil {
		return nil, nil, err
	}
	deadline := c.cfg.Now().Add(c.cfg.Timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	out := make([]BatchResponse, len(reqs))
	index := map[string]int{}
	for i, r := range reqs {
		out[i].ID = r.ID
		index[r.ID] = i
	}
	pending := make([]int, len(reqs))
	for i := range pending {
		pending[i] = i
	}
	var exchanges []*Exchange
	var wait time.Duration
	resent := func() {}
	var answeredAt time.Time // when the wait began: a turn to resend may come after part of it
	for {
		if wait > 0 {
			done := resending(ctx) // after a 429, the batches of a read go again one at a time
			if !c.waitOut(ctx, wait-c.cfg.Now().Sub(answeredAt), deadline) {
				done()
				return out, exchanges, nil // the throttled requests keep their 429
			}
			resent = done
		}
		items, rules := batchItems(reqs, pending)
		for _, i := range pending {
			out[i].Sent++
		}
		var answer jsonbatch.Answer
		ex, err := c.do(ctx, ts, call{op: "batch", method: http.MethodPost, url: c.base + "/$batch",
			body: jsonBody(jsonbatch.Batch{Requests: items}), sensitive: true, rules: rules}, &answer)
		resent()
		resent = func() {}
		if ex != nil {
			exchanges = append(exchanges, ex)
		}
		if err != nil {
			if ge, ok := AsError(err); ok && ge.Kind == KindOutcomeUnknown && ge.StatusCode/100 == 2 {
				// Graph accepted the batch, which says nothing of what became of each request.
				err = &Error{Kind: KindOutcomeUnknown, Message: "Graph accepted the batch, but its answer could not be read, so whether it carried out each request is unknown.",
					RequestID: ge.RequestID, ClientRequestID: ge.ClientRequestID, Date: ge.Date, Version: ge.Version, Cause: ge}
			}
			for _, i := range pending {
				out[i].Status, out[i].Headers, out[i].Body, out[i].Err = 0, nil, nil, err
			}
			return out, exchanges, err
		}
		answered := map[int]bool{}
		for _, a := range answer.Responses {
			i, ok := index[a.ID]
			if !ok || answered[i] {
				continue
			}
			answered[i] = true
			resp := &out[i]
			resp.Status, resp.Body, resp.Err = a.Status, a.Body, nil
			resp.Headers = http.Header{}
			for k, v := range a.Headers {
				resp.Headers.Set(k, v)
			}
			if a.Status < 200 || a.Status > 299 {
				resp.Err = c.innerError(a.Status, resp.Headers, a.Body, ex, reqs[i].Method)
			}
		}
		var again []int
		wait, answeredAt = 0, c.cfg.Now()
		throttledFor := time.Duration(0)
		for _, i := range pending {
			if !answered[i] {
				out[i].Status, out[i].Headers, out[i].Body = 0, nil, nil
				out[i].Err = c.unanswered(reqs[i], ex)
				continue
			}
			if out[i].Err == nil {
				continue
			}
			if ge, ok := AsError(out[i].Err); ok && ge.StatusCode == http.StatusTooManyRequests {
				throttledFor = max(throttledFor, ge.RetryAfter)
			}
			if retry, next := c.retryableInner(reqs[i].Method, out[i].Err, out[i].Sent); retry {
				again = append(again, i)
				wait = max(wait, next)
			}
		}
		if notice, ok := ctx.Value(throttleNoticeKey{}).(func(time.Duration)); ok && throttledFor > 0 {
			notice(throttledFor) // before waiting it out: the caller holds its other writes at once
		}
		if len(again) == 0 {
			return out, exchanges, nil
		}
		pending = again
	}
}

// unanswered is a request Graph accepted in a batch but whose answer said nothing of it. A read
// can simply be read again; a write may have been carried out, so its outcome is unknown, as for
// a write sent alone whose answer was lost (it is read back, never sent again).
func (c *Client) unanswered(r BatchRequest, ex *Exchange) *Error {
	e := &Error{Kind: KindBadResponse, Message: fmt.Sprintf("Graph's batch answer held nothing for request %s.", truncate(r.ID, 20)), Version: c.cfg.Version}
	if r.Method != http.MethodGet {
		e.Kind = KindOutcomeUnknown
		e.Message = fmt.Sprintf("Graph accepted the batch, but its answer held nothing for request %s, so whether Graph carried it out is unknown.", truncate(r.ID, 20))
	}
	if a := ex.Last(); a != nil {
		e.RequestID, e.ClientRequestID, e.Date = a.ResponseHeader.Get("request-id"), a.RequestHeader.Get("client-request-id"), a.ResponseHeader.Get("Date")
	}
	return e
}

// retryableInner says whether an inner request that failed goes again, and after how long: by the
// client's retry rules for its method, except that a DELETE sent again answers 404 for one that
// worked (never after a 504), and that a GET, which changes nothing, is also read again after a
// 500 or 502 (a read of 20 devices fails otherwise whenever one of them hits passing trouble).
func (c *Client) retryableInner(method string, err error, sent int) (bool, time.Duration) {
	switch method {
	case http.MethodDelete:
		return c.retryable(http.MethodPost, nil, err, sent)
	case http.MethodGet:
		if ge, ok := AsError(err); ok && (ge.StatusCode == http.StatusInternalServerError || ge.StatusCode == http.StatusBadGateway) && sent < c.cfg.MaxAttempts {
			if ge.RetryAfter > 0 {
				return true, ge.RetryAfter
			}
			return true, c.backoff(sent)
		}
	}
	return c.retryable(method, nil, err, sent)
}

// batchItems are the pending requests as a batch carries them, and the retry rules of the
// batch POST: a GET's when every request reads, a POST's otherwise.
func batchItems(reqs []BatchRequest, pending []int) (items []jsonbatch.Request, rules string) {
	items = make([]jsonbatch.Request, len(pending))
	rules = http.MethodGet
	for k, i := range pending {
		r := reqs[i]
		items[k] = jsonbatch.Request{ID: r.ID, Method: r.Method, URL: r.URL, Headers: r.Headers, Body: r.Body}
		if r.Body != nil {
			h := map[string]string{"Content-Type": "application/json"}
			for name, v := range r.Headers {
				h[name] = v
			}
			items[k].Headers = h
		}
		if r.Method != http.MethodGet {
			rules = http.MethodPost
		}
	}
	return items, rules
}

// innerError parses one inner answer like a standalone answer, a 403 blamed on the permission or
// the Intune role by the scopes the batch's token was granted; ids Graph left out of it are taken
// from the batch's own answer, which is what support can trace.
func (c *Client) innerError(status int, h http.Header, body json.RawMessage, ex *Exchange, method string) *Error {
	resp := &http.Response{StatusCode: status, Status: strconv.Itoa(status) + " " + http.StatusText(status), Header: h}
	e := parseError(resp, body, c.cfg.Version)
	if a := ex.Last(); a != nil {
		blame(e, a.granted, method)
		if e.RequestID == "" {
			e.RequestID = a.ResponseHeader.Get("request-id")
		}
		if e.ClientRequestID == "" {
			e.ClientRequestID = a.RequestHeader.Get("client-request-id")
		}
		if e.Date == "" {
			e.Date = a.ResponseHeader.Get("Date")
		}
	}
	return e
}

// SerialSources says where LookUpSerials looks for serial numbers.
type SerialSources int

const (
	// InRegistered looks among registered Autopilot devices (windowsAutopilotDeviceIdentities).
	InRegistered SerialSources = 1 << iota
	// InImported looks among imported device identities, the import's staging list.
	InImported
)

// SerialLookup is what LookUpSerials found for one serial number.
type SerialLookup struct {
	Serial     string
	Registered []AutopilotDevice // registered devices with exactly this serial (see SameSerial)
	Imported   []DeviceIdentity  // imported identities with exactly this serial
	// Err says why this serial could not be looked up (an *Error); nothing is known about it then.
	Err error
}

// Found reports whether the serial is registered or waiting among the imported identities.
func (l SerialLookup) Found() bool { return len(l.Registered) > 0 || len(l.Imported) > 0 }

// lookupTarget is one inner request of a look-up: which serial, in which collection.
type lookupTarget struct {
	serial int
	source SerialSources
}

// LookUpSerials looks serial numbers up in the tenant with JSON batches of at most 20 requests:
// one request per serial and collection, so 500 serials take 25 batch POSTs among registered
// devices alone and 50 among registered devices and imported identities, plus re-sends of
// requests Graph throttled (each waits for its own Retry-After). Each request searches with
// contains(serialNumber,…) and keeps exact matches only; the rare search that matches more than
// a page reads its further pages on its own.
//
// The batches go as inBatches sends them: the first alone, then a few at a time, one after
// another again once Graph throttles one. The results come in the order of serials. A serial
// that is not a valid search gets its own Err and is not sent. A batch that fails as a whole
// stops the look-up (no further batch starts; those already in flight keep their answers), and so does one whose
// throttled requests Graph still asks to wait for when the call's time is up (the next batch
// would come before their Retry-After): the serials not yet answered carry that error, which is
// also returned.
func (c *Client) LookUpSerials(ctx context.Context, ts oauth2.TokenSource, serials []string, where SerialSources) ([]SerialLookup, []*Exchange, error) {
	if where&(InRegistered|InImported) == 0 {
		return nil, nil, &Error{Kind: KindInvalidInput, Message: "Say where to look: among registered devices, imported identities or both."}
	}
	results := make([]SerialLookup, len(serials))
	firstOf := make([]int, len(serials)) // each distinct serial is looked up once; -1: not a valid search
	first := map[string]int{}
	var targets []lookupTarget
	for i, s := range serials {
		results[i].Serial = s
		firstOf[i] = -1
		if !validSerialQuery(strings.TrimSpace(s)) {
			results[i].Err = &Error{Kind: KindInvalidInput, Message: "This serial number is not a valid search: use up to 128 characters without line breaks, so it was not looked up."}
			continue
		}
		key := strings.ToUpper(strings.TrimSpace(s))
		j, dup := first[key]
		if !dup {
			j, first[key] = i, i
			for _, src := range []SerialSources{InRegistered, InImported} {
				if where&src != 0 {
					targets = append(targets, lookupTarget{i, src})
				}
			}
		}
		firstOf[i] = j
	}
	chunks := (len(targets) + BatchLimit - 1) / BatchLimit
	answers := make([]BatchResponse, len(targets))
	exchanges, started, failed := c.inBatches(ctx, ts, chunks, func(ctx context.Context, ts oauth2.TokenSource, k int) ([]*Exchange, error) {
		chunk := targets[k*BatchLimit : min((k+1)*BatchLimit, len(targets))]
		reqs := make([]BatchRequest, len(chunk))
		for j, t := range chunk {
			path := autopilotPath
			if t.source == InImported {
				path = devicesPath
			}
			reqs[j] = BatchRequest{ID: strconv.Itoa(j + 1), Method: http.MethodGet,
				URL: path + "?" + containsSerialFilter(strings.TrimSpace(serials[t.serial]))}
		}
		got, exs, err := c.Batch(ctx, ts, reqs)
		copy(answers[k*BatchLimit:], got)
		return exs, cmp.Or(err, stillThrottled(got))
	})
	sent := min(started*BatchLimit, len(targets))
	for k, t := range targets[:sent] {
		// Further pages of a long search are read here, one after another: a serial's two
		// searches (registered and imported) may sit in two batches.
		exchanges = append(exchanges, c.readLookup(ctx, ts, &results[t.serial], t.source, answers[k])...)
	}
	for _, t := range targets[sent:] {
		if results[t.serial].Err == nil {
			results[t.serial].Err = failed
		}
	}
	for i, j := range firstOf {
		if j >= 0 && j != i {
			results[i].Registered, results[i].Imported, results[i].Err = results[j].Registered, results[j].Imported, results[j].Err
		}
	}
	return results, exchanges, failed
}

// readLookup adds one inner answer to a serial's result, reading any further pages on its own.
func (c *Client) readLookup(ctx context.Context, ts oauth2.TokenSource, r *SerialLookup, src SerialSources, a BatchResponse) []*Exchange {
	if a.Err != nil {
		if r.Err == nil {
			r.Err = a.Err
		}
		return nil
	}
	var registered autopilotList
	var imported deviceList
	var next string
	var err error
	if src == InRegistered {
		err = json.Unmarshal(a.Body, &registered)
		next = registered.NextLink
	} else {
		err = json.Unmarshal(a.Body, &imported)
		next = imported.NextLink
	}
	if err != nil {
		r.Err = &Error{Kind: KindBadResponse, StatusCode: a.Status, Message: "Graph's answer did not have the expected shape.", Cause: err, Version: c.cfg.Version}
		return nil
	}
	r.Registered = append(r.Registered, WithSerial(registered.Value, r.Serial)...)
	r.Imported = append(r.Imported, identitiesWithSerial(imported.Value, r.Serial)...)
	var exchanges []*Exchange
	for page := 2; next != ""; page++ {
		if page > maxSerialPages {
			r.Err = &Error{Kind: KindInvalidInput, Message: fmt.Sprintf("More than %d pages of devices contain this serial number; look it up on its own with the whole serial number.", maxSerialPages)}
			return exchanges
		}
		var ex *Exchange
		if src == InRegistered {
			var p *AutopilotDevicePage
			p, ex, err = c.ListAutopilotDevices(ctx, ts, AutopilotDeviceQuery{NextLink: next})
			if err == nil {
				r.Registered = append(r.Registered, WithSerial(p.Devices, r.Serial)...)
				next = p.NextLink
			}
		} else {
			var ds []DeviceIdentity
			ds, next, ex, err = c.ListDeviceIdentities(ctx, ts, "", next)
			r.Imported = append(r.Imported, identitiesWithSerial(ds, r.Serial)...)
		}
		if ex != nil {
			exchanges = append(exchanges, ex)
		}
		if err != nil {
			r.Err = err
			return exchanges
		}
	}
	return exchanges
}

func identitiesWithSerial(ds []DeviceIdentity, serial string) []DeviceIdentity {
	return withSerial(ds, serial, func(d DeviceIdentity) string { return d.SerialNumber })
}

// Read is what a read by id found for one id.
type Read[T any] struct {
	ID    string
	Value *T    // nil when Err says why
	Err   error // an *Error; KindNotFound when Graph has no such object
}

// stillThrottled is the 429 of an answer Batch left throttled because Graph asked for a longer
// wait than the call had: a caller sending batch after batch stops there, or its next batch would
// come before that Retry-After.
func stillThrottled(answers []BatchResponse) error {
	for _, a := range answers {
		if ge, ok := AsError(a.Err); ok && ge.Kind == KindThrottled {
			return ge
		}
	}
	return nil
}

// readByID reads objects by id, 20 to a JSON batch sent as inBatches sends them, in the order of
// ids: request is one id's GET (refusing an id that is not one), decode reads its answer. A batch
// that fails as a whole stops the reads, and so does one whose throttled requests Graph still
// asks to wait for when the call's time is up: no further batch starts, those in flight keep
// their answers, and the ids not read carry that error, which is also returned.
func readByID[T any](ctx context.Context, c *Client, ts oauth2.TokenSource, ids []string,
	request func(reqID, id string) (BatchRequest, error), decode func(BatchResponse) (*T, error)) ([]Read[T], []*Exchange, error) {
	out := make([]Read[T], len(ids))
	var reqs []BatchRequest
	var at []int
	for i, id := range ids {
		out[i].ID = id
		r, err := request(strconv.Itoa(len(reqs)+1), id)
		if err != nil {
			out[i].Err = err
			continue
		}
		reqs, at = append(reqs, r), append(at, i)
	}
	chunks := (len(reqs) + BatchLimit - 1) / BatchLimit
	exchanges, started, err := c.inBatches(ctx, ts, chunks, func(ctx context.Context, ts oauth2.TokenSource, k int) ([]*Exchange, error) {
		start, end := k*BatchLimit, min((k+1)*BatchLimit, len(reqs))
		chunk := make([]BatchRequest, end-start)
		copy(chunk, reqs[start:end])
		for j := range chunk {
			chunk[j].ID = strconv.Itoa(j + 1)
		}
		answers, exs, err := c.Batch(ctx, ts, chunk)
		if err != nil && answers == nil {
			for _, i := range at[start:end] {
				out[i].Err = err
			}
			return exs, err
		}
		for j, a := range answers {
			i := at[start+j]
			out[i].Value, out[i].Err = decode(a)
		}
		return exs, cmp.Or(err, stillThrottled(answers))
	})
	for _, i := range at[min(started*BatchLimit, len(reqs)):] {
		out[i].Err = err
	}
	return out, exchanges, err
}

// getRequest is the batch request that reads the object id of the collection at path; what names
// the id in the refusal of one that is not a GUID.
func getRequest(reqID, path, what, id string) (BatchRequest, error) {
	if !guid.Valid(id) {
		return BatchRequest{}, invalidID(what, id)
	}
	return BatchRequest{ID: reqID, Method: http.MethodGet, URL: path + "/" + id}, nil
}

// decodeEntity reads the object of a getRequest's answer; one without an id is not one.
func decodeEntity[T any](r BatchResponse, id func(*T) string) (*T, error) {
	if r.Err != nil {
		return nil, r.Err
	}
	var v T
	if err := json.Unmarshal(r.Body, &v); err != nil || id(&v) == "" {
		return nil, &Error{Kind: KindBadResponse, StatusCode: r.Status, Message: "Graph's answer did not have the expected shape.", Cause: err}
	}
	return &v, nil
}
