package graphclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Kind classifies a failure by what the person should do about it.
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

// Error is every failed Graph call: status, Graph code, readable message and the ids support asks for.
type Error struct {
	Kind            Kind
	StatusCode      int
	Code            string
	Message         string // readable: Intune's nested JSON unwrapped, its Url tail dropped
	RawMessage      string
	RequestID       string
	ClientRequestID string
	Date            string
	ActivityID      string
	OperationID     string
	WWWAuthenticate string
	RetryAfter      time.Duration
	Claims          string
	Version         string
	Cause           error
	sent            bool // the request may have reached Graph
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
		e.Message = fmt.Sprintf("Graph answered %s without a readable error.", resp.Status)
		if resp.StatusCode < 500 && resp.StatusCode != 429 {
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
	case e.StatusCode == 401:
		return KindUnauthorized
	case e.StatusCode == 403 && (strings.Contains(e.WWWAuthenticate, "insufficient_claims") || e.Claims != ""):
		return KindConditionalAccess
	case e.StatusCode == 403 && strings.Contains(lower, "licen"):
		return KindForbiddenLicense
	case e.StatusCode == 403 && (strings.Contains(lower, "scope") || strings.Contains(lower, "consent") || strings.Contains(lower, "permission")):
		return KindForbiddenPermission
	case e.StatusCode == 403:
		return KindForbiddenRole
	case e.StatusCode == 404:
		return KindNotFound
	case e.StatusCode == 409:
		return KindConflict
	case e.StatusCode == 413:
		return KindTooLarge
	case e.StatusCode == 429:
		return KindThrottled
	case e.StatusCode == 504:
		return KindTimeout
	case e.StatusCode >= 500:
		return KindServer
	case e.StatusCode == 400 || e.StatusCode == 422:
		return KindValidation
	}
	return KindUnknown
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

// Action is the one thing a page offers after a failure.
type Action int

const (
	ActionNone Action = iota
	ActionSignInAgain
	ActionFreshSignIn
	ActionTryLater
	ActionUseDeviceImport
	ActionCheckInput
)

// Explanation is a failure in plain words for an Intune administrator.
type Explanation struct {
	Title    string
	What     string
	NextStep string
	Action   Action
	RetryAt  time.Time `json:",omitempty"`
}

const intuneRole = "an Intune role that may manage Autopilot devices (Intune Administrator, or a custom role with Enrollment programs permissions)"

// Explain maps every failure to what happened and what to do next. It is the one place this mapping lives.
func Explain(err error) Explanation {
	ge, ok := AsError(err)
	if !ok {
		return Explanation{Title: "The request could not be completed", What: "Something went wrong before Microsoft Graph answered.",
			NextStep: "Try again in a moment.", Action: ActionTryLater}
	}
	graphSays := func() string {
		if ge.Message == "" {
			return ""
		}
		return " Graph said: “" + ge.Message + "”"
	}
	switch ge.Kind {
	case KindInvalidInput:
		return Explanation{Title: "The request was not sent", What: ge.Message, NextStep: "Correct the value and try again.", Action: ActionCheckInput}
	case KindValidation:
		return Explanation{Title: "Graph refused the values sent", What: "Microsoft Graph found a problem with the request." + graphSays(),
			NextStep: "Correct the value Graph names and send the form again.", Action: ActionCheckInput}
	case KindSegmentNotFound:
		return Explanation{Title: "This tenant's Graph no longer offers Autopilot uploads",
			What:     "Microsoft Graph answered that it does not know the importedWindowsAutopilotDeviceIdentityUploads collection. Microsoft removed it from the service; the documentation page still describes it." + graphSays(),
			NextStep: "Import devices with the supported device import (importedWindowsAutopilotDeviceIdentities), which today's tenants accept.",
			Action:   ActionUseDeviceImport}
	case KindNoMethodMatch:
		return Explanation{Title: "Graph does not support this operation here",
			What: "Microsoft Graph has no such operation for this kind of object." + graphSays(), NextStep: "Use another operation; this one cannot succeed."}
	case KindUnauthorized:
		return Explanation{Title: "Your sign-in has expired", What: "Microsoft Graph did not accept your access token (it expired or was revoked)." + graphSays(),
			NextStep: "Sign in again, then repeat what you were doing.", Action: ActionSignInAgain}
	case KindConditionalAccess:
		return Explanation{Title: "Your organisation requires a fresh sign-in",
			What:     "A Conditional Access policy asks for stronger or more recent authentication before this change is allowed.",
			NextStep: "Sign in again (you may be asked for multi-factor authentication), then repeat the request.", Action: ActionFreshSignIn}
	case KindForbiddenPermission:
		return Explanation{Title: "The desk lacks the Graph permission for this",
			What:     "Your token does not carry the delegated permission DeviceManagementServiceConfig.ReadWrite.All, or an administrator has not consented to it." + graphSays(),
			NextStep: "A Global Administrator or Privileged Role Administrator must grant admin consent: Entra admin center › App registrations › Autopilot Desk › API permissions › Grant admin consent. Read-only accounts cannot create or change uploads."}
	case KindForbiddenRole:
		return Explanation{Title: "Your account is not allowed to do this in Intune",
			What: "Intune refused the request for your account." + graphSays(), NextStep: "Ask an Intune administrator to give you " + intuneRole + "."}
	case KindForbiddenLicense:
		return Explanation{Title: "The tenant has no active Intune licence",
			What: "Microsoft Graph's Intune APIs need an active Intune licence in the tenant." + graphSays(), NextStep: "Ask your licensing administrator to check the tenant's Intune subscription."}
	case KindNotFound:
		return Explanation{Title: "Graph did not find it",
			What: "Microsoft Graph has no such object (it may have been deleted; right after a create it can take a moment to appear)." + graphSays(), NextStep: "Refresh the list and check the id."}
	case KindConflict:
		return Explanation{Title: "That conflicts with what already exists",
			What: "Microsoft Graph refused because of the object's current state (for example an id already in use)." + graphSays(), NextStep: "Check the current state, then change the request."}
	case KindThrottled:
		ex := Explanation{Title: "Microsoft Graph is throttling requests", What: "Your tenant or this app sent more requests than Intune allows in a short window; nothing was changed.",
			NextStep: "Wait a minute and send it again.", Action: ActionTryLater}
		if ge.RetryAfter > 0 {
			ex.RetryAt = time.Now().Add(ge.RetryAfter)
			ex.NextStep = fmt.Sprintf("Wait %s, then send it again.", ge.RetryAfter.Round(time.Second))
		}
		return ex
	case KindTooLarge:
		return Explanation{Title: "The request was larger than Microsoft Graph accepts",
			What:     "Microsoft Graph refused the request because of its size, before carrying it out; nothing was changed." + graphSays(),
			NextStep: "Send fewer items at once.", Action: ActionCheckInput}
	case KindOutcomeUnknown:
		return Explanation{Title: "Graph did not say whether it worked",
			What:     "The request reached Microsoft Graph but no clear answer came back (it timed out or Graph reported a server error), so it may or may not have been carried out. The desk did not send it again.",
			NextStep: "Check the result below before sending anything again.", Action: ActionNone}
	case KindServer:
		return Explanation{Title: "Microsoft Graph had a problem", What: "Graph reported a server error; this is not caused by what you sent." + graphSays(),
			NextStep: "Try again in a few minutes. If it persists, check the Microsoft 365 service health page and give support the details below.", Action: ActionTryLater}
	case KindTimeout:
		return Explanation{Title: "Microsoft Graph did not answer in time", What: "No answer came back before the desk's deadline.",
			NextStep: "Try again in a moment.", Action: ActionTryLater}
	case KindNetwork:
		return Explanation{Title: "The desk could not reach Microsoft Graph", What: ge.Message,
			NextStep: "Check the desk's network connection and proxy settings, then try again.", Action: ActionTryLater}
	case KindBadResponse:
		return Explanation{Title: "Graph's answer could not be read", What: ge.Message,
			NextStep: "Try again. If it keeps happening, something between the desk and Graph (a proxy) may be rewriting answers.", Action: ActionTryLater}
	}
	return Explanation{Title: "Microsoft Graph refused the request", What: "Graph answered with an error." + graphSays(), NextStep: "Check the support details below."}
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
	}
	if ge, ok := AsError(err); ok {
		if ge.StatusCode != 0 {
			s.Status = ge.StatusCode
		}
		s.Code = ge.Code
		if ge.RequestID != "" {
			s.RequestID = ge.RequestID
		}
		if ge.Date != "" {
			s.Date = ge.Date
		}
		s.ActivityID = ge.ActivityID
		if ge.Version != "" {
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
