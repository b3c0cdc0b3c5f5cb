package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"autopilotdesk/graphclient/unseen"
	"autopilotdesk/handlers/registration"
	"autopilotdesk/web/identity/demoidp"
	"autopilotdesk/web/store"
)

// hiddenIn returns the first character of a plain-text answer, apart from its line ends, that a
// person cannot see.
func hiddenIn(answer string) (rune, bool) {
	return unseen.Find(strings.ReplaceAll(answer, "\r\n", ""))
}

// partnerFile is a capture file with the -Partner columns, one line per [serial, model].
func partnerFile(devices ...[2]string) []byte {
	var b strings.Builder
	b.WriteString("Device Serial Number,Windows Product ID,Hardware Hash,Manufacturer name,Device model\r\n")
	for _, d := range devices {
		b.WriteString(d[0] + ",," + realHash() + ",Contoso," + d[1] + "\r\n")
	}
	return []byte(b.String())
}

// Text with a character nobody can see is refused wherever it enters: the code form keeps what was
// typed and marks each field; the device's file has its serials refused line by line (a model
// only loses the character); the reject form keeps the reason and rejects nothing; and no answer
// to the device carries such a character.
func TestHiddenCharactersAreRefusedWhereTextEnters(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	ctx := context.Background()

	_, doc := d.get(admin, "/registration/codes/new")
	form := formValues(t, doc, `form[action="/registration/codes"]`)
	typed := map[string]string{"groupTag": "Tag\u202eX", "note": "Floor\u200b3", "assignedUser": "ada\u200f@contoso.com"}
	for k, v := range typed {
		form.Set(k, v)
	}
	resp, doc := d.post(admin, "/registration/codes", form)
	if resp.StatusCode != http.StatusUnprocessableEntity || doc.Find(`[data-testid="form-errors"]`).Length() != 1 {
		t.Fatalf("the code form with hidden characters answered %d: %.600s", resp.StatusCode, text(doc))
	}
	for field, says := range map[string]string{"groupTag": "(U+202E, a right-to-left override)", "note": "(U+200B, a zero-width space)", "assignedUser": "(U+200F, a right-to-left mark)"} {
		input := doc.Find("#" + field)
		if input.AttrOr("value", "") != typed[field] || input.AttrOr("aria-invalid", "") != "true" ||
			!strings.Contains(doc.Find("#"+field+"-error").Text(), says) || !strings.Contains(input.AttrOr("aria-describedby", ""), field+"-error") {
			t.Errorf("%s: value %q, aria-invalid %q, error %q", field, input.AttrOr("value", ""), input.AttrOr("aria-invalid", ""), doc.Find("#"+field+"-error").Text())
		}
	}
	if codes, _ := d.app.db.RegistrationCodes(ctx, demoidp.DemoTenantID, 10); len(codes.Usable)+codes.Ended != 0 {
		t.Fatalf("a code was created: %+v", codes)
	}

	code, _ := createCode(t, d, admin, map[string]string{"groupTag": "Kiosk", "uses": "3"})
	status, answer, _ := d.device().raw("/register/"+code, "text/csv",
		partnerFile([2]string{"SER\u202eLIVE", "Mo\u202edel"}, [2]string{"5CG3281JQZ\u200b", "Laptop"}, [2]string{"HIDDEN-OK-1", "Mo\u202edel \x1b[31m14"}))
	if status != http.StatusAccepted {
		t.Fatalf("the device's file answered %d: %s", status, answer)
	}
	flat := strings.Join(strings.Fields(answer), " ")
	for _, want := range []string{`Line 2: serial "SER\u202eLIVE" Device Serial Number "SER\u202eLIVE" contains a character that cannot be seen (U+202E, a right-to-left override)`,
		`Line 3: serial "5CG3281JQZ\u200b"`, "(U+200B, a zero-width space)", "Line 4: serial HIDDEN-OK-1, Contoso Model [31m14"} {
		if !strings.Contains(flat, want) {
			t.Errorf("the receipt lacks %q:\n%s", want, answer)
		}
	}
	if r, found := hiddenIn(answer); found {
		t.Errorf("the receipt carries %U: %q", r, answer)
	}
	subs := registrations(t, d.app, store.SubmissionFilter{})
	if len(subs) != 1 || len(subs[0].Devices) != 1 || subs[0].Devices[0].Serial != "HIDDEN-OK-1" || subs[0].Devices[0].Model != "Model [31m14" {
		t.Fatalf("kept %+v", subs)
	}
	if _, page := d.get(admin, "/registration"); strings.ContainsRune(bodyHTML(page), '\u202e') {
		t.Error("the registration page holds a right-to-left override")
	}

	form, _ = decideForm(t, d, admin)
	form.Set("action", "reject")
	form.Set("reason", "Wrong site\r\n\u202eevil \x1b[31mred\x1b[0m")
	resp, doc = d.post(admin, "/registration/decide", form)
	input := doc.Find(`.reject-field input[name="reason"]`)
	if resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(doc.Find(`.reject-field .field-error`).Text(), "(U+000D, a carriage return)") ||
		input.AttrOr("aria-invalid", "") != "true" || !strings.Contains(input.AttrOr("value", ""), "\u202eevil") {
		t.Errorf("a reason with control characters answered %d: error %q, value %q", resp.StatusCode, doc.Find(`.reject-field .field-error`).Text(), input.AttrOr("value", ""))
	}
	if st := registrations(t, d.app, store.SubmissionFilter{})[0].State; st != store.SubmissionWaiting {
		t.Errorf("after the refused reason the device is %s", st)
	}
	status, answer = d.device().status(code)
	if r, found := hiddenIn(answer); status != http.StatusOK || found {
		t.Errorf("the status answered %d carrying %U: %q", status, r, answer)
	}
}

// The import's pre-flight refuses, like any bad row, a serial or group tag holding a character
// nobody can see, and names it; a byte order mark before the header and spaces around a value
// are still repaired quietly.
func TestImportPreflightRefusesHiddenCharacters(t *testing.T) {
	d := startDeskWith(t, nil, appOptions{})
	b := d.browser()
	d.signIn(b, "admin", "/")
	file := "\ufeffDevice Serial Number,Windows Product ID,Hardware Hash,Group Tag,Assigned User\r\n" +
		"ABC\u202eDEF,," + realHash() + ",,\r\n" +
		"5CG3281JQZ\u200b,," + realHash() + ",,\r\n" +
		"TAGGED-1,," + realHash() + ",Tag\u202eX,\r\n" +
		"  PLAIN-1 ,," + realHash() + ", Kiosk ,\r\n"
	job := draftOf(t, d, b, []byte(file))
	_, doc := d.get(b, job)
	rows := doc.Find(`[data-testid="preflight"] tbody tr`)
	if rows.Length() != 4 {
		t.Fatalf("%d rows: %.800s", rows.Length(), text(doc))
	}
	for i, want := range []string{"(U+202E, a right-to-left override)", "(U+200B, a zero-width space)", "never matches a dynamic group's rule", ""} {
		row := rows.Eq(i)
		verdict := row.AttrOr("data-verdict", "")
		switch {
		case want == "" && verdict != "ok":
			t.Errorf("line %d: verdict %q: %s", i+2, verdict, strings.Join(strings.Fields(row.Text()), " "))
		case want != "" && (verdict != "error" || !strings.Contains(row.Find(".field-error").Text(), want)):
			t.Errorf("line %d: verdict %q, errors %q, want %q", i+2, verdict, row.Find(".field-error").Text(), want)
		}
	}
	if got := rows.Eq(3).Find("code bdi").Text(); got != "PLAIN-1" {
		t.Errorf("the plain row's serial reads %q", got)
	}
	if !strings.Contains(text(doc), "Removed the UTF-8 byte order mark") {
		t.Error("the byte order mark before the header is not noted")
	}
}

// Text stored before the desk refused hidden characters — a code's group tag and note, a reason for
// rejecting — reaches the technician's console by the characters' codes, and on the desk's
// pages it is isolated, so a right-to-left override reverses nothing but itself.
func TestStoredHiddenTextIsShownSafely(t *testing.T) {
	d := startDeskWith(t, nil, fastImports)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code := storeHiddenText(t, d.app, func(code string) { sendDevice(t, d, code, "STORED-1") })

	status, answer := d.device().status(code)
	if r, found := hiddenIn(answer); status != http.StatusOK || found {
		t.Fatalf("the status answered %d carrying %U: %q", status, r, answer)
	}
	for _, want := range []string{`Group tag "A<U+001B>[2J<U+001B>[31mRED<U+202E>evil<U+000D><U+000A>Line2".`,
		`"Wrong site<U+000D><U+000A><U+202E>evil <U+001B>[31mred<U+001B>[0m".`} {
		if !strings.Contains(strings.Join(strings.Fields(answer), " "), want) {
			t.Errorf("the status lacks %q:\n%s", want, answer)
		}
	}

	_, page := d.get(admin, "/registration")
	detail := page.Find(`[data-testid="recent"] tr[data-state="rejected"] td:nth-child(4) .small`)
	if got := detail.Find("bdi").First().Text(); !strings.Contains(got, "\u202eevil") || !strings.HasPrefix(strings.TrimSpace(detail.Text()), "Rejected by Old Desk: “") {
		t.Errorf("the decided row: %q, isolated %q", detail.Text(), got)
	}
	assertIsolated(t, "the registration page", page)
	_, page = d.get(admin, "/activity")
	var isolated []string
	page.Find(".summary bdi").Each(func(_ int, s *goquery.Selection) { isolated = append(isolated, s.Text()) })
	if !strings.Contains(strings.Join(isolated, "|"), "\u202eevil") {
		t.Errorf("the reason is not isolated in the history: %q", isolated)
	}
	assertIsolated(t, "the history", page)
}

// storeHiddenText keeps, as a desk that did not refuse them would have, a registration code whose
// group tag and note hold hidden characters, a device sent with it (send), and its rejection with
// such a reason and the history's line of it; it returns the code as shown.
func storeHiddenText(t *testing.T, a *app, send func(code string)) string {
	t.Helper()
	ctx := context.Background()
	hostile := "A\x1b[2J\x1b[31mRED\u202eevil\r\nLine2"
	reason := "Wrong site\r\n\u202eevil \x1b[31mred\x1b[0m"
	norm := registration.NewCode()
	rc := &store.RegistrationCode{TenantID: demoidp.DemoTenantID, CreatorOID: "someone-else", CreatorName: "Old Desk", Note: "Floor 3\u202e", GroupTag: hostile,
		ExpiresAt: time.Now().Add(time.Hour), Uses: 1}
	if err := a.db.CreateRegistrationCode(ctx, rc, registration.Hash(norm), "stored-before", &store.Activity{TenantID: demoidp.DemoTenantID, Action: "registration-code-created", Outcome: "success",
		Summary: "Created registration code “Floor 3\u202e” for 1 device with group tag “" + hostile + "”."}); err != nil {
		t.Fatal(err)
	}
	code := registration.Format(norm)
	send(code)
	sub := registrations(t, a, store.SubmissionFilter{})[0]
	if err := a.db.RejectRegistrations(ctx, demoidp.DemoTenantID, []string{sub.ID}, store.Decider{OID: "someone-else", Name: "Old Desk"}, reason,
		&store.Activity{TenantID: demoidp.DemoTenantID, Action: "registration-rejected", Outcome: "success", ActorName: "Old Desk",
			Summary: "Rejected 1 device (STORED-1) sent with registration code “Floor 3\u202e”: “" + reason + "”. Its hash was overwritten."}); err != nil {
		t.Fatal(err)
	}
	return code
}

// assertIsolated fails unless every right-to-left override on a page is inside a <bdi>.
func assertIsolated(t *testing.T, what string, doc *goquery.Document) {
	t.Helper()
	doc.Find("body *").Each(func(_ int, s *goquery.Selection) {
		if goquery.NodeName(s) == "bdi" || s.ParentsFiltered("bdi").Length() > 0 || goquery.NodeName(s) == "input" {
			return
		}
		for _, n := range s.Contents().Nodes {
			if n.Type == 1 && strings.ContainsRune(n.Data, '\u202e') {
				t.Errorf("%s: <%s> holds %q outside a <bdi>", what, goquery.NodeName(s), n.Data)
			}
		}
	})
}

func bodyHTML(doc *goquery.Document) string {
	h, _ := doc.Find("body").Html()
	return h
}
