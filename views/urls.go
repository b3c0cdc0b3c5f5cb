package views

import "net/url"

func signInURL(returnTo string) string {
	if returnTo == "" || returnTo == "/" {
		return "/auth/login"
	}
	return "/auth/login?return_to=" + url.QueryEscape(returnTo)
}
