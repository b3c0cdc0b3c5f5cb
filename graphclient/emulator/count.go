package emulator

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
)

// recorder keeps an answer in memory, for the requests inside a batch and for /$count.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: http.Header{}} }

func (w *recorder) Header() http.Header { return w.header }
func (w *recorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.body.Write(b)
}
func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

// countSegment answers GET {collection}/$count as Graph does: the number of items the
// collection (with its $filter) holds, as text/plain. It asks the collection itself with
// $count=true, so every filter and permission rule of the collection applies.
func (e *Emulator) countSegment(a answer, r *http.Request, body []byte, faults Faults) {
	if r.Method != http.MethodGet {
		noRoute(a, r, "~/singleton/navigation/$count")
		return
	}
	inner := r.Clone(r.Context())
	inner.URL.Path = strings.TrimSuffix(r.URL.Path, "/$count")
	inner.URL.RawPath = ""
	q := inner.URL.Query()
	q.Del("$top")
	q.Del("$skiptoken")
	q.Set("$count", "true")
	inner.URL.RawQuery = q.Encode()
	rec := newRecorder()
	e.route(answer{w: rec, requestID: a.requestID, clientID: a.clientID, now: a.now}, inner, body, faults)
	var list struct {
		Count *int `json:"@odata.count"`
	}
	if rec.status != http.StatusOK {
		for k, v := range rec.header {
			a.w.Header()[k] = v
		}
		a.w.WriteHeader(rec.status)
		a.w.Write(rec.body.Bytes())
		return
	}
	if json.Unmarshal(rec.body.Bytes(), &list) != nil || list.Count == nil {
		a.fail(http.StatusBadRequest, "BadRequest", "Resource not found for the segment '$count'.")
		return
	}
	a.headers()
	a.w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	a.w.WriteHeader(http.StatusOK)
	a.w.Write([]byte(strconv.Itoa(*list.Count)))
}
