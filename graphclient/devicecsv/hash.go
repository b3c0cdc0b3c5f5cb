package devicecsv

import (
	"encoding/base64"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Truncate shortens a hardware hash for display, the desk's one rule wherever a hash is shown
// (pages, messages, the exchanges kept for display): the first four and last four characters
// around "…". Hashes of eight characters or fewer are shown as "…" alone, so the whole value
// never appears.
func Truncate(hash string) string {
	n := utf8.RuneCountInString(hash)
	if n <= 8 {
		return "…"
	}
	head := 0
	for i := 0; i < 4; i++ {
		_, size := utf8.DecodeRuneInString(hash[head:])
		head += size
	}
	tail := len(hash)
	for i := 0; i < 4; i++ {
		_, size := utf8.DecodeLastRuneInString(hash[:tail])
		tail -= size
	}
	return hash[:head] + "…" + hash[tail:]
}

// DecodeHash decodes a cleaned hardware hash (standard, padded base64).
func DecodeHash(h string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(h)
}

// b64Alphabet marks the bytes of the standard base64 alphabet.
var b64Alphabet = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/") {
		t[c] = true
	}
	return t
}()

// b64Len reports whether s is padded standard base64 exactly as
// base64.StdEncoding accepts it, and the decoded length, without decoding.
func b64Len(s string) (int, bool) {
	n := len(s)
	if n == 0 || n%4 != 0 {
		return 0, false
	}
	pad := 0
	if s[n-1] == '=' {
		pad++
		if s[n-2] == '=' {
			pad++
		}
	}
	for i := 0; i < n-pad; i++ {
		if !b64Alphabet[s[i]] {
			return 0, false
		}
	}
	return n/4*3 - pad, true
}

// hasSpace reports whether s contains any whitespace (or any non-ASCII byte,
// which could be Unicode whitespace).
func hasSpace(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= utf8.RuneSelf {
			return true
		}
	}
	return false
}

// cleanHash strips whitespace from a trimmed, non-empty hash and repairs its
// base64 padding. It returns the cleaned hash, notes about what changed, and an
// error message when the hash cannot be used.
func cleanHash(raw string) (clean string, notes []string, errMsg string) {
	if n, ok := b64Len(raw); ok { // the common case: nothing to clean
		if n < minHashBytes || n > maxHashBytes {
			return raw, nil, implausible(n)
		}
		return raw, nil, ""
	}
	s := raw
	if hasSpace(s) {
		stripped := strings.Map(func(r rune) rune {
			if unicode.IsSpace(r) {
				return -1
			}
			return r
		}, s)
		if stripped != s {
			notes = append(notes, "Hardware hash contained spaces or line breaks; they were removed.")
			s = stripped
		}
	}
	body := strings.TrimRight(s, "=")
	for i := 0; i < len(body); i++ {
		if c := body[i]; !b64Alphabet[c] {
			r, _ := utf8.DecodeRuneInString(body[i:])
			what := fmt.Sprintf("the character %q", r)
			if c == '=' {
				what = "an \"=\" sign in the middle"
			}
			return s, notes, fmt.Sprintf("Hardware hash is not valid base64: it contains %s at position %d. Capture the hash again on the device (Get-WindowsAutopilotInfo) or ask the OEM for it.", what, utf8.RuneCountInString(body[:i])+1)
		}
	}
	if body == "" {
		return s, notes, "Hardware hash is not valid base64: it contains only \"=\" signs. Capture the hash again on the device (Get-WindowsAutopilotInfo) or ask the OEM for it."
	}
	n, ok := b64Len(s)
	if !ok {
		// Microsoft's documented repair: pad with "=" until the length is a
		// multiple of four; when that does not decode, append "A" before padding.
		origPad := s[len(body):]
		for k := 0; k < 4 && !ok; k++ {
			l := len(body) + k
			if l%4 == 1 {
				continue
			}
			cand := body + strings.Repeat("A", k) + "=="[:(4-l%4)%4]
			if n, ok = b64Len(cand); ok {
				s = cand
			}
		}
		if !ok { // unreachable: some k always gives a valid length
			return s, notes, "Hardware hash is not valid base64 and could not be repaired. Capture the hash again on the device (Get-WindowsAutopilotInfo)."
		}
		suffix := s[len(body):]
		switch {
		case strings.HasPrefix(suffix, origPad) && strings.HasPrefix(suffix[len(origPad):], "A"):
			notes = append(notes, fmt.Sprintf("Hardware hash was missing base64 padding and its last block was incomplete; added %q (Microsoft's documented repair). If the import fails with error 802, capture the hash again.", suffix[len(origPad):]))
		case strings.HasPrefix(suffix, origPad):
			notes = append(notes, fmt.Sprintf("Hardware hash was missing base64 padding; added %q.", suffix[len(origPad):]))
		case suffix == "":
			notes = append(notes, fmt.Sprintf("Hardware hash had extra base64 padding; removed %q.", origPad))
		default:
			notes = append(notes, fmt.Sprintf("Hardware hash had incorrect base64 padding; its ending %q was changed to %q.", origPad, suffix))
		}
	}
	if n < minHashBytes || n > maxHashBytes {
		return s, notes, implausible(n)
	}
	return s, notes, ""
}

func implausible(n int) string {
	return fmt.Sprintf("Hardware hash has an implausible length: it decodes to %d bytes, but a real Autopilot hardware hash is about 4 KB (%d to %d bytes). It was probably cut off or changed, for example by Excel; capture it again.", n, minHashBytes, maxHashBytes)
}
