package views

import (
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
)

// A sentence of the desk's words keeps every character, and what it quotes (or a word holding a
// direction character) is set apart to be isolated.
func TestSaidPartsIsolateWhatPeopleWrote(t *testing.T) {
	for s, want := range map[string][]string{
		"Rejected 1 device: “Wrong site\u202eevil”. Nothing else.":   {"Rejected 1 device: “", "[Wrong site\u202eevil]", "”. Nothing else."},
		"Created registration code “Floor 3” with group tag “Kiosk”": {"Created registration code “", "[Floor 3]", "” with group tag “", "[Kiosk]", "”"},
		"1 device (SER\u202eLIVE, OK-2) sent its hash":               {"1 device ", "[(SER\u202eLIVE,]", " OK-2) sent its hash"},
		"A\u00a0SER\u202eLIVE sent":                                  {"A\u00a0", "[SER\u202eLIVE]", " sent"},
		"Unclosed “quote\u202e of a device":                          {"Unclosed ", "[“quote\u202e]", " of a device"},
		"No quotes and no marks":                                     {"No quotes and no marks"},
		"Empty “” quote":                                             {"Empty “", "” quote"},
	} {
		var got []string
		joined := ""
		for _, p := range saidParts(s) {
			joined += p.Text
			if p.Isolate {
				got = append(got, "["+p.Text+"]")
			} else {
				got = append(got, p.Text)
			}
		}
		if joined != s {
			t.Errorf("%q: the parts join to %q", s, joined)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%q:\n got %q\nwant %q", s, got, want)
		}
	}
}

// On the registration page and in the history, a reason, a serial and a note a person or device
// wrote are in <bdi>: a right-to-left override stored in them stops at their end.
func TestPagesIsolateTypedText(t *testing.T) {
	now := time.Date(2026, 3, 2, 14, 0, 0, 0, time.UTC)
	reg := Registration{Now: now,
		Recent: []RegistrationEntry{{ID: "s1", CodeName: "“Floor\u202e3”", Received: now, State: "rejected", DecidedBy: "Adele Vance", Reason: "Wrong site\u202eevil",
			Devices: []RegistrationDevice{{Serial: "SER\u202eLIVE", Model: "Mo\u202edel"}}}},
		Codes: []RegistrationCode{{ID: "c1", Note: "Floor\u202e3", GroupTag: "Tag\u202eX", User: "ada@contoso.com", Creator: "Adele Vance", Created: now, Expires: now, Uses: 1, State: "active"}}}
	doc := render(t, RegistrationPage(testPage, reg))
	for sel, want := range map[string]string{
		`[data-testid="recent"] tr td:nth-child(4) .small bdi`: "Wrong site\u202eevil",
		`[data-testid="recent"] code bdi`:                      "SER\u202eLIVE",
		`[data-testid="recent"] .device-text bdi`:              "Model",
		`[data-testid="codes"] td:nth-child(1) bdi`:            "Floor\u202e3",
		`[data-testid="codes"] td:nth-child(2) bdi`:            "Tag\u202eX",
	} {
		if got := doc.Find(sel).First().Text(); got != want && !(want == "Model" && got == "Mo\u202edel") {
			t.Errorf("%s: %q, want %q", sel, got, want)
		}
	}
	if got := doc.Find(`[data-testid="codes"] td:nth-child(4)`).Text(); !strings.HasPrefix(got, "Adele Vance 2 Mar 2026") {
		t.Errorf("the creator's cell reads %q", got)
	}
	if got := doc.Find(`[data-testid="recent"] tr td:nth-child(4) .small`).Text(); got != "Rejected by Adele Vance: “Wrong site\u202eevil”." {
		t.Errorf("the decided row reads %q", got)
	}
	// Every U+202E on the page is inside a <bdi>.
	doc.Find("main *").Each(func(_ int, s *goquery.Selection) {
		if goquery.NodeName(s) == "bdi" {
			return
		}
		for _, n := range s.Contents().Nodes {
			if n.Type == 1 && strings.ContainsRune(n.Data, '\u202e') { // a text node
				t.Errorf("<%s> holds %q outside a <bdi>", goquery.NodeName(s), n.Data)
			}
		}
	})

	list := ActivityList{Entries: []ActivityEntry{{ID: "a1", Action: "registration-rejected", Outcome: "success", ActorName: "Adele\u202e Vance",
		Summary: "Rejected 1 device (SER\u202eLIVE) sent with registration code “Floor 3”: “Wrong site\u202eevil”. The hash was overwritten.", At: now}}}
	doc = render(t, ActivityListPage(testPage, list))
	summary := doc.Find(".summary")
	if got := summary.Text(); got != list.Entries[0].Summary {
		t.Errorf("the summary reads %q", got)
	}
	var isolated []string
	summary.Find("bdi").Each(func(_ int, s *goquery.Selection) { isolated = append(isolated, s.Text()) })
	if strings.Join(isolated, "|") != "(SER\u202eLIVE)|Floor 3|Wrong site\u202eevil" {
		t.Errorf("isolated in the summary: %q", isolated)
	}
	if doc.Find(`[data-testid="activity"] td:nth-child(3) bdi`).First().Text() != "Adele\u202e Vance" {
		t.Error("the actor's name is not isolated")
	}
}
