package identity

import (
	"encoding/json"
	"regexp"
	"strings"
)

// CallbackError is a refusal the provider answered instead of a sign-in: on the redirect instead
// of a code, or (Redeem) at its token endpoint when the desk redeemed the code, where it judges
// the desk's own credentials and redirect URI.
type CallbackError struct {
	Code        string // OAuth error, e.g. access_denied
	Description string // error_description, as the provider wrote it
	AADSTS      string // Microsoft Entra's error code from the description, e.g. AADSTS65001
	// CorrelationID and TraceID are Microsoft Entra's ids of the refused sign-in (GUIDs), which
	// its sign-in logs and Microsoft support ask for; Timestamp is when Entra refused it. Each is
	// empty unless the provider gave one in its exact form.
	CorrelationID, TraceID, Timestamp string
	Redeem                            bool  // the token endpoint's answer, not the redirect's
	cause                             error // the token endpoint's answer as x/oauth2 read it
}

func (e *CallbackError) Unwrap() error { return e.cause }

var (
	aadstsCode = regexp.MustCompile(`AADSTS\d{1,9}`)
	guidText   = `([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})`
	traceID    = regexp.MustCompile(`Trace ID: ` + guidText)
	correlID   = regexp.MustCompile(`Correlation ID: ` + guidText)
	timestamp  = regexp.MustCompile(`Timestamp: (\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\dZ)`)
	guidOnly   = regexp.MustCompile(`^` + guidText + `$`)
)

func newCallbackError(code, description string) *CallbackError {
	e := &CallbackError{Code: code, Description: description, AADSTS: aadstsCode.FindString(description)}
	e.TraceID = strings.ToLower(submatch(traceID, description))
	e.CorrelationID = strings.ToLower(submatch(correlID, description))
	e.Timestamp = submatch(timestamp, description)
	return e
}

func submatch(re *regexp.Regexp, s string) string {
	if m := re.FindStringSubmatch(s); m != nil {
		return m[1]
	}
	return ""
}

// readTokenErrorIDs takes Entra's ids from a token endpoint's JSON answer (trace_id,
// correlation_id, timestamp), where its description may lack them.
func (e *CallbackError) readTokenErrorIDs(body []byte) {
	var ids struct {
		TraceID       string `json:"trace_id"`
		CorrelationID string `json:"correlation_id"`
		Timestamp     string `json:"timestamp"`
	}
	if json.Unmarshal(body, &ids) != nil {
		return
	}
	if e.TraceID == "" && guidOnly.MatchString(ids.TraceID) {
		e.TraceID = strings.ToLower(ids.TraceID)
	}
	if e.CorrelationID == "" && guidOnly.MatchString(ids.CorrelationID) {
		e.CorrelationID = strings.ToLower(ids.CorrelationID)
	}
	if e.Timestamp == "" {
		e.Timestamp = submatch(timestamp, "Timestamp: "+ids.Timestamp)
	}
}

func (e *CallbackError) Error() string {
	s := "identity: the provider refused the sign-in: " + e.Code
	if e.Redeem {
		s = "identity: the provider refused to redeem the authorization code: " + e.Code
	}
	if e.AADSTS != "" {
		s += " (" + e.AADSTS + ")"
	}
	if e.CorrelationID != "" {
		s += " correlation id " + e.CorrelationID
	}
	if e.TraceID != "" {
		s += " trace id " + e.TraceID
	}
	return s
}
