// Package guid recognises GUIDs in the canonical form Graph writes them in. New GUIDs come from
// github.com/google/uuid.
package guid

import "github.com/google/uuid"

// Valid reports whether s is a GUID in its canonical 8-4-4-4-12 form, in either case (no braces,
// no urn:uuid: prefix, no bare 32 hex digits).
func Valid(s string) bool { return len(s) == 36 && uuid.Validate(s) == nil }
