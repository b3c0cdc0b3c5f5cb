package main

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/devtools/testkit"
	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
)

// listReads counts the pages of the registered-device list Graph was asked for.
func listReads(e *emulator.Emulator) int {
	return countReceived(e, func(r emulator.ReceivedRequest) bool {
		return r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/windowsAutopilotDeviceIdentities")
	})
}

// "Load the next page" reads only the next page from Graph: the pages already read are kept for
// a few minutes, so paging through n pages costs n reads, not n(n+1)/2. Filters and the export
// over the pages loaded cost no read; the first page is always read afresh.
func TestLoadingTheNextPageReadsOnlyThatPage(t *testing.T) {
	clk := testkit.NewClockAt(time.Now())
	d := startDeskWith(t, nil, appOptions{Now: clk.Now, EmulatorPageSize: 5})
	ids := seedFleet(d.emu, "PG", 100)
	b := d.browser()
	d.signIn(b, "admin", "/")
	before := listReads(d.emu)
	next := "/devices"
	var doc *goquery.Document
	for page := 1; page <= 10; page++ {
		_, doc = d.get(b, next)
		if got := len(serialsOn(doc)); got != 5*page {
			t.Fatalf("page %d shows %d devices, want %d", page, got, 5*page)
		}
		next = doc.Find(`[data-testid="more"]`).AttrOr("href", "")
	}
	if got := listReads(d.emu) - before; got != 10 {
		t.Errorf("paging through 10 pages read %d pages from Graph, want 10", got)
	}
	seen := map[string]bool{}
	for _, s := range serialsOn(doc) {
		if seen[s] {
			t.Errorf("%s is listed twice", s)
		}
		seen[s] = true
	}
	// Filters and the export over the ten pages read nothing again.
	before = listReads(d.emu)
	_, doc = d.get(b, "/devices?pages=10&tag=sales")
	sales := len(serialsOn(doc))
	if sales == 0 || sales == 50 {
		t.Errorf("the Sales filter over ten pages shows %d devices", sales)
	}
	resp, err := b.Get(d.srv.URL + "/devices/export.csv?pages=10&tag=Sales")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	rows, err := csv.NewReader(bytes.NewReader(bytes.TrimPrefix(body, []byte("\xef\xbb\xbf")))).ReadAll()
	if err != nil || len(rows) != sales+1 {
		t.Errorf("the export of the filtered ten pages has %d rows (%v), want %d and the header", len(rows), err, sales)
	}
	if got := listReads(d.emu) - before; got != 0 {
		t.Errorf("filtering and exporting the pages loaded read %d pages again", got)
	}
	// Dozens of looks at once by the same sign-in each show their pages whole.
	var wg sync.WaitGroup
	shown := make([]int, 24)
	for i := range shown {
		wg.Go(func() {
			resp, err := b.Get(d.srv.URL + fmt.Sprintf("/devices?pages=%d", i%12+1))
			if err != nil {
				return
			}
			doc, err := goquery.NewDocumentFromReader(resp.Body)
			resp.Body.Close()
			if err == nil {
				shown[i] = len(serialsOn(doc))
			}
		})
	}
	wg.Wait()
	for i, n := range shown {
		if n != 5*(i%12+1) {
			t.Errorf("%d pages at once show %d devices", i%12+1, n)
		}
	}
	// A page Graph fails to give is not continued from: the next look starts from the first page.
	d.emu.SetFaults(emulator.Faults{ErrorRate: 1, ErrorStatuses: []int{http.StatusBadRequest}, Methods: []string{http.MethodGet}})
	_, doc = d.get(b, "/devices?pages=13")
	d.emu.SetFaults(emulator.Faults{})
	if doc.Find(`[data-testid="failure"]`).Length() != 1 {
		t.Errorf("a failed thirteenth page: %s", text(doc))
	}
	reread := func(what string, want int) {
		t.Helper()
		before := listReads(d.emu)
		_, doc := d.get(b, "/devices?pages=13")
		if got := len(serialsOn(doc)); got != 65 || listReads(d.emu)-before != want {
			t.Errorf("%s: thirteen pages show %d devices after %d reads, want 65 after %d", what, got, listReads(d.emu)-before, want)
		}
	}
	reread("after a failed page", 13)
	reread("a moment later", 0)
	clk.Advance(5 * time.Minute)
	reread("five minutes later", 13)
	// A change made through the desk is not hidden by the pages read before it.
	_, doc = d.get(b, "/devices/"+ids[0])
	form := formValues(t, doc, `form[action$="/properties"]`)
	form.Set("groupTag", "Kiosk")
	d.post(b, "/devices/"+ids[0]+"/properties", form)
	reread("after a change", 13)
	// The first page is read afresh: a device registered since shows.
	d.emu.SeedAutopilotDevices(demoidp.DemoTenantID, emulator.AutopilotDevice{SerialNumber: "AAA-NEW", Model: "Latitude 5440"})
	before = listReads(d.emu)
	_, doc = d.get(b, "/devices?serial=AAA-NEW")
	if got := serialsOn(doc); len(got) != 1 || listReads(d.emu)-before != 1 {
		t.Errorf("a new search shows %v after %d reads", got, listReads(d.emu)-before)
	}
	// Someone else's pages are their own: another browser reads its own.
	other := d.browser()
	d.signIn(other, "admin", "/")
	before = listReads(d.emu)
	_, doc = d.get(other, "/devices?pages=3")
	if got := len(serialsOn(doc)); got != 15 || listReads(d.emu)-before != 3 {
		t.Errorf("another sign-in's three pages show %d devices after %d reads", got, listReads(d.emu)-before)
	}
}

// A search that finds the device but whose filters leave it out says so, instead of telling the
// administrator to import a device that is registered.
func TestNoMatchSaysTheFiltersLeftTheSerialOut(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	d.emu.SeedAutopilotDevices(demoidp.DemoTenantID, emulator.AutopilotDevice{SerialNumber: "CZC000123", GroupTag: "Sales", Model: "EliteBook 840"})
	_, doc := d.get(b, "/devices?serial=CZC000123&tag=Kiosk")
	said := strings.Join(strings.Fields(doc.Find(`[data-testid="no-match"]`).Text()), " ")
	if strings.Contains(said, "import the device") || !strings.Contains(said, "CZC000123") || !strings.Contains(said, "filters") {
		t.Errorf("a registered device left out by the tag filter reads: %s", said)
	}
	_, doc = d.get(b, "/devices?serial=NOTREGISTERED&tag=Kiosk")
	if said := strings.Join(strings.Fields(doc.Find(`[data-testid="no-match"]`).Text()), " "); !strings.Contains(said, "import the device") {
		t.Errorf("a serial Graph does not know reads: %s", said)
	}
}

// The group tag filter keeps the tag chosen, also when no device loaded has it, and lists a tag
// once whatever its case (the filter ignores case).
func TestTagFilterKeepsItsValueAndListsEachTagOnce(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	d.emu.SeedAutopilotDevices(demoidp.DemoTenantID, emulator.AutopilotDevice{SerialNumber: "EMEA-1", GroupTag: "Sales-EMEA"},
		emulator.AutopilotDevice{SerialNumber: "EMEA-2", GroupTag: "sales-emea"})
	_, doc := d.get(b, "/devices?tag=Bulk-Tag")
	if got := doc.Find(`#tag option[selected]`).AttrOr("value", ""); got != "Bulk-Tag" {
		t.Errorf("the tag filter shows %q selected, want Bulk-Tag", got)
	}
	var emea []string
	doc.Find(`#tag option`).Each(func(_ int, s *goquery.Selection) {
		if strings.EqualFold(s.AttrOr("value", ""), "sales-emea") {
			emea = append(emea, s.AttrOr("value", ""))
		}
	})
	if len(emea) != 1 {
		t.Errorf("the tag filter offers %v for one tag", emea)
	}
	_, doc = d.get(b, "/devices?tag=SALES-EMEA")
	if got := doc.Find(`#tag option[selected]`); got.Length() != 1 || !strings.EqualFold(got.AttrOr("value", ""), "sales-emea") {
		t.Errorf("the tag typed in another case is not the one selected: %q", got.AttrOr("value", ""))
	}
	if got := serialsOn(doc); len(got) != 2 {
		t.Errorf("the tag in any case shows %v", got)
	}
}

// An action or outcome the history does not know is refused like any bad filter: a clear 400
// that keeps the other filters.
func TestActivityRefusesAnUnknownAction(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	for query, word := range map[string]string{"action=bogus&outcome=success": "bogus", "outcome=nope&action=import": "nope"} {
		resp, doc := d.get(b, "/activity?"+query)
		said := text(doc)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(said, "“"+word+"”") {
			t.Errorf("%s answered %d: %s", query, resp.StatusCode, said)
		}
		back := doc.Find(`a[href^="/activity"]`).FilterFunction(func(_ int, s *goquery.Selection) bool {
			return strings.Contains(s.AttrOr("href", ""), "success") || strings.Contains(s.AttrOr("href", ""), "import")
		})
		if back.Length() == 0 || strings.Contains(back.AttrOr("href", ""), word) {
			t.Errorf("%s: the way back does not keep the other filter: %s", query, fmt.Sprint(back.AttrOr("href", "")))
		}
	}
}
