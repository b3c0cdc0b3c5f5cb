package web

import (
	"strings"
	"testing"
)

func TestSafeReturnToKeepsRelativePaths(t *testing.T) {
	for _, ok := range []string{
		"/", "/uploads/new", "/activity/8d639524-9524-8d63-2495-638d2495638d",
		"/uploads?status=pending&page=2", "/devices/import#rows", "/a/b/c/", "/uploads/new?x=%20y",
	} {
		if got := SafeReturnTo(ok); got != ok {
			t.Errorf("SafeReturnTo(%q) = %q, want it kept", ok, got)
		}
	}
}

// openRedirects is a corpus of payloads that browsers or URL parsers can read as another host or a scheme.
var openRedirects = []string{
	"", "//evil.example", "///evil.example", "////evil.example", "/\\evil.example", "\\\\evil.example",
	"\\/evil.example", "/\\/evil.example", "/%09/evil.example", "/%0a/evil.example", "/%0d/evil.example",
	"/\t/evil.example", "/\n/evil.example", "/\r/evil.example", "/ /evil.example", "https://evil.example",
	"http://evil.example", "HTTPS://evil.example", "hTtPs://evil.example", "//evil.example/%2F..",
	"javascript:alert(1)", "JavaScript:alert(1)", "jAvAsCrIpT:alert(1)", "javascript://%0aalert(1)",
	" javascript:alert(1)", "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)",
	"/%2F/evil.example", "/%2f/evil.example", "/%5C/evil.example", "/%5c/evil.example", "%2F%2Fevil.example",
	"/%252F/evil.example", "/%255C/evil.example", "/%25%32%46/evil.example", "evil.example", "evil.example/path",
	"@evil.example", "/@evil.example\\", "/\\@evil.example", "https:evil.example", "https:/evil.example",
	"//evil.example@desk.example", "//desk.example@evil.example", "/.\\evil.example", "/\x00/evil.example",
	"/%00/evil.example", "/\u00a0/evil.example", "/\x7f/evil.example", "/%7f/evil.example",
	"\u3000//evil.example", "/\u2028/evil.example", "//\tevil.example", "/%E3%80%80/evil.example",
	"/" + strings.Repeat("a", 3000), "\x00", "ftp://evil.example", "//[::1]", "//127.0.0.1:8080",
	"/%2e%2e\\evil.example", "/\\%2e%2e/evil.example", "?//evil.example", "#//evil.example",
}

func TestSafeReturnToRefusesOpenRedirects(t *testing.T) {
	if len(openRedirects) < 50 {
		t.Fatalf("corpus has %d payloads, want at least 50", len(openRedirects))
	}
	for _, bad := range openRedirects {
		if got := SafeReturnTo(bad); got != "/" {
			t.Errorf("SafeReturnTo(%q) = %q, want /", bad, got)
		}
	}
}

func FuzzSafeReturnTo(f *testing.F) {
	for _, s := range openRedirects {
		f.Add(s)
	}
	f.Add("/uploads/new")
	f.Fuzz(func(t *testing.T, raw string) {
		got := SafeReturnTo(raw)
		if got == "/" {
			return
		}
		if got != raw || !strings.HasPrefix(got, "/") || strings.HasPrefix(got, "//") || strings.ContainsAny(got, "\\\t\r\n") {
			t.Fatalf("SafeReturnTo(%q) = %q kept an unsafe target", raw, got)
		}
	})
}
