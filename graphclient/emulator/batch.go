package emulator

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"

	"autopilotdesk/graphclient/jsonbatch"
)

// batchHeadersDropped are the per-request headers Graph puts on the batch's own answer only.
var batchHeadersDropped = map[string]bool{"Request-Id": true, "Client-Request-Id": true, "Date": true, "X-Ms-Ags-Diagnostic": true}

// batch answers POST /$batch: up to 20 requests with URLs relative to the version, each answered
// as if sent alone (its own status, headers, body, permission checks and throttling budget), in
// a shuffled order as Graph does. Requests run in the order given, so dependsOn holds; one whose
// dependency failed is answered 424. The wording of Graph's refusals of a whole batch is partly
// unverified; their status (400) and code are Graph's.
func (e *Emulator) batch(a answer, r *http.Request, version string, body []byte, faults Faults) {
	if r.Method != http.MethodPost {
		a.fail(http.StatusMethodNotAllowed, "BadRequest", "The HTTP method is not allowed for $batch; send the batch with POST.")
		return
	}
	var in jsonbatch.Batch
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(&in); err != nil || dec.More() || len(in.Requests) == 0 {
		a.fail(http.StatusBadRequest, "BadRequest", "Invalid batch payload format.")
		return
	}
	if len(in.Requests) > jsonbatch.Limit {
		a.fail(http.StatusBadRequest, "BadRequest", fmt.Sprintf("The batch holds %d requests; the maximum number of requests in a batch is %d.", len(in.Requests), jsonbatch.Limit))
		return
	}
	seen := map[string]bool{}
	for _, q := range in.Requests {
		switch {
		case q.ID == "":
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid batch payload format. Every request needs an id.")
			return
		case seen[q.ID]:
			a.fail(http.StatusBadRequest, "BadRequest", "Request Id "+truncate(q.ID, 40)+" has to be unique in a batch.")
			return
		case q.Method == "" || q.URL == "":
			a.fail(http.StatusBadRequest, "BadRequest", "Invalid batch payload format. Request "+truncate(q.ID, 40)+" needs a method and a url.")
			return
		}
		for _, dep := range q.DependsOn {
			if !seen[dep] {
				a.fail(http.StatusBadRequest, "BadRequest", "Request "+truncate(q.ID, 40)+" depends on '"+truncate(dep, 40)+"', which is not an earlier request of the batch.")
				return
			}
		}
		write := q.Method != http.MethodGet && q.Method != http.MethodDelete
		if write && (len(q.Body) == 0 || headerValue(q.Headers, "Content-Type") == "") {
			a.fail(http.StatusBadRequest, "BadRequest", "Write request id : "+truncate(q.ID, 40)+" does not contain Content-Type header or body.")
			return
		}
		seen[q.ID] = true
	}
	// Graph runs a batch's requests side by side: the added latency is the batch's, once, not
	// each inner request's in turn.
	faults.delay()
	inner := faults
	inner.LatencyMin, inner.LatencyMax = 0, 0
	status := map[string]int{}
	out := make([]jsonbatch.Response, 0, len(in.Requests))
	for _, q := range in.Requests {
		resp := e.inner(a, r, version, q, status, inner)
		status[q.ID] = resp.Status
		out = append(out, resp)
	}
	rand.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	a.json(http.StatusOK, jsonbatch.Answer{Responses: out})
}

func headerValue(h map[string]string, name string) string {
	for k, v := range h {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// inner runs one request of a batch through the emulator, with the batch's bearer token.
func (e *Emulator) inner(a answer, outer *http.Request, version string, q jsonbatch.Request, done map[string]int, faults Faults) jsonbatch.Response {
	rec := newRecorder()
	ia := answer{w: rec, requestID: e.opts.NewID(), clientID: a.clientID, now: a.now}
	if id := headerValue(q.Headers, "client-request-id"); id != "" {
		ia.clientID = id
	}
	for _, dep := range q.DependsOn {
		if s := done[dep]; s < 200 || s > 299 {
			ia.fail(http.StatusFailedDependency, "FailedDependency", "The request depends on request "+truncate(dep, 40)+", which failed.")
			return recorded(q.ID, rec)
		}
	}
	// The url is relative to the version root, with or without its leading slash.
	u, err := url.Parse(q.URL)
	if err == nil && !strings.HasPrefix(u.Path, "/") {
		u, err = url.Parse("/" + q.URL)
	}
	if err != nil || u.Host != "" || u.Scheme != "" || strings.HasPrefix(q.URL, "//") {
		ia.fail(http.StatusBadRequest, "BadRequest", "Invalid request URL.")
		return recorded(q.ID, rec)
	}
	if strings.EqualFold(strings.Trim(u.Path, "/"), "$batch") {
		ia.fail(http.StatusBadRequest, "BadRequest", "A batch cannot contain another batch.")
		return recorded(q.ID, rec)
	}
	body := []byte(q.Body)
	// A body that is not JSON travels as a base64 string.
	var s string
	if ct := headerValue(q.Headers, "Content-Type"); len(body) > 0 && !strings.Contains(strings.ToLower(ct), "json") && json.Unmarshal(body, &s) == nil {
		if dec, err := base64.StdEncoding.DecodeString(s); err == nil {
			body = dec
		}
	}
	req, err := http.NewRequestWithContext(outer.Context(), q.Method, "/"+version+u.Path, bytes.NewReader(body))
	if err != nil {
		ia.fail(http.StatusBadRequest, "BadRequest", "Invalid request method or URL.")
		return recorded(q.ID, rec)
	}
	req.URL.RawQuery = u.RawQuery
	req.Host, req.TLS, req.RemoteAddr = outer.Host, outer.TLS, outer.RemoteAddr
	for k, v := range q.Headers {
		req.Header.Set(k, v)
	}
	req.Header.Set("Authorization", outer.Header.Get("Authorization"))
	e.route(ia, req, body, faults)
	return recorded(q.ID, rec)
}

// recorded turns a recorded answer into a batch response: JSON bodies as JSON, others base64.
func recorded(id string, rec *recorder) jsonbatch.Response {
	out := jsonbatch.Response{ID: id, Status: rec.status, Headers: map[string]string{}}
	if out.Status == 0 {
		out.Status = http.StatusOK
	}
	for k, v := range rec.header {
		if !batchHeadersDropped[http.CanonicalHeaderKey(k)] && len(v) > 0 {
			out.Headers[k] = v[0]
		}
	}
	if b := rec.body.Bytes(); len(b) > 0 {
		if strings.Contains(strings.ToLower(rec.header.Get("Content-Type")), "json") && json.Valid(b) {
			out.Body = json.RawMessage(b)
		} else {
			enc, _ := json.Marshal(base64.StdEncoding.EncodeToString(b))
			out.Body = enc
		}
	}
	return out
}
