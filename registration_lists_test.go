package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// seedCodes stores n codes of the demo tenant made by Adele, each newer than the one before,
// all after every code made so far; spent, when set, makes them take no more devices.
func seedCodes(t *testing.T, d *desk, n int, uses int, spent bool) []*store.RegistrationCode {
	t.Helper()
	ctx := context.Background()
	start := time.Now().Add(time.Minute)
	var codes []*store.RegistrationCode
	for i := range n {
		rc := &store.RegistrationCode{TenantID: demoidp.DemoTenantID, CreatorOID: demoidp.AdminObjectID, CreatorUPN: "AdeleV@contoso.example",
			CreatorName: "Adele Vance", Note: fmt.Sprintf("seeded %d", i), CreatedAt: start.Add(time.Duration(i) * time.Millisecond),
			ExpiresAt: time.Now().Add(4 * time.Hour), Uses: uses}
		if err := d.app.db.CreateRegistrationCode(ctx, rc, fmt.Sprintf("seeded-hash-%d-%d", time.Now().UnixNano(), i), "",
			&store.Activity{TenantID: demoidp.DemoTenantID, Action: "registration-code-created"}); err != nil {
			t.Fatal(err)
		}
		if spent {
			if err := d.app.db.RevokeRegistrationCode(ctx, demoidp.DemoTenantID, rc.ID, "Adele Vance",
				&store.Activity{TenantID: demoidp.DemoTenantID, Action: "registration-code-revoked"}); err != nil {
				t.Fatal(err)
			}
		}
		codes = append(codes, rc)
	}
	return codes
}

// An administrator can always revoke a code that still takes devices, however many codes the
// team made after it: every such code is listed with its Revoke button, the codes that take no
// more are the newest few with a note saying how many there are, and a revoke found by its id
// stops the code at once.
func TestAnOldCodeThatTakesDevicesCanBeRevoked(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	old, _ := createCode(t, d, admin, map[string]string{"hours": "168", "uses": "50", "note": "OLD CODE to revoke"})
	_, doc := d.get(admin, "/registration")
	oldRow := `tr[data-code-state="active"]:has(td:contains("OLD CODE to revoke"))`
	action := doc.Find(oldRow+` form`).AttrOr("action", "")
	form := formValues(t, doc, oldRow+` form`)
	seedCodes(t, d, 150, 1, false)
	seedCodes(t, d, 250, 1, true)

	_, doc = d.get(admin, "/registration")
	if doc.Find(oldRow).Length() != 1 || doc.Find(oldRow+` form[action="`+action+`"]`).Length() != 1 {
		t.Errorf("the old code that still takes devices is not listed with its Revoke button")
	}
	if n := doc.Find(`tr[data-code-state="active"] form`).Length(); n != 151 {
		t.Errorf("%d codes offered to revoke, want all 151 that take devices", n)
	}
	ended := doc.Find(`tr[data-code-state="revoked"]`).Length()
	note := strings.Join(strings.Fields(doc.Find(`[data-testid="codes-shown"]`).Text()), " ")
	if ended == 0 || ended >= 250 || !strings.Contains(note, fmt.Sprintf("newest %d of the 250", ended)) {
		t.Errorf("%d codes that take no more devices shown, and the note %q", ended, note)
	}

	// Thirty revocations at once, from two sessions: one revokes, once.
	other := d.browser()
	d.signIn(other, "admin", "/")
	_, otherDoc := d.get(other, "/registration")
	otherForm := formValues(t, otherDoc, oldRow+` form`)
	statuses := storm(t, 30, func(i int) (int, error) {
		b, f := admin, form
		if i%2 == 1 {
			b, f = other, otherForm
		}
		return postDirect(d.srv.URL, b, d.srv.URL, action, f)
	})
	if statuses[http.StatusOK] != 30 {
		t.Errorf("revocations at once answered by status: %v", statuses)
	}
	revokes, _, _ := d.app.db.ListActivity(context.Background(), store.ActivityFilter{TenantID: demoidp.DemoTenantID, Action: "registration-code-revoked", Limit: 50})
	n := 0
	for _, a := range revokes {
		if strings.Contains(a.Summary, "OLD CODE to revoke") && a.ActorUPN == "AdeleV@contoso.example" {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d revocations of the old code in the history, want 1", n)
	}
	resp, after := d.post(admin, action, form)
	if resp.StatusCode != http.StatusOK || !strings.Contains(after.Find(`[data-testid="notice"]`).Text(), "Code “OLD CODE to revoke” takes no more devices already") {
		t.Fatalf("revoking the old code again answered %d: %.400s", resp.StatusCode, text(after))
	}
	if status, answer := d.device().status(old); status != http.StatusNotFound || strings.Contains(answer, "more devices") {
		t.Errorf("the revoked code's status: %d %s", status, answer)
	}
	codes, err := d.app.db.RegistrationCodes(context.Background(), demoidp.DemoTenantID, 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(codes.Usable) != 150 || codes.Ended != 251 {
		t.Errorf("after the revocation: %d codes take devices and %d do not, want 150 and 251", len(codes.Usable), codes.Ended)
	}
	// Another tenant's code is not found by its id.
	if resp, doc := d.post(admin, "/registration/codes/"+seedOtherTenantCode(t, d)+"/revoke", form); resp.StatusCode != http.StatusNotFound ||
		!strings.Contains(text(doc), "in your tenant") {
		t.Errorf("revoking another tenant's code answered %d: %.300s", resp.StatusCode, text(doc))
	}
}

func seedOtherTenantCode(t *testing.T, d *desk) string {
	t.Helper()
	rc := &store.RegistrationCode{TenantID: demoidp.PersonalAccountsTenantID, CreatorOID: "x", ExpiresAt: time.Now().Add(time.Hour), Uses: 1}
	if err := d.app.db.CreateRegistrationCode(context.Background(), rc, "other-tenant-hash", "",
		&store.Activity{TenantID: demoidp.PersonalAccountsTenantID, Action: "registration-code-created"}); err != nil {
		t.Fatal(err)
	}
	return rc.ID
}

// seedWaiting stores one waiting device for each of n uses of code, as a technician's file
// brings them.
func seedWaiting(t *testing.T, d *desk, code *store.RegistrationCode, n int) []string {
	t.Helper()
	var serials []string
	for i := range n {
		serial := fmt.Sprintf("WAIT-%s-%02d", code.Note[len("seeded "):], i)
		s := &store.RegistrationSubmission{CodeID: code.ID, TenantID: code.TenantID, ClientIP: "203.0.113.9",
			Devices: []store.RegistrationDevice{{Line: 2, Serial: serial, Hash: realHash(), HashShown: "T0gA…AAA=", GroupTag: code.GroupTag}}}
		if err := d.app.db.AddRegistration(context.Background(), s, &store.Activity{TenantID: code.TenantID, Action: "registration-received"}); err != nil {
			t.Fatal(err)
		}
		serials = append(serials, serial)
	}
	return serials
}

// Every device waiting for approval can be approved from the page: the cards come a page at a
// time, the page says how many devices it shows of how many, and following its pages reaches
// Codes that take no more devices are paged, newest first, as the waiting devices are: every one
// of them is on exactly one page, each page says which it lists, and a page past the last is the
// last. The codes that still take devices are on every page.
func TestEveryEndedCodeIsOnAPage(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	seedCodes(t, d, 2, 1, false)
	seedCodes(t, d, 250, 1, true)
	seen := map[string]int{}
	path := "/registration"
	var pages []string
	for range 5 {
		_, doc := d.get(admin, path)
		pages = append(pages, strings.Join(strings.Fields(doc.Find(`[data-testid="codes-shown"]`).Text()), " "))
		if title, later := doc.Find("title").Text(), len(pages) > 1; strings.Contains(title, "a later page") != later {
			t.Errorf("%s is titled %q", path, title)
		}
		doc.Find(`tr[data-code-state="revoked"] td:first-child`).Each(func(_ int, s *goquery.Selection) { seen[strings.TrimSpace(s.Text())]++ })
		if n := doc.Find(`tr[data-code-state="active"]`).Length(); n != 2 {
			t.Errorf("%s lists %d codes that take devices, want both", path, n)
		}
		next, ok := doc.Find(`[data-testid="codes-pages"] a[rel="next"]`).Attr("href")
		if !ok {
			break
		}
		path = next
	}
	if len(pages) != 3 || !strings.Contains(pages[0], "newest 100 of the 250") || !strings.Contains(pages[1], "codes 101–200 of the 250") ||
		!strings.Contains(pages[2], "codes 201–250 of the 250") {
		t.Errorf("pages say %q", pages)
	}
	if len(seen) != 250 {
		t.Errorf("%d of the 250 ended codes listed across the pages", len(seen))
	}
	for note, n := range seen {
		if n != 1 {
			t.Errorf("%q listed on %d pages", note, n)
		}
	}
	_, doc := d.get(admin, "/registration?codes=9")
	if note := doc.Find(`[data-testid="codes-shown"]`).Text(); !strings.Contains(note, "201–250") ||
		doc.Find(`[data-testid="codes-pages"] a[rel="prev"]`).AttrOr("href", "") != "/registration?codes=2#codes-title" {
		t.Errorf("a page past the last: %q", note)
	}
}

// every waiting device; a card on a later page approves its code's devices as the first does.
func TestEveryWaitingDeviceCanBeApproved(t *testing.T) {
	d := startDeskWith(t, map[string]string{"AUTOPILOTDESK_RATE_LIMIT_CREATE": "off"}, fastImports)
	codes := seedCodes(t, d, 6, 50, false)
	want := map[string]bool{}
	for _, rc := range codes {
		for _, serial := range seedWaiting(t, d, rc, 50) {
			want[serial] = true
		}
	}
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	seen := map[string]bool{}
	cards := 0
	var lastPage string
	for path, pages := "/registration", 0; path != ""; pages++ {
		if pages > 6 {
			t.Fatalf("more pages than codes")
		}
		_, doc := d.get(second, path)
		if pages == 0 {
			if n := doc.Find(`[data-testid="waiting-count"]`).First().Text(); !strings.Contains(n, "300") {
				t.Errorf("the navigation counts %q", n)
			}
			shown := strings.Join(strings.Fields(doc.Find(`[data-testid="waiting-shown"]`).Text()), " ")
			if n := doc.Find(`[data-testid="waiting-card"] input[name="submission"]`).Length(); n >= 300 ||
				!strings.Contains(shown, fmt.Sprintf("devices 1–%d of the 300 waiting", n)) {
				t.Errorf("the first page shows %d devices and says %q", n, shown)
			}
		}
		shown := strings.Join(strings.Fields(doc.Find(`[data-testid="waiting-shown"]`).Text()), " ")
		if n := doc.Find(`form[data-testid="waiting-card"] input[name="submission"]`).Length(); !strings.Contains(shown, fmt.Sprintf(": devices %d–%d of the 300 waiting", len(seen)+1, len(seen)+n)) {
			t.Errorf("page %d shows %d devices after %d and says %q", pages+1, n, len(seen), shown)
		}
		doc.Find(`form[data-testid="waiting-card"] input[name="submission"]`).Each(func(_ int, in *goquery.Selection) {
			serial, _ := in.Closest("tr").Attr("data-serial")
			if seen[serial] {
				t.Errorf("%s shown on two pages", serial)
			}
			seen[serial] = true
		})
		if title, later := doc.Find("title").Text(), pages > 0; strings.Contains(title, "a later page") != later {
			t.Errorf("%s is titled %q", path, title)
		}
		cards += doc.Find(`form[data-testid="waiting-card"]`).Length()
		lastPage = path
		path = doc.Find(`[data-testid="waiting-pages"] a[rel="next"]`).AttrOr("href", "")
	}
	if len(seen) != len(want) || cards != 6 {
		t.Errorf("the pages offer %d of %d devices on %d of 6 cards", len(seen), len(want), cards)
	}
	if lastPage == "/registration" {
		t.Fatal("every device on one page")
	}
	// The last card, on the last page, approves its code's fifty devices.
	_, doc := d.get(second, lastPage)
	last := doc.Find(`form[data-testid="waiting-card"]`).Last()
	form := formValues(t, doc, `form[data-testid="waiting-card"][data-code="`+last.AttrOr("data-code", "")+`"]`)
	form.Set("action", "approve")
	if n := len(form["submission"]); n != 50 {
		t.Fatalf("the card ticks %d devices, want its code's 50", n)
	}
	resp, after := d.post(second, "/registration/decide", form)
	if !strings.HasPrefix(resp.Request.URL.Path, "/devices/import/") {
		t.Fatalf("approving the last card led to %s: %.400s", resp.Request.URL, text(after))
	}
	waitFinished(t, d, second, resp.Request.URL.Path)
	if n, _ := d.app.db.CountWaitingDevices(context.Background(), demoidp.DemoTenantID); n != 250 {
		t.Errorf("%d devices wait after approving one card, want 250", n)
	}
}

// The devices decided lately are listed newest first: past what the page lists, the newest, with
// a line that says so and where the rest are.
func TestDecidedLatelyListsTheNewest(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	codes := seedCodes(t, d, 5, 50, false)
	var serials []string
	for _, rc := range codes {
		serials = append(serials, seedWaiting(t, d, rc, 50)...)
	}
	subs := registrations(t, d.app, store.SubmissionFilter{States: []string{store.SubmissionWaiting}, Limit: 200})
	subs = append(subs, registrations(t, d.app, store.SubmissionFilter{CodeID: codes[4].ID})...)
	for _, s := range subs {
		if err := d.app.db.RejectRegistrations(context.Background(), demoidp.DemoTenantID, []string{s.ID}, store.Decider{OID: demoidp.ManyGroupsObjectID, Name: "Isaiah Langer"},
			"Not ours.", &store.Activity{TenantID: demoidp.DemoTenantID, Action: "registration-rejected"}); err != nil && !errors.Is(err, store.ErrConflict) {
			t.Fatal(err)
		}
	}
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	_, doc := d.get(second, "/registration")
	rows := doc.Find(`[data-testid="recent"] tr[data-state="rejected"]`)
	newest := serials[len(serials)-1]
	if rows.Length() == 0 || rows.Length() >= 250 || !strings.Contains(rows.First().Text(), newest) {
		t.Errorf("%d decided rows, the first %q; want the newest, %s, first", rows.Length(), strings.Join(strings.Fields(rows.First().Text()), " "), newest)
	}
	if note := strings.Join(strings.Fields(doc.Find(`[data-testid="recent-shown"]`).Text()), " "); !strings.Contains(note, fmt.Sprintf("newest %d", rows.Length())) {
		t.Errorf("the note on the decided devices reads %q", note)
	}
}

// Past what the page lists of the devices being imported, a line says so.
func TestBeingImportedSaysWhenNotAllAreListed(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{RegistrationEvery: time.Hour})
	codes := seedCodes(t, d, 3, 50, false)
	var ids []string
	for _, rc := range codes {
		seedWaiting(t, d, rc, 50)
		for _, s := range registrations(t, d.app, store.SubmissionFilter{CodeID: rc.ID}) {
			ids = append(ids, s.ID)
		}
	}
	job := &store.ImportJob{TenantID: demoidp.DemoTenantID, ObjectID: demoidp.ManyGroupsObjectID, ActorName: "Isaiah Langer", ActorUPN: "IsaiahL@contoso.example", State: "draft"}
	if err := d.app.db.ApproveRegistrations(context.Background(), store.Approval{TenantID: demoidp.DemoTenantID, SubmissionIDs: ids,
		By: store.Decider{OID: demoidp.ManyGroupsObjectID, Name: "Isaiah Langer"}, Job: job,
		Activity: &store.Activity{TenantID: demoidp.DemoTenantID, Action: "registration-approved"}}); err != nil {
		t.Fatal(err)
	}
	second := d.browser()
	d.signIn(second, demoidp.ManyGroupsKey, "/")
	_, doc := d.get(second, "/registration")
	rows := doc.Find(`[data-testid="importing"] tr[data-state="approved"]`).Length()
	if note := strings.Join(strings.Fields(doc.Find(`[data-testid="importing-shown"]`).Text()), " "); rows == 0 || rows >= 150 ||
		!strings.Contains(note, fmt.Sprintf("The %d approved first are listed", rows)) {
		t.Errorf("%d of the 150 devices being imported listed, and the note %q", rows, note)
	}
}
