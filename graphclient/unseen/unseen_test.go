package unseen

import (
	"strings"
	"testing"
)

// Every kind of character a person cannot see is found and named by its code; letters of any
// script, punctuation, spaces and emoji are not.
func TestFindNamesWhatCannotBeSeen(t *testing.T) {
	for s, want := range map[string]string{
		"SER\u202eLIVE":        "cannot be seen (U+202E, a right-to-left override)",
		"5CG3281JQZ\u200b":     "cannot be seen (U+200B, a zero-width space)",
		"Kiosk\u2066x":         "cannot be seen (U+2066, a left-to-right isolate)",
		"\ufeffKiosk":          "cannot be seen (U+FEFF",
		"soft\u00adhyphen":     "cannot be seen (U+00AD, a soft hyphen)",
		"filler\u3164":         "cannot be seen (U+3164, a Hangul filler)",
		"tag\U000E0041":        "cannot be seen (U+E0041",
		"A\x1b[2J":             "control character (U+001B, an escape",
		"Wrong site\r\nagain":  "control character (U+000D, a carriage return)",
		"a\tb":                 "control character (U+0009, a tab)",
		"a\u0085b":             "control character (U+0085",
		"a\u2028b":             "control character (U+2028, a line separator)",
		"a\u009bb":             "control character (U+009B",
		"not\xfftext":          "bytes that are not text",
		"Sales-EMEA":           "",
		"Ünïcødé Ελληνικά あ":   "",
		"עברית بالعربية":       "",
		"Floor 3 — “refurb” ✓": "",
		"Team 🚀":               "",
		"":                     "",
	} {
		got := Problem("The note", s)
		if want == "" {
			if got != "" {
				t.Errorf("%q refused: %q", s, got)
			}
			continue
		}
		if !strings.HasPrefix(got, "The note holds ") || !strings.Contains(got, want) || !strings.HasSuffix(got, ": "+Retype) {
			t.Errorf("%q: %q, want it to say %q", s, got, want)
		}
	}
}

// What is only shown keeps its visible characters; a plain-text answer shows the hidden ones by
// their code instead of obeying them.
func TestDropAndShow(t *testing.T) {
	in := "A\x1b[2J\x1b[31mRED\u202eevil\r\nLine2\u200b"
	if got := Drop(in); got != "A[2J[31mREDevilLine2" {
		t.Errorf("Drop = %q", got)
	}
	if got := Show(in); got != "A<U+001B>[2J<U+001B>[31mRED<U+202E>evil<U+000D><U+000A>Line2<U+200B>" {
		t.Errorf("Show = %q", got)
	}
	if got := Show("Not\xffours"); got != "Not<U+FFFD>ours" {
		t.Errorf("Show of bytes that are not text = %q", got)
	}
	for _, s := range []string{"HP EliteBook 840 G10", "Contoso Géräte", ""} {
		if Drop(s) != s || Show(s) != s {
			t.Errorf("%q changed", s)
		}
	}
	for _, r := range Show(in) {
		if Is(r) {
			t.Fatalf("Show left %U in %q", r, Show(in))
		}
	}
}

func FuzzShowLeavesNothingHidden(f *testing.F) {
	f.Add("SER\u202eLIVE")
	f.Add("A\x1b[2J\r\n\xff")
	f.Fuzz(func(t *testing.T, s string) {
		for _, out := range []string{Show(s), Drop(s)} {
			if _, found := Find(out); found {
				t.Fatalf("%q: %q still holds a hidden character", s, out)
			}
		}
		if _, found := Find(s); !found && (Show(s) != s || Drop(s) != s) {
			t.Fatalf("%q changed though nothing in it is hidden", s)
		}
	})
}
