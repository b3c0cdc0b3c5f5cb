package identity

import (
	"regexp"
	"strings"
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

// Explain says, for an Intune administrator, what went wrong and what to do next.
func (e *CallbackError) Explain() (title, what, next string) {
	switch e.AADSTS {
	case "AADSTS65001":
		return "An administrator must consent to the desk first",
			"Your organisation has not granted the desk the Microsoft Graph permission DeviceManagementServiceConfig.ReadWrite.All, so Microsoft Entra refused the sign-in.",
			"Ask a Global Administrator, Privileged Role Administrator or Cloud Application Administrator to open the Microsoft Entra admin center › App registrations › Autopilot Desk › API permissions and select “Grant admin consent”. Then sign in again."
	case "AADSTS50105":
		return "Your account is not assigned to the desk",
			"The desk's enterprise application only admits assigned users, and neither your account nor a group you are in is assigned to it.",
			"Ask an administrator to add you under Microsoft Entra admin center › Enterprise applications › Autopilot Desk › Users and groups. Then sign in again."
	case "AADSTS50020":
		return "This account is not in the desk's organisation",
			"You signed in with a personal Microsoft account or a guest account from another organisation, which this desk does not accept.",
			"Sign in with your work account in this organisation."
	case "AADSTS700016":
		return "The desk's app registration was not found",
			"Microsoft Entra does not know the desk's client id in this tenant (AADSTS700016).",
			"Tell whoever runs the desk: check that AUTOPILOTDESK_CLIENT_ID and AUTOPILOTDESK_TENANT_ID match the app registration."
	case "AADSTS7000215", "AADSTS7000222":
		return "The desk's client secret is wrong or expired",
			"Microsoft Entra refused the desk's own credentials (" + e.AADSTS + ").",
			"Tell whoever runs the desk: create a new client secret under App registrations › Autopilot Desk › Certificates & secrets and update AUTOPILOTDESK_CLIENT_SECRET."
	case "AADSTS50011":
		return "The desk's sign-in address is not registered",
			"The redirect URI the desk sent is not one of the app registration's redirect URIs (AADSTS50011).",
			"Tell whoever runs the desk: add {AUTOPILOTDESK_PUBLIC_URL}/auth/callback under App registrations › Autopilot Desk › Authentication › Web redirect URIs."
	case "AADSTS65004":
		return "Sign-in was cancelled", "The permission request was declined, so you are not signed in.",
			"Sign in again and accept the permissions when asked."
	}
	if e.Code == "access_denied" {
		return "Sign-in was cancelled", "The sign-in was cancelled or access was denied, so you are not signed in.",
			"Sign in again when you are ready."
	}
	what = "The sign-in service refused the sign-in"
	if e.AADSTS != "" {
		what += " with error " + e.AADSTS
	} else if e.Code != "" {
		what += " with error " + firstLine(e.Code)
	}
	return "Sign-in did not succeed", what + ".",
		"Try again. If it keeps failing, give this error code and the time to your administrator."
}

// firstLine keeps provider-chosen text short enough to show.
func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if r := []rune(s); len(r) > 100 {
		s = string(r[:100]) + "…"
	}
	return s
}
