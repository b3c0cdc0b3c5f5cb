package web

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"autopilotdesk/graphclient/guid"
	"autopilotdesk/graphclient/unseen"
	"autopilotdesk/views"
)

// devicePrefix is a group of routes that devices call (see Devices).
type devicePrefix struct {
	prefix    string // "/register/"
	bodyLimit int64
	tooLarge  *views.ErrorPage // the answer to a larger body
	secrets   func(s string, found func(start, end int))
}

// Devices returns the group for requests made from devices rather than browsers, under prefix
// (such as "/register"): refused while the state database has a problem, like every page, but
// without a session — no cookie is read or set — and so without the CSRF check, which protects
// a session's ambient authority these requests do not have: whatever they may do comes from
// the path alone. The first path segment after prefix is a secret (a one-time code): it is never
// logged, nor is any run of text in any other path that secrets finds reads as one (a code typed
// into a wrong address, joined to other text or not). Every error is answered in plain text, for a command prompt's screen,
// and bodies may be up to bodyLimit bytes (a larger one is answered with tooLarge).
func (s *Shell) Devices(prefix string, bodyLimit int64, tooLarge *views.ErrorPage, secrets func(s string, found func(start, end int))) *echo.Group {
	s.devices = append(s.devices, devicePrefix{prefix: strings.TrimSuffix(prefix, "/") + "/", bodyLimit: bodyLimit, tooLarge: tooLarge, secrets: secrets})
	return s.Echo.Group(strings.TrimSuffix(prefix, "/"), s.refuseWithoutState)
}

// deviceAddress is the device group path is meant for: under its prefix, the prefix alone
// (/register), or either typed in another case (/REGISTER/…). Its answers are plain text.
func (s *Shell) deviceAddress(path string) *devicePrefix {
	for i := range s.devices {
		p := s.devices[i].prefix
		if len(path) >= len(p) && strings.EqualFold(path[:len(p)], p) || strings.EqualFold(path, strings.TrimSuffix(p, "/")) {
			return &s.devices[i]
		}
	}
	return nil
}

// refuseWrongCase answers a request to a device address typed in another case (/REGISTER/…),
// which no route serves, before a page's session or CSRF check could take it for a browser's.
func (s *Shell) refuseWrongCase(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		path := c.Request().URL.Path
		d := s.deviceAddress(path)
		if d == nil || strings.HasPrefix(path, d.prefix) || path == strings.TrimSuffix(d.prefix, "/") {
			return next(c)
		}
		return &views.ErrorPage{Status: http.StatusNotFound, Title: "Autopilot Desk: the address is in lower case",
			Message:  "The desk's addresses are written in lower case, and this one was not, so it reached nothing. Nothing was kept.",
			NextStep: "Run the command again with " + d.prefix + " in lower case, as your IT team gave it; the code after it may be typed in either case."}
	}
}

func (s *Shell) deviceRoute(path string) *devicePrefix {
	for i := range s.devices {
		if strings.HasPrefix(path, s.devices[i].prefix) {
			return &s.devices[i]
		}
	}
	return nil
}

// loggedPath is path as logs may keep it: the secret segment of a device route, and every run of
// text elsewhere that reads as a device route's secret but is neither a word of the desk's own
// routes nor a GUID (/REGISTER/K7QM-2XWD-9FHT, /register-K7QM…, /x/K7QM….csv), replaced by "…".
func (s *Shell) loggedPath(path string) string {
	if d := s.deviceRoute(path); d != nil {
		rest := path[len(d.prefix):]
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			path = d.prefix + "…" + rest[i:]
		} else {
			path = d.prefix + "…"
		}
	}
	var masked strings.Builder // written only once a run is masked: most paths are kept as they are
	from := 0
	for _, d := range s.devices {
		if d.secrets == nil {
			continue
		}
		d.secrets(path, func(start, end int) {
			run := path[start:end]
			segStart := strings.LastIndexByte(path[:start], '/') + 1
			segEnd := strings.IndexByte(path[end:], '/')
			if segEnd < 0 {
				segEnd = len(path)
			} else {
				segEnd += end
			}
			if start < from || s.routeWords()[run] || s.routeWords()[path[segStart:segEnd]] || guid.Valid(run) {
				return
			}
			masked.WriteString(path[from:start])
			masked.WriteString("…")
			from = end
		})
	}
	if from == 0 {
		return path
	}
	masked.WriteString(path[from:])
	return masked.String()
}

// routeWords are the fixed segments of the desk's routes ("registration", "codes"), read once all
// routes are added, when the first request is logged.
func (s *Shell) routeWords() map[string]bool {
	s.routeWordsOnce.Do(func() {
		s.routeWordSet = map[string]bool{}
		for _, r := range s.Echo.Routes() {
			for seg := range strings.SplitSeq(r.Path, "/") {
				if seg != "" && !strings.ContainsAny(seg, ":*") {
					s.routeWordSet[seg] = true
				}
			}
		}
	})
	return s.routeWordSet
}

// PlainText writes a plain-text answer for a device's screen, lines ending in CRLF as Windows'
// console expects; HEAD gets the headers alone. Apart from the line ends, no character a person
// cannot see leaves in it (package unseen): an escape or a direction mark that reached the text
// is written as its code, so the answer cannot drive the technician's terminal. And it is ASCII:
// a Windows setup console (code page 437 or 850) shows anything else as other characters, so the
// typographic characters of the desk's words are written as their ASCII look-alikes (asciiFold)
// and any other character as its code.
func PlainText(c echo.Context, status int, text string) error {
	lines := strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = ASCII(unseen.Show(l))
	}
	text = strings.Join(lines, "\r\n")
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, echo.MIMETextPlainCharsetUTF8)
	h.Set(echo.HeaderContentLength, strconv.Itoa(len(text)))
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(status)
	if c.Request().Method == http.MethodHead {
		return nil
	}
	_, err := c.Response().Write([]byte(text))
	return err
}

// asciiFold writes the typographic characters the desk's words use as ASCII.
var asciiFold = strings.NewReplacer("…", "...", "“", `"`, "”", `"`, "„", `"`, "«", `"`, "»", `"`, "‘", "'", "’", "'",
	"—", "-", "–", "-", "‑", "-", "›", ">", "‹", "<", "→", "->", "←", "<-", "•", "*", "×", "x", "\u00a0", " ", "\u202f", " ")

// ASCII is s as a plain-text answer to a device writes it: typographic characters as their ASCII
// look-alikes, any other character beyond ASCII as its code (<U+00E9>).
func ASCII(s string) string {
	s = asciiFold.Replace(s)
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			var b strings.Builder
			for _, r := range s {
				if r < 0x80 {
					b.WriteRune(r)
				} else {
					fmt.Fprintf(&b, "<U+%04X>", r)
				}
			}
			return b.String()
		}
	}
	return s
}

// plainError answers a failed device request in plain text.
func (s *Shell) plainError(c echo.Context, pe *views.ErrorPage) {
	var b strings.Builder
	b.WriteString(pe.Title + "\n\n")
	if pe.Message != "" {
		b.WriteString(Wrap(pe.Message, 78) + "\n")
	}
	if pe.NextStep != "" {
		b.WriteString("\n" + Wrap(pe.NextStep, 78) + "\n")
	}
	if id := c.Response().Header().Get(echo.HeaderXRequestID); id != "" && pe.Status >= 500 {
		b.WriteString("\nRequest id: " + id + "\n")
	}
	if err := PlainText(c, pe.Status, b.String()); err != nil {
		s.log.Debug("write plain-text error", "error", err.Error())
	}
}

// Wrap breaks text into lines of at most width characters at spaces (a longer word keeps its
// own line); line breaks already in text are kept, and a line that starts with two spaces (a
// command to type) is kept whole.
func Wrap(text string, width int) string {
	var out strings.Builder
	for i, para := range strings.Split(text, "\n") {
		if i > 0 {
			out.WriteByte('\n')
		}
		if strings.HasPrefix(para, "  ") {
			out.WriteString(para)
			continue
		}
		n := 0
		for j, word := range strings.Fields(para) {
			w := len([]rune(word))
			switch {
			case j == 0:
			case n+1+w > width:
				out.WriteByte('\n')
				n = 0
			default:
				out.WriteByte(' ')
				n++
			}
			out.WriteString(word)
			n += w
		}
	}
	return out.String()
}
