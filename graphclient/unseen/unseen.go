// Package unseen is the desk's one rule for characters a person cannot see in text: control
// characters (a tab, a line break, an escape that starts terminal commands), the format characters
// that change how the text around them reads or take no room at all (direction marks, embeddings,
// overrides and isolates, zero-width spaces and joiners, a byte order mark, a soft hyphen), line
// and paragraph separators, the fillers Unicode asks to be ignored, and bytes that are not text.
//
// Text entering the desk — typed by a team member or sent from a device — is refused with
// [Problem] when it holds one (a serial "SER\u202eLIVE" reads as "SEREVIL"; a group tag
// "Kiosk\u200b" looks like "Kiosk" but never matches a dynamic group's rule), or stripped with
// [Drop] where the text is only shown. Text already stored is written with [Show] in the desk's
// plain-text answers, so it can neither move a terminal's cursor nor reorder the words after it.
package unseen

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Is reports whether a person cannot see r, or r changes how the text around it reads.
func Is(r rune) bool {
	switch {
	case r < 0x20 || r == 0x7f:
		return true
	case r < 0x80:
		return false
	}
	return r == utf8.RuneError || unicode.IsControl(r) || unicode.In(r, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Other_Default_Ignorable_Code_Point)
}

// Find returns the first character of s the rule refuses (utf8.RuneError for bytes that are not
// text), and whether there is one.
func Find(s string) (rune, bool) {
	for i := 0; i < len(s); {
		if c := s[i]; c >= 0x20 && c < 0x7f {
			i++ // the common case, plain ASCII, stays cheap
			continue
		}
		r, n := utf8.DecodeRuneInString(s[i:])
		if Is(r) {
			return r, true
		}
		i += n
	}
	return 0, false
}

// Describe names a character the rule refuses, for a message: "a character that cannot be seen
// (U+202E, a right-to-left override)", "a control character (U+0009, a tab)".
func Describe(r rune) string {
	switch {
	case r == utf8.RuneError:
		return "bytes that are not text (saved in another encoding, or damaged)"
	case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
		return fmt.Sprintf("a control character (%s, %s)", Code(r), name(r, "a character that moves the text or the cursor"))
	}
	return fmt.Sprintf("a character that cannot be seen (%s, %s)", Code(r), name(r, "a direction mark or zero-width character"))
}

// Problem says what is wrong with s, for a message that starts with subject ("The note"), or ""
// when the rule refuses nothing in it: "The note holds a character that cannot be seen (U+202E, a
// right-to-left override), which makes the text read otherwise than it is: clear the field and
// type it again …". A field that looks right may hold one, so the next step is to type it anew.
func Problem(subject, s string) string {
	r, found := Find(s)
	if !found {
		return ""
	}
	why := ", which makes the text read otherwise than it is"
	if r == utf8.RuneError {
		why = ""
	}
	return subject + " holds " + Describe(r) + why + ": " + Retype
}

// Retype is the next step for a typed value holding a character nobody can see: it may look
// right, so it is typed anew rather than corrected.
const Retype = "clear the field and type it again (text copied from a web page, a chat or a document can bring such characters along)."

// Drop returns s without the characters the rule refuses (and without bytes that are not text).
func Drop(s string) string {
	if _, found := Find(s); !found {
		return s
	}
	return strings.Map(func(r rune) rune {
		if Is(r) {
			return -1
		}
		return r
	}, s)
}

// Show writes s for a plain-text answer: each character the rule refuses becomes its code in
// angle brackets ("SER<U+202E>LIVE"), so a terminal shows it instead of obeying it.
func Show(s string) string {
	if _, found := Find(s); !found {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if Is(r) {
			b.WriteString("<" + Code(r) + ">")
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Code writes r as Unicode names it: U+202E.
func Code(r rune) string { return fmt.Sprintf("U+%04X", r) }

var names = map[rune]string{
	0x00: "a null", 0x09: "a tab", 0x0a: "a line break", 0x0b: "a vertical tab", 0x0c: "a page break", 0x0d: "a carriage return",
	0x1b: "an escape, which starts terminal commands", 0x7f: "a delete", 0x85: "a next-line break",
	0x2028: "a line separator", 0x2029: "a paragraph separator",
	0x00ad: "a soft hyphen", 0x061c: "an Arabic letter mark", 0x180e: "a Mongolian vowel separator",
	0x200b: "a zero-width space", 0x200c: "a zero-width non-joiner", 0x200d: "a zero-width joiner",
	0x200e: "a left-to-right mark", 0x200f: "a right-to-left mark",
	0x202a: "a left-to-right embedding", 0x202b: "a right-to-left embedding", 0x202c: "a pop directional formatting",
	0x202d: "a left-to-right override", 0x202e: "a right-to-left override",
	0x2060: "a word joiner", 0x2066: "a left-to-right isolate", 0x2067: "a right-to-left isolate",
	0x2068: "a first strong isolate", 0x2069: "a pop directional isolate",
	0x3164: "a Hangul filler", 0xfeff: "a byte order mark (zero-width no-break space)",
}

func name(r rune, otherwise string) string {
	if n, ok := names[r]; ok {
		return n
	}
	return otherwise
}
