package main

import (
	"bytes"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"strings"
	"testing"
	"time"
	"unicode/utf16"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/views"
)

// The import page lists the tenant's recent imports and drafts, each a link to its page, for
// everyone in the tenant; its owner is told theirs wait there.
func TestImportPageLeadsBackToDraftsAndImports(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-LIST", 2)
	job := draftOf(t, d, b, data)
	_, doc := d.get(b, "/devices/import")
	list := doc.Find(`[data-testid="recent-imports"]`)
	link := list.Find(`a[href="` + job + `"]`)
	if link.Text() != "devices.csv" {
		t.Fatalf("no link to the draft named by its file: %s", list.Text())
	}
	cells := link.Closest("tr").Find("td")
	if got := strings.Join(strings.Fields(cells.Eq(1).Text()), " "); got != "Draft 2 rows, 2 ready to import; nothing sent yet." {
		t.Errorf("the draft stands: %q", got)
	}
	if got := strings.Join(strings.Fields(cells.Eq(2).Text()), " "); !strings.HasPrefix(got, "Adele Vance") || !strings.HasSuffix(got, "(you)") {
		t.Errorf("the draft is by %q", got)
	}
	if got := doc.Find(`[data-testid="open-imports"] a[href="#open-imports"]`).Text(); got != "1 import of yours is waiting or under way" {
		t.Errorf("the note at the top: %q", got)
	}
	reader := d.browser()
	rdoc := parse(t, d.signIn(reader, "reader", "/devices/import"))
	if rdoc.Find(`[data-testid="recent-imports"] a[href="`+job+`"]`).Length() != 1 || rdoc.Find(`[data-testid="open-imports"]`).Length() != 0 {
		t.Errorf("the reader's list: %s", rdoc.Find(`[data-testid="recent-imports"]`).Text())
	}
}

// A file that is not a device CSV (an image, unreadable pasted text) goes back to the form with
// its error and the pasted text, and nothing is kept.
func TestUnreadableUploadGoesBackToTheForm(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	png := append([]byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), bytes.Repeat([]byte{0, 0x81, 0xff, 7}, 200)...)
	resp, html := d.uploadCSV(b, csrf, png)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, "not a CSV text file") || strings.Contains(html, "Windows ANSI") {
		t.Errorf("an image answered %d at %s: %.300s", resp.StatusCode, resp.Request.URL.Path, html)
	}
	pasted := "these are not\x81 devices"
	resp = d.postMultipart(b, "/devices/import", func(w *multipart.Writer) {
		w.WriteField("_csrf", csrf)
		w.WriteField("csv", pasted)
	})
	page := parse(t, resp)
	if resp.StatusCode != http.StatusUnprocessableEntity || page.Find("textarea#csv").Text() != pasted || page.Find(`[role="alert"]`).Length() != 1 {
		t.Errorf("unreadable pasted text answered %d: %s", resp.StatusCode, text(page))
	}
	if _, doc := d.get(b, "/devices/import"); doc.Find(`[data-testid="recent-imports"] tbody tr`).Length() != 0 {
		t.Errorf("an unreadable file was kept: %s", doc.Find(`[data-testid="recent-imports"]`).Text())
	}
}

// The page promises 10,000 devices, and UTF-16 takes twice the bytes: a UTF-16 file over the
// UTF-8 limit is read, and a file over its limit is refused with the limit named.
func TestUTF16FileMayBeTwiceTheSize(t *testing.T) {
	t.Parallel() // a long test: it runs beside the other long ones once the short ones are done
	if testing.Short() {
		t.Skip("uploads 100 MB")
	}
	d := startDesk(t, nil)
	b := d.browser()
	doc := parse(t, d.signIn(b, "admin", "/devices/import"))
	csrf := doc.Find(`input[name="_csrf"]`).First().AttrOr("value", "")
	big := bytes.Repeat([]byte("A"), 49<<20)
	resp, html := d.uploadCSV(b, csrf, big)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(html, "at most 48 MB") || !strings.Contains(html, "Split the file") {
		t.Errorf("a 49 MB file answered %d: %.300s", resp.StatusCode, html)
	}
	big = nil
	data, _ := deviceCSV("SN-U16", 6500)
	units := utf16.Encode([]rune(string(data)))
	u16 := make([]byte, 2, 2+2*len(units))
	u16[0], u16[1] = 0xFF, 0xFE
	for _, u := range units {
		u16 = append(u16, byte(u), byte(u>>8))
	}
	if len(u16) <= 48<<20 {
		t.Fatalf("the UTF-16 file has only %d bytes", len(u16))
	}
	resp, html = d.uploadCSV(b, csrf, u16)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Request.URL.Path, views.ImportJobURL("")) || !strings.Contains(html, "6,500 rows") {
		t.Errorf("a UTF-16 file of %d MB answered %d at %s: %.300s", len(u16)>>20, resp.StatusCode, resp.Request.URL.Path, html)
	}
}

// Without JavaScript, an import with every row ticked "Leave out" comes back with the ticks as
// they were sent and no import button to press, and sends nothing however often it is sent.
func TestImportWithEveryRowLeftOutKeepsItsTicks(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-TICKS", 3)
	job := draftOf(t, d, b, data)
	form := submitForm(t, d, b, job)
	form["leaveOut"] = []string{"2", "3", "4"}
	for range 2 {
		resp, doc := d.post(b, job+"/submit", form)
		if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(text(doc), "Nothing to import") {
			t.Fatalf("answered %d: %.300s", resp.StatusCode, text(doc))
		}
		if n := doc.Find(`input[name="leaveOut"][checked]`).Length(); n != 3 {
			t.Errorf("%d of 3 boxes ticked as sent", n)
		}
		button := doc.Find(`[data-testid="import-button"]`)
		if _, disabled := button.Attr("disabled"); !disabled || strings.Contains(button.Text(), "Import 3") {
			t.Errorf("the import button: %q, disabled %v", button.Text(), disabled)
		}
		form = formValues(t, doc, `form[action$="/submit"]`)
	}
	if n := importCalls(d.app.demo.Emulator); n != 0 {
		t.Errorf("%d import calls", n)
	}
}

// After Graph refuses an import for want of a role, the advice is to upload the file again once
// the role is given (the hashes are gone), and nothing offers to sync what was not imported.
func TestRefusedImportSaysToUploadTheFileAgain(t *testing.T) {
	d := startDesk(t, nil)
	d.app.demo.Emulator.SetFaults(emulator.Faults{Forbid403Nested: true})
	b := d.browser()
	d.signIn(b, "admin", "/")
	data, _ := deviceCSV("SN-NOROLE", 3)
	job := draftOf(t, d, b, data)
	d.post(b, job+"/submit", submitForm(t, d, b, job))
	doc := waitFinished(t, d, b, job)
	refused := doc.Find(`[data-testid="refused"]`).Text()
	if !strings.Contains(refused, "upload the file again") || strings.Contains(refused, "sign in again.") {
		t.Errorf("the refusal's advice: %s", refused)
	}
	if doc.Find(`form[action="/devices/sync"]`).Length() != 0 {
		t.Error("Sync with Autopilot is offered though nothing was imported")
	}
}

// Others' uploads never push a person's own drafts off the import page: Adele's draft stays
// listed and counted under hers after Isaiah uploads 25, and the organisation's list says how
// many it shows of how many, with a way to the older ones that reaches hers.
func TestOwnOpenImportsStayListedWhateverOthersUpload(t *testing.T) {
	d := startDesk(t, nil)
	adele, isaiah := d.browser(), d.browser()
	d.signIn(adele, "admin", "/")
	d.signIn(isaiah, "many-groups", "/")
	data, _ := deviceCSV("SN-MINE", 1)
	job := draftNamed(t, d, adele, "batch-a.csv", data)
	for i := range 25 {
		data, _ := deviceCSV(fmt.Sprintf("SN-IS%02d", i), 1)
		draftNamed(t, d, isaiah, fmt.Sprintf("isaiah-%02d.csv", i), data)
	}
	_, doc := d.get(adele, "/devices/import")
	if got := doc.Find(`[data-testid="open-imports"] a[href="#open-imports"]`).Text(); got != "1 import of yours is waiting or under way" {
		t.Errorf("the note at the top: %q", got)
	}
	if mine := doc.Find(`[data-testid="open-of-mine"] tbody tr`); mine.Length() != 1 || mine.Find(`a[href="`+job+`"]`).Text() != "batch-a.csv" {
		t.Errorf("Adele's open imports: %s", mine.Text())
	}
	list := doc.Find(`[data-testid="recent-imports"]`)
	if list.Find("tbody tr").Length() != 20 || list.Find(`a[href="`+job+`"]`).Length() != 0 {
		t.Fatalf("the organisation's newest: %d rows", list.Find("tbody tr").Length())
	}
	if got := list.Find(`[data-testid="imports-showing"]`).Text(); got != "Showing the newest 20 of 26 imports." {
		t.Errorf("the list says %q", got)
	}
	older := list.Find(`[data-testid="import-pages"] a[rel="next"]`).AttrOr("href", "")
	_, doc = d.get(adele, older)
	list = doc.Find(`[data-testid="recent-imports"]`)
	if list.Find("tbody tr").Length() != 6 || list.Find(`a[href="`+job+`"]`).Text() != "batch-a.csv" || list.Find(`a[rel="next"]`).Length() != 0 {
		t.Errorf("the older imports (%s): %s", older, list.Text())
	}
	if got := list.Find(`[data-testid="imports-showing"]`).Text(); got != "Showing 6 older imports of 26 in all." {
		t.Errorf("the older page says %q", got)
	}
	if title := doc.Find("title").Text(); !strings.Contains(title, "Import devices · a later page") {
		t.Errorf("the older page is titled %q", title)
	}
	if doc.Find(`[data-testid="open-of-mine"] a[href="`+job+`"]`).Length() != 1 {
		t.Errorf("an older page lost Adele's own list")
	}
	_, doc = d.get(isaiah, "/devices/import")
	if got := doc.Find(`[data-testid="open-imports"] a`).Text(); got != "25 imports of yours are waiting or under way" || doc.Find(`[data-testid="open-of-mine"] tbody tr`).Length() != 25 {
		t.Errorf("Isaiah's note %q", got)
	}
	if resp, _ := d.get(adele, "/devices/import?before=nonsense"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a made-up page of the list answered %d", resp.StatusCode)
	}
}

// An import is named by its file wherever it is shown apart from others: its page (meta line,
// title, crumbs), the team activity's record of its end and its report's download name. A file
// name is what a browser sent: it loses any folder, control and invisible characters and quotes,
// and a name beyond ASCII still names the download safely.
func TestImportIsNamedByItsFile(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{ImportDelays: emulator.ImportDelays{Unknown: time.Millisecond, Pending: time.Millisecond}, SyncDuration: time.Nanosecond})
	b := d.browser()
	d.signIn(b, "admin", "/")
	cases := []struct{ sent, shown, download string }{
		{"batch-a.csv", "batch-a.csv", "batch-a-import-report.csv"},
		{"C:\\Users\\adele\\Desktop\\Geräte  \"Q4\"\u202e<2>.csv", "Geräte Q42.csv", "Geräte Q42-import-report.csv"},
	}
	for i, c := range cases {
		data, _ := deviceCSV(fmt.Sprintf("SN-NAMED%d", i), i+1)
		job := draftNamed(t, d, b, c.sent, data)
		_, doc := d.post(b, job+"/submit", submitForm(t, d, b, job))
		doc = waitFinished(t, d, b, job)
		if got := doc.Find(`[data-testid="owner"] [data-testid="file-name"]`).Text(); got != c.shown {
			t.Errorf("the page names the file %q, want %q", got, c.shown)
		}
		if title := doc.Find("title").Text(); !strings.Contains(title, c.shown) || doc.Find(`.crumbs [aria-current="page"]`).Text() != c.shown {
			t.Errorf("the title %q or the crumbs do not name %q", title, c.shown)
		}
		resp, err := b.Get(d.srv.URL + job + "/report.csv")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cd := resp.Header.Get("Content-Disposition")
		_, params, err := mime.ParseMediaType(cd)
		if err != nil || params["filename"] != c.download || strings.ContainsFunc(cd, func(r rune) bool { return r < ' ' || r > '~' }) {
			t.Errorf("the report downloads as %q (%v)", cd, err)
		}
	}
	_, doc := d.get(b, "/activity?action=import-finished")
	got := text(doc)
	for _, want := range []string{"Import of 1 device from “batch-a.csv” finished", "Import of 2 devices from “Geräte Q42.csv” finished"} {
		if !strings.Contains(got, want) {
			t.Errorf("the team activity does not say %q: %s", want, got)
		}
	}
	// Pasted rows have no file name: the page names the import by when it was uploaded.
	_, doc = d.get(b, "/devices/import")
	resp := d.postMultipart(b, "/devices/import", func(w *multipart.Writer) {
		w.WriteField("_csrf", doc.Find(`input[name="_csrf"]`).First().AttrOr("value", ""))
		data, _ := deviceCSV("SN-PASTED", 1)
		w.WriteField("csv", string(data))
	})
	page := parse(t, resp)
	if page.Find(`[data-testid="file-name"]`).Length() != 0 || !strings.HasPrefix(page.Find(`.crumbs [aria-current="page"]`).Text(), "Import of ") {
		t.Errorf("pasted rows are named %q", page.Find(`.crumbs [aria-current="page"]`).Text())
	}
}

// A draft's page shows every row, each with its "Leave out" tick, so its weight grows with the
// file: a plain row (ready, a group tag, no user) stays within 360 bytes of HTML (387 when an empty
// list of notes and empty cells were written for every row).
func TestDraftPageWeighsLittlePerRow(t *testing.T) {
	d := startDesk(t, nil)
	b := d.browser()
	d.signIn(b, "admin", "/")
	page := func(n int) int {
		data, _ := deviceCSV(fmt.Sprintf("SN-W%d", n), n)
		job := draftOf(t, d, b, data)
		resp, err := b.Get(d.srv.URL + job)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		doc, _ := goquery.NewDocumentFromReader(bytes.NewReader(body))
		if resp.StatusCode != http.StatusOK || doc.Find(`[data-testid="preflight"] tbody tr input[name="leaveOut"]`).Length() != n {
			t.Fatalf("the draft of %d rows does not show each with its tick", n)
		}
		return len(body)
	}
	small, large := page(3), page(503)
	perRow := float64(large-small) / 500
	t.Logf("a plain row weighs %.1f bytes of HTML; the page of 503 rows %d", perRow, large)
	if perRow > 360 {
		t.Errorf("a plain row weighs %.1f bytes of HTML, want at most 360", perRow)
	}
}
