package web

import (
	"net/url"
	"strings"
	"unicode"
)

// SafeReturnTo returns raw when it is a relative, same-origin path, and "/" otherwise. It is strict
// on purpose: anything a browser could read as another host ("//x", "/\x", encoded or with control
// characters in between) or as a scheme is refused.
func SafeReturnTo(raw string) string {
	if !isSafeReturnTo(raw) {
		return "/"
	}
	return raw
}

func isSafeReturnTo(raw string) bool {
	if raw == "" || len(raw) > 2048 || raw[0] != '/' {
		return false
	}
	// Decode repeatedly, so "%252F" and friends cannot hide a second slash or a backslash.
	decoded := raw
	for i := 0; i < 3; i++ {
		next, err := url.PathUnescape(decoded)
		if err != nil {
			return false
		}
		if next == decoded {
			break
		}
		decoded = next
	}
	// Browsers drop or fold whitespace and invisible characters anywhere in a URL.
	for _, r := range raw {
		if unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return false
		}
	}
	for _, s := range []string{raw, decoded} {
		for _, r := range s {
			if r < 0x20 || r == 0x7f || r == '\\' || (r >= 0x80 && r <= 0x9f) || (r != ' ' && unicode.IsSpace(r)) {
				return false
			}
		}
		if strings.HasPrefix(s, "//") || !strings.HasPrefix(s, "/") {
			return false
		}
	}
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	return true
}
