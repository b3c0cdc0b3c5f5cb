// Package guid recognises GUIDs in the canonical form Graph writes them in. New GUIDs come from
// github.com/google/uuid.
package guid

import (
	"strings"

	"github.com/google/uuid"
)

// Valid reports whether s is a GUID in its canonical 8-4-4-4-12 form, in either case (no braces,
// no urn:uuid: prefix, no bare 32 hex digits).
func Valid(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }

// Normalize reads a GUID the way people paste one — in upper case, in the braces Windows and the
// registry print ({8D639524-...}), with spaces around — and returns it in the canonical lower-case
// form Graph writes. Anything else is refused.
func Normalize(s string) (string, bool) {
	s = strings.TrimSpace(s)
	if len(s) == 38 && s[0] == '{' && s[37] == '}' {
		s = s[1:37]
	}
	if !Valid(s) {
		return "", false
	}
	return strings.ToLower(s), true
}
