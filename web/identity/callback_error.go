package identity

import (
	"regexp"
)

// CallbackError is a refusal the provider answered instead of a sign-in: on the redirect instead
// of a code, or (Redeem) at its token endpoint when the desk redeemed the code, where it judges
// the desk's own credentials and redirect URI.
type CallbackError struct {
	Code        string // OAuth error, e.g. access_denied
	Description string // error_description, as the provider wrote it
	AADSTS      string // Microsoft Entra's error code from the description, e.g. AADSTS65001
	Redeem      bool   // the token endpoint's answer, not the redirect's
	cause       error  // the token endpoint's answer as x/oauth2 read it
}

func (e *CallbackError) Unwrap() error { return e.cause }

var aadstsCode = regexp.MustCompile(`AADSTS\d+`)

func newCallbackError(code, description string) *CallbackError {
	return &CallbackError{Code: code, Description: description, AADSTS: aadstsCode.FindString(description)}
}

func (e *CallbackError) Error() string {
	s := "identity: the provider refused the sign-in: " + e.Code
	if e.Redeem {
		s = "identity: the provider refused to redeem the authorization code: " + e.Code
	}
	if e.AADSTS != "" {
		s += " (" + e.AADSTS + ")"
	}
	return s
}
