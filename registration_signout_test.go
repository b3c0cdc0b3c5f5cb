package main

import (
	"strings"
	"testing"
	"time"

	"autopilotdesk/graphclient/emulator"
	"autopilotdesk/web/identity/demoidp"
)

// An approver who signs out while their import runs holds it up: everyone's page names them
// (not the reader's own sign-in), the technician's status says the import waits and whom to
// ask, and the registration page's list of devices being imported says so too.
func TestAnApproverWhoSignsOutIsNamedAsTheWait(t *testing.T) {
	opts := fastImports
	opts.ImportPausedRecheck = 50 * time.Millisecond
	d := startDeskWith(t, nil, opts)
	admin := d.browser()
	d.signIn(admin, "admin", "/")
	code, _ := createCode(t, d, admin, nil)
	sendDevice(t, d, code, "AWAY-1")
	d.emu.SetFaults(emulator.Faults{LatencyMin: time.Second, LatencyMax: time.Second})
	approver := d.browser()
	d.signIn(approver, demoidp.ManyGroupsKey, "/")
	form, _ := decideForm(t, d, approver)
	form.Set("action", "approve")
	resp, doc := d.post(approver, "/registration/decide", form)
	job := resp.Request.URL.Path
	d.post(approver, "/auth/signout", formValues(t, doc, `form[action="/auth/signout"]`))
	for i := 0; ; i++ {
		_, doc = d.get(admin, job)
		if strings.Contains(text(doc), "Your sign-in") {
			t.Fatalf("the page blames the reader's sign-in: %.800s", text(doc))
		}
		if doc.Find(`[data-testid="paused"]`).Length() == 1 {
			break
		}
		if i > 500 {
			t.Fatalf("the page does not say the import waits for its owner: %.800s", text(doc))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := doc.Find(`[data-testid="paused"]`).Text(); !strings.Contains(got, "Isaiah Langer signs in again") {
		t.Errorf("paused note: %s", got)
	}
	_, answer := d.device().status(code)
	if answer = strings.Join(strings.Fields(answer), " "); !strings.Contains(answer, "sign in to the desk again") || !strings.Contains(answer, "ask your IT team") {
		t.Errorf("status:\n%s", answer)
	}
	_, page := d.get(admin, "/registration")
	if got := page.Find(`[data-testid="importing"]`).Text(); !strings.Contains(got, "waits for Isaiah Langer to sign in") {
		t.Errorf("being imported: %s", got)
	}
	d.emu.SetFaults(emulator.Faults{})
	d.signIn(approver, demoidp.ManyGroupsKey, "/")
	waitFinished(t, d, admin, job)
}
