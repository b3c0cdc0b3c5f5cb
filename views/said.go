package views

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// The desk writes its own words around text that people typed or devices sent (a reason for
// rejecting, a note, a serial, Graph's message), and that text may hold direction marks from
// before the desk refused them. A page shows such text in <bdi>, which isolates it: a
// right-to-left override in a reason reverses the reason alone, never the desk's words after it.
// Typed isolates a value shown on its own; Said isolates, within a sentence the desk wrote, what
// it quotes (“…”) and any word that holds a direction character.

// saidPart is a run of a sentence: the desk's own words, or text isolated from them.
type saidPart struct {
	Text    string
	Isolate bool
}

// saidParts splits a sentence into the desk's words and what it quotes (or a word holding a
// direction character), in order; joined, the parts are the sentence.
func saidParts(s string) []saidPart {
	var parts []saidPart
	plain := func(t string) {
		for t != "" {
			i := strings.IndexFunc(t, directional)
			if i < 0 {
				parts = append(parts, saidPart{Text: t})
				return
			}
			start := 0
			if sp := strings.LastIndexFunc(t[:i], unicode.IsSpace); sp >= 0 {
				_, n := utf8.DecodeRuneInString(t[sp:])
				start = sp + n
			}
			end := len(t)
			if j := strings.IndexFunc(t[i:], unicode.IsSpace); j >= 0 {
				end = i + j
			}
			if start > 0 {
				parts = append(parts, saidPart{Text: t[:start]})
			}
			parts = append(parts, saidPart{Text: t[start:end], Isolate: true})
			t = t[end:]
		}
	}
	for s != "" {
		open := strings.Index(s, "“")
		if open < 0 {
			break
		}
		inner := open + len("“")
		closing := strings.Index(s[inner:], "”")
		if closing < 0 {
			break
		}
		plain(s[:inner])
		if closing > 0 {
			parts = append(parts, saidPart{Text: s[inner : inner+closing], Isolate: true})
		}
		s = s[inner+closing:]
	}
	plain(s)
	return parts
}

// directional reports whether r changes the direction of the text around it: a mark, an
// embedding, an override or an isolate (Unicode's Bidi_Control characters).
func directional(r rune) bool { return unicode.Is(unicode.Bidi_Control, r) }
