package identity

import (
	"regexp"
)

// CallbackError is an error the provider sent back on the redirect instead of a code.
type CallbackError struct {
	Code        string // OAuth error, e.g. access_denied
	Description string // error_description, as the provider wrote it
	AADSTS      string // Microsoft Entra's error code from the description, e.g. AADSTS65001
}

var aadstsCode = regexp.MustCompile(`AADSTS\d+`)

func newCallbackError(code, description string) *CallbackError {
	return &CallbackError{Code: code, Description: description, AADSTS: aadstsCode.FindString(description)}
}

func (e *CallbackError) Error() string {
	s := "identity: the provider refused the sign-in: " + e.Code
	if e.AADSTS != "" {
		s += " (" + e.AADSTS + ")"
	}
	return s
}
