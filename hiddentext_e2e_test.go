package main

import (
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// reorderedAfterQuote finds, in the element sel, a character of the last quoted text (“…”) drawn
// right of the closing quote on its line: what a direction override that was not isolated does to
// the desk's words after it. It answers "in order" when there is none.
const reorderedAfterQuote = `(() => {
	const el = document.querySelector(SEL);
	if (!el) return "missing";
	const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT), chars = [];
	for (let n; (n = walker.nextNode()); ) for (let i = 0; i < n.data.length; i++) chars.push([n, i, n.data[i]]);
	const rectOf = ([n, i]) => { const r = document.createRange(); r.setStart(n, i); r.setEnd(n, i + 1); return r.getClientRects()[0]; };
	const close = chars.findLastIndex(c => c[2] === "”");
	const open = chars.slice(0, close).findLastIndex(c => c[2] === "“");
	if (close < 0 || open < 0) return "missing";
	const q = rectOf(chars[close]);
	for (const c of chars.slice(open + 1, close)) {
		const r = rectOf(c);
		if (!r || r.width === 0) continue;
		if (r.top < q.bottom - 1 && r.bottom > q.top + 1 && r.left > q.left + 0.5) return "reordered: " + JSON.stringify(c[2]) + " is drawn right of the closing quote";
	}
	return "in order";
})()`

// In a real browser, a right-to-left override stored in a reason reverses the reason alone: the
// desk's own words after it (the closing quote and full stop, "Its hash was overwritten.") stay
// after it, in reading order, on the registration page and in the history.
func TestStoredDirectionMarksReverseNothingButThemselves(t *testing.T) {
	bd, tb := startSignedIn(t, quickImports, "admin", "/registration")
	storeHiddenText(t, bd.app, func(code string) { bd.sendDevice(t, code, "STORED-1") })
	for path, sel := range map[string]string{
		"/registration": `[data-testid="recent"] tr[data-state="rejected"] td:nth-child(4) .small`,
		"/activity":     `[data-testid="activity"] tbody tr:first-child .summary`,
	} {
		tb.navigate("open "+path, chromedp.Navigate(bd.base+path))
		if got := tb.eval(strings.Replace(reorderedAfterQuote, "SEL", "'"+sel+"'", 1)); got != "in order" {
			t.Errorf("%s: %s", path, got)
		}
		tb.assertClean()
	}
}
