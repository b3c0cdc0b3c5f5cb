package graphclient

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a failure by what Graph answered (or what kept it from answering). Stored
// failures carry it by name (see kindNames), so its order may change.
type Kind int

const (
	KindUnknown Kind = iota
	KindValidation
	KindSegmentNotFound
	KindNoMethodMatch
	KindUnauthorized
	KindForbiddenPermission
	KindForbiddenRole
	KindForbiddenLicense
	KindConditionalAccess
	KindNotFound
	KindConflict
	KindThrottled
	KindServer
	KindTimeout
	KindNetwork
	KindOutcomeUnknown
	KindBadResponse
	KindInvalidInput
	KindTooLarge
)

var kindNames = [...]string{
	KindUnknown: "unknown", KindValidation: "validation", KindSegmentNotFound: "segment-not-found",
	KindNoMethodMatch: "no-method-match", KindUnauthorized: "unauthorized", KindForbiddenPermission: "forbidden-permission",
	KindForbiddenRole: "forbidden-role", KindForbiddenLicense: "forbidden-license", KindConditionalAccess: "conditional-access",
	KindNotFound: "not-found", KindConflict: "conflict", KindThrottled: "throttled", KindServer: "server", KindTimeout: "timeout",
	KindNetwork: "network", KindOutcomeUnknown: "outcome-unknown", KindBadResponse: "bad-response", KindInvalidInput: "invalid-input",
	KindTooLarge: "too-large",
}

func (k Kind) String() string {
	if k >= 0 && int(k) < len(kindNames) {
		return kindNames[k]
	}
	return kindNames[KindUnknown]
}

// MarshalText stores a Kind by name.
func (k Kind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a Kind's name; a name it does not know is KindUnknown.
func (k *Kind) UnmarshalText(b []byte) error {
	*k = KindUnknown
	for i, n := range kindNames {
		if n == string(b) {
			*k = Kind(i)
		}
	}
	return nil
}

// Error is every failed Graph call, as facts: what kind of failure, status, Graph code, Graph's
// readable message (or, for a call the client refused or could not complete, what stopped it),
// the ids support asks for and how long Graph asked to wait. It marshals to JSON, so an activity
// or an import job can keep it; the words for a person are written beside the pages.
type Error struct {
	Kind            Kind          `json:"kind"`
	StatusCode      int           `json:"status,omitempty"`
	Code            string        `json:"code,omitempty"`
	Message         string        `json:"message,omitempty"` // readable: Intune's nested JSON unwrapped, its Url tail dropped
	RawMessage      string        `json:"-"`
	RequestID       string        `json:"requestId,omitempty"`
	ClientRequestID string        `json:"clientRequestId,omitempty"`
	Date            string        `json:"date,omitempty"`
	ActivityID      string        `json:"activityId,omitempty"`
	OperationID     string        `json:"operationId,omitempty"`
	WWWAuthenticate string        `json:"-"`
	RetryAfter      time.Duration `json:"retryAfter,omitempty"`
	Claims          string        `json:"-"`
	Version         string        `json:"version,omitempty"`
	Cause           error         `json:"-"`
	sent            bool          // the request may have reached Graph
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("graph: ")
	if e.StatusCode != 0 {
		fmt.Fprintf(&b, "%d ", e.StatusCode)
	}
	if e.Code != "" {
		b.WriteString(e.Code + ": ")
	}
	b.WriteString(e.Message)
	return b.String()
}

func (e *Error) Unwrap() error { return e.Cause }

// AsError finds the *Error in err's chain.
func AsError(err error) (*Error, bool) {
	var ge *Error
	ok := errors.As(err, &ge)
	return ge, ok
}

// errorOf is err as an *Error: the client's own, or one of KindUnknown around it.
func errorOf(err error) *Error {
	if ge, ok := AsError(err); ok {
		return ge
	}
	return &Error{Message: err.Error(), Cause: err}
}

type envelope struct {
	Error struct {
		Code       string `json:"code"`
		Message    string `json:"message"`
		InnerError struct {
			Date            string `json:"date"`
			RequestID       string `json:"request-id"`
			ClientRequestID string `json:"client-request-id"`
		} `json:"innerError"`
	} `json:"error"`
}

var (
	activityRE  = regexp.MustCompile(`Activity ID:\s*([0-9a-fA-F-]{36})`)
	operationRE = regexp.MustCompile(`Operation ID \(for customer support\):\s*([0-9a-fA-F-]{36})`)
	urlTailRE   = regexp.MustCompile(`\s*-\s*Url:\s*\S+\s*$`)
	claimsRE    = regexp.MustCompile(`claims="([^"]*)"`)
)

// parseError turns a non-2xx answer into an *Error; it never fails and never keeps a raw body.
func parseError(resp *http.Response, body []byte, version string) *Error {
	e := &Error{
		StatusCode: resp.StatusCode, Version: version, sent: true,
		RequestID: resp.Header.Get("request-id"), ClientRequestID: resp.Header.Get("client-request-id"),
		Date: resp.Header.Get("Date"), WWWAuthenticate: resp.Header.Get("WWW-Authenticate"),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), time.Now()),
	}
	var env envelope
	if json.Unmarshal(body, &env) == nil && (env.Error.Code != "" || env.Error.Message != "") {
		e.Code = env.Error.Code
		e.RawMessage = env.Error.Message
		e.Message = unwrapIntune(env.Error.Message, e)
		if in := env.Error.InnerError; in.RequestID != "" {
			e.RequestID = in.RequestID
		}
		if in := env.Error.InnerError; in.ClientRequestID != "" && e.ClientRequestID == "" {
			e.ClientRequestID = in.ClientRequestID
		}
		if env.Error.InnerError.Date != "" {
			e.Date = env.Error.InnerError.Date
		}
	} else {
		// The status still says what happened (a 401 is an expired token, whatever its body); only
		// one whose meaning is in the words Graph did not give is an answer the desk cannot read.
		e.Message = fmt.Sprintf("Graph answered %s without a readable error%s.", resp.Status, bodyNote(resp.Header.Get("Content-Type"), body))
		if _, meaningful := statusKinds[resp.StatusCode]; !meaningful && resp.StatusCode < 500 && resp.StatusCode != http.StatusForbidden ||
			resp.StatusCode == http.StatusBadRequest || resp.StatusCode == http.StatusUnprocessableEntity {
			e.Kind = KindBadResponse
		}
	}
	if m := claimsRE.FindStringSubmatch(e.WWWAuthenticate); m != nil {
		e.Claims = m[1]
	}
	if e.Kind == KindUnknown {
		e.Kind = classify(e)
	}
	return e
}

// bodyNote describes an error body that could not be read, without quoting it.
func bodyNote(contentType string, body []byte) string {
	if len(bytes.TrimSpace(body)) == 0 {
		return " (its body was empty)"
	}
	if contentType == "" {
		contentType = "no content type"
	}
	return fmt.Sprintf(" (its body was %d bytes of %s)", len(body), truncate(contentType, 60))
}

// unwrapIntune reads Intune's JSON string inside error.message and keeps its sentence.
func unwrapIntune(msg string, e *Error) string {
	trimmed := strings.TrimSpace(msg)
	if strings.HasPrefix(trimmed, "{") {
		var inner struct {
			Message string `json:"Message"`
		}
		if json.Unmarshal([]byte(trimmed), &inner) == nil && inner.Message != "" {
			msg = inner.Message
		}
	}
	if m := activityRE.FindStringSubmatch(msg); m != nil {
		e.ActivityID = m[1]
	}
	if m := operationRE.FindStringSubmatch(msg); m != nil {
		e.OperationID = m[1]
	}
	msg = urlTailRE.ReplaceAllString(msg, "")
	// Keep the sentence; the ids are shown as support details.
	if i := strings.Index(msg, " - Operation ID"); i > 0 {
		msg = msg[:i]
	}
	return strings.TrimSpace(msg)
}

func classify(e *Error) Kind {
	lower := strings.ToLower(e.Message + " " + e.Code)
	switch {
	case e.StatusCode == 400 && strings.Contains(lower, "resource not found for the segment"):
		return KindSegmentNotFound
	case strings.Contains(lower, "no method match route template"):
		return KindNoMethodMatch
	case e.StatusCode == 403 && (strings.Contains(e.WWWAuthenticate, "insufficient_claims") || e.Claims != ""):
		return KindConditionalAccess
	case e.StatusCode == 403 && strings.Contains(lower, "licen"),
		e.StatusCode == 400 && strings.Contains(lower, "request not applicable to target tenant"):
		return KindForbiddenLicense
	case e.StatusCode == 403 && (strings.Contains(lower, "scope") || strings.Contains(lower, "consent") || strings.Contains(lower, "permission")):
		return KindForbiddenPermission
	case e.StatusCode == 403:
		return KindForbiddenRole
	}
	if k, ok := statusKinds[e.StatusCode]; ok {
		return k
	}
	if e.StatusCode >= 500 {
		return KindServer
	}
	return KindUnknown
}

// statusKinds is what a status says of itself, once the answer's words said nothing more.
var statusKinds = map[int]Kind{
	400: KindValidation, 401: KindUnauthorized, 404: KindNotFound, 409: KindConflict, 413: KindTooLarge,
	422: KindValidation, 429: KindThrottled, 504: KindTimeout,
}

// Granted is what a token answer's scope grants of the delegated permissions of Autopilot devices.
type Granted struct{ Read, Write bool }

// GrantedBy reads a token answer's scope: space-separated permissions, each perhaps prefixed with
// its resource (https://graph.microsoft.com/…), in any case.
func GrantedBy(scope string) Granted {
	var g Granted
	for _, s := range strings.Fields(scope) {
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			s = s[i+1:]
		}
		switch {
		case strings.EqualFold(s, "DeviceManagementServiceConfig.ReadWrite.All"):
			g.Write = true
		case strings.EqualFold(s, "DeviceManagementServiceConfig.Read.All"):
			g.Read = true
		}
	}
	return g
}

// blame tells apart the two refusals Intune words alike ("Application is not authorized ...
// must have one of the following scopes"): when the token answer said what it granted, a 403 for
// a call whose permission was not granted is the permission's, and one whose permission was
// granted is the person's Intune role.
func blame(e *Error, granted, method string) {
	if e.Kind != KindForbiddenPermission && e.Kind != KindForbiddenRole || strings.TrimSpace(granted) == "" {
		return
	}
	g := GrantedBy(granted)
	e.Kind = KindForbiddenPermission
	if g.Write || method == http.MethodGet && g.Read {
		e.Kind = KindForbiddenRole
	}
}

// retryAfter reads Retry-After in seconds or as an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(v); err == nil {
		if secs < 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// SupportDetails are the facts Microsoft support asks for.
type SupportDetails struct {
	Status          int    `json:"status,omitempty"`
	Code            string `json:"code,omitempty"`
	RequestID       string `json:"requestId,omitempty"`
	ClientRequestID string `json:"clientRequestId,omitempty"`
	Date            string `json:"date,omitempty"`
	ActivityID      string `json:"activityId,omitempty"`
	Version         string `json:"version,omitempty"`
	// Sent is when the last request was sent, for one that got no answer (so no Date).
	Sent time.Time `json:"sent,omitzero"`
}

// SupportFor collects support details from the last attempt and, on failure, the error.
func SupportFor(ex *Exchange, err error) SupportDetails {
	var s SupportDetails
	if a := ex.Last(); a != nil {
		s.Status = a.StatusCode
		s.RequestID = a.ResponseHeader.Get("request-id")
		s.ClientRequestID = a.RequestHeader.Get("client-request-id")
		s.Date = a.ResponseHeader.Get("Date")
		s.Version = versionOf(a.URL)
		if a.StatusCode == 0 && !a.Start.IsZero() {
			s.Sent = a.Start.UTC()
		}
	}
	if ge, ok := AsError(err); ok {
		if ge.StatusCode != 0 {
			s.Status = ge.StatusCode
		}
		s.Code = ge.Code
		if ge.RequestID != "" {
			s.RequestID = ge.RequestID
		}
		if s.ClientRequestID == "" {
			s.ClientRequestID = ge.ClientRequestID
		}
		if ge.Date != "" {
			s.Date = ge.Date
		}
		s.ActivityID = ge.ActivityID
		if s.Version == "" { // the request's own address says which version it went to (a sync goes to beta)
			s.Version = ge.Version
		}
	}
	return s
}

func versionOf(u string) string {
	for _, v := range []string{"/v1.0/", "/beta/"} {
		if strings.Contains(u, v) {
			return strings.Trim(v, "/")
		}
	}
	return ""
}
