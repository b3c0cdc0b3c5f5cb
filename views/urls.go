package views

import "net/url"

func signInURL(returnTo string) string {
	if returnTo == "" || returnTo == "/" {
		return "/auth/login"
	}
	return "/auth/login?return_to=" + url.QueryEscape(returnTo)
}

// ImportJobURL is the address of an import job's page; the job's actions and its report are
// under it ("/submit", "/report.csv"). Handlers, pages and tests all build it here.
func ImportJobURL(id string) string { return "/devices/import/" + id }
